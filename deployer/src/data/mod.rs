//! Moving the items of scores tables: `deployer migrate` (from another table,
//! such as the legacy shared `PlaygroundScores`), `import` (from a JSON-lines
//! file) and `export` (into one). One machinery for the first two:
//!
//! 1. lanes read pages of at most 100 items side by side ([`source`]);
//! 2. each item is shaped the way an environment's table keeps it
//!    ([`shape::shape`]); an item that cannot be is refused and reported;
//! 3. the target's items with the page's keys are read back, and each source
//!    item is decided ([`shape::decide`]): copied, replaced (the target's is
//!    older), kept (the target's is newer) or left alone (it is already there);
//! 4. what won is written on the condition that the target's item is still
//!    what was read ([`target::Target::write`]);
//! 5. after every page the lane's position is kept in a checkpoint beside the
//!    environment's state, so a run that stops resumes there;
//! 6. each table touched gets its unranked users ranked
//!    ([`target::Target::rank_unranked`]: the target keeps its own ranks and
//!    team standings, and the source's derived rank items and attributes are
//!    never copied) and its `userCount` recounted from its users, and then
//!    every table is verified: per `tableId`, the source's users against the
//!    target's, with checksums of their keys and counts.
//!
//! A rerun of a finished run decides every item "unchanged" and writes nothing.

mod error;
pub mod json;
pub mod shape;
pub mod source;
pub mod target;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use shape::{Decision, Item, Kind, checksum_part, key_of, kind_of};
use source::{Budget, Lane, Origin, Position};
use target::{Recount, Target};

pub use error::DataError;

/// How every item was decided, over the whole run (a resumed run adds to the
/// counts of the run it resumes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub read: u64,
    pub copied: u64,
    pub replaced: u64,
    pub kept_newer: u64,
    pub unchanged: u64,
    /// Source counters: the target's `userCount` is recounted instead.
    pub counters_skipped: u64,
    /// Sign-in sessions: short-lived, and never a class's data.
    #[serde(default)]
    pub sessions_skipped: u64,
    /// Rank entries, rank buckets and teams: the target keeps its own.
    #[serde(default)]
    pub derived_skipped: u64,
    pub refused: u64,
}

impl Counts {
    fn add(&mut self, decision: Decision) {
        match decision {
            Decision::Copy => self.copied += 1,
            Decision::Replace => self.replaced += 1,
            Decision::KeepNewer => self.kept_newer += 1,
            Decision::Unchanged => self.unchanged += 1,
        }
    }

    pub fn written(&self) -> u64 {
        self.copied + self.replaced
    }
}

/// What a run keeps beside the environment's state while it goes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format_version: u32,
    /// What is read, into which table, in which lanes: a checkpoint resumes
    /// only the run it was made by.
    pub source: String,
    pub target: String,
    pub lanes: BTreeMap<String, LaneProgress>,
    /// Tables (`tableId`) items were read of: recounted and verified at the end.
    pub touched: BTreeSet<String>,
    pub counts: Counts,
    /// The refused items, `tableId/username: why` (the first 100).
    pub refused: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LaneProgress {
    pub lane: Option<Lane>,
    pub after: Option<Position>,
    pub done: bool,
}

const CHECKPOINT_FORMAT: u32 = 1;
const MAX_REFUSALS_KEPT: usize = 100;

/// Where a run keeps its checkpoint.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    pub backend: state::Backend,
    pub environment: String,
    pub name: String,
}

impl CheckpointStore {
    pub fn location(&self) -> String {
        self.backend.location_beside(&self.environment, &self.name)
    }

