//! A deliberately broken `playground-api` served locally, for the fuzzing
//! step's self-test (`scripts/fuzz-selftest`): the same API, except that
//! `GET /tables` with an odd `limit` answers 500. `scripts/fuzz` must report
//! that failure.
//!
//! Built by `scripts/test` with `cargo build -p function --example broken_router`.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use playground_api::api::{CorsPolicy, local_router};
use playground_api::config::Config;
use playground_api::runtime::{self, telemetry};
use playground_api::store::{Store, create_table_if_missing};

async fn fail_on_odd_limits(request: Request, next: Next) -> Response {
    let odd = request.uri().path() == "/tables"
        && request.uri().query().is_some_and(|query| {
            query.split('&').any(|pair| {
                pair.strip_prefix("limit=")
                    .and_then(|limit| limit.parse::<u64>().ok())
                    .is_some_and(|limit| limit % 2 == 1)
            })
        });
    if odd {
        return (StatusCode::INTERNAL_SERVER_ERROR, "deliberately broken").into_response();
    }
    next.run(request).await
}

#[tokio::main]
async fn main() -> Result<(), String> {
    telemetry::init(false);
    let config = Config::from_env().map_err(|error| format!("configuration: {error}"))?;
    let client = aws_sdk_dynamodb::Client::new(&playground_api::load_aws_config().await);
    create_table_if_missing(&client, &config.table_name)
        .await
        .map_err(|error| format!("creating the table: {error}"))?;
    let store = Store::new(client, config.table_name.clone(), config.new_user_write)
        .allowing_table_delete(config.allow_table_delete);
    let app = local_router(store, CorsPolicy::new(config.cors_allow_origins.clone()))
        .layer(middleware::from_fn(fail_on_odd_limits));
    runtime::local::serve(app, config.port)
        .await
        .map_err(|error| format!("serving: {error}"))
}
