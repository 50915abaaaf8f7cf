//! Asking for confirmation on a terminal; refusing without one.

use std::io::{BufRead, IsTerminal, Write};

use crate::error::CliError;

/// Ask `question` and require `expected` typed back. Without a terminal on
/// standard input, refuse: automation must say `--auto-approve`.
pub fn confirm(question: &str, expected: &str) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "refusing to proceed without --auto-approve: standard input is not a terminal, so nobody can confirm"
                .into(),
        ));
    }
    eprint!("{question}\n  Only '{expected}' will be accepted.\n\n  Enter a value: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|error| CliError::Usage(format!("reading the answer: {error}")))?;
    if answer.trim() == expected {
        Ok(())
    } else {
        Err(CliError::Usage("cancelled: nothing was changed".into()))
    }
}
