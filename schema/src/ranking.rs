//! Ranks computed exactly for a class of any size without reading its users,
//! and team totals kept exact in the same write as a member's score.
//! The function keeps them on every write of a user; the deployer's backfill
//! ranks users written before ranks existed; its data commands leave these
//! derived items behind (the target ranks its own users).
//!
//! **Order.** `moralCompassScore` descending (a user without one counts as 0,
//! as the teaching apps count it), then `submissionCount` descending, then
//! `username` ascending: ascending order of [`rank_key`]. A user's `rank` is
//! its 1-based place in that order, as the apps compute it from a sorted list.
//!
//! **Items**, all in the class's own partition, with sort keys that no user or
//! table can have (`#` is not allowed in a username):
//! - on each ranked user: [`RANK_KEY`] (its place; the [`crate::BY_RANK`]
//!   index lists users by it) and [`RANK_TEAM`] (the team its score is counted
//!   in, if any);
//! - an *entry* `_rank#e#<rankKey>` per ranked user, keys only: the index's
//!   order kept in the table itself, so that a range of it can be counted
//!   with a strongly consistent read (an index is only eventually consistent);
//! - *buckets*, each kept on [`BUCKET_SHARDS`] items `_rank#b#<lo>#<shard>`:
//!   how many entries lie in `[lo, hi)` (the sum of the shards' [`ENTRIES`];
//!   [`BUCKET_HI`] is absent on the last bucket). The first has `lo = ""`. A
//!   bucket over [`SPLIT_ABOVE`] entries is split in two at its median,
//!   recounted exactly from its entries while writers of it wait
//!   ([`SPLITTING`]);
//! - *groups*, kept like buckets on items `_rank#g#<lo>#<shard>`: how many
//!   entries lie in a run of whole buckets. A group over
//!   [`GROUP_SPLIT_ABOVE`] entries is split at the bucket edge nearest its
//!   median, recounted from its buckets while every writer that would change
//!   a bucket of it waits, and while no bucket split of it may finish;
//! - *teams* `_team#<name>`: [`MEMBERS`] and the sum of their scores, kept
//!   exact with `ADD` of whole numbers in bands of 19 digits ([`score_bands`]),
//!   whatever the scores' magnitudes.
//!
//! **Invariant**, kept by every write in one transaction: a user has
//! [`RANK_KEY`] if and only if its entry exists and is counted once in the
//! bucket covering it and once in the group covering that bucket (a class
//! ranked before groups existed has none until its next write, which counts
//! its first group from its buckets), and, when it has [`RANK_TEAM`], one member and its
//! score (the one [`RANK_KEY`] encodes) are counted in that team.
//!
//! **What a rank costs** (measured in `docs/ranks.md`): one query of the
//! group shards up to the user's ([`BUCKET_SHARDS`] items per 2,048 to 4,096
//! users ahead), one of the bucket shards within its group (at most 32
//! buckets), one count of at most [`SPLIT_ABOVE`] entries, and, for a team's
//! rank, one query of the teams (every team).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, SdkError};
use aws_sdk_dynamodb::operation::query::QueryError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use bigdecimal::BigDecimal;
use bigdecimal::num_bigint::{BigInt, Sign};

use crate::{MAX_COUNT, TABLE_ID, USERNAME};

/// On a ranked user: its place, [`rank_key`].
pub const RANK_KEY: &str = "rankKey";
/// On a ranked user with a team: the team its score is counted in.
pub const RANK_TEAM: &str = "rankTeam";
/// On a bucket: how many entries it covers.
pub const ENTRIES: &str = "entries";
/// On a bucket but the last: where the next one starts.
pub const BUCKET_HI: &str = "hi";
/// On a bucket being split: when the split began (epoch milliseconds).
pub const SPLITTING: &str = "splitting";
/// On a team: how many users are counted in it.
pub const MEMBERS: &str = "members";
/// A bucket with more entries than this is split in two.
pub const SPLIT_ABOVE: u64 = 256;
/// A group with more entries than this is split in two, at a bucket's edge:
/// a group holds 8 to 32 buckets (of 128 to 256 entries), so a rank reads at
/// most 32 buckets' shards within the user's group, and one group's shards
/// per 2,048 to 4,096 users ahead of it.
pub const GROUP_SPLIT_ABOVE: u64 = 4_096;
/// How many items a bucket's count is spread over. Every write that moves a
/// user touches one, picked at random, so that a class submitting at once
/// conflicts on its first bucket this many times less (DynamoDB cancels
/// concurrent transactions on one item).
pub const BUCKET_SHARDS: u8 = 8;
/// A split that has not finished after this long is taken as abandoned
/// (its process died): writers go ahead, and the split fails.
pub const SPLIT_LEASE_MS: i64 = 10_000;

const ENTRY_PREFIX: &str = "_rank#e#";
/// Above every entry's sort key (`$` follows `#`).
const ENTRY_END: &str = "_rank#e$";
const BUCKET_PREFIX: &str = "_rank#b#";
const GROUP_PREFIX: &str = "_rank#g#";
/// Above every rank key (which is hexadecimal digits, then a username).
pub const LAST_KEY: &str = "~";
const TEAM_PREFIX: &str = "_team#";
/// Above every team's sort key.
const TEAM_END: &str = "_team$";
/// Team score sums are kept in bands of this many decimal digits.
const BAND_DIGITS: u32 = 19;
/// Band `k` is kept in attribute `scoreSum{k + BAND_OFFSET}` (DynamoDB's
/// numbers span 10^-130 to 10^126: bands -7 to 6).
const BAND_OFFSET: i64 = 10;
const BAND_ATTRIBUTE_PREFIX: &str = "scoreSum";

/// The sort key of the entry of a user placed at `rank_key`.
pub fn entry_username(rank_key: &str) -> String {
    format!("{ENTRY_PREFIX}{rank_key}")
}

/// The sort key of the bucket starting at `lo`.
pub fn bucket_username(lo: &str) -> String {
    format!("{BUCKET_PREFIX}{lo}")
}

/// The sort key of team `name`.
pub fn team_username(name: &str) -> String {
    format!("{TEAM_PREFIX}{name}")
}

/// The sort-key ranges (inclusive) that hold every derived item of a class:
/// its rank entries and buckets, then its teams.
pub const DERIVED_RANGES: [(&str, &str); 2] = [("_rank#", "_rank$"), (TEAM_PREFIX, TEAM_END)];

/// Whether `username` (a sort key) is one of the derived items above: never
/// a user, never exported, rebuilt by the target of a copy.
pub fn is_derived(username: &str) -> bool {
    username.starts_with("_rank#") || username.starts_with(TEAM_PREFIX)
}

/// A score as it is stored: the shortest text that reads back as the same
/// double; exponent form outside 1e-6 to 1e21, where plain digits run long.
pub fn score_text(value: f64) -> String {
    if value == 0.0 {
        "0".to_owned()
    } else if (1e-6..1e21).contains(&value.abs()) {
        value.to_string()
    } else {
        format!("{value:e}")
    }
}

