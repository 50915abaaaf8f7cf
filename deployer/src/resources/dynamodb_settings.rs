//! What the lock table and the scores table share: reading and setting billing
//! mode, point-in-time recovery and tags of a DynamoDB table.

use super::tags::{self, Taggable};
use crate::engine::Doing;
use crate::engine::{EngineError, Tags};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    BillingMode, PointInTimeRecoverySpecification, TableDescription, Tag,
};

/// `PAY_PER_REQUEST` or `PROVISIONED` (tables created before on-demand existed report none).
pub fn billing_mode(table: &TableDescription) -> String {
    table
        .billing_mode_summary()
        .and_then(|summary| summary.billing_mode())
        .map_or("PROVISIONED", |mode| mode.as_str())
        .to_owned()
}

/// Whether point-in-time recovery is on.
pub async fn point_in_time_recovery(client: &Client, table: &str) -> Result<bool, EngineError> {
    let backups = client
        .describe_continuous_backups()
        .table_name(table)
        .send()
        .await
        .doing(|| format!("reading point-in-time recovery of DynamoDB table {table}"))?;
    Ok(backups
        .continuous_backups_description()
        .and_then(|description| description.point_in_time_recovery_description())
        .and_then(|description| description.point_in_time_recovery_status())
        .is_some_and(|status| status.as_str() == "ENABLED"))
}

pub async fn set_point_in_time_recovery(
    client: &Client,
    table: &str,
    enabled: bool,
) -> Result<(), EngineError> {
    let action = format!("setting point-in-time recovery of DynamoDB table {table}");
    let specification = PointInTimeRecoverySpecification::builder()
        .point_in_time_recovery_enabled(enabled)
        .build()
        .map_err(|error| EngineError::new(action.clone(), error.to_string()))?;
    client
        .update_continuous_backups()
        .table_name(table)
        .point_in_time_recovery_specification(specification)
        .send()
        .await
        .doing(|| action.clone())?;
    Ok(())
}

pub async fn switch_to_on_demand(client: &Client, table: &str) -> Result<(), EngineError> {
    client
        .update_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .doing(|| format!("switching DynamoDB table {table} to on-demand billing"))?;
    Ok(())
}

/// The table's tags.
pub async fn tags(client: &Client, table: &str, arn: &str) -> Result<Tags, EngineError> {
    let output = client
        .list_tags_of_resource()
        .resource_arn(arn)
        .send()
        .await
        .doing(|| format!("reading the tags of DynamoDB table {table}"))?;
    Ok(tags::observed(
        output.tags().iter().map(|tag| (tag.key(), tag.value())),
    ))
}

/// DynamoDB `Tag`s for creating a table.
pub fn tag_list(tags: &Tags, action: &str) -> Result<Vec<Tag>, EngineError> {
    tags.iter()
        .map(|(key, value)| {
            Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|error| EngineError::new(action, error.to_string()))
        })
        .collect()
}

/// A table, as its tags are converged ([`tags::converge`]).
#[derive(Debug)]
pub struct TableTags<'a> {
    pub client: &'a Client,
    pub table: &'a str,
    pub arn: &'a str,
}

#[async_trait::async_trait]
impl Taggable for TableTags<'_> {
    async fn untag(&self, keys: Vec<String>) -> Result<(), EngineError> {
        self.client
            .untag_resource()
            .resource_arn(self.arn)
            .set_tag_keys(Some(keys))
            .send()
            .await
            .doing(|| format!("untagging DynamoDB table {}", self.table))?;
        Ok(())
    }

    async fn tag(&self, tags: &Tags) -> Result<(), EngineError> {
        let action = format!("tagging DynamoDB table {}", self.table);
        self.client
            .tag_resource()
            .resource_arn(self.arn)
            .set_tags(Some(tag_list(tags, &action)?))
            .send()
            .await
            .doing(|| action.clone())?;
        Ok(())
    }
}
