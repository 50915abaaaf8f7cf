//! `deployer destroy --bootstrap [--auto-approve] [--force]`: remove the shared
//! pieces. Refuses while any environment still has state in the bucket (its
//! resources would be orphaned, and their state lost) unless `--force`.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use serde_json::Value;
use state::{Backend, LocalBackend, Stored};

use super::Outcome;
use super::stack_run::{self, Approval, Ending, Made, Prepared, RunOptions, Stack, Unplanned};
use crate::config::{BOOTSTRAP, Config, EnvironmentNames};
use crate::engine::plan::destroy_plan;
use crate::engine::{self, DesiredResource, ObservedResource, Resources};
use crate::error::CliError;
use crate::package::Code;
use crate::resources::Clients;
use crate::resources::cognito_user_pool;
use crate::resources::dynamodb_scores_table::{self, ScoresTable};
use crate::resources::s3_state_bucket::{self, StateBucket};
use crate::stacks::bootstrap;
use crate::stacks::environment::{EnvironmentOutput, LayerInput, StackInputs};

/// The flags of `deployer destroy --bootstrap`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DestroyBootstrapOptions {
    pub auto_approve: bool,
    pub force: bool,
}

/// The bootstrap stack, as `destroy --bootstrap` runs it. It keeps what the
/// deployer only adopted (unless `--force`), and the state bucket whenever it
/// holds objects that are not the deployer's.
struct BootstrapDestroy<'a> {
    config: &'a Config,
    aws: &'a SdkConfig,
    clients: Clients,
    force: bool,
}

