//! `GET /tables/{tableId}/users`, `GET|PUT /tables/{tableId}/users/{username}`.

use std::collections::HashMap;
use std::sync::Arc;

use super::access::{Action, MaybeCaller};
use super::bodies::{
    ErrorBody, PageQuery, PutUserRequest, PutUserResponse, RankQuery, TablePath, UserPath,
    UsersPage,
};
use super::{ApiError, AppState, input};
use crate::store::{UserCounts, UserRecord, UserWrite};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

#[utoipa::path(
    get, path = "/tables/{tableId}/users", operation_id = "listUsers", tag = "users",
    params(TablePath, PageQuery),
    responses(
        (status = 200, description = "A page of the leaderboard", body = UsersPage),
        (status = 400, description = "A bad tableId or limit", body = ErrorBody),
        (status = 401, description = "Sign-in required (where the environment requires it) and no valid token", body = ErrorBody),
        (status = 404, description = "Table not found", body = ErrorBody),
        (status = 503, description = "The table is busy; retry", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    MaybeCaller(caller): MaybeCaller,
    Path(table_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let table_id = input::table_id(&table_id)?;
    state
        .authorize(caller.as_ref(), Action::Read, table_id)
        .await?;
    let (limit, start_after) = input::paging(&query)?;
    let page = state
        .store
        .list_users(table_id, limit, &start_after)
        .await?;
    Ok(Json(UsersPage {
        users: page.items,
        last_key: page.next_cursor,
    })
    .into_response())
}

#[utoipa::path(
    get, path = "/tables/{tableId}/users/{username}", operation_id = "getUser", tag = "users",
    params(UserPath, RankQuery),
    responses(
        (status = 200, description = "The user's scores; with withRank=true, its rank and its team's", body = UserRecord),
        (status = 400, description = "A bad tableId, username or withRank", body = ErrorBody),
        (status = 401, description = "Sign-in required (where the environment requires it) and no valid token", body = ErrorBody),
        (status = 404, description = "Table not found, or User not found in table", body = ErrorBody),
        (status = 503, description = "The table is busy; retry", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    MaybeCaller(caller): MaybeCaller,
    Path((table_id, username)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let table_id = input::table_id(&table_id)?;
    let username = input::username(&username)?;
    let with_rank = input::flag(query.get("withRank").map(String::as_str), "withRank")?;
    state
        .authorize(caller.as_ref(), Action::Read, table_id)
        .await?;
    let mut user = state.store.get_user(table_id, username).await?;
    if with_rank {
        state.store.add_ranks(table_id, &mut user).await?;
    }
    Ok(Json(user).into_response())
}

#[utoipa::path(
    put, path = "/tables/{tableId}/users/{username}", operation_id = "putUser", tag = "users",
    params(UserPath),
    request_body = PutUserRequest,
    responses(
        (status = 200, description = "Created or updated; a new user is counted in userCount exactly once", body = PutUserResponse),
        (status = 400, description = "Missing, negative or non-integer counts; a bad tableId or username", body = ErrorBody),
        (status = 401, description = "Sign-in required (where the environment requires it) and no valid token", body = ErrorBody),
        (status = 403, description = "Signed in as another user, neither the table's owner nor an admin", body = ErrorBody),
        (status = 404, description = "Table not found", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 503, description = "Too many concurrent writes; retry", body = ErrorBody),
    )
)]
pub async fn put(
    State(state): State<Arc<AppState>>,
    MaybeCaller(caller): MaybeCaller,
    Path((table_id, username)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (table_id, username) = writable_user(&state, caller.as_ref(), &table_id, &username).await?;
    let object = input::json_object(&body)?;
    let counts = UserCounts {
        submission_count: input::count(&object, "submissionCount")?,
        total_count: input::count(&object, "totalCount")?,
    };
    let team_name = input::team_name(&object)?;
    let outcome = state
        .store
        .put_user(
            table_id,
            username,
            &UserWrite::scores(counts, team_name.as_deref()),
            &crate::now(),
        )
        .await?;
    Ok(Json(PutUserResponse {
        username: username.to_owned(),
        submission_count: counts.submission_count,
        total_count: counts.total_count,
        message: if outcome.created_new {
            "User created"
        } else {
            "User updated"
        }
        .into(),
        created_new: outcome.created_new,
        team_name,
    })
    .into_response())
}

/// The table and user a write of a user's data names (scores, moral compass,
/// tasks), once both ids are valid and the caller may write that user.
pub(super) async fn writable_user<'a>(
    state: &AppState,
    caller: Option<&super::access::Caller>,
    table_id: &'a str,
    username: &'a str,
) -> Result<(&'a str, &'a str), ApiError> {
    let table_id = input::table_id(table_id)?;
    let username = input::username(username)?;
    state
        .authorize(caller, Action::WriteScores { username }, table_id)
        .await?;
    Ok((table_id, username))
}