/// 16 hexadecimal digits whose ascending order is `score`'s descending order
/// (every double, one key each; -0 is 0).
pub fn score_key(score: f64) -> String {
    let score = if score == 0.0 { 0.0 } else { score };
    let bits = score.to_bits();
    let ascending = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    format!("{:016x}", !ascending)
}

/// The score a [`score_key`] (or a [`rank_key`]) encodes.
pub fn score_of(key: &str) -> Option<f64> {
    let descending = u64::from_str_radix(key.get(..16)?, 16).ok()?;
    let ascending = !descending;
    let bits = if ascending >> 63 == 1 {
        ascending & !(1 << 63)
    } else {
        !ascending
    };
    Some(f64::from_bits(bits))
}

/// A user's place: ascending order of this string is `score` descending,
/// then `submission_count` descending, then `username` ascending. Both
/// numbers have a fixed width, so the username needs no separator.
pub fn rank_key(score: f64, submission_count: u64, username: &str) -> String {
    let inverted = MAX_COUNT - submission_count.min(MAX_COUNT);
    format!("{}{inverted:016}{username}", score_key(score))
}

/// `value` split into the parts each team band keeps: `(attribute, whole
/// number)`, band `k` counting units of 10^(19k), each part at most 19
/// digits, so a band's sum stays within DynamoDB's 38 digits for up to 10^19
/// members. `None` when `value` is not
/// a decimal number.
pub fn score_bands(value: &str) -> Option<Vec<(String, String)>> {
    let value = BigDecimal::from_str(value).ok()?;
    Some(bands_of(&value))
}

fn bands_of(value: &BigDecimal) -> Vec<(String, String)> {
    let (digits, scale) = value.as_bigint_and_exponent();
    if digits.sign() == Sign::NoSign {
        return Vec::new();
    }
    // value = digits × 10^-scale; align the scale to a band boundary.
    let band = i64::from(BAND_DIGITS);
    let aligned_scale = scale.div_euclid(band) * band + if scale % band == 0 { 0 } else { band };
    let mut rest = digits * BigInt::from(10).pow((aligned_scale - scale) as u32);
    let limb = BigInt::from(10).pow(BAND_DIGITS);
    let negative = rest.sign() == Sign::Minus;
    if negative {
        rest = -rest;
    }
    let mut parts = Vec::new();
    let mut index = -(aligned_scale / band);
    while rest.sign() != Sign::NoSign {
        let part = &rest % &limb;
        rest /= &limb;
        if part.sign() != Sign::NoSign {
            // A whole number of the band's unit, 10^(19 × index): integers
            // are exact in DynamoDB and in every emulator's arithmetic.
            let sign = if negative { "-" } else { "" };
            parts.push((band_attribute(index), format!("{sign}{part}")));
        }
        index += 1;
    }
    parts
}

fn band_attribute(index: i64) -> String {
    format!("{BAND_ATTRIBUTE_PREFIX}{}", index + BAND_OFFSET)
}

/// The exact sum of a team's scores, from its item's bands: band `k` holds
/// a whole number of 10^(19k).
pub fn team_score_sum(item: &HashMap<String, AttributeValue>) -> BigDecimal {
    item.iter()
        .filter_map(|(name, value)| {
            let index = name
                .strip_prefix(BAND_ATTRIBUTE_PREFIX)?
                .parse::<i64>()
                .ok()?
                - BAND_OFFSET;
            let units = BigInt::from_str(value.as_n().ok()?).ok()?;
            Some(BigDecimal::new(units, -index * i64::from(BAND_DIGITS)))
        })
        .sum()
}

/// A team's change of score sum, band by band: `new − old`.
fn band_changes(old: Option<f64>, new: Option<f64>) -> Vec<(String, String)> {
    let decimal = |value: Option<f64>| {
        value
            .and_then(|value| BigDecimal::from_str(&score_text(value)).ok())
            .unwrap_or_default()
    };
    bands_of(&(decimal(new) - decimal(old)))
}

/// The two levels of counts over a class's entries. Buckets count entries;
/// groups count the entries of a run of whole buckets, so that a rank reads
/// the groups ahead of the user, the buckets ahead of it within its group and
/// the entries ahead of it within its bucket, never every bucket of the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Bucket,
    Group,
}

impl Level {
    fn prefix(self) -> &'static str {
        match self {
            Level::Bucket => BUCKET_PREFIX,
            Level::Group => GROUP_PREFIX,
        }
    }

    /// A range of this level holding more entries than this is split in two.
    pub fn split_above(self) -> u64 {
        match self {
            Level::Bucket => SPLIT_ABOVE,
            Level::Group => GROUP_SPLIT_ABOVE,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Level::Bucket => "bucket",
            Level::Group => "group",
        }
    }

    /// The sort key of this level's range starting at `lo`.
    fn username(self, lo: &str) -> String {
        format!("{}{lo}", self.prefix())
    }

    /// Above every shard item of this level's range starting at `lo`.
    fn end(self, lo: &str) -> String {
        format!("{}#~", self.username(lo))
    }

    fn shard_key(self, table_id: &str, lo: &str, shard: u8) -> HashMap<String, AttributeValue> {
        key(table_id, format!("{}#{shard}", self.username(lo)))
    }
}

/// A bucket or a group as a write or a rank found it: a range of places and
/// how many entries lie in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Its first key (`""` for the first of its level).
    pub lo: String,
    /// The next range's first key; `None` for the last.
    pub hi: Option<String>,
    /// How many entries it covers.
    pub entries: u64,
}

fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key(table_id: &str, username: String) -> HashMap<String, AttributeValue> {
    [
        (TABLE_ID.to_owned(), string(table_id)),
        (USERNAME.to_owned(), string(username)),
    ]
    .into()
}

/// One shard item of a range of `level`: what it holds.
fn shard_from(level: Level, item: &HashMap<String, AttributeValue>) -> Option<Bucket> {
    let username = item.get(USERNAME)?.as_s().ok()?;
    let (lo, _shard) = username.strip_prefix(level.prefix())?.rsplit_once('#')?;
    Some(Bucket {
        lo: lo.to_owned(),
        hi: item.get(BUCKET_HI).and_then(|hi| hi.as_s().ok()).cloned(),
        entries: item
            .get(ENTRIES)
            .and_then(|count| count.as_n().ok())
            .and_then(|count| count.parse::<i64>().ok())
            .unwrap_or(0) as u64,
    })
}

/// Ranges from their shard items, in the order read (each range's shards
/// are adjacent): the entries summed (wrapping: a shard may be below 0 when
/// a user left through another shard than it came by).
fn ranges_from(level: Level, items: &[HashMap<String, AttributeValue>]) -> Vec<Bucket> {
    let mut ranges: Vec<Bucket> = Vec::new();
    for shard in items.iter().filter_map(|item| shard_from(level, item)) {
        match ranges.last_mut() {
            Some(last) if last.lo == shard.lo => {
                last.entries = last.entries.wrapping_add(shard.entries);
            }
            _ => ranges.push(shard),
        }
    }
    ranges
}

