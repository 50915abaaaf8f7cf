//! `deployer bootstrap` against a private emulator per test (the GitHub OIDC
//! provider is one per account, so tests cannot share an account).

use std::path::Path;

use std::process::Command;
use std::sync::LazyLock;

use crate::support::{self, Account, assert_exit, settings, text};
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use serde_json::Value;

// The bootstrap stack's names, as the deployer's settings give them.
static BUCKET: LazyLock<String> = LazyLock::new(|| settings().state_bucket);
static LOCK_TABLE: LazyLock<String> = LazyLock::new(|| settings().lock_table);
static ROLE: LazyLock<String> = LazyLock::new(|| settings().deploy_role_name);
static POLICY_ARN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "arn:aws:iam::{}:policy/{}",
        emulator::ACCOUNT_ID,
        settings().deploy_policy_name
    )
});
const PROVIDER_ARN: &str =
    "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com";

impl Account {
    async fn bucket_policy(&self) -> Value {
        let policy = self
            .s3
            .get_bucket_policy()
            .bucket(BUCKET.as_str())
            .send()
            .await
            .expect("policy");
        serde_json::from_str(policy.policy().expect("policy text")).expect("policy JSON")
    }

    async fn role_trust(&self) -> Value {
        let role = self
            .iam
            .get_role()
            .role_name(ROLE.as_str())
            .send()
            .await
            .expect("role");
        decode(
            role.role()
                .expect("role")
                .assume_role_policy_document()
                .expect("trust"),
        )
    }
}

fn decode(text: &str) -> Value {
    deployer::engine::policy::decode(text)
        .unwrap_or_else(|| panic!("not a policy document: {text}"))
}

/// Whether the lock table exists.
async fn lock_table_exists(account: &Account) -> bool {
    account
        .dynamodb
        .describe_table()
        .table_name(LOCK_TABLE.as_str())
        .send()
        .await
        .is_ok()
}

/// The lock table is there, in Terraform's layout, converged.
async fn assert_lock_table(account: &Account) {
    let table = account
        .dynamodb
        .describe_table()
        .table_name(LOCK_TABLE.as_str())
        .send()
        .await
        .expect("lock table");
    let table = table.table().expect("table");
    assert_eq!(table.key_schema().len(), 1);
    assert_eq!(table.key_schema()[0].attribute_name(), "LockID");
    assert_eq!(
        table.attribute_definitions()[0].attribute_type().as_str(),
        "S"
    );
    assert_eq!(
        table
            .billing_mode_summary()
            .and_then(|s| s.billing_mode())
            .map(|m| m.as_str()),
        Some("PAY_PER_REQUEST")
    );
    let backups = account
        .dynamodb
        .describe_continuous_backups()
        .table_name(LOCK_TABLE.as_str())
        .send()
        .await
        .expect("backups");
    let pitr = backups
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|d| d.point_in_time_recovery_status())
        .map(|s| s.as_str().to_owned());
    assert_eq!(pitr.as_deref(), Some("ENABLED"));
}

