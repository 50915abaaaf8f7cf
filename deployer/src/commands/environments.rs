//! `deployer environments list [--json] [--previews] [--older-than D]`: the
//! environments with state in the state bucket (or the local folder), each
//! with its age and its last apply. The nightly preview sweeper reads it
//! (`.github/workflows/preview.yml`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use state::{Backend, StateDocument};

use crate::config::{BOOTSTRAP, PREVIEW_PREFIX, is_preview};
use crate::error::CliError;
use crate::stacks::environment::EnvironmentOutput;

/// Which environments `list` shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListOptions {
    /// Only the previews `pr-<number>` (whose state is all the preview role reads).
    pub previews: bool,
    /// Only those older than this (by their age, see [`Listed::age_seconds`]).
    pub older_than: Option<std::time::Duration>,
    pub json: bool,
}

/// One environment as `list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listed {
    pub environment: String,
    /// Whether it is a pull request's preview, `pr-<number>`.
    pub preview: bool,
    /// The pull request's number, for a preview.
    pub pull_request: Option<u64>,
    /// When its current state was first written (RFC 3339): from the bucket's
    /// versions since it was last destroyed; `None` with local state, which
    /// keeps no history.
    pub created_at: Option<String>,
    /// When its state was last written: its last apply (or other recorded run).
    pub last_apply: String,
    /// Seconds since `created_at` (or, without it, since `last_apply`).
    pub age_seconds: Option<u64>,
    /// Seconds since `last_apply`.
    pub idle_seconds: Option<u64>,
    pub serial: u64,
    pub api_base_url: Option<String>,
}

/// Seconds from `time` (RFC 3339) to `now`; `None` when `time` is not one.
fn seconds_since(time: &str, now: DateTime<Utc>) -> Option<u64> {
    let then = DateTime::parse_from_rfc3339(time).ok()?;
    u64::try_from((now - then.with_timezone(&Utc)).num_seconds().max(0)).ok()
}

/// What `list` shows of `environment`, whose state is `document` and whose
/// state began at `created_at`, seen at `now`.
pub fn listed(
    environment: &str,
    document: &StateDocument,
    created_at: Option<String>,
    now: DateTime<Utc>,
) -> Listed {
    let idle_seconds = seconds_since(&document.updated_at, now);
    let age_seconds = created_at
        .as_deref()
        .and_then(|created| seconds_since(created, now))
        .or(idle_seconds);
    Listed {
        environment: environment.to_owned(),
        preview: is_preview(environment),
        pull_request: is_preview(environment)
            .then(|| environment.strip_prefix(PREVIEW_PREFIX)?.parse().ok())
            .flatten(),
        created_at,
        last_apply: document.updated_at.clone(),
        age_seconds,
        idle_seconds,
        serial: document.serial,
        api_base_url: EnvironmentOutput::ApiBaseUrl
            .read(&document.outputs)
            .map(str::to_owned),
    }
}

/// Whether `listed` is shown under `options`: an environment whose age is
/// unknown is never "older than".
pub fn selected(listed: &Listed, options: &ListOptions) -> bool {
    (!options.previews || listed.preview)
        && options.older_than.is_none_or(|older_than| {
            listed
                .age_seconds
                .is_some_and(|age| age > older_than.as_secs())
        })
}

/// The names worth reading: every environment but the bootstrap stack, and
/// with `previews` only `pr-<number>` (read before any state is, so that the
/// preview role, which may read only theirs, can list them).
pub fn candidates(environments: Vec<String>, options: &ListOptions) -> Vec<String> {
    environments
        .into_iter()
        .filter(|environment| environment != BOOTSTRAP)
        .filter(|environment| !options.previews || is_preview(environment))
        .collect()
}

pub async fn list(backend: &Backend, options: &ListOptions) -> Result<String, CliError> {
    let environments = backend
        .environments()
        .await
        .map_err(CliError::state("listing the environments with state"))?;
    let now = Utc::now();
    let mut shown = Vec::new();
    for environment in candidates(environments, options) {
        let Some(stored) = backend
            .read(&environment)
            .await
            .map_err(CliError::state(format!(
                "reading the state of {environment}"
            )))?
        else {
            continue;
        };
        let created = backend
            .created(&environment)
            .await
            .map_err(CliError::state(format!(
                "reading the state versions of {environment}"
            )))?;
        let listed = listed(&environment, &stored.document, created, now);
        if selected(&listed, options) {
            shown.push(listed);
        }
    }
    if options.json {
        return Ok(super::to_json(&shown));
    }
    Ok(text(&shown))
}

