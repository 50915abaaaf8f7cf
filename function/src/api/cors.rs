//! CORS has one owner: API Gateway. When CORS is configured on an HTTP API,
//! API Gateway answers preflights itself, adds the configured headers to every
//! response, including those it makes itself (unmatched routes, throttling,
//! authorizer refusals), and ignores any CORS header an integration returns.
//! The deployer configures it from [`ALLOW_METHODS`], [`ALLOW_HEADERS`] and
//! [`MAX_AGE_SECONDS`] (the `schema` crate's), so the function on Lambda sets no
//! CORS header at all.
//!
//! Served locally there is no API Gateway, so [`apply`] does what it does, with
//! the same values: a preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`) is a 204 with the allowed origin, methods,
//! headers and max age; any other response to a request with an allowed
//! `Origin` carries `Access-Control-Allow-Origin` (and `Vary: Origin` unless
//! every origin is allowed); a request without `Origin` gets no CORS header.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use crate::schema::cors::{ALLOW_HEADERS, ALLOW_METHODS, MAX_AGE_SECONDS};

/// Which origins may call the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    origins: Vec<String>,
}

impl CorsPolicy {
    /// `origins` as configured (`["*"]` allows any origin).
    pub fn new(origins: Vec<String>) -> Self {
        Self { origins }
    }

    fn any_origin(&self) -> bool {
        self.origins.iter().any(|allowed| allowed == "*")
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`: `*`
    /// when any origin is allowed, the request's origin when it is listed, and
    /// nothing otherwise (as API Gateway does).
    fn allow_origin(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        if self.any_origin() {
            return Some(HeaderValue::from_static("*"));
        }
        self.origins
            .iter()
            .any(|allowed| allowed.as_bytes().eq_ignore_ascii_case(origin.as_bytes()))
            .then(|| origin.clone())
    }

    fn add_origin(&self, origin: &HeaderValue, headers: &mut HeaderMap) -> bool {
        let Some(allow_origin) = self.allow_origin(origin) else {
            return false;
        };
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        if !self.any_origin() {
            headers.append(VARY, HeaderValue::from_static("Origin"));
        }
        true
    }

    fn preflight(&self, origin: &HeaderValue) -> Response {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        if self.add_origin(origin, headers) {
            let joined = |values: &[&str]| {
                HeaderValue::from_str(&values.join(",")).unwrap_or(HeaderValue::from_static(""))
            };
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, joined(ALLOW_METHODS));
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, joined(ALLOW_HEADERS));
            headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(MAX_AGE_SECONDS));
        }
        response
    }
}

/// Middleware for local mode: answer preflights, decorate every other response.
pub async fn apply(
    State(policy): State<Arc<CorsPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(origin) = request.headers().get(ORIGIN).cloned() else {
        return next.run(request).await;
    };
    if request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    {
        return policy.preflight(&origin);
    }
    let mut response = next.run(request).await;
    policy.add_origin(&origin, response.headers_mut());
    response
}
