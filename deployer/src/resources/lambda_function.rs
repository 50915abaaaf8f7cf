//! The API's Lambda function: `provided.al2023`, handler `bootstrap`, the
//! configured architecture, memory and timeout, the execution role, and the
//! environment the function reads. Code is uploaded only when the artifact's
//! SHA-256 differs from the deployed `CodeSha256`; configuration only when it
//! differs; every change waits until Lambda reports the function ready.
//!
//! This is `$LATEST`, where a release is staged: clients reach the function
//! through its `live` alias, which points at a published version
//! ([`super::lambda_alias`]). When a published version already runs the
//! configured code and configuration, `$LATEST` is not compared at all.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Clients;
use super::tags::{self, Taggable};
use crate::engine::Doing;
use crate::engine::attributes;
use crate::engine::{
    AttributeChange, AttributeSet, DesiredResource, EngineError, ObservedResource, Planned,
    Resource, Tags,
};
use crate::package::{Architecture, Code, RUNTIME};
use aws_sdk_lambda::client::Waiters;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime};

pub const ADDRESS: &str = "lambda_function.api";
pub const HANDLER: &str = "bootstrap";
/// How long a new execution role may take to become assumable by Lambda.
const ROLE_PROPAGATION_ATTEMPTS: u32 = 12;

crate::attributes! {
    /// What is managed of a Lambda function.
    pub struct FunctionAttributes, enum FunctionAttribute {
        Runtime runtime: Option<String>,
        Handler handler: Option<String>,
        Architecture architecture: Option<String>,
        MemoryMb memory_mb: Option<i32>,
        TimeoutS timeout_s: Option<i32>,
        Role role: Option<String>,
        Environment environment: Option<BTreeMap<String, String>>,
        CodeSha256 code_sha256: Option<String>,
        Layers layers: Option<Planned<Vec<String>>>,
        Tags tags: Option<Tags>,
        ReservedConcurrency reserved_concurrency: Option<ReservedConcurrency>,
    }
}

/// `reserved_concurrency` as the plan shows it: a number, or `"none"` (the
/// function draws on the account's unreserved pool).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservedConcurrency(pub Option<u32>);

impl serde::Serialize for ReservedConcurrency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(reserved) => serializer.serialize_u32(reserved),
            None => serializer.serialize_str(UNRESERVED),
        }
    }
}

attributes::serialized_attribute_values!(ReservedConcurrency);

/// How the plan shows a function with no concurrency reserved.
const UNRESERVED: &str = "none";

#[derive(Debug, Clone)]
pub struct LambdaFunction {
    pub clients: Clients,
    pub name: String,
    pub role_name: String,
    pub architecture: Architecture,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub environment: BTreeMap<String, String>,
    pub code: Code,
    /// The layer the function runs with (`use_layer`), or none.
    pub layer: Option<FunctionLayer>,
    pub tags: BTreeMap<String, String>,
    /// Whether `$LATEST`'s code and configuration are compared: not when a
    /// published version already runs them (the alias moves to it instead).
    pub stage_release: bool,
    /// Concurrent executions reserved for the function (and capped at);
    /// `None`: none reserved.
    pub reserved_concurrency: Option<u32>,
    pub depends_on: Vec<String>,
}

/// The layer a function uses: its name, and the version ARN when the plan
/// already knows it (the latest version holds the configured zip). Otherwise
/// the version is published during apply, and its ARN is looked up then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionLayer {
    pub name: String,
    pub planned_arn: Option<String>,
}

impl FunctionAttributes {
    /// Nothing managed: no attribute is compared.
    fn unmanaged() -> Self {
        Self {
            runtime: None,
            handler: None,
            architecture: None,
            memory_mb: None,
            timeout_s: None,
            role: None,
            environment: None,
            code_sha256: None,
            layers: None,
            tags: None,
            reserved_concurrency: None,
        }
    }
}

/// What a function version (or `$LATEST`) runs, as its configuration says;
/// tags are not part of a configuration.
/// The attributes that belong to the function itself, not to a published
/// version: they change without a release.
pub const FUNCTION_LEVEL: &[&str] = &["tags", "reserved_concurrency"];

