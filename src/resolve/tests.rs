//! Resolution over hand-built snapshots: one scenario per behaviour.

use super::*;
use crate::model::*;
use crate::resolve::creds::{CONTAINER_CREDS_ENV, ROLE_ARN_ENV, STATIC_KEY_ENV, TOKEN_FILE_ENV};

const A: &str = "arn:aws:iam::111122223333:role/app-a";
const B: &str = "arn:aws:iam::111122223333:role/app-b";
const OTHER_ACCOUNT: &str = "arn:aws:iam::444455556666:role/shared";

fn snap() -> Snapshot {
    let cluster = ClusterInfo {
        name: Some("prod".into()),
        region: Some("eu-west-1".into()),
        account: Some("111122223333".into()),
        oidc_issuer: None,
    };
    let mut s = Snapshot::new(cluster, Scope::default());
    s.pod_identity.collected = true;
    s
}

fn sa(s: &mut Snapshot, ns: &str, name: &str, role: Option<&str>) {
    let annotations = role.map(|r| (bindings::ROLE_ARN_ANNOTATION.to_string(), r.to_string())).into_iter().collect();
    s.service_accounts.push(ServiceAccountInfo { namespace: ns.into(), name: name.into(), annotations });
}

enum Env<'a> {
    Irsa(&'a str),
    PodIdentity,
    None,
}

fn pod(s: &mut Snapshot, ns: &str, name: &str, sa: &str, rs: &str, env: Env) {
    let vars: Vec<(&str, &str)> = match env {
        Env::Irsa(role) => {
            vec![(ROLE_ARN_ENV, role), (TOKEN_FILE_ENV, "/var/run/secrets/eks.amazonaws.com/serviceaccount/token")]
        }
        Env::PodIdentity => vec![(CONTAINER_CREDS_ENV, "http://169.254.170.23/v1/credentials")],
        Env::None => vec![],
    };
    let irsa = vars.iter().any(|(k, _)| *k == ROLE_ARN_ENV);
    s.pods.push(PodInfo {
        namespace: ns.into(),
        name: name.into(),
        service_account: sa.into(),
        owner: Some(OwnerRef { kind: "ReplicaSet".into(), name: rs.into() }),
        labels: [("app".to_string(), rs.to_string())].into(),
        containers: vec![ContainerInfo {
            name: "app".into(),
            env: vars.into_iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))).collect(),
        }],
        irsa_token_volume: irsa,
        host_network: false,
        fargate: false,
        phase: Some("Running".into()),
    });
}

fn deployment(s: &mut Snapshot, ns: &str, rs: &str, deploy: &str) {
    s.owners.push(OwnerInfo {
        kind: "ReplicaSet".into(),
        namespace: ns.into(),
        name: rs.into(),
        owner: Some(OwnerRef { kind: "Deployment".into(), name: deploy.into() }),
    });
}

fn association(s: &mut Snapshot, ns: &str, sa: &str, role: &str, target: Option<&str>) {
    s.pod_identity.associations.push(Association {
        association_id: format!("a-{sa}"),
        namespace: ns.into(),
        service_account: sa.into(),
        role_arn: role.into(),
        target_role_arn: target.map(str::to_string),
        owner_arn: None,
        disable_session_tags: false,
    });
}

fn codes(b: &Binding) -> Vec<&'static str> {
    b.problems.iter().map(|p| p.code.as_str()).collect()
}

#[test]
fn irsa_binding_with_its_workload_and_pods() {
    let mut s = snap();
    sa(&mut s, "pay", "api", Some(A));
    deployment(&mut s, "pay", "api-7d9f4", "api");
    pod(&mut s, "pay", "api-7d9f4-b", "api", "api-7d9f4", Env::Irsa(A));
    pod(&mut s, "pay", "api-7d9f4-a", "api", "api-7d9f4", Env::Irsa(A));
    let list = resolve(&s);
    assert_eq!(list.items.len(), 1);
    let b = &list.items[0];
    assert_eq!((b.role_arn.as_str(), b.source, b.effective), (A, Source::Irsa, true));
    assert_eq!(b.workloads, vec![Workload { kind: "Deployment".into(), name: "api".into() }]);
    assert_eq!(b.pods, vec!["api-7d9f4-a", "api-7d9f4-b"]);
    assert!(b.problems.is_empty() && list.problems.is_empty());
    assert_eq!(b.audience.as_deref(), Some("sts.amazonaws.com"));
    assert_eq!(list.cluster.as_deref(), Some("prod"));
}

