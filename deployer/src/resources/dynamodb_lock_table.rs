//! The lock table: `LockID` (string) hash key, on-demand billing, point-in-time
//! recovery, tags. Terraform's layout, so both tools can share it. The table
//! is optional ([`lock_table_presence`]): wanted while `lock_backend` uses it,
//! kept but never created while the setting is unset, retired (deleted) once
//! it is `s3`.

use super::dynamodb_settings::{self, TableTags};
use super::{Clients, tags};
use crate::engine::Doing;
use crate::engine::{
    AttributeChange, AttributeSet, DesiredResource, EngineError, ObservedResource, Presence,
    Resource, Rule, Tags,
};
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, Tag,
};

crate::attributes! {
    /// What is managed of the lock table.
    pub struct LockTableAttributes, enum LockTableAttribute {
        HashKey hash_key: Option<String> => Rule::ForcesReplacement,
        BillingMode billing_mode: String,
        PointInTimeRecovery point_in_time_recovery: bool,
        Tags tags: Tags,
    }
}

pub const ADDRESS: &str = "dynamodb_table.locks";
const LOCK_ID: &str = "LockID";

#[derive(Debug, Clone)]
pub struct LockTable {
    pub clients: Clients,
    pub name: String,
    pub tags: std::collections::BTreeMap<String, String>,
    pub presence: Presence,
}

/// Whether the stack wants the lock table, from the `lock_backend` setting:
/// `dynamodb` or `both` want it; unset keeps a table that exists (a legacy
/// account: `both` then applies) and creates none; `s3` retires it.
pub fn lock_table_presence(lock_backend: Option<state::LockBackend>) -> Presence {
    match lock_backend {
        None => Presence::KeptIfPresent,
        Some(backend) if backend.uses_dynamodb() => Presence::Wanted,
        Some(_) => Presence::Retired,
    }
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
}

#[async_trait::async_trait]
impl Resource for LockTable {
    fn address(&self) -> &str {
        ADDRESS
    }

    fn desired(&self) -> DesiredResource {
        DesiredResource::new(
            self.address(),
            "dynamodb_table",
            &self.name,
            LockTableAttributes {
                hash_key: Some(format!("{LOCK_ID} (S)")),
                billing_mode: "PAY_PER_REQUEST".into(),
                point_in_time_recovery: true,
                tags: self.tags.clone(),
            },
        )
        .never_replaced("it holds the locks of every environment")
        .with_presence(self.presence)
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        let dynamodb = &self.clients.dynamodb;
        let Some(described) = crate::engine::existing(
            dynamodb
                .describe_table()
                .table_name(&self.name)
                .send()
                .await,
            |error| error.is_resource_not_found_exception(),
            self.doing("describing"),
        )?
        else {
            return Ok(None);
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
        let billing_mode = dynamodb_settings::billing_mode(table);
        let pitr = dynamodb_settings::point_in_time_recovery(dynamodb, &self.name).await?;
        let arn = table.table_arn().map_or_else(|| self.arn(), str::to_owned);
        let tags = dynamodb_settings::tags(dynamodb, &self.name, &arn).await?;
        Ok(Some(ObservedResource {
            id: self.name.clone(),
            arn: Some(arn),
            attributes: LockTableAttributes {
                hash_key,
                billing_mode,
                point_in_time_recovery: pitr,
                tags,
            }
            .into_observed(),
            facts: Default::default(),
        }))
    }

    async fn create(&self) -> Result<(), EngineError> {
        let dynamodb = &self.clients.dynamodb;
        let build_error = |error: aws_sdk_dynamodb::error::BuildError| {
            EngineError::caused_by(format!("creating DynamoDB table {}", self.name), error)
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
        request
            .send()
            .await
            .doing(|| format!("creating DynamoDB table {}", self.name))?;
        dynamodb
            .wait_until_table_exists()
            .table_name(&self.name)
            .wait(std::time::Duration::from_secs(300))
            .await
            .map_err(|error| EngineError::waited(self.doing("waiting for"), error))?;
        dynamodb_settings::set_point_in_time_recovery(dynamodb, &self.name, true).await
    }

    async fn update(
        &self,
        _observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError> {
        let dynamodb = &self.clients.dynamodb;
        for change in changes {
            match LockTableAttributes::name_of(change)? {
                // A new key is a new table: the planner refuses it.
                LockTableAttribute::HashKey => {}
                LockTableAttribute::BillingMode => {
                    dynamodb_settings::switch_to_on_demand(dynamodb, &self.name).await?;
                }
                LockTableAttribute::PointInTimeRecovery => {
                    dynamodb_settings::set_point_in_time_recovery(dynamodb, &self.name, true)
                        .await?;
                }
                LockTableAttribute::Tags => {
                    let table = TableTags {
                        client: dynamodb,
                        table: &self.name,
                        arn: &self.arn(),
                    };
                    tags::converge(&table, &change.old, &self.tags).await?;
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
            .doing(|| format!("deleting DynamoDB table {}", self.name))?;
        Ok(())
    }
}
