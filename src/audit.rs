//! The audit's judgement: merge last-accessed reports with the bindings and decide what is unused.
//! Pure: the reports are collected elsewhere (live, cached, or from a snapshot).

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::arn::RoleArn;
use crate::model::{API_VERSION, BindingList, ProblemCode, ReportError, RoleReport, Source, Workload};
use crate::usage::{Observed, Usage, User};

/// The `audit` document (SPEC section 3).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    pub api_version: String,
    pub kind: String,
    pub cluster: Option<String>,
    pub unused_days: u32,
    pub generated_at: Timestamp,
    pub roles: Vec<RoleAudit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    UnusedServices,
    UnusedRole,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::UnusedServices => "unused-services",
            Status::UnusedRole => "unused-role",
            Status::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UseState {
    Used,
    Stale,
    NeverUsed,
}

/// One role: how it is used, and by whom.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAudit {
    pub role_arn: String,
    pub role_last_used: Option<Timestamp>,
    pub status: Status,
    pub services: Vec<ServiceUse>,
    pub unused_services: Vec<String>,
    pub bindings: Vec<AuditBinding>,
    pub error: Option<ReportError>,
    /// What CloudTrail saw of the role (`--usage cloudtrail`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observed>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceUse {
    pub namespace: String,
    pub name: String,
    pub last_authenticated: Option<Timestamp>,
    pub state: UseState,
    /// Tracked actions never used or stale (`s3:CreateBucket`); only with `--granularity action`.
    pub unused_actions: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditBinding {
    pub namespace: String,
    pub service_account: String,
    pub source: Source,
    pub workloads: Vec<Workload>,
    /// The actions this service account called with the role, sorted (`--usage cloudtrail`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<String>>,
    /// The EKS cluster, in runs over several clusters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// The `audit --suggest-policy` document: per role with unused services, a narrower draft of each of its
/// permission policies. Read-only: nothing is changed in IAM.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySuggestionList {
    pub api_version: String,
    pub kind: String,
    pub cluster: Option<String>,
    pub unused_days: u32,
    pub generated_at: Timestamp,
    pub items: Vec<RoleSuggestion>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleSuggestion {
    pub role_arn: String,
    pub unused_services: Vec<String>,
    pub unused_actions: Vec<String>,
    pub drafts: Vec<crate::policy::Draft>,
    pub error: Option<ReportError>,
    /// With observed usage: each draft narrowed further to the actions CloudTrail saw called.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_drafts: Option<Vec<crate::policy::observed::ObservedDraft>>,
    /// With observed usage, for a role whose service accounts call different actions: one set of drafts per
    /// service account, to give each its own role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<Vec<SplitProposal>>,
    /// Actions only callers that are no service account here used (another cluster, an older session):
    /// a split would take them away from those callers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub called_by_others: Vec<String>,
}

/// One service account's share of a split role.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SplitProposal {
    pub namespace: String,
    pub service_account: String,
    pub actions: Vec<String>,
    pub drafts: Vec<crate::policy::observed::ObservedDraft>,
}

impl RoleAudit {
    /// Whether the role holds permissions nobody used: the roles `--suggest-policy` drafts for.
    pub fn has_unused(&self) -> bool {
        self.error.is_none() && matches!(self.status, Status::UnusedServices | Status::UnusedRole)
    }

    /// The role's service accounts: those bound to it here, and any other CloudTrail saw call it; sorted.
    pub fn users(&self) -> Vec<User> {
        let observed = self.observed.iter().flat_map(|o| o.actions.iter().flat_map(|a| a.users.iter().cloned()));
        let bound = self.bindings.iter().map(|b| User::new(&b.namespace, &b.service_account, b.cluster.as_deref()));
        observed.chain(bound).collect::<std::collections::BTreeSet<_>>().into_iter().collect()
    }

    /// The tracked actions never used or stale, across services.
    pub fn unused_actions(&self) -> Vec<String> {
        self.services.iter().flat_map(|s| s.unused_actions.iter().flatten().cloned()).collect()
    }
}

/// Every role bound in the list (role ARNs and Pod Identity target roles), with the bindings that use it.
/// A role shared by several service accounts is one entry.
pub fn roles_in(list: &BindingList) -> BTreeMap<String, Vec<AuditBinding>> {
    let mut roles: BTreeMap<String, Vec<AuditBinding>> = BTreeMap::new();
    for b in list.items.iter().filter(|b| b.role_known()) {
        let binding = AuditBinding {
            namespace: b.namespace.clone(),
            service_account: b.service_account.clone(),
            source: b.source,
            workloads: b.workloads.clone(),
            actions: None,
            cluster: b.cluster.clone(),
        };
        for arn in std::iter::once(&b.role_arn).chain(&b.target_role_arn) {
            let entry = roles.entry(arn.clone()).or_default();
            if !entry.contains(&binding) {
                entry.push(binding.clone());
            }
        }
    }
    roles
}

/// The roles of a binding list that IAM can be asked about: well-formed role ARNs and Pod Identity targets.
pub fn auditable(list: &BindingList) -> Vec<RoleArn> {
    roles_in(list).keys().filter_map(|arn| arn.parse().ok()).collect()
}

