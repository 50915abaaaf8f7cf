//! What the playground API and its deployer share, defined once: the DynamoDB
//! table's schema (this module: keys, attribute names, global secondary indexes,
//! and the one CreateTable request, [`create_table`]), the API's routes
//! ([`routes`]) and the CORS values API Gateway answers with ([`cors`]). The
//! dependency arrows read `deployer -> schema <- function`: the deployer never
//! compiles the function's HTTP stack.
//!
//! The function's `--create-table`, its tests and the deployer all provision the
//! table from [`TABLE_SCHEMA`] through [`create_table`], so they cannot drift.
//!
//! Items (compatible with tables created by the legacy deployment):
//! - table metadata: `tableId`, `username = "_metadata"`, `displayName`, `createdAt`,
//!   `isArchived`, `userCount`, `updatedAt` (after a PATCH), and [`TABLES_PARTITION`]
//!   = [`TABLES_PARTITION_VALUE`] so the table appears in the [`BY_CREATED_AT`] index;
//! - a user: `tableId`, `username`, `submissionCount`, `totalCount`, `lastUpdated`,
//!   and [`LEADERBOARD_KEY`] so the user appears in the [`BY_LEADERBOARD`] index;
//! - a user counter: `tableId`, `username =` [`counter_username`]`(i)` for `i` in
//!   `0..`[`USER_COUNT_SHARDS`], and `userCount`. A table's `userCount` is its
//!   metadata's `userCount` plus its counters' (see [`USER_COUNT_SHARDS`]);
//! - what ranks and team standings are kept in: [`ranking::RANK_KEY`] and
//!   [`ranking::RANK_TEAM`] on each ranked user (so it appears in [`BY_RANK`]),
//!   and the class's rank entries, rank buckets and teams (see [`ranking`]).

/// The attribute DynamoDB Time to Live reads (epoch seconds): items past it
/// are swept. Only sign-in sessions carry it. `ttl`, as the legacy deployment
/// named it, so a table whose TTL was turned on by hand is adopted as it is.
pub const TIME_TO_LIVE: &str = "ttl";

/// The partition key of a sign-in session is this prefix and the session's id.
/// `#` is not allowed in a table id, so no session shares a partition with a
/// playground table, and none appears among tables or users.
pub const SESSION_PARTITION_PREFIX: &str = "session#";
/// The sort key of a sign-in session's item.
pub const SESSION_SORT_KEY: &str = "_session";

/// The names of the function's environment variables that the deployer sets,
/// written once for both sides (the function's `config.rs` reads them, the
/// deployer's `stacks/environment.rs` sets them).
pub mod function_env {
    /// The DynamoDB table the function serves.
    pub const TABLE_NAME: &str = "TABLE_NAME";
    /// `true` (the function's default): a new user and its count are written in
    /// one transaction; `false`: a conditional put, then an atomic increment.
    pub const SAFE_CONCURRENCY: &str = "SAFE_CONCURRENCY";
    /// Whether `DELETE /tables/{tableId}` may delete a table (the function's
    /// default: no).
    pub const ALLOW_TABLE_DELETE: &str = "ALLOW_TABLE_DELETE";
    /// Whether the owner rules apply to the claims API Gateway verified
    /// (the function's default: no, every request is allowed).
    pub const AUTH_ENABLED: &str = "AUTH_ENABLED";
    /// The `cognito:groups` group whose members are admins.
    pub const AUTH_ADMIN_GROUP: &str = "AUTH_ADMIN_GROUP";
    /// With sign-in, whether reads stay open.
    pub const ALLOW_PUBLIC_READ: &str = "ALLOW_PUBLIC_READ";
    /// Seconds a sign-in session lives at most (default 720,000, the legacy
    /// handler's); a token's own `exp` can end it sooner.
    pub const SESSION_TTL_SECONDS: &str = "SESSION_TTL_SECONDS";
}