/// The sum of `ranges`' entries (wrapping, as a shard's may).
fn total(ranges: &[Bucket]) -> u64 {
    ranges
        .iter()
        .fold(0_u64, |sum, range| sum.wrapping_add(range.entries))
}

/// The range of `level` covering `rank_key` (strongly consistent; one query
/// of its shards), `None` when the class has none yet.
pub async fn range_of(
    client: &Client,
    table: &str,
    table_id: &str,
    level: Level,
    rank_key: &str,
) -> Result<Option<Bucket>, SdkError<QueryError>> {
    let output = client
        .query()
        .table_name(table)
        .key_condition_expression("#id = :id AND #name BETWEEN :lo AND :key")
        .expression_attribute_names("#id", TABLE_ID)
        .expression_attribute_names("#name", USERNAME)
        .expression_attribute_values(":id", string(table_id))
        .expression_attribute_values(":lo", string(level.prefix()))
        .expression_attribute_values(":key", string(level.end(rank_key)))
        .scan_index_forward(false)
        .limit(i32::from(BUCKET_SHARDS))
        .consistent_read(true)
        .send()
        .await?;
    let mut items = output.items().to_vec();
    items.reverse();
    Ok(ranges_from(level, &items).pop())
}

/// The bucket covering `rank_key`, `None` when the class has none yet.
pub async fn bucket_of(
    client: &Client,
    table: &str,
    table_id: &str,
    rank_key: &str,
) -> Result<Option<Bucket>, SdkError<QueryError>> {
    range_of(client, table, table_id, Level::Bucket, rank_key).await
}

/// Every item of `table_id`'s partition whose sort key lies in `[from, to]`
/// (strongly consistent, every page), with only `attributes` when any are
/// named: how every range of a class's derived items is read.
pub async fn items_between(
    client: &Client,
    table: &str,
    table_id: &str,
    (from, to): (&str, &str),
    attributes: &[&str],
) -> Result<Vec<HashMap<String, AttributeValue>>, SdkError<QueryError>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let mut query = client
            .query()
            .table_name(table)
            .key_condition_expression("#id = :id AND #name BETWEEN :from AND :to")
            .expression_attribute_names("#id", TABLE_ID)
            .expression_attribute_names("#name", USERNAME)
            .expression_attribute_values(":id", string(table_id))
            .expression_attribute_values(":from", string(from))
            .expression_attribute_values(":to", string(to))
            .consistent_read(true)
            .set_exclusive_start_key(start);
        if !attributes.is_empty() {
            let mut projection = Vec::new();
            for (index, attribute) in attributes.iter().enumerate() {
                projection.push(format!("#p{index}"));
                query = query.expression_attribute_names(format!("#p{index}"), *attribute);
            }
            query = query.projection_expression(projection.join(", "));
        }
        let output = query.send().await?;
        items.extend(output.items().iter().cloned());
        start = output.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(items);
        }
    }
}

/// The ranges of `level` from the one starting at `from_lo` up to the one
/// covering `rank_key`, in order (strongly consistent; [`BUCKET_SHARDS`]
/// small items per range, a page per 1 MB).
pub async fn ranges_between(
    client: &Client,
    table: &str,
    table_id: &str,
    level: Level,
    from_lo: &str,
    rank_key: &str,
) -> Result<Vec<Bucket>, SdkError<QueryError>> {
    let items = items_between(
        client,
        table,
        table_id,
        (&level.username(from_lo), &level.end(rank_key)),
        &[USERNAME, ENTRIES, BUCKET_HI],
    )
    .await?;
    Ok(ranges_from(level, &items))
}

/// Every bucket up to the one covering `rank_key`, in order: every bucket of
/// the class when `rank_key` is [`LAST_KEY`].
pub async fn buckets_up_to(
    client: &Client,
    table: &str,
    table_id: &str,
    rank_key: &str,
) -> Result<Vec<Bucket>, SdkError<QueryError>> {
    ranges_between(client, table, table_id, Level::Bucket, "", rank_key).await
}

/// How many entries lie in `[from, to]` (strongly consistent count; within
/// one bucket, at most [`SPLIT_ABOVE`] and a few).
pub async fn entries_between(
    client: &Client,
    table: &str,
    table_id: &str,
    from: &str,
    to: &str,
) -> Result<u64, SdkError<QueryError>> {
    let mut count = 0_u64;
    let mut start = None;
    loop {
        let output = client
            .query()
            .table_name(table)
            .key_condition_expression("#id = :id AND #name BETWEEN :from AND :to")
            .expression_attribute_names("#id", TABLE_ID)
            .expression_attribute_names("#name", USERNAME)
            .expression_attribute_values(":id", string(table_id))
            .expression_attribute_values(":from", string(entry_username(from)))
            .expression_attribute_values(":to", string(entry_username(to)))
            .select(aws_sdk_dynamodb::types::Select::Count)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await?;
        count += output.count().max(0) as u64;
        start = output.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(count);
        }
    }
}

/// A user's 1-based place: the entries of every group before its own, of
/// every bucket of its own group before its own bucket, and those of its own
/// bucket up to its key. A class ranked before groups existed (none yet, its
/// next write creates them) is counted from all its buckets.
pub async fn rank_of(
    client: &Client,
    table: &str,
    table_id: &str,
    rank_key: &str,
) -> Result<u64, SdkError<QueryError>> {
    let groups = ranges_between(client, table, table_id, Level::Group, "", rank_key).await?;
    let (mut ahead, from_lo) = match groups.split_last() {
        Some((own, before)) => (total(before), own.lo.clone()),
        None => (0, String::new()),
    };
    let buckets =
        ranges_between(client, table, table_id, Level::Bucket, &from_lo, rank_key).await?;
    let Some((own, before)) = buckets.split_last() else {
        return Ok(0);
    };
    ahead = ahead.wrapping_add(total(before));
    Ok(ahead + entries_between(client, table, table_id, &own.lo, rank_key).await?)
}

