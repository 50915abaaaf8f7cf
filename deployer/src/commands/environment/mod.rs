//! `deployer plan --env E` and `deployer apply --env E`: one environment's stack.

pub mod health_check;

use std::path::Path;

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use serde_json::{Value, json};
use state::{Backend, Stored};

use super::Outcome;
use super::stack_run::{self, Approval, Ending, Notice, Prepared, RunOptions, Stack};
use crate::config::{Config, EnvironmentNames, validate_environment};
use crate::engine::{self, AttributeName, ObservedResource, Plan, Resources, render::render};
use crate::error::CliError;
use crate::package::{self, Code};
use crate::resources::Clients;
use crate::resources::cognito_user_pool::{self, find_pool};
use crate::resources::http_api::{self, find_api};
use crate::resources::iam_managed_policy::ManagedPolicy;
use crate::resources::lambda_alias::{self, Release};
use crate::resources::{dynamodb_scores_table, lambda_function, lambda_layer};
use crate::stacks::environment::{self, LayerInput, ReleaseInputs, StackInputs};

/// The flags of `plan --env` and `apply --env`.
#[derive(Debug, Clone)]
pub struct EnvironmentOptions {
    pub environment: String,
    /// The function's code, from [`code`] (checked before any AWS call).
    pub code: Code,
    /// The layer's zip when `use_layer`, from [`layer`] (checked before any AWS call).
    pub layer: Option<Code>,
    pub detailed_exitcode: bool,
    /// `plan --drift-only`: show the drift, and exit 2 only when there is some.
    pub drift_only: bool,
    pub json: bool,
    pub auto_approve: bool,
    pub lock_timeout: std::time::Duration,
    /// After an apply that changed anything, how long to wait for the API's
    /// `/health` to answer 200; `None` skips the check.
    pub health_check_timeout: Option<std::time::Duration>,
    /// Delete table indexes the schema does not know.
    pub prune_indexes: bool,
    /// Invoke a new version before the `live` alias moves to it.
    pub pre_traffic_check: bool,
    /// The `--artifact` path, as given (recorded in a saved plan).
    pub artifact: Option<std::path::PathBuf>,
    /// `plan --out FILE`: where to save the plan.
    pub out: Option<std::path::PathBuf>,
    /// `apply FILE`: the saved plan being applied.
    pub saved: Option<super::saved_plan::Expected>,
}

/// The function's code: the validated `--artifact`, or for a plan without one,
/// a hash shown as known after apply.
pub fn code(config: &Config, artifact: Option<&Path>, for_apply: bool) -> Result<Code, CliError> {
    let architecture = config.settings.architecture;
    match artifact {
        Some(path) => Ok(package::artifact::load(path, architecture)?.into()),
        None if for_apply => {
            Ok(package::from_source::build_function(&config.dir, architecture)?.into())
        }
        // Not compared: plan without an artifact shows everything but the code.
        None => Ok(Code::none()),
    }
}

/// The layer's zip when `use_layer` is on: `layer_zip_path`, relative to the
/// config file's folder, read and checked.
pub fn layer(config: &Config) -> Result<Option<Code>, CliError> {
    match (&config.settings.layer_zip_path, config.settings.use_layer) {
        (Some(path), true) => Ok(Some(package::layer::load(&config.dir.join(path))?)),
        _ => Ok(None),
    }
}

/// One environment's stack, as `plan` and `apply` run it.
struct EnvironmentStack<'a> {
    config: &'a Config,
    clients: Clients,
    names: EnvironmentNames,
    options: &'a EnvironmentOptions,
    backend: Option<&'a Backend>,
}

impl<'a> EnvironmentStack<'a> {
    async fn new(
        config: &'a Config,
        aws: &SdkConfig,
        options: &'a EnvironmentOptions,
        backend: Option<&'a Backend>,
    ) -> Result<Self, CliError> {
        let names = validate_environment(&options.environment, &config.settings)?;
        let clients = Clients::connect(aws, &config.settings.region).await?;
        Ok(Self {
            config,
            clients,
            names,
            options,
            backend,
        })
    }

