//! Who is bound to which role: IRSA from service-account annotations and pod env, Pod Identity from
//! associations; which binding is effective for which pods.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::creds::{PodCreds, pod_creds};
use super::owners::OwnerIndex;
use crate::model::{Association, PodInfo, Problem, ServiceAccountInfo, Snapshot, Source, Workload};

pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
pub const AUDIENCE_ANNOTATION: &str = "eks.amazonaws.com/audience";
pub const TOKEN_EXPIRATION_ANNOTATION: &str = "eks.amazonaws.com/token-expiration";

/// A binding's identity: namespace, service account, role ARN, source.
pub type Key<'a> = (&'a str, &'a str, &'a str, Source);

/// What a new pod of a service account would get from the current bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected<'a> {
    PodIdentity(&'a Association),
    Irsa(&'a str),
    Nothing,
}

impl<'a> Expected<'a> {
    /// The binding a new pod would run under.
    pub fn key(self, ns: &'a str, sa: &'a str) -> Option<Key<'a>> {
        match self {
            Expected::PodIdentity(a) => Some((ns, sa, a.role_arn.as_str(), Source::PodIdentity)),
            Expected::Irsa(role) => Some((ns, sa, role, Source::Irsa)),
            Expected::Nothing => None,
        }
    }
}

/// A binding being assembled.
#[derive(Debug, Default)]
pub struct Acc<'a> {
    pub pods: Vec<&'a PodInfo>,
    pub workloads: BTreeSet<Workload>,
    /// The service account's annotation names this role.
    pub annotated: bool,
    pub association: Option<&'a Association>,
    pub problems: Vec<Problem>,
}

/// A pod with what was worked out about it.
pub struct PodView<'a> {
    pub pod: &'a PodInfo,
    pub workload: Workload,
    pub creds: PodCreds<'a>,
}

/// The resolved cluster: bindings and the indexes the problem checks need.
pub struct Resolved<'a> {
    pub snap: &'a Snapshot,
    pub bindings: BTreeMap<Key<'a>, Acc<'a>>,
    pub pods: Vec<PodView<'a>>,
    pub service_accounts: HashMap<(&'a str, &'a str), &'a ServiceAccountInfo>,
    pub associations: HashMap<(&'a str, &'a str), &'a Association>,
}

impl<'a> Resolved<'a> {
    pub fn build(snap: &'a Snapshot) -> Self {
        let service_accounts: HashMap<_, _> =
            snap.service_accounts.iter().map(|sa| ((sa.namespace.as_str(), sa.name.as_str()), sa)).collect();
        let mut associations = HashMap::new();
        for a in &snap.pod_identity.associations {
            // EKS allows one association per service account; keep the first if a snapshot holds more.
            associations.entry((a.namespace.as_str(), a.service_account.as_str())).or_insert(a);
        }
        let mut bindings: BTreeMap<Key<'a>, Acc<'a>> = BTreeMap::new();
        for sa in &snap.service_accounts {
            if let Some(role) = sa.annotations.get(ROLE_ARN_ANNOTATION) {
                let key = (sa.namespace.as_str(), sa.name.as_str(), role.as_str(), Source::Irsa);
                bindings.entry(key).or_default().annotated = true;
            }
        }
        for a in associations.values() {
            let key = (a.namespace.as_str(), a.service_account.as_str(), a.role_arn.as_str(), Source::PodIdentity);
            bindings.entry(key).or_default().association = Some(a);
        }

        let owners = OwnerIndex::new(&snap.owners);
        let mut pods = Vec::with_capacity(snap.pods.len());
        for pod in &snap.pods {
            let (ns, sa) = (pod.namespace.as_str(), pod.service_account.as_str());
            let annotated = service_accounts.get(&(ns, sa)).and_then(|s| annotated_role(s));
            let creds = pod_creds(pod, annotated);
            let workload = owners.top_level(pod);
            let mut attach = |key: Key<'a>| {
                let acc = bindings.entry(key).or_default();
                acc.pods.push(pod);
                if !acc.workloads.contains(&workload) {
                    acc.workloads.insert(workload.clone());
                }
            };
            for used in &creds.irsa {
                attach((ns, sa, used.role, Source::Irsa));
            }
            if creds.pod_identity
                && let Some(a) = associations.get(&(ns, sa))
            {
                attach((ns, sa, a.role_arn.as_str(), Source::PodIdentity));
            }
            pods.push(PodView { pod, workload, creds });
        }
        Resolved { snap, bindings, pods, service_accounts, associations }
    }

    /// What a new pod of this service account would run as.
    pub fn expected(&self, ns: &str, sa: &str) -> Expected<'a> {
        if let Some(a) = self.associations.get(&(ns, sa)) {
            return Expected::PodIdentity(a);
        }
        match self.service_accounts.get(&(ns, sa)).and_then(|s| annotated_role(s)) {
            Some(role) => Expected::Irsa(role),
            None => Expected::Nothing,
        }
    }

    /// The cluster name for commands in messages.
    pub fn cluster_name(&self) -> &str {
        self.snap.cluster.name.as_deref().unwrap_or("CLUSTER")
    }
}

pub fn annotated_role(sa: &ServiceAccountInfo) -> Option<&str> {
    sa.annotations.get(ROLE_ARN_ANNOTATION).map(String::as_str)
}
