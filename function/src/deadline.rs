//! The running request's deadline, shared by the API (which sets it: see
//! `api::deadline`) and the store (which fits its DynamoDB calls and retries
//! into it).

use std::future::Future;
use std::time::{Duration, Instant};

/// Time kept at the end of a request to answer it: the store's calls end
/// this long before the deadline.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(600);

/// When the running request must have answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(pub Instant);

tokio::task_local! {
    static DEADLINE: Deadline;
}

impl Deadline {
    /// Run `work` with this as its deadline.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        DEADLINE.scope(self, work).await
    }

    /// The running request's deadline; `None` outside a request (tests that
    /// drive the store directly, the deployer's data commands).
    pub fn current() -> Option<Self> {
        DEADLINE.try_with(|deadline| *deadline).ok()
    }

    /// What is left for DynamoDB calls: up to the deadline less the margin.
    pub fn left_for_calls(self) -> Duration {
        self.0
            .saturating_duration_since(Instant::now())
            .saturating_sub(ANSWER_MARGIN)
    }
}
