//! `doctor`: checks that each binding's wiring can work and is tight: the role exists, its trust policy
//! lets exactly this binding in, the cluster's OIDC provider is registered, plus everything `list` finds.

pub mod trust;

use std::collections::HashMap;

use serde::Serialize;

use crate::model::{API_VERSION, BindingList, Problem, ProblemCode, RoleDetails, Severity, Snapshot, Source};
use trust::Trust;

/// The `doctor` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DoctorReport {
    pub api_version: String,
    pub kind: String,
    pub cluster: Option<String>,
    pub summary: Summary,
    pub problems: Vec<Finding>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub errors: usize,
    pub warnings: usize,
    pub info: usize,
}

/// A problem with its severity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    #[serde(flatten)]
    pub problem: Problem,
}

impl DoctorReport {
    /// Whether any finding is at `level` or worse.
    pub fn has(&self, level: Severity) -> bool {
        self.problems.iter().any(|f| f.severity <= level)
    }
}

/// The reports of several clusters as one: every finding names its cluster, and clusters that could not be
/// read are findings too.
pub fn merge(reports: Vec<(Option<String>, DoctorReport)>, unreachable: &[Problem]) -> DoctorReport {
    let mut merged = DoctorReport {
        api_version: API_VERSION.to_string(),
        kind: "DoctorReport".to_string(),
        cluster: None,
        summary: Summary::default(),
        problems: Vec::new(),
    };
    let unreachable = unreachable.iter().map(|p| Finding { severity: p.code.severity(), problem: p.clone() });
    let found = reports.into_iter().flat_map(|(cluster, report)| {
        report.problems.into_iter().map(move |mut f| {
            f.problem.cluster = cluster.clone();
            f
        })
    });
    merged.problems = unreachable.chain(found).collect();
    merged.problems.sort_by(|a, b| {
        (a.severity, &a.problem.cluster, a.problem.sort_key()).cmp(&(
            b.severity,
            &b.problem.cluster,
            b.problem.sort_key(),
        ))
    });
    for f in &merged.problems {
        match f.severity {
            Severity::Error => merged.summary.errors += 1,
            Severity::Warning => merged.summary.warnings += 1,
            Severity::Info => merged.summary.info += 1,
        }
    }
    merged
}

/// Every check over the resolved bindings and the IAM data in the snapshot.
pub fn doctor(list: &BindingList, snap: &Snapshot) -> DoctorReport {
    let mut problems: Vec<Problem> = list.items.iter().flat_map(|b| b.problems.iter().cloned()).collect();
    problems.extend(list.problems.iter().cloned());
    problems.extend(oidc_provider_missing(list, snap));
    problems.extend(role_wiring(list, snap));
    problems.sort_by(|a, b| (a.code.severity(), a.sort_key()).cmp(&(b.code.severity(), b.sort_key())));
    problems.dedup();
    let mut summary = Summary::default();
    let problems: Vec<Finding> = problems
        .into_iter()
        .map(|problem| {
            let severity = problem.code.severity();
            match severity {
                Severity::Error => summary.errors += 1,
                Severity::Warning => summary.warnings += 1,
                Severity::Info => summary.info += 1,
            }
            Finding { severity, problem }
        })
        .collect();
    DoctorReport {
        api_version: API_VERSION.to_string(),
        kind: "DoctorReport".to_string(),
        cluster: list.cluster.clone(),
        summary,
        problems,
    }
}

/// The issuer's host and path: what IRSA trust policies and provider ARNs name.
fn issuer_host(issuer: &str) -> &str {
    issuer.trim_start_matches("https://").trim_end_matches('/')
}

