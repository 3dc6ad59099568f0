//! Commands that need no cluster: the demo snapshot, output formats, colour, completions.

mod support;

use std::collections::BTreeSet;

use support::cli::Cmd;

const DEMO: &str = "examples/demo-snapshot.json";

fn demo(args: &[&str]) -> support::cli::Output {
    Cmd::new().args(["--snapshot", DEMO]).args(args).run()
}

#[test]
fn demo_snapshot_shows_every_problem_found_without_iam() {
    let out = demo(&["-o", "json"]);
    out.assert_code(0);
    let doc = out.json();
    let mut codes = BTreeSet::new();
    for p in doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["problems"].as_array().unwrap())
        .chain(doc["problems"].as_array().unwrap())
    {
        codes.insert(p["code"].as_str().unwrap().to_string());
    }
    let expected = [
        "association-without-service-account",
        "cross-account-role",
        "hand-set-credentials",
        "irsa-and-pod-identity",
        "malformed-role-arn",
        "no-workload-identity",
        "stale-pod-credentials",
    ];
    assert_eq!(codes, expected.iter().map(|s| s.to_string()).collect(), "{doc:#}");
    let keys: Vec<(&str, &str)> = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["namespace"].as_str().unwrap(), i["serviceAccount"].as_str().unwrap()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "items sorted by namespace, then name");
    assert!(out.stderr.is_empty(), "{out}");
}

#[test]
fn yaml_is_the_same_document_as_json() {
    let json = demo(&["-o", "json"]).json();
    let yaml = demo(&["-o", "yaml"]);
    yaml.assert_code(0);
    let parsed: serde_json::Value = serde_saphyr::from_str(&yaml.stdout).unwrap();
    assert_eq!(parsed, json);
}

