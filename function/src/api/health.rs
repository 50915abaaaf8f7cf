//! `GET /health`: 200 when the table is reachable and `ACTIVE`, 503 otherwise.
//! Both name the table, the write mode the function runs with
//! (`safeConcurrency`) and whether it may delete tables (`allowTableDelete`),
//! so a deploy can be seen to serve its configuration, and a client (the load
//! test) can tell an environment that keeps what is written to it. On Lambda
//! they also name the published version answering (`release`), so a client
//! can see which release of the `live` alias served it.

use std::sync::Arc;

use super::AppState;
use super::bodies::Health;
use crate::store::{NewUserWrite, Unhealthy};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The Lambda version running this process (`AWS_LAMBDA_FUNCTION_VERSION`,
/// set by Lambda for the whole life of the process); `None` off Lambda.
fn release() -> Option<&'static str> {
    static RELEASE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    RELEASE
        .get_or_init(|| std::env::var("AWS_LAMBDA_FUNCTION_VERSION").ok())
        .as_deref()
}

#[utoipa::path(
    get, path = "/health", operation_id = "health", tag = "health",
    responses(
        (status = 200, description = "The table is reachable and ACTIVE", body = Health),
        (status = 503, description = "The table is missing or not ACTIVE", body = Health),
    )
)]
pub async fn check(State(state): State<Arc<AppState>>) -> Response {
    let table_name = state.store.table_name().to_owned();
    let safe_concurrency = state.store.new_user_write() == NewUserWrite::Transaction;
    let allow_table_delete = state.store.table_delete_allowed();
    let health = |status, error| Health {
        status,
        table_name: table_name.clone(),
        safe_concurrency,
        allow_table_delete,
        release: release().map(str::to_owned),
        timestamp: crate::now(),
        error,
    };
    match state.store.health().await {
        Ok(()) => Json(health("ok", None)).into_response(),
        Err(problem) => {
            let error = match &problem {
                Unhealthy::Missing => format!("DynamoDB table {table_name} does not exist"),
                Unhealthy::NotActive(status) => {
                    format!("DynamoDB table {table_name} is {status}, not ACTIVE")
                }
                Unhealthy::Unreachable(detail) => {
                    tracing::error!(%detail, "health check could not reach DynamoDB");
                    format!("DynamoDB table {table_name} is not reachable")
                }
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(health("unavailable", Some(error))),
            )
                .into_response()
        }
    }
}
