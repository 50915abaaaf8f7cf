//! The planner: pure. `plan(desired, observed)` compares what the config wants
//! with what AWS has and says, per resource, create, update in place (with the
//! attributes that change), replace, delete or nothing. No I/O, so every rule is
//! a unit test over data.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::attributes::{AttributeChange, AttributeName, AttributeSet, Planned, Rule};
use super::drift::Review;
use super::policy;

/// Observed attribute values, by name. `Value::Null` means "not set".
pub type Attributes = BTreeMap<String, Value>;

/// Desired attribute values, by name: known, or only after apply.
pub type DesiredAttributes = BTreeMap<String, Planned>;

/// What the config wants of one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredResource {
    /// `kind.label`, e.g. `s3_bucket.state`.
    pub address: String,
    pub kind: &'static str,
    pub name: String,
    pub attributes: DesiredAttributes,
    /// Rules for attributes that are not [`Rule::InPlace`].
    pub rules: BTreeMap<&'static str, Rule>,
    /// Addresses this resource needs first.
    pub depends_on: Vec<String>,
    /// Why this resource must never be replaced implicitly (tables hold data).
    pub never_replace: Option<&'static str>,
    /// Attributes changed in place only from one value (a setting that is
    /// off); a change from any other value is refused ([`Refusal`]).
    pub refusals: Vec<Refusal>,
    /// Whether the stack wants the resource to exist.
    pub presence: Presence,
}

/// Whether a stack wants a resource to exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Presence {
    /// Created when absent, converged when present.
    #[default]
    Wanted,
    /// Converged when present, never created (an optional legacy resource).
    KeptIfPresent,
    /// Deleted when present (a plain destroy line in the plan), nothing when absent.
    Retired,
}

/// An attribute the deployer changes in place only from `only_from` (the
/// value that means "not set"): from anything else, the plan is refused with
/// `reason`, which explains the choice and what to do. For a setting that is
/// someone's decision once made, and costly to switch (DynamoDB Time to Live
/// on another attribute).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub attribute: &'static str,
    pub only_from: Value,
    pub reason: String,
}

impl DesiredResource {
    /// A resource at `address` whose desired attributes (and their rules) are
    /// `attributes`; no dependencies, replaceable.
    pub fn new(
        address: impl Into<String>,
        kind: &'static str,
        name: impl Into<String>,
        attributes: impl AttributeSet,
    ) -> Self {
        Self {
            address: address.into(),
            kind,
            name: name.into(),
            rules: rules_of(&attributes),
            attributes: attributes.into_planned(),
            depends_on: Vec::new(),
            never_replace: None,
            refusals: Vec::new(),
            presence: Presence::Wanted,
        }
    }

    /// Whether the resource is wanted, kept only if present, or retired.
    pub fn with_presence(mut self, presence: Presence) -> Self {
        self.presence = presence;
        self
    }

    /// These addresses must be applied first.
    pub fn depending_on(mut self, addresses: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.depends_on = addresses.into_iter().map(Into::into).collect();
        self
    }

    /// Refuse to replace this resource, for `reason`.
    pub fn never_replaced(mut self, reason: &'static str) -> Self {
        self.never_replace = Some(reason);
        self
    }

    /// Change `attribute` in place only from `only_from`; from any other
    /// observed value, refuse the plan for `reason`.
    pub fn changed_only_from(
        mut self,
        attribute: &'static str,
        only_from: impl Into<Value>,
        reason: impl Into<String>,
    ) -> Self {
        self.refusals.push(Refusal {
            attribute,
            only_from: only_from.into(),
            reason: reason.into(),
        });
        self
    }
}

fn rules_of<S: AttributeSet>(_: &S) -> BTreeMap<&'static str, Rule> {
    S::rules()
}

/// What AWS has.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservedResource {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The managed attributes, which the plan compares.
    pub attributes: Attributes,
    /// What is only ever observed (a table's item count, an API's endpoint),
    /// kept apart from the managed attributes and never planned. Each kind
    /// writes its own as a type ([`ObservedResource::with_facts`]) and reads
    /// them back as that type ([`ObservedResource::facts`]).
    #[serde(skip_serializing_if = "Attributes::is_empty")]
    pub facts: Attributes,
}

