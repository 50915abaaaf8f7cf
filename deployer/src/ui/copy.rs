//! The progress line of `migrate` and `import`: redrawn in place on a
//! terminal, timestamped lines in a log.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::output::Output;
use crate::data::Tally;

/// Reports a copy's progress on standard error. `total` is an estimate of the
/// items to read (DynamoDB's item count is refreshed about every six hours),
/// for the ETA.
#[derive(Debug)]
pub struct CopyProgress {
    what: String,
    started: Instant,
    total: Option<u64>,
    output: Output,
}

impl CopyProgress {
    pub fn new(what: impl Into<String>, total: Option<u64>) -> Self {
        Self {
            what: what.into(),
            started: Instant::now(),
            total,
            output: Output::stderr(),
        }
    }

    pub fn report(&self, tally: &Tally) {
        let line = self.line(
            tally.read.load(Ordering::Relaxed),
            tally.written.load(Ordering::Relaxed),
        );
        let mut stderr = std::io::stderr().lock();
        match self.output {
            Output::Terminal => {
                let _ = write!(stderr, "\r\x1b[2K{line}");
            }
            Output::Log => {
                let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
                let _ = writeln!(stderr, "{now} {line}");
            }
        }
        let _ = stderr.flush();
    }

    fn line(&self, read: u64, written: u64) -> String {
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = read as f64 / seconds;
        let eta = match self.total {
            Some(total) if rate > 0.0 && total > read => {
                format!(", ETA {:.0} s", (total - read) as f64 / rate)
            }
            _ => String::new(),
        };
        let of = self
            .total
            .map_or_else(String::new, |total| format!(" of ~{total}"));
        format!(
            "{}: {read}{of} items read, {written} written, {rate:.0} items/s{eta}",
            self.what
        )
    }

    /// Ends the redrawn line on a terminal.
    pub fn finish(&self) {
        if self.output == Output::Terminal {
            let _ = writeln!(std::io::stderr());
        }
    }
}
