//! `audit --usage cloudtrail` through the real binary (issue 11): the trail found with CloudTrail, its log
//! files read from the S3 fake (two regions, paged listings, a digest that must not be read, a corrupt file),
//! and every call attributed to the service account (IRSA) or pod (Pod Identity) of this cluster that made it,
//! with other clusters' sessions, old sessions and denied calls kept apart. Re-runs read only new files.

mod support;

use serde_json::Value;
use support::cli::Cmd;
use support::cloudtrail::{FakeCloudTrail, RunningCloudTrail, TrailSpec};
use support::fixtures::deployment;
use support::s3::{FakeS3, RunningS3};
use support::trail::{call, digest_key, gz, iam_user_call, log_key, pod_identity, web_identity};
use support::world::{ACCOUNT, Fakes, World};

const BUCKET: &str = "shop-trail";
const OTHER_PROVIDER_HOST: &str = "oidc.eks.eu-west-1.amazonaws.com/id/0000000000000000000000000000AAAA";

struct Shop {
    w: World,
    s3: RunningS3,
    ct: RunningCloudTrail,
    shared: String,
    cache: tempfile::TempDir,
    issuer: String,
    /// A time of yesterday, RFC 3339.
    yesterday: String,
}

impl Shop {
    fn cmd(&self) -> Cmd {
        self.w
            .cmd()
            .env("AWS_ENDPOINT_URL_S3", self.s3.url())
            .env("AWS_ENDPOINT_URL_CLOUDTRAIL", self.ct.url())
            .env("IAM_ROLES_CACHE_DIR", self.cache.path())
    }

    fn audit(&self, args: &[&str]) -> Value {
        let out = self.cmd().args(["audit", "-n", "shop", "-o", "json", "--usage", "cloudtrail"]).args(args).run();
        out.assert_code(0);
        out.json()
    }

    fn provider(&self) -> String {
        format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{}", self.issuer.trim_start_matches("https://"))
    }
}

fn role<'a>(doc: &'a Value, arn: &str) -> &'a Value {
    doc["roles"].as_array().unwrap().iter().find(|r| r["roleArn"] == arn).unwrap_or_else(|| panic!("{arn}: {doc:#}"))
}

fn binding<'a>(role: &'a Value, sa: &str) -> &'a Value {
    role["bindings"].as_array().unwrap().iter().find(|b| b["serviceAccount"] == sa).unwrap_or_else(|| panic!("{sa}"))
}

/// One role shared by `shop/api` (IRSA) and `shop/worker` (Pod Identity), with a trail covering two regions.
fn shop() -> Shop {
    shop_with(TrailSpec::new("org", ACCOUNT, "us-west-2", BUCKET))
}