impl ObservedResource {
    /// The observed value of `attribute`, as its type; `None` when it is
    /// absent (or, from a hand-edited map, of another shape).
    pub fn attribute<T: DeserializeOwned>(&self, attribute: impl AttributeName) -> Option<T> {
        self.attributes
            .get(attribute.name())
            .and_then(|value| T::deserialize(value).ok())
    }

    /// This resource, with `facts` (a kind's struct of what is only observed).
    pub fn with_facts(mut self, facts: &impl Serialize) -> Self {
        self.facts = match serde_json::to_value(facts) {
            Ok(Value::Object(facts)) => facts
                .into_iter()
                .filter(|(_, value)| !value.is_null())
                .collect(),
            _ => Attributes::new(),
        };
        self
    }

    /// The facts, as the kind's struct (each one its default when absent).
    pub fn facts<T: DeserializeOwned + Default>(&self) -> T {
        let facts: serde_json::Map<String, Value> = self
            .facts
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        T::deserialize(Value::Object(facts)).unwrap_or_default()
    }
}

/// What happens to one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action", content = "changes")]
pub enum Action {
    NoOp,
    Create(Vec<AttributeChange>),
    Update(Vec<AttributeChange>),
    Replace(Vec<AttributeChange>),
    Delete,
}

/// One resource in the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedResource {
    pub address: String,
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(flatten)]
    pub action: Action,
}

/// The whole plan, in dependency order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub resources: Vec<PlannedResource>,
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    /// Drift and intent, measured from what the state recorded
    /// ([`super::review`]); `None` where the plan was not measured so (the
    /// bootstrap stack, a destroy).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.add + self.change + self.destroy > 0
    }

    /// Whether AWS changed since the state recorded it.
    pub fn has_drift(&self) -> bool {
        self.review.as_ref().is_some_and(Review::has_drift)
    }
}

/// A plan that must not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "{address} ({name}) would have to be replaced to change {attributes}, and {reason}. \
         The deployer never does that implicitly: keep the current value in the config, or \
         migrate the data to a new resource under another name yourself"
    )]
    ReplacementRefused {
        address: String,
        name: String,
        attributes: String,
        reason: &'static str,
    },
    #[error(transparent)]
    ChangeRefused(Box<ChangeRefusal>),
}

/// A change a [`Refusal`] stops: from `old`, which is not `only_from`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{address} ({name}) has {attribute} = {old}, and the configuration wants {new}. The \
     deployer changes {attribute} only from {only_from}, never from another value: {reason}"
)]
pub struct ChangeRefusal {
    pub address: String,
    pub name: String,
    pub attribute: String,
    pub old: Value,
    pub new: Value,
    pub only_from: Value,
    pub reason: String,
}

pub(crate) fn rule_of(resource: &DesiredResource, attribute: &str) -> Rule {
    resource
        .rules
        .get(attribute)
        .copied()
        .unwrap_or(Rule::InPlace)
}

/// Whether `desired` is what AWS has. A value not known until apply is a
/// change: apply resolves it, and a stale one (an id from before its resource
/// was recreated) is repaired in the same run.
fn same(rule: Rule, desired: &Planned, observed: &Value) -> bool {
    let Planned::Known(desired) = desired else {
        return false;
    };
    equal(rule, desired, observed)
}

/// Whether two known values of an attribute are the same by its `rule`.
pub(crate) fn equal(rule: Rule, desired: &Value, observed: &Value) -> bool {
    match rule {
        Rule::Policy => match (desired, observed) {
            (Value::Null, Value::Null) => true,
            (Value::Null, _) | (_, Value::Null) => false,
            _ => policy::equivalent(desired, observed),
        },
        Rule::Set => {
            let canonical = |value: &Value| {
                let mut items: Vec<String> = match value {
                    Value::Array(items) => items.iter().map(Value::to_string).collect(),
                    Value::Null => Vec::new(),
                    other => vec![other.to_string()],
                };
                items.sort();
                items.dedup();
                items
            };
            canonical(desired) == canonical(observed)
        }
        Rule::InPlace | Rule::ForcesReplacement => desired == observed,
    }
}

