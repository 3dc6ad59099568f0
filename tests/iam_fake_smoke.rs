//! Proves the fake IAM and STS speak the AWS Query protocol by pointing clients we did not write at them:
//! aws-sdk-iam and aws-sdk-sts parse every answer, classify every error and retry throttling as they would
//! against AWS. If these pass, a failing audit test is about our code, not about a fake that lies.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_sdk_iam::primitives::DateTimeFormat;
use aws_sdk_iam::types::{AccessAdvisorUsageGranularityType as Granularity, JobStatusType, ServiceLastAccessed};
use serde_json::{Value, json};
use support::http_server::{Fault, percent_decode};
use support::iam::{FakeIam, RoleSpec, allow, irsa_trust};
use support::sts::FakeSts;

const PRIMARY: &str = "111122223333";
const OTHER: &str = "444455556666";
const ISSUER: &str = "https://oidc.eks.us-west-2.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF";
const QUEUE_WRITER: &str = "arn:aws:iam::111122223333:policy/app/queue-writer";
const ECR_READ: &str = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly";

fn config(url: &str, credentials: Credentials, max_attempts: u32) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .endpoint_url(url)
        .retry_config(
            RetryConfig::standard().with_max_attempts(max_attempts).with_initial_backoff(Duration::from_millis(1)),
        )
        .build()
}

fn key(access_key: &str) -> Credentials {
    Credentials::new(access_key, "secret", None, None, "test")
}

fn iam_client(url: &str, access_key: &str) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&config(url, key(access_key), 3))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A role with inline, customer managed and AWS managed policies, used for S3 and SQS only.
fn fake_with_web_api() -> FakeIam {
    let iam = FakeIam::new(PRIMARY);
    iam.add_managed_policy(QUEUE_WRITER, allow(&["sqs:SendMessage", "kms:GenerateDataKey"]));
    iam.add_role(
        RoleSpec::new("web-api")
            .path("/eks/")
            .trust(irsa_trust(PRIMARY, ISSUER, "web", "api"))
            .inline("s3", allow(&["s3:Get*", "s3:PutBucketPolicy"]))
            .inline("tables", allow(&["dynamodb:GetItem"]))
            .attach(QUEUE_WRITER)
            .attach(ECR_READ)
            .description("web api in prod")
            .last_used("2026-11-19T22:14:03Z", "us-west-2"),
    );
    iam.set_usage("web-api", "s3", Some("2026-11-20T08:00:00Z"), None, Some("us-west-2"));
    iam.set_usage("web-api", "sqs", Some("2026-10-01T12:30:00Z"), None, Some("eu-west-1"));
    iam
}

type FirstPage = aws_sdk_iam::operation::get_service_last_accessed_details::GetServiceLastAccessedDetailsOutput;

fn date(dt: Option<&aws_sdk_iam::primitives::DateTime>) -> Option<String> {
    dt.map(|d| d.fmt(DateTimeFormat::DateTime).unwrap())
}

