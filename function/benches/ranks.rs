//! What ranks cost in DynamoDB at class sizes of 30 to 100,000: for each read
//! of the API that serves ranks, and for moral-compass writes (a user that
//! moves, one that also changes team, a new user), the DynamoDB round trips (counted by an SDK interceptor on the
//! client the router uses) and the capacity units, computed by DynamoDB's
//! rules from the items each call read or wrote (sized as DynamoDB sizes
//! items). Ranks served are checked against the seeded order on the side: the
//! run fails when one is wrong.
//!
//! ```text
//! EMULATOR_ENDPOINT=$(scripts/emulator start 0) cargo bench -p function --bench ranks
//! RANKS_BENCH_SIZES=30,500 EMULATOR_ENDPOINT=… cargo bench -p function --bench ranks
//! cargo bench -p function --bench ranks -- 30 500      # sizes as arguments
//! ```
//!
//! Without `EMULATOR_ENDPOINT` it exits (status 2) saying how to start the
//! emulator. `EMULATOR_PID` (optional): the emulator's process id, whose resident
//! memory is then printed after each class is seeded.
//!
//! Nothing here is a time: the emulator (moto) scans a table for every query
//! of an index and sorts a partition for every query, so wall times say
//! nothing about DynamoDB. Round trips and item sizes are what it answers
//! exactly; capacity units are computed from those sizes (see `docs/ranks.md`).

#[path = "../tests/it/support.rs"]
mod support;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemInput, UpdateItemOutput};
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use axum::http::StatusCode;
use bigdecimal::BigDecimal;
use playground_api::api::router;
use playground_api::schema::{self, TABLE_ID, TABLE_SCHEMA, USERNAME, ranking};
use playground_api::store::{NewUserWrite, Store, create_table_if_missing};
use serde_json::{Value, json};
use support::{Stage, TestApi};

type Item = HashMap<String, AttributeValue>;

const DEFAULT_SIZES: [usize; 4] = [30, 500, 10_000, 100_000];
const CLASS: &str = "class";
/// Members per team, about.
const TEAM_SIZE: usize = 25;
const KB: u64 = 1024;
/// A Query or Scan stops after this much data read, in DynamoDB's sizes.
const PAGE_LIMIT: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------
// The interceptor: every call's input, its output where sizes come from it,
// and every attempt (round trip).

/// One DynamoDB call the router made.
#[derive(Debug, Clone)]
enum Call {
    GetItem(GetItemInput, Option<GetItemOutput>),
    Query(QueryInput, Option<QueryOutput>),
    UpdateItem(UpdateItemInput, Option<Result<UpdateItemOutput, String>>),
    TransactWriteItems(TransactWriteItemsInput, Option<Result<(), String>>),
    Other(String),
}

#[derive(Debug, Clone, Copy)]
struct CallId(usize);

impl Storable for CallId {
    type Storer = StoreReplace<Self>;
}

#[derive(Debug, Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
    attempts: Arc<AtomicUsize>,
}

impl Recorder {
    fn take(&self) -> (Vec<Call>, usize) {
        let calls = std::mem::take(&mut *self.calls.lock().expect("recorder lock"));
        (calls, self.attempts.swap(0, Ordering::SeqCst))
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "RanksBenchRecorder"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let input = context.input();
        let call = if let Some(input) = input.downcast_ref::<GetItemInput>() {
            Call::GetItem(input.clone(), None)
        } else if let Some(input) = input.downcast_ref::<QueryInput>() {
            Call::Query(input.clone(), None)
        } else if let Some(input) = input.downcast_ref::<UpdateItemInput>() {
            Call::UpdateItem(input.clone(), None)
        } else if let Some(input) = input.downcast_ref::<TransactWriteItemsInput>() {
            Call::TransactWriteItems(input.clone(), None)
        } else {
            Call::Other(format!("{input:?}").chars().take(60).collect())
        };
        let mut calls = self.calls.lock().expect("recorder lock");
        cfg.interceptor_state().store_put(CallId(calls.len()));
        calls.push(call);
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let Some(CallId(index)) = cfg.load::<CallId>().copied() else {
            return Ok(());
        };
        let outcome = context.output_or_error();
        let mut calls = self.calls.lock().expect("recorder lock");
        let Some(call) = calls.get_mut(index) else {
            return Ok(());
        };
        let failure = |outcome: Option<Result<_, _>>| match outcome {
            Some(Err(error)) => Some(format!("{error:?}").chars().take(200).collect::<String>()),
            None => Some("no outcome".to_owned()),
            Some(Ok(_)) => None,
        };
        match call {
            Call::GetItem(_, output) => {
                *output = outcome
                    .and_then(Result::ok)
                    .and_then(|output| output.downcast_ref::<GetItemOutput>().cloned());
            }
            Call::Query(_, output) => {
                *output = outcome
                    .and_then(Result::ok)
                    .and_then(|output| output.downcast_ref::<QueryOutput>().cloned());
            }
            Call::UpdateItem(_, output) => {
                *output = Some(
                    match outcome
                        .and_then(Result::ok)
                        .and_then(|output| output.downcast_ref::<UpdateItemOutput>().cloned())
                    {
                        Some(output) => Ok(output),
                        None => Err(failure(outcome).unwrap_or_default()),
                    },
                );
            }
            Call::TransactWriteItems(_, output) => {
                *output = Some(match failure(outcome) {
                    None => Ok(()),
                    Some(error) => Err(error),
                });
            }
            Call::Other(_) => {}
        }
        Ok(())
    }
}

