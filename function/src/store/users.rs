//! Users of a playground table and the table's exact `userCount`.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::Serialize;

use super::counter::{self, CounterState, counter_key, pick_shard};
use super::cursor::{self, StartAfter};
use super::item::{Item, number_value, string_value};
use super::{Conflicts, NewUserWrite, Page, Store, StoreError};
use crate::schema::{
    BY_LEADERBOARD, COMPLETED_TASK_IDS, COUNTER_CLOSED, LAST_UPDATED, LEADERBOARD_KEY, METRICS,
    MORAL_COMPASS_SCORE, PRIMARY_METRIC, QUESTIONS_CORRECT, SUBMISSION_COUNT, TABLE_ID,
    TASKS_COMPLETED, TEAM_NAME, TOTAL_COUNT, TOTAL_QUESTIONS, TOTAL_TASKS, USER_COUNT, USERNAME,
    leaderboard_key,
};

/// A user's scores as the API returns them: the moral-compass fields and the
/// team wherever they were written (items without them still read).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    pub username: String,
    pub submission_count: u64,
    pub total_count: u64,
    pub last_updated: Option<String>,
    /// The user's team, where one was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_name: Option<String>,
    /// The primary metric weighted by the share of tasks and questions done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moral_compass_score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<std::collections::BTreeMap<String, f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_metric: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub tasks_completed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub total_tasks: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub questions_correct: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub total_questions: Option<u64>,
    /// Sorted by number (`t1`, `t2`, `t10`), each once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_task_ids: Option<Vec<String>>,
}

/// The counts a PUT writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserCounts {
    pub submission_count: u64,
    pub total_count: u64,
}

/// What one write of a user sets, and only that: a plain score PUT and a
/// moral-compass PUT each keep what the other wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserWrite {
    /// Attributes set (besides `lastUpdated`, always set).
    pub sets: Vec<(&'static str, AttributeValue)>,
    /// Attributes removed (an emptied task list).
    pub removes: Vec<&'static str>,
    /// The `submissionCount` written, if any: the leaderboard key follows it.
    pub submission_count: Option<u64>,
}

