//! Playground tables: the `_metadata` item of each `tableId`, and its
//! `userCount` (see [`super::counter`]).

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::Serialize;

use super::counter::new_counter;
use super::cursor::{self, StartAfter};
use super::item::{Item, number_value, string_value};
use super::{Conflicts, Page, Store, StoreError};
use crate::schema::{
    BY_CREATED_AT, CREATED_AT, DISPLAY_NAME, IS_ARCHIVED, METADATA_USERNAME, OWNER_EMAIL,
    OWNER_PRINCIPAL, OWNER_SUB, PLAYGROUND_ID, PLAYGROUND_URL, TABLE_ID, TABLES_PARTITION,
    TABLES_PARTITION_VALUE, UPDATED_AT, USER_COUNT, USER_COUNT_SHARDS, USERNAME,
};

/// A playground table as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableRecord {
    pub table_id: String,
    pub display_name: String,
    pub created_at: Option<String>,
    pub is_archived: bool,
    pub user_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// A table's owner, as its metadata records it (when sign-in is on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOwner {
    pub sub: String,
    pub principal: String,
    pub email: Option<String>,
}

/// What a new table may record besides its name.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewTableExtras<'a> {
    /// Its creator, with sign-in on.
    pub owner: Option<&'a TableOwner>,
    /// The `playgroundUrl` it was created for, and the id derived from it.
    pub playground: Option<(&'a str, &'a str)>,
}

/// The fields a PATCH may change; at least one is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TablePatch {
    pub display_name: Option<String>,
    pub is_archived: Option<bool>,
}

/// The key of a table's metadata item.
pub(crate) fn metadata_key(table_id: &str) -> Item {
    [
        (TABLE_ID.to_owned(), string_value(table_id)),
        (USERNAME.to_owned(), string_value(METADATA_USERNAME)),
    ]
    .into()
}

impl Store {
    /// The table of metadata `item`, whose users number `user_count`.
    fn table_record(&self, item: &Item, user_count: u64) -> Result<TableRecord, StoreError> {
        let reader = self.reader(item);
        let table_id = reader.string(TABLE_ID)?;
        Ok(TableRecord {
            display_name: reader
                .optional_string(DISPLAY_NAME)?
                .unwrap_or_else(|| table_id.clone()),
            table_id,
            created_at: reader.optional_string(CREATED_AT)?,
            is_archived: reader.flag(IS_ARCHIVED)?,
            user_count,
            updated_at: reader.optional_string(UPDATED_AT)?,
        })
    }

    /// Create a table: its metadata item and its counters at 0, in one
    /// transaction; [`StoreError::TableAlreadyExists`] when it exists. The
    /// metadata is put only if absent: concurrent creates of one id succeed once.
    pub async fn create_table(
        &self,
        table_id: &str,
        display_name: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        self.create_owned_table(table_id, display_name, now, &NewTableExtras::default())
            .await
    }

