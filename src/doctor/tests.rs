//! `doctor` over hand-built snapshots: trust verdicts become problems on the right binding.

use serde_json::json;

use super::*;
use crate::model::{ClusterInfo, ReportError, Scope};

const ISSUER: &str = "https://oidc.eks.us-west-2.amazonaws.com/id/ABC";
const HOST: &str = "oidc.eks.us-west-2.amazonaws.com/id/ABC";
const API: &str = "arn:aws:iam::111122223333:role/api";
const PI: &str = "arn:aws:iam::111122223333:role/pi";

fn snap() -> Snapshot {
    let cluster = ClusterInfo {
        name: Some("prod".into()),
        region: Some("us-west-2".into()),
        account: Some("111122223333".into()),
        oidc_issuer: Some(ISSUER.into()),
    };
    let mut s = Snapshot::new(cluster, Scope::default());
    s.pod_identity.collected = true;
    s.oidc_providers = Some(vec![format!("arn:aws:iam::111122223333:oidc-provider/{HOST}")]);
    s.service_accounts.push(crate::model::ServiceAccountInfo {
        namespace: "pay".into(),
        name: "api".into(),
        annotations: [("eks.amazonaws.com/role-arn".to_string(), API.to_string())].into(),
    });
    s
}

fn irsa_trust(sub: &str) -> String {
    json!({"Statement": [{"Effect": "Allow", "Principal": {"Federated": format!("arn:aws:iam::111122223333:oidc-provider/{HOST}")},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringLike": {format!("{HOST}:sub"): sub, format!("{HOST}:aud"): "sts.amazonaws.com"}}}]})
    .to_string()
}

fn details(arn: &str, trust: Option<String>, error: Option<ProblemCode>) -> RoleDetails {
    RoleDetails {
        role_arn: arn.into(),
        trust_policy: trust,
        error: error.map(|code| ReportError { code, message: format!("{code:?}") }),
    }
}

fn run(s: &Snapshot) -> DoctorReport {
    doctor(&crate::resolve::resolve(s), s)
}

fn codes(r: &DoctorReport) -> Vec<&'static str> {
    r.problems.iter().map(|f| f.problem.code.as_str()).collect()
}

#[test]
fn a_tight_trust_policy_is_clean() {
    let mut s = snap();
    s.roles.push(details(API, Some(irsa_trust("system:serviceaccount:pay:api")), None));
    let r = run(&s);
    assert!(r.problems.is_empty(), "{r:#?}");
    assert!(!r.has(Severity::Info));
}

#[test]
fn wildcard_and_mismatch_and_missing_role() {
    let mut s = snap();
    s.roles.push(details(API, Some(irsa_trust("system:serviceaccount:pay:*")), None));
    let r = run(&s);
    assert_eq!(codes(&r), ["wildcard-trust"]);
    assert_eq!(r.problems[0].severity, Severity::Warning);
    assert_eq!(r.problems[0].problem.object, "ServiceAccount/api");
    assert!(r.has(Severity::Warning) && !r.has(Severity::Error));

    s.roles[0] = details(API, Some(irsa_trust("system:serviceaccount:pay:worker")), None);
    let r = run(&s);
    assert_eq!(codes(&r), ["trust-policy-mismatch"]);
    assert!(r.problems[0].problem.message.contains("system:serviceaccount:pay:api"), "names the fix");
    assert_eq!(r.summary.errors, 1);

    s.roles[0] = details(API, None, Some(ProblemCode::RoleNotFound));
    assert_eq!(codes(&run(&s)), ["role-not-found"]);
}

#[test]
fn unregistered_oidc_provider_is_one_cluster_problem() {
    let mut s = snap();
    s.roles.push(details(API, Some(irsa_trust("system:serviceaccount:pay:api")), None));
    s.oidc_providers = Some(vec![]);
    let r = run(&s);
    assert_eq!(codes(&r), ["trust-policy-mismatch"]);
    assert_eq!(r.problems[0].problem.object, "Cluster/prod");
    assert!(r.problems[0].problem.message.contains("eksctl utils associate-iam-oidc-provider --cluster prod"));
}

#[test]
fn pod_identity_trust_without_tag_session() {
    let mut s = snap();
    s.service_accounts.push(crate::model::ServiceAccountInfo {
        namespace: "pay".into(),
        name: "pi".into(),
        annotations: Default::default(),
    });
    s.pod_identity.associations.push(crate::model::Association {
        association_id: "a-1".into(),
        namespace: "pay".into(),
        service_account: "pi".into(),
        role_arn: PI.into(),
        target_role_arn: None,
        owner_arn: None,
        disable_session_tags: false,
    });
    let trust = json!({"Statement": {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": "sts:AssumeRole"}});
    s.roles.push(details(API, Some(irsa_trust("system:serviceaccount:pay:api")), None));
    s.roles.push(details(PI, Some(trust.to_string()), None));
    let r = run(&s);
    assert_eq!(codes(&r), ["trust-policy-mismatch"]);
    assert!(r.problems[0].problem.message.contains("sts:TagSession"));
    let doc = serde_json::to_value(&r).unwrap();
    assert_eq!(doc["kind"], "DoctorReport");
    assert_eq!(doc["problems"][0]["severity"], "error");
    assert_eq!(doc["problems"][0]["code"], "trust-policy-mismatch");
    assert_eq!(doc["summary"]["errors"], 1);
}

#[test]
fn a_target_role_that_does_not_trust_the_association_role() {
    const TARGET: &str = "arn:aws:iam::111122223333:role/target";
    let mut s = snap();
    s.service_accounts.push(crate::model::ServiceAccountInfo {
        namespace: "pay".into(),
        name: "etl".into(),
        annotations: Default::default(),
    });
    s.pod_identity.associations.push(crate::model::Association {
        association_id: "a-2".into(),
        namespace: "pay".into(),
        service_account: "etl".into(),
        role_arn: PI.into(),
        target_role_arn: Some(TARGET.into()),
        owner_arn: None,
        disable_session_tags: false,
    });
    let pods_trust = json!({"Statement": {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}});
    s.roles.push(details(API, Some(irsa_trust("system:serviceaccount:pay:api")), None));
    s.roles.push(details(PI, Some(pods_trust.to_string()), None));
    let only_assume = json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": PI}, "Action": "sts:AssumeRole"}});
    s.roles.push(details(TARGET, Some(only_assume.to_string()), None));
    let list = crate::resolve::resolve(&s);
    assert!(crate::audit::auditable(&list).iter().any(|r| r.to_string() == TARGET), "target roles are read too");
    let r = doctor(&list, &s);
    assert_eq!(codes(&r), ["trust-policy-mismatch"]);
    assert!(r.problems[0].problem.message.contains("target role arn:aws:iam::111122223333:role/target"));
    assert!(r.problems[0].problem.message.contains("TagSession"));
}
