//! Shared by loadtest's tests: the real API router served over HTTP on
//! loopback, over its own table on the emulator, and what it lists.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use loadtest::{Api, Recorder};
use playground_api::api::{CorsPolicy, local_router};
use playground_api::store::{NewUserWrite, Store, create_table_if_missing};
use serde_json::Value;

/// The API over its own new table, as `playground-api` serves it locally
/// (CORS answered as API Gateway answers it), with that table's name and a
/// client to look into it.
pub struct Playground {
    pub router: Router,
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl Playground {
    /// Over a new table on the emulator at `endpoint`; deleting tables allowed or not.
    pub async fn on(endpoint: &str, allow_table_delete: bool) -> Self {
        let client = aws_sdk_dynamodb::Client::new(&emulator::sdk_config_for(endpoint).await);
        let table = emulator::unique_name("PlaygroundScores-loadtest");
        create_table_if_missing(&client, &table)
            .await
            .unwrap_or_else(|error| panic!("creating {table}: {error}"));
        let router = local_router(
            Store::new(client.clone(), table.clone(), NewUserWrite::Transaction)
                .allowing_table_delete(allow_table_delete),
            CorsPolicy::new(vec!["*".into()]),
        );
        Self {
            router,
            client,
            table,
        }
    }

    /// Over a new table on the shared emulator.
    pub async fn new(allow_table_delete: bool) -> Self {
        Self::on(emulator::shared_endpoint(), allow_table_delete).await
    }

    /// Every item of the table, read from DynamoDB directly.
    pub async fn items(&self) -> i32 {
        self.client
            .scan()
            .table_name(&self.table)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await
            .expect("scan")
            .count()
    }
}

/// The API where tables are deleted (as in dev and stage).
pub async fn playground_router() -> Router {
    Playground::new(true).await.router
}

/// Serve `router` on a free loopback port for the rest of the test; its base URL.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    format!("http://{address}")
}

/// The tables `GET /tables` lists (newest first; archived ones too).
pub async fn listed_tables(url: &str) -> Vec<Value> {
    let api = Api::new(url, Recorder::default()).expect("api");
    let reply = api
        .send(loadtest::client::Call::get(
            "list_tables",
            "/tables?limit=500",
        ))
        .await
        .expect("the listing");
    reply.body["tables"].as_array().cloned().unwrap_or_default()
}

/// `GET /tables/{id}` answers one user fewer than the table holds: the
/// increment "lost" under concurrency.
pub async fn undercount(request: Request, next: Next) -> Response {
    let is_table_read = request.method() == Method::GET
        && request.uri().path().starts_with("/tables/")
        && request.uri().path().matches('/').count() == 2;
    let response = next.run(request).await;
    if !is_table_read || response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.expect("body");
    let mut json: Value = serde_json::from_slice(&bytes).expect("json");
    if let Some(count) = json["userCount"].as_u64() {
        json["userCount"] = count.saturating_sub(1).into();
    }
    Response::from_parts(parts, Body::from(json.to_string()))
}
