//! `doctor` through the real binary against the fake Kubernetes API, EKS, IAM and STS (issue 5): trust
//! policies read with GetRole (URL-encoded), the issuer from DescribeCluster, the OIDC provider from
//! ListOpenIDConnectProviders, grouped findings, and `--fail-on` for CI.

mod support;

use serde_json::{Value, json};
use support::cli::{Cmd, Output};
use support::eks::FakeEks;
use support::fixtures::{pod, service_account};
use support::iam::{FakeIam, RoleSpec, irsa_trust, pod_identity_trust};
use support::kube_api::FakeKube;
use support::world::World;

const ACCOUNT: &str = "111122223333";

/// `pay/api` is wired right; `pay/wild` trusts every service account of its namespace; `pay/wrong`
/// trusts another one; `pay/gone` names a deleted role; `pay/pi` is Pod Identity without TagSession.
fn world(register_provider: bool) -> World {
    let eks = FakeEks::new();
    let issuer = eks.add_cluster("prod", "us-west-2", ACCOUNT);
    let iam = FakeIam::new(ACCOUNT);
    let host = issuer.trim_start_matches("https://").to_string();
    let role = |name: &str, trust: Value| iam.add_role(RoleSpec::new(name).trust(trust));
    let api = role("api", irsa_trust(ACCOUNT, &issuer, "pay", "api"));
    let mut wild = irsa_trust(ACCOUNT, &issuer, "pay", "wild");
    wild["Statement"][0]["Condition"] = json!({"StringLike": {format!("{host}:sub"): "system:serviceaccount:pay:*", format!("{host}:aud"): "sts.amazonaws.com"}});
    let wild = role("wild", wild);
    let wrong = role("wrong", irsa_trust(ACCOUNT, &issuer, "pay", "someone-else"));
    let mut no_tags = pod_identity_trust();
    no_tags["Statement"][0]["Action"] = json!("sts:AssumeRole");
    let pi = role("pi", no_tags);
    if register_provider {
        iam.add_oidc_provider(&issuer, &["sts.amazonaws.com"]);
    }
    let kube = FakeKube::new();
    for (sa, arn) in [
        ("api", api.as_str()),
        ("wild", wild.as_str()),
        ("wrong", wrong.as_str()),
        ("gone", "arn:aws:iam::111122223333:role/gone"),
    ] {
        kube.add(service_account("pay", sa).irsa(arn).build());
        kube.add(pod("pay", &format!("{sa}-0")).service_account(sa).irsa(arn).build());
    }
    kube.add(service_account("pay", "pi").build());
    eks.add_association("prod", "pay", "pi", &pi, None);
    kube.add(support::fixtures::daemon_set("kube-system", "eks-pod-identity-agent", 1, 1).build());
    support::world::start_prod(kube, eks, iam, "pay")
}

fn doctor(w: &World, args: &[&str]) -> Output {
    w.cmd().arg("doctor").args(args).run()
}

fn findings(doc: &Value) -> Vec<(String, String, String)> {
    doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["severity"].as_str().unwrap().into(),
                p["code"].as_str().unwrap().into(),
                p["object"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn finds_each_broken_binding_and_passes_the_good_one() {
    let w = world(true);
    let out = doctor(&w, &["-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["kind"], "DoctorReport");
    let got = findings(&doc);
    let want = [
        ("error", "role-not-found", "ServiceAccount/gone"),
        ("error", "trust-policy-mismatch", "ServiceAccount/pi"),
        ("error", "trust-policy-mismatch", "ServiceAccount/wrong"),
        ("warning", "wildcard-trust", "ServiceAccount/wild"),
    ];
    let want: Vec<(String, String, String)> =
        want.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(got, want, "{doc:#}");
    assert_eq!(doc["summary"], json!({"errors": 3, "warnings": 1, "info": 0}));
    assert!(w.iam.count("GetRole") >= 5, "every bound role's trust policy is read");
    assert_eq!(w.iam.count("ListOpenIDConnectProviders"), 1);
    assert_eq!(w.iam.count("GenerateServiceLastAccessedDetails"), 0, "doctor starts no audit job");

    let table = doctor(&w, &[]);
    table.assert_code(0);
    assert!(table.stdout.starts_with("ERRORS (3)"), "{table}");
    assert!(
        table.stdout.contains("WARNINGS (1)") && table.stdout.contains("3 error(s), 1 warning(s), 0 info"),
        "{table}"
    );
}

#[test]
fn an_unregistered_oidc_provider_is_reported_once() {
    let w = world(false);
    let doc = doctor(&w, &["-o", "json"]).json();
    let cluster: Vec<_> = findings(&doc).into_iter().filter(|f| f.2 == "Cluster/prod").collect();
    assert_eq!(cluster.len(), 1, "{doc:#}");
    assert_eq!(cluster[0].1, "trust-policy-mismatch");
}

#[test]
fn fail_on_turns_findings_into_an_exit_code() {
    let w = world(true);
    let out = doctor(&w, &["--fail-on", "error"]);
    out.assert_code(1);
    assert!(out.stderr.contains("doctor found 3 error(s) and 1 warning(s)"), "{out}");
    assert!(out.stdout.contains("ERRORS (3)"), "the report is still printed: {out}");
    let clean = Cmd::new()
        .args(["--snapshot", "examples/demo-snapshot.json", "-n", "payments", "doctor", "--fail-on", "error"])
        .run();
    assert_eq!(clean.code, Some(1), "the demo's payments namespace has a trust mismatch: {clean}");
    let info_only = Cmd::new()
        .args(["--snapshot", "examples/demo-snapshot.json", "-n", "monitoring", "doctor", "--fail-on", "warning"])
        .run();
    info_only.assert_code(0);
}