    /// [`Store::create_table`], recording what `extras` gives on the metadata.
    pub async fn create_owned_table(
        &self,
        table_id: &str,
        display_name: &str,
        now: &str,
        extras: &NewTableExtras<'_>,
    ) -> Result<(), StoreError> {
        let action = || format!("creating playground table {table_id}");
        let mut owner_attributes: Vec<(String, AttributeValue)> = extras
            .owner
            .map(|owner| {
                [
                    (OWNER_SUB, Some(&owner.sub)),
                    (OWNER_PRINCIPAL, Some(&owner.principal)),
                    (OWNER_EMAIL, owner.email.as_ref()),
                ]
                .into_iter()
                .filter_map(|(name, value)| {
                    value.map(|value| (name.to_owned(), string_value(value)))
                })
                .collect()
            })
            .unwrap_or_default();
        if let Some((url, id)) = extras.playground {
            owner_attributes.push((PLAYGROUND_URL.to_owned(), string_value(url)));
            owner_attributes.push((PLAYGROUND_ID.to_owned(), string_value(id)));
        }
        let metadata = Put::builder()
            .table_name(&self.table_name)
            .set_item(Some(
                metadata_key(table_id)
                    .into_iter()
                    .chain(owner_attributes)
                    .chain([
                        (DISPLAY_NAME.to_owned(), string_value(display_name)),
                        (CREATED_AT.to_owned(), string_value(now)),
                        (IS_ARCHIVED.to_owned(), AttributeValue::Bool(false)),
                        (USER_COUNT.to_owned(), number_value(0)),
                        (
                            TABLES_PARTITION.to_owned(),
                            string_value(TABLES_PARTITION_VALUE),
                        ),
                    ])
                    .collect(),
            ))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", TABLE_ID)
            .build()
            .map_err(|error| StoreError::build(action(), error))?;
        let mut items = vec![TransactWriteItem::builder().put(metadata).build()];
        for shard in 0..USER_COUNT_SHARDS {
            let counter = new_counter(&self.table_name, table_id, shard)?;
            items.push(TransactWriteItem::builder().put(counter).build());
        }
        items.extend(
            crate::schema::ranking::first_ranges(&self.table_name, table_id)
                .map_err(|error| StoreError::build(action(), error))?,
        );
        let mut conflicts = Conflicts::new();
        loop {
            let result = self
                .client()
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let error = match result {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(canceled)) =
                error.as_service_error()
            else {
                return Err(StoreError::dynamodb(action(), error));
            };
            let reasons = canceled.cancellation_reasons();
            if reasons.first().and_then(|reason| reason.code()) == Some("ConditionalCheckFailed") {
                return Err(StoreError::TableAlreadyExists {
                    table_id: table_id.to_owned(),
                });
            }
            if !reasons
                .iter()
                .any(|reason| reason.code() == Some("TransactionConflict"))
            {
                return Err(StoreError::dynamodb(action(), error));
            }
            if !conflicts.pause().await {
                return Err(conflicts.give_up(action()));
            }
        }
    }

    /// The owner of `table_id` (a strongly consistent read of its metadata):
    /// `None` for a table made before sign-in; [`StoreError::TableNotFound`]
    /// when there is no such table.
    pub async fn table_owner(&self, table_id: &str) -> Result<Option<TableOwner>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(metadata_key(table_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| {
                StoreError::dynamodb(format!("reading the owner of table {table_id}"), error)
            })?;
        let item = output.item().ok_or(StoreError::TableNotFound)?;
        let reader = self.reader(item);
        let (Some(sub), principal, email) = (
            reader.optional_string(OWNER_SUB)?,
            reader.optional_string(OWNER_PRINCIPAL)?,
            reader.optional_string(OWNER_EMAIL)?,
        ) else {
            return Ok(None);
        };
        Ok(Some(TableOwner {
            principal: principal.unwrap_or_else(|| sub.clone()),
            sub,
            email,
        }))
    }

    /// Read one table (strongly consistent); `None` when it does not exist.
    pub async fn get_table(&self, table_id: &str) -> Result<Option<TableRecord>, StoreError> {
        self.metadata_and_count(table_id)
            .await?
            .map(|(item, user_count)| self.table_record(&item, user_count))
            .transpose()
    }