impl BootstrapDestroy<'_> {
    fn bucket(&self) -> StateBucket {
        StateBucket {
            clients: self.clients.clone(),
            name: self.config.settings.state_bucket.clone(),
            tags: bootstrap::tags(&self.config.settings),
        }
    }
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
                return Err(CliError::Refused(format!(
                    "refusing to destroy the bootstrap stack: environments {} still have state in s3://{}. \
                     Destroy them first (deployer destroy --env E), or pass --force to delete their state with the bucket \
                     (their AWS resources would stay, unmanaged)",
                    environments.join(", "),
                    settings.state_bucket
                )));
            }
        }
        let bucket_exists = observed.first().is_some_and(Option::is_some);
        let stored = if bucket_exists {
            remote(self.config, self.aws)
                .read(BOOTSTRAP)
                .await
                .map_err(CliError::state("reading the bootstrap state"))?
        } else {
            None
        };
        let desired: Vec<_> = resources
            .iter()
            .map(|resource| resource.desired())
            .collect();
        let foreign = if bucket_exists {
            self.bucket().foreign_keys().await?
        } else {
            Vec::new()
        };
        let mut kept = Vec::new();
        let observed: Vec<Option<ObservedResource>> = desired
            .iter()
            .zip(observed)
            .map(|(desired, observed)| {
                let observed = observed?;
                let created = stored
                    .as_ref()
                    .and_then(|stored| stored.document.resources.get(&desired.address))
                    .is_some_and(|recorded| {
                        recorded.id == observed.id && recorded.origin == state::Origin::Created
                    });
                if desired.address == s3_state_bucket::ADDRESS && !foreign.is_empty() {
                    let shown: Vec<&str> = foreign.iter().take(5).map(String::as_str).collect();
                    kept.push(format!(
                        "{} ({}): it holds {} object(s) that are not the deployer's ({}{}); only the deployer's objects are deleted from it",
                        desired.address,
                        desired.name,
                        foreign.len(),
                        shown.join(", "),
                        if foreign.len() > shown.len() { ", ..." } else { "" }
                    ));
                    return None;
                }
                if !created && !self.force {
                    kept.push(format!(
                        "{} ({}): the deployer adopted it, it did not create it (--force deletes it too)",
                        desired.address, desired.name
                    ));
                    return None;
                }
                Some(observed)
            })
            .collect();
        // The bucket is kept but exists: the deployer's own objects are removed from it.
        let clear_bucket = bucket_exists && observed.first().is_some_and(Option::is_none);
        let plan = destroy_plan(&desired, &observed);
        Ok(Prepared {
            resources,
            observed,
            plan,
            notices: Vec::new(),
            kept,
            release: None,
            unplanned: if clear_bucket {
                vec![Unplanned::ClearStateBucket]
            } else {
                Vec::new()
            },
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

    /// A kept bucket loses only the deployer's own objects (`deployer/`), every version.
    async fn before_apply(
        &self,
        prepared: &Prepared,
        _stored: Option<&Stored>,
    ) -> Result<Vec<Made>, CliError> {
        if prepared.unplanned.contains(&Unplanned::ClearStateBucket) {
            let progress = crate::ui::progress();
            let started =
                progress.start(s3_state_bucket::ADDRESS, "deleting the deployer's objects");
            let deleted = self
                .bucket()
                .delete_versions(Some(state::KEY_PREFIX))
                .await?;
            progress.done(
                s3_state_bucket::ADDRESS,
                &format!("deleted {deleted} version(s) of the deployer's objects"),
                started,
            );
        }
        Ok(Vec::new())
    }

    /// The lock table is among what is destroyed: a local lock file guards the run.
    fn lock_backend(&self, _prepared: &Prepared) -> Backend {
        Backend::Local(LocalBackend::new(self.config.dir.join(".deployer")))
    }

    fn state_backend(&self) -> Backend {
        remote(self.config, self.aws)
    }

    /// The bootstrap's state is in its bucket, which is destroyed with it.
    fn ending(&self, _prepared: &Prepared) -> Ending {
        Ending::Gone
    }

    fn notes(&self, prepared: &Prepared) -> Vec<String> {
        let mut notes = Vec::new();
        if prepared.observed.first().is_some_and(Option::is_some) {
            notes.push(format!(
                "The state bucket {} is emptied first: every object version and delete marker is deleted (it holds only the deployer's).",
                self.config.settings.state_bucket
            ));
        }
        if prepared.unplanned.contains(&Unplanned::ClearStateBucket) {
            notes.push(format!(
                "The deployer's objects ({}...) are deleted from the state bucket {}, every version.",
                state::KEY_PREFIX,
                self.config.settings.state_bucket
            ));
        }
        notes.extend(kept_lines(&prepared.kept));
        notes.push(String::new());
        notes
    }
}

/// How a destroy shows what it keeps.
fn kept_lines(kept: &[String]) -> Vec<String> {
    kept.iter().map(|line| format!("Kept: {line}")).collect()
}

/// The state in the bucket (no lock is taken through it).
fn remote(config: &Config, aws: &SdkConfig) -> Backend {
    crate::state_backend::remote(config, aws, state::LockBackend::S3)
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
        saved: None,
        environment: BOOTSTRAP.into(),
        operation: "destroy",
        command: "deployer destroy --bootstrap".into(),
        lock_timeout: std::time::Duration::ZERO,
        lock_lease: config.settings.lock_lease(),
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
    let mut lines = vec![if ran.plan.has_changes() || ran.applied {
        format!("Destroy complete: {} destroyed.", ran.plan.destroy)
    } else {
        "Nothing to destroy: no bootstrap resource the deployer created exists.".to_owned()
    }];
    lines.extend(kept_lines(&ran.kept));
    Ok(Outcome::new(lines.join("\n"), 0))
}

/// One environment's stack, as `destroy --env` runs it: what its state
/// records, found again by name and deleted only when the id matches.
struct EnvironmentDestroy<'a> {
    config: &'a Config,
    clients: Clients,
    names: EnvironmentNames,
    backend: &'a Backend,
    skip_final_backup: bool,
    /// Delete the user pool, and its accounts, too.
    delete_user_accounts: bool,
}

