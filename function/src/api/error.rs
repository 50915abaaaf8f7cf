//! The API's error responses: always `{"error": "..."}` with the right status.
//! Internal details (SDK errors) are logged, never returned.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// An error the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// 401: sign-in required and missing.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: signed in, not allowed.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }
}

/// A JSON error body with `status`.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Store(store) => match store {
                StoreError::TableNotFound
                | StoreError::UserNotFound
                | StoreError::SessionNotFound => StatusCode::NOT_FOUND,
                StoreError::SessionTaken => StatusCode::CONFLICT,
                StoreError::TableDeleteNotAllowed => StatusCode::FORBIDDEN,
                StoreError::TableAlreadyExists { .. } => StatusCode::CONFLICT,
                store if store.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
                StoreError::Contended { .. }
                | StoreError::Unprocessed { .. }
                | StoreError::MalformedItem { .. }
                | StoreError::DynamoDb { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            },
        };
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
            match &self {
                Self::Store(StoreError::Contended { .. }) => {
                    "Too many concurrent writes; retry".to_owned()
                }
                Self::Store(StoreError::Unprocessed { .. }) => {
                    "The table is busy; retry".to_owned()
                }
                Self::Store(store) if store.is_transient() => {
                    "DynamoDB is busy or slow; retry".to_owned()
                }
                _ => "Internal server error".to_owned(),
            }
        } else {
            self.to_string()
        };
        let mut response = error_response(status, &message);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            super::deadline::retry_after(&mut response);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// The body a client gets for `error`, and its status.
    async fn answered(error: ApiError) -> (StatusCode, String) {
        let response = error.into_response();
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// What DynamoDB said (an ARN, an account, a request id) stays in the
    /// log: a client reads only the status and a fixed message.
    #[tokio::test]
    async fn a_failed_dynamodb_call_returns_no_sdk_detail() {
        let secret =
            "arn:aws:dynamodb:us-east-1:123456789012:table/PlaygroundScores-dev (request id 7Q2)";
        for (error, status, message) in [
            (
                StoreError::DynamoDb {
                    action: "putting the user".into(),
                    detail: format!("AccessDeniedException: not authorized on {secret}"),
                    transient: false,
                },
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
            ),
            (
                StoreError::DynamoDb {
                    action: "putting the user".into(),
                    detail: format!("ThrottlingException on {secret}"),
                    transient: true,
                },
                StatusCode::SERVICE_UNAVAILABLE,
                "DynamoDB is busy or slow; retry",
            ),
            (
                StoreError::MalformedItem {
                    table: secret.into(),
                    key: "class-1/ana".into(),
                    problem: format!("no submissionCount in {secret}"),
                },
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
            ),
        ] {
            let (answered_status, body) = answered(ApiError::Store(error)).await;
            assert_eq!(answered_status, status);
            assert_eq!(body, json!({ "error": message }).to_string());
            assert!(!body.contains("123456789012"), "{body}");
        }
    }
}