    /// List tables newest first, `limit` per page, from the `byCreatedAt` index,
    /// with their counters (one BatchGetItem per 100 counters, so per 25 tables).
    pub async fn list_tables(
        &self,
        limit: u16,
        start_after: &StartAfter,
    ) -> Result<Page<TableRecord>, StoreError> {
        let start = match start_after {
            StartAfter::First | StartAfter::LegacyKey { table_id: None, .. } => None,
            StartAfter::Cursor(cursor) => cursor::decode(
                cursor,
                &[TABLE_ID, USERNAME, TABLES_PARTITION, CREATED_AT],
                |key| {
                    cursor::holds(key, TABLES_PARTITION, TABLES_PARTITION_VALUE)
                        && cursor::holds(key, USERNAME, METADATA_USERNAME)
                },
            ),
            StartAfter::LegacyKey {
                table_id: Some(table_id),
                ..
            }
            | StartAfter::Id(table_id) => self.listing_position_of_table(table_id).await?,
        };
        let output = self
            .client()
            .query()
            .table_name(&self.table_name)
            .index_name(BY_CREATED_AT)
            .key_condition_expression("#p = :p")
            .expression_attribute_names("#p", TABLES_PARTITION)
            .expression_attribute_values(":p", string_value(TABLES_PARTITION_VALUE))
            .scan_index_forward(false)
            .limit(i32::from(limit))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|error| StoreError::dynamodb("listing playground tables", error))?;
        let table_ids = output
            .items()
            .iter()
            .map(|item| self.reader(item).string(TABLE_ID))
            .collect::<Result<Vec<_>, _>>()?;
        let sums = self
            .counter_sums(&table_ids.iter().map(String::as_str).collect::<Vec<_>>())
            .await?;
        let items = output
            .items()
            .iter()
            .zip(&table_ids)
            .map(|(item, table_id)| {
                let base = self.reader(item).count(USER_COUNT)?;
                let counted = sums.get(table_id).copied().unwrap_or(0);
                self.table_record(item, base.saturating_add(counted))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            next_cursor: output.last_evaluated_key().and_then(cursor::encode),
        })
    }

    /// Where table `table_id` sits in the `byCreatedAt` listing, as an
    /// `ExclusiveStartKey` (one read of its metadata); `None` (the first page,
    /// as the legacy handler had it) when there is no such table.
    async fn listing_position_of_table(&self, table_id: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(metadata_key(table_id)))
            .projection_expression("#p, #c")
            .expression_attribute_names("#p", TABLES_PARTITION)
            .expression_attribute_names("#c", CREATED_AT)
            .send()
            .await
            .map_err(|error| {
                StoreError::dynamodb(format!("finding table {table_id} in the listing"), error)
            })?;
        let Some(item) = output.item() else {
            return Ok(None);
        };
        let reader = self.reader(item);
        let (Some(partition), Some(created_at)) = (
            reader.optional_string(TABLES_PARTITION)?,
            reader.optional_string(CREATED_AT)?,
        ) else {
            return Ok(None);
        };
        let mut key = metadata_key(table_id);
        key.insert(TABLES_PARTITION.to_owned(), string_value(partition));
        key.insert(CREATED_AT.to_owned(), string_value(created_at));
        Ok(Some(key))
    }

    /// Change a table's display name and/or archived flag and set `updatedAt`.
    pub async fn patch_table(
        &self,
        table_id: &str,
        patch: &TablePatch,
        now: &str,
    ) -> Result<(), StoreError> {
        let mut sets = vec!["#updatedAt = :updatedAt"];
        let mut request = self
            .client()
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(metadata_key(table_id)))
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#id", TABLE_ID)
            .expression_attribute_names("#updatedAt", UPDATED_AT)
            .expression_attribute_values(":updatedAt", string_value(now));
        if let Some(display_name) = &patch.display_name {
            sets.push("#displayName = :displayName");
            request = request
                .expression_attribute_names("#displayName", DISPLAY_NAME)
                .expression_attribute_values(":displayName", string_value(display_name));
        }
        if let Some(is_archived) = patch.is_archived {
            sets.push("#isArchived = :isArchived");
            request = request
                .expression_attribute_names("#isArchived", IS_ARCHIVED)
                .expression_attribute_values(":isArchived", AttributeValue::Bool(is_archived));
        }
        let request = request.update_expression(format!("SET {}", sets.join(", ")));
        let action = || format!("updating playground table {table_id}");
        // Users never write the metadata (see `counter`); only a concurrent
        // create of this table (a transaction) can hold it.
        let mut conflicts = Conflicts::new();
        loop {
            match request.clone().send().await {
                Ok(_) => return Ok(()),
                Err(error) => match error.as_service_error() {
                    Some(service) if service.is_conditional_check_failed_exception() => {
                        return Err(StoreError::TableNotFound);
                    }
                    Some(service) if service.is_transaction_conflict_exception() => {
                        if !conflicts.pause().await {
                            return Err(conflicts.give_up(action()));
                        }
                    }
                    _ => return Err(StoreError::dynamodb(action(), error)),
                },
            }
        }
    }

    /// Whether the table's metadata exists (strongly consistent).
    pub(crate) async fn table_exists(&self, table_id: &str) -> Result<bool, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(metadata_key(table_id)))
            .projection_expression("#id")
            .expression_attribute_names("#id", TABLE_ID)
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| {
                StoreError::dynamodb(format!("reading playground table {table_id}"), error)
            })?;
        Ok(output.item().is_some())
    }
}
