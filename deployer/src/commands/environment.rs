//! `deployer plan --env E` and `deployer apply --env E`: one environment's stack.

use std::path::Path;

use aws_config::SdkConfig;
use serde_json::json;
use state::{Backend, LockRequest};

use super::{Outcome, confirm::confirm, recording};
use crate::artifact::{self, Machine};
use crate::config::{Architecture, Config, EnvironmentNames, validate_environment};
use crate::engine::{
    self, ObservedResource, Plan, Resources, apply::apply, progress::Progress, render::render,
};
use crate::error::CliError;
use crate::resources::Clients;
use crate::resources::http_api::{self, find_api};
use crate::resources::iam_managed_policy::ManagedPolicy;
use crate::resources::lambda_function::Code;
use crate::resources::lambda_layer;
use crate::stacks::environment::{self, LayerInput, StackInputs};

/// The flags of `plan --env` and `apply --env`.
#[derive(Debug, Clone)]
pub struct EnvironmentOptions {
    pub environment: String,
    /// The function's code, from [`code`] (checked before any AWS call).
    pub code: Code,
    /// The layer's zip when `use_layer`, from [`layer`] (checked before any AWS call).
    pub layer: Option<Code>,
    pub detailed_exitcode: bool,
    pub json: bool,
    pub auto_approve: bool,
    pub lock_timeout: std::time::Duration,
    /// After an apply that changed anything, how long to wait for the API's
    /// `/health` to answer 200; `None` skips the check.
    pub health_check_timeout: Option<std::time::Duration>,
}

fn machine(architecture: Architecture) -> Machine {
    match architecture {
        Architecture::X86_64 => Machine::X86_64,
        Architecture::Arm64 => Machine::Arm64,
    }
}

/// The function's code: the validated `--artifact`, or for a plan without one,
/// a hash shown as known after apply.
pub fn code(config: &Config, artifact: Option<&Path>, for_apply: bool) -> Result<Code, CliError> {
    let machine = machine(config.settings.architecture);
    match artifact {
        Some(path) => {
            let artifact = artifact::load(path, machine)
                .map_err(|error| CliError::Usage(error.to_string()))?;
            Ok(Code {
                zip: artifact.bytes,
                sha256: Some(artifact.code_sha256),
            })
        }
        None if for_apply => {
            let artifact = crate::build::build_function(&config.dir, machine)?;
            Ok(Code {
                zip: artifact.bytes,
                sha256: Some(artifact.code_sha256),
            })
        }
        // Not compared: plan without an artifact shows everything but the code.
        None => Ok(Code {
            zip: Vec::new(),
            sha256: None,
        }),
    }
}

/// The layer's zip when `use_layer` is on: `layer_zip_path`, relative to the
/// config file's folder, read and checked.
pub fn layer(config: &Config) -> Result<Option<Code>, CliError> {
    match (&config.settings.layer_zip_path, config.settings.use_layer) {
        (Some(path), true) => crate::layer_zip::load(&config.dir.join(path))
            .map(Some)
            .map_err(|error| CliError::Usage(error.to_string())),
        _ => Ok(None),
    }
}

struct Prepared {
    names: EnvironmentNames,
    resources: Resources,
    plan: Plan,
    observed: Vec<Option<ObservedResource>>,
}

