//! Why a run could not start. Failures of the API under test are not errors
//! here: they are recorded in the run's summary.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LoadtestError {
    #[error("the API URL {url:?} is not usable: {reason} (pass --url or set API_BASE_URL)")]
    InvalidUrl { url: String, reason: String },

    #[error("cannot create the HTTP client: {0}")]
    Client(String),

    #[error("cannot read {url}: {reason}")]
    Health { url: String, reason: String },

    #[error(
        "{url} reports {reported}: this environment does not delete tables, so the \
         tables `loadtest {scenario}` creates would stay in it. Nothing was written. \
         Pass --allow-writes to write anyway (the tables are archived at the end), \
         or run `loadtest smoke --read-only`, which writes nothing"
    )]
    WritesRefused {
        url: String,
        scenario: &'static str,
        /// What /health said: `allowTableDelete: false`, or that it does not say.
        reported: String,
    },

    #[error(
        "{url} did not answer 200 within {} s (last: {last})",
        .waited.as_secs()
    )]
    NotReady {
        url: String,
        waited: Duration,
        last: String,
    },
}
