//! The `loadtest` command line (clap derive), in the library so that tests can
//! parse the command lines the workflows run.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::scenarios::{Mixed, MultiTable, Scenario, SingleTable};

/// Integration and load scenarios against a playground API, deployed or local.
///
/// Waits until GET /health answers 200 (up to --ready-timeout), runs the
/// scenario, prints a latency table per operation (count, min, mean, median,
/// p95, p99, max) with throughput, errors and every invariant checked, and
/// exits 0 only when no request failed and every invariant held.
///
/// Every scenario but `smoke --read-only` writes: it creates tables and
/// deletes them at the end. Where the API does not delete tables (its
/// /health reports allowTableDelete: false) they would stay, so loadtest
/// refuses to write there (exit 2) unless --allow-writes, with which it
/// archives them instead.
#[derive(Debug, Parser)]
#[command(name = "loadtest", version)]
pub struct Cli {
    /// The API's base URL, stage included (e.g. https://ID.execute-api.REGION.amazonaws.com/dev)
    #[arg(long, global = true, env = "API_BASE_URL", value_name = "URL")]
    pub url: Option<String>,

    /// Also write the summary as JSON to PATH (`-`: JSON on stdout instead of the table)
    #[arg(long, global = true, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Write even where the API does not delete tables (allowTableDelete: false):
    /// the scenario's tables then stay, archived
    #[arg(long, global = true)]
    pub allow_writes: bool,

    /// How long to wait for the API to answer GET /health, e.g. 60s or 2m
    #[arg(long, global = true, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub ready_timeout: Duration,

    #[command(subcommand)]
    pub scenario: ScenarioCommand,
}

#[derive(Debug, Subcommand)]
pub enum ScenarioCommand {
    /// The whole API contract end to end, with names unique to the run
    Smoke {
        /// The Origin a CORS preflight is sent from (must be allowed by the API)
        #[arg(long, default_value = "https://example.org")]
        origin: String,
        /// Only the steps that write nothing: health, a page of tables, a missing
        /// table, an unknown route, a wrong method, a CORS preflight
        #[arg(long)]
        read_only: bool,
    },
    /// One table, users created then read concurrently; userCount must equal the creations
    SingleTable {
        /// Users to create
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        users: u64,
        /// Requests in flight at once
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1_000))]
        concurrency: u64,
    },
    /// Several tables of users, then a mixed read/update workload across them
    MultiTable {
        /// Tables to create
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1_000))]
        tables: u64,
        /// Users per table
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        users_per_table: u64,
        /// Reads and updates after the set-up
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        operations: u64,
        /// Requests in flight at once
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1_000))]
        concurrency: u64,
    },
    /// One table of users, then concurrent workers mixing reads and updates for a duration
    Mixed {
        /// Users to create first
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        users: u64,
        /// Concurrent workers (also the set-up's concurrency)
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=1_000))]
        workers: u64,
        /// How long the workers run: seconds, or with a unit (20s, 2m)
        #[arg(long, env = "LOAD_DURATION_SECONDS", default_value = "20", value_parser = parse_duration)]
        duration: Duration,
    },
}

fn size(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

impl ScenarioCommand {
    /// The scenario to run, with its size.
    pub fn scenario(self) -> Scenario {
        match self {
            Self::Smoke { origin, read_only } => Scenario::Smoke { origin, read_only },
            Self::SingleTable { users, concurrency } => Scenario::SingleTable(SingleTable {
                users: size(users),
                concurrency: size(concurrency),
            }),
            Self::MultiTable {
                tables,
                users_per_table,
                operations,
                concurrency,
            } => Scenario::MultiTable(MultiTable {
                tables: size(tables),
                users_per_table: size(users_per_table),
                operations: size(operations),
                concurrency: size(concurrency),
            }),
            Self::Mixed {
                users,
                workers,
                duration,
            } => Scenario::Mixed(Mixed {
                users: size(users),
                workers: size(workers),
                duration,
            }),
        }
    }
}

/// The longest duration accepted (a day).
const MAX_DURATION_SECONDS: u64 = 24 * 3600;

/// `90` (seconds), `90s`, `5m`, `1h`, `1m30s` (humantime's units): a positive
/// duration of at most a day.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => humantime::parse_duration(text)
            .map_err(|error| format!("{text:?} is not a duration (e.g. 20, 20s, 2m): {error}"))?,
    };
    if duration < Duration::from_secs(1) {
        return Err("the duration must be at least 1 second".into());
    }
    if duration > Duration::from_secs(MAX_DURATION_SECONDS) {
        return Err(format!("{text:?} is longer than the 24 h a run may take"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_seconds_or_a_unit_and_refuse_zero() {
        assert_eq!(parse_duration("20"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("25h").is_err());
        assert!(parse_duration("99999999999999999h").is_err());
    }

    #[test]
    fn the_command_line_parses_into_scenarios() {
        let cli = Cli::try_parse_from([
            "loadtest",
            "mixed",
            "--workers",
            "3",
            "--duration",
            "2",
            "--url",
            "http://x",
        ])
        .expect("parses");
        assert_eq!(cli.url.as_deref(), Some("http://x"));
        assert_eq!(
            cli.scenario.scenario(),
            Scenario::Mixed(Mixed {
                users: 100,
                workers: 3,
                duration: Duration::from_secs(2)
            })
        );
        assert!(
            !cli.allow_writes,
            "writing where nothing is deleted is opt-in"
        );
        assert!(Cli::try_parse_from(["loadtest", "single-table", "--users", "0"]).is_err());
        let cli = Cli::try_parse_from(["loadtest", "smoke", "--read-only"]).expect("parses");
        let smoke = cli.scenario.scenario();
        assert!(!smoke.writes(), "{smoke:?}");
        let cli =
            Cli::try_parse_from(["loadtest", "single-table", "--allow-writes"]).expect("parses");
        assert!(cli.allow_writes);
        assert!(cli.scenario.scenario().writes());
        assert!(
            Cli::try_parse_from(["loadtest", "mixed", "--read-only"]).is_err(),
            "only smoke has a read-only form"
        );
    }
}
