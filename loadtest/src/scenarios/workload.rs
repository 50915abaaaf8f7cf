//! What the scenarios share: unique names, concurrent execution with a bound,
//! table and user set-up, reads of the invariants, and the random mix of reads
//! and updates that the load scenarios run.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::Cleanup;
use crate::client::{Api, Call};
use crate::progress::Progress;

/// How long a list may take to show a write: lists come from eventually
/// consistent indexes.
pub const LIST_CONSISTENCY_WAIT: Duration = Duration::from_secs(15);
/// The largest page the API serves.
const PAGE_LIMIT: u32 = 500;

/// A prefix unique to this run, valid in table ids and usernames.
pub fn run_id() -> String {
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    format!("lt{}", &uuid[..10])
}

/// The usernames of a scenario: `user-0000`, `user-0001`, …
pub fn usernames(count: usize) -> Vec<String> {
    (0..count).map(|index| format!("user-{index:04}")).collect()
}

/// The counts a user is created with, derived from its index so that reads
/// can check them.
pub fn initial_counts(index: usize) -> (u64, u64) {
    let index = index as u64;
    (index + 1, (index + 1) * 10)
}

/// Run `work` on every item, at most `concurrency` at a time, advancing
/// `progress` as each finishes; the results in completion order. Finished tasks
/// are collected as new ones start, so memory stays bounded by `concurrency`;
/// a task that panicked is recorded as a failed check in `api`'s recorder.
pub async fn concurrently<T, R, F, Fut>(
    api: &Api,
    items: Vec<T>,
    concurrency: usize,
    progress: &Arc<dyn Progress>,
    work: F,
) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    let semaphore = Arc::new(Semaphore::new(concurrency.max(1)));
    let work = Arc::new(work);
    let mut tasks = JoinSet::new();
    let mut results = Vec::new();
    let collect = |joined: Result<R, tokio::task::JoinError>, results: &mut Vec<R>| match joined {
        Ok(result) => results.push(result),
        Err(error) => api.recorder().check(
            "no worker fails",
            false,
            format!("a worker stopped: {error}"),
        ),
    };
    for item in items {
        let Ok(permit) = Arc::clone(&semaphore).acquire_owned().await else {
            break;
        };
        while let Some(joined) = tasks.try_join_next() {
            collect(joined, &mut results);
        }
        let work = Arc::clone(&work);
        let progress = Arc::clone(progress);
        tasks.spawn(async move {
            let result = work(item).await;
            drop(permit);
            progress.advance(1);
            result
        });
    }
    while let Some(joined) = tasks.join_next().await {
        collect(joined, &mut results);
    }
    results
}

/// Create table `table_id`; whether the API answered 201.
pub async fn create_table(api: &Api, table_id: &str) -> bool {
    api.send(Call::post(
        "create_table",
        "/tables",
        json!({"tableId": table_id, "displayName": format!("Load test {table_id}")}),
    ))
    .await
    .is_ok()
}

/// Create `users` in `table_id` concurrently with [`initial_counts`]; the
/// users the API reported as created (`createdNew`), in any order. A 200 that
/// is not a creation is recorded as a failed check.
pub async fn create_users(
    api: &Api,
    table_id: &str,
    users: &[String],
    concurrency: usize,
    progress: &Arc<dyn Progress>,
) -> Vec<String> {
    progress.phase(
        &format!("creating {} users in {table_id}", users.len()),
        Some(users.len() as u64),
    );
    let items: Vec<(usize, String)> = users.iter().cloned().enumerate().collect();
    let api_for_tasks = api.clone();
    let table = table_id.to_owned();
    let created = concurrently(
        api,
        items,
        concurrency,
        progress,
        move |(index, username)| {
            let api = api_for_tasks.clone();
            let table = table.clone();
            async move {
                let (submissions, total) = initial_counts(index);
                let reply = api
                    .send(Call::put(
                        "create_user",
                        format!("/tables/{table}/users/{username}"),
                        json!({"submissionCount": submissions, "totalCount": total}),
                    ))
                    .await
                    .ok()?;
                if reply.body["createdNew"] == json!(true) {
                    Some(username)
                } else {
                    api.recorder().check(
                        "a first write answers createdNew = true",
                        false,
                        format!(
                            "{username} in {table}: createdNew = {}",
                            reply.body["createdNew"]
                        ),
                    );
                    None
                }
            }
        },
    )
    .await;
    progress.finish();
    created.into_iter().flatten().collect()
}

