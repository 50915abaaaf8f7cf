//! Why a run could not start. Failures of the API under test are not errors
//! here: they are recorded in the run's summary.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LoadtestError {
    #[error("the API URL {url:?} is not usable: {reason} (pass --url or set API_BASE_URL)")]
    InvalidUrl { url: String, reason: String },

    #[error("cannot create the HTTP client: {0}")]
    Client(String),

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
