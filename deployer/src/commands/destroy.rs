//! `deployer destroy --bootstrap [--auto-approve] [--force]`: remove the shared
//! pieces. Refuses while any environment still has state in the bucket (its
//! resources would be orphaned, and their state lost) unless `--force`.

use aws_config::SdkConfig;
use state::S3Store;

use super::Outcome;
use super::confirm::confirm;
use crate::config::{BOOTSTRAP, Config};
use crate::engine::plan::destroy_plan;
use crate::engine::{self, apply::apply, progress::Progress, render::render};
use crate::error::CliError;
use crate::resources::Clients;
use crate::resources::lambda_function::Code;
use crate::stacks::bootstrap;
use crate::stacks::environment::{LayerInput, StackInputs};

/// The flags of `deployer destroy --bootstrap`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DestroyBootstrapOptions {
    pub auto_approve: bool,
    pub force: bool,
}

pub async fn bootstrap(
    config: &Config,
    aws: &SdkConfig,
    options: DestroyBootstrapOptions,
) -> Result<Outcome, CliError> {
    let clients = Clients::connect(aws, &config.settings.region).await?;
    // Who the deploy role trusts does not matter to deleting it.
    let subjects = bootstrap::github_subjects(&config.settings).unwrap_or_default();
    let resources = bootstrap::resources(&config.settings, &clients, &subjects);
    let observed = engine::observe(&resources).await?;
    let bucket_exists = observed.first().is_some_and(Option::is_some);
    if bucket_exists {
        let store = S3Store::new(crate::aws::s3(aws), &config.settings.state_bucket);
        let environments: Vec<String> = state::Backend::Remote {
            store,
            lock: state::DynamoDbLock::new(crate::aws::dynamodb(aws), &config.settings.lock_table),
        }
        .environments()
        .await
        .map_err(CliError::state(
            "listing the environments with state in the bucket",
        ))?
        .into_iter()
        .filter(|environment| environment != BOOTSTRAP)
        .collect();
        if !environments.is_empty() && !options.force {
            return Err(CliError::Usage(format!(
                "refusing to destroy the bootstrap stack: environments {} still have state in s3://{}. \
                 Destroy them first (deployer destroy --env E), or pass --force to delete their state with the bucket \
                 (their AWS resources would stay, unmanaged)",
                environments.join(", "),
                config.settings.state_bucket
            )));
        }
    }
    let desired: Vec<_> = resources
        .iter()
        .map(|resource| resource.desired())
        .collect();
    let plan = destroy_plan(&desired, &observed);
    if !plan.has_changes() {
        return Ok(Outcome::new(
            "Nothing to destroy: no bootstrap resource exists.",
            0,
        ));
    }
    eprint!("{}", render(&plan));
    if bucket_exists {
        eprintln!(
            "The state bucket {} is emptied first: every object version and delete marker is deleted.\n",
            config.settings.state_bucket
        );
    }
    if !options.auto_approve {
        confirm(
            "Do you really want to destroy the bootstrap stack? There is no undo.",
            "yes",
        )?;
    }
    apply(&resources, &observed, &plan, Progress::new()).await?;
    Ok(Outcome::new(
        format!("Destroy complete: {} destroyed.", plan.destroy),
        0,
    ))
}

/// `deployer destroy --env E`: everything of one environment, in reverse
/// dependency order (the permission before the function, policies detached
/// before the role), then its state. Other environments and the bootstrap stack
/// are not touched. `prod` must be confirmed by typing its name.
pub async fn environment(
    config: &Config,
    aws: &SdkConfig,
    backend: &state::Backend,
    environment: &str,
    auto_approve: bool,
) -> Result<Outcome, CliError> {
    let names = crate::config::validate_environment(environment, &config.settings)?;
    let clients = Clients::connect(aws, &config.settings.region).await?;
    let api_id = crate::resources::http_api::find_api(&clients, &names.http_api)
        .await?
        .map(|api| api.id);
    let nothing = || Code {
        zip: Vec::new(),
        sha256: None,
    };
    // The layer is always looked for: it may remain from when use_layer was on.
    let inputs = StackInputs {
        code: nothing(),
        layer: Some(LayerInput {
            content: nothing(),
            current_arn: None,
        }),
        api_id,
    };
    let resources =
        crate::stacks::environment::resources(&config.settings, &names, &clients, inputs);
    let observed = engine::observe(&resources).await?;
    let desired: Vec<_> = resources
        .iter()
        .map(|resource| resource.desired())
        .collect();
    let plan = destroy_plan(&desired, &observed);
    if plan.has_changes() {
        eprint!("{}", render(&plan));
        if let Some(items) = observed
            .first()
            .and_then(Option::as_ref)
            .and_then(|table| table.attributes.get("item_count"))
        {
            eprintln!(
                "The table {} holds {items} items (as DynamoDB last counted them); they will be deleted.\n",
                names.table
            );
        }
        if !auto_approve {
            let expected = if environment == "prod" { "prod" } else { "yes" };
            confirm(
                &format!(
                    "Do you really want to destroy environment {environment}? There is no undo."
                ),
                expected,
            )?;
        }
        let request = state::LockRequest {
            operation: "destroy".into(),
            info: format!("deployer destroy --env {environment}"),
            who: super::who(),
            version: env!("CARGO_PKG_VERSION").into(),
            timeout: std::time::Duration::ZERO,
            force_unlock_command: format!("deployer force-unlock --env {environment}"),
        };
        let held = backend
            .lock(environment, &request)
            .await
            .map_err(CliError::state(format!(
                "locking the state of {environment}"
            )))?;
        let result = apply(&resources, &observed, &plan, Progress::new()).await;
        let released = backend.unlock(&held).await.map_err(CliError::state(format!(
            "releasing the lock of {environment}"
        )));
        result?;
        released?;
    }
    backend
        .remove(environment)
        .await
        .map_err(CliError::state(format!(
            "removing the state of {environment}"
        )))?;
    Ok(Outcome::new(
        if plan.has_changes() {
            format!("Destroy complete: {} destroyed.", plan.destroy)
        } else {
            format!("Nothing to destroy: no resource of {environment} exists.")
        },
        0,
    ))
}