impl UserWrite {
    /// A plain score PUT: the two counts, and the team when named.
    pub fn scores(counts: UserCounts, team_name: Option<&str>) -> Self {
        let mut sets = vec![
            (SUBMISSION_COUNT, number_value(counts.submission_count)),
            (TOTAL_COUNT, number_value(counts.total_count)),
        ];
        if let Some(team) = team_name {
            sets.push((TEAM_NAME, string_value(team)));
        }
        Self {
            sets,
            removes: Vec::new(),
            submission_count: Some(counts.submission_count),
        }
    }
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

pub(super) fn user_key(table_id: &str, username: &str) -> Item {
    [
        (TABLE_ID.to_owned(), string_value(table_id)),
        (USERNAME.to_owned(), string_value(username)),
    ]
    .into()
}

/// A new user as `write` creates it: what it sets, counts of 0 where it
/// sets none, and its leaderboard key.
fn user_item(table_id: &str, username: &str, write: &UserWrite, now: &str) -> Item {
    let mut item = user_key(table_id, username);
    item.insert(SUBMISSION_COUNT.to_owned(), number_value(0));
    item.insert(TOTAL_COUNT.to_owned(), number_value(0));
    for (name, value) in &write.sets {
        item.insert((*name).to_owned(), value.clone());
    }
    item.insert(LAST_UPDATED.to_owned(), string_value(now));
    item.insert(
        LEADERBOARD_KEY.to_owned(),
        string_value(leaderboard_key(
            write.submission_count.unwrap_or(0),
            username,
        )),
    );
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
            team_name: reader.optional_string(TEAM_NAME)?,
            moral_compass_score: reader.optional_number(MORAL_COMPASS_SCORE)?,
            metrics: reader.optional_number_map(METRICS)?,
            primary_metric: reader.optional_string(PRIMARY_METRIC)?,
            tasks_completed: reader.optional_count(TASKS_COMPLETED)?,
            total_tasks: reader.optional_count(TOTAL_TASKS)?,
            questions_correct: reader.optional_count(QUESTIONS_CORRECT)?,
            total_questions: reader.optional_count(TOTAL_QUESTIONS)?,
            completed_task_ids: reader
                .optional_strings(COMPLETED_TASK_IDS)?
                .map(crate::schema::sorted_task_ids),
        })
    }

    /// One user (strongly consistent). A miss costs a second read to tell a
    /// missing table from a missing user.
    pub async fn get_user(&self, table_id: &str, username: &str) -> Result<UserRecord, StoreError> {
        let output = self
            .client()
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
            None => Err(self.missing_user(table_id).await?),
        }
    }

    /// A page of a table's leaderboard: `submissionCount` descending, then
    /// `username`, from the `byLeaderboard` index.
    pub async fn list_users(
        &self,
        table_id: &str,
        limit: u16,
        start_after: &StartAfter,
    ) -> Result<Page<UserRecord>, StoreError> {
        let start = match start_after {
            StartAfter::First | StartAfter::LegacyKey { username: None, .. } => None,
            StartAfter::Cursor(cursor) => {
                cursor::decode(cursor, &[TABLE_ID, USERNAME, LEADERBOARD_KEY], |key| {
                    cursor::holds(key, TABLE_ID, table_id)
                })
            }
            // A key of another table: the first page of this one.
            StartAfter::LegacyKey {
                table_id: Some(other),
                ..
            } if other != table_id => None,
            StartAfter::LegacyKey {
                username: Some(username),
                ..
            }
            | StartAfter::Id(username) => self.leaderboard_position_of(table_id, username).await?,
        };
        if !self.table_exists(table_id).await? {
            return Err(StoreError::TableNotFound);
        }
        let output = self
            .client()
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

    /// Where `username` sits on its table's leaderboard, as an
    /// `ExclusiveStartKey` (one read of the user); `None` (the first page, as
    /// the legacy handler had it) when there is no such user.
    async fn leaderboard_position_of(
        &self,
        table_id: &str,
        username: &str,
    ) -> Result<Option<Item>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(user_key(table_id, username)))
            .projection_expression("#r")
            .expression_attribute_names("#r", LEADERBOARD_KEY)
            .send()
            .await
            .map_err(|error| {
                StoreError::dynamodb(
                    format!("finding user {username} on the leaderboard of table {table_id}"),
                    error,
                )
            })?;
        let Some(position) = output
            .item()
            .map(|item| self.reader(item).optional_string(LEADERBOARD_KEY))
            .transpose()?
            .flatten()
        else {
            return Ok(None);
        };
        let mut key = user_key(table_id, username);
        key.insert(LEADERBOARD_KEY.to_owned(), string_value(position));
        Ok(Some(key))
    }

    /// Create or update a user. An existing user costs one conditional update;
    /// a new user is written together with an increment of one of the table's
    /// counters (see [`NewUserWrite`] and [`super::counter`]), so the count stays
    /// exact under any concurrency. Writes that a concurrent transaction held
    /// are retried, with backoff, at most [`super::MAX_CONFLICT_RETRIES`] times.
    pub async fn put_user(
        &self,
        table_id: &str,
        username: &str,
        write: &UserWrite,
        now: &str,
    ) -> Result<PutUserOutcome, StoreError> {
        let mut conflicts = Conflicts::new();
        loop {
            let attempt = match self
                .update_existing_user(table_id, username, write, now)
                .await?
            {
                Attempt::Done => return Ok(PutUserOutcome { created_new: false }),
                Attempt::Retry => Attempt::Retry,
                Attempt::Other => match self.new_user_write {
                    NewUserWrite::Transaction => {
                        self.create_user_in_transaction(table_id, username, write, now)
                            .await?
                    }
                    NewUserWrite::ConditionalPut => {
                        self.create_user_then_count(table_id, username, write, now, &mut conflicts)
                            .await?
                    }
                },
            };
            match attempt {
                Attempt::Done => return Ok(PutUserOutcome { created_new: true }),
                // Created by someone else meanwhile: update it (the loop's
                // first step), unless the budget is spent.
                Attempt::Other if conflicts.count() => {}
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
        write: &UserWrite,
        now: &str,
    ) -> Result<Attempt, StoreError> {
        let mut request = self.client().update_item();
        let mut sets = vec!["#u = :u".to_owned()];
        for (index, (name, value)) in write.sets.iter().enumerate() {
            sets.push(format!("#s{index} = :s{index}"));
            request = request
                .expression_attribute_names(format!("#s{index}"), *name)
                .expression_attribute_values(format!(":s{index}"), value.clone());
        }
        if let Some(submissions) = write.submission_count {
            sets.push("#r = :r".to_owned());
            request = request
                .expression_attribute_names("#r", LEADERBOARD_KEY)
                .expression_attribute_values(
                    ":r",
                    string_value(leaderboard_key(submissions, username)),
                );
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !write.removes.is_empty() {
            let removes: Vec<String> = (0..write.removes.len())
                .map(|index| format!("#x{index}"))
                .collect();
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
            for (index, name) in write.removes.iter().enumerate() {
                request = request.expression_attribute_names(format!("#x{index}"), *name);
            }
        }
        let result = request
            .table_name(&self.table_name)
            .set_key(Some(user_key(table_id, username)))
            .update_expression(expression)
            .condition_expression("attribute_exists(#name)")
            .expression_attribute_names("#u", LAST_UPDATED)
            .expression_attribute_names("#name", USERNAME)
            .expression_attribute_values(":u", string_value(now))
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
        write: &UserWrite,
        now: &str,
    ) -> Result<Attempt, StoreError> {
        let action = || format!("creating user {username} of table {table_id}");
        let shard = pick_shard();
        let put = Put::builder()
            .table_name(&self.table_name)
            .set_item(Some(user_item(table_id, username, write, now)))
            .condition_expression("attribute_not_exists(#name)")
            .expression_attribute_names("#name", USERNAME)
            .build()
            .map_err(|error| StoreError::build(action(), error))?;
        let increment = counter::increment(&self.table_name, table_id, shard)?;
        let result = self
            .client()
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
            return self.counter_refused(table_id, shard).await;
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
        write: &UserWrite,
        now: &str,
        conflicts: &mut Conflicts,
    ) -> Result<Attempt, StoreError> {
        if !self.table_exists(table_id).await? {
            return Err(StoreError::TableNotFound);
        }
        let put = self
            .client()
            .put_item()
            .table_name(&self.table_name)
            .set_item(Some(user_item(table_id, username, write, now)))
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
            let shard = pick_shard();
            let result = self
                .client()
                .update_item()
                .table_name(&self.table_name)
                .set_key(Some(counter_key(table_id, shard)))
                .update_expression("ADD #count :one")
                .condition_expression(counter::OPEN_COUNTER)
                .expression_attribute_names("#count", USER_COUNT)
                .expression_attribute_names("#id", TABLE_ID)
                .expression_attribute_names("#closed", COUNTER_CLOSED)
                .expression_attribute_values(":one", number_value(1))
                .send()
                .await;
            let error = match result {
                Ok(_) => return Ok(Attempt::Done),
                Err(error) => error,
            };
            let refused = match error.as_service_error() {
                Some(service) if service.is_transaction_conflict_exception() => Attempt::Retry,
                Some(service) if service.is_conditional_check_failed_exception() => {
                    match self.counter_refused(table_id, shard).await {
                        Ok(attempt) => attempt,
                        Err(StoreError::TableNotFound) => {
                            // The table was deleted (or is being deleted)
                            // since it was checked: take the user back out, so
                            // none outlives the delete.
                            self.remove_uncounted_user(table_id, username).await?;
                            return Err(StoreError::TableNotFound);
                        }
                        Err(other) => return Err(other),
                    }
                }
                _ => return Err(StoreError::dynamodb(action(), error)),
            };
            if matches!(refused, Attempt::Retry) && !conflicts.pause().await {
                return Err(conflicts.give_up(action()));
            }
        }
    }

    /// What to do when counter `shard` refused a new user's increment: retry
    /// when it is open again or was missing and is now created;
    /// [`StoreError::TableNotFound`] when the table is gone or being deleted.
    async fn counter_refused(&self, table_id: &str, shard: u8) -> Result<Attempt, StoreError> {
        match self.counter_state(table_id, shard).await? {
            CounterState::Open => Ok(Attempt::Retry),
            CounterState::Closed => Err(StoreError::TableNotFound),
            // The table is gone, or predates counters: create it only if the
            // table exists (one transaction).
            CounterState::Missing => {
                self.create_counter(table_id, shard).await?;
                Ok(Attempt::Retry)
            }
        }
    }

    /// Delete a user just put whose count was refused because its table is
    /// gone or being deleted.
    async fn remove_uncounted_user(
        &self,
        table_id: &str,
        username: &str,
    ) -> Result<(), StoreError> {
        self.client()
            .delete_item()
            .table_name(&self.table_name)
            .set_key(Some(user_key(table_id, username)))
            .send()
            .await
            .map(|_| ())
            .map_err(|error| {
                StoreError::dynamodb(
                    format!("removing user {username} of deleted table {table_id}"),
                    error,
                )
            })
    }
}
