//! What a run measured: per-operation latency histograms (HDR), error counts,
//! the invariants checked, and the summary printed as a table or JSON.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency the histograms record exactly: longer ones are clamped.
const MAX_RECORDED_MICROS: u64 = 120_000_000;
/// At most this many error messages are kept; the rest are only counted.
const MAX_KEPT_ERRORS: usize = 20;
/// A check that fails repeatedly keeps this many examples in its detail.
const MAX_CHECK_EXAMPLES: u64 = 5;

#[derive(Debug)]
struct OperationStats {
    latencies: Histogram<u64>,
    errors: u64,
}

impl OperationStats {
    fn new() -> Self {
        Self {
            latencies: Histogram::new_with_bounds(1, MAX_RECORDED_MICROS, 3)
                .unwrap_or_else(|_| unreachable!("static histogram bounds are valid")),
            errors: 0,
        }
    }
}

#[derive(Debug, Default)]
struct Recorded {
    operations: BTreeMap<&'static str, OperationStats>,
    errors: Vec<String>,
    unlisted_errors: u64,
    /// Failed requests taken from another recorder (set-up outside the measured window).
    absorbed_errors: u64,
    checks: Vec<Check>,
}

impl Recorded {
    fn keep_error(&mut self, error: String) {
        if self.errors.len() < MAX_KEPT_ERRORS {
            self.errors.push(error);
        } else {
            self.unlisted_errors += 1;
        }
    }

    /// A check; a failure of a check that already failed is counted in it,
    /// with its detail kept for the first few.
    fn add_check(&mut self, check: Check) {
        if !check.passed
            && let Some(existing) = self
                .checks
                .iter_mut()
                .find(|existing| !existing.passed && existing.name == check.name)
        {
            existing.occurrences += check.occurrences;
            if existing.occurrences <= MAX_CHECK_EXAMPLES {
                existing.detail.push_str("; ");
                existing.detail.push_str(&check.detail);
            }
            return;
        }
        self.checks.push(check);
    }
}

/// Collects measurements from every concurrent worker. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    recorded: Arc<Mutex<Recorded>>,
}

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, Recorded> {
        // A worker that panicked mid-record leaves consistent data behind.
        self.recorded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One request of `operation` that took `latency`; `error` when it failed.
    pub fn record(&self, operation: &'static str, latency: Duration, error: Option<String>) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_RECORDED_MICROS);
        let mut recorded = self.lock();
        let stats = recorded
            .operations
            .entry(operation)
            .or_insert_with(OperationStats::new);
        stats.latencies.saturating_record(micros);
        if let Some(error) = error {
            stats.errors += 1;
            recorded.keep_error(format!("{operation}: {error}"));
        }
    }

    /// An invariant and whether it held. Repeated failures of one check are
    /// counted in it rather than listed one by one.
    pub fn check(&self, name: impl Into<String>, passed: bool, detail: impl Into<String>) {
        self.lock().add_check(Check {
            name: name.into(),
            passed,
            detail: detail.into(),
            occurrences: 1,
        });
    }

    /// Take `other`'s failed requests and checks, but not its latencies: for
    /// work done outside the measured window (set-up, verification).
    pub fn absorb(&self, other: &Recorder) {
        let (errors, unlisted, failed, checks) = {
            let other = other.lock();
            // Its own failed requests, and those it absorbed in turn.
            let failed: u64 = other
                .operations
                .values()
                .map(|stats| stats.errors)
                .sum::<u64>()
                + other.absorbed_errors;
            (
                other.errors.clone(),
                other.unlisted_errors,
                failed,
                other.checks.clone(),
            )
        };
        let mut recorded = self.lock();
        for error in errors {
            recorded.keep_error(error);
        }
        recorded.unlisted_errors += unlisted;
        recorded.absorbed_errors += failed;
        for check in checks {
            recorded.add_check(check);
        }
    }

    /// Total requests recorded so far.
    pub fn operations(&self) -> u64 {
        self.lock()
            .operations
            .values()
            .map(|stats| stats.latencies.len())
            .sum()
    }

    /// The summary of everything recorded, for a run that took `elapsed`.
    pub fn summary(&self, scenario: &str, url: &str, elapsed: Duration) -> Summary {
        let recorded = self.lock();
        let by_operation: Vec<OperationSummary> = recorded
            .operations
            .iter()
            .map(|(name, stats)| OperationSummary::new(name, stats))
            .collect();
        let operations = by_operation.iter().map(|operation| operation.count).sum();
        let errors = by_operation
            .iter()
            .map(|operation| operation.errors)
            .sum::<u64>()
            + recorded.absorbed_errors;
        let elapsed_seconds = elapsed.as_secs_f64();
        let mut failures: Vec<String> = recorded.errors.clone();
        if recorded.unlisted_errors > 0 {
            failures.push(format!("… and {} more errors", recorded.unlisted_errors));
        }
        failures.extend(
            recorded
                .checks
                .iter()
                .filter(|check| !check.passed)
                .map(|check| check.to_string()),
        );
        Summary {
            scenario: scenario.to_owned(),
            url: url.to_owned(),
            passed: failures.is_empty() && operations > 0,
            elapsed_seconds,
            operations,
            errors,
            throughput_per_second: if elapsed_seconds > 0.0 {
                round2(operations as f64 / elapsed_seconds)
            } else {
                0.0
            },
            by_operation,
            checks: recorded.checks.clone(),
            failures,
        }
    }
}