/// Partition key of the table: the playground table's id.
pub const TABLE_ID: &str = "tableId";
/// Sort key of the table: a user name, or [`METADATA_USERNAME`].
pub const USERNAME: &str = "username";
/// The sort key value of the item that holds a playground table's metadata.
pub const METADATA_USERNAME: &str = "_metadata";

/// How many counter items a table's `userCount` is spread over. Every new
/// user's write increments one of them, picked at random, so that a class
/// whose students all submit for the first time at once is spread over this
/// many items instead of queueing on one (DynamoDB cancels concurrent
/// transactions on one item). The metadata's own `userCount` is the base: all of
/// the count of a table written before counters existed, and 0 for a new one.
pub const USER_COUNT_SHARDS: u8 = 4;

/// The sort key of counter `shard` of a table: `_metadata#count<shard>`. `#` is
/// not allowed in a username, so no user collides, and every counter sorts
/// after [`METADATA_USERNAME`] and before [`METADATA_RANGE_END`].
pub fn counter_username(shard: u8) -> String {
    format!("{METADATA_USERNAME}#count{shard}")
}

/// Set (`true`) on a table's counters by `DELETE /tables/{tableId}` before it
/// deletes any user: a closed counter takes no increment, so no user can be
/// created in a table being deleted, and none outlives its delete.
pub const COUNTER_CLOSED: &str = "closed";

/// Above every counter's sort key and below every username that starts with
/// `_metadata` (whose next character is `-`, `_` or alphanumeric, all above
/// `#`): `username BETWEEN "_metadata" AND METADATA_RANGE_END` selects exactly
/// a table's metadata and counters.
pub const METADATA_RANGE_END: &str = "_metadata#~";

pub const DISPLAY_NAME: &str = "displayName";
pub const CREATED_AT: &str = "createdAt";
pub const UPDATED_AT: &str = "updatedAt";
pub const IS_ARCHIVED: &str = "isArchived";
pub const USER_COUNT: &str = "userCount";
pub const SUBMISSION_COUNT: &str = "submissionCount";
pub const TOTAL_COUNT: &str = "totalCount";
pub const LAST_UPDATED: &str = "lastUpdated";
/// A table's owner, when sign-in is on: the creator's `sub`, principal and email.
pub const OWNER_SUB: &str = "ownerSub";
pub const OWNER_PRINCIPAL: &str = "ownerPrincipal";
pub const OWNER_EMAIL: &str = "ownerEmail";
/// The playground a table was created for (`POST /tables` with `playgroundUrl`).
pub const PLAYGROUND_URL: &str = "playgroundUrl";
pub const PLAYGROUND_ID: &str = "playgroundId";
/// A user's team (`PUT .../users/{username}` with `teamName`).
pub const TEAM_NAME: &str = "teamName";
/// A user's moral-compass progress (`PUT .../users/{username}/moral-compass`):
/// the model's metrics (a map of numbers), the one that counts, the four
/// progress counts, and the score computed from them.
pub const METRICS: &str = "metrics";
pub const PRIMARY_METRIC: &str = "primaryMetric";
pub const TASKS_COMPLETED: &str = "tasksCompleted";
pub const TOTAL_TASKS: &str = "totalTasks";
pub const QUESTIONS_CORRECT: &str = "questionsCorrect";
pub const TOTAL_QUESTIONS: &str = "totalQuestions";
pub const MORAL_COMPASS_SCORE: &str = "moralCompassScore";
/// The ids (`t<n>`) of the tasks a user completed: a string set.
pub const COMPLETED_TASK_IDS: &str = "completedTaskIds";

/// Attribute set on metadata items only (always [`TABLES_PARTITION_VALUE`]), the
/// partition key of [`BY_CREATED_AT`]: every playground table in one ordered list.
pub const TABLES_PARTITION: &str = "tablesPartition";
/// The single value of [`TABLES_PARTITION`].
pub const TABLES_PARTITION_VALUE: &str = "TABLES";
/// Attribute set on user items only: sorts by `submissionCount` descending, then
/// `username` ascending. See [`leaderboard_key`].
pub const LEADERBOARD_KEY: &str = "leaderboardKey";

