//! `single-table`: one table, `users` users created concurrently, then read
//! concurrently; the table's `userCount` must equal the creations that
//! succeeded, and every user must read back with the counts it was given.

use std::sync::Arc;

use serde_json::json;

use super::workload::{
    check_user_count, concurrently, create_table, create_users, initial_counts, run_id, usernames,
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

pub async fn run(api: &Api, options: SingleTable, progress: &Arc<dyn Progress>) {
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
    let created_users = create_users(api, &table, &users, options.concurrency, progress).await;
    api.recorder().check(
        "every user is created",
        created_users == users.len() as u64,
        format!("{created_users} of {} created", users.len()),
    );

    progress.phase(
        &format!("reading {} users", users.len()),
        Some(users.len() as u64),
    );
    let items: Vec<(usize, String)> = users.into_iter().enumerate().collect();
    let reader = api.clone();
    let table_for_reads = table.clone();
    let mismatches = concurrently(
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
    api.recorder().check(
        "every user reads back as written",
        mismatches.is_empty(),
        if mismatches.is_empty() {
            "all match".to_owned()
        } else {
            mismatches.join("; ")
        },
    );

    check_user_count(api, &table, created_users).await;
}
