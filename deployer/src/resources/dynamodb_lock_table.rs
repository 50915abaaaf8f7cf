//! The lock table: `LockID` (string) hash key, on-demand billing, point-in-time
//! recovery, tags. Terraform's layout, so both tools can share it.

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    ScalarAttributeType, Tag,
};
use serde_json::{Value, json};

use super::{Clients, removed_tag_keys, tags_from_value, tags_value};
use crate::engine::{
    AttributeChange, DesiredResource, EngineError, ObservedResource, Resource, Rule,
};

pub const ADDRESS: &str = "dynamodb_table.locks";
const LOCK_ID: &str = "LockID";

#[derive(Debug, Clone)]
pub struct LockTable {
    pub clients: Clients,
    pub name: String,
    pub tags: std::collections::BTreeMap<String, String>,
}

impl LockTable {
    fn arn(&self) -> String {
        format!(
            "arn:aws:dynamodb:{}:{}:table/{}",
            self.clients.region, self.clients.account_id, self.name
        )
    }

    fn doing(&self, what: &str) -> String {
        format!("{what} DynamoDB table {}", self.name)
    }

    async fn set_pitr(&self, enabled: bool) -> Result<(), EngineError> {
        self.clients
            .dynamodb
            .update_continuous_backups()
            .table_name(&self.name)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(enabled)
                    .build()
                    .map_err(|error| {
                        EngineError::new(
                            self.doing("setting point-in-time recovery of"),
                            error.to_string(),
                        )
                    })?,
            )
            .send()
            .await
            .map_err(|error| {
                EngineError::sdk(self.doing("setting point-in-time recovery of"), &error)
            })?;
        Ok(())
    }

    async fn set_tags(&self, old: &Value, new: &Value) -> Result<(), EngineError> {
        let dynamodb = &self.clients.dynamodb;
        let removed = removed_tag_keys(old, new);
        if !removed.is_empty() {
            dynamodb
                .untag_resource()
                .resource_arn(self.arn())
                .set_tag_keys(Some(removed))
                .send()
                .await
                .map_err(|error| EngineError::sdk(self.doing("untagging"), &error))?;
        }
        let tags = tags_from_value(new);
        if !tags.is_empty() {
            let mut request = dynamodb.tag_resource().resource_arn(self.arn());
            for (key, value) in tags {
                request =
                    request.tags(Tag::builder().key(key).value(value).build().map_err(
                        |error| EngineError::new(self.doing("tagging"), error.to_string()),
                    )?);
            }
            request
                .send()
                .await
                .map_err(|error| EngineError::sdk(self.doing("tagging"), &error))?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Resource for LockTable {
    fn desired(&self) -> DesiredResource {
        DesiredResource {
            address: ADDRESS.into(),
            kind: "dynamodb_table",
            name: self.name.clone(),
            attributes: [
                ("hash_key".to_owned(), json!("LockID (S)")),
                ("billing_mode".to_owned(), json!("PAY_PER_REQUEST")),
                ("point_in_time_recovery".to_owned(), json!(true)),
                ("tags".to_owned(), tags_value(&self.tags)),
            ]
            .into(),
            rules: [("hash_key", Rule::ForcesReplacement)].into(),
            depends_on: Vec::new(),
            never_replace: Some("it holds the locks of every environment"),
        }
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        let dynamodb = &self.clients.dynamodb;
        let described = match dynamodb
            .describe_table()
            .table_name(&self.name)
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
            Err(error) => return Err(EngineError::sdk(self.doing("describing"), &error)),
        };
        let Some(table) = described.table() else {
            return Ok(None);
        };
        let hash_key = table
            .key_schema()
            .iter()
            .find(|key| key.key_type() == &KeyType::Hash)
            .map(|key| {
                let attribute_type = table
                    .attribute_definitions()
                    .iter()
                    .find(|definition| definition.attribute_name() == key.attribute_name())
                    .map_or("?", |definition| definition.attribute_type().as_str());
                format!("{} ({attribute_type})", key.attribute_name())
            });
        let billing_mode = table
            .billing_mode_summary()
            .and_then(|summary| summary.billing_mode())
            .map_or("PROVISIONED", |mode| mode.as_str())
            .to_owned();
        let backups = dynamodb
            .describe_continuous_backups()
            .table_name(&self.name)
            .send()
            .await
            .map_err(|error| {
                EngineError::sdk(self.doing("reading point-in-time recovery of"), &error)
            })?;
        let pitr = backups
            .continuous_backups_description()
            .and_then(|description| description.point_in_time_recovery_description())
            .and_then(|description| description.point_in_time_recovery_status())
            .is_some_and(|status| status.as_str() == "ENABLED");
        let arn = table.table_arn().map_or_else(|| self.arn(), str::to_owned);
        let tags = dynamodb
            .list_tags_of_resource()
            .resource_arn(&arn)
            .send()
            .await
            .map_err(|error| EngineError::sdk(self.doing("reading the tags of"), &error))?;
        let tags = Value::Object(
            tags.tags()
                .iter()
                .map(|tag| (tag.key().to_owned(), Value::String(tag.value().to_owned())))
                .collect(),
        );
        Ok(Some(ObservedResource {
            id: self.name.clone(),
            arn: Some(arn),
            attributes: [
                ("hash_key".to_owned(), json!(hash_key)),
                ("billing_mode".to_owned(), json!(billing_mode)),
                ("point_in_time_recovery".to_owned(), json!(pitr)),
                ("tags".to_owned(), tags),
            ]
            .into(),
        }))
    }

    async fn create(&self) -> Result<(), EngineError> {
        let dynamodb = &self.clients.dynamodb;
        let build_error = |error: aws_sdk_dynamodb::error::BuildError| {
            EngineError::new(
                format!("creating DynamoDB table {}", self.name),
                error.to_string(),
            )
        };
        let mut request = dynamodb
            .create_table()
            .table_name(&self.name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(LOCK_ID)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(build_error)?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(LOCK_ID)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(build_error)?,
            );
        for (key, value) in &self.tags {
            request = request.tags(
                Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(build_error)?,
            );
        }
        request.send().await.map_err(|error| {
            EngineError::sdk(format!("creating DynamoDB table {}", self.name), &error)
        })?;
        dynamodb
            .wait_until_table_exists()
            .table_name(&self.name)
            .wait(std::time::Duration::from_secs(300))
            .await
            .map_err(|error| {
                EngineError::new(self.doing("waiting for"), state::sdk_error::causes(&error))
            })?;
        self.set_pitr(true).await
    }

    async fn update(
        &self,
        _observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError> {
        for change in changes {
            match change.name.as_str() {
                "billing_mode" => {
                    self.clients
                        .dynamodb
                        .update_table()
                        .table_name(&self.name)
                        .billing_mode(BillingMode::PayPerRequest)
                        .send()
                        .await
                        .map_err(|error| {
                            EngineError::sdk(self.doing("switching to on-demand billing"), &error)
                        })?;
                }
                "point_in_time_recovery" => self.set_pitr(change.new == json!(true)).await?,
                "tags" => self.set_tags(&change.old, &change.new).await?,
                other => {
                    return Err(EngineError::new(
                        self.doing("updating"),
                        format!("unknown attribute {other}"),
                    ));
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, _observed: &ObservedResource) -> Result<(), EngineError> {
        self.clients
            .dynamodb
            .delete_table()
            .table_name(&self.name)
            .send()
            .await
            .map_err(|error| {
                EngineError::sdk(format!("deleting DynamoDB table {}", self.name), &error)
            })?;
        Ok(())
    }
}
