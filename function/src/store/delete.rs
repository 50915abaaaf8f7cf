//! Deleting a playground table: close its counters, delete its users in
//! pages, then its metadata and its counters.
//!
//! Nothing outlives a delete, whatever races with it. Its first step closes
//! the table's counters ([`crate::schema::COUNTER_CLOSED`]), and every new
//! user's write increments a counter on the condition that it is open (in the
//! same transaction as the user's put with `SAFE_CONCURRENCY=true`; right
//! after a conditional put, which is taken back when refused, with `false`).
//! So from that step on no user can be created in the table, and every user
//! that exists is in its partition when the delete reads it (strongly
//! consistent, after the close): each is deleted. A write of an existing user
//! either lands before the delete removes it (and is removed with it: the
//! write came first) or finds it gone (its update's condition fails) and
//! tries to create it, which the closed counter refuses: 404. A table
//! re-created afterwards starts with no user and new, open counters.
//!
//! The table's items are read from its own partition (`tableId`, never a scan),
//! keys only, a bounded page at a time, and deleted with BatchWriteItem, 25
//! keys a request; DynamoDB may leave some of a batch unprocessed (throttling),
//! and those are sent again, a bounded number of times, with backoff. The
//! metadata item and the counters go last, once every user read is gone, so
//! that the table stays visible, its `userCount` unchanged (and a DELETE can be
//! repeated), until its users are gone.
//!
//! One request reads at most [`MAX_PAGES`] pages: a larger table is deleted by
//! several requests, each bounded, each continuing where the last stopped
//! (the items already deleted are simply no longer there).
//!
//! Not atomic: while it runs (and between the requests of a large table),
//! the table and its users not yet deleted are still there and readable, and
//! their updates succeed; no new user is taken. Only when the partition holds
//! nothing at all is the table not found.

use std::time::Duration;

use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};

use super::counter::is_counter;
use super::item::{Item, string_value};
use super::{Store, StoreError, back_off};
use crate::schema::{METADATA_USERNAME, TABLE_ID, USERNAME, ranking};

/// Keys one query page reads.
pub const PAGE_ITEMS: usize = 100;
/// Query pages one request reads at most (so at most 1,000 items).
pub const MAX_PAGES: usize = 10;
/// BatchWriteItem's limit of requests per call.
pub const BATCH_ITEMS: usize = 25;
/// How many times one batch is sent while DynamoDB leaves some of it unprocessed.
pub const MAX_BATCH_ATTEMPTS: u32 = 6;

/// What one DELETE did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDeletion {
    /// Users deleted by this request.
    pub deleted_users: u64,
    /// Whether the table is gone: every item read and deleted, metadata last.
    /// `false` when the request stopped after [`MAX_PAGES`] pages: the table
    /// (with its metadata) is still there, and another DELETE continues.
    pub complete: bool,
}

