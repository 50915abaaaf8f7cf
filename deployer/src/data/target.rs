//! The environment's table as the data commands write it: read a page's keys
//! back, write what won with a condition on what was read (so an item the API
//! wrote in between is never overwritten blindly: it is read again and decided
//! again), rank the users written (the target keeps its own ranks and team
//! standings, `schema::ranking`), and recount each table's `userCount` from
//! its users.
//!
//! Writes are conditional PutItems, not BatchWriteItem: a batch write cannot
//! carry a condition, so it would overwrite a student's score written by the
//! live API between the read and the write.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Select, TransactWriteItem, Update,
};

use super::DataError;
use super::shape::{Decision, Item, Kind, decide, key_item, key_of, kind_of};

/// BatchGetItem's limit of keys per call.
pub const BATCH_KEYS: usize = 100;
/// How often one item is read again and decided again when the API keeps
/// writing it between our read and our write.
const MAX_WRITE_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone)]
pub struct Target {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

/// What a table's recount found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recount {
    /// `userCount` already equals the users: nothing written.
    Right(u64),
    /// Set to the users, from what it was.
    Fixed { was: u64, users: u64 },
    /// The table has no metadata item (only users): nothing to count into.
    NoTable(u64),
}

impl Target {
    fn doing(&self, what: &str) -> String {
        format!("{what} in DynamoDB table {}", self.table)
    }