/// GSI: all tables of a user (legacy index, kept as it was).
pub const BY_USER: &str = "byUser";
/// GSI: all playground tables, newest first with `ScanIndexForward = false`.
pub const BY_CREATED_AT: &str = "byCreatedAt";
/// GSI: a playground table's users by `submissionCount` descending, then
/// `username` (the order before moral-compass scores). Still written, so a
/// release rolled back to one that lists by it lists correctly.
pub const BY_LEADERBOARD: &str = "byLeaderboard";
/// GSI: a playground table's users in leaderboard order: `moralCompassScore`
/// descending, then `submissionCount` descending, then `username`
/// ([`ranking::rank_key`]). Only ranked users carry its key.
pub const BY_RANK: &str = "byRank";

pub mod cors;
mod create_table;
pub mod ranking;
pub mod routes;

pub use create_table::{
    attribute_definitions, attribute_type, create_table, global_secondary_index, key_element,
};

/// The largest count accepted: JSON clients (JavaScript) represent integers exactly up to here.
pub const MAX_COUNT: u64 = 9_007_199_254_740_991;

/// A DynamoDB scalar attribute type usable in a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    String,
    Number,
}

/// One key attribute: its name and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAttribute {
    pub name: &'static str,
    pub key_type: KeyType,
}

/// A global secondary index. All indexes project all attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalSecondaryIndex {
    pub name: &'static str,
    pub partition_key: KeyAttribute,
    pub sort_key: KeyAttribute,
    /// Whether the function needs this index to serve its API (`byUser` is optional,
    /// controlled by the deployer's `enable_gsi_by_user`).
    pub required_by_api: bool,
}

/// The table's keys and indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSchema {
    pub partition_key: KeyAttribute,
    pub sort_key: KeyAttribute,
    pub global_secondary_indexes: &'static [GlobalSecondaryIndex],
}

const fn string_key(name: &'static str) -> KeyAttribute {
    KeyAttribute {
        name,
        key_type: KeyType::String,
    }
}

/// The playground table's schema.
pub const TABLE_SCHEMA: TableSchema = TableSchema {
    partition_key: string_key(TABLE_ID),
    sort_key: string_key(USERNAME),
    global_secondary_indexes: &[
        GlobalSecondaryIndex {
            name: BY_USER,
            partition_key: string_key(USERNAME),
            sort_key: string_key(TABLE_ID),
            required_by_api: false,
        },
        GlobalSecondaryIndex {
            name: BY_CREATED_AT,
            partition_key: string_key(TABLES_PARTITION),
            sort_key: string_key(CREATED_AT),
            required_by_api: true,
        },
        GlobalSecondaryIndex {
            name: BY_LEADERBOARD,
            partition_key: string_key(TABLE_ID),
            sort_key: string_key(LEADERBOARD_KEY),
            required_by_api: true,
        },
        GlobalSecondaryIndex {
            name: BY_RANK,
            partition_key: string_key(TABLE_ID),
            sort_key: string_key(ranking::RANK_KEY),
            required_by_api: true,
        },
    ],
};

impl TableSchema {
    /// Every attribute used in a key of the table or an index, each once, in a stable order.
    pub fn key_attributes(&self) -> Vec<KeyAttribute> {
        self.key_attributes_of(self.global_secondary_indexes.iter())
    }

    /// The attributes of the table's keys and of `indexes`' keys, each once.
    pub fn key_attributes_of<'a>(
        &self,
        indexes: impl IntoIterator<Item = &'a GlobalSecondaryIndex>,
    ) -> Vec<KeyAttribute> {
        let mut attributes = vec![self.partition_key, self.sort_key];
        for index in indexes {
            for key in [index.partition_key, index.sort_key] {
                if !attributes.iter().any(|known| known.name == key.name) {
                    attributes.push(key);
                }
            }
        }
        attributes
    }
}

