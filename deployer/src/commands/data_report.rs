//! What `migrate` and `import` print: a progress line while they run (redrawn
//! in place on a terminal, timestamped lines otherwise), then the summary, as
//! a table or as JSON.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::data::{Summary, Tally};

/// Reports a run's progress on stderr. `total` is an estimate of the items to
/// read (DynamoDB's item count is refreshed about every six hours), for the ETA.
#[derive(Debug)]
pub struct ProgressLine {
    what: String,
    started: Instant,
    total: Option<u64>,
    terminal: bool,
}

impl ProgressLine {
    pub fn new(what: impl Into<String>, total: Option<u64>) -> Self {
        Self {
            what: what.into(),
            started: Instant::now(),
            total,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    pub fn report(&self, tally: &Tally) {
        let read = tally.read.load(Ordering::Relaxed);
        let written = tally.written.load(Ordering::Relaxed);
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
        let line = format!(
            "{}: {read}{of} items read, {written} written, {rate:.0} items/s{eta}",
            self.what
        );
        let mut stderr = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(stderr, "\r\x1b[2K{line}");
        } else {
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
            let _ = writeln!(stderr, "{now} {line}");
        }
        let _ = stderr.flush();
    }

    /// Ends the redrawn line on a terminal.
    pub fn finish(&self) {
        if self.terminal {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// The summary as people read it.
pub fn render(summary: &Summary, verb: &str) -> String {
    let counts = &summary.counts;
    let mut text = String::new();
    let mode = if summary.dry_run {
        " (dry run: nothing written)"
    } else if summary.resumed {
        " (resumed from its checkpoint)"
    } else {
        ""
    };
    text.push_str(&format!(
        "{verb} {} -> {}{mode}\n\n",
        summary.source, summary.target
    ));
    let would = if summary.dry_run { "would be " } else { "" };
    text.push_str(&format!(
        "  {} items read in {:.1} s ({:.0} items/s)\n  {} {would}copied (new in the target)\n  {} {would}replaced (the target's was older)\n  {} kept (the target's is newer)\n  {} unchanged (already there)\n  {} counters skipped (userCount is recounted)\n  {} refused\n",
        counts.read,
        summary.seconds,
        summary.items_per_second,
        counts.copied,
        counts.replaced,
        counts.kept_newer,
        counts.unchanged,
        counts.counters_skipped,
        counts.refused,
    ));
    if counts.sessions_skipped > 0 {
        text.push_str(&format!(
            "  {} sign-in sessions left behind (short-lived, never a class's data)\n",
            counts.sessions_skipped
        ));
    }
    if counts.derived_skipped > 0 {
        text.push_str(&format!(
            "  {} rank entries, rank buckets and teams left behind (the target keeps its own)\n",
            counts.derived_skipped
        ));
    }
    if !summary.dry_run {
        text.push_str(&format!("  {} users ranked\n", summary.ranked));
        text.push_str(&format!("  {} userCounts recounted\n", summary.recounted));
    }
    for refusal in &summary.refused {
        text.push_str(&format!("    refused {refusal}\n"));
    }
    text.push_str("\n  tableId | source users | target users | newer in target | userCount | checksums (source / target) | result\n");
    for table in &summary.tables {
        let result = if table.differences.is_empty() {
            "ok".to_owned()
        } else {
            table.differences.join("; ")
        };
        text.push_str(&format!(
            "  {} | {} | {} | {} | {} | {} / {} | {result}\n",
            table.table_id,
            table.source_users,
            table.target_users,
            table.newer_in_target,
            table
                .user_count
                .map_or_else(|| "-".to_owned(), |count| count.to_string()),
            table.source_checksum,
            table.target_checksum,
        ));
    }
    let verdict = if summary.has_differences() {
        "\nDifferences found (above): exit status 1.\n"
    } else if summary.dry_run {
        "\nA dry run: run it again without --dry-run to write.\n"
    } else {
        "\nVerified: every table matches.\n"
    };
    text.push_str(verdict);
    text
}
