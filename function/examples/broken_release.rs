//! A deliberately broken release of `playground-api`, for the deployer's
//! end-to-end test of its pre-traffic check (`deployer/tests/it/local_cloud.rs`):
//! the same API on Lambda, except that `GET /health` panics. `deployer apply`
//! must refuse to move the `live` alias to it, and clients must keep getting
//! answers from the release before it.
//!
//! Built by `scripts/test` with `cargo build -p function --example broken_release`.

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use playground_api::api::router;
use playground_api::config::Config;
use playground_api::runtime::{self, telemetry};
use playground_api::store::Store;

async fn panic_on_health(request: Request, next: Next) -> Response {
    assert!(
        !request.uri().path().ends_with("/health"),
        "deliberately broken release: GET /health panics"
    );
    next.run(request).await
}

#[tokio::main]
async fn main() -> Result<(), String> {
    telemetry::init(true);
    let config = Config::from_env().map_err(|error| format!("configuration: {error}"))?;
    let client = aws_sdk_dynamodb::Client::new(&playground_api::load_aws_config().await);
    let store = Store::new(client, config.table_name.clone(), config.new_user_write);
    let app = router(store).layer(middleware::from_fn(panic_on_health));
    runtime::lambda::run(app)
        .await
        .map_err(|error| format!("Lambda runtime: {error}"))
}
