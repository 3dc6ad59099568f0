//! The edges: read the cluster and EKS live, or read a snapshot file. Both give a [`Snapshot`].

pub mod athena;
pub mod aws;
pub mod cache;
pub mod cloudtrail;
pub mod context;
pub mod eks;
pub mod iam;
pub mod kube;
pub mod policies;
pub mod roles;
pub mod snapshot;

use std::path::PathBuf;

use crate::model::{ClusterInfo, PodIdentityData, Scope, Snapshot};
use crate::{Error, Result};

/// What to read: the kubeconfig and context, the namespace scope and label selector, and the EKS cluster,
/// region and AWS profile. The command line fills it in; `collect` depends on the model only, never on
/// `cli` or the judges.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The kubeconfig file (default: `$KUBECONFIG`, then `~/.kube/config`, then in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: the current one).
    pub context: Option<String>,
    /// One namespace (default: the context's), unless `all_namespaces`.
    pub namespace: Option<String>,
    pub all_namespaces: bool,
    /// A label selector on pods.
    pub selector: Option<String>,
    /// The EKS cluster, region and AWS profile (default: inferred from the context).
    pub cluster: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
}

/// A connected cluster: the client and what we know of the cluster before reading anything.
pub struct Connection {
    pub client: ::kube::Client,
    /// The API server URL, for error messages.
    pub server: String,
    /// The scope: `None` for all namespaces.
    pub namespace: Option<String>,
    pub cluster: ClusterInfo,
    pub profile: Option<String>,
}

impl Connection {
    /// Loads the kube configuration and builds the client; nothing is requested yet.
    pub async fn open(options: &Options) -> Result<Self> {
        let target = context::load(options).await?;
        let namespace = if options.all_namespaces {
            None
        } else {
            Some(options.namespace.clone().unwrap_or_else(|| target.config.default_namespace.clone()))
        };
        let server = target.config.cluster_url.to_string();
        let client = ::kube::Client::try_from(target.config).map_err(|e| {
            Error::config(format!("cannot build a Kubernetes client from {}: {e}", target.source)).because(e)
        })?;
        let cluster = ClusterInfo {
            name: options.cluster.clone().or(target.hint.name),
            region: options.region.clone().or(target.hint.region),
            account: target.hint.account,
            oidc_issuer: None,
        };
        let profile = options.profile.clone().or(target.hint.profile);
        Ok(Connection { client, server, namespace, cluster, profile })
    }
}

/// Collects everything in scope from the live Kubernetes API and EKS.
pub async fn live(conn: &Connection, selector: Option<&str>) -> Result<Snapshot> {
    let scope = Scope { namespace: conn.namespace.clone(), selector: selector.map(str::to_string) };
    let mut snap = Snapshot::new(conn.cluster.clone(), scope);
    let (client, server, profile) = (&conn.client, &conn.server, conn.profile.clone());

    let ns = snap.scope.namespace.as_deref();
    let selector = snap.scope.selector.as_deref();
    let mut pod_identity_warnings = Vec::new();
    let mut cluster = snap.cluster.clone();
    // The Kubernetes lists and the EKS reads do not depend on each other: run them together.
    let (pods, sas, owners, pod_identity) = tokio::join!(
        kube::pods(client, ns, selector),
        kube::service_accounts(client, ns),
        kube::owners(client, ns),
        pod_identity(&mut cluster, profile.as_deref(), ns, &mut pod_identity_warnings),
    );
    snap.pods = pods.map_err(|e| Error::kube(e.explain(server)).because(e.source))?;
    snap.service_accounts = sas.map_err(|e| Error::kube(e.explain(server)).because(e.source))?;
    for (kind, result) in owners {
        match result {
            Ok(o) => snap.owners.extend(o),
            Err(e) => {
                snap.unlisted_kinds.push(kind.to_string());
                snap.warnings.push(format!(
                    "{}; pods are shown under their ReplicaSet or Job instead of the top-level workload",
                    e.explain(server)
                ))
            }
        }
    }
    snap.cluster = cluster;
    snap.pod_identity = pod_identity?;
    snap.warnings.extend(pod_identity_warnings);
    if !snap.pod_identity.associations.is_empty() {
        match kube::pod_identity_agent(client).await {
            Ok(agent) => snap.pod_identity_agent = Some(agent),
            Err(e) => snap.warnings.push(format!("cannot check the Pod Identity agent: {}", e.explain(server))),
        }
    }
    snap.sort();
    Ok(snap)
}

/// Reads the cluster identity and Pod Identity associations, or says why they were skipped.
async fn pod_identity(
    cluster: &mut ClusterInfo,
    profile: Option<&str>,
    namespace: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<PodIdentityData> {
    let skipped =
        |reason: String| Ok(PodIdentityData { collected: false, skipped_reason: Some(reason), ..Default::default() });
    let Some(name) = cluster.name.clone() else {
        return skipped("no EKS cluster name: the kubeconfig context is not an EKS one; pass --cluster NAME".into());
    };
    let config = aws::sdk_config(cluster.region.as_deref(), profile).await;
    let Some(region) = config.region().map(|r| r.to_string()) else {
        return skipped(format!("no AWS region for cluster {name}; pass --region"));
    };
    cluster.region = Some(region.clone());
    if let Err(reason) = aws::check_credentials(&config).await {
        return skipped(format!("{reason}; configure AWS credentials (aws configure, AWS_PROFILE or --profile)"));
    }
    let client = aws_sdk_eks::Client::from_conf(
        aws_sdk_eks::config::Builder::from(&config).interceptor(aws::RetryNotice).build(),
    );
    eks::describe_cluster(&client, cluster, warnings).await?;
    match eks::associations(&client, &name, &region, namespace, warnings).await? {
        Ok((associations, undescribed)) => {
            Ok(PodIdentityData { collected: true, skipped_reason: None, associations, undescribed })
        }
        Err(reason) => skipped(reason),
    }
}

impl Snapshot {
    /// Puts every list in a stable order, so snapshots and output diff cleanly.
    pub fn sort(&mut self) {
        self.service_accounts.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        self.pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        self.owners.sort_by(|a, b| (&a.namespace, &a.kind, &a.name).cmp(&(&b.namespace, &b.kind, &b.name)));
        self.pod_identity
            .associations
            .sort_by(|a, b| (&a.namespace, &a.service_account).cmp(&(&b.namespace, &b.service_account)));
    }
}
