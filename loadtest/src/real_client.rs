//! The API's real client, driven against a URL: `real_client/drive.py` runs
//! the `aimodelshare` package's `MoralcompassApiClient` and its session helper
//! (`get_token_from_session`), as the teaching apps do, in the venv
//! `scripts/setup-client` installs (`.venv-client/`, pinned in
//! `real_client/requirements.txt`). The tests run it against the API served
//! locally and through API Gateway on the local cloud.

use std::path::{Path, PathBuf};
use std::process::Command;

/// How to install what the driver needs, for the error that says it is missing.
pub const INSTALL_HINT: &str = "install it with `scripts/setup-client` (creates .venv-client/ \
at the workspace root with the pinned aimodelshare from loadtest/real_client/requirements.txt, \
installed --no-deps; scripts/test runs it)";

/// The driver script and the venv's Python that runs it.
#[derive(Debug, Clone)]
pub struct Driver {
    python: PathBuf,
    script: PathBuf,
}

/// What one run of the driver did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub success: bool,
    /// Its standard output: the one-line summary (`OK: ...`) when it passed.
    pub stdout: String,
    /// Its standard error: `FAIL: <check>: <detail>` when it failed.
    pub stderr: String,
}

impl Outcome {
    /// The summary line, or what it said instead.
    pub fn summary(&self) -> &str {
        self.stdout
            .lines()
            .find(|line| line.starts_with("OK:"))
            .unwrap_or_else(|| self.stdout.trim())
    }

    /// The `FAIL: ...` line, if the run failed on a check.
    pub fn failure(&self) -> Option<&str> {
        self.stderr.lines().find(|line| line.starts_with("FAIL:"))
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "the real client {}:\n--- stdout\n{}\n--- stderr\n{}",
            if self.success { "passed" } else { "FAILED" },
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

impl Driver {
    /// The driver of this checkout, or why it cannot run (the venv is missing:
    /// [`INSTALL_HINT`]).
    pub fn new() -> Result<Self, String> {
        let package = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = package.parent().unwrap_or(package);
        let python = root.join(".venv-client/bin/python");
        let script = package.join("real_client/drive.py");
        if !python.is_file() {
            return Err(format!(
                "{} is missing: the real client's venv is not installed; {INSTALL_HINT}",
                python.display()
            ));
        }
        let installed = Command::new(&python)
            .args([
                "-c",
                "import importlib.metadata as m; print(m.version('aimodelshare'))",
            ])
            .output()
            .map_err(|error| format!("cannot run {}: {error}", python.display()))?;
        if !installed.status.success() {
            return Err(format!(
                "aimodelshare is not installed in {}: {}; {INSTALL_HINT}",
                python.display(),
                String::from_utf8_lossy(&installed.stderr).trim()
            ));
        }
        Ok(Self { python, script })
    }

    /// `drive.py base_url args...` as a command, standard input closed.
    pub fn command(&self, base_url: &str, args: &[&str]) -> Command {
        let mut command = Command::new(&self.python);
        command
            .arg(&self.script)
            .arg(base_url)
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(std::process::Stdio::null());
        command
    }

    /// Run the driver against `base_url` to its end (blocking).
    pub fn run(&self, base_url: &str, args: &[&str]) -> Outcome {
        match self.command(base_url, args).output() {
            Ok(output) => Outcome {
                success: output.status.success(),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            },
            Err(error) => Outcome {
                success: false,
                stdout: String::new(),
                stderr: format!("FAIL: cannot run {}: {error}", self.script.display()),
            },
        }
    }
}