fn shop_with(trail: TrailSpec) -> Shop {
    let f = Fakes::new();
    let shared = f.role("shop-shared", &["s3:GetObject", "s3:PutObject", "sqs:ReceiveMessage", "kms:Decrypt"], Some(1));
    f.used("shop-shared", "s3", 1);
    f.used("shop-shared", "sqs", 1);
    f.irsa_app("shop", "api", "api", &shared);
    f.kube.add(deployment("shop", "api").service_account("api").build());
    f.pod_identity_app("shop", "worker", "worker", &shared, None);
    f.kube.add(deployment("shop", "worker").service_account("worker").build());
    let issuer = f.issuer.clone();
    let yesterday = f.ago(1);
    let cluster_arn = format!("arn:aws:eks:us-west-2:{ACCOUNT}:cluster/prod");
    let provider = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{}", issuer.trim_start_matches("https://"));
    let other = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{OTHER_PROVIDER_HOST}");
    let t = yesterday.as_str();

    let s3 = FakeS3::new();
    s3.create_bucket(BUCKET);
    let put = |region: &str, n: usize, records: &[Value]| {
        s3.put(BUCKET, &log_key(None, ACCOUNT, region, t, n), gz(records));
    };
    put(
        "us-west-2",
        1,
        &[
            web_identity(&shared, &provider, "system:serviceaccount:shop:api", "ASIAAPI00000000001", t, "us-west-2"),
            call(&shared, "ASIAAPI00000000001", "s3.amazonaws.com", "GetObject", t, "us-west-2", None),
            call(&shared, "ASIAAPI00000000001", "s3.amazonaws.com", "GetObject", t, "us-west-2", None),
            call(&shared, "ASIAAPI00000000001", "s3.amazonaws.com", "PutObject", t, "us-west-2", Some("AccessDenied")),
            iam_user_call(ACCOUNT, "alice", "s3.amazonaws.com", "DeleteBucket", t),
        ],
    );
    put(
        "us-west-2",
        2,
        &[
            pod_identity(&shared, &cluster_arn, "shop", "worker", "worker-7d9f4-x2m9p", "ASIAWRK00000000001", t),
            call(&shared, "ASIAWRK00000000001", "sqs.amazonaws.com", "ReceiveMessage", t, "us-west-2", None),
            // A session that began before the window.
            call(&shared, "ASIAOLD00000000001", "sqs.amazonaws.com", "ReceiveMessage", t, "us-west-2", None),
        ],
    );
    // A second region: the api's session used there, and another cluster using the same role.
    put(
        "eu-west-1",
        3,
        &[
            call(&shared, "ASIAAPI00000000001", "s3.amazonaws.com", "GetObject", t, "eu-west-1", None),
            web_identity(&shared, &other, "system:serviceaccount:shop:api", "ASIAOTH00000000001", t, "eu-west-1"),
            call(&shared, "ASIAOTH00000000001", "kms.amazonaws.com", "Decrypt", t, "eu-west-1", None),
        ],
    );
    // A digest (never read as a log) and a corrupt log file (skipped with a warning).
    s3.put(BUCKET, &digest_key(None, ACCOUNT, "us-west-2", "org", t), b"{\"not\": \"a log\"}".to_vec());
    s3.put(BUCKET, &log_key(None, ACCOUNT, "us-west-2", t, 9), b"\x1f\x8b\x08\x00broken".to_vec());
    s3.max_keys(2);

    let ct = FakeCloudTrail::new();
    ct.add_trail(trail);
    let w = f.start();
    Shop { w, s3: s3.start(), ct: ct.start(), shared, cache: tempfile::tempdir().unwrap(), issuer, yesterday }
}

#[test]
fn calls_are_attributed_to_the_service_accounts_and_pods_that_made_them() {
    let shop = shop();
    let out = shop.cmd().args(["audit", "-n", "shop", "-o", "json", "--usage", "cloudtrail"]).run();
    out.assert_code(0);
    let doc = out.json();
    let r = role(&doc, &shop.shared);
    let o = &r["observed"];
    assert_eq!(o["source"], "cloudtrail");
    assert!(o["from"].is_string() && o["to"].is_string(), "{o:#}");
    let actions: Vec<(&str, u64, Vec<String>)> = o["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let users = a["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| format!("{}/{}", u["namespace"].as_str().unwrap(), u["serviceAccount"].as_str().unwrap()))
                .collect();
            (a["action"].as_str().unwrap(), a["count"].as_u64().unwrap(), users)
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("kms:Decrypt", 1, vec![]),
            ("s3:GetObject", 3, vec!["shop/api".to_string()]),
            ("sqs:ReceiveMessage", 2, vec!["shop/worker".to_string()]),
        ],
        "{o:#}"
    );
    assert_eq!(o["denied"], serde_json::json!(["s3:PutObject"]));
    // 3 GetObject + 1 denied PutObject + 2 ReceiveMessage + 1 Decrypt; the old session and the other
    // cluster's are not joined to a service account here.
    assert_eq!((o["events"].as_u64(), o["unattributed"].as_u64()), (Some(7), Some(2)), "{o:#}");
    assert!(o["actions"][0]["lastUsed"].as_str().is_some_and(|t| t == shop.yesterday), "{o:#}");

    assert_eq!(binding(r, "api")["actions"], serde_json::json!(["s3:GetObject"]));
    assert_eq!(binding(r, "worker")["actions"], serde_json::json!(["sqs:ReceiveMessage"]));

    // The corrupt file is named and skipped; the digest is never fetched; listings were paged.
    let corrupt = log_key(None, ACCOUNT, "us-west-2", &shop.yesterday, 9);
    assert!(out.stderr.contains(&format!("skipped s3://{BUCKET}/{corrupt}")), "{out}");
    assert!(shop.s3.gets().iter().all(|k| !k.contains("CloudTrail-Digest")), "{:?}", shop.s3.gets());
    assert!(shop.s3.requests().iter().any(|r| r.query_param("continuation-token").is_some()), "paged listings");
    assert_eq!(shop.ct.operations(), ["DescribeTrails", "GetEventSelectors"]);
    assert!(shop.s3.requests().iter().all(|r| r.signed()), "every S3 request SigV4-signed");
}

