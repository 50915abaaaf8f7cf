//! An environment's table, `PlaygroundScores-<env>`, provisioned from the
//! function's one schema definition. Missing indexes are added in place, one at
//! a time (DynamoDB allows one index creation per update), waiting until each is
//! active. The table is never replaced: a key change is refused by the planner.
//! Time to Live is turned on on [`schema::TIME_TO_LIVE`] (sign-in sessions
//! expire by it), on created and adopted tables alike; a table whose Time to
//! Live is on another attribute is not switched (the plan is refused, saying
//! why and what to do).
//!
//! Items written before an index existed lack the attribute it is keyed on;
//! the plan counts them (`items_missing_index_keys`) and apply backfills them,
//! never changing an attribute that exists: a table's `tablesPartition`, a
//! user's `leaderboardKey`, and a user's rank (`rankKey`, with its rank entry,
//! bucket and team, by [`schema::ranking::rank_unranked_user`], one user at a
//! time). No item is replaced.
//!
//! `items_missing_index_keys` is a managed attribute on purpose, not a fact:
//! desired 0, observed N, and apply converges it by backfilling, so the plan
//! shows the backfill as a change. The item count and the indexes the schema
//! does not know are facts ([`ScoresTableFacts`]): apply never changes them.
//!
//! The table's keys and its indexes are typed ([`KeySchema`], [`IndexShape`])
//! and compared by their fields; plans and the state hold them as the text
//! the plan shows (`byRank: tableId (S) / rankKey (S)`), and a recorded text
//! that does not read as one is kept as it is ([`Shape`]).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, CreateGlobalSecondaryIndexAction,
    DeleteGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement,
    KeyType, Tag, TimeToLiveDescription, TimeToLiveSpecification, TimeToLiveStatus,
};
use schema::TABLE_SCHEMA;

mod index_shape;
pub use index_shape::{
    IndexShape, IndexStep, KeyAttribute, KeyAttributeType, KeySchema, Shape, UnreadableShape,
    index_steps, indexes_in,
};

use super::dynamodb_settings::{self, TableTags};
use super::{Clients, tags};
use crate::engine::Doing;
use crate::engine::progress::Progress;
use crate::engine::{
    AttributeChange, AttributeSet, DesiredResource, EngineError, ObservedResource, Resource, Rule,
    Tags,
};

crate::attributes! {
    /// What is managed of a scores table. `items_missing_index_keys` counts the
    /// items an adopted legacy table must gain index keys for: observed, and
    /// desired 0, so the plan shows what apply backfills (managed, not a fact,
    /// because apply converges it).
    pub struct ScoresTableAttributes, enum ScoresTableAttribute {
        Keys keys: Shape<KeySchema> => Rule::ForcesReplacement,
        BillingMode billing_mode: String,
        GlobalSecondaryIndexes global_secondary_indexes: Vec<Shape<IndexShape>> => Rule::Set,
        PointInTimeRecovery point_in_time_recovery: bool,
        DeletionProtection deletion_protection: bool,
        TimeToLive time_to_live: String,
        Tags tags: Tags,
        ItemsMissingIndexKeys items_missing_index_keys: i64,
    }
}

/// What is only observed of a scores table, never managed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScoresTableFacts {
    /// DynamoDB's estimate of the table's items (destroy and index notes show it).
    pub item_count: Option<i64>,
    /// The indexes the schema does not know (kept unless `--prune-indexes`), as
    /// the plan shows indexes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_indexes: Vec<Shape<IndexShape>>,
}

/// What the state records of a scores table once every item has its index
/// keys: the list [`BACKFILLED_INDEX_KEYS`]. (A state written before ranks
/// recorded `true`, for the first two only: its table is counted again.)
pub const INDEX_KEYS_BACKFILLED: &str = "index_keys_backfilled";

/// The attributes the backfill gives every item that needs them.
pub const BACKFILLED_INDEX_KEYS: [&str; 3] = [
    schema::TABLES_PARTITION,
    schema::LEADERBOARD_KEY,
    schema::ranking::RANK_KEY,
];

/// Whether `recorded` (the state's [`INDEX_KEYS_BACKFILLED`]) says every
/// item has all of [`BACKFILLED_INDEX_KEYS`].
pub fn backfill_recorded(recorded: Option<&serde_json::Value>) -> bool {
    let Some(serde_json::Value::Array(keys)) = recorded else {
        return false;
    };
    BACKFILLED_INDEX_KEYS
        .iter()
        .all(|wanted| keys.iter().any(|key| key.as_str() == Some(wanted)))
}

pub const ADDRESS: &str = "dynamodb_table.scores";

/// `time_to_live` of a table whose Time to Live is off.
pub const TIME_TO_LIVE_DISABLED: &str = "disabled";

/// A table's Time to Live as the plan compares it (from DescribeTimeToLive):
/// the attribute when on or turning on, [`TIME_TO_LIVE_DISABLED`] when off,
/// `disabling (<attribute>)` while it turns off.
pub fn time_to_live_value(description: Option<&TimeToLiveDescription>) -> String {
    let attribute = description
        .and_then(TimeToLiveDescription::attribute_name)
        .unwrap_or("?");
    match description.and_then(TimeToLiveDescription::time_to_live_status) {
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) => attribute.to_owned(),
        None | Some(TimeToLiveStatus::Disabled) => TIME_TO_LIVE_DISABLED.to_owned(),
        Some(other) => format!("{} ({attribute})", other.as_str().to_lowercase()),
    }
}

