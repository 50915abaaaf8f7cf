//! The function's log group, `/aws/lambda/<function>`, created before the
//! function (Lambda would create it on first invoke, without retention) or
//! adopted, with `log_retention_days` and tags.

use serde_json::json;

use super::{Clients, removed_tag_keys, tags_from_value, tags_object, tags_value};
use crate::engine::{AttributeChange, DesiredResource, EngineError, ObservedResource, Resource};

pub const ADDRESS: &str = "log_group.function";

#[derive(Debug, Clone)]
pub struct LogGroup {
    pub clients: Clients,
    pub name: String,
    pub retention_days: u32,
    pub tags: std::collections::BTreeMap<String, String>,
}

impl LogGroup {
    fn doing(&self, what: &str) -> String {
        format!("{what} log group {}", self.name)
    }

    fn arn(&self) -> String {
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
            .map_err(|error| EngineError::sdk(self.doing("setting the retention of"), &error))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Resource for LogGroup {
    fn desired(&self) -> DesiredResource {
        DesiredResource {
            address: ADDRESS.into(),
            kind: "log_group",
            name: self.name.clone(),
            attributes: [
                ("retention_days".to_owned(), json!(self.retention_days)),
                ("tags".to_owned(), tags_value(&self.tags)),
            ]
            .into(),
            rules: Default::default(),
            depends_on: Vec::new(),
            never_replace: None,
        }
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        let logs = &self.clients.logs;
        let found = logs
            .describe_log_groups()
            .log_group_name_prefix(&self.name)
            .send()
            .await
            .map_err(|error| EngineError::sdk(self.doing("finding"), &error))?;
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
            .map_err(|error| EngineError::sdk(self.doing("reading the tags of"), &error))?;
        let tags = tags.tags().map_or_else(
            || tags_object([]),
            |tags| tags_object(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        );
        Ok(Some(ObservedResource {
            id: self.name.clone(),
            arn: Some(self.arn()),
            attributes: [
                (
                    "retention_days".to_owned(),
                    json!(group.retention_in_days()),
                ),
                ("tags".to_owned(), tags),
            ]
            .into(),
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
            .map_err(|error| EngineError::sdk(self.doing("creating"), &error))?;
        self.set_retention().await
    }

    async fn update(
        &self,
        _observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError> {
        let logs = &self.clients.logs;
        for change in changes {
            match change.name.as_str() {
                "retention_days" => self.set_retention().await?,
                "tags" => {
                    let removed = removed_tag_keys(&change.old, &change.new);
                    if !removed.is_empty() {
                        logs.untag_resource()
                            .resource_arn(self.arn())
                            .set_tag_keys(Some(removed))
                            .send()
                            .await
                            .map_err(|error| EngineError::sdk(self.doing("untagging"), &error))?;
                    }
                    logs.tag_resource()
                        .resource_arn(self.arn())
                        .set_tags(Some(tags_from_value(&change.new).into_iter().collect()))
                        .send()
                        .await
                        .map_err(|error| EngineError::sdk(self.doing("tagging"), &error))?;
                }
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
            .logs
            .delete_log_group()
            .log_group_name(&self.name)
            .send()
            .await
            .map_err(|error| EngineError::sdk(self.doing("deleting"), &error))?;
        Ok(())
    }
}
