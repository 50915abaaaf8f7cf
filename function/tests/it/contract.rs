//! The API contract, line by line, through API Gateway v2 events on the emulator.

use crate::support::{self, Stage, TestApi};
use axum::http::StatusCode;
use playground_api::schema::USER_COUNT_SHARDS;
use playground_api::store::NewUserWrite;
use serde_json::{Value, json};

fn is_rfc3339_utc(value: &Value) -> bool {
    value
        .as_str()
        .and_then(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|_| text.ends_with('Z'))
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn create_table_returns_201_and_the_table_reads_back() {
    let _turn = support::together().await;
    for stage in [Stage::Named, Stage::Default] {
        let api = TestApi::new(NewUserWrite::Transaction).await.through(stage);
        let reply = api
            .post(
                "/tables",
                r#"{"tableId":"class-1","displayName":"Class One"}"#,
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
        assert_eq!(reply.body["tableId"], "class-1");
        assert_eq!(reply.body["displayName"], "Class One");
        assert!(reply.body["message"].is_string());

        let table = api.get("/tables/class-1").await;
        assert_eq!(table.status, StatusCode::OK);
        assert_eq!(table.body["tableId"], "class-1");
        assert_eq!(table.body["displayName"], "Class One");
        assert_eq!(table.body["isArchived"], false);
        assert_eq!(table.body["userCount"], json!(0));
        assert!(table.body["userCount"].is_u64(), "an integer, never 0.0");
        assert!(is_rfc3339_utc(&table.body["createdAt"]), "{}", table.body);
        assert!(
            table.body.get("updatedAt").is_none(),
            "no updatedAt before a PATCH"
        );
    }
}

#[tokio::test]
async fn display_name_defaults_to_the_table_id() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    let reply = api.post("/tables", r#"{"tableId":"plain"}"#).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["displayName"], "plain");
}

#[tokio::test]
async fn create_table_rejects_bad_input_with_400() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    for body in [
        r#"{"tableId":"has space"}"#,
        r#"{"tableId":""}"#,
        &format!(r#"{{"tableId":"{}"}}"#, "x".repeat(65)),
        r#"{"tableId":"a/b"}"#,
        r#"{"tableId":5}"#,
        r#"{"displayName":"no id"}"#,
        r#"{"tableId":"ok","displayName":7}"#,
        r#"{"tableId":"ok","displayName":""}"#,
        r#"{"tableId":"ok""#,
        "[]",
        "",
        "not json",
    ] {
        let reply = api.post("/tables", body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {:?}",
            reply.body
        );
        assert!(!reply.error().is_empty());
    }
    assert_eq!(
        api.get("/tables/ok").await.status,
        StatusCode::NOT_FOUND,
        "nothing was created"
    );
}

#[tokio::test]
async fn creating_an_existing_table_is_409() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    api.create_table("twice").await;
    let reply = api
        .post("/tables", r#"{"tableId":"twice","displayName":"Other"}"#)
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert!(reply.error().contains("already exists"));
    assert_eq!(
        api.get("/tables/twice").await.body["displayName"],
        "twice",
        "not overwritten"
    );
}

#[tokio::test]
async fn a_missing_table_is_404_everywhere() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    let get = api.get("/tables/ghost").await;
    assert_eq!(get.status, StatusCode::NOT_FOUND);
    assert_eq!(get.error(), "Table not found");
    assert_eq!(
        api.patch("/tables/ghost", r#"{"isArchived":true}"#)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/tables/ghost/users").await.error(),
        "Table not found"
    );
    assert_eq!(
        api.get("/tables/ghost/users/ann").await.error(),
        "Table not found"
    );
    let put = api.put_user("ghost", "ann", 1).await;
    assert_eq!(put.status, StatusCode::NOT_FOUND);
    assert_eq!(put.error(), "Table not found");
    assert_eq!(
        api.get("/tables/ghost/users/ann").await.status,
        StatusCode::NOT_FOUND,
        "no orphan user"
    );
}

#[tokio::test]
async fn patch_updates_fields_and_sets_updated_at() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    api.create_table("p1").await;
    let reply = api.patch("/tables/p1", r#"{"isArchived":true}"#).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert!(reply.body["message"].is_string());
    let table = api.get("/tables/p1").await.body;
    assert_eq!(table["isArchived"], true);
    assert_eq!(table["displayName"], "p1");
    assert!(is_rfc3339_utc(&table["updatedAt"]), "{table}");

    let reply = api
        .patch(
            "/tables/p1",
            r#"{"displayName":"Renamed","isArchived":false}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let table = api.get("/tables/p1").await.body;
    assert_eq!(table["displayName"], "Renamed");
    assert_eq!(table["isArchived"], false);
}

#[tokio::test]
async fn patch_rejects_wrong_types_and_empty_patches() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    api.create_table("p2").await;
    for body in [
        r#"{"isArchived":"true"}"#,
        r#"{"isArchived":1}"#,
        r#"{"displayName":false}"#,
        r#"{}"#,
        r#"{"colour":"blue"}"#,
        "{",
    ] {
        let reply = api.patch("/tables/p2", body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(!reply.error().is_empty());
    }
    assert_eq!(
        api.patch("/tables/p2", r#"{"isArchived":"yes"}"#)
            .await
            .error(),
        "isArchived must be a boolean"
    );
    assert!(
        api.get("/tables/p2").await.body.get("updatedAt").is_none(),
        "nothing written"
    );
}

#[tokio::test]
async fn put_creates_then_updates_a_user() {
    let _turn = support::together().await;
    for mode in [NewUserWrite::Transaction, NewUserWrite::ConditionalPut] {
        let api = TestApi::new(mode).await;
        api.create_table("u1").await;
        let created = api
            .put(
                "/tables/u1/users/ann",
                r#"{"submissionCount":3,"totalCount":10}"#,
            )
            .await;
        assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
        assert_eq!(created.body["username"], "ann");
        assert_eq!(created.body["submissionCount"], json!(3));
        assert_eq!(created.body["totalCount"], json!(10));
        assert_eq!(created.body["createdNew"], true);
        assert!(created.body["message"].is_string());

        let updated = api
            .put(
                "/tables/u1/users/ann",
                r#"{"submissionCount":"4","totalCount":"12"}"#,
            )
            .await;
        assert_eq!(updated.status, StatusCode::OK);
        assert_eq!(updated.body["createdNew"], false);
        assert_eq!(
            updated.body["submissionCount"],
            json!(4),
            "legacy string counts become integers"
        );

        let user = api.get("/tables/u1/users/ann").await;
        assert_eq!(user.status, StatusCode::OK);
        assert_eq!(user.body["username"], "ann");
        assert_eq!(user.body["submissionCount"], json!(4));
        assert_eq!(user.body["totalCount"], json!(12));
        assert!(is_rfc3339_utc(&user.body["lastUpdated"]));
        assert_eq!(
            api.get("/tables/u1").await.body["userCount"],
            json!(1),
            "updates do not count"
        );
    }
}

#[tokio::test]
async fn put_rejects_bad_counts_and_reserved_names() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    api.create_table("u2").await;
    for body in [
        r#"{"submissionCount":-1,"totalCount":1}"#,
        r#"{"submissionCount":1,"totalCount":-5}"#,
        r#"{"submissionCount":1.5,"totalCount":1}"#,
        r#"{"submissionCount":"1.5","totalCount":1}"#,
        r#"{"submissionCount":"abc","totalCount":1}"#,
        r#"{"submissionCount":true,"totalCount":1}"#,
        r#"{"submissionCount":null,"totalCount":1}"#,
        r#"{"submissionCount":1}"#,
        r#"{"totalCount":1}"#,
        r#"{"submissionCount":9007199254740992,"totalCount":1}"#,
        "[1,2]",
        "nope",
        "",
    ] {
        let reply = api.put("/tables/u2/users/ann", body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {:?}",
            reply.body
        );
        assert!(!reply.error().is_empty());
    }
    let reserved = api
        .put(
            "/tables/u2/users/_metadata",
            r#"{"submissionCount":1,"totalCount":1}"#,
        )
        .await;
    assert_eq!(reserved.status, StatusCode::BAD_REQUEST);
    assert!(reserved.error().contains("reserved"));
    assert_eq!(
        api.get("/tables/u2/users/_metadata").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.put_user("u2", "bad%20name", 1).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.get("/tables/bad%20id").await.status,
        StatusCode::BAD_REQUEST
    );
    let table = api.get("/tables/u2").await.body;
    assert_eq!(table["userCount"], json!(0), "no bad PUT touched the table");
    assert_eq!(table["displayName"], "u2", "metadata intact");
}

#[tokio::test]
async fn a_missing_user_is_404_with_its_own_message() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    api.create_table("u3").await;
    let reply = api.get("/tables/u3/users/nobody").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error(), "User not found in table");
}

#[tokio::test]
async fn users_list_is_a_leaderboard() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    api.create_table("lb").await;
    let empty = api.get("/tables/lb/users").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(
        empty.body,
        json!({ "users": [] }),
        "no lastKey on the only page"
    );
    for (name, submissions) in [("carol", 5), ("ann", 9), ("bob", 5), ("dave", 0)] {
        assert_eq!(
            api.put_user("lb", name, submissions).await.status,
            StatusCode::OK
        );
    }
    let list = api.get("/tables/lb/users").await;
    let names: Vec<&str> = list.body["users"]
        .as_array()
        .expect("users array")
        .iter()
        .map(|user| user["username"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["ann", "bob", "carol", "dave"]);
    let first = &list.body["users"][0];
    assert_eq!(first["submissionCount"], json!(9));
    assert_eq!(first["totalCount"], json!(18));
    assert!(is_rfc3339_utc(&first["lastUpdated"]));
    assert!(list.body.get("lastKey").is_none());
}

#[tokio::test]
async fn tables_list_is_newest_first_with_all_fields() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    for id in ["first", "second", "third"] {
        api.create_table(id).await;
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    api.put_user("second", "ann", 1).await;
    let list = api.get("/tables").await;
    assert_eq!(list.status, StatusCode::OK);
    let tables = list.body["tables"].as_array().expect("tables array");
    let ids: Vec<&str> = tables
        .iter()
        .map(|t| t["tableId"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, ["third", "second", "first"]);
    for table in tables {
        for field in [
            "tableId",
            "displayName",
            "createdAt",
            "isArchived",
            "userCount",
        ] {
            assert!(table.get(field).is_some(), "{field} missing in {table}");
        }
    }
    assert_eq!(tables[1]["userCount"], json!(1));
    assert!(list.body.get("lastKey").is_none());
}

#[tokio::test]
async fn bad_limits_are_400_and_unreadable_or_foreign_cursors_the_first_page() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    api.create_table("c1").await;
    api.create_table("c2").await;
    for query in ["limit=0", "limit=501", "limit=abc", "limit=-3"] {
        for path in ["/tables", "/tables/c1/users"] {
            let reply = api.get(&format!("{path}?{query}")).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{path}?{query}: {:?}",
                reply.body
            );
            assert!(!reply.error().is_empty());
        }
    }
    api.put_user("c1", "a", 2).await;
    api.put_user("c1", "b", 1).await;
    api.put_user("c2", "z", 1).await;
    let first_of = |reply: &support::Reply, list: &str, field: &str| {
        reply.body[list][0][field].as_str().map(str::to_owned)
    };
    // As the legacy handler ignored a malformed lastKey: the first page.
    for query in [
        "lastKey=",
        "lastKey=garbage!",
        "lastKey=eyJhIjoiYiJ9",
        "lastKey=%7Bbad%20json",
        "lastKey=12",
    ] {
        let users = api.get(&format!("/tables/c1/users?{query}")).await;
        assert_eq!(users.status, StatusCode::OK, "{query}: {:?}", users.body);
        assert_eq!(
            first_of(&users, "users", "username").as_deref(),
            Some("a"),
            "{query}"
        );
        let tables = api.get(&format!("/tables?{query}")).await;
        assert_eq!(tables.status, StatusCode::OK, "{query}: {:?}", tables.body);
        assert_eq!(
            first_of(&tables, "tables", "tableId").as_deref(),
            Some("c2"),
            "{query}"
        );
    }
    // A cursor of one listing or class is the first page of another: it
    // never reaches another class's users.
    let users = api.get("/tables/c1/users?limit=1").await;
    let cursor = users.body["lastKey"]
        .as_str()
        .expect("more users")
        .to_owned();
    let tables = api.get(&format!("/tables?lastKey={cursor}")).await;
    assert_eq!(
        first_of(&tables, "tables", "tableId").as_deref(),
        Some("c2")
    );
    let other = api.get(&format!("/tables/c2/users?lastKey={cursor}")).await;
    assert_eq!(other.status, StatusCode::OK);
    let names: Vec<&str> = other.body["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|user| user["username"].as_str())
        .collect();
    assert_eq!(names, ["z"], "only c2's users");
    let next = api.get(&format!("/tables/c1/users?lastKey={cursor}")).await;
    assert_eq!(first_of(&next, "users", "username").as_deref(), Some("b"));
}

#[tokio::test]
async fn health_reports_the_table() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    let mut reply = api.get("/health").await;
    assert_eq!(reply.status, StatusCode::OK);
    let timestamp = reply.body["timestamp"]
        .as_str()
        .expect("a timestamp, as the client's tests read it");
    let when = chrono::DateTime::parse_from_rfc3339(timestamp).expect("RFC 3339");
    assert!(
        (chrono::Utc::now() - when.to_utc()).num_seconds().abs() < 60,
        "{timestamp}"
    );
    if let Some(body) = reply.body.as_object_mut() {
        body.remove("timestamp");
    }
    assert_eq!(
        reply.body,
        json!({
            "status": "ok",
            "tableName": api.table_name,
            "safeConcurrency": true,
            "allowTableDelete": false
        })
    );
    let deleting = TestApi::deleting(NewUserWrite::ConditionalPut).await;
    let mut body = deleting.get("/health").await.body;
    if let Some(body) = body.as_object_mut() {
        assert!(body.remove("timestamp").is_some());
    }
    assert_eq!(
        body,
        json!({
            "status": "ok",
            "tableName": deleting.table_name,
            "safeConcurrency": false,
            "allowTableDelete": true
        })
    );

    let missing = emulator::unique_name("PlaygroundScores-absent");
    let broken = playground_api::api::router(playground_api::store::Store::new(
        api.client.clone(),
        missing.clone(),
        NewUserWrite::Transaction,
    ));
    let broken = TestApi {
        router: broken,
        table_name: missing.clone(),
        ..api.clone()
    };
    let reply = broken.get("/health").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body["tableName"], missing);
    assert_eq!(reply.body["status"], "unavailable");
    assert_eq!(reply.body["allowTableDelete"], false);
    assert!(reply.error().contains("does not exist"), "{}", reply.body);
}

