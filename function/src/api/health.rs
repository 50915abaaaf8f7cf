//! `GET /health`: 200 when the table is reachable and `ACTIVE`, 503 otherwise.
//! Both name the table, the write mode the function runs with
//! (`safeConcurrency`) and whether it may delete tables (`allowTableDelete`),
//! so a deploy can be seen to serve its configuration, and a client (the load
//! test) can tell an environment that keeps what is written to it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::store::{NewUserWrite, Unhealthy};

pub async fn check(State(state): State<Arc<AppState>>) -> Response {
    let table_name = state.store.table_name();
    let safe_concurrency = state.store.new_user_write() == NewUserWrite::Transaction;
    let allow_table_delete = state.store.table_delete_allowed();
    match state.store.health().await {
        Ok(()) => Json(json!({
            "status": "ok",
            "tableName": table_name,
            "safeConcurrency": safe_concurrency,
            "allowTableDelete": allow_table_delete
        }))
        .into_response(),
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
                Json(json!({
                    "status": "unavailable",
                    "tableName": table_name,
                    "safeConcurrency": safe_concurrency,
                    "allowTableDelete": allow_table_delete,
                    "error": error
                })),
            )
                .into_response()
        }
    }
}