    async fn stored_state(&self) -> Result<Option<Stored>, CliError> {
        let environment = &self.names.environment;
        self.backend()
            .read(environment)
            .await
            .map_err(CliError::state(format!(
                "reading the state of {environment}"
            )))
    }

    /// The state backend (`plan`, which records nothing, has none: local then).
    fn backend(&self) -> Backend {
        self.backend.cloned().unwrap_or_else(|| {
            Backend::Local(state::LocalBackend::new(self.config.dir.join(".deployer")))
        })
    }
}

impl EnvironmentStack<'_> {
    /// Observe AWS and plan against `stored`, the state as read by the caller
    /// (so a saved plan records the very revision it was made against).
    async fn prepare_against(&self, stored: Option<&Stored>) -> Result<Prepared, CliError> {
        let (config, clients, names, options) =
            (self.config, &self.clients, &self.names, self.options);
        let boundary = ManagedPolicy::arn_of(clients, &config.settings.execution_boundary_name());
        if !ManagedPolicy::exists(clients, &boundary).await? {
            return Err(CliError::Refused(format!(
                "the permissions boundary {boundary}, which every execution role is created with, \
                 does not exist: run `deployer bootstrap` (with administrator credentials) first"
            )));
        }
        let api_id = find_api(clients, &names.http_api).await?.map(|api| api.id);
        let settings = &config.settings;
        let mut notices = Vec::new();
        let user_pool = if settings.auth_create_user_pool {
            Some(environment::UserPoolInputs {
                found: find_pool(clients, &names.user_pool, &names.app_client).await?,
            })
        } else {
            // A pool the state records, from when auth_create_user_pool was on,
            // leaves the stack but not AWS, and stays recorded for destroy: say
            // so. No call is made for it, so a deploy role bootstrapped before
            // user pools existed plans as before.
            let recorded =
                stored.and_then(|stored| stored.document.resources.get(cognito_user_pool::ADDRESS));
            if let Some(pool) = recorded {
                notices.push(Notice::PoolKept {
                    pool: names.user_pool.clone(),
                    id: pool.id.clone(),
                    environment: names.environment.clone(),
                });
            }
            None
        };
        let layer = match &options.layer {
            None => {
                // A layer left from when use_layer was on is not part of the stack:
                // say so, since only destroy removes it.
                let left = lambda_layer::version_numbers(clients, &names.layer).await?;
                if !left.is_empty() {
                    notices.push(Notice::LayerLeft {
                        layer: names.layer.clone(),
                        versions: left.len(),
                        environment: names.environment.clone(),
                    });
                }
                None
            }
            Some(content) => Some(LayerInput {
                content: content.clone(),
                current_arn: None,
            }),
        };
        let table = environment::TableInputs {
            prune_indexes: options.prune_indexes,
            index_keys_backfilled: dynamodb_scores_table::backfill_recorded(
                stored
                    .and_then(|stored| {
                        stored
                            .document
                            .resources
                            .get(dynamodb_scores_table::ADDRESS)
                    })
                    .and_then(|table| {
                        table
                            .attributes
                            .get(dynamodb_scores_table::INDEX_KEYS_BACKFILLED)
                    }),
            ),
        };
        let releases = stored
            .and_then(|stored| stored.document.resources.get(lambda_alias::ADDRESS))
            .map(|alias| lambda_alias::recorded_releases(&alias.attributes))
            .unwrap_or_default();
        let stack = |layer: Option<LayerInput>, release: Release| {
            let inputs = StackInputs {
                code: options.code.clone(),
                layer,
                api_id: api_id.clone(),
                table,
                release: ReleaseInputs {
                    release,
                    releases: releases.clone(),
                    pre_traffic_check: options.pre_traffic_check,
                },
                user_pool: user_pool.clone(),
            };
            environment::resources(&config.settings, names, clients, inputs)
        };
        let resources = stack(layer.clone(), Release::Undecided);
        let (plan, observed) = engine::plan_stack(&resources).await?;
        // When the layer's own plan leaves its latest version as it is, the function
        // can name that version now instead of "known after apply".
        let layer = match unchanged_arn(&plan, &observed, lambda_layer::ADDRESS) {
            Some(current_arn) => layer.map(|layer| LayerInput {
                current_arn: Some(current_arn),
                ..layer
            }),
            None => layer,
        };
        // Which version `live` should point at: one already published that runs
        // what the function should run, or a new one. Planning again is pure:
        // nothing is read twice.
        let wanted = stack(layer.clone(), Release::Undecided)
            .iter()
            .find_map(|resource| {
                let desired = resource.desired();
                (desired.address == lambda_function::ADDRESS).then_some(desired.attributes)
            })
            .unwrap_or_default()
            .into_iter()
            .filter(|(name, _)| !lambda_function::FUNCTION_LEVEL.contains(&name.as_str()))
            .collect();
        let versions = lambda_alias::published_versions(clients, &names.function).await?;
        let current =
            engine::observed_at(&resources, &observed, lambda_alias::ADDRESS).and_then(|alias| {
                alias.attribute::<String>(lambda_alias::AliasAttribute::FunctionVersion)
            });
        let rolled_back = lambda_alias::rolled_back(&releases);
        let release = lambda_alias::decide(&wanted, &versions, current.as_deref(), &rolled_back);
        let release_note = lambda_alias::release_note(&release, current.as_deref());
        let resources = stack(layer, release);
        let desired: Vec<_> = resources
            .iter()
            .map(|resource| resource.desired())
            .collect();
        // Drift and intent, measured from what the state recorded.
        let plan = engine::review::reviewed(
            engine::plan::plan(&desired, &observed).map_err(engine::PlanStackError::from)?,
            &desired,
            &observed,
            &super::recording::recorded_resources(stored),
        );
        Ok(Prepared {
            resources,
            observed,
            plan,
            notices,
            kept: Vec::new(),
            release: release_note,
            unplanned: Vec::new(),
        })
    }
}

