//! `deployer destroy --bootstrap [--auto-approve] [--force]`: remove the shared
//! pieces. Refuses while any environment still has state in the bucket (its
//! resources would be orphaned, and their state lost) unless `--force`.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use serde_json::Value;
use state::{Backend, DynamoDbLock, LocalBackend, S3Store, Stored};

use super::Outcome;
use super::stack_run::{self, Approval, Ending, Prepared, RunOptions, Stack};
use crate::config::{BOOTSTRAP, Config, EnvironmentNames};
use crate::engine::plan::destroy_plan;
use crate::engine::{self, ObservedResource, Resources};
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

/// The bootstrap stack, as `destroy --bootstrap` runs it.
struct BootstrapDestroy<'a> {
    config: &'a Config,
    aws: &'a SdkConfig,
    clients: Clients,
    force: bool,
}

#[async_trait::async_trait]
impl Stack for BootstrapDestroy<'_> {
    async fn prepare(&self) -> Result<Prepared, CliError> {
        let settings = &self.config.settings;
        // Who the deploy role trusts does not matter to deleting it.
        let subjects = bootstrap::github_subjects(settings).unwrap_or_default();
        let resources = bootstrap::resources(settings, &self.clients, &subjects);
        let observed = engine::observe(&resources).await?;
        if observed.first().is_some_and(Option::is_some) {
            let environments: Vec<String> = remote(self.config, self.aws)
                .environments()
                .await
                .map_err(CliError::state(
                    "listing the environments with state in the bucket",
                ))?
                .into_iter()
                .filter(|environment| environment != BOOTSTRAP)
                .collect();
            if !environments.is_empty() && !self.force {
                return Err(CliError::Usage(format!(
                    "refusing to destroy the bootstrap stack: environments {} still have state in s3://{}. \
                     Destroy them first (deployer destroy --env E), or pass --force to delete their state with the bucket \
                     (their AWS resources would stay, unmanaged)",
                    environments.join(", "),
                    settings.state_bucket
                )));
            }
        }
        let desired: Vec<_> = resources
            .iter()
            .map(|resource| resource.desired())
            .collect();
        let plan = destroy_plan(&desired, &observed);
        Ok(Prepared {
            resources,
            observed,
            plan,
        })
    }

    fn outputs(
        &self,
        _resources: &Resources,
        _observed: &[Option<ObservedResource>],
    ) -> BTreeMap<String, Value> {
        BTreeMap::new()
    }

    async fn stored(&self, _prepared: &Prepared) -> Result<Option<Stored>, CliError> {
        Ok(None)
    }

    /// The lock table is among what is destroyed: a local lock file guards the run.
    fn lock_backend(&self, _prepared: &Prepared) -> Backend {
        Backend::Local(LocalBackend::new(self.config.dir.join(".deployer")))
    }

    fn state_backend(&self) -> Backend {
        remote(self.config, self.aws)
    }

    /// The bootstrap's state is in its bucket, which is destroyed with it.
    fn ending(&self) -> Ending {
        Ending::Gone
    }

    fn notes(&self, prepared: &Prepared) -> Vec<String> {
        if prepared.observed.first().is_some_and(Option::is_some) {
            vec![format!(
                "The state bucket {} is emptied first: every object version and delete marker is deleted.\n",
                self.config.settings.state_bucket
            )]
        } else {
            Vec::new()
        }
    }
}

fn remote(config: &Config, aws: &SdkConfig) -> Backend {
    Backend::Remote {
        store: S3Store::new(crate::aws::s3(aws), &config.settings.state_bucket),
        lock: DynamoDbLock::new(crate::aws::dynamodb(aws), &config.settings.lock_table),
    }
}

