//! `deployer plan|apply|destroy --env` against a private emulator per test:
//! every resource read back through the AWS API, reruns that change nothing,
//! in-place changes, side-by-side environments, and refused artifacts.

mod support;

use std::process::Output;

use emulator::Emulator;
use serde_json::Value;
use support::{RankedUser, assert_exit, assert_ranked_exactly, text};

struct Account {
    emulator: Emulator,
    dir: tempfile::TempDir,
    config: aws_config::SdkConfig,
}

/// A synthetic `bootstrap` for `machine` (62 = x86_64, 183 = aarch64): the
/// emulator does not run code, so a valid ELF header is all the control plane needs.
fn executable(machine: u16, marker: &[u8]) -> Vec<u8> {
    let mut header = vec![0u8; 64];
    header[..4].copy_from_slice(b"\x7fELF");
    header[4] = 2;
    header[5] = 1;
    header[6] = 1;
    header[16..18].copy_from_slice(&3u16.to_le_bytes());
    header[18..20].copy_from_slice(&machine.to_le_bytes());
    header.extend_from_slice(b"GLIBC_2.28\0");
    header.extend_from_slice(marker);
    header
}

impl Account {
    async fn new() -> Self {
        let emulator = Emulator::start().unwrap_or_else(|error| panic!("{error}"));
        let config = emulator::sdk_config_for(emulator.endpoint()).await;
        let account = Self {
            dir: tempfile::tempdir().expect("temp dir"),
            config,
            emulator,
        };
        account.write_artifact("fn.zip", &executable(62, b"v1"));
        support::write_config(account.dir.path());
        let output = account.deployer(&["bootstrap", "--auto-approve"]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        account
    }

    fn write_artifact(&self, name: &str, executable: &[u8]) {
        let artifact = deployer::package::artifact::package(executable, name).expect("package");
        std::fs::write(self.dir.path().join(name), artifact.bytes).expect("write artifact");
    }

    fn deployer(&self, args: &[&str]) -> Output {
        support::run_deployer(self.dir.path(), self.emulator.endpoint(), args)
    }

    /// `deployer apply --env dev --auto-approve --artifact fn.zip`.
    fn apply_dev(&self) -> Output {
        self.deployer(&[
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn.zip",
        ])
    }

    fn mutating_requests(&self) -> Vec<String> {
        support::mutating_requests(self.emulator.endpoint())
    }

    async fn function(
        &self,
        environment: &str,
    ) -> aws_sdk_lambda::operation::get_function::GetFunctionOutput {
        aws_sdk_lambda::Client::new(&self.config)
            .get_function()
            .function_name(format!("aimodelshare-playground-{environment}-api"))
            .send()
            .await
            .expect("function")
    }

    async fn api_id(&self, environment: &str) -> Option<String> {
        let apis = aws_sdk_apigatewayv2::Client::new(&self.config)
            .get_apis()
            .send()
            .await
            .expect("apis");
        apis.items()
            .iter()
            .find(|api| {
                api.name() == Some(&format!("aimodelshare-playground-{environment}-http-api"))
            })
            .and_then(|api| api.api_id().map(str::to_owned))
    }
}

#[tokio::test]
async fn apply_from_empty_creates_every_resource_and_a_rerun_changes_nothing() {
    let account = Account::new().await;
    let output = account.apply_dev();
    assert_exit(&output, 0);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(stdout.contains("Apply complete: 12 added"), "{stdout}");
    let config = &account.config;

    // Table: keys, the function's indexes, on-demand, PITR.
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let table = dynamodb
        .describe_table()
        .table_name("PlaygroundScores-dev")
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
        .table_name("PlaygroundScores-dev")
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
        .role_name("aimodelshare-playground-dev-lambda-role")
        .send()
        .await
        .expect("role");
    assert_eq!(
        role.role()
            .and_then(|role| role.permissions_boundary())
            .and_then(|boundary| boundary.permissions_boundary_arn()),
        Some("arn:aws:iam::123456789012:policy/aimodelshare-playground-execution-boundary"),
        "every execution role is capped by the boundary"
    );
    let attached = iam
        .list_attached_role_policies()
        .role_name("aimodelshare-playground-dev-lambda-role")
        .send()
        .await
        .expect("attached");
    let mut arns: Vec<&str> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    arns.sort_unstable();
    assert_eq!(
        arns,
        [
            "arn:aws:iam::123456789012:policy/aimodelshare-playground-dev-ddb-rw",
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        ]
    );
    let version = iam
        .get_policy_version()
        .policy_arn("arn:aws:iam::123456789012:policy/aimodelshare-playground-dev-ddb-rw")
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
        document_text.contains("table/PlaygroundScores-dev"),
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
        document_text.contains("table/PlaygroundScores-dev/index/*"),
        "its indexes, byRank among them: {document_text}"
    );

    // Log group with retention.
    let logs = aws_sdk_cloudwatchlogs::Client::new(config);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/aws/lambda/aimodelshare-playground-dev-api")
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
        Some("PlaygroundScores-dev")
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
        Some("arn:aws:lambda:us-east-1:123456789012:function:aimodelshare-playground-dev-api:live")
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
        .function_name("aimodelshare-playground-dev-api")
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
    let account = Account::new().await;
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
        shown.contains("/aws/lambda/aimodelshare-playground-dev-api"),
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
    let account = Account::new().await;
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
        .function_name("aimodelshare-playground-dev-api")
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
    let account = Account::new().await;
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

    account.write_artifact("fn2.zip", &executable(62, b"v2"));
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

/// Put `count` user items into `table` (and one metadata item).
async fn put_users(config: &aws_config::SdkConfig, table: &str, count: usize) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    for index in 0..count {
        dynamodb
            .put_item()
            .table_name(table)
            .item("tableId", AttributeValue::S("class-1".into()))
            .item("username", AttributeValue::S(format!("student-{index:03}")))
            .item("submissionCount", AttributeValue::N(index.to_string()))
            .send()
            .await
            .expect("put item");
    }
}

async fn item_count(config: &aws_config::SdkConfig, table: &str) -> i32 {
    aws_sdk_dynamodb::Client::new(config)
        .scan()
        .table_name(table)
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .expect("count")
        .count()
}

#[tokio::test]
async fn destroy_takes_a_final_backup_first_and_restore_then_apply_brings_every_item_back() {
    let account = Account::new().await;
    assert_exit(&account.apply_dev(), 0);
    let config = &account.config;
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let described = dynamodb
        .describe_table()
        .table_name("PlaygroundScores-dev")
        .send()
        .await
        .expect("table");
    assert_eq!(
        described
            .table()
            .and_then(|t| t.deletion_protection_enabled()),
        Some(true),
        "a scores table is deletion-protected"
    );
    put_users(config, "PlaygroundScores-dev", 30).await;

    let destroyed = account.deployer(&["destroy", "--env", "dev", "--auto-approve"]);
    assert_exit(&destroyed, 0);
    let shown = text(&destroyed);
    assert!(
        shown.contains("a final on-demand backup")
            && shown.contains("deletion protection is turned off"),
        "the plan shows the steps: {shown}"
    );
    let arn = shown
        .lines()
        .find_map(|line| line.strip_prefix("Final backup of PlaygroundScores-dev: "))
        .expect("the backup's ARN is printed")
        .trim()
        .to_owned();
    let backup = dynamodb
        .describe_backup()
        .backup_arn(&arn)
        .send()
        .await
        .expect("the backup exists");
    assert_eq!(
        backup
            .backup_description()
            .and_then(|d| d.backup_details())
            .map(|d| d.backup_status().as_str()),
        Some("AVAILABLE")
    );
    assert!(account.api_id("dev").await.is_none());
    // The state history keeps the revision that names the backup.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    );
    let versions = s3
        .list_object_versions()
        .bucket("aimodelshare-tfstate-prod-copilot-2024")
        .prefix("deployer/dev/state.json")
        .send()
        .await
        .expect("versions");
    let mut recorded = false;
    for version in versions.versions() {
        let object = s3
            .get_object()
            .bucket("aimodelshare-tfstate-prod-copilot-2024")
            .key("deployer/dev/state.json")
            .version_id(version.version_id().unwrap_or_default())
            .send()
            .await
            .expect("version");
        let body = object.body.collect().await.expect("body").into_bytes();
        let document: Value = serde_json::from_slice(&body).expect("state JSON");
        recorded |= document["outputs"]["final_backup_arn"] == arn.as_str();
    }
    assert!(recorded, "a state version records {arn}");

    let restored = account.deployer(&["restore", "--env", "dev", "--backup", &arn]);
    assert_exit(&restored, 0);
    assert!(
        text(&restored).contains("deployer apply --env dev"),
        "{}",
        text(&restored)
    );
    assert_eq!(item_count(config, "PlaygroundScores-dev").await, 30);
    let again = account.deployer(&["restore", "--env", "dev", "--backup", &arn]);
    assert_exit(&again, 1);
    assert!(text(&again).contains("exists"), "{}", text(&again));

    assert_exit(&account.apply_dev(), 0);
    let described = dynamodb
        .describe_table()
        .table_name("PlaygroundScores-dev")
        .send()
        .await
        .expect("table");
    assert_eq!(
        described
            .table()
            .and_then(|t| t.deletion_protection_enabled()),
        Some(true),
        "apply converges the restored table"
    );
    // Every item is back; the users (put behind the function's back, so
    // without index keys) were given theirs by the backfill: ranked, with
    // their rank entries and buckets beside them.
    let items = dynamodb
        .scan()
        .table_name("PlaygroundScores-dev")
        .consistent_read(true)
        .send()
        .await
        .expect("scan");
    let users = items
        .items()
        .iter()
        .filter(|item| {
            item.get("username")
                .and_then(|name| name.as_s().ok())
                .is_some_and(|name| !schema::ranking::is_derived(name))
        })
        .count();
    assert_eq!(users, 30, "every item is back");
    let ranked: Vec<RankedUser> = (0..30)
        .map(|index| RankedUser::new("class-1", &format!("student-{index:03}"), 0.0, index, None))
        .collect();
    assert_ranked_exactly(&dynamodb, "PlaygroundScores-dev", &ranked).await;
    assert!(account.api_id("dev").await.is_some());
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

    // --skip-final-backup is the explicit way out: no second backup.
    let skipped = account.deployer(&[
        "destroy",
        "--env",
        "dev",
        "--auto-approve",
        "--skip-final-backup",
    ]);
    assert_exit(&skipped, 0);
    assert!(
        text(&skipped).contains("no final backup"),
        "{}",
        text(&skipped)
    );
    let backups = dynamodb
        .list_backups()
        .table_name("PlaygroundScores-dev")
        .send()
        .await
        .expect("backups");
    assert_eq!(
        backups.backup_summaries().len(),
        1,
        "only the first destroy's"
    );
}

#[tokio::test]
async fn a_final_backup_that_fails_stops_the_destroy_with_nothing_deleted() {
    let account = Account::new().await;
    assert_exit(&account.apply_dev(), 0);
    emulator::configure_faults(
        account.emulator.endpoint(),
        &serde_json::json!({"rules": [{"service": "dynamodb", "operation": "CreateBackup",
                                       "probability": 1.0, "kinds": ["server_error"]}]}),
    );
    emulator::clear_served_requests(account.emulator.endpoint());
    let output = account.deployer(&["destroy", "--env", "dev", "--auto-approve"]);
    assert_exit(&output, 1);
    assert!(text(&output).contains("backing up"), "{}", text(&output));
    assert!(
        !emulator::injected_faults(account.emulator.endpoint()).is_empty(),
        "the backup really failed"
    );
    let deletes: Vec<String> = support::mutating_requests(account.emulator.endpoint())
        .into_iter()
        // The lock's own DeleteItem (its release) is expected; nothing else may go.
        .filter(|call| {
            (call.contains("Delete") && !call.ends_with("DeleteItem"))
                || call.starts_with("DELETE")
                || call.contains("UpdateTable")
        })
        .collect();
    assert!(
        deletes.is_empty(),
        "nothing was deleted or unprotected: {deletes:?}"
    );
    assert!(account.api_id("dev").await.is_some());
    let table = aws_sdk_dynamodb::Client::new(&account.config)
        .describe_table()
        .table_name("PlaygroundScores-dev")
        .send()
        .await
        .expect("the table is still there");
    assert_eq!(
        table.table().and_then(|t| t.deletion_protection_enabled()),
        Some(true)
    );
    emulator::clear_faults(account.emulator.endpoint());
}

