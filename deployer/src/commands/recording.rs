//! Recording what a stack looks like in its state document after apply.

use std::collections::BTreeMap;

use serde_json::Value;
use state::{Backend, ResourceState, StateDocument, Stored};

use crate::engine::{ObservedResource, Resources};
use crate::error::CliError;

/// The state's view of the resources that exist: address -> kind, name, id, ARN.
pub fn state_resources(
    resources: &Resources,
    observed: &[Option<ObservedResource>],
) -> BTreeMap<String, ResourceState> {
    resources
        .iter()
        .zip(observed)
        .filter_map(|(resource, observed)| {
            let desired = resource.desired();
            observed.as_ref().map(|observed| {
                (
                    desired.address.clone(),
                    ResourceState {
                        kind: desired.kind.to_owned(),
                        name: desired.name.clone(),
                        id: observed.id.clone(),
                        arn: observed.arn.clone(),
                        attributes: BTreeMap::new(),
                    },
                )
            })
        })
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
