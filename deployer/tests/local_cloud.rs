//! End to end on the local cloud (ministack, `emulator/local_cloud.py`): the
//! deployer bootstraps and applies an environment with the function's real zip,
//! then the API is called the way clients call it, through API Gateway into the
//! code `apply` uploaded and on to the environment's table.
//!
//! The function is built once per test run: `scripts/test` builds
//! `playground-api` before the tests and passes it in `PLAYGROUND_API_BINARY`;
//! without it this test builds it, in a target directory of its own (a nested
//! `cargo build` on the running test's target directory would wait on its lock).

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use emulator::Emulator;
use loadtest::{Api, Recorder, Scenario, Silent, SingleTable};
use serde_json::{Value, json};
use support::{assert_exit, text};

/// The function's binary for this run.
fn function_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("PLAYGROUND_API_BINARY") {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "PLAYGROUND_API_BINARY={} does not exist; scripts/test builds it with \
                 `cargo build --locked -p function --bin playground-api`",
                path.display()
            );
            return path;
        }
        let root = emulator::workspace_root();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), PathBuf::from)
            .join("local-cloud-function");
        eprintln!(
            "building playground-api into {} (set PLAYGROUND_API_BINARY to skip)",
            target.display()
        );
        let status = std::process::Command::new(env!("CARGO"))
            .current_dir(&root)
            .args([
                "build",
                "--locked",
                "-p",
                "function",
                "--bin",
                "playground-api",
            ])
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building playground-api failed");
        target.join("debug/playground-api")
    })
}

/// A local cloud with the bootstrap stack applied, and a folder holding the
/// function's zip (`fn.zip`) to run the deployer in.
struct Cloud {
    emulator: Emulator,
    dir: tempfile::TempDir,
    config: aws_config::SdkConfig,
    http: reqwest::Client,
}

impl Cloud {
    async fn new() -> Self {
        let emulator = Emulator::local_cloud().unwrap_or_else(|error| panic!("{error}"));
        let config = emulator::sdk_config_for(emulator.endpoint()).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let executable = std::fs::read(function_binary()).expect("read playground-api");
        let artifact = deployer::artifact::package(&executable, "playground-api").expect("zip");
        std::fs::write(dir.path().join("fn.zip"), artifact.bytes).expect("write fn.zip");
        support::write_config(dir.path());
        let cloud = Self {
            emulator,
            dir,
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
        };
        assert_exit(&cloud.deployer(&["bootstrap", "--auto-approve"]), 0);
        cloud
    }

    /// Run the deployer against the local cloud, health check included.
    fn deployer(&self, args: &[&str]) -> Output {
        support::run_deployer_checking_health(self.dir.path(), self.emulator.endpoint(), args)
    }

    fn apply_dev(&self, extra: &[&str]) -> Output {
        let mut args = vec![
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn.zip",
        ];
        args.extend_from_slice(extra);
        self.deployer(&args)
    }

    async fn api_id(&self) -> Option<String> {
        let apis = aws_sdk_apigatewayv2::Client::new(&self.config)
            .get_apis()
            .send()
            .await
            .expect("apis");
        apis.items()
            .iter()
            .find(|api| api.name() == Some("aimodelshare-playground-dev-http-api"))
            .and_then(|api| api.api_id().map(str::to_owned))
    }

    /// `METHOD base+path` with an optional raw body and headers; status, headers, JSON body.
    async fn call(
        &self,
        base: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method.clone(), format!("{base}{path}"));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, body)
    }
}

