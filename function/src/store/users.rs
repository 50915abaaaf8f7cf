//! Users of a playground table and the table's exact `userCount`.

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use serde::Serialize;

use super::counter::{self, CounterState, pick_shard};
use super::cursor::{self, StartAfter};
use super::item::{Item, number_value, string_value};
use super::{Conflicts, NewUserWrite, Page, Store, StoreError};
use crate::schema::{
    BY_RANK, COMPLETED_TASK_IDS, LAST_UPDATED, LEADERBOARD_KEY, METRICS, MORAL_COMPASS_SCORE,
    PRIMARY_METRIC, QUESTIONS_CORRECT, SUBMISSION_COUNT, TABLE_ID, TASKS_COMPLETED, TEAM_NAME,
    TOTAL_COUNT, TOTAL_QUESTIONS, TOTAL_TASKS, USERNAME, leaderboard_key,
    ranking::{self, Membership, RANK_KEY, RANK_TEAM},
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
    /// The user's 1-based place on the class's leaderboard (asked for with
    /// `withRank=true`): `moralCompassScore` descending (none counts as 0),
    /// then `submissionCount` descending, then `username`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub rank: Option<u64>,
    /// The 1-based place of the user's team on the team leaderboard
    /// (`withRank=true`, a user in a team).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub team_rank: Option<u64>,
    /// Where the ranks count the user (its place, its team): not sent.
    #[serde(skip)]
    pub(crate) counted_as: Option<(String, Option<String>)>,
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
    Done(Written),
    /// The user is not as read (another write changed, created or deleted
    /// it): try again from the user as it is, returned here when DynamoDB
    /// returned it.
    Other(Option<Item>),
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

/// What the update of a user found.
enum Updated {
    /// Updated: the user as it now is.
    Now(Item),
    /// There is no such user.
    Missing,
    /// A transaction held the user: nothing was written.
    Held,
}

/// A write that went through.
#[derive(Default)]
struct Written {
    /// The ranges the write filled past their [`ranking::Level::split_above`],
    /// with the user's place.
    full: Vec<(ranking::Level, String)>,
}

/// What each item of a user's write transaction is, to read its
/// cancellation reasons by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    User,
    Entry,
    Bucket,
    Team,
    /// The increment of this counter shard.
    Counter(u8),
}

/// The items of a user's write transaction and what each is.
#[derive(Default)]
struct RankMoves {
    items: Vec<TransactWriteItem>,
    parts: Vec<Part>,
    written: Written,
}