#[tokio::test]
async fn on_lambda_the_router_sets_no_cors_header_since_api_gateway_owns_cors() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    let origin = [("origin", "https://app.example")];
    for reply in [
        api.send("GET", "/health", None, &origin).await,
        api.send("GET", "/tables/none", None, &origin).await,
        api.send("GET", "/nowhere", None, &origin).await,
        api.send("OPTIONS", "/tables", None, &origin).await,
    ] {
        let cors: Vec<_> = reply
            .headers
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{:?}: {cors:?}", reply.status);
    }
}

#[tokio::test]
async fn served_locally_cors_is_answered_as_api_gateway_answers_it() {
    let _turn = support::together().await;
    let api = TestApi::with_cors(NewUserWrite::Transaction, vec!["*".into()]).await;
    let preflight = [
        ("origin", "https://app.example"),
        ("access-control-request-method", "PUT"),
    ];
    for path in ["/tables", "/tables/x/users/y", "/no/such/route"] {
        let reply = api.send("OPTIONS", path, None, &preflight).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{path}");
        assert_eq!(reply.headers["access-control-allow-origin"], "*");
        let methods = reply.headers["access-control-allow-methods"]
            .to_str()
            .unwrap_or_default();
        for method in ["GET", "PUT", "PATCH", "POST", "DELETE", "OPTIONS"] {
            assert!(methods.contains(method), "{methods}");
        }
        let allowed_headers = reply.headers["access-control-allow-headers"]
            .to_str()
            .unwrap_or_default();
        assert!(
            allowed_headers.contains("Content-Type") && allowed_headers.contains("Authorization")
        );
        assert_eq!(reply.headers["access-control-max-age"], "600");
    }
    let origin = [("origin", "https://app.example")];
    for reply in [
        api.send("GET", "/health", None, &origin).await,
        api.send("GET", "/tables/none", None, &origin).await,
        api.send("GET", "/nowhere", None, &origin).await,
    ] {
        assert_eq!(
            reply.headers["access-control-allow-origin"], "*",
            "{:?}",
            reply.status
        );
        assert!(
            !reply.headers.contains_key("access-control-allow-methods"),
            "only preflights list the methods"
        );
    }
    let reply = api.get("/health").await;
    assert!(
        !reply.headers.contains_key("access-control-allow-origin"),
        "a request without Origin gets no CORS header"
    );
    let reply = api.send("OPTIONS", "/tables", None, &origin).await;
    assert_eq!(
        reply.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "an OPTIONS that is not a preflight is routed like any request"
    );

    let restricted = TestApi::with_cors(
        NewUserWrite::Transaction,
        vec!["https://a.example".into(), "https://b.example".into()],
    )
    .await;
    let reply = restricted
        .send("GET", "/health", None, &[("origin", "https://b.example")])
        .await;
    assert_eq!(
        reply.headers["access-control-allow-origin"],
        "https://b.example"
    );
    assert_eq!(reply.headers["vary"], "Origin");
    let reply = restricted
        .send(
            "GET",
            "/health",
            None,
            &[("origin", "https://evil.example")],
        )
        .await;
    assert!(!reply.headers.contains_key("access-control-allow-origin"));
    let reply = restricted
        .send(
            "OPTIONS",
            "/tables",
            None,
            &[
                ("origin", "https://evil.example"),
                ("access-control-request-method", "GET"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(!reply.headers.contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn unknown_routes_404_wrong_methods_405_with_allow() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    for path in [
        "/",
        "/nope",
        "/tables/a/b",
        "/tables/a/users/b/c",
        "/health/x",
    ] {
        let reply = api.get(path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.error(), "Route not found");
    }
    let reply = api.send("PUT", "/tables/x", Some("{}"), &[]).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.error(), "Method not allowed");
    let allow = reply.headers["allow"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        allow.contains("GET")
            && allow.contains("PATCH")
            && allow.contains("DELETE")
            && !allow.contains("PUT"),
        "{allow}"
    );
    let reply = api.send("DELETE", "/tables", None, &[]).await;
    assert_eq!(
        reply.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "no bulk delete"
    );
    let reply = api.send("POST", "/health", Some("{}"), &[]).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(reply.headers.contains_key("allow"));
}

#[tokio::test]
async fn every_registered_route_is_served_and_nothing_else() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    let concrete = |path: &str| path.replace("{tableId}", "rt").replace("{username}", "ann");
    for route in playground_api::api::ROUTES {
        let body = (route.method != "GET").then_some("{}");
        let reply = api
            .send(route.method, &concrete(route.path), body, &[])
            .await;
        assert!(
            reply.status != StatusCode::NOT_FOUND || reply.body["error"] != "Route not found",
            "{} not served",
            route.route_key()
        );
        assert_ne!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{}",
            route.route_key()
        );
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let registered = playground_api::api::ROUTES
                .iter()
                .any(|other| other.path == route.path && other.method == method);
            if !registered {
                let reply = api.send(method, &concrete(route.path), None, &[]).await;
                assert_eq!(
                    reply.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {}",
                    route.path
                );
            }
        }
    }
}

