//! `mixed`: one table of `users` users, then `workers` concurrent workers each
//! running reads and updates back to back for `duration`. The workers are all
//! running before the clock starts and stop only when it runs out; the rate is
//! over that window alone (set-up is measured apart and only checked).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Cleanup;
use super::workload::{
    Rng, TableUsers, check_user_count, clean_up, create_table, create_users, random_operation,
    run_id, usernames,
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
pub async fn run(
    api: &Api,
    options: Mixed,
    cleanup: Cleanup,
    progress: &Arc<dyn Progress>,
) -> Duration {
    // Set-up and verification requests are not part of the measured mix: they
    // are recorded apart, and only their failures are carried over.
    let outside = api.with_recorder(Recorder::default());
    let table_id = format!("{}-mixed", run_id());
    let (window, created) = set_up_and_measure(api, &outside, &table_id, options, progress).await;
    if let Some(users) = created {
        clean_up(&outside, cleanup, &[(table_id, users)]).await;
    }
    api.recorder().absorb(outside.recorder());
    window
}

/// The measured window, and the users of the table when it was created.
async fn set_up_and_measure(
    api: &Api,
    outside: &Api,
    table_id: &str,
    options: Mixed,
    progress: &Arc<dyn Progress>,
) -> (Duration, Option<u64>) {
    let table_id = table_id.to_owned();
    let created = create_table(outside, &table_id).await;
    outside
        .recorder()
        .check("the table is created", created, table_id.clone());
    if !created {
        return (Duration::ZERO, None);
    }
    let wanted = usernames(options.users);
    let users = create_users(outside, &table_id, &wanted, options.workers, progress).await;
    outside.recorder().check(
        "every user is created",
        users.len() == wanted.len(),
        format!("{} of {} created", users.len(), wanted.len()),
    );
    let created_users = users.len() as u64;
    if users.is_empty() {
        return (Duration::ZERO, Some(0));
    }
    let tables = Arc::new(vec![TableUsers {
        table_id: table_id.clone(),
        users,
    }]);
    let workers = options.workers.max(1);
    progress.phase(
        &format!("{workers} workers for {} s", options.duration.as_secs()),
        None,
    );
    // Every worker is started and waiting at the barrier before any clock runs.
    let barrier = Arc::new(tokio::sync::Barrier::new(workers + 1));
    let mut running = tokio::task::JoinSet::new();
    for worker in 0..workers {
        let api = api.clone();
        let tables = Arc::clone(&tables);
        let barrier = Arc::clone(&barrier);
        let progress = Arc::clone(progress);
        let duration = options.duration;
        running.spawn(async move {
            let mut rng = Rng::seeded(worker as u64 + 1);
            let mut operations = 0_u64;
            barrier.wait().await;
            let deadline = Instant::now() + duration;
            while Instant::now() < deadline {
                random_operation(&api, &mut rng, &tables).await;
                operations += 1;
                progress.advance(1);
            }
            operations
        });
    }
    // Taken before the release, so the window is never shorter than a worker's run.
    let window_start = Instant::now();
    barrier.wait().await;
    let mut per_worker = Vec::new();
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok(operations) => per_worker.push(operations),
            Err(error) => api.recorder().check(
                "no worker fails",
                false,
                format!("a worker stopped: {error}"),
            ),
        }
    }
    let window = window_start.elapsed();
    progress.finish();

    let operations: u64 = per_worker.iter().sum();
    api.recorder().check(
        "every worker ran during the whole duration",
        per_worker.len() == workers && per_worker.iter().all(|&count| count > 0) && window >= options.duration,
        format!(
            "{operations} operations by {} of {workers} workers in {:.2} s (fewest by one worker: {})",
            per_worker.len(),
            window.as_secs_f64(),
            per_worker.iter().min().copied().unwrap_or(0)
        ),
    );
    check_user_count(outside, &table_id, created_users).await;
    (window, Some(created_users))
}