/// Diff one resource's desired attributes against what was observed. Only the
/// attributes the config states are compared: others are AWS's business.
pub fn diff(desired: &DesiredResource, observed: &ObservedResource) -> Vec<AttributeChange> {
    desired
        .attributes
        .iter()
        .filter_map(|(name, want)| {
            let have = observed
                .attributes
                .get(name)
                .cloned()
                .unwrap_or(Value::Null);
            let rule = rule_of(desired, name);
            (!same(rule, want, &have)).then(|| AttributeChange {
                name: name.clone(),
                old: have,
                new: want.clone(),
                forces_replacement: rule == Rule::ForcesReplacement,
            })
        })
        .collect()
}

/// The first change of `changes` that `desired` refuses to make (see [`Refusal`]).
fn refuse(desired: &DesiredResource, changes: &[AttributeChange]) -> Result<(), PlanError> {
    for change in changes {
        let Some(refusal) = desired
            .refusals
            .iter()
            .find(|refusal| refusal.attribute == change.name)
        else {
            continue;
        };
        if change.old != refusal.only_from {
            return Err(PlanError::ChangeRefused(Box::new(ChangeRefusal {
                address: desired.address.clone(),
                name: desired.name.clone(),
                attribute: change.name.clone(),
                old: change.old.clone(),
                new: serde_json::to_value(&change.new).unwrap_or(Value::Null),
                only_from: refusal.only_from.clone(),
                reason: refusal.reason.clone(),
            })));
        }
    }
    Ok(())
}

