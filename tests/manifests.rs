//! The deployable files (issue 4): every document in `manifests/` parses into its k8s-openapi type with no field
//! the type does not know, the kustomization lists every file and renders with real kustomize, the CronJob runs
//! locked down (non-root, read-only root filesystem, no capabilities, seccomp, requests and limits, one run at a
//! time, cluster name by env), the RBAC grants no wildcard and nothing on Secrets; `drift` proves the ClusterRole
//! and the IAM policies equal what the binary calls, `admission` evaluates the admission policy that keeps the
//! auditor to its annotations, and `krew` checks `krew.yaml` against krew's rules.

mod support;

#[path = "manifests/admission.rs"]
mod admission;
#[path = "manifests/drift.rs"]
mod drift;
#[path = "manifests/krew.rs"]
mod krew;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Container, Namespace, PodSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub const NAMESPACE: &str = "iam-roles";
const NAME_LABEL: (&str, &str) = ("app.kubernetes.io/name", "kubectl-iam-roles");

pub fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests")
}

/// The `*.yaml` files in `manifests/`, sorted by name.
fn yaml_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(manifests_dir())
        .expect("manifests/ exists")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
        .collect();
    files.sort();
    files
}

/// Every YAML document of a `manifests/` file, as JSON values.
fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(manifests_dir().join(file)).unwrap_or_else(|e| panic!("read {file}: {e}"));
    serde_saphyr::from_multiple::<Value>(&text).unwrap_or_else(|e| panic!("{file} is not valid YAML: {e}"))
}

/// The document as its k8s-openapi type. Serialising it back must give the document again: k8s-openapi ignores
/// unknown fields, so this is what catches a misspelt field (`readOnlyRootFileSystem`) the API server would drop.
fn typed<K: DeserializeOwned + Serialize>(doc: &Value, file: &str) -> K {
    let obj: K =
        serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{file}: not a valid {}: {e}", doc["kind"]));
    let back = serde_json::to_value(&obj).expect("serialise");
    assert_eq!(&back, doc, "{file}: a field {} does not have (misspelt, or misplaced)", doc["kind"]);
    obj
}

/// Every object the kustomization deploys, parsed into its type.
#[derive(Default)]
pub struct Manifests {
    pub namespaces: Vec<Namespace>,
    pub service_accounts: Vec<ServiceAccount>,
    pub cluster_roles: Vec<ClusterRole>,
    pub bindings: Vec<ClusterRoleBinding>,
    pub cron_jobs: Vec<CronJob>,
    pub admission_policies: Vec<ValidatingAdmissionPolicy>,
    pub admission_bindings: Vec<ValidatingAdmissionPolicyBinding>,
}

impl Manifests {
    pub fn load() -> Self {
        let mut m = Manifests::default();
        for file in yaml_files().iter().filter(|f| !f.starts_with("kustomization.")) {
            for doc in documents(file) {
                match doc["kind"].as_str().unwrap_or_default() {
                    "Namespace" => m.namespaces.push(typed(&doc, file)),
                    "ServiceAccount" => m.service_accounts.push(typed(&doc, file)),
                    "ClusterRole" => m.cluster_roles.push(typed(&doc, file)),
                    "ClusterRoleBinding" => m.bindings.push(typed(&doc, file)),
                    "CronJob" => m.cron_jobs.push(typed(&doc, file)),
                    "ValidatingAdmissionPolicy" => m.admission_policies.push(typed(&doc, file)),
                    "ValidatingAdmissionPolicyBinding" => m.admission_bindings.push(typed(&doc, file)),
                    other => panic!("{file}: unexpected kind {other:?}; teach tests/manifests.rs to check it"),
                }
            }
        }
        m
    }

    pub fn cluster_role(&self) -> &ClusterRole {
        assert_eq!(self.cluster_roles.len(), 1, "one ClusterRole");
        &self.cluster_roles[0]
    }

    pub fn cron_job(&self) -> &CronJob {
        assert_eq!(self.cron_jobs.len(), 1, "one CronJob");
        &self.cron_jobs[0]
    }

    pub fn pod_spec(&self) -> &PodSpec {
        let job = self.cron_job().spec.as_ref().and_then(|s| s.job_template.spec.as_ref()).expect("job spec");
        job.template.spec.as_ref().expect("pod spec")
    }

