//! The AI Model Share playground API.
//!
//! Tables of users with scores, for ML teaching games: an axum [`api::router`]
//! over a DynamoDB [`store::Store`], served by [`runtime::lambda`] under Lambda
//! (API Gateway HTTP API, payload v2) and by [`runtime::local`] elsewhere.
//! The table's schema, the routes and the CORS values are the `schema` crate's,
//! shared with the deployer (re-exported here as [`schema`]).

pub mod api;
pub mod config;
pub mod runtime;
pub use ::schema;
pub mod store;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// The current time as RFC 3339 UTC with milliseconds, fixed width
/// (`2026-01-02T03:04:05.678Z`), so strings sort in time order.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The AWS configuration from the standard environment (`AWS_REGION`,
/// `AWS_ENDPOINT_URL`, credentials), with adaptive retries for throttling and
/// transient errors and bounded timeouts.
pub async fn load_aws_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::adaptive().with_max_attempts(5))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(3))
                .operation_attempt_timeout(std::time::Duration::from_secs(4))
                .build(),
        )
        .load()
        .await
}
