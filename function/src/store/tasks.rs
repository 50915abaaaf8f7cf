//! A user's completed tasks (`completedTaskIds`): a string set, changed with
//! DynamoDB's own set operations so that concurrent changes never lose one.
//! Items the legacy handler wrote hold a list instead: changing one reads it
//! and writes the set in its place, on the condition that the list is still
//! what was read.

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::item::string_value;
use super::users::user_key;
use super::{Conflicts, Store, StoreError};
use crate::schema::{COMPLETED_TASK_IDS, LAST_UPDATED, USERNAME, sorted_task_ids};

/// What a change of the task list does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskChange {
    /// Add these ids to the set.
    Add(Vec<String>),
    /// Take these ids out of it.
    Remove(Vec<String>),
    /// Make the set exactly these ids (none: clear it).
    Reset(Vec<String>),
}

impl TaskChange {
    /// The set after this change, from `current`.
    fn apply(&self, current: Vec<String>) -> Vec<String> {
        match self {
            Self::Add(ids) => sorted_task_ids(current.into_iter().chain(ids.iter().cloned())),
            Self::Remove(ids) => {
                sorted_task_ids(current.into_iter().filter(|id| !ids.contains(id)))
            }
            Self::Reset(ids) => sorted_task_ids(ids.iter().cloned()),
        }
    }
}

impl Store {
    /// Change `username`'s completed tasks; the set as it is afterwards,
    /// sorted by number. [`StoreError::UserNotFound`] or
    /// [`StoreError::TableNotFound`] when there is no such user.
    pub async fn change_tasks(
        &self,
        table_id: &str,
        username: &str,
        change: &TaskChange,
        now: &str,
    ) -> Result<Vec<String>, StoreError> {
        let action = || format!("changing the tasks of user {username} of table {table_id}");
        let base = |request: UpdateItemFluentBuilder| {
            request
                .table_name(&self.table_name)
                .set_key(Some(user_key(table_id, username)))
                .expression_attribute_names("#ids", COMPLETED_TASK_IDS)
                .expression_attribute_names("#u", LAST_UPDATED)
                .expression_attribute_names("#name", USERNAME)
                .expression_attribute_values(":u", string_value(now))
                .return_values(ReturnValue::AllNew)
        };
        let set = |ids: &[String]| AttributeValue::Ss(ids.to_vec());
        let request = match change {
            TaskChange::Add(ids) | TaskChange::Remove(ids) if ids.is_empty() => {
                base(self.client().update_item()).update_expression("SET #u = :u")
            }
            TaskChange::Add(ids) => base(self.client().update_item())
                .update_expression("SET #u = :u ADD #ids :ids")
                .expression_attribute_values(":ids", set(ids)),
            TaskChange::Remove(ids) => base(self.client().update_item())
                .update_expression("SET #u = :u DELETE #ids :ids")
                .expression_attribute_values(":ids", set(ids)),
            TaskChange::Reset(ids) if ids.is_empty() => {
                base(self.client().update_item()).update_expression("SET #u = :u REMOVE #ids")
            }
            TaskChange::Reset(ids) => base(self.client().update_item())
                .update_expression("SET #u = :u, #ids = :ids")
                .expression_attribute_values(":ids", set(ids)),
        };
        let mut conflicts = Conflicts::new();
        loop {
            let result = request
                .clone()
                .condition_expression("attribute_exists(#name)")
                .send()
                .await;
            let error = match result {
                Ok(output) => return self.task_ids_of(output.attributes()),
                Err(error) => error,
            };
            match error.as_service_error() {
                Some(service) if service.is_conditional_check_failed_exception() => {
                    return Err(self.missing_user(table_id).await?);
                }
                Some(service) if service.is_transaction_conflict_exception() => {
                    if !conflicts.pause().await {
                        return Err(conflicts.give_up(action()));
                    }
                }
                // A legacy item's list is no set to add to or take from.
                Some(service) if service.meta().code() == Some("ValidationException") => {
                    return self
                        .replace_legacy_list(table_id, username, change, now)
                        .await;
                }
                _ => return Err(StoreError::dynamodb(action(), error)),
            }
        }
    }

    /// A legacy item's task list, rewritten as the set `change` makes of it,
    /// on the condition that the list is still what was read.
    async fn replace_legacy_list(
        &self,
        table_id: &str,
        username: &str,
        change: &TaskChange,
        now: &str,
    ) -> Result<Vec<String>, StoreError> {
        let action = || format!("converting the task list of user {username} of table {table_id}");
        let mut conflicts = Conflicts::new();
        loop {
            let Some(item) = self.user_item(table_id, username).await? else {
                return Err(self.missing_user(table_id).await?);
            };
            let item = &item;
            let old = item.get(COMPLETED_TASK_IDS).cloned();
            let current = self
                .reader(item)
                .optional_strings(COMPLETED_TASK_IDS)?
                .unwrap_or_default();
            let next = change.apply(current);
            let mut request = self
                .client()
                .update_item()
                .table_name(&self.table_name)
                .set_key(Some(user_key(table_id, username)))
                .expression_attribute_names("#ids", COMPLETED_TASK_IDS)
                .expression_attribute_names("#u", LAST_UPDATED)
                .expression_attribute_values(":u", string_value(now));
            request = if next.is_empty() {
                request.update_expression("SET #u = :u REMOVE #ids")
            } else {
                request
                    .update_expression("SET #u = :u, #ids = :ids")
                    .expression_attribute_values(":ids", AttributeValue::Ss(next.clone()))
            };
            request = match old {
                Some(old) => request
                    .condition_expression("#ids = :old")
                    .expression_attribute_values(":old", old),
                None => request.condition_expression("attribute_not_exists(#ids)"),
            };
            match request.send().await {
                Ok(_) => return Ok(next),
                Err(error)
                    if error.as_service_error().is_some_and(|service| {
                        service.is_conditional_check_failed_exception()
                            || service.is_transaction_conflict_exception()
                    }) =>
                {
                    // Changed meanwhile: read it again.
                    if !conflicts.pause().await {
                        return Err(conflicts.give_up(action()));
                    }
                }
                Err(error) => return Err(StoreError::dynamodb(action(), error)),
            }
        }
    }

    fn task_ids_of(
        &self,
        item: Option<&std::collections::HashMap<String, AttributeValue>>,
    ) -> Result<Vec<String>, StoreError> {
        Ok(match item {
            Some(item) => self
                .reader(item)
                .optional_strings(COMPLETED_TASK_IDS)?
                .map(sorted_task_ids)
                .unwrap_or_default(),
            None => Vec::new(),
        })
    }

    /// Why a user's conditional write found no user: its table is gone, or
    /// just the user (one read, on that path only).
    pub(crate) async fn missing_user(&self, table_id: &str) -> Result<StoreError, StoreError> {
        Ok(if self.table_exists(table_id).await? {
            StoreError::UserNotFound
        } else {
            StoreError::TableNotFound
        })
    }
}