/// Every line of the contract that a client meets, bad input included, through
/// API Gateway.
async fn check_contract(cloud: &Cloud, base: &str) {
    let get = |path: String| async move { cloud.call(base, "GET", &path, None, &[]).await };
    let table = emulator::unique_name("e2e");
    let create = format!(r#"{{"tableId":"{table}","displayName":"Class"}}"#);
    let (status, _, body) = cloud
        .call(base, "POST", "/tables", Some(&create), &[])
        .await;
    assert_eq!((status, &body["tableId"]), (201, &json!(table)), "{body}");
    let (status, _, body) = cloud
        .call(base, "POST", "/tables", Some(&create), &[])
        .await;
    assert_eq!(status, 409, "{body}");

    // Bad input: each is a 400 with the JSON error shape.
    for (method, path, body) in [
        ("POST", "/tables".to_owned(), Some("{not json")),
        (
            "POST",
            "/tables".to_owned(),
            Some(r#"{"tableId":"bad id!"}"#),
        ),
        ("POST", "/tables".to_owned(), Some(r#"{"tableId":5}"#)),
        ("GET", "/tables?limit=0".to_owned(), None),
        ("GET", "/tables?limit=501".to_owned(), None),
        ("GET", "/tables?lastKey=garbage".to_owned(), None),
        (
            "PATCH",
            format!("/tables/{table}"),
            Some(r#"{"isArchived":"yes"}"#),
        ),
        ("PATCH", format!("/tables/{table}"), Some(r#"{"other":1}"#)),
        (
            "PUT",
            format!("/tables/{table}/users/alice"),
            Some(r#"{"submissionCount":-1,"totalCount":0}"#),
        ),
        (
            "PUT",
            format!("/tables/{table}/users/alice"),
            Some(r#"{"submissionCount":1.5,"totalCount":2}"#),
        ),
        (
            "PUT",
            format!("/tables/{table}/users/alice"),
            Some(r#"{"totalCount":2}"#),
        ),
        (
            "PUT",
            format!("/tables/{table}/users/_metadata"),
            Some(r#"{"submissionCount":1,"totalCount":2}"#),
        ),
        ("GET", format!("/tables/{table}/users?limit=abc"), None),
    ] {
        let (status, _, reply) = cloud.call(base, method, &path, body, &[]).await;
        assert_eq!(status, 400, "{method} {path} {body:?}: {reply}");
        assert!(reply["error"].is_string(), "{method} {path}: {reply}");
    }

    // The happy path, read back through the API.
    for (user, submissions) in [("alice", 3), ("bob", 5)] {
        let payload = format!(r#"{{"submissionCount":{submissions},"totalCount":10}}"#);
        let (status, _, body) = cloud
            .call(
                base,
                "PUT",
                &format!("/tables/{table}/users/{user}"),
                Some(&payload),
                &[],
            )
            .await;
        assert_eq!((status, &body["createdNew"]), (200, &json!(true)), "{body}");
    }
    let (status, _, body) = get(format!("/tables/{table}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["userCount"], 2, "{body}");
    assert_eq!(body["displayName"], "Class", "{body}");
    let (status, _, body) = get(format!("/tables/{table}/users/bob")).await;
    assert_eq!(
        (status, &body["submissionCount"]),
        (200, &json!(5)),
        "{body}"
    );
    let (status, _, body) = get(format!("/tables/{table}/users/nobody")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("User not found in table"))
    );
    let (status, _, body) = get("/tables/no-such-table".into()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("Table not found"))
    );
    let (status, _, body) = get(format!("/tables/{table}/users")).await;
    assert_eq!(status, 200, "{body}");
    let users: Vec<&str> = body["users"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .filter_map(|user| user["username"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(users, ["bob", "alice"], "by submissionCount desc: {body}");

    // What API Gateway would answer itself without the $default route reaches
    // the function: its JSON 404, and 405 with Allow.
    for path in ["/", "/nope", "/tables/a/b/c/d", "/health/x"] {
        let (status, _, body) = get(path.into()).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body, json!({"error": "Route not found"}), "{path}");
    }
    let (status, headers, body) = cloud
        .call(base, "PUT", &format!("/tables/{table}"), Some("{}"), &[])
        .await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["error"], "Method not allowed");
    let allow = headers
        .get("allow")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    assert!(
        allow.contains("GET") && allow.contains("PATCH") && allow.contains("DELETE"),
        "{allow}"
    );
    // DELETE is routed, and this environment does not allow it.
    let (status, _, body) = cloud
        .call(base, "DELETE", &format!("/tables/{table}"), None, &[])
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"], "This environment does not allow deleting tables",
        "{body}"
    );

    // 413 from the function (API Gateway's own limit is 10 MB).
    let large = format!(
        r#"{{"tableId":"x","displayName":"{}"}}"#,
        "a".repeat(70_000)
    );
    let (status, _, body) = cloud.call(base, "POST", "/tables", Some(&large), &[]).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].is_string(), "{body}");

    // CORS has one owner: a preflight is answered, and no header comes twice.
    let (status, headers, _) = cloud
        .call(
            base,
            "OPTIONS",
            "/tables",
            None,
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "PUT"),
            ],
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        headers
            .get_all("access-control-allow-origin")
            .iter()
            .count(),
        1
    );
    let methods = headers
        .get("access-control-allow-methods")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    assert!(
        methods.contains("PUT") && methods.contains("PATCH"),
        "{methods}"
    );
    for path in ["/health", "/tables/no-such-table", "/nope"] {
        let (_, headers, _) = cloud
            .call(
                base,
                "GET",
                path,
                None,
                &[("origin", "https://app.example")],
            )
            .await;
        let origins: Vec<_> = headers
            .get_all("access-control-allow-origin")
            .iter()
            .collect();
        assert_eq!(origins, ["*"], "{path}: one Access-Control-Allow-Origin");
    }

    // Archive it: listings keep it, flagged.
    let (status, _, _) = cloud
        .call(
            base,
            "PATCH",
            &format!("/tables/{table}"),
            Some(r#"{"isArchived":true}"#),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let (_, _, body) = get(format!("/tables/{table}")).await;
    assert_eq!(body["isArchived"], true, "{body}");
}

async fn run_scenario(base: &str, scenario: Scenario) -> loadtest::Summary {
    let api = Api::new(base, Recorder::default()).expect("api");
    api.wait_until_ready(Duration::from_secs(30))
        .await
        .expect("ready");
    loadtest::run(&api, &scenario, std::sync::Arc::new(Silent)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_on_the_local_cloud_serves_the_contract_through_api_gateway() {
    let cloud = Cloud::new().await;
    let applied = cloud.apply_dev(&[]);
    assert_exit(&applied, 0);
    assert!(
        text(&applied).contains("api: answered 200"),
        "apply ends when the API answers: {}",
        text(&applied)
    );
    assert_exit(
        &cloud.deployer(&[
            "plan",
            "--env",
            "dev",
            "--detailed-exitcode",
            "--artifact",
            "fn.zip",
        ]),
        0,
    );
    let api_id = cloud.api_id().await.expect("the HTTP API exists");
    let base = emulator::execute_api_url(cloud.emulator.endpoint(), &api_id, "dev");

    let (status, _, body) = cloud.call(&base, "GET", "/health", None, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "status": "ok",
            "tableName": "PlaygroundScores-dev",
            "safeConcurrency": true,
            "allowTableDelete": false
        })
    );
    check_contract(&cloud, &base).await;

    let smoke = run_scenario(
        &base,
        Scenario::Smoke {
            origin: "https://example.org".into(),
            read_only: false,
        },
    )
    .await;
    assert!(smoke.passed, "{smoke}");
    // This environment does not delete tables: the smoke test's DELETE is a 403.
    assert_eq!(smoke.checks.len(), 22, "{smoke}");
    let single = run_scenario(
        &base,
        Scenario::SingleTable(SingleTable {
            users: 30,
            concurrency: 6,
        }),
    )
    .await;
    assert!(single.passed, "{single}");
    let created = single
        .by_operation
        .iter()
        .find(|operation| operation.name == "create_user")
        .map_or(0, |operation| operation.count);
    assert_eq!(created, 30, "{single}");

    // A change to the function is served by the new configuration, with the API id kept.
    let changed = cloud.apply_dev(&["--var", "safe_concurrency=false"]);
    assert_exit(&changed, 0);
    assert!(text(&changed).contains("1 changed"), "{}", text(&changed));
    let (_, _, body) = cloud.call(&base, "GET", "/health", None, &[]).await;
    assert_eq!(body["safeConcurrency"], false, "{body}");
    assert_eq!(cloud.api_id().await.as_deref(), Some(api_id.as_str()));
    let rerun = cloud.apply_dev(&["--var", "safe_concurrency=false"]);
    assert_exit(&rerun, 0);
    assert!(text(&rerun).contains("No changes."), "{}", text(&rerun));

    // Destroy leaves nothing, and the URL stops answering.
    assert_exit(
        &cloud.deployer(&["destroy", "--env", "dev", "--auto-approve"]),
        0,
    );
    assert_eq!(cloud.api_id().await, None);
    let lambda = aws_sdk_lambda::Client::new(&cloud.config);
    assert!(
        lambda
            .get_function()
            .function_name("aimodelshare-playground-dev-api")
            .send()
            .await
            .is_err(),
        "the function is gone"
    );
    let tables = aws_sdk_dynamodb::Client::new(&cloud.config)
        .list_tables()
        .send()
        .await
        .expect("tables");
    assert!(
        !tables
            .table_names()
            .iter()
            .any(|name| name == "PlaygroundScores-dev"),
        "{:?}",
        tables.table_names()
    );
    let (status, _, body) = cloud.call(&base, "GET", "/health", None, &[]).await;
    assert_ne!(
        status, 200,
        "the API URL still answers after destroy: {body}"
    );
}