/// The SDK's timers for the router's client, run [`STRETCH`] times slower.
/// The store caps each attempt at 4 s, a DynamoDB figure; the emulator sorts
/// a whole partition for every query, which at 100,000 users takes longer,
/// and a timed-out attempt would be retried (a round trip that is the
/// emulator's, not the API's). With this, none times out; every call is
/// asserted to have taken one attempt.
#[derive(Debug, Clone, Copy)]
struct StretchedSleep;

const STRETCH: u32 = 100;

impl aws_sdk_dynamodb::config::AsyncSleep for StretchedSleep {
    fn sleep(&self, duration: Duration) -> aws_sdk_dynamodb::config::Sleep {
        aws_sdk_dynamodb::config::Sleep::new(tokio::time::sleep(duration * STRETCH))
    }
}

// ---------------------------------------------------------------------------
// DynamoDB's item sizes (developer guide, "DynamoDB item sizes and formats").

/// A number's size: 1 byte per two significant digits (leading and trailing
/// zeroes trimmed), plus 1.
fn number_size(text: &str) -> u64 {
    let mantissa = text
        .trim_start_matches(['-', '+'])
        .split(['e', 'E'])
        .next()
        .unwrap_or_default();
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    (significant.max(1) as u64).div_ceil(2) + 1
}

fn value_size(value: &AttributeValue) -> u64 {
    match value {
        AttributeValue::S(text) => text.len() as u64,
        AttributeValue::N(text) => number_size(text),
        AttributeValue::B(blob) => blob.as_ref().len() as u64,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        // Sets: the sum of their elements' sizes (the guide gives no overhead).
        AttributeValue::Ss(texts) => texts.iter().map(|text| text.len() as u64).sum(),
        AttributeValue::Ns(numbers) => numbers.iter().map(|number| number_size(number)).sum(),
        AttributeValue::Bs(blobs) => blobs.iter().map(|blob| blob.as_ref().len() as u64).sum(),
        // Lists and maps: 3 bytes, and 1 byte per element.
        AttributeValue::L(values) => {
            3 + values
                .iter()
                .map(|value| 1 + value_size(value))
                .sum::<u64>()
        }
        AttributeValue::M(entries) => {
            3 + entries
                .iter()
                .map(|(name, value)| 1 + name.len() as u64 + value_size(value))
                .sum::<u64>()
        }
        _ => 0,
    }
}

/// An item's size: its attribute names' and values' sizes.
fn item_size(item: &Item) -> u64 {
    item.iter()
        .map(|(name, value)| name.len() as u64 + value_size(value))
        .sum()
}

/// Read capacity of a read of `bytes`: 1 unit per 4 KB (rounded up, at least
/// 1) strongly consistent, half that eventually consistent.
fn read_units(bytes: u64, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4 * KB).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// Write units of one item written: 1 per 1 KB, rounded up, at least 1.
fn write_units(bytes: u64) -> u64 {
    bytes.div_ceil(KB).max(1)
}

// ---------------------------------------------------------------------------
// What a request cost.

#[derive(Debug, Default, Clone)]
struct Cost {
    round_trips: usize,
    calls: Vec<String>,
    items_read: u64,
    bytes_read: u64,
    rcu: f64,
    /// The base table's write units (all in the class's partition).
    wcu: u64,
    /// Write units on the global secondary indexes, by index.
    gsi_wcu: BTreeMap<&'static str, u64>,
    /// Write units by kind of item written (user, entry, bucket shard, team, counter).
    wcu_by_kind: BTreeMap<&'static str, u64>,
    /// The largest single read, bytes (a Query stops at 1 MB).
    largest_read: u64,
    /// Each read: what it read, how many items, bytes, read units.
    reads: Vec<(String, u64, u64, f64)>,
}

fn kind_of(username: &str) -> &'static str {
    if username.starts_with("_rank#e#") {
        "entry"
    } else if username.starts_with("_rank#b#") {
        "bucket shard"
    } else if username.starts_with("_team#") {
        "team"
    } else if username.starts_with("_metadata#count") {
        "counter"
    } else if username == schema::METADATA_USERNAME {
        "metadata"
    } else {
        "user"
    }
}

