//! Every scenario, at reduced size, against the real API router served over
//! HTTP on loopback, over a table on the emulator; and the same scenarios
//! against routers that misbehave, which must fail them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use loadtest::{Api, Mixed, MultiTable, Recorder, Scenario, Silent, SingleTable, Summary};
use playground_api::api::{CorsPolicy, local_router};
use playground_api::store::{NewUserWrite, Store, create_table_if_missing};
use serde_json::Value;

/// The API over a new table on the shared emulator, served as `playground-api`
/// serves it locally (CORS answered as API Gateway answers it).
async fn playground_router() -> Router {
    let client = aws_sdk_dynamodb::Client::new(&emulator::sdk_config().await);
    let table = emulator::unique_name("PlaygroundScores-loadtest");
    create_table_if_missing(&client, &table)
        .await
        .unwrap_or_else(|error| panic!("creating {table}: {error}"));
    local_router(
        Store::new(client, table, NewUserWrite::Transaction),
        CorsPolicy::new(vec!["*".into()]),
    )
}

/// Serve `router` on a free loopback port for the rest of the test; its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    format!("http://{address}")
}

async fn run(url: &str, scenario: Scenario) -> Summary {
    let api = Api::new(url, Recorder::default()).expect("api");
    api.wait_until_ready(Duration::from_secs(10))
        .await
        .expect("ready");
    loadtest::run(&api, &scenario, Arc::new(Silent)).await
}

fn count(summary: &Summary, operation: &str) -> u64 {
    summary
        .by_operation
        .iter()
        .find(|stats| stats.name == operation)
        .map_or(0, |stats| stats.count)
}

