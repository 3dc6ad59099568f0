//! Pods up to their top-level workload through controller references.

use std::collections::HashMap;

use crate::model::{OwnerInfo, OwnerRef, PodInfo, Workload};

/// Looks up the owner of ReplicaSets and Jobs, borrowing from the snapshot.
pub struct OwnerIndex<'a> {
    owners: HashMap<(&'a str, &'a str, &'a str), Option<&'a OwnerRef>>,
}

impl<'a> OwnerIndex<'a> {
    pub fn new(owners: &'a [OwnerInfo]) -> Self {
        let owners = owners
            .iter()
            .map(|o| ((o.kind.as_str(), o.namespace.as_str(), o.name.as_str()), o.owner.as_ref()))
            .collect();
        OwnerIndex { owners }
    }

    /// The top-level workload of a pod: ReplicaSet -> Deployment, Job -> CronJob, any other controller
    /// as it is, and the pod itself when nothing owns it. A ReplicaSet or Job that could not be read
    /// (deleted, or not listable) stands as the top level.
    pub fn top_level(&self, pod: &PodInfo) -> Workload {
        let Some(owner) = &pod.owner else {
            return Workload { kind: "Pod".to_string(), name: pod.name.clone() };
        };
        if matches!(owner.kind.as_str(), "ReplicaSet" | "Job")
            && let Some(Some(parent)) =
                self.owners.get(&(owner.kind.as_str(), pod.namespace.as_str(), owner.name.as_str()))
        {
            return Workload { kind: parent.kind.clone(), name: parent.name.clone() };
        }
        Workload { kind: owner.kind.clone(), name: owner.name.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(owner: Option<(&str, &str)>) -> PodInfo {
        PodInfo {
            namespace: "ns".into(),
            name: "p".into(),
            service_account: "default".into(),
            owner: owner.map(|(k, n)| OwnerRef { kind: k.into(), name: n.into() }),
            labels: Default::default(),
            containers: vec![],
            irsa_token_volume: false,
            host_network: false,
            fargate: false,
            phase: None,
        }
    }

    fn owner(kind: &str, name: &str, parent: Option<(&str, &str)>) -> OwnerInfo {
        OwnerInfo {
            kind: kind.into(),
            namespace: "ns".into(),
            name: name.into(),
            owner: parent.map(|(k, n)| OwnerRef { kind: k.into(), name: n.into() }),
        }
    }

    #[test]
    fn walks_replicasets_and_jobs_up_one_level() {
        let owners = vec![
            owner("ReplicaSet", "api-7d9f4", Some(("Deployment", "api"))),
            owner("ReplicaSet", "bare-rs", None),
            owner("Job", "nightly-289", Some(("CronJob", "nightly"))),
            owner("Job", "migrate", None),
        ];
        let idx = OwnerIndex::new(&owners);
        let top = |o| idx.top_level(&pod(o)).to_string();
        assert_eq!(top(Some(("ReplicaSet", "api-7d9f4"))), "Deployment/api");
        assert_eq!(top(Some(("ReplicaSet", "bare-rs"))), "ReplicaSet/bare-rs");
        assert_eq!(top(Some(("Job", "nightly-289"))), "CronJob/nightly");
        assert_eq!(top(Some(("Job", "migrate"))), "Job/migrate");
        assert_eq!(top(Some(("StatefulSet", "db"))), "StatefulSet/db");
        assert_eq!(top(Some(("DaemonSet", "agent"))), "DaemonSet/agent");
        assert_eq!(top(None), "Pod/p");
        // A ReplicaSet we could not read (deleted, or listing forbidden) is the top level we know.
        assert_eq!(top(Some(("ReplicaSet", "gone-123"))), "ReplicaSet/gone-123");
    }
}