/// What to do, once the run is over, with the tables it created, each with
/// the users it holds: delete them (every deletion a check, which also wants
/// the API's count of deleted users to be the users created), or archive them,
/// so that they stay out of the way of real users. Outside the measurements:
/// only failures and checks count.
pub async fn clean_up(api: &Api, cleanup: Cleanup, tables: &[(String, u64)]) {
    let outside = api.with_recorder(crate::metrics::Recorder::default());
    for (table_id, users) in tables {
        match cleanup {
            Cleanup::Delete => delete_table(&outside, table_id, *users).await,
            Cleanup::Archive => {
                let _ = outside
                    .send(Call::patch(
                        "archive_table",
                        format!("/tables/{table_id}"),
                        json!({"isArchived": true}),
                    ))
                    .await;
            }
        }
    }
    api.recorder().absorb(outside.recorder());
}

/// Users one `DELETE /tables/{tableId}` deletes at least before it answers 202
/// (the API reads 10 pages of 100 items a request).
const USERS_PER_DELETE: u64 = 900;

/// `DELETE` table `table_id` until it answers 200 (202: more remain), at most
/// as many times as its `users` need, and check that it is gone with exactly
/// those users.
async fn delete_table(api: &Api, table_id: &str, users: u64) {
    let outcome = deletion(api, table_id, users).await;
    api.recorder().check(
        format!("table {table_id} is deleted"),
        outcome.is_ok(),
        outcome.map_or_else(
            |error| error,
            |()| format!("deleted with its {users} users"),
        ),
    );
}

async fn deletion(api: &Api, table_id: &str, users: u64) -> Result<(), String> {
    let path = format!("/tables/{table_id}");
    let most = users / USERS_PER_DELETE + 2;
    let mut deleted = 0_u64;
    let mut finished = false;
    for _ in 0..most {
        let reply = api
            .send(Call::delete("delete_table", path.clone()).or(202))
            .await
            .map_err(|_| "the DELETE failed (see the failed requests)".to_owned())?;
        deleted += reply.body["deletedUsers"].as_u64().unwrap_or(0);
        if reply.status == 200 {
            finished = true;
            break;
        }
    }
    if !finished {
        return Err(format!("still there after {most} DELETEs"));
    }
    if deleted != users {
        return Err(format!("deleted {deleted} users, created {users}"));
    }
    api.send(Call::get("get_table", path).expect(404))
        .await
        .map_err(|_| "it still reads back after the DELETE".to_owned())?;
    Ok(())
}

/// The table's `userCount`, or `None` when it cannot be read.
pub async fn user_count(api: &Api, table_id: &str) -> Option<u64> {
    let reply = api
        .send(Call::get("get_table", format!("/tables/{table_id}")))
        .await
        .ok()?;
    reply.body["userCount"].as_u64()
}

/// Every user of the table, through every page of the listing; `Err` when a
/// page fails or the listing does not end: a cursor that repeats, or more
/// pages than `expected` users can fill.
pub async fn listed_users(api: &Api, table_id: &str, expected: u64) -> Result<Vec<String>, String> {
    let most_pages = expected / u64::from(PAGE_LIMIT) + 2;
    let mut users = Vec::new();
    let mut cursors = std::collections::HashSet::new();
    let mut last_key: Option<String> = None;
    for _ in 0..most_pages {
        let mut path = format!("/tables/{table_id}/users?limit={PAGE_LIMIT}");
        if let Some(key) = &last_key {
            path.push_str("&lastKey=");
            path.push_str(key);
        }
        let reply = api.send(Call::get("list_users", path)).await?;
        let page = reply.body["users"]
            .as_array()
            .ok_or_else(|| format!("a page of users has no `users` array: {}", reply.body))?;
        users.extend(
            page.iter()
                .filter_map(|user| user["username"].as_str().map(str::to_owned)),
        );
        match reply.body["lastKey"].as_str() {
            None => return Ok(users),
            Some(key) if !cursors.insert(key.to_owned()) => {
                return Err(format!("the listing repeats its cursor {key}"));
            }
            Some(key) => last_key = Some(key.to_owned()),
        }
    }
    Err(format!(
        "the listing did not end within {most_pages} pages of {PAGE_LIMIT} for {expected} users"
    ))
}

