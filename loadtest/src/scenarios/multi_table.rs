//! `multi-table`: `tables` tables of `users_per_table` users each, then
//! `operations` reads and updates spread over them; every table must still
//! count exactly its users.

use std::sync::Arc;

use super::Cleanup;
use super::workload::{
    Rng, TableUsers, check_user_count, clean_up, concurrently, create_table, create_users,
    random_operation, run_id, usernames,
};
use crate::client::Api;
use crate::progress::Progress;

/// The size of a `multi-table` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiTable {
    pub tables: usize,
    pub users_per_table: usize,
    pub operations: usize,
    pub concurrency: usize,
}

impl Default for MultiTable {
    fn default() -> Self {
        Self {
            tables: 5,
            users_per_table: 20,
            operations: 500,
            concurrency: 20,
        }
    }
}

pub async fn run(api: &Api, options: MultiTable, cleanup: Cleanup, progress: &Arc<dyn Progress>) {
    let tables = set_up_and_run(api, options, progress).await;
    // Every table created goes, even one whose users could not be created.
    let created: Vec<(String, u64)> = tables
        .into_iter()
        .map(|table| (table.table_id, table.users.len() as u64))
        .collect();
    clean_up(api, cleanup, &created).await;
}

/// The scenario up to its clean-up: the tables it created, with their users.
async fn set_up_and_run(
    api: &Api,
    options: MultiTable,
    progress: &Arc<dyn Progress>,
) -> Vec<TableUsers> {
    let run = run_id();
    let users = usernames(options.users_per_table);
    let mut tables = Vec::new();
    progress.phase(
        &format!("creating {} tables", options.tables),
        Some(options.tables as u64),
    );
    for index in 0..options.tables {
        let table_id = format!("{run}-multi-{index}");
        let created = create_table(api, &table_id).await;
        progress.advance(1);
        api.recorder().check(
            format!("table {table_id} is created"),
            created,
            table_id.clone(),
        );
        if created {
            tables.push(TableUsers {
                table_id,
                users: users.clone(),
            });
        }
    }
    progress.finish();
    // The workload uses the users that were created, and each table must count them.
    for table in &mut tables {
        let created = create_users(
            api,
            &table.table_id,
            &table.users,
            options.concurrency,
            progress,
        )
        .await;
        api.recorder().check(
            format!("every user of {} is created", table.table_id),
            created.len() == table.users.len(),
            format!("{} of {} created", created.len(), table.users.len()),
        );
        table.users = created;
    }
    let all = tables.clone();
    tables.retain(|table| !table.users.is_empty());
    if tables.is_empty() {
        return all;
    }

    progress.phase(
        &format!(
            "{} reads and updates across {} tables",
            options.operations,
            tables.len()
        ),
        Some(options.operations as u64),
    );
    let shared = Arc::new(tables.clone());
    let worker_api = api.clone();
    concurrently(
        api,
        (0..options.operations).collect(),
        options.concurrency,
        progress,
        move |index| {
            let api = worker_api.clone();
            let tables = Arc::clone(&shared);
            async move {
                let mut rng = Rng::seeded(index as u64 + 1);
                random_operation(&api, &mut rng, &tables).await;
            }
        },
    )
    .await;
    progress.finish();

    for table in &tables {
        check_user_count(api, &table.table_id, table.users.len() as u64).await;
    }
    all
}
