//! IAM reads for the audit: `GetRole` and the Access Advisor job protocol (generate, poll, read every
//! page), for many roles at once under a bound on calls in flight.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_iam::Client;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::{AccessAdvisorUsageGranularityType, JobStatusType};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use jiff::Timestamp;
use tokio::sync::Semaphore;

use super::cache::Cache;
use crate::arn::{Arn, RoleArn};
use crate::model::{Granularity, ProblemCode, ReportError, RoleReport, ServiceAccess, TrackedAction};
use crate::{Error, Result};

/// How the audit reads IAM.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub granularity: Granularity,
    /// IAM calls in flight at once (jobs waiting server-side hold no slot).
    pub concurrency: usize,
    pub job_timeout: Duration,
    pub refresh: bool,
    pub cache: Cache,
}

/// IAM clients for every account the credentials can read: the caller's own, and one per
/// `--account-role` (through STS AssumeRole). Built once per command and shared by every IAM read.
pub struct IamClients {
    /// The account of the credentials in use.
    pub caller: String,
    /// The partition of the credentials in use (`aws`, `aws-cn`...): IAM answers only for roles there.
    pub partition: String,
    /// The SDK configuration the clients were built from (region, credentials), for other AWS services.
    pub sdk: SdkConfig,
    by_account: HashMap<String, Client>,
}

impl IamClients {
    /// Checks the credentials (STS GetCallerIdentity, once) and prepares a client per account.
    pub async fn connect(sdk: &SdkConfig, account_roles: &HashMap<String, String>) -> Result<Self> {
        let (caller, partition) = caller_identity(sdk).await?;
        let mut by_account: HashMap<String, Client> = HashMap::new();
        let own = aws_sdk_iam::config::Builder::from(sdk).interceptor(super::aws::RetryNotice).build();
        by_account.insert(caller.clone(), Client::from_conf(own));
        for (account, role) in account_roles {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role.clone())
                .session_name("kubectl-iam-roles-audit")
                .configure(sdk)
                .build()
                .await;
            let config = aws_sdk_iam::config::Builder::from(sdk)
                .credentials_provider(provider)
                .interceptor(super::aws::RetryNotice)
                .build();
            by_account.insert(account.clone(), Client::from_conf(config));
        }
        Ok(IamClients { caller, partition, sdk: sdk.clone(), by_account })
    }

    /// The client that can read `role`, or why none can: another partition (IAM is never asked by name in
    /// the wrong partition, where the same name may be another role), or an account without a client.
    pub fn client_for(&self, role: &RoleArn) -> Result<&Client, ReportError> {
        let arn = role.to_string();
        if role.partition != self.partition {
            return Err(ReportError {
                code: ProblemCode::CrossPartitionRole,
                message: format!(
                    "role {arn} is in partition {}, but the credentials in use are in {} (account {}); run the audit \
                     with credentials in {} to read it",
                    role.partition, self.partition, self.caller, role.partition
                ),
            });
        }
        self.for_account(&role.account).ok_or_else(|| ReportError {
            code: ProblemCode::CrossAccountRole,
            message: format!(
                "role {arn} is in account {}, not in the audited account {}; pass --account-role {}=ROLE_ARN naming a \
                 role there that may call GetRole and the last-accessed actions",
                role.account, self.caller, role.account
            ),
        })
    }

    /// The client that can read roles of `account`, if any.
    pub fn for_account(&self, account: &str) -> Option<&Client> {
        self.by_account.get(account)
    }

    /// The client of the caller's own account.
    pub fn own(&self) -> Option<&Client> {
        self.for_account(&self.caller)
    }
}

/// First wait before polling a job, growth per poll, and the longest wait.
const POLL_START: Duration = Duration::from_millis(250);
const POLL_GROWTH: f64 = 1.5;
const POLL_MAX: Duration = Duration::from_secs(5);
/// The largest page IAM allows.
const MAX_ITEMS: i32 = 1000;