/// Poll `probe` until it returns `Ok`, for at most `wait`; its last outcome.
pub async fn eventually<T, F, Fut>(wait: Duration, mut probe: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    loop {
        let remaining = wait
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        let outcome = tokio::time::timeout(remaining, probe())
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", remaining.as_secs())));
        if outcome.is_ok() || started.elapsed() >= wait {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Check that table `table_id` counts exactly `expected` users, in its
/// `userCount` and in its listing (allowed to catch up for a moment).
pub async fn check_user_count(api: &Api, table_id: &str, expected: u64) {
    let count = user_count(api, table_id).await;
    api.recorder().check(
        format!("userCount of {table_id} equals the users created"),
        count == Some(expected),
        match count {
            Some(count) => format!("userCount {count}, created {expected}"),
            None => "the table could not be read".into(),
        },
    );
    let listed = eventually(LIST_CONSISTENCY_WAIT, || async {
        let users = listed_users(api, table_id, expected).await?;
        if users.len() as u64 == expected {
            Ok(users.len())
        } else {
            Err(format!("listed {} users, created {expected}", users.len()))
        }
    })
    .await;
    api.recorder().check(
        format!("listing of {table_id} shows every user"),
        listed.is_ok(),
        listed.map_or_else(|error| error, |count| format!("{count} users listed")),
    );
}

/// A small, fast, seedable generator for choosing operations (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn seeded(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound.max(1) as u64) as usize
    }
}

/// A table and its users, as the workload sees them.
#[derive(Debug, Clone)]
pub struct TableUsers {
    pub table_id: String,
    pub users: Vec<String>,
}

/// One operation of the read/update mix on a random table and user: 45 % read
/// a user, 15 % list a page of users, 30 % update a user (who must already
/// exist), 10 % read the table.
pub async fn random_operation(api: &Api, rng: &mut Rng, tables: &[TableUsers]) {
    let Some(table) = tables.get(rng.below(tables.len())) else {
        return;
    };
    let Some(username) = table.users.get(rng.below(table.users.len())) else {
        return;
    };
    let table_id = &table.table_id;
    let user_path = format!("/tables/{table_id}/users/{username}");
    let call = match rng.below(100) {
        0..45 => Call::get("get_user", user_path),
        45..60 => Call::get("list_users", format!("/tables/{table_id}/users?limit=20")),
        60..90 => {
            let submissions = rng.below(1000) as u64;
            Call::put(
                "update_user",
                user_path,
                json!({"submissionCount": submissions, "totalCount": submissions * 10}),
            )
        }
        _ => Call::get("get_table", format!("/tables/{table_id}")),
    };
    let is_update = call.operation == "update_user";
    if let Ok(reply) = api.send(call).await
        && is_update
        && reply.body["createdNew"] != json!(false)
    {
        api.recorder().check(
            "an update of an existing user answers createdNew = false",
            false,
            format!("{username} in {table_id}: createdNew = true"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_unique_and_valid_ids() {
        let first = run_id();
        assert_ne!(first, run_id());
        assert!(
            first.len() <= 64 && first.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{first}"
        );
    }

    #[test]
    fn the_generator_covers_its_range_evenly_enough() {
        let mut rng = Rng::seeded(7);
        let mut buckets = [0_u32; 10];
        for _ in 0..10_000 {
            buckets[rng.below(10)] += 1;
        }
        assert!(
            buckets.iter().all(|&count| (800..1200).contains(&count)),
            "{buckets:?}"
        );
    }
}