/// Where a change of a user's place leaves a range of `level`: `delta` on
/// one of its shards, picked at random, on the condition that it still covers
/// what it covered and is not being split; or, when the class has no range
/// of this level yet, its first range's shards, created holding `delta`.
pub fn count_in(
    table: &str,
    table_id: &str,
    level: Level,
    range: Option<&Bucket>,
    delta: i64,
    now_ms: i64,
) -> Result<Vec<TransactWriteItem>, BuildError> {
    let Some(range) = range else {
        return (0..BUCKET_SHARDS)
            .map(|shard| {
                let mut item = level.shard_key(table_id, "", shard);
                item.insert(
                    ENTRIES.to_owned(),
                    number(if shard == 0 { delta.max(0) } else { 0 }),
                );
                let put = Put::builder()
                    .table_name(table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(#entries)")
                    .expression_attribute_names("#entries", ENTRIES)
                    .build()?;
                Ok(TransactWriteItem::builder().put(put).build())
            })
            .collect();
    };
    let shard = fastrand::u8(..BUCKET_SHARDS);
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(level.shard_key(table_id, &range.lo, shard)))
        .update_expression("ADD #entries :delta REMOVE #splitting")
        .expression_attribute_names("#entries", ENTRIES)
        .expression_attribute_names("#splitting", SPLITTING)
        .expression_attribute_names("#hi", BUCKET_HI)
        .expression_attribute_values(":delta", number(delta))
        .expression_attribute_values(":stale", number(now_ms - SPLIT_LEASE_MS))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None);
    let covers = match &range.hi {
        Some(hi) => {
            update = update.expression_attribute_values(":hi", string(hi.clone()));
            "#hi = :hi"
        }
        None => "attribute_not_exists(#hi)",
    };
    let update = update
        .condition_expression(format!(
            "attribute_exists(#entries) AND {covers} AND \
             (attribute_not_exists(#splitting) OR #splitting < :stale)"
        ))
        .build()?;
    Ok(vec![TransactWriteItem::builder().update(update).build()])
}

/// The class's first bucket and first group, empty, for the transaction that
/// creates the class: its first writers then find them instead of all racing
/// to create them. Each shard keeps what it holds if it is there already (a
/// write that raced with the delete of an earlier class of the same id).
pub fn first_ranges(table: &str, table_id: &str) -> Result<Vec<TransactWriteItem>, BuildError> {
    let mut items = Vec::new();
    for level in [Level::Bucket, Level::Group] {
        for shard in 0..BUCKET_SHARDS {
            let update = Update::builder()
                .table_name(table)
                .set_key(Some(level.shard_key(table_id, "", shard)))
                .update_expression("SET #entries = if_not_exists(#entries, :zero)")
                .expression_attribute_names("#entries", ENTRIES)
                .expression_attribute_values(":zero", number(0))
                .build()?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
    }
    Ok(items)
}

/// What moving a user's entry does to the counts: the bucket and group items
/// of its transaction (a refusal of any of them means the ranges changed
/// meanwhile: look them up again), and the ranges it filled past their
/// [`Level::split_above`], as `(level, the user's place)`, to split after.
#[derive(Debug, Default)]
pub struct CountChanges {
    pub items: Vec<TransactWriteItem>,
    pub full: Vec<(Level, String)>,
}

/// The counts' side of moving a user's entry from `old` to `new` (`None`:
/// not ranked before, or not after). Looks up the ranges covering both places
/// (in parallel, strongly consistent). `Ok(None)` when a range covering `old`
/// is there and none covers `new`: the class is being deleted, range by range.
///
/// Buckets: a move within one bucket changes no count (its bucket is only
/// checked not to be split meanwhile); otherwise −1 on the old bucket and +1
/// on the new. Groups likewise, but only when the buckets differ; a move
/// between two buckets of one group checks the group is not being split, so
/// that a group split, which recounts from the buckets, sees every bucket
/// still. A class that has buckets but no group (ranked before groups
/// existed) gets its first group here, holding every bucket's entries.
pub async fn count_changes(
    client: &Client,
    table: &str,
    table_id: &str,
    old: Option<&str>,
    new: Option<&str>,
    now_ms: i64,
) -> Result<Option<CountChanges>, RankingError> {
    let action = format!("finding the rank buckets of a user of table {table_id}");
    let lookup = |level, place: Option<&str>| {
        let place = place.map(str::to_owned);
        async move {
            match place {
                Some(place) => range_of(client, table, table_id, level, &place).await,
                None => Ok(None),
            }
        }
    };
    // A user that only moves needs its groups only when it leaves its bucket:
    // look them up then; a user that arrives or leaves needs them always:
    // look them up with its bucket.
    let (old_bucket, new_bucket, groups) = if old.is_none() || new.is_none() {
        let (old_bucket, new_bucket, old_group, new_group) = futures_util::future::try_join4(
            lookup(Level::Bucket, old),
            lookup(Level::Bucket, new),
            lookup(Level::Group, old),
            lookup(Level::Group, new),
        )
        .await
        .map_err(aws(&action))?;
        (old_bucket, new_bucket, Some((old_group, new_group)))
    } else {
        let (old_bucket, new_bucket) =
            futures_util::future::try_join(lookup(Level::Bucket, old), lookup(Level::Bucket, new))
                .await
                .map_err(aws(&action))?;
        (old_bucket, new_bucket, None)
    };
    let gone = |old_range: &Option<Bucket>, new_range: &Option<Bucket>| {
        new.is_some() && old_range.is_some() && new_range.is_none()
    };
    if gone(&old_bucket, &new_bucket) {
        return Ok(None);
    }
    let build = |error| RankingError::Build {
        action: action.clone(),
        source: error,
    };
    let mut changes = CountChanges::default();
    // `delta` on `range` of `level`; a user arriving at `place` in a range
    // already at its split calls for a split after the write.
    let mut count = |level: Level, range: Option<&Bucket>, delta: i64, place: Option<&str>| {
        changes
            .items
            .extend(count_in(table, table_id, level, range, delta, now_ms)?);
        if let (Some(place), Some(range)) = (place, range)
            && range.entries.wrapping_add(1) > level.split_above()
        {
            changes.full.push((level, place.to_owned()));
        }
        Ok::<(), BuildError>(())
    };
    let same = |a: &Option<Bucket>, b: &Option<Bucket>| matches!((a, b), (Some(a), Some(b)) if a.lo == b.lo);
    let (old_delta, new_delta) = (-i64::from(old.is_some()), i64::from(new.is_some()));
    if same(&old_bucket, &new_bucket) {
        count(Level::Bucket, new_bucket.as_ref(), 0, None).map_err(build)?;
        return Ok(Some(changes));
    }
    let (old_group, new_group) = match groups {
        Some(groups) => groups,
        None => {
            futures_util::future::try_join(lookup(Level::Group, old), lookup(Level::Group, new))
                .await
                .map_err(aws(&action))?
        }
    };
    if gone(&old_group, &new_group) {
        return Ok(None);
    }
    if old_bucket.is_some() {
        count(Level::Bucket, old_bucket.as_ref(), old_delta, None).map_err(build)?;
    }
    if new.is_some() {
        count(Level::Bucket, new_bucket.as_ref(), new_delta, new).map_err(build)?;
    }
    if old_group.is_none() && new_group.is_none() {
        // No group yet: the class's first, holding what its buckets hold
        // (none, when no bucket covers the new place: the class has none).
        let held = if new.is_some() && new_bucket.is_none() {
            0
        } else {
            total(
                &buckets_up_to(client, table, table_id, LAST_KEY)
                    .await
                    .map_err(aws(&action))?,
            )
        };
        let entries = (held as i64).wrapping_add(old_delta + new_delta);
        count(Level::Group, None, entries, None).map_err(build)?;
    } else if same(&old_group, &new_group) {
        count(Level::Group, new_group.as_ref(), 0, None).map_err(build)?;
    } else {
        if old_group.is_some() {
            count(Level::Group, old_group.as_ref(), old_delta, None).map_err(build)?;
        }
        if new.is_some() && new_group.is_some() {
            count(Level::Group, new_group.as_ref(), new_delta, new).map_err(build)?;
        }
    }
    Ok(Some(changes))
}

/// The entry of a user placed at `rank_key`, put.
pub fn entry_put(
    table: &str,
    table_id: &str,
    rank_key: &str,
) -> Result<TransactWriteItem, BuildError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(key(table_id, entry_username(rank_key))))
        .build()?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The entry of a user placed at `rank_key`, deleted.
