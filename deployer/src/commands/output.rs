//! `deployer output --env E [--json] [NAME]`.

use state::Backend;

use crate::error::CliError;

/// The text to print: every output (`name = value` lines, or JSON), or one
/// output's raw value.
pub async fn run(
    backend: &Backend,
    environment: &str,
    json: bool,
    name: Option<&str>,
) -> Result<String, CliError> {
    let stored = backend
        .read(environment)
        .await
        .map_err(CliError::state(format!(
            "reading the state of {environment}"
        )))?
        .ok_or_else(|| {
            CliError::Refused(format!(
                "no state for {environment} at {}: nothing has been applied there yet",
                backend.location(environment)
            ))
        })?;
    let outputs = &stored.document.outputs;
    if let Some(name) = name {
        let value = outputs.get(name).ok_or_else(|| {
            CliError::Refused(format!(
                "{environment} has no output {name:?}; its outputs are: {}",
                outputs.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        return Ok(match (json, value) {
            (false, serde_json::Value::String(text)) => text.clone(),
            _ => super::to_json(value),
        });
    }
    if json {
        return Ok(super::to_json(outputs));
    }
    Ok(outputs
        .iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(text) => format!("{key} = {text}"),
            other => format!("{key} = {other}"),
        })
        .collect::<Vec<_>>()
        .join("\n"))
}
