//! The audit's judgement over hand-built reports.

use super::*;
use crate::model::{Binding, Granularity, ServiceAccess, TrackedAction};

const A: &str = "arn:aws:iam::111122223333:role/a";
const T: &str = "arn:aws:iam::444455556666:role/target";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn binding(ns: &str, sa: &str, role: &str, target: Option<&str>) -> Binding {
    Binding {
        cluster: None,
        namespace: ns.into(),
        service_account: sa.into(),
        role_arn: role.into(),
        source: if target.is_some() { Source::PodIdentity } else { Source::Irsa },
        target_role_arn: target.map(str::to_string),
        configured: true,
        effective: true,
        workloads: vec![Workload { kind: "Deployment".into(), name: sa.into() }],
        pods: vec![],
        current_pods: vec![],
        problems: vec![],
        completed_pods: vec![],
        audience: None,
        token_expiration: None,
    }
}

fn list(items: Vec<Binding>) -> BindingList {
    BindingList {
        clusters: None,
        api_version: API_VERSION.into(),
        kind: "BindingList".into(),
        cluster: Some("c".into()),
        items,
        problems: vec![],
    }
}

fn service(ns: &str, last: Option<&str>) -> ServiceAccess {
    ServiceAccess {
        namespace: ns.into(),
        name: ns.to_uppercase(),
        last_authenticated: last.map(ts),
        last_authenticated_region: None,
        tracked_actions: None,
    }
}

fn report(arn: &str, last_used: Option<&str>, services: Vec<ServiceAccess>) -> RoleReport {
    RoleReport {
        role_arn: arn.into(),
        granularity: Granularity::Service,
        fetched_at: ts("2026-11-22T10:00:00Z"),
        role_last_used: last_used.map(ts),
        role_last_used_region: None,
        services,
        error: None,
    }
}

const NOW: &str = "2026-11-22T10:00:00Z";

#[test]
fn used_stale_and_never_used_services() {
    let l = list(vec![binding("ns", "a", A, None)]);
    let r = report(
        A,
        Some("2026-11-21T00:00:00Z"),
        vec![
            service("s3", Some("2026-11-20T00:00:00Z")),
            service("sqs", Some("2026-07-01T00:00:00Z")),
            service("kms", None),
        ],
    );
    let out = audit(&l, std::slice::from_ref(&r), 90, ts(NOW));
    let role = &out.roles[0];
    assert_eq!(role.status, Status::UnusedServices);
    assert_eq!(role.unused_services, ["kms", "sqs"], "sorted, stale and never used");
    let states: Vec<UseState> = role.services.iter().map(|s| s.state).collect();
    assert_eq!(states, [UseState::Used, UseState::Stale, UseState::NeverUsed]);
    // A wider window makes the July use count.
    let wide = audit(&l, &[r], 180, ts(NOW));
    assert_eq!(wide.roles[0].unused_services, ["kms"]);
    assert_eq!(out.generated_at, ts(NOW));
}

#[test]
fn unused_role_and_ok() {
    let l = list(vec![binding("ns", "a", A, None)]);
    let idle = report(A, Some("2026-01-01T00:00:00Z"), vec![service("s3", Some("2026-01-01T00:00:00Z"))]);
    assert_eq!(audit(&l, &[idle], 90, ts(NOW)).roles[0].status, Status::UnusedRole);
    let never = report(A, None, vec![service("s3", None)]);
    assert_eq!(audit(&l, &[never], 90, ts(NOW)).roles[0].status, Status::UnusedRole);
    let busy = report(A, Some("2026-11-22T09:00:00Z"), vec![service("s3", Some("2026-11-22T09:00:00Z"))]);
    let out = audit(&l, &[busy], 90, ts(NOW));
    assert_eq!((out.roles[0].status, out.roles[0].unused_services.len()), (Status::Ok, 0));
}

#[test]
fn a_role_is_used_at_its_latest_evidence() {
    let l = list(vec![binding("ns", "a", A, None)]);
    // No RoleLastUsed (IAM omits it outside its window, lags, and is regional), but S3 was used yesterday.
    let r = report(A, None, vec![service("s3", Some("2026-11-21T00:00:00Z")), service("kms", None)]);
    let role = &audit(&l, &[r], 90, ts(NOW)).roles[0];
    assert_eq!(role.status, Status::UnusedServices, "a service used yesterday makes the role used");
    assert_eq!(role.role_last_used, Some(ts("2026-11-21T00:00:00Z")));
    assert_eq!(role.unused_services, ["kms"]);
    // A stale RoleLastUsed with a fresh tracked action: used at the action's time.
    let mut s3 = service("s3", Some("2026-01-01T00:00:00Z"));
    s3.tracked_actions =
        Some(vec![TrackedAction { action: "s3:GetObject".into(), last_accessed: Some(ts("2026-11-20T00:00:00Z")) }]);
    let r = report(A, Some("2026-01-01T00:00:00Z"), vec![s3]);
    let role = &audit(&l, &[r], 90, ts(NOW)).roles[0];
    assert_ne!(role.status, Status::UnusedRole);
    assert_eq!(role.role_last_used, Some(ts("2026-11-20T00:00:00Z")));
}