pub fn entry_delete(
    table: &str,
    table_id: &str,
    rank_key: &str,
) -> Result<TransactWriteItem, BuildError> {
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(key(table_id, entry_username(rank_key))))
        .build()?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

/// A team's membership and score as a user counts in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Membership<'a> {
    pub team: &'a str,
    pub score: f64,
}

/// The team updates that move a user's counted membership from `old` to
/// `new` (none when nothing changes; one when the team stays).
pub fn team_changes(
    table: &str,
    table_id: &str,
    old: Option<Membership<'_>>,
    new: Option<Membership<'_>>,
) -> Result<Vec<TransactWriteItem>, BuildError> {
    let mut items = Vec::new();
    match (old, new) {
        (Some(old), Some(new)) if old.team == new.team => {
            if old.score.to_bits() != new.score.to_bits() {
                let bands = band_changes(Some(old.score), Some(new.score));
                items.push(team_update(table, table_id, new.team, 0, &bands)?);
            }
        }
        (old, new) => {
            if let Some(old) = old {
                let bands = band_changes(Some(old.score), None);
                items.push(team_update(table, table_id, old.team, -1, &bands)?);
            }
            if let Some(new) = new {
                let bands = band_changes(None, Some(new.score));
                items.push(team_update(table, table_id, new.team, 1, &bands)?);
            }
        }
    }
    Ok(items)
}

fn team_update(
    table: &str,
    table_id: &str,
    team: &str,
    members: i64,
    bands: &[(String, String)],
) -> Result<TransactWriteItem, BuildError> {
    let mut adds = vec!["#members :members".to_owned()];
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(key(table_id, team_username(team))))
        .expression_attribute_names("#members", MEMBERS)
        .expression_attribute_values(":members", number(members));
    for (index, (attribute, part)) in bands.iter().enumerate() {
        adds.push(format!("#b{index} :b{index}"));
        update = update
            .expression_attribute_names(format!("#b{index}"), attribute)
            .expression_attribute_values(format!(":b{index}"), AttributeValue::N(part.clone()));
    }
    let update = update
        .update_expression(format!("ADD {}", adds.join(", ")))
        .build()?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// A team on the team leaderboard.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamStanding {
    pub name: String,
    pub members: u64,
    /// The exact sum of its members' scores.
    pub score_sum: BigDecimal,
}

impl TeamStanding {
    /// The members' average score, exactly (to 34 significant digits).
    pub fn average(&self) -> BigDecimal {
        if self.members == 0 {
            return BigDecimal::default();
        }
        (&self.score_sum / BigDecimal::from(self.members)).with_prec(34)
    }

    /// The leaderboard's order: average descending, then more members, then
    /// the name.
    pub fn order(&self, other: &Self) -> Ordering {
        other
            .average()
            .cmp(&self.average())
            .then(other.members.cmp(&self.members))
            .then_with(|| self.name.cmp(&other.name))
    }
}

/// Every team of a class with at least one member, in leaderboard order
/// (strongly consistent; one item per team).
pub async fn teams(
    client: &Client,
    table: &str,
    table_id: &str,
) -> Result<Vec<TeamStanding>, SdkError<QueryError>> {
    let mut teams = Vec::new();
    for item in items_between(client, table, table_id, (TEAM_PREFIX, TEAM_END), &[]).await? {
        let Some(name) = item
            .get(USERNAME)
            .and_then(|name| name.as_s().ok())
            .and_then(|name| name.strip_prefix(TEAM_PREFIX))
        else {
            continue;
        };
        let members = item
            .get(MEMBERS)
            .and_then(|count| count.as_n().ok())
            .and_then(|count| count.parse::<i64>().ok())
            .unwrap_or(0);
        if members > 0 {
            teams.push(TeamStanding {
                name: name.to_owned(),
                members: members as u64,
                score_sum: team_score_sum(&item),
            });
        }
    }
    teams.sort_by(TeamStanding::order);
    Ok(teams)
}

/// Why a ranking call failed.
#[derive(Debug, thiserror::Error)]
pub enum RankingError {
    #[error("{action}: {source}")]
    Aws {
        action: String,
        #[source]
        source: aws_sdk_dynamodb::Error,
    },
    #[error("{action}: {source}")]
    Build {
        action: String,
        #[source]
        source: BuildError,
    },
    #[error("{action}: other writes kept changing the same items; try again")]
    Contended { action: String },
}

fn aws<E>(action: &str) -> impl FnOnce(SdkError<E>) -> RankingError + '_
where
    aws_sdk_dynamodb::Error: From<SdkError<E>>,
{
    move |error| RankingError::Aws {
        action: action.to_owned(),
        source: error.into(),
    }
}

