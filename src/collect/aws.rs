//! The one place that builds the AWS SDK configuration.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Builds the SDK config: explicit region/profile first, then the SDK's own chain (env, profile files,
/// SSO, IMDS), with standard retries (which back off on throttling) and timeouts so nothing hangs.
pub async fn sdk_config(region: Option<&str>, profile: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(20))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_string()));
    }
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    loader.load().await
}

/// Whether the config can sign requests; the reason when it cannot.
pub async fn check_credentials(config: &SdkConfig) -> Result<(), String> {
    use aws_credential_types::provider::ProvideCredentials;
    let Some(provider) = config.credentials_provider() else {
        return Err("no AWS credentials provider is configured".into());
    };
    provider.provide_credentials().await.map(|_| ()).map_err(|e| format!("no AWS credentials ({e})"))
}

/// An SDK error as one sentence: the service's code and message, or the chain of causes of a failure to
/// reach it, each by its `Display`, capped. Never the SDK's `Debug` dump: that is for `IAM_ROLES_LOG=debug`.
pub fn error_sentence<E, R>(e: &aws_sdk_iam::error::SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    tracing::debug!("{}", aws_sdk_iam::error::DisplayErrorContext(e));
    let full = match e.as_service_error() {
        Some(service) => service.to_string(),
        None => crate::causes(e),
    };
    let line = full.lines().next().unwrap_or_default();
    match line.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    }
}

/// Says on stderr when an AWS call is tried again (throttled, or the service failed), as the Kubernetes
/// reads do: a long wait is never silent. Attach it to every client's configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryNotice;

impl aws_smithy_runtime_api::client::interceptors::Intercept for RetryNotice {
    fn name(&self) -> &'static str {
        "RetryNotice"
    }

    fn read_before_attempt(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let attempt =
            cfg.load::<aws_smithy_runtime_api::client::retries::RequestAttempts>().map_or(1, |a| a.attempts());
        if attempt > 1 {
            let operation = cfg
                .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
                .map_or_else(|| "a call".to_string(), |m| format!("{} {}", m.service(), m.name()));
            eprintln!("waiting: AWS {operation} was throttled or failed; trying again (attempt {attempt})");
        }
        Ok(())
    }
}
