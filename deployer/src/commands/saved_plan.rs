//! Saved plans: `deployer plan --env E --artifact ZIP --out FILE` writes the
//! plan with the state version and the artifact's hash it was made against;
//! `deployer apply FILE` applies exactly that plan, or refuses, changing
//! nothing, when the state has moved on or planning again under the lock gives
//! a different plan (AWS, or the configuration, no longer matches what the plan
//! saw). The file's layout and the JSON plan's are documented in
//! docs/commands.md ("Saved plans").

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use state::Stored;

use crate::engine::Plan;
use crate::error::CliError;

/// The version of the JSON plan (`plan --json`, and `plan` in a saved plan).
/// 2: `drift`, `intent` and `drift_unknown` (docs/commands.md, "Drift and
/// intent"), and `environment` and `release` in `plan --json`.
pub const PLAN_FORMAT_VERSION: u32 = 2;
/// The version of the saved plan file's own layout (2: its plan is of
/// [`PLAN_FORMAT_VERSION`] 2).
pub const SAVED_PLAN_FORMAT_VERSION: u32 = 2;
const KIND: &str = "deployer-saved-plan";

/// The JSON plan: the engine's plan with its format version; as `plan --json`
/// prints it, also the environment and the release the plan would ship.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanDocument<P = Plan> {
    pub format_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Which version `live` would serve, as the text plan's `Release:` line says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(flatten)]
    pub plan: P,
}

impl<'a> PlanDocument<&'a Plan> {
    pub fn new(plan: &'a Plan) -> Self {
        Self {
            format_version: PLAN_FORMAT_VERSION,
            environment: None,
            release: None,
            plan,
        }
    }

    /// This document, naming its environment and release.
    pub fn about(mut self, environment: &str, release: Option<&str>) -> Self {
        self.environment = Some(environment.to_owned());
        self.release = release.map(str::to_owned);
        self
    }
}

/// `plan` as JSON, as a saved plan holds it.
pub fn plan_json(plan: &Plan) -> Value {
    serde_json::to_value(PlanDocument::new(plan)).unwrap_or(Value::Null)
}

/// Which revision of the state a plan was made against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateVersion {
    pub lineage: String,
    pub serial: u64,
}

impl StateVersion {
    pub fn of(stored: Option<&Stored>) -> Option<Self> {
        stored.map(|stored| Self {
            lineage: stored.document.lineage.to_string(),
            serial: stored.document.serial,
        })
    }
}

fn describe(state: Option<&StateVersion>) -> String {
    state.map_or_else(
        || "no state".to_owned(),
        |state| format!("serial {} of lineage {}", state.serial, state.lineage),
    )
}

/// A saved plan file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: u32,
    pub kind: String,
    pub environment: String,
    pub deployer_version: String,
    /// When the plan was made (UTC, RFC 3339).
    pub created: String,
    /// The state the plan was made against (`None`: the environment had none).
    pub state: Option<StateVersion>,
    /// The function zip's SHA-256 (base64, as Lambda's `CodeSha256`).
    pub artifact_sha256: String,
    /// The zip's path as given to `plan` (the default `--artifact` of `apply FILE`).
    pub artifact: PathBuf,
    pub plan: Value,
}

impl SavedPlan {
    pub fn new(
        environment: &str,
        stored: Option<&Stored>,
        artifact: &Path,
        artifact_sha256: &str,
        plan: &Plan,
    ) -> Self {
        Self {
            format_version: SAVED_PLAN_FORMAT_VERSION,
            kind: KIND.to_owned(),
            environment: environment.to_owned(),
            deployer_version: env!("CARGO_PKG_VERSION").to_owned(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            state: StateVersion::of(stored),
            artifact_sha256: artifact_sha256.to_owned(),
            artifact: artifact.to_owned(),
            plan: plan_json(plan),
        }
    }

    /// Write to `path` (through a temporary file, so a reader never sees half).
    pub fn write(&self, path: &Path) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(self).map_err(|source| CliError::Json {
            context: "serializing the plan".into(),
            source,
        })?;
        let partial = path.with_extension("partial");
        std::fs::write(&partial, text + "\n")
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(|source| {
                CliError::io(format!("writing the plan to {}", path.display()), source)
            })
    }

    /// Read a saved plan, refusing what this deployer cannot apply.
    pub fn read(path: &Path) -> Result<Self, CliError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            CliError::io(format!("reading the plan {}", path.display()), source)
        })?;
        let saved: Self = serde_json::from_str(&text).map_err(|source| CliError::Json {
            context: format!(
                "{} is not a saved plan (`deployer plan --env E --artifact ZIP --out FILE` writes one)",
                path.display()
            ),
            source,
        })?;
        if saved.kind != KIND || saved.format_version != SAVED_PLAN_FORMAT_VERSION {
            return Err(CliError::Usage(format!(
                "{} is a saved plan of format {} ({}); this deployer applies format {SAVED_PLAN_FORMAT_VERSION}: make the plan again",
                path.display(),
                saved.format_version,
                saved.kind
            )));
        }
        Ok(saved)
    }
}

/// What an apply of a saved plan must find under the lock.
#[derive(Debug, Clone)]
pub struct Expected {
    pub file: PathBuf,
    pub state: Option<StateVersion>,
    pub plan: Value,
}

impl From<(&Path, &SavedPlan)> for Expected {
    fn from((file, saved): (&Path, &SavedPlan)) -> Self {
        Self {
            file: file.to_owned(),
            state: saved.state.clone(),
            plan: saved.plan.clone(),
        }
    }
}

impl Expected {
    /// Refuse, before anything is changed, unless the state is the one the
    /// plan was made against and planning again gave the same plan.
    pub fn check(&self, stored: Option<&Stored>, plan: &Plan) -> Result<(), CliError> {
        let file = self.file.display();
        let now = StateVersion::of(stored);
        if now != self.state {
            return Err(CliError::Refused(format!(
                "refusing to apply {file}: the state has moved on since the plan was made \
                 ({} then, {} now); nothing was changed. Make a new plan",
                describe(self.state.as_ref()),
                describe(now.as_ref())
            )));
        }
        if plan_json(plan) != self.plan {
            return Err(CliError::Refused(format!(
                "refusing to apply {file}: planning again now gives a different plan (AWS or the \
                 configuration no longer matches what the plan saw); nothing was changed. The plan now:\n{}",
                crate::engine::render::render(plan)
            )));
        }
        Ok(())
    }
}
