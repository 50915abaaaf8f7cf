//! A table's exact `userCount`, spread over counter items.
//!
//! Every new user's write also increments the count. Kept on one item, the
//! count would make every first write of a class touch that one item, and
//! DynamoDB cancels a transaction whose items another transaction holds
//! (`TransactionConflict`): a class submitting at once would queue on it. So
//! the count is kept on [`USER_COUNT_SHARDS`] counter items in the table's own
//! partition (`username =` [`counter_username`]`(i)`), and each new user
//! increments one of them, picked at random: concurrent first writes conflict
//! only when they pick the same counter, and a retry picks again. The metadata
//! item is no longer written by users at all, so a PATCH of it never conflicts
//! with them.
//!
//! `userCount` = the metadata's `userCount` (the base: the whole count of a
//! table written before counters existed, 0 for a new one) + every counter's.
//! A single table reads all of it with one strongly consistent query of the
//! range [`METADATA_USERNAME`]..=[`METADATA_RANGE_END`], which holds the
//! metadata and the counters and no user; a page of the table listing reads
//! its tables' counters with BatchGetItem, 100 keys a call.
//!
//! Counters are created with their table; a table written before counters
//! existed gets each counter the first time a new user picks it.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, KeysAndAttributes, Put, TransactWriteItem, Update,
};

use super::item::{Item, number_value, string_value};
use super::{Conflicts, Store, StoreError, back_off};

/// What an increment found when its condition failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CounterState {
    /// It takes increments (a concurrent change made the condition fail).
    Open,
    /// Its table is being deleted: no new user.
    Closed,
    /// It does not exist: its table is gone, or predates counters.
    Missing,
}
use super::tables::metadata_key;
use crate::schema::{
    COUNTER_CLOSED, METADATA_RANGE_END, METADATA_USERNAME, TABLE_ID, USER_COUNT, USER_COUNT_SHARDS,
    USERNAME, counter_username,
};

/// BatchGetItem's limit of keys per call.
const BATCH_KEYS: usize = 100;
/// How many times one batch of keys is asked for while DynamoDB leaves some unprocessed.
const MAX_BATCH_ATTEMPTS: u32 = 6;

/// The key of counter `shard` of table `table_id`.
pub(crate) fn counter_key(table_id: &str, shard: u8) -> Item {
    [
        (TABLE_ID.to_owned(), string_value(table_id)),
        (USERNAME.to_owned(), string_value(counter_username(shard))),
    ]
    .into()
}

/// A counter for a new user to increment, drawn at random.
pub(crate) fn pick_shard() -> u8 {
    fastrand::u8(..USER_COUNT_SHARDS)
}

/// Whether `username` (a sort key) is one of a table's counters.
pub(crate) fn is_counter(username: &str) -> bool {
    username
        .strip_prefix(METADATA_USERNAME)
        .is_some_and(|rest| rest.starts_with('#'))
}

/// A new counter at 0, as a transaction's put.
pub(crate) fn new_counter(table_name: &str, table_id: &str, shard: u8) -> Result<Put, StoreError> {
    let mut item = counter_key(table_id, shard);
    item.insert(USER_COUNT.to_owned(), number_value(0));
    Put::builder()
        .table_name(table_name)
        .set_item(Some(item))
        .build()
        .map_err(|error| StoreError::build(format!("creating table {table_id}"), error))
}

/// The condition of every increment: the counter exists and is open. It fails
/// when the table is gone, is being deleted (its counters are closed), or was
/// written before counters existed and nobody has picked this counter yet.
pub(crate) const OPEN_COUNTER: &str = "attribute_exists(#id) AND attribute_not_exists(#closed)";

/// The increment of counter `shard` in a new user's transaction, on
/// [`OPEN_COUNTER`].
pub(crate) fn increment(table_name: &str, table_id: &str, shard: u8) -> Result<Update, StoreError> {
    Update::builder()
        .table_name(table_name)
        .set_key(Some(counter_key(table_id, shard)))
        .update_expression("ADD #count :one")
        .condition_expression(OPEN_COUNTER)
        .expression_attribute_names("#count", USER_COUNT)
        .expression_attribute_names("#id", TABLE_ID)
        .expression_attribute_names("#closed", COUNTER_CLOSED)
        .expression_attribute_values(":one", number_value(1))
        .build()
        .map_err(|error| StoreError::build(format!("counting a user of table {table_id}"), error))
}