/// `environment  age  last apply  url`, one line each.
fn text(shown: &[Listed]) -> String {
    if shown.is_empty() {
        return "No environments.".to_owned();
    }
    let days = |seconds: Option<u64>| {
        seconds.map_or_else(
            || "?".to_owned(),
            |seconds| format!("{:.1}d", seconds as f64 / 86_400.0),
        )
    };
    let width = shown
        .iter()
        .map(|listed| listed.environment.len())
        .max()
        .unwrap_or(0)
        .max("environment".len());
    let mut lines = vec![format!(
        "{:width$}  {:>6}  {:<24}  url",
        "environment", "age", "last apply"
    )];
    lines.extend(shown.iter().map(|listed| {
        format!(
            "{:width$}  {:>6}  {:<24}  {}",
            listed.environment,
            days(listed.age_seconds),
            listed.last_apply,
            listed.api_base_url.as_deref().unwrap_or("-")
        )
    }));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(time)
            .expect("a time")
            .with_timezone(&Utc)
    }

    fn document(environment: &str, updated_at: &str) -> StateDocument {
        let mut document = StateDocument::new(environment, "0.1.0");
        document.serial = 3;
        document.updated_at = updated_at.to_owned();
        document.outputs.insert(
            EnvironmentOutput::ApiBaseUrl.name().into(),
            "https://example/pr-7".into(),
        );
        document
    }

    #[test]
    fn an_environment_carries_its_age_and_its_last_apply() {
        let now = at("2026-12-10T00:00:00Z");
        let seven = listed(
            "pr-7",
            &document("pr-7", "2026-12-09T00:00:00.000Z"),
            Some("2026-12-01T00:00:00Z".into()),
            now,
        );
        assert!(seven.preview);
        assert_eq!(seven.pull_request, Some(7));
        assert_eq!(seven.age_seconds, Some(9 * 86_400));
        assert_eq!(seven.idle_seconds, Some(86_400));
        assert_eq!(seven.last_apply, "2026-12-09T00:00:00.000Z");
        assert_eq!(seven.api_base_url.as_deref(), Some("https://example/pr-7"));
        let dev = listed(
            "dev",
            &document("dev", "2026-12-09T00:00:00.000Z"),
            None,
            now,
        );
        assert!(!dev.preview);
        assert_eq!(dev.pull_request, None);
        assert_eq!(
            dev.age_seconds,
            Some(86_400),
            "without versions, the age is the last apply's"
        );
    }

    #[test]
    fn older_than_selects_by_age_and_previews_by_name() {
        let now = at("2026-12-10T00:00:00Z");
        let old = listed(
            "pr-7",
            &document("pr-7", "2026-12-09T00:00:00Z"),
            Some("2026-12-01T00:00:00Z".into()),
            now,
        );
        let young = listed(
            "pr-8",
            &document("pr-8", "2026-12-09T00:00:00Z"),
            Some("2026-12-08T00:00:00Z".into()),
            now,
        );
        let dev = listed(
            "dev",
            &document("dev", "2026-01-01T00:00:00Z"),
            Some("2025-01-01T00:00:00Z".into()),
            now,
        );
        let week = ListOptions {
            previews: true,
            older_than: Some(std::time::Duration::from_secs(7 * 86_400)),
            json: true,
        };
        assert!(selected(&old, &week));
        assert!(!selected(&young, &week));
        assert!(!selected(&dev, &week), "dev is never a preview");
        let every = ListOptions::default();
        assert!(selected(&young, &every) && selected(&dev, &every));
        let mut unknown = young.clone();
        unknown.age_seconds = None;
        assert!(!selected(&unknown, &week), "an unknown age is not old");
    }

    #[test]
    fn the_bootstrap_stack_is_not_an_environment_and_previews_are_read_alone() {
        let names = ["bootstrap", "dev", "pr-12", "pr-x", "prod"].map(str::to_owned);
        assert_eq!(
            candidates(names.to_vec(), &ListOptions::default()),
            ["dev", "pr-12", "pr-x", "prod"]
        );
        assert_eq!(
            candidates(
                names.to_vec(),
                &ListOptions {
                    previews: true,
                    ..ListOptions::default()
                }
            ),
            ["pr-12"]
        );
    }

    #[test]
    fn the_json_is_a_list_of_environments() {
        let now = at("2026-12-10T00:00:00Z");
        let value = serde_json::to_value(vec![listed(
            "pr-7",
            &document("pr-7", "2026-12-09T00:00:00Z"),
            Some("2026-12-01T00:00:00Z".into()),
            now,
        )])
        .expect("serializes");
        assert_eq!(value[0]["environment"], "pr-7");
        assert_eq!(value[0]["pull_request"], 7);
        assert_eq!(value[0]["created_at"], "2026-12-01T00:00:00Z");
        assert_eq!(value[0]["last_apply"], "2026-12-09T00:00:00Z");
        assert_eq!(value[0]["age_seconds"], 9 * 86_400);
        assert!(text(&[]).contains("No environments"));
    }
}
