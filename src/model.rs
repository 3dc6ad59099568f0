//! Plain data: what is collected (the snapshot) and what is reported (the output documents).
//!
//! The collected types keep only the fields the resolver needs, which keeps a 50,000-pod cluster small
//! in memory and in snapshot files.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// `apiVersion` of every document this tool reads or writes.
pub const API_VERSION: &str = "iam-roles/v1";

/// The cluster the data belongs to; every field may be unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    pub name: Option<String>,
    pub region: Option<String>,
    pub account: Option<String>,
    pub oidc_issuer: Option<String>,
}

/// What was asked for when the data was collected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    /// `None` means all namespaces.
    pub namespace: Option<String>,
    /// The pod label selector, if any.
    pub selector: Option<String>,
}

/// A controller reference (`ownerReferences[controller=true]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRef {
    pub kind: String,
    pub name: String,
}

/// A service account, with only its `eks.amazonaws.com/` annotations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountInfo {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A container's `AWS_*` environment variables; `None` when the value comes from a reference
/// (`valueFrom`), which this tool never resolves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub name: String,
    #[serde(default)]
    pub env: BTreeMap<String, Option<String>>,
}

/// A pod, slimmed to what decides its identity and its workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub service_account: String,
    pub owner: Option<OwnerRef>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Init containers first, then containers.
    #[serde(default)]
    pub containers: Vec<ContainerInfo>,
    /// Whether the IRSA webhook's projected token volume (`aws-iam-token`) is mounted.
    #[serde(default)]
    pub irsa_token_volume: bool,
    #[serde(default)]
    pub host_network: bool,
    #[serde(default)]
    pub fargate: bool,
    pub phase: Option<String>,
}

impl PodInfo {
    /// Pods in phase `Succeeded` or `Failed` run no containers and hold no credentials.
    pub fn completed(&self) -> bool {
        matches!(self.phase.as_deref(), Some("Succeeded" | "Failed"))
    }
}

/// A ReplicaSet or Job, kept only to walk pods up to their top-level workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerInfo {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub owner: Option<OwnerRef>,
}

/// An object `annotate` may write to, with what it needs to write safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub annotations: BTreeMap<String, String>,
}

/// An EKS Pod Identity association (List + Describe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Association {
    pub association_id: String,
    pub namespace: String,
    pub service_account: String,
    pub role_arn: String,
    pub target_role_arn: Option<String>,
    pub owner_arn: Option<String>,
    #[serde(default)]
    pub disable_session_tags: bool,
}

/// Whether Pod Identity associations were read, and if not, why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodIdentityData {
    pub collected: bool,
    pub skipped_reason: Option<String>,
    #[serde(default)]
    pub associations: Vec<Association>,
    /// Associations listed but not described (their role is unknown), by namespace and service account.
    #[serde(default)]
    pub undescribed: Vec<ServiceAccountRef>,
}

/// A service account by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountRef {
    pub namespace: String,
    pub service_account: String,
}

/// The `eks-pod-identity-agent` DaemonSet; `None` in [`Snapshot`] when it could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    pub found: bool,
    pub desired: i32,
    pub ready: i32,
}

/// Everything collected: the input of every command, live or read back from a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub api_version: String,
    pub kind: String,
    pub taken_at: Timestamp,
    pub cluster: ClusterInfo,
    pub scope: Scope,
    pub service_accounts: Vec<ServiceAccountInfo>,
    pub pods: Vec<PodInfo>,
    /// ReplicaSets and Jobs; empty for a kind the collector was not allowed to list.
    pub owners: Vec<OwnerInfo>,
    /// Owner kinds (`ReplicaSet`, `Job`) that could not be listed: pods then stand under their ReplicaSet
    /// or Job instead of the top-level workload.
    #[serde(default)]
    pub unlisted_kinds: Vec<String>,
    pub pod_identity: PodIdentityData,
    pub pod_identity_agent: Option<AgentStatus>,
    /// Things that went wrong while collecting but did not stop it.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// IAM last-accessed reports of the roles in scope, once audited.
    #[serde(default)]
    pub last_accessed: Vec<RoleReport>,
    /// The roles' trust policies (`GetRole`), for `doctor`.
    #[serde(default)]
    pub roles: Vec<RoleDetails>,
    /// The OIDC providers registered in the cluster account's IAM (`None` when they could not be read).
    #[serde(default)]
    pub oidc_providers: Option<Vec<String>>,
    /// Observed usage of the roles in scope (`snapshot --usage cloudtrail`), attributed for this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<crate::usage::Usage>,
}