fn username_of(key: &Item) -> String {
    key.get(USERNAME)
        .and_then(|name| name.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// Only the expression attribute names `expressions` use.
fn names_used(
    names: Option<&HashMap<String, String>>,
    expressions: &[Option<&str>],
) -> Option<HashMap<String, String>> {
    let used: HashMap<String, String> = names?
        .iter()
        .filter(|(placeholder, _)| {
            expressions
                .iter()
                .flatten()
                .any(|expression| expression.contains(placeholder.as_str()))
        })
        .map(|(placeholder, name)| (placeholder.clone(), name.clone()))
        .collect();
    (!used.is_empty()).then_some(used)
}

/// What a Query of the router's reads, from its key range.
fn query_purpose(input: &QueryInput) -> String {
    if let Some(index) = input.index_name() {
        return format!("Query {index} page");
    }
    let starts: Vec<&str> = input
        .expression_attribute_values()
        .into_iter()
        .flatten()
        .filter_map(|(_, value)| value.as_s().ok())
        .map(String::as_str)
        .collect();
    let from = |prefix: &str| {
        starts
            .iter()
            .any(|start| *start == prefix || start.starts_with(prefix))
    };
    if from("_rank#e#") {
        "Query COUNT entries in bucket".to_owned()
    } else if from("_rank#b#") && input.limit().is_some() {
        "Query bucket lookup".to_owned()
    } else if from("_rank#b#") {
        "Query buckets up to the user".to_owned()
    } else if from("_team#") {
        "Query teams".to_owned()
    } else {
        "Query".to_owned()
    }
}

/// The items a Query read: what it returned when it returned whole items,
/// otherwise the same key range and page read again without the projection
/// or the count (DynamoDB charges for the whole items read either way).
async fn items_read_by_query(
    plain: &Client,
    input: &QueryInput,
    output: &QueryOutput,
) -> Vec<Item> {
    let whole = input.projection_expression().is_none()
        && !matches!(input.select(), Some(Select::Count))
        && input.filter_expression().is_none();
    if whole {
        return output.items().to_vec();
    }
    let names = names_used(
        input.expression_attribute_names(),
        &[input.key_condition_expression(), input.filter_expression()],
    );
    let again = plain
        .query()
        .set_table_name(input.table_name().map(str::to_owned))
        .set_index_name(input.index_name().map(str::to_owned))
        .set_key_condition_expression(input.key_condition_expression().map(str::to_owned))
        .set_expression_attribute_names(names)
        .set_expression_attribute_values(input.expression_attribute_values().cloned())
        .set_exclusive_start_key(input.exclusive_start_key().cloned())
        .set_limit(input.limit())
        .set_scan_index_forward(input.scan_index_forward())
        .set_consistent_read(input.consistent_read())
        .send()
        .await
        .expect("reading a query's range again to size it");
    assert_eq!(
        again.last_evaluated_key().is_some(),
        output.last_evaluated_key().is_some(),
        "the range read again ends its page where the call did"
    );
    if let Some(Select::Count) = input.select() {
        assert_eq!(
            again.items().len() as i32,
            output.count(),
            "the range read again holds what the count counted"
        );
    }
    again.items().to_vec()
}

async fn item_read_by_get(
    plain: &Client,
    input: &GetItemInput,
    output: &GetItemOutput,
) -> Option<Item> {
    if input.projection_expression().is_none() {
        return output.item().cloned();
    }
    plain
        .get_item()
        .set_table_name(input.table_name().map(str::to_owned))
        .set_key(input.key().cloned())
        .set_consistent_read(input.consistent_read())
        .send()
        .await
        .expect("reading an item again to size it")
        .item()
        .cloned()
}

async fn get(plain: &Client, table: &str, username: &str) -> Option<Item> {
    plain
        .get_item()
        .table_name(table)
        .key(TABLE_ID, AttributeValue::S(CLASS.into()))
        .key(USERNAME, AttributeValue::S(username.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("a read of an item")
        .item()
        .cloned()
}

/// Every item of the class whose sort key is in `[from, to]`.
async fn range(plain: &Client, table: &str, from: &str, to: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let output = plain
            .query()
            .table_name(table)
            .key_condition_expression("#id = :id AND #name BETWEEN :from AND :to")
            .expression_attribute_names("#id", TABLE_ID)
            .expression_attribute_names("#name", USERNAME)
            .expression_attribute_values(":id", AttributeValue::S(CLASS.into()))
            .expression_attribute_values(":from", AttributeValue::S(from.into()))
            .expression_attribute_values(":to", AttributeValue::S(to.into()))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("reading a range of the class");
        items.extend(output.items().iter().cloned());
        start = output.last_evaluated_key().cloned();
        if start.is_none() {
            return items;
        }
    }
}

/// The class's items a write may touch besides its users and entries: the
/// metadata and counters, the bucket shards and the teams; and `usernames`.
async fn snapshot(plain: &Client, table: &str, usernames: &[String]) -> HashMap<String, Item> {
    let mut items = Vec::new();
    for (from, to) in [
        (schema::METADATA_USERNAME, schema::METADATA_RANGE_END),
        ("_rank#b#", "_rank#b$"),
        ("_team#", "_team$"),
    ] {
        items.extend(range(plain, table, from, to).await);
    }
    for username in usernames {
        items.extend(get(plain, table, username).await);
    }
    items
        .into_iter()
        .map(|item| (username_of(&item), item))
        .collect()
}

/// Write units an index is charged for one item going from `before` to
/// `after` (an index with every attribute projected: any change is written;
/// a change of its key is a delete and a put).
fn index_write_units(
    index: &schema::GlobalSecondaryIndex,
    before: Option<&Item>,
    after: Option<&Item>,
) -> u64 {
    let key = |item: Option<&Item>| {
        let item = item?;
        Some((
            item.get(index.partition_key.name)?.clone(),
            item.get(index.sort_key.name)?.clone(),
        ))
    };
    let size = |item: Option<&Item>| item.map(item_size).unwrap_or(0);
    match (key(before), key(after)) {
        (None, None) => 0,
        (Some(_), None) => write_units(size(before)),
        (None, Some(_)) => write_units(size(after)),
        (Some(old), Some(new)) if old != new => {
            write_units(size(before)) + write_units(size(after))
        }
        (Some(_), Some(_)) if before == after => 0,
        (Some(_), Some(_)) => write_units(size(before).max(size(after))),
    }
}

impl Cost {
    fn charge_write(
        &mut self,
        before: Option<&Item>,
        after: Option<&Item>,
        factor: u64,
        username: &str,
    ) {
        let size = before
            .map(item_size)
            .unwrap_or(0)
            .max(after.map(item_size).unwrap_or(0));
        let units = factor * write_units(size);
        self.wcu += units;
        *self.wcu_by_kind.entry(kind_of(username)).or_default() += units;
        for index in TABLE_SCHEMA.global_secondary_indexes {
            let units = index_write_units(index, before, after);
            if units > 0 {
                *self.gsi_wcu.entry(index.name).or_default() += units;
            }
        }
    }

    fn charge_read(&mut self, what: String, items: &[Item], consistent: bool) {
        let bytes: u64 = items.iter().map(item_size).sum();
        self.items_read += items.len() as u64;
        self.bytes_read += bytes;
        self.largest_read = self.largest_read.max(bytes);
        let units = read_units(bytes, consistent);
        self.rcu += units;
        self.reads.push((what, items.len() as u64, bytes, units));
    }
}

/// What `calls` cost. `before` holds the items writes may touch as they were
/// before the request (see [`snapshot`]); after it, what a write touched is
/// read again.
async fn cost_of(
    plain: &Client,
    table: &str,
    calls: Vec<Call>,
    round_trips: usize,
    mut state: HashMap<String, Item>,
) -> Cost {
    let mut cost = Cost {
        round_trips,
        ..Cost::default()
    };
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for call in calls {
        match call {
            Call::GetItem(input, output) => {
                let output = output.expect("a GetItem answered");
                let item = item_read_by_get(plain, &input, &output).await;
                let what = match input.key().map(username_of).as_deref() {
                    Some(schema::METADATA_USERNAME) => "GetItem table check",
                    _ => "GetItem user",
                };
                cost.charge_read(
                    what.to_owned(),
                    &Vec::from_iter(item),
                    input.consistent_read() == Some(true),
                );
                *tally.entry("GetItem".into()).or_default() += 1;
            }
            Call::Query(input, output) => {
                let output = output.expect("a Query answered");
                let items = items_read_by_query(plain, &input, &output).await;
                // An index is read eventually consistent only.
                let consistent =
                    input.index_name().is_none() && input.consistent_read() == Some(true);
                cost.charge_read(query_purpose(&input), &items, consistent);
                let what = match (input.index_name(), input.select()) {
                    (Some(index), _) => format!("Query {index}"),
                    (None, Some(Select::Count)) => "Query COUNT".to_owned(),
                    (None, _) => "Query".to_owned(),
                };
                *tally.entry(what).or_default() += 1;
            }
            Call::UpdateItem(input, output) => {
                let key = input.key().cloned().unwrap_or_default();
                let username = username_of(&key);
                let before = state.get(&username).cloned();
                match output.expect("an UpdateItem answered") {
                    Ok(output) => {
                        let after = output.attributes().cloned();
                        cost.charge_write(before.as_ref(), after.as_ref(), 1, &username);
                        if let Some(after) = after {
                            state.insert(username, after);
                        }
                        *tally.entry("UpdateItem".into()).or_default() += 1;
                    }
                    Err(error) => {
                        // A refused condition is charged a write all the same.
                        assert!(
                            error.contains("ConditionalCheckFailed"),
                            "an UpdateItem failed: {error}"
                        );
                        cost.charge_write(before.as_ref(), before.as_ref(), 1, &username);
                        *tally.entry("UpdateItem (refused)".into()).or_default() += 1;
                    }
                }
            }
            Call::TransactWriteItems(input, output) => {
                if let Err(error) = output.expect("a transaction answered") {
                    panic!("a transaction failed in a run without concurrency: {error}");
                }
                for item in input.transact_items() {
                    let key = if let Some(put) = item.put() {
                        [
                            (TABLE_ID.to_owned(), put.item()[TABLE_ID].clone()),
                            (USERNAME.to_owned(), put.item()[USERNAME].clone()),
                        ]
                        .into()
                    } else if let Some(update) = item.update() {
                        update.key().clone()
                    } else if let Some(delete) = item.delete() {
                        delete.key().clone()
                    } else if let Some(check) = item.condition_check() {
                        check.key().clone()
                    } else {
                        continue;
                    };
                    let username = username_of(&key);
                    let before = state.get(&username).cloned().or_else(|| {
                        // An entry holds its keys only.
                        (item.delete().is_some() && kind_of(&username) == "entry")
                            .then_some(key.clone())
                    });
                    let after = get(plain, table, &username).await;
                    cost.charge_write(before.as_ref(), after.as_ref(), 2, &username);
                    if let Some(after) = after {
                        state.insert(username, after);
                    }
                }
                *tally
                    .entry(format!(
                        "TransactWriteItems({})",
                        input.transact_items().len()
                    ))
                    .or_default() += 1;
            }
            Call::Other(what) => *tally.entry(what).or_default() += 1,
        }
    }
    cost.calls = tally
        .into_iter()
        .map(|(what, count)| {
            if count == 1 {
                what
            } else {
                format!("{what} ×{count}")
            }
        })
        .collect();
    cost
}

// ---------------------------------------------------------------------------
// The class.

#[derive(Debug, Clone)]
struct Student {
    name: String,
    score: f64,
    submissions: u64,
    team: String,
}

/// `size` students in teams of about 25, with varied scores (ties included:
/// a fifth have done no task and score 0).
fn students(size: usize) -> Vec<Student> {
    let teams = size.div_ceil(TEAM_SIZE);
    (0..size)
        .map(|index| {
            let accuracy = ((index * 7919 + 13) % 1000) as f64 / 1000.0;
            let done = (index % 5) as f64;
            Student {
                name: format!("student{index:06}"),
                score: accuracy * done / 4.0,
                submissions: 1 + (index as u64 * 31) % 7,
                team: format!("team-{:04}", (index * 7) % teams),
            }
        })
        .collect()
}

fn user_item(student: &Student, index: usize) -> Item {
    let number = |value: f64| AttributeValue::N(ranking::score_text(value));
    let count = |value: u64| AttributeValue::N(value.to_string());
    let done = (index % 5) as u64;
    let accuracy = ((index * 7919 + 13) % 1000) as f64 / 1000.0;
    let mut item: Item = [
        (TABLE_ID, AttributeValue::S(CLASS.into())),
        (USERNAME, AttributeValue::S(student.name.clone())),
        (schema::SUBMISSION_COUNT, count(student.submissions)),
        (schema::TOTAL_COUNT, count(student.submissions * 2)),
        (
            schema::LEADERBOARD_KEY,
            AttributeValue::S(schema::leaderboard_key(student.submissions, &student.name)),
        ),
        (
            schema::LAST_UPDATED,
            AttributeValue::S("2026-01-01T00:00:00.000Z".into()),
        ),
        (schema::TEAM_NAME, AttributeValue::S(student.team.clone())),
        (
            schema::METRICS,
            AttributeValue::M([("accuracy".to_owned(), number(accuracy))].into()),
        ),
        (schema::PRIMARY_METRIC, AttributeValue::S("accuracy".into())),
        (schema::TASKS_COMPLETED, count(done)),
        (schema::TOTAL_TASKS, count(4)),
        (schema::QUESTIONS_CORRECT, count(0)),
        (schema::TOTAL_QUESTIONS, count(0)),
        (schema::MORAL_COMPASS_SCORE, number(student.score)),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    if done > 0 {
        item.insert(
            schema::COMPLETED_TASK_IDS.to_owned(),
            AttributeValue::Ss((1..=done).map(|task| format!("t{task}")).collect()),
        );
    }
    item
}

/// The leaderboard's order: score descending, submissions descending, name.
fn order(students: &mut [Student]) {
    students.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.submissions.cmp(&a.submissions))
            .then_with(|| a.name.cmp(&b.name))
    });
}

/// The team leaderboard: (name, members), average descending, then more
/// members, then the name (exact sums of the stored scores).
fn team_order(students: &[Student]) -> Vec<(String, u64)> {
    let mut teams: BTreeMap<&str, (u64, BigDecimal)> = BTreeMap::new();
    for student in students {
        let entry = teams.entry(&student.team).or_default();
        entry.0 += 1;
        entry.1 += BigDecimal::from_str(&ranking::score_text(student.score)).expect("a score");
    }
    let mut standings: Vec<(String, u64, BigDecimal)> = teams
        .into_iter()
        .map(|(name, (members, sum))| {
            let average = (sum / BigDecimal::from(members)).with_prec(34);
            (name.to_owned(), members, average)
        })
        .collect();
    standings.sort_by(|a, b| {
        b.2.cmp(&a.2)
            .then(b.1.cmp(&a.1))
            .then_with(|| a.0.cmp(&b.0))
    });
    standings
        .into_iter()
        .map(|(name, members, _)| (name, members))
        .collect()
}

fn rss_of(pid: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{:.2} GiB", kb as f64 / (1024.0 * 1024.0)))
}

/// Write the class straight into the table: every user, entry, bucket and
/// team as ranking leaves them ([`ranking::ranked_class`]).
async fn seed(plain: &Client, table: &str, students: &[Student]) {
    let started = Instant::now();
    let users = students
        .iter()
        .enumerate()
        .map(|(index, student)| user_item(student, index))
        .collect();
    let items = ranking::ranked_class(CLASS, users);
    let total = items.len();
    let mut written = 0;
    for chunk in items.chunks(10_000) {
        emulator::put_items(plain, table, chunk.to_vec()).await;
        written += chunk.len();
        if total > 10_000 {
            eprintln!(
                "  seeded {written}/{total} items ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "seeded {} users as {total} items in {:.1} s",
        students.len(),
        started.elapsed().as_secs_f64()
    );
}

/// One measured request: its cost, and its answer.
struct Measured {
    label: String,
    cost: Cost,
    reply: support::Reply,
}

struct Bench {
    api: TestApi,
    plain: Client,
    recorder: Recorder,
    table: String,
}

impl Bench {
    async fn measure(
        &self,
        label: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
        touches: &[String],
    ) -> Measured {
        let before = if method == "GET" {
            HashMap::new()
        } else {
            snapshot(&self.plain, &self.table, touches).await
        };
        self.recorder.take();
        let headers: &[(&str, &str)] = if body.is_some() {
            &[("content-type", "application/json")]
        } else {
            &[]
        };
        let reply = self.api.send(method, path, body, headers).await;
        let (calls, round_trips) = self.recorder.take();
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{method} {path}: {:?}",
            reply.body
        );
        assert_eq!(
            round_trips,
            calls.len(),
            "{method} {path}: every call answered at its first attempt (no retry counted)"
        );
        let cost = cost_of(&self.plain, &self.table, calls, round_trips, before).await;
        Measured {
            label: label.to_owned(),
            cost,
            reply,
        }
    }

    async fn rank_of(&self, name: &str) -> Value {
        let reply = self
            .api
            .get(&format!("/tables/{CLASS}/users/{name}?withRank=true"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {:?}", reply.body);
        reply.body
    }
}

fn moral_compass(accuracy: f64, team: &str) -> String {
    json!({
        "metrics": {"accuracy": accuracy},
        "tasksCompleted": 4, "totalTasks": 4,
        "questionsCorrect": 0, "totalQuestions": 0,
        "teamName": team,
    })
    .to_string()
}

async fn run(endpoint: &str, size: usize, pid: Option<&str>) -> Vec<Measured> {
    eprintln!("class of {size}:");
    let config = emulator::sdk_config_for(endpoint).await;
    let plain = Client::new(&config);
    let recorder = Recorder::default();
    let counted = Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .interceptor(recorder.clone())
            .sleep_impl(StretchedSleep)
            .build(),
    );
    let table = emulator::unique_name("PlaygroundScores-ranks");
    create_table_if_missing(&plain, &table)
        .await
        .unwrap_or_else(|error| panic!("creating {table}: {error}"));
    let api = TestApi {
        // The emulator takes seconds where DynamoDB takes milliseconds (it
        // sorts the whole partition for every query): a budget it meets (and
        // the SDK's clock is stretched, see `StretchedSleep`).
        router: router(
            Store::new(counted, table.clone(), NewUserWrite::Transaction)
                .with_request_timeout(Duration::from_secs(600)),
        ),
        table_name: table.clone(),
        client: plain.clone(),
        stage: Stage::Named,
    };
    api.create_table(CLASS).await;
    let mut class = students(size);
    seed(&plain, &table, &class).await;
    if let Some(rss) = pid.and_then(rss_of) {
        eprintln!("emulator resident memory after seeding {size}: {rss}");
    }
    order(&mut class);
    let teams = team_order(&class);
    let team_rank: HashMap<&str, usize> = teams
        .iter()
        .enumerate()
        .map(|(index, (name, _))| (name.as_str(), index + 1))
        .collect();
    let bench = Bench {
        api,
        plain,
        recorder,
        table,
    };
    let mut rows = Vec::new();

    // Reads.
    for (label, place) in [("top", 0), ("middle", size / 2), ("bottom", size - 1)] {
        let student = &class[place];
        let measured = bench
            .measure(
                &format!("GET user withRank ({label}, rank {})", place + 1),
                "GET",
                &format!("/tables/{CLASS}/users/{}?withRank=true", student.name),
                None,
                &[],
            )
            .await;
        assert_eq!(
            measured.reply.body["rank"],
            json!(place + 1),
            "{}",
            student.name
        );
        assert_eq!(
            measured.reply.body["teamRank"],
            json!(team_rank[student.team.as_str()]),
            "{}",
            student.name
        );
        rows.push(measured);
    }
    for limit in [50, 500] {
        let measured = bench
            .measure(
                &format!("GET users?limit={limit}"),
                "GET",
                &format!("/tables/{CLASS}/users?limit={limit}"),
                None,
                &[],
            )
            .await;
        let listed: Vec<&str> = measured.reply.body["users"]
            .as_array()
            .expect("users")
            .iter()
            .map(|user| user["username"].as_str().unwrap_or_default())
            .collect();
        let expected: Vec<&str> = class.iter().take(limit).map(|s| s.name.as_str()).collect();
        assert_eq!(listed, expected, "the first {limit} users in order");
        rows.push(measured);
    }
    let measured = bench
        .measure(
            "GET teams (first page, 50)",
            "GET",
            &format!("/tables/{CLASS}/teams"),
            None,
            &[],
        )
        .await;
    let served: Vec<(String, u64)> = measured.reply.body["teams"]
        .as_array()
        .expect("teams")
        .iter()
        .map(|team| {
            (
                team["teamName"].as_str().unwrap_or_default().to_owned(),
                team["memberCount"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        served,
        teams.iter().take(50).cloned().collect::<Vec<_>>(),
        "the team leaderboard"
    );
    rows.push(measured);

    // Writes: an existing user moves up, in its team; another moves up and
    // changes team; a new user joins.
    let mover = class[size / 2].clone();
    let changer = class[size - 1].clone();
    let other_team = teams
        .iter()
        .map(|(name, _)| name)
        .find(|name| **name != changer.team)
        .cloned()
        .unwrap_or_else(|| "team-new".to_owned());
    let newcomer_team = class[0].team.clone();
    let writes = [
        (
            "PUT moral-compass: moves up, same team",
            mover.name.clone(),
            0.9995,
            mover.team.clone(),
            true,
        ),
        (
            "PUT moral-compass: moves up, changes team",
            changer.name.clone(),
            0.9993,
            other_team,
            true,
        ),
        (
            "PUT moral-compass: new user",
            "newcomer".to_owned(),
            0.9991,
            newcomer_team,
            false,
        ),
    ];
    for (label, name, accuracy, team, exists) in writes {
        let old_entry = if exists {
            let item = get(&bench.plain, &bench.table, &name)
                .await
                .expect("the user");
            let key = item[ranking::RANK_KEY].as_s().expect("ranked").clone();
            vec![name.clone(), ranking::entry_username(&key)]
        } else {
            vec![name.clone()]
        };
        let measured = bench
            .measure(
                label,
                "PUT",
                &format!("/tables/{CLASS}/users/{name}/moral-compass"),
                Some(&moral_compass(accuracy, &team)),
                &old_entry,
            )
            .await;
        rows.push(measured);
        let submissions = class_submissions(&bench, &name).await;
        class.retain(|student| student.name != name);
        class.push(Student {
            name: name.clone(),
            score: accuracy,
            submissions,
            team,
        });
        order(&mut class);
        let place = class
            .iter()
            .position(|student| student.name == name)
            .expect("written");
        assert_eq!(
            bench.rank_of(&name).await["rank"],
            json!(place + 1),
            "{name} after its write"
        );
    }
    let teams = team_order(&class);
    for (index, student) in [0, size / 3, size / 2, class.len() - 1]
        .into_iter()
        .map(|index| (index, &class[index]))
    {
        let body = bench.rank_of(&student.name).await;
        assert_eq!(
            body["rank"],
            json!(index + 1),
            "{} after the writes",
            student.name
        );
        let team_rank = teams
            .iter()
            .position(|(name, _)| *name == student.team)
            .map(|index| index + 1);
        assert_eq!(
            body["teamRank"],
            json!(team_rank),
            "{} after the writes",
            student.name
        );
    }
    rows
}

async fn class_submissions(bench: &Bench, name: &str) -> u64 {
    get(&bench.plain, &bench.table, name)
        .await
        .and_then(|item| {
            item.get(schema::SUBMISSION_COUNT)?
                .as_n()
                .ok()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn sizes() -> Vec<usize> {
    let from_args: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .flat_map(|arg| {
            arg.split(',')
                .map(|size| size.trim().replace('_', "").parse::<usize>())
                .collect::<Vec<_>>()
        })
        .map(|size| size.expect("class sizes are whole numbers"))
        .collect();
    if !from_args.is_empty() {
        return from_args;
    }
    match std::env::var("RANKS_BENCH_SIZES") {
        Ok(sizes) if !sizes.trim().is_empty() => sizes
            .split(',')
            .map(|size| {
                size.trim()
                    .replace('_', "")
                    .parse::<usize>()
                    .expect("RANKS_BENCH_SIZES: comma-separated whole numbers")
            })
            .collect(),
        _ => DEFAULT_SIZES.to_vec(),
    }
}

fn units(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(endpoint) = std::env::var("EMULATOR_ENDPOINT")
        .ok()
        .filter(|endpoint| !endpoint.is_empty())
    else {
        eprintln!(
            "ranks bench: EMULATOR_ENDPOINT is not set. Start the emulator and pass its endpoint:\n\
             \n    EMULATOR_ENDPOINT=$(scripts/emulator start 0) cargo bench -p function --bench ranks\n\
             \n(`scripts/emulator start 0` prints the endpoint; `scripts/emulator stop` stops it.)"
        );
        std::process::exit(2);
    };
    let sizes = sizes();
    assert!(
        sizes.iter().all(|size| *size >= 4),
        "class sizes of at least 4 (top, middle and bottom users, and a mover)"
    );
    let pid = std::env::var("EMULATOR_PID").ok();
    let started = Instant::now();
    let mut table = Vec::new();
    for size in &sizes {
        let class_started = Instant::now();
        let rows = run(&endpoint, *size, pid.as_deref()).await;
        eprintln!(
            "class of {size}: done in {:.0} s (emulator time, not DynamoDB's)",
            class_started.elapsed().as_secs_f64()
        );
        table.push((*size, rows));
    }
    println!();
    println!(
        "| class | request | round trips | DynamoDB calls | items read | KB read | RCU | table WCU | index WCU |"
    );
    println!("| ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |");
    for (size, rows) in &table {
        for row in rows {
            let cost = &row.cost;
            let index_wcu = if cost.gsi_wcu.is_empty() {
                "0".to_owned()
            } else {
                cost.gsi_wcu
                    .iter()
                    .map(|(index, units)| format!("{index} {units}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!(
                "| {size} | {} | {} | {} | {} | {:.1} | {} | {} | {} |",
                row.label,
                cost.round_trips,
                cost.calls.join(", "),
                cost.items_read,
                cost.bytes_read as f64 / KB as f64,
                units(cost.rcu),
                cost.wcu,
                index_wcu,
            );
        }
    }
    println!();
    for (size, rows) in &table {
        for row in rows {
            let reads: Vec<String> = row
                .cost
                .reads
                .iter()
                .map(|(what, items, bytes, units)| {
                    format!(
                        "{what}: {items} items, {:.1} KB, {} RCU",
                        *bytes as f64 / KB as f64,
                        self::units(*units)
                    )
                })
                .collect();
            println!("- {size}, {}: {}", row.label, reads.join("; "));
        }
        for row in rows.iter().filter(|row| row.cost.wcu > 0) {
            let by_kind: Vec<String> = row
                .cost
                .wcu_by_kind
                .iter()
                .map(|(kind, units)| format!("{kind} {units}"))
                .collect();
            println!(
                "- {size}, {}: table WCU by item: {}",
                row.label,
                by_kind.join(", ")
            );
        }
        let largest = rows
            .iter()
            .map(|row| row.cost.largest_read)
            .max()
            .unwrap_or(0);
        if largest > PAGE_LIMIT {
            println!(
                "- {size}: a single call read {largest} bytes, over DynamoDB's 1 MB page: on DynamoDB it takes more round trips than here"
            );
        }
    }
    println!();
    println!(
        "Sizes: {sizes:?}; {} s in all on the emulator (moto; its times are not DynamoDB's).",
        started.elapsed().as_secs()
    );
}