/// Polls until the job leaves IN_PROGRESS, then pages through it with `page_size`; returns the first page,
/// every service and the number of pages.
async fn read_job(
    client: &aws_sdk_iam::Client,
    job_id: &str,
    page_size: i32,
) -> (FirstPage, Vec<ServiceLastAccessed>, usize) {
    let first = loop {
        let out = client.get_service_last_accessed_details().job_id(job_id).max_items(page_size).send().await.unwrap();
        if out.job_status() != &JobStatusType::InProgress {
            break out;
        }
        // The Rust SDK models the required JobCompletionDate as the epoch when IAM leaves it out.
        assert!(out.job_completion_date().secs() == 0 && out.services_last_accessed().is_empty());
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let mut services = first.services_last_accessed().to_vec();
    let mut marker = first.marker().map(str::to_string);
    let mut pages = 1;
    assert_eq!(first.is_truncated(), marker.is_some());
    while let Some(m) = marker {
        let page = client
            .get_service_last_accessed_details()
            .job_id(job_id)
            .max_items(page_size)
            .marker(m)
            .send()
            .await
            .unwrap();
        assert!(page.services_last_accessed().len() <= page_size as usize);
        services.extend(page.services_last_accessed().iter().cloned());
        marker = page.marker().map(str::to_string);
        pages += 1;
    }
    (first, services, pages)
}

#[test]
fn get_role_returns_the_url_encoded_trust_policy_and_last_use() {
    let iam = fake_with_web_api().start();
    let client = iam_client(&iam.url(), "AKIDEXAMPLE");
    runtime().block_on(async {
        let role = client.get_role().role_name("web-api").send().await.unwrap().role.unwrap();
        assert_eq!(role.arn(), "arn:aws:iam::111122223333:role/eks/web-api");
        assert_eq!((role.path(), role.role_name()), ("/eks/", "web-api"));
        assert!(role.role_id().starts_with("AROA") && role.role_id().len() == 21, "{}", role.role_id());
        assert_eq!(role.description(), Some("web api in prod"));
        assert_eq!(role.max_session_duration(), Some(3600));
        let raw = role.assume_role_policy_document().unwrap();
        assert!(raw.starts_with("%7B%22") && !raw.contains('"'), "IAM sends the document percent-encoded: {raw}");
        let trust: Value = serde_json::from_str(&percent_decode(raw)).unwrap();
        assert_eq!(trust, irsa_trust(PRIMARY, ISSUER, "web", "api"));
        let last_used = role.role_last_used().unwrap();
        assert_eq!(date(last_used.last_used_date()).as_deref(), Some("2026-11-19T22:14:03Z"));
        assert_eq!(last_used.region(), Some("us-west-2"));

        let err = client.get_role().role_name("gone").send().await.unwrap_err().into_service_error();
        assert!(err.is_no_such_entity_exception(), "{err:?}");
        assert_eq!(err.message(), Some("The role with name gone cannot be found."));
    });
    assert!(iam.requests().iter().all(|c| c.signed() && c.access_key.as_deref() == Some("AKIDEXAMPLE")));
    assert_eq!(iam.count("GetRole"), 2);
}

#[test]
fn service_level_job_lists_exactly_the_allowed_services_paged() {
    let iam = fake_with_web_api();
    iam.job_delay(Duration::from_secs(600));
    let iam = iam.start();
    let client = iam_client(&iam.url(), "AKIDEXAMPLE");
    runtime().block_on(async {
        let arn = "arn:aws:iam::111122223333:role/eks/web-api";
        let slow = client.generate_service_last_accessed_details().arn(arn).send().await.unwrap();
        let pending = client.get_service_last_accessed_details().job_id(slow.job_id().unwrap()).send().await.unwrap();
        assert_eq!(pending.job_status(), &JobStatusType::InProgress);
        assert!(pending.job_creation_date().secs() > 0 && !pending.is_truncated());

        iam.job_delay(Duration::from_millis(20));
        let job = client.generate_service_last_accessed_details().arn(arn).send().await.unwrap();
        let job_id = job.job_id().unwrap();
        assert_eq!(job_id.len(), 36);
        let (first, services, pages) = read_job(&client, job_id, 2).await;
        assert_eq!(first.job_status(), &JobStatusType::Completed);
        assert_eq!(first.job_type(), Some(&Granularity::ServiceLevel));
        assert!(first.job_completion_date().secs() >= first.job_creation_date().secs());
        let namespaces: Vec<&str> = services.iter().map(|s| s.service_namespace()).collect();
        assert_eq!(namespaces, ["dynamodb", "ecr", "kms", "s3", "sqs"], "allowed by inline + managed policies");
        assert_eq!(pages, 3);

        let s3 = &services[3];
        assert_eq!(s3.service_name(), "Amazon S3");
        assert_eq!(date(s3.last_authenticated()).as_deref(), Some("2026-11-20T08:00:00Z"));
        assert_eq!(s3.last_authenticated_entity(), Some(arn), "a role report names the role");
        assert_eq!(s3.last_authenticated_region(), Some("us-west-2"));
        assert_eq!(s3.total_authenticated_entities(), Some(1));
        assert!(s3.tracked_actions_last_accessed.is_none(), "service-level jobs carry no actions");
        let dynamodb = &services[0];
        assert!(dynamodb.last_authenticated().is_none() && dynamodb.last_authenticated_entity().is_none());
        assert_eq!(dynamodb.total_authenticated_entities(), Some(0));
    });
    assert!(iam.count("GetServiceLastAccessedDetails") >= 4, "one IN_PROGRESS answer, then 3 pages");
}

#[test]
fn action_level_job_reports_tracked_actions() {
    let iam = FakeIam::new(PRIMARY);
    iam.add_role(RoleSpec::new("builder").inline("main", allow(&["s3:*", "ec2:Describe*", "sqs:SendMessage"])));
    iam.add_role(RoleSpec::new("admin").attach("arn:aws:iam::aws:policy/AdministratorAccess"));
    iam.set_action_usage("builder", "s3:CreateBucket", "2026-11-18T09:00:00Z");
    iam.job_delay(Duration::from_millis(5));
    let iam = iam.start();
    let client = iam_client(&iam.url(), "AKIDEXAMPLE");
    runtime().block_on(async {
        let job = client
            .generate_service_last_accessed_details()
            .arn("arn:aws:iam::111122223333:role/builder")
            .granularity(Granularity::ActionLevel)
            .send()
            .await
            .unwrap();
        let (first, services, _) = read_job(&client, job.job_id().unwrap(), 1000).await;
        assert_eq!(first.job_type(), Some(&Granularity::ActionLevel));
        let by_ns = |ns: &str| services.iter().find(|s| s.service_namespace() == ns).unwrap();

        let s3 = by_ns("s3");
        let actions = s3.tracked_actions_last_accessed.as_deref().unwrap();
        assert!(actions.len() > 3 && actions.iter().all(|a| !a.action_name().unwrap().contains(':')));
        let create = actions.iter().find(|a| a.action_name() == Some("CreateBucket")).unwrap();
        assert_eq!(date(create.last_accessed_time()).as_deref(), Some("2026-11-18T09:00:00Z"));
        assert_eq!(create.last_accessed_entity(), Some("arn:aws:iam::111122223333:role/builder"));
        assert_eq!(create.last_accessed_region(), Some("us-east-1"));
        let delete = actions.iter().find(|a| a.action_name() == Some("DeleteBucket")).unwrap();
        assert!(delete.last_accessed_time().is_none() && delete.last_accessed_entity().is_none());
        assert_eq!(date(s3.last_authenticated()).as_deref(), Some("2026-11-18T09:00:00Z"), "action use is service use");

        let ec2 = by_ns("ec2");
        assert_eq!(ec2.tracked_actions_last_accessed, Some(vec![]), "Describe* allows no tracked action");
        assert!(by_ns("sqs").tracked_actions_last_accessed.is_none(), "SQS is not tracked at action level");
        assert_eq!(services.len(), 3);

        let admin = client
            .generate_service_last_accessed_details()
            .arn("arn:aws:iam::111122223333:role/admin")
            .send()
            .await
            .unwrap();
        let (_, everything, _) = read_job(&client, admin.job_id().unwrap(), 1000).await;
        assert!(everything.len() >= 30, "`*` allows every service: {}", everything.len());
        let namespaces: Vec<&str> = everything.iter().map(|s| s.service_namespace()).collect();
        assert!(namespaces.is_sorted(), "sorted by namespace");
    });
}

#[test]
fn the_sdk_retries_throttling_and_injected_server_errors() {
    let iam = fake_with_web_api();
    iam.throttle_share(0.4, 7);
    iam.fault(Fault::new("ListRolePolicies", 503).once());
    let iam = iam.start();
    let client = aws_sdk_iam::Client::new(&config(&iam.url(), key("AKIDEXAMPLE"), 25));
    runtime().block_on(async {
        for _ in 0..12 {
            client.get_role().role_name("web-api").send().await.unwrap();
        }
        let job = client
            .generate_service_last_accessed_details()
            .arn("arn:aws:iam::111122223333:role/eks/web-api")
            .send()
            .await
            .unwrap();
        let (_, services, _) = read_job(&client, job.job_id().unwrap(), 2).await;
        assert_eq!(services.len(), 5);
    });
    let log = iam.requests();
    let throttled: Vec<_> = log.iter().filter(|c| c.error.as_deref() == Some("Throttling")).collect();
    assert!(!throttled.is_empty() && throttled.iter().all(|c| c.status == 400), "{} throttled", throttled.len());
    assert_eq!(log.iter().filter(|c| c.action == "GetRole" && c.status == 200).count(), 12);

    iam.throttle_share(0.0, 0);
    let once = iam_client(&iam.url(), "AKIDEXAMPLE");
    runtime().block_on(async {
        once.list_role_policies().role_name("web-api").send().await.unwrap();
    });
    let policies: Vec<_> = iam.requests().into_iter().filter(|c| c.action == "ListRolePolicies").collect();
    assert_eq!(policies.iter().map(|c| c.status).collect::<Vec<_>>(), [503, 200], "the 503 was retried");
}

#[test]
fn denials_failures_and_foreign_job_ids_parse_as_the_sdk_models_them() {
    let iam = fake_with_web_api();
    iam.add_role(RoleSpec::new("batch").inline("q", allow(&["sqs:*"])));
    iam.add_role(RoleSpec::new("locked").inline("q", allow(&["sqs:*"])));
    iam.fail_jobs_for("batch");
    let iam = iam.start();
    let client = iam_client(&iam.url(), "AKIDEXAMPLE");
    let colleague = iam_client(&iam.url(), "AKIDCOLLEAGUE");
    runtime().block_on(async {
        let generate = |arn: &str| client.generate_service_last_accessed_details().arn(arn).send();

        let failed = generate("arn:aws:iam::111122223333:role/batch").await.unwrap();
        let (out, services, _) = read_job(&client, failed.job_id().unwrap(), 100).await;
        assert_eq!(out.job_status(), &JobStatusType::Failed);
        assert!(services.is_empty() && out.job_completion_date().secs() > 0);
        let error = out.error().unwrap();
        assert!(!error.code().is_empty() && !error.message().is_empty());

        let job = generate("arn:aws:iam::111122223333:role/eks/web-api").await.unwrap();
        let err = colleague
            .get_service_last_accessed_details()
            .job_id(job.job_id().unwrap())
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(err.is_no_such_entity_exception(), "another key may not read the job: {err:?}");

        let err = generate("arn:aws:iam::111122223333:role/nope").await.unwrap_err().into_service_error();
        assert!(err.is_no_such_entity_exception(), "{err:?}");
        let err = generate("not-an-arn").await.unwrap_err().into_service_error();
        assert!(err.is_invalid_input_exception(), "{err:?}");

        iam.deny("iam:GenerateServiceLastAccessedDetails");
        let err = generate("arn:aws:iam::111122223333:role/locked").await.unwrap_err();
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));
        let err = err.into_service_error();
        assert_eq!(err.code(), Some("AccessDenied"));
        let message = err.message().unwrap();
        assert!(message.contains("not authorized to perform: iam:GenerateServiceLastAccessedDetails"), "{message}");
        assert!(message.contains("arn:aws:iam::111122223333:role/locked"), "{message}");
    });
}