#[async_trait::async_trait]
impl Stack for EnvironmentStack<'_> {
    async fn prepare(&self) -> Result<Prepared, CliError> {
        let stored = self.stored_state().await?;
        self.prepare_against(stored.as_ref()).await
    }

    fn outputs(
        &self,
        resources: &Resources,
        observed: &[Option<ObservedResource>],
    ) -> BTreeMap<String, Value> {
        let endpoint = engine::observed_at(resources, observed, http_api::ADDRESS)
            .and_then(|api| api.facts::<http_api::HttpApiFacts>().endpoint);
        let pool = engine::observed_at(resources, observed, cognito_user_pool::ADDRESS);
        let facts = pool.map(ObservedResource::facts::<cognito_user_pool::UserPoolFacts>);
        let domain = pool.and_then(|pool| {
            pool.attribute::<String>(cognito_user_pool::UserPoolAttribute::Domain)
        });
        let sign_in = match (
            facts.as_ref().and_then(|facts| facts.issuer.clone()),
            facts.and_then(|facts| facts.client_id),
            domain,
        ) {
            (Some(issuer), Some(client_id), Some(domain)) => Some(environment::SignInOutputs {
                issuer,
                client_id,
                domain,
            }),
            _ => None,
        };
        environment::outputs(
            &self.config.settings,
            &self.names,
            endpoint.as_deref(),
            sign_in,
        )
    }

    async fn stored(&self, _prepared: &Prepared) -> Result<Option<Stored>, CliError> {
        self.stored_state().await
    }

    fn lock_backend(&self, _prepared: &Prepared) -> Backend {
        self.backend()
    }

    fn state_backend(&self) -> Backend {
        self.backend()
    }

    fn ending(&self, _prepared: &Prepared) -> Ending {
        Ending::Record
    }

    fn notes(&self, prepared: &Prepared) -> Vec<String> {
        let mut notes: Vec<String> = prepared
            .release
            .as_ref()
            .map(|note| format!("Release: {note}.\n"))
            .into_iter()
            .collect();
        notes.extend(index_notes(&self.names, prepared));
        if prepared.plan.has_changes() {
            let settings = &self.config.settings;
            let reads = if settings.allow_public_read {
                " (reads stay open)"
            } else {
                " and every read"
            };
            notes.push(match &settings.auth_issuer {
                None if settings.auth_create_user_pool => format!(
                    "Sign-in: API Gateway verifies JWTs of the environment's own user pool {} on every \
                     write{reads}; the function applies the owner rules. Accounts are created by \
                     admins only (docs/sign-in.md, \"Who may write what\").\n",
                    self.names.user_pool
                ),
                None => "Sign-in: none. The API is open: whoever knows its URL may write any table \
                         and any score (set auth_issuer and auth_audiences, or auth_create_user_pool, \
                         to require a verified JWT; docs/sign-in.md, \"Who may write what\").\n"
                    .to_owned(),
                Some(issuer) => format!(
                    "Sign-in: API Gateway verifies JWTs of {issuer} on every write{reads}; the function \
                     applies the owner rules.\n"
                ),
            });
        }
        notes
    }
}

