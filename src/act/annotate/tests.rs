//! The annotation plan over hand-built audit reports and objects.

use super::*;
use crate::audit::{AuditBinding, RoleAudit};
use crate::model::{Source, Workload};

const A: &str = "arn:aws:iam::111122223333:role/a";
const B: &str = "arn:aws:iam::111122223333:role/b";

fn role(arn: &str, status: Status, unused: &[&str], ns: &str, sa: &str, deploy: &str) -> RoleAudit {
    RoleAudit {
        role_arn: arn.into(),
        role_last_used: None,
        status,
        services: vec![],
        unused_services: unused.iter().map(|s| s.to_string()).collect(),
        bindings: vec![AuditBinding {
            cluster: None,
            namespace: ns.into(),
            service_account: sa.into(),
            source: Source::Irsa,
            workloads: vec![Workload { kind: "Deployment".into(), name: deploy.into() }],
            actions: None,
        }],
        error: None,
        observed: None,
    }
}

fn report(roles: Vec<RoleAudit>) -> AuditReport {
    AuditReport {
        api_version: "iam-roles/v1".into(),
        kind: "AuditReport".into(),
        cluster: None,
        unused_days: 90,
        generated_at: "2026-11-22T10:00:00Z".parse().unwrap(),
        roles,
    }
}