#[test]
fn assumed_role_credentials_reach_the_second_account() {
    let iam = fake_with_web_api();
    iam.add_role(RoleSpec::new("auditor").account(OTHER));
    iam.add_role(RoleSpec::new("payments").account(OTHER).inline("q", allow(&["sqs:*", "kms:Decrypt"])));
    iam.add_role(RoleSpec::new("forbidden").account(OTHER));
    let sts = FakeSts::new(PRIMARY);
    sts.share_keys_with(&iam);
    sts.deny_assume("arn:aws:iam::444455556666:role/forbidden");
    let (iam, sts) = (iam.start(), sts.start());
    let payments = "arn:aws:iam::444455556666:role/payments";
    runtime().block_on(async {
        let home = aws_sdk_sts::Client::new(&config(&sts.url(), key("AKIDEXAMPLE"), 3));
        let me = home.get_caller_identity().send().await.unwrap();
        assert_eq!((me.account(), me.arn()), (Some(PRIMARY), Some("arn:aws:iam::111122223333:user/tester")));

        let assumed = home
            .assume_role()
            .role_arn("arn:aws:iam::444455556666:role/auditor")
            .role_session_name("iam-roles-audit")
            .send()
            .await
            .unwrap();
        let creds = assumed.credentials().unwrap();
        assert!(creds.access_key_id().starts_with("ASIA444455556666") && creds.access_key_id().len() == 20);
        assert!(creds.expiration().secs() > 0);
        let user = assumed.assumed_role_user().unwrap();
        assert_eq!(user.arn(), "arn:aws:sts::444455556666:assumed-role/auditor/iam-roles-audit");
        assert!(user.assumed_role_id().starts_with("AROA") && user.assumed_role_id().ends_with(":iam-roles-audit"));

        let auditor_creds = Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_string()),
            None,
            "assumed",
        );
        let away = aws_sdk_sts::Client::new(&config(&sts.url(), auditor_creds.clone(), 3));
        let them = away.get_caller_identity().send().await.unwrap();
        assert_eq!(them.account(), Some(OTHER));

        for denied in ["arn:aws:iam::444455556666:role/forbidden", "arn:aws:iam::444455556666:role/missing"] {
            let err = home.assume_role().role_arn(denied).role_session_name("s").send().await.unwrap_err();
            let err = err.into_service_error();
            assert_eq!(err.code(), Some("AccessDenied"), "{err:?}");
            assert!(err.message().unwrap().contains("sts:AssumeRole on resource"), "{err:?}");
        }

        let iam_home = iam_client(&iam.url(), "AKIDEXAMPLE");
        let iam_away = aws_sdk_iam::Client::new(&config(&iam.url(), auditor_creds, 3));
        let err = iam_home.get_role().role_name("payments").send().await.unwrap_err().into_service_error();
        assert!(err.is_no_such_entity_exception(), "the primary account cannot see the other's roles");
        let err = iam_home
            .generate_service_last_accessed_details()
            .arn(payments)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(err.code(), Some("AccessDenied"), "{err:?}");
        assert!(err.message().unwrap().contains("user/tester"));

        let role = iam_away.get_role().role_name("payments").send().await.unwrap().role.unwrap();
        assert_eq!(role.arn(), payments);
        let job = iam_away.generate_service_last_accessed_details().arn(payments).send().await.unwrap();
        let (_, services, _) = read_job(&iam_away, job.job_id().unwrap(), 100).await;
        let namespaces: Vec<&str> = services.iter().map(|s| s.service_namespace()).collect();
        assert_eq!(namespaces, ["kms", "sqs"]);
        let err = iam_away.get_role().role_name("web-api").send().await.unwrap_err().into_service_error();
        assert!(err.is_no_such_entity_exception());

        iam.deny("GetRole");
        let err = iam_away.get_role().role_name("payments").send().await.unwrap_err().into_service_error();
        let message = err.message().unwrap();
        assert!(
            message.starts_with("User: arn:aws:sts::444455556666:assumed-role/auditor/iam-roles-audit "),
            "{message}"
        );
    });
    let calls = iam.requests();
    let away_key = calls.iter().rev().find_map(|c| c.access_key.clone()).unwrap();
    assert!(away_key.starts_with("ASIA444455556666"));
    assert_eq!(sts.count("AssumeRole"), 3);
}

