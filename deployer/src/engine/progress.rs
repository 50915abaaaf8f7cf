//! How the engine reports each resource as it goes: events handed to a
//! [`Report`], never printed here. The deployer's `ui` installs the one that
//! shows them to people ([`install`]); until one is installed (a library
//! caller, a test) the events go nowhere.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One thing that happened to a resource.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event<'a> {
    /// Work on `address` starts; `doing` is `creating`, `updating`, `destroying`, ….
    Started { address: &'a str, doing: &'a str },
    /// Work on `address` ended well after `after`; `done` is `created`, ….
    Done {
        address: &'a str,
        done: &'a str,
        after: Duration,
    },
    /// Something worth a line while `address` is under way.
    Note { address: &'a str, text: &'a str },
    /// Work on `address` failed with `error`.
    Failed { address: &'a str, error: &'a str },
}

/// Receives the engine's events. Called from concurrent tasks.
pub trait Report: Send + Sync {
    fn report(&self, event: Event<'_>);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Report for Silent {
    fn report(&self, _event: Event<'_>) {}
}

static INSTALLED: OnceLock<&'static dyn Report> = OnceLock::new();

/// Make `reporter` the one [`Progress::new`] reports to, for the rest of the
/// process. Only the first call installs; `false` when one already was.
pub fn install(reporter: &'static dyn Report) -> bool {
    INSTALLED.set(reporter).is_ok()
}

/// Reports each resource's start and end to a [`Report`].
#[derive(Clone, Copy)]
pub struct Progress {
    reporter: &'static dyn Report,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Progress").finish_non_exhaustive()
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    /// To the installed reporter ([`install`]), or nowhere.
    pub fn new() -> Self {
        Self::to(INSTALLED.get().copied().unwrap_or(&Silent))
    }

    pub fn to(reporter: &'static dyn Report) -> Self {
        Self { reporter }
    }

    /// `verb` is `creating`, `updating`, `destroying`.
    pub fn start(&self, address: &str, verb: &str) -> Instant {
        self.reporter.report(Event::Started {
            address,
            doing: verb,
        });
        Instant::now()
    }

    pub fn done(&self, address: &str, past: &str, started: Instant) {
        self.reporter.report(Event::Done {
            address,
            done: past,
            after: started.elapsed(),
        });
    }

    /// Something worth a line while `address` is under way.
    pub fn note(&self, address: &str, text: &str) {
        self.reporter.report(Event::Note { address, text });
    }

    pub fn failed(&self, address: &str, error: &str) {
        self.reporter.report(Event::Failed { address, error });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    struct Recorded(Mutex<Vec<String>>);

    impl Report for Recorded {
        fn report(&self, event: Event<'_>) {
            let line = match event {
                Event::Started { address, doing } => format!("{address} {doing}"),
                Event::Done { address, done, .. } => format!("{address} {done}"),
                Event::Note { address, text } => format!("{address} note {text}"),
                Event::Failed { address, error } => format!("{address} failed {error}"),
            };
            self.0.lock().expect("not poisoned").push(line);
        }
    }

    #[test]
    fn events_go_to_the_reporter_in_order() {
        let recorded: &'static Recorded = Box::leak(Box::default());
        let progress = Progress::to(recorded);
        let started = progress.start("a.b", "creating");
        progress.note("a.b", "half way");
        progress.done("a.b", "created", started);
        progress.failed("c.d", "boom");
        assert_eq!(
            *recorded.0.lock().expect("not poisoned"),
            [
                "a.b creating",
                "a.b note half way",
                "a.b created",
                "c.d failed boom"
            ]
        );
    }
}