/// Reads the last-accessed report of every role. Per-role failures are in each report's `error`.
pub async fn reports(
    iam: &IamClients,
    roles: &[RoleArn],
    settings: &AuditSettings,
    on_done: &(dyn Fn(&RoleReport) + Sync),
) -> Vec<RoleReport> {
    let calls = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let now = Timestamp::now();
    let mut pending: FuturesUnordered<_> = roles
        .iter()
        .map(|role| {
            let client = iam.client_for(role);
            let calls = calls.clone();
            async move {
                let arn = role.to_string();
                if !settings.refresh
                    && let Some(cached) = settings.cache.get(&iam.caller, &arn, settings.granularity, now)
                {
                    return cached;
                }
                let report = match client {
                    Ok(client) => one_role(client, role, settings, &calls).await,
                    Err(e) => failed(&arn, settings.granularity, e.code, e.message),
                };
                settings.cache.put(&iam.caller, &report);
                report
            }
        })
        .collect();
    let mut out = Vec::with_capacity(roles.len());
    while let Some(report) = pending.next().await {
        on_done(&report);
        out.push(report);
    }
    out.sort_by(|a, b| a.role_arn.cmp(&b.role_arn));
    out
}

/// The account and partition of the credentials in use; failing here means there are no usable credentials.
async fn caller_identity(sdk: &SdkConfig) -> Result<(String, String)> {
    if let Err(reason) = super::aws::check_credentials(sdk).await {
        return Err(Error::aws(format!(
            "the audit needs AWS credentials: {reason}; configure them (aws configure, AWS_PROFILE or --profile)"
        )));
    }
    // Few retries: when STS is out of reach the audit cannot run, and the user should hear so quickly.
    let config = aws_sdk_sts::config::Builder::from(sdk)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .build();
    let sts = aws_sdk_sts::Client::from_conf(config);
    match sts.get_caller_identity().send().await {
        Ok(out) => {
            let account = out.account().ok_or_else(|| Error::aws("sts:GetCallerIdentity returned no account"))?;
            // The caller's ARN names the partition (arn:aws-cn:sts::...); without it, assume the commercial one.
            let partition = out.arn().and_then(|arn| arn.parse::<Arn>().ok()).map_or("aws".into(), |arn| arn.partition);
            Ok((account.to_string(), partition))
        }
        Err(e) => Err(Error::aws(format!(
            "cannot tell which AWS account the credentials belong to: sts:GetCallerIdentity failed ({}); check the \
             credentials and that STS is reachable",
            super::aws::error_sentence(&e)
        ))
        .because(e)),
    }
}

fn failed(arn: &str, granularity: Granularity, code: ProblemCode, message: String) -> RoleReport {
    RoleReport {
        role_arn: arn.to_string(),
        granularity,
        fetched_at: Timestamp::now(),
        role_last_used: None,
        role_last_used_region: None,
        services: Vec::new(),
        error: Some(ReportError { code, message }),
    }
}

/// Turns an IAM error into the per-role problem: missing role, missing permission, or a failed call.
pub(crate) fn call_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    arn: &str,
    action: &str,
    e: &SdkError<E>,
) -> (ProblemCode, String) {
    match e.code() {
        Some("NoSuchEntity") => (
            ProblemCode::RoleNotFound,
            format!(
                "role {arn} does not exist ({action}: NoSuchEntity); delete the bindings that name it, or recreate the role"
            ),
        ),
        Some("AccessDenied" | "AccessDeniedException") => (
            ProblemCode::AccessDenied,
            format!(
                "not allowed to call iam:{action} on {arn}; grant iam:{action} to the auditing identity (README: Permissions)"
            ),
        ),
        _ => (
            ProblemCode::LastAccessedFailed,
            format!("iam:{action} failed for {arn}: {}", super::aws::error_sentence(e)),
        ),
    }
}

