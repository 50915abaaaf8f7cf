//! `GET /tables/{tableId}/teams`: the team leaderboard, from the team totals
//! every user write keeps exact.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

use super::access::{Action, MaybeCaller};
use super::bodies::{ErrorBody, PageQuery, TablePath, TeamsPage};
use super::{ApiError, AppState, input};

#[utoipa::path(
    get, path = "/tables/{tableId}/teams", operation_id = "listTeams", tag = "users",
    params(TablePath, PageQuery),
    responses(
        (status = 200, description = "A page of the team leaderboard: each team with at least one member, its average score, member count and rank", body = TeamsPage),
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
        .list_teams(table_id, limit, &start_after)
        .await?;
    Ok(Json(TeamsPage {
        teams: page.items,
        last_key: page.next_cursor,
    })
    .into_response())
}
