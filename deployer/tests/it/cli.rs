//! The `deployer` binary: configuration errors before any AWS call, state
//! selection, and the state commands (output, state list/history, force-unlock)
//! against local state and the emulator.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::{self, names, run_deployer};
use state::{Backend, LocalBackend, LockRequest, ResourceState, StateDocument};

/// An address nothing listens on: any AWS call would fail to connect.
const UNREACHABLE: &str = "http://127.0.0.1:9";

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn write_local_state(dir: &Path, environment: &str) -> Backend {
    let backend = Backend::Local(LocalBackend::new(dir.join(".deployer")));
    let mut document = StateDocument::new(environment, "0.1.0");
    document.resources.insert(
        "lambda_function.api".into(),
        ResourceState {
            kind: "lambda_function".into(),
            name: names(environment).function,
            id: names(environment).function,
            arn: Some(support::function_arn(&names(environment).function)),
            origin: state::Origin::Created,
            attributes: Default::default(),
            observed: None,
        },
    );
    document.outputs.insert(
        "api_base_url".into(),
        "https://abc.execute-api.us-east-1.amazonaws.com/dev".into(),
    );
    document.outputs.insert(
        "dynamodb_table_name".into(),
        names(environment).table.into(),
    );
    backend
        .write(environment, &document, None)
        .await
        .expect("write state");
    backend
}

#[test]
fn bad_input_fails_before_any_aws_call_with_one_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("deployer.toml"), "memory_mb = [").expect("write");
    let output = run_deployer(dir.path(), UNREACHABLE, &["output", "--env", "dev"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("deployer.toml") && message.contains("not valid TOML"),
        "{message}"
    );
    assert!(
        !message.contains("127.0.0.1:9"),
        "no AWS call was attempted: {message}"
    );

    std::fs::write(dir.path().join("deployer.toml"), "memroy_mb = 512\n").expect("write");
    let message = stderr(&run_deployer(
        dir.path(),
        UNREACHABLE,
        &["output", "--env", "dev"],
    ));
    assert!(message.contains("unknown setting `memroy_mb`"), "{message}");

    std::fs::write(dir.path().join("deployer.toml"), "").expect("write");
    let output = run_deployer(dir.path(), UNREACHABLE, &["output", "--env", "Dev_1"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("invalid environment name \"Dev_1\""),
        "{}",
        stderr(&output)
    );

    let output = run_deployer(
        dir.path(),
        UNREACHABLE,
        &["--var", "colour=blue", "output", "--env", "dev"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("colour"), "{}", stderr(&output));
}

#[test]
fn an_unreachable_endpoint_is_an_error_not_a_silent_local_fallback() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = run_deployer(dir.path(), UNREACHABLE, &["state", "list", "--env", "dev"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let message = stderr(&output);
    assert!(
        message.contains("checking whether state bucket"),
        "{message}"
    );
    assert!(message.contains("--state local"), "{message}");
    assert!(
        message.contains("Connection refused"),
        "says why: {message}"
    );
    assert!(
        !message.contains("raw: Response") && !message.contains("ErrorMetadata"),
        "no SDK dump: {message}"
    );
    assert_eq!(message.trim().lines().count(), 1, "one line: {message}");
}

#[test]
fn an_ambient_aws_region_does_not_move_the_configured_region_and_is_pointed_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("deployer.toml"), "region = \"us-east-1\"\n").expect("config");
    let output = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(dir.path())
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ENDPOINT_URL", UNREACHABLE)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["-v", "plan", "--env", "dev", "--state", "local"])
        .output()
        .expect("run deployer");
    let message = stderr(&output);
    assert!(message.contains("\"region\":\"us-east-1\""), "{message}");
    assert_eq!(
        message
            .matches("AWS_REGION=eu-west-1 in the environment is not used")
            .count(),
        1,
        "stated once: {message}"
    );
    // --region wins over the file.
    let output = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(dir.path())
        .env("AWS_ENDPOINT_URL", UNREACHABLE)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .args([
            "-v",
            "--region",
            "us-west-2",
            "plan",
            "--env",
            "dev",
            "--state",
            "local",
        ])
        .output()
        .expect("run deployer");
    assert!(
        stderr(&output).contains("\"region\":\"us-west-2\""),
        "{}",
        stderr(&output)
    );
}

#[test]
fn missing_credentials_are_reported_with_where_credentials_come_from() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = tempfile::tempdir().expect("empty home");
    // plan asks STS first; output first looks for the state bucket.
    for args in [
        &["plan", "--env", "dev", "--state", "local"][..],
        &["output", "--env", "dev"][..],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_deployer"))
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", UNREACHABLE)
            .args(args)
            .output()
            .expect("run deployer");
        assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
        let message = stderr(&output);
        assert!(
            message.contains("finding AWS credentials"),
            "{args:?}: {message}"
        );
        assert!(
            message.contains("AWS_PROFILE"),
            "says where they come from: {message}"
        );
        // One line of error (plan also says, first, which state it reads).
        let lines: Vec<&str> = message
            .trim()
            .lines()
            .filter(|line| !line.starts_with("state: "))
            .collect();
        assert_eq!(lines.len(), 1, "one line: {message}");
    }
}

