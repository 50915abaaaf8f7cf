//! `deployer state list|history --env E [--json]`.

use serde::Serialize;
use state::Backend;

use crate::error::CliError;

#[derive(Debug, Serialize)]
struct Listed<'a> {
    address: &'a str,
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    arn: Option<&'a str>,
}

pub async fn list(backend: &Backend, environment: &str, json: bool) -> Result<String, CliError> {
    let Some(stored) = backend
        .read(environment)
        .await
        .map_err(CliError::state(format!(
            "reading the state of {environment}"
        )))?
    else {
        return Ok(if json {
            "[]".to_owned()
        } else {
            format!(
                "No state for {environment} at {}.",
                backend.location(environment)
            )
        });
    };
    let listed: Vec<Listed<'_>> = stored
        .document
        .resources
        .iter()
        .map(|(address, resource)| Listed {
            address,
            kind: &resource.kind,
            id: &resource.id,
            arn: resource.arn.as_deref(),
        })
        .collect();
    if json {
        return Ok(super::to_json(&listed));
    }
    let width = listed
        .iter()
        .map(|item| item.address.len())
        .max()
        .unwrap_or(0);
    let mut lines = vec![format!(
        "{environment}: serial {}, lineage {}, {} resources",
        stored.document.serial,
        stored.document.lineage,
        listed.len()
    )];
    lines.extend(
        listed
            .iter()
            .map(|item| format!("{:width$}  {}", item.address, item.id)),
    );
    Ok(lines.join("\n"))
}

pub async fn history(backend: &Backend, environment: &str, json: bool) -> Result<String, CliError> {
    let entries = backend
        .history(environment, 100)
        .await
        .map_err(CliError::state(format!(
            "reading the state history of {environment}"
        )))?;
    if json {
        return Ok(super::to_json(&entries));
    }
    if entries.is_empty() {
        return Ok(format!(
            "No state for {environment} at {}.",
            backend.location(environment)
        ));
    }
    let mut lines = vec![format!("{:<26} {:>7}  version", "modified", "serial")];
    lines.extend(entries.iter().map(|entry| {
        format!(
            "{:<26} {:>7}  {}{}",
            entry.modified,
            entry
                .serial
                .map_or_else(|| "?".to_owned(), |serial| serial.to_string()),
            entry.version_id,
            if entry.is_latest { " (current)" } else { "" }
        )
    }));
    Ok(lines.join("\n"))
}
