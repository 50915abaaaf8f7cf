//! The HTTP API: routes, handlers, CORS and error shaping. Transport-neutral: the
//! same [`router`] serves Lambda events and local HTTP.

pub mod access;
mod bodies;
mod cors;
pub mod deadline;
mod error;
mod health;
pub mod input;
pub mod jwt;
pub mod moral_compass;
pub mod openapi;
mod responses;
pub mod sessions;
mod tables;
mod tasks;
mod teams;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

pub use cors::{ALLOW_HEADERS, ALLOW_METHODS, CorsPolicy, MAX_AGE_SECONDS};
pub use error::{ApiError, error_response};

use crate::store::Store;

/// Largest request body accepted; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub use crate::schema::routes::{ROUTES, Route};

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    pub store: Store,
    /// Who may write what (`access.rs`); sign-in off by default.
    pub access: access::Policy,
}

impl AppState {
    /// Whether the caller may do `action` on `table_id`: the rules of
    /// `access.rs`, reading the table's owner only when the answer depends on it.
    pub async fn authorize(
        &self,
        caller: Option<&access::Caller>,
        action: access::Action<'_>,
        table_id: &str,
    ) -> Result<(), ApiError> {
        let mut verdict = access::decide(&self.access, caller, action, None);
        if matches!(verdict, access::Verdict::Forbidden(_)) {
            let owner = self.store.table_owner(table_id).await?;
            verdict = access::decide(&self.access, caller, action, owner.as_ref());
        }
        match verdict {
            access::Verdict::Allowed => Ok(()),
            access::Verdict::Unauthenticated(message) => Err(ApiError::Unauthenticated(message)),
            access::Verdict::Forbidden(message) => Err(ApiError::Forbidden(message)),
        }
    }
}

/// The API's router over `store`, as Lambda serves it behind API Gateway, which
/// owns CORS: it sets no CORS header. Sign-in is off.
pub fn router(store: Store) -> Router {
    router_with(store, access::Policy::default())
}

/// [`router`] with the environment's sign-in rules.
pub fn router_with(store: Store, access: access::Policy) -> Router {
    let budget = deadline::Budget(store.request_timeout());
    let state = Arc::new(AppState { store, access });
    Router::new()
        .route("/tables", get(tables::list).post(tables::create))
        .route(
            "/tables/{tableId}",
            get(tables::get).patch(tables::patch).delete(tables::delete),
        )
        .route("/tables/{tableId}/users", get(users::list))
        .route("/tables/{tableId}/teams", get(teams::list))
        .route(
            "/tables/{tableId}/users/{username}",
            get(users::get).put(users::put),
        )
        .route(
            "/tables/{tableId}/users/{username}/moral-compass",
            axum::routing::put(moral_compass::put),
        )
        .route(
            "/tables/{tableId}/users/{username}/moralcompass",
            axum::routing::put(moral_compass::put_legacy),
        )
        .route(
            "/tables/{tableId}/users/{username}/tasks",
            axum::routing::patch(tasks::patch).delete(tasks::clear),
        )
        .route("/sessions", axum::routing::post(sessions::create))
        .route(
            "/sessions/{sessionId}",
            get(sessions::get).patch(sessions::refresh),
        )
        .route("/health", get(health::check))
        .route("/openapi.json", get(openapi::serve))
        .fallback(responses::route_not_found)
        .layer(axum::middleware::from_fn_with_state(
            budget,
            deadline::enforce,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(responses::json_errors))
        .with_state(state)
}

/// The API as `playground-api` serves it locally: [`router`] plus the CORS
/// handling API Gateway gives it when deployed, with the same values, so a
/// browser app sees the same headers locally and deployed.
pub fn local_router(store: Store, cors: CorsPolicy) -> Router {
    local_router_with(store, cors, access::Policy::default())
}

/// [`local_router`] with the environment's sign-in rules.
pub fn local_router_with(store: Store, cors: CorsPolicy, access: access::Policy) -> Router {
    router_with(store, access).layer(axum::middleware::from_fn_with_state(
        Arc::new(cors),
        cors::apply,
    ))
}
