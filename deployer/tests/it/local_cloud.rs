//! End to end on the local cloud (ministack, `emulator/local_cloud.py`): the
//! deployer bootstraps and applies an environment with the function's real zip,
//! then the API is called the way clients call it, through API Gateway into the
//! code `apply` uploaded and on to the environment's table.
//!
//! The function is built once per test run: `scripts/test` builds
//! `playground-api` before the tests and passes it in `PLAYGROUND_API_BINARY`;
//! without it this test builds it, in a target directory of its own (a nested
//! `cargo build` on the running test's target directory would wait on its lock).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::{Account, assert_exit, names, text};
use emulator::Emulator;
use loadtest::{Api, Recorder, Scenario, Silent, SingleTable};
use serde_json::{Value, json};

/// The function's binary for this run.
fn function_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        built(
            "PLAYGROUND_API_BINARY",
            &["--bin", "playground-api"],
            "debug/playground-api",
        )
    })
}

/// The deliberately broken release (`function/examples/broken_release.rs`:
/// `GET /health` panics), built once per run like the function.
fn broken_release_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        built(
            "PLAYGROUND_BROKEN_RELEASE_BINARY",
            &["--example", "broken_release"],
            "debug/examples/broken_release",
        )
    })
}

/// The binary `variable` names (as `scripts/test` sets it), or else one built
/// with `cargo build -p function TARGET` into a target directory of its own.
fn built(variable: &str, target: &[&str], path: &str) -> PathBuf {
    if let Some(binary) = std::env::var_os(variable) {
        let binary = PathBuf::from(binary);
        assert!(
            binary.is_file(),
            "{variable}={} does not exist; scripts/test builds it with \
             `cargo build --locked -p function {}`",
            binary.display(),
            target.join(" ")
        );
        return binary;
    }
    let root = emulator::workspace_root();
    let directory = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("local-cloud-function");
    eprintln!(
        "building {path} into {} (set {variable} to skip)",
        directory.display()
    );
    let status = std::process::Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["build", "--locked", "-p", "function"])
        .args(target)
        .arg("--target-dir")
        .arg(&directory)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building {path} failed");
    directory.join(path)
}

/// A local cloud with the bootstrap stack applied, and a folder holding the
/// function's zip (`fn.zip`) to run the deployer in.
/// An account on a local cloud of its own, bootstrapped, with the function
/// built here as `fn.zip`; the deployer runs its health and pre-traffic
/// checks there.
struct Cloud {
    account: Account,
    http: reqwest::Client,
}

impl std::ops::Deref for Cloud {
    type Target = Account;

    fn deref(&self) -> &Account {
        &self.account
    }
}

impl Cloud {
    async fn new() -> Self {
        let emulator = Emulator::local_cloud().unwrap_or_else(|error| panic!("{error}"));
        let account = Account::on(emulator, true).await;
        let executable = std::fs::read(function_binary()).expect("read playground-api");
        account.write_artifact("fn.zip", &executable);
        assert_exit(&account.deployer(&["bootstrap", "--auto-approve"]), 0);
        Self {
            account,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
        }
    }

    async fn api_id(&self) -> Option<String> {
        self.api_named(&names("dev").http_api).await
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
    // A lastKey that cannot be read is the first page, as the legacy handler had it.
    let (status, _, reply) = cloud
        .call(base, "GET", "/tables?lastKey=garbage", None, &[])
        .await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["tables"].is_array(), "{reply}");

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
    let applied = cloud.apply_dev_with(&[]);
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

    let (status, _, mut body) = cloud.call(&base, "GET", "/health", None, &[]).await;
    assert_eq!(status, 200, "{body}");
    let timestamp = body
        .as_object_mut()
        .and_then(|health| health.remove("timestamp"));
    assert!(
        timestamp.as_ref().is_some_and(Value::is_string),
        "{timestamp:?}"
    );
    assert_eq!(
        body,
        json!({
            "status": "ok",
            "tableName": &names("dev").table,
            "safeConcurrency": true,
            "allowTableDelete": false,
            "release": "1"
        })
    );
    check_contract(&cloud, &base).await;

    // The OpenAPI document is served through API Gateway as committed, and the
    // API answers as it says (schemathesis: property-based and stateful, fewer
    // examples than the local run, whose boundary-coverage phase it skips: every
    // request here runs the zip in a local Lambda).
    let (status, _, document) = cloud.call(&base, "GET", "/openapi.json", None, &[]).await;
    assert_eq!(status, 200, "{document}");
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(emulator::workspace_root().join("function/openapi.json"))
            .expect("function/openapi.json"),
    )
    .expect("JSON");
    assert_eq!(document, committed);
    let fuzz = std::process::Command::new(emulator::workspace_root().join("scripts/fuzz"))
        .args([
            "--url",
            &base,
            "--max-examples",
            "5",
            "--phases",
            "fuzzing,stateful",
        ])
        .output()
        .expect("run scripts/fuzz");
    assert!(
        fuzz.status.success(),
        "schemathesis through API Gateway: {}{}",
        String::from_utf8_lossy(&fuzz.stdout),
        String::from_utf8_lossy(&fuzz.stderr)
    );

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
    let changed = cloud.apply_dev_with(&["--var", "safe_concurrency=false"]);
    assert_exit(&changed, 0);
    assert!(
        text(&changed).contains("2 changed"),
        "the function and its release: {}",
        text(&changed)
    );
    let (_, _, body) = cloud.call(&base, "GET", "/health", None, &[]).await;
    assert_eq!(body["safeConcurrency"], false, "{body}");
    assert_eq!(body["release"], "2", "served by the new version: {body}");
    assert_eq!(cloud.api_id().await.as_deref(), Some(api_id.as_str()));
    let rerun = cloud.apply_dev_with(&["--var", "safe_concurrency=false"]);
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
            .function_name(&names("dev").function)
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
            .any(|name| name == &names("dev").table),
        "{:?}",
        tables.table_names()
    );
    let (status, _, body) = cloud.call(&base, "GET", "/health", None, &[]).await;
    assert_ne!(
        status, 200,
        "the API URL still answers after destroy: {body}"
    );
}