#[test]
fn annotation_changed_after_pods_were_created_is_stale_and_both_roles_are_listed() {
    let mut s = snap();
    sa(&mut s, "pay", "api", Some(B));
    deployment(&mut s, "pay", "api-1", "api");
    pod(&mut s, "pay", "api-1-x", "api", "api-1", Env::Irsa(A));
    let list = resolve(&s);
    let view: Vec<_> = list
        .items
        .iter()
        .map(|b| (b.role_arn.as_str(), b.configured, b.pods.len(), b.current_pods.len(), b.effective))
        .collect();
    // A: only the running pod still carries it. B: configured, and the pod gets it at its next restart.
    assert_eq!(view, vec![(A, false, 1, 1, true), (B, true, 1, 0, true)]);
    assert_eq!(list.items[1].workloads, vec![Workload { kind: "Deployment".into(), name: "api".into() }]);
    assert_eq!(codes(&list.items[0]), vec!["stale-pod-credentials"]);
    let msg = &list.items[0].problems[0].message;
    assert!(msg.contains("kubectl rollout restart deployment/api -n pay") && msg.contains(B), "{msg}");
    assert_eq!(list.items[0].problems[0].object, "Deployment/api");
    // who-uses the old role still finds the pod that runs as it.
    let who = who_uses(list, &RoleQuery::parse("app-a").unwrap());
    assert_eq!(who.items.len(), 1);
    assert_eq!(who.items[0].pods, vec!["api-1-x"]);
}

#[test]
fn pods_created_before_the_annotation_have_no_credentials_and_are_stale() {
    let mut s = snap();
    sa(&mut s, "pay", "api", Some(A));
    pod(&mut s, "pay", "api-1-x", "api", "api-1", Env::None);
    let list = resolve(&s);
    assert_eq!(codes(&list.items[0]), vec!["stale-pod-credentials"]);
    assert!(list.problems.is_empty(), "not reported as no-workload-identity too: {:?}", list.problems);
}

#[test]
fn both_mechanisms_on_one_service_account() {
    let mut s = snap();
    sa(&mut s, "pay", "api", Some(A));
    association(&mut s, "pay", "api", B, None);
    deployment(&mut s, "pay", "api-1", "api");
    deployment(&mut s, "pay", "api-2", "api");
    pod(&mut s, "pay", "old", "api", "api-1", Env::Irsa(A));
    pod(&mut s, "pay", "new", "api", "api-2", Env::PodIdentity);
    let list = resolve(&s);
    let irsa = list.items.iter().find(|b| b.source == Source::Irsa).unwrap();
    let pi = list.items.iter().find(|b| b.source == Source::PodIdentity).unwrap();
    // New pods get Pod Identity, so the annotation's role is held only by the pod that carries it.
    assert_eq!(
        (irsa.pods.as_slice(), irsa.current_pods.as_slice(), irsa.effective),
        (&["old".to_string()][..], &["old".to_string()][..], true)
    );
    // The association's role: every pod of the service account, now or at its next restart.
    assert_eq!(
        (pi.pods.as_slice(), pi.current_pods.as_slice(), pi.effective),
        (&["new".to_string(), "old".to_string()][..], &["new".to_string()][..], true)
    );
    assert!(codes(irsa).contains(&"irsa-and-pod-identity") && codes(irsa).contains(&"stale-pod-credentials"));
    assert_eq!(codes(pi), vec!["irsa-and-pod-identity"]);
    assert!(pi.problems[0].message.contains("1 running pod(s) still use IRSA"));
}

#[test]
fn annotation_without_pods_is_inactive_when_an_association_takes_over() {
    let mut s = snap();
    sa(&mut s, "pay", "api", Some(A));
    association(&mut s, "pay", "api", B, None);
    let list = resolve(&s);
    let effective: Vec<_> = list.items.iter().map(|b| (b.source, b.effective)).collect();
    assert_eq!(effective, vec![(Source::Irsa, false), (Source::PodIdentity, true)]);
}

#[test]
fn pod_identity_target_role_and_cross_account() {
    let mut s = snap();
    sa(&mut s, "data", "etl", None);
    association(&mut s, "data", "etl", A, Some(OTHER_ACCOUNT));
    pod(&mut s, "data", "etl-1", "etl", "etl-rs", Env::PodIdentity);
    let list = resolve(&s);
    let b = &list.items[0];
    assert_eq!(b.target_role_arn.as_deref(), Some(OTHER_ACCOUNT));
    assert_eq!(codes(b), vec!["cross-account-role"]);
    assert!(b.problems[0].message.contains("444455556666"));
    // who-uses the target role finds the chaining binding.
    assert_eq!(who_uses(list, &RoleQuery::parse(OTHER_ACCOUNT).unwrap()).items.len(), 1);
}

#[test]
fn association_for_a_missing_service_account() {
    let mut s = snap();
    association(&mut s, "data", "ghost", A, None);
    let list = resolve(&s);
    assert_eq!(codes(&list.items[0]), vec!["association-without-service-account"]);
    assert!(list.items[0].problems[0].message.contains("aws eks delete-pod-identity-association --cluster-name prod"));
}

