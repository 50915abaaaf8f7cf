//! `deployer logs --env E [--since 10m] [--follow] [--filter TEXT] [--release V | --all-versions]`:
//! the function's log events (CloudWatch Logs `FilterLogEvents` on
//! `/aws/lambda/<function>`), from the release `live` points at unless told
//! otherwise. Lambda names each log stream `YYYY/MM/DD/[VERSION]id`, so the
//! version an event came from is read from its stream's name.

use std::collections::HashSet;
use std::time::Duration;

use aws_config::SdkConfig;

use crate::config::{Config, validate_environment};
use crate::engine::EngineError;
use crate::error::CliError;
use crate::resources::Clients;
use crate::resources::lambda_alias;
use crate::ui;

/// Which versions' events to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Versions {
    /// The version `live` points at (every version when there is no alias yet).
    Live,
    One(String),
    All,
}

#[derive(Debug, Clone)]
pub struct LogsOptions {
    pub environment: String,
    pub since: Duration,
    pub follow: bool,
    /// A CloudWatch Logs filter pattern (a plain word matches events containing it).
    pub filter: Option<String>,
    pub versions: Versions,
}

/// How often `--follow` asks for new events.
const FOLLOW_EVERY: Duration = Duration::from_secs(2);

/// The version in a Lambda log stream's name (`2026/12/01/[3]0a1b…` -> `3`).
pub fn stream_version(stream: &str) -> Option<&str> {
    let start = stream.find('[')? + 1;
    let end = start + stream[start..].find(']')?;
    Some(&stream[start..end])
}

/// One event as printed: its time (UTC), version and message.
pub fn line(timestamp_ms: i64, version: &str, message: &str) -> String {
    let time = chrono::DateTime::from_timestamp_millis(timestamp_ms).map_or_else(
        || timestamp_ms.to_string(),
        |time| time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    );
    format!("{time} [{version}] {}", message.trim_end())
}

pub async fn run(config: &Config, aws: &SdkConfig, options: &LogsOptions) -> Result<(), CliError> {
    let names = validate_environment(&options.environment, &config.settings)?;
    let clients = Clients::connect(aws, &config.settings.region).await?;
    let wanted = match &options.versions {
        Versions::One(version) => Some(version.clone()),
        Versions::All => None,
        Versions::Live => {
            let live = lambda_alias::alias_version(&clients, &names.function).await?;
            if live.is_none() {
                ui::note(format_args!(
                    "note: {} has no alias live yet; showing every version",
                    names.function
                ));
            }
            live
        }
    };
    if let Some(version) = &wanted {
        ui::note(format_args!(
            "{}: events of version {version}",
            names.log_group
        ));
    }
    let since_ms = i64::try_from(options.since.as_millis()).unwrap_or(i64::MAX);
    let mut start = chrono::Utc::now()
        .timestamp_millis()
        .saturating_sub(since_ms);
    let mut seen: HashSet<String> = HashSet::new();
    loop {
        let newest = print_events(
            &clients,
            &names.log_group,
            options,
            wanted.as_deref(),
            start,
            &mut seen,
        )
        .await?;
        if !options.follow {
            return Ok(());
        }
        // Events can arrive late and out of order: ask again from the newest
        // printed, skipping the ones already printed.
        start = newest.unwrap_or(start);
        tokio::select! {
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Print the events from `start` on, oldest first; the newest timestamp printed.
///
/// Every page is read before anything is printed, and the events are sorted by
/// time: CloudWatch Logs interleaves streams, but pages (and emulators) need not.
async fn print_events(
    clients: &Clients,
    log_group: &str,
    options: &LogsOptions,
    wanted: Option<&str>,
    start: i64,
    seen: &mut HashSet<String>,
) -> Result<Option<i64>, CliError> {
    let mut events: Vec<(i64, String, String)> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = clients
            .logs
            .filter_log_events()
            .log_group_name(log_group)
            .start_time(start)
            .set_filter_pattern(options.filter.clone())
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|error| {
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_resource_not_found_exception())
                {
                    CliError::Refused(format!(
                        "the log group {log_group} does not exist: `deployer apply --env {}` creates it",
                        options.environment
                    ))
                } else {
                    EngineError::sdk(format!("reading the log events of {log_group}"), error).into()
                }
            })?;
        for event in page.events() {
            let id = event.event_id().unwrap_or_default().to_owned();
            if !id.is_empty() && !seen.insert(id) {
                continue;
            }
            let version = event
                .log_stream_name()
                .and_then(stream_version)
                .unwrap_or("?");
            if wanted.is_some_and(|wanted| wanted != version) {
                continue;
            }
            events.push((
                event.timestamp().unwrap_or_default(),
                version.to_owned(),
                event.message().unwrap_or_default().to_owned(),
            ));
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    events.sort_by_key(|(timestamp, _, _)| *timestamp);
    for (timestamp, version, message) in &events {
        ui::output(line(*timestamp, version, message));
    }
    Ok(events.last().map(|(timestamp, _, _)| *timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_lambdas_stream_names() {
        assert_eq!(stream_version("2026/12/01/[3]0a1b2c"), Some("3"));
        assert_eq!(
            stream_version("2026/12/01/[$LATEST]0a1b2c"),
            Some("$LATEST")
        );
        assert_eq!(stream_version("not-a-lambda-stream"), None);
        assert_eq!(stream_version("broken[3"), None);
    }

    #[test]
    fn a_line_has_the_time_the_version_and_the_message() {
        assert_eq!(
            line(1_796_140_800_123, "4", "START RequestId: x\n"),
            "2026-12-01T16:00:00.123Z [4] START RequestId: x"
        );
    }
}
