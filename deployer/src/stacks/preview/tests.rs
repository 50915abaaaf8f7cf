//! What the preview role may do, proved by evaluating its policy document as
//! data: moto does not enforce IAM, so these tests are a small evaluator of
//! IAM's documented rules (an explicit Deny wins; an Allow needs its action,
//! its resource and every condition to match; `*` and `?` wildcards; the
//! `...IfExists`, `ForAllValues:` and `ForAnyValue:` forms) over requests
//! with the context AWS would give them. `security/check` asks PMapper the
//! same questions of the role bootstrap writes into IAM.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::config::{EnvironmentNames, Settings};
use crate::resources::Clients;
use crate::stacks::bootstrap;

/// One request: an action on a resource, with its condition context.
#[derive(Debug, Clone)]
struct Request {
    action: String,
    resource: String,
    context: BTreeMap<String, Vec<String>>,
}

fn wildcard(pattern: &str, text: &str, fold_case: bool) -> bool {
    fn go(pattern: &[u8], text: &[u8], fold: bool) -> bool {
        match (pattern.first(), text.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                go(&pattern[1..], text, fold) || (!text.is_empty() && go(pattern, &text[1..], fold))
            }
            (Some(b'?'), Some(_)) => go(&pattern[1..], &text[1..], fold),
            (Some(p), Some(t)) => {
                (if fold {
                    p.eq_ignore_ascii_case(t)
                } else {
                    p == t
                }) && go(&pattern[1..], &text[1..], fold)
            }
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes(), fold_case)
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Bool(flag) => vec![flag.to_string()],
        _ => Vec::new(),
    }
}

/// Whether one condition operator's test holds for one context value.
fn holds(operator: &str, wanted: &[String], value: &str) -> bool {
    match operator {
        "StringEquals" | "ArnEquals" => wanted.iter().any(|wanted| wanted == value),
        "StringLike" | "ArnLike" => wanted.iter().any(|wanted| wildcard(wanted, value, false)),
        "StringNotEquals" => wanted.iter().all(|wanted| wanted != value),
        other => panic!("the evaluator does not know the condition operator {other}"),
    }
}

/// Whether every condition of `condition` holds for `request`.
fn conditions_hold(condition: &Value, request: &Request) -> bool {
    let Some(operators) = condition.as_object() else {
        return true;
    };
    operators.iter().all(|(operator, keys)| {
        keys.as_object()
            .expect("condition keys")
            .iter()
            .all(|(key, wanted)| {
                let wanted = strings(wanted);
                let values = request.context.get(key);
                let (set, operator) = match operator.split_once(':') {
                    Some((set, operator)) => (Some(set), operator),
                    None => (None, operator.as_str()),
                };
                let (operator, if_exists) = match operator.strip_suffix("IfExists") {
                    Some(operator) => (operator, true),
                    None => (operator, false),
                };
                match (set, values) {
                    (Some("ForAllValues"), None) => true,
                    (Some("ForAllValues"), Some(values)) => {
                        values.iter().all(|value| holds(operator, &wanted, value))
                    }
                    (Some("ForAnyValue"), None) => false,
                    (Some("ForAnyValue"), Some(values)) => {
                        values.iter().any(|value| holds(operator, &wanted, value))
                    }
                    (Some(set), _) => panic!("unknown set operator {set}"),
                    (None, None) => if_exists || operator == "StringNotEquals",
                    (None, Some(values)) => {
                        values.iter().any(|value| holds(operator, &wanted, value))
                    }
                }
            })
    })
}

fn statements(document: &Value) -> Vec<Value> {
    match &document["Statement"] {
        Value::Array(statements) => statements.clone(),
        single => vec![single.clone()],
    }
}

fn statement_matches(statement: &Value, request: &Request) -> bool {
    assert!(statement.get("NotAction").is_none() && statement.get("NotResource").is_none());
    strings(&statement["Action"])
        .iter()
        .any(|action| wildcard(action, &request.action, true))
        && strings(&statement["Resource"])
            .iter()
            .any(|resource| wildcard(resource, &request.resource, false))
        && conditions_hold(&statement["Condition"], request)
}

