//! `deployer bootstrap [--plan] [--detailed-exitcode] [--json] [--auto-approve]`.
//!
//! Needs no prior state: every resource is found by name and adopted. Once the
//! bucket exists the stack keeps its own state there (`bootstrap`), locked in
//! the lock table (or in a local lock file while the table does not exist yet).

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use serde_json::{Value, json};
use state::{Backend, DynamoDbLock, LocalBackend, LockRequest, S3Store};

use super::{Outcome, confirm::confirm, recording};
use crate::config::{BOOTSTRAP, Config};
use crate::engine::{
    self, ObservedResource, Plan, Resources, apply::apply, progress::Progress, render::render,
};
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
         (Settings > Secrets and variables > Actions)."
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

pub async fn run(
    config: &Config,
    aws: &SdkConfig,
    options: BootstrapOptions,
) -> Result<Outcome, CliError> {
    let subjects = bootstrap::github_subjects(&config.settings)?;
    let clients = Clients::connect(aws, &config.settings.region).await?;
    let resources = bootstrap::resources(&config.settings, &clients, &subjects);
    let (plan, observed) = engine::plan_stack(&resources).await?;
    let changes_exit = if options.detailed_exitcode && plan.has_changes() {
        2
    } else {
        0
    };
    if options.plan_only {
        return Ok(Outcome::new(render_plan(&plan, options.json), changes_exit));
    }
    let outputs = bootstrap::outputs(&config.settings, &clients, &subjects);
    let bucket_existed = observed.first().is_some_and(Option::is_some);
    let lock_table_existed = observed.get(1).is_some_and(Option::is_some);
    let existing_state = if bucket_existed {
        remote(config, aws)
            .read(BOOTSTRAP)
            .await
            .map_err(CliError::state("reading the bootstrap state"))?
    } else {
        None
    };
    let recorded = recording::state_resources(&resources, &observed);
    let state_current = existing_state.as_ref().is_some_and(|stored| {
        stored.document.resources == recorded && stored.document.outputs == outputs
    });
    if !plan.has_changes() && state_current {
        // Nothing to do: not even a lock is taken, so a rerun makes no mutating call.
        let text = if options.json {
            super::to_json(&json!({"plan": plan, "outputs": outputs}))
        } else {
            format!("{}\n{}", render(&plan), render_outputs(&outputs))
        };
        return Ok(Outcome::new(text, 0));
    }
    eprint!("{}", render(&plan));
    if plan.has_changes() && !options.auto_approve {
        confirm("Do you want to perform these actions?", "yes")?;
    }

    let lock_backend = if lock_table_existed {
        remote(config, aws)
    } else {
        Backend::Local(LocalBackend::new(config.dir.join(".deployer")))
    };
    let request = LockRequest {
        operation: "bootstrap".into(),
        info: "deployer bootstrap".into(),
        who: super::who(),
        version: env!("CARGO_PKG_VERSION").into(),
        timeout: options.lock_timeout,
        force_unlock_command: "deployer force-unlock --env bootstrap".into(),
    };
    let held = lock_backend
        .lock(BOOTSTRAP, &request)
        .await
        .map_err(CliError::state("locking the bootstrap state"))?;
    let result = tokio::select! {
        result = apply_and_record(config, aws, &resources, &observed, &plan, &outputs) => result,
        _ = tokio::signal::ctrl_c() => Err(CliError::Usage(
            "interrupted: resources finished so far are kept; rerun `deployer bootstrap` to converge".into(),
        )),
    };
    let released = lock_backend
        .unlock(&held)
        .await
        .map_err(CliError::state("releasing the bootstrap lock"));
    result?;
    released?;
    let text = if options.json {
        super::to_json(&json!({"plan": plan, "outputs": outputs}))
    } else {
        format!(
            "Bootstrap complete: {} added, {} changed, {} destroyed.\n\n{}",
            plan.add,
            plan.change,
            plan.destroy,
            render_outputs(&outputs)
        )
    };
    Ok(Outcome::new(text, 0))
}

async fn apply_and_record(
    config: &Config,
    aws: &SdkConfig,
    resources: &Resources,
    observed: &[Option<ObservedResource>],
    plan: &Plan,
    outputs: &BTreeMap<String, Value>,
) -> Result<(), CliError> {
    apply(resources, observed, plan, Progress::new()).await?;
    let now_observed = engine::observe(resources).await?;
    recording::write(
        &remote(config, aws),
        BOOTSTRAP,
        recording::state_resources(resources, &now_observed),
        outputs.clone(),
    )
    .await
}
