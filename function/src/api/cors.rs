//! CORS: `OPTIONS` on any path is a 204 preflight, and every response carries
//! the CORS headers of the configured origins.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// Methods browsers may use.
pub const ALLOW_METHODS: &str = "GET, PUT, PATCH, POST, OPTIONS";
/// Request headers browsers may send.
pub const ALLOW_HEADERS: &str = "Content-Type, Authorization";

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

    /// The `Access-Control-Allow-Origin` value for a request from `origin`: `*`
    /// when any origin is allowed, the request's origin when it is listed, and
    /// otherwise the first listed origin (which the browser will not match).
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        if self.origins.iter().any(|allowed| allowed == "*") {
            return Some(HeaderValue::from_static("*"));
        }
        if let Some(origin) = origin
            && self
                .origins
                .iter()
                .any(|allowed| allowed.as_bytes() == origin.as_bytes())
        {
            return Some(origin.clone());
        }
        self.origins
            .first()
            .and_then(|first| HeaderValue::from_str(first).ok())
    }

    fn add_headers(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
        if let Some(allow_origin) = self.allow_origin(origin) {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        }
        if !self.origins.iter().any(|allowed| allowed == "*") {
            headers.append(VARY, HeaderValue::from_static("Origin"));
        }
        headers.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        headers.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
}

/// Middleware: answer preflights, decorate every other response.
pub async fn apply(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let origin = request.headers().get(ORIGIN).cloned();
    let mut response = if request.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    state
        .cors
        .add_headers(origin.as_ref(), response.headers_mut());
    response
}
