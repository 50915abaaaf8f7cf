//! Moral-compass scores, teams and tasks, as the teaching apps write and read
//! them through the `aimodelshare` client, over the emulator: the legacy
//! contract, each write keeping what the other wrote, exact counts, numbers
//! refused by name, and the owner rules with sign-in on.

use crate::support::{self, TestApi};
use aws_sdk_dynamodb::types::AttributeValue;
use axum::http::StatusCode;
use playground_api::api::access::Policy;
use playground_api::store::NewUserWrite;
use serde_json::{Value, json};
use tokio::task::JoinSet;

fn progress(accuracy: f64, done: u64, of: u64) -> String {
    json!({
        "metrics": {"accuracy": accuracy, "f1": 0.5},
        "tasksCompleted": done, "totalTasks": of,
        "questionsCorrect": 1, "totalQuestions": 2,
        "teamName": "Red", "completedTaskIds": ["t10", "t2", "t2", "t1"]
    })
    .to_string()
}

#[tokio::test]
async fn the_legacy_contract_and_each_write_keeps_the_others_fields() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    api.create_table("mc").await;

    let first = api
        .put("/tables/mc/users/ana/moral-compass", &progress(0.8, 2, 2))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.body["createdNew"], true);
    assert_eq!(first.body["primaryMetric"], "accuracy");
    // 0.8 x (2 + 1) / (2 + 2)
    assert_eq!(first.body["moralCompassScore"], 0.6);
    assert_eq!(first.body["completedTaskIds"], json!(["t1", "t2", "t10"]));
    assert_eq!(first.body["teamName"], "Red");
    assert_eq!(api.get("/tables/mc").await.body["userCount"], 1);

    // A plain score PUT keeps the moral-compass fields...
    let scores = api
        .put(
            "/tables/mc/users/ana",
            r#"{"submissionCount": 7, "totalCount": 9}"#,
        )
        .await;
    assert_eq!(scores.status, StatusCode::OK);
    assert_eq!(scores.body["createdNew"], false);
    let user = api.get("/tables/mc/users/ana").await.body;
    assert_eq!(user["submissionCount"], 7);
    assert_eq!(user["moralCompassScore"], 0.6);
    assert_eq!(user["metrics"], json!({"accuracy": 0.8, "f1": 0.5}));
    assert_eq!(user["teamName"], "Red");
    assert_eq!(user["completedTaskIds"], json!(["t1", "t2", "t10"]));
    for field in [
        "tasksCompleted",
        "totalTasks",
        "questionsCorrect",
        "totalQuestions",
    ] {
        assert!(user[field].is_u64(), "{field} in {user}");
    }

    // ...and the legacy alias keeps the scores, the team and the tasks when
    // it names none.
    let again = api
        .put(
            "/tables/mc/users/ana/moralcompass",
            r#"{"metrics": {"f1": 0.9, "auc": 0.7}, "totalTasks": 3, "tasksCompleted": 1}"#,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["createdNew"], false);
    assert_eq!(
        again.body["primaryMetric"], "auc",
        "the first name in order"
    );
    // As the legacy handler's Decimal computes it: not 0.7 / 3.0 in doubles.
    assert_eq!(again.body["moralCompassScore"], 0.233_333_333_333_333_34);
    let user = api.get("/tables/mc/users/ana").await.body;
    assert_eq!(user["submissionCount"], 7);
    assert_eq!(user["totalCount"], 9);
    assert_eq!(user["teamName"], "Red");
    assert_eq!(user["completedTaskIds"], json!(["t1", "t2", "t10"]));
    assert_eq!(user["metrics"], json!({"f1": 0.9, "auc": 0.7}));

    // Listings carry the fields; legacy users without them still read.
    api.put_user("mc", "bo", 1).await;
    let users = api.get("/tables/mc/users").await.body;
    let ana = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|user| user["username"] == "ana")
        .expect("ana listed")
        .clone();
    assert_eq!(ana["primaryMetric"], "auc");
    assert!(ana["moralCompassScore"].is_number());
    let bo = api.get("/tables/mc/users/bo").await.body;
    assert!(bo.get("moralCompassScore").is_none(), "{bo}");
    assert_eq!(api.get("/tables/mc").await.body["userCount"], 2);

    assert_eq!(
        api.put("/tables/none/users/ana/moral-compass", &progress(0.8, 1, 1))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bad_bodies_are_400_naming_what_is_wrong() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    api.create_table("bad").await;
    for (body, needle) in [
        (r#"{"metrics": {}}"#, "metrics"),
        (r#"{"metrics": [1]}"#, "metrics"),
        (r#"{}"#, "metrics"),
        (r#"{"metrics": {"accuracy": "0.8"}}"#, "metrics.accuracy"),
        (r#"{"metrics": {"accuracy": NaN}}"#, "metrics.accuracy"),
        (r#"{"metrics": {"loss": Infinity}}"#, "metrics.loss"),
        (r#"{"metrics": {"accuracy": 1e400}}"#, "metrics"),
        (r#"{"metrics": {"accuracy": 1e200}}"#, "metrics.accuracy"),
        (
            r#"{"metrics": {"accuracy": 0.123456789012345678901234567890123456789}}"#,
            "metrics.accuracy",
        ),
        (
            r#"{"metrics": {"a": 1}, "primaryMetric": "b"}"#,
            "primaryMetric",
        ),
        (
            r#"{"metrics": {"a": 1}, "tasksCompleted": -1}"#,
            "tasksCompleted",
        ),
        (r#"{"metrics": {"a": 1}, "totalTasks": 1.5}"#, "totalTasks"),
        (
            r#"{"metrics": {"a": 1}, "completedTaskIds": ["x1"]}"#,
            "completedTaskIds",
        ),
        (
            r#"{"metrics": {"a": 1}, "completedTaskIds": "t1"}"#,
            "completedTaskIds",
        ),
    ] {
        let reply = api.put("/tables/bad/users/ana/moral-compass", body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {:?}",
            reply.body
        );
        assert!(reply.error().contains(needle), "{body}: {:?}", reply.body);
    }
    assert_eq!(
        api.items_of("bad").await,
        5,
        "nothing written: the metadata and 4 counters"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_users_are_counted_exactly_in_both_modes() {
    let _turn = support::together().await;
    for mode in [NewUserWrite::Transaction, NewUserWrite::ConditionalPut] {
        let api = TestApi::new(mode).await;
        api.create_table("crowd").await;
        let mut tasks = JoinSet::new();
        for index in 0..60 {
            let api = api.clone();
            tasks.spawn(async move {
                // 40 distinct students, and 20 first writes of one more.
                let name = if index < 40 {
                    format!("s{index:02}")
                } else {
                    "same".to_owned()
                };
                let path = format!("/tables/crowd/users/{name}/moral-compass");
                api.put(&path, &progress(0.5, 1, 2)).await
            });
        }
        let mut created = 0;
        while let Some(reply) = tasks.join_next().await {
            let reply = reply.expect("a PUT");
            assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {:?}", reply.body);
            created += usize::from(reply.body["createdNew"] == true);
        }
        assert_eq!(created, 41, "{mode:?}");
        assert_eq!(
            api.get("/tables/crowd").await.body["userCount"],
            41,
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn tasks_are_a_sorted_set_changed_in_place() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    api.create_table("tasks").await;
    api.put_user("tasks", "ana", 1).await;
    let change = |op: &str, ids: Value| json!({"op": op, "taskIds": ids}).to_string();
    let path = "/tables/tasks/users/ana/tasks";

    let added = api
        .patch(path, &change("add", json!(["t3", "t1", "t3"])))
        .await;
    assert_eq!(added.status, StatusCode::OK, "{:?}", added.body);
    assert_eq!(added.body["completedTaskIds"], json!(["t1", "t3"]));
    let added = api.patch(path, &change("add", json!(["t20", "t2"]))).await;
    assert_eq!(
        added.body["completedTaskIds"],
        json!(["t1", "t2", "t3", "t20"])
    );
    let removed = api
        .patch(path, &change("remove", json!(["t3", "t9"])))
        .await;
    assert_eq!(removed.body["completedTaskIds"], json!(["t1", "t2", "t20"]));
    let reset = api.patch(path, &change("reset", json!(["t5"]))).await;
    assert_eq!(reset.body["completedTaskIds"], json!(["t5"]));
    assert_eq!(
        api.get("/tables/tasks/users/ana").await.body["completedTaskIds"],
        json!(["t5"])
    );
    let cleared = api.delete(path).await;
    assert_eq!(cleared.status, StatusCode::OK);
    assert_eq!(cleared.body["completedTaskIds"], json!([]));
    assert!(
        api.get("/tables/tasks/users/ana")
            .await
            .body
            .get("completedTaskIds")
            .is_none()
    );

    // A legacy item holds a list: it is converted on its first change.
    api.client
        .update_item()
        .table_name(&api.table_name)
        .key("tableId", AttributeValue::S("tasks".into()))
        .key("username", AttributeValue::S("ana".into()))
        .update_expression("SET completedTaskIds = :ids")
        .expression_attribute_values(
            ":ids",
            AttributeValue::L(vec![
                AttributeValue::S("t7".into()),
                AttributeValue::S("t1".into()),
            ]),
        )
        .send()
        .await
        .expect("a legacy list");
    assert_eq!(
        api.get("/tables/tasks/users/ana").await.body["completedTaskIds"],
        json!(["t1", "t7"])
    );
    let added = api.patch(path, &change("add", json!(["t2"]))).await;
    assert_eq!(added.status, StatusCode::OK, "{:?}", added.body);
    assert_eq!(added.body["completedTaskIds"], json!(["t1", "t2", "t7"]));

    for (path, body, status) in [
        (
            "/tables/tasks/users/nobody/tasks",
            change("add", json!(["t1"])),
            StatusCode::NOT_FOUND,
        ),
        (
            "/tables/nowhere/users/ana/tasks",
            change("add", json!(["t1"])),
            StatusCode::NOT_FOUND,
        ),
        (
            path,
            change("toggle", json!(["t1"])),
            StatusCode::BAD_REQUEST,
        ),
        (path, change("add", json!(["1"])), StatusCode::BAD_REQUEST),
    ] {
        let reply = api.patch(path, &body).await;
        assert_eq!(reply.status, status, "{path} {body}: {:?}", reply.body);
    }
    assert_eq!(
        api.delete("/tables/tasks/users/nobody/tasks").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.items_of("tasks").await,
        6,
        "no user was created by a change of tasks"
    );
}

#[tokio::test]
async fn signed_in_a_student_writes_only_their_own_progress() {
    let _turn = support::together().await;
    let api = TestApi::signed_in(
        NewUserWrite::Transaction,
        Policy {
            enabled: true,
            admin_group: "admin".into(),
            public_read: true,
        },
    )
    .await;
    let person = |sub: &str, groups: &[&str]| json!({"sub": sub, "cognito:username": sub, "cognito:groups": groups});
    let (teacher, ana, bo, admin) = (
        person("teacher", &[]),
        person("ana", &[]),
        person("bo", &[]),
        person("root", &["admin"]),
    );
    let created = api
        .send_as(
            Some(&teacher),
            "POST",
            "/tables",
            Some(r#"{"tableId":"class"}"#),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let body = progress(0.9, 1, 1);
    let tasks = json!({"op": "add", "taskIds": ["t1"]}).to_string();
    for (who, caller, status) in [
        ("nobody", None, StatusCode::UNAUTHORIZED),
        ("another student", Some(&bo), StatusCode::FORBIDDEN),
        ("the student", Some(&ana), StatusCode::OK),
        ("the table's owner", Some(&teacher), StatusCode::OK),
        ("an admin", Some(&admin), StatusCode::OK),
    ] {
        let reply = api
            .send_as(
                caller,
                "PUT",
                "/tables/class/users/ana/moral-compass",
                Some(&body),
            )
            .await;
        assert_eq!(reply.status, status, "PUT moral-compass by {who}");
        let reply = api
            .send_as(
                caller,
                "PATCH",
                "/tables/class/users/ana/tasks",
                Some(&tasks),
            )
            .await;
        assert_eq!(reply.status, status, "PATCH tasks by {who}");
        let reply = api
            .send_as(caller, "DELETE", "/tables/class/users/ana/tasks", None)
            .await;
        assert_eq!(reply.status, status, "DELETE tasks by {who}");
    }
}
