//! Walking every page: global order, no duplicates, no gaps.

use std::collections::HashSet;

use crate::support::{self, TestApi, walk};
use axum::http::StatusCode;
use playground_api::store::NewUserWrite;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_pages_hold_the_global_leaderboard_order() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    api.create_table("walk").await;
    // 120 users, submission counts with many ties, written in scrambled order.
    let tasks: Vec<_> = (0..120u64)
        .map(|index| {
            let api = api.clone();
            let scrambled = (index * 37) % 120;
            tokio::spawn(async move {
                api.put_user("walk", &format!("u{scrambled:03}"), scrambled % 13)
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("task").status, StatusCode::OK);
    }
    for limit in [7, 50, 500] {
        let users = walk(&api, "/tables/walk/users", "users", limit).await;
        assert_eq!(users.len(), 120, "limit {limit}: no gaps");
        let names: HashSet<&str> = users
            .iter()
            .filter_map(|u| u["username"].as_str())
            .collect();
        assert_eq!(names.len(), 120, "limit {limit}: no duplicates");
        let keys: Vec<(std::cmp::Reverse<u64>, String)> = users
            .iter()
            .map(|u| {
                (
                    std::cmp::Reverse(u["submissionCount"].as_u64().unwrap_or(u64::MAX)),
                    u["username"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(
            keys, sorted,
            "limit {limit}: submissionCount desc, then username"
        );
    }
    // An update moves a user in the order.
    api.put_user("walk", "u119", 100).await;
    let top = api.get("/tables/walk/users?limit=1").await;
    assert_eq!(top.body["users"][0]["username"], "u119");
}

#[tokio::test]
async fn tables_pages_hold_newest_first_order() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    for index in 0..60 {
        api.create_table(&format!("t{index:02}")).await;
    }
    for limit in [7, 60, 500] {
        let tables = walk(&api, "/tables", "tables", limit).await;
        assert_eq!(tables.len(), 60, "limit {limit}: no gaps");
        let ids: HashSet<&str> = tables
            .iter()
            .filter_map(|t| t["tableId"].as_str())
            .collect();
        assert_eq!(ids.len(), 60, "limit {limit}: no duplicates");
        let created: Vec<&str> = tables
            .iter()
            .filter_map(|t| t["createdAt"].as_str())
            .collect();
        let mut newest_first = created.clone();
        newest_first.sort_by(|a, b| b.cmp(a));
        assert_eq!(created, newest_first, "limit {limit}: newest first");
        assert_eq!(tables[0]["tableId"], "t59");
        assert_eq!(tables[59]["tableId"], "t00");
    }
}