/// Split the range of `level` covering `rank_key` when it holds more than
/// [`Level::split_above`] entries: mark its shards (writers of it wait: their
/// transactions are conditioned on no mark), recount it from what it holds
/// (a bucket from its entries, a group from its buckets), and in one
/// transaction give the left half its count and put the right half's shards.
/// A split that finds the range already marked, or loses a race, does
/// nothing (`Ok(false)`): the next write that fills the range tries again.
///
/// A bucket's split finishes only while its group is not being split, so a
/// group split, which sums its buckets, never sees a bucket half split.
pub async fn split_if_full(
    client: &Client,
    table: &str,
    table_id: &str,
    level: Level,
    rank_key: &str,
    now_ms: i64,
) -> Result<bool, RankingError> {
    let action = format!("splitting a rank {} of table {table_id}", level.noun());
    let build = |error| RankingError::Build {
        action: action.clone(),
        source: error,
    };
    let Some(range) = range_of(client, table, table_id, level, rank_key)
        .await
        .map_err(aws(&action))?
    else {
        return Ok(false);
    };
    if range.entries <= level.split_above() || range.entries > i64::MAX as u64 {
        return Ok(false);
    }
    let mut mark = client.transact_write_items();
    for shard in 0..BUCKET_SHARDS {
        let update = Update::builder()
            .table_name(table)
            .set_key(Some(level.shard_key(table_id, &range.lo, shard)))
            .update_expression("SET #splitting = :now")
            .condition_expression(
                "attribute_exists(#entries) AND \
                 (attribute_not_exists(#splitting) OR #splitting < :stale)",
            )
            .expression_attribute_names("#splitting", SPLITTING)
            .expression_attribute_names("#entries", ENTRIES)
            .expression_attribute_values(":now", number(now_ms))
            .expression_attribute_values(":stale", number(now_ms - SPLIT_LEASE_MS))
            .build()
            .map_err(build)?;
        mark = mark.transact_items(TransactWriteItem::builder().update(update).build());
    }
    match mark.send().await {
        Ok(_) => {}
        Err(error) if is_canceled(&error) => return Ok(false),
        Err(error) => return Err(aws(&action)(error)),
    }
    // What the range holds, in order: (first key, entries) of each child.
    let children: Vec<(String, u64)> = match level {
        Level::Bucket => {
            let upper = range
                .hi
                .as_deref()
                .map_or_else(|| ENTRY_END.to_owned(), entry_username);
            items_between(
                client,
                table,
                table_id,
                (&entry_username(&range.lo), &upper),
                &[USERNAME],
            )
            .await
            .map_err(aws(&action))?
            .iter()
            .filter_map(|item| item.get(USERNAME)?.as_s().ok())
            .filter_map(|name| name.strip_prefix(ENTRY_PREFIX))
            .filter(|name| Some(*name) != range.hi.as_deref())
            .map(|name| (name.to_owned(), 1))
            .collect()
        }
        Level::Group => {
            let upper = range.hi.as_deref().unwrap_or(LAST_KEY);
            ranges_between(client, table, table_id, Level::Bucket, &range.lo, upper)
                .await
                .map_err(aws(&action))?
                .into_iter()
                .filter(|bucket| Some(bucket.lo.as_str()) != range.hi.as_deref())
                .map(|bucket| (bucket.lo, bucket.entries))
                .collect()
        }
    };
    let all = children
        .iter()
        .fold(0_u64, |sum, (_, entries)| sum.wrapping_add(*entries));
    // The first child at which the left half reaches half of the entries.
    let mut left = 0_u64;
    let mut median = None;
    for (index, (first, entries)) in children.iter().enumerate() {
        if index > 0 && left >= all / 2 && *first != range.lo {
            median = Some(first.clone());
            break;
        }
        left = left.wrapping_add(*entries);
    }
    if median.is_none() {
        left = all;
    }
    let mut finish = client.transact_write_items();
    for shard in 0..BUCKET_SHARDS {
        let mut update = Update::builder()
            .table_name(table)
            .set_key(Some(level.shard_key(table_id, &range.lo, shard)))
            .condition_expression("#splitting = :now")
            .expression_attribute_names("#entries", ENTRIES)
            .expression_attribute_names("#splitting", SPLITTING)
            .expression_attribute_values(":left", number(if shard == 0 { left } else { 0 }))
            .expression_attribute_values(":now", number(now_ms));
        update = match &median {
            Some(median) => update
                .update_expression("SET #entries = :left, #hi = :median REMOVE #splitting")
                .expression_attribute_names("#hi", BUCKET_HI)
                .expression_attribute_values(":median", string(median.clone())),
            None => update.update_expression("SET #entries = :left REMOVE #splitting"),
        };
        finish = finish.transact_items(
            TransactWriteItem::builder()
                .update(update.build().map_err(build)?)
                .build(),
        );
    }
    if let Some(median) = &median {
        for shard in 0..BUCKET_SHARDS {
            let mut right = level.shard_key(table_id, median, shard);
            let entries = if shard == 0 {
                all.wrapping_sub(left)
            } else {
                0
            };
            right.insert(ENTRIES.to_owned(), number(entries));
            if let Some(hi) = &range.hi {
                right.insert(BUCKET_HI.to_owned(), string(hi.clone()));
            }
            let put = Put::builder()
                .table_name(table)
                .set_item(Some(right))
                .condition_expression("attribute_not_exists(#entries)")
                .expression_attribute_names("#entries", ENTRIES)
                .build()
                .map_err(build)?;
            finish = finish.transact_items(TransactWriteItem::builder().put(put).build());
        }
    }
    if level == Level::Bucket
        && let Some(group) = range_of(client, table, table_id, Level::Group, &range.lo)
            .await
            .map_err(aws(&action))?
    {
        let check = ConditionCheck::builder()
            .table_name(table)
            .set_key(Some(Level::Group.shard_key(table_id, &group.lo, 0)))
            .condition_expression("attribute_not_exists(#splitting) OR #splitting < :stale")
            .expression_attribute_names("#splitting", SPLITTING)
            .expression_attribute_values(":stale", number(now_ms - SPLIT_LEASE_MS))
            .build()
            .map_err(build)?;
        finish = finish.transact_items(TransactWriteItem::builder().condition_check(check).build());
    }
    match finish.send().await {
        Ok(_) => Ok(median.is_some()),
        Err(error) if is_canceled(&error) => {
            release_split(client, table, table_id, level, &range.lo, now_ms).await;
            Ok(false)
        }
        Err(error) => Err(aws(&action)(error)),
    }
}

/// Send one transaction of a ranking write.
async fn transact(
    client: &Client,
    items: Vec<TransactWriteItem>,
) -> Result<(), SdkError<TransactWriteItemsError>> {
    client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
        .map(|_| ())
}

/// For a cancelled transaction, whether its first item (the user) was
/// refused; `None` for any other error.
fn first_refused(error: &SdkError<TransactWriteItemsError>) -> Option<bool> {
    match error.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(canceled) => Some(
            canceled
                .cancellation_reasons()
                .first()
                .and_then(|reason| reason.code())
                == Some("ConditionalCheckFailed"),
        ),
        _ => None,
    }
}

/// Split every range a write filled (buckets first: a group splits at a
/// bucket's edge).
pub async fn split_full(
    client: &Client,
    table: &str,
    table_id: &str,
    full: &[(Level, String)],
    now_ms: i64,
) -> Result<(), RankingError> {
    for (level, place) in full {
        split_if_full(client, table, table_id, *level, place, now_ms).await?;
    }
    Ok(())
}

/// Take a split's mark off a range it could not finish (its group was being
/// split), so that its writers need not wait for the lease to run out. A
/// mark that cannot be taken off runs out with its lease.
async fn release_split(
    client: &Client,
    table: &str,
    table_id: &str,
    level: Level,
    lo: &str,
    now_ms: i64,
) {
    for shard in 0..BUCKET_SHARDS {
        let _released = client
            .update_item()
            .table_name(table)
            .set_key(Some(level.shard_key(table_id, lo, shard)))
            .update_expression("REMOVE #splitting")
            .condition_expression("#splitting = :now")
            .expression_attribute_names("#splitting", SPLITTING)
            .expression_attribute_values(":now", number(now_ms))
            .send()
            .await;
    }
}

fn is_canceled(error: &SdkError<TransactWriteItemsError>) -> bool {
    first_refused(error).is_some()
}

