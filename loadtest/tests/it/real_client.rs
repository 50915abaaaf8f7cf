//! The API's real client (the `aimodelshare` package, driven by
//! `loadtest/real_client/drive.py`) against the router `playground-api` serves
//! locally, over a table on the emulator: sign-in through a session fetched
//! back with `get_token_from_session`, tables and users paged through with
//! the client's own iterators, reads and writes, and a session's expiry. Then
//! against routers that misbehave in each way the driver checks, which must
//! fail it, naming the check.
//!
//! The driver needs `.venv-client/` (`scripts/setup-client`, which
//! `scripts/test` runs): without it these tests fail, saying how to install it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use loadtest::real_client::{Driver, Outcome};
use serde_json::Value;

use crate::support::{Playground, serve};

/// The made-up token's lifetime: long enough for the run's table work on the
/// emulator, short enough to wait for.
const SESSION_SECONDS: &str = "4";

/// Run the driver against `url` with `args` (off the async runtime, which
/// serves the API meanwhile).
async fn drive(url: &str, args: &[&str]) -> Outcome {
    let driver = Driver::new().unwrap_or_else(|error| panic!("{error}"));
    let url = url.to_owned();
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        driver.run(&url, &args)
    })
    .await
    .expect("the driver ran")
}

/// The driver against `router`, which must fail it on `check`.
async fn assert_fails_on(router: axum::Router, check: &str) {
    let outcome = drive(
        &serve(router).await,
        &["--session-seconds", SESSION_SECONDS],
    )
    .await;
    assert!(!outcome.success, "{outcome}");
    let failure = outcome
        .failure()
        .unwrap_or_else(|| panic!("no FAIL line: {outcome}"));
    eprintln!("{failure}");
    assert!(failure.contains(check), "expected {check:?}: {outcome}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_python_client_signs_in_by_session_pages_reads_and_writes() {
    // As production runs it: tables are not deleted.
    let url = serve(Playground::new(false).await.router).await;
    let outcome = drive(
        &url,
        &[
            "--users",
            "23",
            "--page-size",
            "5",
            "--session-seconds",
            SESSION_SECONDS,
        ],
    )
    .await;
    assert!(outcome.success, "{outcome}");
    let summary = outcome.summary();
    eprintln!("{summary}");
    for part in [
        "23 users seen once over 5 pages (limit 5)",
        "no session among tables or users",
        "expired session 404",
    ] {
        assert!(summary.contains(part), "{part:?} in {summary}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_ranks_over_every_page_are_the_servers_for_a_class_past_one_page() {
    let url = serve(Playground::new(false).await.router).await;
    let outcome = drive(
        &url,
        &[
            "--users",
            "3",
            "--session-seconds",
            SESSION_SECONDS,
            "--class-size",
            "520",
        ],
    )
    .await;
    assert!(outcome.success, "{outcome}");
    let summary = outcome.summary();
    eprintln!("{summary}");
    assert!(
        summary.contains("a class of 520 in 7 teams: the server's rank, teamRank and teams equal the apps' computation over every page"),
        "{summary}"
    );
    // The apps' own one-page computation misses the students past 500.
    assert!(
        !summary.contains("(over one page of 500, 0 students"),
        "{summary}"
    );
}

/// Every rank a user read carries is one place off.
async fn ranks_one_off(request: Request, next: Next) -> Response {
    let ranked = request
        .uri()
        .query()
        .unwrap_or_default()
        .contains("withRank=true");
    let response = next.run(request).await;
    if !ranked || response.status() != StatusCode::OK {
        return response;
    }
    rewrite_json(response, |json| {
        if let Some(rank) = json["rank"].as_u64() {
            json["rank"] = Value::from(rank + 1);
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_client_run_fails_where_a_rank_is_off() {
    let router = Playground::new(false)
        .await
        .router
        .layer(middleware::from_fn(ranks_one_off));
    let outcome = drive(
        &serve(router).await,
        &[
            "--users",
            "3",
            "--session-seconds",
            SESSION_SECONDS,
            "--class-size",
            "12",
        ],
    )
    .await;
    assert!(!outcome.success, "{outcome}");
    let failure = outcome
        .failure()
        .unwrap_or_else(|| panic!("no FAIL line: {outcome}"));
    assert!(
        failure.contains("the server's rank and teamRank are the apps' own"),
        "{outcome}"
    );
}

/// `response` with its JSON body rewritten by `change`.
async fn rewrite_json(response: Response, change: impl FnOnce(&mut Value)) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.expect("body");
    let mut json: Value = serde_json::from_slice(&bytes).expect("json");
    change(&mut json);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(json.to_string()))
}

fn is_user_listing(request: &Request) -> bool {
    request.method() == Method::GET && request.uri().path().ends_with("/users")
}

/// The first page of every user listing also lists a session's item, as a
/// listing that read the session's partition would.
async fn session_listed_as_a_user(request: Request, next: Next) -> Response {
    let first_page = is_user_listing(&request)
        && !request
            .uri()
            .query()
            .unwrap_or_default()
            .contains("lastKey");
    let response = next.run(request).await;
    if !first_page || response.status() != StatusCode::OK {
        return response;
    }
    rewrite_json(response, |json| {
        if let Some(users) = json["users"].as_array_mut() {
            users.push(serde_json::json!({
                "username": "_session", "submissionCount": 0, "totalCount": 0
            }));
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_client_run_fails_where_a_session_is_listed_as_a_user() {
    let router = Playground::new(false)
        .await
        .router
        .layer(middleware::from_fn(session_listed_as_a_user));
    assert_fails_on(router, "a session never appears among a table's users").await;
}

/// Each page of users after the first repeats the previous page's last user:
/// a cursor that resumes one item early.
fn overlapping_pages()
-> impl Fn(Request, Next) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>
+ Clone {
    let last: Arc<Mutex<Option<Value>>> = Arc::default();
    move |request: Request, next: Next| {
        let last = Arc::clone(&last);
        Box::pin(async move {
            if !is_user_listing(&request) {
                return next.run(request).await;
            }
            let later_page = request
                .uri()
                .query()
                .unwrap_or_default()
                .contains("lastKey");
            let response = next.run(request).await;
            if response.status() != StatusCode::OK {
                return response;
            }
            rewrite_json(response, |json| {
                let Some(users) = json["users"].as_array_mut() else {
                    return;
                };
                let mut last = last.lock().expect("lock");
                let previous = last.take();
                *last = users.last().cloned();
                if let (true, Some(previous)) = (later_page, previous) {
                    users.insert(0, previous);
                }
            })
            .await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_client_run_fails_where_a_user_shows_on_two_pages() {
    let router = Playground::new(false)
        .await
        .router
        .layer(middleware::from_fn(overlapping_pages()));
    assert_fails_on(router, "every user is seen exactly once across pages").await;
}

/// A session, once read, keeps answering what it answered: its expiry never
/// shows.
fn sessions_that_never_expire()
-> impl Fn(Request, Next) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>
+ Clone {
    let answered: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
    move |request: Request, next: Next| {
        let answered = Arc::clone(&answered);
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            if request.method() != Method::GET || !path.starts_with("/sessions/") {
                return next.run(request).await;
            }
            let response = next.run(request).await;
            let (parts, body) = response.into_parts();
            let bytes = to_bytes(body, usize::MAX).await.expect("body");
            let mut answered = answered.lock().expect("lock");
            if parts.status == StatusCode::OK {
                answered.insert(path, bytes.to_vec());
            } else if let Some(kept) = answered.get(&path) {
                return Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(kept.clone()))
                    .expect("response");
            }
            Response::from_parts(parts, Body::from(bytes))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_client_run_fails_where_an_expired_session_still_answers() {
    let router = Playground::new(false)
        .await
        .router
        .layer(middleware::from_fn(sessions_that_never_expire()));
    assert_fails_on(router, "an expired session is a 404").await;
}
