//! `deployer rollback --env E [--to VERSION]`: move the `live` alias (what API
//! Gateway invokes) back to the previous release recorded in the state, or to
//! a given published version. No build, no publish, no other change: one
//! `UpdateAlias`, under the state's lock, recorded as a release `by:
//! rollback` in a new state revision (shown by `deployer state history`).
//!
//! The next `apply` of the code that was rolled back is a no-op (see
//! [`lambda_alias::rolled_back`]); new code is a normal release.

use aws_config::SdkConfig;
use serde_json::json;
use state::{Backend, Stored};

use super::{Outcome, recording};
use crate::config::{Config, validate_environment};
use crate::engine::AttributeName;
use crate::error::CliError;
use crate::resources::Clients;
use crate::resources::lambda_alias::{self, BY_ROLLBACK, ReleaseRecord};

pub async fn run(
    config: &Config,
    aws: &SdkConfig,
    backend: &Backend,
    environment: &str,
    to: Option<&str>,
    lock_timeout: std::time::Duration,
) -> Result<Outcome, CliError> {
    let names = validate_environment(environment, &config.settings)?;
    if let Some(to) = to
        && (to.is_empty() || !to.bytes().all(|byte| byte.is_ascii_digit()))
    {
        return Err(CliError::Usage(format!(
            "--to {to:?} is not a published version number (1, 2, …; `deployer state history --env {environment}` lists the releases)"
        )));
    }
    let clients = Clients::connect(aws, &config.settings.region).await?;
    let request = super::lock_request(
        environment,
        "rollback",
        format!("deployer rollback --env {environment}"),
        lock_timeout,
        config.settings.lock_lease(),
    );
    super::lock_guard::hold(backend, environment, &request, |fence| {
        roll_back(&clients, backend, environment, &names.function, to, fence)
    })
    .await
}

/// The release to go back to from `current`: the newest recorded before
/// `current`'s own release that is neither `current` nor rolled back itself.
pub fn previous_release<'a>(
    releases: &'a [ReleaseRecord],
    current: &str,
) -> Option<&'a ReleaseRecord> {
    let rolled_back = lambda_alias::rolled_back(releases);
    let position = releases
        .iter()
        .rposition(|release| release.version == current)
        .unwrap_or(releases.len());
    releases[..position]
        .iter()
        .rev()
        .find(|release| release.version != current && !rolled_back.contains(&release.version))
}