/// The statement that allows `request`, unless a Deny matches it.
fn allowing(document: &Value, request: &Request) -> Option<Value> {
    let all = statements(document);
    if all
        .iter()
        .any(|statement| statement["Effect"] == "Deny" && statement_matches(statement, request))
    {
        return None;
    }
    all.into_iter()
        .find(|statement| statement["Effect"] == "Allow" && statement_matches(statement, request))
}

fn settings() -> Settings {
    Settings {
        github_repository: Some("owner/repo".into()),
        ..Settings::default()
    }
}

fn clients() -> Clients {
    Clients::offline("us-east-1")
}

fn policy() -> Value {
    let (settings, clients) = (settings(), clients());
    preview_policy(
        bootstrap::deploy_policy(&settings, &clients),
        &settings,
        &clients,
    )
}

/// Every resource of `environment` an environment stack or its state has,
/// with the context AWS gives a request on it.
fn resources_of(environment: &str) -> Vec<(String, BTreeMap<String, Vec<String>>)> {
    let settings = settings();
    let clients = clients();
    let names = EnvironmentNames::new(environment, &settings);
    let (region, account) = (&clients.region, &clients.account_id);
    let table = format!("arn:aws:dynamodb:{region}:{account}:table/{}", names.table);
    let function = format!(
        "arn:aws:lambda:{region}:{account}:function:{}",
        names.function
    );
    let api = format!("arn:aws:apigateway:{region}::/apis/{environment}id");
    let bucket = &settings.state_bucket;
    let key = state::state_key(environment);
    let tagged = BTreeMap::from([
        (
            "aws:ResourceTag/managed-by".to_owned(),
            vec!["deployer".to_owned()],
        ),
        (
            "aws:ResourceTag/workspace".to_owned(),
            vec![environment.to_owned()],
        ),
        (
            "aws:RequestTag/managed-by".to_owned(),
            vec!["deployer".to_owned()],
        ),
        (
            "aws:RequestTag/workspace".to_owned(),
            vec![environment.to_owned()],
        ),
        ("aws:TagKeys".to_owned(), vec!["owner".to_owned()]),
        (
            "iam:PermissionsBoundary".to_owned(),
            vec![ManagedPolicy::arn_of(
                &clients,
                &settings.execution_boundary_name(),
            )],
        ),
        (
            "iam:PolicyARN".to_owned(),
            vec![format!(
                "arn:aws:iam::{account}:policy/{}",
                names.dynamodb_policy
            )],
        ),
        (
            "iam:PassedToService".to_owned(),
            vec!["lambda.amazonaws.com".to_owned()],
        ),
        (
            "lambda:Principal".to_owned(),
            vec!["apigateway.amazonaws.com".to_owned()],
        ),
        (
            "dynamodb:LeadingKeys".to_owned(),
            vec![format!("{bucket}/{key}")],
        ),
    ]);
    [
        table.clone(),
        format!("{table}/index/byUser"),
        format!("{table}/backup/01234567890123-abcdefgh"),
        format!(
            "arn:aws:dynamodb:{region}:{account}:table/{}",
            settings.lock_table
        ),
        format!("arn:aws:s3:::{bucket}/{key}"),
        format!(
            "arn:aws:s3:::{bucket}/{}{environment}/migrate-checkpoint.json",
            state::KEY_PREFIX
        ),
        function.clone(),
        format!("{function}:live"),
        format!("{function}:3"),
        format!("arn:aws:iam::{account}:role/{}", names.lambda_role),
        format!("arn:aws:iam::{account}:policy/{}", names.dynamodb_policy),
        format!(
            "arn:aws:logs:{region}:{account}:log-group:{}",
            names.log_group
        ),
        format!(
            "arn:aws:logs:{region}:{account}:log-group:{}:*",
            names.log_group
        ),
        format!(
            "arn:aws:logs:{region}:{account}:log-group:{}",
            names.access_log_group
        ),
        format!("arn:aws:lambda:{region}:{account}:layer:{}", names.layer),
        format!("arn:aws:lambda:{region}:{account}:layer:{}:1", names.layer),
        format!(
            "arn:aws:cloudwatch:{region}:{account}:alarm:{}-errors",
            names.function
        ),
        format!("arn:aws:cognito-idp:{region}:{account}:userpool/us-east-1_{environment}"),
        api.clone(),
        format!("{api}/routes"),
        format!("{api}/routes/r1"),
        format!("{api}/integrations/i1"),
        format!("{api}/stages/{}", names.stage),
        format!("arn:aws:apigateway:{region}::/apis"),
        format!(
            "arn:aws:apigateway:{region}::/tags/{}",
            api.replace(':', "%3A").replace('/', "%2F")
        ),
    ]
    .into_iter()
    .map(|resource| (resource, tagged.clone()))
    .collect()
}

