//! Snapshots of what each stack asks for, as data, with no AWS and no emulator:
//! the desired resources of the bootstrap stack, of the dev environment and of
//! a preview `pr-42` (from the repository's `deployer.toml`), and every IAM policy document the
//! deployer writes (each attribute planned by [`Rule::Policy`]), one file
//! each under `snapshots/`. A change to any of them fails here, showing the
//! difference; `UPDATE_EXPECT=1 cargo test -p deployer --lib snapshots`
//! accepts it once reviewed.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::config::{Config, ConfigSources, EnvironmentNames};
use crate::engine::{DesiredResource, Planned, Resources, Rule};
use crate::package::Code;
use crate::resources::Clients;
use crate::resources::lambda_alias::Release;
use crate::stacks::{bootstrap, environment};

/// The settings of `environment` (`None`: bootstrap) from the repository's
/// own `deployer.toml`, with the repository bootstrap needs.
fn config(environment: Option<&str>) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deployer.toml");
    let vars = ["github_repository=owner/repo".to_owned()];
    Config::resolve(
        &ConfigSources {
            path: Some(&path),
            vars: &vars,
            region: None,
            ambient_region: None,
        },
        environment,
    )
    .expect("the repository's deployer.toml resolves")
}

fn clients(config: &Config) -> Clients {
    Clients::offline(&config.settings.region)
}

fn bootstrap_stack() -> Resources {
    let config = config(None);
    let subjects = bootstrap::github_subjects(&config.settings).expect("subjects");
    bootstrap::resources(&config.settings, &clients(&config), &subjects)
}

/// An environment as a first apply plans it: nothing found, a fixed zip.
fn environment_stack(environment: &str) -> Resources {
    let config = config(Some(environment));
    let names = EnvironmentNames::new(environment, &config.settings);
    let inputs = environment::StackInputs {
        code: Code {
            zip: b"the function's zip".to_vec(),
            sha256: None,
        },
        layer: None,
        api_id: None,
        table: environment::TableInputs::default(),
        release: environment::ReleaseInputs {
            release: Release::Publish { expected: None },
            releases: Vec::new(),
            pre_traffic_check: false,
        },
        user_pool: None,
    };
    environment::resources(&config.settings, &names, &clients(&config), inputs)
}

fn planned(value: &Planned) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// One desired resource as data: everything the planner is given.
fn shown(desired: &DesiredResource) -> Value {
    let rules: Map<String, Value> = desired
        .rules
        .iter()
        .map(|(name, rule)| ((*name).to_owned(), json!(format!("{rule:?}"))))
        .collect();
    let refusals: Vec<Value> = desired
        .refusals
        .iter()
        .map(|refusal| json!({"attribute": refusal.attribute, "only_from": refusal.only_from}))
        .collect();
    json!({
        "address": desired.address,
        "kind": desired.kind,
        "name": desired.name,
        "depends_on": desired.depends_on,
        "never_replace": desired.never_replace,
        "rules": rules,
        "refusals": refusals,
        "attributes": desired
            .attributes
            .iter()
            .map(|(name, value)| {
                let value = if is_policy(desired, name) {
                    json!(format!("(see {})", policy_file(desired, name)))
                } else {
                    planned(value)
                };
                (name.clone(), value)
            })
            .collect::<Map<String, Value>>(),
    })
}

fn is_policy(desired: &DesiredResource, attribute: &str) -> bool {
    desired.rules.get(attribute) == Some(&Rule::Policy)
}

/// Where the snapshot of a policy document is, beside this file.
fn policy_file(desired: &DesiredResource, attribute: &str) -> String {
    format!("snapshots/policies/{}.{attribute}.json", desired.address)
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("serializes");
    text.push('\n');
    text
}

/// The stack's desired resources, each policy document in a file of its own
/// (with `policies`; a stack whose policies are another's with other names
/// leaves them out).
fn check(stack: &str, resources: &Resources, policies: bool) {
    let desired: Vec<DesiredResource> = resources
        .iter()
        .map(|resource| resource.desired())
        .collect();
    let all: Vec<Value> = desired.iter().map(shown).collect();
    expect_test::expect_file![format!("snapshots/{stack}.json")].assert_eq(&pretty(&json!(all)));
    for resource in desired.iter().filter(|_| policies) {
        for (name, value) in &resource.attributes {
            if is_policy(resource, name) {
                expect_test::expect_file![policy_file(resource, name)]
                    .assert_eq(&pretty(&planned(value)));
            }
        }
    }
}

#[test]
fn the_bootstrap_stack_asks_for_what_its_snapshots_say() {
    check("bootstrap", &bootstrap_stack(), true);
}

#[test]
fn the_dev_environment_asks_for_what_its_snapshots_say() {
    check("environment-dev", &environment_stack("dev"), true);
}

/// A preview with the repository's `[env.preview]` layer: no alarms, no
/// deletion protection, short log retention, a low concurrency cap.
#[test]
fn a_preview_environment_asks_for_what_its_snapshot_says() {
    check("environment-pr-42", &environment_stack("pr-42"), false);
}