fn assert_passed(summary: &Summary) {
    assert!(summary.passed, "{summary}");
    assert_eq!(summary.errors, 0, "{summary}");
    assert!(summary.failures.is_empty(), "{summary}");
    assert!(summary.operations > 0, "{summary}");
    assert!(summary.checks.iter().all(|check| check.passed), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_passes_every_step_of_the_contract() {
    let url = serve(playground_router().await).await;
    let summary = run(
        &url,
        Scenario::Smoke {
            origin: "https://example.org".into(),
        },
    )
    .await;
    assert_passed(&summary);
    let steps: Vec<&str> = summary
        .checks
        .iter()
        .map(|check| check.name.as_str())
        .collect();
    for step in [
        "GET /health is ok",
        "POST /tables again is a 409",
        "GET /tables lists the new table",
        "GET /tables/{tableId}/users is empty",
        "PUT an existing user updates it",
        "PATCH archives the table",
        "a negative count is a 400",
        "an unknown route is a 404",
        "a wrong method is a 405 with Allow",
        "a CORS preflight is answered",
    ] {
        assert!(steps.contains(&step), "missing step {step}: {steps:?}");
    }
    assert_eq!(summary.checks.len(), 21, "{steps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_table_creates_and_reads_every_user_and_the_count_matches() {
    let url = serve(playground_router().await).await;
    let summary = run(
        &url,
        Scenario::SingleTable(SingleTable {
            users: 25,
            concurrency: 8,
        }),
    )
    .await;
    assert_passed(&summary);
    assert_eq!(count(&summary, "create_table"), 1);
    assert_eq!(count(&summary, "create_user"), 25);
    assert_eq!(count(&summary, "get_user"), 25);
    let user_count = summary
        .checks
        .iter()
        .find(|check| check.name.starts_with("userCount of"))
        .expect("the userCount check");
    assert_eq!(user_count.detail, "userCount 25, created 25");
    assert_eq!(
        count(&summary, "archive_table"),
        0,
        "archiving is not measured"
    );

    // The run's table is archived at the end.
    let table_id = &summary
        .checks
        .iter()
        .find(|check| check.name == "the table is created")
        .expect("the creation check")
        .detail;
    let api = Api::new(&url, Recorder::default()).expect("api");
    let table = api
        .send(loadtest::client::Call::get(
            "get_table",
            format!("/tables/{table_id}"),
        ))
        .await
        .expect("the table");
    assert_eq!(table.body["isArchived"], true, "{}", table.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_table_runs_its_workload_across_every_table() {
    let url = serve(playground_router().await).await;
    let summary = run(
        &url,
        Scenario::MultiTable(MultiTable {
            tables: 3,
            users_per_table: 6,
            operations: 60,
            concurrency: 6,
        }),
    )
    .await;
    assert_passed(&summary);
    assert_eq!(count(&summary, "create_table"), 3);
    assert_eq!(count(&summary, "create_user"), 18);
    let workload: u64 = ["get_user", "list_users", "update_user", "get_table"]
        .iter()
        .map(|operation| count(&summary, operation))
        .sum();
    // The workload, plus one userCount read and at least one listing per table.
    assert!(workload >= 60 + 3 + 3, "{summary}");
    assert!(count(&summary, "update_user") > 0, "{summary}");
    let user_counts = summary
        .checks
        .iter()
        .filter(|check| check.name.starts_with("userCount of") && check.passed)
        .count();
    assert_eq!(user_counts, 3, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_workers_run_for_the_whole_duration() {
    let url = serve(playground_router().await).await;
    let summary = run(
        &url,
        Scenario::Mixed(Mixed {
            users: 12,
            workers: 4,
            duration: Duration::from_secs(2),
        }),
    )
    .await;
    assert_passed(&summary);
    assert!(summary.elapsed_seconds >= 2.0, "{summary}");
    assert!(summary.throughput_per_second > 0.0, "{summary}");
    // Set-up is measured apart: only the mix is in the table.
    assert_eq!(count(&summary, "create_user"), 0, "{summary}");
    assert!(count(&summary, "get_user") > 0, "{summary}");
    assert!(count(&summary, "update_user") > 0, "{summary}");
}

/// `GET /tables/{id}` answers one user fewer than the table holds: the
/// increment "lost" under concurrency.
async fn undercount(request: Request, next: Next) -> Response {
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

/// Every fifth request is a 500.
fn failing_every_fifth()
-> impl Fn(Request, Next) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>
+ Clone {
    let counter = Arc::new(AtomicU64::new(0));
    move |request: Request, next: Next| {
        let counter = Arc::clone(&counter);
        Box::pin(async move {
            if counter.fetch_add(1, Ordering::Relaxed) % 5 == 4 {
                return (StatusCode::INTERNAL_SERVER_ERROR, "{\"error\":\"boom\"}").into_response();
            }
            next.run(request).await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_user_count_increment_fails_single_table_without_any_request_error() {
    let router = playground_router()
        .await
        .layer(middleware::from_fn(undercount));
    let url = serve(router).await;
    let summary = run(
        &url,
        Scenario::SingleTable(SingleTable {
            users: 10,
            concurrency: 4,
        }),
    )
    .await;
    assert!(!summary.passed, "{summary}");
    assert_eq!(
        summary.errors, 0,
        "every request answered as expected: {summary}"
    );
    assert!(
        summary
            .failures
            .iter()
            .any(|failure| failure.contains("userCount 9, created 10")),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_fail_every_scenario() {
    let router = playground_router()
        .await
        .layer(middleware::from_fn(failing_every_fifth()));
    let url = serve(router).await;
    let scenarios = [
        Scenario::Smoke {
            origin: "https://example.org".into(),
        },
        Scenario::SingleTable(SingleTable {
            users: 10,
            concurrency: 4,
        }),
        Scenario::MultiTable(MultiTable {
            tables: 2,
            users_per_table: 4,
            operations: 20,
            concurrency: 4,
        }),
        Scenario::Mixed(Mixed {
            users: 5,
            workers: 2,
            duration: Duration::from_secs(1),
        }),
    ];
    for scenario in scenarios {
        let summary = run(&url, scenario).await;
        assert!(!summary.passed, "{summary}");
        assert!(
            summary.errors > 0
                || summary
                    .failures
                    .iter()
                    .any(|failure| failure.contains("500")),
            "{summary}"
        );
        assert!(
            summary
                .failures
                .iter()
                .any(|failure| failure.contains("got 500")),
            "the failure names the status: {summary}"
        );
    }
}

/// Every page of users is the first page and claims a next one, with the
/// same cursor: a listing that never ends.
async fn endless_listing(mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let is_user_listing = request.method() == Method::GET && path.ends_with("/users");
    if is_user_listing {
        *request.uri_mut() = path.parse().expect("a path is a URI");
    }
    let response = next.run(request).await;
    if !is_user_listing || response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.expect("body");
    let mut json: Value = serde_json::from_slice(&bytes).expect("json");
    json["lastKey"] = "the-same-cursor".into();
    let mut parts = parts;
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(json.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_never_ends_fails_the_run_instead_of_hanging_it() {
    let router = playground_router()
        .await
        .layer(middleware::from_fn(endless_listing));
    let url = serve(router).await;
    let scenario = Scenario::SingleTable(SingleTable {
        users: 3,
        concurrency: 2,
    });
    let summary = tokio::time::timeout(Duration::from_secs(60), run(&url, scenario))
        .await
        .expect("the run ends");
    assert!(!summary.passed, "{summary}");
    assert!(
        summary
            .failures
            .iter()
            .any(|failure| failure.contains("repeats its cursor")),
        "{summary}"
    );
}

fn loadtest(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .env_remove("API_BASE_URL")
        .env_remove("LOAD_DURATION_SECONDS")
        .args(args)
        .output()
        .expect("run loadtest")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_zero_only_when_the_scenario_passed_and_writes_json() {
    let good = serve(playground_router().await).await;
    let bad = serve(
        playground_router()
            .await
            .layer(middleware::from_fn(undercount)),
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("summary.json");
    let json_arg = json.to_str().expect("utf-8 path").to_owned();

    for (url, expected_code, passed) in [(&good, 0, true), (&bad, 1, false)] {
        let args: Vec<String> = [
            "single-table",
            "--users",
            "5",
            "--concurrency",
            "2",
            "--url",
            url,
            "--json",
            &json_arg,
        ]
        .map(str::to_owned)
        .to_vec();
        let output = tokio::task::spawn_blocking(move || {
            loadtest(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .expect("join");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(expected_code), "{stdout}");
        assert!(stdout.contains("p99"), "the latency table: {stdout}");
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
                .expect("json");
        assert_eq!(written["passed"], passed, "{written}");
        assert_eq!(written["scenario"], "single-table");
        assert!(
            written["by_operation"][0]["p95_ms"].is_number(),
            "{written}"
        );
    }

    // No API at that address: not ready within the timeout, reported as a failure.
    let output = tokio::task::spawn_blocking(move || {
        loadtest(&[
            "smoke",
            "--url",
            "http://127.0.0.1:9",
            "--ready-timeout",
            "1s",
            "--json",
            "-",
        ])
    })
    .await
    .expect("join");
    assert_eq!(output.status.code(), Some(1));
    let written: Value = serde_json::from_slice(&output.stdout).expect("json on stdout");
    assert_eq!(written["passed"], false);
    assert!(
        written["failures"][0]
            .as_str()
            .is_some_and(|failure| failure.contains("did not answer 200")),
        "{written}"
    );

    // No URL at all is a usage error.
    let output = loadtest(&["smoke"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("API_BASE_URL"));
}