#[test]
fn malformed_annotation_is_reported_on_the_service_account() {
    let mut s = snap();
    sa(&mut s, "web", "front", Some("app-a"));
    let list = resolve(&s);
    let b = &list.items[0];
    assert_eq!(b.role_arn, "app-a");
    assert_eq!(codes(b), vec!["malformed-role-arn"]);
    assert_eq!(b.problems[0].object, "ServiceAccount/front");
}

#[test]
fn workloads_without_identity_fall_back_to_the_node_role_but_fargate_does_not() {
    let mut s = snap();
    sa(&mut s, "plain", "default", None);
    deployment(&mut s, "plain", "web-1", "web");
    pod(&mut s, "plain", "web-1-a", "default", "web-1", Env::None);
    pod(&mut s, "plain", "web-1-b", "default", "web-1", Env::None);
    pod(&mut s, "plain", "fg", "default", "fg-rs", Env::None);
    s.pods.last_mut().unwrap().fargate = true;
    let list = resolve(&s);
    assert!(list.items.is_empty());
    assert_eq!(list.problems.len(), 1);
    let p = &list.problems[0];
    assert_eq!((p.code, p.object.as_str()), (ProblemCode::NoWorkloadIdentity, "Deployment/web"));
    assert!(p.message.starts_with("2 pod(s)"));
}

#[test]
fn hand_set_role_and_static_keys() {
    let mut s = snap();
    sa(&mut s, "ops", "tool", None);
    pod(&mut s, "ops", "t", "tool", "t-rs", Env::Irsa(OTHER_ACCOUNT));
    s.pods[0].irsa_token_volume = false;
    s.pods[0].containers[0].env.insert(STATIC_KEY_ENV.into(), None);
    let list = resolve(&s);
    assert_eq!(codes(&list.items[0]), vec!["cross-account-role", "hand-set-credentials"]);
    assert_eq!(list.problems.len(), 1);
    assert_eq!(list.problems[0].code, ProblemCode::HandSetCredentials);
    assert!(list.problems[0].message.contains("AWS_ACCESS_KEY_ID in container app"));
}

#[test]
fn pod_identity_agent_missing_only_matters_with_associations() {
    let mut s = snap();
    s.pod_identity_agent = Some(AgentStatus { found: false, desired: 0, ready: 0 });
    assert!(resolve(&s).problems.is_empty());
    association(&mut s, "data", "etl", A, None);
    sa(&mut s, "data", "etl", None);
    let list = resolve(&s);
    assert_eq!(list.problems[0].code, ProblemCode::PodIdentityAgentMissing);
    s.pod_identity_agent = Some(AgentStatus { found: true, desired: 3, ready: 0 });
    assert!(resolve(&s).problems[0].message.contains("0 of 3 pods ready"));
    s.pod_identity_agent = Some(AgentStatus { found: true, desired: 3, ready: 3 });
    assert!(resolve(&s).problems.is_empty());
}

#[test]
fn pod_identity_env_without_association_is_stale_only_when_associations_were_read() {
    let mut s = snap();
    sa(&mut s, "data", "etl", None);
    pod(&mut s, "data", "etl-1", "etl", "etl-rs", Env::PodIdentity);
    assert_eq!(resolve(&s).problems[0].code, ProblemCode::StalePodCredentials);
    s.pod_identity =
        PodIdentityData { collected: false, skipped_reason: Some("no credentials".into()), ..Default::default() };
    assert!(resolve(&s).problems.is_empty());
}

#[test]
fn selector_keeps_only_the_service_accounts_of_selected_pods() {
    let mut s = snap();
    sa(&mut s, "pay", "api", Some(A));
    sa(&mut s, "pay", "worker", Some(B));
    pod(&mut s, "pay", "api-1", "api", "api-rs", Env::Irsa(A));
    s.scope.selector = Some("app=api-rs".into());
    let list = resolve(&s);
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].service_account, "api");
}

#[test]
fn json_document_has_the_contract_shape() {
    let mut s = snap();
    sa(&mut s, "pay", "api", Some(A));
    let v = serde_json::to_value(resolve(&s)).unwrap();
    assert_eq!(v["apiVersion"], "iam-roles/v1");
    assert_eq!(v["kind"], "BindingList");
    let item = &v["items"][0];
    let mut keys: Vec<_> = item.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "configured",
            "currentPods",
            "effective",
            "namespace",
            "pods",
            "problems",
            "roleArn",
            "serviceAccount",
            "source",
            "targetRoleArn",
            "workloads"
        ]
    );
    assert!(item["targetRoleArn"].is_null());
    assert_eq!(item["source"], "irsa");
}