/// A user's place and counted membership, from its item's own attributes.
pub fn placing(item: &HashMap<String, AttributeValue>) -> Option<(String, Option<Membership<'_>>)> {
    let username = item.get(USERNAME)?.as_s().ok()?;
    let score = item
        .get(crate::MORAL_COMPASS_SCORE)
        .and_then(|score| score.as_n().ok())
        .and_then(|score| score.parse::<f64>().ok())
        .filter(|score| score.is_finite())
        .unwrap_or(0.0);
    let submissions = item
        .get(crate::SUBMISSION_COUNT)
        .and_then(|count| count.as_n().ok())
        .and_then(|count| crate::parse_count(count))
        .unwrap_or(0);
    let team = item
        .get(crate::TEAM_NAME)
        .and_then(|team| team.as_s().ok())
        .map(|team| Membership { team, score });
    Some((rank_key(score, submissions, username), team))
}

/// Rank a user written before ranks existed (it has no [`RANK_KEY`]): its
/// place and team from its own attributes, in one transaction with its entry,
/// its bucket and its team. `Ok(false)` when it was ranked (or deleted)
/// meanwhile. Splits its bucket when that is full.
pub async fn rank_unranked_user(
    client: &Client,
    table: &str,
    item: &HashMap<String, AttributeValue>,
    now_ms: i64,
) -> Result<bool, RankingError> {
    let (Some(table_id), Some((key_text, team))) = (
        item.get(TABLE_ID).and_then(|id| id.as_s().ok()),
        placing(item),
    ) else {
        return Ok(false);
    };
    let username = item
        .get(USERNAME)
        .and_then(|name| name.as_s().ok())
        .cloned()
        .unwrap_or_default();
    let action = format!("ranking user {username} of table {table_id}");
    let build = |error| RankingError::Build {
        action: action.clone(),
        source: error,
    };
    for _ in 0..RANKING_ATTEMPTS {
        let Some(counts) =
            count_changes(client, table, table_id, None, Some(&key_text), now_ms).await?
        else {
            return Ok(false);
        };
        let mut user = Update::builder()
            .table_name(table)
            .set_key(Some(key(table_id, username.clone())))
            .condition_expression("attribute_exists(#name) AND attribute_not_exists(#rank)")
            .expression_attribute_names("#name", USERNAME)
            .expression_attribute_names("#rank", RANK_KEY)
            .expression_attribute_values(":rank", string(key_text.clone()));
        user = match team {
            Some(membership) => user
                .update_expression("SET #rank = :rank, #team = :team")
                .expression_attribute_names("#team", RANK_TEAM)
                .expression_attribute_values(":team", string(membership.team)),
            None => user.update_expression("SET #rank = :rank"),
        };
        let mut items = vec![
            TransactWriteItem::builder()
                .update(user.build().map_err(build)?)
                .build(),
            entry_put(table, table_id, &key_text).map_err(build)?,
        ];
        items.extend(counts.items);
        items.extend(team_changes(table, table_id, None, team).map_err(build)?);
        match transact(client, items).await {
            Ok(()) => {
                split_full(client, table, table_id, &counts.full, now_ms).await?;
                return Ok(true);
            }
            Err(error) => match first_refused(&error) {
                // The user was ranked (or deleted) meanwhile.
                Some(true) => return Ok(false),
                // A range split meanwhile, or a transaction held an item:
                // look the ranges up again.
                Some(false) => {}
                None => return Err(aws(&action)(error)),
            },
        }
    }
    Err(RankingError::Contended { action })
}

/// Take a user out of the ranks (before its item is replaced by a copy):
/// its entry, its bucket's count and its team's, and its [`RANK_KEY`] and
/// [`RANK_TEAM`], in one transaction. `Ok(false)` when it was not ranked.
pub async fn unrank_user(
    client: &Client,
    table: &str,
    table_id: &str,
    username: &str,
    now_ms: i64,
) -> Result<bool, RankingError> {
    let action = format!("taking user {username} of table {table_id} out of the ranks");
    let build = |error| RankingError::Build {
        action: action.clone(),
        source: error,
    };
    for _ in 0..RANKING_ATTEMPTS {
        let output = client
            .get_item()
            .table_name(table)
            .set_key(Some(key(table_id, username.to_owned())))
            .consistent_read(true)
            .send()
            .await
            .map_err(aws(&action))?;
        let Some(item) = output.item() else {
            return Ok(false);
        };
        let Some(key_text) = item.get(RANK_KEY).and_then(|rank| rank.as_s().ok()) else {
            return Ok(false);
        };
        let team = item
            .get(RANK_TEAM)
            .and_then(|team| team.as_s().ok())
            .map(|team| Membership {
                team,
                score: score_of(key_text).unwrap_or(0.0),
            });
        let Some(counts) =
            count_changes(client, table, table_id, Some(key_text), None, now_ms).await?
        else {
            return Ok(false);
        };
        let user = Update::builder()
            .table_name(table)
            .set_key(Some(key(table_id, username.to_owned())))
            .update_expression("REMOVE #rank, #team")
            .condition_expression("#rank = :rank")
            .expression_attribute_names("#rank", RANK_KEY)
            .expression_attribute_names("#team", RANK_TEAM)
            .expression_attribute_values(":rank", string(key_text.clone()))
            .build()
            .map_err(build)?;
        let mut items = vec![
            TransactWriteItem::builder().update(user).build(),
            entry_delete(table, table_id, key_text).map_err(build)?,
        ];
        items.extend(counts.items);
        items.extend(team_changes(table, table_id, team, None).map_err(build)?);
        match transact(client, items).await {
            Ok(()) => return Ok(true),
            Err(error) if first_refused(&error).is_some() => {}
            Err(error) => return Err(aws(&action)(error)),
        }
    }
    Err(RankingError::Contended { action })
}

