//! The CORS values of the API. API Gateway owns CORS when deployed: the deployer
//! configures the HTTP API with these, and the function, served locally, answers
//! with the same (see the function's `api::cors`).

/// Methods browsers may use.
pub const ALLOW_METHODS: &[&str] = &["GET", "PUT", "PATCH", "POST", "DELETE", "OPTIONS"];
/// Request headers browsers may send.
pub const ALLOW_HEADERS: &[&str] = &["Content-Type", "Authorization"];
/// How long browsers may cache a preflight answer.
pub const MAX_AGE_SECONDS: i32 = 600;