/// An invariant of a scenario (or a step of the smoke test) and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
    /// How many times it was checked with this outcome (failures are merged).
    pub occurrences: u64,
}

impl fmt::Display for Check {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.name)?;
        if self.occurrences > 1 {
            write!(formatter, " ({} times)", self.occurrences)?;
        }
        write!(formatter, ": {}", self.detail)?;
        if self.occurrences > MAX_CHECK_EXAMPLES {
            write!(formatter, "; …")?;
        }
        Ok(())
    }
}

/// Latency statistics of one operation, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationSummary {
    pub name: String,
    pub count: u64,
    pub errors: u64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn millis(micros: u64) -> f64 {
    round2(micros as f64 / 1000.0)
}

impl OperationSummary {
    fn new(name: &str, stats: &OperationStats) -> Self {
        let latencies = &stats.latencies;
        Self {
            name: name.to_owned(),
            count: latencies.len(),
            errors: stats.errors,
            min_ms: millis(latencies.min()),
            max_ms: millis(latencies.max()),
            mean_ms: round2(latencies.mean() / 1000.0),
            median_ms: millis(latencies.value_at_quantile(0.5)),
            p95_ms: millis(latencies.value_at_quantile(0.95)),
            p99_ms: millis(latencies.value_at_quantile(0.99)),
        }
    }
}

/// The outcome of one scenario: `passed` only when no request failed, every
/// invariant held and at least one request ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub url: String,
    pub passed: bool,
    pub elapsed_seconds: f64,
    pub operations: u64,
    pub errors: u64,
    pub throughput_per_second: f64,
    pub by_operation: Vec<OperationSummary>,
    pub checks: Vec<Check>,
    pub failures: Vec<String>,
}

