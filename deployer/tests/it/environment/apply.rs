//! An environment applied from empty and read back, reruns that change nothing, an API that
//! does not answer, an API deleted by hand, and changes made in place.

use super::*;

#[tokio::test]
async fn apply_from_empty_creates_every_resource_and_a_rerun_changes_nothing() {
    let account = Account::bootstrapped().await;
    let output = account.apply_dev();
    assert_exit(&output, 0);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(stdout.contains("Apply complete: 12 added"), "{stdout}");
    let config = &account.config;

    // Table: keys, the function's indexes, on-demand, PITR.
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let table = dynamodb
        .describe_table()
        .table_name(&names("dev").table)
        .send()
        .await
        .expect("table");
    let table = table.table().expect("table");
    let keys: Vec<&str> = table
        .key_schema()
        .iter()
        .map(|k| k.attribute_name())
        .collect();
    assert_eq!(keys, ["tableId", "username"]);
    let mut indexes: Vec<&str> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name())
        .collect();
    indexes.sort_unstable();
    assert_eq!(
        indexes,
        ["byCreatedAt", "byLeaderboard", "byRank", "byUser"]
    );
    let pitr = dynamodb
        .describe_continuous_backups()
        .table_name(&names("dev").table)
        .send()
        .await
        .expect("backups");
    assert_eq!(
        pitr.continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|d| d.point_in_time_recovery_status())
            .map(|s| s.as_str()),
        Some("ENABLED")
    );

    // Execution role, its boundary and its policies.
    let iam = aws_sdk_iam::Client::new(config);
    let role = iam
        .get_role()
        .role_name(&names("dev").lambda_role)
        .send()
        .await
        .expect("role");
    assert_eq!(
        role.role()
            .and_then(|role| role.permissions_boundary())
            .and_then(|boundary| boundary.permissions_boundary_arn()),
        Some(support::policy_arn(&settings().execution_boundary_name()).as_str()),
        "every execution role is capped by the boundary"
    );
    let arns = support::attached_policy_arns(&account.config, &names("dev").lambda_role).await;
    assert_eq!(
        arns,
        [
            support::policy_arn(&names("dev").dynamodb_policy),
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole".to_owned()
        ]
    );
    let version = iam
        .get_policy_version()
        .policy_arn(support::policy_arn(&names("dev").dynamodb_policy))
        .version_id("v1")
        .send()
        .await
        .expect("policy");
    let document = deployer::engine::policy::decode(
        version
            .policy_version()
            .and_then(|v| v.document())
            .unwrap_or_default(),
    )
    .expect("document");
    let document_text = document.to_string();
    assert!(
        document_text.contains(&format!("table/{}", names("dev").table)),
        "{document_text}"
    );
    assert!(
        !document_text.contains("\"*\""),
        "no wildcard resource: {document_text}"
    );
    // Deleting a table reads its partition and deletes in batches: never a
    // scan. (Single items are deleted: a user's old rank entry.)
    assert!(!document_text.contains("Scan"), "{document_text}");
    for action in [
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    ] {
        assert!(document_text.contains(action), "{action}: {document_text}");
    }
    assert!(
        document_text.contains(&format!("table/{}/index/*", names("dev").table)),
        "its indexes, byRank among them: {document_text}"
    );

    // Log group with retention.
    let logs = aws_sdk_cloudwatchlogs::Client::new(config);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix(&names("dev").log_group)
        .send()
        .await
        .expect("log groups");
    assert_eq!(
        groups
            .log_groups()
            .first()
            .and_then(|g| g.retention_in_days()),
        Some(14)
    );

    // Function configuration.
    let function = account.function("dev").await;
    let configuration = function.configuration().expect("configuration");
    assert_eq!(
        configuration.runtime().map(|r| r.as_str()),
        Some("provided.al2023")
    );
    assert_eq!(configuration.handler(), Some("bootstrap"));
    assert_eq!(configuration.memory_size(), Some(256));
    assert_eq!(configuration.timeout(), Some(10));
    assert_eq!(
        configuration.architectures().first().map(|a| a.as_str()),
        Some("x86_64")
    );
    let variables = configuration
        .environment()
        .and_then(|e| e.variables())
        .expect("environment");
    assert_eq!(
        variables.get("TABLE_NAME").map(String::as_str),
        Some(names("dev").table.as_str())
    );
    assert_eq!(
        variables.get("SAFE_CONCURRENCY").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        variables.get("ALLOW_TABLE_DELETE").map(String::as_str),
        Some("false"),
        "deleting tables is off unless the environment's settings turn it on"
    );
    assert_eq!(
        variables.get("CORS_ALLOW_ORIGINS"),
        None,
        "CORS is the HTTP API's, not the function's"
    );
    let artifact = std::fs::read(account.dir.path().join("fn.zip")).expect("artifact");
    assert_eq!(
        configuration.code_sha256(),
        Some(deployer::package::code_sha256(&artifact).as_str())
    );

    // HTTP API: routes, CORS, integration, stage, permission.
    let api_id = account.api_id("dev").await.expect("api exists");
    let apigateway = aws_sdk_apigatewayv2::Client::new(config);
    let routes = apigateway
        .get_routes()
        .api_id(&api_id)
        .send()
        .await
        .expect("routes");
    let mut route_keys: Vec<String> = routes
        .items()
        .iter()
        .filter_map(|r| r.route_key().map(str::to_owned))
        .collect();
    route_keys.sort();
    let mut expected: Vec<String> = playground_api::api::ROUTES
        .iter()
        .map(|r| r.route_key())
        .chain(["$default".to_owned()])
        .collect();
    expected.sort();
    assert_eq!(
        route_keys, expected,
        "every route the function serves, $default for the rest, and no other"
    );
    let api = apigateway
        .get_api()
        .api_id(&api_id)
        .send()
        .await
        .expect("api");
    let cors = api.cors_configuration().expect("cors");
    assert_eq!(cors.allow_origins(), ["*"]);
    assert_eq!(cors.max_age(), Some(600));
    let integrations = apigateway
        .get_integrations()
        .api_id(&api_id)
        .send()
        .await
        .expect("integrations");
    let integration = integrations.items().first().expect("integration");
    assert_eq!(
        integration.integration_uri(),
        Some(format!("{}:live", support::function_arn(&names("dev").function)).as_str())
    );
    assert_eq!(integration.payload_format_version(), Some("2.0"));
    let target = format!(
        "integrations/{}",
        integration.integration_id().unwrap_or_default()
    );
    assert!(
        routes
            .items()
            .iter()
            .all(|r| r.target() == Some(target.as_str()))
    );
    let stages = apigateway
        .get_stages()
        .api_id(&api_id)
        .send()
        .await
        .expect("stages");
    let stage = stages
        .items()
        .iter()
        .find(|s| s.stage_name() == Some("dev"))
        .expect("stage dev");
    assert_eq!(stage.auto_deploy(), Some(true));
    // The default limits: the stage's throttling and the function's reservation.
    let throttling = stage
        .default_route_settings()
        .expect("default route settings");
    assert_eq!(throttling.throttling_rate_limit(), Some(100.0));
    assert_eq!(throttling.throttling_burst_limit(), Some(300));
    assert_eq!(
        account
            .function("dev")
            .await
            .concurrency()
            .and_then(|concurrency| concurrency.reserved_concurrent_executions()),
        Some(100)
    );
    let policy = aws_sdk_lambda::Client::new(config)
        .get_policy()
        .function_name(&names("dev").function)
        .send()
        .await
        .expect("function policy");
    let policy: Value =
        serde_json::from_str(policy.policy().unwrap_or_default()).expect("policy JSON");
    let statement = &policy["Statement"][0];
    assert_eq!(statement["Sid"], "AllowInvokeFromHttpApi");
    assert_eq!(
        statement["Condition"]["ArnLike"]["AWS:SourceArn"],
        format!("arn:aws:execute-api:us-east-1:123456789012:{api_id}/*/*")
    );

    // Outputs.
    let output = account.deployer(&["output", "--env", "dev", "api_base_url"]);
    assert_exit(&output, 0);
    let url = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(url.ends_with("/dev") && url.contains(&api_id), "{url}");

    // Rerun: nothing to change, no mutating call.
    emulator::clear_served_requests(account.emulator.endpoint());
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
    assert_exit(&account.apply_dev(), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());
}

