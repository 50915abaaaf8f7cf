//! DynamoDB round trips per request in steady state, counted by an SDK
//! interceptor on the client the router uses (every attempt counts, retries too).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::{self, TestApi};
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use axum::http::StatusCode;
use playground_api::api::router;
use playground_api::schema::USER_COUNT_SHARDS;
use playground_api::store::{NewUserWrite, Store, create_table_if_missing};

#[derive(Debug, Clone, Default)]
struct RoundTrips(Arc<AtomicUsize>);

impl Intercept for RoundTrips {
    fn name(&self) -> &'static str {
        "RoundTrips"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl RoundTrips {
    fn take(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }
}

async fn counted_api(mode: NewUserWrite) -> (TestApi, RoundTrips) {
    counted_api_deleting(mode, false).await
}

async fn counted_api_deleting(mode: NewUserWrite, allow_delete: bool) -> (TestApi, RoundTrips) {
    let base = support::client().await;
    let table_name = emulator::unique_name("PlaygroundScores-cost");
    create_table_if_missing(&base, &table_name)
        .await
        .expect("create table");
    let counter = RoundTrips::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&emulator::sdk_config().await)
        .interceptor(counter.clone())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let api = TestApi {
        router: router(
            Store::new(client.clone(), table_name.clone(), mode)
                .allowing_table_delete(allow_delete),
        ),
        table_name,
        client,
        stage: support::Stage::Named,
    };
    (api, counter)
}