/// What `GET /health` through API Gateway answered: status and `release`.
async fn served(cloud: &Cloud, base: &str) -> (u16, String) {
    let (status, _, body) = cloud.call(base, "GET", "/health", None, &[]).await;
    (status, body["release"].as_str().unwrap_or("?").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_release_is_refused_while_the_old_one_serves_and_rollback_moves_live_back() {
    let cloud = std::sync::Arc::new(Cloud::new().await);
    assert_exit(&cloud.apply_dev_with(&[]), 0);
    let api_id = cloud.api_id().await.expect("the HTTP API exists");
    let base = emulator::execute_api_url(cloud.emulator.endpoint(), &api_id, "dev");
    assert_eq!(served(&cloud, &base).await, (200, "1".to_owned()));

    // A release whose /health panics: clients keep getting version 1 throughout.
    let broken = std::fs::read(broken_release_binary()).expect("read broken_release");
    let artifact = deployer::package::artifact::package(&broken, "broken_release").expect("zip");
    std::fs::write(cloud.dir.path().join("broken.zip"), artifact.bytes).expect("write broken.zip");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (cloud, base, stop) = (cloud.clone(), base.clone(), stop.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                answers.push(served(&cloud, &base).await);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            answers
        })
    };
    let refused = {
        let cloud = cloud.clone();
        tokio::task::spawn_blocking(move || {
            cloud.deployer(&[
                "apply",
                "--env",
                "dev",
                "--auto-approve",
                "--artifact",
                "broken.zip",
            ])
        })
        .await
        .expect("apply")
    };
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let answers = watcher.await.expect("watcher");
    assert_exit(&refused, 1);
    let shown = text(&refused);
    eprintln!("the refused apply said:\n{shown}");
    assert!(
        shown.contains("checking version 2 of Lambda function"),
        "{shown}"
    );
    assert!(shown.contains("GET /health"), "{shown}");
    assert!(shown.contains("live stays at version 1"), "{shown}");
    assert!(answers.len() >= 2, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|answer| *answer == (200, "1".to_owned())),
        "clients saw only version 1: {answers:?}"
    );

    // A good release, then a rollback to the one before it, in seconds.
    assert_exit(&cloud.apply_dev_with(&["--var", "memory_mb=512"]), 0);
    let (status, released) = served(&cloud, &base).await;
    assert_eq!(status, 200);
    assert_ne!(released, "1", "a new version serves");
    let started = std::time::Instant::now();
    let rolled = cloud.deployer(&["rollback", "--env", "dev"]);
    let took = started.elapsed();
    assert_exit(&rolled, 0);
    eprintln!("rollback took {took:?}");
    assert_eq!(served(&cloud, &base).await, (200, "1".to_owned()));

    // The rolled-back configuration again is a no-op; live stays at 1.
    let again = cloud.apply_dev_with(&["--var", "memory_mb=512"]);
    assert_exit(&again, 0);
    assert!(text(&again).contains("No changes."), "{}", text(&again));
    assert_eq!(served(&cloud, &base).await, (200, "1".to_owned()));
}

/// `emulator/identity_provider.py`: a local OIDC issuer that signs tokens, for
/// as long as the test holds it (it exits when its standard input closes).
struct IdentityProvider {
    child: std::process::Child,
    issuer: String,
}

impl IdentityProvider {
    fn start() -> Self {
        use std::io::BufRead;
        let root = emulator::workspace_root();
        let python = root.join(".venv/bin/python");
        assert!(
            python.is_file(),
            "{} is missing: run scripts/setup-emulator",
            python.display()
        );
        let mut child = std::process::Command::new(python)
            .arg(root.join("emulator/identity_provider.py"))
            .args(["--port", "0", "--exit-with-stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the identity provider");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("READY line");
        let issuer = line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("not a READY line: {line:?}"))
            .to_owned();
        Self { child, issuer }
    }

