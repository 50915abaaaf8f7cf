//! Plans rendered for people, in Terraform's shape.

use std::fmt::Write;

use serde_json::Value;

use super::attributes::{AttributeChange, KNOWN_AFTER_APPLY, Planned};
use super::drift::{DriftKind, Review};
use super::plan::{Action, Plan};

/// A value as shown in a plan; long objects and lists (policy documents) are
/// spread over indented lines.
fn show(value: &Value) -> String {
    match value {
        Value::Null => "(none)".to_owned(),
        Value::String(text) => format!("{text:?}"),
        other => {
            let compact = other.to_string();
            if compact.len() <= 60 {
                return compact;
            }
            serde_json::to_string_pretty(other)
                .unwrap_or(compact)
                .replace('\n', "\n          ")
        }
    }
}

/// A desired value as shown in a plan.
fn show_planned(value: &Planned) -> String {
    match value {
        Planned::Known(value) => show(value),
        Planned::Unknown => KNOWN_AFTER_APPLY.to_owned(),
    }
}

fn changes(out: &mut String, symbol: char, changes: &[AttributeChange], with_old: bool) {
    let width = changes
        .iter()
        .map(|change| change.name.len())
        .max()
        .unwrap_or(0);
    for change in changes {
        let replace_note = if change.forces_replacement {
            " # forces replacement"
        } else {
            ""
        };
        // A list that changes shows what leaves it and what joins it.
        if let (true, Value::Array(old), Planned::Known(Value::Array(new))) =
            (with_old, &change.old, &change.new)
            && (old.iter().any(|item| !new.contains(item))
                || new.iter().any(|item| !old.contains(item)))
        {
            let _ = writeln!(out, "      {symbol} {}:{replace_note}", change.name);
            for item in old.iter().filter(|item| !new.contains(item)) {
                let _ = writeln!(out, "          - {}", show(item));
            }
            for item in new.iter().filter(|item| !old.contains(item)) {
                let _ = writeln!(out, "          + {}", show(item));
            }
            continue;
        }
        if with_old {
            let _ = writeln!(
                out,
                "      {symbol} {:width$} = {} -> {}{replace_note}",
                change.name,
                show(&change.old),
                show_planned(&change.new)
            );
        } else {
            let _ = writeln!(
                out,
                "      {symbol} {:width$} = {}",
                change.name,
                show_planned(&change.new)
            );
        }
    }
}

/// The drift section: what changed in AWS since the state recorded it,
/// attribute by attribute (recorded -> now), and what could not be measured.
pub fn render_drift(review: &Review) -> String {
    let mut out = String::new();
    if review.drift.is_empty() {
        out.push_str("No drift: AWS matches what the last apply recorded.\n");
    } else {
        out.push_str(
            "Drift: changed in AWS since the last apply recorded it (recorded -> now):\n\n",
        );
        for drift in &review.drift {
            match drift.kind {
                DriftKind::Changed => {
                    let _ = writeln!(out, "  # {} ({}) changed", drift.address, drift.name);
                }
                DriftKind::Deleted => {
                    let _ = writeln!(
                        out,
                        "  # {} ({}) was deleted outside the deployer",
                        drift.address, drift.name
                    );
                }
                DriftKind::Recreated => {
                    let _ = writeln!(
                        out,
                        "  # {} ({}) was recreated outside the deployer (id {} recorded)",
                        drift.address,
                        drift.name,
                        drift.recorded_id.as_deref().unwrap_or("?")
                    );
                }
            }
            let attributes: Vec<AttributeChange> = drift
                .attributes
                .iter()
                .map(|attribute| AttributeChange {
                    name: attribute.name.clone(),
                    old: attribute.recorded.clone(),
                    new: Planned::Known(attribute.observed.clone()),
                    forces_replacement: false,
                })
                .collect();
            changes(&mut out, '~', &attributes, true);
        }
        let _ = writeln!(
            out,
            "\nDrift: {} resource(s) changed outside the deployer. An apply sets back what the \
             configuration manages (the actions below) and records the rest as it is now.",
            review.drift.len()
        );
    }
    if !review.drift_unknown.is_empty() {
        let _ = writeln!(
            out,
            "Drift unknown for {}: the state does not record their attributes yet (it was \
             written by an older deployer); the next apply records them.",
            review.drift_unknown.join(", ")
        );
    }
    out
}

