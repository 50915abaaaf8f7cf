//! The HTTP API: routes, handlers, CORS and error shaping. Transport-neutral: the
//! same [`router`] serves Lambda events and local HTTP.

mod cors;
mod error;
mod health;
pub mod input;
mod responses;
mod tables;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

pub use cors::CorsPolicy;
pub use error::{ApiError, error_response};

use crate::store::Store;

/// Largest request body accepted; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// One route of the API, as API Gateway must register it (`METHOD /path/{param}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
}

impl Route {
    /// The API Gateway route key, for example `GET /tables/{tableId}`.
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Every route [`router`] serves (besides `OPTIONS` preflight on any path, which
/// API Gateway's CORS configuration answers). The deployer registers exactly
/// these; a test checks the router against this list.
pub const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/tables",
    },
    Route {
        method: "GET",
        path: "/tables",
    },
    Route {
        method: "GET",
        path: "/tables/{tableId}",
    },
    Route {
        method: "PATCH",
        path: "/tables/{tableId}",
    },
    Route {
        method: "GET",
        path: "/tables/{tableId}/users",
    },
    Route {
        method: "GET",
        path: "/tables/{tableId}/users/{username}",
    },
    Route {
        method: "PUT",
        path: "/tables/{tableId}/users/{username}",
    },
    Route {
        method: "GET",
        path: "/health",
    },
];

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    pub store: Store,
    pub cors: CorsPolicy,
}

/// The API's router over `store`, with CORS for `cors`.
pub fn router(store: Store, cors: CorsPolicy) -> Router {
    let state = Arc::new(AppState { store, cors });
    Router::new()
        .route("/tables", get(tables::list).post(tables::create))
        .route("/tables/{tableId}", get(tables::get).patch(tables::patch))
        .route("/tables/{tableId}/users", get(users::list))
        .route(
            "/tables/{tableId}/users/{username}",
            get(users::get).put(users::put),
        )
        .route("/health", get(health::check))
        .fallback(responses::route_not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(responses::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::apply,
        ))
        .with_state(state)
}
