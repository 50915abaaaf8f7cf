//! Integration and load scenarios against any playground API, deployed or
//! local: `smoke` (the contract end to end), `single-table`, `multi-table` and
//! `mixed`. Every request is timed into HDR histograms per operation, every
//! invariant is a named check, and a run passes only when no request failed,
//! every check held and at least one request ran. The `loadtest` binary
//! (src/main.rs) parses the command line, draws progress and prints.
//! `real_client` runs the API's real Python client against a URL (for the
//! tests).

pub mod cli;
pub mod client;
pub mod error;
pub mod metrics;
pub mod progress;
pub mod real_client;
pub mod scenarios;

pub use client::{Api, Health};
pub use error::LoadtestError;
pub use metrics::{Recorder, Summary};
pub use progress::{Progress, Silent};
pub use scenarios::{Cleanup, Mixed, MultiTable, Scenario, SingleTable, check_writes, run};
