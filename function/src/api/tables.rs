//! `POST /tables`, `GET /tables`, `GET /tables/{tableId}`, `PATCH /tables/{tableId}`,
//! `DELETE /tables/{tableId}`.

use std::collections::HashMap;
use std::sync::Arc;

use super::access::{Action, MaybeCaller};
use super::bodies::{
    CreateTableRequest, CreateTableResponse, DeleteTableResponse, ErrorBody, Message, PageQuery,
    PatchTableRequest, TablePath, TablesPage,
};
use super::{ApiError, AppState, input};
use crate::store::{NewTableExtras, TableRecord};
use crate::store::{StoreError, TablePatch};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[utoipa::path(
    post, path = "/tables", operation_id = "createTable", tag = "tables",
    request_body = CreateTableRequest,
    responses(
        (status = 201, description = "The table is created", body = CreateTableResponse),
        (status = 400, description = "A bad tableId or displayName, malformed JSON, wrong types", body = ErrorBody),
        (status = 401, description = "Sign-in required (where the environment requires it) and no valid token", body = ErrorBody),
        (status = 409, description = "A table with this tableId exists", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 503, description = "The table is busy; retry", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    MaybeCaller(caller): MaybeCaller,
    body: Bytes,
) -> Result<Response, ApiError> {
    state
        .authorize(caller.as_ref(), Action::CreateTable, "")
        .await?;
    let object = input::json_object(&body)?;
    let table_id = match object.get("tableId") {
        Some(serde_json::Value::String(id)) => input::table_id(id)?.to_owned(),
        Some(_) => return Err(ApiError::bad_request("tableId must be a string")),
        None => return Err(ApiError::bad_request("tableId is required")),
    };
    let display_name = input::display_name(&object)?.unwrap_or_else(|| table_id.clone());
    let playground = input::playground(&object)?;
    let owner = caller
        .as_ref()
        .filter(|_| state.access.enabled)
        .map(super::access::Caller::owner);
    let playground_id = playground.as_ref().map(|(_, id)| id.clone());
    state
        .store
        .create_owned_table(
            &table_id,
            &display_name,
            &crate::now(),
            &NewTableExtras {
                owner: owner.as_ref(),
                playground: playground
                    .as_ref()
                    .map(|(url, id)| (url.as_str(), id.as_str())),
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateTableResponse {
            table_id,
            display_name,
            message: "Table created".into(),
            owner_principal: owner.map(|owner| owner.principal),
            playground_id,
        }),
    )
        .into_response())
}

#[utoipa::path(
    get, path = "/tables", operation_id = "listTables", tag = "tables",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of tables, newest first", body = TablesPage),
        (status = 400, description = "A bad limit", body = ErrorBody),
        (status = 401, description = "Sign-in required (where the environment requires it) and no valid token", body = ErrorBody),
        (status = 503, description = "The table is busy; retry", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    MaybeCaller(caller): MaybeCaller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    state.authorize(caller.as_ref(), Action::Read, "").await?;
    let (limit, start_after) = input::paging(&query)?;
    let page = state.store.list_tables(limit, &start_after).await?;
    Ok(Json(TablesPage {
        tables: page.items,
        last_key: page.next_cursor,
    })
    .into_response())
}

#[utoipa::path(
    get, path = "/tables/{tableId}", operation_id = "getTable", tag = "tables",
    params(TablePath),
    responses(
        (status = 200, description = "The table, with its exact userCount", body = TableRecord),
        (status = 400, description = "A bad tableId", body = ErrorBody),
        (status = 401, description = "Sign-in required (where the environment requires it) and no valid token", body = ErrorBody),
        (status = 404, description = "Table not found", body = ErrorBody),
        (status = 503, description = "The table is busy; retry", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    MaybeCaller(caller): MaybeCaller,
    Path(table_id): Path<String>,
) -> Result<Response, ApiError> {
    let table_id = input::table_id(&table_id)?;
    state
        .authorize(caller.as_ref(), Action::Read, table_id)
        .await?;
    match state.store.get_table(table_id).await? {
        Some(table) => Ok(Json(table).into_response()),
        None => Err(StoreError::TableNotFound.into()),
    }
}

#[utoipa::path(
    patch, path = "/tables/{tableId}", operation_id = "updateTable", tag = "tables",
    params(TablePath),
    request_body = PatchTableRequest,
    responses(
        (status = 200, description = "Updated (sets updatedAt)", body = Message),
        (status = 400, description = "Wrong types, or no known field", body = ErrorBody),
        (status = 401, description = "Sign-in required (where the environment requires it) and no valid token", body = ErrorBody),
        (status = 403, description = "Signed in, but neither the table's owner nor an admin", body = ErrorBody),
        (status = 404, description = "Table not found", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 503, description = "The table is busy; retry", body = ErrorBody),
    )
)]
pub async fn patch(
    State(state): State<Arc<AppState>>,
    MaybeCaller(caller): MaybeCaller,
    Path(table_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let table_id = input::table_id(&table_id)?;
    state
        .authorize(caller.as_ref(), Action::ChangeTable, table_id)
        .await?;
    let object = input::json_object(&body)?;
    let is_archived = match object.get("isArchived") {
        None => None,
        Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Bool(flag)) => Some(*flag),
        Some(_) => return Err(ApiError::bad_request("isArchived must be a boolean")),
    };
    let patch = TablePatch {
        display_name: input::display_name(&object)?,
        is_archived,
    };
    if patch == TablePatch::default() {
        return Err(ApiError::bad_request(
            "Nothing to update: send displayName and/or isArchived",
        ));
    }
    state
        .store
        .patch_table(table_id, &patch, &crate::now())
        .await?;
    Ok(Json(Message {
        message: "Table updated".into(),
    })
    .into_response())
}

/// `DELETE /tables/{tableId}`: 403 unless the environment allows deleting tables
/// (checked before anything else, so a refusal costs nothing). 200 once the
/// table and its users are gone; 202 when it is large enough that this request
/// stopped part-way (the table is still there: another DELETE continues).
#[utoipa::path(
    delete, path = "/tables/{tableId}", operation_id = "deleteTable", tag = "tables",
    params(TablePath),
    responses(
        (status = 200, description = "The table and its users are gone", body = DeleteTableResponse),
        (status = 202, description = "Part of its users are gone; send DELETE again", body = DeleteTableResponse),
        (status = 400, description = "A bad tableId", body = ErrorBody),
        (status = 401, description = "Sign-in required (where the environment requires it) and no valid token", body = ErrorBody),
        (status = 403, description = "This environment does not allow deleting tables; or signed in, but neither the table's owner nor an admin", body = ErrorBody),
        (status = 404, description = "Table not found", body = ErrorBody),
        (status = 503, description = "The table is busy; retry", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    MaybeCaller(caller): MaybeCaller,
    Path(table_id): Path<String>,
) -> Result<Response, ApiError> {
    if !state.store.table_delete_allowed() {
        return Err(StoreError::TableDeleteNotAllowed.into());
    }
    let table_id = input::table_id(&table_id)?;
    state
        .authorize(caller.as_ref(), Action::ChangeTable, table_id)
        .await?;
    let deletion = state.store.delete_table(table_id).await?;
    let (status, message) = if deletion.complete {
        (StatusCode::OK, "Table deleted".to_owned())
    } else {
        (
            StatusCode::ACCEPTED,
            format!(
                "Deleted {} users; more remain: send DELETE again to finish",
                deletion.deleted_users
            ),
        )
    };
    Ok((
        status,
        Json(DeleteTableResponse {
            table_id: table_id.to_owned(),
            deleted_users: deletion.deleted_users,
            message,
        }),
    )
        .into_response())
}
