//! Safe in a multi-tenant cluster (issue 10), through the real binary against the fakes: `annotate` writes
//! only on complete, verified evidence; a tenant cannot read another team's role usage back from it; its
//! prefix cannot reach keys Kubernetes or EKS own; snapshots carry no secrets.

mod support;

use serde_json::Value;
use support::cli::Output;
use support::eks::Fault as EksFault;
use support::fixtures::service_account;
use support::world::{Fakes, World};

const UNUSED: &str = "iam-roles.io/unused-services";

/// `pay/api` (IRSA) and `shop/cart` (Pod Identity) use roles with unused services; `pay/api`'s Deployment
/// already carries an older finding.
fn fakes() -> (Fakes, String, String) {
    let f = Fakes::new();
    let api = f.role("payments-api", &["s3:GetObject", "kms:Decrypt"], Some(1));
    f.used(&api, "s3", 1);
    f.irsa_app("pay", "api", "api", &api);
    let cart = f.role("cart", &["dynamodb:GetItem", "sqs:SendMessage"], Some(1));
    f.used(&cart, "dynamodb", 1);
    f.pod_identity_app("shop", "cart", "cart", &cart, None);
    f.kube.add(support::fixtures::deployment("pay", "api").build());
    f.kube.add(support::fixtures::deployment("shop", "cart").build());
    (f, api, cart)
}

fn with_old_finding(f: &Fakes) {
    let mut d = support::fixtures::deployment("pay", "api").build();
    d["metadata"]["annotations"] = serde_json::json!({ UNUSED: "sqs", "iam-roles.io/role-arn": "x" });
    f.kube.add(d);
}

fn annotate(w: &World) -> Output {
    w.cmd().args(["annotate", "-A"]).run()
}

