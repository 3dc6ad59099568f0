//! The problems that need no IAM call (SPEC section 6). One function per code; each returns its
//! findings, attached to a binding (`Some(key)`) or to the cluster (`None`).

use std::collections::BTreeMap;

use super::bindings::{Acc, Expected, Key, ROLE_ARN_ANNOTATION, Resolved, annotated_role};
use crate::arn::{RoleArn, partition_of_region};
use crate::collect::kube::POD_IDENTITY_AGENT;
use crate::model::{Problem, ProblemCode, Source, UNKNOWN_ROLE, Workload};

/// A problem and the binding it belongs to, if any.
pub type Finding<'a> = (Option<Key<'a>>, Problem);

/// Every check of this module, in the order they run.
pub fn all<'a>(r: &Resolved<'a>) -> Vec<Finding<'a>> {
    [
        malformed_role_arn(r),
        cross_partition_role(r),
        cross_account_role(r),
        pod_identity_unreadable(r),
        irsa_and_pod_identity(r),
        association_without_service_account(r),
        stale_pod_credentials(r),
        hand_set_credentials(r),
        no_workload_identity(r),
        pod_identity_agent_missing(r),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn problem(code: ProblemCode, namespace: &str, object: String, message: String) -> Problem {
    Problem { cluster: None, code, namespace: Some(namespace.to_string()), object, message }
}

/// Where a binding's role ARN was written, as the object to fix.
fn origin(r: &Resolved<'_>, key: &Key<'_>) -> String {
    let acc = &r.bindings[key];
    match (acc.annotated, acc.association, acc.workloads.first()) {
        (true, _, _) => format!("ServiceAccount/{}", key.1),
        (_, Some(a), _) => format!("PodIdentityAssociation/{}", a.association_id),
        (_, _, Some(w)) => w.to_string(),
        _ => format!("ServiceAccount/{}", key.1),
    }
}

pub fn malformed_role_arn<'a>(r: &Resolved<'a>) -> Vec<Finding<'a>> {
    let mut out = Vec::new();
    for (key, acc) in r.bindings.iter().filter(|(k, _)| k.2 != UNKNOWN_ROLE) {
        let target = acc.association.and_then(|a| a.target_role_arn.as_deref());
        for arn in std::iter::once(key.2).chain(target) {
            if let Err(e) = arn.parse::<RoleArn>() {
                let fix = match key.3 {
                    Source::Irsa if acc.annotated => "fix the eks.amazonaws.com/role-arn annotation",
                    Source::Irsa => "fix the AWS_ROLE_ARN the pods carry",
                    Source::PodIdentity => "recreate the Pod Identity association with a valid role ARN",
                };
                let msg = format!("{e}; {fix} (the pods cannot get credentials until then)");
                out.push((Some(*key), problem(ProblemCode::MalformedRoleArn, key.0, origin(r, key), msg)));
            }
        }
    }
    out
}

/// The roles of a binding (its role and any Pod Identity target) that parse, with their text.
fn parsed_roles<'a>(key: &Key<'a>, acc: &Acc<'a>) -> Vec<(&'a str, RoleArn)> {
    let target = acc.association.and_then(|a| a.target_role_arn.as_deref());
    std::iter::once(key.2).chain(target).filter_map(|arn| Some((arn, arn.parse::<RoleArn>().ok()?))).collect()
}

/// The cluster's partition, from its region, when known.
fn cluster_partition(r: &Resolved<'_>) -> Option<&'static str> {
    r.snap.cluster.region.as_deref().map(partition_of_region)
}

pub fn cross_partition_role<'a>(r: &Resolved<'a>) -> Vec<Finding<'a>> {
    let Some(partition) = cluster_partition(r) else {
        return Vec::new();
    };
    let region = r.snap.cluster.region.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    for (key, acc) in &r.bindings {
        for (arn, parsed) in parsed_roles(key, acc) {
            if parsed.partition != partition {
                let msg = format!(
                    "role {arn} is in partition {}, but cluster {} runs in {partition} (region {region}): no credentials \
                     from this cluster can assume it, and IAM in {partition} cannot be asked about it; create the role \
                     in {partition} (arn:{partition}:iam::{}:role/{}) and bind that one",
                    parsed.partition,
                    r.cluster_name(),
                    parsed.account,
                    parsed.name
                );
                out.push((Some(*key), problem(ProblemCode::CrossPartitionRole, key.0, origin(r, key), msg)));
            }
        }
    }
    out
}

