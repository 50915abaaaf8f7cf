//! Sign-in sessions (`POST /sessions`, `GET|PATCH /sessions/{sessionId}`)
//! through the router as Lambda serves it, over the emulator: the legacy
//! contract, their own key space, expiry, refused tokens, and with sign-in on,
//! only the caller's own token.

use crate::support::{self, TestApi, unsigned_token};
use axum::http::StatusCode;
use playground_api::api::access::Policy;
use playground_api::schema::{SESSION_PARTITION_PREFIX, SESSION_SORT_KEY, TIME_TO_LIVE};
use playground_api::store::NewUserWrite;
use serde_json::{Value, json};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A token as a student's ID token looks, expiring at `exp` when given.
fn token(sub: &str, exp: Option<i64>) -> String {
    let mut claims = json!({"sub": sub, "cognito:username": sub, "token_use": "id"});
    if let Some(exp) = exp {
        claims["exp"] = exp.into();
    }
    unsigned_token(&claims)
}

async fn open_api(lifetime_s: i64) -> TestApi {
    TestApi::built(NewUserWrite::Transaction, move |store| {
        playground_api::api::router(store.with_session_lifetime(lifetime_s))
    })
    .await
}

#[tokio::test]
async fn the_legacy_contract_holds_with_sign_in_off() {
    let _turn = support::together().await;
    let api = open_api(720_000).await;
    let first = token("ana", None);
    let created = api
        .post(
            "/sessions",
            &json!({"sessionId": "s-1", "token": first}).to_string(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["sessionId"], "s-1");
    assert!(created.body["message"].is_string());
    let expires_at = created.body["expiresAt"].as_i64().expect("epoch seconds");
    assert!(
        (now() + 720_000 - expires_at).abs() <= 5,
        "{expires_at}: the configured lifetime"
    );

    let read = api.get("/sessions/s-1").await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body, json!({"sessionId": "s-1", "token": first}));

    let second = token("ana", Some(now() + 3_600));
    let refreshed = api
        .patch("/sessions/s-1", &json!({"token": second}).to_string())
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{:?}", refreshed.body);
    assert_eq!(
        refreshed.body["expiresAt"].as_i64(),
        Some(now() + 3_600),
        "the token's exp comes first"
    );
    assert_eq!(api.get("/sessions/s-1").await.body["token"], second);

    // As the legacy handler, a POST replaces a session of the same id.
    let replaced = api
        .post(
            "/sessions",
            &json!({"sessionId": "s-1", "token": first}).to_string(),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::CREATED);
    assert_eq!(api.get("/sessions/s-1").await.body["token"], first);

    assert_eq!(
        api.get("/sessions/never").await.status,
        StatusCode::NOT_FOUND
    );
    let missing = api
        .patch("/sessions/never", &json!({"token": first}).to_string())
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error(), "Session not found or expired");
}