/// Whether `id` is a valid table id, username or session id:
/// `^[A-Za-z0-9_-]{1,64}$`, as the legacy handler checked them.
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `id` is a task id: `t` and digits (`^t\d+$`), as the legacy
/// handler checked them.
pub fn is_task_id(id: &str) -> bool {
    id.strip_prefix('t')
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Task ids each once, sorted by their number (`t2` before `t10`).
pub fn sorted_task_ids(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut ids: Vec<String> = ids.into_iter().collect();
    let number = |id: &String| {
        let digits = id.trim_start_matches('t').trim_start_matches('0');
        (digits.len(), digits.to_owned(), id.clone())
    };
    ids.sort_by_key(number);
    ids.dedup();
    ids
}

/// A count as written: a whole number, or an integral decimal such as `5.0`
/// (older writers stored floats), at most [`MAX_COUNT`]. The function reads
/// counts this way, and the deployer's data commands shape legacy items by it.
pub fn parse_count(text: &str) -> Option<u64> {
    if let Ok(value) = text.parse::<u64>() {
        return Some(value);
    }
    let value = text.parse::<f64>().ok()?;
    (value.fract() == 0.0 && value >= 0.0 && value <= MAX_COUNT as f64).then_some(value as u64)
}

/// The [`LEADERBOARD_KEY`] of a user: ascending order of this string is
/// `submissionCount` descending, then `username` ascending.
///
/// `count` is clamped to [`MAX_COUNT`], which the API never exceeds.
pub fn leaderboard_key(submission_count: u64, username: &str) -> String {
    let inverted = MAX_COUNT - submission_count.min(MAX_COUNT);
    format!("{inverted:016}#{username}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaderboard_keys_sort_by_count_descending_then_name() {
        let mut keys = [
            leaderboard_key(1, "b"),
            leaderboard_key(10, "z"),
            leaderboard_key(2, "a"),
            leaderboard_key(10, "a"),
            leaderboard_key(0, "a"),
            leaderboard_key(MAX_COUNT, "m"),
        ];
        keys.sort();
        let names: Vec<&str> = keys
            .iter()
            .map(|key| key.split_once('#').map(|(_, name)| name).unwrap_or(""))
            .collect();
        assert_eq!(names, ["m", "a", "z", "a", "b", "a"]);
        assert_eq!(leaderboard_key(MAX_COUNT, "m").len(), 16 + 2);
        assert_eq!(leaderboard_key(0, "m").len(), 16 + 2);
    }

    #[test]
    fn key_attributes_are_listed_once_each() {
        let names: Vec<&str> = TABLE_SCHEMA
            .key_attributes()
            .iter()
            .map(|key| key.name)
            .collect();
        assert_eq!(
            names,
            [
                TABLE_ID,
                USERNAME,
                TABLES_PARTITION,
                CREATED_AT,
                LEADERBOARD_KEY,
                ranking::RANK_KEY
            ]
        );
    }
}

#[cfg(test)]
mod counter_tests {
    use super::*;

    fn in_metadata_range(username: &str) -> bool {
        (METADATA_USERNAME..=METADATA_RANGE_END).contains(&username)
    }

    #[test]
    fn the_metadata_range_holds_the_metadata_and_every_counter_and_no_user() {
        assert!(in_metadata_range(METADATA_USERNAME));
        for shard in 0..USER_COUNT_SHARDS {
            assert!(in_metadata_range(&counter_username(shard)), "{shard}");
        }
        // Every character a username may hold, right after `_metadata` and
        // at either end of the username alphabet.
        let alphabet = ('0'..='9')
            .chain('A'..='Z')
            .chain('a'..='z')
            .chain(['_', '-']);
        for next in alphabet {
            let user = format!("{METADATA_USERNAME}{next}");
            assert!(!in_metadata_range(&user), "{user}");
        }
        assert!(!in_metadata_range("_metadat"));
        assert!(!in_metadata_range("_"));
        assert!(!in_metadata_range("zzz"));
    }
}
