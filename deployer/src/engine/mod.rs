//! The resource engine: every resource kind implements the same lifecycle
//! ([`Resource`]: read, create, update, delete; its desired attributes are data),
//! the pure [`plan`] diffs desired against observed, and [`apply`] carries a
//! plan out in dependency order, independent resources concurrently.

pub mod apply;
pub mod attributes;
pub mod drift;
pub mod error;
pub mod fence;
pub mod plan;
pub mod policy;
pub mod progress;
pub mod render;
pub mod review;

use std::sync::Arc;

pub use attributes::{
    AttributeChange, AttributeName, AttributeSet, KNOWN_AFTER_APPLY, Planned, Rule, Tags,
};
pub use error::{Doing, EngineError, Failure};
pub use fence::{Fence, Stop};
pub use plan::{
    Action, Attributes, DesiredAttributes, DesiredResource, ObservedResource, Plan, PlanError,
    Presence,
};

/// The output of a read, or `None` when `not_found` (a typed check of the
/// service's error, never of its message) says the resource does not exist.
pub fn existing<T, E>(
    result: Result<T, aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
    not_found: impl FnOnce(&E) -> bool,
    action: impl Into<String>,
) -> Result<Option<T>, EngineError>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(output) => Ok(Some(output)),
        Err(error) if error.as_service_error().is_some_and(not_found) => Ok(None),
        Err(error) => Err(EngineError::sdk(action, error)),
    }
}

/// One managed resource: its desired attributes (pure) and its lifecycle.
#[async_trait::async_trait]
pub trait Resource: Send + Sync + std::fmt::Debug {
    /// Where the resource is in its stack and state: `kind.label`, e.g.
    /// `s3_bucket.state` (the address of [`Resource::desired`]).
    fn address(&self) -> &str;
    /// What the configuration wants.
    fn desired(&self) -> DesiredResource;
    /// Observe the resource by its deterministic name; `None` when absent.
    async fn read(&self) -> Result<Option<ObservedResource>, EngineError>;
    /// Create it with every desired attribute.
    async fn create(&self) -> Result<(), EngineError>;
    /// Change `changes` in place.
    async fn update(
        &self,
        observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError>;
    /// Delete it (and whatever must go first, such as a bucket's objects).
    async fn delete(&self, observed: &ObservedResource) -> Result<(), EngineError>;
    /// What the state should remember of it, as `observed` (a finished backfill).
    fn recorded_attributes(
        &self,
        _observed: &ObservedResource,
    ) -> std::collections::BTreeMap<String, serde_json::Value> {
        std::collections::BTreeMap::new()
    }
}

/// A stack's resources, in dependency order.
pub type Resources = Vec<Arc<dyn Resource>>;

/// Read every resource concurrently; results in the stack's order.
pub async fn observe(resources: &Resources) -> Result<Vec<Option<ObservedResource>>, EngineError> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, resource) in resources.iter().enumerate() {
        let resource = resource.clone();
        tasks.spawn(async move { (index, resource.read().await) });
    }
    let mut observed = vec![None; resources.len()];
    while let Some(joined) = tasks.join_next().await {
        let (index, result) =
            joined.map_err(|error| EngineError::new("reading resources", error.to_string()))?;
        observed[index] = result?;
    }
    Ok(observed)
}

/// What was observed of the resource at `address` of `resources` (`observed`
/// is in the same order); `None` when it does not exist or is not in the stack.
pub fn observed_at<'a>(
    resources: &Resources,
    observed: &'a [Option<ObservedResource>],
    address: &str,
) -> Option<&'a ObservedResource> {
    resources
        .iter()
        .zip(observed)
        .find(|(resource, _)| resource.address() == address)
        .and_then(|(_, observed)| observed.as_ref())
}

/// Plan a stack: observe it, then diff.
pub async fn plan_stack(
    resources: &Resources,
) -> Result<(Plan, Vec<Option<ObservedResource>>), PlanStackError> {
    let observed = observe(resources).await?;
    let desired: Vec<DesiredResource> = resources
        .iter()
        .map(|resource| resource.desired())
        .collect();
    let plan = plan::plan(&desired, &observed)?;
    Ok((plan, observed))
}

/// Planning failed: AWS could not be read, or the plan is refused.
#[derive(Debug, thiserror::Error)]
pub enum PlanStackError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Refused(#[from] PlanError),
}
