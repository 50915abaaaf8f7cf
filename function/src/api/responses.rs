//! Responses the router produces outside the handlers: unknown routes, and
//! turning axum's own plain-text rejections (405, 413, bad path encoding) into
//! the API's JSON error shape.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error_response;

pub async fn route_not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "Route not found")
}

/// Any error response that is not JSON yet becomes `{"error": ...}`; headers
/// such as `Allow` on a 405 are kept.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let message = match status {
        StatusCode::NOT_FOUND => "Route not found".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "Request body too large: the limit is {} bytes",
            super::MAX_BODY_BYTES
        ),
        other => other.canonical_reason().unwrap_or("Error").to_owned(),
    };
    let (mut parts, _) = response.into_parts();
    let replacement = error_response(status, &message);
    parts.headers.remove(header::CONTENT_LENGTH);
    let (new_parts, body) = replacement.into_parts();
    parts.headers.extend(new_parts.headers);
    (parts, body).into_response()
}