impl Store {
    /// Delete table `table_id`: every user in its partition, then its metadata
    /// and counters.
    /// [`StoreError::TableDeleteNotAllowed`] unless the store allows it;
    /// [`StoreError::TableNotFound`] when the partition holds nothing.
    ///
    /// Costs, for a partition of `n` items (the metadata included), at most
    /// [`MAX_PAGES`] queries and `ceil(users of each page / 25)` batch writes
    /// per page, plus one for the metadata and counters, with unprocessed items
    /// resent.
    pub async fn delete_table(&self, table_id: &str) -> Result<TableDeletion, StoreError> {
        if !self.allow_table_delete {
            return Err(StoreError::TableDeleteNotAllowed);
        }
        // No user can be created from here on (see the module's doc).
        if self.table_exists(table_id).await? {
            self.close_counters(table_id).await?;
        }
        let mut start: Option<Item> = None;
        let mut deleted_users = 0_u64;
        let mut found_any = false;
        // The metadata and the counters, deleted last.
        let mut last = Vec::new();
        for _ in 0..MAX_PAGES {
            let output = self
                .client()
                .query()
                .table_name(&self.table_name)
                .key_condition_expression("#id = :id")
                .projection_expression("#id, #name")
                .expression_attribute_names("#id", TABLE_ID)
                .expression_attribute_names("#name", USERNAME)
                .expression_attribute_values(":id", string_value(table_id))
                .consistent_read(true)
                .limit(PAGE_ITEMS as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|error| {
                    StoreError::dynamodb(format!("reading the items of table {table_id}"), error)
                })?;
            found_any |= !output.items().is_empty();
            let (kept, users): (Vec<Item>, Vec<Item>) =
                output.items().iter().cloned().partition(|item| {
                    item.get(USERNAME)
                        .and_then(|name| name.as_s().ok())
                        .is_some_and(|name| name == METADATA_USERNAME || is_counter(name))
                });
            last.extend(kept);
            for batch in users.chunks(BATCH_ITEMS) {
                self.delete_keys(table_id, batch).await?;
                deleted_users += batch
                    .iter()
                    .filter(|item| {
                        !item
                            .get(USERNAME)
                            .and_then(|name| name.as_s().ok())
                            .is_some_and(|name| ranking::is_derived(name))
                    })
                    .count() as u64;
            }
            match output.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None if !found_any => return Err(StoreError::TableNotFound),
                None => {
                    // A write of a user that landed before the user was
                    // deleted may have put rank items where the pages had
                    // already passed; no write can now (every user is gone,
                    // no new one is taken).
                    let leftovers = self.derived_items(table_id).await?;
                    for batch in leftovers.chunks(BATCH_ITEMS) {
                        self.delete_keys(table_id, batch).await?;
                    }
                    for batch in last.chunks(BATCH_ITEMS) {
                        self.delete_keys(table_id, batch).await?;
                    }
                    return Ok(TableDeletion {
                        deleted_users,
                        complete: true,
                    });
                }
            }
        }
        Ok(TableDeletion {
            deleted_users,
            complete: false,
        })
    }

    /// The keys of the table's rank entries, rank buckets and teams
    /// (strongly consistent).
    async fn derived_items(&self, table_id: &str) -> Result<Vec<Item>, StoreError> {
        let mut keys = Vec::new();
        for range in ranking::DERIVED_RANGES {
            keys.extend(
                ranking::items_between(
                    &self.client(),
                    &self.table_name,
                    table_id,
                    range,
                    &[TABLE_ID, USERNAME],
                )
                .await
                .map_err(|error| {
                    StoreError::dynamodb(
                        format!("reading the rank items of table {table_id}"),
                        error,
                    )
                })?,
            );
        }
        Ok(keys)
    }

    /// Delete `keys` (at most [`BATCH_ITEMS`]) with BatchWriteItem, sending
    /// what DynamoDB leaves unprocessed again, at most [`MAX_BATCH_ATTEMPTS`]
    /// times in all.
    async fn delete_keys(&self, table_id: &str, keys: &[Item]) -> Result<(), StoreError> {
        let action = || format!("deleting items of table {table_id}");
        let mut pending = keys
            .iter()
            .map(|key| {
                DeleteRequest::builder()
                    .set_key(Some(key.clone()))
                    .build()
                    .map(|delete| WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| StoreError::build(action(), error))?;
        for attempt in 0..MAX_BATCH_ATTEMPTS {
            if attempt > 0 {
                back_off(
                    attempt - 1,
                    Duration::from_millis(50),
                    Duration::from_millis(1_600),
                )
                .await;
            }
            let output = self
                .client()
                .batch_write_item()
                .request_items(&self.table_name, pending)
                .send()
                .await
                .map_err(|error| StoreError::dynamodb(action(), error))?;
            pending = output
                .unprocessed_items()
                .and_then(|unprocessed| unprocessed.get(&self.table_name))
                .cloned()
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
        }
        Err(StoreError::Unprocessed {
            action: action(),
            attempts: MAX_BATCH_ATTEMPTS,
            left: pending.len(),
        })
    }
}
