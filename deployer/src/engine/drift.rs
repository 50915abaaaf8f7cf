//! Drift apart from intent, as data (measured by [`super::review`]). The state records each resource's managed
//! attributes as AWS had them after the last apply ([`Recorded`]). Against
//! that record, a plan tells two kinds of change apart:
//!
//! - **drift**: what changed in AWS since (observed ≠ recorded), attribute by
//!   attribute, or a resource deleted or recreated outside the deployer;
//! - **intent**: what the code and settings change (desired ≠ recorded).
//!
//! Drift compares every attribute the record holds, intent every attribute
//! the configuration states, each by its [`Rule`](super::Rule) (a policy by
//! meaning, a set as a set), as the planner compares them. A resource that exists but whose attributes the state does
//! not record (a document written before they were recorded) has unknown
//! drift, listed as such, never as "no drift"; its intent is then what the
//! plan changes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::attributes::AttributeChange;

/// Attribute values, by name (as [`super::plan::Attributes`]).
pub type Attributes = BTreeMap<String, Value>;

/// What the state recorded of one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub id: String,
    /// The managed attributes after the last apply; `None`: not recorded.
    pub attributes: Option<Attributes>,
}

/// The recorded resources, by address.
pub type RecordedResources = BTreeMap<String, Recorded>;

/// How a resource drifted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// Attributes changed in AWS.
    Changed,
    /// The resource was deleted outside the deployer.
    Deleted,
    /// A resource of the same name with another id stands in its place.
    Recreated,
}

/// One attribute changed in AWS since the state recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftedAttribute {
    pub name: String,
    /// As the state recorded it.
    pub recorded: Value,
    /// As AWS has it now (`null`: absent).
    pub observed: Value,
}

/// One resource changed in AWS since the state recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceDrift {
    pub address: String,
    pub name: String,
    pub kind: DriftKind,
    /// The recorded id, and the one found now, when it was recreated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<DriftedAttribute>,
}

/// What the code and settings change of one resource, from what was recorded
/// (`old`) to what the configuration wants (`new`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceIntent {
    pub address: String,
    pub name: String,
    /// The resource is new to the stack (neither recorded nor in AWS).
    #[serde(default)]
    pub create: bool,
    pub changes: Vec<AttributeChange>,
}

/// Drift and intent of one plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub drift: Vec<ResourceDrift>,
    pub intent: Vec<ResourceIntent>,
    /// Resources that exist but whose attributes the state does not record:
    /// their drift is unknown until an apply records them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift_unknown: Vec<String>,
}

impl Review {
    pub fn has_drift(&self) -> bool {
        !self.drift.is_empty()
    }

    pub fn has_intent(&self) -> bool {
        !self.intent.is_empty()
    }
}