pub async fn bootstrap(
    config: &Config,
    aws: &SdkConfig,
    options: DestroyBootstrapOptions,
) -> Result<Outcome, CliError> {
    let stack = BootstrapDestroy {
        config,
        aws,
        clients: Clients::connect(aws, &config.settings.region).await?,
        force: options.force,
    };
    let run = RunOptions {
        environment: BOOTSTRAP.into(),
        operation: "destroy",
        command: "deployer destroy --bootstrap".into(),
        lock_timeout: std::time::Duration::ZERO,
        approval: if options.auto_approve {
            Approval::Given
        } else {
            Approval::Ask {
                question: "Do you really want to destroy the bootstrap stack? There is no undo."
                    .into(),
                expected: "yes",
            }
        },
    };
    let ran = stack_run::run(&stack, &run).await?;
    Ok(Outcome::new(
        if ran.plan.has_changes() {
            format!("Destroy complete: {} destroyed.", ran.plan.destroy)
        } else {
            "Nothing to destroy: no bootstrap resource exists.".to_owned()
        },
        0,
    ))
}

/// One environment's stack, as `destroy --env` runs it.
struct EnvironmentDestroy<'a> {
    config: &'a Config,
    clients: Clients,
    names: EnvironmentNames,
    backend: &'a Backend,
}

#[async_trait::async_trait]
impl Stack for EnvironmentDestroy<'_> {
    async fn prepare(&self) -> Result<Prepared, CliError> {
        let api_id = crate::resources::http_api::find_api(&self.clients, &self.names.http_api)
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
        let resources = crate::stacks::environment::resources(
            &self.config.settings,
            &self.names,
            &self.clients,
            inputs,
        );
        let observed = engine::observe(&resources).await?;
        let desired: Vec<_> = resources
            .iter()
            .map(|resource| resource.desired())
            .collect();
        let plan = destroy_plan(&desired, &observed);
        Ok(Prepared {
            resources,
            observed,
            plan,
        })
    }

    fn outputs(
        &self,
        _resources: &Resources,
        _observed: &[Option<ObservedResource>],
    ) -> BTreeMap<String, Value> {
        BTreeMap::new()
    }

    async fn stored(&self, _prepared: &Prepared) -> Result<Option<Stored>, CliError> {
        let environment = &self.names.environment;
        self.backend
            .read(environment)
            .await
            .map_err(CliError::state(format!(
                "reading the state of {environment}"
            )))
    }

    fn lock_backend(&self, _prepared: &Prepared) -> Backend {
        self.backend.clone()
    }

    fn state_backend(&self) -> Backend {
        self.backend.clone()
    }

    fn ending(&self) -> Ending {
        Ending::Remove
    }

    fn notes(&self, prepared: &Prepared) -> Vec<String> {
        prepared
            .observed
            .first()
            .and_then(Option::as_ref)
            .and_then(|table| table.attributes.get("item_count"))
            .map(|items| {
                format!(
                    "The table {} holds {items} items (as DynamoDB last counted them); they will be deleted.\n",
                    self.names.table
                )
            })
            .into_iter()
            .collect()
    }
}

/// `deployer destroy --env E`: everything of one environment, in reverse
/// dependency order (the permission before the function, policies detached
/// before the role), then its state. Other environments and the bootstrap stack
/// are not touched. `prod` must be confirmed by typing its name.
pub async fn environment(
    config: &Config,
    aws: &SdkConfig,
    backend: &Backend,
    environment: &str,
    auto_approve: bool,
) -> Result<Outcome, CliError> {
    let names = crate::config::validate_environment(environment, &config.settings)?;
    let stack = EnvironmentDestroy {
        config,
        clients: Clients::connect(aws, &config.settings.region).await?,
        names,
        backend,
    };
    let expected = if environment == "prod" { "prod" } else { "yes" };
    let run = RunOptions {
        environment: environment.to_owned(),
        operation: "destroy",
        command: format!("deployer destroy --env {environment}"),
        lock_timeout: std::time::Duration::ZERO,
        approval: if auto_approve {
            Approval::Given
        } else {
            Approval::Ask {
                question: format!(
                    "Do you really want to destroy environment {environment}? There is no undo."
                ),
                expected,
            }
        },
    };
    let ran = stack_run::run(&stack, &run).await?;
    Ok(Outcome::new(
        if ran.plan.has_changes() {
            format!("Destroy complete: {} destroyed.", ran.plan.destroy)
        } else {
            format!("Nothing to destroy: no resource of {environment} exists.")
        },
        0,
    ))
}