/// The bootstrap stack's resources.
fn bootstrap_resources() -> Vec<(String, BTreeMap<String, Vec<String>>)> {
    let settings = settings();
    let clients = clients();
    let account = &clients.account_id;
    let bucket = &settings.state_bucket;
    let bootstrap_key = state::state_key(crate::config::BOOTSTRAP);
    let context = BTreeMap::from([(
        "dynamodb:LeadingKeys".to_owned(),
        vec![format!("{bucket}/{bootstrap_key}")],
    )]);
    [
        format!("arn:aws:s3:::{bucket}"),
        format!("arn:aws:s3:::{bucket}/{bootstrap_key}"),
        format!(
            "arn:aws:dynamodb:{}:{account}:table/{}",
            clients.region, settings.lock_table
        ),
        Role::arn_of(&clients, &settings.deploy_role_name),
        Role::arn_of(&clients, &settings.plan_role_name),
        Role::arn_of(&clients, &settings.preview_role_name),
        ManagedPolicy::arn_of(&clients, &settings.deploy_policy_name),
        ManagedPolicy::arn_of(&clients, &settings.plan_policy_name),
        ManagedPolicy::arn_of(&clients, &settings.preview_policy_name),
        ManagedPolicy::arn_of(&clients, &settings.execution_boundary_name()),
        crate::resources::oidc_provider::OidcProvider::arn(&clients),
    ]
    .into_iter()
    .map(|resource| (resource, context.clone()))
    .collect()
}

/// Every action any Allow statement of `document` names.
fn allowed_actions(document: &Value) -> Vec<String> {
    let mut actions: Vec<String> = statements(document)
        .iter()
        .filter(|statement| statement["Effect"] == "Allow")
        .flat_map(|statement| strings(&statement["Action"]))
        .collect();
    actions.sort();
    actions.dedup();
    actions
}

/// What the preview role may do on anything: actions AWS takes on `*` only
/// (they name no resource, so no environment's), and reading HTTP APIs'
/// configuration (GetApis is a call on the whole collection; the Service
/// Authorization Reference gives GET no tag condition).
const ON_ANYTHING: &[&str] = &[
    "apigateway:GET",
    "lambda:ListLayerVersions",
    "logs:DescribeLogGroups",
    "cognito-idp:ListUserPools",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
];

/// Each (action, resource) the policy allows, of every action it names on
/// every resource given, but those of [`ON_ANYTHING`].
fn touches(
    document: &Value,
    resources: &[(String, BTreeMap<String, Vec<String>>)],
) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for action in allowed_actions(document) {
        if ON_ANYTHING.contains(&action.as_str()) {
            continue;
        }
        for (resource, context) in resources {
            let request = Request {
                action: action.clone(),
                resource: resource.clone(),
                context: context.clone(),
            };
            if let Some(statement) = allowing(document, &request) {
                found.push((
                    action.clone(),
                    resource.clone(),
                    statement["Sid"].as_str().unwrap_or("?").to_owned(),
                ));
            }
        }
    }
    found
}

