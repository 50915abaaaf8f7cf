//! Every answer comes before the function's deadline, and a transient failure
//! is a 503 a client can retry safely: against a DynamoDB that accepts
//! connections and never answers, and against a slow one under load.

use std::time::{Duration, Instant};

use crate::support::{self, TestApi};
use axum::http::StatusCode;
use emulator::Emulator;
use playground_api::store::{NewUserWrite, Store};
use serde_json::json;
use tokio::task::JoinSet;

/// A DynamoDB endpoint that accepts every connection and never answers.
fn silent_endpoint() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    (listener, endpoint)
}

/// The function's own SDK configuration (retries, timeouts), pointed at `endpoint`.
async fn function_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(emulator::REGION))
        .credentials_provider(emulator::credentials());
    aws_sdk_dynamodb::Client::new(
        &playground_api::with_retries_and_timeouts(loader)
            .load()
            .await,
    )
}

fn router_over(client: aws_sdk_dynamodb::Client, budget: Duration) -> axum::Router {
    playground_api::api::router(
        Store::new(client, "PlaygroundScores-silent", NewUserWrite::Transaction)
            .with_request_timeout(budget),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_dynamodb_is_a_503_before_the_deadline() {
    let _turn = support::alone().await;
    let (_listener, endpoint) = silent_endpoint();
    let client = function_client(&endpoint).await;
    let budget = Duration::from_millis(2_500);
    let api = TestApi {
        router: router_over(client, budget),
        table_name: "PlaygroundScores-silent".into(),
        client: support::client().await,
        stage: support::Stage::Named,
    };
    for (method, path, body) in [
        ("GET", "/tables/t1", None),
        ("GET", "/tables/t1/users", None),
        (
            "PUT",
            "/tables/t1/users/ann",
            Some(r#"{"submissionCount":1,"totalCount":2}"#),
        ),
        ("GET", "/health", None),
    ] {
        let started = Instant::now();
        let reply = api.send(method, path, body, &[]).await;
        let took = started.elapsed();
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}: {:?}",
            reply.body
        );
        assert!(took < budget, "{method} {path} answered after {took:?}");
        if path != "/health" {
            assert_eq!(
                reply
                    .headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()),
                Some("1"),
                "{method} {path}"
            );
            assert!(reply.error().contains("retry"), "{:?}", reply.body);
        } else {
            assert_eq!(reply.body["status"], "unavailable");
        }
    }

    // On Lambda, the invocation's deadline is the one that counts.
    let lambda_deadline = Duration::from_millis(1_500);
    let mut request = support::event(support::Stage::Named, "GET", "/tables/t1", None, &[]);
    let deadline_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        + lambda_deadline;
    let mut context = lambda_http::Context::default();
    context.deadline = u64::try_from(deadline_ms.as_millis()).expect("fits");
    request.extensions_mut().insert(context);
    let long = TestApi {
        router: router_over(function_client(&endpoint).await, Duration::from_secs(60)),
        ..api
    };
    let started = Instant::now();
    let reply = long.answer(request).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < lambda_deadline,
        "answered after the Lambda deadline: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_dynamodb_under_load_gives_no_500_and_every_retry_reconciles() {
    let _turn = support::alone().await;
    let emulator = Emulator::start().unwrap_or_else(|error| panic!("{error}"));
    let endpoint = emulator.endpoint().to_owned();
    let client = function_client(&endpoint).await;
    let api = TestApi::on(client.clone(), NewUserWrite::Transaction).await;
    api.create_table("slow").await;
    let api = TestApi {
        router: playground_api::api::router(
            Store::new(client, api.table_name.clone(), NewUserWrite::Transaction)
                .with_request_timeout(Duration::from_millis(1_500)),
        ),
        ..api
    };
    emulator::configure_faults(
        &endpoint,
        &json!({"seed": 5, "rules": [], "latency_ms": {"dynamodb": 25},
                "models": {"transaction_window_ms": 15}}),
    );
    const USERS: usize = 120;
    let mut tasks = JoinSet::new();
    for index in 0..USERS {
        let api = api.clone();
        tasks.spawn(async move {
            let name = format!("u{index:03}");
            let reply = api.put_user("slow", &name, 1).await;
            (name, reply.status, reply.body)
        });
    }
    let mut failed = Vec::new();
    let mut created = 0;
    while let Some(joined) = tasks.join_next().await {
        let (name, status, body) = joined.expect("a PUT");
        assert!(
            status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
            "{name}: {status} {body}"
        );
        if status == StatusCode::OK {
            created += usize::from(body["createdNew"] == true);
        } else {
            failed.push(name);
        }
    }
    assert!(
        !failed.is_empty(),
        "the load never ran a request out of time: make it heavier"
    );
    emulator::clear_faults(&endpoint);
    // Each failed answer, retried: its write may have happened (createdNew
    // false) or not (true), and the count ends exact either way.
    for name in &failed {
        let reply = api.put_user("slow", name, 1).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {:?}", reply.body);
        created += usize::from(reply.body["createdNew"] == true);
    }
    let table = api.get("/tables/slow").await;
    assert_eq!(
        table.body["userCount"],
        USERS,
        "{} failed answers",
        failed.len()
    );
    println!(
        "slow DynamoDB: {} of {USERS} first answers were 503; {created} answers said createdNew",
        failed.len()
    );
    assert!(created <= USERS);
}
