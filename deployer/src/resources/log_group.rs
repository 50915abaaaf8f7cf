//! A log group with `log_retention_days` and tags, created or adopted: the
//! function's, `/aws/lambda/<function>`, made before the function (Lambda would
//! create it on first invoke, without retention), and the HTTP API's access log,
//! `/aws/apigateway/<api>`, made before the stage that writes to it.

use super::Clients;
use super::tags::{self, Taggable};
use crate::engine::Doing;
use crate::engine::{
    AttributeChange, AttributeSet, DesiredResource, EngineError, ObservedResource, Resource, Tags,
};

pub const ADDRESS: &str = "log_group.function";
pub const ACCESS_LOG_ADDRESS: &str = "log_group.api_access";

crate::attributes! {
    /// What is managed of a log group.
    pub struct LogGroupAttributes, enum LogGroupAttribute {
        RetentionDays retention_days: Option<i32>,
        Tags tags: Tags,
    }
}

#[derive(Debug, Clone)]
pub struct LogGroup {
    pub clients: Clients,
    /// [`ADDRESS`] or [`ACCESS_LOG_ADDRESS`].
    pub address: &'static str,
    pub name: String,
    pub retention_days: u32,
    pub tags: std::collections::BTreeMap<String, String>,
}

impl LogGroup {
    fn doing(&self, what: &str) -> String {
        format!("{what} log group {}", self.name)
    }

    pub fn arn(&self) -> String {
        format!(
            "arn:aws:logs:{}:{}:log-group:{}",
            self.clients.region, self.clients.account_id, self.name
        )
    }

    async fn set_retention(&self) -> Result<(), EngineError> {
        self.clients
            .logs
            .put_retention_policy()
            .log_group_name(&self.name)
            .retention_in_days(i32::try_from(self.retention_days).unwrap_or(i32::MAX))
            .send()
            .await
            .doing(|| self.doing("setting the retention of"))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Taggable for LogGroup {
    async fn untag(&self, keys: Vec<String>) -> Result<(), EngineError> {
        self.clients
            .logs
            .untag_resource()
            .resource_arn(self.arn())
            .set_tag_keys(Some(keys))
            .send()
            .await
            .doing(|| self.doing("untagging"))?;
        Ok(())
    }

    async fn tag(&self, tags: &Tags) -> Result<(), EngineError> {
        self.clients
            .logs
            .tag_resource()
            .resource_arn(self.arn())
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .doing(|| self.doing("tagging"))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Resource for LogGroup {
    fn address(&self) -> &str {
        self.address
    }

    fn desired(&self) -> DesiredResource {
        DesiredResource::new(
            self.address(),
            "log_group",
            &self.name,
            LogGroupAttributes {
                retention_days: Some(i32::try_from(self.retention_days).unwrap_or(i32::MAX)),
                tags: self.tags.clone(),
            },
        )
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        let logs = &self.clients.logs;
        let found = logs
            .describe_log_groups()
            .log_group_name_prefix(&self.name)
            .send()
            .await
            .doing(|| self.doing("finding"))?;
        let Some(group) = found
            .log_groups()
            .iter()
            .find(|group| group.log_group_name() == Some(self.name.as_str()))
        else {
            return Ok(None);
        };
        let tags = logs
            .list_tags_for_resource()
            .resource_arn(self.arn())
            .send()
            .await
            .doing(|| self.doing("reading the tags of"))?;
        let tags = tags
            .tags()
            .map(|tags| tags::observed(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
            .unwrap_or_default();
        Ok(Some(ObservedResource {
            id: self.name.clone(),
            arn: Some(self.arn()),
            attributes: LogGroupAttributes {
                retention_days: group.retention_in_days(),
                tags,
            }
            .into_observed(),
            facts: Default::default(),
        }))
    }

    async fn create(&self) -> Result<(), EngineError> {
        self.clients
            .logs
            .create_log_group()
            .log_group_name(&self.name)
            .set_tags(Some(self.tags.clone().into_iter().collect()))
            .send()
            .await
            .doing(|| self.doing("creating"))?;
        self.set_retention().await
    }

    async fn update(
        &self,
        _observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError> {
        for change in changes {
            match LogGroupAttributes::name_of(change)? {
                LogGroupAttribute::RetentionDays => self.set_retention().await?,
                LogGroupAttribute::Tags => tags::converge(self, &change.old, &self.tags).await?,
            }
        }
        Ok(())
    }

    async fn delete(&self, _observed: &ObservedResource) -> Result<(), EngineError> {
        self.clients
            .logs
            .delete_log_group()
            .log_group_name(&self.name)
            .send()
            .await
            .doing(|| self.doing("deleting"))?;
        Ok(())
    }
}