/// A check, in a new user's transaction, that counter `shard` is
/// [`OPEN_COUNTER`] (`SAFE_CONCURRENCY=false`, which counts the user after
/// the transaction): no user is created in a table being deleted.
pub(crate) fn open_check(
    table_name: &str,
    table_id: &str,
    shard: u8,
) -> Result<ConditionCheck, StoreError> {
    ConditionCheck::builder()
        .table_name(table_name)
        .set_key(Some(counter_key(table_id, shard)))
        .condition_expression(OPEN_COUNTER)
        .expression_attribute_names("#id", TABLE_ID)
        .expression_attribute_names("#closed", COUNTER_CLOSED)
        .build()
        .map_err(|error| {
            StoreError::build(format!("checking a counter of table {table_id}"), error)
        })
}

impl Store {
    /// The metadata item and the counters of one table (strongly consistent,
    /// one query); `None` when the table does not exist.
    pub(crate) async fn metadata_and_count(
        &self,
        table_id: &str,
    ) -> Result<Option<(Item, u64)>, StoreError> {
        let output = self
            .client()
            .query()
            .table_name(&self.table_name)
            .key_condition_expression("#id = :id AND #name BETWEEN :metadata AND :end")
            .expression_attribute_names("#id", TABLE_ID)
            .expression_attribute_names("#name", USERNAME)
            .expression_attribute_values(":id", string_value(table_id))
            .expression_attribute_values(":metadata", string_value(METADATA_USERNAME))
            .expression_attribute_values(":end", string_value(METADATA_RANGE_END))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| {
                StoreError::dynamodb(format!("reading playground table {table_id}"), error)
            })?;
        let mut metadata = None;
        let mut counted = 0_u64;
        for item in output.items() {
            let reader = self.reader(item);
            let name = reader.string(USERNAME)?;
            if name == METADATA_USERNAME {
                metadata = Some(item.clone());
            } else if is_counter(&name) {
                counted = counted.saturating_add(reader.count(USER_COUNT)?);
            }
        }
        let Some(metadata) = metadata else {
            return Ok(None);
        };
        let base = self.reader(&metadata).count(USER_COUNT)?;
        Ok(Some((metadata, base.saturating_add(counted))))
    }

    /// The sum of the counters of each of `table_ids` (eventually consistent,
    /// like the listing they complete): one BatchGetItem per 100 counters,
    /// sending again what DynamoDB leaves unprocessed. A table without
    /// counters sums to 0.
    pub(crate) async fn counter_sums(
        &self,
        table_ids: &[&str],
    ) -> Result<HashMap<String, u64>, StoreError> {
        let keys: Vec<Item> = table_ids
            .iter()
            .flat_map(|table_id| (0..USER_COUNT_SHARDS).map(|shard| counter_key(table_id, shard)))
            .collect();
        let mut sums = HashMap::new();
        for batch in keys.chunks(BATCH_KEYS) {
            for item in self.get_batch(batch).await? {
                let reader = self.reader(&item);
                let count = reader.count(USER_COUNT)?;
                let sum = sums.entry(reader.string(TABLE_ID)?).or_insert(0_u64);
                *sum = sum.saturating_add(count);
            }
        }
        Ok(sums)
    }

    /// The items of `keys` (at most [`BATCH_KEYS`]) that exist.
    async fn get_batch(&self, keys: &[Item]) -> Result<Vec<Item>, StoreError> {
        let action = || "reading the user counters of playground tables".to_owned();
        let mut found = Vec::new();
        let mut pending = keys.to_vec();
        for attempt in 0..MAX_BATCH_ATTEMPTS {
            if attempt > 0 {
                back_off(
                    attempt - 1,
                    Duration::from_millis(50),
                    Duration::from_millis(1_600),
                )
                .await;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .projection_expression("#id, #name, #count")
                .expression_attribute_names("#id", TABLE_ID)
                .expression_attribute_names("#name", USERNAME)
                .expression_attribute_names("#count", USER_COUNT)
                .build()
                .map_err(|error| StoreError::build(action(), error))?;
            let mut output = self
                .client()
                .batch_get_item()
                .request_items(&self.table_name, request)
                .send()
                .await
                .map_err(|error| StoreError::dynamodb(action(), error))?;
            if let Some(items) = output
                .responses
                .as_mut()
                .and_then(|responses| responses.remove(&self.table_name))
            {
                found.extend(items);
            }
            pending = output
                .unprocessed_keys()
                .and_then(|unprocessed| unprocessed.get(&self.table_name))
                .map(|keys| keys.keys().to_vec())
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(found);
            }
        }
        Err(StoreError::Unprocessed {
            action: action(),
            attempts: MAX_BATCH_ATTEMPTS,
            left: pending.len(),
        })
    }

    /// Why counter `shard` of `table_id` refused an increment (one strongly
    /// consistent read, on that failure path only).
    pub(crate) async fn counter_state(
        &self,
        table_id: &str,
        shard: u8,
    ) -> Result<CounterState, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(counter_key(table_id, shard)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| {
                StoreError::dynamodb(format!("reading a user counter of table {table_id}"), error)
            })?;
        Ok(match output.item() {
            None => CounterState::Missing,
            Some(item) if item.contains_key(COUNTER_CLOSED) => CounterState::Closed,
            Some(_) => CounterState::Open,
        })
    }

    /// Create counter `shard` of a table written before counters existed (or
    /// whose counter is missing), in one transaction with a check that the
    /// table still exists ([`StoreError::TableNotFound`] otherwise), so a
    /// counter is never created for a deleted table: a put only if absent, so
    /// that a concurrent creation of the same counter, or its increment, is
    /// never overwritten.
    pub(crate) async fn create_counter(&self, table_id: &str, shard: u8) -> Result<(), StoreError> {
        let action = || format!("creating a user counter of table {table_id}");
        let mut item = counter_key(table_id, shard);
        item.insert(USER_COUNT.to_owned(), number_value(0));
        let table_exists = ConditionCheck::builder()
            .table_name(&self.table_name)
            .set_key(Some(metadata_key(table_id)))
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#id", TABLE_ID)
            .build()
            .map_err(|error| StoreError::build(action(), error))?;
        let put = Put::builder()
            .table_name(&self.table_name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", TABLE_ID)
            .build()
            .map_err(|error| StoreError::build(action(), error))?;
        let result = self
            .client()
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .condition_check(table_exists)
                    .build(),
            )
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        let reasons = cancellation_codes(&error);
        match reasons.as_slice() {
            [Some("ConditionalCheckFailed"), ..] => Err(StoreError::TableNotFound),
            // Someone else created it, or is incrementing it: it exists (or is
            // about to), and the caller's retry finds out which.
            reasons
                if reasons.iter().any(|code| {
                    matches!(code, Some("ConditionalCheckFailed" | "TransactionConflict"))
                }) =>
            {
                Ok(())
            }
            _ => Err(StoreError::dynamodb(action(), error)),
        }
    }

    /// Close every counter of `table_id` (creating those a table written
    /// before counters lacks), so that no user can be created in it from now
    /// on: the first step of deleting it. A counter a concurrent transaction
    /// holds is retried.
    pub(crate) async fn close_counters(&self, table_id: &str) -> Result<(), StoreError> {
        for shard in 0..USER_COUNT_SHARDS {
            let action = || format!("closing the user counters of table {table_id}");
            let mut conflicts = Conflicts::new();
            loop {
                let result = self
                    .client()
                    .update_item()
                    .table_name(&self.table_name)
                    .set_key(Some(counter_key(table_id, shard)))
                    .update_expression("SET #closed = :closed")
                    .expression_attribute_names("#closed", COUNTER_CLOSED)
                    .expression_attribute_values(":closed", AttributeValue::Bool(true))
                    .send()
                    .await;
                match result {
                    Ok(_) => break,
                    Err(error)
                        if error
                            .as_service_error()
                            .is_some_and(|service| service.is_transaction_conflict_exception()) =>
                    {
                        if !conflicts.pause().await {
                            return Err(conflicts.give_up(action()));
                        }
                    }
                    Err(error) => return Err(StoreError::dynamodb(action(), error)),
                }
            }
        }
        Ok(())
    }
}

/// The cancellation reason codes of a cancelled transaction, in item order
/// (`None` for an item that was not the cause); empty for any other error.
pub(crate) fn cancellation_codes<R>(
    error: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        R,
    >,
) -> Vec<Option<&str>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(canceled)) => canceled
            .cancellation_reasons()
            .iter()
            .map(|reason| reason.code().filter(|code| *code != "None"))
            .collect(),
        _ => Vec::new(),
    }
}
