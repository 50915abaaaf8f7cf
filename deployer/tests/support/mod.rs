//! Shared by the deployer's integration tests: running the binary against an
//! emulator and reading what it did.

#![allow(dead_code)] // each test binary uses a different part

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The repository the tests' deploy role trusts.
pub const REPOSITORY: &str = "octo-org/playground";

/// Write the `deployer.toml` every test starts from: only `github_repository`,
/// which bootstrap requires.
pub fn write_config(dir: &Path) {
    std::fs::write(
        dir.join("deployer.toml"),
        format!("github_repository = \"{REPOSITORY}\"\n"),
    )
    .expect("write deployer.toml");
}

/// Run `deployer args` in `dir` against the AWS endpoint `endpoint`, with no
/// terminal on standard input (as in CI).
pub fn run_deployer(dir: &Path, endpoint: &str, args: &[&str]) -> Output {
    run_deployer_with(dir, endpoint, args, &[])
}

/// [`run_deployer`] with extra environment variables. moto routes no HTTP API
/// traffic and runs no function, so the health check that ends an apply and
/// the pre-traffic check of a new version are skipped.
pub fn run_deployer_with(
    dir: &Path,
    endpoint: &str,
    args: &[&str],
    environment: &[(&str, &Path)],
) -> Output {
    deployer_command(dir, endpoint)
        .env("DEPLOYER_SKIP_HEALTH_CHECK", "true")
        .env("DEPLOYER_SKIP_PRE_TRAFFIC_CHECK", "true")
        .envs(environment.iter().copied())
        .args(args)
        .output()
        .expect("run deployer")
}

/// [`run_deployer`] with the health check that ends an apply (the local cloud
/// serves the API; on moto the check must fail).
pub fn run_deployer_checking_health(dir: &Path, endpoint: &str, args: &[&str]) -> Output {
    deployer_command(dir, endpoint)
        .args(args)
        .output()
        .expect("run deployer")
}

/// [`run_deployer`] with the health check but not the pre-traffic check
/// (moto cannot invoke a function: its Invoke needs Docker).
pub fn run_deployer_checking_health_only(dir: &Path, endpoint: &str, args: &[&str]) -> Output {
    deployer_command(dir, endpoint)
        .env("DEPLOYER_SKIP_PRE_TRAFFIC_CHECK", "true")
        .args(args)
        .output()
        .expect("run deployer")
}

fn deployer_command(dir: &Path, endpoint: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_deployer"));
    command
        .current_dir(dir)
        .envs(emulator::aws_env(endpoint))
        .env_remove("DEPLOYER_ENV")
        .env_remove("DEPLOYER_STATE")
        .env_remove("DEPLOYER_SKIP_HEALTH_CHECK")
        .env_remove("DEPLOYER_SKIP_PRE_TRAFFIC_CHECK")
        .stdin(Stdio::null());
    command
}

/// The mutating requests `endpoint` served since its log was cleared.
pub fn mutating_requests(endpoint: &str) -> Vec<String> {
    emulator::served_requests(endpoint)
        .iter()
        .filter(|request| request.is_mutating())
        .map(emulator::ServedRequest::describe)
        .collect()
}

/// Standard output and standard error, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", text(output));
}

/// The deploy policy's document as bootstrap wrote it into IAM (decoded).
pub async fn deploy_policy(config: &aws_config::SdkConfig) -> serde_json::Value {
    managed_policy(config, "aimodelshare-github-actions-deployment").await
}

/// The default version of the customer managed policy `name` (decoded).
pub async fn managed_policy(config: &aws_config::SdkConfig, name: &str) -> serde_json::Value {
    let iam = aws_sdk_iam::Client::new(config);
    let arn = format!("arn:aws:iam::{}:policy/{name}", emulator::ACCOUNT_ID);
    let policy = iam
        .get_policy()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap_or_else(|error| panic!("policy {name}: {error:?}"));
    let version = policy
        .policy()
        .and_then(|policy| policy.default_version_id())
        .expect("default version");
    let document = iam
        .get_policy_version()
        .policy_arn(&arn)
        .version_id(version)
        .send()
        .await
        .expect("policy version");
    let text = document
        .policy_version()
        .and_then(|version| version.document())
        .expect("document");
    deployer::engine::policy::decode(text)
        .unwrap_or_else(|| panic!("not a policy document: {text}"))
}
