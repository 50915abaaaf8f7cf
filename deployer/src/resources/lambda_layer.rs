//! The optional Lambda layer `<prefix>-<env>-extra` (`use_layer`), published
//! from `layer_zip_path`. Layer versions are immutable: the resource is the
//! layer's latest version, and a change (new zip, other architecture) publishes
//! the next version, which the function then points to. Older versions are left
//! in place until the environment is destroyed, which deletes every version.

use super::Clients;
use crate::engine::Doing;
use crate::engine::{
    AttributeChange, AttributeSet, DesiredResource, EngineError, ObservedResource, Resource,
};
use crate::package::{Architecture, Code, RUNTIME};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{LayerVersionContentInput, Runtime};

crate::attributes! {
    /// What is managed of the layer's latest version; its number is only observed.
    pub struct LayerAttributes, enum LayerAttribute {
        CodeSha256 code_sha256: Option<String>,
        CompatibleArchitectures compatible_architectures: Vec<String>,
        CompatibleRuntimes compatible_runtimes: Vec<String>,
        Version version: Option<i64>,
    }
}

pub const ADDRESS: &str = "lambda_layer.extra";

#[derive(Debug, Clone)]
pub struct LambdaLayer {
    pub clients: Clients,
    pub name: String,
    /// The zip to publish (empty when the layer is only observed, for destroy).
    pub content: Code,
    pub architecture: Architecture,
}

/// One published version of a layer, as Lambda reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerVersion {
    pub arn: String,
    pub version: i64,
    pub code_sha256: String,
    pub architectures: Vec<String>,
    pub runtimes: Vec<String>,
}

fn doing(what: &str, name: &str) -> String {
    format!("{what} Lambda layer {name}")
}

/// Every version number of layer `name`, newest first (none when it does not exist).
pub async fn version_numbers(clients: &Clients, name: &str) -> Result<Vec<i64>, EngineError> {
    let mut numbers = Vec::new();
    let mut pages = clients
        .lambda
        .list_layer_versions()
        .layer_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.doing(|| doing("listing the versions of", name))?;
        numbers.extend(page.layer_versions().iter().map(|item| item.version()));
    }
    numbers.sort_unstable_by(|a, b| b.cmp(a));
    Ok(numbers)
}

/// The newest version of layer `name`, or `None` when it has none.
pub async fn latest_version(
    clients: &Clients,
    name: &str,
) -> Result<Option<LayerVersion>, EngineError> {
    let Some(&newest) = version_numbers(clients, name).await?.first() else {
        return Ok(None);
    };
    let output = clients
        .lambda
        .get_layer_version()
        .layer_name(name)
        .version_number(newest)
        .send()
        .await
        .doing(|| doing(&format!("reading version {newest} of"), name))?;
    Ok(Some(LayerVersion {
        arn: output.layer_version_arn().unwrap_or_default().to_owned(),
        version: output.version(),
        code_sha256: output
            .content()
            .and_then(|content| content.code_sha256())
            .unwrap_or_default()
            .to_owned(),
        architectures: output
            .compatible_architectures()
            .iter()
            .map(|architecture| architecture.as_str().to_owned())
            .collect(),
        runtimes: output
            .compatible_runtimes()
            .iter()
            .map(|runtime| runtime.as_str().to_owned())
            .collect(),
    }))
}

impl LambdaLayer {
    async fn publish(&self) -> Result<(), EngineError> {
        self.clients
            .lambda
            .publish_layer_version()
            .layer_name(&self.name)
            .description("Extra files for the playground API, from layer_zip_path")
            .content(
                LayerVersionContentInput::builder()
                    .zip_file(Blob::new(self.content.zip.clone()))
                    .build(),
            )
            .compatible_runtimes(Runtime::from(RUNTIME))
            .compatible_architectures(self.architecture.into())
            .send()
            .await
            .doing(|| doing("publishing a version of", &self.name))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Resource for LambdaLayer {
    fn address(&self) -> &str {
        ADDRESS
    }

    fn desired(&self) -> DesiredResource {
        DesiredResource::new(
            self.address(),
            "lambda_layer",
            &self.name,
            LayerAttributes {
                code_sha256: self.content.sha256.clone(),
                compatible_architectures: vec![self.architecture.lambda_name().to_owned()],
                compatible_runtimes: vec![RUNTIME.to_owned()],
                version: None,
            },
        )
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        Ok(latest_version(&self.clients, &self.name)
            .await?
            .map(|version| ObservedResource {
                id: format!("{}:{}", self.name, version.version),
                arn: Some(version.arn),
                attributes: LayerAttributes {
                    code_sha256: Some(version.code_sha256),
                    compatible_architectures: version.architectures,
                    compatible_runtimes: version.runtimes,
                    version: Some(version.version),
                }
                .into_observed(),
                facts: Default::default(),
            }))
    }

    async fn create(&self) -> Result<(), EngineError> {
        self.publish().await
    }

    /// A layer version cannot change: any difference publishes the next one.
    async fn update(
        &self,
        _observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError> {
        for change in changes {
            match LayerAttributes::name_of(change)? {
                LayerAttribute::CodeSha256
                | LayerAttribute::CompatibleArchitectures
                | LayerAttribute::CompatibleRuntimes
                | LayerAttribute::Version => {}
            }
        }
        self.publish().await
    }

    /// Deletes every version, so that no trace of the layer remains.
    async fn delete(&self, _observed: &ObservedResource) -> Result<(), EngineError> {
        for number in version_numbers(&self.clients, &self.name).await? {
            self.clients
                .lambda
                .delete_layer_version()
                .layer_name(&self.name)
                .version_number(number)
                .send()
                .await
                .doing(|| doing(&format!("deleting version {number} of"), &self.name))?;
        }
        Ok(())
    }
}
