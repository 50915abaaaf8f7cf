//! The preview role: what a pull request's workflow assumes to apply, seed,
//! smoke-test and destroy its preview `pr-<number>`, and to sweep previews.
//! A bootstrap resource, beside the deploy and plan roles.
//!
//! Its policy is the deploy policy narrowed to the previews' names, so that
//! whatever the deploy role learns to do for an environment, a preview can do
//! for itself and no more:
//!
//! - every name pattern `<name_prefix>-*` becomes `<name_prefix>-pr-*` (the
//!   execution role, its table policy, the function, its layer, its log
//!   groups, its alarms), the tables `<table_name>-*` become
//!   `<table_name>-pr-*`, the state objects `deployer/*` become
//!   `deployer/pr-*` (`config::EnvironmentNames` of a `pr-<number>`);
//! - the lock table's items only with the leading key
//!   `<bucket>/deployer/pr-*` (`dynamodb:LeadingKeys`);
//! - what is scoped by the tag `managed-by=deployer` (HTTP APIs, their stages,
//!   routes and integrations, user pools) also needs the tag `workspace=pr-*`,
//!   which the deployer puts on every resource of an environment
//!   (`stacks::environment::tags`); where the deploy policy accepts a missing
//!   tag (`...IfExists`, the children of an HTTP API), the preview's does not:
//!   if AWS did not resolve the API's tags there, a preview's apply would fail
//!   with AccessDenied, never touch another API;
//! - the tag keys `managed-by` and `workspace` can be neither set nor removed;
//! - the deploy policy's denials also protect the preview role and policy.
//!
//! Statements granting `"*"` stay as they are: list calls and the access-log
//! delivery that take no resource, and `apigateway:GET` (reads only). What a
//! preview may not do is tested as data by evaluating this document
//! (`tests`): nothing of `dev`, `stage`, `prod` or the bootstrap stack.

use serde_json::{Map, Value, json};

use crate::config::Settings;
use crate::resources::Clients;
use crate::resources::iam_managed_policy::ManagedPolicy;
use crate::resources::iam_role::Role;

pub const PREVIEW_POLICY_ADDRESS: &str = "iam_policy.preview";
pub const PREVIEW_ROLE_ADDRESS: &str = "iam_role.preview";

/// The GitHub environment of the nightly sweeper (`.github/workflows/preview.yml`,
/// job `sweep`; a test checks it): a scheduled run is no pull request, so it
/// comes to the preview role through this environment, which the repository
/// keeps to its default branch.
pub const SWEEP_ENVIRONMENT: &str = "preview-sweep";

/// The OIDC subjects the preview role trusts: this repository's pull
/// requests (`repo:<owner>/<repo>:pull_request`, what GitHub's token says of
/// a job run for a `pull_request` event without a GitHub environment) and
/// its sweeper's environment [`SWEEP_ENVIRONMENT`]; not a branch, not dev,
/// stage or prod. None without `github_repository`, which bootstrap refuses.
pub fn preview_subjects(settings: &Settings) -> Vec<String> {
    settings
        .github_repository
        .iter()
        .flat_map(|repository| {
            [
                format!("repo:{repository}:pull_request"),
                format!("repo:{repository}:environment:{SWEEP_ENVIRONMENT}"),
            ]
        })
        .collect()
}

/// The preview policy: `deploy_policy` (the bootstrap stack's, which owns
/// it) narrowed to `pr-*` (see the module).
pub fn preview_policy(deploy_policy: Value, settings: &Settings, clients: &Clients) -> Value {
    let narrowing = Narrowing::new(settings, clients);
    let mut document = deploy_policy;
    if let Some(statements) = document["Statement"].as_array_mut() {
        for statement in statements.iter_mut() {
            narrowing.statement(statement);
        }
        statements.push(narrowing.seed_items());
    }
    document
}

/// How the deploy policy's statements are narrowed to the previews.
struct Narrowing {
    /// (wide, narrow) replacements in every resource and condition value.
    patterns: Vec<(String, String)>,
    lock_table: String,
    lock_keys: String,
    deploy_role: String,
    own: [String; 2],
    preview_tables: String,
}

