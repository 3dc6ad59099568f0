//! The Athena query's semantics (issue 12), tested by running it on a real SQL engine: DuckDB (from PyPI;
//! `.ci/run` installs it) runs `usage::athena::query` over the same CloudTrail records the log-file reader
//! tallies, in a table shaped like AWS's documented CloudTrail table, and the two paths must attribute every
//! call alike. Comparing SQL strings would prove nothing; this fails if the query joins, filters or counts
//! differently from the reader.

mod support;

use std::collections::BTreeSet;
use std::process::Command;

use kubectl_iam_roles::arn::RoleArn;
use kubectl_iam_roles::usage::athena::{Dialect, QueryScope, Row, query, tally_from_rows};
use kubectl_iam_roles::usage::{ClusterId, Tally, attribute, record, role_key};
use serde_json::Value;
use std::sync::Arc;

use support::athena::{Engine, FakeAthena};
use support::fixtures::deployment;
use support::trail::{call, iam_user_call, pod_identity, web_identity};
use support::world::Fakes;

const ACCOUNT: &str = "111122223333";
const HOST: &str = "oidc.eks.us-west-2.amazonaws.com/id/5C9F2A7B41D3E8F06A1B2C3D4E5F6A7B";
const OTHER_HOST: &str = "oidc.eks.eu-west-1.amazonaws.com/id/0000000000000000000000000000AAAA";

