//! The deploy role and the plan role may make every call the deployer makes (checked
//! against the `-v` call log), and the plan role only reads.

use super::*;

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
    let account = Account::bootstrapped().await;
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
    account.write_artifact("fn2.zip", &executable(X86_64, b"v2"));
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
    pub(super) async fn assert_deploy_policy_allows(&self, calls: &[(String, String)]) {
        let document = support::deploy_policy(&self.config).await;
        assert_policy_allows(&document, calls, "the deploy policy");
    }
}

/// Every call in `calls` is allowed by the policy `document` (`what` names it).
pub(crate) fn assert_policy_allows(document: &Value, calls: &[(String, String)], what: &str) {
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
    let account = Account::bootstrapped().await;
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

    let document = support::managed_policy(&account.config, &settings().plan_policy_name).await;
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
        .role_name(&settings().plan_role_name)
        .send()
        .await
        .expect("the plan role");
    let role = role.role().expect("role");
    assert_eq!(role.arn(), support::role_arn(&settings().plan_role_name));
    let trust =
        deployer::engine::policy::decode(role.assume_role_policy_document().expect("trust policy"))
            .expect("trust policy JSON");
    assert_eq!(
        trust["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"],
        serde_json::json!(["repo:octo-org/playground:environment:plan"])
    );
}