    pub fn container(&self) -> &Container {
        let spec = self.pod_spec();
        assert_eq!(spec.containers.len(), 1, "one container");
        &spec.containers[0]
    }

    /// The rules as RBAC reads them.
    pub fn rules(&self) -> &[PolicyRule] {
        self.cluster_role().rules.as_deref().unwrap_or_default()
    }
}

#[test]
fn every_document_parses_into_its_kubernetes_type() {
    let m = Manifests::load();
    assert_eq!(m.namespaces.len(), 1);
    assert_eq!(m.service_accounts.len(), 1);
    assert_eq!(m.bindings.len(), 1);
    m.cluster_role();
    m.cron_job();
    let namespaced = m.service_accounts.iter().map(|s| &s.metadata).chain(m.cron_jobs.iter().map(|c| &c.metadata));
    for meta in namespaced {
        assert_eq!(meta.namespace.as_deref(), Some(NAMESPACE), "{:?} in the auditor's namespace", meta.name);
    }
    assert_eq!(m.namespaces[0].metadata.name.as_deref(), Some(NAMESPACE));
}

#[test]
fn kustomization_lists_every_file() {
    let docs = documents("kustomization.yaml");
    assert_eq!(docs.len(), 1);
    let k = &docs[0];
    assert_eq!(k["apiVersion"], "kustomize.config.k8s.io/v1beta1");
    assert_eq!(k["kind"], "Kustomization");
    assert_eq!(k["namespace"], NAMESPACE);
    let listed: BTreeSet<&str> =
        k["resources"].as_array().expect("resources").iter().map(|r| r.as_str().expect("a file name")).collect();
    let files: BTreeSet<String> = yaml_files().into_iter().filter(|f| !f.starts_with("kustomization.")).collect();
    let files: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    assert_eq!(listed, files, "resources: must list every manifest, and only those");
    let labelled = k["labels"].as_array().into_iter().flatten().chain(k.get("commonLabels"));
    let pairs: Vec<&Value> = labelled.map(|l| l.get("pairs").unwrap_or(l)).collect();
    assert!(pairs.iter().any(|p| p[NAME_LABEL.0] == NAME_LABEL.1), "{NAME_LABEL:?} on every object: {k}");
}

/// The kustomization's `images:` entry (where a deployer pins the digest) names the image the CronJob runs,
/// so pinning there takes effect; a digest, when given, is a full sha256.
#[test]
fn the_image_can_be_pinned_in_the_kustomization() {
    let docs = documents("kustomization.yaml");
    let images = docs[0]["images"].as_array().expect("an images: entry");
    let m = Manifests::load();
    let image = m.container().image.as_deref().expect("image");
    let name = image.split(['@', ':']).next().expect("name");
    let entry = images.iter().find(|i| i["name"] == name).unwrap_or_else(|| panic!("no images: entry for {name}"));
    if let Some(digest) = entry.get("digest").and_then(Value::as_str) {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "{digest}");
    } else {
        assert!(entry["newTag"].is_string(), "a tag or a digest: {entry}");
    }
    let text = std::fs::read_to_string(manifests_dir().join("kustomization.yaml")).expect("read");
    assert!(text.contains("digest: sha256:"), "the kustomization shows how to pin by digest");
}

/// kubectl's built-in kustomize renders what `kubectl apply -k manifests/` would apply.
#[test]
fn kubectl_kustomize_renders_the_labelled_objects() {
    let out = Command::new("kubectl").arg("kustomize").arg(manifests_dir()).output().expect("run kubectl kustomize");
    assert!(out.status.success(), "kubectl kustomize failed: {}", String::from_utf8_lossy(&out.stderr));
    let rendered: Vec<Value> = serde_saphyr::from_multiple(&String::from_utf8_lossy(&out.stdout)).expect("YAML");
    let kinds: BTreeSet<&str> = rendered.iter().filter_map(|d| d["kind"].as_str()).collect();
    let expected = [
        "ClusterRole",
        "ClusterRoleBinding",
        "CronJob",
        "Namespace",
        "ServiceAccount",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ];
    assert_eq!(kinds, expected.into_iter().collect());
    for doc in &rendered {
        assert_eq!(doc["metadata"]["labels"][NAME_LABEL.0], NAME_LABEL.1, "label on {}", doc["kind"]);
        if matches!(doc["kind"].as_str(), Some("ServiceAccount" | "CronJob")) {
            assert_eq!(doc["metadata"]["namespace"], NAMESPACE);
        }
    }
    let cron = rendered.iter().find(|d| d["kind"] == "CronJob").expect("CronJob");
    let pod_labels = &cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"];
    assert_eq!(pod_labels[NAME_LABEL.0], NAME_LABEL.1, "the auditor's pods carry the label too");
}

