//! Observed-usage benchmark (issue 11): a trail's log files in the S3 fake, read by the real binary
//! (`audit -A -o json --usage cloudtrail`), against
//!
//! 1. the floor: `zcat` of the same files to /dev/null (one core: gunzip alone, no parsing);
//! 2. the naive way: `aws s3 cp --recursive` of the files (or a signed `curl` per file when the AWS CLI is
//!    missing), then `zcat | jq | sort | uniq -c` aggregating the calls per role, key and action.
//!
//! It prints MB/s (of uncompressed JSON) and records/s for each, the ratios, and the binary's peak RSS. The
//! binary's time for the trail is its `--usage cloudtrail` run minus the same run without it (cluster and
//! IAM reads). Goals: >= 0.5x the gunzip floor with one download at a time, more with 16; peak RSS < 200 MB.
//!
//! "One core" pins the binary to CPU 0 with `taskset`.
//!
//! Run: `cargo bench --bench cloudtrail` (about 240 MB of logs; `-- --quick` for 40 MB, `-- --gb` for 1 GB).

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cloudtrail::{FakeCloudTrail, TrailSpec};
use support::fixtures::deployment;
use support::s3::FakeS3;
use support::trail::{call, gz, iam_user_call, log_key, web_identity};
use support::world::{ACCOUNT, Fakes};

const BUCKET: &str = "bench-trail";
const ROLES: usize = 20;
const RECORDS_PER_FILE: usize = 1000;
const SOURCES: &[(&str, &[&str])] = &[
    ("s3.amazonaws.com", &["GetObject", "PutObject", "ListObjectsV2", "HeadObject"]),
    ("sqs.amazonaws.com", &["ReceiveMessage", "DeleteMessage", "SendMessage"]),
    ("kms.amazonaws.com", &["Decrypt", "GenerateDataKey"]),
    ("dynamodb.amazonaws.com", &["GetItem", "PutItem", "Query"]),
];

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn peak_rss_of_children_mb() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

