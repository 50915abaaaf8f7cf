//! How the router is served: by `lambda_http` under Lambda, over plain HTTP locally.

pub mod lambda;
pub mod local;
pub mod telemetry;

/// Whether this process runs inside Lambda (the runtime API is advertised).
pub fn is_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some_and(|value| !value.is_empty())
}