#[test]
fn the_cronjob_runs_once_a_day_one_run_at_a_time() {
    let m = Manifests::load();
    let spec = m.cron_job().spec.as_ref().expect("spec");
    assert_eq!(spec.schedule, "0 6 * * *");
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"), "a slow audit must not overlap the next");
    assert!(spec.successful_jobs_history_limit.is_some_and(|n| (1..=5).contains(&n)));
    assert!(spec.failed_jobs_history_limit.is_some_and(|n| (1..=5).contains(&n)));
    let job = spec.job_template.spec.as_ref().expect("job spec");
    assert_eq!(job.backoff_limit, Some(1));
    let pod = m.pod_spec();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let sa = m.service_accounts[0].metadata.name.as_deref();
    assert_eq!(pod.service_account_name.as_deref(), sa, "runs as the auditor's service account");
    assert_eq!(pod.automount_service_account_token, Some(true), "it needs the API");
    let c = m.container();
    assert_eq!(c.args.as_deref(), Some(&["annotate".to_string(), "-A".to_string()][..]));
    assert!(c.command.is_none(), "the image's entrypoint is the binary");
    let image = c.image.as_deref().expect("image");
    let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
    assert!(!tag.is_empty() && tag != "latest" && !tag.contains('/'), "a pinned image: {image}");
}

fn env<'a>(c: &'a Container, name: &str) -> Option<&'a str> {
    c.env.as_ref()?.iter().find(|e| e.name == name)?.value.as_deref()
}

#[test]
fn the_cluster_and_region_come_from_the_environment() {
    let m = Manifests::load();
    let c = m.container();
    assert!(env(c, "IAM_ROLES_CLUSTER").is_some_and(|v| !v.is_empty()), "in a pod no kubeconfig names the cluster");
    assert!(env(c, "AWS_REGION").is_some_and(|v| !v.is_empty()));
    let cache = env(c, "IAM_ROLES_CACHE_DIR").expect("IAM_ROLES_CACHE_DIR: the root filesystem is read-only");
    let mounts = c.volume_mounts.as_deref().unwrap_or_default();
    let mount = mounts.iter().find(|v| Path::new(cache).starts_with(&v.mount_path)).expect("cache dir on a volume");
    assert_ne!(mount.read_only, Some(true));
    let volumes = m.pod_spec().volumes.as_deref().unwrap_or_default();
    let volume = volumes.iter().find(|v| v.name == mount.name).expect("the mounted volume");
    assert!(volume.empty_dir.is_some(), "scratch space only: {volume:?}");
    for var in c.env.as_deref().unwrap_or_default() {
        let from = var.value_from.as_ref();
        assert!(from.is_none_or(|f| f.secret_key_ref.is_none()), "{}: the auditor reads no Secret", var.name);
    }
}

#[test]
fn the_pod_is_locked_down() {
    let m = Manifests::load();
    let pod = m.pod_spec();
    let psc = pod.security_context.as_ref().expect("pod securityContext");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.run_as_user, Some(65532));
    assert_eq!(psc.run_as_group, Some(65532));
    assert_eq!(psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()), Some("RuntimeDefault"));
    assert!(pod.host_network != Some(true) && pod.host_pid != Some(true) && pod.host_ipc != Some(true));
    assert!(pod.init_containers.as_deref().unwrap_or_default().is_empty());
    let c = m.container();
    let sc = c.security_context.as_ref().expect("container securityContext");
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_ne!(sc.privileged, Some(true));
    assert_eq!(sc.run_as_non_root.or(psc.run_as_non_root), Some(true));
    assert_eq!(sc.run_as_user.or(psc.run_as_user), Some(65532), "the distroless nonroot user");
    let caps = sc.capabilities.as_ref().expect("capabilities");
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
    assert!(caps.add.as_deref().unwrap_or_default().is_empty(), "no capability added back");
    let seccomp = sc.seccomp_profile.as_ref().or(psc.seccomp_profile.as_ref()).map(|s| s.type_.as_str());
    assert_eq!(seccomp, Some("RuntimeDefault"));
    let volumes = pod.volumes.as_deref().unwrap_or_default();
    assert!(volumes.iter().all(|v| v.secret.is_none() && v.host_path.is_none()), "no Secret or host volumes");
    let labels = m.namespaces[0].metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("pod-security.kubernetes.io/enforce").map(String::as_str), Some("restricted"));
}