/// What an index change means for clients, and which indexes are kept.
fn index_notes(names: &EnvironmentNames, prepared: &Prepared) -> Vec<String> {
    use dynamodb_scores_table::IndexStep;
    let Some(index) = prepared
        .resources
        .iter()
        .position(|resource| resource.address() == dynamodb_scores_table::ADDRESS)
    else {
        return Vec::new();
    };
    let observed = prepared.observed.get(index).and_then(Option::as_ref);
    let mut notes = Vec::new();
    if let Some(engine::plan::PlannedResource {
        action: engine::Action::Update(changes),
        ..
    }) = prepared.plan.resources.get(index)
        && let Some(change) = changes.iter().find(|change| {
            change.name
                == dynamodb_scores_table::ScoresTableAttribute::GlobalSecondaryIndexes.name()
        })
    {
        let before = dynamodb_scores_table::indexes_in(&change.old);
        let after: Vec<dynamodb_scores_table::IndexShape> = change
            .new
            .known()
            .map(dynamodb_scores_table::indexes_in)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|index| index.typed().cloned())
            .collect();
        // What apply does, step by step, told in the order of the indexes.
        let steps = dynamodb_scores_table::index_steps(&before, &after);
        let step = |name: &str| steps.iter().find(|step| step.name() == name);
        let items = observed
            .and_then(|table| {
                table
                    .facts::<dynamodb_scores_table::ScoresTableFacts>()
                    .item_count
            })
            .unwrap_or(0);
        for name in before.iter().filter_map(dynamodb_scores_table::Shape::name) {
            let rebuilt = match step(name) {
                Some(IndexStep::Rebuild(_)) => true,
                Some(IndexStep::Remove(_)) => false,
                Some(IndexStep::Add(_)) | None => continue,
            };
            let effect = match (rebuilt, listing_of(name)) {
                (true, Listing::Serves(listing)) => format!(
                    "destroyed and created again (its keys change): until the new one is ACTIVE, {listing} fails"
                ),
                (false, Listing::Serves(listing)) => {
                    format!("destroyed: {listing} fails from then on")
                }
                (true, Listing::RollbackOnly(listing)) => format!(
                    "destroyed and created again (its keys change); the API reads no listing from it now, \
                     but a release rolled back to one from before {} lists {listing} from it, and fails \
                     until the new one is ACTIVE",
                    schema::BY_RANK
                ),
                (false, Listing::RollbackOnly(listing)) => format!(
                    "destroyed; the API reads no listing from it now, but a release rolled back to one \
                     from before {} lists {listing} from it, and fails",
                    schema::BY_RANK
                ),
                (true, Listing::None) => "destroyed and created again (its keys change); the API reads no listing from it".to_owned(),
                (false, Listing::None) => "destroyed; the API reads no listing from it".to_owned(),
            };
            notes.push(format!(
                "Index {name} of {} is {effect}. Building an index backfills all {items} items; \
                 apply waits for it (10 min plus 1 s per 1,000 items at most).",
                names.table
            ));
        }
        for name in after.iter().map(|index| index.name.as_str()) {
            if !matches!(step(name), Some(IndexStep::Add(_))) {
                continue;
            }
            let serves = match listing_of(name) {
                Listing::Serves(listing) => format!(
                    "; {listing} lists from it once it is ACTIVE (apply waits for it, and moves \
                     the function's release after it)"
                ),
                Listing::RollbackOnly(_) | Listing::None => String::new(),
            };
            notes.push(format!(
                "Index {name} is added to {} in place: no item is replaced{serves}. Building it \
                 reads all {items} items; apply waits for it (10 min plus 1 s per 1,000 items at most).",
                names.table
            ));
        }
    }
    if let Some(engine::plan::PlannedResource {
        action: engine::Action::Update(changes),
        ..
    }) = prepared.plan.resources.get(index)
        && let Some(change) = changes.iter().find(|change| {
            change.name == dynamodb_scores_table::ScoresTableAttribute::ItemsMissingIndexKeys.name()
        })
    {
        let missing = change.old.as_i64().unwrap_or(0);
        notes.push(format!(
            "Backfill: {missing} items of {} lack index keys (tables without {}, users without {} \
             or {}). Apply gives each what it lacks, never changing an attribute that exists, and \
             ranks each such user (its {} with its rank entry, bucket and team), one user at a time. \
             No item is replaced.",
            names.table,
            schema::TABLES_PARTITION,
            schema::LEADERBOARD_KEY,
            schema::ranking::RANK_KEY,
            schema::ranking::RANK_KEY,
        ));
    }
    if let Some(facts) =
        observed.map(ObservedResource::facts::<dynamodb_scores_table::ScoresTableFacts>)
    {
        for index in &facts.unknown_indexes {
            notes.push(format!(
                "Kept: index {index} of {}, which the schema does not know; `--prune-indexes` deletes it.",
                names.table
            ));
        }
    }
    notes
}

