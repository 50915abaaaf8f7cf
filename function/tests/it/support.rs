//! Shared by the function's integration tests: a fresh DynamoDB table on the
//! emulator per test, and requests sent the way Lambda receives them (API
//! Gateway v2 fixture events through `lambda_http::request::from_str`).

#![allow(dead_code)] // benches/ranks.rs includes it too and uses a part

use std::path::Path;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use playground_api::api::{CorsPolicy, local_router, router};
use playground_api::runtime::lambda::strip_stage;
use playground_api::store::{NewUserWrite, Store, create_table_if_missing};
use serde_json::Value;
use tower::ServiceExt;

/// Which API Gateway stage the event comes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A named stage: `rawPath` starts with `/dev`.
    Named,
    /// `$default`: `rawPath` is the route path.
    Default,
}

/// An API over its own table on the shared emulator.
#[derive(Debug, Clone)]
pub struct TestApi {
    pub router: Router,
    pub table_name: String,
    pub client: aws_sdk_dynamodb::Client,
    pub stage: Stage,
}

/// A response: status, headers and the JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn error(&self) -> &str {
        self.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {:?}", self.body))
    }
}

pub async fn client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&emulator::sdk_config().await)
}

impl TestApi {
    /// A new table with the canonical schema and the API over it as Lambda
    /// serves it.
    pub async fn new(mode: NewUserWrite) -> Self {
        Self::over_new_table(mode, router).await
    }

    /// The API with these sign-in rules, over a store allowed to delete tables.
    pub async fn signed_in(
        mode: NewUserWrite,
        access: playground_api::api::access::Policy,
    ) -> Self {
        Self::over_new_table(mode, |store| {
            playground_api::api::router_with(store.allowing_table_delete(true), access)
        })
        .await
    }

    /// The same over a store allowed to delete tables (`ALLOW_TABLE_DELETE=true`).
    pub async fn deleting(mode: NewUserWrite) -> Self {
        Self::over_new_table(mode, |store| router(store.allowing_table_delete(true))).await
    }

    /// The API as served locally, with the CORS handling for `origins`.
    pub async fn with_cors(mode: NewUserWrite, origins: Vec<String>) -> Self {
        Self::over_new_table(mode, |store| local_router(store, CorsPolicy::new(origins))).await
    }

    /// The API over a new table reached through `client` (another emulator's).
    pub async fn on(client: aws_sdk_dynamodb::Client, mode: NewUserWrite) -> Self {
        Self::with_client(client, mode, router).await
    }

    /// [`TestApi::on`], allowed to delete tables.
    pub async fn on_deleting(client: aws_sdk_dynamodb::Client, mode: NewUserWrite) -> Self {
        Self::with_client(client, mode, |store| {
            router(store.allowing_table_delete(true))
        })
        .await
    }

    /// The router `build` makes of a store over a new table.
    pub async fn built(mode: NewUserWrite, build: impl FnOnce(Store) -> Router) -> Self {
        Self::over_new_table(mode, build).await
    }

    async fn over_new_table(mode: NewUserWrite, build: impl FnOnce(Store) -> Router) -> Self {
        Self::with_client(client().await, mode, build).await
    }

    async fn with_client(
        client: aws_sdk_dynamodb::Client,
        mode: NewUserWrite,
        build: impl FnOnce(Store) -> Router,
    ) -> Self {
        let table_name = emulator::unique_name("PlaygroundScores-test");
        let created = create_table_if_missing(&client, &table_name)
            .await
            .unwrap_or_else(|error| panic!("creating {table_name}: {error}"));
        assert!(created, "{table_name} already existed");
        let router = build(Store::new(client.clone(), table_name.clone(), mode));
        Self {
            router,
            table_name,
            client,
            stage: Stage::Named,
        }
    }

    pub fn through(mut self, stage: Stage) -> Self {
        self.stage = stage;
        self
    }