#[tokio::test]
async fn tokens_that_are_not_unexpired_jwts_and_bad_ids_are_refused() {
    let _turn = support::together().await;
    let api = open_api(720_000).await;
    let good = token("ana", None);
    for (body, needle) in [
        (json!({"sessionId": "s", "token": "not-a-jwt"}), "JWT"),
        (json!({"sessionId": "s", "token": "a.b.c"}), "JWT"),
        (
            json!({"sessionId": "s", "token": token("ana", Some(now() - 1))}),
            "expired",
        ),
        (json!({"sessionId": "a b", "token": good}), "sessionId"),
        (json!({"sessionId": "s"}), "token is required"),
        (json!({"token": good}), "sessionId is required"),
        (
            json!({"sessionId": 5, "token": good}),
            "sessionId must be a string",
        ),
    ] {
        let reply = api.post("/sessions", &body.to_string()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(reply.error().contains(needle), "{body}: {:?}", reply.body);
        assert!(
            !reply.body.to_string().contains(&good),
            "an error never echoes a token"
        );
    }
    assert_eq!(
        api.get("/sessions/a%20b").await.status,
        StatusCode::BAD_REQUEST
    );
    // Nothing was stored by any of them.
    let scan = api
        .client
        .scan()
        .table_name(&api.table_name)
        .send()
        .await
        .expect("scan");
    assert_eq!(scan.count(), 0);
}

#[tokio::test]
async fn sessions_have_their_own_key_space_and_a_time_to_live() {
    let _turn = support::together().await;
    let api = open_api(720_000).await;
    api.create_table("class-1").await;
    api.put_user("class-1", "ann", 3).await;
    let exp = now() + 600;
    let created = api
        .post(
            "/sessions",
            &json!({"sessionId": "class-1", "token": token("ann", Some(exp))}).to_string(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);

    let users = api.get("/tables/class-1/users").await;
    let names: Vec<&str> = users.body["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|user| user["username"].as_str())
        .collect();
    assert_eq!(names, ["ann"], "a session is never a user");
    assert_eq!(api.get("/tables/class-1").await.body["userCount"], 1);
    let tables = api.get("/tables").await;
    let ids: Vec<&str> = tables.body["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter_map(|table| table["tableId"].as_str())
        .collect();
    assert_eq!(ids, ["class-1"], "a session is never a table");

    let item = api
        .client
        .get_item()
        .table_name(&api.table_name)
        .key(
            "tableId",
            aws_sdk_dynamodb::types::AttributeValue::S(format!(
                "{SESSION_PARTITION_PREFIX}class-1"
            )),
        )
        .key(
            "username",
            aws_sdk_dynamodb::types::AttributeValue::S(SESSION_SORT_KEY.into()),
        )
        .send()
        .await
        .expect("get item");
    let item = item.item().expect("the session's own item");
    assert_eq!(
        item.get(TIME_TO_LIVE).and_then(|value| value.as_n().ok()),
        Some(&exp.to_string()),
        "DynamoDB's Time to Live sweeps it at its expiry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_gone_before_it_is_swept() {
    let _turn = support::together().await;
    let api = open_api(1).await;
    let created = api
        .post(
            "/sessions",
            &json!({"sessionId": "brief", "token": token("ana", None)}).to_string(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    assert_eq!(
        api.get("/sessions/brief").await.status,
        StatusCode::NOT_FOUND
    );
    let refreshed = api
        .patch(
            "/sessions/brief",
            &json!({"token": token("ana", None)}).to_string(),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::NOT_FOUND);
}

fn person(sub: &str) -> Value {
    json!({"sub": sub, "cognito:username": sub, "email": format!("{sub}@example.org"), "cognito:groups": []})
}

#[tokio::test]
async fn signed_in_only_the_callers_own_token_is_stored() {
    let _turn = support::together().await;
    let api = TestApi::signed_in(
        NewUserWrite::Transaction,
        Policy {
            enabled: true,
            admin_group: "admin".into(),
            public_read: false,
        },
    )
    .await;
    let (ana, bo) = (person("ana"), person("bo"));
    let (ana_token, bo_token) = (unsigned_token(&ana), unsigned_token(&bo));
    let body = |token: &str| json!({"sessionId": "ana-link", "token": token}).to_string();

    let anonymous = api
        .send_as(None, "POST", "/sessions", Some(&body(&ana_token)))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let planted = api
        .send_as(Some(&bo), "POST", "/sessions", Some(&body(&ana_token)))
        .await;
    assert_eq!(planted.status, StatusCode::FORBIDDEN, "{:?}", planted.body);
    let own = api
        .send_as(Some(&ana), "POST", "/sessions", Some(&body(&ana_token)))
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{:?}", own.body);

    // Another user cannot take over a live session's id, nor refresh it.
    let taken = api
        .send_as(Some(&bo), "POST", "/sessions", Some(&body(&bo_token)))
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{:?}", taken.body);
    let hijack = api
        .send_as(
            Some(&bo),
            "PATCH",
            "/sessions/ana-link",
            Some(&json!({"token": bo_token}).to_string()),
        )
        .await;
    assert_eq!(hijack.status, StatusCode::NOT_FOUND);

    // GET is open, even with reads closed: the id is the capability.
    let read = api.send_as(None, "GET", "/sessions/ana-link", None).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["token"], ana_token);

    let refreshed = api
        .send_as(
            Some(&ana),
            "PATCH",
            "/sessions/ana-link",
            Some(&json!({"token": ana_token}).to_string()),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{:?}", refreshed.body);
    let again = api
        .send_as(Some(&ana), "POST", "/sessions", Some(&body(&ana_token)))
        .await;
    assert_eq!(
        again.status,
        StatusCode::CREATED,
        "its owner may replace it"
    );
}