/// Why the plan does not switch a table's Time to Live from another attribute
/// (or while it turns off) to [`schema::TIME_TO_LIVE`], and what to do.
pub fn time_to_live_refusal(table: &str) -> String {
    format!(
        "sign-in sessions expire by Time to Live on `{ttl}`, and a table has Time to Live on \
         one attribute at most. Switching is left to you: DynamoDB allows one Time to Live \
         change per table per hour, so turning it off and on again on `{ttl}` takes an hour or \
         more, during which no item expires, and afterwards items marked only by the other \
         attribute never expire. If nothing relies on the other attribute, turn Time to Live \
         off yourself (`aws dynamodb update-time-to-live --table-name {table} \
         --time-to-live-specification Enabled=false,AttributeName=<the attribute above>`), \
         wait until `aws dynamodb describe-time-to-live --table-name {table}` says DISABLED, \
         and apply again",
        ttl = schema::TIME_TO_LIVE
    )
}

/// Items written before the ordering indexes existed: metadata without
/// `tablesPartition`, users without `leaderboardKey` or without `rankKey`.
/// Not users: counters (`_metadata#…`), sign-in sessions (their partitions
/// are `session#<id>`) and the derived rank entries, buckets and teams.
const MISSING_INDEX_KEYS: &str = "(#u = :meta AND attribute_not_exists(#p)) OR \
     (#u <> :meta AND NOT begins_with(#u, :counter) AND NOT begins_with(#t, :session) \
     AND NOT begins_with(#u, :rank) AND NOT begins_with(#u, :team) \
     AND (attribute_not_exists(#r) OR attribute_not_exists(#k)))";

/// A scan of `table` for the items [`MISSING_INDEX_KEYS`] selects.
fn missing_index_keys_scan(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder {
    let [rank, team] = crate::ranking::DERIVED_PREFIXES;
    dynamodb
        .scan()
        .table_name(table)
        .filter_expression(MISSING_INDEX_KEYS)
        .expression_attribute_names("#u", schema::USERNAME)
        .expression_attribute_names("#t", schema::TABLE_ID)
        .expression_attribute_names("#p", schema::TABLES_PARTITION)
        .expression_attribute_names("#r", schema::LEADERBOARD_KEY)
        .expression_attribute_names("#k", schema::ranking::RANK_KEY)
        .expression_attribute_values(":meta", AttributeValue::S(schema::METADATA_USERNAME.into()))
        .expression_attribute_values(":counter", AttributeValue::S(counter_prefix()))
        .expression_attribute_values(
            ":session",
            AttributeValue::S(schema::SESSION_PARTITION_PREFIX.into()),
        )
        .expression_attribute_values(":rank", AttributeValue::S(rank.into()))
        .expression_attribute_values(":team", AttributeValue::S(team.into()))
}

/// Whether an item the scan found is one the backfill gives keys to (the
/// filter's rule, checked again with the schema's own functions): a table's
/// metadata, or a user.
fn backfilled(table_id: &str, username: &str) -> bool {
    username == schema::METADATA_USERNAME
        || !(username.starts_with(&counter_prefix())
            || table_id.starts_with(schema::SESSION_PARTITION_PREFIX)
            || schema::ranking::is_derived(username))
}

/// What every counter's sort key starts with (`_metadata#`).
fn counter_prefix() -> String {
    format!("{}#", schema::METADATA_USERNAME)
}

/// A long backfill says how far it got this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ScoresTable {
    pub clients: Clients,
    pub name: String,
    pub enable_pitr: bool,
    pub deletion_protection: bool,
    pub enable_gsi_by_user: bool,
    /// Delete indexes the schema does not know (`--prune-indexes`); otherwise
    /// they are kept and pointed out.
    pub prune_indexes: bool,
    /// The state records that every item has its index keys: plan skips the
    /// counting scan, so a no-op plan costs the same at any table size.
    pub index_keys_backfilled: bool,
    pub tags: std::collections::BTreeMap<String, String>,
}

impl ScoresTable {
    fn doing(&self, what: &str) -> String {
        format!("{what} DynamoDB table {}", self.name)
    }

