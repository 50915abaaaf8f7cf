//! One module per CLI command.

pub mod bootstrap;
pub mod data_report;
pub mod destroy;
pub mod environment;
pub mod environments;
pub mod export;
pub mod force_unlock;
pub mod lock_guard;
pub mod lock_status;
pub mod logs;
pub mod migrate;
pub mod output;
pub mod plan_report;
pub mod recording;
pub mod restore;
pub mod rollback;
pub mod saved_plan;
pub mod stack_run;
pub mod state_cmd;

use crate::config::{BOOTSTRAP, Settings, validate_environment};
use crate::error::CliError;

/// An environment whose state a command reads: a valid environment name, or
/// `bootstrap` for the bootstrap stack.
pub fn state_environment(environment: &str, settings: &Settings) -> Result<String, CliError> {
    if environment == BOOTSTRAP {
        return Ok(BOOTSTRAP.to_owned());
    }
    validate_environment(environment, settings)?;
    Ok(environment.to_owned())
}

/// Render JSON for `--json` output.
pub fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value)
        .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))
}

/// What a command prints on stdout and the process's exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub exit_code: u8,
}

impl Outcome {
    pub fn new(stdout: impl Into<String>, exit_code: u8) -> Self {
        Self {
            stdout: stdout.into(),
            exit_code,
        }
    }
}

impl From<String> for Outcome {
    fn from(stdout: String) -> Self {
        Self::new(stdout, 0)
    }
}

/// The lock a command takes on `environment`'s state: `operation` and the
/// command line `info` are shown to whoever finds it held, with this run's
/// GitHub Actions URL, host and process; `lease` is how long it stays ours
/// without a heartbeat (the `lock_lease` setting).
pub fn lock_request(
    environment: &str,
    operation: &str,
    info: String,
    timeout: std::time::Duration,
    lease: std::time::Duration,
) -> ::state::LockRequest {
    ::state::LockRequest {
        operation: operation.into(),
        info,
        who: who(),
        version: env!("CARGO_PKG_VERSION").into(),
        timeout,
        force_unlock_command: format!("deployer force-unlock --env {environment}"),
        lease,
        run_url: github_run_url(),
        host: host(),
        process: std::process::id(),
    }
}

/// `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`, in a
/// GitHub Actions run.
pub fn github_run_url() -> Option<String> {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let (server, repository, run) = (
        var("GITHUB_SERVER_URL")?,
        var("GITHUB_REPOSITORY")?,
        var("GITHUB_RUN_ID")?,
    );
    Some(format!(
        "{}/{repository}/actions/runs/{run}",
        server.trim_end_matches('/')
    ))
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// `user@host`, as Terraform records who holds a lock.
pub fn who() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("GITHUB_ACTOR"))
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{}", host())
}
