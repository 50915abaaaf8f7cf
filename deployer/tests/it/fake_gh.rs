//! The workflows' own scripts, run as GitHub Actions runs them (`bash -e
//! -o pipefail`), against a stand-in for the GitHub CLI (`fake_gh.py`: the
//! subcommands the workflows use, strict about flags and the repository, over
//! one repository kept in a JSON file). So the plan comment, the preview
//! comment, the drift issue and the sweeper are tested as behaviour, not only
//! as parsed YAML.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

pub const REPOSITORY: &str = "o/r";

/// A repository as the stand-in keeps it, and a `gh` on a `PATH` of its own.
pub struct FakeGh {
    dir: tempfile::TempDir,
}

impl FakeGh {
    /// A repository with these pull requests (`number`, `OPEN`, `CLOSED` or
    /// `MERGED`) and no issue, comment or label.
    pub fn new(pulls: &[(u32, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("a folder for gh");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("bin");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/fake_gh.py");
        let gh = bin.join("gh");
        std::fs::write(
            &gh,
            format!("#!/bin/sh\nexec python3 {} \"$@\"\n", script.display()),
        )
        .expect("write gh");
        let mut permissions = std::fs::metadata(&gh).expect("gh").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&gh, permissions).expect("chmod gh");
        let pulls: serde_json::Map<String, Value> = pulls
            .iter()
            .map(|(number, state)| (number.to_string(), json!(state)))
            .collect();
        let fake = Self { dir };
        fake.write(&json!({
            "repository": REPOSITORY,
            "issues": [],
            "comments": {},
            "pulls": pulls,
            "labels": [],
            "calls": [],
        }));
        fake
    }

    fn state_file(&self) -> PathBuf {
        self.dir.path().join("github.json")
    }

    fn write(&self, state: &Value) {
        std::fs::write(self.state_file(), state.to_string()).expect("write the repository");
    }

    /// The repository now: `issues`, `comments` (by issue number), `labels`,
    /// and every `calls` made.
    pub fn state(&self) -> Value {
        let text = std::fs::read_to_string(self.state_file()).expect("read the repository");
        serde_json::from_str(&text).expect("the repository's JSON")
    }

    /// Add a comment on issue or pull request `number` by `login`.
    pub fn comment(&self, number: u32, login: &str, body: &str) {
        let mut state = self.state();
        let thread = state["comments"]
            .as_object_mut()
            .expect("comments")
            .entry(number.to_string())
            .or_insert_with(|| json!([]));
        let id = 500 + thread.as_array().map_or(0, Vec::len);
        thread
            .as_array_mut()
            .expect("a thread")
            .push(json!({"id": id, "body": body, "user": {"login": login}}));
        self.write(&state);
    }

    /// The comments on `number`.
    pub fn comments(&self, number: u32) -> Vec<Value> {
        self.state()["comments"][number.to_string()]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Put `program` on this `PATH` too, as `name` (a step's `deployer`).
    pub fn add_program(&self, name: &str, program: &Path) {
        std::os::unix::fs::symlink(program, self.dir.path().join("bin").join(name))
            .expect("link the program");
    }

    /// `PATH` with this `gh` first.
    pub fn path(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// Run `script` as a step of a GitHub Actions job runs it, in `dir`, with
    /// only `env` (besides `PATH`, with this `gh` first, and `HOME`): a
    /// variable the step does not define is unset, as on a runner.
    pub fn run(&self, script: &str, dir: &Path, env: &[(&str, &str)]) -> Output {
        Command::new("bash")
            .args([
                "--noprofile",
                "--norc",
                "-e",
                "-o",
                "pipefail",
                "-c",
                script,
            ])
            .current_dir(dir)
            .env_clear()
            .env("PATH", self.path())
            .env("HOME", dir)
            .env("FAKE_GH_STATE", self.state_file())
            .envs(env.iter().copied())
            .output()
            .expect("bash runs the step")
    }
}
