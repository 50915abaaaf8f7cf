//! The four scenarios. Each records every request and every invariant in the
//! API's [`crate::metrics::Recorder`]; [`run`] turns that into a [`Summary`].

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

use crate::client::Api;
use crate::metrics::Summary;
use crate::progress::Progress;

/// A scenario and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scenario {
    /// The whole contract once; CORS preflights are sent from `origin`.
    Smoke {
        origin: String,
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
}

/// Run `scenario` against `api` (which should be ready: see
/// [`Api::wait_until_ready`]) and summarise what it recorded. The throughput
/// is over the whole run, except for `mixed`, where it is over the timed window.
pub async fn run(api: &Api, scenario: &Scenario, progress: Arc<dyn Progress>) -> Summary {
    let started = Instant::now();
    let measured: Option<Duration> = match scenario {
        Scenario::Smoke { origin } => {
            progress.phase("smoke test", Some(smoke::STEPS));
            smoke::run(api, origin, &progress).await;
            progress.finish();
            None
        }
        Scenario::SingleTable(options) => {
            single_table::run(api, *options, &progress).await;
            None
        }
        Scenario::MultiTable(options) => {
            multi_table::run(api, *options, &progress).await;
            None
        }
        Scenario::Mixed(options) => Some(mixed::run(api, *options, &progress).await),
    };
    let elapsed = measured.unwrap_or_else(|| started.elapsed());
    api.recorder()
        .summary(scenario.name(), api.base_url(), elapsed)
}