    async fn token(&self, claims: Value, audience: &str, expires_in: i64, forged: bool) -> String {
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .body(
                json!({"claims": claims, "audience": audience, "expires_in": expires_in, "forged": forged})
                    .to_string(),
            )
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("token JSON");
        answer["token"].as_str().expect("a token").to_owned()
    }
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn sign_in_through_api_gateway_verifies_tokens_and_the_function_applies_the_owner_rules() {
    let idp = IdentityProvider::start();
    let cloud = Cloud::new().await;
    let issuer = format!("auth_issuer={}", idp.issuer);
    assert_exit(
        &cloud.apply_dev_with(&["--var", &issuer, "--var", "auth_audiences=playground-app"]),
        0,
    );
    let api_id = cloud.api_id().await.expect("the HTTP API");
    let base = emulator::execute_api_url(cloud.emulator.endpoint(), &api_id, "dev");
    let person = |sub: &str, name: &str, groups: Value| json!({"sub": sub, "cognito:username": name, "email": format!("{name}@example.org"), "cognito:groups": groups});
    let teacher = idp
        .token(
            person("sub-teacher", "teacher", json!(["teachers"])),
            "playground-app",
            3600,
            false,
        )
        .await;
    let ana = idp
        .token(
            person("sub-ana", "ana", json!([])),
            "playground-app",
            3600,
            false,
        )
        .await;
    let bo = idp
        .token(
            person("sub-bo", "bo", json!([])),
            "playground-app",
            3600,
            false,
        )
        .await;
    let forged = idp
        .token(
            person("sub-teacher", "teacher", json!(["admin"])),
            "playground-app",
            3600,
            true,
        )
        .await;
    let elsewhere = idp
        .token(
            person("sub-teacher", "teacher", json!([])),
            "another-app",
            3600,
            false,
        )
        .await;
    let expired = idp
        .token(
            person("sub-teacher", "teacher", json!([])),
            "playground-app",
            -60,
            false,
        )
        .await;
    let bearer = |token: &str| format!("Bearer {token}");
    let create = Some(r#"{"tableId":"class-1"}"#);

    // Refused by API Gateway itself: its {"message"} answer, not the function's
    // {"error"}, so the function never ran.
    for (what, authorization) in [
        ("no token", None),
        ("a forged signature", Some(bearer(&forged))),
        ("a wrong audience", Some(bearer(&elsewhere))),
        ("an expired token", Some(bearer(&expired))),
    ] {
        let headers: Vec<(&str, &str)> = authorization
            .as_deref()
            .map(|value| vec![("authorization", value)])
            .unwrap_or_default();
        let (status, _, body) = cloud.call(&base, "POST", "/tables", create, &headers).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(
            body.get("error").is_none() && body.get("message").is_some(),
            "{what}: {body}"
        );
    }

    // A valid token: the teacher creates and owns the table.
    let (status, _, body) = cloud
        .call(
            &base,
            "POST",
            "/tables",
            create,
            &[("authorization", &bearer(&teacher))],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // Reads stay public.
    let (status, _, _) = cloud.call(&base, "GET", "/tables/class-1", None, &[]).await;
    assert_eq!(status, 200);
    // Scores: ana writes her own; bo may not write hers (the function's 403).
    let scores = Some(r#"{"submissionCount": 4, "totalCount": 5}"#);
    let (status, _, body) = cloud
        .call(
            &base,
            "PUT",
            "/tables/class-1/users/ana",
            scores,
            &[("authorization", &bearer(&ana))],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = cloud
        .call(
            &base,
            "PUT",
            "/tables/class-1/users/ana",
            scores,
            &[("authorization", &bearer(&bo))],
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|error| error.contains("signed in as bo")),
        "{body}"
    );
    // Table changes: not bo, the teacher yes.
    let rename = Some(r#"{"displayName": "Renamed"}"#);
    let (status, _, _) = cloud
        .call(
            &base,
            "PATCH",
            "/tables/class-1",
            rename,
            &[("authorization", &bearer(&bo))],
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, body) = cloud
        .call(
            &base,
            "PATCH",
            "/tables/class-1",
            rename,
            &[("authorization", &bearer(&teacher))],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, _, table) = cloud.call(&base, "GET", "/tables/class-1", None, &[]).await;
    assert_eq!(table["displayName"], "Renamed");
    assert_eq!(table["userCount"], 1);
}

/// An environment deployed with its own user pool (`auth_create_user_pool`),
/// and the accounts a teacher made in it with admin credentials.
struct PoolEnvironment {
    cloud: Cloud,
    base: String,
    pool_id: String,
    client_id: String,
    cognito: aws_sdk_cognitoidentityprovider::Client,
}

impl PoolEnvironment {
    const PASSWORD: &'static str = "A long enough passphrase, 2!";

    /// Deploy with the pool, and make `students` (the first one an admin when
    /// `first_is_admin`).
    async fn new(students: &[&str], first_is_admin: bool) -> Self {
        use aws_sdk_cognitoidentityprovider::types::MessageActionType;
        let cloud = Cloud::new().await;
        assert_exit(
            &cloud.apply_dev_with(&[
                "--var",
                "auth_create_user_pool=true",
                "--var",
                "auth_callback_urls=http://localhost:8888/callback",
            ]),
            0,
        );
        let output = cloud.deployer(&["output", "--env", "dev", "--json"]);
        assert_exit(&output, 0);
        let outputs: Value = serde_json::from_slice(&output.stdout).expect("json outputs");
        let pool_id = outputs["auth_user_pool_id"]
            .as_str()
            .expect("pool id")
            .to_owned();
        let client_id = outputs["auth_client_id"]
            .as_str()
            .expect("client id")
            .to_owned();
        let api_id = cloud.api_id().await.expect("the HTTP API");
        let base = emulator::execute_api_url(cloud.emulator.endpoint(), &api_id, "dev");

        // What a teacher does with admin credentials: accounts, and the admin group.
        let cognito = aws_sdk_cognitoidentityprovider::Client::new(&cloud.config);
        for name in students {
            cognito
                .admin_create_user()
                .user_pool_id(&pool_id)
                .username(*name)
                .message_action(MessageActionType::Suppress)
                .send()
                .await
                .unwrap_or_else(|error| panic!("create {name}: {error:?}"));
            cognito
                .admin_set_user_password()
                .user_pool_id(&pool_id)
                .username(*name)
                .password(Self::PASSWORD)
                .permanent(true)
                .send()
                .await
                .unwrap_or_else(|error| panic!("password of {name}: {error:?}"));
        }
        if let (true, Some(admin)) = (first_is_admin, students.first()) {
            cognito
                .admin_add_user_to_group()
                .user_pool_id(&pool_id)
                .username(*admin)
                .group_name("admin")
                .send()
                .await
                .expect("the first one is an admin");
        }
        Self {
            cloud,
            base,
            pool_id,
            client_id,
            cognito,
        }
    }

    /// `name`'s ID token from signing in as a notebook does, through `client`
    /// (the environment's app client unless another is given).
    async fn id_token(&self, name: &str, client: Option<&str>) -> String {
        use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
        let signed_in = self
            .cognito
            .initiate_auth()
            .client_id(client.unwrap_or(&self.client_id))
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", name)
            .auth_parameters("PASSWORD", Self::PASSWORD)
            .send()
            .await
            .unwrap_or_else(|error| panic!("sign in {name}: {error:?}"));
        signed_in
            .authentication_result()
            .and_then(|result| result.id_token())
            .expect("an ID token")
            .to_owned()
    }
}

/// `auth_create_user_pool` end to end: the environment's own user pool signs
/// students in (the SDK sign-in a notebook uses, with the client id from the
/// outputs), API Gateway verifies its tokens, and the pool's admin group makes
/// an admin. A token of another app client of the same pool is refused.
#[tokio::test]
async fn the_environments_own_user_pool_signs_students_in_through_api_gateway() {
    let pool = PoolEnvironment::new(&["teacher", "ana", "bo"], true).await;
    let (cloud, base, cognito) = (&pool.cloud, pool.base.clone(), &pool.cognito);
    let bearer = |token: String| format!("Bearer {token}");
    let teacher = bearer(pool.id_token("teacher", None).await);
    let ana = bearer(pool.id_token("ana", None).await);
    let bo = bearer(pool.id_token("bo", None).await);
    // Another app's client in the same pool: its tokens are for another audience.
    let other_client = cognito
        .create_user_pool_client()
        .user_pool_id(&pool.pool_id)
        .client_name("another-app")
        .explicit_auth_flows(
            aws_sdk_cognitoidentityprovider::types::ExplicitAuthFlowsType::AllowUserPasswordAuth,
        )
        .send()
        .await
        .expect("another client")
        .user_pool_client
        .and_then(|client| client.client_id)
        .expect("its id");
    let elsewhere = bearer(pool.id_token("ana", Some(&other_client)).await);

    let create = |id: &str| format!(r#"{{"tableId":"{id}"}}"#);
    for (what, headers) in [
        ("no token", vec![]),
        (
            "another client's token",
            vec![("authorization", elsewhere.as_str())],
        ),
    ] {
        let (status, _, body) = cloud
            .call(&base, "POST", "/tables", Some(&create("class-1")), &headers)
            .await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(
            body.get("error").is_none(),
            "API Gateway refused it: {body}"
        );
    }
    // Ana's own table and scores; Bo may write neither; the pool's admin group
    // makes the teacher an admin of every table.
    let scores = r#"{"submissionCount": 2, "totalCount": 3}"#;
    let rename = r#"{"displayName": "Period 2"}"#;
    let first_class = create("class-1");
    for (who, token, method, path, body, expected) in [
        ("ana", &ana, "POST", "/tables", first_class.as_str(), 201),
        ("ana", &ana, "PUT", "/tables/class-1/users/ana", scores, 200),
        ("bo", &bo, "PUT", "/tables/class-1/users/ana", scores, 403),
        ("bo", &bo, "PATCH", "/tables/class-1", rename, 403),
        (
            "the teacher",
            &teacher,
            "PATCH",
            "/tables/class-1",
            rename,
            200,
        ),
    ] {
        let (status, _, answer) = cloud
            .call(&base, method, path, Some(body), &[("authorization", token)])
            .await;
        assert_eq!(status, expected, "{who}: {method} {path}: {answer}");
    }
    let (_, _, table) = cloud.call(&base, "GET", "/tables/class-1", None, &[]).await;
    assert_eq!(table["displayName"], "Period 2");
    assert_eq!(table["userCount"], 1);
}

/// The lock file on the local cloud's S3: its conditional writes hold as
/// moto's do (the state crate's tests), so an apply while another run holds
/// `dev`'s lock is refused, naming the holder and its run, and changes
/// nothing; `lock status` shows the holder; once released, nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_local_cloud_a_held_lock_file_refuses_an_apply_naming_its_holder() {
    let cloud = Cloud::new().await;
    let bucket = crate::support::settings().state_bucket;
    let backend = state::Backend::Remote {
        store: state::S3Store::new(cloud.s3.clone(), &bucket),
        lock: state::RemoteLock {
            backend: state::LockBackend::S3,
            s3: state::S3Lock::new(cloud.s3.clone(), &bucket),
            dynamodb: state::DynamoDbLock::new(cloud.dynamodb.clone(), "no-lock-table"),
        },
    };
    let run_url = "https://github.com/o/r/actions/runs/7";
    let held = backend
        .lock(
            "dev",
            &state::LockRequest {
                operation: "apply".into(),
                info: "deployer apply --env dev".into(),
                who: "teammate@laptop".into(),
                version: "0.1.0".into(),
                timeout: Duration::ZERO,
                force_unlock_command: "deployer force-unlock --env dev".into(),
                lease: Duration::from_secs(600),
                run_url: Some(run_url.into()),
                host: "laptop".into(),
                process: 7,
            },
        )
        .await
        .expect("the lock file is taken");

    let refused = cloud.apply_dev_with(&[]);
    assert_exit(&refused, 1);
    for needle in ["teammate@laptop", run_url, held.info.id.as_str()] {
        assert!(
            text(&refused).contains(needle),
            "{needle}: {}",
            text(&refused)
        );
    }
    assert_eq!(cloud.api_id().await, None, "nothing was applied");
    let status = cloud.deployer(&["lock", "status", "--env", "dev", "--json"]);
    assert_exit(&status, 0);
    let status: Value = serde_json::from_slice(&status.stdout).expect("lock status --json");
    assert_eq!(status["locked"], true, "{status}");
    assert!(status.to_string().contains(run_url), "{status}");

    backend.unlock(&held).await.expect("released");
    let status = cloud.deployer(&["lock", "status", "--env", "dev", "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).expect("lock status --json");
    assert_eq!(status["locked"], false, "{status}");
}

/// Run the API's real Python client (`loadtest/real_client/drive.py`, the
/// `aimodelshare` package in `.venv-client/`) against `base` (off the async
/// runtime).
async fn drive_real_client(
    driver: loadtest::real_client::Driver,
    base: &str,
    args: &[&str],
) -> loadtest::real_client::Outcome {
    let base = base.to_owned();
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        driver.run(&base, &args)
    })
    .await
    .expect("the driver ran")
}

/// The real client, as the teaching apps use it, through API Gateway into the
/// zip `apply` uploaded, sign-in off: a session stored and fetched back by
/// `get_token_from_session`, tables and users paged with the client's
/// iterators, reads and writes, and the session's expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_python_client_drives_the_api_through_api_gateway() {
    // Before anything is deployed: without the client's venv this fails here,
    // saying how to install it.
    let driver = loadtest::real_client::Driver::new().unwrap_or_else(|error| panic!("{error}"));
    let cloud = Cloud::new().await;
    assert_exit(&cloud.apply_dev_with(&[]), 0);
    let api_id = cloud.api_id().await.expect("the HTTP API exists");
    let base = emulator::execute_api_url(cloud.emulator.endpoint(), &api_id, "dev");
    // And a moral-compass class, as the apps drive it: every new route
    // (moral-compass, tasks, withRank, teams) through API Gateway.
    let outcome = drive_real_client(
        driver,
        &base,
        &["--session-seconds", "10", "--class-size", "12"],
    )
    .await;
    assert!(outcome.success, "{outcome}");
    let summary = outcome.summary();
    eprintln!("{summary}");
    assert!(summary.contains("expired session 404"), "{summary}");
    assert!(
        summary.contains("a class of 12 in 7 teams: the server's rank, teamRank and teams"),
        "{summary}"
    );
}

/// Sessions where sign-in is on (the environment's own user pool): storing or
/// changing one needs a token API Gateway verified, and the body's token must
/// be that very token; reading one stays open (its id is what an app is
/// opened with). Then the real client runs on a student's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_with_sign_in_take_only_the_callers_own_token() {
    let driver = loadtest::real_client::Driver::new().unwrap_or_else(|error| panic!("{error}"));
    let pool = PoolEnvironment::new(&["ana", "bo"], false).await;
    let (cloud, base) = (&pool.cloud, pool.base.clone());
    let ana = pool.id_token("ana", None).await;
    let bo = pool.id_token("bo", None).await;
    let (ana_bearer, bo_bearer) = (format!("Bearer {ana}"), format!("Bearer {bo}"));
    let store = |token: &str| json!({"sessionId": "ana-session", "token": token}).to_string();
    let change = |token: &str| json!({"token": token}).to_string();

    // No token: API Gateway's own 401 (its {"message"}), the function never ran.
    for (method, path, body) in [
        ("POST", "/sessions", store(&ana)),
        ("PATCH", "/sessions/ana-session", change(&ana)),
    ] {
        let (status, _, answer) = cloud.call(&base, method, path, Some(&body), &[]).await;
        assert_eq!(status, 401, "{method} {path} without a token: {answer}");
        assert!(
            answer.get("error").is_none() && answer.get("message").is_some(),
            "API Gateway refused it: {answer}"
        );
    }
    // Signed in as ana, storing bo's token: the function's 403.
    let (status, _, answer) = cloud
        .call(
            &base,
            "POST",
            "/sessions",
            Some(&store(&bo)),
            &[("authorization", &ana_bearer)],
        )
        .await;
    assert_eq!(status, 403, "another's token in the body: {answer}");
    assert!(answer["error"].is_string(), "{answer}");
    let (status, _, answer) = cloud
        .call(&base, "GET", "/sessions/ana-session", None, &[])
        .await;
    assert_eq!(status, 404, "the refused session was not stored: {answer}");

    // Her own token: stored, and anyone reads it back.
    let (status, _, answer) = cloud
        .call(
            &base,
            "POST",
            "/sessions",
            Some(&store(&ana)),
            &[("authorization", &ana_bearer)],
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["sessionId"], "ana-session", "{answer}");
    for (who, headers) in [
        ("anyone", vec![]),
        ("bo", vec![("authorization", bo_bearer.as_str())]),
    ] {
        let (status, _, answer) = cloud
            .call(&base, "GET", "/sessions/ana-session", None, &headers)
            .await;
        assert_eq!(status, 200, "{who} reads the session: {answer}");
        assert_eq!(
            answer,
            json!({"sessionId": "ana-session", "token": ana}),
            "{who}"
        );
    }
    // Changing it: its owner may; bo, with his own token, may not: to him it
    // is a session that is not there (404), so none is taken over.
    let (status, _, answer) = cloud
        .call(
            &base,
            "PATCH",
            "/sessions/ana-session",
            Some(&change(&ana)),
            &[("authorization", &ana_bearer)],
        )
        .await;
    assert_eq!(status, 200, "ana changes her session: {answer}");
    let (status, _, answer) = cloud
        .call(
            &base,
            "PATCH",
            "/sessions/ana-session",
            Some(&change(&bo)),
            &[("authorization", &bo_bearer)],
        )
        .await;
    assert_eq!(status, 404, "bo changes ana's session: {answer}");
    assert!(
        answer["error"].is_string(),
        "the function's answer: {answer}"
    );
    let (_, _, answer) = cloud
        .call(&base, "GET", "/sessions/ana-session", None, &[])
        .await;
    assert_eq!(answer["token"], json!(ana), "still ana's: {answer}");

    // The real client on ana's token: her session, her table, her class's users.
    // The moral-compass class too, its table owned by the token's student.
    let outcome = drive_real_client(driver, &base, &["--token", &ana, "--class-size", "12"]).await;
    assert!(outcome.success, "{outcome}");
    let summary = outcome.summary();
    eprintln!("{summary}");
    assert!(
        summary.contains("a class of 12 in 7 teams: the server's rank, teamRank and teams"),
        "{summary}"
    );
}

// ---------------------------------------------------------------------------
// The local loop (issue #30): the local cloud's latency shims, and
// `scripts/dev --watch` releasing saved changes. Kept together in this
// section; see docs/emulators.md, "`scripts/dev`" and "The local AWS emulators".
// ---------------------------------------------------------------------------

/// The launcher's shims (`emulator/local_cloud_shims.py`) as its
/// `GET /_emulator/shims` reports them: observed on ministack's own code paths
/// whether or not a shim is on, so each check fails when its shim is left out.
async fn shims_report(cloud: &Cloud) -> Value {
    let (status, _, report) = cloud
        .call(
            cloud.emulator.endpoint(),
            "GET",
            "/_emulator/shims",
            None,
            &[],
        )
        .await;
    assert_eq!(status, 200, "GET /_emulator/shims: {report}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_api_sets_tcp_nodelay_and_logs_are_kept_without_a_wait() {
    let cloud = Cloud::new().await;
    assert_exit(&cloud.apply_dev_with(&[]), 0);
    let api_id = cloud.api_id().await.expect("the HTTP API exists");
    let base = emulator::execute_api_url(cloud.emulator.endpoint(), &api_id, "dev");
    for _ in 0..5 {
        assert_eq!(served(&cloud, &base).await, (200, "1".to_owned()));
    }

    let report = shims_report(&cloud).await;
    eprintln!("the shims' report: {report}");
    assert_eq!(
        report["active"],
        json!(["runtime_api_tcp_nodelay", "logs_without_fixed_wait"]),
        "{report}"
    );
    // TCP_NODELAY as read back from each Runtime API connection's socket.
    assert!(
        report["runtime_api_connections"].as_u64() > Some(0),
        "{report}"
    );
    assert_eq!(
        report["runtime_api_connections_without_nodelay"],
        json!(0),
        "every Runtime API connection has TCP_NODELAY: {report}"
    );
    // One drain of the function's output per invocation (pre-traffic check
    // and the calls above), none of which slept.
    assert!(report["log_drains"].as_u64() >= Some(7), "{report}");
    assert_eq!(
        report["sleeps_while_draining_logs"],
        json!(0),
        "no fixed wait for log lines: {report}"
    );

    // The lines the function wrote still reach its log group.
    let logs = cloud.deployer(&["logs", "--env", "dev", "--since", "10m"]);
    assert_exit(&logs, 0);
    let shown = text(&logs);
    assert!(shown.contains("Using DynamoDB table"), "{shown}");
}

/// `scripts/dev --watch`, run on a copy of this workspace (edits never touch
/// the real one), building into a target directory of its own (the copy's
/// binaries must not replace this run's), with its process group ended when
/// dropped, however the test ends.
struct DevWatch {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    workspace: tempfile::TempDir,
    state: tempfile::TempDir,
}

impl DevWatch {
    fn start() -> Self {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let root = emulator::workspace_root();
        let workspace = tempfile::tempdir().expect("temp dir");
        copy_sources(&root, workspace.path());
        std::os::unix::fs::symlink(root.join(".venv"), workspace.path().join(".venv"))
            .expect("link .venv");
        let state = tempfile::tempdir().expect("temp dir");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), PathBuf::from)
            .join("dev-watch");
        // With SIGINT's default action, as on a terminal: a test run started in
        // the background by a shell without job control inherits SIGINT
        // ignored, and bash can neither trap nor reset a signal ignored on
        // entry, so its Ctrl-C clean-up would never run.
        let mut child = std::process::Command::new("env")
            .arg("--default-signal=INT")
            .arg(workspace.path().join("scripts/dev"))
            .arg("--watch")
            .env("CARGO_TARGET_DIR", &target)
            .env("DEPLOYER", env!("CARGO_BIN_EXE_deployer"))
            .env("EMULATOR_PORT", "0")
            .env("EMULATOR_STATE_DIR", state.path())
            .env_remove("DEPLOYER_ENV")
            .env_remove("DEPLOYER_STATE")
            .env_remove("LOCAL_CLOUD_WITHOUT_SHIMS")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start scripts/dev --watch");
        let (send, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let send = send.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    if send.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            child,
            lines,
            seen: Vec::new(),
            workspace,
            state,
        }
    }

    /// The first line from now on that contains `wanted`, within `limit`.
    fn wait_for(&mut self, wanted: &str, limit: Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    eprintln!("dev: {line}");
                    self.seen.push(line.clone());
                    if line.contains(wanted) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "scripts/dev --watch did not say {wanted:?} within {limit:?}; it said:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// What the loop made of the last save: its next `watch:` line that is
    /// not the save itself (a release, a failed build, a refused release).
    fn outcome(&mut self, limit: Duration) -> String {
        loop {
            let line = self.wait_for("watch: ", limit);
            if !line.starts_with("watch: saved") {
                return line;
            }
        }
    }

    /// Replace each `old` (which must be there) by its `new` in the copy's
    /// `path`, and save once, as an editor does.
    fn edit(&self, path: &str, changes: &[(&str, &str)]) {
        let file = self.workspace.path().join(path);
        let mut source = std::fs::read_to_string(&file).expect("read the copy's file");
        for (old, new) in changes {
            assert!(source.contains(old), "{path} has no {old:?}");
            source = source.replacen(old, new, 1);
        }
        std::fs::write(&file, source).expect("save");
    }
}

impl DevWatch {
    /// Ctrl-C (SIGINT to its process group), as a developer stops it; what
    /// still runs from the copy once scripts/dev has exited (or 20 s passed).
    fn interrupt(&mut self) -> Vec<String> {
        let _ = std::process::Command::new("kill")
            .args(["-INT", "--", &format!("-{}", self.child.id())])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
        processes_naming(self.workspace.path())
    }
}

impl Drop for DevWatch {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = std::process::Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(std::process::Stdio::null())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self.child.wait();
        // The local cloud runs in a process group of its own: end it by its pid
        // if scripts/dev could not.
        if let Ok(pid) = std::fs::read_to_string(self.state.path().join("local-cloud.pid")) {
            let _ = std::process::Command::new("kill")
                .arg(pid.trim())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// The workspace's sources, without its hidden folders (.git, venvs, state)
/// and build output.
fn copy_sources(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read the workspace") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        let kind = entry.file_type().expect("file type");
        let destination = to.join(&*name);
        if kind.is_dir() {
            std::fs::create_dir_all(&destination).expect("create folder");
            copy_sources(&entry.path(), &destination);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &destination).expect("copy file");
        }
    }
}

/// Processes whose command line names `path` (none must outlive the test).
fn processes_naming(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(&needle))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_dev_watch_releases_a_saved_change_and_a_broken_one_leaves_live_serving() {
    // The first build of the copy compiles the function's dependencies into
    // its own target directory (kept for the next run); later ones are incremental.
    const FIRST_BUILD: Duration = Duration::from_secs(30 * 60);
    const CHANGE: Duration = Duration::from_secs(10 * 60);
    let http = reqwest::Client::new();
    let health = |base: String| {
        let http = http.clone();
        async move {
            let answer = http
                .get(format!("{base}/health"))
                .send()
                .await
                .expect("GET /health");
            let status = answer.status().as_u16();
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    };
    let mut dev = DevWatch::start();
    let workspace = dev.workspace.path().to_path_buf();
    let url = dev.wait_for("/_aws/execute-api/", FIRST_BUILD);
    let base = url
        .split_whitespace()
        .next()
        .expect("the API's URL")
        .to_owned();
    dev.wait_for("watch: watching", CHANGE);
    let (status, body) = health(base.clone()).await;
    assert_eq!((status, &body["release"]), (200, &json!("1")), "{body}");

    // A change to a response: rebuilt, released through the deployer, served.
    let marker = "saved while scripts/dev --watch ran";
    let changed = format!(r#"Json(health("ok", Some("{marker}".to_owned())))"#);
    dev.edit(
        "function/src/api/health.rs",
        &[(r#"Json(health("ok", None))"#, &changed)],
    );
    let released = dev.outcome(CHANGE);
    assert!(
        released.contains("version 2 is live") && released.contains("s from save to live"),
        "{released}"
    );
    let (status, body) = health(base.clone()).await;
    assert_eq!(
        (status, &body["release"], &body["error"]),
        (200, &json!("2"), &json!(marker)),
        "{body}"
    );

    // A change to deployer.toml: planned and applied the same way.
    dev.edit("deployer.toml", &[("timeout_s = 10\n", "timeout_s = 12\n")]);
    let released = dev.outcome(CHANGE);
    assert!(released.contains("version 3 is live"), "{released}");

    // A change that does not build: reported, and version 3 keeps serving.
    dev.edit(
        "function/src/api/health.rs",
        &[(
            "pub async fn check(",
            "fn does_not_build( {}\npub async fn check(",
        )],
    );
    let failed = dev.outcome(CHANGE);
    assert!(
        failed.contains("the build failed") && failed.contains("live stays at version 3"),
        "{failed}"
    );
    let (status, body) = health(base.clone()).await;
    assert_eq!((status, &body["release"]), (200, &json!("3")), "{body}");

    // A change that builds but fails the pre-traffic check (GET /health must
    // say "ok"): the deployer refuses it, and version 3 keeps serving.
    dev.edit(
        "function/src/api/health.rs",
        &[
            ("fn does_not_build( {}\n", ""),
            (
                r#"Json(health("ok", Some("#,
                r#"Json(health("broken", Some("#,
            ),
        ],
    );
    let refused = dev.outcome(CHANGE);
    assert!(
        refused.contains("the release was refused") && refused.contains("live stays at version 3"),
        "{refused}"
    );
    let (status, body) = health(base.clone()).await;
    assert_eq!(
        (status, &body["release"], &body["status"]),
        (200, &json!("3"), &json!("ok")),
        "{body}"
    );

    // Ctrl-C ends it all: the watchers, and the local cloud (which ends its functions).
    let left = dev.interrupt();
    drop(dev);
    assert!(left.is_empty(), "left running after Ctrl-C: {left:?}");
    let left = processes_naming(&workspace);
    assert!(left.is_empty(), "left running: {left:?}");
}

/// `deployer environments list --previews [--older-than D] --json`, parsed.
fn previews_listed(cloud: &Cloud, older_than: Option<&str>) -> Vec<Value> {
    let mut args = vec!["environments", "list", "--previews", "--json"];
    if let Some(older_than) = older_than {
        args.extend(["--older-than", older_than]);
    }
    let listed = cloud.deployer(&args);
    assert_exit(&listed, 0);
    serde_json::from_slice::<Value>(&listed.stdout)
        .expect("JSON")
        .as_array()
        .cloned()
        .expect("a list")
}

/// The life of a pull request's preview as `.github/workflows/preview.yml`
/// runs it, on the local cloud: `pr-7` applied with the `[env.preview]`
/// layer, its URL read from its outputs, the read-only smoke test through API
/// Gateway, listed with its age, destroyed when its pull request closes; then
/// `pr-8` applied and swept as older than the TTL, leaving no preview.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_is_applied_smoke_tested_destroyed_and_swept_on_the_local_cloud() {
    let cloud = Cloud::new().await;
    crate::support::add_preview_layer(cloud.dir.path());
    let apply = |environment: &str| {
        cloud.deployer(&[
            "apply",
            "--env",
            environment,
            "--auto-approve",
            "--artifact",
            "fn.zip",
        ])
    };
    let applied = apply("pr-7");
    assert_exit(&applied, 0);
    assert!(
        text(&applied).contains("api: answered 200"),
        "{}",
        text(&applied)
    );
    // Throw-away settings: no deletion protection, no alarms.
    let table = cloud
        .dynamodb
        .describe_table()
        .table_name(names("pr-7").table)
        .send()
        .await
        .expect("the preview's table");
    assert_eq!(
        table
            .table()
            .and_then(|table| table.deletion_protection_enabled()),
        Some(false)
    );
    let alarms = aws_sdk_cloudwatch::Client::new(&cloud.config)
        .describe_alarms()
        .alarm_name_prefix(names("pr-7").function)
        .send()
        .await
        .expect("alarms");
    assert!(alarms.metric_alarms().is_empty(), "{alarms:?}");

    // The URL the workflow comments, from the state; the smoke test through API Gateway.
    let url = cloud.deployer(&["output", "--env", "pr-7", "api_base_url"]);
    assert_exit(&url, 0);
    let url = String::from_utf8_lossy(&url.stdout).trim().to_owned();
    assert!(url.ends_with("/pr-7"), "{url}");
    let api_id = cloud
        .api_named(&names("pr-7").http_api)
        .await
        .expect("the preview's HTTP API");
    let base = emulator::execute_api_url(cloud.emulator.endpoint(), &api_id, "pr-7");
    let smoke = run_scenario(
        &base,
        Scenario::Smoke {
            origin: "https://example.org".into(),
            read_only: true,
        },
    )
    .await;
    assert!(smoke.passed, "{smoke}");

    let listed = previews_listed(&cloud, None);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["environment"], "pr-7");
    assert_eq!(listed[0]["pull_request"], 7);
    assert_eq!(listed[0]["api_base_url"], url.as_str());
    assert!(
        listed[0]["age_seconds"]
            .as_u64()
            .is_some_and(|age| age < 3_600),
        "{listed:?}"
    );
    assert!(
        listed[0]["last_apply"]
            .as_str()
            .is_some_and(|time| !time.is_empty())
    );

    // The pull request closes.
    assert_exit(
        &cloud.deployer(&["destroy", "--env", "pr-7", "--auto-approve"]),
        0,
    );
    assert!(cloud.api_named(&names("pr-7").http_api).await.is_none());
    assert!(previews_listed(&cloud, None).is_empty());

    // The nightly sweeper, preview.yml's own script with the deployer and a
    // stand-in for gh: pr-8's pull request is closed, pr-9's open and young.
    assert_exit(&apply("pr-8"), 0);
    assert_exit(&apply("pr-9"), 0);
    let gh = crate::fake_gh::FakeGh::new(&[(8, "CLOSED"), (9, "OPEN")]);
    gh.add_program("deployer", Path::new(env!("CARGO_BIN_EXE_deployer")));
    let runner = tempfile::tempdir().expect("the runner's temporary folder");
    let summary = runner.path().join("summary.md");
    let sweep = |ttl_days: &str| {
        let aws = emulator::aws_env(cloud.emulator.endpoint());
        let (temp, summary) = (
            runner.path().display().to_string(),
            summary.display().to_string(),
        );
        let mut values: Vec<(&str, &str)> = aws
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        values.extend([
            ("GH_TOKEN", "token"),
            ("REPOSITORY", crate::fake_gh::REPOSITORY),
            ("PREVIEW_TTL_DAYS", ttl_days),
            ("RUNNER_TEMP", temp.as_str()),
            ("GITHUB_STEP_SUMMARY", summary.as_str()),
        ]);
        crate::workflows::Workflow::load("preview.yml").run_step(
            &gh,
            ("sweep", "Destroy the previews of closed or old"),
            cloud.dir.path(),
            &values,
        )
    };
    let swept = sweep("7");
    assert_exit(&swept, 0);
    assert!(
        text(&swept).contains("keeping pr-9: pull request #9 is open"),
        "{}",
        text(&swept)
    );
    let listed = previews_listed(&cloud, None);
    assert_eq!(
        listed
            .iter()
            .map(|preview| preview["environment"].as_str().unwrap_or("?"))
            .collect::<Vec<_>>(),
        ["pr-9"],
        "the closed pull request's preview is gone, the open one's kept"
    );
    assert!(cloud.api_named(&names("pr-8").http_api).await.is_none());
    let written = std::fs::read_to_string(&summary).expect("the job summary");
    assert!(
        written.contains("destroyed pr-8 (pull request #8 CLOSED"),
        "{written}"
    );
    // A TTL of 0 days: every preview is past it, open or not (as
    // `--older-than` lists it).
    assert!(
        previews_listed(&cloud, Some("1h")).is_empty(),
        "pr-9 is young"
    );
    // Ages are whole seconds, and "older than 1 s" is an age of 2 or more.
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(
        previews_listed(&cloud, Some("1s")).len(),
        1,
        "pr-9 is past 1 s: {:?}",
        previews_listed(&cloud, None)
    );
    assert_exit(&sweep("0"), 0);
    assert!(
        previews_listed(&cloud, None).is_empty(),
        "no preview is left"
    );
    assert!(cloud.api_named(&names("pr-9").http_api).await.is_none());
}
