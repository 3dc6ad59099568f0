//! Kubeconfig files as `aws eks update-kubeconfig` writes them: contexts named by the cluster ARN, an
//! optional CA, and a static token or an exec plugin standing in for `aws eks get-token`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tempfile::TempDir;

use super::super::b64;

/// How a kubeconfig user authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Token(String),
    /// An exec plugin standing in for `aws eks get-token`: prints an ExecCredential with `token`.
    Exec {
        token: String,
        cluster_name: String,
        region: String,
    },
}

/// One context, with its own cluster and user entries (all named like the context).
#[derive(Debug, Clone)]
pub struct Context {
    pub name: String,
    pub server: String,
    pub ca_pem: Option<String>,
    pub auth: Auth,
    pub namespace: Option<String>,
}

impl Context {
    pub fn new(name: &str, server: &str) -> Self {
        Context { name: name.into(), server: server.into(), ca_pem: None, auth: Auth::None, namespace: None }
    }

    /// Named as `aws eks update-kubeconfig` names it (the cluster ARN), authenticating via exec.
    pub fn eks(cluster: &str, region: &str, account: &str, server: &str) -> Self {
        let name = format!("arn:aws:eks:{region}:{account}:cluster/{cluster}");
        Context::new(&name, server).exec_token("k8s-aws-v1.fake-token", cluster, region)
    }

    /// `certificate-authority-data`; `None` leaves it out (plain HTTP servers).
    pub fn ca_pem(mut self, pem: Option<String>) -> Self {
        self.ca_pem = pem;
        self
    }

    pub fn token(mut self, token: &str) -> Self {
        self.auth = Auth::Token(token.into());
        self
    }

    pub fn exec_token(mut self, token: &str, cluster_name: &str, region: &str) -> Self {
        self.auth = Auth::Exec { token: token.into(), cluster_name: cluster_name.into(), region: region.into() };
        self
    }

    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespace = Some(ns.into());
        self
    }
}

/// A kubeconfig to write; the first context is current unless [`Kubeconfig::current`] says otherwise.
#[derive(Debug, Clone, Default)]
pub struct Kubeconfig {
    contexts: Vec<Context>,
    current: Option<String>,
}

impl Kubeconfig {
    pub fn new() -> Self {
        Kubeconfig::default()
    }

    pub fn single(context: Context) -> Self {
        Kubeconfig::new().context(context)
    }

    pub fn context(mut self, context: Context) -> Self {
        self.contexts.push(context);
        self
    }

    pub fn current(mut self, name: &str) -> Self {
        self.current = Some(name.into());
        self
    }

    /// Writes the kubeconfig (JSON, which is valid YAML) and any exec script into a fresh temp dir.
    pub fn write(&self) -> KubeconfigFile {
        let dir = tempfile::tempdir().expect("temp dir");
        let exec_log = dir.path().join("exec-invocations.log");
        let entry = |name: &str, key: &str, value: Value| json!({ "name": name, key: value });
        let mut clusters = Vec::new();
        let mut users = Vec::new();
        let mut contexts = Vec::new();
        for (i, c) in self.contexts.iter().enumerate() {
            let mut cluster = json!({ "server": c.server });
            if let Some(pem) = &c.ca_pem {
                cluster["certificate-authority-data"] = json!(b64::encode(pem.as_bytes()));
            }
            let user = match &c.auth {
                Auth::None => json!({}),
                Auth::Token(token) => json!({ "token": token }),
                Auth::Exec { token, cluster_name, region } => {
                    let script = write_exec_script(dir.path(), i, token, &exec_log);
                    json!({ "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": script,
                        "args": ["--region", region, "eks", "get-token", "--cluster-name", cluster_name,
                                 "--output", "json"],
                        "interactiveMode": "IfAvailable", "provideClusterInfo": false,
                    } })
                }
            };
            let mut context = json!({ "cluster": c.name, "user": c.name });
            if let Some(ns) = &c.namespace {
                context["namespace"] = json!(ns);
            }
            clusters.push(entry(&c.name, "cluster", cluster));
            users.push(entry(&c.name, "user", user));
            contexts.push(entry(&c.name, "context", context));
        }
        let current = self.current.clone().or_else(|| self.contexts.first().map(|c| c.name.clone()));
        let config = json!({
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": clusters, "users": users, "contexts": contexts,
            "current-context": current.unwrap_or_default(),
        });
        let path = dir.path().join("config");
        std::fs::write(&path, serde_json::to_string_pretty(&config).expect("json")).expect("write kubeconfig");
        KubeconfigFile { path, exec_log, _dir: dir }
    }
}

/// The script is named `aws` so the command looks like the real one; it ignores its arguments apart
/// from logging them, one line per invocation.
fn write_exec_script(dir: &Path, index: usize, token: &str, log: &Path) -> PathBuf {
    let bin = dir.join(format!("exec-{index}"));
    std::fs::create_dir_all(&bin).expect("exec dir");
    let script = bin.join("aws");
    let credential = json!({
        "kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1beta1", "spec": {},
        "status": { "token": token, "expirationTimestamp": "2099-01-01T00:00:00Z" },
    });
    let body = format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nprintf '%s\\n' '{}'\n", log.display(), credential);
    std::fs::write(&script, body).expect("write exec script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod exec script");
    script
}

/// A written kubeconfig; the temp dir lives as long as this value.
pub struct KubeconfigFile {
    pub path: PathBuf,
    exec_log: PathBuf,
    _dir: TempDir,
}

impl KubeconfigFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The arguments of each exec-plugin invocation so far, one entry per run.
    pub fn exec_invocations(&self) -> Vec<String> {
        let log = std::fs::read_to_string(&self.exec_log).unwrap_or_default();
        log.lines().map(str::to_string).collect()
    }
}