#[tokio::test]
async fn outputs_and_state_list_read_local_state() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_local_state(dir.path(), "dev").await;
    let endpoint = emulator::shared_endpoint();
    let bucket = emulator::unique_name("absent-bucket").to_lowercase();
    let var = format!("state_bucket={bucket}");

    let output = run_deployer(
        dir.path(),
        endpoint,
        &["--var", &var, "output", "--env", "dev", "api_base_url"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output).trim(),
        "https://abc.execute-api.us-east-1.amazonaws.com/dev"
    );
    assert!(
        stderr(&output).contains("does not exist yet"),
        "says which state: {}",
        stderr(&output)
    );

    let output = run_deployer(
        dir.path(),
        endpoint,
        &["--state", "local", "output", "--env", "dev", "--json"],
    );
    let outputs: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(outputs["dynamodb_table_name"], names("dev").table);

    let output = run_deployer(
        dir.path(),
        endpoint,
        &["--state", "local", "output", "--env", "dev", "nope"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("api_base_url"),
        "lists the outputs: {}",
        stderr(&output)
    );

    let output = run_deployer(
        dir.path(),
        endpoint,
        &["--state", "local", "state", "list", "--env", "dev"],
    );
    assert!(output.status.success());
    assert!(
        stdout(&output).contains("lambda_function.api"),
        "{}",
        stdout(&output)
    );
    assert!(stdout(&output).contains("serial 1"), "{}", stdout(&output));

    let output = run_deployer(
        dir.path(),
        endpoint,
        &["--state", "local", "output", "--env", "stage"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no state for stage"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn force_unlock_needs_the_lock_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = write_local_state(dir.path(), "dev").await;
    let held = backend
        .lock(
            "dev",
            &LockRequest {
                operation: "apply".into(),
                info: "deployer apply --env dev".into(),
                who: "someone@elsewhere".into(),
                version: "0.1.0".into(),
                timeout: Duration::ZERO,
                force_unlock_command: "deployer force-unlock --env dev".into(),
                lease: Duration::from_secs(600),
                run_url: Some("https://github.com/o/r/actions/runs/7".into()),
                host: "elsewhere".into(),
                process: 1,
            },
        )
        .await
        .expect("lock");
    let endpoint = emulator::shared_endpoint();
    let output = run_deployer(
        dir.path(),
        endpoint,
        &[
            "--state",
            "local",
            "force-unlock",
            "--env",
            "dev",
            "wrong-id",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&held.info.id),
        "names the real holder's ID: {}",
        stderr(&output)
    );
    assert!(backend.current_lock("dev").await.expect("read").is_some());

    let output = run_deployer(
        dir.path(),
        endpoint,
        &[
            "--state",
            "local",
            "force-unlock",
            "--env",
            "dev",
            &held.info.id,
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(backend.current_lock("dev").await.expect("read").is_none());
}

#[tokio::test]
async fn the_s3_backend_is_chosen_when_the_bucket_exists() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = emulator::sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let bucket = emulator::unique_name("cli-state").to_lowercase();
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    let remote = Backend::Remote {
        store: state::S3Store::new(s3.clone(), &bucket),
        lock: state::RemoteLock {
            backend: state::LockBackend::S3,
            s3: state::S3Lock::new(s3.clone(), &bucket),
            dynamodb: state::DynamoDbLock::new(aws_sdk_dynamodb::Client::new(&config), "unused"),
        },
    };
    let first = remote
        .write("dev", &StateDocument::new("dev", "0.1.0"), None)
        .await
        .expect("write");
    remote
        .write("dev", &first.document, Some(&first))
        .await
        .expect("write again");

    let var = format!("state_bucket={bucket}");
    let output = run_deployer(
        dir.path(),
        emulator::shared_endpoint(),
        &["--var", &var, "state", "history", "--env", "dev", "--json"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("s3://{bucket}/")),
        "{}",
        stderr(&output)
    );
    let history: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    let serials: Vec<u64> = history
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|entry| entry["serial"].as_u64())
        .collect();
    assert_eq!(serials.first(), Some(&2), "{history}");
}

#[test]
fn help_explains_commands_and_settings() {
    let output = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .arg("--help")
        .output()
        .expect("run");
    assert!(output.status.success());
    let help = stdout(&output);
    for needle in [
        "--config",
        "--var",
        "--state",
        "--region",
        "output",
        "force-unlock",
        "state",
    ] {
        assert!(
            help.contains(needle),
            "{needle} missing from --help:\n{help}"
        );
    }
}
