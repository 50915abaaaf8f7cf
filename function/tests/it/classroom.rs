//! A class whose students all submit for the first time at once, under what
//! DynamoDB does and a forgiving emulator does not (`emulator/faults.py`): a
//! committed transaction holds its items for 15 ms (a transaction touching them
//! meanwhile is cancelled with `TransactionConflict`, a single-item write gets
//! `TransactionConflictException`), and 5% of DynamoDB calls are throttled,
//! fail with a 500 or lose their connection.
//!
//! In both `SAFE_CONCURRENCY` modes: 100 first PUTs of distinct users, 50 at a
//! time, then 50 concurrent first PUTs of one user, each while PATCHes of the
//! table's metadata run; no client sees a 5xx, and `userCount` is exact. The
//! 5xx count and the latencies are printed (`--nocapture`) for docs/api.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{self, Reply, TestApi, function_client};
use axum::http::StatusCode;
use emulator::Emulator;
use playground_api::store::NewUserWrite;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

fn faults(seed: u64) -> serde_json::Value {
    json!({
        "seed": seed,
        "rules": [{
            "service": "dynamodb", "probability": 0.05,
            "kinds": ["throttle", "server_error", "reset"]
        }],
        "models": {"transaction_window_ms": 15}
    })
}

/// Every answer of a burst, with how long it took.
#[derive(Default)]
struct Burst {
    replies: Vec<(StatusCode, Duration, serde_json::Value)>,
}

impl Burst {
    fn server_errors(&self) -> Vec<String> {
        self.replies
            .iter()
            .filter(|(status, _, _)| status.is_server_error())
            .map(|(status, _, body)| format!("{status} {body}"))
            .collect()
    }

    fn percentile(&self, fraction: f64) -> Duration {
        let mut latencies: Vec<Duration> = self.replies.iter().map(|(_, took, _)| *took).collect();
        latencies.sort();
        let index = ((latencies.len() as f64 * fraction).ceil() as usize).saturating_sub(1);
        latencies.get(index).copied().unwrap_or_default()
    }

    fn created(&self) -> usize {
        self.replies
            .iter()
            .filter(|(_, _, body)| body["createdNew"] == true)
            .count()
    }
}

/// `puts` first PUTs (`username(i)`), `concurrency` at a time, while PATCHes of
/// the table's metadata run until the last PUT answered.
async fn burst(
    api: &TestApi,
    table_id: &str,
    puts: usize,
    concurrency: usize,
    username: impl Fn(usize) -> String,
) -> (Burst, Vec<Reply>) {
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    for index in 0..puts {
        let (api, gate, table_id, name) = (
            api.clone(),
            gate.clone(),
            table_id.to_owned(),
            username(index),
        );
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("gate");
            let started = Instant::now();
            let reply = api.put_user(&table_id, &name, index as u64 + 1).await;
            (reply.status, started.elapsed(), reply.body)
        });
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let patches = {
        let (api, done, table_id) = (api.clone(), done.clone(), table_id.to_owned());
        tokio::spawn(async move {
            let mut replies = Vec::new();
            let mut round = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                round += 1;
                let body = format!(r#"{{"displayName":"Class, round {round}"}}"#);
                replies.push(api.patch(&format!("/tables/{table_id}"), &body).await);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            replies
        })
    };
    let mut result = Burst::default();
    while let Some(joined) = tasks.join_next().await {
        result.replies.push(joined.expect("a PUT task"));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    (result, patches.await.expect("the PATCH task"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_class_joining_at_once_sees_no_5xx_and_an_exact_count() {
    let _turn = support::alone().await;
    let emulator = Emulator::start().unwrap_or_else(|error| panic!("{error}"));
    let endpoint = emulator.endpoint().to_owned();
    let mut report = Vec::new();
    for (seed, mode) in [
        (11, NewUserWrite::Transaction),
        (12, NewUserWrite::ConditionalPut),
    ] {
        let api = TestApi::on(function_client(&endpoint).await, mode).await;
        api.create_table("class").await;
        emulator::configure_faults(&endpoint, &faults(seed));

        let (distinct, distinct_patches) = burst(&api, "class", 100, 50, |index| {
            format!("student-{index:03}")
        })
        .await;
        let (same, same_patches) = burst(&api, "class", 50, 50, |_| "late-student".into()).await;
        let injected = emulator::injected_faults(&endpoint);
        emulator::clear_faults(&endpoint);

        let transient: u64 = injected
            .iter()
            .filter(|(what, _)| {
                what.ends_with(" throttle")
                    || what.ends_with(" server_error")
                    || what.ends_with(" reset")
            })
            .map(|(_, count)| count)
            .sum();
        let conflicts: u64 = injected
            .iter()
            .filter(|(what, _)| what.contains("TransactionConflict"))
            .map(|(_, count)| count)
            .sum();
        let patch_errors = distinct_patches
            .iter()
            .chain(&same_patches)
            .filter(|patch| patch.status.is_server_error())
            .count();
        let line = format!(
            "{mode:?}: 5xx {} of {} PUTs, {patch_errors} of {} PATCHes; PUT p50 {:?} p99 {:?} (distinct users), p99 {:?} (one user); injected {transient} transient faults, {conflicts} conflicts",
            distinct.server_errors().len() + same.server_errors().len(),
            distinct.replies.len() + same.replies.len(),
            distinct_patches.len() + same_patches.len(),
            distinct.percentile(0.5),
            distinct.percentile(0.99),
            same.percentile(0.99),
        );
        println!("classroom: {line}");
        report.push(line);

        assert_eq!(
            distinct.server_errors(),
            Vec::<String>::new(),
            "{mode:?}: distinct users"
        );
        assert_eq!(
            same.server_errors(),
            Vec::<String>::new(),
            "{mode:?}: one user"
        );
        assert!(
            distinct
                .replies
                .iter()
                .chain(&same.replies)
                .all(|(status, _, _)| *status == StatusCode::OK),
            "{mode:?}: every PUT succeeded"
        );
        assert_eq!(
            distinct.created(),
            100,
            "{mode:?}: each student created once"
        );
        assert_eq!(same.created(), 1, "{mode:?}: the one user created once");
        for patch in distinct_patches.iter().chain(&same_patches) {
            assert_eq!(
                patch.status,
                StatusCode::OK,
                "{mode:?}: PATCH {:?}",
                patch.body
            );
        }
        assert!(
            !distinct_patches.is_empty() && !same_patches.is_empty(),
            "{mode:?}: PATCHes ran during both bursts"
        );
        let table = api.get("/tables/class").await;
        assert_eq!(
            table.body["userCount"],
            json!(101),
            "{mode:?}: {:?}",
            table.body
        );
        assert!(
            transient > 0,
            "{mode:?}: transient faults were injected: {injected:?}"
        );
        if mode == NewUserWrite::Transaction {
            assert!(
                conflicts > 0,
                "{mode:?}: transactions conflicted: {injected:?}"
            );
        }
    }
    // Again at the end, together, for docs/api.md.
    for line in report {
        println!("classroom: {line}");
    }
}
