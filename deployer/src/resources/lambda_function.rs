//! The API's Lambda function: `provided.al2023`, handler `bootstrap`, the
//! configured architecture, memory and timeout, the execution role, and the
//! environment the function reads. Code is uploaded only when the artifact's
//! SHA-256 differs from the deployed `CodeSha256`; configuration only when it
//! differs; every change waits until Lambda reports the function ready.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_lambda::client::Waiters;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, Runtime};
use serde_json::{Value, json};

use super::{Clients, removed_tag_keys, tags_from_value, tags_object, tags_value};
use crate::engine::plan::KNOWN_AFTER_APPLY;
use crate::engine::{AttributeChange, DesiredResource, EngineError, ObservedResource, Resource};

pub const ADDRESS: &str = "lambda_function.api";
pub const RUNTIME: &str = "provided.al2023";
pub const HANDLER: &str = "bootstrap";
/// How long a new execution role may take to become assumable by Lambda.
const ROLE_PROPAGATION_ATTEMPTS: u32 = 12;

/// The deployment package: zip bytes and Lambda's `CodeSha256` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub zip: Vec<u8>,
    pub sha256: String,
}

#[derive(Debug, Clone)]
pub struct LambdaFunction {
    pub clients: Clients,
    pub name: String,
    pub role_name: String,
    pub architecture: &'static str,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub environment: BTreeMap<String, String>,
    pub code: Code,
    /// The layer the function runs with (`use_layer`), or none.
    pub layer: Option<FunctionLayer>,
    pub tags: BTreeMap<String, String>,
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

impl LambdaFunction {
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

    fn lambda_architecture(&self) -> Architecture {
        Architecture::from(self.architecture)
    }

    /// The `layers` attribute: the layer version ARN, known after apply when
    /// the plan publishes a new version.
    fn desired_layers(&self) -> Value {
        match &self.layer {
            None => json!([]),
            Some(layer) => json!([layer.planned_arn.as_deref().unwrap_or(KNOWN_AFTER_APPLY)]),
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

    async fn wait_until_updated(&self) -> Result<(), EngineError> {
        self.clients
            .lambda
            .wait_until_function_updated_v2()
            .function_name(&self.name)
            .wait(Duration::from_secs(300))
            .await
            .map_err(|error| {
                EngineError::new(
                    self.doing("waiting for the update of"),
                    state::sdk_error::causes(&error),
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
            .map_err(|error| {
                EngineError::sdk(self.doing("updating the configuration of"), &error)
            })?;
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
            .map_err(|error| EngineError::sdk(self.doing("uploading the code of"), &error))?;
        self.wait_until_updated().await
    }
}

#[async_trait::async_trait]
impl Resource for LambdaFunction {
    fn desired(&self) -> DesiredResource {
        DesiredResource {
            address: ADDRESS.into(),
            kind: "lambda_function",
            name: self.name.clone(),
            attributes: [
                ("runtime".to_owned(), json!(RUNTIME)),
                ("handler".to_owned(), json!(HANDLER)),
                ("architecture".to_owned(), json!(self.architecture)),
                ("memory_mb".to_owned(), json!(self.memory_mb)),
                ("timeout_s".to_owned(), json!(self.timeout_s)),
                ("role".to_owned(), json!(self.role_arn())),
                ("environment".to_owned(), json!(self.environment)),
                ("code_sha256".to_owned(), json!(self.code.sha256)),
                ("layers".to_owned(), self.desired_layers()),
                ("tags".to_owned(), tags_value(&self.tags)),
            ]
            .into(),
            rules: Default::default(),
            depends_on: self.depends_on.clone(),
            never_replace: None,
        }
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        let output = match self
            .clients
            .lambda
            .get_function()
            .function_name(&self.name)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(error) => return Err(EngineError::sdk(self.doing("reading"), &error)),
        };
        let Some(configuration) = output.configuration() else {
            return Ok(None);
        };
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
        let tags: Value = output
            .tags()
            .map(|tags| tags_object(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
            .unwrap_or_else(|| json!({}));
        Ok(Some(ObservedResource {
            id: self.name.clone(),
            arn: configuration.function_arn().map(str::to_owned),
            attributes: [
                (
                    "runtime".to_owned(),
                    json!(configuration.runtime().map(|r| r.as_str())),
                ),
                ("handler".to_owned(), json!(configuration.handler())),
                (
                    "architecture".to_owned(),
                    json!(
                        configuration
                            .architectures()
                            .first()
                            .map_or("x86_64", |a| a.as_str())
                    ),
                ),
                ("memory_mb".to_owned(), json!(configuration.memory_size())),
                ("timeout_s".to_owned(), json!(configuration.timeout())),
                ("role".to_owned(), json!(configuration.role())),
                ("environment".to_owned(), json!(environment)),
                ("code_sha256".to_owned(), json!(configuration.code_sha256())),
                (
                    "layers".to_owned(),
                    json!(
                        configuration
                            .layers()
                            .iter()
                            .filter_map(|layer| layer.arn())
                            .collect::<Vec<_>>()
                    ),
                ),
                ("tags".to_owned(), tags),
            ]
            .into(),
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
                Err(error) => return Err(EngineError::sdk(action, &error)),
            }
        }
        self.clients
            .lambda
            .wait_until_function_active_v2()
            .function_name(&self.name)
            .wait(Duration::from_secs(300))
            .await
            .map_err(|error| {
                EngineError::new(self.doing("waiting for"), state::sdk_error::causes(&error))
            })?;
        Ok(())
    }

    async fn update(
        &self,
        _observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError> {
        let configuration = [
            "runtime",
            "handler",
            "memory_mb",
            "timeout_s",
            "role",
            "environment",
            "layers",
        ];
        if changes
            .iter()
            .any(|change| configuration.contains(&change.name.as_str()))
        {
            self.update_configuration().await?;
        }
        if changes
            .iter()
            .any(|change| change.name == "code_sha256" || change.name == "architecture")
        {
            self.update_code().await?;
        }
        if let Some(change) = changes.iter().find(|change| change.name == "tags") {
            let lambda = &self.clients.lambda;
            let removed = removed_tag_keys(&change.old, &change.new);
            if !removed.is_empty() {
                lambda
                    .untag_resource()
                    .resource(self.arn())
                    .set_tag_keys(Some(removed))
                    .send()
                    .await
                    .map_err(|error| EngineError::sdk(self.doing("untagging"), &error))?;
            }
            lambda
                .tag_resource()
                .resource(self.arn())
                .set_tags(Some(tags_from_value(&change.new).into_iter().collect()))
                .send()
                .await
                .map_err(|error| EngineError::sdk(self.doing("tagging"), &error))?;
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
            .map_err(|error| EngineError::sdk(self.doing("deleting"), &error))?;
        Ok(())
    }
}