#[test]
fn who_uses_matches_names_arns_and_paths() {
    let ids = |args: &[&str]| -> Vec<String> {
        let doc = demo(&[&["-o", "json", "who-uses"], args].concat()).json();
        doc["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| format!("{}/{}", i["namespace"].as_str().unwrap(), i["serviceAccount"].as_str().unwrap()))
            .collect()
    };
    let lbc = vec!["kube-system/aws-load-balancer-controller".to_string()];
    assert_eq!(ids(&["AmazonEKSLoadBalancerControllerRole"]), lbc, "name, any path");
    assert_eq!(
        ids(&["arn:aws:iam::111122223333:role/AmazonEKSLoadBalancerControllerRole"]),
        lbc,
        "ARN without its path"
    );
    assert_eq!(
        ids(&["arn:aws:iam::111122223333:role/eks/AmazonEKSLoadBalancerControllerRole"]),
        lbc,
        "ARN with its path"
    );
    assert!(ids(&["arn:aws:iam::111122223333:role/other/AmazonEKSLoadBalancerControllerRole"]).is_empty());
    assert!(ids(&["arn:aws:iam::999999999999:role/AmazonEKSLoadBalancerControllerRole"]).is_empty());
    assert_eq!(ids(&["analytics-reader"]), vec!["data/etl".to_string()], "a Pod Identity target role");

    let none = demo(&["who-uses", "nobody-uses-me"]);
    none.assert_code(0);
    assert!(none.stdout.is_empty());
    assert!(none.stderr.contains("Nothing uses role nobody-uses-me"), "{none}");
}

#[test]
fn offline_scope_and_selector() {
    let doc = demo(&["-n", "payments", "-l", "app=worker", "-o", "json"]).json();
    let roles: Vec<&str> = doc["items"].as_array().unwrap().iter().map(|i| i["roleArn"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        ["arn:aws:iam::111122223333:role/payments-worker", "arn:aws:iam::111122223333:role/payments-worker-v2"]
    );
    let out = demo(&["-n", "nowhere"]);
    out.assert_code(0);
    assert!(out.stderr.contains("No IAM role bindings found in namespace nowhere"), "{out}");
}

#[test]
fn colour_only_when_asked_and_never_in_documents() {
    let always = demo(&["--color", "always"]);
    assert!(always.stdout.contains("\u{1b}["), "ANSI colour with --color always");
    let auto = demo(&[]);
    assert!(!auto.stdout.contains("\u{1b}["), "not a terminal: no colour");
    let json = demo(&["--color", "always", "-o", "json"]);
    assert!(!json.stdout.contains("\u{1b}["), "JSON is never coloured");
    // Colour codes take no column width: without them the table is exactly the uncoloured one.
    let never = demo(&["--color", "never"]);
    assert_eq!(strip_ansi(&always.stdout), never.stdout);
    let no_color = Cmd::new().args(["--snapshot", DEMO]).env("NO_COLOR", "1").run();
    assert!(!no_color.stdout.contains("\u{1b}["));
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn wide_output_adds_pods_and_token_settings() {
    let out = demo(&["-n", "checkout", "-o", "wide"]);
    out.assert_code(0);
    let header = out.stdout.lines().next().unwrap();
    for col in ["TARGET ROLE", "AUDIENCE", "TOKEN EXPIRATION", "POD NAMES"] {
        assert!(header.contains(col), "{header}");
    }
    assert!(out.stdout.contains("checkout-6b9c8d7f5-b7vqk,checkout-6b9c8d7f5-x2m9p"), "{out}");
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Cmd::new().args(["completion", shell]).run();
        out.assert_code(0);
        assert!(out.stdout.contains("who-uses"), "{shell}: {out}");
    }
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    // Enough pods that the output outgrows the pipe buffer, so the write after `head` exits fails.
    let mut snap: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(DEMO).unwrap()).unwrap();
    let template = snap["pods"][0].clone();
    let pods = snap["pods"].as_array_mut().unwrap();
    for i in 0..5000 {
        let mut p = template.clone();
        p["name"] = format!("bulk-{i:05}").into();
        pods.push(p);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.json");
    std::fs::write(&file, snap.to_string()).unwrap();
    let script = format!(
        "set -o pipefail; '{}' --snapshot '{}' -o json | head -c 10 >/dev/null",
        support::cli::bin_path().display(),
        file.display()
    );
    let out = std::process::Command::new("bash").arg("-c").arg(script).env_clear().output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn who_uses_ends_with_the_recorded_last_accessed_summary() {
    let out = demo(&["who-uses", "payments-worker"]);
    out.assert_code(0);
    let summary = out.stdout.split("LAST ACCESSED").nth(1).unwrap_or_else(|| panic!("no summary: {out}"));
    assert!(
        summary.contains("unused-services arn:aws:iam::111122223333:role/payments-worker: last used 2026-11-22; 2 of 3 services unused: secretsmanager, sns"),
        "{out}"
    );
    assert!(!summary.contains("payments-worker-v2"), "only the role asked about");
    let json = demo(&["who-uses", "payments-worker", "-o", "json"]);
    assert!(json.json().get("lastAccessed").is_none(), "the BindingList document stays as the contract says");
}

#[test]
fn a_snapshot_of_a_snapshot_keeps_its_iam_data() {
    let out = demo(&["snapshot", "-n", "payments"]);
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["scope"]["namespace"], "payments");
    assert!(doc["lastAccessed"].as_array().is_some_and(|r| !r.is_empty()), "reports kept: {doc:#}");
    assert!(doc["roles"].as_array().is_some_and(|r| !r.is_empty()) && doc["oidcProviders"].is_array());
    assert!(out.stderr.is_empty(), "nothing was read live: {out}");
}

/// A snapshot is a file anyone can hand over: what it holds (IAM service and action names, workload names,
/// error messages) is escaped in every table, never sent to the terminal raw.
#[test]
fn a_snapshot_never_drives_the_terminal() {
    const EVIL: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J";
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(DEMO).expect("demo snapshot")).expect("JSON");
    let reports = doc["lastAccessed"].as_array_mut().expect("reports");
    for report in reports.iter_mut() {
        for service in report["services"].as_array_mut().expect("services") {
            if service["lastAuthenticated"].is_null() {
                service["namespace"] = format!("kms{EVIL}").into();
                service["trackedActions"] =
                    serde_json::json!([{"action": format!("Decrypt{EVIL}"), "lastAccessed": null}]);
            }
        }
    }
    reports[0]["services"] = serde_json::json!([]);
    reports[0]["error"] = serde_json::json!({"code": "access-denied", "message": format!("denied{EVIL}")});
    for owner in doc["owners"].as_array_mut().expect("owners") {
        if owner["owner"]["kind"] == "Deployment" {
            owner["owner"]["name"] = format!("{}{EVIL}", owner["owner"]["name"].as_str().unwrap()).into();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("evil.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let file = file.to_str().unwrap();
    let role = reports_role(&doc);
    for args in [
        vec!["audit"],
        vec!["audit", "-o", "wide"],
        vec!["who-uses", role.as_str()],
        vec!["-o", "wide"],
        vec!["doctor"],
    ] {
        let out = Cmd::new().args(["--snapshot", file, "--color", "never"]).args(&args).run();
        assert!(out.code == Some(0), "{args:?}: {out}");
        assert!(
            !out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{7}'),
            "{args:?}: escape sequences reached stdout: {out:?}"
        );
        assert!(!out.stderr.contains('\u{1b}'), "{args:?}: escape sequences reached stderr: {out:?}");
    }
    let wide = Cmd::new().args(["--snapshot", file, "audit", "-o", "wide"]).run();
    assert!(wide.stdout.contains("Decrypt\\u{1b}]0;pwned"), "unused actions shown escaped: {wide}");
    assert!(wide.stdout.contains("kms\\u{1b}"), "services shown escaped: {wide}");
    assert!(wide.stdout.contains("denied\\u{1b}"), "errors shown escaped: {wide}");
}

/// The first role of the snapshot's reports whose services were poisoned (one `who-uses` can name).
fn reports_role(doc: &serde_json::Value) -> String {
    let reports = doc["lastAccessed"].as_array().unwrap();
    let poisoned = reports.iter().skip(1).find(|r| {
        r["services"].as_array().unwrap().iter().any(|s| s["namespace"].as_str().unwrap().contains('\u{1b}'))
    });
    poisoned.expect("a poisoned report")["roleArn"].as_str().unwrap().to_string()
}
