//! One module per CLI command.

pub mod force_unlock;
pub mod output;
pub mod state;

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