/// Which listing of the API an index serves.
enum Listing {
    /// The function lists this from it.
    Serves(&'static str),
    /// Still written, so that a release rolled back to one from before
    /// [`schema::BY_RANK`] lists this from it; the function lists nothing
    /// from it now.
    RollbackOnly(&'static str),
    None,
}

fn listing_of(index: &str) -> Listing {
    match index {
        schema::BY_CREATED_AT => Listing::Serves("GET /tables"),
        schema::BY_RANK => Listing::Serves("GET /tables/{tableId}/users"),
        schema::BY_LEADERBOARD => Listing::RollbackOnly("GET /tables/{tableId}/users"),
        _ => Listing::None,
    }
}

/// The ARN of the resource at `address` when the plan leaves it unchanged.
fn unchanged_arn(
    plan: &Plan,
    observed: &[Option<ObservedResource>],
    address: &str,
) -> Option<String> {
    plan.resources
        .iter()
        .zip(observed)
        .find(|(planned, _)| planned.address == address)
        .filter(|(planned, _)| matches!(planned.action, engine::plan::Action::NoOp))
        .and_then(|(_, observed)| observed.as_ref()?.arn.clone())
}

pub async fn plan(
    config: &Config,
    aws: &SdkConfig,
    backend: &Backend,
    options: &EnvironmentOptions,
) -> Result<Outcome, CliError> {
    // A saved plan names the code it was made with.
    let saving = match (&options.out, &options.artifact, &options.code.sha256) {
        (None, _, _) => None,
        (Some(out), Some(artifact), Some(sha256)) => Some((out, artifact, sha256)),
        (Some(_), _, _) => {
            return Err(CliError::Usage(
                "plan --out needs --artifact ZIP: a saved plan records the code it was made with"
                    .into(),
            ));
        }
    };
    let stack = EnvironmentStack::new(config, aws, options, Some(backend)).await?;
    let stored = stack.stored_state().await?;
    let prepared = stack.prepare_against(stored.as_ref()).await?;
    for notice in &prepared.notices {
        crate::ui::note(notice);
    }
    let mut text = if options.json {
        super::to_json(
            &super::saved_plan::PlanDocument::new(&prepared.plan)
                .about(&stack.names.environment, prepared.release.as_deref()),
        )
    } else if options.drift_only {
        let review = prepared.plan.review.clone().unwrap_or_default();
        engine::render::render_drift(&review)
    } else {
        let mut text = render(&prepared.plan);
        for note in stack.notes(&prepared) {
            text.push_str(&note);
            text.push('\n');
        }
        text
    };
    if let Some((out, artifact, sha256)) = saving {
        let saved = super::saved_plan::SavedPlan::new(
            &stack.names.environment,
            stored.as_ref(),
            artifact,
            sha256,
            &prepared.plan,
        );
        saved.write(out)?;
        if !options.json {
            text.push_str(&format!(
                "\nSaved this plan to {out} (state: {state}); `deployer apply {out}` applies exactly it.\n",
                out = out.display(),
                state = saved.state.as_ref().map_or_else(|| "none yet".to_owned(), |state| format!("serial {}", state.serial)),
            ));
        }
    }
    let exit = if (options.detailed_exitcode && prepared.plan.has_changes())
        || (options.drift_only && prepared.plan.has_drift())
    {
        2
    } else {
        0
    };
    Ok(Outcome::new(text, exit))
}

pub async fn apply_environment(
    config: &Config,
    aws: &SdkConfig,
    backend: &Backend,
    options: &EnvironmentOptions,
) -> Result<Outcome, CliError> {
    let stack = EnvironmentStack::new(config, aws, options, Some(backend)).await?;
    let environment = &stack.names.environment;
    let run = RunOptions {
        environment: environment.clone(),
        operation: "apply",
        command: format!("deployer apply --env {environment}"),
        lock_timeout: options.lock_timeout,
        lock_lease: config.settings.lock_lease(),
        saved: options.saved.clone(),
        // Applying a saved plan is the approval of what it shows.
        approval: if options.auto_approve || options.saved.is_some() {
            Approval::Given
        } else {
            Approval::Ask {
                question: "Do you want to perform these actions?".into(),
                expected: "yes",
            }
        },
    };
    let ran = stack_run::run(&stack, &run).await?;
    if !ran.applied {
        return Ok(Outcome::new(
            render_result(&ran.plan, &ran.outputs, options.json, "No changes."),
            0,
        ));
    }
    if let Some(timeout) = options.health_check_timeout {
        check_health(&stack.names, &ran.outputs, timeout).await?;
    }
    let summary = if ran.plan.has_changes() {
        format!(
            "Apply complete: {} added, {} changed, {} destroyed.",
            ran.plan.add, ran.plan.change, ran.plan.destroy
        )
    } else {
        "No changes. The state now records what exists.".to_owned()
    };
    Ok(Outcome::new(
        render_result(&ran.plan, &ran.outputs, options.json, &summary),
        0,
    ))
}

/// Call the API's `/health` through its public URL until it answers 200.
async fn check_health(
    names: &crate::config::EnvironmentNames,
    outputs: &std::collections::BTreeMap<String, serde_json::Value>,
    timeout: std::time::Duration,
) -> Result<(), CliError> {
    let Some(base) = environment::EnvironmentOutput::ApiBaseUrl.read(outputs) else {
        return Ok(());
    };
    let url = format!("{}/health", base.trim_end_matches('/'));
    let progress = crate::ui::progress();
    let started = progress.start("api", &format!("calling GET {url}"));
    match health_check::wait_until_healthy(&url, timeout, |last| {
        progress.note("api", &format!("not serving yet ({last})"));
    })
    .await
    {
        Ok(_) => {
            progress.done("api", "answered 200", started);
            Ok(())
        }
        Err(source) => Err(CliError::ApiNotServing {
            source,
            log_group: names.log_group.clone(),
        }),
    }
}

fn render_result(
    plan: &Plan,
    outputs: &std::collections::BTreeMap<String, serde_json::Value>,
    json: bool,
    summary: &str,
) -> String {
    if json {
        return super::to_json(&json!({"plan": plan, "outputs": outputs}));
    }
    let mut lines = vec![summary.to_owned(), String::new(), "Outputs:".to_owned()];
    for (name, value) in outputs {
        lines.push(format!(
            "  {name} = {}",
            value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned)
        ));
    }
    lines.join("\n")
}