/// The intent section: what the code and settings change since the last
/// apply (recorded -> configured).
pub fn render_intent(review: &Review) -> String {
    let mut out = String::new();
    if review.intent.is_empty() {
        out.push_str(
            "No intended change: the code and settings match what the last apply recorded.\n",
        );
        return out;
    }
    out.push_str("Intent: what the code and settings change (recorded -> configured):\n\n");
    for intent in &review.intent {
        if intent.create {
            let _ = writeln!(out, "  # {} ({}) is new", intent.address, intent.name);
            changes(&mut out, '+', &intent.changes, false);
        } else {
            let _ = writeln!(out, "  # {} ({}) changes", intent.address, intent.name);
            changes(&mut out, '~', &intent.changes, true);
        }
    }
    out
}

/// The plan as text: drift and intent when measured, then one block per
/// resource that changes, then the totals.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    if let Some(review) = &plan.review {
        out.push_str(&render_drift(review));
        out.push('\n');
        out.push_str(&render_intent(review));
        out.push('\n');
    }
    out.push_str(&render_actions(plan));
    out
}

/// What apply does: one block per resource that changes, then the totals.
pub fn render_actions(plan: &Plan) -> String {
    let mut out = String::new();
    if !plan.has_changes() {
        out.push_str("No changes. AWS matches the configuration.\n");
        return out;
    }
    out.push_str("The deployer will perform the following actions:\n\n");
    for resource in &plan.resources {
        let (symbol, what) = match &resource.action {
            Action::NoOp => continue,
            Action::Create(_) => ('+', "will be created"),
            Action::Update(_) => ('~', "will be updated in place"),
            Action::Replace(_) => ('±', "must be replaced"),
            Action::Delete => ('-', "will be destroyed"),
        };
        let _ = writeln!(out, "  # {} ({}) {what}", resource.address, resource.name);
        let prefix = if matches!(resource.action, Action::Replace(_)) {
            "-/+".to_owned()
        } else {
            symbol.to_string()
        };
        let _ = writeln!(out, "  {prefix} {}", resource.address);
        match &resource.action {
            Action::Create(list) => changes(&mut out, '+', list, false),
            Action::Update(list) | Action::Replace(list) => changes(&mut out, '~', list, true),
            Action::NoOp | Action::Delete => {}
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Plan: {} to add, {} to change, {} to destroy.",
        plan.add, plan.change, plan.destroy
    );
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::plan::PlannedResource;

    #[test]
    fn plans_render_like_terraform() {
        let plan = Plan {
            resources: vec![
                PlannedResource {
                    address: "s3_bucket.state".into(),
                    kind: "s3_bucket".into(),
                    name: "b".into(),
                    id: None,
                    action: Action::Create(vec![AttributeChange {
                        name: "versioning".into(),
                        old: Value::Null,
                        new: Planned::Known(json!("Enabled")),
                        forces_replacement: false,
                    }]),
                },
                PlannedResource {
                    address: "dynamodb_table.locks".into(),
                    kind: "dynamodb_table".into(),
                    name: "t".into(),
                    id: Some("t".into()),
                    action: Action::Update(vec![AttributeChange {
                        name: "pitr".into(),
                        old: json!(false),
                        new: Planned::Known(json!(true)),
                        forces_replacement: false,
                    }]),
                },
                PlannedResource {
                    address: "iam_role.deploy".into(),
                    kind: "iam_role".into(),
                    name: "r".into(),
                    id: Some("r".into()),
                    action: Action::NoOp,
                },
            ],
            add: 1,
            change: 1,
            destroy: 0,
            review: None,
        };
        let text = render(&plan);
        assert!(
            text.contains("  + s3_bucket.state\n      + versioning = \"Enabled\""),
            "{text}"
        );
        assert!(
            text.contains("  ~ dynamodb_table.locks\n      ~ pitr = false -> true"),
            "{text}"
        );
        assert!(
            !text.contains("iam_role.deploy"),
            "no-ops are not listed: {text}"
        );
        assert!(
            text.ends_with("Plan: 1 to add, 1 to change, 0 to destroy.\n"),
            "{text}"
        );
        let empty = Plan {
            resources: vec![],
            add: 0,
            change: 0,
            destroy: 0,
            review: None,
        };
        assert!(render(&empty).starts_with("No changes."));
    }
}
