//! Users of a playground table and the table's exact `userCount`.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::Serialize;

use super::counter::{self, counter_key, pick_shard};
use super::item::{Item, number_value, string_value};
use super::{Conflicts, NewUserWrite, Page, Store, StoreError, cursor};
use crate::schema::{
    BY_LEADERBOARD, LAST_UPDATED, LEADERBOARD_KEY, SUBMISSION_COUNT, TABLE_ID, TOTAL_COUNT,
    USER_COUNT, USERNAME, leaderboard_key,
};

/// A user's scores as the API returns them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    pub username: String,
    pub submission_count: u64,
    pub total_count: u64,
    pub last_updated: Option<String>,
}

/// The counts a PUT writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserCounts {
    pub submission_count: u64,
    pub total_count: u64,
}

/// What a PUT did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutUserOutcome {
    /// The user did not exist before; the table's `userCount` grew by one.
    pub created_new: bool,
}

/// What one attempt at a write did.
enum Attempt {
    /// Written.
    Done,
    /// The user exists (for a create) or does not (for an update): try the other.
    Other,
    /// A concurrent transaction held one of the items, or the counter picked
    /// did not exist yet (and now does): nothing was written; try again.
    Retry,
}

fn user_key(table_id: &str, username: &str) -> Item {
    [
        (TABLE_ID.to_owned(), string_value(table_id)),
        (USERNAME.to_owned(), string_value(username)),
    ]
    .into()
}

fn user_item(table_id: &str, username: &str, counts: UserCounts, now: &str) -> Item {
    let mut item = user_key(table_id, username);
    item.extend([
        (
            SUBMISSION_COUNT.to_owned(),
            number_value(counts.submission_count),
        ),
        (TOTAL_COUNT.to_owned(), number_value(counts.total_count)),
        (LAST_UPDATED.to_owned(), string_value(now)),
        (
            LEADERBOARD_KEY.to_owned(),
            string_value(leaderboard_key(counts.submission_count, username)),
        ),
    ]);
    item
}

/// A `ClientRequestToken` for one transaction: the SDK sends the same one
/// when it retries the call (after a timeout, say), and DynamoDB then answers
/// the transaction's first outcome instead of applying it twice.
fn request_token() -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(32)
        .collect()
}

impl Store {
    fn user_record(&self, item: &Item) -> Result<UserRecord, StoreError> {
        let reader = self.reader(item);
        Ok(UserRecord {
            username: reader.string(USERNAME)?,
            submission_count: reader.count(SUBMISSION_COUNT)?,
            total_count: reader.count(TOTAL_COUNT)?,
            last_updated: reader.optional_string(LAST_UPDATED)?,
        })
    }

