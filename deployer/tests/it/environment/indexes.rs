//! The scores table's indexes: a no-op plan that costs the same at any size, and an index
//! rebuild shown as destroy and create, an unknown index kept.

use super::*;

/// Write `count` user items with their `leaderboardKey` into `table` (not
/// ranked: a no-op plan reads no item, which is what they are for).
async fn put_indexed_users(config: &aws_config::SdkConfig, table: &str, count: usize) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let items = (0..count)
        .map(|index| {
            let name = format!("student-{index:05}");
            [
                ("tableId", AttributeValue::S("class-1".into())),
                ("username", AttributeValue::S(name.clone())),
                ("submissionCount", AttributeValue::N("1".into())),
                ("totalCount", AttributeValue::N("1".into())),
                (
                    "lastUpdated",
                    AttributeValue::S("2026-01-01T00:00:00.000Z".into()),
                ),
                (
                    "leaderboardKey",
                    AttributeValue::S(playground_api::schema::leaderboard_key(1, &name)),
                ),
            ]
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect()
        })
        .collect();
    emulator::put_items(&aws_sdk_dynamodb::Client::new(config), table, items).await;
}

/// The operations (service and name) `args` makes, in order.
fn operations(account: &Account, args: &[&str]) -> Vec<String> {
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(&account.deployer(args), 0);
    emulator::served_requests(account.emulator.endpoint())
        .iter()
        .map(emulator::ServedRequest::describe)
        .collect()
}

#[tokio::test]
async fn a_no_op_plan_costs_the_same_at_ten_items_and_at_ten_thousand() {
    let account = Account::bootstrapped().await;
    assert_exit(&account.apply_dev(), 0);
    let apply_stage = [
        "apply",
        "--env",
        "stage",
        "--auto-approve",
        "--artifact",
        "fn.zip",
    ];
    assert_exit(&account.deployer(&apply_stage), 0);
    put_indexed_users(&account.config, &names("dev").table, 10).await;
    put_indexed_users(&account.config, &names("stage").table, 10_000).await;
    let plan = |environment: &'static str| {
        operations(
            &account,
            &[
                "plan",
                "--env",
                environment,
                "--detailed-exitcode",
                "--artifact",
                "fn.zip",
            ],
        )
    };
    // The same calls, whatever their concurrent order, with the names and ids
    // of each environment set aside.
    let normalized = |calls: Vec<String>, environment: &str, api: &str| {
        let mut calls: Vec<String> = calls
            .into_iter()
            .map(|call| {
                call.replace(&format!("-{environment}-"), "-E-")
                    .replace(&format!("/{environment}/"), "/E/")
                    .replace(api, "API")
            })
            .collect();
        calls.sort();
        calls
    };
    let dev_api = account.api_id("dev").await.expect("dev api");
    let stage_api = account.api_id("stage").await.expect("stage api");
    let small = normalized(plan("dev"), "dev", &dev_api);
    let large = normalized(plan("stage"), "stage", &stage_api);
    assert_eq!(small, large, "the same calls at 10 and at 10,000 items");
    assert!(
        !small.iter().any(|call| call.contains("Scan")),
        "a recorded backfill is not counted again: {small:?}"
    );
}

