//! `deployer state list|history --env E [--json]`.

use serde::Serialize;
use state::Backend;

use crate::error::CliError;
use crate::resources::lambda_alias;

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
    lines.extend(release_lines(backend, environment).await?);
    Ok(lines.join("\n"))
}

/// The releases the state records, newest first, as `state history` shows
/// them below the revisions (none: nothing).
async fn release_lines(backend: &Backend, environment: &str) -> Result<Vec<String>, CliError> {
    let releases = backend
        .read(environment)
        .await
        .map_err(CliError::state(format!(
            "reading the state of {environment}"
        )))?
        .and_then(|stored| {
            stored
                .document
                .resources
                .get(lambda_alias::ADDRESS)
                .map(|alias| lambda_alias::recorded_releases(&alias.attributes))
        })
        .unwrap_or_default();
    if releases.is_empty() {
        return Ok(Vec::new());
    }
    let mut lines = vec![String::new(), format!("{:<8} {:<9} code", "release", "by")];
    lines.extend(releases.iter().rev().map(|release| {
        format!(
            "{:<8} {:<9} {}",
            release.version,
            release.by,
            release.code_sha256.as_deref().unwrap_or("?")
        )
    }));
    Ok(lines)
}
