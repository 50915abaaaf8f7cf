//! A legacy Terraform deployment taken over in place.

use super::*;

#[tokio::test]
async fn a_legacy_terraform_deployment_is_taken_over_in_place() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
        KeyType, Projection, ProjectionType, ScalarAttributeType,
    };
    let account = Account::bootstrapped().await;
    let config = &account.config;
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let table = &names("dev").table;
    let key = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .expect("key")
    };
    let string = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute")
    };
    dynamodb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("tableId", KeyType::Hash))
        .key_schema(key("username", KeyType::Range))
        .attribute_definitions(string("tableId"))
        .attribute_definitions(string("username"))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("byUser")
                .key_schema(key("username", KeyType::Hash))
                .key_schema(key("tableId", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("index"),
        )
        .send()
        .await
        .expect("legacy table");
    let s = |value: &str| AttributeValue::S(value.to_owned());
    let n = |value: &str| AttributeValue::N(value.to_owned());
    let legacy_items = vec![
        vec![
            ("tableId", s("t-old")),
            ("username", s("_metadata")),
            ("displayName", s("Old class")),
            ("createdAt", s("2024-01-01T00:00:00")),
            ("isArchived", AttributeValue::Bool(false)),
            ("userCount", n("6")),
        ],
        vec![
            ("tableId", s("t-old")),
            ("username", s("alice")),
            ("submissionCount", n("5")),
            ("totalCount", n("7")),
            ("lastUpdated", s("2024-01-02T00:00:00")),
        ],
        vec![
            ("tableId", s("t-old")),
            ("username", s("bob")),
            ("submissionCount", n("9")),
            ("totalCount", n("9")),
            ("lastUpdated", s("2024-01-03T00:00:00")),
        ],
        vec![
            ("tableId", s("t-new")),
            ("username", s("_metadata")),
            ("displayName", s("New class")),
            ("createdAt", s("2024-06-01T00:00:00")),
            ("isArchived", AttributeValue::Bool(false)),
            ("userCount", n("1")),
        ],
        vec![
            ("tableId", s("t-new")),
            ("username", s("carol")),
            ("submissionCount", n("3")),
            ("totalCount", n("4")),
            ("lastUpdated", s("2024-06-02T00:00:00")),
        ],
        // Users of the moral-compass apps, written before ranks existed: a
        // score, a team, both, or (alice above, bob) neither.
        vec![
            ("tableId", s("t-old")),
            ("username", s("dave")),
            ("submissionCount", n("1")),
            ("totalCount", n("1")),
            ("moralCompassScore", n("0.1")),
            ("teamName", s("red")),
            ("lastUpdated", s("2024-01-04T00:00:00")),
        ],
        vec![
            ("tableId", s("t-old")),
            ("username", s("erin")),
            ("submissionCount", n("2")),
            ("totalCount", n("2")),
            ("moralCompassScore", n("0.2")),
            ("teamName", s("red")),
            ("lastUpdated", s("2024-01-05T00:00:00")),
        ],
        vec![
            ("tableId", s("t-old")),
            ("username", s("frank")),
            ("submissionCount", n("4")),
            ("totalCount", n("4")),
            ("moralCompassScore", n("0.25")),
            ("teamName", s("blue")),
            ("lastUpdated", s("2024-01-06T00:00:00")),
        ],
        vec![
            ("tableId", s("t-old")),
            ("username", s("gina")),
            ("submissionCount", n("2")),
            ("totalCount", n("3")),
            ("teamName", s("blue")),
            ("lastUpdated", s("2024-01-07T00:00:00")),
        ],
        // Not users, so never given index keys or ranked: a counter and a
        // sign-in session.
        vec![
            ("tableId", s("t-new")),
            ("username", s("_metadata#count0")),
            ("userCount", n("0")),
        ],
        vec![
            ("tableId", s("session#abc")),
            ("username", s("_session")),
            ("token", s("a.b.c")),
            ("ttl", n("4102444800")),
        ],
    ];
    // Each class's users, as they should be ranked.
    let legacy_users = [
        RankedUser::new("t-old", "alice", 0.0, 5, None),
        RankedUser::new("t-old", "bob", 0.0, 9, None),
        RankedUser::new("t-new", "carol", 0.0, 3, None),
        RankedUser::new("t-old", "dave", 0.1, 1, Some("red")),
        RankedUser::new("t-old", "erin", 0.2, 2, Some("red")),
        RankedUser::new("t-old", "frank", 0.25, 4, Some("blue")),
        RankedUser::new("t-old", "gina", 0.0, 2, Some("blue")),
    ];
    for item in &legacy_items {
        dynamodb
            .put_item()
            .table_name(table)
            .set_item(Some(
                item.iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect(),
            ))
            .send()
            .await
            .expect("legacy item");
    }

    // The legacy function, role, API (named stage, seven routes) and permission.
    let iam = aws_sdk_iam::Client::new(config);
    let role = iam
        .create_role()
        .role_name(&names("dev").lambda_role)
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .expect("legacy role");
    let mut legacy_zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    legacy_zip
        .start_file("app.py", zip::write::SimpleFileOptions::default())
        .expect("entry");
    std::io::Write::write_all(
        &mut legacy_zip,
        b"def handler(event, context):\n    return {}\n",
    )
    .expect("write");
    let legacy_zip = legacy_zip.finish().expect("zip").into_inner();
    let lambda = aws_sdk_lambda::Client::new(config);
    lambda
        .create_function()
        .function_name(&names("dev").function)
        .runtime(aws_sdk_lambda::types::Runtime::Python311)
        .handler("app.handler")
        .role(role.role().map(|r| r.arn()).unwrap_or_default())
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(legacy_zip.into())
                .build(),
        )
        .send()
        .await
        .expect("legacy function");
    let apigateway = aws_sdk_apigatewayv2::Client::new(config);
    let api = apigateway
        .create_api()
        .name(&names("dev").http_api)
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
        .send()
        .await
        .expect("legacy api");
    let api_id = api.api_id().expect("id").to_owned();
    let integration = apigateway
        .create_integration()
        .api_id(&api_id)
        .integration_type(aws_sdk_apigatewayv2::types::IntegrationType::AwsProxy)
        .integration_uri(support::function_arn(&names("dev").function))
        .payload_format_version("2.0")
        .send()
        .await
        .expect("legacy integration");
    for route in [
        "POST /tables",
        "GET /tables",
        "GET /tables/{tableId}",
        "PATCH /tables/{tableId}",
        "GET /tables/{tableId}/users",
        "GET /tables/{tableId}/users/{username}",
        "PUT /tables/{tableId}/users/{username}",
    ] {
        apigateway
            .create_route()
            .api_id(&api_id)
            .route_key(route)
            .target(format!(
                "integrations/{}",
                integration.integration_id().unwrap_or_default()
            ))
            .send()
            .await
            .expect("legacy route");
    }
    apigateway
        .create_stage()
        .api_id(&api_id)
        .stage_name("dev")
        .auto_deploy(true)
        .send()
        .await
        .expect("stage");
    lambda
        .add_permission()
        .function_name(&names("dev").function)
        .statement_id("AllowInvokeFromHttpApi")
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(format!(
            "arn:aws:execute-api:us-east-1:123456789012:{api_id}/*/*"
        ))
        .send()
        .await
        .expect("legacy permission");

    let plan = account.deployer(&["plan", "--env", "dev", "--artifact", "fn.zip"]);
    assert_exit(&plan, 0);
    let shown = String::from_utf8_lossy(&plan.stdout).into_owned();
    for adopted in [
        "~ dynamodb_table.scores",
        "~ lambda_function.api",
        "~ apigatewayv2_api.http",
    ] {
        assert!(
            shown.contains(adopted),
            "{adopted} is updated in place: {shown}"
        );
    }
    assert!(
        shown.contains("\"python3.11\" -> \"provided.al2023\""),
        "{shown}"
    );
    assert!(
        shown.contains("\"app.handler\" -> \"bootstrap\""),
        "{shown}"
    );
    // Two tables and seven users lack index keys (the counter and the
    // session are neither); byRank is added in place and the users ranked.
    assert!(
        shown.contains("~ items_missing_index_keys = 9 -> 0"),
        "{shown}"
    );
    assert!(
        shown.contains("+ \"byRank: tableId (S) / rankKey (S)\""),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("Index byRank is added to {table} in place: no item is replaced; GET /tables/{{tableId}}/users lists from it")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("Backfill: 9 items of {table} lack index keys"))
            && shown.contains("ranks each such user"),
        "{shown}"
    );
    assert!(
        shown.contains("~ iam_role.lambda")
            && shown.contains(&format!(
                "permissions_boundary = (none) -> \"{}\"",
                support::policy_arn(&settings().execution_boundary_name())
            )),
        "the legacy role is given the boundary in place: {shown}"
    );
    assert!(
        !shown.contains("-/+") && !shown.contains("will be destroyed"),
        "nothing replaced: {shown}"
    );
    assert!(
        !shown.contains("+ dynamodb_table.scores") && !shown.contains("+ apigatewayv2_api.http"),
        "{shown}"
    );

    let output = account.deployer(&[
        "-v",
        "apply",
        "--env",
        "dev",
        "--auto-approve",
        "--artifact",
        "fn.zip",
    ]);
    assert_exit(&output, 0);
    assert!(
        text(&output)
            .contains("dynamodb_table.scores: index keys backfilled: 9 items, 7 users ranked"),
        "{}",
        text(&output)
    );
    // Adding indexes and backfilling their keys is within the deploy role's rights.
    account
        .assert_deploy_policy_allows(&logged_calls(&output))
        .await;
    assert_eq!(
        account.api_id("dev").await.as_deref(),
        Some(api_id.as_str()),
        "same API, same URL"
    );
    let role = iam
        .get_role()
        .role_name(&names("dev").lambda_role)
        .send()
        .await
        .expect("role");
    assert!(
        role.role()
            .and_then(|role| role.permissions_boundary())
            .and_then(|boundary| boundary.permissions_boundary_arn())
            .is_some_and(
                |arn| arn.ends_with(&format!(":policy/{}", settings().execution_boundary_name()))
            ),
        "the adopted role is repaired"
    );
    let apis = apigateway.get_apis().send().await.expect("apis");
    assert_eq!(apis.items().len(), 1, "no second API");
    // The integration moved, in place, from $LATEST to the alias live, and the
    // invoke permission with it.
    let integrations = apigateway
        .get_integrations()
        .api_id(&api_id)
        .send()
        .await
        .expect("integrations");
    let uris: Vec<&str> = integrations
        .items()
        .iter()
        .filter_map(|integration| integration.integration_uri())
        .collect();
    assert_eq!(
        uris,
        [format!(
            "{}:live",
            support::function_arn(&names("dev").function)
        )]
    );
    assert_eq!(
        integrations.items()[0].integration_id(),
        integration.integration_id(),
        "the same integration, updated"
    );
    let lambda = aws_sdk_lambda::Client::new(config);
    let live_policy = lambda
        .get_policy()
        .function_name(&names("dev").function)
        .qualifier("live")
        .send()
        .await
        .expect("the alias's resource policy");
    assert!(
        live_policy
            .policy()
            .is_some_and(|policy| policy.contains("apigateway.amazonaws.com"))
    );
    let unqualified = lambda
        .get_policy()
        .function_name(&names("dev").function)
        .send()
        .await;
    // (moto keeps one policy per function whatever the qualifier, so the
    // statements are told apart by their Resource.)
    let legacy_resource = format!(
        "\"Resource\": \"{}\"",
        support::function_arn(&names("dev").function)
    );
    assert!(
        unqualified.as_ref().map_or(true, |output| !output
            .policy()
            .is_some_and(|policy| policy.contains(&legacy_resource))),
        "the legacy unqualified statement is gone: {unqualified:?}"
    );

    // Every item is still there with its original attributes, plus the index keys.
    for item in &legacy_items {
        let key: std::collections::HashMap<String, AttributeValue> = item
            .iter()
            .take(2)
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let stored = dynamodb
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .send()
            .await
            .expect("get")
            .item
            .expect("item kept");
        for (name, value) in item {
            assert_eq!(stored.get(*name), Some(value), "{name} unchanged");
        }
    }
    // No other item but the derived rank items: each user's rank entry, the
    // classes' buckets and teams.
    let all = dynamodb
        .scan()
        .table_name(table)
        .consistent_read(true)
        .send()
        .await
        .expect("scan");
    let (derived, others): (Vec<_>, Vec<_>) = all.items().iter().partition(|item| {
        item.get("username")
            .and_then(|name| name.as_s().ok())
            .is_some_and(|name| schema::ranking::is_derived(name))
    });
    assert_eq!(others.len(), legacy_items.len(), "{others:?}");
    assert!(!derived.is_empty());
    // The counter and the session were left as they were.
    for (table_id, username) in [("t-new", "_metadata#count0"), ("session#abc", "_session")] {
        let item = others
            .iter()
            .find(|item| {
                item["tableId"].as_s().is_ok_and(|id| id == table_id)
                    && item["username"].as_s().is_ok_and(|name| name == username)
            })
            .expect("kept");
        for attribute in ["leaderboardKey", "rankKey", "rankTeam"] {
            assert!(!item.contains_key(attribute), "{username}: {item:?}");
        }
    }
    assert_ranked_exactly(&dynamodb, table, &legacy_users).await;

    // The API over the adopted table lists the legacy data in the contract's order.
    let store = playground_api::store::Store::new(
        dynamodb.clone(),
        table,
        playground_api::store::NewUserWrite::Transaction,
    );
    let tables = store
        .list_tables(50, &playground_api::store::StartAfter::First)
        .await
        .expect("tables");
    let ids: Vec<&str> = tables.items.iter().map(|t| t.table_id.as_str()).collect();
    assert_eq!(ids, ["t-new", "t-old"]);
    let users = store
        .list_users("t-old", 50, &playground_api::store::StartAfter::First)
        .await
        .expect("users");
    let names: Vec<&str> = users.items.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["frank", "erin", "dave", "bob", "alice", "gina"]);
    assert_eq!(tables.items[1].user_count, 6);

    // A rerun plans nothing, and applying it writes nothing.
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
    emulator::clear_served_requests(account.emulator.endpoint());
    let again = account.apply_dev();
    assert_exit(&again, 0);
    assert!(text(&again).contains("No changes."), "{}", text(&again));
    assert_eq!(account.mutating_requests(), Vec::<String>::new());
    assert_ranked_exactly(&dynamodb, table, &legacy_users).await;
}