/// What `GetRole` says of a role: its trust policy, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDetails {
    pub role_arn: String,
    /// The trust policy document, decoded JSON text.
    pub trust_policy: Option<String>,
    pub error: Option<ReportError>,
}

/// How finely IAM reports last access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Granularity {
    Service,
    Action,
}

/// One role's IAM data: `GetRole` plus the service-last-accessed report, as collected (no judgement yet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleReport {
    pub role_arn: String,
    pub granularity: Granularity,
    /// When IAM produced the report (the job's completion), or when the error happened.
    pub fetched_at: Timestamp,
    pub role_last_used: Option<Timestamp>,
    pub role_last_used_region: Option<String>,
    #[serde(default)]
    pub services: Vec<ServiceAccess>,
    /// Why there is no report: the problem code and what to do.
    pub error: Option<ReportError>,
}

/// One service the role's policies allow, and when the role last used it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccess {
    pub namespace: String,
    pub name: String,
    pub last_authenticated: Option<Timestamp>,
    pub last_authenticated_region: Option<String>,
    /// Per-action data, for the services IAM tracks at action level (action granularity only).
    pub tracked_actions: Option<Vec<TrackedAction>>,
}

/// A tracked action (`s3:CreateBucket`) and when it was last used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackedAction {
    pub action: String,
    pub last_accessed: Option<Timestamp>,
}

/// A per-role failure, coded with SPEC section 6.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportError {
    pub code: ProblemCode,
    pub message: String,
}

/// Several clusters' snapshots in one file (`snapshot --context A --context B`, `--all-contexts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetSnapshot {
    pub api_version: String,
    pub kind: String,
    pub snapshots: Vec<Snapshot>,
}

impl Snapshot {
    /// An empty snapshot, taken now.
    pub fn new(cluster: ClusterInfo, scope: Scope) -> Self {
        Snapshot {
            api_version: API_VERSION.to_string(),
            kind: "Snapshot".to_string(),
            taken_at: Timestamp::now(),
            cluster,
            scope,
            service_accounts: Vec::new(),
            pods: Vec::new(),
            owners: Vec::new(),
            unlisted_kinds: Vec::new(),
            pod_identity: PodIdentityData::default(),
            pod_identity_agent: None,
            warnings: Vec::new(),
            last_accessed: Vec::new(),
            roles: Vec::new(),
            oidc_providers: None,
            observed: None,
        }
    }
}

/// How a service account is bound to a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Irsa,
    PodIdentity,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Irsa => "irsa",
            Source::PodIdentity => "pod-identity",
        }
    }
}

/// A top-level workload: Deployment, StatefulSet, DaemonSet, CronJob, or an ownerless Job/ReplicaSet/Pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Workload {
    pub kind: String,
    pub name: String,
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// The problem codes of SPEC section 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemCode {
    MalformedRoleArn,
    RoleNotFound,
    CrossAccountRole,
    IrsaAndPodIdentity,
    AssociationWithoutServiceAccount,
    StalePodCredentials,
    HandSetCredentials,
    NoWorkloadIdentity,
    TrustPolicyMismatch,
    WildcardTrust,
    PodIdentityAgentMissing,
    AccessDenied,
    LastAccessedFailed,
    CrossPartitionRole,
    PodIdentityUnreadable,
    ClusterUnreachable,
}