pub fn pod_identity_unreadable<'a>(r: &Resolved<'a>) -> Vec<Finding<'a>> {
    let reason = r.snap.pod_identity.skipped_reason.as_deref().unwrap_or("they were not collected");
    r.bindings
        .iter()
        .filter(|(k, _)| k.2 == UNKNOWN_ROLE)
        .map(|(key, acc)| {
            let msg = format!(
                "{} running pod(s) of service account {} carry Pod Identity credentials, but the Pod Identity \
                 associations could not be read ({reason}), so their role is unknown; fix that and run again",
                acc.current.len(),
                key.1
            );
            (Some(*key), problem(ProblemCode::PodIdentityUnreadable, key.0, format!("ServiceAccount/{}", key.1), msg))
        })
        .collect()
}

pub fn cross_account_role<'a>(r: &Resolved<'a>) -> Vec<Finding<'a>> {
    let Some(cluster_account) = r.snap.cluster.account.as_deref() else {
        return Vec::new();
    };
    let partition = cluster_partition(r);
    let mut out = Vec::new();
    for (key, acc) in &r.bindings {
        for (arn, parsed) in parsed_roles(key, acc) {
            // Another partition is its own, graver problem.
            if partition.is_some_and(|p| p != parsed.partition) {
                continue;
            }
            if parsed.account != cluster_account {
                let msg = format!(
                    "role {arn} is in account {}, not in the cluster's account {cluster_account}: this works when the \
                     role trusts this cluster, but reading its last-accessed data needs credentials in account {}",
                    parsed.account, parsed.account
                );
                out.push((Some(*key), problem(ProblemCode::CrossAccountRole, key.0, origin(r, key), msg)));
            }
        }
    }
    out
}

pub fn irsa_and_pod_identity<'a>(r: &Resolved<'a>) -> Vec<Finding<'a>> {
    let mut out = Vec::new();
    for (&(ns, sa), assoc) in &r.associations {
        let Some(irsa_role) = r.service_accounts.get(&(ns, sa)).and_then(|s| annotated_role(s)) else {
            continue;
        };
        let still_irsa = r
            .bindings
            .iter()
            .filter(|(k, _)| k.0 == ns && k.1 == sa && k.3 == Source::Irsa)
            .map(|(_, acc)| acc.pods.len())
            .sum::<usize>();
        let msg = format!(
            "service account {sa} has both the IRSA annotation ({irsa_role}) and Pod Identity association {} ({}): new \
             pods get Pod Identity, {still_irsa} running pod(s) still use IRSA because web identity wins in AWS SDKs; \
             remove the annotation or the association so the binding is unambiguous",
            assoc.association_id, assoc.role_arn
        );
        let p = problem(ProblemCode::IrsaAndPodIdentity, ns, format!("ServiceAccount/{sa}"), msg);
        out.push((Some((ns, sa, irsa_role, Source::Irsa)), p.clone()));
        out.push((Some((ns, sa, assoc.role_arn.as_str(), Source::PodIdentity)), p));
    }
    out
}

pub fn association_without_service_account<'a>(r: &Resolved<'a>) -> Vec<Finding<'a>> {
    let mut out = Vec::new();
    for (&(ns, sa), assoc) in &r.associations {
        if r.service_accounts.contains_key(&(ns, sa)) {
            continue;
        }
        let msg = format!(
            "Pod Identity association {} binds role {} to service account {ns}/{sa}, which does not exist: create the \
             service account, or delete the association (aws eks delete-pod-identity-association --cluster-name {} \
             --association-id {})",
            assoc.association_id,
            assoc.role_arn,
            r.cluster_name(),
            assoc.association_id
        );
        let key = (ns, sa, assoc.role_arn.as_str(), Source::PodIdentity);
        out.push((
            Some(key),
            problem(ProblemCode::AssociationWithoutServiceAccount, ns, format!("ServiceAccount/{sa}"), msg),
        ));
    }
    out
}