/// Decides, for every role in the list, which services it holds but does not use. `now` is when the
/// data was collected (the snapshot's time offline), so a snapshot gives the answer it gave live.
pub fn audit(list: &BindingList, reports: &[RoleReport], unused_days: u32, now: Timestamp) -> AuditReport {
    let cutoff = now - SignedDuration::from_hours(24 * i64::from(unused_days));
    let by_arn: HashMap<&str, &RoleReport> = reports.iter().map(|r| (r.role_arn.as_str(), r)).collect();
    let roles = roles_in(list)
        .into_iter()
        .map(|(arn, bindings)| {
            let report = by_arn.get(arn.as_str()).copied();
            judge(arn, bindings, report, cutoff)
        })
        .collect();
    AuditReport {
        api_version: API_VERSION.to_string(),
        kind: "AuditReport".to_string(),
        cluster: list.cluster.clone(),
        unused_days,
        generated_at: now,
        roles,
    }
}

fn judge(arn: String, bindings: Vec<AuditBinding>, report: Option<&RoleReport>, cutoff: Timestamp) -> RoleAudit {
    let unknown = |error: ReportError| RoleAudit {
        role_arn: arn.clone(),
        role_last_used: report.and_then(|r| r.role_last_used),
        status: Status::Unknown,
        services: Vec::new(),
        unused_services: Vec::new(),
        bindings: bindings.clone(),
        error: Some(error),
        observed: None,
    };
    if let Err(e) = arn.parse::<RoleArn>() {
        return unknown(ReportError { code: ProblemCode::MalformedRoleArn, message: e.to_string() });
    }
    let Some(report) = report else {
        return unknown(ReportError {
            code: ProblemCode::LastAccessedFailed,
            message: "no last-accessed data was collected for this role; run the audit live, or take the snapshot \
                      with AWS credentials"
                .into(),
        });
    };
    if let Some(error) = &report.error {
        return unknown(error.clone());
    }
    let fresh = |t: Option<Timestamp>| match t {
        None => UseState::NeverUsed,
        Some(t) if t < cutoff => UseState::Stale,
        Some(_) => UseState::Used,
    };
    let services: Vec<ServiceUse> = report
        .services
        .iter()
        .map(|s| ServiceUse {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            last_authenticated: s.last_authenticated,
            state: fresh(s.last_authenticated),
            unused_actions: s.tracked_actions.as_ref().map(|actions| {
                actions.iter().filter(|a| fresh(a.last_accessed) != UseState::Used).map(|a| a.action.clone()).collect()
            }),
        })
        .collect();
    let mut unused_services: Vec<String> =
        services.iter().filter(|s| s.state != UseState::Used).map(|s| s.namespace.clone()).collect();
    unused_services.sort();
    // The role was used at the latest of every piece of evidence: RoleLastUsed lags, is regional and is
    // absent for roles unused in IAM's tracking window, while a service authenticated yesterday is a use.
    let last_used = last_use(report);
    let status = if fresh(last_used) != UseState::Used {
        Status::UnusedRole
    } else if !unused_services.is_empty() {
        Status::UnusedServices
    } else {
        Status::Ok
    };
    RoleAudit {
        role_arn: arn,
        role_last_used: last_used,
        status,
        services,
        unused_services,
        bindings,
        error: None,
        observed: None,
    }
}

/// Adds observed usage to the report: each role's `observed`, each binding's `actions`. An observed call is
/// evidence like any other: a service called within the window is used, and so is the role, whatever the
/// (lagging) last-accessed data says.
pub fn with_usage(report: &mut AuditReport, usage: &Usage) {
    let cutoff = report.generated_at - SignedDuration::from_hours(24 * i64::from(report.unused_days));
    for role in &mut report.roles {
        let Some(role_usage) = usage.roles.iter().find(|r| r.role_arn == role.role_arn) else { continue };
        let observed = Observed::of(usage, role_usage);
        for b in &mut role.bindings {
            let user = User::new(&b.namespace, &b.service_account, b.cluster.as_deref());
            b.actions = Some(observed.actions_of(&user));
        }
        if role.error.is_none() {
            let fresh_services: Vec<String> = observed
                .actions
                .iter()
                .filter(|a| a.last_used.is_some_and(|t| t >= cutoff))
                .filter_map(|a| a.action.split_once(':').map(|(s, _)| s.to_ascii_lowercase()))
                .collect();
            for s in &mut role.services {
                if fresh_services.contains(&s.namespace) {
                    s.state = UseState::Used;
                }
            }
            role.unused_services.retain(|s| !fresh_services.contains(s));
            role.role_last_used = role.role_last_used.max(observed.last_used());
            if role.role_last_used.is_some_and(|t| t >= cutoff) {
                role.status = if role.unused_services.is_empty() { Status::Ok } else { Status::UnusedServices };
            }
        }
        role.observed = Some(observed);
    }
}

/// The latest evidence of use in a report: `RoleLastUsed`, any service's last authentication, any tracked
/// action's last access.
fn last_use(report: &RoleReport) -> Option<Timestamp> {
    let services = report.services.iter().flat_map(|s| {
        let actions = s.tracked_actions.iter().flatten().filter_map(|a| a.last_accessed);
        s.last_authenticated.into_iter().chain(actions)
    });
    report.role_last_used.into_iter().chain(services).max()
}

#[cfg(test)]
mod tests;