/// A whole class as ranking leaves it, from its users' items (not ranked
/// yet, each with `tableId` and `username`): the users with their place and
/// team, their entries, buckets of at most half [`SPLIT_ABOVE`] entries, and
/// teams. For loading a new class in one go (tests, benchmarks, copies),
/// where ranking it user by user takes a transaction each.
pub fn ranked_class(
    table_id: &str,
    users: Vec<HashMap<String, AttributeValue>>,
) -> Vec<HashMap<String, AttributeValue>> {
    let mut placed: Vec<(String, HashMap<String, AttributeValue>)> = users
        .into_iter()
        .filter_map(|mut user| {
            let (rank_key, team) = placing(&user)?;
            let team = team.map(|team| (team.team.to_owned(), team.score));
            user.insert(RANK_KEY.to_owned(), string(rank_key.clone()));
            if let Some((team, _)) = &team {
                user.insert(RANK_TEAM.to_owned(), string(team.clone()));
            }
            Some((rank_key, user))
        })
        .collect();
    placed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut items = Vec::new();
    let mut teams: std::collections::BTreeMap<String, (u64, BigDecimal)> = Default::default();
    for (rank_key, user) in &placed {
        items.push(key(table_id, entry_username(rank_key)));
        if let Some(team) = user.get(RANK_TEAM).and_then(|team| team.as_s().ok()) {
            let score = BigDecimal::from_str(&score_text(score_of(rank_key).unwrap_or(0.0)))
                .unwrap_or_default();
            let entry = teams.entry(team.clone()).or_default();
            entry.0 += 1;
            entry.1 += score;
        }
    }
    // Buckets of half SPLIT_ABOVE entries, groups of half GROUP_SPLIT_ABOVE.
    let per_group = (GROUP_SPLIT_ABOVE / SPLIT_ABOVE) as usize;
    let keys: Vec<&str> = placed.iter().map(|(key, _)| key.as_str()).collect();
    let buckets: Vec<&[&str]> = keys.chunks((SPLIT_ABOVE / 2) as usize).collect();
    let groups: Vec<&[&[&str]]> = buckets.chunks(per_group).collect();
    for (level, ranges) in [
        (
            Level::Bucket,
            buckets
                .iter()
                .map(|keys| (keys[0], keys.len()))
                .collect::<Vec<_>>(),
        ),
        (
            Level::Group,
            groups
                .iter()
                .map(|buckets| (buckets[0][0], buckets.iter().map(|keys| keys.len()).sum()))
                .collect(),
        ),
    ] {
        for (index, (first, entries)) in ranges.iter().enumerate() {
            let lo = if index == 0 { "" } else { *first };
            let hi = ranges.get(index + 1).map(|(next, _)| *next);
            for shard in 0..BUCKET_SHARDS {
                let mut range = level.shard_key(table_id, lo, shard);
                range.insert(
                    ENTRIES.to_owned(),
                    number(if shard == 0 { *entries } else { 0 }),
                );
                if let Some(hi) = hi {
                    range.insert(BUCKET_HI.to_owned(), string(hi));
                }
                items.push(range);
            }
        }
    }
    for (team, (members, sum)) in teams {
        let mut item = key(table_id, team_username(&team));
        item.insert(MEMBERS.to_owned(), number(members));
        for (attribute, part) in bands_of(&sum) {
            item.insert(attribute, AttributeValue::N(part));
        }
        items.push(item);
    }
    items.extend(placed.into_iter().map(|(_, user)| user));
    items
}

/// How many times the two calls above try before giving up.
const RANKING_ATTEMPTS: u32 = 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_keys_sort_descending_and_decode() {
        let scores = [
            f64::MAX,
            1e10,
            1.0,
            0.5000000000000001,
            0.5,
            1e-300,
            0.0,
            -1e-300,
            -0.5,
            -1.0,
            f64::MIN,
        ];
        let keys: Vec<String> = scores.iter().map(|score| score_key(*score)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "descending scores have ascending keys");
        for score in scores {
            assert_eq!(score_of(&score_key(score)), Some(score));
        }
        assert_eq!(score_key(-0.0), score_key(0.0));
    }

    #[test]
    fn rank_keys_order_score_then_submissions_then_name() {
        let mut users = [
            (0.0, 9, "zed"),
            (0.9, 1, "bob"),
            (0.9, 3, "cat"),
            (0.9, 3, "ann"),
            (0.95, 0, "dan"),
            (0.0, 9, "abe"),
        ];
        users.sort_by_key(|(score, count, name)| rank_key(*score, *count, name));
        let names: Vec<&str> = users.iter().map(|user| user.2).collect();
        assert_eq!(names, ["dan", "ann", "cat", "bob", "abe", "zed"]);
        assert_eq!(score_of(&rank_key(0.9, 3, "ann")), Some(0.9));
        // A name that is a prefix of another sorts first, as names do.
        assert!(rank_key(0.5, 1, "ann") < rank_key(0.5, 1, "anna"));
    }

    #[test]
    fn score_bands_sum_back_exactly_at_any_magnitude() {
        for text in [
            "0.1",
            "0.2333333333333333",
            "1e-130",
            "9.5e125",
            "-7.25",
            "123456789012345678901234567",
        ] {
            let parts = score_bands(text).expect("a number");
            let item: HashMap<String, AttributeValue> = parts
                .iter()
                .map(|(name, part)| (name.clone(), AttributeValue::N(part.clone())))
                .collect();
            assert_eq!(parts.len(), item.len(), "{text}: one part per band");
            assert_eq!(
                team_score_sum(&item),
                BigDecimal::from_str(text).expect("a number"),
                "{text}"
            );
            for (_, part) in &parts {
                let digits = BigInt::from_str(part).expect("a whole number");
                assert!(
                    digits.to_string().trim_start_matches('-').len() <= 19,
                    "{part}"
                );
            }
        }
        assert_eq!(score_bands("0"), Some(Vec::new()));
        // Mixed magnitudes land in different bands, so neither loses digits.
        let tiny = score_bands("1e-100").expect("a number");
        let huge = score_bands("1e100").expect("a number");
        assert_ne!(tiny[0].0, huge[0].0);
    }

    #[test]
    fn a_team_change_moves_member_and_score() {
        let old = Some(Membership {
            team: "red",
            score: 0.25,
        });
        let same = team_changes("t", "c", old, old).expect("test data");
        assert!(same.is_empty(), "nothing changes");
        let rescored = team_changes(
            "t",
            "c",
            old,
            Some(Membership {
                team: "red",
                score: 0.5,
            }),
        )
        .expect("test data");
        assert_eq!(rescored.len(), 1);
        let update = rescored[0].update().expect("test data");
        assert_eq!(
            update.expression_attribute_values().expect("test data")[":members"],
            AttributeValue::N("0".into())
        );
        assert_eq!(
            update.expression_attribute_values().expect("test data")[":b0"],
            AttributeValue::N("2500000000000000000".into())
        );
        let moved = team_changes(
            "t",
            "c",
            old,
            Some(Membership {
                team: "blue",
                score: 0.25,
            }),
        )
        .expect("test data");
        assert_eq!(moved.len(), 2);
        assert_eq!(
            moved[0]
                .update()
                .expect("test data")
                .expression_attribute_values()
                .expect("test data")[":members"],
            AttributeValue::N("-1".into())
        );
    }

    #[test]
    fn teams_order_by_average_then_members_then_name() {
        let team = |name: &str, members: u64, sum: &str| TeamStanding {
            name: name.into(),
            members,
            score_sum: BigDecimal::from_str(sum).expect("test data"),
        };
        let mut teams = [
            team("b", 2, "1.0"),
            team("a", 4, "2.0"),
            team("c", 1, "0.9"),
            team("d", 2, "1.0"),
        ];
        teams.sort_by(TeamStanding::order);
        let names: Vec<&str> = teams.iter().map(|team| team.name.as_str()).collect();
        assert_eq!(names, ["c", "a", "b", "d"]);
    }

    #[test]
    fn derived_items_are_told_apart_from_users() {
        assert!(is_derived(&entry_username("abc")));
        assert!(is_derived(&bucket_username("")));
        assert!(is_derived(&team_username("red")));
        assert!(!is_derived("_metadata"));
        assert!(!is_derived("ann"));
        assert!(bucket_username("") < entry_username(""));
        assert!(entry_username(&"f".repeat(40)).as_str() < ENTRY_END);
    }
}