#[test]
fn the_evaluator_follows_iams_rules() {
    let document = json!({"Statement": [
        {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/pr-*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/pr-9"},
        {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "t",
         "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["k/pr-*"]},
                       "StringEqualsIfExists": {"aws:ResourceTag/a": "b"}}}
    ]});
    let request = |action: &str, resource: &str, context: &[(&str, &str)]| Request {
        action: action.into(),
        resource: resource.into(),
        context: context
            .iter()
            .map(|(key, value)| ((*key).to_owned(), vec![(*value).to_owned()]))
            .collect(),
    };
    assert!(
        allowing(
            &document,
            &request("S3:getobject", "arn:aws:s3:::b/pr-1/x", &[])
        )
        .is_some()
    );
    assert!(
        allowing(
            &document,
            &request("s3:GetObject", "arn:aws:s3:::b/pr-9", &[])
        )
        .is_none()
    );
    assert!(
        allowing(
            &document,
            &request("s3:PutObject", "arn:aws:s3:::b/pr-1", &[])
        )
        .is_none()
    );
    assert!(
        allowing(
            &document,
            &request("s3:GetObject", "arn:aws:s3:::b/dev", &[])
        )
        .is_none()
    );
    let put =
        |context: &[(&str, &str)]| allowing(&document, &request("dynamodb:PutItem", "t", context));
    assert!(put(&[("dynamodb:LeadingKeys", "k/pr-3")]).is_some());
    assert!(put(&[("dynamodb:LeadingKeys", "k/dev")]).is_none());
    assert!(
        put(&[
            ("dynamodb:LeadingKeys", "k/pr-3"),
            ("aws:ResourceTag/a", "c")
        ])
        .is_none()
    );
    assert!(
        put(&[
            ("dynamodb:LeadingKeys", "k/pr-3"),
            ("aws:ResourceTag/a", "b")
        ])
        .is_some()
    );
}

#[test]
fn the_preview_role_may_run_a_previews_whole_life() {
    let document = policy();
    let preview = resources_of("pr-42");
    let allowed = |action: &str, needle: &str| {
        let (resource, context) = preview
            .iter()
            .find(|(resource, _)| resource.ends_with(needle))
            .unwrap_or_else(|| panic!("no resource ends with {needle}"));
        let request = Request {
            action: action.into(),
            resource: resource.clone(),
            context: context.clone(),
        };
        assert!(
            allowing(&document, &request).is_some(),
            "the preview role may not {action} on {resource}"
        );
    };
    allowed("s3:PutObject", "deployer/pr-42/state.json");
    allowed("s3:DeleteObject", "deployer/pr-42/state.json");
    allowed("dynamodb:PutItem", "table/aimodelshare-tf-locks");
    allowed("dynamodb:DeleteItem", "table/aimodelshare-tf-locks");
    allowed("dynamodb:CreateTable", "table/PlaygroundScores-pr-42");
    allowed("dynamodb:DeleteTable", "table/PlaygroundScores-pr-42");
    allowed("dynamodb:BatchGetItem", "table/PlaygroundScores-pr-42");
    allowed(
        "iam:CreateRole",
        "role/aimodelshare-playground-pr-42-lambda-role",
    );
    allowed(
        "iam:DeleteRole",
        "role/aimodelshare-playground-pr-42-lambda-role",
    );
    allowed(
        "iam:PassRole",
        "role/aimodelshare-playground-pr-42-lambda-role",
    );
    allowed(
        "iam:CreatePolicy",
        "policy/aimodelshare-playground-pr-42-ddb-rw",
    );
    allowed(
        "lambda:CreateFunction",
        "function:aimodelshare-playground-pr-42-api",
    );
    allowed(
        "lambda:DeleteFunction",
        "function:aimodelshare-playground-pr-42-api",
    );
    allowed(
        "lambda:AddPermission",
        "function:aimodelshare-playground-pr-42-api:live",
    );
    allowed(
        "logs:CreateLogGroup",
        "log-group:/aws/lambda/aimodelshare-playground-pr-42-api",
    );
    allowed(
        "logs:DeleteLogGroup",
        "log-group:/aws/apigateway/aimodelshare-playground-pr-42-http-api",
    );
    allowed("apigateway:POST", "::/apis");
    allowed("apigateway:DELETE", "/apis/pr-42id");
    allowed("apigateway:POST", "/apis/pr-42id/routes");
    allowed("apigateway:PATCH", "/apis/pr-42id/stages/pr-42");
    allowed("cognito-idp:DeleteUserPool", "userpool/us-east-1_pr-42");
}