async fn prepare(
    config: &Config,
    aws: &SdkConfig,
    options: &EnvironmentOptions,
) -> Result<Prepared, CliError> {
    let names = validate_environment(&options.environment, &config.settings)?;
    let clients = Clients::connect(aws, &config.settings.region).await?;
    let boundary = ManagedPolicy::arn_of(&clients, &config.settings.execution_boundary_name());
    if !ManagedPolicy::exists(&clients, &boundary).await? {
        return Err(CliError::Usage(format!(
            "the permissions boundary {boundary}, which every execution role is created with, \
             does not exist: run `deployer bootstrap` (with administrator credentials) first"
        )));
    }
    let api_id = find_api(&clients, &names.http_api).await?.map(|api| api.id);
    let layer = match &options.layer {
        None => {
            // A layer left from when use_layer was on is not part of the stack:
            // say so, since only destroy removes it.
            let left = lambda_layer::version_numbers(&clients, &names.layer).await?;
            if !left.is_empty() {
                eprintln!(
                    "note: the Lambda layer {layer} still has {count} version(s) from when use_layer was on; \
                     the function does not use it once applied. `deployer destroy --env {environment}` deletes it, \
                     as does `aws lambda delete-layer-version --layer-name {layer} --version-number N` for each version",
                    layer = names.layer,
                    count = left.len(),
                    environment = names.environment,
                );
            }
            None
        }
        Some(content) => Some(LayerInput {
            content: content.clone(),
            current_arn: None,
        }),
    };
    let stack = |layer: Option<LayerInput>| {
        let inputs = StackInputs {
            code: options.code.clone(),
            layer,
            api_id: api_id.clone(),
        };
        environment::resources(&config.settings, &names, &clients, inputs)
    };
    let mut resources = stack(layer.clone());
    let (mut plan, observed) = engine::plan_stack(&resources).await?;
    // When the layer's own plan leaves its latest version as it is, the function
    // can name that version now instead of "known after apply". Planning again
    // is pure: nothing is read twice.
    if let Some(current_arn) = unchanged_arn(&plan, &observed, lambda_layer::ADDRESS) {
        resources = stack(layer.map(|layer| LayerInput {
            current_arn: Some(current_arn),
            ..layer
        }));
        let desired: Vec<_> = resources
            .iter()
            .map(|resource| resource.desired())
            .collect();
        plan = engine::plan::plan(&desired, &observed).map_err(engine::PlanStackError::from)?;
    }
    Ok(Prepared {
        names,
        resources,
        plan,
        observed,
    })
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

fn api_endpoint(resources: &Resources, observed: &[Option<ObservedResource>]) -> Option<String> {
    resources
        .iter()
        .zip(observed)
        .find(|(resource, _)| resource.desired().address == http_api::ADDRESS)
        .and_then(|(_, observed)| observed.as_ref())
        .and_then(|observed| observed.attributes.get("endpoint"))
        .and_then(|endpoint| endpoint.as_str().map(str::to_owned))
}

pub async fn plan(
    config: &Config,
    aws: &SdkConfig,
    options: &EnvironmentOptions,
) -> Result<Outcome, CliError> {
    let prepared = prepare(config, aws, options).await?;
    let text = if options.json {
        super::to_json(&prepared.plan)
    } else {
        render(&prepared.plan)
    };
    let exit = if options.detailed_exitcode && prepared.plan.has_changes() {
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
    let prepared = prepare(config, aws, options).await?;
    let environment = prepared.names.environment.clone();
    let outputs = environment::outputs(
        &prepared.names,
        api_endpoint(&prepared.resources, &prepared.observed).as_deref(),
    );
    let stored = backend
        .read(&environment)
        .await
        .map_err(CliError::state(format!(
            "reading the state of {environment}"
        )))?;
    let recorded = recording::state_resources(&prepared.resources, &prepared.observed);
    if !prepared.plan.has_changes() && recording::is_current(stored.as_ref(), &recorded, &outputs) {
        // Nothing to do: no lock, no write, no mutating call.
        return Ok(Outcome::new(
            render_result(&prepared.plan, &outputs, options.json, "No changes."),
            0,
        ));
    }
    eprint!("{}", render(&prepared.plan));
    if prepared.plan.has_changes() && !options.auto_approve {
        confirm("Do you want to perform these actions?", "yes")?;
    }
    let request = LockRequest {
        operation: "apply".into(),
        info: format!("deployer apply --env {environment}"),
        who: super::who(),
        version: env!("CARGO_PKG_VERSION").into(),
        timeout: options.lock_timeout,
        force_unlock_command: format!("deployer force-unlock --env {environment}"),
    };
    let held = backend
        .lock(&environment, &request)
        .await
        .map_err(CliError::state(format!(
            "locking the state of {environment}"
        )))?;
    let result = tokio::select! {
        result = apply_and_record(backend, &prepared) => result,
        _ = tokio::signal::ctrl_c() => Err(CliError::Usage(format!(
            "interrupted: resources finished so far are kept; rerun `deployer apply --env {environment}` to converge"
        ))),
    };
    let released = backend.unlock(&held).await.map_err(CliError::state(format!(
        "releasing the lock of {environment}"
    )));
    let outputs = result?;
    released?;
    if let Some(timeout) = options.health_check_timeout {
        check_health(&prepared.names, &outputs, timeout).await?;
    }
    let summary = format!(
        "Apply complete: {} added, {} changed, {} destroyed.",
        prepared.plan.add, prepared.plan.change, prepared.plan.destroy
    );
    Ok(Outcome::new(
        render_result(&prepared.plan, &outputs, options.json, &summary),
        0,
    ))
}

async fn apply_and_record(
    backend: &Backend,
    prepared: &Prepared,
) -> Result<std::collections::BTreeMap<String, serde_json::Value>, CliError> {
    apply(
        &prepared.resources,
        &prepared.observed,
        &prepared.plan,
        Progress::new(),
    )
    .await?;
    let observed = engine::observe(&prepared.resources).await?;
    let outputs = environment::outputs(
        &prepared.names,
        api_endpoint(&prepared.resources, &observed).as_deref(),
    );
    recording::write(
        backend,
        &prepared.names.environment,
        recording::state_resources(&prepared.resources, &observed),
        outputs.clone(),
    )
    .await?;
    Ok(outputs)
}

/// Call the API's `/health` through its public URL until it answers 200.
async fn check_health(
    names: &crate::config::EnvironmentNames,
    outputs: &std::collections::BTreeMap<String, serde_json::Value>,
    timeout: std::time::Duration,
) -> Result<(), CliError> {
    let Some(base) = outputs.get("api_base_url").and_then(|url| url.as_str()) else {
        return Ok(());
    };
    let url = format!("{}/health", base.trim_end_matches('/'));
    let progress = Progress::new();
    let started = progress.start("api", &format!("calling GET {url}"));
    match crate::health_check::wait_until_healthy(&url, timeout, |last| {
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
