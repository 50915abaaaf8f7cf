//! The engine's events as people read them: one line each, timestamped in a log.

use super::output::Output;
use crate::engine::progress::{Event, Progress, Report};

/// Shows each event as a line on standard error.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lines;

/// Progress shown to people, for what a command does itself (a final
/// backup, a health check).
pub fn progress() -> Progress {
    Progress::to(&Lines)
}

impl Report for Lines {
    fn report(&self, event: Event<'_>) {
        line(Output::stderr(), &text_of(event));
    }
}

fn text_of(event: Event<'_>) -> String {
    match event {
        Event::Started { address, doing } => format!("{address}: {doing}..."),
        Event::Done {
            address,
            done,
            after,
        } => format!("{address}: {done} after {:.1}s", after.as_secs_f64()),
        Event::Note { address, text } => format!("{address}: {text}"),
        Event::Failed { address, error } => format!("{address}: failed: {error}"),
    }
}

fn line(output: Output, text: &str) {
    match output {
        Output::Terminal => eprintln!("{text}"),
        Output::Log => {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            eprintln!("[{now}] {text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_event_is_one_line() {
        let address = "aws_lambda_function.api";
        assert_eq!(
            text_of(Event::Started {
                address,
                doing: "creating"
            }),
            "aws_lambda_function.api: creating..."
        );
        assert_eq!(
            text_of(Event::Done {
                address,
                done: "created",
                after: Duration::from_millis(1300)
            }),
            "aws_lambda_function.api: created after 1.3s"
        );
        assert_eq!(
            text_of(Event::Note {
                address,
                text: "waiting"
            }),
            "aws_lambda_function.api: waiting"
        );
        assert_eq!(
            text_of(Event::Failed {
                address,
                error: "denied"
            }),
            "aws_lambda_function.api: failed: denied"
        );
    }
}
