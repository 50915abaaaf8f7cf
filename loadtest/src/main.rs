//! `loadtest`: run one scenario against a playground API and report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use loadtest::cli::Cli;
use loadtest::{Api, Progress, Recorder, Summary};

/// A progress bar on a terminal; plain timestamped lines otherwise (CI logs).
#[derive(Debug)]
struct Reporter {
    started: Instant,
    bar: Option<Mutex<Option<ProgressBar>>>,
    phase: Mutex<Option<(String, Instant)>>,
    steps: AtomicU64,
}

impl Reporter {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            bar: (loadtest::progress::Output::stderr() == loadtest::progress::Output::Terminal)
                .then(|| Mutex::new(None)),
            phase: Mutex::new(None),
            steps: AtomicU64::new(0),
        }
    }

    fn line(&self, text: &str) {
        eprintln!("[{:>7.1}s] {text}", self.started.elapsed().as_secs_f64());
    }
}

impl Progress for Reporter {
    fn phase(&self, name: &str, total: Option<u64>) {
        self.steps.store(0, Ordering::Relaxed);
        if let Ok(mut phase) = self.phase.lock() {
            *phase = Some((name.to_owned(), Instant::now()));
        }
        match &self.bar {
            Some(slot) => {
                let bar = match total {
                    Some(total) => ProgressBar::new(total).with_style(
                        ProgressStyle::with_template(
                            "{msg} [{bar:30}] {pos}/{len} {elapsed_precise}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    ),
                    None => ProgressBar::new_spinner().with_style(
                        ProgressStyle::with_template(
                            "{spinner} {msg}: {pos} requests {elapsed_precise}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    ),
                };
                bar.set_draw_target(ProgressDrawTarget::stderr());
                bar.set_message(name.to_owned());
                bar.enable_steady_tick(Duration::from_millis(120));
                if let Ok(mut current) = slot.lock() {
                    *current = Some(bar);
                }
            }
            None => self.line(&format!("{name}…")),
        }
    }

    fn advance(&self, steps: u64) {
        self.steps.fetch_add(steps, Ordering::Relaxed);
        if let Some(slot) = &self.bar
            && let Ok(current) = slot.lock()
            && let Some(bar) = current.as_ref()
        {
            bar.inc(steps);
        }
    }

    fn finish(&self) {
        if let Some(slot) = &self.bar
            && let Ok(mut current) = slot.lock()
            && let Some(bar) = current.take()
        {
            bar.finish_and_clear();
        }
        let phase = self.phase.lock().ok().and_then(|mut phase| phase.take());
        if let Some((name, since)) = phase {
            self.line(&format!(
                "{name}: done, {} steps in {:.1} s",
                self.steps.load(Ordering::Relaxed),
                since.elapsed().as_secs_f64()
            ));
        }
    }
}

/// Print a line on standard output; a closed pipe is an error, not a panic.
fn print_stdout(text: &str) -> Result<(), String> {
    use std::io::Write as _;
    writeln!(std::io::stdout().lock(), "{text}")
        .map_err(|error| format!("writing to standard output: {error}"))
}

fn write_json(path: &PathBuf, summary: &Summary) -> Result<(), String> {
    let text = serde_json::to_string_pretty(summary)
        .map_err(|error| format!("serialising the summary: {error}"))?;
    if path.as_os_str() == "-" {
        return print_stdout(&text);
    }
    std::fs::write(path, format!("{text}\n"))
        .map_err(|error| format!("writing the summary to {}: {error}", path.display()))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(url) = cli.url.clone() else {
        eprintln!("error: no API given: pass --url URL or set API_BASE_URL");
        return ExitCode::from(2);
    };
    let scenario = cli.scenario.scenario();
    let recorder = Recorder::default();
    let api = match Api::new(&url, recorder.clone()) {
        Ok(api) => api,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let reporter = Arc::new(Reporter::new());
    reporter.line(&format!(
        "{}: waiting for {} to be ready",
        scenario.name(),
        api.base_url()
    ));
    let summary = match api.wait_until_ready(cli.ready_timeout).await {
        Ok(()) => {
            if scenario.writes() {
                // Nothing is written before the API has said it deletes tables
                // (or --allow-writes says to write anyway).
                let allowed = match api.health().await {
                    Ok(health) => {
                        loadtest::check_writes(&api, &scenario, &health, cli.allow_writes)
                    }
                    Err(error) => Err(error),
                };
                if let Err(error) = allowed {
                    eprintln!("error: {error}");
                    return ExitCode::from(2);
                }
            }
            loadtest::run(&api, &scenario, reporter).await
        }
        Err(error) => {
            recorder.check("the API is ready", false, error.to_string());
            recorder.summary(scenario.name(), api.base_url(), Duration::ZERO)
        }
    };
    let json_on_stdout = cli
        .json
        .as_ref()
        .is_some_and(|path| path.as_os_str() == "-");
    if json_on_stdout {
        eprintln!("{summary}");
    } else if let Err(error) = print_stdout(&summary.to_string()) {
        eprintln!("error: {error}");
    }
    if let Some(path) = &cli.json
        && let Err(error) = write_json(path, &summary)
    {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    if summary.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
