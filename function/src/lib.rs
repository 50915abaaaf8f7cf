//! The AI Model Share playground API.
//!
//! Tables of users with scores, for ML teaching games: an axum [`api::router`]
//! over a DynamoDB [`store::Store`], served by [`runtime::lambda`] under Lambda
//! (API Gateway HTTP API, payload v2) and by [`runtime::local`] elsewhere.
//! The table's schema, the routes and the CORS values are the `schema` crate's,
//! shared with the deployer (re-exported here as [`schema`]).

pub mod api;
pub mod config;
pub mod deadline;
pub mod runtime;
pub use ::schema;
pub mod store;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use std::time::Duration;

/// The current time as RFC 3339 UTC with milliseconds, fixed width
/// (`2026-01-02T03:04:05.678Z`), so strings sort in time order.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The AWS configuration from the standard environment (`AWS_REGION`,
/// `AWS_ENDPOINT_URL`, credentials), with [`with_retries_and_timeouts`].
pub async fn load_aws_config() -> SdkConfig {
    with_retries_and_timeouts(aws_config::defaults(BehaviorVersion::latest()))
        .load()
        .await
}

/// How the function's SDK calls retry and time out, applied to `loader`.
///
/// Standard retries (not adaptive: its client-side rate limiter, once
/// throttled, delays every later call of the sandbox, and a request has
/// seconds, not minutes), 5 attempts in all, backing off from 20 ms to 1 s with
/// jitter: a call that fails transiently (throttling, a 5xx, a dropped
/// connection) one time in twenty fails five times in a row about once in
/// three million. Each attempt has 4 s, connecting 3 s.
pub fn with_retries_and_timeouts(loader: ConfigLoader) -> ConfigLoader {
    loader
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(5)
                .with_initial_backoff(Duration::from_millis(20))
                .with_max_backoff(Duration::from_secs(1)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(4))
                .build(),
        )
}
