//! `single-table`: one table, `users` users created concurrently, then read
//! concurrently; the table's `userCount` must equal the creations that
//! succeeded, and every user must read back with the counts it was given.

use std::sync::Arc;

use serde_json::json;

use super::Cleanup;
use super::workload::{
    check_user_count, clean_up, concurrently, create_table, create_users, initial_counts, run_id,
    usernames,
};
use crate::client::{Api, Call};
use crate::progress::Progress;

/// The size of a `single-table` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SingleTable {
    pub users: usize,
    pub concurrency: usize,
}

impl Default for SingleTable {
    fn default() -> Self {
        Self {
            users: 100,
            concurrency: 20,
        }
    }
}

pub async fn run(api: &Api, options: SingleTable, cleanup: Cleanup, progress: &Arc<dyn Progress>) {
    let table = format!("{}-single", run_id());
    progress.phase(&format!("creating table {table}"), Some(1));
    let created = create_table(api, &table).await;
    progress.advance(1);
    progress.finish();
    api.recorder()
        .check("the table is created", created, table.clone());
    if !created {
        return;
    }
    let users = usernames(options.users);
    let created: std::collections::HashSet<String> =
        create_users(api, &table, &users, options.concurrency, progress)
            .await
            .into_iter()
            .collect();
    api.recorder().check(
        "every user is created",
        created.len() == users.len(),
        format!("{} of {} created", created.len(), users.len()),
    );

    // Only the users that were created are read back.
    let items: Vec<(usize, String)> = users
        .into_iter()
        .enumerate()
        .filter(|(_, username)| created.contains(username))
        .collect();
    progress.phase(
        &format!("reading {} users", items.len()),
        Some(items.len() as u64),
    );
    let reader = api.clone();
    let table_for_reads = table.clone();
    let mismatches = concurrently(
        api,
        items,
        options.concurrency,
        progress,
        move |(index, username)| {
            let api = reader.clone();
            let table = table_for_reads.clone();
            async move {
                let reply = api
                    .send(Call::get(
                        "get_user",
                        format!("/tables/{table}/users/{username}"),
                    ))
                    .await
                    .ok()?;
                let (submissions, total) = initial_counts(index);
                let expected = json!({"submissionCount": submissions, "totalCount": total});
                let found = json!({
                    "submissionCount": reply.body["submissionCount"],
                    "totalCount": reply.body["totalCount"],
                });
                (found != expected).then(|| format!("{username}: read {found}, wrote {expected}"))
            }
        },
    )
    .await;
    progress.finish();
    let mismatches: Vec<String> = mismatches.into_iter().flatten().collect();
    if mismatches.is_empty() {
        api.recorder()
            .check("every user reads back as written", true, "all match");
    }
    for mismatch in mismatches {
        api.recorder()
            .check("every user reads back as written", false, mismatch);
    }

    check_user_count(api, &table, created.len() as u64).await;
    clean_up(api, cleanup, &[(table, created.len() as u64)]).await;
}
