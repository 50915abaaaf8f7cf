//! Measuring drift and intent ([`super::drift`]): pure, from the desired
//! resources, what was observed, the plan made from them, and what the state
//! recorded.

use serde_json::Value;

use super::attributes::{AttributeChange, Planned};
use super::drift::{
    DriftKind, DriftedAttribute, Recorded, RecordedResources, ResourceDrift, ResourceIntent, Review,
};
use super::plan::{Action, Attributes, DesiredResource, ObservedResource, Plan, equal, rule_of};

/// `plan`, with its drift and intent measured from `recorded` (`desired` and
/// `observed`, in the same order, are what it was made from).
pub fn reviewed(
    mut plan: Plan,
    desired: &[DesiredResource],
    observed: &[Option<ObservedResource>],
    recorded: &RecordedResources,
) -> Plan {
    plan.review = Some(review(desired, observed, recorded, &plan));
    plan
}

/// Drift and intent of `plan`, made from `desired` against `observed` (same
/// order), measured from `recorded`.
pub fn review(
    desired: &[DesiredResource],
    observed: &[Option<ObservedResource>],
    recorded: &RecordedResources,
    plan: &Plan,
) -> Review {
    let mut review = Review::default();
    for (index, want) in desired.iter().enumerate() {
        let have = observed.get(index).and_then(Option::as_ref);
        let record = recorded.get(&want.address);
        let record_attributes = record.and_then(|record| record.attributes.as_ref());
        match (record, record_attributes, have) {
            // Recorded with its attributes: drift and intent both measured.
            (Some(record), Some(attributes), _) => {
                if let Some(drift) = drift_of(want, record, attributes, have) {
                    review.drift.push(drift);
                }
                let changes = intent_of(want, attributes);
                if !changes.is_empty() {
                    review.intent.push(ResourceIntent {
                        address: want.address.clone(),
                        name: want.name.clone(),
                        create: false,
                        changes,
                    });
                }
            }
            // Recorded, attributes not, and gone from AWS: deleted outside.
            (Some(record), None, None) => {
                review.drift.push(ResourceDrift {
                    address: want.address.clone(),
                    name: want.name.clone(),
                    kind: DriftKind::Deleted,
                    recorded_id: Some(record.id.clone()),
                    attributes: Vec::new(),
                });
            }
            // Exists, attributes not recorded: drift unknown; the plan's
            // changes are the best account of intent there is.
            (_, None, Some(_)) => {
                review.drift_unknown.push(want.address.clone());
                if let Some(changes) = planned_changes(plan, &want.address) {
                    review.intent.push(ResourceIntent {
                        address: want.address.clone(),
                        name: want.name.clone(),
                        create: false,
                        changes: changes.to_vec(),
                    });
                }
            }
            // Attributes come from a record: there are none without one.
            (None, Some(_), _) => {}
            // Neither recorded nor in AWS: new.
            (None, None, None) => review.intent.push(ResourceIntent {
                address: want.address.clone(),
                name: want.name.clone(),
                create: true,
                changes: planned_changes(plan, &want.address)
                    .map(<[AttributeChange]>::to_vec)
                    .unwrap_or_default(),
            }),
        }
    }
    review
}

fn planned_changes<'a>(plan: &'a Plan, address: &str) -> Option<&'a [AttributeChange]> {
    plan.resources
        .iter()
        .find(|planned| planned.address == address)
        .and_then(|planned| match &planned.action {
            Action::Create(changes) | Action::Update(changes) | Action::Replace(changes) => {
                Some(changes.as_slice())
            }
            Action::NoOp | Action::Delete => None,
        })
}

/// What changed in AWS since `attributes` were recorded: every attribute the
/// record holds, managed by the configuration now or not (a function's
/// memory is the release's business only when a new one is staged, yet a
/// change to it is a change in AWS). One the record lacks is not compared.
fn drift_of(
    want: &DesiredResource,
    record: &Recorded,
    attributes: &Attributes,
    have: Option<&ObservedResource>,
) -> Option<ResourceDrift> {
    let Some(have) = have else {
        return Some(ResourceDrift {
            address: want.address.clone(),
            name: want.name.clone(),
            kind: DriftKind::Deleted,
            recorded_id: Some(record.id.clone()),
            attributes: Vec::new(),
        });
    };
    let changed: Vec<DriftedAttribute> = attributes
        .iter()
        .filter_map(|(name, recorded)| {
            let observed = have.attributes.get(name).cloned().unwrap_or(Value::Null);
            (!equal(rule_of(want, name), recorded, &observed)).then(|| DriftedAttribute {
                name: name.clone(),
                recorded: recorded.clone(),
                observed,
            })
        })
        .collect();
    let recreated = record.id != have.id;
    if changed.is_empty() && !recreated {
        return None;
    }
    Some(ResourceDrift {
        address: want.address.clone(),
        name: want.name.clone(),
        kind: if recreated {
            DriftKind::Recreated
        } else {
            DriftKind::Changed
        },
        recorded_id: recreated.then(|| record.id.clone()),
        attributes: changed,
    })
}

