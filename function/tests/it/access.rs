//! Who may write what, through the router as Lambda serves it, with the claims
//! API Gateway's JWT authorizer passes (`requestContext.authorizer.jwt.claims`):
//! owners recorded, self-only score writes, owner-or-admin table changes,
//! tables from before sign-in left to admins, 401 and 403 as JSON errors.

use crate::support::{self, TestApi};
use axum::http::StatusCode;
use playground_api::api::access::Policy;
use playground_api::store::NewUserWrite;
use serde_json::{Value, json};

fn claims(sub: &str, username: &str, groups: &[&str]) -> Value {
    json!({"sub": sub, "cognito:username": username, "email": format!("{username}@example.org"), "cognito:groups": groups})
}

async fn signed_in(public_read: bool) -> TestApi {
    TestApi::signed_in(
        NewUserWrite::Transaction,
        Policy {
            enabled: true,
            admin_group: "admin".into(),
            public_read,
        },
    )
    .await
}

#[tokio::test]
async fn owners_self_and_admins_write_what_the_rules_allow() {
    let _turn = support::together().await;
    let api = signed_in(true).await;
    let teacher = claims("sub-teacher", "teacher", &["teachers"]);
    let ana = claims("sub-ana", "ana", &[]);
    let bo = claims("sub-bo", "bo", &[]);
    let admin = claims("sub-root", "root", &["admin"]);
    let scores = Some(r#"{"submissionCount": 3, "totalCount": 4}"#);

    let anonymous = api
        .send_as(None, "POST", "/tables", Some(r#"{"tableId":"class-1"}"#))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(
        anonymous.error().contains("Authorization: Bearer"),
        "{:?}",
        anonymous.body
    );
    let created = api
        .send_as(
            Some(&teacher),
            "POST",
            "/tables",
            Some(r#"{"tableId":"class-1"}"#),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let metadata = api
        .client
        .get_item()
        .table_name(&api.table_name)
        .key(
            "tableId",
            aws_sdk_dynamodb::types::AttributeValue::S("class-1".into()),
        )
        .key(
            "username",
            aws_sdk_dynamodb::types::AttributeValue::S("_metadata".into()),
        )
        .send()
        .await
        .expect("metadata");
    let item = metadata.item().expect("the table");
    assert_eq!(
        item["ownerSub"].as_s().ok().map(String::as_str),
        Some("sub-teacher")
    );
    assert_eq!(
        item["ownerPrincipal"].as_s().ok().map(String::as_str),
        Some("teacher")
    );
    assert_eq!(
        item["ownerEmail"].as_s().ok().map(String::as_str),
        Some("teacher@example.org")
    );

    // Reads are public here.
    assert_eq!(
        api.send_as(None, "GET", "/tables/class-1", None)
            .await
            .status,
        StatusCode::OK
    );

    // Scores: self, the owner and an admin; not another student, not anonymous.
    let path = "/tables/class-1/users/ana";
    for (who, expected) in [
        (Some(&ana), StatusCode::OK),
        (Some(&bo), StatusCode::FORBIDDEN),
        (Some(&teacher), StatusCode::OK),
        (Some(&admin), StatusCode::OK),
        (None, StatusCode::UNAUTHORIZED),
    ] {
        let reply = api.send_as(who, "PUT", path, scores).await;
        assert_eq!(reply.status, expected, "{who:?}: {:?}", reply.body);
    }
    let refused = api.send_as(Some(&bo), "PUT", path, scores).await;
    assert!(
        refused.error().contains("signed in as bo"),
        "{:?}",
        refused.body
    );
    assert!(!refused.body.to_string().contains("eyJ"), "no token echoed");
    assert_eq!(api.get("/tables/class-1").await.body["userCount"], 1);

    // Table changes: the owner and an admin.
    let rename = Some(r#"{"displayName": "Renamed"}"#);
    for (who, expected) in [
        (Some(&bo), StatusCode::FORBIDDEN),
        (Some(&ana), StatusCode::FORBIDDEN),
        (Some(&teacher), StatusCode::OK),
        (Some(&admin), StatusCode::OK),
        (None, StatusCode::UNAUTHORIZED),
    ] {
        let reply = api.send_as(who, "PATCH", "/tables/class-1", rename).await;
        assert_eq!(reply.status, expected, "{who:?}: {:?}", reply.body);
    }
    assert_eq!(
        api.send_as(Some(&bo), "DELETE", "/tables/class-1", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // A table from before sign-in has no owner: admins only.
    let legacy = api.post("/tables", r#"{"tableId":"legacy"}"#).await;
    assert_eq!(legacy.status, StatusCode::UNAUTHORIZED, "sign-in is on");
    playground_api::store::Store::new(
        api.client.clone(),
        api.table_name.clone(),
        NewUserWrite::Transaction,
    )
    .create_table("legacy", "Legacy", "2024-01-01T00:00:00.000Z")
    .await
    .expect("a table made before sign-in");
    let reply = api
        .send_as(Some(&teacher), "PATCH", "/tables/legacy", rename)
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.error().contains("no owner"), "{:?}", reply.body);
    assert_eq!(
        api.send_as(Some(&admin), "PATCH", "/tables/legacy", rename)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api.send_as(Some(&ana), "PUT", "/tables/legacy/users/ana", scores)
            .await
            .status,
        StatusCode::OK,
        "a student still writes their own scores"
    );
    assert_eq!(
        api.send_as(Some(&admin), "DELETE", "/tables/class-1", None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn with_public_reads_off_reads_need_sign_in_too() {
    let _turn = support::together().await;
    let api = signed_in(false).await;
    let teacher = claims("sub-teacher", "teacher", &[]);
    assert_eq!(
        api.send_as(
            Some(&teacher),
            "POST",
            "/tables",
            Some(r#"{"tableId":"c"}"#)
        )
        .await
        .status,
        StatusCode::CREATED
    );
    for path in [
        "/tables",
        "/tables/c",
        "/tables/c/users",
        "/tables/c/users/ana",
    ] {
        let anonymous = api.send_as(None, "GET", path, None).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{path}");
        let signed = api.send_as(Some(&teacher), "GET", path, None).await;
        assert_ne!(signed.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    assert_eq!(
        api.send_as(None, "GET", "/health", None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn without_sign_in_nothing_changes() {
    let _turn = support::together().await;
    let api = TestApi::new(NewUserWrite::Transaction).await;
    let created = api
        .send_as(None, "POST", "/tables", Some(r#"{"tableId":"open"}"#))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let stranger = claims("sub-x", "x", &[]);
    assert_eq!(
        api.send_as(
            Some(&stranger),
            "PUT",
            "/tables/open/users/ana",
            Some(r#"{"submissionCount":1,"totalCount":1}"#)
        )
        .await
        .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn group_names_are_whole_names_never_split_on_commas_or_spaces() {
    let _turn = support::together().await;
    let api = signed_in(true).await;
    let teacher = claims("sub-teacher", "teacher", &[]);
    let created = api
        .send_as(
            Some(&teacher),
            "POST",
            "/tables",
            Some(r#"{"tableId":"guarded"}"#),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let rename = Some(r#"{"displayName":"Taken over"}"#);
    for groups in [
        &["teachers,admin"][..],
        &["x admin"],
        &["admin staff"],
        &["[admin]"],
        &["Admin"],
    ] {
        let pretender = claims("sub-p", "pretender", groups);
        let reply = api
            .send_as(Some(&pretender), "PATCH", "/tables/guarded", rename)
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{groups:?}");
    }
    let admin = claims("sub-root", "root", &["teachers", "admin"]);
    let reply = api
        .send_as(Some(&admin), "PATCH", "/tables/guarded", rename)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
}