    async fn load(&self) -> Result<Option<Checkpoint>, DataError> {
        let bytes = self
            .backend
            .read_beside(&self.environment, &self.name)
            .await
            .map_err(|source| DataError::State {
                context: "reading the migration's checkpoint".into(),
                source,
            })?;
        bytes
            .map(|bytes| {
                serde_json::from_slice(&bytes).map_err(|error| {
                    DataError::Invalid(format!(
                        "the checkpoint {} is not readable ({error}); remove it to start over",
                        self.location()
                    ))
                })
            })
            .transpose()
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), DataError> {
        let bytes = serde_json::to_vec_pretty(checkpoint).unwrap_or_default();
        self.backend
            .write_beside(&self.environment, &self.name, bytes)
            .await
            .map_err(|source| DataError::State {
                context: "keeping the migration's checkpoint".into(),
                source,
            })
    }

    async fn remove(&self) -> Result<(), DataError> {
        self.backend
            .remove_beside(&self.environment, &self.name)
            .await
            .map_err(|source| DataError::State {
                context: "removing the migration's checkpoint".into(),
                source,
            })
    }
}

/// How a run goes.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Lanes read (and tables recounted and verified) at once.
    pub parallel: usize,
    /// Read capacity units per second the source may spend, on average.
    pub max_rcu: Option<f64>,
    /// Decide and count, write nothing (not even a checkpoint).
    pub dry_run: bool,
    /// Discard an unfinished run's checkpoint instead of resuming it.
    pub restart: bool,
}

/// Items moved so far, for the progress line.
#[derive(Debug, Default)]
pub struct Tally {
    pub read: std::sync::atomic::AtomicU64,
    pub written: std::sync::atomic::AtomicU64,
}

/// One table's verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCheck {
    pub table_id: String,
    pub source_users: u64,
    pub target_users: u64,
    /// Users the target has a newer item of (written there since): kept.
    pub newer_in_target: u64,
    pub user_count: Option<u64>,
    /// Sum of the source's users' keys and counts, and of the target's items
    /// for the same users (the source's where the target kept a newer one).
    pub source_checksum: String,
    pub target_checksum: String,
    pub differences: Vec<String>,
}

/// A run's result.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub source: String,
    pub target: String,
    pub dry_run: bool,
    pub resumed: bool,
    pub counts: Counts,
    pub refused: Vec<String>,
    /// `userCount`s set to the users counted (none on a dry run).
    pub recounted: u64,
    /// Users ranked in the target after the writes (none on a dry run).
    pub ranked: u64,
    pub seconds: f64,
    pub items_per_second: f64,
    pub tables: Vec<TableCheck>,
}

impl Summary {
    /// Whether anything is wrong: a refused item, or a difference in a table.
    pub fn has_differences(&self) -> bool {
        self.counts.refused > 0
            || self
                .tables
                .iter()
                .any(|table| !table.differences.is_empty())
    }
}