pub fn attributes_of(
    configuration: &aws_sdk_lambda::types::FunctionConfiguration,
) -> FunctionAttributes {
    let environment: BTreeMap<String, String> = configuration
        .environment()
        .and_then(|environment| environment.variables())
        .map(|variables| {
            variables
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    FunctionAttributes {
        runtime: configuration.runtime().map(|r| r.as_str().to_owned()),
        handler: configuration.handler().map(str::to_owned),
        architecture: Some(
            configuration
                .architectures()
                .first()
                .map_or("x86_64", |a| a.as_str())
                .to_owned(),
        ),
        memory_mb: configuration.memory_size(),
        timeout_s: configuration.timeout(),
        role: configuration.role().map(str::to_owned),
        environment: Some(environment),
        code_sha256: configuration.code_sha256().map(str::to_owned),
        layers: Some(Planned::Known(
            configuration
                .layers()
                .iter()
                .filter_map(|layer| layer.arn().map(str::to_owned))
                .collect(),
        )),
        tags: None,
        reserved_concurrency: None,
    }
}

impl LambdaFunction {
    /// Reserve the configured concurrency, or remove the reservation.
    async fn converge_concurrency(&self) -> Result<(), EngineError> {
        let lambda = &self.clients.lambda;
        match self.reserved_concurrency {
            Some(reserved) => {
                lambda
                    .put_function_concurrency()
                    .function_name(&self.name)
                    .reserved_concurrent_executions(i32::try_from(reserved).unwrap_or(i32::MAX))
                    .send()
                    .await
                    .map_err(|error| {
                        let invalid = error
                            .as_service_error()
                            .is_some_and(|service| service.is_invalid_parameter_value_exception());
                        let mut failure = EngineError::sdk(
                            format!(
                                "reserving {reserved} concurrent executions for Lambda function {}",
                                self.name
                            ),
                            error,
                        );
                        if invalid {
                            failure.detail.push_str(
                                "\n    Lambda keeps at least 100 of the account's concurrency unreserved (new accounts \
                                 may have a quota of only 10): lower reserved_concurrency, set it to 0 to reserve \
                                 none, or ask AWS for a higher concurrency quota",
                            );
                        }
                        failure
                    })?;
            }
            None => {
                lambda
                    .delete_function_concurrency()
                    .function_name(&self.name)
                    .send()
                    .await
                    .doing(|| {
                        format!(
                            "removing the reserved concurrency of Lambda function {}",
                            self.name
                        )
                    })?;
            }
        }
        Ok(())
    }

    /// What a release of this configuration runs: every attribute but tags.
    /// (The alias compares published versions with it.)
    pub fn release_attributes(&self) -> FunctionAttributes {
        FunctionAttributes {
            runtime: Some(RUNTIME.to_owned()),
            handler: Some(HANDLER.to_owned()),
            architecture: Some(self.architecture.lambda_name().to_owned()),
            memory_mb: Some(i32::try_from(self.memory_mb).unwrap_or(i32::MAX)),
            timeout_s: Some(i32::try_from(self.timeout_s).unwrap_or(i32::MAX)),
            role: Some(self.role_arn()),
            environment: Some(self.environment.clone()),
            code_sha256: self.code.sha256.clone(),
            layers: Some(self.desired_layers()),
            tags: None,
            reserved_concurrency: None,
        }
    }

    pub fn arn_of(clients: &Clients, name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            clients.region, clients.account_id
        )
    }

    fn arn(&self) -> String {
        Self::arn_of(&self.clients, &self.name)
    }

    fn role_arn(&self) -> String {
        super::iam_role::Role::arn_of(&self.clients, &self.role_name)
    }

    fn doing(&self, what: &str) -> String {
        format!("{what} Lambda function {}", self.name)
    }

    fn lambda_architecture(&self) -> aws_sdk_lambda::types::Architecture {
        self.architecture.into()
    }

    /// The `layers` attribute: the layer version ARN, known after apply when
    /// the plan publishes a new version.
    fn desired_layers(&self) -> Planned<Vec<String>> {
        match &self.layer {
            None => Planned::Known(Vec::new()),
            Some(layer) => layer
                .planned_arn
                .clone()
                .map_or(Planned::Unknown, |arn| Planned::Known(vec![arn])),
        }
    }

    /// The layer version ARNs to configure, resolving a version published by
    /// this apply (the layer resource runs first).
    async fn layer_arns(&self) -> Result<Vec<String>, EngineError> {
        let Some(layer) = &self.layer else {
            return Ok(Vec::new());
        };
        if let Some(arn) = &layer.planned_arn {
            return Ok(vec![arn.clone()]);
        }
        let latest = super::lambda_layer::latest_version(&self.clients, &layer.name)
            .await?
            .ok_or_else(|| {
                EngineError::new(
                    self.doing("attaching a layer to"),
                    format!("the layer {} has no published version", layer.name),
                )
            })?;
        Ok(vec![latest.arn])
    }

    async fn wait_until_active(&self) -> Result<(), EngineError> {
        self.clients
            .lambda
            .wait_until_function_active_v2()
            .function_name(&self.name)
            .wait(Duration::from_secs(300))
            .await
            .map_err(|error| {
                EngineError::waited(
                    self.doing("waiting (up to 5 min) until Lambda reports Active for"),
                    error,
                )
            })?;
        Ok(())
    }

    async fn wait_until_updated(&self) -> Result<(), EngineError> {
        self.clients
            .lambda
            .wait_until_function_updated_v2()
            .function_name(&self.name)
            .wait(Duration::from_secs(300))
            .await
            .map_err(|error| {
                EngineError::waited(
                    self.doing("waiting (up to 5 min) for the last update to finish of"),
                    error,
                )
            })?;
        Ok(())
    }

    async fn update_configuration(&self) -> Result<(), EngineError> {
        self.clients
            .lambda
            .update_function_configuration()
            .function_name(&self.name)
            .runtime(Runtime::from(RUNTIME))
            .handler(HANDLER)
            .role(self.role_arn())
            .memory_size(i32::try_from(self.memory_mb).unwrap_or(i32::MAX))
            .timeout(i32::try_from(self.timeout_s).unwrap_or(i32::MAX))
            .environment(
                Environment::builder()
                    .set_variables(Some(self.environment.clone().into_iter().collect()))
                    .build(),
            )
            .set_layers(Some(self.layer_arns().await?))
            .send()
            .await
            .doing(|| self.doing("updating the configuration of"))?;
        self.wait_until_updated().await
    }

    async fn update_code(&self) -> Result<(), EngineError> {
        self.clients
            .lambda
            .update_function_code()
            .function_name(&self.name)
            .zip_file(Blob::new(self.code.zip.clone()))
            .architectures(self.lambda_architecture())
            .send()
            .await
            .doing(|| self.doing("uploading the code of"))?;
        self.wait_until_updated().await
    }
}

#[async_trait::async_trait]
impl Taggable for LambdaFunction {
    async fn untag(&self, keys: Vec<String>) -> Result<(), EngineError> {
        self.clients
            .lambda
            .untag_resource()
            .resource(self.arn())
            .set_tag_keys(Some(keys))
            .send()
            .await
            .doing(|| self.doing("untagging"))?;
        Ok(())
    }

    async fn tag(&self, tags: &Tags) -> Result<(), EngineError> {
        self.clients
            .lambda
            .tag_resource()
            .resource(self.arn())
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .doing(|| self.doing("tagging"))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Resource for LambdaFunction {
    fn address(&self) -> &str {
        ADDRESS
    }

    fn desired(&self) -> DesiredResource {
        DesiredResource::new(
            self.address(),
            "lambda_function",
            &self.name,
            FunctionAttributes {
                tags: Some(self.tags.clone()),
                reserved_concurrency: Some(ReservedConcurrency(self.reserved_concurrency)),
                ..if self.stage_release {
                    self.release_attributes()
                } else {
                    FunctionAttributes::unmanaged()
                }
            },
        )
        .depending_on(self.depends_on.clone())
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        let Some(output) = crate::engine::existing(
            self.clients
                .lambda
                .get_function()
                .function_name(&self.name)
                .send()
                .await,
            |error| error.is_resource_not_found_exception(),
            self.doing("reading"),
        )?
        else {
            return Ok(None);
        };
        let Some(configuration) = output.configuration() else {
            return Ok(None);
        };
        let tags = output
            .tags()
            .map(|tags| tags::observed(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
            .unwrap_or_default();
        Ok(Some(ObservedResource {
            id: self.name.clone(),
            arn: configuration.function_arn().map(str::to_owned),
            attributes: FunctionAttributes {
                tags: Some(tags),
                reserved_concurrency: Some(ReservedConcurrency(
                    output
                        .concurrency()
                        .and_then(|concurrency| concurrency.reserved_concurrent_executions())
                        .and_then(|reserved| u32::try_from(reserved).ok()),
                )),
                ..attributes_of(configuration)
            }
            .into_observed(),
            facts: Default::default(),
        }))
    }

    async fn create(&self) -> Result<(), EngineError> {
        let action = format!("creating Lambda function {}", self.name);
        let layers = self.layer_arns().await?;
        let mut attempt = 0;
        loop {
            let result = self
                .clients
                .lambda
                .create_function()
                .function_name(&self.name)
                .runtime(Runtime::from(RUNTIME))
                .handler(HANDLER)
                .role(self.role_arn())
                .architectures(self.lambda_architecture())
                .memory_size(i32::try_from(self.memory_mb).unwrap_or(i32::MAX))
                .timeout(i32::try_from(self.timeout_s).unwrap_or(i32::MAX))
                .environment(
                    Environment::builder()
                        .set_variables(Some(self.environment.clone().into_iter().collect()))
                        .build(),
                )
                .code(
                    FunctionCode::builder()
                        .zip_file(Blob::new(self.code.zip.clone()))
                        .build(),
                )
                .set_layers(Some(layers.clone()))
                .set_tags(Some(self.tags.clone().into_iter().collect()))
                .send()
                .await;
            match result {
                Ok(_) => break,
                // A new IAM role is not assumable by Lambda for several seconds. The
                // API signals it only in the message of InvalidParameterValueException:
                // the one place this code matches on an error message.
                Err(error)
                    if attempt < ROLE_PROPAGATION_ATTEMPTS
                        && error.as_service_error().is_some_and(|service| {
                            service.is_invalid_parameter_value_exception()
                                && aws_sdk_lambda::error::ProvideErrorMetadata::message(service)
                                    .is_some_and(|message| {
                                        message.contains("cannot be assumed by Lambda")
                                    })
                        }) =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt.min(6))))
                        .await;
                }
                Err(error) => return Err(EngineError::sdk(action, error)),
            }
        }
        self.wait_until_active().await?;
        if self.reserved_concurrency.is_some() {
            self.converge_concurrency().await?;
        }
        Ok(())
    }

    async fn update(
        &self,
        _observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError> {
        // A creation or an update started by an earlier run (interrupted, or just
        // finished) may still be under way: Lambda refuses another until it is done.
        self.wait_until_active().await?;
        self.wait_until_updated().await?;
        let (mut configuration, mut code, mut old_tags, mut concurrency) =
            (false, false, None, false);
        for change in changes {
            match FunctionAttributes::name_of(change)? {
                FunctionAttribute::Runtime
                | FunctionAttribute::Handler
                | FunctionAttribute::MemoryMb
                | FunctionAttribute::TimeoutS
                | FunctionAttribute::Role
                | FunctionAttribute::Environment
                | FunctionAttribute::Layers => configuration = true,
                FunctionAttribute::CodeSha256 | FunctionAttribute::Architecture => code = true,
                FunctionAttribute::Tags => old_tags = Some(&change.old),
                FunctionAttribute::ReservedConcurrency => concurrency = true,
            }
        }
        // One configuration update, then one code update: Lambda refuses a
        // second update while the first is in progress, and each waits.
        if configuration {
            self.update_configuration().await?;
        }
        if code {
            self.update_code().await?;
        }
        if let Some(old) = old_tags {
            tags::converge(self, old, &self.tags).await?;
        }
        if concurrency {
            self.converge_concurrency().await?;
        }
        Ok(())
    }

    async fn delete(&self, _observed: &ObservedResource) -> Result<(), EngineError> {
        self.clients
            .lambda
            .delete_function()
            .function_name(&self.name)
            .send()
            .await
            .doing(|| self.doing("deleting"))?;
        Ok(())
    }
}
