//! The `loadtest` command line and binary: its exit code and JSON summary,
//! its refusal to write where tables are not deleted, and flags that do not
//! exist. (That the deploy workflow's command lines parse and cover every
//! scenario is checked by the deployer's tests, `workflows::`.)

use axum::middleware;
use clap::Parser as _;
use loadtest::cli::Cli;

use serde_json::Value;

use crate::support::{Playground, listed_tables, playground_router, serve, undercount};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_refuses_to_write_where_tables_are_not_deleted_unless_allowed() {
    let playground = Playground::new(false).await;
    let url = serve(playground.router.clone()).await;
    for scenario in ["smoke", "single-table", "multi-table", "mixed"] {
        let args: Vec<String> = [scenario, "--url", &url].map(str::to_owned).to_vec();
        let output = tokio::task::spawn_blocking(move || {
            loadtest(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .expect("join");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{scenario}: {stderr}");
        assert!(
            stderr.contains("allowTableDelete: false")
                && stderr.contains("--allow-writes")
                && stderr.contains("smoke --read-only"),
            "{scenario}: says why and how: {stderr}"
        );
    }
    assert_eq!(playground.items().await, 0, "nothing was written");

    let read_only = url.clone();
    let output = tokio::task::spawn_blocking(move || {
        loadtest(&["smoke", "--read-only", "--url", &read_only])
    })
    .await
    .expect("join");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(
        playground.items().await,
        0,
        "smoke --read-only wrote nothing"
    );

    let allowed = url.clone();
    let output = tokio::task::spawn_blocking(move || {
        loadtest(&[
            "single-table",
            "--users",
            "3",
            "--url",
            &allowed,
            "--allow-writes",
        ])
    })
    .await
    .expect("join");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let tables = listed_tables(&url).await;
    assert_eq!(tables.len(), 1, "{tables:?}");
    assert_eq!(tables[0]["isArchived"], true, "{tables:?}");
}

#[test]
fn a_misspelt_flag_would_not_parse() {
    let words = ["loadtest", "mixed", "--worker", "3"];
    assert!(Cli::try_parse_from(words).is_err());
}
