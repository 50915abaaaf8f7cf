//! How a scenario reports its phases as it goes. The binary draws a progress
//! bar on a terminal and plain lines otherwise; tests stay silent.

/// Receives a scenario's phases and progress. Called from concurrent workers.
pub trait Progress: Send + Sync {
    /// A phase starts; `total` steps when known.
    fn phase(&self, name: &str, total: Option<u64>);
    /// `steps` more steps of the current phase are done.
    fn advance(&self, steps: u64);
    /// The current phase is over.
    fn finish(&self);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn phase(&self, _name: &str, _total: Option<u64>) {}
    fn advance(&self, _steps: u64) {}
    fn finish(&self) {}
}