/// How to recreate a workload's pods. Pods of a service account that no longer exists cannot be
/// recreated (admission refuses them), so that comes first.
fn restart_hint(r: &Resolved<'_>, ns: &str, sa: &str, w: &Workload) -> String {
    if !r.service_accounts.contains_key(&(ns, sa)) {
        return format!(
            "service account {sa} no longer exists, so new pods of {w} would be refused: recreate it with the binding \
             it should have (or point {w} at another service account), then restart {w}"
        );
    }
    match w.kind.as_str() {
        "Deployment" | "StatefulSet" | "DaemonSet" => {
            format!("kubectl rollout restart {}/{} -n {ns}", w.kind.to_lowercase(), w.name)
        }
        "CronJob" => "the next scheduled run picks up the change".to_string(),
        _ => "delete and recreate the pods".to_string(),
    }
}

/// Counts pods per (binding, workload, detail) so one problem covers a whole workload.
type Tally<'a> = BTreeMap<(Option<Key<'a>>, &'a str, &'a str, Workload, String), usize>;

pub fn stale_pod_credentials<'a>(r: &Resolved<'a>) -> Vec<Finding<'a>> {
    let mut tally: Tally<'a> = BTreeMap::new();
    for v in &r.pods {
        let (ns, sa) = (v.pod.namespace.as_str(), v.pod.service_account.as_str());
        let expected = r.expected(ns, sa);
        let now = match expected {
            Expected::PodIdentity(a) => format!("gives Pod Identity role {}", a.role_arn),
            Expected::Irsa(role) => format!("gives IRSA role {role}"),
            Expected::Nothing => "gives no role".to_string(),
        };
        for used in v.creds.irsa.iter().filter(|u| !u.hand_set) {
            if expected != Expected::Irsa(used.role) {
                let detail = format!("still run as IRSA role {} but service account {sa} now {now}", used.role);
                let key = Some((ns, sa, used.role, Source::Irsa));
                *tally.entry((key, ns, sa, v.workload.clone(), detail)).or_default() += 1;
            }
        }
        if v.creds.pod_identity && r.snap.pod_identity.collected && !r.associations.contains_key(&(ns, sa)) {
            let detail = format!("carry Pod Identity credentials but service account {sa} has no association now");
            *tally.entry((None, ns, sa, v.workload.clone(), detail)).or_default() += 1;
        }
        if v.creds.is_none() && v.creds.inert_roles.is_empty() && expected != Expected::Nothing {
            let detail =
                format!("have no AWS credentials: they were created before service account {sa} was bound to its role");
            *tally.entry((expected.key(ns, sa), ns, sa, v.workload.clone(), detail)).or_default() += 1;
        }
    }
    tally
        .into_iter()
        .map(|((key, ns, sa, w, detail), n)| {
            let msg = format!(
                "{n} pod(s) of {w} {detail}; restart them to pick up the current binding: {}",
                restart_hint(r, ns, sa, &w)
            );
            (key, problem(ProblemCode::StalePodCredentials, ns, w.to_string(), msg))
        })
        .collect()
}

pub fn hand_set_credentials<'a>(r: &Resolved<'a>) -> Vec<Finding<'a>> {
    let mut tally: Tally<'a> = BTreeMap::new();
    for v in &r.pods {
        let (ns, sa) = (v.pod.namespace.as_str(), v.pod.service_account.as_str());
        for used in v.creds.irsa.iter().filter(|u| u.hand_set) {
            let detail = format!(
                "set AWS_ROLE_ARN={} in their spec rather than through service account {sa}'s eks.amazonaws.com/role-arn \
                 annotation; move the role to the service account so it is visible and changeable in one place",
                used.role
            );
            *tally.entry((Some((ns, sa, used.role, Source::Irsa)), ns, sa, v.workload.clone(), detail)).or_default() +=
                1;
        }
        for (container, role) in &v.creds.inert_roles {
            let detail = format!(
                "set AWS_ROLE_ARN={role} in container {container} without AWS_WEB_IDENTITY_TOKEN_FILE: the webhook then \
                 injects no web identity into that container and no AWS SDK assumes the role; remove the variable and \
                 bind the role to service account {sa} with the eks.amazonaws.com/role-arn annotation"
            );
            *tally.entry((None, ns, sa, v.workload.clone(), detail)).or_default() += 1;
        }
        if !v.creds.static_keys.is_empty() {
            let detail = format!(
                "carry long-lived access keys (AWS_ACCESS_KEY_ID in container {}), which AWS SDKs use before IRSA or Pod \
                 Identity; replace them with a role bound to service account {sa}",
                v.creds.static_keys.join(", ")
            );
            *tally.entry((None, ns, sa, v.workload.clone(), detail)).or_default() += 1;
        }
    }
    tally
        .into_iter()
        .map(|((key, ns, _, w, detail), n)| {
            (key, problem(ProblemCode::HandSetCredentials, ns, w.to_string(), format!("{n} pod(s) of {w} {detail}")))
        })
        .collect()
}