#[tokio::test]
async fn delete_is_403_where_the_environment_does_not_allow_it() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    api.create_table("kept").await;
    api.put_user("kept", "ann", 1).await;
    for path in ["/tables/kept", "/tables/ghost", "/tables/bad%20id"] {
        let reply = api.delete(path).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{path}: {:?}",
            reply.body
        );
        assert_eq!(
            reply.error(),
            "This environment does not allow deleting tables"
        );
    }
    assert_eq!(api.get("/tables/kept").await.body["userCount"], json!(1));
    assert_eq!(
        api.items_of("kept").await,
        2 + i32::from(USER_COUNT_SHARDS),
        "the metadata, its counters and ann stay"
    );
}

#[tokio::test]
async fn delete_removes_the_table_and_its_users_and_no_other_table() {
    let _turn = support::together().await;
    for mode in [NewUserWrite::Transaction, NewUserWrite::ConditionalPut] {
        let api = TestApi::deleting(mode).await;
        for (table, users) in [("gone", 30), ("gone-2", 3), ("kept", 4)] {
            api.create_table(table).await;
            for index in 0..users {
                let reply = api
                    .put_user(table, &format!("user-{index:02}"), index)
                    .await;
                assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
            }
        }
        let reply = api.delete("/tables/gone").await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert_eq!(
            reply.body,
            json!({"tableId": "gone", "deletedUsers": 30, "message": "Table deleted"})
        );
        assert_eq!(api.all_items_of("gone").await, 0, "nothing of it is left");
        assert_eq!(api.get("/tables/gone").await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            api.get("/tables/gone/users").await.error(),
            "Table not found"
        );
        assert_eq!(
            api.get("/tables/gone/users/user-00").await.error(),
            "Table not found"
        );
        assert_eq!(
            api.put_user("gone", "user-00", 1).await.status,
            StatusCode::NOT_FOUND,
            "no user is written into a deleted table"
        );
        let listed: Vec<Value> = api.get("/tables").await.body["tables"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ids: Vec<&str> = listed
            .iter()
            .filter_map(|table| table["tableId"].as_str())
            .collect();
        assert_eq!(
            ids,
            ["kept", "gone-2"],
            "newest first, without the deleted one"
        );
        for (table, users) in [("gone-2", 3), ("kept", 4)] {
            let read = api.get(&format!("/tables/{table}")).await.body;
            assert_eq!(read["userCount"], json!(users), "{table}: {read}");
            assert_eq!(
                api.get(&format!("/tables/{table}/users")).await.body["users"]
                    .as_array()
                    .map(Vec::len),
                Some(users as usize),
                "{table}"
            );
        }

        let again = api.delete("/tables/gone").await;
        assert_eq!(again.status, StatusCode::NOT_FOUND, "{:?}", again.body);
        assert_eq!(again.error(), "Table not found");
        assert_eq!(
            api.delete("/tables/bad%20id").await.status,
            StatusCode::BAD_REQUEST
        );
        // The id is free again, and a new table under it starts empty.
        api.create_table("gone").await;
        assert_eq!(api.get("/tables/gone").await.body["userCount"], json!(0));
        let empty = api.delete("/tables/gone").await;
        assert_eq!(empty.body["deletedUsers"], json!(0), "{:?}", empty.body);
        assert_eq!(empty.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_large_table_is_deleted_by_several_bounded_requests() {
    let _turn = support::together().await;
    let api = TestApi::deleting(NewUserWrite::Transaction).await;
    api.create_table("big").await;
    api.seed_users("big", 1_100).await;
    // One request reads at most 10 pages of 100 items: the metadata, its
    // counters, the class's rank items, and users for the rest.
    let items = api.all_items_of("big").await;
    assert!(items > 2_000, "{items}");
    let requests = (items as usize).div_ceil(1_000);
    let first = api.delete("/tables/big").await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{:?}", first.body);
    assert!(
        first.body["message"]
            .as_str()
            .is_some_and(|message| message.contains("send DELETE again")),
        "{:?}",
        first.body
    );
    assert_eq!(
        api.get("/tables/big").await.status,
        StatusCode::OK,
        "the metadata goes last: the table is still there"
    );
    let mut deleted = first.body["deletedUsers"].as_u64().expect("deletedUsers");
    for request in 2..=requests {
        let next = api.delete("/tables/big").await;
        let expected = if request == requests {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        };
        assert_eq!(next.status, expected, "request {request}: {:?}", next.body);
        deleted += next.body["deletedUsers"].as_u64().expect("deletedUsers");
    }
    assert_eq!(
        deleted, 1_100,
        "each user counted once, rank items not at all"
    );
    assert_eq!(api.all_items_of("big").await, 0);
    assert_eq!(
        api.delete("/tables/big").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_user_left_behind_by_a_concurrent_write_goes_with_the_next_delete() {
    let _turn = support::together().await;
    // What a write racing a delete can leave: a user in the partition of a table
    // whose metadata is gone. The table reads as missing; a DELETE finishes it.
    let api = TestApi::deleting(NewUserWrite::Transaction).await;
    api.seed_users("orphaned", 1).await;
    assert_eq!(
        api.get("/tables/orphaned").await.status,
        StatusCode::NOT_FOUND
    );
    let reply = api.delete("/tables/orphaned").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["deletedUsers"], json!(1));
    assert_eq!(api.all_items_of("orphaned").await, 0);
    assert_eq!(
        api.delete("/tables/orphaned").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    let big = format!(
        r#"{{"tableId":"big","displayName":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let reply = api.post("/tables", &big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reply.error().contains("too large"));
    assert_eq!(api.get("/tables/big").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_named_stage_is_stripped_only_as_a_whole_segment() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    let request = support::event(Stage::Named, "GET", "/tables/x?limit=5", None, &[]);
    assert_eq!(
        request.uri().path(),
        "/dev/tables/x",
        "lambda_http keeps the stage"
    );
    let stripped = playground_api::runtime::lambda::strip_stage(request);
    assert_eq!(stripped.uri().path(), "/tables/x");
    assert_eq!(stripped.uri().query(), Some("limit=5"));
    // Only a whole leading segment equal to the stage goes: `/dev/devices` is `/devices`.
    let request = support::event(Stage::Named, "GET", "/devices", None, &[]);
    assert_eq!(request.uri().path(), "/dev/devices");
    assert_eq!(
        playground_api::runtime::lambda::strip_stage(request)
            .uri()
            .path(),
        "/devices"
    );
    // Under `$default` nothing is stripped, even a path that starts like a stage.
    let request = support::event(Stage::Default, "GET", "/dev/tables/x", None, &[]);
    assert_eq!(
        playground_api::runtime::lambda::strip_stage(request)
            .uri()
            .path(),
        "/dev/tables/x"
    );
    assert_eq!(api.get("/health").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_table_written_before_counters_keeps_its_count_and_grows_it() {
    let _turn = support::together().await;
    use aws_sdk_dynamodb::types::AttributeValue;
    for mode in [NewUserWrite::Transaction, NewUserWrite::ConditionalPut] {
        let api = TestApi::deleting(mode).await;
        // As the legacy deployment left it: the whole count on the metadata,
        // two users, no counters.
        api.seed_users("legacy", 2).await;
        let metadata = [
            ("tableId", AttributeValue::S("legacy".into())),
            ("username", AttributeValue::S("_metadata".into())),
            ("displayName", AttributeValue::S("Legacy".into())),
            (
                "createdAt",
                AttributeValue::S("2025-01-01T00:00:00.000Z".into()),
            ),
            ("isArchived", AttributeValue::Bool(false)),
            ("userCount", AttributeValue::N("2".into())),
            ("tablesPartition", AttributeValue::S("TABLES".into())),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        api.client
            .put_item()
            .table_name(&api.table_name)
            .set_item(Some(metadata))
            .send()
            .await
            .expect("legacy metadata");
        assert_eq!(api.items_of("legacy").await, 3);
        assert_eq!(api.get("/tables/legacy").await.body["userCount"], json!(2));

        for index in 0..12 {
            let reply = api.put_user("legacy", &format!("new-{index:02}"), 1).await;
            assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {:?}", reply.body);
            assert_eq!(reply.body["createdNew"], true);
        }
        let updated = api.put_user("legacy", "user-0000", 5).await;
        assert_eq!(updated.body["createdNew"], false, "{:?}", updated.body);
        assert_eq!(
            api.get("/tables/legacy").await.body["userCount"],
            json!(14),
            "{mode:?}: the legacy count plus one per new user"
        );
        let listed = api.get("/tables").await.body["tables"][0].clone();
        assert_eq!(listed["tableId"], "legacy");
        assert_eq!(listed["userCount"], json!(14), "{mode:?}: {listed}");
        let counters = api.items_of("legacy").await - 1 - 14;
        assert!(
            (1..=i32::from(USER_COUNT_SHARDS)).contains(&counters),
            "{mode:?}: counters were created as they were picked: {counters}"
        );

        let deleted = api.delete("/tables/legacy").await;
        assert_eq!(
            deleted.body["deletedUsers"],
            json!(14),
            "{:?}",
            deleted.body
        );
        assert_eq!(
            api.all_items_of("legacy").await,
            0,
            "the counters and ranks went too"
        );
    }
}

#[tokio::test]
async fn numbers_are_taken_exactly_whatever_their_spelling() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    api.create_table("exact").await;
    for (spelling, stored) in [
        ("9007199254740991.0", 9_007_199_254_740_991_u64),
        ("9007199254740991e0", 9_007_199_254_740_991),
        ("9.007199254740991e15", 9_007_199_254_740_991),
        ("9007199254740990.000", 9_007_199_254_740_990),
        ("5E2", 500),
        ("-0", 0),
    ] {
        let body = format!(r#"{{"submissionCount": {spelling}, "totalCount": 1}}"#);
        let reply = api.put("/tables/exact/users/ann", &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{spelling}: {:?}", reply.body);
        assert_eq!(reply.body["submissionCount"], stored, "{spelling}");
        let read = api.get("/tables/exact/users/ann").await;
        assert_eq!(read.body["submissionCount"], stored, "{spelling}");
    }
    for spelling in [
        "9007199254740991.5",
        "9007199254740992",
        "9007199254740992.0",
        "1e16",
        "1e400",
        "0.5",
        "-1",
        "1e-400",
    ] {
        let body = format!(r#"{{"submissionCount": {spelling}, "totalCount": 1}}"#);
        let reply = api.put("/tables/exact/users/ann", &body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{spelling}: {:?}",
            reply.body
        );
        assert!(
            reply.error().contains("submissionCount"),
            "{spelling}: the error names the field: {:?}",
            reply.body
        );
    }
}
