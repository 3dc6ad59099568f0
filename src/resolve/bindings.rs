//! Who is bound to which role: IRSA from service-account annotations and pod env, Pod Identity from
//! associations; which binding is effective for which pods.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::creds::{PodCreds, pod_creds};
use super::owners::OwnerIndex;
use crate::model::{Association, PodInfo, Problem, ServiceAccountInfo, Snapshot, Source, UNKNOWN_ROLE, Workload};

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
    /// Configured: every running pod of the service account; otherwise the pods that carry the role.
    pub pods: Vec<&'a PodInfo>,
    /// The running pods whose credentials come from this role and source now.
    pub current: Vec<&'a PodInfo>,
    /// Completed pods of the service account (configured bindings only).
    pub completed: Vec<&'a PodInfo>,
    pub workloads: BTreeSet<Workload>,
    /// The service account's annotation names this role.
    pub annotated: bool,
    pub association: Option<&'a Association>,
    pub problems: Vec<Problem>,
}

impl Acc<'_> {
    /// Someone set this binding up: an annotation or an association.
    pub fn configured(&self) -> bool {
        self.annotated || self.association.is_some()
    }

    fn add_workload(&mut self, workload: &Workload) {
        if !self.workloads.contains(workload) {
            self.workloads.insert(workload.clone());
        }
    }
}

/// A running pod with what was worked out about it.
pub struct PodView<'a> {
    pub pod: &'a PodInfo,
    pub workload: Workload,
    pub creds: PodCreds<'a>,
}

/// The resolved cluster: bindings and the indexes the problem checks need.
pub struct Resolved<'a> {
    pub snap: &'a Snapshot,
    pub bindings: BTreeMap<Key<'a>, Acc<'a>>,
    /// Running pods only: completed ones hold no credentials.
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
        let mut r = Resolved { snap, bindings: BTreeMap::new(), pods: Vec::new(), service_accounts, associations };
        for sa in &snap.service_accounts {
            if let Some(role) = annotated_role(sa) {
                let key = (sa.namespace.as_str(), sa.name.as_str(), role, Source::Irsa);
                r.bindings.entry(key).or_default().annotated = true;
            }
        }
        for a in r.associations.values() {
            let key = (a.namespace.as_str(), a.service_account.as_str(), a.role_arn.as_str(), Source::PodIdentity);
            r.bindings.entry(key).or_default().association = Some(a);
        }

        let owners = OwnerIndex::new(&snap.owners);
        r.pods.reserve(snap.pods.len());
        for pod in &snap.pods {
            let (ns, sa) = (pod.namespace.as_str(), pod.service_account.as_str());
            let workload = owners.top_level(pod);
            // The configured binding a new pod of this service account gets: the association, else the
            // annotation (the webhook injects only Pod Identity where both exist, so the annotation's role
            // is then held only by the pods that carry it).
            let configured = r.expected(ns, sa).key(ns, sa);
            if pod.completed() {
                // A finished pod holds nothing; a CronJob's next run will hold the role again.
                if let Some(key) = configured {
                    let acc = r.bindings.entry(key).or_default();
                    acc.completed.push(pod);
                    if workload.kind == "CronJob" {
                        acc.add_workload(&workload);
                    }
                }
                continue;
            }
            let annotated = r.service_accounts.get(&(ns, sa)).and_then(|s| annotated_role(s));
            let creds = pod_creds(pod, annotated);
            let mut carried: Vec<Key<'a>> = creds.irsa.iter().map(|used| (ns, sa, used.role, Source::Irsa)).collect();
            if creds.pod_identity {
                match r.associations.get(&(ns, sa)) {
                    Some(a) => carried.push((ns, sa, a.role_arn.as_str(), Source::PodIdentity)),
                    // The associations could not be read: the pod keeps its place, under a role we cannot name.
                    None if !snap.pod_identity.collected => carried.push((ns, sa, UNKNOWN_ROLE, Source::PodIdentity)),
                    None => {}
                }
            }
            // The configured binding holds every pod of its service account; a pod already counted there
            // because it carries that very role is not added twice.
            let configured = configured.filter(|key| !carried.contains(key));
            for key in carried {
                let acc = r.bindings.entry(key).or_default();
                acc.current.push(pod);
                acc.pods.push(pod);
                acc.add_workload(&workload);
            }
            if let Some(key) = configured {
                let acc = r.bindings.entry(key).or_default();
                acc.pods.push(pod);
                acc.add_workload(&workload);
            }
            r.pods.push(PodView { pod, workload, creds });
        }
        r
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

/// The service account's IRSA role. The webhook takes the annotation verbatim and ignores an empty one.
pub fn annotated_role(sa: &ServiceAccountInfo) -> Option<&str> {
    sa.annotations.get(ROLE_ARN_ANNOTATION).map(String::as_str).filter(|role| !role.is_empty())
}
