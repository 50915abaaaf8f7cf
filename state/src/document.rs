//! The state document: what the deployer remembers about one environment.
//!
//! ```json
//! {
//!   "format_version": 1,
//!   "lineage": "9b0c…",          // fixed when the environment's first state is written
//!   "serial": 7,                 // +1 on every write
//!   "environment": "dev",
//!   "deployer_version": "0.1.0",
//!   "updated_at": "2026-11-25T19:45:47.123Z",
//!   "resources": {
//!     "lambda_function.api": {
//!       "kind": "lambda_function", "name": "aimodelshare-playground-dev-api",
//!       "id": "aimodelshare-playground-dev-api", "arn": "arn:aws:lambda:…",
//!       "origin": "created",            // or "adopted": found by name
//!       "attributes": { "index_keys_backfilled": true },
//!       "observed": { "memory_size": 256, "timeout": 10 }  // as last applied
//!     }
//!   },
//!   "outputs": { "api_base_url": "https://…/dev" }
//! }
//! ```
//!
//! A document with a newer `format_version` than this build understands is
//! refused ([`StateError::UnsupportedFormat`]) and never overwritten.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::StateError;

/// The format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// One managed resource as last seen by the deployer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    /// The resource kind, e.g. `dynamodb_table`.
    pub kind: String,
    /// The resource's deterministic name.
    pub name: String,
    /// Its id in AWS (a name, an API id, …).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Whether the deployer created the resource or adopted one it found by
    /// name. Destroying the bootstrap stack keeps what was only adopted.
    /// Documents written before this was recorded read as adopted: the safe side.
    #[serde(default)]
    pub origin: Origin,
    /// What the engine needs to remember (e.g. that a backfill finished).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Value>,
    /// The managed attributes as AWS had them when the deployer last recorded
    /// the resource (after an apply), by name: what a plan compares AWS with
    /// to tell drift (AWS changed since) from intent (the configuration
    /// changes). `None` in documents written before this was recorded: such
    /// a resource's drift is unknown until the next apply records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<BTreeMap<String, Value>>,
}

/// How a resource came under the deployer's management.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// This deployer created it.
    Created,
    /// It existed, and was found by name.
    #[default]
    Adopted,
}

/// The state of one environment (or of the bootstrap stack).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateDocument {
    pub format_version: u32,
    pub lineage: Uuid,
    pub serial: u64,
    pub environment: String,
    pub deployer_version: String,
    pub updated_at: String,
    /// Resources by address (`kind.label`), sorted for stable diffs.
    #[serde(default)]
    pub resources: BTreeMap<String, ResourceState>,
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct FormatProbe {
    format_version: Option<u32>,
}

impl StateDocument {
    /// A new, empty document for `environment` with a fresh lineage and serial 0
    /// (the first write makes it 1).
    pub fn new(environment: &str, deployer_version: &str) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            lineage: Uuid::new_v4(),
            serial: 0,
            environment: environment.to_owned(),
            deployer_version: deployer_version.to_owned(),
            updated_at: String::new(),
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
        }
    }

    /// Parse a stored document; `location` names it in errors.
    pub fn from_json(bytes: &[u8], location: &str) -> Result<Self, StateError> {
        let corrupt = |detail: String| StateError::Corrupt {
            location: location.to_owned(),
            detail,
        };
        let probe: FormatProbe =
            serde_json::from_slice(bytes).map_err(|error| corrupt(error.to_string()))?;
        match probe.format_version {
            None => return Err(corrupt("format_version is missing".into())),
            Some(found) if found > FORMAT_VERSION => {
                return Err(StateError::UnsupportedFormat {
                    location: location.to_owned(),
                    found,
                    supported: FORMAT_VERSION,
                });
            }
            Some(_) => {}
        }
        serde_json::from_slice(bytes).map_err(|error| corrupt(error.to_string()))
    }

    /// Pretty JSON, ending in a newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// The document as the next write stores it: serial one higher, stamped now.
    pub(crate) fn next_revision(&self, previous: Option<&StateDocument>) -> StateDocument {
        let mut next = self.clone();
        if let Some(previous) = previous {
            next.lineage = previous.lineage;
            next.serial = previous.serial + 1;
        } else {
            next.serial = self.serial + 1;
        }
        next.format_version = FORMAT_VERSION;
        next.updated_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_round_trips_through_json() {
        let mut document = StateDocument::new("dev", "0.1.0");
        document.resources.insert(
            "dynamodb_table.scores".into(),
            ResourceState {
                kind: "dynamodb_table".into(),
                name: "PlaygroundScores-dev".into(),
                id: "PlaygroundScores-dev".into(),
                arn: Some(
                    "arn:aws:dynamodb:us-east-1:123456789012:table/PlaygroundScores-dev".into(),
                ),
                origin: Origin::Created,
                attributes: [("pitr".to_owned(), Value::Bool(true))].into(),
                observed: Some(
                    [("billing_mode".to_owned(), Value::from("PAY_PER_REQUEST"))].into(),
                ),
            },
        );
        document
            .outputs
            .insert("dynamodb_table_name".into(), "PlaygroundScores-dev".into());
        let parsed = StateDocument::from_json(&document.to_json(), "test").expect("parses");
        assert_eq!(parsed, document);
    }

    #[test]
    fn a_resource_recorded_before_origins_reads_as_adopted() {
        let old = br#"{"format_version": 1, "lineage": "9b0c7e2a-0000-4000-8000-000000000000",
            "serial": 3, "environment": "bootstrap", "deployer_version": "0.1.0",
            "updated_at": "2026-11-25T19:45:47.123Z",
            "resources": {"s3_bucket.state": {"kind": "s3_bucket", "name": "b", "id": "b"}}}"#;
        let parsed = StateDocument::from_json(old, "test").expect("parses");
        assert_eq!(parsed.resources["s3_bucket.state"].origin, Origin::Adopted);
        assert_eq!(
            parsed.resources["s3_bucket.state"].observed, None,
            "recorded before observed attributes: drift unknown, not none"
        );
    }

    #[test]
    fn newer_formats_and_garbage_are_refused_with_the_location() {
        let newer = br#"{"format_version": 99, "whatever": true}"#;
        match StateDocument::from_json(newer, "s3://b/k") {
            Err(StateError::UnsupportedFormat {
                found: 99,
                supported: 1,
                location,
            }) => {
                assert_eq!(location, "s3://b/k");
            }
            other => panic!("expected UnsupportedFormat, got {other:?}"),
        }
        for garbage in [
            &b"{\"format_version\": 1, \"lineage\": \"x\""[..],
            b"",
            b"[]",
            b"{}",
        ] {
            let error = StateDocument::from_json(garbage, "file.json").expect_err("refused");
            assert!(matches!(error, StateError::Corrupt { .. }), "{error:?}");
            assert!(error.to_string().contains("file.json"));
        }
    }

    #[test]
    fn each_revision_increments_the_serial_and_keeps_the_lineage() {
        let first = StateDocument::new("dev", "0.1.0").next_revision(None);
        assert_eq!(first.serial, 1);
        let mut changed = first.clone();
        changed.lineage = Uuid::new_v4();
        let second = changed.next_revision(Some(&first));
        assert_eq!(second.serial, 2);
        assert_eq!(second.lineage, first.lineage);
        assert!(!second.updated_at.is_empty());
    }
}
