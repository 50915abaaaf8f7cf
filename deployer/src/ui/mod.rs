//! The deployer's one channel to people: progress, notes and prompts on
//! standard error, streamed output on standard output. Commands and the binary
//! print only through here; the engine and the other library modules return
//! data or report through [`crate::engine::progress::Report`], which
//! [`install`] points here.
//!
//! Whether standard error is a terminal or a log (CI, a file, a pipe) is
//! decided once, by [`Output::stderr`]: a terminal gets short lines and a
//! progress line redrawn in place, a log timestamped lines that each stand
//! alone.

mod copy;
mod output;
mod progress;
mod prompt;

pub use copy::CopyProgress;
pub use output::Output;
pub use progress::{Lines, progress};
pub use prompt::confirm;

/// Route the engine's progress here for the rest of the process (the
/// binary's first step).
pub fn install() {
    crate::engine::progress::install(&Lines);
}

/// A line for people on standard error (a note, a warning, what was done).
pub fn note(text: impl std::fmt::Display) {
    eprintln!("{text}");
}

/// Text for people on standard error as it is (a rendered plan ends its own lines).
pub fn text(text: impl std::fmt::Display) {
    eprint!("{text}");
}

/// A line of a command's streamed output on standard output (`logs`).
pub fn output(line: impl std::fmt::Display) {
    println!("{line}");
}

/// How a failed command ends: its error on standard error.
pub fn error(error: &dyn std::fmt::Display) {
    eprintln!("error: {error}");
}

#[cfg(test)]
mod tests {
    use super::Output;

    #[test]
    fn a_file_is_a_log() {
        let file = tempfile::tempfile().expect("a temporary file");
        assert_eq!(Output::of(&file), Output::Log);
    }

    /// `loadtest`'s twin of [`Output`] decides alike, on a file and on this
    /// process's standard error, whatever that is.
    #[test]
    fn loadtest_decides_alike() {
        use loadtest::progress::Output as Twin;
        let file = tempfile::tempfile().expect("a temporary file");
        assert_eq!(Twin::of(&file), Twin::Log);
        assert_eq!(
            Output::stderr() == Output::Terminal,
            Twin::stderr() == Twin::Terminal
        );
        assert_eq!(
            Output::of(&std::io::stderr()) == Output::Terminal,
            Twin::of(&std::io::stderr()) == Twin::Terminal
        );
    }
}