#[tokio::test]
async fn steady_state_requests_cost_the_documented_round_trips() {
    let _turn = support::together().await;
    for mode in [NewUserWrite::Transaction, NewUserWrite::ConditionalPut] {
        let (api, trips) = counted_api(mode).await;

        let reply = api.post("/tables", r#"{"tableId":"cost"}"#).await;
        assert_eq!(reply.status, StatusCode::CREATED);
        assert_eq!(trips.take(), 1, "POST /tables");

        assert_eq!(api.get("/tables/cost").await.status, StatusCode::OK);
        assert_eq!(trips.take(), 1, "GET /tables/{{id}}");

        // A new user: one failed conditional update, the lookups of its rank
        // bucket and group (in parallel), then the create (with its rank and
        // count).
        assert_eq!(api.put_user("cost", "ann", 1).await.status, StatusCode::OK);
        let new_user = trips.take();
        match mode {
            NewUserWrite::Transaction => assert_eq!(new_user, 4, "PUT new user (transaction)"),
            // The count after the transaction (which checks a counter is open).
            NewUserWrite::ConditionalPut => {
                assert_eq!(new_user, 5, "PUT new user (conditional put)")
            }
        }

        // The update, then (its place moved) the buckets of its old and new
        // places and the transaction that moves it.
        assert_eq!(api.put_user("cost", "ann", 2).await.status, StatusCode::OK);
        assert_eq!(trips.take(), 4, "PUT existing user, place changed");
        // Nothing that ranks it changed: the update alone.
        let same = api
            .put(
                "/tables/cost/users/ann",
                r#"{"submissionCount":2,"totalCount":9}"#,
            )
            .await;
        assert_eq!(same.status, StatusCode::OK);
        assert_eq!(trips.take(), 1, "PUT existing user, same place");

        assert_eq!(
            api.get("/tables/cost/users/ann").await.status,
            StatusCode::OK
        );
        assert_eq!(trips.take(), 1, "GET user");
        assert_eq!(
            api.get("/tables/cost/users/ann?withRank=true").await.body["rank"],
            1
        );
        assert_eq!(
            trips.take(),
            4,
            "GET user with its rank: the user, the groups up to its own, the buckets within its \
             group up to its own, a count within its bucket"
        );
        assert_eq!(
            api.put(
                "/tables/cost/users/ann",
                r#"{"submissionCount":2,"totalCount":9,"teamName":"red"}"#
            )
            .await
            .status,
            StatusCode::OK
        );
        trips.take();
        assert_eq!(
            api.get("/tables/cost/users/ann?withRank=true").await.body["teamRank"],
            1
        );
        assert_eq!(
            trips.take(),
            5,
            "GET user with ranks, in a team: and the teams"
        );
        assert_eq!(api.get("/tables/cost/teams").await.status, StatusCode::OK);
        assert_eq!(trips.take(), 2, "GET teams: table check + the teams");

        assert_eq!(
            api.patch("/tables/cost", r#"{"isArchived":true}"#)
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(trips.take(), 1, "PATCH table");

        assert_eq!(api.get("/tables?limit=10").await.status, StatusCode::OK);
        assert_eq!(
            trips.take(),
            2,
            "GET /tables page of one table: index query + its counters"
        );

        assert_eq!(
            api.get("/tables/cost/users?limit=10").await.status,
            StatusCode::OK
        );
        assert_eq!(
            trips.take(),
            2,
            "GET users page: table check + one index query"
        );

        assert_eq!(api.get("/health").await.status, StatusCode::OK);
        assert_eq!(trips.take(), 1, "GET /health");

        // Bad input costs nothing, and neither does a DELETE where it is not allowed.
        assert_eq!(
            api.put("/tables/cost/users/ann", "{").await.status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            api.delete("/tables/cost").await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            api.get("/tables?limit=0").await.status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(trips.take(), 0, "rejected requests");

        // The counters of a page: one BatchGetItem per 100 (25 tables).
        for index in 0..29 {
            api.create_table(&format!("more-{index:02}")).await;
        }
        trips.take();
        let page = api.get("/tables?limit=30").await;
        assert_eq!(page.body["tables"].as_array().map(Vec::len), Some(30));
        assert_eq!(
            trips.take(),
            1 + (30 * usize::from(USER_COUNT_SHARDS)).div_ceil(100),
            "GET /tables page of 30 tables"
        );
    }
}

#[tokio::test]
async fn delete_costs_a_query_per_100_items_a_batch_write_per_25_users_and_one_for_the_metadata() {
    let _turn = support::together().await;
    let (api, trips) = counted_api_deleting(NewUserWrite::Transaction, true).await;

    // A missing table: the check of its metadata, one query that finds nothing.
    assert_eq!(
        api.delete("/tables/nothing").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(trips.take(), 2, "DELETE of a missing table");
    assert_eq!(
        api.delete("/tables/bad%20id").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(trips.take(), 0, "DELETE with a bad id");

    // Every DELETE of a table that exists first checks it and closes its
    // counters: 1 + 4 calls. Its last request reads what a write may have
    // left of the class's ranks (2 queries) before the metadata goes.
    let close = 1 + usize::from(USER_COUNT_SHARDS);
    let last = 2 + 1;
    // An empty table: closing, the query, one batch write of its (empty)
    // first rank bucket and group (16 shards), then the metadata.
    api.create_table("empty").await;
    trips.take();
    assert_eq!(api.delete("/tables/empty").await.status, StatusCode::OK);
    assert_eq!(
        trips.take(),
        close + 1 + 1 + last,
        "DELETE of a table without users"
    );

    // 30 users and their 30 rank entries, 8 bucket shards and 8 group shards,
    // after the metadata and counters: one page, 76 items in 4 batch writes.
    api.create_table("thirty").await;
    api.seed_users("thirty", 30).await;
    trips.take();
    let reply = api.delete("/tables/thirty").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["deletedUsers"], 30);
    assert_eq!(
        trips.take(),
        close + 1 + 4 + last,
        "DELETE of a table of 30 users"
    );

    // 250 users: 5 + 250 + 250 + 16 + 8 items are six pages; 95 + 100 × 4 +
    // 29 deleted items are 4 + 4 × 4 + 2 batch writes.
    api.create_table("many").await;
    api.seed_users("many", 250).await;
    trips.take();
    assert_eq!(api.delete("/tables/many").await.status, StatusCode::OK);
    assert_eq!(
        trips.take(),
        close + 6 + 22 + last,
        "DELETE of a table of 250 users"
    );

    // The bound: one request reads at most 10 pages (999 users and the
    // metadata) and writes at most 40 batches; the rest takes another request.
    api.create_table("large").await;
    api.seed_users("large", 1_100).await;
    trips.take();
    assert_eq!(
        api.delete("/tables/large").await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        trips.take(),
        close + 10 + 40,
        "the first DELETE of 1,100 users"
    );
    // 5 + 1,100 + 1,100 + 72 items: the second request reads the next 10
    // pages (995 deleted items), the third the 5 kept and the last 287.
    assert_eq!(
        api.delete("/tables/large").await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        trips.take(),
        close + 10 + 40,
        "the second DELETE of 1,100 users"
    );
    assert_eq!(api.delete("/tables/large").await.status, StatusCode::OK);
    assert_eq!(
        trips.take(),
        close + 3 + 12 + last,
        "the third DELETE of 1,100 users"
    );
}