impl Narrowing {
    fn new(settings: &Settings, clients: &Clients) -> Self {
        let (region, account) = (&clients.region, &clients.account_id);
        let prefix = &settings.name_prefix;
        let table = &settings.table_name;
        let bucket = &settings.state_bucket;
        let keys = state::KEY_PREFIX;
        Self {
            patterns: vec![
                (format!("{prefix}-*"), format!("{prefix}-pr-*")),
                (format!("table/{table}-*"), format!("table/{table}-pr-*")),
                (format!("{bucket}/{keys}*"), format!("{bucket}/{keys}pr-*")),
            ],
            lock_table: format!(
                "arn:aws:dynamodb:{region}:{account}:table/{}",
                settings.lock_table
            ),
            lock_keys: format!("{bucket}/{keys}pr-*"),
            deploy_role: Role::arn_of(clients, &settings.deploy_role_name),
            own: [
                Role::arn_of(clients, &settings.preview_role_name),
                ManagedPolicy::arn_of(clients, &settings.preview_policy_name),
            ],
            preview_tables: format!("arn:aws:dynamodb:{region}:{account}:table/{table}-pr-*"),
        }
    }

    fn narrow(&self, text: &str) -> String {
        self.patterns
            .iter()
            .fold(text.to_owned(), |text, (wide, narrow)| {
                text.replace(wide, narrow)
            })
    }

    /// Narrow every string of `value` (resources, condition values).
    fn narrow_all(&self, value: &mut Value) {
        match value {
            Value::String(text) => *text = self.narrow(text),
            Value::Array(items) => items.iter_mut().for_each(|item| self.narrow_all(item)),
            Value::Object(map) => map.values_mut().for_each(|item| self.narrow_all(item)),
            _ => {}
        }
    }

    fn statement(&self, statement: &mut Value) {
        let Some(statement) = statement.as_object_mut() else {
            return;
        };
        let sid = statement
            .get("Sid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        statement.insert("Sid".into(), json!(format!("Preview{sid}")));
        let allow = statement.get("Effect") == Some(&json!("Allow"));
        if let Some(resource) = statement.get_mut("Resource") {
            self.narrow_all(resource);
        }
        if let Some(condition) = statement.get_mut("Condition") {
            self.narrow_all(condition);
        }
        if !allow {
            // The denials protect the preview role and its policy too.
            let protects_deployer = statement
                .get("Resource")
                .and_then(Value::as_array)
                .is_some_and(|resources| resources.contains(&json!(self.deploy_role)));
            if protects_deployer
                && let Some(Value::Array(resources)) = statement.get_mut("Resource")
            {
                resources.extend(self.own.iter().map(|arn| json!(arn)));
            }
            return;
        }
        // Item statements on the lock table only: a table-level action
        // (DescribeTable) names no leading key.
        let names_items = statement
            .get("Action")
            .map(Value::to_string)
            .is_some_and(|actions| actions.contains("Item"));
        if names_items && statement.get("Resource") == Some(&json!(self.lock_table)) {
            add_condition(
                statement,
                "ForAllValues:StringLike",
                "dynamodb:LeadingKeys",
                json!([self.lock_keys]),
            );
        }
        let condition = statement
            .get("Condition")
            .map(Value::to_string)
            .unwrap_or_default();
        if condition.contains("aws:RequestTag/managed-by") {
            add_condition(
                statement,
                "StringLike",
                "aws:RequestTag/workspace",
                json!("pr-*"),
            );
        }
        if condition.contains("aws:ResourceTag/managed-by") {
            add_condition(
                statement,
                "StringLike",
                "aws:ResourceTag/workspace",
                json!("pr-*"),
            );
        }
        if condition.contains("aws:TagKeys") {
            add_condition(
                statement,
                "ForAllValues:StringNotEquals",
                "aws:TagKeys",
                json!(["managed-by", "workspace"]),
            );
        }
    }

    /// Seeding a preview (`deployer import --env pr-<number> FILE`) writes
    /// and ranks items as the function does: on the previews' tables only.
    fn seed_items(&self) -> Value {
        json!({
            "Sid": "PreviewSeedItems",
            "Effect": "Allow",
            "Action": [
                "dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem",
                "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                "dynamodb:Query", "dynamodb:Scan"
            ],
            "Resource": [self.preview_tables.clone(), format!("{}/index/*", self.preview_tables)]
        })
    }
}

/// Set `condition[operator][key] = value` in `statement`.
fn add_condition(statement: &mut Map<String, Value>, operator: &str, key: &str, value: Value) {
    let condition = statement.entry("Condition").or_insert_with(|| json!({}));
    if let Some(condition) = condition.as_object_mut() {
        let operator = condition.entry(operator).or_insert_with(|| json!({}));
        if let Some(operator) = operator.as_object_mut() {
            operator.insert(key.to_owned(), value);
        }
    }
}

#[cfg(test)]
mod tests;
