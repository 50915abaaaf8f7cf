//! Asking for confirmation on a terminal; refusing without one.

use std::io::{BufRead, IsTerminal, Write};

use crate::error::CliError;

/// Ask `question` and require `expected` typed back. Without a terminal on
/// standard input, refuse: automation must say `--auto-approve`.
pub fn confirm(question: &str, expected: &str) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::NobodyToConfirm);
    }
    eprint!("{question}\n  Only '{expected}' will be accepted.\n\n  Enter a value: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|source| CliError::io("reading the answer", source))?;
    if answer.trim() == expected {
        Ok(())
    } else {
        Err(CliError::Cancelled)
    }
}