pub fn no_workload_identity<'a>(r: &Resolved<'a>) -> Vec<Finding<'a>> {
    // (pods, of which on the host network) per workload.
    // (pods, of which on the host network) per workload, and whether their service account's IRSA annotation is empty.
    let mut tally: BTreeMap<(&str, Workload), (usize, usize, bool)> = BTreeMap::new();
    for v in &r.pods {
        let (ns, sa) = (v.pod.namespace.as_str(), v.pod.service_account.as_str());
        // Fargate pods have no IMDS, so no fallback role; pods with a binding they missed are stale, not unbound.
        // Pods with static keys in env use those, not the node role (hand-set-credentials covers them), and
        // the Pod Identity agent runs on the node role by design.
        let static_keys = !v.creds.static_keys.is_empty();
        let agent = ns == "kube-system" && v.workload.kind == "DaemonSet" && v.workload.name == POD_IDENTITY_AGENT;
        if v.pod.fargate || static_keys || agent || !v.creds.is_none() || r.expected(ns, sa) != Expected::Nothing {
            continue;
        }
        let empty = r
            .service_accounts
            .get(&(ns, sa))
            .is_some_and(|s| s.annotations.get(ROLE_ARN_ANNOTATION).is_some_and(|v| v.is_empty()));
        let t = tally.entry((ns, v.workload.clone())).or_default();
        t.0 += 1;
        t.1 += usize::from(v.pod.host_network);
        t.2 |= empty;
    }
    tally
        .into_iter()
        .map(|((ns, w), (n, host, empty))| {
            let host_note = if host > 0 { " (they use the host network, so no IMDS hop limit stops them)" } else { "" };
            let empty_note = if empty {
                " (their service account's eks.amazonaws.com/role-arn annotation is empty, which the webhook ignores)"
            } else {
                ""
            };
            let msg = format!(
                "{n} pod(s) of {w} have no workload identity and fall back to the node's instance role through IMDS{host_note}{empty_note}; \
                 bind a role to their service account with IRSA or Pod Identity, or block IMDS if they need no AWS access"
            );
            (None, problem(ProblemCode::NoWorkloadIdentity, ns, w.to_string(), msg))
        })
        .collect()
}

pub fn pod_identity_agent_missing<'a>(r: &Resolved<'a>) -> Vec<Finding<'a>> {
    let Some(agent) = &r.snap.pod_identity_agent else {
        return Vec::new();
    };
    let uses_pod_identity = r.bindings.keys().any(|k| k.3 == Source::PodIdentity);
    if !uses_pod_identity || (agent.found && agent.ready > 0) {
        return Vec::new();
    }
    let state = if agent.found {
        format!("has {} of {} pods ready", agent.ready, agent.desired)
    } else {
        "is not installed".to_string()
    };
    let msg = format!(
        "Pod Identity associations exist but the eks-pod-identity-agent DaemonSet {state}, so pods cannot get their \
         credentials; install the add-on: aws eks create-addon --cluster-name {} --addon-name eks-pod-identity-agent",
        r.cluster_name()
    );
    vec![(
        None,
        problem(ProblemCode::PodIdentityAgentMissing, "kube-system", "DaemonSet/eks-pod-identity-agent".into(), msg),
    )]
}