/// `cpu: 50m` → 0.05, `memory: 64Mi` → 67108864.
fn quantity(q: &str) -> f64 {
    let units = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("m", 0.001),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
    ];
    let (number, factor) =
        units.iter().find_map(|(suffix, factor)| q.strip_suffix(suffix).map(|n| (n, *factor))).unwrap_or((q, 1.0));
    number.parse::<f64>().unwrap_or_else(|e| panic!("quantity {q:?}: {e}")) * factor
}

#[test]
fn the_pod_has_requests_and_limits() {
    let m = Manifests::load();
    let resources = m.container().resources.as_ref().expect("resources");
    let requests = resources.requests.as_ref().expect("requests");
    let limits = resources.limits.as_ref().expect("limits");
    for name in ["cpu", "memory"] {
        let request = quantity(&requests.get(name).unwrap_or_else(|| panic!("{name} request")).0);
        let limit = quantity(&limits.get(name).unwrap_or_else(|| panic!("{name} limit")).0);
        assert!(request > 0.0 && request <= limit, "{name}: request {request} within limit {limit}");
    }
    assert!(quantity(&limits["memory"].0) <= quantity("1Gi"), "a small process: keep the limit modest");
}

#[test]
fn rbac_binds_the_auditor_and_grants_no_wildcard_and_no_secrets() {
    let m = Manifests::load();
    let role = m.cluster_role();
    assert!(role.aggregation_rule.is_none());
    for rule in m.rules() {
        let fields = [&rule.api_groups, &rule.resources, &rule.resource_names];
        let all: Vec<&String> = fields.iter().filter_map(|f| f.as_ref()).flatten().chain(&rule.verbs).collect();
        assert!(all.iter().all(|v| !v.contains('*')), "no wildcards: {rule:?}");
        assert!(rule.non_resource_urls.is_none(), "no non-resource URLs: {rule:?}");
        let resources = rule.resources.as_deref().unwrap_or_default();
        assert!(!resources.is_empty() && !rule.verbs.is_empty(), "{rule:?}");
        assert!(resources.iter().all(|r| r != "secrets" && !r.contains('/')), "no secrets, no subresources: {rule:?}");
        let verbs: BTreeSet<&str> = rule.verbs.iter().map(String::as_str).collect();
        let forbidden = ["escalate", "bind", "impersonate", "delete", "deletecollection", "update", "watch"];
        assert!(forbidden.iter().all(|v| !verbs.contains(v)), "{rule:?}");
    }
    let binding = &m.bindings[0];
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(binding.role_ref.api_group, "rbac.authorization.k8s.io");
    assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref());
    let subjects = binding.subjects.as_deref().unwrap_or_default();
    assert_eq!(subjects.len(), 1, "only the auditor");
    let sa = &m.service_accounts[0].metadata;
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(Some(&subjects[0].name), sa.name.as_ref());
    assert_eq!(subjects[0].namespace.as_deref(), Some(NAMESPACE));
}

#[test]
fn the_service_account_names_an_iam_role() {
    let m = Manifests::load();
    let annotations = m.service_accounts[0].metadata.annotations.clone().unwrap_or_default();
    let arn = annotations.get("eks.amazonaws.com/role-arn").expect("the IRSA annotation (or Pod Identity instead)");
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    assert_eq!(parts.len(), 6, "{arn}");
    assert_eq!((parts[0], parts[2], parts[3]), ("arn", "iam", ""), "{arn}");
    assert!(parts[4] == "ACCOUNT_ID" || parts[4].len() == 12, "account id or its placeholder: {arn}");
    assert!(parts[5].starts_with("role/"), "{arn}");
}
