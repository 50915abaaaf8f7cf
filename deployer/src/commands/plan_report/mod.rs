//! `deployer plan-report`: JSON plans (as `deployer plan --env E --json`
//! prints them, one file per environment) rendered for GitHub: the pull
//! request's comment, the job summary, or a drift issue's body. It reads
//! files and makes no AWS call, so each environment is planned in its own
//! step (with its own credentials and exit code) and the report combines
//! them; a file that holds no plan (its plan failed) is reported as such.

pub mod markdown;

use std::path::{Path, PathBuf};

use super::Outcome;
use super::saved_plan::{PLAN_FORMAT_VERSION, PlanDocument};
use crate::engine::Plan;
use crate::error::CliError;
use markdown::{Context, EnvironmentPlan, GITHUB_LIMIT, PlanOutcome};

/// What to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The pull request's comment: summary, then each plan collapsed; under
    /// GitHub's limit.
    GithubComment,
    /// The job summary: summary, then every plan whole.
    JobSummary,
    /// The body of one environment's drift issue (one plan).
    GithubIssue,
}

/// One plan file: the plan, or why it holds none. The environment is the
/// plan's own, else the file's name without its extension.
pub fn read(path: &Path) -> EnvironmentPlan {
    let stem = path.file_stem().map_or_else(
        || path.display().to_string(),
        |stem| stem.to_string_lossy().into_owned(),
    );
    let failed = |reason: String| EnvironmentPlan {
        environment: stem.clone(),
        outcome: PlanOutcome::Failed(reason),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => {
            return failed(format!(
                "{} is empty: the plan failed (see the job log)",
                path.display()
            ));
        }
        Ok(text) => text,
        Err(error) => return failed(format!("{} could not be read: {error}", path.display())),
    };
    match serde_json::from_str::<PlanDocument<Plan>>(&text) {
        Ok(document) if document.format_version != PLAN_FORMAT_VERSION => failed(format!(
            "{} is a plan of format {}; this deployer reads format {PLAN_FORMAT_VERSION}",
            path.display(),
            document.format_version
        )),
        Ok(document) => EnvironmentPlan {
            environment: document.environment.unwrap_or(stem),
            outcome: PlanOutcome::Planned {
                plan: Box::new(document.plan),
                release: document.release,
            },
        },
        Err(error) => failed(format!(
            "{} is not a JSON plan (`deployer plan --env E --json` prints one): {error}",
            path.display()
        )),
    }
}

/// Render `plans` as `format`.
pub fn run(plans: &[PathBuf], format: Format, context: &Context) -> Result<Outcome, CliError> {
    let entries: Vec<EnvironmentPlan> = plans.iter().map(|path| read(path)).collect();
    let text = match format {
        Format::GithubComment => markdown::comment(&entries, context, GITHUB_LIMIT),
        Format::JobSummary => markdown::job_summary(&entries, context),
        Format::GithubIssue => match entries.as_slice() {
            [entry] => markdown::drift_issue(entry, context, GITHUB_LIMIT),
            _ => {
                return Err(CliError::Usage(
                    "--format github-issue renders one environment's plan: give one file".into(),
                ));
            }
        },
    };
    Ok(Outcome::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::drift::Review;

    #[test]
    fn a_json_plan_reads_back_as_the_plan_and_a_failed_one_as_failed() {
        let plan = Plan {
            resources: Vec::new(),
            add: 1,
            change: 2,
            destroy: 0,
            review: Some(Review {
                drift_unknown: vec!["lambda_function.api".into()],
                ..Review::default()
            }),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("whatever.json");
        let document = PlanDocument::new(&plan).about("stage", Some("leave live at 3"));
        std::fs::write(&path, super::super::to_json(&document)).expect("write");
        let read_back = read(&path);
        assert_eq!(read_back.environment, "stage");
        let PlanOutcome::Planned {
            plan: read_plan,
            release,
        } = read_back.outcome
        else {
            panic!("a plan expected: {read_back:?}");
        };
        assert_eq!(*read_plan, plan);
        assert_eq!(release.as_deref(), Some("leave live at 3"));

        let empty = dir.path().join("prod.json");
        std::fs::write(&empty, "").expect("write");
        let failed = read(&empty);
        assert_eq!(failed.environment, "prod");
        assert!(
            matches!(failed.outcome, PlanOutcome::Failed(ref why) if why.contains("the plan failed"))
        );
        assert!(matches!(
            read(&dir.path().join("dev.json")).outcome,
            PlanOutcome::Failed(_)
        ));
    }
}
