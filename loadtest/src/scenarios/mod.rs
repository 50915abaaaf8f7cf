//! The four scenarios. Each records every request and every invariant in the
//! API's [`crate::metrics::Recorder`]; [`run`] turns that into a [`Summary`].
//!
//! Every scenario but `smoke --read-only` writes: it creates tables named
//! `lt<random>-…` and, at the end, deletes them where the API deletes tables
//! (`allowTableDelete` in its `/health`), or archives them where it does not.
//! [`check_writes`] is what the `loadtest` binary asks before a run: an API
//! that does not delete tables keeps what is written to it, so a scenario
//! writes there only when told to (`--allow-writes`).

pub mod mixed;
pub mod multi_table;
pub mod single_table;
pub mod smoke;
mod workload;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use mixed::Mixed;
pub use multi_table::MultiTable;
pub use single_table::SingleTable;

use crate::client::{Api, Health};
use crate::error::LoadtestError;
use crate::metrics::Summary;
use crate::progress::Progress;

/// A scenario and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scenario {
    /// The whole contract once; CORS preflights are sent from `origin`. With
    /// `read_only`, only the steps that write nothing.
    Smoke {
        origin: String,
        read_only: bool,
    },
    SingleTable(SingleTable),
    MultiTable(MultiTable),
    Mixed(Mixed),
}

impl Scenario {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Smoke { .. } => "smoke",
            Self::SingleTable(_) => "single-table",
            Self::MultiTable(_) => "multi-table",
            Self::Mixed(_) => "mixed",
        }
    }

    /// Whether the scenario writes to the API (every one but `smoke --read-only`).
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            Self::Smoke {
                read_only: true,
                ..
            }
        )
    }
}

/// What a writing scenario does, at the end, with the tables it created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// `DELETE /tables/{tableId}` each, every deletion a check: where the API
    /// deletes tables.
    Delete,
    /// `PATCH` each to `isArchived: true` (only a failure counts): where it
    /// does not, so the tables stay, out of the way.
    Archive,
}

impl Cleanup {
    /// Delete where `/health` reports `allowTableDelete: true`, archive otherwise.
    pub fn for_api(health: &Health) -> Self {
        if health.allow_table_delete() == Some(true) {
            Self::Delete
        } else {
            Self::Archive
        }
    }
}

/// Whether `scenario` may run against the API whose `/health` said `health`:
/// a scenario that writes is refused where the API does not delete tables
/// (what it writes would stay), unless `allow_writes`.
pub fn check_writes(
    api: &Api,
    scenario: &Scenario,
    health: &Health,
    allow_writes: bool,
) -> Result<(), LoadtestError> {
    if !scenario.writes() || allow_writes {
        return Ok(());
    }
    let reported = match health.allow_table_delete() {
        Some(true) => return Ok(()),
        Some(false) => "allowTableDelete: false".to_owned(),
        None => "no allowTableDelete".to_owned(),
    };
    Err(LoadtestError::WritesRefused {
        url: format!("{}/health", api.base_url()),
        scenario: scenario.name(),
        reported,
    })
}

/// Run `scenario` against `api` (which should be ready: see
/// [`Api::wait_until_ready`]) and summarise what it recorded. A scenario that
/// writes first reads `/health` to choose its [`Cleanup`] (it does not refuse:
/// see [`check_writes`]). The throughput is over the whole run, except for
/// `mixed`, where it is over the timed window.
pub async fn run(api: &Api, scenario: &Scenario, progress: Arc<dyn Progress>) -> Summary {
    let started = Instant::now();
    let cleanup = if scenario.writes() {
        match api.health().await {
            Ok(health) => Cleanup::for_api(&health),
            Err(error) => {
                api.recorder().check(
                    "GET /health says whether tables are deleted",
                    false,
                    error.to_string(),
                );
                Cleanup::Archive
            }
        }
    } else {
        Cleanup::Archive
    };
    let measured: Option<Duration> = match scenario {
        Scenario::Smoke { origin, read_only } => {
            let steps = smoke::steps(*read_only, cleanup);
            progress.phase("smoke test", Some(steps));
            if *read_only {
                smoke::run_read_only(api, origin, &progress).await;
            } else {
                smoke::run(api, origin, cleanup, &progress).await;
            }
            progress.finish();
            None
        }
        Scenario::SingleTable(options) => {
            single_table::run(api, *options, cleanup, &progress).await;
            None
        }
        Scenario::MultiTable(options) => {
            multi_table::run(api, *options, cleanup, &progress).await;
            None
        }
        Scenario::Mixed(options) => Some(mixed::run(api, *options, cleanup, &progress).await),
    };
    let elapsed = measured.unwrap_or_else(|| started.elapsed());
    api.recorder()
        .summary(scenario.name(), api.base_url(), elapsed)
}
