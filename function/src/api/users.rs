//! `GET /tables/{tableId}/users`, `GET|PUT /tables/{tableId}/users/{username}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{ApiError, AppState, input};
use crate::store::UserCounts;

pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(table_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let table_id = input::table_id(&table_id)?;
    let limit = input::limit(query.get("limit").map(String::as_str))?;
    let cursor = input::last_key(query.get("lastKey").map(String::as_str))?;
    let page = state.store.list_users(table_id, limit, cursor).await?;
    let mut body = json!({ "users": page.items });
    if let Some(next) = page.next_cursor {
        body["lastKey"] = next.into();
    }
    Ok(Json(body).into_response())
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path((table_id, username)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let table_id = input::table_id(&table_id)?;
    let username = input::username(&username)?;
    let user = state.store.get_user(table_id, username).await?;
    Ok(Json(user).into_response())
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    Path((table_id, username)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let table_id = input::table_id(&table_id)?;
    let username = input::username(&username)?;
    let object = input::json_object(&body)?;
    let counts = UserCounts {
        submission_count: input::count(&object, "submissionCount")?,
        total_count: input::count(&object, "totalCount")?,
    };
    let outcome = state
        .store
        .put_user(table_id, username, counts, &crate::now())
        .await?;
    Ok(Json(json!({
        "username": username,
        "submissionCount": counts.submission_count,
        "totalCount": counts.total_count,
        "message": if outcome.created_new { "User created" } else { "User updated" },
        "createdNew": outcome.created_new,
    }))
    .into_response())
}
