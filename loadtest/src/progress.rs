//! How a scenario reports its phases as it goes. The binary draws a progress
//! bar on a terminal and plain lines otherwise ([`Output`]); tests stay silent.

use std::io::IsTerminal;
use std::sync::OnceLock;

/// Who reads standard error: the binary draws a bar for a person at a
/// terminal and timestamped lines for a log (CI, a file, a pipe).
///
/// The twin of the deployer's `ui::Output`: this crate cannot depend on the
/// deployer (the deployer's tests depend on it), and a crate of its own for
/// one call of the standard library would cost more than it shares. The
/// deployer's `ui` tests check that both decide alike; change them together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A person at a terminal: a bar redrawn in place.
    Terminal,
    /// A log: every line timestamped and standing alone.
    Log,
}

impl Output {
    /// Who reads `stream`.
    pub fn of(stream: &impl IsTerminal) -> Self {
        if stream.is_terminal() {
            Self::Terminal
        } else {
            Self::Log
        }
    }

    /// Who reads this process's standard error, decided once.
    pub fn stderr() -> Self {
        static DECIDED: OnceLock<Output> = OnceLock::new();
        *DECIDED.get_or_init(|| Self::of(&std::io::stderr()))
    }
}

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