    /// The target's items with these keys (a strongly consistent read; keys
    /// DynamoDB leaves unprocessed are asked for again, with backoff).
    pub async fn get_many(
        &self,
        keys: &[(String, String)],
    ) -> Result<HashMap<(String, String), Item>, DataError> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(BATCH_KEYS) {
            let mut pending: Vec<Item> = chunk
                .iter()
                .map(|(table_id, username)| key_item(table_id, username))
                .collect();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending.clone()))
                    .consistent_read(true)
                    .build()
                    .map_err(|error| DataError::Invalid(error.to_string()))?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|error| DataError::aws(self.doing("reading items"), error))?;
                for item in output
                    .responses()
                    .and_then(|responses| responses.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    if let Ok((table_id, username)) = key_of(item) {
                        found.insert((table_id.to_owned(), username.to_owned()), item.clone());
                    }
                }
                pending = output
                    .unprocessed_keys()
                    .and_then(|unprocessed| unprocessed.get(&self.table))
                    .map(|keys| keys.keys().to_vec())
                    .unwrap_or_default();
                if !pending.is_empty() {
                    attempt += 1;
                    if attempt > 8 {
                        return Err(DataError::Invalid(format!(
                            "DynamoDB left {} keys of {} unprocessed 8 times in a row; \
                             lower --parallel or raise the table's capacity",
                            pending.len(),
                            self.table
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
                }
            }
        }
        Ok(found)
    }

    async fn get_one(&self, table_id: &str, username: &str) -> Result<Option<Item>, DataError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(table_id, username)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| DataError::aws(self.doing("reading an item"), error))?;
        Ok(output.item().cloned())
    }

    /// Write `item` as `decision` says, on the condition that the target's
    /// item is still `observed`. When the API wrote it in between, it is read
    /// and decided again. Returns the decision that held.
    ///
    /// A user the target ranked is taken out of the ranks before it is
    /// replaced ([`schema::ranking::unrank_user`]), and the replacement is
    /// written only while it is still unranked, so no rank count is left
    /// behind for it; the copy is ranked afterwards ([`Self::rank_unranked`]).
    pub async fn write(
        &self,
        item: &Item,
        mut decision: Decision,
        mut observed: Option<Item>,
    ) -> Result<Decision, DataError> {
        let (table_id, username) =
            key_of(item).map_err(|error| DataError::Invalid(error.to_string()))?;
        let user = kind_of(username) == Kind::User;
        let time_attribute = if user {
            schema::LAST_UPDATED
        } else {
            schema::UPDATED_AT
        };
        for _ in 0..MAX_WRITE_ATTEMPTS {
            if !matches!(decision, Decision::Copy | Decision::Replace) {
                return Ok(decision);
            }
            let ranked = observed
                .as_ref()
                .is_some_and(|target| target.contains_key(schema::ranking::RANK_KEY));
            if user && ranked {
                schema::ranking::unrank_user(
                    &self.client,
                    &self.table,
                    table_id,
                    username,
                    crate::ranking::now_ms(),
                )
                .await
                .map_err(|error| self.ranking_error(error))?;
            }
            let request = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .expression_attribute_names("#u", schema::USERNAME);
            // A replaced user must still be out of the ranks.
            let unranked = if user && observed.is_some() {
                " AND attribute_not_exists(#rank)"
            } else {
                ""
            };
            let request = if unranked.is_empty() {
                request
            } else {
                request.expression_attribute_names("#rank", schema::ranking::RANK_KEY)
            };
            let request = match observed.as_ref().map(|target| target.get(time_attribute)) {
                None => request.condition_expression("attribute_not_exists(#u)"),
                Some(Some(time)) => request
                    .condition_expression(format!("attribute_exists(#u) AND #t = :t{unranked}"))
                    .expression_attribute_names("#t", time_attribute)
                    .expression_attribute_values(":t", time.clone()),
                Some(None) => request
                    .condition_expression(format!(
                        "attribute_exists(#u) AND attribute_not_exists(#t){unranked}"
                    ))
                    .expression_attribute_names("#t", time_attribute),
            };
            match request.send().await {
                Ok(_) => return Ok(decision),
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|service| service.is_conditional_check_failed_exception()) =>
                {
                    observed = self.get_one(table_id, username).await?;
                    decision = decide(item, observed.as_ref());
                }
                Err(error) => {
                    return Err(DataError::aws(
                        self.doing(&format!("writing {table_id}/{username}")),
                        error,
                    ));
                }
            }
        }
        Err(DataError::Invalid(format!(
            "{table_id}/{username} in {} changed under every one of {MAX_WRITE_ATTEMPTS} writes; \
             run again when the API is quieter",
            self.table
        )))
    }

    /// A ranking call's failure, saying what it was doing and where.
    fn ranking_error(&self, error: schema::ranking::RankingError) -> DataError {
        DataError::ranking(error, |action| {
            format!("{action} in DynamoDB table {}", self.table)
        })
    }

    /// A query of `table_id`'s partition for its users, the metadata,
    /// counters and derived rank items left out (by `filter`, and then
    /// these).
    fn users_query(
        &self,
        table_id: &str,
        filter: &str,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let [rank, team] = crate::ranking::DERIVED_PREFIXES;
        super::source::partition_query(&self.client, &self.table, table_id)
            .filter_expression(format!(
                "NOT begins_with(#u, :m) AND NOT begins_with(#u, :rank) \
                 AND NOT begins_with(#u, :team){filter}"
            ))
            .expression_attribute_names("#u", schema::USERNAME)
            .expression_attribute_values(":m", AttributeValue::S(schema::METADATA_USERNAME.into()))
            .expression_attribute_values(":rank", AttributeValue::S(rank.into()))
            .expression_attribute_values(":team", AttributeValue::S(team.into()))
            .consistent_read(true)
    }

    /// Rank every user of `table_id` in the target that is not ranked (those
    /// a copy wrote, and any other written before ranks existed), each from
    /// its item as a strongly consistent read found it, with
    /// [`schema::ranking::rank_unranked_user`] (a user the API ranked
    /// meanwhile is left as it is). Returns how many it ranked.
    pub async fn rank_unranked(&self, table_id: &str) -> Result<u64, DataError> {
        let mut ranked = 0u64;
        let mut start = None;
        loop {
            let page = self
                .users_query(table_id, " AND attribute_not_exists(#k)")
                .expression_attribute_names("#k", schema::ranking::RANK_KEY)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|error| {
                    DataError::aws(
                        self.doing(&format!("finding the unranked users of {table_id}")),
                        error,
                    )
                })?;
            for item in page.items() {
                let Ok((_, username)) = key_of(item) else {
                    continue;
                };
                if kind_of(username) != Kind::User {
                    continue;
                }
                if schema::ranking::rank_unranked_user(
                    &self.client,
                    &self.table,
                    item,
                    crate::ranking::now_ms(),
                )
                .await
                .map_err(|error| self.ranking_error(error))?
                {
                    ranked += 1;
                }
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(ranked);
            }
        }
    }

    /// How many users `table_id` has in the target (a strongly consistent
    /// counting query of its partition, the metadata, counters and derived
    /// rank items left out).
    pub async fn count_users(&self, table_id: &str) -> Result<u64, DataError> {
        let mut users = 0u64;
        let mut start = None;
        loop {
            let page = self
                .users_query(table_id, "")
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|error| {
                    DataError::aws(
                        self.doing(&format!("counting the users of {table_id}")),
                        error,
                    )
                })?;
            users += u64::try_from(page.count()).unwrap_or(0);
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(users);
            }
        }
    }

    /// A table's metadata and counters: the range `_metadata`..=`_metadata#~`.
    async fn count_items(&self, table_id: &str) -> Result<Vec<Item>, DataError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#t = :t AND #u BETWEEN :from AND :to")
            .expression_attribute_names("#t", schema::TABLE_ID)
            .expression_attribute_names("#u", schema::USERNAME)
            .expression_attribute_values(":t", AttributeValue::S(table_id.into()))
            .expression_attribute_values(
                ":from",
                AttributeValue::S(schema::METADATA_USERNAME.into()),
            )
            .expression_attribute_values(
                ":to",
                AttributeValue::S(schema::METADATA_RANGE_END.into()),
            )
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| {
                DataError::aws(
                    self.doing(&format!("reading the userCount of {table_id}")),
                    error,
                )
            })?;
        Ok(output.items().to_vec())
    }

    /// The `userCount` the API reports for `table_id`: the metadata's base plus
    /// every counter; `None` without a metadata item.
    pub async fn user_count(&self, table_id: &str) -> Result<Option<u64>, DataError> {
        Ok(super::shape::reported_user_count(
            &self.count_items(table_id).await?,
        ))
    }

    /// Set `table_id`'s `userCount` to its users: the metadata's base to the
    /// count and every counter to 0, in one transaction conditioned on the
    /// values just read, so a user joining meanwhile makes it count again.
    pub async fn recount(&self, table_id: &str) -> Result<Recount, DataError> {
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let items = self.count_items(table_id).await?;
            let users = self.count_users(table_id).await?;
            let Some(counted) = super::shape::reported_user_count(&items) else {
                return Ok(Recount::NoTable(users));
            };
            if counted == users {
                return Ok(Recount::Right(users));
            }
            let mut writes = Vec::new();
            for item in &items {
                let Ok((_, username)) = key_of(item) else {
                    continue;
                };
                let value = if kind_of(username) == Kind::Metadata {
                    users
                } else {
                    0
                };
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key_item(table_id, username)))
                    .update_expression("SET #c = :new")
                    .expression_attribute_names("#c", schema::USER_COUNT)
                    .expression_attribute_values(":new", AttributeValue::N(value.to_string()));
                let update = match item.get(schema::USER_COUNT) {
                    Some(old) => update
                        .condition_expression("#c = :old")
                        .expression_attribute_values(":old", old.clone()),
                    None => update.condition_expression("attribute_not_exists(#c)"),
                };
                writes.push(
                    TransactWriteItem::builder()
                        .update(
                            update
                                .build()
                                .map_err(|error| DataError::Invalid(error.to_string()))?,
                        )
                        .build(),
                );
            }
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(writes))
                .send()
                .await;
            match sent {
                Ok(_) => return Ok(Recount::Fixed { was: counted, users }),
                // A condition failed, or a conflict with a user joining: count again.
                Err(error)
                    if error.as_service_error().is_some_and(
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::is_transaction_canceled_exception,
                    ) => {}
                Err(error) => {
                    return Err(DataError::aws(
                        self.doing(&format!("setting the userCount of {table_id}")),
                        error,
                    ));
                }
            }
        }
        Err(DataError::Invalid(format!(
            "the users of {table_id} in {} kept changing while they were counted; run again",
            self.table
        )))
    }
}