impl RankMoves {
    fn push(&mut self, part: Part, item: TransactWriteItem) {
        self.parts.push(part);
        self.items.push(item);
    }
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
            rank: None,
            team_rank: None,
            counted_as: reader
                .optional_string(RANK_KEY)?
                .map(|key| Ok::<_, StoreError>((key, reader.optional_string(RANK_TEAM)?)))
                .transpose()?,
        })
    }

    /// One user (strongly consistent). A miss costs a second read to tell a
    /// missing table from a missing user.
    pub async fn get_user(&self, table_id: &str, username: &str) -> Result<UserRecord, StoreError> {
        match self.user_item(table_id, username).await? {
            Some(item) => self.user_record(&item),
            None => Err(self.missing_user(table_id).await?),
        }
    }

    /// A page of a table's leaderboard, from the `byRank` index:
    /// `moralCompassScore` descending (none counts as 0), then
    /// `submissionCount` descending, then `username`.
    pub async fn list_users(
        &self,
        table_id: &str,
        limit: u16,
        start_after: &StartAfter,
    ) -> Result<Page<UserRecord>, StoreError> {
        let start = match start_after {
            StartAfter::First | StartAfter::LegacyKey { username: None, .. } => None,
            StartAfter::Cursor(cursor) => {
                cursor::decode(cursor, &[TABLE_ID, USERNAME, RANK_KEY], |key| {
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
            .index_name(BY_RANK)
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
            .expression_attribute_names("#r", RANK_KEY)
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
            .map(|item| self.reader(item).optional_string(RANK_KEY))
            .transpose()?
            .flatten()
        else {
            return Ok(None);
        };
        let mut key = user_key(table_id, username);
        key.insert(RANK_KEY.to_owned(), string_value(position));
        Ok(Some(key))
    }

    /// Create or update a user, and keep its class's ranks and team standings
    /// exact (see [`crate::schema::ranking`]).
    ///
    /// An existing user costs one update of what `write` sets (no read: two
    /// writes of one user never conflict), which returns the user as it now
    /// is; when its place or team changed, one more transaction moves its
    /// entry, buckets and team ([`Store::rerank`]). A new user is one
    /// transaction: the user, its entry, bucket and team, and, with
    /// `SAFE_CONCURRENCY=true`, one of the table's counters (see
    /// [`NewUserWrite`] and [`super::counter`]), so the count stays exact under
    /// any concurrency. Writes that a concurrent transaction held are retried,
    /// with backoff, at most [`super::MAX_CONFLICT_RETRIES`] times.
    pub async fn put_user(
        &self,
        table_id: &str,
        username: &str,
        write: &UserWrite,
        now: &str,
    ) -> Result<PutUserOutcome, StoreError> {
        let mut conflicts = Conflicts::new();
        loop {
            match self
                .update_existing_user(table_id, username, write, now)
                .await?
            {
                Updated::Now(item) => {
                    self.rerank(table_id, username, item, &mut conflicts)
                        .await?;
                    return Ok(PutUserOutcome { created_new: false });
                }
                Updated::Held if conflicts.pause().await => continue,
                Updated::Held => {
                    return Err(
                        conflicts.give_up(format!("writing user {username} of table {table_id}"))
                    );
                }
                Updated::Missing => {}
            }
            match self.create_user(table_id, username, write, now).await? {
                Attempt::Done(written) => {
                    self.split_if_full(table_id, &written).await;
                    if self.new_user_write == NewUserWrite::ConditionalPut {
                        self.count_new_user(table_id, username, &mut conflicts)
                            .await?;
                    }
                    return Ok(PutUserOutcome { created_new: true });
                }
                // Created by another write meanwhile: update it (the loop's
                // first step) at once, unless the budget is spent.
                Attempt::Other(_) if conflicts.count() => {}
                Attempt::Retry if conflicts.pause().await => {}
                Attempt::Other(_) | Attempt::Retry => {
                    return Err(
                        conflicts.give_up(format!("writing user {username} of table {table_id}"))
                    );
                }
            }
        }
    }

    /// Update the user if it exists.
    async fn update_existing_user(
        &self,
        table_id: &str,
        username: &str,
        write: &UserWrite,
        now: &str,
    ) -> Result<Updated, StoreError> {
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
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Updated::Now(
                output.attributes().cloned().unwrap_or_default(),
            )),
            Err(error) => match error.as_service_error() {
                Some(service) if service.is_conditional_check_failed_exception() => {
                    Ok(Updated::Missing)
                }
                // A transaction holds the user (its creation, or a rerank).
                Some(service) if service.is_transaction_conflict_exception() => Ok(Updated::Held),
                _ => Err(StoreError::dynamodb(
                    format!("updating user {username} of table {table_id}"),
                    error,
                )),
            },
        }
    }

    /// Bring the ranks to `item` (the user as a write left it): when its place
    /// or team is not the one counted, move its entry, buckets and team in one
    /// transaction, on the condition that the user is still as read. A user
    /// changed meanwhile is ranked as it then is; when another write's rerank
    /// already counted it so, there is nothing left to do.
    async fn rerank(
        &self,
        table_id: &str,
        username: &str,
        mut item: Item,
        conflicts: &mut Conflicts,
    ) -> Result<(), StoreError> {
        loop {
            match self.rerank_once(table_id, username, &item).await? {
                Attempt::Done(written) => {
                    self.split_if_full(table_id, &written).await;
                    return Ok(());
                }
                // Another write changed the user and made progress: go on at
                // once from the user as it is, as DynamoDB returned it (else
                // after a pause, read again).
                Attempt::Other(Some(found)) if conflicts.count() => item = found,
                Attempt::Other(found) if conflicts.pause().await => {
                    item = match found {
                        Some(found) => found,
                        None => match self.user_item(table_id, username).await? {
                            Some(found) => found,
                            // Deleted meanwhile (with its table): nothing to rank.
                            None => return Ok(()),
                        },
                    };
                }
                Attempt::Retry if conflicts.pause().await => {}
                Attempt::Other(_) | Attempt::Retry => {
                    return Err(
                        conflicts.give_up(format!("ranking user {username} of table {table_id}"))
                    );
                }
            }
        }
    }

    /// The user's item as it is now (strongly consistent), if it exists.
    pub(super) async fn user_item(
        &self,
        table_id: &str,
        username: &str,
    ) -> Result<Option<Item>, StoreError> {
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
        Ok(output.item().cloned())
    }

    /// One attempt at moving `item`'s counted place and team to those its
    /// attributes give.
    async fn rerank_once(
        &self,
        table_id: &str,
        username: &str,
        item: &Item,
    ) -> Result<Attempt, StoreError> {
        let action = || format!("ranking user {username} of table {table_id}");
        let build = |error| StoreError::build(action(), error);
        let (new_key, new_team) = ranking::placing(item)
            .ok_or_else(|| StoreError::build(action(), BuildError::other("no username")))?;
        let old_key = item.get(RANK_KEY).and_then(|key| key.as_s().ok());
        let old_team = item.get(RANK_TEAM).and_then(|team| team.as_s().ok());
        if old_key == Some(&new_key)
            && old_team.map(String::as_str) == new_team.map(|team| team.team)
        {
            return Ok(Attempt::Done(Written::default()));
        }
        let mut user = Update::builder()
            .table_name(&self.table_name)
            .set_key(Some(user_key(table_id, username)))
            .expression_attribute_names("#rank", RANK_KEY)
            .expression_attribute_names("#team", RANK_TEAM)
            .expression_attribute_values(":rank", string_value(&new_key))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        user = match new_team {
            Some(team) => user
                .update_expression("SET #rank = :rank, #team = :team")
                .expression_attribute_values(":team", string_value(team.team)),
            None => user.update_expression("SET #rank = :rank REMOVE #team"),
        };
        // Still as read: what was counted, and what the place is computed from.
        let mut conditions = Vec::new();
        for (index, name) in [
            RANK_KEY,
            RANK_TEAM,
            MORAL_COMPASS_SCORE,
            SUBMISSION_COUNT,
            TEAM_NAME,
        ]
        .into_iter()
        .enumerate()
        {
            user = user.expression_attribute_names(format!("#c{index}"), name);
            match item.get(name) {
                Some(value) => {
                    conditions.push(format!("#c{index} = :c{index}"));
                    user = user.expression_attribute_values(format!(":c{index}"), value.clone());
                }
                None => conditions.push(format!("attribute_not_exists(#c{index})")),
            }
        }
        let user = user
            .condition_expression(conditions.join(" AND "))
            .build()
            .map_err(build)?;
        let old = (
            old_key.map(String::as_str),
            old_team.map(|team| Membership {
                team,
                score: old_key
                    .and_then(|key| ranking::score_of(key))
                    .unwrap_or(0.0),
            }),
        );
        let Some(mut moves) = self.rank_moves(table_id, old, (&new_key, new_team)).await? else {
            return Ok(Attempt::Retry);
        };
        moves
            .items
            .insert(0, TransactWriteItem::builder().update(user).build());
        moves.parts.insert(0, Part::User);
        self.transact_ranked(table_id, moves, action).await
    }

    /// A new user, in one transaction with its entry, bucket and team (and,
    /// with `SAFE_CONCURRENCY=true`, one of the table's counters).
    async fn create_user(
        &self,
        table_id: &str,
        username: &str,
        write: &UserWrite,
        now: &str,
    ) -> Result<Attempt, StoreError> {
        let action = || format!("creating user {username} of table {table_id}");
        let build = |error| StoreError::build(action(), error);
        let mut item = user_item(table_id, username, write, now);
        let (new_key, new_team) = ranking::placing(&item)
            .map(|(key, team)| (key, team.map(|team| (team.team.to_owned(), team.score))))
            .ok_or_else(|| StoreError::build(action(), BuildError::other("no username")))?;
        item.insert(RANK_KEY.to_owned(), string_value(&new_key));
        if let Some((team, _)) = &new_team {
            item.insert(RANK_TEAM.to_owned(), string_value(team));
        }
        let put = Put::builder()
            .table_name(&self.table_name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#name)")
            .expression_attribute_names("#name", USERNAME)
            .build()
            .map_err(build)?;
        let new_team = new_team.as_ref().map(|(team, score)| Membership {
            team,
            score: *score,
        });
        let Some(mut moves) = self
            .rank_moves(table_id, (None, None), (&new_key, new_team))
            .await?
        else {
            return Ok(Attempt::Retry);
        };
        moves
            .items
            .insert(0, TransactWriteItem::builder().put(put).build());
        moves.parts.insert(0, Part::User);
        // The count: with `SAFE_CONCURRENCY=true` here, else after (on the
        // condition here that the table is not being deleted).
        let shard = pick_shard();
        let counted = match self.new_user_write {
            NewUserWrite::Transaction => TransactWriteItem::builder()
                .update(counter::increment(&self.table_name, table_id, shard)?)
                .build(),
            NewUserWrite::ConditionalPut => TransactWriteItem::builder()
                .condition_check(counter::open_check(&self.table_name, table_id, shard)?)
                .build(),
        };
        moves.push(Part::Counter(shard), counted);
        self.transact_ranked(table_id, moves, action).await
    }

    /// The entry, bucket and team changes that move a user counted at `old`
    /// (place, team) to `new`; `None` when the old place's bucket is there
    /// and the new one's is not: the table is being deleted, bucket by bucket.
    async fn rank_moves(
        &self,
        table_id: &str,
        old: (Option<&str>, Option<Membership<'_>>),
        new: (&str, Option<Membership<'_>>),
    ) -> Result<Option<RankMoves>, StoreError> {
        let table = self.table_name.as_str();
        let build = |error| StoreError::build(format!("ranking a user of table {table_id}"), error);
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut moves = RankMoves::default();
        let (old_key, new_key) = (old.0, new.0);
        if old_key != Some(new_key) {
            let Some(counts) = ranking::count_changes(
                &self.client(),
                table,
                table_id,
                old_key,
                Some(new_key),
                now_ms,
            )
            .await
            .map_err(|error| {
                StoreError::ranking(format!("ranking a user of table {table_id}"), error)
            })?
            else {
                return Ok(None);
            };
            if let Some(old_key) = old_key {
                moves.push(
                    Part::Entry,
                    ranking::entry_delete(table, table_id, old_key).map_err(build)?,
                );
            }
            moves.push(
                Part::Entry,
                ranking::entry_put(table, table_id, new_key).map_err(build)?,
            );
            for item in counts.items {
                moves.push(Part::Bucket, item);
            }
            moves.written.full = counts.full;
        }
        for change in ranking::team_changes(table, table_id, old.1, new.1).map_err(build)? {
            moves.push(Part::Team, change);
        }
        Ok(Some(moves))
    }

    /// Send a user's write transaction; what its cancellation means.
    async fn transact_ranked(
        &self,
        table_id: &str,
        moves: RankMoves,
        action: impl Fn() -> String,
    ) -> Result<Attempt, StoreError> {
        let RankMoves {
            items,
            parts,
            written,
        } = moves;
        let result = self
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(request_token())
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(Attempt::Done(written)),
            Err(error) => error,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(canceled)) =
            error.as_service_error()
        else {
            return Err(StoreError::dynamodb(action(), error));
        };
        let reasons = canceled.cancellation_reasons();
        let refused = |reason: &aws_sdk_dynamodb::types::CancellationReason| {
            reason.code() == Some("ConditionalCheckFailed")
        };
        for (part, reason) in parts.iter().zip(reasons) {
            match part {
                Part::User if refused(reason) => {
                    let found = reason.item().filter(|item| !item.is_empty()).cloned();
                    return Ok(Attempt::Other(found));
                }
                Part::Counter(shard) if refused(reason) => {
                    return self.counter_refused(table_id, *shard).await;
                }
                _ => {}
            }
        }
        if parts
            .iter()
            .zip(reasons)
            .any(|(part, reason)| *part == Part::Bucket && refused(reason))
            || reasons
                .iter()
                .any(|reason| reason.code() == Some("TransactionConflict"))
        {
            // A bucket being split (or just split), or an item another
            // transaction held: nothing was written; try again.
            return Ok(Attempt::Retry);
        }
        Err(StoreError::dynamodb(action(), error))
    }

    /// Split the buckets and groups a write filled past their
    /// [`ranking::Level::split_above`]. The write is done whatever happens
    /// here: a split that fails is logged and left to the next write that
    /// finds the range full.
    async fn split_if_full(&self, table_id: &str, written: &Written) {
        if written.full.is_empty() {
            return;
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        if let Err(error) = ranking::split_full(
            &self.client(),
            &self.table_name,
            table_id,
            &written.full,
            now_ms,
        )
        .await
        {
            tracing::warn!(%error, table_id, "a full rank bucket or group was not split");
        }
    }

    /// `SAFE_CONCURRENCY=false`: count a user just created by a transaction
    /// without a counter, in a counter picked at random (creating it if
    /// missing). An increment that a concurrent transaction holds is retried
    /// within the budget; when the table was deleted meanwhile, the user is
    /// taken back out, so none outlives the delete.
    async fn count_new_user(
        &self,
        table_id: &str,
        username: &str,
        conflicts: &mut Conflicts,
    ) -> Result<(), StoreError> {
        let action = || format!("counting new user {username} of table {table_id}");
        loop {
            // One item, yet a transaction: its token makes the SDK's own
            // retry of an attempt that timed out after DynamoDB applied it
            // a no-op, where a plain `ADD` would count the user twice.
            let shard = pick_shard();
            let result = self
                .client()
                .transact_write_items()
                .transact_items(
                    TransactWriteItem::builder()
                        .update(counter::increment(&self.table_name, table_id, shard)?)
                        .build(),
                )
                .client_request_token(request_token())
                .send()
                .await;
            let error = match result {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            let reason = match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(canceled)) => canceled
                    .cancellation_reasons()
                    .first()
                    .and_then(|reason| reason.code())
                    .map(str::to_owned),
                _ => None,
            };
            let refused = match reason.as_deref() {
                Some("TransactionConflict") => Attempt::Retry,
                Some("ConditionalCheckFailed") => {
                    match self.counter_refused(table_id, shard).await {
                        Ok(attempt) => attempt,
                        Err(StoreError::TableNotFound) => {
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
    /// gone or being deleted, taking it out of the ranks first.
    async fn remove_uncounted_user(
        &self,
        table_id: &str,
        username: &str,
    ) -> Result<(), StoreError> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        ranking::unrank_user(&self.client(), &self.table_name, table_id, username, now_ms)
            .await
            .map_err(|error| {
                StoreError::ranking(
                    format!("taking user {username} of deleted table {table_id} out of the ranks"),
                    error,
                )
            })?;
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