/// IRSA cannot work at all when the cluster's OIDC provider is not registered in IAM.
fn oidc_provider_missing(list: &BindingList, snap: &Snapshot) -> Option<Problem> {
    let (Some(issuer), Some(account), Some(providers)) =
        (&snap.cluster.oidc_issuer, &snap.cluster.account, &snap.oidc_providers)
    else {
        return None;
    };
    let uses_irsa = list.items.iter().any(|b| b.source == Source::Irsa);
    let host = issuer_host(issuer);
    let registered = providers.iter().any(|arn| arn.ends_with(&format!(":iam::{account}:oidc-provider/{host}")));
    let cluster = snap.cluster.name.as_deref().unwrap_or("CLUSTER");
    (uses_irsa && !registered).then(|| Problem {
        cluster: None,
        code: ProblemCode::TrustPolicyMismatch,
        namespace: None,
        object: format!("Cluster/{cluster}"),
        message: format!(
            "the cluster's OIDC provider {host} is not registered in IAM account {account}, so no IRSA role can be \
             assumed; register it: eksctl utils associate-iam-oidc-provider --cluster {cluster} --approve"
        ),
    })
}

/// Per binding: the role exists and its trust policy admits exactly this binding.
fn role_wiring(list: &BindingList, snap: &Snapshot) -> Vec<Problem> {
    let details: HashMap<&str, &RoleDetails> = snap.roles.iter().map(|r| (r.role_arn.as_str(), r)).collect();
    let mut out = Vec::new();
    for b in &list.items {
        let Some(role) = details.get(b.role_arn.as_str()) else { continue };
        let object = format!("ServiceAccount/{}", b.service_account);
        let problem = |code, message| Problem {
            cluster: None,
            code,
            namespace: Some(b.namespace.clone()),
            object: object.clone(),
            message,
        };
        if let Some(e) = &role.error {
            // Cross-account and cross-partition roles are already reported by `list`; the rest say why the
            // check could not run.
            if !matches!(e.code, ProblemCode::CrossAccountRole | ProblemCode::CrossPartitionRole) {
                out.push(problem(
                    e.code,
                    format!(
                        "{}; service account {} is bound to it ({})",
                        e.message,
                        b.service_account,
                        b.source.as_str()
                    ),
                ));
            }
            continue;
        }
        let verdict = match b.source {
            Source::PodIdentity => trust::document(role).map(|doc| trust::pod_identity(&doc)),
            Source::Irsa => {
                trust::irsa_binding(role, snap.cluster.oidc_issuer.as_deref(), &b.namespace, &b.service_account)
            }
        };
        let Some(verdict) = verdict else { continue };
        let fix = match b.source {
            Source::Irsa => format!(
                "allow sts:AssumeRoleWithWebIdentity from oidc-provider/{} with StringEquals on sub \
                 system:serviceaccount:{}:{} and aud sts.amazonaws.com",
                snap.cluster.oidc_issuer.as_deref().map(issuer_host).unwrap_or("ISSUER"),
                b.namespace,
                b.service_account
            ),
            Source::PodIdentity => "allow sts:AssumeRole and sts:TagSession to Service pods.eks.amazonaws.com".into(),
        };
        if let Some(target) = b.target_role_arn.as_deref() {
            out.extend(chain_problem(b, target, &details));
        }
        match verdict {
            Trust::Ok => {}
            Trust::Mismatch(why) => out.push(problem(
                ProblemCode::TrustPolicyMismatch,
                format!(
                    "role {} does not let service account {} assume it: {why}; {fix}",
                    b.role_arn, b.service_account
                ),
            )),
            Trust::TooWide(why) => out.push(problem(
                ProblemCode::WildcardTrust,
                format!("role {} trusts more than service account {}: {why}; {fix}", b.role_arn, b.service_account),
            )),
        }
    }
    out
}

/// A Pod Identity target role that does not let the association's role chain into it.
fn chain_problem(b: &crate::model::Binding, target: &str, details: &HashMap<&str, &RoleDetails>) -> Option<Problem> {
    let doc = trust::document(details.get(target)?)?;
    match trust::chained(&doc, &b.role_arn) {
        Trust::Ok | Trust::TooWide(_) => None,
        Trust::Mismatch(why) => Some(Problem {
            cluster: None,
            code: ProblemCode::TrustPolicyMismatch,
            namespace: Some(b.namespace.clone()),
            object: format!("ServiceAccount/{}", b.service_account),
            message: format!(
                "Pod Identity target role {target} does not let the association's role {} chain into it: {why}; allow \
                 sts:AssumeRole and sts:TagSession to that role in the target's trust policy",
                b.role_arn
            ),
        }),
    }
}

#[cfg(test)]
mod tests;
