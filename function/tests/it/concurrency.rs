//! Exact counts under concurrency, in both `SAFE_CONCURRENCY` modes, against the
//! emulator (served one request at a time, so it is linearizable like DynamoDB).

use crate::support::{self, TestApi};
use axum::http::StatusCode;
use playground_api::store::NewUserWrite;
use serde_json::json;

const MODES: [NewUserWrite; 2] = [NewUserWrite::Transaction, NewUserWrite::ConditionalPut];

async fn user_count(api: &TestApi, table_id: &str) -> serde_json::Value {
    api.get(&format!("/tables/{table_id}")).await.body["userCount"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn distinct_new_users_are_each_counted_once() {
    let _turn = support::together().await;
    for mode in MODES {
        let api = TestApi::new(mode).await;
        api.create_table("crowd").await;
        let tasks: Vec<_> = (0..100)
            .map(|index| {
                let api = api.clone();
                tokio::spawn(async move {
                    api.put_user("crowd", &format!("user-{index:03}"), index)
                        .await
                })
            })
            .collect();
        for task in tasks {
            let reply = task.await.expect("task");
            assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {:?}", reply.body);
            assert_eq!(reply.body["createdNew"], true);
        }
        assert_eq!(user_count(&api, "crowd").await, json!(100), "{mode:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_writes_of_one_user_count_once() {
    let _turn = support::together().await;
    for mode in MODES {
        let api = TestApi::new(mode).await;
        api.create_table("same").await;
        let tasks: Vec<_> = (0..50)
            .map(|index| {
                let api = api.clone();
                tokio::spawn(async move { api.put_user("same", "ann", index).await })
            })
            .collect();
        let mut created = 0;
        for task in tasks {
            let reply = task.await.expect("task");
            assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {:?}", reply.body);
            if reply.body["createdNew"] == true {
                created += 1;
            }
        }
        assert_eq!(created, 1, "{mode:?}: exactly one PUT created the user");
        assert_eq!(user_count(&api, "same").await, json!(1), "{mode:?}");
        let users = api.get("/tables/same/users").await.body;
        assert_eq!(users["users"].as_array().map(Vec::len), Some(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_table_succeed_once() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    let tasks: Vec<_> = (0..20)
        .map(|index| {
            let api = api.clone();
            tokio::spawn(async move {
                api.post(
                    "/tables",
                    &format!(r#"{{"tableId":"race","displayName":"writer {index}"}}"#),
                )
                .await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    let mut winner = None;
    for task in tasks {
        let reply = task.await.expect("task");
        if reply.status == StatusCode::CREATED {
            winner = reply.body["displayName"].as_str().map(str::to_owned);
        }
        statuses.push(reply.status);
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        19
    );
    let table = api.get("/tables/race").await.body;
    assert_eq!(
        table["displayName"].as_str(),
        winner.as_deref(),
        "the winner's write is the one kept"
    );
}