/// Plan `desired` against `observed` (same order; `None` where nothing exists).
pub fn plan(
    desired: &[DesiredResource],
    observed: &[Option<ObservedResource>],
) -> Result<Plan, PlanError> {
    let mut resources = Vec::with_capacity(desired.len());
    let (mut add, mut change, mut destroy) = (0, 0, 0);
    for (want, have) in desired
        .iter()
        .zip(observed.iter().chain(std::iter::repeat(&None)))
    {
        let action = match (want.presence, have) {
            (Presence::KeptIfPresent | Presence::Retired, None) => continue,
            (Presence::Retired, Some(_)) => {
                destroy += 1;
                Action::Delete
            }
            (Presence::Wanted, None) => {
                add += 1;
                Action::Create(
                    want.attributes
                        .iter()
                        .map(|(name, value)| AttributeChange {
                            name: name.clone(),
                            old: Value::Null,
                            new: value.clone(),
                            forces_replacement: false,
                        })
                        .collect(),
                )
            }
            (_, Some(have)) => {
                let changes = diff(want, have);
                refuse(want, &changes)?;
                if changes.is_empty() {
                    Action::NoOp
                } else if changes.iter().any(|change| change.forces_replacement) {
                    if let Some(reason) = want.never_replace {
                        return Err(PlanError::ReplacementRefused {
                            address: want.address.clone(),
                            name: want.name.clone(),
                            attributes: changes
                                .iter()
                                .filter(|change| change.forces_replacement)
                                .map(|change| change.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                            reason,
                        });
                    }
                    add += 1;
                    destroy += 1;
                    Action::Replace(changes)
                } else {
                    change += 1;
                    Action::Update(changes)
                }
            }
        };
        resources.push(PlannedResource {
            address: want.address.clone(),
            kind: want.kind.to_owned(),
            name: want.name.clone(),
            id: have.as_ref().map(|have| have.id.clone()),
            action,
        });
    }
    Ok(Plan {
        resources,
        add,
        change,
        destroy,
        review: None,
    })
}

/// A plan that deletes every resource of `desired` that exists (`observed`,
/// same order), in reverse order.
pub fn destroy_plan(desired: &[DesiredResource], observed: &[Option<ObservedResource>]) -> Plan {
    let resources: Vec<PlannedResource> = desired
        .iter()
        .zip(observed)
        .rev()
        .filter_map(|(want, have)| {
            have.as_ref().map(|have| PlannedResource {
                address: want.address.clone(),
                kind: want.kind.to_owned(),
                name: want.name.clone(),
                id: Some(have.id.clone()),
                action: Action::Delete,
            })
        })
        .collect();
    Plan {
        destroy: resources.len(),
        resources,
        add: 0,
        change: 0,
        review: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn desired(attributes: Value) -> DesiredResource {
        let known: Attributes = serde_json::from_value(attributes).expect("object");
        DesiredResource {
            address: "dynamodb_table.locks".into(),
            kind: "dynamodb_table",
            name: "locks".into(),
            attributes: known
                .into_iter()
                .map(|(name, value)| {
                    let value = if value == json!("unknown") {
                        Planned::Unknown
                    } else {
                        Planned::Known(value)
                    };
                    (name, value)
                })
                .collect(),
            rules: [
                ("hash_key", Rule::ForcesReplacement),
                ("policy", Rule::Policy),
                ("clients", Rule::Set),
            ]
            .into(),
            depends_on: Vec::new(),
            never_replace: None,
            refusals: Vec::new(),
            presence: Presence::Wanted,
        }
    }

    fn observed(attributes: Value) -> Option<ObservedResource> {
        Some(ObservedResource {
            id: "locks".into(),
            arn: None,
            attributes: serde_json::from_value(attributes).expect("object"),
            facts: Default::default(),
        })
    }

    #[test]
    fn absent_resources_are_created_with_every_attribute() {
        let plan = plan(
            &[desired(json!({"pitr": true, "hash_key": "LockID"}))],
            &[None],
        )
        .expect("plan");
        assert_eq!((plan.add, plan.change, plan.destroy), (1, 0, 0));
        let Action::Create(changes) = &plan.resources[0].action else {
            panic!("create expected");
        };
        assert_eq!(changes.len(), 2);
    }

    #[test]
    fn equal_resources_are_no_ops_and_extra_observed_attributes_are_ignored() {
        let plan = plan(
            &[desired(json!({"pitr": true, "clients": ["a", "b"], "policy": {"Statement": {"Action": "x", "Effect": "Allow"}}}))],
            &[observed(json!({"pitr": true, "clients": ["b", "a"], "arn_only_aws_knows": 1,
                              "policy": {"Statement": [{"Action": ["x"], "Effect": "Allow"}]}}))],
        )
        .expect("plan");
        assert_eq!(plan.resources[0].action, Action::NoOp);
        assert!(!plan.has_changes());
    }

    #[test]
    fn drift_is_an_update_listing_old_and_new() {
        let plan = plan(
            &[desired(json!({"pitr": true, "billing": "PAY_PER_REQUEST"}))],
            &[observed(
                json!({"pitr": false, "billing": "PAY_PER_REQUEST"}),
            )],
        )
        .expect("plan");
        assert_eq!(
            plan.resources[0].action,
            Action::Update(vec![AttributeChange {
                name: "pitr".into(),
                old: json!(false),
                new: Planned::Known(json!(true)),
                forces_replacement: false
            }])
        );
        assert_eq!((plan.add, plan.change, plan.destroy), (0, 1, 0));
    }

    #[test]
    fn immutable_changes_replace_unless_the_resource_holds_data() {
        let want = desired(json!({"hash_key": "LockID"}));
        let have = observed(json!({"hash_key": "Other"}));
        let replaced =
            plan(std::slice::from_ref(&want), std::slice::from_ref(&have)).expect("plan");
        assert!(matches!(replaced.resources[0].action, Action::Replace(_)));
        assert_eq!((replaced.add, replaced.change, replaced.destroy), (1, 0, 1));

        let protected = DesiredResource {
            never_replace: Some("it holds the lock table's data"),
            ..want
        };
        let error = plan(&[protected], &[have]).expect_err("refused");
        assert!(error.to_string().contains("hash_key"), "{error}");
        assert!(
            error.to_string().contains("never does that implicitly"),
            "{error}"
        );
    }

    #[test]
    fn an_attribute_changed_only_from_its_unset_value_refuses_any_other_switch() {
        let want = desired(json!({"ttl": "ttl", "pitr": true})).changed_only_from(
            "ttl",
            "disabled",
            "switching costs an hour",
        );
        // From the unset value: an ordinary in-place change.
        let from_unset = plan(
            std::slice::from_ref(&want),
            &[observed(json!({"ttl": "disabled", "pitr": true}))],
        )
        .expect("plan");
        assert_eq!(
            from_unset.resources[0].action,
            Action::Update(vec![AttributeChange {
                name: "ttl".into(),
                old: json!("disabled"),
                new: Planned::Known(json!("ttl")),
                forces_replacement: false
            }])
        );
        // Already what is wanted: nothing to do, nothing refused.
        let same = plan(
            std::slice::from_ref(&want),
            &[observed(json!({"ttl": "ttl", "pitr": false}))],
        )
        .expect("plan");
        assert!(
            matches!(same.resources[0].action, Action::Update(ref changes) if changes.len() == 1 && changes[0].name == "pitr")
        );
        // From another value: refused, naming both values and the reason.
        let error = plan(
            std::slice::from_ref(&want),
            &[observed(json!({"ttl": "expiresAt", "pitr": true}))],
        )
        .expect_err("refused");
        let message = error.to_string();
        for part in [
            "dynamodb_table.locks (locks)",
            r#"ttl = "expiresAt""#,
            r#"wants "ttl""#,
            r#"only from "disabled""#,
            "switching costs an hour",
        ] {
            assert!(message.contains(part), "{part}: {message}");
        }
        // Creating is not switching: a new resource gets the value.
        let created = plan(&[want], &[None]).expect("plan");
        assert!(matches!(created.resources[0].action, Action::Create(_)));
    }

    #[test]
    fn values_known_only_after_apply_are_planned_as_changes() {
        // An id from before its resource was recreated must not survive the plan.
        let plan = plan(
            &[desired(json!({"target": "unknown", "pitr": true}))],
            &[observed(
                json!({"target": "integrations/abc", "pitr": true}),
            )],
        )
        .expect("plan");
        let Action::Update(changes) = &plan.resources[0].action else {
            panic!("an update expected: {:?}", plan.resources[0].action);
        };
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].name, "target");
        assert_eq!(changes[0].old, json!("integrations/abc"));
        assert!(changes[0].new.is_unknown());
        assert!(crate::engine::render::render(&plan).contains("(known after apply)"));
    }

    #[test]
    fn destroy_plans_run_in_reverse_order_and_skip_what_is_absent() {
        let named = |address: &str| DesiredResource {
            address: address.into(),
            ..desired(json!({}))
        };
        let plan = destroy_plan(
            &[named("a.first"), named("b.absent"), named("c.third")],
            &[observed(json!({})), None, observed(json!({}))],
        );
        let order: Vec<&str> = plan.resources.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(order, ["c.third", "a.first"]);
        assert_eq!(plan.destroy, 2);
        assert!(plan.resources.iter().all(|r| r.action == Action::Delete));
    }

    #[test]
    fn optional_resources_are_never_created_and_retired_ones_are_deleted() {
        let want = desired(json!({"hash_key": "LockID"}));
        let have = observed(json!({"hash_key": "LockID"}));
        let kept = want.clone().with_presence(Presence::KeptIfPresent);
        let absent = plan(std::slice::from_ref(&kept), &[None]).expect("plan");
        assert!(absent.resources.is_empty() && !absent.has_changes());
        let present = plan(&[kept], std::slice::from_ref(&have)).expect("plan");
        assert_eq!(present.resources[0].action, Action::NoOp);

        let retired = want.with_presence(Presence::Retired);
        let gone = plan(std::slice::from_ref(&retired), &[None]).expect("plan");
        assert!(gone.resources.is_empty() && !gone.has_changes());
        let deleted = plan(&[retired], &[have]).expect("plan");
        assert_eq!(deleted.resources[0].action, Action::Delete);
        assert_eq!((deleted.add, deleted.change, deleted.destroy), (0, 0, 1));
    }
}
