//! Every scenario, at reduced size, against the real API router served over
//! HTTP on loopback, over a table on the emulator: where the API deletes
//! tables (they leave nothing behind) and where it does not (they are refused
//! without --allow-writes, and archive with it); `smoke --read-only`, which
//! must write nothing; and the scenarios against routers that misbehave,
//! which must fail them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use loadtest::{
    Api, LoadtestError, Mixed, MultiTable, Recorder, Scenario, Silent, SingleTable, Summary,
};
use serde_json::Value;

use crate::support::{Playground, listed_tables, playground_router, serve, undercount};

fn smoke() -> Scenario {
    Scenario::Smoke {
        origin: "https://example.org".into(),
        read_only: false,
    }
}

/// Small runs of the four scenarios that write.
fn writing_scenarios() -> [Scenario; 4] {
    [
        smoke(),
        Scenario::SingleTable(SingleTable {
            users: 6,
            concurrency: 3,
        }),
        Scenario::MultiTable(MultiTable {
            tables: 2,
            users_per_table: 3,
            operations: 12,
            concurrency: 3,
        }),
        Scenario::Mixed(Mixed {
            users: 4,
            workers: 2,
            duration: Duration::from_secs(1),
        }),
    ]
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
async fn smoke_passes_every_step_of_the_contract_and_deletes_its_table() {
    let playground = Playground::new(true).await;
    let url = serve(playground.router.clone()).await;
    let summary = run(&url, smoke()).await;
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
        "DELETE /tables/{tableId} deletes the table and its user",
        "the deleted table is a 404",
        "DELETE of a deleted table is a 404",
    ] {
        assert!(steps.contains(&step), "missing step {step}: {steps:?}");
    }
    assert_eq!(summary.checks.len(), 24, "{steps:?}");
    assert_eq!(
        playground.items().await,
        0,
        "the smoke test left nothing behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_where_tables_are_not_deleted_sees_the_403_and_leaves_its_table_archived() {
    let url = serve(Playground::new(false).await.router).await;
    let summary = run(&url, smoke()).await;
    assert_passed(&summary);
    assert!(
        summary
            .checks
            .iter()
            .any(|check| check.name
                == "DELETE /tables/{tableId} is a 403 where deleting is not allowed"),
        "{summary}"
    );
    assert_eq!(summary.checks.len(), 22, "{summary}");
    let tables = listed_tables(&url).await;
    assert_eq!(tables.len(), 1, "{tables:?}");
    assert_eq!(tables[0]["isArchived"], true, "{tables:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_read_only_makes_no_write() {
    // An emulator of its own, so that its request log holds only this test's calls.
    let emulator = emulator::Emulator::start().expect("an emulator");
    for allow_table_delete in [false, true] {
        let playground = Playground::on(emulator.endpoint(), allow_table_delete).await;
        let url = serve(playground.router).await;
        let api = Api::new(&url, Recorder::default()).expect("api");
        api.wait_until_ready(Duration::from_secs(10))
            .await
            .expect("ready");
        emulator::clear_served_requests(emulator.endpoint());
        let scenario = Scenario::Smoke {
            origin: "https://example.org".into(),
            read_only: true,
        };
        assert!(!scenario.writes());
        let summary = loadtest::run(&api, &scenario, Arc::new(Silent)).await;
        assert_passed(&summary);
        let steps: Vec<&str> = summary
            .checks
            .iter()
            .map(|check| check.name.as_str())
            .collect();
        assert_eq!(
            steps,
            [
                "GET /health is ok",
                "GET /tables answers a page of tables",
                "GET /tables/{missing} is a 404",
                "an unknown route is a 404",
                "a wrong method is a 405 with Allow",
                "a CORS preflight is answered",
            ]
        );
        let served = emulator::served_requests(emulator.endpoint());
        let operations: Vec<&str> = served
            .iter()
            .filter_map(|request| request.operation())
            .collect();
        for read in ["DescribeTable", "Query"] {
            assert!(
                operations.contains(&read),
                "{read} is in the log: {operations:?}"
            );
        }
        let writes: Vec<String> = served
            .iter()
            .filter(|request| {
                request.is_mutating()
                    || matches!(
                        request.operation(),
                        Some(
                            "PutItem"
                                | "UpdateItem"
                                | "TransactWriteItems"
                                | "DeleteItem"
                                | "BatchWriteItem"
                        )
                    )
            })
            .map(emulator::ServedRequest::describe)
            .collect();
        assert!(writes.is_empty(), "smoke --read-only wrote: {writes:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_table_creates_and_reads_every_user_and_the_count_matches() {
    let playground = Playground::new(true).await;
    let url = serve(playground.router.clone()).await;
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
        count(&summary, "delete_table"),
        0,
        "deleting is not measured"
    );
    let deleted = summary
        .checks
        .iter()
        .find(|check| check.name.ends_with("is deleted"))
        .expect("the deletion check");
    assert_eq!(deleted.detail, "deleted with its 25 users");
    assert_eq!(playground.items().await, 0, "no table, no user left behind");
    assert!(listed_tables(&url).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_table_runs_its_workload_across_every_table() {
    let playground = Playground::new(true).await;
    let url = serve(playground.router.clone()).await;
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
    let deletions = summary
        .checks
        .iter()
        .filter(|check| check.name.ends_with("is deleted") && check.passed)
        .count();
    assert_eq!(deletions, 3, "{summary}");
    assert_eq!(playground.items().await, 0, "no table, no user left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_workers_run_for_the_whole_duration() {
    let playground = Playground::new(true).await;
    let url = serve(playground.router.clone()).await;
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
    assert_eq!(count(&summary, "delete_table"), 0, "{summary}");
    assert!(
        summary
            .checks
            .iter()
            .any(|check| check.name.ends_with("is deleted") && check.passed),
        "{summary}"
    );
    assert_eq!(playground.items().await, 0, "no table, no user left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_tables_are_not_deleted_writing_is_refused_without_allow_writes_and_archives_with_it()
{
    let playground = Playground::new(false).await;
    let url = serve(playground.router.clone()).await;
    let api = Api::new(&url, Recorder::default()).expect("api");
    api.wait_until_ready(Duration::from_secs(10))
        .await
        .expect("ready");
    let health = api.health().await.expect("health");
    assert_eq!(health.allow_table_delete(), Some(false));
    for scenario in writing_scenarios() {
        let refused = loadtest::check_writes(&api, &scenario, &health, false)
            .expect_err("refused without --allow-writes");
        assert!(
            matches!(refused, LoadtestError::WritesRefused { .. }),
            "{refused}"
        );
        let message = refused.to_string();
        assert!(
            message.contains("allowTableDelete: false") && message.contains("--allow-writes"),
            "{message}"
        );
        loadtest::check_writes(&api, &scenario, &health, true)
            .expect("allowed with --allow-writes");
        let summary = run(&url, scenario).await;
        assert_passed(&summary);
        assert_eq!(
            count(&summary, "delete_table") > 0,
            summary.scenario == "smoke"
        );
    }
    let read_only = Scenario::Smoke {
        origin: "https://example.org".into(),
        read_only: true,
    };
    loadtest::check_writes(&api, &read_only, &health, false).expect("reading is never refused");
    // Everything the runs created stays, archived: 1 + 1 + 2 + 1 tables.
    let tables = listed_tables(&url).await;
    assert_eq!(tables.len(), 5, "{tables:?}");
    assert!(
        tables.iter().all(|table| table["isArchived"] == true),
        "{tables:?}"
    );
    assert!(playground.items().await > 5, "their users stay too");

    // Where tables are deleted, nothing is refused.
    let deleting = serve(playground_router().await).await;
    let api = Api::new(&deleting, Recorder::default()).expect("api");
    let health = api.health().await.expect("health");
    assert_eq!(health.allow_table_delete(), Some(true));
    for scenario in writing_scenarios() {
        loadtest::check_writes(&api, &scenario, &health, false).expect("allowed");
    }
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
        smoke(),
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
