//! Snapshots of what each stack asks for, as data, with no AWS and no emulator:
//! the desired resources of the bootstrap stack, of the dev environment and of
//! a preview `pr-42` (from the repository's `deployer.toml`), and every IAM policy document the
//! deployer writes (each attribute planned by [`Rule::Policy`]), one file
//! each under `snapshots/`; and, for the variants the repository's file does
//! not turn on (sign-in, a layer, no reserved concurrency, an API that
//! exists), the resources they change. A change to any of them fails here, showing the
//! difference; `UPDATE_EXPECT=1 cargo test -p deployer --lib snapshots`
//! accepts it once reviewed.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::config::{Config, ConfigSources, EnvironmentNames};
use crate::engine::{DesiredResource, Planned, Resources, Rule};
use crate::package::Code;
use crate::resources::Clients;
use crate::resources::cognito_user_pool::{self, FoundPool};
use crate::resources::lambda_alias::Release;
use crate::resources::{http_api, lambda_function, lambda_layer, lambda_permission};
use crate::stacks::{bootstrap, environment};

/// The settings of `environment` (`None`: bootstrap) from the repository's
/// own `deployer.toml`, with the repository bootstrap needs.
fn config(environment: Option<&str>) -> Config {
    config_with(environment, &[])
}

/// As [`config`], with `--var`s `extra` on top.
fn config_with(environment: Option<&str>, extra: &[&str]) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deployer.toml");
    let vars: Vec<String> = std::iter::once("github_repository=owner/repo")
        .chain(extra.iter().copied())
        .map(str::to_owned)
        .collect();
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

/// The inputs of a first apply: nothing found, a fixed zip.
fn first_apply() -> environment::StackInputs {
    environment::StackInputs {
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
    }
}

/// An environment as a first apply plans it: nothing found, a fixed zip.
fn environment_stack(environment: &str) -> Resources {
    environment_variant(environment, &[], first_apply())
}

/// `environment` with `--var`s `vars`, planned with `inputs`.
fn environment_variant(
    environment: &str,
    vars: &[&str],
    inputs: environment::StackInputs,
) -> Resources {
    let config = config_with(Some(environment), vars);
    let names = EnvironmentNames::new(environment, &config.settings);
    environment::resources(&config.settings, &names, &clients(&config), inputs)
}

/// Only the resources at `addresses`, in the stack's order.
fn only(resources: Resources, addresses: &[&str]) -> Resources {
    resources
        .into_iter()
        .filter(|resource| addresses.contains(&resource.address()))
        .collect()
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

/// A layer, for the variants that use one.
fn layer(current_arn: Option<&str>) -> Option<environment::LayerInput> {
    Some(environment::LayerInput {
        content: Code {
            zip: b"the layer's zip".to_vec(),
            sha256: None,
        },
        current_arn: current_arn.map(str::to_owned),
    })
}

/// What the variants change: the layer, the function, the user pool, the
/// API (its authorizer and stage) and the invoke permission.
const VARIANT_ADDRESSES: [&str; 5] = [
    lambda_layer::ADDRESS,
    lambda_function::ADDRESS,
    cognito_user_pool::ADDRESS,
    http_api::ADDRESS,
    lambda_permission::ADDRESS,
];

/// The environment's own user pool, found (so the authorizer is known), a
/// layer whose latest version holds the zip, no reserved concurrency, and an
/// API that exists (so the invoke permission's source ARN is known).
#[test]
fn an_environment_with_its_own_user_pool_asks_for_what_its_snapshot_says() {
    let inputs = environment::StackInputs {
        layer: layer(Some(
            "arn:aws:lambda:us-east-1:000000000000:layer:aimodelshare-playground-dev-deps:3",
        )),
        api_id: Some("a1b2c3d4e5".into()),
        user_pool: Some(environment::UserPoolInputs {
            found: Some(FoundPool {
                id: "us-east-1_Pool".into(),
                issuer: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Pool".into(),
                client_id: Some("client123".into()),
            }),
        }),
        ..first_apply()
    };
    let vars = [
        "auth_create_user_pool=true",
        "auth_callback_urls=https://app.example/cb,http://localhost:8888/cb",
        "auth_logout_urls=https://app.example/",
        "reserved_concurrency=0",
    ];
    check(
        "environment-dev-user-pool",
        &only(
            environment_variant("dev", &vars, inputs),
            &VARIANT_ADDRESSES,
        ),
        false,
    );
}

/// The user pool not yet created: its issuer and client, so the authorizer,
/// are known after apply; a layer version published by this apply.
#[test]
fn a_first_apply_with_a_user_pool_asks_for_what_its_snapshot_says() {
    let inputs = environment::StackInputs {
        layer: layer(None),
        user_pool: Some(environment::UserPoolInputs::default()),
        ..first_apply()
    };
    let vars = [
        "auth_create_user_pool=true",
        "auth_callback_urls=https://app.example/cb",
    ];
    check(
        "environment-dev-user-pool-first-apply",
        &only(
            environment_variant("dev", &vars, inputs),
            &VARIANT_ADDRESSES,
        ),
        false,
    );
}

/// An issuer named in the settings, reads behind it too.
#[test]
fn an_environment_with_a_named_issuer_asks_for_what_its_snapshot_says() {
    let vars = [
        "auth_issuer=https://issuer.example/pool",
        "auth_audiences=app-client-1,app-client-2",
        "allow_public_read=false",
    ];
    check(
        "environment-dev-named-issuer",
        &only(
            environment_variant("dev", &vars, first_apply()),
            &[http_api::ADDRESS],
        ),
        false,
    );
}