/// The latency table, totals, and every failure.
impl fmt::Display for Summary {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(formatter, "scenario {} against {}", self.scenario, self.url)?;
        if !self.by_operation.is_empty() {
            writeln!(
                formatter,
                "{:<16} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "operation",
                "count",
                "errors",
                "min ms",
                "mean ms",
                "median ms",
                "p95 ms",
                "p99 ms",
                "max ms"
            )?;
        }
        for operation in &self.by_operation {
            writeln!(
                formatter,
                "{:<16} {:>7} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                operation.name,
                operation.count,
                operation.errors,
                operation.min_ms,
                operation.mean_ms,
                operation.median_ms,
                operation.p95_ms,
                operation.p99_ms,
                operation.max_ms
            )?;
        }
        writeln!(
            formatter,
            "{} operations, {} errors in {:.2} s: {:.2} operations/s",
            self.operations, self.errors, self.elapsed_seconds, self.throughput_per_second
        )?;
        for check in &self.checks {
            let mark = if check.passed { "ok  " } else { "FAIL" };
            writeln!(formatter, "{mark} {check}")?;
        }
        if self.operations == 0 {
            writeln!(formatter, "FAIL no operation ran")?;
        }
        let request_errors: Vec<&String> = self
            .failures
            .iter()
            .take(self.failures.len() - self.checks.iter().filter(|check| !check.passed).count())
            .collect();
        if !request_errors.is_empty() {
            writeln!(formatter, "failed requests:")?;
            for error in request_errors {
                writeln!(formatter, "  - {error}")?;
            }
        }
        write!(
            formatter,
            "{}",
            if self.passed { "PASSED" } else { "FAILED" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_and_errors_are_summarised_per_operation() {
        let recorder = Recorder::default();
        for millis in 1..=100 {
            recorder.record("get_user", Duration::from_millis(millis), None);
        }
        recorder.record("put_user", Duration::from_millis(5), Some("500".into()));
        let summary = recorder.summary("test", "http://x", Duration::from_secs(2));
        assert_eq!(summary.operations, 101);
        assert_eq!(summary.errors, 1);
        assert!(!summary.passed, "an error fails the run");
        assert_eq!(summary.failures, ["put_user: 500"]);
        assert!((summary.throughput_per_second - 50.5).abs() < f64::EPSILON);
        let get = &summary.by_operation[0];
        assert_eq!(
            (get.name.as_str(), get.count, get.errors),
            ("get_user", 100, 0)
        );
        assert!((get.min_ms - 1.0).abs() < 0.01, "{get:?}");
        assert!((get.median_ms - 50.0).abs() < 0.1, "{get:?}");
        assert!((get.p95_ms - 95.0).abs() < 0.1, "{get:?}");
        assert!((get.p99_ms - 99.0).abs() < 0.1, "{get:?}");
        assert!((get.max_ms - 100.0).abs() < 0.1, "{get:?}");
        assert!((get.mean_ms - 50.5).abs() < 0.1, "{get:?}");
    }

    #[test]
    fn a_failed_check_or_no_operation_fails_the_run() {
        let recorder = Recorder::default();
        assert!(!recorder.summary("t", "u", Duration::from_secs(1)).passed);
        recorder.record("health", Duration::from_millis(1), None);
        assert!(recorder.summary("t", "u", Duration::from_secs(1)).passed);
        recorder.check("userCount", false, "expected 3, got 2");
        let summary = recorder.summary("t", "u", Duration::from_secs(1));
        assert!(!summary.passed);
        assert_eq!(summary.failures, ["userCount: expected 3, got 2"]);
        assert!(summary.to_string().contains("FAIL userCount"), "{summary}");
    }

    #[test]
    fn repeated_failures_of_a_check_are_counted_in_it() {
        let recorder = Recorder::default();
        for index in 0..8 {
            recorder.check("createdNew", false, format!("user-{index}"));
        }
        recorder.check("createdNew", true, "a passing one is its own line");
        let summary = recorder.summary("t", "u", Duration::from_secs(1));
        assert_eq!(summary.checks.len(), 2, "{summary}");
        let failed = &summary.checks[0];
        assert_eq!(failed.occurrences, 8);
        assert_eq!(failed.detail.matches("user-").count(), 5, "{failed:?}");
        assert_eq!(
            summary.failures,
            ["createdNew (8 times): user-0; user-1; user-2; user-3; user-4; …"]
        );
    }

    #[test]
    fn absorbed_failures_fail_the_run_without_their_latencies() {
        let setup = Recorder::default();
        setup.record(
            "create_table",
            Duration::from_millis(3),
            Some("expected 201, got 403".into()),
        );
        setup.check("the table is created", false, "t1");
        let measured = Recorder::default();
        measured.record("get_user", Duration::from_millis(1), None);
        measured.absorb(&setup);
        let summary = measured.summary("t", "u", Duration::from_secs(1));
        assert!(!summary.passed);
        assert_eq!(summary.operations, 1, "set-up latencies stay out");
        assert_eq!(summary.errors, 1, "set-up errors count");
        assert_eq!(
            summary.failures,
            [
                "create_table: expected 201, got 403",
                "the table is created: t1"
            ]
        );
    }

    #[test]
    fn only_the_first_errors_are_kept_and_the_rest_counted() {
        let recorder = Recorder::default();
        for index in 0..25 {
            recorder.record(
                "op",
                Duration::from_millis(1),
                Some(format!("error {index}")),
            );
        }
        let summary = recorder.summary("t", "u", Duration::from_secs(1));
        assert_eq!(summary.errors, 25);
        assert_eq!(summary.failures.len(), MAX_KEPT_ERRORS + 1);
        assert_eq!(
            summary.failures.last().map(String::as_str),
            Some("… and 5 more errors")
        );
    }
}
