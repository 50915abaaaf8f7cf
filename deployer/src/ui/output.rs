//! The one decision whether standard error is read at a terminal or in a log.

use std::io::IsTerminal;
use std::sync::OnceLock;

/// Who reads standard error.
///
/// `loadtest` (its own crate, which cannot depend on the deployer) has a twin,
/// `loadtest::progress::Output`, and a test in `ui` checks both decide alike. A
/// crate of its own for a decision that is one call of the standard library
/// would be a workspace member, a manifest and a build step for two lines;
/// the twin and its test cost less and cannot drift unnoticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A person at a terminal: short lines, redrawn in place.
    Terminal,
    /// A log (CI, a file, a pipe): every line timestamped and standing alone.
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