fn timed(mut cmd: Command) -> Duration {
    let start = Instant::now();
    let status = cmd.stdout(Stdio::null()).stderr(Stdio::inherit()).status().expect("run");
    assert!(status.success(), "{cmd:?} failed");
    start.elapsed()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let files = if args.iter().any(|a| a == "--quick") {
        40
    } else if args.iter().any(|a| a == "--gb") {
        1000
    } else {
        240
    };
    kubectl_iam_roles::install_crypto_provider();

    // The cluster: ROLES service accounts with IRSA roles.
    let f = Fakes::new();
    let mut roles = Vec::new();
    for i in 0..ROLES {
        let name = format!("svc-{i:02}");
        let arn = f.role(&name, &["s3:*", "sqs:*", "kms:*", "dynamodb:*"], Some(1));
        f.irsa_app("bench", &name, &name, &arn);
        f.kube.add(deployment("bench", &name).service_account(&name).build());
        roles.push(arn);
    }
    let provider = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{}", f.issuer.trim_start_matches("https://"));
    let day = f.ago(1);

    // The trail: each file holds a new session per role, its calls, and other principals' calls.
    let s3 = FakeS3::new();
    s3.create_bucket(BUCKET);
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut compressed, mut uncompressed, mut records) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    for n in 0..files {
        let mut batch = Vec::with_capacity(RECORDS_PER_FILE);
        for (i, role) in roles.iter().enumerate() {
            let key = format!("ASIA{n:06}{i:08}");
            batch.push(web_identity(
                role,
                &provider,
                &format!("system:serviceaccount:bench:svc-{i:02}"),
                &key,
                &day,
                "us-west-2",
            ));
        }
        let mut k = 0usize;
        while batch.len() < RECORDS_PER_FILE {
            k += 1;
            let i = k % ROLES;
            let (source, names) = SOURCES[k % SOURCES.len()];
            let name = names[k % names.len()];
            // Seven calls in ten by the roles' sessions (every role in turn), the rest by someone else.
            if (k / ROLES) % 10 < 7 {
                let key = format!("ASIA{n:06}{i:08}");
                batch.push(call(&roles[i], &key, source, name, &day, "us-west-2", None));
            } else {
                batch.push(iam_user_call(ACCOUNT, "ci-deployer", source, name, &day));
            }
        }
        // Unique ids and addresses per record, as real logs have: they decide how well the files compress.
        for (j, r) in batch.iter_mut().enumerate() {
            let id = (n * RECORDS_PER_FILE + j) as u64;
            let h = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            r["eventID"] = format!(
                "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                h >> 32,
                h & 0xffff,
                id & 0xfff,
                (h >> 20) & 0xfff,
                h >> 16
            )
            .into();
            r["requestID"] = format!("{:016X}{:04X}", h, id & 0xffff).into();
            r["sourceIPAddress"] = format!("10.{}.{}.{}", (h >> 8) & 0xff, (h >> 16) & 0xff, (h >> 24) & 0xff).into();
        }
        uncompressed += serde_json::json!({ "Records": &batch }).to_string().len() as u64;
        records += batch.len() as u64;
        let body = gz(&batch);
        compressed += body.len() as u64;
        let key = log_key(None, ACCOUNT, "us-west-2", &day, n);
        std::fs::write(dir.path().join(format!("{n:05}.json.gz")), &body).expect("write");
        s3.put(BUCKET, &key, body);
    }
    println!(
        "cloudtrail bench: {files} files, {records} records, {:.1} MB of JSON ({:.1} MB gzipped), generated in {:.1} s",
        mb(uncompressed),
        mb(compressed),
        started.elapsed().as_secs_f64()
    );

    let ct = FakeCloudTrail::new();
    ct.add_trail(TrailSpec::new("org", ACCOUNT, "us-west-2", BUCKET));
    let (s3, ct) = (s3.start(), ct.start());
    let w = f.start();
    let binary = |extra: &[&str], cache: &Path| {
        let cmd = w.cmd().args(["audit", "-A", "-o", "json", "--cache-dir"]).arg(cache).args(extra);
        cmd.env("AWS_ENDPOINT_URL_S3", s3.url()).env("AWS_ENDPOINT_URL_CLOUDTRAIL", ct.url())
    };
    let run = |cmd: support::cli::Cmd| timed(cmd.command());

    // The binary, without and with the trail (fresh caches each time).
    let fresh = || tempfile::tempdir().expect("cache");
    let base = (0..2).map(|_| run(binary(&[], fresh().path()))).min().expect("runs");
    let ours = run(binary(&["--usage", "cloudtrail"], fresh().path()));
    let rss = peak_rss_of_children_mb();
    // One core: the same run pinned to CPU 0 (downloads still overlap the parsing, as they would live).
    let pinned = |cmd: support::cli::Cmd| {
        let inner = cmd.command();
        let mut c = Command::new("taskset");
        c.arg("-c").arg("0").arg(inner.get_program()).args(inner.get_args());
        c.env_clear().envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))));
        timed(c)
    };
    let base_one = (0..2).map(|_| pinned(binary(&[], fresh().path()))).min().expect("runs");
    let one = pinned(binary(&["--usage", "cloudtrail"], fresh().path())).saturating_sub(base_one) + base;
    let cache = fresh();
    let first = run(binary(&["--usage", "cloudtrail"], cache.path()));
    let again = run(binary(&["--usage", "cloudtrail"], cache.path()));
    let trail = |t: Duration| t.saturating_sub(base).max(Duration::from_millis(1));

    // The floor: gunzip only, one core.
    let floor = timed({
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!("zcat {}/*.json.gz > /dev/null", dir.path().display()));
        c
    });

    // The naive way: download everything, then zcat | jq aggregation.
    let naive_dir = tempfile::tempdir().expect("naive dir");
    let download = if Command::new("aws").arg("--version").output().is_ok_and(|o| o.status.success()) {
        let mut c = Command::new("aws");
        c.args(["s3", "cp", "--recursive", "--quiet", &format!("s3://{BUCKET}/AWSLogs/")])
            .arg(naive_dir.path())
            .args(["--endpoint-url", &s3.url()])
            .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
            .env("AWS_DEFAULT_REGION", "us-west-2");
        ("aws s3 cp --recursive", c)
    } else {
        let mut c = Command::new("sh");
        let keys: Vec<String> = (0..files).map(|n| log_key(None, ACCOUNT, "us-west-2", &day, n)).collect();
        let script: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(n, k)| {
                format!(
                    "curl -sf --aws-sigv4 aws:amz:us-west-2:s3 --user AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY \
                     -o {}/{n:05}.json.gz {}/{BUCKET}/{k}",
                    naive_dir.path().display(),
                    s3.url()
                )
            })
            .collect();
        c.arg("-c").arg(script.join(" && "));
        ("curl per file", c)
    };
    let fetch = timed(download.1);
    let aggregate = timed({
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!(
            "find {} -name '*.json.gz' -exec zcat {{}} + | jq -c '.Records[] | select(.userIdentity.type == \"AssumedRole\") \
             | [.userIdentity.sessionContext.sessionIssuer.arn, .userIdentity.accessKeyId, .eventSource, .eventName]' \
             | sort | uniq -c > /dev/null",
            naive_dir.path().display()
        ));
        c
    });
    let naive = fetch + aggregate;

    let rate = |t: Duration| (mb(uncompressed) / t.as_secs_f64(), records as f64 / t.as_secs_f64());
    let show = |label: &str, t: Duration| {
        let (mbs, rps) = rate(t);
        println!("   {label:<44} {:>8.0} ms  {mbs:>7.1} MB/s  {:>9.0} records/s", t.as_secs_f64() * 1000.0, rps);
    };
    println!("   binary without --usage (cluster and IAM only): {:.0} ms", base.as_secs_f64() * 1000.0);
    show("ours, all cores (2 here), 16 downloads at a time", trail(ours));
    show("ours, pinned to one core", trail(one));
    show("floor: zcat > /dev/null (one core)", floor);
    show(&format!("naive: {} + zcat | jq", download.0), naive);
    println!(
        "   naive download alone: {:.0} ms, jq aggregation alone: {:.0} ms",
        fetch.as_secs_f64() * 1000.0,
        aggregate.as_secs_f64() * 1000.0
    );
    let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
    println!(
        "   ours on one core vs the gunzip floor: {:.2}x the floor's throughput (goal >= 0.5x)",
        ratio(trail(one), floor)
    );
    println!("   ours on all cores vs the gunzip floor: {:.2}x", ratio(trail(ours), floor));
    println!(
        "   a second run with the cache (no new files): {:.0} ms in all, against {:.0} ms for the first",
        again.as_secs_f64() * 1000.0,
        first.as_secs_f64() * 1000.0
    );
    println!("   ours vs the naive way: {:.1}x faster", ratio(trail(ours), naive));
    println!("   peak RSS of the binary: {rss:.0} MB for {:.0} MB of logs (goal < 200 MB for 1 GB)", mb(uncompressed));

    // The answer is the same as jq's: every role's calls are attributed to its service account.
    let out = w
        .cmd()
        .args(["audit", "-A", "-o", "json", "--usage", "cloudtrail"])
        .env("AWS_ENDPOINT_URL_S3", s3.url())
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", ct.url())
        .run();
    let doc: Value = out.json();
    let attributed = doc["roles"].as_array().expect("roles").iter().all(|r| {
        r["observed"]["unattributed"] == 0 && r["observed"]["actions"].as_array().is_some_and(|a| !a.is_empty())
    });
    assert!(attributed, "every role's calls attributed: {doc:#}");
}