#[test]
fn a_shared_role_is_one_entry_and_targets_are_audited_too() {
    let l = list(vec![binding("a", "one", A, None), binding("b", "two", A, None), binding("c", "chain", A, Some(T))]);
    let roles = roles_in(&l);
    assert_eq!(roles.keys().collect::<Vec<_>>(), [A, T]);
    assert_eq!(roles[A].len(), 3);
    assert_eq!(roles[T].len(), 1);
    let out = audit(&l, &[], 90, ts(NOW));
    assert!(out.roles.iter().all(|r| r.status == Status::Unknown), "no data: unknown, with a reason");
    assert_eq!(out.roles[0].error.as_ref().unwrap().code, ProblemCode::LastAccessedFailed);
}

#[test]
fn errors_and_malformed_arns_are_unknown_with_the_reason() {
    let l = list(vec![binding("ns", "a", A, None), binding("ns", "bad", "not-an-arn", None)]);
    let mut r = report(A, None, vec![]);
    r.error = Some(ReportError { code: ProblemCode::AccessDenied, message: "iam:GetRole".into() });
    let out = audit(&l, &[r], 90, ts(NOW));
    let codes: Vec<_> = out.roles.iter().map(|r| (r.status, r.error.as_ref().unwrap().code)).collect();
    assert_eq!(codes, [(Status::Unknown, ProblemCode::AccessDenied), (Status::Unknown, ProblemCode::MalformedRoleArn)]);
    assert_eq!(auditable(&l).len(), 1, "a malformed ARN is never sent to IAM");
}

#[test]
fn tracked_actions_never_used_or_stale() {
    let l = list(vec![binding("ns", "a", A, None)]);
    let mut s3 = service("s3", Some("2026-11-20T00:00:00Z"));
    s3.tracked_actions = Some(vec![
        TrackedAction { action: "s3:CreateBucket".into(), last_accessed: None },
        TrackedAction { action: "s3:PutBucketPolicy".into(), last_accessed: Some(ts("2026-01-01T00:00:00Z")) },
        TrackedAction { action: "s3:ListAllMyBuckets".into(), last_accessed: Some(ts("2026-11-20T00:00:00Z")) },
    ]);
    let out = audit(
        &l,
        &[report(A, Some("2026-11-20T00:00:00Z"), vec![s3, service("sqs", Some("2026-11-20T00:00:00Z"))])],
        90,
        ts(NOW),
    );
    let services = &out.roles[0].services;
    assert_eq!(
        services[0].unused_actions.as_deref(),
        Some(&["s3:CreateBucket".to_string(), "s3:PutBucketPolicy".to_string()][..])
    );
    assert_eq!(services[1].unused_actions, None, "not tracked per action");
    assert_eq!(out.roles[0].status, Status::Ok, "actions do not change the service-level status");
}

#[test]
fn an_observed_call_is_evidence_of_use() {
    use crate::usage::{Count, RoleUsage, Usage, User, UserUsage};
    let now = ts("2026-11-22T10:00:00Z");
    // Access Advisor (lagging) says the role and kms went unused for 200 days; CloudTrail saw kms yesterday.
    let r = report(
        A,
        Some("2026-05-06T10:00:00Z"),
        vec![service("kms", Some("2026-05-06T10:00:00Z")), service("sqs", None)],
    );
    let mut audited = audit(&list(vec![binding("shop", "api", A, None)]), &[r], 90, now);
    assert_eq!(audited.roles[0].status, Status::UnusedRole);
    let yesterday = Some(ts("2026-11-21T10:00:00Z"));
    let count = Count { allowed: 4, denied: 0, last_allowed: yesterday, last_denied: None };
    let usage = Usage {
        source: "cloudtrail".into(),
        roles: vec![RoleUsage {
            role_arn: A.into(),
            by_user: vec![UserUsage {
                user: Some(User::new("shop", "api", None)),
                actions: [("kms:Decrypt".to_string(), count)].into_iter().collect(),
            }],
        }],
        ..Usage::default()
    };
    with_usage(&mut audited, &usage);
    let role = &audited.roles[0];
    assert_eq!(role.status, Status::UnusedServices, "used yesterday, whatever the lagging data says");
    assert_eq!(role.unused_services, ["sqs"], "kms was called");
    assert_eq!(role.role_last_used, yesterday);
    assert_eq!(role.bindings[0].actions.as_deref(), Some(&["kms:Decrypt".to_string()][..]));
    assert_eq!(role.observed.as_ref().unwrap().events, 4);
}
