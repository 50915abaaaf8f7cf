//! What an item of a scores table is to the data commands (migrate, export,
//! import): its kind, its time, its counts, and the item as an environment's
//! table stores it, with the attributes its indexes need computed the way the
//! function computes them (`schema`). Pure: every rule is testable as data.

use std::collections::HashMap;
use std::time::SystemTime;

use aws_sdk_dynamodb::types::AttributeValue;

/// One DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// What an item is, by its sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `_metadata`: the table (class) itself.
    Metadata,
    /// `_metadata#N`: one of the table's `userCount` counters.
    Counter,
    /// `_session`: a sign-in session (in its own `session#<id>` partition, or
    /// where the legacy handler put it, in a partition named by its id). Never
    /// a class's data: the data commands leave sessions behind.
    Session,
    /// `_rank#…` and `_team#…` ([`schema::ranking::is_derived`]): a class's
    /// rank entries, rank buckets and teams, kept by the function from its
    /// users. Never a class's data: the data commands leave them behind, and
    /// the target ranks the users it takes ([`schema::ranking`]).
    Derived,
    /// Anything else: a user with scores.
    User,
}

/// Why an item cannot be taken as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("it has no string {0}")]
    MissingKey(&'static str),
    #[error("{attribute} = {value:?} is not a non-negative whole number")]
    BadCount { attribute: String, value: String },
}

/// The attributes that hold counts: written as whole numbers, read leniently.
pub const COUNT_ATTRIBUTES: [&str; 3] = [
    schema::SUBMISSION_COUNT,
    schema::TOTAL_COUNT,
    schema::USER_COUNT,
];

/// `tableId` and `username` of an item.
pub fn key_of(item: &Item) -> Result<(&str, &str), ShapeError> {
    let text = |name: &'static str| match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.as_str()),
        _ => Err(ShapeError::MissingKey(name)),
    };
    Ok((text(schema::TABLE_ID)?, text(schema::USERNAME)?))
}

/// Just the key of an item, as DynamoDB takes it.
pub fn key_item(table_id: &str, username: &str) -> Item {
    [
        (
            schema::TABLE_ID.to_owned(),
            AttributeValue::S(table_id.into()),
        ),
        (
            schema::USERNAME.to_owned(),
            AttributeValue::S(username.into()),
        ),
    ]
    .into()
}

pub fn kind_of(username: &str) -> Kind {
    match username.strip_prefix(schema::METADATA_USERNAME) {
        Some("") => Kind::Metadata,
        Some(rest) if rest.starts_with('#') => Kind::Counter,
        _ if username == schema::SESSION_SORT_KEY => Kind::Session,
        _ if schema::ranking::is_derived(username) => Kind::Derived,
        _ => Kind::User,
    }
}

/// The attributes a user carries only because the target ranked it
/// ([`schema::ranking::RANK_KEY`], [`schema::ranking::RANK_TEAM`]): never
/// copied (the target ranks its own users) and never compared.
pub const DERIVED_ATTRIBUTES: [&str; 2] = [schema::ranking::RANK_KEY, schema::ranking::RANK_TEAM];

/// `item` without [`DERIVED_ATTRIBUTES`].
pub fn without_derived_attributes(mut item: Item) -> Item {
    for attribute in DERIVED_ATTRIBUTES {
        item.remove(attribute);
    }
    item
}

/// A count as the API reads it: a number or (as legacy writers sometimes
/// stored them) a string, holding a whole number, `5.0` included. A missing
/// count is 0.
pub fn count(item: &Item, attribute: &str) -> Result<u64, ShapeError> {
    let text = match item.get(attribute) {
        None | Some(AttributeValue::Null(_)) => return Ok(0),
        Some(AttributeValue::N(text) | AttributeValue::S(text)) => text,
        Some(other) => {
            return Err(ShapeError::BadCount {
                attribute: attribute.to_owned(),
                value: format!("{other:?}"),
            });
        }
    };
    schema::parse_count(text.trim()).ok_or_else(|| ShapeError::BadCount {
        attribute: attribute.to_owned(),
        value: text.clone(),
    })
}