async fn assert_converged(account: &Account) {
    let s3 = &account.s3;
    let versioning = s3
        .get_bucket_versioning()
        .bucket(BUCKET.as_str())
        .send()
        .await
        .expect("versioning");
    assert_eq!(versioning.status(), Some(&BucketVersioningStatus::Enabled));
    let encryption = s3
        .get_bucket_encryption()
        .bucket(BUCKET.as_str())
        .send()
        .await
        .expect("encryption");
    let algorithm = encryption
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .map(|d| d.sse_algorithm().as_str().to_owned());
    assert_eq!(algorithm.as_deref(), Some("AES256"));
    let block = s3
        .get_public_access_block()
        .bucket(BUCKET.as_str())
        .send()
        .await
        .expect("public access block");
    let block = block
        .public_access_block_configuration()
        .expect("configuration");
    assert_eq!(
        (
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let policy = account.bucket_policy().await;
    let statement = &policy["Statement"][0];
    assert_eq!(statement["Effect"], "Deny");
    assert_eq!(
        statement["Condition"]["Bool"]["aws:SecureTransport"],
        "false"
    );
    let tags = s3
        .get_bucket_tagging()
        .bucket(BUCKET.as_str())
        .send()
        .await
        .expect("tags");
    assert!(
        tags.tag_set()
            .iter()
            .any(|t| t.key() == "managed-by" && t.value() == "deployer")
    );

    let providers = account
        .iam
        .list_open_id_connect_providers()
        .send()
        .await
        .expect("providers");
    assert_eq!(
        providers.open_id_connect_provider_list().len(),
        1,
        "one provider, never a duplicate"
    );
    let provider = account
        .iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(PROVIDER_ARN)
        .send()
        .await
        .expect("provider");
    assert_eq!(provider.client_id_list(), ["sts.amazonaws.com"]);
    assert_eq!(
        provider.thumbprint_list(),
        ["6938fd4d98bab03faadb97b34396831e3780aea1"]
    );

    let trust = account.role_trust().await;
    let statements = trust["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 1, "{trust}");
    assert_eq!(statements[0]["Principal"]["Federated"], PROVIDER_ARN);
    assert_eq!(statements[0]["Action"], "sts:AssumeRoleWithWebIdentity");
    assert_eq!(
        statements[0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:aud"],
        "sts.amazonaws.com"
    );
    assert_eq!(
        statements[0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"],
        serde_json::json!([
            "repo:octo-org/playground:environment:dev",
            "repo:octo-org/playground:environment:stage",
            "repo:octo-org/playground:environment:prod"
        ]),
        "exactly the GitHub environments the workflows deploy from: {trust}"
    );
    assert!(
        statements[0]["Condition"].get("StringLike").is_none(),
        "no pattern matching: {trust}"
    );
    assert_eq!(
        support::attached_policy_arns(&account.config, ROLE.as_str()).await,
        [POLICY_ARN.as_str()]
    );

    // The execution boundary: the function's item operations and its logs, nothing else.
    let boundary =
        support::managed_policy(&account.config, &settings().execution_boundary_name()).await;
    let boundary_actions: Vec<&str> = boundary["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|statement| match &statement["Action"] {
            Value::String(action) => vec![action.as_str()],
            Value::Array(actions) => actions.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(
        boundary_actions,
        [
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            // A user's old rank entry; a transaction's check that a table exists.
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:DescribeTable",
            "dynamodb:Query",
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:Query",
            "logs:CreateLogStream",
            "logs:PutLogEvents"
        ],
        "{boundary}"
    );
    let every_table = format!("table/{}-*", settings().table_name);
    assert!(boundary.to_string().contains(&every_table), "{boundary}");

    let document = support::deploy_policy(&account.config).await;
    let text = document.to_string();
    assert!(
        text.contains(&every_table),
        "the deploy role can manage its tables: {text}"
    );
    // Execution roles are created and given policies only with the boundary.
    let boundary_arn = support::policy_arn(&settings().execution_boundary_name());
    for statement in document["Statement"].as_array().expect("statements") {
        let actions = statement["Action"].to_string();
        if statement["Effect"] == "Allow"
            && [
                "iam:CreateRole",
                "iam:AttachRolePolicy",
                "iam:PutRolePermissionsBoundary",
            ]
            .iter()
            .any(|action| actions.contains(action))
        {
            assert_eq!(
                statement["Condition"]["ArnEquals"]["iam:PermissionsBoundary"], boundary_arn,
                "{statement}"
            );
        }
    }
    let denied_actions: String = document["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|statement| statement["Effect"] == "Deny")
        .map(|statement| statement["Action"].to_string())
        .collect();
    for action in [
        "iam:DeleteRolePermissionsBoundary",
        "iam:CreatePolicyVersion",
        "iam:SetDefaultPolicyVersion",
        "iam:UpdateAssumeRolePolicy",
    ] {
        assert!(
            denied_actions.contains(action),
            "{action} denied: {denied_actions}"
        );
    }
    assert!(
        !text.contains("table/aimodelshare-*"),
        "not the legacy pattern: {text}"
    );
    // The bootstrap's own state and lock are out of the deploy role's reach.
    let denied: Vec<(&Value, &Value)> = document["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|statement| statement["Effect"] == "Deny")
        .map(|statement| (&statement["Resource"], &statement["Condition"]))
        .collect();
    // Its state object and its lock file (`.tflock`).
    for key in ["state.json", "state.json.tflock"] {
        let arn = Value::String(format!("arn:aws:s3:::{}/deployer/bootstrap/{key}", *BUCKET));
        assert!(
            denied.iter().any(|(resource, _)| *resource == &arn
                || resource.as_array().is_some_and(|arns| arns.contains(&arn))),
            "{key}: {denied:?}"
        );
    }
    assert!(
        denied.iter().any(
            |(_, condition)| condition["ForAnyValue:StringEquals"]["dynamodb:LeadingKeys"][0]
                == format!("{}/deployer/bootstrap/state.json", *BUCKET).as_str()
        ),
        "{denied:?}"
    );
    for statement in document["Statement"].as_array().expect("statements") {
        let wildcard = |key: &str| match &statement[key] {
            Value::String(value) => value == "*",
            Value::Array(values) => values.iter().any(|value| value == "*"),
            _ => false,
        };
        assert!(
            !(wildcard("Action") && wildcard("Resource")),
            "no * on *: {statement}"
        );
        if statement["Action"] == "iam:PassRole" {
            assert_eq!(
                statement["Condition"]["StringEquals"]["iam:PassedToService"],
                "lambda.amazonaws.com"
            );
            assert!(
                statement["Resource"]
                    .as_str()
                    .unwrap_or_default()
                    .ends_with("-lambda-role")
            );
        }
    }
}

#[tokio::test]
async fn bootstrap_from_empty_then_a_rerun_changes_nothing() {
    let account = Account::new().await;
    let output = account.deployer(&["bootstrap", "--auto-approve"]);
    assert_exit(&output, 0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("deploy_role_arn = {}", support::role_arn(&ROLE))),
        "{stdout}"
    );
    assert!(stdout.contains("AWS_ROLE_TO_ASSUME"), "{stdout}");
    assert!(stdout.contains("AWS_PLAN_ROLE_TO_ASSUME"), "{stdout}");
    assert!(stdout.contains("AWS_PREVIEW_ROLE_TO_ASSUME"), "{stdout}");
    assert_converged(&account).await;
    assert!(
        !lock_table_exists(&account).await,
        "a new bootstrap creates no lock table (lock_backend defaults to s3)"
    );

    // The bootstrap keeps its own state in the bucket.
    let state = account
        .s3
        .get_object()
        .bucket(BUCKET.as_str())
        .key("deployer/bootstrap/state.json")
        .send()
        .await
        .expect("bootstrap state in the bucket");
    assert_eq!(
        state.server_side_encryption().map(|s| s.as_str()),
        Some("AES256")
    );

    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(
        &account.deployer(&["bootstrap", "--plan", "--detailed-exitcode"]),
        0,
    );
    assert_exit(&account.deployer(&["bootstrap", "--auto-approve"]), 0);
    assert_eq!(
        account.mutating_requests(),
        Vec::<String>::new(),
        "a rerun makes no mutating call"
    );
    assert!(
        !emulator::served_requests(account.emulator.endpoint()).is_empty(),
        "it did read"
    );

    let output = account.deployer(&["output", "--env", "bootstrap", "--json"]);
    assert_exit(&output, 0);
    let outputs: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(outputs["deploy_role_arn"], support::role_arn(&ROLE));
    assert_eq!(outputs["state_bucket"], *BUCKET);
    assert_eq!(outputs["oidc_provider_arn"], PROVIDER_ARN);
    assert_eq!(
        outputs["plan_role_arn"],
        support::role_arn(&settings().plan_role_name)
    );
    assert_eq!(
        outputs["plan_role_subjects"],
        serde_json::json!(["repo:octo-org/playground:environment:plan"])
    );
    // The plan role has the plan policy, and nothing else.
    assert_eq!(
        support::attached_policy_names(&account.config, &settings().plan_role_name).await,
        [settings().plan_policy_name]
    );
    // The preview role: this repository's pull requests and its sweeper, with
    // the preview policy, and nothing else.
    assert_eq!(
        outputs["preview_role_arn"],
        support::role_arn(&settings().preview_role_name)
    );
    assert_eq!(
        outputs["preview_role_subjects"],
        serde_json::json!([
            "repo:octo-org/playground:pull_request",
            "repo:octo-org/playground:environment:preview-sweep"
        ])
    );
    assert_eq!(
        support::attached_policy_names(&account.config, &settings().preview_role_name).await,
        [settings().preview_policy_name]
    );
    let document = support::managed_policy(&account.config, &settings().preview_policy_name).await;
    let states: Vec<&Value> = document["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|statement| statement["Sid"] == "PreviewStateObjects")
        .map(|statement| &statement["Resource"])
        .collect();
    assert_eq!(
        states,
        [&Value::from(format!(
            "arn:aws:s3:::{}/deployer/pr-*",
            *BUCKET
        ))],
        "the preview role's state is pr-* only: {document}"
    );
}

#[tokio::test]
async fn drift_is_planned_and_repaired() {
    let account = Account::new().await;
    assert_exit(&account.deployer(&["bootstrap", "--auto-approve"]), 0);

    account
        .s3
        .put_bucket_versioning()
        .bucket(BUCKET.as_str())
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .expect("suspend versioning");
    account
        .s3
        .delete_public_access_block()
        .bucket(BUCKET.as_str())
        .send()
        .await
        .expect("delete block");
    let mut trust = account.role_trust().await;
    trust["Statement"].as_array_mut().expect("statements").push(serde_json::json!({
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"
    }));
    account
        .iam
        .update_assume_role_policy()
        .role_name(ROLE.as_str())
        .policy_document(trust.to_string())
        .send()
        .await
        .expect("widen trust");

    let plan = account.deployer(&["bootstrap", "--plan", "--detailed-exitcode"]);
    assert_exit(&plan, 2);
    let shown = String::from_utf8_lossy(&plan.stdout);
    assert!(
        shown.contains("~ versioning") && shown.contains("\"Suspended\" -> \"Enabled\""),
        "{shown}"
    );
    assert!(shown.contains("~ public_access_block"), "{shown}");
    assert!(
        shown.contains("~ trust_policy") && shown.contains("999999999999"),
        "{shown}"
    );
    assert!(
        shown.contains("Plan: 0 to add, 2 to change, 0 to destroy."),
        "{shown}"
    );

    let json = account.deployer(&["bootstrap", "--plan", "--json"]);
    assert_exit(&json, 0);
    let plan: Value = serde_json::from_slice(&json.stdout).expect("JSON plan");
    assert_eq!(plan["change"], 2);

    assert_exit(&account.deployer(&["bootstrap", "--auto-approve"]), 0);
    assert_converged(&account).await;
    assert_exit(
        &account.deployer(&["bootstrap", "--plan", "--detailed-exitcode"]),
        0,
    );
}

#[tokio::test]
async fn existing_resources_are_adopted_not_duplicated() {
    let account = Account::new().await;
    account
        .s3
        .create_bucket()
        .bucket(BUCKET.as_str())
        .send()
        .await
        .expect("bucket");
    account
        .s3
        .put_object()
        .bucket(BUCKET.as_str())
        .key("playground/terraform.tfstate")
        .body(b"{}".to_vec().into())
        .send()
        .await
        .expect("legacy object");
    account
        .dynamodb
        .create_table()
        .table_name(LOCK_TABLE.as_str())
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("LockID")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .expect("key"),
        )
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("LockID")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .send()
        .await
        .expect("lock table");
    account
        .iam
        .create_open_id_connect_provider()
        .url("https://token.actions.githubusercontent.com")
        .client_id_list("sts.amazonaws.com")
        .thumbprint_list("1c58a3a8518e8759bf075b76b750d4f2df264fcd")
        .send()
        .await
        .expect("provider");

    let plan = account.deployer(&["bootstrap", "--plan", "--detailed-exitcode"]);
    assert_exit(&plan, 2);
    let shown = String::from_utf8_lossy(&plan.stdout);
    assert!(
        shown.contains("~ s3_bucket.state"),
        "bucket updated in place: {shown}"
    );
    assert!(
        shown.contains("~ dynamodb_table.locks"),
        "table updated in place: {shown}"
    );
    assert!(
        shown.contains("~ iam_openid_connect_provider.github"),
        "provider adopted: {shown}"
    );
    assert!(
        shown.contains("Plan: 7 to add, 3 to change, 0 to destroy."),
        "{shown}"
    );

    assert_exit(&account.deployer(&["bootstrap", "--auto-approve"]), 0);
    assert_converged(&account).await;
    // lock_backend unset and the table there: kept and converged (`both` applies).
    assert_lock_table(&account).await;
    let tables = account.dynamodb.list_tables().send().await.expect("tables");
    assert_eq!(tables.table_names(), [LOCK_TABLE.as_str()]);
    let legacy = account
        .s3
        .head_object()
        .bucket(BUCKET.as_str())
        .key("playground/terraform.tfstate")
        .send()
        .await;
    assert!(legacy.is_ok(), "existing objects are kept");
    assert_exit(
        &account.deployer(&["bootstrap", "--plan", "--detailed-exitcode"]),
        0,
    );
}

#[tokio::test]
async fn bootstrap_without_a_repository_fails_before_any_aws_call_saying_how_to_set_it() {
    let account = Account::new().await;
    std::fs::write(account.dir.path().join("deployer.toml"), "").expect("config");
    emulator::clear_served_requests(account.emulator.endpoint());
    for args in [
        &["bootstrap", "--plan"][..],
        &["bootstrap", "--auto-approve"][..],
    ] {
        let output = account.deployer(args);
        assert_exit(&output, 1);
        let shown = text(&output);
        assert!(
            shown.contains("github_repository")
                && shown.contains("--var github_repository=owner/repo"),
            "{shown}"
        );
    }
    let served = emulator::served_requests(account.emulator.endpoint());
    assert!(served.is_empty(), "no AWS call: {served:?}");
    // --var is one way to set it; the subjects follow the repository.
    let output = account.deployer(&[
        "--var",
        "github_repository=someone/else",
        "bootstrap",
        "--plan",
    ]);
    assert_exit(&output, 0);
    assert!(
        text(&output).contains("repo:someone/else:environment:prod"),
        "the plan shows the subjects: {}",
        text(&output)
    );
}

#[tokio::test]
async fn bad_input_and_missing_approval_create_nothing() {
    let account = Account::new().await;
    let write = |text: &str| {
        std::fs::write(account.dir.path().join("deployer.toml"), text).expect("config")
    };

    write("github_repository = \"not a repo\"\n");
    let output = account.deployer(&["bootstrap", "--auto-approve"]);
    assert_exit(&output, 1);
    assert!(
        text(&output).contains("github_repository"),
        "{}",
        text(&output)
    );

    write("region = [\n");
    assert_exit(&account.deployer(&["bootstrap", "--auto-approve"]), 1);
    support::write_config(account.dir.path());
    assert_exit(
        &account.deployer(&["--var", "lock_tabel=x", "bootstrap"]),
        1,
    );

    // Without a terminal and without --auto-approve nothing is applied.
    let output = account.deployer(&["bootstrap"]);
    assert_exit(&output, 1);
    assert!(
        text(&output).contains("--auto-approve"),
        "{}",
        text(&output)
    );

    assert_eq!(
        account.mutating_requests(),
        Vec::<String>::new(),
        "nothing was created"
    );
    let buckets = account.s3.list_buckets().send().await.expect("buckets");
    assert!(buckets.buckets().is_empty());
    assert!(
        !Path::new(&account.dir.path().join(".deployer/bootstrap.lock")).exists(),
        "no lock left behind"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(account.dir.path())
        .envs(emulator::aws_env("http://127.0.0.1:9"))
        .args(["bootstrap", "--plan"])
        .output()
        .expect("run");
    assert_exit(&output, 1);
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("Connection refused") && message.trim().lines().count() == 1,
        "{message}"
    );
}

/// Object versions in the state bucket, as (key, version id).
async fn bucket_versions(account: &Account) -> Vec<(String, String)> {
    let listing = account
        .s3
        .list_object_versions()
        .bucket(BUCKET.as_str())
        .send()
        .await
        .expect("versions");
    listing
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap_or_default().to_owned(),
                v.version_id().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn destroy_bootstrap_keeps_what_it_adopted_and_a_bucket_holding_others_objects() {
    let account = Account::new().await;
    // A legacy Terraform deployment: its state bucket (two versions of its
    // state), its lock table and GitHub's OIDC provider, all adopted.
    account
        .s3
        .create_bucket()
        .bucket(BUCKET.as_str())
        .send()
        .await
        .expect("bucket");
    account
        .s3
        .put_bucket_versioning()
        .bucket(BUCKET.as_str())
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("versioning");
    for body in [b"{\"serial\":1}".to_vec(), b"{\"serial\":2}".to_vec()] {
        account
            .s3
            .put_object()
            .bucket(BUCKET.as_str())
            .key("aimodelshare/infra/terraform.tfstate")
            .body(body.into())
            .send()
            .await
            .expect("legacy state");
    }
    account
        .iam
        .create_open_id_connect_provider()
        .url("https://token.actions.githubusercontent.com")
        .client_id_list("sts.amazonaws.com")
        .thumbprint_list("6938fd4d98bab03faadb97b34396831e3780aea1")
        .send()
        .await
        .expect("provider");
    assert_exit(&account.deployer(&["bootstrap", "--auto-approve"]), 0);
    let legacy_before: Vec<_> = bucket_versions(&account)
        .await
        .into_iter()
        .filter(|(key, _)| key.starts_with("aimodelshare/"))
        .collect();
    assert_eq!(legacy_before.len(), 2);

    let output = account.deployer(&["destroy", "--bootstrap", "--auto-approve"]);
    assert_exit(&output, 0);
    let shown = text(&output);
    assert!(
        shown.contains("Kept: s3_bucket.state")
            && shown.contains("aimodelshare/infra/terraform.tfstate"),
        "{shown}"
    );
    assert!(
        shown.contains("Kept: iam_openid_connect_provider.github") && shown.contains("adopted"),
        "{shown}"
    );
    // The result says again what was kept, below the plan's notes.
    let result = String::from_utf8_lossy(&output.stdout);
    assert!(
        result.contains("Destroy complete")
            && result.contains("Kept: s3_bucket.state")
            && result.contains("Kept: iam_openid_connect_provider.github"),
        "{result}"
    );
    // Kept: the bucket with every version of the legacy state, the adopted provider.
    let after = bucket_versions(&account).await;
    assert_eq!(
        after
            .iter()
            .filter(|(key, _)| key.starts_with("aimodelshare/"))
            .cloned()
            .collect::<Vec<_>>(),
        legacy_before,
        "the legacy state and its history are untouched"
    );
    assert!(
        after.iter().all(|(key, _)| !key.starts_with("deployer/")),
        "the deployer's own objects are gone: {after:?}"
    );
    assert!(
        account
            .iam
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(PROVIDER_ARN)
            .send()
            .await
            .is_ok(),
        "the adopted provider serves other roles too"
    );
    // Deleted: what bootstrap created.
    assert!(
        account
            .iam
            .get_role()
            .role_name(ROLE.as_str())
            .send()
            .await
            .is_err()
    );
    assert!(
        account
            .dynamodb
            .describe_table()
            .table_name(LOCK_TABLE.as_str())
            .send()
            .await
            .is_err(),
        "no lock table: bootstrap creates none unless lock_backend uses it"
    );

    // --force deletes the adopted provider too; a bucket holding others' objects stays regardless.
    assert_exit(&account.deployer(&["bootstrap", "--auto-approve"]), 0);
    let output = account.deployer(&["destroy", "--bootstrap", "--auto-approve", "--force"]);
    assert_exit(&output, 0);
    assert!(
        account
            .iam
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(PROVIDER_ARN)
            .send()
            .await
            .is_err(),
        "{}",
        text(&output)
    );
    assert!(
        account
            .s3
            .head_bucket()
            .bucket(BUCKET.as_str())
            .send()
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn an_object_s3_will_not_delete_stops_the_emptying_naming_it() {
    let account = Account::new().await;
    account
        .s3
        .create_bucket()
        .bucket(BUCKET.as_str())
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("bucket with object lock");
    assert_exit(&account.deployer(&["bootstrap", "--auto-approve"]), 0);
    account
        .s3
        .put_object()
        .bucket(BUCKET.as_str())
        .key("deployer/old/state.json")
        .body(b"{}".to_vec().into())
        .send()
        .await
        .expect("object");
    account
        .s3
        .put_object_legal_hold()
        .bucket(BUCKET.as_str())
        .key("deployer/old/state.json")
        .legal_hold(
            aws_sdk_s3::types::ObjectLockLegalHold::builder()
                .status(aws_sdk_s3::types::ObjectLockLegalHoldStatus::On)
                .build(),
        )
        .send()
        .await
        .expect("legal hold");
    let output = account.deployer(&["destroy", "--bootstrap", "--auto-approve", "--force"]);
    assert_exit(&output, 1);
    let shown = text(&output);
    assert!(
        shown.contains("deployer/old/state.json") && shown.contains("AccessDenied"),
        "the key and the error code are named: {shown}"
    );
}

#[tokio::test]
async fn destroy_bootstrap_refuses_while_environments_have_state_then_removes_everything() {
    let account = Account::new().await;
    assert_exit(&account.deployer(&["bootstrap", "--auto-approve"]), 0);
    // An environment's state, with several versions, as an apply would leave it.
    for body in [
        &b"{\"format_version\":1}"[..],
        b"{\"format_version\":1,\"serial\":2}",
    ] {
        account
            .s3
            .put_object()
            .bucket(BUCKET.as_str())
            .key("deployer/dev/state.json")
            .body(body.to_vec().into())
            .send()
            .await
            .expect("environment state");
    }
    account
        .s3
        .delete_object()
        .bucket(BUCKET.as_str())
        .key("deployer/old/state.json")
        .send()
        .await
        .expect("delete marker");

    let refused = account.deployer(&["destroy", "--bootstrap", "--auto-approve"]);
    assert_exit(&refused, 1);
    assert!(
        text(&refused).contains("dev") && text(&refused).contains("--force"),
        "{}",
        text(&refused)
    );
    let unapproved = account.deployer(&["destroy", "--bootstrap", "--force"]);
    assert_exit(&unapproved, 1);
    assert!(
        text(&unapproved).contains("--auto-approve"),
        "{}",
        text(&unapproved)
    );
    assert!(
        account
            .s3
            .head_bucket()
            .bucket(BUCKET.as_str())
            .send()
            .await
            .is_ok(),
        "nothing was destroyed"
    );

    let output = account.deployer(&["destroy", "--bootstrap", "--auto-approve", "--force"]);
    assert_exit(&output, 0);
    // Nine: a new bootstrap has no lock table.
    assert!(text(&output).contains("9 destroyed"), "{}", text(&output));
    assert!(
        account
            .s3
            .head_bucket()
            .bucket(BUCKET.as_str())
            .send()
            .await
            .is_err(),
        "bucket gone"
    );
    assert!(
        account
            .dynamodb
            .list_tables()
            .send()
            .await
            .expect("tables")
            .table_names()
            .is_empty()
    );
    assert!(
        account
            .iam
            .get_role()
            .role_name(ROLE.as_str())
            .send()
            .await
            .is_err(),
        "role gone"
    );
    assert!(
        account
            .iam
            .get_policy()
            .policy_arn(POLICY_ARN.as_str())
            .send()
            .await
            .is_err(),
        "policy gone"
    );
    let providers = account
        .iam
        .list_open_id_connect_providers()
        .send()
        .await
        .expect("providers");
    assert!(
        providers.open_id_connect_provider_list().is_empty(),
        "provider gone"
    );

    let again = account.deployer(&["destroy", "--bootstrap", "--auto-approve"]);
    assert_exit(&again, 0);
    assert!(
        text(&again).contains("Nothing to destroy"),
        "{}",
        text(&again)
    );
}

/// The lock of `deployer apply --env dev` on an account bootstrapped as is:
/// the bucket's `.tflock` file, no lock item anywhere.
#[tokio::test]
async fn a_new_bootstrap_locks_with_the_lock_file_only() {
    let account = Account::with_artifact().await;
    assert_exit(&account.deployer(&["bootstrap", "--auto-approve"]), 0);
    assert!(!lock_table_exists(&account).await);
    assert_exit(
        &account.deployer(&["bootstrap", "--plan", "--detailed-exitcode"]),
        0,
    );

    emulator::clear_served_requests(account.endpoint());
    assert_exit(&account.apply_dev(), 0);
    let requests = account.mutating_requests();
    assert!(
        requests
            .iter()
            .any(|request| request.contains("deployer/dev/state.json.tflock")),
        "the lock file was taken: {requests:?}"
    );
    assert!(
        !requests
            .iter()
            .any(|request| request.contains("dynamodb PutItem")),
        "no lock item: {requests:?}"
    );
    assert!(!lock_table_exists(&account).await);
}

/// A lock item as Terraform writes it: `LockID` `<bucket>/<state key>`, `Info` JSON.
async fn put_terraform_lock(account: &Account, lock_id: &str, info: &str) {
    use aws_sdk_dynamodb::types::AttributeValue;
    account
        .dynamodb
        .put_item()
        .table_name(LOCK_TABLE.as_str())
        .item("LockID", AttributeValue::S(lock_id.to_owned()))
        .item("Info", AttributeValue::S(info.to_owned()))
        .send()
        .await
        .expect("lock item");
}

/// Terraform's digest item, which is no lock.
async fn put_terraform_digest(account: &Account) {
    use aws_sdk_dynamodb::types::AttributeValue;
    account
        .dynamodb
        .put_item()
        .table_name(LOCK_TABLE.as_str())
        .item(
            "LockID",
            AttributeValue::S(format!(
                "{}/aimodelshare/infra/terraform.tfstate-md5",
                *BUCKET
            )),
        )
        .item("Digest", AttributeValue::S("0123456789abcdef".into()))
        .send()
        .await
        .expect("digest item");
}

/// An account whose bootstrap kept a lock table (`lock_backend = "both"`).
async fn bootstrapped_with_lock_table() -> Account {
    let account = Account::new().await;
    assert_exit(
        &account.deployer(&["--var", "lock_backend=both", "bootstrap", "--auto-approve"]),
        0,
    );
    assert_lock_table(&account).await;
    // Unset, the table that exists is kept: no change.
    assert_exit(
        &account.deployer(&["bootstrap", "--plan", "--detailed-exitcode"]),
        0,
    );
    account
}

#[tokio::test]
async fn lock_backend_s3_retires_the_lock_table_as_a_shown_destroy() {
    let account = bootstrapped_with_lock_table().await;
    put_terraform_digest(&account).await;

    let retire = ["--var", "lock_backend=s3", "bootstrap"];
    let plan = account.deployer(&[&retire[..], &["--plan", "--detailed-exitcode"]].concat());
    assert_exit(&plan, 2);
    let shown = text(&plan);
    assert!(
        shown.contains("- dynamodb_table.locks") && shown.contains("will be destroyed"),
        "{shown}"
    );
    assert!(
        shown.contains("Plan: 0 to add, 0 to change, 1 to destroy."),
        "{shown}"
    );
    assert!(
        shown.contains("retired because lock_backend = \"s3\""),
        "{shown}"
    );
    assert!(lock_table_exists(&account).await, "a plan changes nothing");

    // Without --auto-approve and no terminal, nothing is deleted.
    assert_exit(&account.deployer(&retire), 1);
    assert!(lock_table_exists(&account).await);

    let applied = account.deployer(&[&retire[..], &["--auto-approve"]].concat());
    assert_exit(&applied, 0);
    assert!(text(&applied).contains("1 destroyed"), "{}", text(&applied));
    assert!(!lock_table_exists(&account).await);
    for args in [&retire[..], &["bootstrap"][..]] {
        assert_exit(
            &account.deployer(&[args, &["--plan", "--detailed-exitcode"]].concat()),
            0,
        );
    }
    // The state no longer records it.
    let state = account
        .s3
        .get_object()
        .bucket(BUCKET.as_str())
        .key("deployer/bootstrap/state.json")
        .send()
        .await
        .expect("bootstrap state");
    let body = state.body.collect().await.expect("state body").into_bytes();
    let document: Value = serde_json::from_slice(&body).expect("state JSON");
    assert!(
        document["resources"].get("dynamodb_table.locks").is_none(),
        "{document}"
    );
}

#[tokio::test]
async fn a_lock_held_in_the_table_stops_its_retirement_naming_the_holder() {
    let account = bootstrapped_with_lock_table().await;
    let lock_id = format!("{}/deployer/dev/state.json", *BUCKET);
    put_terraform_lock(
        &account,
        &lock_id,
        r#"{"ID":"5d3c7c0e-1111-2222-3333-444455556666","Operation":"OperationTypeApply","Info":"","Who":"alice@laptop","Version":"1.9.8","Created":"2026-12-05T09:00:00Z","Path":""}"#,
    )
    .await;

    let output = account.deployer(&["--var", "lock_backend=s3", "bootstrap", "--auto-approve"]);
    assert_exit(&output, 1);
    let shown = text(&output);
    assert!(
        shown.contains("not retiring the lock table")
            && shown.contains(&lock_id)
            && shown.contains("alice@laptop")
            && shown.contains("5d3c7c0e-1111-2222-3333-444455556666")
            && shown.contains("Nothing was changed"),
        "{shown}"
    );
    assert!(lock_table_exists(&account).await, "the table is kept");
}