fn summary(out: &Output) -> Value {
    let line = out.stdout.lines().last().unwrap_or_else(|| panic!("no summary line\n{out}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("summary is not JSON ({e})\n{out}"))
}

fn annotation(w: &World, kind: &str, ns: &str, name: &str) -> Option<String> {
    let obj = w.kube.get(kind, ns, name).unwrap_or_else(|| panic!("no {kind} {ns}/{name}"));
    obj["metadata"]["annotations"][UNUSED].as_str().map(str::to_string)
}

#[test]
fn unreadable_associations_leave_every_object_as_it_is_and_fail_the_run() {
    let (f, _, _) = fakes();
    with_old_finding(&f);
    f.eks.fault(EksFault::new("/pod-identity-associations", 403));
    let w = f.start();
    let out = annotate(&w);
    out.assert_code(1);
    assert_eq!(w.kube.count("PATCH", "/"), 0, "nothing removed or replaced on partial evidence: {out}");
    assert_eq!(annotation(&w, "Deployment", "pay", "api").as_deref(), Some("sqs"), "the old finding stays");
    assert!(summary(&out)["leftAlone"].as_u64().unwrap() > 0, "{out}");
    assert!(out.stderr.contains("could not be listed"), "says why: {out}");
}

#[test]
fn an_association_that_cannot_be_described_holds_only_its_service_accounts_objects() {
    let (f, _, _) = fakes();
    f.eks.fault(EksFault::new("/pod-identity-associations/a-", 500));
    let w = f.start();
    let out = annotate(&w);
    out.assert_code(1);
    assert_eq!(annotation(&w, "Deployment", "pay", "api").as_deref(), Some("kms"), "{out}");
    assert_eq!(annotation(&w, "Deployment", "shop", "cart"), None, "{out}");
    assert!(out.stderr.contains("shop/cart could not be described"), "{out}");
}

#[test]
fn a_tenant_naming_another_teams_role_learns_nothing_about_it() {
    let (f, api, _) = fakes();
    // A tenant points its service account at payments' role, which trusts only pay/api.
    f.kube.add(service_account("tenant", "snoop").irsa(&api).build());
    f.deployment_pod("tenant", "snoop", "snoop", |p| p.irsa(&api));
    f.kube.add(support::fixtures::deployment("tenant", "snoop").build());
    let w = f.start();
    let out = annotate(&w);
    out.assert_code(0);
    assert_eq!(annotation(&w, "Deployment", "pay", "api").as_deref(), Some("kms"), "the trusted binding: {out}");
    assert_eq!(annotation(&w, "Deployment", "tenant", "snoop"), None, "{out}");
    assert_eq!(annotation(&w, "ServiceAccount", "tenant", "snoop"), None, "{out}");
    let events_in_tenant = w.kube.objects("Event").iter().filter(|e| e["metadata"]["namespace"] == "tenant").count();
    assert_eq!(events_in_tenant, 0, "no Event carries the role's usage into the tenant's namespace");
    assert!(out.stderr.contains("does not trust service account tenant/snoop"), "{out}");
}

#[test]
fn the_annotation_prefix_cannot_reach_keys_kubernetes_or_eks_own() {
    let (f, _, _) = fakes();
    let w = f.start();
    for prefix in ["eks.amazonaws.com/", "kubernetes.io/", "app.kubernetes.io/", "x.k8s.io/", "Bad_Prefix/", "iam"] {
        let out = w.cmd().args(["annotate", "-A", "--annotation-prefix", prefix]).run();
        out.assert_code(2);
        assert!(out.stderr.contains("--annotation-prefix"), "{out}");
    }
    assert_eq!(w.kube.count("PATCH", "/"), 0);
    let out = w.cmd().args(["annotate", "-A", "--annotation-prefix", "audit.example.com/", "--dry-run"]).run();
    out.assert_code(0);
}

#[test]
fn a_snapshot_keeps_no_secret_and_reads_owners_as_metadata_only() {
    let f = Fakes::new();
    f.kube.add(service_account("legacy", "default").build());
    f.deployment_pod("legacy", "default", "reporter", |p| {
        p.env("app", "AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env("app", "AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY")
            .env("app", "AWS_REGION", "us-west-2")
    });
    let w = f.start();
    let out = w.cmd().args(["snapshot", "-A"]).run();
    out.assert_code(0);
    assert!(!out.stdout.contains("wJalrXUtnFEMI") && !out.stdout.contains("AKIAIOSFODNN7EXAMPLE"), "{}", out.stdout);
    let snap = out.json();
    let env =
        &snap["pods"].as_array().unwrap().iter().find(|p| p["namespace"] == "legacy").unwrap()["containers"][0]["env"];
    assert!(
        env["AWS_SECRET_ACCESS_KEY"].is_null() && env.get("AWS_SECRET_ACCESS_KEY").is_some(),
        "presence only: {env}"
    );
    assert_eq!(env["AWS_REGION"], "us-west-2");
    // The static key is still found from its presence.
    let listed = w.cmd().args(["-n", "legacy", "-o", "json"]).run().json();
    assert_eq!(listed["problems"][0]["code"], "hand-set-credentials", "{listed:#}");
    for path in ["/apis/apps/v1/replicasets", "/apis/batch/v1/jobs"] {
        let lists: Vec<_> = w.kube.requests().into_iter().filter(|r| r.path == path).collect();
        assert!(!lists.is_empty(), "{path} listed");
        for r in lists {
            let accept = r.header("accept").unwrap_or_default();
            assert!(accept.contains("as=PartialObjectMetadataList"), "{path} read in full: {accept}");
        }
    }
}

#[test]
fn values_from_the_cluster_never_drive_the_terminal() {
    let (f, _, _) = fakes();
    let mut d = support::fixtures::deployment("pay", "api").build();
    d["metadata"]["annotations"] =
        serde_json::json!({ UNUSED: "\u{1b}]0;pwned\u{7}\u{1b}[2J", "iam-roles.io/role-arn": "x" });
    f.kube.add(d);
    let w = f.start();
    let out = w.cmd().args(["annotate", "-A", "--dry-run", "--color", "never"]).run();
    out.assert_code(0);
    assert!(out.stdout.contains("Deployment pay/api"), "{out}");
    assert!(
        !out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{7}'),
        "escape sequences reached stdout: {out:?}"
    );
    assert!(out.stdout.contains("\\u{1b}]0;pwned"), "shown escaped instead: {out}");
}

#[test]
fn a_closed_stdout_never_stops_the_patches() {
    let f = Fakes::new();
    let role = f.role("batch", &["s3:GetObject", "kms:Decrypt"], Some(1));
    f.used(&role, "s3", 1);
    f.irsa_app("jobs", "runner", "runner-0", &role);
    // Enough workloads that the "annotated" lines overflow stdout's buffer well before the last patch.
    const N: usize = 400;
    for i in 0..N {
        let name = format!("runner-{i}");
        f.kube.add(support::fixtures::deployment("jobs", &name).build());
        if i > 0 {
            f.deployment_pod("jobs", "runner", &name, |p| p.irsa(&role));
        }
    }
    let w = f.start();
    let out = w.cmd().args(["annotate", "-A"]).stdout_closed().run();
    out.assert_code(0);
    let annotated =
        w.kube.objects("Deployment").iter().filter(|d| d["metadata"]["annotations"][UNUSED] == "kms").count();
    assert_eq!(annotated, N, "every workload is annotated though nobody reads stdout: {out}");
}

#[test]
fn a_kind_that_cannot_be_listed_is_an_error_and_the_others_are_written() {
    let (f, _, _) = fakes();
    f.kube.fault(support::kube_api::Fault::new("/apis/apps/v1/deployments", 403));
    let w = f.start();
    let out = annotate(&w);
    out.assert_code(1);
    assert!(out.stderr.contains("not allowed to list deployments"), "{out}");
    assert_eq!(annotation(&w, "ServiceAccount", "pay", "api").as_deref(), Some("kms"), "{out}");
    assert_eq!(annotation(&w, "Deployment", "pay", "api"), None, "{out}");
}

#[test]
fn unlisted_owners_leave_every_object_as_it_is() {
    let (f, _, _) = fakes();
    with_old_finding(&f);
    // Without ReplicaSets, pods stand under their ReplicaSet: the Deployment's finding would look stale.
    f.kube.fault(support::kube_api::Fault::new("/apis/apps/v1/replicasets", 403));
    let w = f.start();
    let out = annotate(&w);
    out.assert_code(1);
    assert_eq!(w.kube.count("PATCH", "/"), 0, "{out}");
    assert_eq!(annotation(&w, "Deployment", "pay", "api").as_deref(), Some("sqs"), "{out}");
    assert!(out.stderr.contains("ReplicaSet could not be listed"), "{out}");
}
