//! Progress per resource on stderr: short lines on a terminal, timestamped lines
//! in CI logs (no terminal).

use std::io::IsTerminal;
use std::time::Instant;

/// Reports each resource's start and end.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    timestamps: bool,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    pub fn new() -> Self {
        Self {
            timestamps: !std::io::stderr().is_terminal(),
        }
    }

    fn line(&self, text: &str) {
        if self.timestamps {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            eprintln!("[{now}] {text}");
        } else {
            eprintln!("{text}");
        }
    }

    /// `verb` is `creating`, `updating`, `destroying`.
    pub fn start(&self, address: &str, verb: &str) -> Instant {
        self.line(&format!("{address}: {verb}..."));
        Instant::now()
    }

    pub fn done(&self, address: &str, past: &str, started: Instant) {
        self.line(&format!(
            "{address}: {past} after {:.1}s",
            started.elapsed().as_secs_f64()
        ));
    }

    /// Something worth a line while `address` is under way.
    pub fn note(&self, address: &str, text: &str) {
        self.line(&format!("{address}: {text}"));
    }

    pub fn failed(&self, address: &str, error: &str) {
        self.line(&format!("{address}: failed: {error}"));
    }
}