async fn one_role(client: &Client, role: &RoleArn, settings: &AuditSettings, calls: &Semaphore) -> RoleReport {
    let arn = role.to_string();
    let fail = |(code, message): (ProblemCode, String)| failed(&arn, settings.granularity, code, message);
    // A closed semaphore cannot happen (it lives as long as the audit); treat it as no bound.
    let permit = || async { calls.acquire().await.ok() };

    let got = {
        let _slot = permit().await;
        client.get_role().role_name(&role.name).send().await
    };
    let role_data = match got {
        Ok(out) => out.role().cloned(),
        Err(e) => return fail(call_error(&arn, "GetRole", &e)),
    };
    let last_used = role_data.as_ref().and_then(|r| r.role_last_used());
    let role_last_used = last_used.and_then(|u| u.last_used_date()).and_then(to_timestamp);
    let role_last_used_region = last_used.and_then(|u| u.region()).map(str::to_string);

    let granularity = match settings.granularity {
        Granularity::Service => AccessAdvisorUsageGranularityType::ServiceLevel,
        Granularity::Action => AccessAdvisorUsageGranularityType::ActionLevel,
    };
    let generated = {
        let _slot = permit().await;
        client.generate_service_last_accessed_details().arn(&arn).granularity(granularity).send().await
    };
    let job_id = match generated {
        Ok(out) => out.job_id().unwrap_or_default().to_string(),
        Err(e) => return fail(call_error(&arn, "GenerateServiceLastAccessedDetails", &e)),
    };

    // Poll with backoff, holding no call slot while waiting: the jobs of many roles run at once in IAM.
    let deadline = tokio::time::Instant::now() + settings.job_timeout;
    let mut wait = POLL_START;
    let mut services = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        if marker.is_none() {
            if tokio::time::Instant::now() + wait > deadline {
                return fail((
                    ProblemCode::LastAccessedFailed,
                    format!(
                        "the last-accessed job for {arn} did not complete within {} s; run again, or raise --job-timeout",
                        settings.job_timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(wait).await;
            wait = POLL_MAX.min(wait.mul_f64(POLL_GROWTH));
        }
        let page = {
            let _slot = permit().await;
            client
                .get_service_last_accessed_details()
                .job_id(&job_id)
                .max_items(MAX_ITEMS)
                .set_marker(marker.clone())
                .send()
                .await
        };
        let page = match page {
            Ok(page) => page,
            Err(e) => return fail(call_error(&arn, "GetServiceLastAccessedDetails", &e)),
        };
        match page.job_status() {
            JobStatusType::InProgress => continue,
            JobStatusType::Completed => {}
            _ => {
                let why = page
                    .error()
                    .map(|e| format!("{}: {}", e.code(), e.message()))
                    .unwrap_or_else(|| "no reason given".into());
                return fail((
                    ProblemCode::LastAccessedFailed,
                    format!("IAM's last-accessed job for {arn} failed ({why}); run the audit again later"),
                ));
            }
        }
        services.extend(page.services_last_accessed().iter().map(|s| service_access(s, settings.granularity)));
        marker = page.marker().filter(|_| page.is_truncated()).map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    services.sort_by(|a, b| a.namespace.cmp(&b.namespace));
    RoleReport {
        role_arn: arn.clone(),
        granularity: settings.granularity,
        fetched_at: Timestamp::now(),
        role_last_used,
        role_last_used_region,
        services,
        error: None,
    }
}

fn service_access(s: &aws_sdk_iam::types::ServiceLastAccessed, granularity: Granularity) -> ServiceAccess {
    // Only action-level jobs carry tracked actions, and only for the services IAM tracks that way (an
    // empty list there still means "tracked, and none allowed"; an absent one means "not tracked").
    let tracked = s.tracked_actions_last_accessed.as_ref().filter(|_| granularity == Granularity::Action);
    let tracked_actions = tracked.map(|tracked| {
        tracked
            .iter()
            .map(|a| TrackedAction {
                action: format!("{}:{}", s.service_namespace(), a.action_name().unwrap_or_default()),
                last_accessed: a.last_accessed_time().and_then(to_timestamp),
            })
            .collect()
    });
    ServiceAccess {
        namespace: s.service_namespace().to_string(),
        name: s.service_name().to_string(),
        last_authenticated: s.last_authenticated().and_then(to_timestamp),
        last_authenticated_region: s.last_authenticated_region().map(str::to_string),
        tracked_actions,
    }
}

fn to_timestamp(t: &aws_sdk_iam::primitives::DateTime) -> Option<Timestamp> {
    Timestamp::new(t.secs(), t.subsec_nanos() as i32).ok()
}