    /// Send `method path` with an optional raw body and extra headers.
    pub async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.answer(event(self.stage, method, path_and_query, body, headers))
            .await
    }

    /// Send `method path` as API Gateway does once its JWT authorizer verified
    /// a token with these `claims` (`requestContext.authorizer.jwt.claims`).
    pub async fn send_as(
        &self,
        claims: Option<&Value>,
        method: &str,
        path_and_query: &str,
        body: Option<&str>,
    ) -> Reply {
        let token = claims.map(unsigned_token);
        let authorization = token.as_ref().map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = authorization
            .as_deref()
            .map(|value| ("authorization", value))
            .into_iter()
            .collect();
        let mut json = event_json(self.stage, method, path_and_query, body, &headers);
        if let Some(claims) = claims {
            json["requestContext"]["authorizer"] =
                serde_json::json!({"jwt": {"claims": flattened_claims(claims), "scopes": null}});
        }
        self.answer(
            lambda_http::request::from_str(&json.to_string())
                .expect("lambda_http parses the event"),
        )
        .await
    }

    /// The router's answer to `request`.
    pub async fn answer(&self, request: lambda_http::Request) -> Reply {
        let (method, path_and_query) = (request.method().to_string(), request.uri().to_string());
        let response = self
            .router
            .clone()
            .oneshot(strip_stage(request))
            .await
            .unwrap_or_else(|error| match error {});
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("response body")
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                panic!("{method} {path_and_query}: body is not JSON ({error}): {bytes:?}")
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: &str) -> Reply {
        self.send(
            "POST",
            path,
            Some(body),
            &[("content-type", "application/json")],
        )
        .await
    }

    pub async fn put(&self, path: &str, body: &str) -> Reply {
        self.send(
            "PUT",
            path,
            Some(body),
            &[("content-type", "application/json")],
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: &str) -> Reply {
        self.send(
            "PATCH",
            path,
            Some(body),
            &[("content-type", "application/json")],
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, None, &[]).await
    }

    /// Write `count` users (`user-0000`, …) straight into table `table_id`'s
    /// partition, without the API (and so without counting them), ranked as
    /// the deployer's backfill leaves users written before ranks existed.
    pub async fn seed_users(&self, table_id: &str, count: usize) {
        use aws_sdk_dynamodb::types::AttributeValue;
        let users = (0..count)
            .map(|index| {
                let name = format!("user-{index:04}");
                [
                    ("tableId", AttributeValue::S(table_id.to_owned())),
                    (
                        "leaderboardKey",
                        AttributeValue::S(playground_api::schema::leaderboard_key(1, &name)),
                    ),
                    ("username", AttributeValue::S(name)),
                    ("submissionCount", AttributeValue::N("1".into())),
                    ("totalCount", AttributeValue::N("2".into())),
                ]
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect()
            })
            .collect();
        let items = playground_api::schema::ranking::ranked_class(table_id, users);
        emulator::put_items(&self.client, &self.table_name, items).await;
    }

    /// How many items (metadata, counters and users) table `table_id`'s
    /// partition holds, read from DynamoDB directly: not its rank entries,
    /// buckets and teams.
    pub async fn items_of(&self, table_id: &str) -> i32 {
        self.count_items(table_id, true).await
    }

    async fn count_items(&self, table_id: &str, without_derived: bool) -> i32 {
        use aws_sdk_dynamodb::types::AttributeValue;
        let mut count = 0;
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table_name)
                .key_condition_expression("tableId = :id")
                .expression_attribute_values(":id", AttributeValue::S(table_id.to_owned()));
            if without_derived {
                query = query
                    .filter_expression(
                        "NOT begins_with(username, :rank) AND NOT begins_with(username, :team)",
                    )
                    .expression_attribute_values(":rank", AttributeValue::S("_rank#".into()))
                    .expression_attribute_values(":team", AttributeValue::S("_team#".into()));
            }
            let output = query
                .consistent_read(true)
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("counting a partition");
            count += output.count();
            start = output.last_evaluated_key().cloned();
            if start.is_none() {
                return count;
            }
        }
    }

    /// Every item of table `table_id`'s partition, derived ones included.
    pub async fn all_items_of(&self, table_id: &str) -> i32 {
        self.count_items(table_id, false).await
    }

    pub async fn create_table(&self, table_id: &str) {
        let reply = self
            .post("/tables", &format!(r#"{{"tableId":"{table_id}"}}"#))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }

    pub async fn put_user(&self, table_id: &str, username: &str, submissions: u64) -> Reply {
        self.put(
            &format!("/tables/{table_id}/users/{username}"),
            &format!(
                r#"{{"submissionCount":{submissions},"totalCount":{}}}"#,
                submissions * 2
            ),
        )
        .await
    }
}

/// An API Gateway v2 event for `method path_and_query`, built from the fixture of
/// `stage`, parsed the way `lambda_http` parses what Lambda delivers.
pub fn event(
    stage: Stage,
    method: &str,
    path_and_query: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> lambda_http::Request {
    let event = event_json(stage, method, path_and_query, body, headers);
    lambda_http::request::from_str(&event.to_string()).expect("lambda_http parses the event")
}

/// [`event`] as the JSON Lambda delivers.
/// A token carrying `claims` (JSON, lists as lists), as a signed-in client
/// sends it; its signature is not checked by the function (API Gateway's
/// authorizer did), so none is made.
pub fn unsigned_token(claims: &Value) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"test"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// `claims` as API Gateway passes them to the function: every value a
/// string, a list space-joined inside brackets (`[admin staff]`).
pub fn flattened_claims(claims: &Value) -> Value {
    let Some(object) = claims.as_object() else {
        return claims.clone();
    };
    object
        .iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Array(items) => format!(
                    "[{}]",
                    items
                        .iter()
                        .map(|item| item
                            .as_str()
                            .map_or_else(|| item.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                other => other.to_string(),
            };
            (name.clone(), Value::String(text))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

pub fn event_json(
    stage: Stage,
    method: &str,
    path_and_query: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Value {
    let fixture = match stage {
        Stage::Named => "apigw-v2-named-stage.json",
        Stage::Default => "apigw-v2-default-stage.json",
    };
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(fixture),
    )
    .expect("fixture exists");
    let mut event: Value = serde_json::from_str(&text).expect("fixture is JSON");
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let raw_path = match stage {
        Stage::Named => format!("/dev{path}"),
        Stage::Default => path.to_owned(),
    };
    event["rawPath"] = raw_path.clone().into();
    event["rawQueryString"] = query.into();
    event["requestContext"]["http"]["method"] = method.into();
    event["requestContext"]["http"]["path"] = raw_path.into();
    if let Some(map) = event.as_object_mut() {
        map.remove("pathParameters");
        map.remove("queryStringParameters");
    }
    if !query.is_empty() {
        let mut parameters = serde_json::Map::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            parameters.insert(key.to_owned(), value.into());
        }
        event["queryStringParameters"] = Value::Object(parameters);
    }
    for (name, value) in headers {
        event["headers"][*name] = (*value).into();
    }
    match body {
        Some(body) => {
            event["body"] = body.into();
            event["headers"]["content-length"] = body.len().to_string().into();
        }
        None => {
            if let Some(map) = event.as_object_mut() {
                map.remove("body");
            }
        }
    }
    event
}

/// The function's own SDK configuration (retries, timeouts), pointed at `endpoint`.
pub async fn function_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(emulator::REGION))
        .credentials_provider(emulator::credentials());
    let config = playground_api::with_retries_and_timeouts(loader)
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&config)
}

/// Follow `lastKey` from the first page of `path` to the last, `limit` a
/// page; every item of the pages' `field`.
pub async fn walk(api: &TestApi, path: &str, field: &str, limit: u16) -> Vec<serde_json::Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let url = match &cursor {
            Some(cursor) => format!("{path}?limit={limit}&lastKey={cursor}"),
            None => format!("{path}?limit={limit}"),
        };
        let reply = api.get(&url).await;
        assert_eq!(reply.status, StatusCode::OK, "{url}: {:?}", reply.body);
        let page = reply.body[field].as_array().cloned().unwrap_or_default();
        assert!(page.len() <= usize::from(limit));
        items.extend(page);
        match reply.body.get("lastKey").and_then(|key| key.as_str()) {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
    panic!("{path}: pagination did not end");
}

/// Whose turn it is in the one test process. When each topic was its own
/// binary, the tests that measure latency or race writes under injected
/// faults (`classroom`, `races`, `deadlines`, the faulted class of `ranks`)
/// ran with no other topic's tests beside them, and their budgets assume
/// it: each takes [`alone`], every other test [`together`], so they still
/// run by themselves while the rest run side by side.
static TURNS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Held for the whole of a test that must run by itself.
pub async fn alone() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    TURNS.write().await
}

/// Held for the whole of a test that may run beside others (but not beside
/// one that runs [`alone`]).
pub async fn together() -> tokio::sync::RwLockReadGuard<'static, ()> {
    TURNS.read().await
}

/// [`together`] for a test that is not async.
pub fn together_blocking() -> tokio::sync::RwLockReadGuard<'static, ()> {
    TURNS.blocking_read()
}