/// How much a problem matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl ProblemCode {
    /// Errors break credentials; warnings are risky or untidy; info is worth knowing.
    pub fn severity(self) -> Severity {
        use ProblemCode::*;
        match self {
            MalformedRoleArn
            | RoleNotFound
            | TrustPolicyMismatch
            | PodIdentityAgentMissing
            | CrossPartitionRole
            | ClusterUnreachable => Severity::Error,
            CrossAccountRole | NoWorkloadIdentity => Severity::Info,
            _ => Severity::Warning,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::MalformedRoleArn => "malformed-role-arn",
            ProblemCode::RoleNotFound => "role-not-found",
            ProblemCode::CrossAccountRole => "cross-account-role",
            ProblemCode::IrsaAndPodIdentity => "irsa-and-pod-identity",
            ProblemCode::AssociationWithoutServiceAccount => "association-without-service-account",
            ProblemCode::StalePodCredentials => "stale-pod-credentials",
            ProblemCode::HandSetCredentials => "hand-set-credentials",
            ProblemCode::NoWorkloadIdentity => "no-workload-identity",
            ProblemCode::TrustPolicyMismatch => "trust-policy-mismatch",
            ProblemCode::WildcardTrust => "wildcard-trust",
            ProblemCode::PodIdentityAgentMissing => "pod-identity-agent-missing",
            ProblemCode::AccessDenied => "access-denied",
            ProblemCode::LastAccessedFailed => "last-accessed-failed",
            ProblemCode::CrossPartitionRole => "cross-partition-role",
            ProblemCode::PodIdentityUnreadable => "pod-identity-unreadable",
            ProblemCode::ClusterUnreachable => "cluster-unreachable",
        }
    }
}

/// Something wrong, naming the object and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub code: ProblemCode,
    pub namespace: Option<String>,
    /// `Kind/name`, e.g. `Deployment/web` or `ServiceAccount/api`.
    pub object: String,
    pub message: String,
    /// The EKS cluster, in runs over several clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

impl Problem {
    /// The order problems are listed in: by namespace, object, then code.
    pub fn sort_key(&self) -> (&Option<String>, &str, ProblemCode) {
        (&self.namespace, &self.object, self.code)
    }
}

/// The role of a binding whose role could not be read (Pod Identity credentials on pods while the
/// associations could not be listed); serialised as `null`.
pub const UNKNOWN_ROLE: &str = "";

/// One (namespace, service account, role, source) binding and who runs under it (contract v2, SPEC 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    pub namespace: String,
    pub service_account: String,
    /// [`UNKNOWN_ROLE`] (JSON `null`) when the role could not be read.
    #[serde(serialize_with = "role_or_null", deserialize_with = "role_from_null")]
    pub role_arn: String,
    pub source: Source,
    pub target_role_arn: Option<String>,
    /// Someone set this binding up (annotation or association); false when only running pods still carry it.
    pub configured: bool,
    /// The mechanism the running pods use, else the one new pods would get.
    pub effective: bool,
    /// Configured: every workload of the service account (now or at the next restart). Otherwise: the
    /// workloads of the pods that carry the role.
    pub workloads: Vec<Workload>,
    /// Running (not completed) pods, on the same terms as `workloads`.
    pub pods: Vec<String>,
    /// The pods whose credentials come from this role and source right now.
    pub current_pods: Vec<String>,
    pub problems: Vec<Problem>,
    /// Completed pods (phase Succeeded or Failed) of the service account: shown, marked, never counted.
    #[serde(skip)]
    pub completed_pods: Vec<String>,
    /// IRSA token audience (`-o wide` only; not part of the JSON contract).
    #[serde(skip)]
    pub audience: Option<String>,
    /// IRSA token expiration in seconds (`-o wide` only; not part of the JSON contract).
    #[serde(skip)]
    pub token_expiration: Option<String>,
    /// The EKS cluster, in runs over several clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

fn role_or_null<S: serde::Serializer>(role: &str, s: S) -> Result<S::Ok, S::Error> {
    if role == UNKNOWN_ROLE { s.serialize_none() } else { s.serialize_str(role) }
}

fn role_from_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl Binding {
    /// Whether the role is known (see [`UNKNOWN_ROLE`]).
    pub fn role_known(&self) -> bool {
        self.role_arn != UNKNOWN_ROLE
    }
}

/// The `list` and `who-uses` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingList {
    pub api_version: String,
    pub kind: String,
    pub cluster: Option<String>,
    /// Every cluster in scope, in runs over several clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<Vec<String>>,
    pub items: Vec<Binding>,
    /// Problems that belong to no single binding (workloads without identity, a missing agent...).
    pub problems: Vec<Problem>,
}