#[test]
fn re_runs_read_only_new_files_and_refresh_starts_over() {
    let shop = shop();
    let first = shop.audit(&[]);
    let read_first = shop.s3.gets().len();
    assert_eq!(read_first, 4, "three logs and the corrupt file: {:?}", shop.s3.gets());
    shop.s3.clear_requests();

    // A file delivered since: only it (and the corrupt one, never counted) is read.
    let later = shop.yesterday.clone();
    let key = log_key(None, ACCOUNT, "us-west-2", &later, 5);
    let new_call = call(&shop.shared, "ASIAAPI00000000001", "s3.amazonaws.com", "GetObject", &later, "us-west-2", None);
    shop.s3.put(BUCKET, &key, gz(&[new_call]));
    let second = shop.audit(&[]);
    let gets = shop.s3.gets();
    assert_eq!(gets.len(), 2, "the new file and the corrupt one again: {gets:?}");
    assert!(gets.contains(&key));
    let count = |doc: &Value| {
        role(doc, &shop.shared)["observed"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["action"] == "s3:GetObject")
            .unwrap()["count"]
            .as_u64()
    };
    assert_eq!((count(&first), count(&second)), (Some(3), Some(4)), "the remembered tally plus the new file");
    assert_eq!(binding(role(&second, &shop.shared), "api")["actions"], serde_json::json!(["s3:GetObject"]));

    shop.s3.clear_requests();
    let refreshed = shop.audit(&["--refresh"]);
    assert_eq!(shop.s3.gets().len(), 5, "--refresh reads every file again");
    assert_eq!(count(&refreshed), Some(4));
}

#[test]
fn the_wide_table_shows_each_service_account_and_a_snapshot_keeps_it_offline() {
    let shop = shop();
    let out = shop.cmd().args(["audit", "-n", "shop", "-o", "wide", "--usage", "cloudtrail", "--color", "never"]).run();
    out.assert_code(0);
    let text = &out.stdout;
    assert!(text.contains("OBSERVED (cloudtrail"), "{out}");
    let line = |needle: &str| text.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle}: {out}"));
    assert!(line("shop/api").contains("s3:GetObject(3)") && line("shop/api").contains("Deployment/api"), "{out}");
    assert!(line("shop/worker").contains("sqs:ReceiveMessage(2)"), "{out}");
    assert!(line("<unattributed>").contains("2 call(s)"), "{out}");
    assert!(line("<denied>").contains("s3:PutObject"), "{out}");

    let snap = shop.cmd().args(["snapshot", "-n", "shop", "--usage", "cloudtrail"]).run();
    snap.assert_code(0);
    let file = shop.cache.path().join("snap.json");
    std::fs::write(&file, &snap.stdout).unwrap();
    let live = shop.audit(&[]);
    let offline = Cmd::new().arg("--snapshot").arg(&file).args(["audit", "-o", "json"]).run();
    offline.assert_code(0);
    let offline = offline.json();
    assert_eq!(role(&offline, &shop.shared)["observed"]["actions"], role(&live, &shop.shared)["observed"]["actions"]);
    assert_eq!(role(&offline, &shop.shared)["bindings"], role(&live, &shop.shared)["bindings"]);
    let no_usage =
        Cmd::new().args(["--snapshot", "examples/demo-snapshot.json", "audit", "--usage", "cloudtrail"]).run();
    no_usage.assert_code(2);
    assert!(no_usage.stderr.contains("snapshot --usage cloudtrail"), "{no_usage}");
}

