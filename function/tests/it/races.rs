//! What races with a DELETE of a class: nothing outlives it. A class of 150
//! users is deleted while 8 clients keep writing users, new and existing, in
//! both `SAFE_CONCURRENCY` modes, on an emulator with DynamoDB's
//! transaction-conflict model (`emulator/faults.py`). Once the DELETE answers
//! 200, the class's partition is empty, its users read and write 404, and the
//! class created again starts empty, its count exact. A racing write answers
//! 200, 404, or the documented 503 "…; retry" when it lost to the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{self, TestApi};
use axum::http::StatusCode;
use emulator::Emulator;
use playground_api::store::NewUserWrite;
use serde_json::json;

const ROUNDS: usize = 3;
const WRITERS: usize = 8;
const CLASS: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_user_outlives_a_delete_that_races_with_writes() {
    let _turn = support::alone().await;
    let emulator = Emulator::start().unwrap_or_else(|error| panic!("{error}"));
    let endpoint = emulator.endpoint().to_owned();
    emulator::configure_faults(
        &endpoint,
        &json!({"seed": 31, "rules": [], "models": {"transaction_window_ms": 15}}),
    );
    let client = aws_sdk_dynamodb::Client::new(&emulator::sdk_config_for(&endpoint).await);
    for mode in [NewUserWrite::Transaction, NewUserWrite::ConditionalPut] {
        let api = TestApi::on_deleting(client.clone(), mode).await;
        for round in 0..ROUNDS {
            let class = format!("race-{round}");
            api.create_table(&class).await;
            for index in 0..CLASS {
                let reply = api.put_user(&class, &format!("user-{index:04}"), 1).await;
                assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
            }

            let stop = Arc::new(AtomicBool::new(false));
            let written = Arc::new(AtomicUsize::new(0));
            let mut writers = Vec::new();
            for writer in 0..WRITERS {
                let (api, class, stop, written) =
                    (api.clone(), class.clone(), stop.clone(), written.clone());
                writers.push(tokio::spawn(async move {
                    let mut step = 0_usize;
                    let mut statuses = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        step += 1;
                        // Half existing users, half new ones.
                        let name = if step.is_multiple_of(2) {
                            format!("user-{:04}", (writer * 37 + step) % CLASS)
                        } else {
                            format!("new-{writer}-{step}")
                        };
                        let reply = api.put_user(&class, &name, step as u64).await;
                        if reply.status == StatusCode::OK {
                            written.fetch_add(1, Ordering::Relaxed);
                        }
                        statuses.push((reply.status, reply.body));
                    }
                    statuses
                }));
            }
            // Let the writers get going, then delete until it is done.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut deletes = 0;
            loop {
                deletes += 1;
                let reply = api.delete(&format!("/tables/{class}")).await;
                match reply.status {
                    StatusCode::OK => break,
                    StatusCode::ACCEPTED => {}
                    other => panic!(
                        "{mode:?} {class}: DELETE answered {other}: {:?}",
                        reply.body
                    ),
                }
                assert!(deletes < 20, "{mode:?} {class}: the DELETE never finished");
            }
            // Writers keep going a little after the delete, then stop.
            tokio::time::sleep(Duration::from_millis(100)).await;
            stop.store(true, Ordering::Relaxed);
            for writer in writers {
                for (status, body) in writer.await.expect("a writer") {
                    // Written, refused because the class is gone, or the
                    // documented "busy; retry" of a write that lost to too
                    // many others (8 writers on one class): whichever it
                    // was, the scan below finds nothing left.
                    let busy = status == StatusCode::SERVICE_UNAVAILABLE
                        && body["error"]
                            .as_str()
                            .is_some_and(|e| e.ends_with("; retry"));
                    assert!(
                        status == StatusCode::OK || status == StatusCode::NOT_FOUND || busy,
                        "{mode:?} {class}: a racing PUT answered {status}: {body}"
                    );
                }
            }
            assert!(
                written.load(Ordering::Relaxed) > 0,
                "{mode:?} {class}: the writers raced with nothing"
            );

            assert_eq!(
                api.all_items_of(&class).await,
                0,
                "{mode:?} {class}: items outlived the DELETE"
            );
            assert_eq!(
                api.get(&format!("/tables/{class}")).await.status,
                StatusCode::NOT_FOUND
            );
            for name in ["user-0001", "new-0-1"] {
                let path = format!("/tables/{class}/users/{name}");
                assert_eq!(api.get(&path).await.status, StatusCode::NOT_FOUND, "{path}");
                assert_eq!(
                    api.put_user(&class, name, 1).await.status,
                    StatusCode::NOT_FOUND,
                    "{mode:?} {path}: a write after the delete"
                );
            }
            assert_eq!(api.all_items_of(&class).await, 0, "{mode:?} {class}");

            // Created again, it starts empty and counts exactly what it holds.
            api.create_table(&class).await;
            let table = api.get(&format!("/tables/{class}")).await;
            assert_eq!(table.body["userCount"], 0, "{mode:?} {class}");
            let users = api.get(&format!("/tables/{class}/users")).await;
            assert_eq!(users.body["users"], json!([]), "{mode:?} {class}");
            assert_eq!(
                api.put_user(&class, "user-0001", 1).await.body["createdNew"],
                true
            );
            assert_eq!(
                api.get(&format!("/tables/{class}")).await.body["userCount"],
                1
            );
        }
    }
}
