//! The state bucket: versioning on, default encryption AES256, every public
//! access block on, a policy that denies requests without TLS, tags.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, Delete,
    ObjectIdentifier, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging, VersioningConfiguration,
};
use serde_json::{Value, json};

use super::{Clients, tags};
use crate::engine::Doing;
use crate::engine::attributes;
use crate::engine::{
    AttributeChange, AttributeSet, DesiredResource, EngineError, ObservedResource, Resource, Rule,
    Tags,
};

crate::attributes! {
    /// What is managed of the state bucket.
    pub struct BucketAttributes, enum BucketAttribute {
        Versioning versioning: String,
        Encryption encryption: Option<String>,
        PublicAccessBlock public_access_block: PublicAccess,
        Policy policy: Value => Rule::Policy,
        Tags tags: Tags,
    }
}

/// A bucket's public access block, each of its four switches.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PublicAccess {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

attributes::serialized_attribute_values!(PublicAccess);

/// The order a new bucket is configured in: public access is blocked first.
const CREATION_ORDER: [BucketAttribute; 5] = [
    BucketAttribute::PublicAccessBlock,
    BucketAttribute::Encryption,
    BucketAttribute::Versioning,
    BucketAttribute::Policy,
    BucketAttribute::Tags,
];

pub const ADDRESS: &str = "s3_bucket.state";

#[derive(Debug, Clone)]
pub struct StateBucket {
    pub clients: Clients,
    pub name: String,
    pub tags: std::collections::BTreeMap<String, String>,
}

impl StateBucket {
    fn arn(&self) -> String {
        format!("arn:aws:s3:::{}", self.name)
    }

