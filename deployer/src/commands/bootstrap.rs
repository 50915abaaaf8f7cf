//! `deployer bootstrap [--plan] [--detailed-exitcode] [--json] [--auto-approve]`.
//!
//! Needs no prior state: every resource is found by name and adopted. Once the
//! bucket exists the stack keeps its own state there (`bootstrap`), locked in
//! the bucket's `.tflock` file (and the lock table, as `lock_backend` says), or
//! in a local lock file while the bucket does not exist yet. The lock table is
//! optional: never created unless `lock_backend` uses it, and retired (deleted,
//! a destroy line in the plan) once `lock_backend = "s3"`, only while no lock
//! is held in it.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use serde_json::{Value, json};
use state::{Backend, LocalBackend, Stored};

use super::Outcome;
use super::stack_run::{self, Approval, Ending, Made, Prepared, RunOptions, Stack};
use crate::config::{BOOTSTRAP, Config};
use crate::engine::{self, Action, ObservedResource, Plan, Resources, render::render};
use crate::error::CliError;
use crate::resources::Clients;
use crate::stacks::bootstrap;

/// The flags of `deployer bootstrap`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BootstrapOptions {
    pub plan_only: bool,
    pub detailed_exitcode: bool,
    pub json: bool,
    pub auto_approve: bool,
    pub lock_timeout: std::time::Duration,
}

fn render_plan(plan: &Plan, json: bool) -> String {
    if json {
        super::to_json(plan)
    } else {
        render(plan)
    }
}

fn render_outputs(outputs: &BTreeMap<String, Value>) -> String {
    let mut lines = vec!["Outputs:".to_owned()];
    for (name, value) in outputs {
        lines.push(format!(
            "  {name} = {}",
            value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned)
        ));
    }
    lines.push(String::new());
    lines.push(
        "Store deploy_role_arn as the AWS_ROLE_TO_ASSUME secret of the GitHub repository \
         (Settings > Secrets and variables > Actions), and plan_role_arn as the \
         AWS_PLAN_ROLE_TO_ASSUME secret of the GitHub environment `plan` (no required \
         reviewers), where the deploy workflow plans prod before its reviewers approve. \
         Store preview_role_arn as the AWS_PREVIEW_ROLE_TO_ASSUME secret of the repository \
         (pull requests' previews pr-<number>), and create the GitHub environment \
         `preview-sweep`, kept to the default branch, for the nightly sweeper."
            .to_owned(),
    );
    lines.join("\n")
}

/// The state in the bucket (no lock is taken through it).
fn remote(config: &Config, aws: &SdkConfig) -> Backend {
    crate::state_backend::remote(config, aws, state::LockBackend::S3)
}

/// The bootstrap stack, as `deployer bootstrap` runs it.
struct BootstrapStack<'a> {
    config: &'a Config,
    aws: &'a SdkConfig,
    clients: Clients,
    subjects: Vec<String>,
}

impl BootstrapStack<'_> {
    fn resources(&self) -> Resources {
        bootstrap::resources(&self.config.settings, &self.clients, &self.subjects)
    }
}

/// Whether the stack's resource at `index` (0: the bucket, 1: the lock table) exists.
fn exists(prepared: &Prepared, index: usize) -> bool {
    prepared.observed.get(index).is_some_and(Option::is_some)
}

/// Whether `plan` deletes the lock table (`lock_backend = "s3"` retires it).
fn retires_lock_table(plan: &Plan) -> bool {
    plan.resources.iter().any(|planned| {
        planned.address == crate::resources::dynamodb_lock_table::ADDRESS
            && planned.action == Action::Delete
    })
}

/// What the plan says of a retired lock table.
fn retire_notes(config: &Config, plan: &Plan) -> Vec<String> {
    if !retires_lock_table(plan) {
        return Vec::new();
    }
    vec![format!(
        "the lock table {} is retired because lock_backend = \"s3\": it is deleted even if \
         it was adopted (found rather than created), since retiring it is an explicit request; \
         apply refuses, changing nothing, while a lock is held in it",
        config.settings.lock_table
    )]
}