fn object(kind: &str, ns: &str, name: &str, annotations: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        kind: kind.into(),
        namespace: ns.into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        resource_version: "7".into(),
        annotations: annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

fn keys() -> Keys {
    Keys::new("iam-roles.io/")
}

#[test]
fn annotates_the_workload_and_service_account_of_roles_with_unused_services() {
    let r = report(vec![
        role(A, Status::UnusedServices, &["kms", "sqs"], "pay", "api", "api"),
        role(B, Status::Ok, &[], "pay", "web", "web"),
    ]);
    let objects = vec![
        object("Deployment", "pay", "api", &[("team", "payments")]),
        object("ServiceAccount", "pay", "api", &[]),
        object("Deployment", "pay", "web", &[]),
    ];
    let (changes, missing, _) = plan(&r, &objects, &keys(), &Held::default());
    assert!(missing.is_empty());
    let names: Vec<_> = changes.iter().map(|c| format!("{}/{}", c.object.kind, c.object.name)).collect();
    assert_eq!(names, ["Deployment/api", "ServiceAccount/api"]);
    assert_eq!(changes[0].set["iam-roles.io/unused-services"], "kms,sqs");
    assert_eq!(changes[0].set["iam-roles.io/role-arn"], A);
    assert_eq!(changes[0].set["iam-roles.io/audited-at"], "2026-11-22T10:00:00Z");
    let patch = changes[0].patch();
    assert_eq!(patch["metadata"]["resourceVersion"], "7");
    assert!(patch["metadata"]["annotations"].get("team").is_none(), "foreign annotations are never in the patch");
}

#[test]
fn unchanged_findings_send_nothing_and_stale_ones_are_removed() {
    let r = report(vec![role(A, Status::UnusedServices, &["kms"], "pay", "api", "api")]);
    let done = [
        ("iam-roles.io/unused-services", "kms"),
        ("iam-roles.io/role-arn", A),
        ("iam-roles.io/audited-at", "2026-01-01T00:00:00Z"),
    ];
    let objects = vec![
        object("Deployment", "pay", "api", &done),
        object("ServiceAccount", "pay", "api", &done),
        object("Deployment", "old", "gone-role", &[("iam-roles.io/unused-services", "sns"), ("keep", "me")]),
    ];
    let (changes, _, _) = plan(&r, &objects, &keys(), &Held::default());
    assert_eq!(changes.len(), 1, "only the stale one: {changes:?}");
    assert_eq!(changes[0].remove, ["iam-roles.io/unused-services"]);
    assert!(changes[0].is_removal());
    assert_eq!(
        changes[0].patch()["metadata"]["annotations"],
        serde_json::json!({"iam-roles.io/unused-services": null})
    );
}

#[test]
fn a_changed_finding_is_rewritten_and_objects_not_found_are_reported() {
    let r = report(vec![role(A, Status::UnusedRole, &["kms", "s3"], "pay", "api", "api")]);
    let objects = vec![object(
        "Deployment",
        "pay",
        "api",
        &[("iam-roles.io/unused-services", "kms"), ("iam-roles.io/role-arn", A)],
    )];
    let (changes, missing, _) = plan(&r, &objects, &keys(), &Held::default());
    assert_eq!(changes[0].set["iam-roles.io/unused-services"], "kms,s3");
    assert_eq!(missing, ["ServiceAccount pay/api was not found (deleted, or a kind annotate does not write); skipped"]);
    let mut diff = Vec::new();
    write_diff(&mut diff, &changes[0], Paint { enabled: false }).unwrap();
    let diff = String::from_utf8(diff).unwrap();
    assert!(
        diff.contains("~ iam-roles.io/unused-services: kms -> kms,s3") && diff.contains("+ iam-roles.io/audited-at"),
        "{diff}"
    );
}

#[test]
fn two_roles_on_one_object_are_merged_and_the_prefix_is_configurable() {
    let r = report(vec![
        role(A, Status::UnusedServices, &["kms"], "pay", "api", "api"),
        role(B, Status::UnusedServices, &["sqs"], "pay", "api", "api"),
    ]);
    let objects = vec![object("Deployment", "pay", "api", &[])];
    let (changes, _, _) = plan(&r, &objects, &Keys::new("example.com/"), &Held::default());
    assert_eq!(changes[0].set["example.com/unused-services"], "kms,sqs");
    assert_eq!(changes[0].set["example.com/role-arn"], format!("{A},{B}"));
}

#[test]
fn events_reference_the_object() {
    let change = Change {
        object: object("Deployment", "pay", "api", &[]),
        set: BTreeMap::from([
            ("iam-roles.io/audited-at".to_string(), "2026-11-22T10:00:00Z".to_string()),
            ("iam-roles.io/unused-services".to_string(), "kms,sqs".to_string()),
        ]),
        remove: vec![],
    };
    let e = event(&change, "apps/v1", "2026-11-22T10:00:00Z".parse().unwrap());
    assert_eq!(e.involved_object.kind.as_deref(), Some("Deployment"));
    assert_eq!(e.involved_object.uid.as_deref(), Some("uid-api"));
    assert_eq!(e.reason.as_deref(), Some("UnusedIAMPermissions"));
    assert!(e.message.unwrap().ends_with(": kms,sqs"));
}

#[test]
fn findings_of_roles_that_could_not_be_audited_are_kept() {
    let mut failed = role(A, Status::Unknown, &[], "pay", "api", "api");
    failed.error =
        Some(crate::model::ReportError { code: crate::model::ProblemCode::AccessDenied, message: "x".into() });
    let r = report(vec![failed]);
    let earlier = [("iam-roles.io/unused-services", "kms"), ("iam-roles.io/role-arn", A)];
    let objects = vec![
        object("Deployment", "pay", "api", &earlier),
        // Bound elsewhere now, but its finding names the role we could not read: keep it too.
        object("Deployment", "old", "moved", &earlier),
        object("Deployment", "old", "other", &[("iam-roles.io/unused-services", "sns"), ("iam-roles.io/role-arn", B)]),
    ];
    let (changes, _, _) = plan(&r, &objects, &keys(), &Held::default());
    let names: Vec<_> = changes.iter().map(|c| c.object.name.as_str()).collect();
    assert_eq!(names, ["other"], "only the finding of an audited role is cleared");
}

#[test]
fn objects_with_incomplete_evidence_are_left_as_they_are() {
    let r = report(vec![role(A, Status::UnusedServices, &["kms"], "pay", "api", "api")]);
    let stale = [("iam-roles.io/unused-services", "sqs"), ("iam-roles.io/role-arn", B)];
    let objects = vec![
        object("Deployment", "pay", "api", &[]),
        object("ServiceAccount", "pay", "api", &[]),
        object("Deployment", "pay", "old", &stale),
    ];
    // Associations unread: nothing is set, replaced or removed.
    let everything = Held { all: Some("Pod Identity associations could not be listed".into()), ..Held::default() };
    let (changes, _, left) = plan(&r, &objects, &keys(), &everything);
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(left.len(), 3);
    assert!(left[0].contains("could not be listed"), "{left:?}");
    // One object held: the others change as usual.
    let mut held = Held::default();
    held.objects
        .insert(("Deployment".into(), "pay".into(), "old".into()), "an association could not be described".into());
    let (changes, _, left) = plan(&r, &objects, &keys(), &held);
    let names: Vec<_> = changes.iter().map(|c| format!("{}/{}", c.object.kind, c.object.name)).collect();
    assert_eq!(names, ["Deployment/api", "ServiceAccount/api"], "the held object keeps its findings");
    assert_eq!(left, ["Deployment pay/old: an association could not be described"]);
}

#[test]
fn observed_actions_are_written_short_and_go_when_no_longer_seen() {
    let mut used = role(A, Status::Ok, &[], "pay", "api", "api");
    let many: Vec<String> = (0..12).map(|i| format!("s3:Action{i:02}")).collect();
    used.bindings[0].actions = Some(many.clone());
    let mut idle = role(B, Status::UnusedServices, &["kms"], "pay", "web", "web");
    idle.bindings[0].actions = Some(vec![]);
    let objects = vec![
        object("Deployment", "pay", "api", &[]),
        object("Deployment", "pay", "web", &[("iam-roles.io/observed-actions", "sqs:SendMessage")]),
    ];
    let (changes, _, _) = plan(&report(vec![used, idle]), &objects, &keys(), &Held::default());
    let api = changes.iter().find(|c| c.object.name == "api").expect("api");
    let expected = format!("{},+2 more", many[..10].join(","));
    assert_eq!(api.set["iam-roles.io/observed-actions"], expected);
    assert!(!api.set.contains_key("iam-roles.io/unused-services"), "no empty value for a role with nothing unused");
    let web = changes.iter().find(|c| c.object.name == "web").expect("web");
    assert_eq!(web.set["iam-roles.io/unused-services"], "kms");
    assert_eq!(web.remove, ["iam-roles.io/observed-actions"], "actions no longer seen are taken off");
    assert!(!web.is_removal());
}