#[tokio::test]
async fn an_index_rebuild_is_shown_as_destroy_and_create_and_an_unknown_index_is_kept() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, CreateGlobalSecondaryIndexAction, DeleteGlobalSecondaryIndexAction,
        GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType, Projection, ProjectionType,
        ScalarAttributeType,
    };
    let account = Account::bootstrapped().await;
    assert_exit(&account.apply_dev(), 0);
    let dynamodb = aws_sdk_dynamodb::Client::new(&account.config);
    let table = &names("dev").table;
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("key")
    };
    let definition = |name: &str, kind: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .expect("definition")
    };
    let add = |name: &str, hash: &str, range: &str, range_type: ScalarAttributeType| {
        let dynamodb = dynamodb.clone();
        let (name, hash, range) = (name.to_owned(), hash.to_owned(), range.to_owned());
        async move {
            // Every key attribute of the table, plus the new index's.
            let mut definitions: Vec<AttributeDefinition> = dynamodb
                .describe_table()
                .table_name(table)
                .send()
                .await
                .expect("table")
                .table()
                .map(|t| t.attribute_definitions().to_vec())
                .unwrap_or_default();
            definitions.retain(|known| known.attribute_name() != range);
            for (name, kind) in [(&hash, ScalarAttributeType::S), (&range, range_type)] {
                if !definitions
                    .iter()
                    .any(|known| known.attribute_name() == name.as_str())
                {
                    definitions.push(definition(name, kind));
                }
            }
            dynamodb
                .update_table()
                .table_name(table)
                .set_attribute_definitions(Some(definitions))
                .global_secondary_index_updates(
                    GlobalSecondaryIndexUpdate::builder()
                        .create(
                            CreateGlobalSecondaryIndexAction::builder()
                                .index_name(&name)
                                .key_schema(key(&hash, KeyType::Hash))
                                .key_schema(key(&range, KeyType::Range))
                                .projection(
                                    Projection::builder()
                                        .projection_type(ProjectionType::All)
                                        .build(),
                                )
                                .build()
                                .expect("index"),
                        )
                        .build(),
                )
                .send()
                .await
                .expect("add index");
        }
    };
    // Someone rebuilds byRank and byLeaderboard on other keys, and adds an
    // index of their own.
    for index in ["byRank", "byLeaderboard"] {
        dynamodb
            .update_table()
            .table_name(table)
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder()
                    .delete(
                        DeleteGlobalSecondaryIndexAction::builder()
                            .index_name(index)
                            .build()
                            .expect("delete"),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("drop the index");
    }
    add("byRank", "tableId", "lastUpdated", ScalarAttributeType::S).await;
    add(
        "byLeaderboard",
        "tableId",
        "submissionCount",
        ScalarAttributeType::N,
    )
    .await;
    add(
        "teacherIndex",
        "username",
        "lastUpdated",
        ScalarAttributeType::S,
    )
    .await;

    let plan = account.deployer(&["plan", "--env", "dev", "--artifact", "fn.zip"]);
    assert_exit(&plan, 0);
    let shown = text(&plan);
    assert!(
        shown.contains("- \"byLeaderboard: tableId (S) / submissionCount (N)\"")
            && shown.contains("+ \"byLeaderboard: tableId (S) / leaderboardKey (S)\""),
        "a rebuild is a destroy and a create of the index: {shown}"
    );
    assert!(
        shown.contains("- \"byRank: tableId (S) / lastUpdated (S)\"")
            && shown.contains("+ \"byRank: tableId (S) / rankKey (S)\""),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("Index byRank of {} is destroyed and created again (its keys change): until the new one is ACTIVE, GET /tables/{{tableId}}/users fails", names("dev").table)),
        "with the window during which the listing fails: {shown}"
    );
    assert!(
        shown.contains(&format!("Index byLeaderboard of {} is destroyed and created again (its keys change); the API reads no listing from it now, but a release rolled back to one from before byRank lists GET /tables/{{tableId}}/users from it", names("dev").table)),
        "byLeaderboard serves only a rollback: {shown}"
    );
    assert!(
        shown.contains("Kept: index teacherIndex") && !shown.contains("- \"teacherIndex"),
        "an unknown index is kept and pointed out: {shown}"
    );
    assert_exit(&account.apply_dev(), 0);
    let index_names = || async {
        dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .expect("table")
            .table()
            .map(|t| {
                let mut names: Vec<String> = t
                    .global_secondary_indexes()
                    .iter()
                    .filter_map(|index| index.index_name().map(str::to_owned))
                    .collect();
                names.sort();
                names
            })
            .unwrap_or_default()
    };
    assert!(
        index_names().await.contains(&"teacherIndex".to_owned()),
        "never deleted by default"
    );
    assert_exit(
        &account.deployer(&[
            "plan",
            "--env",
            "dev",
            "--detailed-exitcode",
            "--artifact",
            "fn.zip",
        ]),
        0,
    );
    // --prune-indexes deletes it, as a planned step.
    let pruned = account.deployer(&[
        "plan",
        "--env",
        "dev",
        "--artifact",
        "fn.zip",
        "--prune-indexes",
    ]);
    assert!(
        text(&pruned).contains("- \"teacherIndex: username (S)"),
        "{}",
        text(&pruned)
    );
    assert_exit(
        &account.deployer(&[
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn.zip",
            "--prune-indexes",
        ]),
        0,
    );
    assert_eq!(
        index_names().await,
        ["byCreatedAt", "byLeaderboard", "byRank", "byUser"]
    );
}
