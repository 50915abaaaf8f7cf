//! `deployer bootstrap [--plan] [--detailed-exitcode] [--json] [--auto-approve]`.
//!
//! Needs no prior state: every resource is found by name and adopted. Once the
//! bucket exists the stack keeps its own state there (`bootstrap`), locked in
//! the lock table (or in a local lock file while the table does not exist yet).

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use serde_json::{Value, json};
use state::{Backend, DynamoDbLock, LocalBackend, S3Store, Stored};

use super::Outcome;
use super::stack_run::{self, Approval, Ending, Prepared, RunOptions, Stack};
use crate::config::{BOOTSTRAP, Config};
use crate::engine::{self, ObservedResource, Plan, Resources, render::render};
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
         reviewers), where the deploy workflow plans prod before its reviewers approve."
            .to_owned(),
    );
    lines.join("\n")
}

fn remote(config: &Config, aws: &SdkConfig) -> Backend {
    Backend::Remote {
        store: S3Store::new(crate::aws::s3(aws), &config.settings.state_bucket),
        lock: DynamoDbLock::new(crate::aws::dynamodb(aws), &config.settings.lock_table),
    }
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

    /// In the lock table once it exists, in a local lock file until then.
    fn lock_backend(&self, prepared: &Prepared) -> Backend {
        if exists(prepared, 1) {
            remote(self.config, self.aws)
        } else {
            Backend::Local(LocalBackend::new(self.config.dir.join(".deployer")))
        }
    }

    fn state_backend(&self) -> Backend {
        remote(self.config, self.aws)
    }

    fn ending(&self) -> Ending {
        Ending::Record
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
        return Ok(Outcome::new(
            render_plan(&prepared.plan, options.json),
            changes_exit,
        ));
    }
    let run = RunOptions {
        saved: None,
        environment: BOOTSTRAP.into(),
        operation: "bootstrap",
        command: "deployer bootstrap".into(),
        lock_timeout: options.lock_timeout,
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