#[test]
fn a_missing_trail_and_an_unreadable_bucket_are_clear_errors() {
    let shop = shop();
    let out = shop.cmd().args(["audit", "-n", "shop", "--usage", "cloudtrail", "--trail", "nope"]).run();
    out.assert_code(2);
    assert!(out.stderr.contains("no trail \"nope\"") && out.stderr.contains("org"), "{out}");
    shop.s3.fault(support::s3::Fault::new(BUCKET, 403));
    let out = shop.cmd().args(["audit", "-n", "shop", "--usage", "cloudtrail"]).run();
    out.assert_code(1);
    assert!(out.stderr.contains("s3:ListBucket") && out.stderr.contains(BUCKET), "{out}");
    let _ = shop.provider();
}

#[test]
fn suggested_drafts_keep_only_what_was_called_never_what_cloudtrail_cannot_see_and_split_the_role() {
    // The trail records S3 object (data) events but not SQS's: sqs:ReceiveMessage cannot be judged.
    let shop = shop_with(TrailSpec::new("org", ACCOUNT, "us-west-2", BUCKET).with_s3_data_events());
    let out = shop.cmd().args(["audit", "-n", "shop", "-o", "json", "--usage", "cloudtrail", "--suggest-policy"]).run();
    out.assert_code(0);
    let doc = out.json();
    let item =
        doc["items"].as_array().unwrap().iter().find(|i| i["roleArn"] == shop.shared.as_str()).expect("the role");
    let statement = &item["observedDrafts"][0]["document"]["Statement"][0];
    let actions: Vec<&str> = statement["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    // s3:PutObject was only attempted (denied) and S3 objects are recorded: it goes. kms:Decrypt was called
    // (by another cluster's session): it stays for the role as a whole.
    assert_eq!(actions, ["s3:GetObject", "sqs:ReceiveMessage", "kms:Decrypt"], "{item:#}");
    assert_eq!(item["observedDrafts"][0]["keptUnjudged"], serde_json::json!(["sqs:ReceiveMessage"]));

    let split = item["split"].as_array().expect("a split proposal");
    let share = |sa: &str| split.iter().find(|s| s["serviceAccount"] == sa).unwrap_or_else(|| panic!("{sa}: {item:#}"));
    let granted = |sa: &str| -> Vec<String> {
        share(sa)["drafts"][0]["document"]["Statement"][0]["Action"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_else(|| {
                vec![share(sa)["drafts"][0]["document"]["Statement"][0]["Action"].as_str().unwrap().into()]
            })
    };
    assert_eq!(share("api")["actions"], serde_json::json!(["s3:GetObject"]));
    // The unjudged SQS grant stays in every share: CloudTrail cannot say who needs it.
    assert_eq!(granted("api"), ["s3:GetObject", "sqs:ReceiveMessage"]);
    assert_eq!(granted("worker"), ["sqs:ReceiveMessage"]);
    assert_eq!(item["calledByOthers"], serde_json::json!(["kms:Decrypt"]));

    let table =
        shop.cmd().args(["audit", "-n", "shop", "--usage", "cloudtrail", "--suggest-policy", "--color", "never"]).run();
    table.assert_code(0);
    assert!(
        table.stdout.contains("split proposal") && table.stdout.contains("shop/worker calls sqs:ReceiveMessage"),
        "{table}"
    );
}

#[test]
fn annotate_writes_what_each_service_account_was_seen_calling() {
    let shop = shop();
    let out =
        shop.cmd().args(["annotate", "-n", "shop", "--usage", "cloudtrail", "--dry-run", "--color", "never"]).run();
    out.assert_code(0);
    let section = |head: &str| -> String {
        let start = out.stdout.find(head).unwrap_or_else(|| panic!("{head}: {out}"));
        out.stdout[start..].lines().skip(1).take_while(|l| l.starts_with("  ")).collect::<Vec<_>>().join("\n")
    };
    assert!(section("Deployment shop/api").contains("+ iam-roles.io/observed-actions: s3:GetObject"), "{out}");
    assert!(
        section("ServiceAccount shop/worker").contains("+ iam-roles.io/observed-actions: sqs:ReceiveMessage"),
        "{out}"
    );
    assert!(!out.stdout.contains("unused-services"), "every service was used: {out}");
    // Without the trail, the same run has nothing to write.
    let plain = shop.cmd().args(["annotate", "-n", "shop", "--dry-run"]).run();
    plain.assert_code(0);
    assert!(!plain.stdout.contains("observed-actions"), "{plain}");
}