#[tokio::test]
async fn destroy_without_state_refuses_and_names_what_it_found() {
    let account = Account::new().await;
    assert_exit(&account.apply_dev(), 0);
    emulator::clear_served_requests(account.emulator.endpoint());
    // A laptop with no state for dev.
    let output = account.deployer(&[
        "destroy",
        "--env",
        "dev",
        "--auto-approve",
        "--state",
        "local",
    ]);
    assert_exit(&output, 1);
    let shown = text(&output);
    assert!(
        shown.contains("no state for it") && shown.contains("dynamodb_table.scores"),
        "{shown}"
    );
    assert!(shown.contains("deployer apply --env dev"), "{shown}");
    assert!(
        support::mutating_requests(account.emulator.endpoint()).is_empty(),
        "nothing was touched"
    );
    assert!(account.api_id("dev").await.is_some());
}

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
    let account = Account::new().await;
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
    put_indexed_users(&account.config, "PlaygroundScores-dev", 10).await;
    put_indexed_users(&account.config, "PlaygroundScores-stage", 10_000).await;
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
    let account = Account::new().await;
    assert_exit(&account.apply_dev(), 0);
    let dynamodb = aws_sdk_dynamodb::Client::new(&account.config);
    let table = "PlaygroundScores-dev";
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
        shown.contains("Index byRank of PlaygroundScores-dev is destroyed and created again (its keys change): until the new one is ACTIVE, GET /tables/{tableId}/users fails"),
        "with the window during which the listing fails: {shown}"
    );
    assert!(
        shown.contains("Index byLeaderboard of PlaygroundScores-dev is destroyed and created again (its keys change); the API reads no listing from it now, but a release rolled back to one from before byRank lists GET /tables/{tableId}/users from it"),
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

#[tokio::test]
async fn environments_are_isolated_and_destroy_leaves_nothing_of_theirs() {
    let account = Account::new().await;
    assert_exit(&account.apply_dev(), 0);
    assert_exit(
        &account.deployer(&[
            "apply",
            "--env",
            "stage",
            "--auto-approve",
            "--artifact",
            "fn.zip",
        ]),
        0,
    );

    let output = account.deployer(&["destroy", "--env", "stage"]);
    assert_exit(&output, 1);
    assert!(
        text(&output).contains("--auto-approve"),
        "no terminal, no approval: {}",
        text(&output)
    );
    let output = account.deployer(&["destroy", "--env", "stage", "--auto-approve"]);
    assert_exit(&output, 0);
    assert!(text(&output).contains("12 destroyed"), "{}", text(&output));

    let config = &account.config;
    let tables = aws_sdk_dynamodb::Client::new(config)
        .list_tables()
        .send()
        .await
        .expect("tables");
    assert!(
        !tables
            .table_names()
            .iter()
            .any(|t| t == "PlaygroundScores-stage")
    );
    assert!(
        tables
            .table_names()
            .iter()
            .any(|t| t == "PlaygroundScores-dev")
    );
    assert!(
        aws_sdk_iam::Client::new(config)
            .get_role()
            .role_name("aimodelshare-playground-stage-lambda-role")
            .send()
            .await
            .is_err()
    );
    assert!(
        aws_sdk_lambda::Client::new(config)
            .get_function()
            .function_name("aimodelshare-playground-stage-api")
            .send()
            .await
            .is_err()
    );
    assert_eq!(account.api_id("stage").await, None);
    assert!(account.api_id("dev").await.is_some());
    let groups = aws_sdk_cloudwatchlogs::Client::new(config)
        .describe_log_groups()
        .log_group_name_prefix("/aws/lambda/aimodelshare-playground-stage")
        .send()
        .await
        .expect("log groups");
    assert!(groups.log_groups().is_empty());
    let state = account.deployer(&["state", "list", "--env", "stage"]);
    assert!(
        String::from_utf8_lossy(&state.stdout).contains("No state for stage"),
        "{}",
        text(&state)
    );

    // dev untouched, bootstrap intact.
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
    assert_exit(
        &account.deployer(&["bootstrap", "--plan", "--detailed-exitcode"]),
        0,
    );
}

#[tokio::test]
async fn bad_artifacts_are_refused_before_any_aws_call() {
    let account = Account::new().await;
    account.write_artifact("arm.zip", &executable(183, b"arm"));
    std::fs::write(account.dir.path().join("not.zip"), b"just text").expect("write");
    let mut empty = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    empty
        .start_file("README", zip::write::SimpleFileOptions::default())
        .expect("entry");
    std::io::Write::write_all(&mut empty, b"no bootstrap here").expect("write");
    std::fs::write(
        account.dir.path().join("nobootstrap.zip"),
        empty.finish().expect("zip").into_inner(),
    )
    .expect("write");

    emulator::clear_served_requests(account.emulator.endpoint());
    for (artifact, needle) in [
        ("arm.zip", "arm64"),
        ("not.zip", "zip"),
        ("nobootstrap.zip", "README"),
        ("missing.zip", "missing.zip"),
    ] {
        let output = account.deployer(&[
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            artifact,
        ]);
        assert_exit(&output, 1);
        assert!(
            text(&output).contains(needle),
            "{artifact}: {}",
            text(&output)
        );
        assert!(
            text(&output).contains("cargo lambda build"),
            "says how to build one: {}",
            text(&output)
        );
    }
    let output = account.deployer(&["apply", "--env", "dev", "--auto-approve"]);
    assert_exit(&output, 1);
    assert!(text(&output).contains("--artifact"), "{}", text(&output));
    assert!(
        emulator::served_requests(account.emulator.endpoint()).is_empty(),
        "no AWS call at all"
    );
}

#[tokio::test]
async fn a_legacy_terraform_deployment_is_taken_over_in_place() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
        KeyType, Projection, ProjectionType, ScalarAttributeType,
    };
    let account = Account::new().await;
    let config = &account.config;
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let table = "PlaygroundScores-dev";
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
        .role_name("aimodelshare-playground-dev-lambda-role")
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
        .function_name("aimodelshare-playground-dev-api")
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
        .name("aimodelshare-playground-dev-http-api")
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
        .send()
        .await
        .expect("legacy api");
    let api_id = api.api_id().expect("id").to_owned();
    let integration = apigateway
        .create_integration()
        .api_id(&api_id)
        .integration_type(aws_sdk_apigatewayv2::types::IntegrationType::AwsProxy)
        .integration_uri(
            "arn:aws:lambda:us-east-1:123456789012:function:aimodelshare-playground-dev-api",
        )
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
        .function_name("aimodelshare-playground-dev-api")
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
        shown.contains("Index byRank is added to PlaygroundScores-dev in place: no item is replaced; GET /tables/{tableId}/users lists from it"),
        "{shown}"
    );
    assert!(
        shown.contains("Backfill: 9 items of PlaygroundScores-dev lack index keys")
            && shown.contains("ranks each such user"),
        "{shown}"
    );
    assert!(
        shown.contains("~ iam_role.lambda")
            && shown.contains("permissions_boundary = (none) -> \"arn:aws:iam::123456789012:policy/aimodelshare-playground-execution-boundary\""),
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
        .role_name("aimodelshare-playground-dev-lambda-role")
        .send()
        .await
        .expect("role");
    assert!(
        role.role()
            .and_then(|role| role.permissions_boundary())
            .and_then(|boundary| boundary.permissions_boundary_arn())
            .is_some_and(|arn| arn.ends_with(":policy/aimodelshare-playground-execution-boundary")),
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
        ["arn:aws:lambda:us-east-1:123456789012:function:aimodelshare-playground-dev-api:live"]
    );
    assert_eq!(
        integrations.items()[0].integration_id(),
        integration.integration_id(),
        "the same integration, updated"
    );
    let lambda = aws_sdk_lambda::Client::new(config);
    let live_policy = lambda
        .get_policy()
        .function_name("aimodelshare-playground-dev-api")
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
        .function_name("aimodelshare-playground-dev-api")
        .send()
        .await;
    // (moto keeps one policy per function whatever the qualifier, so the
    // statements are told apart by their Resource.)
    let legacy_resource = "\"Resource\": \"arn:aws:lambda:us-east-1:123456789012:function:aimodelshare-playground-dev-api\"";
    assert!(
        unqualified.as_ref().map_or(true, |output| !output
            .policy()
            .is_some_and(|policy| policy.contains(legacy_resource))),
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

/// Run `deployer args` on a pseudo-terminal (util-linux `script`), typing `answer`.
fn deployer_on_terminal(account: &Account, args: &str, answer: &str) -> Output {
    use std::io::Write;
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_deployer"));
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(account.dir.path())
        .envs(emulator::aws_env(account.emulator.endpoint()))
        .env_remove("DEPLOYER_ENV")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs the deployer on a terminal");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(answer.as_bytes()).expect("type the answer");
    }
    child.wait_with_output().expect("wait")
}

/// Start `deployer args` on a terminal (util-linux `script`), its keyboard piped.
fn spawn_on_terminal(account: &Account, args: &str) -> std::process::Child {
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_deployer"));
    std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(account.dir.path())
        .envs(emulator::aws_env(account.emulator.endpoint()))
        .env("DEPLOYER_SKIP_HEALTH_CHECK", "true")
        .env("DEPLOYER_SKIP_PRE_TRAFFIC_CHECK", "true")
        .env_remove("DEPLOYER_ENV")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs the deployer on a terminal")
}

/// The lock item of `environment`'s state, when someone holds it.
async fn lock_item(account: &Account, environment: &str) -> Option<String> {
    use aws_sdk_dynamodb::types::AttributeValue;
    aws_sdk_dynamodb::Client::new(&account.config)
        .get_item()
        .table_name("aimodelshare-tf-locks")
        .key(
            "LockID",
            AttributeValue::S(format!(
                "aimodelshare-tfstate-prod-copilot-2024/deployer/{environment}/state.json"
            )),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("read the lock table")
        .item
        .and_then(|item| item.get("Info").and_then(|info| info.as_s().ok()).cloned())
}

/// Wait (up to 30 s) until someone holds `environment`'s lock.
async fn until_locked(account: &Account, environment: &str) -> String {
    for _ in 0..600 {
        if let Some(info) = lock_item(account, environment).await {
            return info;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("nobody took the lock of {environment}");
}

#[tokio::test]
async fn an_apply_that_waited_for_the_lock_plans_again_under_it_and_finds_nothing_to_do() {
    use std::io::Write;
    let account = Account::new().await;
    emulator::clear_served_requests(account.emulator.endpoint());
    // The first apply takes the lock, then waits at its prompt.
    let mut first = spawn_on_terminal(&account, "apply --env dev --artifact fn.zip");
    let held = until_locked(&account, "dev").await;
    assert!(held.contains("deployer apply --env dev"), "{held}");
    // The second plans (the API is still missing), then waits for the lock.
    let endpoint = account.emulator.endpoint().to_owned();
    let dir = account.dir.path().to_path_buf();
    let second = std::thread::spawn(move || {
        support::run_deployer(
            &dir,
            &endpoint,
            &[
                "apply",
                "--env",
                "dev",
                "--auto-approve",
                "--artifact",
                "fn.zip",
                "--lock-timeout",
                "2m",
            ],
        )
    });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    first
        .stdin
        .take()
        .expect("keyboard")
        .write_all(b"yes\n")
        .expect("answer yes");
    let first = first.wait_with_output().expect("first apply");
    assert_exit(&first, 0);
    assert!(
        text(&first).contains("Apply complete: 12 added"),
        "{}",
        text(&first)
    );
    let second = second.join().expect("second apply");
    assert_exit(&second, 0);
    assert!(
        text(&second).contains("No changes."),
        "the second apply planned again under the lock: {}",
        text(&second)
    );
    let created_apis = emulator::served_requests(account.emulator.endpoint())
        .iter()
        .filter(|request| request.method == "POST" && request.path == "/v2/apis")
        .count();
    assert_eq!(created_apis, 1, "the HTTP API was created exactly once");
    assert_eq!(
        lock_item(&account, "dev").await,
        None,
        "the lock is released"
    );
}

#[tokio::test]
async fn ctrl_c_releases_the_lock_of_apply_and_of_destroy() {
    use std::io::Write;
    let account = Account::new().await;
    for (command, environment) in [
        ("apply --env dev --artifact fn.zip", "dev"),
        ("destroy --env dev", "dev"),
    ] {
        if command.starts_with("destroy") {
            assert_exit(&account.apply_dev(), 0);
        }
        let mut run = spawn_on_terminal(&account, command);
        until_locked(&account, environment).await;
        // Ctrl-C on the terminal: SIGINT to the deployer, at its prompt.
        run.stdin
            .take()
            .expect("keyboard")
            .write_all(b"\x03")
            .expect("type Ctrl-C");
        let output = run.wait_with_output().expect("interrupted run");
        assert_ne!(output.status.code(), Some(0), "{}", text(&output));
        assert!(text(&output).contains("interrupt"), "{}", text(&output));
        assert_eq!(
            lock_item(&account, environment).await,
            None,
            "{command}: the lock is released: {}",
            text(&output)
        );
    }
    assert!(
        account.api_id("dev").await.is_some(),
        "nothing was destroyed"
    );
}

#[tokio::test]
async fn destroying_prod_needs_its_name_typed_on_a_terminal() {
    let account = Account::new().await;
    assert_exit(
        &account.deployer(&[
            "apply",
            "--env",
            "prod",
            "--auto-approve",
            "--artifact",
            "fn.zip",
        ]),
        0,
    );

    let cancelled = deployer_on_terminal(&account, "destroy --env prod", "yes\n");
    assert_exit(&cancelled, 1);
    assert!(
        text(&cancelled).contains("Only 'prod' will be accepted"),
        "{}",
        text(&cancelled)
    );
    assert!(
        account.api_id("prod").await.is_some(),
        "'yes' is not enough for prod"
    );

    let destroyed = deployer_on_terminal(&account, "destroy --env prod", "prod\n");
    assert_exit(&destroyed, 0);
    assert!(
        text(&destroyed).contains("12 destroyed"),
        "{}",
        text(&destroyed)
    );
    assert_eq!(account.api_id("prod").await, None);
}

/// A layer zip holding one file with `contents`.
fn layer_zip(contents: &[u8]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .start_file(
            "extensions/marker",
            zip::write::SimpleFileOptions::default(),
        )
        .expect("entry");
    std::io::Write::write_all(&mut writer, contents).expect("write");
    writer.finish().expect("zip").into_inner()
}

impl Account {
    /// The versions of the dev layer (newest first) and the layers the dev
    /// function is configured with.
    async fn layer_state(&self) -> (Vec<(i64, String)>, Vec<String>) {
        let lambda = aws_sdk_lambda::Client::new(&self.config);
        let listed = lambda
            .list_layer_versions()
            .layer_name("aimodelshare-playground-dev-extra")
            .send()
            .await
            .expect("layer versions");
        let versions = listed
            .layer_versions()
            .iter()
            .map(|version| {
                (
                    version.version(),
                    version.layer_version_arn().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let attached = self
            .function("dev")
            .await
            .configuration()
            .map(|configuration| {
                configuration
                    .layers()
                    .iter()
                    .filter_map(|layer| layer.arn().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        (versions, attached)
    }
}

#[tokio::test]
async fn the_optional_layer_is_published_attached_republished_and_destroyed() {
    let account = Account::new().await;
    let zip_v1 = layer_zip(b"one");
    std::fs::write(account.dir.path().join("layer.zip"), &zip_v1).expect("write layer");
    let with_layer = |command: &[&'static str]| -> Vec<&'static str> {
        let mut args = command.to_vec();
        args.extend([
            "--var",
            "use_layer=true",
            "--var",
            "layer_zip_path=layer.zip",
            "--artifact",
            "fn.zip",
        ]);
        args
    };

    let plan = || {
        account.deployer(&with_layer(&[
            "plan",
            "--env",
            "dev",
            "--detailed-exitcode",
        ]))
    };
    let apply = || account.deployer(&with_layer(&["apply", "--env", "dev", "--auto-approve"]));

    let output = apply();
    assert_exit(&output, 0);
    assert!(
        text(&output).contains("Apply complete: 13 added"),
        "{}",
        text(&output)
    );
    let (versions, attached) = account.layer_state().await;
    assert_eq!(versions.len(), 1, "one published version: {versions:?}");
    assert_eq!(
        attached,
        std::slice::from_ref(&versions[0].1),
        "the function uses it"
    );
    let published = aws_sdk_lambda::Client::new(&account.config)
        .get_layer_version()
        .layer_name("aimodelshare-playground-dev-extra")
        .version_number(versions[0].0)
        .send()
        .await
        .expect("layer version");
    assert_eq!(
        published
            .content()
            .and_then(|content| content.code_sha256()),
        Some(deployer::package::code_sha256(&zip_v1).as_str())
    );
    assert_eq!(
        published
            .compatible_runtimes()
            .iter()
            .map(|runtime| runtime.as_str())
            .collect::<Vec<_>>(),
        ["provided.al2023"]
    );
    assert_eq!(
        published
            .compatible_architectures()
            .iter()
            .map(|architecture| architecture.as_str())
            .collect::<Vec<_>>(),
        ["x86_64"]
    );

    // Unchanged zip: nothing to publish, nothing to attach.
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(&plan(), 0);
    assert_exit(&apply(), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    // A new zip publishes the next version and moves the function to it.
    std::fs::write(account.dir.path().join("layer.zip"), layer_zip(b"two")).expect("write");
    let changes = plan();
    assert_exit(&changes, 2);
    let changes = text(&changes);
    assert!(changes.contains("~ lambda_layer.extra"), "{changes}");
    assert!(changes.contains("(known after apply)"), "{changes}");
    assert!(
        changes.contains("0 to add, 3 to change, 0 to destroy"),
        "{changes}"
    );
    assert_exit(&apply(), 0);
    let (versions, attached) = account.layer_state().await;
    assert_eq!(versions.len(), 2, "{versions:?}");
    let newest = versions
        .iter()
        .max_by_key(|(number, _)| *number)
        .expect("newest");
    assert_eq!(
        attached,
        std::slice::from_ref(&newest.1),
        "the function uses the newest"
    );
    assert_exit(&plan(), 0);

    // Turning the layer off detaches it; destroy removes every version.
    assert_exit(&account.apply_dev(), 0);
    let (versions, attached) = account.layer_state().await;
    assert!(attached.is_empty(), "detached: {attached:?}");
    let plan = account.deployer(&["plan", "--env", "dev", "--artifact", "fn.zip"]);
    assert_exit(&plan, 0);
    assert!(
        text(&plan).contains("aimodelshare-playground-dev-extra still has 2 version(s)"),
        "the leftover layer is pointed out: {}",
        text(&plan)
    );
    assert_eq!(versions.len(), 2, "kept until destroy");
    let destroy = account.deployer(&["destroy", "--env", "dev", "--auto-approve"]);
    assert_exit(&destroy, 0);
    assert!(
        text(&destroy).contains("lambda_layer.extra"),
        "{}",
        text(&destroy)
    );
    let listed = aws_sdk_lambda::Client::new(&account.config)
        .list_layer_versions()
        .layer_name("aimodelshare-playground-dev-extra")
        .send()
        .await
        .expect("layer versions");
    assert!(listed.layer_versions().is_empty(), "{listed:?}");
}

#[tokio::test]
async fn a_bad_layer_zip_is_refused_before_any_aws_call() {
    let account = Account::new().await;
    std::fs::write(account.dir.path().join("text.zip"), b"just text").expect("write");
    emulator::clear_served_requests(account.emulator.endpoint());
    for (path, needle) in [("text.zip", "not a zip"), ("absent.zip", "does not exist")] {
        let layer = format!("layer_zip_path={path}");
        for command in [&["plan"][..], &["apply", "--auto-approve"][..]] {
            let mut args = command.to_vec();
            args.extend([
                "--env",
                "dev",
                "--artifact",
                "fn.zip",
                "--var",
                "use_layer=true",
                "--var",
                &layer,
            ]);
            let output = account.deployer(&args);
            assert_exit(&output, 1);
            assert!(text(&output).contains(needle), "{path}: {}", text(&output));
            assert!(
                text(&output).contains(path),
                "names the file: {}",
                text(&output)
            );
        }
    }
    assert!(
        emulator::served_requests(account.emulator.endpoint()).is_empty(),
        "no AWS call at all"
    );
}

/// A workspace shaped like this one (`function/` with the `playground-api`
/// binary) whose function is a few lines, so that the real build path of
/// `apply` without `--artifact` runs in seconds.
fn tiny_workspace(dir: &std::path::Path) {
    let function = dir.join("function/src");
    std::fs::create_dir_all(&function).expect("create function/src");
    std::fs::write(
        dir.join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = [\"function\"]\n",
    )
    .expect("workspace manifest");
    std::fs::write(
        dir.join("function/Cargo.toml"),
        "[package]\nname = \"function\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [[bin]]\nname = \"playground-api\"\npath = \"src/main.rs\"\n",
    )
    .expect("function manifest");
    std::fs::write(
        function.join("main.rs"),
        "fn main() { println!(\"playground\"); }\n",
    )
    .expect("main.rs");
    let lockfile = std::process::Command::new(env!("CARGO"))
        .current_dir(dir)
        .args(["generate-lockfile", "--offline"])
        .output()
        .expect("run cargo generate-lockfile");
    assert!(lockfile.status.success(), "{}", text(&lockfile));
}

#[tokio::test]
async fn apply_without_an_artifact_builds_the_function_and_an_unchanged_build_changes_nothing() {
    let account = Account::new().await;
    let workspace = account.dir.path();
    tiny_workspace(workspace);
    // The nested build gets its own target directory: the one `cargo test`
    // runs from stays locked while the tests run.
    let target = tempfile::tempdir().expect("target dir");
    let apply = || {
        support::run_deployer_with(
            workspace,
            account.emulator.endpoint(),
            &["apply", "--env", "dev", "--auto-approve"],
            &[("CARGO_TARGET_DIR", target.path())],
        )
    };

    let output = apply();
    assert_exit(&output, 0);
    assert!(
        text(&output).contains("building the function: cargo build --release"),
        "{}",
        text(&output)
    );
    let binary = std::fs::read(target.path().join("release/playground-api")).expect("built");
    let expected = deployer::package::artifact::package(&binary, "built").expect("package");
    let deployed = account.function("dev").await;
    assert_eq!(
        deployed
            .configuration()
            .and_then(|configuration| configuration.code_sha256()),
        Some(expected.code_sha256.as_str()),
        "the deployed code is the build, packed deterministically"
    );

    // A second build of unchanged sources packs the same zip: nothing to do.
    emulator::clear_served_requests(account.emulator.endpoint());
    let output = apply();
    assert_exit(&output, 0);
    assert!(text(&output).contains("No changes."), "{}", text(&output));
    assert_eq!(account.mutating_requests(), Vec::<String>::new());
}

/// The IAM actions an SDK call needs (none for GetCallerIdentity).
/// DynamoDB's TransactWriteItems has no action of its own: each part is
/// authorized as its item operation. The call log does not show the parts;
/// the deployer's transactions (ranking a user in the index-key backfill,
/// splitting a full rank bucket) put and update items, and none deletes one
/// or checks a condition alone.
fn iam_actions(service: &str, operation: &str) -> Vec<String> {
    if (service, operation) == ("DynamoDB", "TransactWriteItems") {
        return vec![
            "dynamodb:PutItem".to_owned(),
            "dynamodb:UpdateItem".to_owned(),
        ];
    }
    iam_action(service, operation).into_iter().collect()
}

/// The IAM action an SDK call needs (`None`: none, e.g. GetCallerIdentity).
fn iam_action(service: &str, operation: &str) -> Option<String> {
    let action = match service {
        "STS" if operation == "GetCallerIdentity" => return None,
        "S3" => match operation {
            "HeadBucket" | "ListObjectsV2" => "s3:ListBucket".to_owned(),
            "ListObjectVersions" => "s3:ListBucketVersions".to_owned(),
            "HeadObject" => "s3:GetObject".to_owned(),
            other => format!("s3:{other}"),
        },
        "DynamoDB" => format!("dynamodb:{operation}"),
        "IAM" => format!("iam:{operation}"),
        "Lambda" => format!("lambda:{operation}"),
        "CloudWatch Logs" => format!("logs:{operation}"),
        "CloudWatch" => format!("cloudwatch:{operation}"),
        "Cognito Identity Provider" => format!("cognito-idp:{operation}"),
        // API Gateway's IAM actions are the HTTP methods of its REST API.
        "ApiGatewayV2" => {
            let method = match operation {
                "TagResource" => "POST",
                "UntagResource" => "DELETE",
                op if op.starts_with("Get") => "GET",
                op if op.starts_with("Create") => "POST",
                op if op.starts_with("Update") => "PATCH",
                op if op.starts_with("Delete") => "DELETE",
                op => panic!("no IAM action known for ApiGatewayV2.{op}"),
            };
            format!("apigateway:{method}")
        }
        other => panic!("no IAM action known for {other}.{operation}"),
    };
    Some(action)
}

/// Whether an IAM action pattern (`*` and `?` wildcards, any case) matches.
fn action_matches(pattern: &str, action: &str) -> bool {
    fn matches(pattern: &[u8], text: &[u8]) -> bool {
        match (pattern.first(), text.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                matches(&pattern[1..], text) || (!text.is_empty() && matches(pattern, &text[1..]))
            }
            (Some(b'?'), Some(_)) => matches(&pattern[1..], &text[1..]),
            (Some(p), Some(t)) => p.eq_ignore_ascii_case(t) && matches(&pattern[1..], &text[1..]),
            _ => false,
        }
    }
    matches(pattern.as_bytes(), action.as_bytes())
}

/// The actions a policy document's statements with `effect` name.
fn actions_with_effect(document: &Value, effect: &str) -> Vec<String> {
    let statements = match &document["Statement"] {
        Value::Array(statements) => statements.clone(),
        single => vec![single.clone()],
    };
    statements
        .iter()
        .filter(|statement| statement["Effect"] == effect)
        .flat_map(|statement| match &statement["Action"] {
            Value::String(action) => vec![action.clone()],
            Value::Array(actions) => actions
                .iter()
                .filter_map(|action| action.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// The operations a deployer run logged with `-v`, as `(service, operation)`.
fn logged_calls(output: &Output) -> Vec<(String, String)> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|line| line.strip_prefix(deployer::aws::CALL_LOG_PREFIX))
        .filter_map(|call| call.split_once('.'))
        .map(|(service, operation)| (service.to_owned(), operation.to_owned()))
        .collect()
}

#[test]
fn the_action_mapping_and_matching_are_right() {
    assert_eq!(
        iam_action("S3", "HeadBucket").as_deref(),
        Some("s3:ListBucket")
    );
    assert_eq!(
        iam_action("ApiGatewayV2", "UpdateStage").as_deref(),
        Some("apigateway:PATCH")
    );
    assert_eq!(iam_action("STS", "GetCallerIdentity"), None);
    assert_eq!(
        iam_actions("DynamoDB", "TransactWriteItems"),
        ["dynamodb:PutItem", "dynamodb:UpdateItem"]
    );
    assert!(action_matches("lambda:Get*", "lambda:GetFunction"));
    assert!(action_matches("S3:putobject", "s3:PutObject"));
    assert!(!action_matches("lambda:Get*", "lambda:UpdateFunctionCode"));
    assert!(!action_matches("s3:GetObject", "s3:GetObjectVersion"));
}

/// Every AWS call of an environment's whole life (plan, apply with a layer, a
/// change, output, state, destroy), logged by `-v`, is allowed by the deploy
/// role's policy as bootstrap wrote it into IAM: the role the deploy and
/// destroy workflows assume can do all of it. (Actions only: the emulator
/// cannot evaluate resource patterns.)
#[tokio::test]
async fn the_deploy_role_may_make_every_call_of_an_environments_life() {
    let account = Account::new().await;
    std::fs::write(account.dir.path().join("layer.zip"), layer_zip(b"one")).expect("write layer");
    let layer = [
        "--var",
        "use_layer=true",
        "--var",
        "layer_zip_path=layer.zip",
    ];
    let run = |args: &[&str]| {
        let mut all = vec!["-v"];
        all.extend_from_slice(args);
        let output = account.deployer(&all);
        assert_exit(&output, 0);
        logged_calls(&output)
    };
    let mut calls = Vec::new();
    calls.extend(run(&[
        &["plan", "--env", "dev", "--artifact", "fn.zip"][..],
        &layer,
    ]
    .concat()));
    calls.extend(run(&[
        &[
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn.zip",
        ][..],
        &layer,
    ]
    .concat()));
    std::fs::write(account.dir.path().join("layer.zip"), layer_zip(b"two")).expect("write layer");
    account.write_artifact("fn2.zip", &executable(62, b"v2"));
    calls.extend(run(&[
        &[
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn2.zip",
            "--var",
            "memory_mb=512",
        ][..],
        &layer,
        &[
            "--var",
            "cors_allow_origins=https://example.org",
            "--var",
            "log_retention_days=30",
        ],
        &SIGN_IN_BY_OWN_POOL,
    ]
    .concat()));
    calls.extend(run(&["output", "--env", "dev"]));
    calls.extend(run(&["state", "list", "--env", "dev"]));
    calls.extend(run(&["rollback", "--env", "dev"]));
    calls.extend(run(&["logs", "--env", "dev", "--since", "1h"]));
    calls.extend(run(&["state", "history", "--env", "dev"]));
    calls.extend(run(&[
        &[
            "destroy",
            "--env",
            "dev",
            "--auto-approve",
            "--delete-user-accounts",
        ][..],
        &SIGN_IN_BY_OWN_POOL,
    ]
    .concat()));
    assert!(
        calls
            .iter()
            .any(|(_, operation)| operation == "DeleteUserPool"),
        "the user pool's life is in the call log: {calls:?}"
    );
    assert!(calls.len() > 50, "the call log works: {calls:?}");

    account.assert_deploy_policy_allows(&calls).await;
}

impl Account {
    /// Every call in `calls` is allowed by the deploy role's policy as
    /// bootstrap wrote it into IAM.
    async fn assert_deploy_policy_allows(&self, calls: &[(String, String)]) {
        let document = support::deploy_policy(&self.config).await;
        assert_policy_allows(&document, calls, "the deploy policy");
    }
}

/// The settings of sign-in by the environment's own user pool.
const SIGN_IN_BY_OWN_POOL: [&str; 4] = [
    "--var",
    "auth_create_user_pool=true",
    "--var",
    "auth_callback_urls=https://app.example/cb",
];

/// Every call in `calls` is allowed by the policy `document` (`what` names it).
fn assert_policy_allows(document: &Value, calls: &[(String, String)], what: &str) {
    let allowed = actions_with_effect(document, "Allow");
    let mut missing: Vec<String> = calls
        .iter()
        .flat_map(|(service, operation)| iam_actions(service, operation))
        .filter(|action| {
            !allowed
                .iter()
                .any(|pattern| action_matches(pattern, action))
        })
        .collect();
    missing.sort();
    missing.dedup();
    assert_eq!(missing, Vec::<String>::new(), "{what} lacks these actions");
}

/// The plan role (bootstrap's, assumed by the deploy workflow's plan-prod job,
/// which needs no approval) may make every call of `deployer plan --out`, of an
/// environment not deployed yet and of a deployed one with a layer, and allows
/// nothing but reads of configuration: no write, no invoke, no lock, no item.
#[tokio::test]
async fn the_plan_role_may_make_every_call_of_a_plan_and_only_reads() {
    let account = Account::new().await;
    std::fs::write(account.dir.path().join("layer.zip"), layer_zip(b"one")).expect("write layer");
    let layer = [
        "--var",
        "use_layer=true",
        "--var",
        "layer_zip_path=layer.zip",
    ];
    let plan = |extra: &[&str]| {
        let mut args = vec![
            "-v",
            "plan",
            "--env",
            "dev",
            "--artifact",
            "fn.zip",
            "--out",
            "dev.plan",
        ];
        args.extend_from_slice(extra);
        let output = account.deployer(&args);
        assert_exit(&output, 0);
        logged_calls(&output)
    };
    let mut calls = plan(&layer);
    assert_exit(
        &account.deployer(
            &[
                &[
                    "apply",
                    "--env",
                    "dev",
                    "--auto-approve",
                    "--artifact",
                    "fn.zip",
                ][..],
                &layer,
                &SIGN_IN_BY_OWN_POOL,
            ]
            .concat(),
        ),
        0,
    );
    calls.extend(plan(&[&layer[..], &SIGN_IN_BY_OWN_POOL].concat()));
    assert!(
        calls
            .iter()
            .any(|(_, operation)| operation == "DescribeUserPoolClient"),
        "the user pool is planned: {calls:?}"
    );
    assert!(calls.len() > 20, "the call log works: {calls:?}");

    let document =
        support::managed_policy(&account.config, "aimodelshare-github-actions-plan").await;
    assert_policy_allows(&document, &calls, "the plan policy");
    let allowed = actions_with_effect(&document, "Allow");

    let reads_configuration = |action: &str| {
        let (service, name) = action.split_once(':').expect("service:action");
        let read = ["Get", "List", "Describe"]
            .iter()
            .any(|verb| name.starts_with(verb))
            || action == "apigateway:GET";
        // Reads of data, not of configuration: the tables' items and the locks.
        let data = service == "dynamodb" && ["GetItem", "BatchGetItem"].contains(&name);
        read && !data && !name.contains('*')
    };
    let writes: Vec<&String> = allowed
        .iter()
        .filter(|action| !reads_configuration(action))
        .collect();
    assert_eq!(
        writes,
        Vec::<&String>::new(),
        "the plan policy allows more than reads"
    );
    assert_eq!(
        actions_with_effect(&document, "Deny"),
        Vec::<String>::new(),
        "nothing to deny: it allows only reads"
    );

    // Its trust: jobs of the repository's `plan` environment, through GitHub's OIDC.
    let role = aws_sdk_iam::Client::new(&account.config)
        .get_role()
        .role_name("aimodelshare-github-oidc-planner")
        .send()
        .await
        .expect("the plan role");
    let role = role.role().expect("role");
    assert_eq!(
        role.arn(),
        "arn:aws:iam::123456789012:role/aimodelshare-github-oidc-planner"
    );
    let trust =
        deployer::engine::policy::decode(role.assume_role_policy_document().expect("trust policy"))
            .expect("trust policy JSON");
    assert_eq!(
        trust["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"],
        serde_json::json!(["repo:octo-org/playground:environment:plan"])
    );
}

impl Account {
    /// The version the dev function's `live` alias points at.
    async fn live_version(&self) -> String {
        aws_sdk_lambda::Client::new(&self.config)
            .get_alias()
            .function_name("aimodelshare-playground-dev-api")
            .name("live")
            .send()
            .await
            .expect("the alias live")
            .function_version()
            .expect("a version")
            .to_owned()
    }

    /// The dev function's published versions, oldest first.
    async fn published_versions(&self) -> Vec<String> {
        let listed = aws_sdk_lambda::Client::new(&self.config)
            .list_versions_by_function()
            .function_name("aimodelshare-playground-dev-api")
            .send()
            .await
            .expect("versions");
        let mut versions: Vec<u64> = listed
            .versions()
            .iter()
            .filter_map(|version| version.version())
            .filter_map(|version| version.parse().ok())
            .collect();
        versions.sort_unstable();
        versions.iter().map(u64::to_string).collect()
    }

    fn apply_artifact(&self, artifact: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            artifact,
        ];
        args.extend_from_slice(extra);
        self.deployer(&args)
    }
}

#[tokio::test]
async fn releases_are_versions_behind_live_and_rollback_moves_live_back() {
    let account = Account::new().await;
    assert_exit(&account.apply_dev(), 0);
    assert_eq!(account.live_version().await, "1");
    assert_eq!(account.published_versions().await, ["1"]);

    // API Gateway invokes the alias, never $LATEST; the permission is on the alias.
    let api_id = account.api_id("dev").await.expect("api");
    let integrations = aws_sdk_apigatewayv2::Client::new(&account.config)
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
    assert!(
        !uris.is_empty()
            && uris
                .iter()
                .all(|uri| uri.ends_with(":function:aimodelshare-playground-dev-api:live")),
        "{uris:?}"
    );
    let lambda = aws_sdk_lambda::Client::new(&account.config);
    let policy = lambda
        .get_policy()
        .function_name("aimodelshare-playground-dev-api")
        .qualifier("live")
        .send()
        .await
        .expect("the alias's policy");
    assert!(
        policy
            .policy()
            .is_some_and(|policy| policy.contains("AllowInvokeFromHttpApi")),
        "{policy:?}"
    );

    // New code: a new version, live moves to it; the same code again changes nothing.
    account.write_artifact("fn2.zip", &executable(62, b"v2"));
    let plan = account.deployer(&["plan", "--env", "dev", "--artifact", "fn2.zip"]);
    assert!(
        text(&plan).contains("Release: publish version 2 and move live from 1 to 2."),
        "{}",
        text(&plan)
    );
    assert_exit(&account.apply_artifact("fn2.zip", &[]), 0);
    assert_eq!(account.live_version().await, "2");
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(&account.apply_artifact("fn2.zip", &[]), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    // Rollback: live back to 1, recorded in the history.
    let rolled = account.deployer(&["rollback", "--env", "dev"]);
    assert_exit(&rolled, 0);
    assert!(
        text(&rolled).contains("live moved from version 2 to 1"),
        "{}",
        text(&rolled)
    );
    assert_eq!(account.live_version().await, "1");
    let history = account.deployer(&["state", "history", "--env", "dev"]);
    let history = String::from_utf8_lossy(&history.stdout).into_owned();
    let releases: Vec<String> = history
        .lines()
        .skip_while(|line| !line.starts_with("release"))
        .skip(1)
        .map(|line| {
            line.split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(releases, ["1 rollback", "2 apply", "1 apply"], "{history}");

    // The rolled-back code again: a no-op; live stays at 1.
    emulator::clear_served_requests(account.emulator.endpoint());
    let plan = account.deployer(&[
        "plan",
        "--env",
        "dev",
        "--artifact",
        "fn2.zip",
        "--detailed-exitcode",
    ]);
    assert_exit(&plan, 0);
    assert_exit(&account.apply_artifact("fn2.zip", &[]), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());
    assert_eq!(account.live_version().await, "1");
    // Nothing before 1 to go back to.
    let refused = account.deployer(&["rollback", "--env", "dev"]);
    assert_exit(&refused, 1);
    assert!(
        text(&refused).contains("no release before version 1"),
        "{}",
        text(&refused)
    );

    // New code after a rollback: a normal release.
    account.write_artifact("fn3.zip", &executable(62, b"v3"));
    assert_exit(&account.apply_artifact("fn3.zip", &[]), 0);
    assert_eq!(account.live_version().await, "3");

    // --to a published version, and refused for one that is not.
    assert_exit(
        &account.deployer(&["rollback", "--env", "dev", "--to", "2"]),
        0,
    );
    assert_eq!(account.live_version().await, "2");
    let missing = account.deployer(&["rollback", "--env", "dev", "--to", "99"]);
    assert_exit(&missing, 1);
    assert!(
        text(&missing).contains("version 99 of aimodelshare-playground-dev-api is not published"),
        "{}",
        text(&missing)
    );
    assert_eq!(account.live_version().await, "2");
}

#[tokio::test]
async fn old_versions_are_pruned_but_never_live_or_the_last_releases() {
    let account = Account::new().await;
    let keep = ["--var", "keep_versions=2"];
    for (number, marker) in [b"p1", b"p2", b"p3", b"p4"].iter().enumerate() {
        let name = format!("p{}.zip", number + 1);
        account.write_artifact(&name, &executable(62, *marker));
        assert_exit(&account.apply_artifact(&name, &keep), 0);
    }
    // Versions 1..4 released; the newest 2 are kept, and the last 2 releases
    // (the same two) are protected.
    assert_eq!(account.published_versions().await, ["3", "4"]);
    assert_eq!(account.live_version().await, "4");

    // Roll back to 3, then release new code: the newest two (4, 5) stay, and
    // 3 too, older but the release before the live one.
    assert_exit(&account.deployer(&["rollback", "--env", "dev"]), 0);
    assert_eq!(account.live_version().await, "3");
    account.write_artifact("p5.zip", &executable(62, b"p5"));
    assert_exit(&account.apply_artifact("p5.zip", &keep), 0);
    assert_eq!(account.live_version().await, "5");
    assert_eq!(account.published_versions().await, ["3", "4", "5"]);
}

#[tokio::test]
async fn limits_are_applied_changed_without_a_release_and_read_back() {
    let account = Account::new().await;
    assert_exit(&account.apply_dev(), 0);
    let limits = [
        "--var",
        "throttle_rate_limit=20",
        "--var",
        "throttle_burst_limit=40",
        "--var",
        "reserved_concurrency=0",
    ];
    let plan = account.deployer(
        &[
            &limits[..],
            &["plan", "--env", "dev", "--artifact", "fn.zip"],
        ]
        .concat(),
    );
    let shown = text(&plan);
    assert!(
        shown.contains(r#"~ reserved_concurrency = 100 -> "none""#),
        "{shown}"
    );
    assert!(shown.contains("throttle_rate_limit"), "{shown}");
    assert!(
        !shown.contains("lambda_alias.live"),
        "limits are not a release: {shown}"
    );
    assert_exit(
        &account.deployer(
            &[
                &limits[..],
                &[
                    "apply",
                    "--env",
                    "dev",
                    "--auto-approve",
                    "--artifact",
                    "fn.zip",
                ],
            ]
            .concat(),
        ),
        0,
    );

    let api_id = account.api_id("dev").await.expect("api");
    let stage = aws_sdk_apigatewayv2::Client::new(&account.config)
        .get_stage()
        .api_id(&api_id)
        .stage_name("dev")
        .send()
        .await
        .expect("stage");
    let throttling = stage
        .default_route_settings()
        .expect("default route settings");
    assert_eq!(throttling.throttling_rate_limit(), Some(20.0));
    assert_eq!(throttling.throttling_burst_limit(), Some(40));
    assert_eq!(
        account
            .function("dev")
            .await
            .concurrency()
            .and_then(|concurrency| concurrency.reserved_concurrent_executions()),
        None,
        "no reservation"
    );
    assert_eq!(account.live_version().await, "1", "no new version");
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(
        &account.deployer(
            &[
                &limits[..],
                &[
                    "apply",
                    "--env",
                    "dev",
                    "--auto-approve",
                    "--artifact",
                    "fn.zip",
                ],
            ]
            .concat(),
        ),
        0,
    );
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    // Out of range: refused before any AWS call.
    let refused = account.deployer(&["--var", "throttle_burst_limit=0", "plan", "--env", "dev"]);
    assert_exit(&refused, 1);
    assert!(
        text(&refused).contains("throttle_burst_limit = 0 must be from 1 to 5000"),
        "{}",
        text(&refused)
    );
}

#[tokio::test]
async fn logs_prints_the_live_releases_events_or_any_versions() {
    let account = Account::new().await;
    assert_exit(&account.apply_dev(), 0);
    account.write_artifact("fn2.zip", &executable(62, b"v2"));
    assert_exit(&account.apply_artifact("fn2.zip", &[]), 0);
    assert_eq!(account.live_version().await, "2");

    // Events as Lambda writes them: one stream per execution environment,
    // named after the version it runs.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&account.config);
    let group = "/aws/lambda/aimodelshare-playground-dev-api";
    let now = chrono::Utc::now().timestamp_millis();
    for (stream, events) in [
        (
            "2026/12/01/[1]aaaa",
            vec![(now - 5_000, "old release ERROR x")],
        ),
        (
            "2026/12/01/[2]bbbb",
            vec![(now - 4_000, "START v2"), (now - 3_000, "v2 ERROR boom")],
        ),
        (
            "2026/12/01/[2]cccc",
            vec![(now - 3 * 3_600_000, "v2 three hours ago")],
        ),
    ] {
        logs.create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await
            .expect("stream");
        let mut put = logs
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream);
        for (timestamp, message) in events {
            put = put.log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(timestamp)
                    .message(message)
                    .build()
                    .expect("event"),
            );
        }
        put.send().await.expect("put events");
    }
    let printed = |args: &[&str]| {
        let output = account.deployer(&[&["logs", "--env", "dev"][..], args].concat());
        assert_exit(&output, 0);
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| {
                line.split_once(' ')
                    .map_or(line, |(_, rest)| rest)
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        printed(&[]),
        ["[2] START v2", "[2] v2 ERROR boom"],
        "the live release, last 10 minutes"
    );
    assert_eq!(printed(&["--release", "1"]), ["[1] old release ERROR x"]);
    assert_eq!(
        printed(&["--all-versions", "--filter", "ERROR"]),
        ["[1] old release ERROR x", "[2] v2 ERROR boom"]
    );
    assert_eq!(
        printed(&["--since", "4h"]),
        [
            "[2] v2 three hours ago",
            "[2] START v2",
            "[2] v2 ERROR boom"
        ]
    );
    let refused = account.deployer(&["logs", "--env", "stage"]);
    assert_exit(&refused, 1);
    assert!(
        text(&refused).contains("/aws/lambda/aimodelshare-playground-stage-api does not exist"),
        "{}",
        text(&refused)
    );
}

impl Account {
    /// Mutating requests other than taking and releasing the state's lock
    /// (an item of the lock table).
    fn changes_besides_the_lock(&self) -> Vec<String> {
        self.mutating_requests()
            .into_iter()
            .filter(|request| {
                !(request.contains("dynamodb")
                    && (request.ends_with("PutItem") || request.ends_with("DeleteItem")))
            })
            .collect()
    }
}

#[tokio::test]
async fn a_saved_plan_is_applied_exactly_or_refused_when_stale() {
    let account = Account::new().await;
    assert_exit(&account.apply_dev(), 0);
    account.write_artifact("fn2.zip", &executable(62, b"v2"));
    let fn2 = std::fs::read(account.dir.path().join("fn2.zip")).expect("fn2");
    let fn2_sha = deployer::package::code_sha256(&fn2);

    let json = account.deployer(&["plan", "--env", "dev", "--artifact", "fn2.zip", "--json"]);
    assert_exit(&json, 0);
    let json: Value = serde_json::from_slice(&json.stdout).expect("JSON plan");
    assert_eq!(json["format_version"], 1, "{json}");
    assert_eq!(json["change"], 2, "{json}");

    let planned = account.deployer(&[
        "plan",
        "--env",
        "dev",
        "--artifact",
        "fn2.zip",
        "--out",
        "dev.plan",
    ]);
    assert_exit(&planned, 0);
    assert!(
        text(&planned).contains("`deployer apply dev.plan` applies exactly it"),
        "{}",
        text(&planned)
    );
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(account.dir.path().join("dev.plan")).expect("saved plan"),
    )
    .expect("saved plan JSON");
    assert_eq!(saved["format_version"], 1);
    assert_eq!(saved["environment"], "dev");
    assert_eq!(saved["artifact_sha256"], fn2_sha.as_str());
    assert!(saved["state"]["serial"].is_u64(), "{saved}");
    assert_eq!(saved["plan"], json, "the saved plan is the JSON plan");

    // Another artifact than the plan's: refused before any AWS call.
    let wrong = account.deployer(&["apply", "dev.plan", "--artifact", "fn.zip"]);
    assert_exit(&wrong, 1);
    assert!(
        text(&wrong).contains("is not the one the plan was made with"),
        "{}",
        text(&wrong)
    );

    // Applied exactly: no --env, no prompt.
    let applied = account.deployer(&["apply", "dev.plan"]);
    assert_exit(&applied, 0);
    assert!(
        text(&applied).contains("Apply complete: 0 added, 2 changed"),
        "{}",
        text(&applied)
    );
    assert_eq!(account.live_version().await, "2");

    // The same file again: the state has moved on; nothing changes.
    emulator::clear_served_requests(account.emulator.endpoint());
    let stale = account.deployer(&["apply", "dev.plan"]);
    assert_exit(&stale, 1);
    assert!(
        text(&stale).contains("the state has moved on since the plan was made"),
        "{}",
        text(&stale)
    );
    assert_eq!(account.changes_besides_the_lock(), Vec::<String>::new());

    // AWS changed after the plan was made: refused, and the change by hand stays.
    account.write_artifact("fn3.zip", &executable(62, b"v3"));
    assert_exit(
        &account.deployer(&[
            "plan",
            "--env",
            "dev",
            "--artifact",
            "fn3.zip",
            "--out",
            "dev3.plan",
        ]),
        0,
    );
    aws_sdk_lambda::Client::new(&account.config)
        .update_function_configuration()
        .function_name("aimodelshare-playground-dev-api")
        .memory_size(1024)
        .send()
        .await
        .expect("change memory by hand");
    emulator::clear_served_requests(account.emulator.endpoint());
    let drifted = account.deployer(&["apply", "dev3.plan"]);
    assert_exit(&drifted, 1);
    assert!(
        text(&drifted).contains("planning again now gives a different plan"),
        "{}",
        text(&drifted)
    );
    assert!(
        text(&drifted).contains("1024 -> 256"),
        "shows the plan now: {}",
        text(&drifted)
    );
    assert_eq!(account.changes_besides_the_lock(), Vec::<String>::new());
    assert_eq!(account.live_version().await, "2");

    // A plan for another environment is refused; so is a file that is not a plan.
    let other = account.deployer(&["apply", "--env", "stage", "dev.plan"]);
    assert_exit(&other, 1);
    assert!(
        text(&other).contains("the plan is for dev, not stage"),
        "{}",
        text(&other)
    );
    std::fs::write(account.dir.path().join("junk.plan"), "{}").expect("write");
    let junk = account.deployer(&["apply", "junk.plan"]);
    assert_exit(&junk, 1);
    assert!(
        text(&junk).contains("is not a saved plan"),
        "{}",
        text(&junk)
    );
}

#[tokio::test]
async fn logs_follow_prints_events_that_arrive_after_it_started() {
    use std::io::BufRead;
    let account = Account::new().await;
    assert_exit(&account.apply_dev(), 0);
    let mut follower = std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(account.dir.path())
        .envs(emulator::aws_env(account.emulator.endpoint()))
        .env_remove("DEPLOYER_ENV")
        .args(["logs", "--env", "dev", "--follow"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start logs --follow");
    let stdout = follower.stdout.take().expect("stdout");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // Let it make its first pass (nothing yet), then write an event.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&account.config);
    let group = "/aws/lambda/aimodelshare-playground-dev-api";
    let stream = "2026/12/01/[1]follow";
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .expect("stream");
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(chrono::Utc::now().timestamp_millis())
                .message("arrived while following")
                .build()
                .expect("event"),
        )
        .send()
        .await
        .expect("put event");
    let line = received
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|error| {
            let _ = follower.kill();
            panic!("no line within 20 s: {error}")
        });
    follower.kill().expect("stop the follower");
    let _ = follower.wait();
    assert!(line.ends_with("[1] arrived while following"), "{line}");
}

/// An alarm as read back: name, namespace, metric, threshold, actions, dimensions.
type AlarmView = (
    String,
    String,
    String,
    f64,
    Vec<String>,
    Vec<(String, String)>,
);

#[tokio::test]
async fn alarms_are_put_read_back_changed_and_removed() {
    let account = Account::new().await;
    assert_exit(&account.apply_dev(), 0);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&account.config);
    let alarms = || async {
        let mut alarms: Vec<AlarmView> = cloudwatch
            .describe_alarms()
            .alarm_name_prefix("aimodelshare-playground-dev-")
            .send()
            .await
            .expect("alarms")
            .metric_alarms()
            .iter()
            .map(|alarm| {
                (
                    alarm.alarm_name().unwrap_or_default().to_owned(),
                    alarm.namespace().unwrap_or_default().to_owned(),
                    alarm.metric_name().unwrap_or_default().to_owned(),
                    alarm.threshold().unwrap_or_default(),
                    alarm.alarm_actions().to_vec(),
                    alarm
                        .dimensions()
                        .iter()
                        .map(|d| {
                            (
                                d.name().unwrap_or_default().to_owned(),
                                d.value().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        alarms.sort_by(|a, b| a.0.cmp(&b.0));
        alarms
    };
    let api_id = account.api_id("dev").await.expect("api");
    let function = || {
        vec![(
            "FunctionName".to_owned(),
            "aimodelshare-playground-dev-api".to_owned(),
        )]
    };
    assert_eq!(
        alarms().await,
        vec![
            (
                "aimodelshare-playground-dev-api-errors".to_owned(),
                "AWS/Lambda".to_owned(),
                "Errors".to_owned(),
                5.0,
                vec![],
                function()
            ),
            (
                "aimodelshare-playground-dev-api-throttles".to_owned(),
                "AWS/Lambda".to_owned(),
                "Throttles".to_owned(),
                1.0,
                vec![],
                function()
            ),
            (
                "aimodelshare-playground-dev-http-api-5xx".to_owned(),
                "AWS/ApiGateway".to_owned(),
                "5xx".to_owned(),
                5.0,
                vec![],
                vec![
                    ("ApiId".to_owned(), api_id.clone()),
                    ("Stage".to_owned(), "dev".to_owned())
                ]
            ),
        ]
    );

    // A threshold and a topic: two alarms change, nothing else.
    let topic = "arn:aws:sns:us-east-1:123456789012:playground-alarms";
    let vars = [
        "--var",
        "alarm_errors_threshold=20",
        "--var",
        &format!("alarm_sns_topic_arn={topic}"),
    ];
    let plan =
        account.deployer(&[&vars[..], &["plan", "--env", "dev", "--artifact", "fn.zip"]].concat());
    let shown = text(&plan);
    assert!(shown.contains("~ threshold = 5 -> 20"), "{shown}");
    assert!(
        shown.contains("Plan: 0 to add, 3 to change, 0 to destroy."),
        "every alarm notifies the topic: {shown}"
    );
    let apply = |extra: &[&str]| {
        account.deployer(
            &[
                &vars[..],
                &[
                    "apply",
                    "--env",
                    "dev",
                    "--auto-approve",
                    "--artifact",
                    "fn.zip",
                ],
                extra,
            ]
            .concat(),
        )
    };
    assert_exit(&apply(&[]), 0);
    let changed = alarms().await;
    assert_eq!(changed[0].3, 20.0);
    assert!(
        changed.iter().all(|alarm| alarm.4 == [topic.to_owned()]),
        "{changed:?}"
    );
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(&apply(&[]), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    let refused = account.deployer(&["--var", "alarm_5xx_threshold=0", "plan", "--env", "dev"]);
    assert_exit(&refused, 1);
    assert!(
        text(&refused).contains("alarm_5xx_threshold = 0"),
        "{}",
        text(&refused)
    );

    assert_exit(
        &account.deployer(&["destroy", "--env", "dev", "--auto-approve"]),
        0,
    );
    assert_eq!(alarms().await, vec![]);
}

#[tokio::test]
async fn access_logs_go_to_a_log_group_of_their_own_with_retention_in_a_documented_format() {
    let account = Account::new().await;
    assert_exit(&account.apply_dev(), 0);
    let api_id = account.api_id("dev").await.expect("api");
    let group = "/aws/apigateway/aimodelshare-playground-dev-http-api";
    let stage_log = || async {
        let stage = aws_sdk_apigatewayv2::Client::new(&account.config)
            .get_stage()
            .api_id(&api_id)
            .stage_name("dev")
            .send()
            .await
            .expect("stage");
        let settings = stage.access_log_settings().expect("access log settings");
        (
            settings.destination_arn().unwrap_or_default().to_owned(),
            settings.format().unwrap_or_default().to_owned(),
        )
    };
    let retention = || async {
        aws_sdk_cloudwatchlogs::Client::new(&account.config)
            .describe_log_groups()
            .log_group_name_prefix(group)
            .send()
            .await
            .expect("log groups")
            .log_groups()
            .iter()
            .find(|found| found.log_group_name() == Some(group))
            .map(|found| found.retention_in_days())
    };
    let (destination, format) = stage_log().await;
    assert_eq!(
        destination,
        format!("arn:aws:logs:us-east-1:123456789012:log-group:{group}")
    );
    assert_eq!(retention().await, Some(Some(14)));
    // The format is JSON once API Gateway fills in its variables, with the
    // fields docs/settings.md documents and no client address.
    let filled = filled_in(&format);
    let line: Value = serde_json::from_str(&filled).expect("the access log format is JSON");
    let mut fields: Vec<&str> = line
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "error",
            "httpMethod",
            "integrationError",
            "integrationLatency",
            "integrationStatus",
            "path",
            "protocol",
            "requestId",
            "requestTime",
            "responseLatency",
            "responseLength",
            "routeKey",
            "status"
        ]
    );
    assert!(!format.contains("sourceIp"), "{format}");

    // Retention follows the setting on both log groups; a rerun changes nothing.
    let apply = || {
        account.deployer(&[
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn.zip",
            "--var",
            "log_retention_days=30",
        ])
    };
    let applied = apply();
    assert_exit(&applied, 0);
    assert!(
        text(&applied).contains("Apply complete: 0 added, 2 changed"),
        "{}",
        text(&applied)
    );
    assert_eq!(retention().await, Some(Some(30)));
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(&apply(), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    // Access logs switched off by hand are drift, and apply turns them back on.
    aws_sdk_apigatewayv2::Client::new(&account.config)
        .update_stage()
        .api_id(&api_id)
        .stage_name("dev")
        .access_log_settings(
            aws_sdk_apigatewayv2::types::AccessLogSettings::builder()
                .destination_arn("")
                .format("")
                .build(),
        )
        .send()
        .await
        .expect("switch access logs off");
    let plan = account.deployer(&[
        "plan",
        "--env",
        "dev",
        "--artifact",
        "fn.zip",
        "--var",
        "log_retention_days=30",
    ]);
    assert!(
        text(&plan).contains("access_log_destination"),
        "{}",
        text(&plan)
    );
    assert_exit(&apply(), 0);
    assert_eq!(stage_log().await, (destination, format));

    assert_exit(
        &account.deployer(&["destroy", "--env", "dev", "--auto-approve"]),
        0,
    );
    assert_eq!(retention().await, None);
}

/// An access log format with every `$context.…` variable replaced by `-`, as
/// API Gateway writes a value that does not apply.
fn filled_in(format: &str) -> String {
    let mut filled = String::new();
    let mut rest = format;
    while let Some(start) = rest.find("$context.") {
        filled.push_str(&rest[..start]);
        let after = &rest[start + "$context.".len()..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
            .unwrap_or(after.len());
        filled.push('-');
        rest = &after[end..];
    }
    filled.push_str(rest);
    filled
}

#[tokio::test]
async fn sign_in_puts_a_jwt_authorizer_on_the_writing_routes_and_takes_it_off_again() {
    use aws_sdk_apigatewayv2::types::AuthorizationType;
    let account = Account::new().await;
    assert_exit(&account.apply_dev(), 0);
    let api_id = account.api_id("dev").await.expect("api");
    let issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example";
    let with = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "--var",
            &format!("auth_issuer={issuer}"),
            "--var",
            "auth_audiences=app-client-1",
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        args
    };
    let run = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        account.deployer(&args)
    };
    let apply = |extra: &[String]| {
        let mut args: Vec<String> = [
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn.zip",
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        args.extend(extra.iter().cloned());
        run(&args)
    };
    let apigateway = aws_sdk_apigatewayv2::Client::new(&account.config);
    let routes = || async {
        let mut routes: Vec<(String, bool)> = apigateway
            .get_routes()
            .api_id(&api_id)
            .send()
            .await
            .expect("routes")
            .items()
            .iter()
            .map(|route| {
                (
                    route.route_key().unwrap_or_default().to_owned(),
                    route.authorization_type() == Some(&AuthorizationType::Jwt)
                        && route.authorizer_id().is_some(),
                )
            })
            .collect();
        routes.sort();
        routes
    };
    // What the release `live` points at runs with (a rollback to an earlier
    // release reuses its version rather than publishing an equal one).
    let environment = || async {
        aws_sdk_lambda::Client::new(&account.config)
            .get_function_configuration()
            .function_name("aimodelshare-playground-dev-api")
            .qualifier("live")
            .send()
            .await
            .expect("the live release")
            .environment()
            .and_then(|environment| environment.variables())
            .cloned()
            .unwrap_or_default()
    };

    // Without sign-in, a plan says the API is open.
    let open = account.deployer(&[
        "plan",
        "--env",
        "dev",
        "--artifact",
        "fn.zip",
        "--var",
        "memory_mb=512",
    ]);
    assert!(text(&open).contains("The API is open"), "{}", text(&open));

    // Turning it on is an in-place change of the API (its id kept) and the function.
    let mut plan_args: Vec<String> = ["plan", "--env", "dev", "--artifact", "fn.zip"]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
    plan_args.extend(with(&[]));
    let plan = run(&plan_args);
    let shown = text(&plan);
    assert!(shown.contains("~ apigatewayv2_api.http"), "{shown}");
    assert!(!shown.contains("-/+"), "nothing replaced: {shown}");
    assert!(
        shown.contains("PUT /tables/{tableId}/users/{username} (JWT)"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("Sign-in: API Gateway verifies JWTs of {issuer}")),
        "{shown}"
    );
    assert_exit(&apply(&with(&[])), 0);
    assert_eq!(
        account.api_id("dev").await.as_deref(),
        Some(api_id.as_str())
    );

    let authorizers = apigateway
        .get_authorizers()
        .api_id(&api_id)
        .send()
        .await
        .expect("authorizers");
    let [authorizer] = authorizers.items() else {
        panic!("one authorizer: {authorizers:?}");
    };
    assert_eq!(
        authorizer.name(),
        Some("aimodelshare-playground-dev-http-api-jwt")
    );
    assert_eq!(
        authorizer.authorizer_type().map(|kind| kind.as_str()),
        Some("JWT")
    );
    assert_eq!(
        authorizer.identity_source(),
        ["$request.header.Authorization"]
    );
    let jwt = authorizer.jwt_configuration().expect("JWT configuration");
    assert_eq!(jwt.issuer(), Some(issuer));
    assert_eq!(jwt.audience(), ["app-client-1"]);
    let guarded: Vec<String> = routes()
        .await
        .into_iter()
        .filter(|(_, jwt)| *jwt)
        .map(|(key, _)| key)
        .collect();
    assert_eq!(
        guarded,
        [
            "DELETE /tables/{tableId}",
            "DELETE /tables/{tableId}/users/{username}/tasks",
            "PATCH /sessions/{sessionId}",
            "PATCH /tables/{tableId}",
            "PATCH /tables/{tableId}/users/{username}/tasks",
            "POST /sessions",
            "POST /tables",
            "PUT /tables/{tableId}/users/{username}",
            "PUT /tables/{tableId}/users/{username}/moral-compass",
            "PUT /tables/{tableId}/users/{username}/moralcompass"
        ]
    );
    let variables = environment().await;
    assert_eq!(
        variables.get("AUTH_ENABLED").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        variables.get("AUTH_ADMIN_GROUP").map(String::as_str),
        Some("admin")
    );
    assert_eq!(
        variables.get("ALLOW_PUBLIC_READ").map(String::as_str),
        Some("true")
    );
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(&apply(&with(&[])), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    // Reads behind it too; /health, /openapi.json, $default and reading a
    // session (its id is the capability) stay open.
    assert_exit(&apply(&with(&["--var", "allow_public_read=false"])), 0);
    let open_routes: Vec<String> = routes()
        .await
        .into_iter()
        .filter(|(_, jwt)| !*jwt)
        .map(|(key, _)| key)
        .collect();
    assert_eq!(
        open_routes,
        [
            "$default",
            "GET /health",
            "GET /openapi.json",
            "GET /sessions/{sessionId}"
        ]
    );
    assert_eq!(
        environment()
            .await
            .get("ALLOW_PUBLIC_READ")
            .map(String::as_str),
        Some("false")
    );

    // Off again: the authorizer goes, every route is open, the function too.
    let off = apply(&[]);
    assert_exit(&off, 0);
    assert!(routes().await.iter().all(|(_, jwt)| !jwt));
    let left = apigateway
        .get_authorizers()
        .api_id(&api_id)
        .send()
        .await
        .expect("authorizers");
    assert!(left.items().is_empty(), "{left:?}");
    assert_eq!(
        environment().await.get("AUTH_ENABLED"),
        None,
        "{}",
        text(&off)
    );

    // Bad settings fail before any AWS call.
    let plain = account.deployer(&[
        "plan",
        "--env",
        "dev",
        "--var",
        "auth_issuer=http://issuer.example",
        "--var",
        "auth_audiences=a",
    ]);
    assert_exit(&plain, 1);
    assert!(
        text(&plain).contains("is not an https URL"),
        "{}",
        text(&plain)
    );
    let lonely = account.deployer(&[
        "plan",
        "--env",
        "dev",
        "--var",
        &format!("auth_issuer={issuer}"),
    ]);
    assert_exit(&lonely, 1);
    assert!(
        text(&lonely).contains("auth_issuer needs auth_audiences"),
        "{}",
        text(&lonely)
    );
}

/// `auth_create_user_pool`: the environment's own Cognito user pool, with its
/// app client (the authorizer's audience), admin group and sign-in domain.
/// Created and read back, a rerun changes nothing, drift is repaired over what
/// was set by hand, and destroy keeps a pool with accounts until told.
#[tokio::test]
async fn the_environments_own_user_pool_is_the_issuer_and_outlives_a_destroy_while_it_has_accounts()
{
    use aws_sdk_cognitoidentityprovider::types::{
        DeletionProtectionType, PreventUserExistenceErrorTypes,
    };
    let account = Account::new().await;
    let pool_vars = [
        "--var",
        "auth_create_user_pool=true",
        "--var",
        // Listed twice: a set, so no perpetual diff.
        "auth_callback_urls=https://app.example/cb,http://localhost:8888/cb,https://app.example/cb",
        "--var",
        "auth_logout_urls=https://app.example/",
    ];
    let with_pool = |args: &[&str]| account.deployer(&[args, &pool_vars[..]].concat());
    let apply = || {
        with_pool(&[
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn.zip",
        ])
    };
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&account.config);
    let pool_id = || async {
        let pools = cognito
            .list_user_pools()
            .max_results(60)
            .send()
            .await
            .expect("pools");
        pools
            .user_pools()
            .iter()
            .find(|pool| pool.name() == Some("aimodelshare-playground-dev-users"))
            .and_then(|pool| pool.id().map(str::to_owned))
    };

    let plan = with_pool(&["plan", "--env", "dev", "--artifact", "fn.zip"]);
    let shown = text(&plan);
    assert_exit(&plan, 0);
    assert!(shown.contains("+ cognito_user_pool.sign_in"), "{shown}");
    assert!(shown.contains("13 to add"), "{shown}");
    assert!(
        shown.contains("the environment's own user pool aimodelshare-playground-dev-users"),
        "{shown}"
    );
    assert_exit(&apply(), 0);

    // Read back: the pool, its client, group and domain.
    let id = pool_id().await.expect("the pool exists");
    let describe = || async {
        cognito
            .describe_user_pool()
            .user_pool_id(&id)
            .send()
            .await
            .expect("pool")
            .user_pool
            .expect("described")
    };
    let has_admin_group = || async {
        cognito
            .get_group()
            .user_pool_id(&id)
            .group_name("admin")
            .send()
            .await
            .is_ok()
    };
    let pool = describe().await;
    assert_eq!(
        pool.deletion_protection(),
        Some(&DeletionProtectionType::Active)
    );
    assert!(
        pool.admin_create_user_config()
            .is_some_and(|config| config.allow_admin_create_user_only()),
        "only admins create accounts"
    );
    let password = pool
        .policies()
        .and_then(|policies| policies.password_policy())
        .expect("password policy");
    assert_eq!(password.minimum_length(), Some(12));
    assert_eq!(
        pool.user_pool_tags()
            .and_then(|tags| tags.get("managed-by"))
            .map(String::as_str),
        Some("deployer")
    );
    assert_eq!(pool.domain(), Some("aimodelshare-playground-dev"));
    let clients = cognito
        .list_user_pool_clients()
        .user_pool_id(&id)
        .send()
        .await
        .expect("clients");
    let [listed] = clients.user_pool_clients() else {
        panic!("one client: {clients:?}");
    };
    let client_id = listed.client_id().expect("client id").to_owned();
    let client = cognito
        .describe_user_pool_client()
        .user_pool_id(&id)
        .client_id(&client_id)
        .send()
        .await
        .expect("client")
        .user_pool_client
        .expect("described");
    assert!(client.client_secret().is_none(), "a public client");
    let mut callbacks = client.callback_urls().to_vec();
    callbacks.sort();
    assert_eq!(
        callbacks,
        ["http://localhost:8888/cb", "https://app.example/cb"]
    );
    assert_eq!(
        client.prevent_user_existence_errors(),
        Some(&PreventUserExistenceErrorTypes::Enabled)
    );
    assert!(has_admin_group().await, "the admin group exists");

    // The API's authorizer trusts that pool, for that client.
    let api_id = account.api_id("dev").await.expect("api");
    let authorizers = aws_sdk_apigatewayv2::Client::new(&account.config)
        .get_authorizers()
        .api_id(&api_id)
        .send()
        .await
        .expect("authorizers");
    let [authorizer] = authorizers.items() else {
        panic!("one authorizer: {authorizers:?}");
    };
    let jwt = authorizer.jwt_configuration().expect("jwt");
    let issuer = format!("https://cognito-idp.us-east-1.amazonaws.com/{id}");
    assert_eq!(jwt.issuer(), Some(issuer.as_str()));
    assert_eq!(jwt.audience(), std::slice::from_ref(&client_id));
    let variables = account
        .function("dev")
        .await
        .configuration()
        .and_then(|configuration| configuration.environment())
        .and_then(|environment| environment.variables())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        variables.get("AUTH_ENABLED").map(String::as_str),
        Some("true")
    );

    // The outputs a teaching app needs.
    let output = account.deployer(&["output", "--env", "dev", "--json"]);
    assert_exit(&output, 0);
    let outputs: Value = serde_json::from_slice(&output.stdout).expect("json outputs");
    assert_eq!(outputs["auth_client_id"], Value::from(client_id.clone()));
    assert_eq!(outputs["auth_user_pool_id"], Value::from(id.clone()));
    assert_eq!(outputs["auth_issuer"], Value::from(issuer));
    let sign_in = outputs["auth_sign_in_url"].as_str().expect("sign-in url");
    assert!(
        sign_in.starts_with(
            "https://aimodelshare-playground-dev.auth.us-east-1.amazoncognito.com/oauth2/authorize?"
        ) && sign_in.contains(&format!("client_id={client_id}")),
        "{sign_in}"
    );

    // A rerun changes nothing.
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(&apply(), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    // Drift by hand: a weaker password policy, another callback, no admin
    // group; and a setting the deployer does not manage, which must survive.
    cognito
        .update_user_pool()
        .user_pool_id(&id)
        .deletion_protection(DeletionProtectionType::Active)
        .email_verification_subject("Welcome to the class")
        .policies(
            aws_sdk_cognitoidentityprovider::types::UserPoolPolicyType::builder()
                .password_policy(
                    aws_sdk_cognitoidentityprovider::types::PasswordPolicyType::builder()
                        .minimum_length(6)
                        .build(),
                )
                .build(),
        )
        .set_user_pool_tags(pool.user_pool_tags().cloned())
        .send()
        .await
        .expect("weaken the pool");
    cognito
        .update_user_pool_client()
        .user_pool_id(&id)
        .client_id(&client_id)
        .callback_urls("https://elsewhere.example/cb")
        .send()
        .await
        .expect("move the callback");
    cognito
        .delete_group()
        .user_pool_id(&id)
        .group_name("admin")
        .send()
        .await
        .expect("delete the group");
    let plan = with_pool(&["plan", "--env", "dev", "--artifact", "fn.zip"]);
    let shown = text(&plan);
    assert!(shown.contains("~ cognito_user_pool.sign_in"), "{shown}");
    for changed in ["sign_up", "client", "admin_group"] {
        assert!(shown.contains(changed), "{changed}: {shown}");
    }
    assert!(!shown.contains("-/+"), "never replaced: {shown}");
    assert_exit(&apply(), 0);
    let repaired = describe().await;
    assert_eq!(
        repaired
            .policies()
            .and_then(|policies| policies.password_policy())
            .and_then(|policy| policy.minimum_length()),
        Some(12)
    );
    assert_eq!(
        repaired.email_verification_subject(),
        Some("Welcome to the class"),
        "what the deployer does not manage is kept"
    );
    assert!(has_admin_group().await, "the admin group is back");
    let plan = with_pool(&[
        "plan",
        "--env",
        "dev",
        "--artifact",
        "fn.zip",
        "--detailed-exitcode",
    ]);
    assert_exit(&plan, 0);

    // Destroy keeps the pool and its account, and an apply adopts it again.
    cognito
        .admin_create_user()
        .user_pool_id(&id)
        .username("ada")
        .send()
        .await
        .expect("an account");
    let destroy = with_pool(&["destroy", "--env", "dev", "--auto-approve"]);
    let shown = text(&destroy);
    assert_exit(&destroy, 0);
    assert!(shown.contains("12 destroyed"), "{shown}");
    assert!(
        shown.contains("Kept: the Cognito user pool aimodelshare-playground-dev-users")
            && shown.contains("--delete-user-accounts"),
        "{shown}"
    );
    assert_eq!(pool_id().await.as_deref(), Some(id.as_str()));
    assert_eq!(account.api_id("dev").await, None);
    // Again: nothing else to destroy, and the pool is still kept and named.
    let again = with_pool(&["destroy", "--env", "dev", "--auto-approve"]);
    let shown = text(&again);
    assert_exit(&again, 0);
    assert!(
        shown.contains("Nothing to destroy in dev but what is kept")
            && shown.contains("Kept: the Cognito user pool"),
        "{shown}"
    );
    assert_exit(&apply(), 0);
    assert_eq!(
        pool_id().await.as_deref(),
        Some(id.as_str()),
        "adopted, not duplicated"
    );

    // Told to, destroy deletes it with its accounts, after lifting its protection.
    let destroy = with_pool(&[
        "destroy",
        "--env",
        "dev",
        "--auto-approve",
        "--delete-user-accounts",
    ]);
    let shown = text(&destroy);
    assert_exit(&destroy, 0);
    assert!(shown.contains("13 destroyed"), "{shown}");
    assert!(
        shown.contains("its accounts (1, as Cognito estimates them)"),
        "{shown}"
    );
    assert_eq!(pool_id().await, None);
}

/// Turning `auth_create_user_pool` off takes the authorizer off and leaves the
/// pool, its accounts and its record alone; an environment that never had a
/// pool makes no Cognito call (a deploy role bootstrapped before user pools
/// existed plans and destroys it as before).
#[tokio::test]
async fn turning_the_own_pool_off_leaves_the_pool_and_its_accounts() {
    let account = Account::new().await;
    let cognito_calls = |output: &Output| -> Vec<String> {
        logged_calls(output)
            .into_iter()
            .filter(|(service, _)| service == "Cognito Identity Provider")
            .map(|(_, operation)| operation)
            .collect()
    };
    let plain = account.deployer(&["-v", "plan", "--env", "dev", "--artifact", "fn.zip"]);
    assert_exit(&plain, 0);
    assert!(logged_calls(&plain).len() > 5, "the call log works");
    assert_eq!(cognito_calls(&plain), Vec::<String>::new());

    let on = [
        &[
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn.zip",
        ][..],
        &SIGN_IN_BY_OWN_POOL,
    ]
    .concat();
    assert_exit(&account.deployer(&on), 0);
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&account.config);
    let pools = || async {
        cognito
            .list_user_pools()
            .max_results(60)
            .send()
            .await
            .expect("pools")
            .user_pools()
            .iter()
            .filter_map(|pool| pool.id().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let [id] = &pools().await[..] else {
        panic!("one pool");
    };
    cognito
        .admin_create_user()
        .user_pool_id(id)
        .username("ada")
        .send()
        .await
        .expect("an account");

    let plan = account.deployer(&["plan", "--env", "dev", "--artifact", "fn.zip"]);
    let shown = text(&plan);
    assert_exit(&plan, 0);
    assert!(
        shown.contains(&format!(
            "user pool aimodelshare-playground-dev-users ({id}) stays"
        )),
        "{shown}"
    );
    assert!(
        !shown.contains("- cognito_user_pool"),
        "not deleted: {shown}"
    );
    assert!(shown.contains("The API is open"), "{shown}");
    assert_exit(&account.apply_dev(), 0);
    let api_id = account.api_id("dev").await.expect("api");
    let authorizers = aws_sdk_apigatewayv2::Client::new(&account.config)
        .get_authorizers()
        .api_id(&api_id)
        .send()
        .await
        .expect("authorizers");
    assert!(authorizers.items().is_empty(), "{authorizers:?}");
    assert_eq!(&pools().await[..], std::slice::from_ref(id));

    let destroy = account.deployer(&["destroy", "--env", "dev", "--auto-approve"]);
    let shown = text(&destroy);
    assert_exit(&destroy, 0);
    assert!(shown.contains("Kept: the Cognito user pool"), "{shown}");
    assert_eq!(
        &pools().await[..],
        std::slice::from_ref(id),
        "the accounts stay"
    );
    // The state kept the pool's record, so a destroy told to finds it, with
    // the setting still off.
    let destroy = account.deployer(&[
        "destroy",
        "--env",
        "dev",
        "--auto-approve",
        "--delete-user-accounts",
    ]);
    let shown = text(&destroy);
    assert_exit(&destroy, 0);
    assert!(shown.contains("1 destroyed"), "{shown}");
    assert_eq!(pools().await, Vec::<String>::new());
    let state = account.deployer(&["state", "list", "--env", "dev"]);
    assert!(
        !String::from_utf8_lossy(&state.stdout).contains("cognito_user_pool"),
        "{}",
        text(&state)
    );
}

/// The Time to Live of `table`: its status and attribute, as DynamoDB describes them.
async fn time_to_live(
    config: &aws_config::SdkConfig,
    table: &str,
) -> (Option<String>, Option<String>) {
    let described = aws_sdk_dynamodb::Client::new(config)
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .expect("time to live");
    let description = described.time_to_live_description();
    (
        description
            .and_then(|d| d.time_to_live_status())
            .map(|status| status.as_str().to_owned()),
        description
            .and_then(|d| d.attribute_name())
            .map(str::to_owned),
    )
}

/// The route throttling of `route_key` on the stage `stage` of `api_id`:
/// `(rate, burst)`, `None` when the route has no settings of its own.
async fn route_throttle(
    config: &aws_config::SdkConfig,
    api_id: &str,
    stage: &str,
    route_key: &str,
) -> Option<(Option<f64>, Option<i32>)> {
    let stage = aws_sdk_apigatewayv2::Client::new(config)
        .get_stage()
        .api_id(api_id)
        .stage_name(stage)
        .send()
        .await
        .expect("stage");
    stage
        .route_settings()
        .and_then(|settings| settings.get(route_key))
        .map(|settings| {
            (
                settings.throttling_rate_limit(),
                settings.throttling_burst_limit(),
            )
        })
}

/// Each session route's authorization type (`NONE` or `JWT`), by route key.
async fn session_route_authorization(
    config: &aws_config::SdkConfig,
    api_id: &str,
) -> Vec<(String, String)> {
    let routes = aws_sdk_apigatewayv2::Client::new(config)
        .get_routes()
        .api_id(api_id)
        .send()
        .await
        .expect("routes");
    let mut found: Vec<(String, String)> = routes
        .items()
        .iter()
        .filter(|route| {
            route
                .route_key()
                .is_some_and(|key| key.contains("/sessions"))
        })
        .map(|route| {
            (
                route.route_key().unwrap_or_default().to_owned(),
                route
                    .authorization_type()
                    .map_or("NONE", |kind| kind.as_str())
                    .to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

/// Sign-in sessions, as the deployer provisions them: Time to Live on `ttl`
/// on the table, `SESSION_TTL_SECONDS` for the function, and
/// `GET /sessions/{sessionId}` open (even where sign-in is required and reads
/// are not public) with a throttle of its own; each read back, changed in
/// place, and a rerun changing nothing.
#[tokio::test]
async fn sessions_get_time_to_live_and_an_open_read_route_with_a_throttle_of_its_own() {
    let account = Account::new().await;
    let config = &account.config;
    let read_route = schema::routes::READ_SESSION_ROUTE.route_key();
    assert_exit(&account.apply_dev(), 0);

    assert_eq!(
        time_to_live(config, "PlaygroundScores-dev").await,
        (
            Some("ENABLED".to_owned()),
            Some(schema::TIME_TO_LIVE.to_owned())
        ),
        "a created table gets Time to Live on `ttl`"
    );
    let api_id = account.api_id("dev").await.expect("api");
    assert_eq!(
        route_throttle(config, &api_id, "dev", &read_route).await,
        Some((Some(10.0), Some(20))),
        "the session read's own throttle, by default"
    );
    let stage = aws_sdk_apigatewayv2::Client::new(config)
        .get_stage()
        .api_id(&api_id)
        .stage_name("dev")
        .send()
        .await
        .expect("stage");
    let default = stage.default_route_settings().expect("default throttle");
    assert_eq!(
        (
            default.throttling_rate_limit(),
            default.throttling_burst_limit()
        ),
        (Some(100.0), Some(300)),
        "the other routes keep the stage's default"
    );
    let environment = || async {
        account
            .function("dev")
            .await
            .configuration()
            .and_then(|configuration| configuration.environment())
            .and_then(|environment| environment.variables())
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        environment()
            .await
            .get(schema::function_env::SESSION_TTL_SECONDS)
            .map(String::as_str),
        Some("720000")
    );
    let open = [
        ("GET /sessions/{sessionId}".to_owned(), "NONE".to_owned()),
        ("PATCH /sessions/{sessionId}".to_owned(), "NONE".to_owned()),
        ("POST /sessions".to_owned(), "NONE".to_owned()),
    ];
    assert_eq!(
        session_route_authorization(config, &api_id).await,
        open,
        "without sign-in every session route is open"
    );

    // A rerun plans nothing and makes no mutating call.
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

    // Changed in place: the route's throttle on the stage, the lifetime on the function.
    let changed = [
        "--var",
        "session_read_rate_limit=5",
        "--var",
        "session_read_burst_limit=8",
        "--var",
        "session_lifetime_s=3600",
    ];
    let plan = account.deployer(
        &[
            &changed[..],
            &["plan", "--env", "dev", "--artifact", "fn.zip"],
        ]
        .concat(),
    );
    assert_exit(&plan, 0);
    let shown = text(&plan);
    assert!(
        shown.contains("~ apigatewayv2_api.http") && shown.contains("route_throttles"),
        "{shown}"
    );
    assert!(shown.contains("SESSION_TTL_SECONDS"), "{shown}");
    assert!(!shown.contains("time_to_live"), "{shown}");
    let apply_changed = |extra: &[&str]| {
        account.deployer(
            &[
                &changed[..],
                extra,
                &[
                    "apply",
                    "--env",
                    "dev",
                    "--auto-approve",
                    "--artifact",
                    "fn.zip",
                ],
            ]
            .concat(),
        )
    };
    assert_exit(&apply_changed(&[]), 0);
    assert_eq!(
        route_throttle(config, &api_id, "dev", &read_route).await,
        Some((Some(5.0), Some(8)))
    );
    assert_eq!(
        environment()
            .await
            .get(schema::function_env::SESSION_TTL_SECONDS)
            .map(String::as_str),
        Some("3600")
    );

    // Sign-in required, reads not public: starting and refreshing a session
    // are behind the authorizer, reading one is not.
    let signed_in = [
        "--var",
        "auth_issuer=https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
        "--var",
        "auth_audiences=app-client-1",
        "--var",
        "allow_public_read=false",
    ];
    assert_exit(&apply_changed(&signed_in), 0);
    assert_eq!(
        session_route_authorization(config, &api_id).await,
        [
            ("GET /sessions/{sessionId}".to_owned(), "NONE".to_owned()),
            ("PATCH /sessions/{sessionId}".to_owned(), "JWT".to_owned()),
            ("POST /sessions".to_owned(), "JWT".to_owned()),
        ]
    );
    assert_eq!(
        route_throttle(config, &api_id, "dev", &read_route).await,
        Some((Some(5.0), Some(8))),
        "the open route keeps its throttle"
    );
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(&apply_changed(&signed_in), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    // Drift by hand is repaired: the route's throttle loosened.
    aws_sdk_apigatewayv2::Client::new(config)
        .update_stage()
        .api_id(&api_id)
        .stage_name("dev")
        .route_settings(
            &read_route,
            aws_sdk_apigatewayv2::types::RouteSettings::builder()
                .throttling_rate_limit(500.0)
                .throttling_burst_limit(1000)
                .build(),
        )
        .send()
        .await
        .expect("loosen the route's throttle by hand");
    assert_eq!(
        route_throttle(config, &api_id, "dev", &read_route).await,
        Some((Some(500.0), Some(1000)))
    );
    let drifted = account.deployer(
        &[
            &changed[..],
            &signed_in[..],
            &[
                "plan",
                "--env",
                "dev",
                "--detailed-exitcode",
                "--artifact",
                "fn.zip",
            ],
        ]
        .concat(),
    );
    assert_exit(&drifted, 2);
    assert_exit(&apply_changed(&signed_in), 0);
    assert_eq!(
        route_throttle(config, &api_id, "dev", &read_route).await,
        Some((Some(5.0), Some(8)))
    );

    // Out of range: refused before any AWS call.
    emulator::clear_served_requests(account.emulator.endpoint());
    for (var, message) in [
        (
            "session_lifetime_s=30",
            "session_lifetime_s = 30 must be from 60 (a minute) to 31536000 seconds (a year)",
        ),
        (
            "session_read_rate_limit=0",
            "session_read_rate_limit = 0 must be from 1 to 10000",
        ),
    ] {
        let refused = account.deployer(&["--var", var, "plan", "--env", "dev"]);
        assert_exit(&refused, 1);
        assert!(text(&refused).contains(message), "{}", text(&refused));
    }
    assert_eq!(
        emulator::served_requests(account.emulator.endpoint()).len(),
        0,
        "no AWS call"
    );
}

/// Create `table` by hand with the scores table's keys, and Time to Live on
/// `time_to_live` when given.
async fn table_by_hand(config: &aws_config::SdkConfig, table: &str, time_to_live: Option<&str>) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TimeToLiveSpecification,
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let mut request = dynamodb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, key_type) in [("tableId", KeyType::Hash), ("username", KeyType::Range)] {
        request = request
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(key_type)
                    .build()
                    .expect("key"),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute"),
            );
    }
    request.send().await.expect("table by hand");
    if let Some(attribute) = time_to_live {
        dynamodb
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(attribute)
                    .build()
                    .expect("specification"),
            )
            .send()
            .await
            .expect("time to live by hand");
    }
}

#[tokio::test]
async fn an_adopted_table_gets_time_to_live_in_place_unless_it_is_on_another_attribute() {
    let account = Account::new().await;
    let config = &account.config;

    // Made by hand without Time to Live: adopted, and Time to Live planned as
    // an in-place change.
    table_by_hand(config, "PlaygroundScores-dev", None).await;
    assert_eq!(
        time_to_live(config, "PlaygroundScores-dev")
            .await
            .0
            .as_deref(),
        Some("DISABLED")
    );
    let plan = account.deployer(&["plan", "--env", "dev", "--artifact", "fn.zip"]);
    assert_exit(&plan, 0);
    let shown = text(&plan);
    assert!(
        shown.contains("~ dynamodb_table.scores")
            && shown
                .lines()
                .any(|line| line.trim_start().starts_with("~ time_to_live ")
                    && line.ends_with(r#"= "disabled" -> "ttl""#)),
        "{shown}"
    );
    assert!(!shown.contains("+ dynamodb_table.scores"), "{shown}");
    assert_exit(&account.apply_dev(), 0);
    assert_eq!(
        time_to_live(config, "PlaygroundScores-dev").await,
        (Some("ENABLED".to_owned()), Some("ttl".to_owned()))
    );
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(&account.apply_dev(), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    // Made by hand with Time to Live on another attribute: not switched. The
    // plan fails saying why and what to do, and nothing changes.
    table_by_hand(config, "PlaygroundScores-qa", Some("expiresAt")).await;
    emulator::clear_served_requests(account.emulator.endpoint());
    let refused = account.deployer(&["plan", "--env", "qa", "--artifact", "fn.zip"]);
    assert_exit(&refused, 1);
    let shown = text(&refused);
    for part in [
        r#"dynamodb_table.scores (PlaygroundScores-qa) has time_to_live = "expiresAt""#,
        "one Time to Live change per table per hour",
        "aws dynamodb update-time-to-live --table-name PlaygroundScores-qa \
         --time-to-live-specification Enabled=false,AttributeName=<the attribute above>",
        "says DISABLED, and apply again",
    ] {
        assert!(shown.contains(part), "{part}: {shown}");
    }
    let apply = account.deployer(&[
        "apply",
        "--env",
        "qa",
        "--auto-approve",
        "--artifact",
        "fn.zip",
    ]);
    assert_exit(&apply, 1);
    assert!(
        text(&apply).contains("only from \"disabled\""),
        "{}",
        text(&apply)
    );
    assert_eq!(account.mutating_requests(), Vec::<String>::new());
    assert_eq!(
        time_to_live(config, "PlaygroundScores-qa").await,
        (Some("ENABLED".to_owned()), Some("expiresAt".to_owned()))
    );
}
