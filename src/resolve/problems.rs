//! The problems that need no IAM call (SPEC section 6). One function per code; each returns its
//! findings, attached to a binding (`Some(key)`) or to the cluster (`None`).

use std::collections::BTreeMap;

use super::bindings::{Expected, Key, Resolved, annotated_role};
use crate::arn::RoleArn;
use crate::collect::kube::POD_IDENTITY_AGENT;
use crate::model::{Problem, ProblemCode, Source, Workload};

/// A problem and the binding it belongs to, if any.
pub type Finding<'a> = (Option<Key<'a>>, Problem);

/// Every check of this module, in the order they run.
pub fn all<'a>(r: &Resolved<'a>) -> Vec<Finding<'a>> {
    [
        malformed_role_arn(r),
        cross_account_role(r),
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
    Problem { code, namespace: Some(namespace.to_string()), object, message }
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
    for (key, acc) in &r.bindings {
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

pub fn cross_account_role<'a>(r: &Resolved<'a>) -> Vec<Finding<'a>> {
    let Some(cluster_account) = r.snap.cluster.account.as_deref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, acc) in &r.bindings {
        let target = acc.association.and_then(|a| a.target_role_arn.as_deref());
        for arn in std::iter::once(key.2).chain(target) {
            let Ok(parsed) = arn.parse::<RoleArn>() else { continue };
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

/// How to recreate a workload's pods.
fn restart_hint(ns: &str, w: &Workload) -> String {
    match w.kind.as_str() {
        "Deployment" | "StatefulSet" | "DaemonSet" => {
            format!("kubectl rollout restart {}/{} -n {ns}", w.kind.to_lowercase(), w.name)
        }
        "CronJob" => "the next scheduled run picks up the change".to_string(),
        _ => "delete and recreate the pods".to_string(),
    }
}

/// Counts pods per (binding, workload, detail) so one problem covers a whole workload.
type Tally<'a> = BTreeMap<(Option<Key<'a>>, &'a str, Workload, String), usize>;

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
                *tally.entry((Some((ns, sa, used.role, Source::Irsa)), ns, v.workload.clone(), detail)).or_default() +=
                    1;
            }
        }
        if v.creds.pod_identity && r.snap.pod_identity.collected && !r.associations.contains_key(&(ns, sa)) {
            let detail = format!("carry Pod Identity credentials but service account {sa} has no association now");
            *tally.entry((None, ns, v.workload.clone(), detail)).or_default() += 1;
        }
        if v.creds.is_none() && expected != Expected::Nothing {
            let detail =
                format!("have no AWS credentials: they were created before service account {sa} was bound to its role");
            *tally.entry((expected.key(ns, sa), ns, v.workload.clone(), detail)).or_default() += 1;
        }
    }
    tally
        .into_iter()
        .map(|((key, ns, w, detail), n)| {
            let msg = format!(
                "{n} pod(s) of {w} {detail}; restart them to pick up the current binding: {}",
                restart_hint(ns, &w)
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
            *tally.entry((Some((ns, sa, used.role, Source::Irsa)), ns, v.workload.clone(), detail)).or_default() += 1;
        }
        if !v.creds.static_keys.is_empty() {
            let detail = format!(
                "carry long-lived access keys (AWS_ACCESS_KEY_ID in container {}), which AWS SDKs use before IRSA or Pod \
                 Identity; replace them with a role bound to service account {sa}",
                v.creds.static_keys.join(", ")
            );
            *tally.entry((None, ns, v.workload.clone(), detail)).or_default() += 1;
        }
    }
    tally
        .into_iter()
        .map(|((key, ns, w, detail), n)| {
            (key, problem(ProblemCode::HandSetCredentials, ns, w.to_string(), format!("{n} pod(s) of {w} {detail}")))
        })
        .collect()
}

pub fn no_workload_identity<'a>(r: &Resolved<'a>) -> Vec<Finding<'a>> {
    // (pods, of which on the host network) per workload.
    let mut tally: BTreeMap<(&str, Workload), (usize, usize)> = BTreeMap::new();
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
        let t = tally.entry((ns, v.workload.clone())).or_default();
        t.0 += 1;
        t.1 += usize::from(v.pod.host_network);
    }
    tally
        .into_iter()
        .map(|((ns, w), (n, host))| {
            let host_note = if host > 0 { " (they use the host network, so no IMDS hop limit stops them)" } else { "" };
            let msg = format!(
                "{n} pod(s) of {w} have no workload identity and fall back to the node's instance role through IMDS{host_note}; \
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
