//! `PATCH /tables/{tableId}/users/{username}/tasks` (`{op: add|remove|reset,
//! taskIds}`) and `DELETE` on the same path: a user's completed tasks, kept
//! as a sorted, duplicate-free list. 404 for a user who does not exist. The
//! legacy Terraform never routed these; the legacy handler served them.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::access::MaybeCaller;
use super::bodies::{ErrorBody, UserPath};
use super::moral_compass::{TaskId, task_ids};
use super::{ApiError, AppState, input};
use crate::store::TaskChange;

/// `PATCH`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct TasksRequest {
    /// `add` these ids, `remove` them, or `reset` the list to exactly them.
    pub op: TaskOp,
    /// No ids when left out.
    #[schema(nullable = true, max_items = 1000, inline)]
    pub task_ids: Option<Vec<TaskId>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum TaskOp {
    Add,
    Remove,
    Reset,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TasksResponse {
    pub username: String,
    /// Sorted by number, each once.
    pub completed_task_ids: Vec<String>,
    pub message: String,
}

#[utoipa::path(
    patch, path = "/tables/{tableId}/users/{username}/tasks", operation_id = "changeTasks", tag = "users",
    params(UserPath),
    request_body = TasksRequest,
    responses(
        (status = 200, description = "The tasks as they are now", body = TasksResponse),
        (status = 400, description = "A bad op or task id; a bad tableId or username", body = ErrorBody),
        (status = 401, description = "Sign-in required (where the environment requires it) and no valid token", body = ErrorBody),
        (status = 403, description = "Signed in as another user, neither the table's owner nor an admin", body = ErrorBody),
        (status = 404, description = "Table not found, or User not found in table", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 503, description = "DynamoDB busy or slow; retry", body = ErrorBody),
    )
)]
pub async fn patch(
    State(state): State<Arc<AppState>>,
    MaybeCaller(caller): MaybeCaller,
    Path((table_id, username)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (table_id, username) =
        super::users::writable_user(&state, caller.as_ref(), &table_id, &username).await?;
    let body = input::json_object(&body)?;
    let ids = task_ids(&body, "taskIds")?.unwrap_or_default();
    let (change, op) = match body.get("op") {
        Some(Value::String(op)) if op == "add" => (TaskChange::Add(ids), "add"),
        Some(Value::String(op)) if op == "remove" => (TaskChange::Remove(ids), "remove"),
        Some(Value::String(op)) if op == "reset" => (TaskChange::Reset(ids), "reset"),
        _ => {
            return Err(ApiError::bad_request(
                "op must be one of: add, remove, reset",
            ));
        }
    };
    let completed_task_ids = state
        .store
        .change_tasks(table_id, username, &change, &crate::now())
        .await?;
    Ok(Json(TasksResponse {
        username: username.to_owned(),
        completed_task_ids,
        message: format!("Tasks {op} done"),
    })
    .into_response())
}

#[utoipa::path(
    delete, path = "/tables/{tableId}/users/{username}/tasks", operation_id = "clearTasks", tag = "users",
    params(UserPath),
    responses(
        (status = 200, description = "Cleared", body = TasksResponse),
        (status = 400, description = "A bad tableId or username", body = ErrorBody),
        (status = 401, description = "Sign-in required (where the environment requires it) and no valid token", body = ErrorBody),
        (status = 403, description = "Signed in as another user, neither the table's owner nor an admin", body = ErrorBody),
        (status = 404, description = "Table not found, or User not found in table", body = ErrorBody),
        (status = 503, description = "DynamoDB busy or slow; retry", body = ErrorBody),
    )
)]
pub async fn clear(
    State(state): State<Arc<AppState>>,
    MaybeCaller(caller): MaybeCaller,
    Path((table_id, username)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (table_id, username) =
        super::users::writable_user(&state, caller.as_ref(), &table_id, &username).await?;
    let completed_task_ids = state
        .store
        .change_tasks(
            table_id,
            username,
            &TaskChange::Reset(Vec::new()),
            &crate::now(),
        )
        .await?;
    Ok(Json(TasksResponse {
        username: username.to_owned(),
        completed_task_ids,
        message: "Tasks cleared".into(),
    })
    .into_response())
}