/// The `userCount` the API reports for a table, from its items (a user is
/// not counted, so all of a table's items may be given): its metadata's base
/// plus every counter; `None` without a metadata item.
pub fn reported_user_count(items: &[Item]) -> Option<u64> {
    let kinds = || {
        items.iter().filter_map(|item| {
            key_of(item)
                .ok()
                .map(|(_, username)| (kind_of(username), item))
        })
    };
    kinds().any(|(kind, _)| kind == Kind::Metadata).then(|| {
        kinds()
            .filter(|(kind, _)| matches!(kind, Kind::Metadata | Kind::Counter))
            .map(|(_, item)| count(item, schema::USER_COUNT).unwrap_or(0))
            .sum()
    })
}

/// When the item was last written: a user's `lastUpdated`, a table's
/// `updatedAt` (else `createdAt`). RFC 3339, with or without a zone (legacy
/// writers left it out; it is UTC). `None` when absent or unreadable: older
/// than any time.
pub fn time_of(item: &Item) -> Option<SystemTime> {
    let attributes: &[&str] = match key_of(item).map(|(_, username)| kind_of(username)) {
        Ok(Kind::User) => &[schema::LAST_UPDATED],
        _ => &[schema::UPDATED_AT, schema::CREATED_AT],
    };
    attributes.iter().find_map(|name| match item.get(*name) {
        Some(AttributeValue::S(text)) => humantime::parse_rfc3339_weak(text.trim()).ok(),
        _ => None,
    })
}

/// The item as an environment's table keeps it: counts as whole numbers, and
/// the index attributes the function writes (a table's `tablesPartition` and,
/// when missing, `createdAt` at the epoch, so it lists as the oldest; a user's
/// `leaderboardKey` from its `submissionCount`). A user's rank attributes are
/// left out ([`DERIVED_ATTRIBUTES`]): the target ranks it once it is written.
/// Everything else is kept as it is. Counters are not shaped: the target's
/// are recounted.
pub fn shape(item: &Item) -> Result<Item, ShapeError> {
    let (_, username) = key_of(item)?;
    let kind = kind_of(username);
    let mut shaped = match kind {
        Kind::User => without_derived_attributes(item.clone()),
        _ => item.clone(),
    };
    for attribute in COUNT_ATTRIBUTES {
        if item.contains_key(attribute) {
            let value = count(item, attribute)?;
            shaped.insert(attribute.to_owned(), AttributeValue::N(value.to_string()));
        }
    }
    match kind {
        Kind::Metadata => {
            shaped.insert(
                schema::TABLES_PARTITION.to_owned(),
                AttributeValue::S(schema::TABLES_PARTITION_VALUE.into()),
            );
            shaped
                .entry(schema::CREATED_AT.to_owned())
                .or_insert_with(|| AttributeValue::S("1970-01-01T00:00:00.000Z".into()));
        }
        Kind::User => {
            let submissions = count(item, schema::SUBMISSION_COUNT)?;
            shaped.insert(
                schema::LEADERBOARD_KEY.to_owned(),
                AttributeValue::S(schema::leaderboard_key(submissions, username)),
            );
        }
        Kind::Counter | Kind::Session | Kind::Derived => {}
    }
    Ok(shaped)
}

/// What to do with a (shaped) source item, given the target's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The target has no such item: write it.
    Copy,
    /// The target's is older: replace it.
    Replace,
    /// The target's is newer (written since, by the API): keep it.
    KeepNewer,
    /// The target has this very item (a rerun, or a resumed run): nothing to do.
    Unchanged,
}

/// Whether two items are the same, but for a table's `userCount`, which
/// every migration recounts, and a user's rank attributes, which the target
/// computes ([`DERIVED_ATTRIBUTES`]), and as DynamoDB compares values: numbers
/// by value (`1.0` is `1`, as DynamoDB reads it back), sets in any order.
fn same(source: &Item, target: &Item) -> bool {
    let normal = |item: &Item| -> Item {
        item.iter()
            .filter(|(name, _)| {
                name.as_str() != schema::USER_COUNT && !DERIVED_ATTRIBUTES.contains(&name.as_str())
            })
            .map(|(name, value)| (name.clone(), normal_value(value)))
            .collect()
    };
    normal(source) == normal(target)
}