async fn roll_back(
    clients: &Clients,
    backend: &Backend,
    environment: &str,
    function: &str,
    to: Option<&str>,
    fence: crate::engine::Fence,
) -> Result<Outcome, CliError> {
    let stored: Stored = backend
        .read(environment)
        .await
        .map_err(CliError::state(format!("reading the state of {environment}")))?
        .ok_or_else(|| {
            CliError::Refused(format!(
                "no state for {environment} at {}: nothing was released there yet (`deployer apply --env {environment}` makes the first release)",
                backend.location(environment)
            ))
        })?;
    let Some(alias) = stored.document.resources.get(lambda_alias::ADDRESS) else {
        return Err(CliError::Refused(format!(
            "the state of {environment} records no `live` alias: it was deployed before releases were \
             versioned; `deployer apply --env {environment}` moves it onto the alias, after which releases can be rolled back"
        )));
    };
    let releases = lambda_alias::recorded_releases(&alias.attributes);
    let current = lambda_alias::alias_version(clients, function)
        .await?
        .ok_or_else(|| {
            CliError::Refused(format!(
                "Lambda function {function} has no alias `live` (deleted by hand?): `deployer apply --env {environment}` recreates it"
            ))
        })?;
    let target = match to {
        Some(to) => to.to_owned(),
        None => previous_release(&releases, &current)
            .map(|release| release.version.clone())
            .ok_or_else(|| {
                CliError::Refused(format!(
                    "no release before version {current} is recorded for {environment} (releases: {}); \
                     name one with --to VERSION",
                    list(&releases)
                ))
            })?,
    };
    if target == current {
        return Ok(Outcome::from(format!(
            "live already points at version {current} of {function}: nothing to do."
        )));
    }
    let versions = lambda_alias::published_versions(clients, function).await?;
    let Some(published) = versions.iter().find(|version| version.version == target) else {
        let numbers: Vec<&str> = versions
            .iter()
            .map(|version| version.version.as_str())
            .collect();
        return Err(CliError::Refused(format!(
            "version {target} of {function} is not published (it may have been pruned beyond keep_versions); published: {}",
            if numbers.is_empty() {
                "none".to_owned()
            } else {
                numbers.join(", ")
            }
        )));
    };
    let code_sha256 = published.code_sha256.clone();
    fence.check(&format!(
        "moving the live alias of {function} to version {target}"
    ))?;
    lambda_alias::move_to(clients, function, &target).await?;

    let mut releases = releases;
    releases.push(ReleaseRecord {
        version: target.clone(),
        code_sha256: code_sha256.clone(),
        by: BY_ROLLBACK.to_owned(),
    });
    let mut resources = stored.document.resources.clone();
    if let Some(alias) = resources.get_mut(lambda_alias::ADDRESS) {
        alias.attributes.insert(
            lambda_alias::RELEASES.to_owned(),
            json!(lambda_alias::remembered(releases)),
        );
        // The deployer moved live itself: that is no drift.
        if let Some(observed) = alias.observed.as_mut() {
            observed.insert(
                lambda_alias::AliasAttribute::FunctionVersion
                    .name()
                    .to_owned(),
                json!(target),
            );
        }
    }
    recording::write(
        backend,
        environment,
        Some(&stored),
        resources,
        stored.document.outputs.clone(),
    )
    .await
    .map_err(|source| CliError::RollbackUnrecorded {
        target: target.clone(),
        environment: environment.to_owned(),
        source: Box::new(source),
    })?;
    Ok(Outcome::from(format!(
        "Rolled back {function}: live moved from version {current} to {target}{}.\n\
         The next `deployer apply --env {environment}` of the code rolled back leaves live at {target}; new code is released as usual.",
        code_sha256
            .map(|sha| format!(" (code {sha})"))
            .unwrap_or_default()
    )))
}

fn list(releases: &[ReleaseRecord]) -> String {
    if releases.is_empty() {
        return "none".to_owned();
    }
    releases
        .iter()
        .map(|release| format!("{} ({})", release.version, release.by))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(version: &str, by: &str) -> ReleaseRecord {
        ReleaseRecord {
            version: version.into(),
            code_sha256: None,
            by: by.into(),
        }
    }

    fn previous(releases: &[ReleaseRecord], current: &str) -> Option<String> {
        previous_release(releases, current).map(|release| release.version.clone())
    }

    #[test]
    fn rollback_goes_to_the_release_before_the_live_one() {
        let releases = [
            record("1", "apply"),
            record("2", "apply"),
            record("3", "apply"),
        ];
        assert_eq!(previous(&releases, "3").as_deref(), Some("2"));
        assert_eq!(previous(&releases, "2").as_deref(), Some("1"));
        assert_eq!(previous(&releases, "1"), None);
    }

    #[test]
    fn a_second_rollback_goes_further_back_never_forward() {
        let once = [
            record("1", "apply"),
            record("2", "apply"),
            record("3", "apply"),
            record("2", "rollback"),
        ];
        assert_eq!(previous(&once, "2").as_deref(), Some("1"));
        let back_to_one = [
            record("1", "apply"),
            record("2", "apply"),
            record("1", "rollback"),
        ];
        assert_eq!(previous(&back_to_one, "1"), None);
    }

    #[test]
    fn versions_are_listed_with_how_they_were_released() {
        assert_eq!(list(&[]), "none");
        assert_eq!(
            list(&[record("1", "apply"), record("1", "rollback")]),
            "1 (apply), 1 (rollback)"
        );
    }
}
