//! Recording what a stack looks like in its state document after apply.

use std::collections::BTreeMap;

use serde_json::Value;
use state::{Backend, Origin, ResourceState, StateDocument, Stored};

use crate::engine::drift::{Recorded, RecordedResources};
use crate::engine::{Action, ObservedResource, Plan, Resources};
use crate::error::CliError;

/// The state's view of the resources that exist: address -> kind, name, id,
/// ARN, origin, and the managed attributes as observed (what later plans
/// measure drift from). A resource keeps the origin `previous` recorded for it (same
/// id); otherwise it was created if `plan` created it, and adopted if it was
/// found by name. What `previous` records that the stack no longer has (the
/// layer, once `use_layer` is off) stays recorded, so destroy still removes it.
pub fn state_resources(
    resources: &Resources,
    observed: &[Option<ObservedResource>],
    plan: &Plan,
    previous: Option<&Stored>,
) -> BTreeMap<String, ResourceState> {
    let addresses: Vec<String> = resources
        .iter()
        .map(|resource| resource.address().to_owned())
        .collect();
    let retained = previous
        .into_iter()
        .flat_map(|stored| stored.document.resources.iter())
        .filter(|(address, _)| !addresses.contains(address))
        .map(|(address, recorded)| (address.clone(), recorded.clone()));
    resources
        .iter()
        .zip(observed)
        .filter_map(|(resource, observed)| {
            let desired = resource.desired();
            observed.as_ref().map(|observed| {
                let recorded = previous
                    .and_then(|stored| stored.document.resources.get(&desired.address))
                    .filter(|recorded| recorded.id == observed.id);
                let created = plan.resources.iter().any(|planned| {
                    planned.address == desired.address
                        && matches!(planned.action, Action::Create(_) | Action::Replace(_))
                });
                let origin = match recorded {
                    Some(recorded) => recorded.origin,
                    None if created => Origin::Created,
                    None => Origin::Adopted,
                };
                (
                    desired.address.clone(),
                    ResourceState {
                        kind: desired.kind.to_owned(),
                        name: desired.name.clone(),
                        id: observed.id.clone(),
                        arn: observed.arn.clone(),
                        origin,
                        attributes: resource.recorded_attributes(observed),
                        observed: Some(observed.attributes.clone()),
                    },
                )
            })
        })
        .chain(retained)
        .collect()
}

/// Whether `stored` already records exactly these resources and outputs.
pub fn is_current(
    stored: Option<&Stored>,
    resources: &BTreeMap<String, ResourceState>,
    outputs: &BTreeMap<String, Value>,
) -> bool {
    stored.is_some_and(|stored| {
        &stored.document.resources == resources && &stored.document.outputs == outputs
    })
}

/// Write the next revision of `previous` (the state read under the run's lock)
/// with these resources and outputs. Refused if the stored state has moved on.
pub async fn write(
    backend: &Backend,
    environment: &str,
    previous: Option<&Stored>,
    resources: BTreeMap<String, ResourceState>,
    outputs: BTreeMap<String, Value>,
) -> Result<(), CliError> {
    let mut document = previous.map_or_else(
        || StateDocument::new(environment, env!("CARGO_PKG_VERSION")),
        |stored| stored.document.clone(),
    );
    document.deployer_version = env!("CARGO_PKG_VERSION").into();
    document.resources = resources;
    document.outputs = outputs;
    backend
        .write(environment, &document, previous)
        .await
        .map_err(CliError::state(format!(
            "writing the state of {environment}"
        )))?;
    Ok(())
}

/// What `stored` records of each resource, as the planner measures drift and
/// intent from it (none without a state).
pub fn recorded_resources(stored: Option<&Stored>) -> RecordedResources {
    stored
        .into_iter()
        .flat_map(|stored| stored.document.resources.iter())
        .map(|(address, resource)| {
            (
                address.clone(),
                Recorded {
                    id: resource.id.clone(),
                    attributes: resource.observed.clone(),
                },
            )
        })
        .collect()
}