fn role(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// Every case the reader's tests cover: IRSA and Pod Identity sessions, another cluster's provider, an old
/// session, denied and failed calls, other principals, a role out of scope, a refused STS call, another
/// account's event, and a day outside the window.
fn records() -> Vec<Value> {
    let (shared, other_role) = (role("shop-shared"), role("not-in-scope"));
    let provider = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{HOST}");
    let other = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{OTHER_HOST}");
    let cluster = format!("arn:aws:eks:us-west-2:{ACCOUNT}:cluster/prod");
    let (t1, t2) = ("2026-12-01T10:00:00Z", "2026-12-02T11:30:00Z");
    let mut refused =
        web_identity(&shared, &provider, "system:serviceaccount:shop:evil", "ASIAREFUSED0000001", t1, "us-west-2");
    refused["errorCode"] = "AccessDenied".into();
    let mut foreign = call(&shared, "ASIAAPI00000000001", "s3.amazonaws.com", "GetObject", t2, "us-west-2", None);
    foreign["recipientAccountId"] = "999988887777".into();
    vec![
        web_identity(&shared, &provider, "system:serviceaccount:shop:api", "ASIAAPI00000000001", t1, "us-west-2"),
        call(&shared, "ASIAAPI00000000001", "s3.amazonaws.com", "GetObject", t1, "us-west-2", None),
        call(&shared, "ASIAAPI00000000001", "s3.amazonaws.com", "GetObject", t2, "eu-west-1", None),
        call(&shared, "ASIAAPI00000000001", "s3.amazonaws.com", "ListObjectsV2", t2, "us-west-2", None),
        call(&shared, "ASIAAPI00000000001", "s3.amazonaws.com", "PutObject", t2, "us-west-2", Some("AccessDenied")),
        call(&shared, "ASIAAPI00000000001", "s3.amazonaws.com", "GetObject", t2, "us-west-2", Some("NoSuchKey")),
        pod_identity(&shared, &cluster, "shop", "worker", "worker-7d9f4-x2m9p", "ASIAWRK00000000001", t1),
        call(&shared, "ASIAWRK00000000001", "sqs.amazonaws.com", "ReceiveMessage", t2, "us-west-2", None),
        web_identity(&shared, &other, "system:serviceaccount:shop:api", "ASIAOTH00000000001", t1, "eu-west-1"),
        call(&shared, "ASIAOTH00000000001", "kms.amazonaws.com", "Decrypt", t1, "eu-west-1", None),
        call(&shared, "ASIAOLD00000000001", "sqs.amazonaws.com", "ReceiveMessage", t1, "us-west-2", None),
        call(&shared, "ASIAAPI00000000001", "sts.amazonaws.com", "GetCallerIdentity", t1, "us-west-2", None),
        call(&other_role, "ASIAX0000000000001", "s3.amazonaws.com", "DeleteBucket", t1, "us-west-2", None),
        iam_user_call(ACCOUNT, "alice", "s3.amazonaws.com", "ListBuckets", t1),
        refused,
        foreign,
        // Outside the window (pruned by the `timestamp` partition, and not read from S3 either).
        call(&shared, "ASIAAPI00000000001", "s3.amazonaws.com", "GetObject", "2026-10-01T10:00:00Z", "us-west-2", None),
    ]
}

/// The reader's path: the records in the window and account, tallied record by record.
fn reader(records: &[Value], roles: &[RoleArn]) -> Tally {
    let scope: BTreeSet<String> = roles.iter().map(role_key).collect();
    let in_window: Vec<&Value> = records
        .iter()
        .filter(|r| r["eventTime"].as_str().is_some_and(|t| t >= "2026-11-04") && r["recipientAccountId"] == ACCOUNT)
        .collect();
    let text = serde_json::json!({ "Records": in_window }).to_string();
    let mut tally = Tally::default();
    record::read_log(text.as_bytes(), &mut |r| tally.add(&r, &scope)).expect("records");
    tally
}

/// Runs `sql` (DuckDB dialect) over a table `table` of `records` on DuckDB; the rows, or DuckDB's error.
fn duckdb_rows(records: &[Value], sql: &str, table: &str) -> Result<Vec<Row>, String> {
    let dir = tempfile::tempdir().unwrap();
    let (records_path, sql_path) = (dir.path().join("records.json"), dir.path().join("query.sql"));
    std::fs::write(&records_path, serde_json::to_string(records).unwrap()).unwrap();
    std::fs::write(&sql_path, sql).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/athena/duckdb_run.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&records_path)
        .arg(&sql_path)
        .arg(table)
        .output()
        .expect("python3 (with duckdb from PyPI; .ci/run installs it)");
    if !out.status.success() {
        return Err(format!("DuckDB run failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("rows as JSON: {e}"))
}

/// The query's path: DuckDB runs the SQL over a table of the same records.
fn duckdb(records: &[Value], roles: &[RoleArn]) -> Tally {
    let scope = QueryScope {
        table: "cloudtrail_logs",
        from: "2026-11-04".parse().unwrap(),
        to: "2026-12-04".parse().unwrap(),
        roles,
    };
    let rows =
        duckdb_rows(records, &query(&scope, Dialect::DuckDb), "cloudtrail_logs").unwrap_or_else(|e| panic!("{e}"));
    assert!(!rows.is_empty());
    tally_from_rows(&rows)
}

#[test]
fn the_athena_query_attributes_every_call_as_the_log_reader_does() {
    let records = records();
    let roles: Vec<RoleArn> = vec![role("shop-shared").parse().unwrap()];
    let (mut read, queried) = (reader(&records, &roles), duckdb(&records, &roles));
    let cluster = ClusterId {
        name: Some("prod".into()),
        arn: Some(format!("arn:aws:eks:us-west-2:{ACCOUNT}:cluster/prod")),
        issuer: Some(format!("https://{HOST}")),
        label: None,
    };
    let (from_reader, from_query) = (
        attribute(&read, &roles, std::slice::from_ref(&cluster)),
        attribute(&queried, &roles, std::slice::from_ref(&cluster)),
    );
    assert_eq!(from_query, from_reader, "the query and the reader attribute alike");
    // And what they agree on is right: the api's S3 calls, the worker's SQS, the rest unattributed.
    let usage = &from_query[0];
    let actions_of = |ns: &str, sa: &str| -> Vec<String> {
        usage
            .by_user
            .iter()
            .filter(|u| u.user.as_ref().is_some_and(|u| u.namespace == ns && u.service_account == sa))
            .flat_map(|u| u.actions.keys().cloned())
            .collect()
    };
    assert_eq!(actions_of("shop", "api"), ["s3:GetObject", "s3:ListBucket", "s3:PutObject"]);
    assert_eq!(actions_of("shop", "worker"), ["sqs:ReceiveMessage"]);
    let api = usage.by_user.iter().find(|u| u.user.as_ref().is_some_and(|u| u.service_account == "api")).unwrap();
    assert_eq!((api.actions["s3:GetObject"].allowed, api.actions["s3:PutObject"].denied), (3, 1));
    // The same calls, counted alike (the reader also counts records the query never returns).
    read.records = queried.records;
    assert_eq!(queried.calls, read.calls);
}

/// `audit --usage athena` through the real binary: the query goes to the Athena fake (JSON 1.1), which answers
/// it by running it on DuckDB over this cluster's records; the binary polls, pages the results, prints what was
/// scanned, and attributes the rows to the service accounts.
#[test]
fn audit_usage_athena_runs_the_query_and_attributes_its_rows() {
    let f = Fakes::new();
    let shared = f.role("shop-shared", &["s3:GetObject", "sqs:ReceiveMessage", "kms:Decrypt"], Some(1));
    f.used("shop-shared", "s3", 1);
    f.irsa_app("shop", "api", "api", &shared);
    f.kube.add(deployment("shop", "api").service_account("api").build());
    f.pod_identity_app("shop", "worker", "worker", &shared, None);
    f.kube.add(deployment("shop", "worker").service_account("worker").build());
    let provider = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{}", f.issuer.trim_start_matches("https://"));
    let cluster = format!("arn:aws:eks:us-west-2:{ACCOUNT}:cluster/prod");
    let t = f.ago(1);
    let records = vec![
        web_identity(&shared, &provider, "system:serviceaccount:shop:api", "ASIAAPI00000000001", &t, "us-west-2"),
        call(&shared, "ASIAAPI00000000001", "s3.amazonaws.com", "GetObject", &t, "us-west-2", None),
        call(&shared, "ASIAAPI00000000001", "s3.amazonaws.com", "GetObject", &t, "us-west-2", None),
        pod_identity(&shared, &cluster, "shop", "worker", "worker-7d9f4-x2m9p", "ASIAWRK00000000001", &t),
        call(&shared, "ASIAWRK00000000001", "sqs.amazonaws.com", "ReceiveMessage", &t, "us-west-2", None),
        call(&shared, "ASIAOLD00000000001", "kms.amazonaws.com", "Decrypt", &t, "us-west-2", None),
    ];
    // Athena's SQL on DuckDB: the one function whose name differs.
    let engine: Engine = Arc::new(move |sql: &str| {
        let rows =
            duckdb_rows(&records, &sql.replace("json_extract_scalar", "json_extract_string"), "cloudtrail.logs")?;
        let columns: Vec<String> = rows.first().map(|r| r.keys().cloned().collect()).unwrap_or_default();
        let values = rows.iter().map(|r| columns.iter().map(|c| r[c].clone()).collect()).collect();
        Ok((columns, values))
    });
    let athena = FakeAthena::new(engine);
    athena.page_size(2);
    let athena = athena.start();
    let w = f.start();
    let out = w
        .cmd()
        .env("AWS_ENDPOINT_URL_ATHENA", athena.url())
        .args(["audit", "-n", "shop", "-o", "json", "--usage", "athena", "--athena-table", "cloudtrail.logs"])
        .args(["--athena-workgroup", "auditors"])
        .run();
    out.assert_code(0);
    let doc = out.json();
    let role = doc["roles"].as_array().unwrap().iter().find(|r| r["roleArn"] == shared.as_str()).expect("the role");
    let o = &role["observed"];
    assert_eq!(o["source"], "athena");
    assert_eq!((o["events"].as_u64(), o["unattributed"].as_u64()), (Some(4), Some(1)), "{o:#}");
    let bindings = role["bindings"].as_array().unwrap();
    let actions = |sa: &str| bindings.iter().find(|b| b["serviceAccount"] == sa).unwrap()["actions"].clone();
    assert_eq!(actions("api"), serde_json::json!(["s3:GetObject"]));
    assert_eq!(actions("worker"), serde_json::json!(["sqs:ReceiveMessage"]));
    assert!(out.stderr.contains("scanned 700.00 MiB") && out.stderr.contains("$0.0037"), "{out}");

    let ops = athena.operations();
    assert_eq!(ops.first().map(String::as_str), Some("StartQueryExecution"), "{ops:?}");
    assert!(ops.iter().filter(|o| *o == "GetQueryExecution").count() >= 3, "polled until SUCCEEDED: {ops:?}");
    assert!(ops.iter().filter(|o| *o == "GetQueryResults").count() >= 2, "paged: {ops:?}");
    let queries = athena.queries();
    assert_eq!(queries.len(), 1);
    assert_eq!(queries[0].1.as_deref(), Some("auditors"));
    assert!(
        queries[0].0.contains("FROM cloudtrail.logs") && queries[0].0.contains("\"timestamp\" BETWEEN"),
        "{}",
        queries[0].0
    );
}
