//! The fence a run holding a lock checks before each mutating step: it is
//! down while the lock's lease is known to be live and nobody asked the run to
//! stop; it goes up for good when the run is interrupted (SIGINT/SIGTERM), when
//! the lock is found lost, or when the last successful heartbeat is older than
//! the lease (the lock may have been taken over: the run never acts on a lock
//! it may have lost). Steps already running finish; no new one starts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::EngineError;

/// Why the fence is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT or SIGTERM.
    Interrupted,
    /// The lease ran out or the lock was lost: `detail` says how.
    LeaseLost(String),
}

#[derive(Debug)]
struct State {
    stop: Option<Stop>,
    /// The lease ends here unless renewed; `None`: no lease (nothing to renew).
    lease_ends: Option<Instant>,
}

/// Shared by the lock guard (which raises it) and the engine (which checks it).
#[derive(Debug, Clone)]
pub struct Fence {
    state: Arc<Mutex<State>>,
    raised: Arc<tokio::sync::Notify>,
}

impl Default for Fence {
    fn default() -> Self {
        Self::open()
    }
}

impl Fence {
    /// A fence that stays down unless raised: for runs that hold no lease.
    pub fn open() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                stop: None,
                lease_ends: None,
            })),
            raised: Arc::new(tokio::sync::Notify::new()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state)
    }

    /// The lease was renewed by a call that started at `renewed_at`: it runs to
    /// `renewed_at + lease` (measured from before the call, the safe side).
    pub fn renewed(&self, renewed_at: Instant, lease: Duration) {
        self.with(|state| state.lease_ends = Some(renewed_at + lease));
    }

    /// Raise the fence (the first reason stays).
    pub fn raise(&self, stop: Stop) {
        self.with(|state| {
            state.stop.get_or_insert(stop);
        });
        self.raised.notify_waiters();
    }

    /// Why the fence is up, if it is: raised, or the lease ran out.
    pub fn stopped(&self) -> Option<Stop> {
        self.with(|state| {
            if state.stop.is_none()
                && let Some(ends) = state.lease_ends
                && Instant::now() >= ends
            {
                state.stop = Some(Stop::LeaseLost(
                    "the lock could not be renewed within its lease".into(),
                ));
            }
            state.stop.clone()
        })
    }

    /// `Ok` while a mutating step may start; the reason to stop otherwise.
    pub fn check(&self, step: &str) -> Result<(), EngineError> {
        match self.stopped() {
            None => Ok(()),
            Some(Stop::Interrupted) => Err(EngineError::new(
                step,
                "not started: the run was interrupted",
            )),
            Some(Stop::LeaseLost(detail)) => Err(EngineError::new(
                step,
                format!(
                    "not started: {detail}; the run stopped rather than act on a lock it may have lost"
                ),
            )),
        }
    }

    /// Resolves once the fence is up (at once if it is): for waits that change
    /// nothing, such as a restore's wait for its table.
    pub async fn raised(&self) -> Stop {
        loop {
            let notified = self.raised.notified();
            if let Some(stop) = self.stopped() {
                return stop;
            }
            let lease_ends = self.with(|state| state.lease_ends);
            match lease_ends {
                Some(ends) => {
                    let _ = tokio::time::timeout_at(ends.into(), notified).await;
                }
                None => notified.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fence_goes_up_when_the_lease_runs_out_and_stays_up() {
        let fence = Fence::open();
        assert!(fence.check("creating x").is_ok());
        fence.renewed(Instant::now(), Duration::from_millis(50));
        assert!(fence.check("creating x").is_ok());
        std::thread::sleep(Duration::from_millis(60));
        let error = fence.check("creating x").expect_err("lease ran out");
        assert!(error.to_string().contains("may have lost"), "{error}");
        fence.renewed(Instant::now(), Duration::from_secs(60));
        assert!(fence.check("creating x").is_err(), "stays up");
    }

    #[tokio::test]
    async fn raising_wakes_waiters_and_the_first_reason_stays() {
        let fence = Fence::open();
        let waiter = tokio::spawn({
            let fence = fence.clone();
            async move { fence.raised().await }
        });
        tokio::task::yield_now().await;
        fence.raise(Stop::Interrupted);
        fence.raise(Stop::LeaseLost("x".into()));
        assert_eq!(waiter.await.expect("task"), Stop::Interrupted);
        assert_eq!(fence.stopped(), Some(Stop::Interrupted));
    }
}