#[test]
fn the_preview_role_cannot_touch_dev_stage_prod_or_the_bootstrap_stack() {
    let document = policy();
    let settings = settings();
    let clients = clients();
    let lock_table = format!(
        "arn:aws:dynamodb:{}:{}:table/{}",
        clients.region, clients.account_id, settings.lock_table
    );
    // Describing the shared lock table (whether it exists, which decides
    // lock_backend) reads the bootstrap stack's table, checked below, and
    // nothing of an environment's: only its items are an environment's.
    let describes_lock_table = |(action, resource, _): &(String, String, String)| {
        action == "dynamodb:DescribeTable" && *resource == lock_table
    };
    for environment in ["dev", "stage", "prod"] {
        let found: Vec<_> = touches(&document, &resources_of(environment))
            .into_iter()
            .filter(|found| !describes_lock_table(found))
            .collect();
        assert_eq!(
            found,
            Vec::new(),
            "the preview role can touch {environment}"
        );
    }
    // Of the bootstrap stack it reads what every environment's run reads:
    // the state bucket's listing (`environments list`, versions), the
    // execution boundary (plan checks it exists before creating a role) and
    // the lock table's description.
    let found: Vec<(String, String)> = touches(&document, &bootstrap_resources())
        .into_iter()
        .map(|(action, resource, _)| (action, resource))
        .collect();
    let bucket = format!("arn:aws:s3:::{}", settings.state_bucket);
    let boundary = ManagedPolicy::arn_of(&clients, &settings.execution_boundary_name());
    let reads: Vec<(String, String)> = [
        ("dynamodb:DescribeTable", &lock_table),
        ("iam:GetPolicy", &boundary),
        ("iam:GetPolicyVersion", &boundary),
        ("s3:GetBucketLocation", &bucket),
        ("s3:ListBucket", &bucket),
        ("s3:ListBucketVersions", &bucket),
    ]
    .map(|(action, resource)| (action.to_owned(), resource.clone()))
    .to_vec();
    assert_eq!(
        found, reads,
        "the preview role can touch the bootstrap stack"
    );
    // The same questions of the deploy policy find dev: the check can fail.
    let deploy = bootstrap::deploy_policy(&settings, &clients);
    assert!(!touches(&deploy, &resources_of("dev")).is_empty());
}

#[test]
fn the_preview_role_cannot_create_a_role_without_the_boundary_nor_lift_one() {
    let document = policy();
    let settings = settings();
    let clients = clients();
    let role = format!(
        "arn:aws:iam::{}:role/aimodelshare-playground-pr-42-lambda-role",
        clients.account_id
    );
    let request = |action: &str, context: &[(&str, String)]| Request {
        action: action.into(),
        resource: role.clone(),
        context: context
            .iter()
            .map(|(key, value)| ((*key).to_owned(), vec![value.clone()]))
            .collect(),
    };
    let boundary = ManagedPolicy::arn_of(&clients, &settings.execution_boundary_name());
    assert!(
        allowing(
            &document,
            &request("iam:CreateRole", &[("iam:PermissionsBoundary", boundary)])
        )
        .is_some()
    );
    assert!(allowing(&document, &request("iam:CreateRole", &[])).is_none());
    assert!(
        allowing(
            &document,
            &request(
                "iam:CreateRole",
                &[(
                    "iam:PermissionsBoundary",
                    "arn:aws:iam::aws:policy/AdministratorAccess".into()
                )]
            )
        )
        .is_none()
    );
    assert!(
        allowing(
            &document,
            &request("iam:DeleteRolePermissionsBoundary", &[])
        )
        .is_none()
    );
    assert!(allowing(&document, &request("iam:PutRolePolicy", &[])).is_none());
}

#[test]
fn the_preview_role_trusts_only_this_repositorys_pull_requests() {
    let subjects = preview_subjects(&settings());
    assert_eq!(
        subjects,
        [
            "repo:owner/repo:pull_request",
            "repo:owner/repo:environment:preview-sweep"
        ]
    );
    let trust = bootstrap::trust_policy(&subjects, "arn:aws:iam::123456789012:oidc-provider/x");
    let condition = &trust["Statement"][0]["Condition"];
    assert_eq!(
        condition["StringEquals"]["token.actions.githubusercontent.com:sub"],
        json!(subjects),
        "{trust}"
    );
    assert!(
        condition.get("StringLike").is_none(),
        "no wildcard subject: {trust}"
    );
    assert_eq!(preview_subjects(&Settings::default()), Vec::<String>::new());
}