    /// One user (strongly consistent). A miss costs a second read to tell a
    /// missing table from a missing user.
    pub async fn get_user(&self, table_id: &str, username: &str) -> Result<UserRecord, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(user_key(table_id, username)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| {
                StoreError::dynamodb(
                    format!("reading user {username} of table {table_id}"),
                    error,
                )
            })?;
        match output.item() {
            Some(item) => self.user_record(item),
            None if self.table_exists(table_id).await? => Err(StoreError::UserNotFound),
            None => Err(StoreError::TableNotFound),
        }
    }

    /// A page of a table's leaderboard: `submissionCount` descending, then
    /// `username`, from the `byLeaderboard` index.
    pub async fn list_users(
        &self,
        table_id: &str,
        limit: u16,
        cursor: Option<&str>,
    ) -> Result<Page<UserRecord>, StoreError> {
        let start = cursor
            .map(|cursor| cursor::decode(cursor, &[TABLE_ID, USERNAME, LEADERBOARD_KEY]))
            .transpose()?;
        if let Some(start) = &start
            && start
                .get(TABLE_ID)
                .and_then(|value| value.as_s().ok())
                .map(String::as_str)
                != Some(table_id)
        {
            return Err(StoreError::InvalidCursor {
                reason: "it belongs to a different table".into(),
            });
        }
        if !self.table_exists(table_id).await? {
            return Err(StoreError::TableNotFound);
        }
        let output = self
            .client
            .query()
            .table_name(&self.table_name)
            .index_name(BY_LEADERBOARD)
            .key_condition_expression("#id = :id")
            .expression_attribute_names("#id", TABLE_ID)
            .expression_attribute_values(":id", string_value(table_id))
            .scan_index_forward(true)
            .limit(i32::from(limit))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|error| {
                StoreError::dynamodb(format!("listing users of table {table_id}"), error)
            })?;
        let items = output
            .items()
            .iter()
            .map(|item| self.user_record(item))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            next_cursor: output.last_evaluated_key().and_then(cursor::encode),
        })
    }

    /// Create or update a user. An existing user costs one conditional update;
    /// a new user is written together with an increment of one of the table's
    /// counters (see [`NewUserWrite`] and [`super::counter`]), so the count stays
    /// exact under any concurrency. Writes that a concurrent transaction held
    /// are retried, with backoff, for up to [`super::CONFLICT_BUDGET`].
    pub async fn put_user(
        &self,
        table_id: &str,
        username: &str,
        counts: UserCounts,
        now: &str,
    ) -> Result<PutUserOutcome, StoreError> {
        let mut conflicts = Conflicts::new();
        loop {
            let attempt = match self
                .update_existing_user(table_id, username, counts, now)
                .await?
            {
                Attempt::Done => return Ok(PutUserOutcome { created_new: false }),
                Attempt::Retry => Attempt::Retry,
                Attempt::Other => match self.new_user_write {
                    NewUserWrite::Transaction => {
                        self.create_user_in_transaction(table_id, username, counts, now)
                            .await?
                    }
                    NewUserWrite::ConditionalPut => {
                        self.create_user_then_count(table_id, username, counts, now, &mut conflicts)
                            .await?
                    }
                },
            };
            match attempt {
                Attempt::Done => return Ok(PutUserOutcome { created_new: true }),
                // Created by someone else meanwhile: update it (the loop's
                // first step), unless the budget is spent.
                Attempt::Other if !conflicts.exhausted() => {}
                Attempt::Retry if conflicts.pause().await => {}
                Attempt::Other | Attempt::Retry => {
                    return Err(
                        conflicts.give_up(format!("writing user {username} of table {table_id}"))
                    );
                }
            }
        }
    }

    /// Update the user if it exists ([`Attempt::Other`] when it does not).
    async fn update_existing_user(
        &self,
        table_id: &str,
        username: &str,
        counts: UserCounts,
        now: &str,
    ) -> Result<Attempt, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(user_key(table_id, username)))
            .update_expression("SET #s = :s, #t = :t, #u = :u, #r = :r")
            .condition_expression("attribute_exists(#name)")
            .expression_attribute_names("#s", SUBMISSION_COUNT)
            .expression_attribute_names("#t", TOTAL_COUNT)
            .expression_attribute_names("#u", LAST_UPDATED)
            .expression_attribute_names("#r", LEADERBOARD_KEY)
            .expression_attribute_names("#name", USERNAME)
            .expression_attribute_values(":s", number_value(counts.submission_count))
            .expression_attribute_values(":t", number_value(counts.total_count))
            .expression_attribute_values(":u", string_value(now))
            .expression_attribute_values(
                ":r",
                string_value(leaderboard_key(counts.submission_count, username)),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(Attempt::Done),
            Err(error) => match error.as_service_error() {
                Some(service) if service.is_conditional_check_failed_exception() => {
                    Ok(Attempt::Other)
                }
                // The user's creating transaction is still in flight.
                Some(service) if service.is_transaction_conflict_exception() => Ok(Attempt::Retry),
                _ => Err(StoreError::dynamodb(
                    format!("updating user {username} of table {table_id}"),
                    error,
                )),
            },
        }
    }

    /// `SAFE_CONCURRENCY=true`: the new user and the increment of a counter
    /// picked at random, in one transaction.
    async fn create_user_in_transaction(
        &self,
        table_id: &str,
        username: &str,
        counts: UserCounts,
        now: &str,
    ) -> Result<Attempt, StoreError> {
        let action = || format!("creating user {username} of table {table_id}");
        let shard = pick_shard();
        let put = Put::builder()
            .table_name(&self.table_name)
            .set_item(Some(user_item(table_id, username, counts, now)))
            .condition_expression("attribute_not_exists(#name)")
            .expression_attribute_names("#name", USERNAME)
            .build()
            .map_err(|error| StoreError::dynamodb(action(), error))?;
        let increment = counter::increment(&self.table_name, table_id, shard)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(increment).build())
            .client_request_token(request_token())
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(Attempt::Done),
            Err(error) => error,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(canceled)) =
            error.as_service_error()
        else {
            return Err(StoreError::dynamodb(action(), error));
        };
        let code = |index: usize| {
            canceled
                .cancellation_reasons()
                .get(index)
                .and_then(|reason| reason.code())
                .unwrap_or("None")
        };
        if code(0) == "ConditionalCheckFailed" {
            return Ok(Attempt::Other);
        }
        if code(1) == "ConditionalCheckFailed" {
            // No such counter: the table is gone, or predates counters.
            if !self.table_exists(table_id).await? {
                return Err(StoreError::TableNotFound);
            }
            self.create_counter(table_id, shard).await?;
            return Ok(Attempt::Retry);
        }
        if canceled
            .cancellation_reasons()
            .iter()
            .any(|reason| reason.code() == Some("TransactionConflict"))
        {
            return Ok(Attempt::Retry);
        }
        Err(StoreError::dynamodb(action(), error))
    }

    /// `SAFE_CONCURRENCY=false`: check the table, put the user only if absent,
    /// and only then increment a counter picked at random (creating it if
    /// missing). Neither write is a transaction, so neither conflicts with
    /// another writer of this mode; an increment that a transaction of the
    /// other mode holds is retried within the budget.
    async fn create_user_then_count(
        &self,
        table_id: &str,
        username: &str,
        counts: UserCounts,
        now: &str,
        conflicts: &mut Conflicts,
    ) -> Result<Attempt, StoreError> {
        if !self.table_exists(table_id).await? {
            return Err(StoreError::TableNotFound);
        }
        let put = self
            .client
            .put_item()
            .table_name(&self.table_name)
            .set_item(Some(user_item(table_id, username, counts, now)))
            .condition_expression("attribute_not_exists(#name)")
            .expression_attribute_names("#name", USERNAME)
            .send()
            .await;
        if let Err(error) = put {
            return match error.as_service_error() {
                Some(service) if service.is_conditional_check_failed_exception() => {
                    Ok(Attempt::Other)
                }
                Some(service) if service.is_transaction_conflict_exception() => Ok(Attempt::Retry),
                _ => Err(StoreError::dynamodb(
                    format!("creating user {username} of table {table_id}"),
                    error,
                )),
            };
        }
        let action = || format!("counting new user {username} of table {table_id}");
        loop {
            let result = self
                .client
                .update_item()
                .table_name(&self.table_name)
                .set_key(Some(counter_key(table_id, pick_shard())))
                .update_expression("ADD #count :one")
                .expression_attribute_names("#count", USER_COUNT)
                .expression_attribute_values(":one", number_value(1))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(Attempt::Done),
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
}