    fn wanted_indexes(&self) -> Vec<&'static schema::GlobalSecondaryIndex> {
        TABLE_SCHEMA
            .global_secondary_indexes
            .iter()
            .filter(|index| {
                index.required_by_api || (index.name == schema::BY_USER && self.enable_gsi_by_user)
            })
            .collect()
    }

    /// Wait until the table and every index are ACTIVE. Building an index
    /// backfills every item, so the bound grows with the table: 10 minutes, plus
    /// a second per 1,000 items (DynamoDB backfills far faster), at most a day.
    async fn wait_until_active(&self) -> Result<(), EngineError> {
        let action = self.doing("waiting for");
        let started = std::time::Instant::now();
        loop {
            let described = self
                .clients
                .dynamodb
                .describe_table()
                .table_name(&self.name)
                .send()
                .await
                .doing(|| action.clone())?;
            let table = described.table();
            let table_active = table
                .and_then(|t| t.table_status())
                .is_some_and(|s| s.as_str() == "ACTIVE");
            let indexes_active = table.is_some_and(|t| {
                t.global_secondary_indexes()
                    .iter()
                    .all(|index| index.index_status() == Some(&IndexStatus::Active))
            });
            if table_active && indexes_active {
                return Ok(());
            }
            let items = table.and_then(|t| t.item_count()).unwrap_or(0);
            let bound = (Duration::from_secs(600)
                + Duration::from_secs(u64::try_from(items / 1000).unwrap_or(0)))
            .min(Duration::from_secs(86_400));
            if started.elapsed() > bound {
                let pending: Vec<String> = table
                    .map(|t| {
                        t.global_secondary_indexes()
                            .iter()
                            .filter(|index| index.index_status() != Some(&IndexStatus::Active))
                            .map(|index| {
                                format!(
                                    "index {} is {}",
                                    index.index_name().unwrap_or("?"),
                                    index.index_status().map_or("?", |status| status.as_str())
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                return Err(EngineError::new(
                    action,
                    format!(
                        "not ACTIVE after {} s (the bound for {items} items): {}",
                        bound.as_secs(),
                        if pending.is_empty() {
                            "the table is not ACTIVE".to_owned()
                        } else {
                            pending.join(", ")
                        }
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// The definitions of the table's keys and every wanted index's keys, once each.
    fn attribute_definitions(&self, action: &str) -> Result<Vec<AttributeDefinition>, EngineError> {
        schema::attribute_definitions(&self.wanted_indexes())
            .map_err(|error| EngineError::new(action, error.to_string()))
    }

    async fn add_index(&self, index: &schema::GlobalSecondaryIndex) -> Result<(), EngineError> {
        let action = self.doing(&format!("adding index {} to", index.name));
        let index = schema::global_secondary_index(index)
            .map_err(|error| EngineError::new(action.clone(), error.to_string()))?;
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(index.index_name)
            .set_key_schema(Some(index.key_schema))
            .set_projection(index.projection)
            .build()
            .map_err(|error| EngineError::new(action.clone(), error.to_string()))?;
        self.clients
            .dynamodb
            .update_table()
            .table_name(&self.name)
            // Every key attribute, not only the new index's: an update's definitions
            // describe the whole table (the emulator replaces them with what is sent).
            .set_attribute_definitions(Some(self.attribute_definitions(&action)?))
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder().create(create).build(),
            )
            .send()
            .await
            .doing(|| action.clone())?;
        self.wait_until_active().await
    }

    async fn remove_index(&self, name: &str) -> Result<(), EngineError> {
        let action = self.doing(&format!("removing index {name} from"));
        let delete = DeleteGlobalSecondaryIndexAction::builder()
            .index_name(name)
            .build()
            .map_err(|error| EngineError::new(action.clone(), error.to_string()))?;
        self.clients
            .dynamodb
            .update_table()
            .table_name(&self.name)
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder().delete(delete).build(),
            )
            .send()
            .await
            .doing(|| action.clone())?;
        self.wait_until_active().await
    }

    /// How many items lack an attribute their ordering index needs
    /// ([`MISSING_INDEX_KEYS`]: tables without `tablesPartition`, users
    /// without `leaderboardKey` or `rankKey`, written before those indexes
    /// existed). One scan, returning keys only.
    async fn items_missing_index_keys(&self) -> Result<u64, EngineError> {
        let mut missing = 0u64;
        let mut start = None;
        loop {
            let page = missing_index_keys_scan(&self.clients.dynamodb, &self.name)
                .projection_expression("#t, #u")
                .set_exclusive_start_key(start)
                .send()
                .await
                .doing(|| self.doing("counting items without index keys in"))?;
            missing += page
                .items()
                .iter()
                .filter(|item| {
                    matches!(
                        (item.get(schema::TABLE_ID), item.get(schema::USERNAME)),
                        (Some(AttributeValue::S(table_id)), Some(AttributeValue::S(username)))
                            if backfilled(table_id, username)
                    )
                })
                .count() as u64;
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(missing);
            }
        }
    }

    /// Add the missing index attributes to legacy items, never changing an
    /// attribute that exists (each write is conditioned on its absence, and
    /// on the item still existing): a table's `tablesPartition`, a user's
    /// `leaderboardKey`, then its rank. `expected` is the plan's count, for
    /// the progress lines.
    async fn backfill_index_keys(&self, expected: u64) -> Result<(), EngineError> {
        let dynamodb = &self.clients.dynamodb;
        let action = self.doing("adding index attributes to the items of");
        let progress = Progress::new();
        let started = Instant::now();
        let mut noted = Instant::now();
        let (mut items, mut ranked) = (0u64, 0u64);
        let mut start = None;
        loop {
            let page = missing_index_keys_scan(dynamodb, &self.name)
                .set_exclusive_start_key(start)
                .send()
                .await
                .doing(|| action.clone())?;
            for item in page.items() {
                let (Some(AttributeValue::S(table_id)), Some(AttributeValue::S(username))) =
                    (item.get(schema::TABLE_ID), item.get(schema::USERNAME))
                else {
                    continue;
                };
                if !backfilled(table_id, username) {
                    continue;
                }
                let key = [
                    (
                        schema::TABLE_ID.to_owned(),
                        AttributeValue::S(table_id.clone()),
                    ),
                    (
                        schema::USERNAME.to_owned(),
                        AttributeValue::S(username.clone()),
                    ),
                ];
                let request = dynamodb
                    .update_item()
                    .table_name(&self.name)
                    .set_key(Some(key.into()))
                    .expression_attribute_names("#u", schema::USERNAME);
                let request = if username == schema::METADATA_USERNAME {
                    // Tables without createdAt sort as the oldest.
                    Some(
                        request
                            .update_expression("SET #p = :p, #c = if_not_exists(#c, :epoch)")
                            .condition_expression(
                                "attribute_exists(#u) AND attribute_not_exists(#p)",
                            )
                            .expression_attribute_names("#p", schema::TABLES_PARTITION)
                            .expression_attribute_names("#c", schema::CREATED_AT)
                            .expression_attribute_values(
                                ":p",
                                AttributeValue::S(schema::TABLES_PARTITION_VALUE.into()),
                            )
                            .expression_attribute_values(
                                ":epoch",
                                AttributeValue::S("1970-01-01T00:00:00.000Z".into()),
                            ),
                    )
                } else if item.contains_key(schema::LEADERBOARD_KEY) {
                    None
                } else {
                    let submissions = match item.get(schema::SUBMISSION_COUNT) {
                        Some(AttributeValue::N(number)) => number
                            .parse::<u64>()
                            .ok()
                            .or_else(|| {
                                number
                                    .parse::<f64>()
                                    .ok()
                                    .map(|value| value.max(0.0) as u64)
                            })
                            .unwrap_or(0),
                        _ => 0,
                    };
                    Some(
                        request
                            .update_expression("SET #r = :r")
                            .condition_expression(
                                "attribute_exists(#u) AND attribute_not_exists(#r)",
                            )
                            .expression_attribute_names("#r", schema::LEADERBOARD_KEY)
                            .expression_attribute_values(
                                ":r",
                                AttributeValue::S(schema::leaderboard_key(submissions, username)),
                            ),
                    )
                };
                if let Some(request) = request {
                    match request.send().await {
                        Ok(_) => {}
                        // Someone (the function) wrote it meanwhile, or deleted it: theirs is kept.
                        Err(error)
                            if error.as_service_error().is_some_and(|service| {
                                service.is_conditional_check_failed_exception()
                            }) => {}
                        Err(error) => return Err(EngineError::sdk(action.clone(), error)),
                    }
                }
                if username != schema::METADATA_USERNAME
                    && !item.contains_key(schema::ranking::RANK_KEY)
                    && self.rank_user(table_id, username).await?
                {
                    ranked += 1;
                }
                items += 1;
                if noted.elapsed() >= PROGRESS_EVERY {
                    progress.note(
                        ADDRESS,
                        &format!(
                            "backfilling index keys: {items} of ~{expected} items, {ranked} users \
                             ranked, after {:.0}s",
                            started.elapsed().as_secs_f64()
                        ),
                    );
                    noted = Instant::now();
                }
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                progress.note(
                    ADDRESS,
                    &format!(
                        "index keys backfilled: {items} items, {ranked} users ranked, in {:.1}s",
                        started.elapsed().as_secs_f64()
                    ),
                );
                return Ok(());
            }
        }
    }

    /// Rank one user written before ranks existed, from its item as it is now
    /// (read again, strongly consistent: a page of the scan may be minutes
    /// old by then). `false` when it is gone or was ranked meanwhile (by the
    /// function, or by an earlier attempt).
    async fn rank_user(&self, table_id: &str, username: &str) -> Result<bool, EngineError> {
        let read = self
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.name)
            .key(schema::TABLE_ID, AttributeValue::S(table_id.to_owned()))
            .key(schema::USERNAME, AttributeValue::S(username.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .doing(|| self.doing(&format!("reading user {username} of table {table_id} in")))?;
        let Some(item) = read.item() else {
            return Ok(false);
        };
        if item.contains_key(schema::ranking::RANK_KEY) {
            return Ok(false);
        }
        schema::ranking::rank_unranked_user(
            &self.clients.dynamodb,
            &self.name,
            item,
            crate::ranking::now_ms(),
        )
        .await
        .map_err(|error| {
            let (what, detail) = crate::ranking::failure(&error);
            EngineError::new(format!("{what} in DynamoDB table {}", self.name), detail)
        })
    }

    fn arn(&self) -> String {
        format!(
            "arn:aws:dynamodb:{}:{}:table/{}",
            self.clients.region, self.clients.account_id, self.name
        )
    }

    /// Turn DynamoDB's deletion protection on or off.
    pub async fn set_deletion_protection(&self, enabled: bool) -> Result<(), EngineError> {
        let what = if enabled {
            "turning on deletion protection of"
        } else {
            "turning off deletion protection of"
        };
        self.clients
            .dynamodb
            .update_table()
            .table_name(&self.name)
            .deletion_protection_enabled(enabled)
            .send()
            .await
            .doing(|| self.doing(what))?;
        self.wait_until_active().await
    }

    /// The table's Time to Live, as [`time_to_live_value`] shows it.
    async fn time_to_live(&self) -> Result<String, EngineError> {
        let described = self
            .clients
            .dynamodb
            .describe_time_to_live()
            .table_name(&self.name)
            .send()
            .await
            .doing(|| self.doing("reading Time to Live of"))?;
        Ok(time_to_live_value(described.time_to_live_description()))
    }

    /// Turn Time to Live on, on [`schema::TIME_TO_LIVE`]. (DynamoDB refuses
    /// it while Time to Live is on another attribute or changed within the
    /// hour; the planner refuses the first, and AWS's error says the second.)
    async fn enable_time_to_live(&self) -> Result<(), EngineError> {
        let action = self.doing(&format!(
            "turning on Time to Live (attribute {}) of",
            schema::TIME_TO_LIVE
        ));
        let specification = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(schema::TIME_TO_LIVE)
            .build()
            .map_err(|error| EngineError::new(action.clone(), error.to_string()))?;
        self.clients
            .dynamodb
            .update_time_to_live()
            .table_name(&self.name)
            .time_to_live_specification(specification)
            .send()
            .await
            .doing(|| action.clone())?;
        Ok(())
    }

    /// Take an on-demand backup named `backup_name` and wait (bounded by the
    /// table's size) until it is AVAILABLE; its ARN.
    pub async fn final_backup(&self, backup_name: &str) -> Result<String, EngineError> {
        let action = self.doing(&format!("backing up (backup {backup_name})"));
        let created = self
            .clients
            .dynamodb
            .create_backup()
            .table_name(&self.name)
            .backup_name(backup_name)
            .send()
            .await
            .doing(|| action.clone())?;
        let arn = created
            .backup_details()
            .map(|details| details.backup_arn().to_owned())
            .ok_or_else(|| EngineError::new(action.clone(), "DynamoDB returned no backup ARN"))?;
        // Backups of tables up to a few GB are AVAILABLE in seconds; allow ten
        // minutes, then say what is still awaited.
        for _ in 0..600 {
            let described = self
                .clients
                .dynamodb
                .describe_backup()
                .backup_arn(&arn)
                .send()
                .await
                .doing(|| action.clone())?;
            let status = described
                .backup_description()
                .and_then(|description| description.backup_details())
                .map(|details| details.backup_status().clone());
            match status {
                Some(aws_sdk_dynamodb::types::BackupStatus::Available) => return Ok(arn),
                Some(aws_sdk_dynamodb::types::BackupStatus::Deleted) => {
                    return Err(EngineError::new(
                        action,
                        format!("backup {arn} was deleted"),
                    ));
                }
                _ => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
        Err(EngineError::new(
            action,
            format!("backup {arn} is still not AVAILABLE after 10 minutes"),
        ))
    }
}

#[async_trait::async_trait]
impl Resource for ScoresTable {
    fn address(&self) -> &str {
        ADDRESS
    }

    fn desired(&self) -> DesiredResource {
        let keys = Shape::Typed(KeySchema::of(
            &TABLE_SCHEMA.partition_key,
            &TABLE_SCHEMA.sort_key,
        ));
        let indexes = self
            .wanted_indexes()
            .into_iter()
            .map(|index| Shape::Typed(IndexShape::of(index)))
            .collect();
        DesiredResource::new(
            self.address(),
            "dynamodb_table",
            &self.name,
            ScoresTableAttributes {
                keys,
                billing_mode: "PAY_PER_REQUEST".into(),
                global_secondary_indexes: indexes,
                point_in_time_recovery: self.enable_pitr,
                deletion_protection: self.deletion_protection,
                time_to_live: schema::TIME_TO_LIVE.to_owned(),
                tags: self.tags.clone(),
                items_missing_index_keys: 0,
            },
        )
        .never_replaced("it holds the playground's tables and scores")
        .changed_only_from(
            ScoresTableAttributes::name(ScoresTableAttribute::TimeToLive),
            TIME_TO_LIVE_DISABLED,
            time_to_live_refusal(&self.name),
        )
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        let dynamodb = &self.clients.dynamodb;
        let Some(described) = crate::engine::existing(
            dynamodb
                .describe_table()
                .table_name(&self.name)
                .send()
                .await,
            |error| error.is_resource_not_found_exception(),
            self.doing("describing"),
        )?
        else {
            return Ok(None);
        };
        let Some(table) = described.table() else {
            return Ok(None);
        };
        let typed = |name: &str| KeyAttribute {
            name: name.to_owned(),
            attribute_type: table
                .attribute_definitions()
                .iter()
                .find(|definition| definition.attribute_name() == name)
                .map_or(
                    KeyAttributeType::Unknown(KeyAttributeType::UNDEFINED.to_owned()),
                    |definition| KeyAttributeType::of_letter(definition.attribute_type().as_str()),
                ),
        };
        let keys_of = |schema: &[KeySchemaElement]| {
            let key_of = |key_type: KeyType| {
                schema
                    .iter()
                    .find(|element| element.key_type() == &key_type)
                    .map(|element| typed(element.attribute_name()))
            };
            KeySchema::read(key_of(KeyType::Hash), key_of(KeyType::Range))
        };
        let keys = keys_of(table.key_schema());
        // Indexes the schema does not know are someone else's: compared (and so
        // deleted) only with --prune-indexes.
        let (indexes, unknown): (Vec<_>, Vec<_>) = table
            .global_secondary_indexes()
            .iter()
            .map(|index| {
                Shape::Typed(IndexShape {
                    name: index.index_name().unwrap_or_default().to_owned(),
                    keys: keys_of(index.key_schema()),
                })
            })
            .partition(|index| {
                self.prune_indexes
                    || TABLE_SCHEMA
                        .global_secondary_indexes
                        .iter()
                        .any(|known| index.name() == Some(known.name))
            });
        let billing = dynamodb_settings::billing_mode(table);
        let pitr = dynamodb_settings::point_in_time_recovery(dynamodb, &self.name).await?;
        let arn = table.table_arn().map_or_else(|| self.arn(), str::to_owned);
        let tags = dynamodb_settings::tags(dynamodb, &self.name, &arn).await?;
        let time_to_live = self.time_to_live().await?;
        Ok(Some(
            ObservedResource {
                id: self.name.clone(),
                arn: Some(arn),
                attributes: ScoresTableAttributes {
                    keys,
                    billing_mode: billing,
                    global_secondary_indexes: indexes,
                    point_in_time_recovery: pitr,
                    deletion_protection: table.deletion_protection_enabled().unwrap_or(false),
                    time_to_live,
                    tags,
                    items_missing_index_keys: if self.index_keys_backfilled {
                        0
                    } else {
                        i64::try_from(self.items_missing_index_keys().await?).unwrap_or(i64::MAX)
                    },
                }
                .into_observed(),
                facts: Default::default(),
            }
            .with_facts(&ScoresTableFacts {
                item_count: Some(table.item_count().unwrap_or(0)),
                unknown_indexes: unknown,
            }),
        ))
    }

    async fn create(&self) -> Result<(), EngineError> {
        let action = format!("creating DynamoDB table {}", self.name);
        let dynamodb = &self.clients.dynamodb;
        let mut request = schema::create_table(dynamodb, &self.name, &self.wanted_indexes())
            .map_err(|error| EngineError::new(action.clone(), error.to_string()))?
            .deletion_protection_enabled(self.deletion_protection);
        for (key, value) in &self.tags {
            request = request.tags(
                Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(|error| EngineError::new(action.clone(), error.to_string()))?,
            );
        }
        request.send().await.doing(|| action.clone())?;
        dynamodb
            .wait_until_table_exists()
            .table_name(&self.name)
            .wait(Duration::from_secs(600))
            .await
            .map_err(|error| EngineError::waited(self.doing("waiting for"), error))?;
        self.wait_until_active().await?;
        if self.enable_pitr {
            dynamodb_settings::set_point_in_time_recovery(dynamodb, &self.name, true).await?;
        }
        self.enable_time_to_live().await
    }

    async fn update(
        &self,
        _observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError> {
        for change in changes {
            match ScoresTableAttributes::name_of(change)? {
                // A key change is refused by the planner; the others are only observed.
                ScoresTableAttribute::Keys => {}
                ScoresTableAttribute::BillingMode => {
                    dynamodb_settings::switch_to_on_demand(&self.clients.dynamodb, &self.name)
                        .await?;
                    self.wait_until_active().await?;
                }
                ScoresTableAttribute::GlobalSecondaryIndexes => {
                    let wanted = self.wanted_indexes();
                    let shapes: Vec<IndexShape> =
                        wanted.iter().map(|index| IndexShape::of(index)).collect();
                    // Adding and rebuilding name a wanted index; this cannot fail.
                    let schema_index = |name: &str| {
                        wanted
                            .iter()
                            .copied()
                            .find(|index| index.name == name)
                            .ok_or_else(|| {
                                EngineError::new(
                                    self.doing("converging the indexes of"),
                                    format!("index {name} is not in the schema"),
                                )
                            })
                    };
                    for step in index_steps(&indexes_in(&change.old), &shapes) {
                        match step {
                            IndexStep::Add(name) => self.add_index(schema_index(&name)?).await?,
                            IndexStep::Rebuild(name) => {
                                self.remove_index(&name).await?;
                                self.add_index(schema_index(&name)?).await?;
                            }
                            IndexStep::Remove(name) => self.remove_index(&name).await?,
                        }
                    }
                }
                ScoresTableAttribute::ItemsMissingIndexKeys => {
                    let expected = change.old.as_u64().unwrap_or(0);
                    self.backfill_index_keys(expected).await?;
                }
                ScoresTableAttribute::PointInTimeRecovery => {
                    dynamodb_settings::set_point_in_time_recovery(
                        &self.clients.dynamodb,
                        &self.name,
                        self.enable_pitr,
                    )
                    .await?;
                }
                ScoresTableAttribute::DeletionProtection => {
                    self.set_deletion_protection(self.deletion_protection)
                        .await?;
                }
                // Only from off: the planner refuses a switch from another attribute.
                ScoresTableAttribute::TimeToLive => self.enable_time_to_live().await?,
                ScoresTableAttribute::Tags => {
                    let table = TableTags {
                        client: &self.clients.dynamodb,
                        table: &self.name,
                        arn: &self.arn(),
                    };
                    tags::converge(&table, &change.old, &self.tags).await?;
                }
            }
        }
        Ok(())
    }

    /// Once no item lacks its index keys, the state says so, and later plans
    /// do not scan the table again.
    fn recorded_attributes(
        &self,
        observed: &ObservedResource,
    ) -> std::collections::BTreeMap<String, serde_json::Value> {
        let done =
            observed.attribute::<i64>(ScoresTableAttribute::ItemsMissingIndexKeys) == Some(0);
        if done {
            [(
                INDEX_KEYS_BACKFILLED.to_owned(),
                serde_json::json!(BACKFILLED_INDEX_KEYS),
            )]
            .into()
        } else {
            std::collections::BTreeMap::new()
        }
    }

    async fn delete(&self, _observed: &ObservedResource) -> Result<(), EngineError> {
        self.clients
            .dynamodb
            .delete_table()
            .table_name(&self.name)
            .send()
            .await
            .doing(|| format!("deleting DynamoDB table {}", self.name))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::{TimeToLiveDescription, TimeToLiveStatus};
    use serde_json::{Value, json};

    use super::index_shape::tests::schema_index;
    use super::*;
    use crate::engine::{Action, PlanError, plan::plan, render::render};

    fn table() -> ScoresTable {
        ScoresTable {
            clients: Clients::offline("us-east-1"),
            name: "PlaygroundScores-dev".into(),
            enable_pitr: true,
            deletion_protection: true,
            enable_gsi_by_user: true,
            prune_indexes: false,
            index_keys_backfilled: true,
            tags: [("project".to_owned(), "aimodelshare".to_owned())].into(),
        }
    }

    /// The table as desired, except its Time to Live, which is `time_to_live`.
    fn observed(time_to_live: &str) -> Option<ObservedResource> {
        let mut attributes: std::collections::BTreeMap<String, Value> = table()
            .desired()
            .attributes
            .into_iter()
            .filter_map(|(name, value)| value.known().cloned().map(|value| (name, value)))
            .collect();
        attributes.insert("time_to_live".into(), json!(time_to_live));
        Some(ObservedResource {
            id: "PlaygroundScores-dev".into(),
            arn: None,
            attributes,
            facts: Default::default(),
        })
    }

    #[test]
    fn the_backfill_is_recorded_as_the_keys_it_gave_and_an_older_record_counts_again() {
        assert!(!backfill_recorded(None));
        // Recorded before ranks existed: tablesPartition and leaderboardKey only.
        assert!(!backfill_recorded(Some(&json!(true))));
        assert!(!backfill_recorded(Some(&json!([
            "tablesPartition",
            "leaderboardKey"
        ]))));
        assert!(backfill_recorded(Some(&json!([
            "leaderboardKey",
            "rankKey",
            "tablesPartition"
        ]))));
        let mut observed = observed("ttl").expect("observed");
        let recorded = table().recorded_attributes(&observed);
        assert_eq!(
            recorded[INDEX_KEYS_BACKFILLED],
            json!(["tablesPartition", "leaderboardKey", "rankKey"])
        );
        assert!(backfill_recorded(recorded.get(INDEX_KEYS_BACKFILLED)));
        observed
            .attributes
            .insert("items_missing_index_keys".into(), json!(3));
        assert!(table().recorded_attributes(&observed).is_empty());
    }

    #[test]
    fn the_backfill_gives_keys_to_tables_and_users_only() {
        assert!(backfilled("class-1", "_metadata"));
        assert!(backfilled("class-1", "ann"));
        assert!(backfilled("class-1", "_metadataX"));
        assert!(!backfilled("class-1", &schema::counter_username(0)));
        assert!(!backfilled("session#abc", schema::SESSION_SORT_KEY));
        assert!(!backfilled(
            "class-1",
            &schema::ranking::entry_username("00ff")
        ));
        assert!(!backfilled(
            "class-1",
            &schema::ranking::bucket_username("")
        ));
        assert!(!backfilled(
            "class-1",
            &schema::ranking::team_username("red")
        ));
    }

    #[test]
    fn users_without_rank_keys_are_a_backfill_in_place() {
        let desired = [table().desired()];
        let mut legacy = observed("ttl").expect("observed");
        legacy
            .attributes
            .insert("items_missing_index_keys".into(), json!(7));
        let planned = plan(&desired, &[Some(legacy)]).expect("plan");
        let Action::Update(changes) = &planned.resources[0].action else {
            panic!("in place: {:?}", planned.resources[0].action);
        };
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(
            render(&planned).contains("~ items_missing_index_keys = 7 -> 0"),
            "{}",
            render(&planned)
        );
        // And the schema's byRank is among the indexes the table should have.
        assert!(
            table()
                .wanted_indexes()
                .iter()
                .any(|index| index.name == schema::BY_RANK
                    && index.sort_key.name == schema::ranking::RANK_KEY)
        );
    }

    #[test]
    fn the_schemas_shapes_show_as_the_plan_shows_them_and_read_back_as_themselves() {
        let desired = table().desired();
        assert_eq!(
            desired.attributes["keys"],
            crate::engine::Planned::Known(json!("tableId (S) / username (S)"))
        );
        let by_rank = schema_index(schema::BY_RANK);
        assert_eq!(by_rank.to_string(), "byRank: tableId (S) / rankKey (S)");
        for index in TABLE_SCHEMA.global_secondary_indexes {
            let shape = Shape::Typed(IndexShape::of(index));
            let text = shape.to_string();
            assert_eq!(Shape::<IndexShape>::from(text.clone()), shape, "{text}");
            assert_eq!(
                serde_json::to_value(&shape).expect("serializes"),
                json!(text)
            );
            assert_eq!(
                serde_json::from_value::<Shape<IndexShape>>(json!(text)).expect("reads"),
                shape
            );
        }
        let keys = Shape::Typed(KeySchema::of(
            &TABLE_SCHEMA.partition_key,
            &TABLE_SCHEMA.sort_key,
        ));
        assert_eq!(Shape::<KeySchema>::from(keys.to_string()), keys);
        // What else AWS may say: binary keys, a key without a definition, no range key.
        for text in [
            "blobs: data (B) / n (N)",
            "odd: pk (?) / (none)",
            "other: pk (SS) / sk (S)",
        ] {
            let read = Shape::<IndexShape>::from(text.to_owned());
            let Shape::Typed(IndexShape {
                keys: Shape::Typed(_),
                ..
            }) = &read
            else {
                panic!("typed: {read:?}");
            };
            assert_eq!(read.to_string(), text);
        }
        assert_eq!(
            "pk (?) / (none)".parse::<KeySchema>().expect("reads"),
            KeySchema {
                hash: KeyAttribute {
                    name: "pk".into(),
                    attribute_type: KeyAttributeType::Unknown("?".into()),
                },
                range: None,
            }
        );
    }

    #[test]
    fn a_recorded_shape_that_does_not_read_is_kept_as_it_is_and_differs_from_any_shape() {
        let by_rank = schema_index(schema::BY_RANK);
        for text in [
            "",
            "(none)",
            "byRank",
            "byRank tableId (S) / rankKey (S)",
            "byRank: (none) / (none)",
            "byRank: tableId (S)",
            "byRank: tableId / rankKey",
        ] {
            let read = Shape::<IndexShape>::from(text.to_owned());
            assert_eq!(read.to_string(), text, "shown as recorded");
            assert_eq!(
                serde_json::to_value(&read).expect("serializes"),
                json!(text),
                "recorded as it was"
            );
            assert_ne!(read, Shape::Typed(by_rank.clone()), "{text}");
        }
        // A name with keys that do not read is still that index, with other keys.
        let unreadable_keys = Shape::<IndexShape>::from("byRank: (none) / (none)".to_owned());
        assert_eq!(unreadable_keys.name(), Some(schema::BY_RANK));
        assert_eq!(
            KeySchema::read(None, None),
            Shape::Unreadable("(none) / (none)".into())
        );
        // Facts recorded by hand (or by an older deployer) still read, the count with them.
        let mut observed = observed("ttl").expect("observed");
        observed.facts = [
            ("item_count".to_owned(), json!(12)),
            (
                "unknown_indexes".to_owned(),
                json!(["teacherIndex: teacher (S) / (none)", "junk"]),
            ),
        ]
        .into();
        let facts = observed.facts::<ScoresTableFacts>();
        assert_eq!(facts.item_count, Some(12));
        assert_eq!(
            facts
                .unknown_indexes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["teacherIndex: teacher (S) / (none)", "junk"]
        );
        // A plan over indexes recorded so is a change of them, not a failure.
        observed.attributes.insert(
            "global_secondary_indexes".into(),
            json!(["junk", "byRank: (none) / (none)"]),
        );
        let planned = plan(&[table().desired()], &[Some(observed)]).expect("plan");
        let Action::Update(changes) = &planned.resources[0].action else {
            panic!("in place: {:?}", planned.resources[0].action);
        };
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].name, "global_secondary_indexes");
    }

    #[test]
    fn time_to_live_is_read_as_its_attribute_or_disabled() {
        let described = |status: TimeToLiveStatus, attribute: Option<&str>| {
            TimeToLiveDescription::builder()
                .time_to_live_status(status)
                .set_attribute_name(attribute.map(str::to_owned))
                .build()
        };
        for (status, attribute, shown) in [
            (TimeToLiveStatus::Enabled, Some("ttl"), "ttl"),
            // Turning on counts as on: a rerun right after apply plans nothing.
            (TimeToLiveStatus::Enabling, Some("ttl"), "ttl"),
            (TimeToLiveStatus::Enabled, Some("expiresAt"), "expiresAt"),
            (TimeToLiveStatus::Disabled, None, "disabled"),
            (TimeToLiveStatus::Disabled, Some("ttl"), "disabled"),
            (TimeToLiveStatus::Disabling, Some("ttl"), "disabling (ttl)"),
        ] {
            assert_eq!(
                time_to_live_value(Some(&described(status.clone(), attribute))),
                shown,
                "{status:?} {attribute:?}"
            );
        }
        assert_eq!(time_to_live_value(None), "disabled");
    }

    #[test]
    fn time_to_live_is_turned_on_in_place_where_it_is_off_and_nothing_where_it_is_on() {
        let desired = [table().desired()];
        assert_eq!(
            desired[0].attributes["time_to_live"],
            crate::engine::Planned::Known(json!(schema::TIME_TO_LIVE))
        );
        let adopted = plan(&desired, &[observed("disabled")]).expect("plan");
        let Action::Update(changes) = &adopted.resources[0].action else {
            panic!("an in-place update: {:?}", adopted.resources[0].action);
        };
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].name, "time_to_live");
        assert!(
            render(&adopted).contains(r#"~ time_to_live = "disabled" -> "ttl""#),
            "{}",
            render(&adopted)
        );
        let on = plan(&desired, &[observed("ttl")]).expect("plan");
        assert_eq!(on.resources[0].action, Action::NoOp);
        let created = plan(&desired, &[None]).expect("plan");
        let Action::Create(attributes) = &created.resources[0].action else {
            panic!("created: {:?}", created.resources[0].action);
        };
        assert!(
            attributes.iter().any(|change| change.name == "time_to_live"
                && change.new == crate::engine::Planned::Known(json!("ttl"))),
            "{attributes:?}"
        );
    }

    #[test]
    fn time_to_live_on_another_attribute_or_turning_off_is_never_switched() {
        let desired = [table().desired()];
        for (observed_value, shown) in [
            ("expiresAt", r#"time_to_live = "expiresAt""#),
            ("disabling (ttl)", r#"time_to_live = "disabling (ttl)""#),
        ] {
            let error = plan(&desired, &[observed(observed_value)]).expect_err("refused");
            assert!(matches!(error, PlanError::ChangeRefused(_)), "{error:?}");
            let message = error.to_string();
            for part in [
                "dynamodb_table.scores (PlaygroundScores-dev)",
                shown,
                "one Time to Live change per table per hour",
                "aws dynamodb update-time-to-live --table-name PlaygroundScores-dev",
                "says DISABLED, and apply again",
            ] {
                assert!(message.contains(part), "{part}: {message}");
            }
        }
    }
}
