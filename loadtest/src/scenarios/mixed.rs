//! `mixed`: one table of `users` users, then `workers` concurrent workers each
//! running reads and updates back to back for `duration`. The workers are all
//! running before the clock starts and stop only when it runs out; the rate is
//! over that window alone (set-up is measured apart and only checked).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::workload::{
    Rng, TableUsers, check_user_count, create_table, create_users, random_operation, run_id,
    usernames,
};
use crate::client::Api;
use crate::metrics::Recorder;
use crate::progress::Progress;

/// The size of a `mixed` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mixed {
    pub users: usize,
    pub workers: usize,
    pub duration: Duration,
}

impl Default for Mixed {
    fn default() -> Self {
        Self {
            users: 100,
            workers: 30,
            duration: Duration::from_secs(20),
        }
    }
}

/// Runs the scenario and returns how long the measured workload took.
pub async fn run(api: &Api, options: Mixed, progress: &Arc<dyn Progress>) -> Duration {
    let table_id = format!("{}-mixed", run_id());
    // Set-up requests are not part of the measured mix.
    let setup = api.with_recorder(Recorder::default());
    let created = create_table(&setup, &table_id).await;
    api.recorder()
        .check("the table is created", created, table_id.clone());
    if !created {
        return Duration::ZERO;
    }
    let users = usernames(options.users);
    let created_users = create_users(&setup, &table_id, &users, options.workers, progress).await;
    api.recorder().check(
        "every user is created",
        created_users == users.len() as u64,
        format!("{created_users} of {} created", users.len()),
    );

    let tables = Arc::new(vec![TableUsers {
        table_id: table_id.clone(),
        users,
    }]);
    progress.phase(
        &format!(
            "{} workers for {} s",
            options.workers,
            options.duration.as_secs()
        ),
        None,
    );
    // Every worker is started and waiting at the barrier before any clock runs.
    let barrier = Arc::new(tokio::sync::Barrier::new(options.workers.max(1) + 1));
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..options.workers.max(1) {
        let api = api.clone();
        let tables = Arc::clone(&tables);
        let barrier = Arc::clone(&barrier);
        let progress = Arc::clone(progress);
        let duration = options.duration;
        workers.spawn(async move {
            let mut rng = Rng::seeded(worker as u64 + 1);
            barrier.wait().await;
            let deadline = Instant::now() + duration;
            while Instant::now() < deadline {
                random_operation(&api, &mut rng, &tables).await;
                progress.advance(1);
            }
        });
    }
    // Taken before the release, so the window is never shorter than a worker's run.
    let window_start = Instant::now();
    barrier.wait().await;
    while workers.join_next().await.is_some() {}
    let window = window_start.elapsed();
    progress.finish();

    let operations = api.recorder().operations();
    api.recorder().check(
        "the workers ran during the whole duration",
        operations > 0 && window >= options.duration,
        format!(
            "{operations} operations by {} workers in {:.2} s",
            options.workers.max(1),
            window.as_secs_f64()
        ),
    );
    // The invariant's reads are not part of the mix either.
    check_user_count(&setup, &table_id, created_users).await;
    let outside = setup
        .recorder()
        .summary("set-up", setup.base_url(), Duration::ZERO);
    for check in outside.checks {
        api.recorder().check(check.name, check.passed, check.detail);
    }
    api.recorder().check(
        "set-up and verification requests succeed",
        outside.errors == 0,
        format!("{} of {} failed", outside.errors, outside.operations),
    );
    window
}