impl EnvironmentDestroy<'_> {
    fn table(&self) -> ScoresTable {
        crate::stacks::environment::scores_table(
            &self.config.settings,
            &self.names,
            &self.clients,
            crate::stacks::environment::TableInputs::default(),
        )
    }

    /// Whether the plan deletes the scores table.
    fn deletes_table(prepared: &Prepared) -> bool {
        prepared
            .plan
            .resources
            .iter()
            .any(|planned| planned.address == dynamodb_scores_table::ADDRESS)
    }

    /// The user pool leaves the plan unless `--delete-user-accounts`: its
    /// accounts have no backup (Cognito exports no passwords), and how many
    /// it holds is only Cognito's estimate, which the deploy role (no
    /// ListUsers) cannot check. An apply adopts the pool again, by name.
    /// Returns what is observed without the pool, and what is said of the
    /// pool kept (the only thing an environment destroy keeps).
    fn keep_pool(
        &self,
        desired: &[DesiredResource],
        mut observed: Vec<Option<ObservedResource>>,
    ) -> (Vec<Option<ObservedResource>>, Vec<String>) {
        if self.delete_user_accounts {
            return (observed, Vec::new());
        }
        let pool = desired
            .iter()
            .position(|desired| desired.address == cognito_user_pool::ADDRESS)
            .and_then(|index| observed.get_mut(index))
            .and_then(Option::take);
        let kept = pool.map(|pool| self.kept_pool(&pool)).into_iter().collect();
        (observed, kept)
    }

    /// What is said of a kept pool, below the plan and at the end (after
    /// "Kept: ").
    fn kept_pool(&self, pool: &ObservedResource) -> String {
        format!(
            "the Cognito user pool {name} ({id}) and its accounts ({accounts}, as Cognito \
             estimates them), which no backup can bring back; the state keeps its record. \
             `deployer apply --env {env}` adopts it again; `deployer destroy --env {env} \
             --delete-user-accounts` deletes it.",
            name = self.names.user_pool,
            id = pool.id,
            accounts = estimated_accounts(pool),
            env = self.names.environment
        )
    }

    /// What happens to the user pool's accounts.
    fn pool_notes(&self, prepared: &Prepared) -> Vec<String> {
        if !prepared.kept.is_empty() {
            return kept_lines(&prepared.kept)
                .into_iter()
                .map(|line| format!("{line}\n"))
                .collect();
        }
        let deleted = prepared
            .plan
            .resources
            .iter()
            .any(|planned| planned.address == cognito_user_pool::ADDRESS);
        let pool = crate::engine::observed_at(
            &prepared.resources,
            &prepared.observed,
            cognito_user_pool::ADDRESS,
        );
        match pool {
            Some(pool) if deleted => vec![format!(
                "The Cognito user pool {} is deleted with its app client, its sign-in \
                 domain and its accounts ({}, as Cognito estimates them), which cannot \
                 be restored; its deletion protection is lifted first.\n",
                self.names.user_pool,
                estimated_accounts(pool)
            )],
            _ => Vec::new(),
        }
    }

    /// What happens to the scores table's items.
    fn table_notes(&self, prepared: &Prepared) -> Vec<String> {
        if !Self::deletes_table(prepared) {
            return Vec::new();
        }
        let table = &self.names.table;
        let items = prepared
            .observed
            .first()
            .and_then(Option::as_ref)
            .and_then(|table| {
                table
                    .facts::<dynamodb_scores_table::ScoresTableFacts>()
                    .item_count
            })
            .map_or_else(|| "?".to_owned(), |items| items.to_string());
        let backup = if self.skip_final_backup {
            format!(
                "  1. no final backup (--skip-final-backup, or final_backup = false): its {items} items are lost, except \
                 what point-in-time recovery keeps, when it is on, in the system backup AWS \
                 retains for 35 days"
            )
        } else {
            format!(
                "  1. a final on-demand backup, {}-final-<time>, waited for until AVAILABLE; if it \
                 fails, nothing is deleted. `deployer restore --env {} --backup <arn>` brings the \
                 table back",
                table, self.names.environment
            )
        };
        vec![
            format!(
                "The table {table} holds {items} items (as DynamoDB last counted them). Before anything is deleted:"
            ),
            backup,
            "  2. its deletion protection is turned off".to_owned(),
            "  then the resources above are destroyed, the table last.\n".to_owned(),
        ]
    }

    fn backup_name(&self) -> String {
        format!(
            "{}-final-{}",
            self.names.table,
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        )
    }
}