#[test]
fn completed_pods_hold_no_credentials_but_a_cronjob_stays_a_user() {
    let mut s = snap();
    sa(&mut s, "batch", "nightly", Some(B));
    s.owners.push(OwnerInfo {
        kind: "Job".into(),
        namespace: "batch".into(),
        name: "nightly-29".into(),
        owner: Some(OwnerRef { kind: "CronJob".into(), name: "nightly".into() }),
    });
    // Finished last week, carrying the old role A: no stale finding, no item for A, no current pod.
    pod(&mut s, "batch", "nightly-29-x", "nightly", "nightly-29", Env::Irsa(A));
    s.pods[0].owner = Some(OwnerRef { kind: "Job".into(), name: "nightly-29".into() });
    s.pods[0].phase = Some("Succeeded".into());
    let list = resolve(&s);
    assert_eq!(list.items.len(), 1, "{:#?}", list.items);
    let b = &list.items[0];
    assert_eq!(b.role_arn, B);
    assert!(b.problems.is_empty() && list.problems.is_empty(), "{:?} {:?}", b.problems, list.problems);
    assert!(b.pods.is_empty() && b.current_pods.is_empty());
    assert_eq!(b.completed_pods, vec!["nightly-29-x"]);
    assert_eq!(
        b.workloads,
        vec![Workload { kind: "CronJob".into(), name: "nightly".into() }],
        "it runs as B next time"
    );
    assert!(b.effective);
}

#[test]
fn an_empty_annotation_is_no_irsa_at_all() {
    let mut s = snap();
    sa(&mut s, "web", "front", Some(""));
    deployment(&mut s, "web", "front-1", "front");
    pod(&mut s, "web", "front-1-a", "front", "front-1", Env::None);
    let list = resolve(&s);
    assert!(list.items.is_empty(), "{:?}", list.items);
    assert_eq!(list.problems.len(), 1);
    assert_eq!(list.problems[0].code, ProblemCode::NoWorkloadIdentity);
    assert!(list.problems[0].message.contains("annotation is empty"), "{}", list.problems[0].message);
}

#[test]
fn pods_with_pod_identity_stay_when_associations_cannot_be_read() {
    let mut s = snap();
    s.pod_identity = PodIdentityData {
        collected: false,
        skipped_reason: Some("not allowed to call eks:X".into()),
        ..Default::default()
    };
    sa(&mut s, "data", "etl", None);
    pod(&mut s, "data", "etl-1", "etl", "etl-rs", Env::PodIdentity);
    let list = resolve(&s);
    assert_eq!(list.items.len(), 1);
    let b = &list.items[0];
    assert!(!b.role_known());
    assert_eq!(b.current_pods, vec!["etl-1"]);
    assert_eq!(codes(b), vec!["pod-identity-unreadable"]);
    assert!(b.problems[0].message.contains("not allowed to call eks:X"));
    assert_eq!(serde_json::to_value(b).unwrap()["roleArn"], serde_json::Value::Null);
    // who-uses keeps it: it may be the role's user.
    assert_eq!(who_uses(list, &RoleQuery::parse("app-a").unwrap()).items.len(), 1);
}

#[test]
fn a_role_in_another_partition_is_cross_partition_not_cross_account() {
    let mut s = snap();
    sa(&mut s, "cn", "app", Some("arn:aws-cn:iam::444455556666:role/app"));
    let list = resolve(&s);
    assert_eq!(codes(&list.items[0]), vec!["cross-partition-role"]);
    assert!(list.items[0].problems[0].message.contains("arn:aws:iam::444455556666:role/app"));
}

#[test]
fn stale_pods_of_a_deleted_service_account_are_not_told_to_restart() {
    let mut s = snap();
    deployment(&mut s, "pay", "api-1", "api");
    pod(&mut s, "pay", "api-1-x", "gone", "api-1", Env::Irsa(A));
    let list = resolve(&s);
    let msg = &list.items[0].problems[0].message;
    assert!(!msg.contains("rollout restart") && msg.contains("no longer exists"), "{msg}");
}

#[test]
fn a_role_set_without_a_token_file_is_hand_set() {
    let mut s = snap();
    sa(&mut s, "ops", "tool", None);
    pod(&mut s, "ops", "t", "tool", "t-rs", Env::None);
    s.pods[0].containers[0].env.insert(ROLE_ARN_ENV.into(), Some(A.into()));
    let list = resolve(&s);
    assert!(list.items.is_empty());
    let found: Vec<_> = list.problems.iter().map(|p| p.code).collect();
    // Both are true: the role is set by hand and unused, and the pod falls back to the node role.
    assert_eq!(found, vec![ProblemCode::HandSetCredentials, ProblemCode::NoWorkloadIdentity], "{:?}", list.problems);
}