#[async_trait::async_trait]
impl Stack for BootstrapStack<'_> {
    async fn prepare(&self) -> Result<Prepared, CliError> {
        let resources = self.resources();
        let (plan, observed) = engine::plan_stack(&resources).await?;
        Ok(Prepared {
            resources,
            observed,
            plan,
            notices: Vec::new(),
            kept: Vec::new(),
            release: None,
            unplanned: Vec::new(),
        })
    }

    fn outputs(
        &self,
        _resources: &Resources,
        _observed: &[Option<ObservedResource>],
    ) -> BTreeMap<String, Value> {
        bootstrap::outputs(&self.config.settings, &self.clients, &self.subjects)
    }

    /// The stack keeps its state in its own bucket, once the bucket exists.
    async fn stored(&self, prepared: &Prepared) -> Result<Option<Stored>, CliError> {
        if !exists(prepared, 0) {
            return Ok(None);
        }
        remote(self.config, self.aws)
            .read(BOOTSTRAP)
            .await
            .map_err(CliError::state("reading the bootstrap state"))
    }

    /// In the bucket (and the lock table, as `lock_backend` says) once they
    /// exist, in a local lock file until then.
    fn lock_backend(&self, prepared: &Prepared) -> Backend {
        let table = exists(prepared, 1);
        let lock_backend = self
            .config
            .settings
            .lock_backend
            .unwrap_or(state::LockBackend::default_for(table));
        if exists(prepared, 0) && (table || !lock_backend.uses_dynamodb()) {
            crate::state_backend::remote(self.config, self.aws, lock_backend)
        } else {
            Backend::Local(LocalBackend::new(self.config.dir.join(".deployer")))
        }
    }

    fn state_backend(&self) -> Backend {
        remote(self.config, self.aws)
    }

    fn ending(&self, _prepared: &Prepared) -> Ending {
        Ending::Record
    }

    fn notes(&self, prepared: &Prepared) -> Vec<String> {
        retire_notes(self.config, &prepared.plan)
    }

    /// A lock table is retired only while no lock is held in it: a run that
    /// still locks there (`lock_backend` dynamodb or both, or Terraform)
    /// would otherwise lose its lock.
    async fn before_apply(
        &self,
        prepared: &Prepared,
        _stored: Option<&Stored>,
    ) -> Result<Vec<Made>, CliError> {
        if !retires_lock_table(&prepared.plan) {
            return Ok(Vec::new());
        }
        let table = &self.config.settings.lock_table;
        let held = state::DynamoDbLock::new(crate::aws::dynamodb(self.aws), table)
            .held_locks()
            .await
            .map_err(CliError::state(format!(
                "checking that no lock is held in the lock table {table} before deleting it"
            )))?;
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let holders: Vec<String> = held
            .iter()
            .map(|(lock_id, info)| {
                format!("{lock_id}: held by {} (ID {})", info.describe(), info.id)
            })
            .collect();
        Err(CliError::Refused(format!(
            "not retiring the lock table {table}: a lock is held in it ({}). Nothing was changed. \
             Let that run finish (or remove a lock left behind with `deployer force-unlock`), \
             then rerun `deployer bootstrap`",
            holders.join("; ")
        )))
    }
}

pub async fn run(
    config: &Config,
    aws: &SdkConfig,
    options: BootstrapOptions,
) -> Result<Outcome, CliError> {
    let subjects = bootstrap::github_subjects(&config.settings)?;
    let clients = Clients::connect(aws, &config.settings.region).await?;
    let stack = BootstrapStack {
        config,
        aws,
        clients,
        subjects,
    };
    if options.plan_only {
        let prepared = stack.prepare().await?;
        let changes_exit = if options.detailed_exitcode && prepared.plan.has_changes() {
            2
        } else {
            0
        };
        let mut text = render_plan(&prepared.plan, options.json);
        if !options.json {
            for note in retire_notes(config, &prepared.plan) {
                text.push_str(&format!("\nNote: {note}\n"));
            }
        }
        return Ok(Outcome::new(text, changes_exit));
    }
    let run = RunOptions {
        saved: None,
        environment: BOOTSTRAP.into(),
        operation: "bootstrap",
        command: "deployer bootstrap".into(),
        lock_timeout: options.lock_timeout,
        lock_lease: config.settings.lock_lease(),
        approval: if options.auto_approve {
            Approval::Given
        } else {
            Approval::Ask {
                question: "Do you want to perform these actions?".into(),
                expected: "yes",
            }
        },
    };
    let ran = stack_run::run(&stack, &run).await?;
    let text = if options.json {
        super::to_json(&json!({"plan": ran.plan, "outputs": ran.outputs}))
    } else if !ran.applied {
        format!("{}\n{}", render(&ran.plan), render_outputs(&ran.outputs))
    } else {
        format!(
            "Bootstrap complete: {} added, {} changed, {} destroyed.\n\n{}",
            ran.plan.add,
            ran.plan.change,
            ran.plan.destroy,
            render_outputs(&ran.outputs)
        )
    };
    Ok(Outcome::new(text, 0))
}