#[test]
fn policy_and_oidc_reads() {
    let iam = fake_with_web_api();
    let provider = iam.add_oidc_provider(ISSUER, &["sts.amazonaws.com"]);
    iam.add_managed_policy("arn:aws:iam::444455556666:policy/theirs", allow(&["s3:*"]));
    let iam = iam.start();
    let client = iam_client(&iam.url(), "AKIDEXAMPLE");
    runtime().block_on(async {
        let first = client.list_attached_role_policies().role_name("web-api").max_items(1).send().await.unwrap();
        assert!(first.is_truncated());
        let second = client
            .list_attached_role_policies()
            .role_name("web-api")
            .max_items(1)
            .marker(first.marker().unwrap())
            .send()
            .await
            .unwrap();
        assert!(!second.is_truncated() && second.marker().is_none());
        let attached: Vec<_> =
            first.attached_policies().iter().chain(second.attached_policies()).map(|p| p.policy_arn().unwrap()).collect();
        assert_eq!(attached, [QUEUE_WRITER, ECR_READ]);
        assert_eq!(first.attached_policies()[0].policy_name(), Some("queue-writer"));

        let ecr = client.get_policy().policy_arn(ECR_READ).send().await.unwrap().policy.unwrap();
        assert_eq!(ecr.policy_name(), Some("AmazonEC2ContainerRegistryReadOnly"));
        assert_eq!(ecr.default_version_id(), Some("v3"));
        assert_eq!(ecr.attachment_count(), Some(1));
        let version = client.get_policy_version().policy_arn(ECR_READ).version_id("v3").send().await.unwrap();
        let version = version.policy_version.unwrap();
        assert!(version.is_default_version());
        let doc: Value = serde_json::from_str(&percent_decode(version.document().unwrap())).unwrap();
        assert!(doc["Statement"][0]["Action"].as_array().unwrap().contains(&json!("ecr:BatchGetImage")));

        let mine = client.get_policy().policy_arn(QUEUE_WRITER).send().await.unwrap().policy.unwrap();
        assert_eq!((mine.path(), mine.default_version_id()), (Some("/app/"), Some("v1")));
        let err = client
            .get_policy()
            .policy_arn("arn:aws:iam::444455556666:policy/theirs")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(err.is_no_such_entity_exception());

        let inline = client.list_role_policies().role_name("web-api").send().await.unwrap();
        assert_eq!(inline.policy_names(), ["s3", "tables"]);
        let s3 = client.get_role_policy().role_name("web-api").policy_name("s3").send().await.unwrap();
        assert_eq!(s3.role_name(), "web-api");
        let doc: Value = serde_json::from_str(&percent_decode(s3.policy_document())).unwrap();
        assert_eq!(doc, allow(&["s3:Get*", "s3:PutBucketPolicy"]));
        let err =
            client.get_role_policy().role_name("web-api").policy_name("x").send().await.unwrap_err().into_service_error();
        assert!(err.is_no_such_entity_exception());

        let providers = client.list_open_id_connect_providers().send().await.unwrap();
        let arns: Vec<_> = providers.open_id_connect_provider_list().iter().filter_map(|p| p.arn()).collect();
        assert_eq!(arns, [provider.as_str()]);
        assert_eq!(provider, "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF");
        let got = client.get_open_id_connect_provider().open_id_connect_provider_arn(&provider).send().await.unwrap();
        assert_eq!(got.url(), Some(ISSUER.trim_start_matches("https://")));
        assert_eq!(got.client_id_list(), ["sts.amazonaws.com"]);
        assert_eq!(got.thumbprint_list().len(), 1);
        assert!(got.create_date().is_some());
    });
}

