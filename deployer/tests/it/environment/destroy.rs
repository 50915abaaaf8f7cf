//! Destroy: the final backup first (and restore bringing every item back), a failed backup
//! stopping it, no state refused, and side-by-side environments each destroyed alone.

use super::*;

/// Put `count` user items into `table` (and one metadata item).
pub(super) async fn put_users(config: &aws_config::SdkConfig, table: &str, count: usize) {
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
    let account = Account::bootstrapped().await;
    assert_exit(&account.apply_dev(), 0);
    let config = &account.config;
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let described = dynamodb
        .describe_table()
        .table_name(&names("dev").table)
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
    put_users(config, &names("dev").table, 30).await;

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
        .find_map(|line| line.strip_prefix(&format!("Final backup of {}: ", names("dev").table)))
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
        .bucket(settings().state_bucket)
        .prefix("deployer/dev/state.json")
        .send()
        .await
        .expect("versions");
    let mut recorded = false;
    // The prefix also names the lock file's versions (`state.json.tflock`).
    for version in versions
        .versions()
        .iter()
        .filter(|version| version.key() == Some("deployer/dev/state.json"))
    {
        let object = s3
            .get_object()
            .bucket(settings().state_bucket)
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
    assert_eq!(item_count(config, &names("dev").table).await, 30);
    let again = account.deployer(&["restore", "--env", "dev", "--backup", &arn]);
    assert_exit(&again, 1);
    assert!(text(&again).contains("exists"), "{}", text(&again));

    assert_exit(&account.apply_dev(), 0);
    let described = dynamodb
        .describe_table()
        .table_name(&names("dev").table)
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
        .table_name(&names("dev").table)
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
    assert_ranked_exactly(&dynamodb, &names("dev").table, &ranked).await;
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
        .table_name(&names("dev").table)
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
    let account = Account::bootstrapped().await;
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
    let deletes: Vec<String> = account
        .changes_besides_the_lock()
        .into_iter()
        // The lock's release is expected; nothing else may go.
        .filter(|call| {
            call.contains("Delete") || call.starts_with("DELETE") || call.contains("UpdateTable")
        })
        .collect();
    assert!(
        deletes.is_empty(),
        "nothing was deleted or unprotected: {deletes:?}"
    );
    assert!(account.api_id("dev").await.is_some());
    let table = aws_sdk_dynamodb::Client::new(&account.config)
        .describe_table()
        .table_name(&names("dev").table)
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
    let account = Account::bootstrapped().await;
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

#[tokio::test]
async fn environments_are_isolated_and_destroy_leaves_nothing_of_theirs() {
    let account = Account::bootstrapped().await;
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
            .any(|t| t == &names("stage").table)
    );
    assert!(
        tables
            .table_names()
            .iter()
            .any(|t| t == &names("dev").table)
    );
    assert!(
        aws_sdk_iam::Client::new(config)
            .get_role()
            .role_name(&names("stage").lambda_role)
            .send()
            .await
            .is_err()
    );
    assert!(
        aws_sdk_lambda::Client::new(config)
            .get_function()
            .function_name(&names("stage").function)
            .send()
            .await
            .is_err()
    );
    assert_eq!(account.api_id("stage").await, None);
    assert!(account.api_id("dev").await.is_some());
    let groups = aws_sdk_cloudwatchlogs::Client::new(config)
        .describe_log_groups()
        .log_group_name_prefix(format!("/aws/lambda/{}-stage", settings().name_prefix))
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