#[tokio::test]
async fn an_apply_whose_api_does_not_answer_fails_after_recording_what_it_did() {
    let account = Account::bootstrapped().await;
    // moto routes no HTTP API traffic, so the API's URL never answers.
    let output = support::run_deployer_checking_health_only(
        account.dir.path(),
        account.emulator.endpoint(),
        &[
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn.zip",
            "--health-check-timeout",
            "2s",
        ],
    );
    assert_exit(&output, 1);
    let shown = text(&output);
    assert!(
        shown.contains("/dev/health did not answer 200 within"),
        "{shown}"
    );
    assert!(
        shown.contains(&names("dev").log_group),
        "names the function's logs: {shown}"
    );
    assert!(shown.contains("--skip-health-check"), "{shown}");
    // Everything was applied and recorded: the rerun (check skipped) has nothing to do.
    let rerun = account.apply_dev();
    assert_exit(&rerun, 0);
    assert!(text(&rerun).contains("No changes."), "{}", text(&rerun));
}

#[tokio::test]
async fn an_api_deleted_by_hand_is_recreated_and_the_permission_follows_in_the_same_apply() {
    let account = Account::bootstrapped().await;
    assert_exit(&account.apply_dev(), 0);
    let old_id = account.api_id("dev").await.expect("api");
    aws_sdk_apigatewayv2::Client::new(&account.config)
        .delete_api()
        .api_id(&old_id)
        .send()
        .await
        .expect("delete the API out of band");

    let plan = account.deployer(&["plan", "--env", "dev", "--artifact", "fn.zip"]);
    let shown = text(&plan);
    assert!(shown.contains("+ apigatewayv2_api.http"), "{shown}");
    assert!(
        shown.contains("~ lambda_permission.http_api") && shown.contains("-> (known after apply)"),
        "the permission's source ARN is planned as unknown, not kept: {shown}"
    );
    assert_exit(&account.apply_dev(), 0);
    let new_id = account.api_id("dev").await.expect("api recreated");
    assert_ne!(new_id, old_id);
    let policy = aws_sdk_lambda::Client::new(&account.config)
        .get_policy()
        .function_name(&names("dev").function)
        .send()
        .await
        .expect("function policy");
    let policy: Value =
        serde_json::from_str(policy.policy().unwrap_or_default()).expect("policy JSON");
    assert_eq!(
        policy["Statement"][0]["Condition"]["ArnLike"]["AWS:SourceArn"],
        format!("arn:aws:execute-api:us-east-1:123456789012:{new_id}/*/*")
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
}

#[tokio::test]
async fn changes_update_only_what_changed() {
    let account = Account::bootstrapped().await;
    assert_exit(&account.apply_dev(), 0);
    let api_id = account.api_id("dev").await;

    let plan = account.deployer(&[
        "--var",
        "memory_mb=512",
        "plan",
        "--env",
        "dev",
        "--artifact",
        "fn.zip",
        "--detailed-exitcode",
    ]);
    assert_exit(&plan, 2);
    let shown = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        shown.contains("~ memory_mb") && shown.contains("256 -> 512"),
        "{shown}"
    );
    assert!(
        shown.contains("Plan: 0 to add, 2 to change, 0 to destroy."),
        "only the function and its release: {shown}"
    );
    assert!(
        text(&plan).contains("Release: publish version 2 and move live from 1 to 2."),
        "{}",
        text(&plan)
    );
    assert_exit(
        &account.deployer(&[
            "--var",
            "memory_mb=512",
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn.zip",
        ]),
        0,
    );
    assert_eq!(
        account
            .function("dev")
            .await
            .configuration()
            .and_then(|c| c.memory_size()),
        Some(512)
    );

    account.write_artifact("fn2.zip", &executable(X86_64, b"v2"));
    let plan = account.deployer(&[
        "--var",
        "memory_mb=512",
        "plan",
        "--env",
        "dev",
        "--artifact",
        "fn2.zip",
    ]);
    let shown = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        shown.contains("~ code_sha256") && !shown.contains("memory_mb"),
        "only the code: {shown}"
    );
    assert!(
        shown.contains("Plan: 0 to add, 2 to change, 0 to destroy."),
        "{shown}"
    );
    assert!(
        text(&plan).contains("Release: publish version 3 and move live from 2 to 3."),
        "{}",
        text(&plan)
    );
    assert_exit(
        &account.deployer(&[
            "--var",
            "memory_mb=512",
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn2.zip",
        ]),
        0,
    );
    let fn2 = std::fs::read(account.dir.path().join("fn2.zip")).expect("artifact");
    assert_eq!(
        account
            .function("dev")
            .await
            .configuration()
            .and_then(|c| c.code_sha256()),
        Some(deployer::package::code_sha256(&fn2).as_str())
    );

    let origins = "cors_allow_origins=https://class.example";
    let plan = account.deployer(&[
        "--var",
        "memory_mb=512",
        "--var",
        origins,
        "plan",
        "--env",
        "dev",
        "--artifact",
        "fn2.zip",
    ]);
    let shown = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(shown.contains("~ cors"), "{shown}");
    assert_exit(
        &account.deployer(&[
            "--var",
            "memory_mb=512",
            "--var",
            origins,
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn2.zip",
        ]),
        0,
    );
    let api = aws_sdk_apigatewayv2::Client::new(&account.config)
        .get_api()
        .api_id(api_id.clone().expect("api"))
        .send()
        .await
        .expect("api");
    assert_eq!(
        api.cors_configuration().map(|c| c.allow_origins().to_vec()),
        Some(vec!["https://class.example".to_owned()])
    );
    assert_eq!(
        account.api_id("dev").await,
        api_id,
        "the API (and its URL) is kept"
    );
}