#[async_trait::async_trait]
impl Stack for EnvironmentDestroy<'_> {
    async fn prepare(&self) -> Result<Prepared, CliError> {
        let environment = &self.names.environment;
        let stored = self
            .backend
            .read(environment)
            .await
            .map_err(CliError::state(format!(
                "reading the state of {environment}"
            )))?;
        let api_id = crate::resources::http_api::find_api(&self.clients, &self.names.http_api)
            .await?
            .map(|api| api.id);
        let nothing = Code::none;
        // The layer is always looked for: it may remain from when use_layer was on.
        let inputs = StackInputs {
            code: nothing(),
            layer: Some(LayerInput {
                content: nothing(),
                current_arn: None,
            }),
            api_id,
            // Destroy neither scans the table nor touches its indexes.
            table: crate::stacks::environment::TableInputs {
                prune_indexes: false,
                index_keys_backfilled: true,
            },
            release: crate::stacks::environment::ReleaseInputs {
                release: crate::resources::lambda_alias::Release::Undecided,
                releases: Vec::new(),
                pre_traffic_check: false,
            },
            // Looked for when wanted or recorded (it may remain from when
            // auth_create_user_pool was on); otherwise no call is made for it.
            user_pool: (self.config.settings.auth_create_user_pool
                || stored.as_ref().is_some_and(|stored| {
                    stored
                        .document
                        .resources
                        .contains_key(cognito_user_pool::ADDRESS)
                }))
            .then(crate::stacks::environment::UserPoolInputs::default),
        };
        let resources = crate::stacks::environment::resources(
            &self.config.settings,
            &self.names,
            &self.clients,
            inputs,
        );
        let found = engine::observe(&resources).await?;
        let desired: Vec<_> = resources
            .iter()
            .map(|resource| resource.desired())
            .collect();
        let Some(stored) = stored else {
            let by_name: Vec<String> = desired
                .iter()
                .zip(&found)
                .filter(|(_, observed)| observed.is_some())
                .map(|(desired, _)| format!("{} ({})", desired.address, desired.name))
                .collect();
            if by_name.is_empty() {
                return Ok(Prepared {
                    resources,
                    observed: found,
                    plan: destroy_plan(&desired, &[]),
                    notices: Vec::new(),
                    kept: Vec::new(),
                    release: None,
                    unplanned: Vec::new(),
                });
            }
            return Err(CliError::Refused(format!(
                "refusing to destroy {environment}: there is no state for it at {}, so nothing is \
                 recorded as the deployer's. Found by name: {}. If they are this environment's, \
                 `deployer apply --env {environment}` adopts them first (destroy then deletes them); \
                 if not, check --state and the region",
                self.backend.location(environment),
                by_name.join(", ")
            )));
        };
        // Only what the state records, with the id it recorded.
        let observed: Vec<Option<ObservedResource>> = desired
            .iter()
            .zip(found)
            .map(|(desired, observed)| {
                observed.filter(|observed| {
                    stored
                        .document
                        .resources
                        .get(&desired.address)
                        .is_some_and(|recorded| recorded.id == observed.id)
                })
            })
            .collect();
        let (observed, kept) = self.keep_pool(&desired, observed);
        let plan = destroy_plan(&desired, &observed);
        Ok(Prepared {
            resources,
            observed,
            plan,
            notices: Vec::new(),
            kept,
            release: None,
            unplanned: Vec::new(),
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

    fn ending(&self, prepared: &Prepared) -> Ending {
        // A kept pool stays recorded: `--delete-user-accounts` later finds it.
        if !prepared.kept.is_empty() {
            Ending::RemoveAllBut(cognito_user_pool::ADDRESS)
        } else {
            Ending::Remove
        }
    }

    fn notes(&self, prepared: &Prepared) -> Vec<String> {
        let mut notes = self.pool_notes(prepared);
        notes.extend(self.table_notes(prepared));
        notes
    }

    async fn before_apply(
        &self,
        prepared: &Prepared,
        stored: Option<&Stored>,
    ) -> Result<Vec<Made>, CliError> {
        if !Self::deletes_table(prepared) {
            return Ok(Vec::new());
        }
        let table = self.table();
        let mut made = Vec::new();
        if !self.skip_final_backup {
            let progress = crate::ui::progress();
            let started = progress.start(dynamodb_scores_table::ADDRESS, "taking a final backup");
            let arn = table.final_backup(&self.backup_name()).await?;
            progress.done(dynamodb_scores_table::ADDRESS, "backed up", started);
            crate::ui::note(format!("final backup: {arn}"));
            made.push(Made::FinalBackup { arn: arn.clone() });
            // The state history keeps it: this revision stays behind the removal.
            if let Some(stored) = stored {
                let mut outputs = stored.document.outputs.clone();
                EnvironmentOutput::FinalBackupArn.write(&mut outputs, Value::String(arn));
                super::recording::write(
                    self.backend,
                    &self.names.environment,
                    Some(stored),
                    stored.document.resources.clone(),
                    outputs,
                )
                .await?;
            }
        }
        table.set_deletion_protection(false).await?;
        Ok(made)
    }
}

/// Cognito's estimate of how many accounts the observed pool holds, as the
/// notes show it.
fn estimated_accounts(pool: &ObservedResource) -> String {
    pool.facts::<cognito_user_pool::UserPoolFacts>()
        .accounts
        .map_or_else(|| "?".to_owned(), |accounts| accounts.to_string())
}

/// `deployer destroy --env E`: everything its state records, in reverse
/// dependency order (the permission before the function, policies detached
/// before the role, the table last, after a final backup), then its state.
/// Other environments and the bootstrap stack are not touched. `prod` must be
/// confirmed by typing its name.
pub async fn environment(
    config: &Config,
    aws: &SdkConfig,
    backend: &Backend,
    environment: &str,
    options: DestroyEnvironmentOptions,
) -> Result<Outcome, CliError> {
    let names = crate::config::validate_environment(environment, &config.settings)?;
    let stack = EnvironmentDestroy {
        config,
        clients: Clients::connect(aws, &config.settings.region).await?,
        names,
        backend,
        // `final_backup = false` (the previews' layer) is `--skip-final-backup`.
        skip_final_backup: options.skip_final_backup || !config.settings.final_backup,
        delete_user_accounts: options.delete_user_accounts,
    };
    let expected = if environment == "prod" { "prod" } else { "yes" };
    let run = RunOptions {
        saved: None,
        environment: environment.to_owned(),
        operation: "destroy",
        command: format!("deployer destroy --env {environment}"),
        lock_timeout: options.lock_timeout,
        lock_lease: config.settings.lock_lease(),
        approval: if options.auto_approve {
            Approval::Given
        } else {
            Approval::Ask {
                question: format!("Do you really want to destroy environment {environment}?"),
                expected,
            }
        },
    };
    let ran = stack_run::run(&stack, &run).await?;
    let mut text = if ran.plan.has_changes() {
        format!("Destroy complete: {} destroyed.", ran.plan.destroy)
    } else if !ran.kept.is_empty() {
        format!("Nothing to destroy in {environment} but what is kept.")
    } else {
        format!("Nothing to destroy: no resource of {environment} exists.")
    };
    for line in kept_lines(&ran.kept) {
        text.push('\n');
        text.push_str(&line);
    }
    for Made::FinalBackup { arn } in &ran.made {
        text.push_str(&format!(
            "\nFinal backup of {}: {arn}\nRestore it with: deployer restore --env {environment} --backup {arn}",
            stack.names.table
        ));
    }
    Ok(Outcome::new(text, 0))
}

/// The flags of `deployer destroy --env`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DestroyEnvironmentOptions {
    pub auto_approve: bool,
    pub skip_final_backup: bool,
    pub delete_user_accounts: bool,
    pub lock_timeout: std::time::Duration,
}