/// What the SDK hides: raw status, content type and XML for an unknown action and an unsigned call.
#[test]
fn raw_query_errors() {
    let iam = FakeIam::new(PRIMARY).start();
    let post = |body: &str, signed: bool| {
        let mut stream = TcpStream::connect(iam.url().trim_start_matches("http://")).unwrap();
        let auth = if signed {
            "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=00\r\n"
        } else {
            ""
        };
        let request = format!(
            "POST / HTTP/1.1\r\nHost: iam\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\n{auth}\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        out
    };
    let unknown = post("Action=DeleteEverything&Version=2010-05-08", true);
    assert!(unknown.starts_with("HTTP/1.1 400"), "{unknown}");
    assert!(unknown.to_ascii_lowercase().contains("content-type: text/xml"));
    assert!(unknown.contains("<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">"));
    assert!(unknown.contains("<Type>Sender</Type>") && unknown.contains("<Code>InvalidAction</Code>"));
    assert!(unknown.contains("<RequestId>"));
    let unsigned = post("Action=ListOpenIDConnectProviders&Version=2010-05-08", false);
    assert!(unsigned.starts_with("HTTP/1.1 403") && unsigned.contains("MissingAuthenticationToken"), "{unsigned}");
    let ok = post("Action=ListOpenIDConnectProviders&Version=2010-05-08", true);
    assert!(ok.contains("<ListOpenIDConnectProvidersResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">"));
    assert!(ok.contains("<OpenIDConnectProviderList></OpenIDConnectProviderList>"), "{ok}");
    assert!(ok.contains("<ResponseMetadata>"));
    assert_eq!(iam.count("DeleteEverything"), 1);
}