/// Copy from `origin`'s `lanes` into `target`, then recount and verify.
/// `progress` is called every few seconds with the tally, and once a lane is
/// done.
pub async fn copy(
    origin: &Origin,
    lanes: Vec<Lane>,
    target: &Target,
    store: &CheckpointStore,
    options: &CopyOptions,
    progress: &(dyn Fn(&Tally) + Sync),
) -> Result<Summary, DataError> {
    let started = Instant::now();
    let fresh = Checkpoint {
        format_version: CHECKPOINT_FORMAT,
        source: origin.describe(),
        target: target.table.clone(),
        lanes: lanes
            .iter()
            .map(|lane| {
                (
                    lane.describe(),
                    LaneProgress {
                        lane: Some(lane.clone()),
                        ..LaneProgress::default()
                    },
                )
            })
            .collect(),
        ..Checkpoint::default()
    };
    let loaded = if options.dry_run {
        None
    } else {
        store.load().await?
    };
    let resumed = loaded.is_some() && !options.restart;
    let checkpoint = match loaded {
        Some(found) if !options.restart => {
            let same_run = found.format_version == CHECKPOINT_FORMAT
                && found.source == fresh.source
                && found.target == fresh.target
                && found.lanes.keys().eq(fresh.lanes.keys());
            if !same_run {
                return Err(DataError::Invalid(format!(
                    "an unfinished run from {} into {} in lanes {} left its checkpoint at {}: \
                     run it again with the same options to resume it, or pass --restart to start this one over",
                    found.source,
                    found.target,
                    found.lanes.keys().cloned().collect::<Vec<_>>().join(", "),
                    store.location()
                )));
            }
            found
        }
        _ => fresh,
    };
    let mut checkpoint = checkpoint;
    // A table asked for by name is verified even if the source has none of it.
    checkpoint
        .touched
        .extend(lanes.iter().filter_map(|lane| match lane {
            Lane::Table(table_id) => Some(table_id.clone()),
            _ => None,
        }));
    let shared = Arc::new(Mutex::new(checkpoint));
    let tally = Arc::new(Tally::default());
    let last_save = Arc::new(tokio::sync::Mutex::new(Instant::now()));
    let budget = Arc::new(Budget::new(options.max_rcu));

    // The lanes, `parallel` at a time.
    let pending: Vec<(String, LaneProgress)> = lock(&shared)
        .lanes
        .iter()
        .filter(|(_, progress)| !progress.done)
        .map(|(name, progress)| (name.clone(), progress.clone()))
        .collect();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(options.parallel.max(1)));
    let mut running = tokio::task::JoinSet::new();
    for (name, progress_of_lane) in pending {
        let Some(lane) = progress_of_lane.lane.clone() else {
            continue;
        };
        let (origin, target, shared, tally, budget, semaphore, last_save, store) = (
            origin.clone(),
            target.clone(),
            shared.clone(),
            tally.clone(),
            budget.clone(),
            semaphore.clone(),
            last_save.clone(),
            store.clone(),
        );
        let dry_run = options.dry_run;
        running.spawn(async move {
            let _permit = semaphore
                .acquire_owned()
                .await
                .map_err(|error| DataError::Invalid(error.to_string()))?;
            let mut after = progress_of_lane.after.clone();
            loop {
                let page = origin.read(&lane, after.as_ref(), &budget).await?;
                let (counts, refused, touched) =
                    process_page(&target, page.items, dry_run, &tally).await?;
                after = page.next.clone();
                {
                    let mut checkpoint = lock(&shared);
                    merge(&mut checkpoint.counts, &counts);
                    for refusal in refused {
                        if checkpoint.refused.len() < MAX_REFUSALS_KEPT {
                            checkpoint.refused.push(refusal);
                        }
                    }
                    checkpoint.touched.extend(touched);
                    let entry = checkpoint.lanes.entry(name.clone()).or_default();
                    entry.after = after.clone();
                    entry.done = after.is_none();
                }
                if !dry_run {
                    // At most once a second, and whenever a lane ends; the
                    // snapshot is taken under the save's lock, so a later save
                    // never writes an earlier snapshot.
                    let mut saved = last_save.lock().await;
                    if after.is_none() || saved.elapsed() >= Duration::from_secs(1) {
                        let snapshot = lock(&shared).clone();
                        store.save(&snapshot).await?;
                        *saved = Instant::now();
                    }
                }
                if after.is_none() {
                    return Ok::<(), DataError>(());
                }
            }
        });
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    ticker.tick().await;
    loop {
        tokio::select! {
            joined = running.join_next() => match joined {
                None => break,
                Some(Ok(Ok(()))) => progress(&tally),
                Some(Ok(Err(error))) => {
                    running.abort_all();
                    return Err(error);
                }
                Some(Err(error)) => {
                    running.abort_all();
                    return Err(DataError::Invalid(format!("a reading lane stopped: {error}")));
                }
            },
            _ = ticker.tick() => progress(&tally),
        }
    }

    let checkpoint = lock(&shared).clone();
    let touched: Vec<String> = checkpoint.touched.iter().cloned().collect();
    let (mut recounted, mut ranked) = (0, 0);
    if !options.dry_run {
        // Every table touched: its users that are not ranked (those written
        // above) are ranked, and its userCount recounted. A resumed run does
        // this for the tables of the runs it resumes too.
        for result in for_each(&touched, options.parallel, |table_id| {
            let target = target.clone();
            async move {
                let ranked = target.rank_unranked(&table_id).await?;
                Ok((ranked, target.recount(&table_id).await?))
            }
        })
        .await
        {
            let (ranked_here, recount) = result?;
            ranked += ranked_here;
            if matches!(recount, Recount::Fixed { .. }) {
                recounted += 1;
            }
        }
        store.remove().await?;
    }
    let copied_for = started.elapsed();
    // A dry run wrote nothing: there is nothing to verify yet.
    let mut tables = Vec::new();
    let verified = if options.dry_run {
        &[][..]
    } else {
        &touched[..]
    };
    for result in for_each(verified, options.parallel, |table_id| {
        let (origin, target) = (origin.clone(), target.clone());
        async move { verify(&origin, &target, &table_id).await }
    })
    .await
    {
        tables.push(result?);
    }
    let seconds = copied_for.as_secs_f64();
    Ok(Summary {
        source: checkpoint.source,
        target: checkpoint.target,
        dry_run: options.dry_run,
        resumed,
        items_per_second: if seconds > 0.0 {
            checkpoint.counts.read as f64 / seconds
        } else {
            0.0
        },
        counts: checkpoint.counts,
        refused: checkpoint.refused,
        recounted,
        ranked,
        seconds,
        tables,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn merge(total: &mut Counts, page: &Counts) {
    total.read += page.read;
    total.copied += page.copied;
    total.replaced += page.replaced;
    total.kept_newer += page.kept_newer;
    total.unchanged += page.unchanged;
    total.counters_skipped += page.counters_skipped;
    total.sessions_skipped += page.sessions_skipped;
    total.derived_skipped += page.derived_skipped;
    total.refused += page.refused;
}

/// Run `work` for each of `items`, `parallel` at a time; results in order.
async fn for_each<F, Fut, T>(
    items: &[String],
    parallel: usize,
    work: F,
) -> Vec<Result<T, DataError>>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, DataError>> + Send + 'static,
    T: Send + 'static,
{
    let mut results = Vec::with_capacity(items.len());
    for chunk in items.chunks(parallel.max(1)) {
        let mut running = tokio::task::JoinSet::new();
        for (index, item) in chunk.iter().enumerate() {
            let future = work(item.clone());
            running.spawn(async move { (index, future.await) });
        }
        let mut chunk_results: Vec<Option<Result<T, DataError>>> =
            (0..chunk.len()).map(|_| None).collect();
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok((index, result)) => chunk_results[index] = Some(result),
                Err(error) => results.push(Err(DataError::Invalid(error.to_string()))),
            }
        }
        results.extend(chunk_results.into_iter().flatten());
    }
    results
}

/// Shape, decide and write one page. Returns its counts, its refusals and the
/// tables it touched.
async fn process_page(
    target: &Target,
    items: Vec<Result<Item, (usize, String)>>,
    dry_run: bool,
    tally: &Tally,
) -> Result<(Counts, Vec<String>, BTreeSet<String>), DataError> {
    use std::sync::atomic::Ordering;
    let mut counts = Counts::default();
    let mut refused = Vec::new();
    let mut touched = BTreeSet::new();
    let mut shaped = Vec::new();
    for item in items {
        counts.read += 1;
        let item = match item {
            Ok(item) => item,
            Err((line, why)) => {
                counts.refused += 1;
                refused.push(format!("line {line}: {why}"));
                continue;
            }
        };
        let (table_id, username) = match key_of(&item) {
            Ok((table_id, username)) => (table_id.to_owned(), username.to_owned()),
            Err(why) => {
                counts.refused += 1;
                refused.push(format!("an item: {why}"));
                continue;
            }
        };
        touched.insert(table_id.clone());
        match kind_of(&username) {
            Kind::Counter => {
                counts.counters_skipped += 1;
                continue;
            }
            Kind::Session => {
                counts.sessions_skipped += 1;
                continue;
            }
            Kind::Derived => {
                counts.derived_skipped += 1;
                continue;
            }
            Kind::Metadata | Kind::User => {}
        }
        match shape::shape(&item) {
            Ok(item) => shaped.push(((table_id, username), item)),
            Err(why) => {
                counts.refused += 1;
                refused.push(format!("{table_id}/{username}: {why}"));
            }
        }
    }
    tally.read.fetch_add(counts.read, Ordering::Relaxed);
    let keys: Vec<(String, String)> = shaped.iter().map(|(key, _)| key.clone()).collect();
    let existing = target.get_many(&keys).await?;
    let mut writes = tokio::task::JoinSet::new();
    for (key, item) in shaped {
        let observed = existing.get(&key).cloned();
        let decision = shape::decide(&item, observed.as_ref());
        if dry_run || !matches!(decision, Decision::Copy | Decision::Replace) {
            counts.add(decision);
            continue;
        }
        let target = target.clone();
        writes.spawn(async move { target.write(&item, decision, observed).await });
        // At most 10 writes of a page at once.
        while writes.len() >= 10 {
            if let Some(joined) = writes.join_next().await {
                let decision = joined.map_err(|error| DataError::Invalid(error.to_string()))??;
                counts.add(decision);
            }
        }
    }
    while let Some(joined) = writes.join_next().await {
        let decision = joined.map_err(|error| DataError::Invalid(error.to_string()))??;
        counts.add(decision);
    }
    tally.written.fetch_add(counts.written(), Ordering::Relaxed);
    Ok((counts, refused, touched))
}

/// Verify one table: every source user is in the target with the same key and
/// counts, unless the target's is newer; `userCount` equals the target's users.
pub async fn verify(
    origin: &Origin,
    target: &Target,
    table_id: &str,
) -> Result<TableCheck, DataError> {
    let users = |items: Vec<Item>| -> BTreeMap<String, Item> {
        items
            .into_iter()
            .filter_map(|item| {
                let (_, username) = key_of(&item).ok()?;
                let username = username.to_owned();
                (kind_of(&username) == Kind::User).then_some((username, item))
            })
            .collect()
    };
    let all = origin.all_of(table_id).await?;
    if all.is_empty() {
        return Ok(TableCheck {
            table_id: table_id.to_owned(),
            source_users: 0,
            target_users: 0,
            newer_in_target: 0,
            user_count: None,
            source_checksum: format!("{:016x}", 0),
            target_checksum: format!("{:016x}", 0),
            differences: vec![format!("{} has no items of this table", origin.describe())],
        });
    }
    let source = users(all);
    let in_target = users(source::query_partition(&target.client, &target.table, table_id).await?);
    let user_count = target.user_count(table_id).await?;
    let mut differences = Vec::new();
    let (mut source_sum, mut target_sum, mut newer) = (0u64, 0u64, 0u64);
    for (username, item) in &source {
        let Ok(shaped) = shape::shape(item) else {
            // Refused when copied, and reported there.
            continue;
        };
        source_sum = source_sum.wrapping_add(checksum_part(&shaped));
        match in_target.get(username) {
            None => differences.push(format!("{username} is missing")),
            Some(found) if shape::decide(&shaped, Some(found)) == Decision::KeepNewer => {
                newer += 1;
                target_sum = target_sum.wrapping_add(checksum_part(&shaped));
            }
            Some(found) => {
                target_sum = target_sum.wrapping_add(checksum_part(found));
                if checksum_part(found) != checksum_part(&shaped) {
                    differences.push(format!("{username} has other counts than the source"));
                }
            }
        }
    }
    let target_users = in_target.len() as u64;
    match user_count {
        Some(count) if count != target_users => differences.push(format!(
            "userCount is {count}, but the table has {target_users} users"
        )),
        None if !source.is_empty() => differences.push("the table has no metadata item".into()),
        _ => {}
    }
    Ok(TableCheck {
        table_id: table_id.to_owned(),
        source_users: source.len() as u64,
        target_users,
        newer_in_target: newer,
        user_count,
        source_checksum: format!("{source_sum:016x}"),
        target_checksum: format!("{target_sum:016x}"),
        differences,
    })
}