/// `value` with its numbers in one spelling and its sets sorted.
fn normal_value(value: &AttributeValue) -> AttributeValue {
    let sorted = |mut values: Vec<String>| {
        values.sort();
        values.dedup();
        values
    };
    match value {
        AttributeValue::N(number) => AttributeValue::N(normal_number(number)),
        AttributeValue::Ns(numbers) => {
            AttributeValue::Ns(sorted(numbers.iter().map(|n| normal_number(n)).collect()))
        }
        AttributeValue::Ss(strings) => AttributeValue::Ss(sorted(strings.clone())),
        AttributeValue::Bs(blobs) => {
            let mut blobs = blobs.clone();
            blobs.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
            blobs.dedup();
            AttributeValue::Bs(blobs)
        }
        AttributeValue::L(values) => AttributeValue::L(values.iter().map(normal_value).collect()),
        AttributeValue::M(map) => AttributeValue::M(
            map.iter()
                .map(|(name, value)| (name.clone(), normal_value(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A decimal number in one spelling: its significant digits and exponent
/// (`-1.50e2` and `-150` are both `-15e1`); the text itself when it is not a
/// number. (DynamoDB numbers have up to 38 digits, more than `f64` holds;
/// this compares them exactly without a decimal crate for one comparison.)
fn normal_number(text: &str) -> String {
    let text = text.trim();
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => match exponent.parse::<i64>() {
            Ok(exponent) => (mantissa, exponent),
            Err(_) => return text.to_owned(),
        },
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return text.to_owned();
    }
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0');
    let trimmed = significant.trim_end_matches('0');
    if trimmed.is_empty() {
        return "0".to_owned();
    }
    let exponent = exponent - i64::try_from(fraction.len()).unwrap_or(i64::MAX)
        + i64::try_from(significant.len() - trimmed.len()).unwrap_or(0);
    format!("{}{trimmed}e{exponent}", if negative { "-" } else { "" })
}

/// The newer item wins. Items of the same time that differ are replaced: the
/// API stamps every write it makes (`lastUpdated`, `updatedAt`), so a target
/// item whose time did not move since is an earlier copy of the source (a
/// legacy writer that changed a table's `displayName` without `updatedAt`,
/// say), and the source is the later of the two.
pub fn decide(source: &Item, target: Option<&Item>) -> Decision {
    let Some(target) = target else {
        return Decision::Copy;
    };
    if same(source, target) {
        return Decision::Unchanged;
    }
    match (time_of(source), time_of(target)) {
        (Some(source), Some(target)) if target > source => Decision::KeepNewer,
        (None, Some(_)) => Decision::KeepNewer,
        _ => Decision::Replace,
    }
}

/// A user item's part of a table's checksum: its key and counts, as the API
/// reads them. Summed (wrapping) over a table's users, it does not depend on
/// the order they were read in.
pub fn checksum_part(item: &Item) -> u64 {
    use std::hash::{Hash, Hasher};
    let (table_id, username) = key_of(item).unwrap_or_default();
    // FNV-1a: stable across runs and builds, unlike the standard hasher.
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for byte in bytes {
                self.0 ^= u64::from(*byte);
                self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    let mut hasher = Fnv(0xcbf2_9ce4_8422_2325);
    (table_id, username).hash(&mut hasher);
    count(item, schema::SUBMISSION_COUNT)
        .unwrap_or(u64::MAX)
        .hash(&mut hasher);
    count(item, schema::TOTAL_COUNT)
        .unwrap_or(u64::MAX)
        .hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect()
    }
    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.into())
    }
    fn n(text: &str) -> AttributeValue {
        AttributeValue::N(text.into())
    }

    #[test]
    fn kinds_follow_the_sort_key() {
        assert_eq!(kind_of("_metadata"), Kind::Metadata);
        assert_eq!(kind_of("_metadata#3"), Kind::Counter);
        assert_eq!(kind_of("alice"), Kind::User);
        assert_eq!(kind_of("_metadataX"), Kind::User);
        assert_eq!(kind_of("_session"), Kind::Session);
        assert_eq!(kind_of("_sessions"), Kind::User);
        assert_eq!(
            kind_of(&schema::ranking::entry_username("00ff")),
            Kind::Derived
        );
        assert_eq!(
            kind_of(&schema::ranking::bucket_username("")),
            Kind::Derived
        );
        assert_eq!(
            kind_of(&schema::ranking::team_username("red")),
            Kind::Derived
        );
        assert_eq!(kind_of("_rank"), Kind::User);
    }

    #[test]
    fn a_users_rank_is_the_targets_to_compute() {
        let ranked = item(&[
            ("tableId", s("c")),
            ("username", s("ann")),
            ("submissionCount", n("3")),
            ("teamName", s("red")),
            ("moralCompassScore", n("0.5")),
            ("lastUpdated", s("2024-01-01T00:00:00.000Z")),
            ("leaderboardKey", s(&schema::leaderboard_key(3, "ann"))),
            ("rankKey", s(&schema::ranking::rank_key(0.5, 3, "ann"))),
            ("rankTeam", s("red")),
        ]);
        let shaped = shape(&ranked).expect("shaped");
        assert!(!shaped.contains_key("rankKey") && !shaped.contains_key("rankTeam"));
        assert_eq!(shaped["teamName"], s("red"));
        assert_eq!(shaped["moralCompassScore"], n("0.5"));
        // The target's ranked copy of the same user is the same user: a
        // rerun leaves it alone.
        assert_eq!(decide(&shaped, Some(&ranked)), Decision::Unchanged);
        let mut rescored = ranked.clone();
        rescored.insert("moralCompassScore".into(), n("0.25"));
        assert_eq!(decide(&shaped, Some(&rescored)), Decision::Replace);
    }

    #[test]
    fn legacy_counts_are_read_leniently_and_written_as_whole_numbers() {
        let legacy = item(&[
            ("tableId", s("class-1")),
            ("username", s("ana")),
            ("submissionCount", s("12")),
            ("totalCount", n("30.0")),
        ]);
        let shaped = shape(&legacy).expect("shaped");
        assert_eq!(shaped["submissionCount"], n("12"));
        assert_eq!(shaped["totalCount"], n("30"));
        assert_eq!(
            shaped["leaderboardKey"],
            s(&schema::leaderboard_key(12, "ana"))
        );
        let bad = item(&[
            ("tableId", s("class-1")),
            ("username", s("bo")),
            ("submissionCount", n("2.5")),
        ]);
        assert_eq!(
            shape(&bad),
            Err(ShapeError::BadCount {
                attribute: "submissionCount".into(),
                value: "2.5".into()
            })
        );
        assert_eq!(
            shape(&item(&[("username", s("x"))])),
            Err(ShapeError::MissingKey("tableId"))
        );
    }

    #[test]
    fn a_table_gains_its_listing_attributes_and_keeps_its_creation_time() {
        let legacy = item(&[("tableId", s("class-1")), ("username", s("_metadata"))]);
        let shaped = shape(&legacy).expect("shaped");
        assert_eq!(shaped["tablesPartition"], s("TABLES"));
        assert_eq!(shaped["createdAt"], s("1970-01-01T00:00:00.000Z"));
        let dated = item(&[
            ("tableId", s("class-1")),
            ("username", s("_metadata")),
            ("createdAt", s("2024-03-01T10:00:00.000Z")),
        ]);
        assert_eq!(
            shape(&dated).expect("shaped")["createdAt"],
            s("2024-03-01T10:00:00.000Z")
        );
    }

    #[test]
    fn the_newer_item_wins_and_the_same_item_is_left_alone() {
        let user = |time: &str, count: &str| {
            shape(&item(&[
                ("tableId", s("c")),
                ("username", s("u")),
                ("submissionCount", n(count)),
                ("lastUpdated", s(time)),
            ]))
            .expect("shaped")
        };
        let old = user("2024-01-01T00:00:00.000Z", "1");
        // Legacy Python wrote no zone: read as UTC.
        let new = user("2024-06-01T00:00:00.123456", "2");
        assert_eq!(decide(&old, None), Decision::Copy);
        assert_eq!(decide(&old, Some(&old)), Decision::Unchanged);
        assert_eq!(decide(&old, Some(&new)), Decision::KeepNewer);
        assert_eq!(decide(&new, Some(&old)), Decision::Replace);
        let untimed = shape(&item(&[("tableId", s("c")), ("username", s("u"))])).expect("shaped");
        assert_eq!(decide(&untimed, Some(&old)), Decision::KeepNewer);
        assert_eq!(decide(&old, Some(&untimed)), Decision::Replace);
        // A table differing only in its userCount is the same table.
        let table = |count: &str| {
            item(&[
                ("tableId", s("c")),
                ("username", s("_metadata")),
                ("userCount", n(count)),
            ])
        };
        assert_eq!(decide(&table("3"), Some(&table("7"))), Decision::Unchanged);
        // Renamed by a legacy writer that stamped no updatedAt: the same time,
        // another name. The target holds the earlier copy: replaced, not kept.
        let named = |name: &str| {
            item(&[
                ("tableId", s("c")),
                ("username", s("_metadata")),
                ("createdAt", s("2024-03-01T10:00:00.000Z")),
                ("displayName", s(name)),
            ])
        };
        assert_eq!(
            decide(&named("Period 2"), Some(&named("Period 1"))),
            Decision::Replace
        );
        // The same values in other spellings are the same item: a rerun
        // leaves it alone.
        let spelled = |number: &str, tags: &[&str]| {
            item(&[
                ("tableId", s("c")),
                ("username", s("_metadata")),
                ("createdAt", s("2024-03-01T10:00:00.000Z")),
                ("level", n(number)),
                (
                    "tags",
                    AttributeValue::Ss(tags.iter().map(|tag| (*tag).to_owned()).collect()),
                ),
            ])
        };
        assert_eq!(
            decide(
                &spelled("1.50", &["b", "a"]),
                Some(&spelled("1.5", &["a", "b"]))
            ),
            Decision::Unchanged
        );
        assert_eq!(
            decide(&spelled("2", &["a"]), Some(&spelled("1.5", &["a"]))),
            Decision::Replace
        );
    }

    #[test]
    fn numbers_compare_by_value_in_any_spelling() {
        for (a, b) in [
            ("1.0", "1"),
            ("-1.50e2", "-150"),
            ("0.000", "0"),
            ("+7", "7"),
            ("120", "1.2E2"),
            ("00012.3400", "12.34"),
            (
                "12345678901234567890123456789012345678",
                "1.2345678901234567890123456789012345678e37",
            ),
        ] {
            assert_eq!(normal_number(a), normal_number(b), "{a} = {b}");
        }
        for (a, b) in [
            ("1", "2"),
            ("10", "1"),
            ("-1", "1"),
            (
                "12345678901234567890123456789012345678",
                "12345678901234567890123456789012345679",
            ),
        ] {
            assert_ne!(normal_number(a), normal_number(b), "{a} != {b}");
        }
        assert_eq!(normal_number("abc"), "abc");
    }

    #[test]
    fn checksums_see_keys_and_counts_only() {
        let user = |count: &str, extra: &str| {
            item(&[
                ("tableId", s("c")),
                ("username", s("u")),
                ("submissionCount", n(count)),
                ("displayName", s(extra)),
            ])
        };
        assert_eq!(
            checksum_part(&user("5", "a")),
            checksum_part(&user("5", "b"))
        );
        assert_eq!(
            checksum_part(&user("5", "a")),
            checksum_part(&user("5.0", "a"))
        );
        assert_ne!(
            checksum_part(&user("5", "a")),
            checksum_part(&user("6", "a"))
        );
    }
}