/// What the configuration changes from `attributes`, as recorded. A value
/// known only after apply is a change, as the planner has it.
fn intent_of(want: &DesiredResource, attributes: &Attributes) -> Vec<AttributeChange> {
    want.attributes
        .iter()
        .filter_map(|(name, new)| {
            let old = attributes.get(name).cloned().unwrap_or(Value::Null);
            let rule = rule_of(want, name);
            let same = match new {
                Planned::Known(new) => equal(rule, new, &old),
                Planned::Unknown => false,
            };
            (!same).then(|| AttributeChange {
                name: name.clone(),
                old,
                new: new.clone(),
                forces_replacement: rule == super::Rule::ForcesReplacement,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::Rule;
    use crate::engine::drift::Recorded;
    use crate::engine::plan::plan;

    fn desired(attributes: Value) -> DesiredResource {
        let known: Attributes = serde_json::from_value(attributes).expect("object");
        DesiredResource {
            address: "lambda_function.api".into(),
            kind: "lambda_function",
            name: "api".into(),
            attributes: known
                .into_iter()
                .map(|(name, value)| (name, Planned::Known(value)))
                .collect(),
            rules: [("policy", Rule::Policy), ("tags", Rule::Set)].into(),
            depends_on: Vec::new(),
            never_replace: None,
            refusals: Vec::new(),
            presence: crate::engine::plan::Presence::Wanted,
        }
    }

    fn observed(id: &str, attributes: Value) -> Option<ObservedResource> {
        Some(ObservedResource {
            id: id.into(),
            arn: None,
            attributes: serde_json::from_value(attributes).expect("object"),
            facts: Default::default(),
        })
    }

    fn recorded(id: &str, attributes: Option<Value>) -> RecordedResources {
        [(
            "lambda_function.api".to_owned(),
            Recorded {
                id: id.into(),
                attributes: attributes.map(|value| serde_json::from_value(value).expect("object")),
            },
        )]
        .into()
    }

    fn review_of(want: Value, have: Option<ObservedResource>, record: RecordedResources) -> Review {
        let want = [desired(want)];
        let have = [have];
        let planned = plan(&want, &have).expect("plan");
        review(&want, &have, &record, &planned)
    }

    #[test]
    fn a_change_made_in_aws_is_drift_attribute_by_attribute_and_not_intent() {
        let review = review_of(
            json!({"memory": 256, "timeout": 10}),
            observed("api", json!({"memory": 512, "timeout": 10})),
            recorded("api", Some(json!({"memory": 256, "timeout": 10}))),
        );
        assert_eq!(
            review.drift,
            [ResourceDrift {
                address: "lambda_function.api".into(),
                name: "api".into(),
                kind: DriftKind::Changed,
                recorded_id: None,
                attributes: vec![DriftedAttribute {
                    name: "memory".into(),
                    recorded: json!(256),
                    observed: json!(512),
                }],
            }]
        );
        assert!(!review.has_intent(), "{review:?}");
    }

    #[test]
    fn a_changed_setting_is_intent_and_not_drift() {
        let review = review_of(
            json!({"memory": 1024, "timeout": 10}),
            observed("api", json!({"memory": 256, "timeout": 10})),
            recorded("api", Some(json!({"memory": 256, "timeout": 10}))),
        );
        assert!(!review.has_drift(), "{review:?}");
        assert_eq!(review.intent.len(), 1);
        assert_eq!(review.intent[0].changes.len(), 1);
        assert_eq!(review.intent[0].changes[0].name, "memory");
        assert_eq!(review.intent[0].changes[0].old, json!(256));
        assert_eq!(review.intent[0].changes[0].new, Planned::Known(json!(1024)));
    }

    #[test]
    fn both_at_once_are_told_apart_and_compared_by_rule() {
        let review = review_of(
            json!({"memory": 1024, "tags": ["a", "b"], "policy": {"Statement": {"Action": "x"}}}),
            observed(
                "api",
                json!({"memory": 256, "tags": ["b", "a"], "policy": {"Statement": [{"Action": ["x"]}]},
                       "timeout": 99, "handler": "new"}),
            ),
            recorded(
                "api",
                Some(
                    json!({"memory": 128, "tags": ["a", "b"], "policy": {"Statement": {"Action": "x"}},
                            "timeout": 10}),
                ),
            ),
        );
        // Order and shape are no drift; timeout is drift though the config
        // does not manage it; handler, which the record lacks, is not compared.
        assert_eq!(review.drift.len(), 1);
        let names: Vec<&str> = review.drift[0]
            .attributes
            .iter()
            .map(|attribute| attribute.name.as_str())
            .collect();
        assert_eq!(names, ["memory", "timeout"]);
        assert_eq!(review.intent[0].changes[0].old, json!(128));
    }

    #[test]
    fn deleted_and_recreated_resources_are_drift() {
        let deleted = review_of(
            json!({"memory": 256}),
            None,
            recorded("api", Some(json!({"memory": 256}))),
        );
        assert_eq!(deleted.drift[0].kind, DriftKind::Deleted);
        assert!(!deleted.has_intent(), "{deleted:?}");
        let recreated = review_of(
            json!({"memory": 256}),
            observed("other-id", json!({"memory": 256})),
            recorded("api", Some(json!({"memory": 256}))),
        );
        assert_eq!(recreated.drift[0].kind, DriftKind::Recreated);
        assert_eq!(recreated.drift[0].recorded_id.as_deref(), Some("api"));
    }

    #[test]
    fn without_recorded_attributes_drift_is_unknown_and_the_plan_is_the_intent() {
        let review = review_of(
            json!({"memory": 1024}),
            observed("api", json!({"memory": 256})),
            recorded("api", None),
        );
        assert!(!review.has_drift());
        assert_eq!(review.drift_unknown, ["lambda_function.api"]);
        assert_eq!(review.intent[0].changes[0].old, json!(256));
        // Nothing recorded and nothing in AWS: a creation, no drift unknown.
        let new = review_of(json!({"memory": 256}), None, RecordedResources::new());
        assert!(new.drift_unknown.is_empty() && !new.has_drift());
        assert!(new.intent[0].create);
    }
}