    /// Deny every request that does not use TLS.
    pub fn policy(&self) -> Value {
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [self.arn(), format!("{}/*", self.arn())],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}
            }]
        })
    }

    fn public_access_block() -> PublicAccess {
        PublicAccess {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: true,
            restrict_public_buckets: true,
        }
    }

    fn doing(&self, what: &str) -> String {
        format!("{what} of S3 bucket {}", self.name)
    }

    async fn set(&self, attribute: BucketAttribute) -> Result<(), EngineError> {
        let s3 = &self.clients.s3;
        match attribute {
            BucketAttribute::Versioning => {
                s3.put_bucket_versioning()
                    .bucket(&self.name)
                    .versioning_configuration(
                        VersioningConfiguration::builder()
                            .status(BucketVersioningStatus::Enabled)
                            .build(),
                    )
                    .send()
                    .await
                    .doing(|| self.doing("enabling versioning"))?;
            }
            BucketAttribute::Encryption => {
                let default = ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(ServerSideEncryption::Aes256)
                    .build()
                    .map_err(|error| {
                        EngineError::new(self.doing("setting encryption"), error.to_string())
                    })?;
                let configuration = ServerSideEncryptionConfiguration::builder()
                    .rules(
                        ServerSideEncryptionRule::builder()
                            .apply_server_side_encryption_by_default(default)
                            .build(),
                    )
                    .build()
                    .map_err(|error| {
                        EngineError::new(self.doing("setting encryption"), error.to_string())
                    })?;
                s3.put_bucket_encryption()
                    .bucket(&self.name)
                    .server_side_encryption_configuration(configuration)
                    .send()
                    .await
                    .doing(|| self.doing("setting default encryption"))?;
            }
            BucketAttribute::PublicAccessBlock => {
                s3.put_public_access_block()
                    .bucket(&self.name)
                    .public_access_block_configuration(
                        PublicAccessBlockConfiguration::builder()
                            .block_public_acls(true)
                            .ignore_public_acls(true)
                            .block_public_policy(true)
                            .restrict_public_buckets(true)
                            .build(),
                    )
                    .send()
                    .await
                    .doing(|| self.doing("blocking public access"))?;
            }
            BucketAttribute::Policy => {
                s3.put_bucket_policy()
                    .bucket(&self.name)
                    .policy(self.policy().to_string())
                    .send()
                    .await
                    .doing(|| self.doing("setting the bucket policy"))?;
            }
            // S3 replaces the whole tag set: nothing to untag first.
            BucketAttribute::Tags => {
                let mut tagging = Tagging::builder();
                for (key, value) in &self.tags {
                    tagging =
                        tagging.tag_set(Tag::builder().key(key).value(value).build().map_err(
                            |error| EngineError::new(self.doing("tagging"), error.to_string()),
                        )?);
                }
                let tagging = tagging
                    .build()
                    .map_err(|error| EngineError::new(self.doing("tagging"), error.to_string()))?;
                s3.put_bucket_tagging()
                    .bucket(&self.name)
                    .tagging(tagging)
                    .send()
                    .await
                    .doing(|| self.doing("setting the tags"))?;
            }
        }
        Ok(())
    }

    /// Every object version and delete marker under `prefix` (all when `None`),
    /// as (key, version id), following the listing's pages.
    async fn versions(
        &self,
        prefix: Option<&str>,
    ) -> Result<Vec<(String, Option<String>)>, EngineError> {
        let s3 = &self.clients.s3;
        let mut versions = Vec::new();
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let listing = s3
                .list_object_versions()
                .bucket(&self.name)
                .set_prefix(prefix.map(str::to_owned))
                .set_key_marker(key_marker.clone())
                .set_version_id_marker(version_marker.clone())
                .max_keys(1000)
                .send()
                .await
                .doing(|| self.doing("listing object versions"))?;
            versions.extend(
                listing
                    .versions()
                    .iter()
                    .map(|version| (version.key(), version.version_id()))
                    .chain(
                        listing
                            .delete_markers()
                            .iter()
                            .map(|marker| (marker.key(), marker.version_id())),
                    )
                    .filter_map(|(key, version)| {
                        key.map(|key| (key.to_owned(), version.map(str::to_owned)))
                    }),
            );
            if listing.is_truncated() != Some(true) {
                return Ok(versions);
            }
            key_marker = listing.next_key_marker().map(str::to_owned);
            version_marker = listing.next_version_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                return Ok(versions);
            }
        }
    }

    /// The keys of objects that are not the deployer's (outside `deployer/`),
    /// each once, in order.
    pub async fn foreign_keys(&self) -> Result<Vec<String>, EngineError> {
        let mut keys: Vec<String> = self
            .versions(None)
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| !key.starts_with(state::KEY_PREFIX))
            .collect();
        keys.dedup();
        Ok(keys)
    }

    /// Delete every version and delete marker under `prefix` (all when `None`),
    /// in batches of up to 1000. A batch that S3 answers with errors stops the
    /// emptying, naming each key and error code: an emptying never loops on
    /// what it cannot delete.
    pub async fn delete_versions(&self, prefix: Option<&str>) -> Result<usize, EngineError> {
        let versions = self.versions(prefix).await?;
        let action = self.doing("deleting object versions");
        for batch in versions.chunks(1000) {
            let objects = batch
                .iter()
                .map(|(key, version)| {
                    ObjectIdentifier::builder()
                        .key(key)
                        .set_version_id(version.clone())
                        .build()
                        .map_err(|error| EngineError::new(action.clone(), error.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|error| EngineError::new(action.clone(), error.to_string()))?;
            let output = self
                .clients
                .s3
                .delete_objects()
                .bucket(&self.name)
                .delete(delete)
                .send()
                .await
                .doing(|| action.clone())?;
            if !output.errors().is_empty() {
                let failed: Vec<String> = output
                    .errors()
                    .iter()
                    .take(10)
                    .map(|error| {
                        format!(
                            "{} (version {}): {} {}",
                            error.key().unwrap_or("?"),
                            error.version_id().unwrap_or("null"),
                            error.code().unwrap_or("?"),
                            error.message().unwrap_or_default()
                        )
                    })
                    .collect();
                return Err(EngineError::new(
                    action,
                    format!(
                        "{} of {} versions could not be deleted: {}",
                        output.errors().len(),
                        batch.len(),
                        failed.join("; ")
                    ),
                ));
            }
        }
        Ok(versions.len())
    }
}

#[async_trait::async_trait]
impl Resource for StateBucket {
    fn address(&self) -> &str {
        ADDRESS
    }

    fn desired(&self) -> DesiredResource {
        DesiredResource::new(
            self.address(),
            "s3_bucket",
            &self.name,
            BucketAttributes {
                versioning: "Enabled".into(),
                encryption: Some("AES256".to_owned()),
                public_access_block: Self::public_access_block(),
                policy: self.policy(),
                tags: self.tags.clone(),
            },
        )
        .never_replaced("it holds every environment's state")
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        let s3 = &self.clients.s3;
        match s3.head_bucket().bucket(&self.name).send().await {
            Ok(_) => {}
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_not_found()) =>
            {
                return Ok(None);
            }
            Err(error) => return Err(EngineError::sdk(self.doing("reading"), error)),
        }
        let versioning = s3
            .get_bucket_versioning()
            .bucket(&self.name)
            .send()
            .await
            .doing(|| self.doing("reading versioning"))?;
        let versioning = versioning
            .status()
            .map_or("Disabled", |status| status.as_str())
            .to_owned();
        let encryption = match s3.get_bucket_encryption().bucket(&self.name).send().await {
            Ok(output) => output
                .server_side_encryption_configuration()
                .and_then(|configuration| configuration.rules().first())
                .and_then(|rule| rule.apply_server_side_encryption_by_default())
                .map(|default| default.sse_algorithm().as_str().to_owned()),
            Err(error)
                if error.code() == Some("ServerSideEncryptionConfigurationNotFoundError") =>
            {
                None
            }
            Err(error) => return Err(EngineError::sdk(self.doing("reading encryption"), error)),
        };
        let public_access_block = match s3.get_public_access_block().bucket(&self.name).send().await
        {
            Ok(output) => {
                let block = output.public_access_block_configuration();
                PublicAccess {
                    block_public_acls: block.and_then(|b| b.block_public_acls()).unwrap_or(false),
                    ignore_public_acls: block.and_then(|b| b.ignore_public_acls()).unwrap_or(false),
                    block_public_policy: block
                        .and_then(|b| b.block_public_policy())
                        .unwrap_or(false),
                    restrict_public_buckets: block
                        .and_then(|b| b.restrict_public_buckets())
                        .unwrap_or(false),
                }
            }
            Err(error) if error.code() == Some("NoSuchPublicAccessBlockConfiguration") => {
                PublicAccess::default()
            }
            Err(error) => {
                return Err(EngineError::sdk(
                    self.doing("reading the public access block"),
                    error,
                ));
            }
        };
        let policy = match s3.get_bucket_policy().bucket(&self.name).send().await {
            Ok(output) => output
                .policy()
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or(Value::Null),
            Err(error) if error.code() == Some("NoSuchBucketPolicy") => Value::Null,
            Err(error) => {
                return Err(EngineError::sdk(
                    self.doing("reading the bucket policy"),
                    error,
                ));
            }
        };
        let tags = match s3.get_bucket_tagging().bucket(&self.name).send().await {
            Ok(output) => {
                tags::observed(output.tag_set().iter().map(|tag| (tag.key(), tag.value())))
            }
            Err(error) if error.code() == Some("NoSuchTagSet") => Tags::new(),
            Err(error) => return Err(EngineError::sdk(self.doing("reading the tags"), error)),
        };
        Ok(Some(ObservedResource {
            id: self.name.clone(),
            arn: Some(self.arn()),
            attributes: BucketAttributes {
                versioning,
                encryption,
                public_access_block,
                policy,
                tags,
            }
            .into_observed(),
            facts: Default::default(),
        }))
    }

    async fn create(&self) -> Result<(), EngineError> {
        let mut request = self.clients.s3.create_bucket().bucket(&self.name);
        if self.clients.region != "us-east-1" {
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(
                        self.clients.region.as_str(),
                    ))
                    .build(),
            );
        }
        request
            .send()
            .await
            .doing(|| format!("creating S3 bucket {}", self.name))?;
        for attribute in CREATION_ORDER {
            self.set(attribute).await?;
        }
        Ok(())
    }

    async fn update(
        &self,
        _observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError> {
        for change in changes {
            self.set(BucketAttributes::name_of(change)?).await?;
        }
        Ok(())
    }

    async fn delete(&self, _observed: &ObservedResource) -> Result<(), EngineError> {
        self.delete_versions(None).await?;
        self.clients
            .s3
            .delete_bucket()
            .bucket(&self.name)
            .send()
            .await
            .doing(|| format!("deleting S3 bucket {}", self.name))?;
        Ok(())
    }
}
