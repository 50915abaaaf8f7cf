//! AWS clients from the standard configuration chain. Every client is built
//! here, with the call log that `--verbose` turns on.

use std::sync::atomic::{AtomicBool, Ordering};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

/// How often a call is tried. Control planes (IAM, API Gateway, Lambda) throttle
/// readily: the SDK's default of 3 attempts gives up on a burst that AWS clears
/// in seconds. The backoff is the SDK's own (exponential, jittered, 200 ms to
/// 20 s). Standard mode, not adaptive: adaptive's client-side rate limiter,
/// once throttled, held a whole apply back for 105 s where standard took under
/// a second, under the same injected faults (10 % throttling and 5xx, seed 3):
/// it suits a steady stream of calls, not a deployer's short bursts.
pub const MAX_ATTEMPTS: u32 = 10;

/// Load the SDK configuration for `region` (credentials, endpoint and the rest
/// from the standard chain, including `AWS_ENDPOINT_URL`), with the retries and
/// timeouts every client uses.
pub async fn load(region: &str) -> SdkConfig {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    use std::time::Duration;
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(20)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(120))
                .build(),
        )
        .load()
        .await
}

/// When a call failed because no credentials were found, an error that says
/// where credentials come from; `None` when credentials resolve (the
/// STS error is then the one to report). Only called after a failure, so the
/// credential chain is not resolved twice on the way to success.
pub async fn missing_credentials(config: &SdkConfig) -> Option<crate::engine::EngineError> {
    use aws_credential_types::provider::ProvideCredentials as _;
    let error = match config.credentials_provider() {
        None => "no credentials provider is configured".to_owned(),
        Some(provider) => state::sdk_error::causes(&provider.provide_credentials().await.err()?),
    };
    Some(crate::engine::EngineError::new(
        "finding AWS credentials",
        format!(
            "{error}. Set AWS_PROFILE (after `aws sso login` for SSO profiles), or \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a role provides them \
             (GitHub Actions OIDC through aws-actions/configure-aws-credentials, an instance or task role)"
        ),
    ))
}

static LOG_CALLS: AtomicBool = AtomicBool::new(false);

/// Print every AWS operation on stderr as it starts (`aws call: Lambda.GetFunction`).
pub fn log_calls(enabled: bool) {
    LOG_CALLS.store(enabled, Ordering::Relaxed);
}

/// The prefix of each logged call, for readers of the log.
pub const CALL_LOG_PREFIX: &str = "aws call: ";

/// Logs each operation (service and operation name) when [`log_calls`] is on.
#[derive(Debug, Clone, Copy)]
struct CallLog;

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    // Not read_before_execution: a client's interceptors run that before the
    // operation's configuration (which holds its name) is applied.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if LOG_CALLS.load(Ordering::Relaxed)
            && let Some(metadata) = cfg.load::<Metadata>()
        {
            crate::ui::note(format_args!(
                "{CALL_LOG_PREFIX}{}.{}",
                metadata.service(),
                metadata.name()
            ));
        }
        Ok(())
    }
}

macro_rules! client {
    ($name:ident, $krate:ident) => {
        #[doc = concat!("A `", stringify!($krate), "` client with the call log.")]
        pub fn $name(config: &SdkConfig) -> $krate::Client {
            $krate::Client::from_conf(
                $krate::config::Builder::from(config)
                    .interceptor(CallLog)
                    .build(),
            )
        }
    };
}

client!(dynamodb, aws_sdk_dynamodb);
client!(iam, aws_sdk_iam);
client!(logs, aws_sdk_cloudwatchlogs);
client!(cloudwatch, aws_sdk_cloudwatch);
client!(lambda, aws_sdk_lambda);
client!(apigateway, aws_sdk_apigatewayv2);
client!(sts, aws_sdk_sts);
client!(cognito, aws_sdk_cognitoidentityprovider);

/// An S3 client; path-style addressing when a custom endpoint is set (emulators,
/// VPC endpoints), virtual-hosted otherwise.
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    let custom_endpoint = config.endpoint_url().is_some();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(custom_endpoint)
            .interceptor(CallLog)
            .build(),
    )
}
