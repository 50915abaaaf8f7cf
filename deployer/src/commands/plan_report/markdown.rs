//! Plans as GitHub Markdown, pure: the pull request's comment (a summary of
//! every environment first, then each plan collapsed, kept under GitHub's
//! limit by cutting plans, never the summary), the job summary (every plan
//! whole), and the body of a drift issue.

use std::fmt::Write;

use crate::engine::Plan;
use crate::engine::render::{render, render_drift};

/// GitHub refuses a comment or an issue body longer than this (characters;
/// bytes are counted here, which are never fewer).
pub const GITHUB_LIMIT: usize = 65_536;

/// The hidden line by which the workflow finds its own comment to update it.
pub const COMMENT_MARKER: &str = "<!-- deployer-plan -->";

/// The hidden line by which the drift workflow finds `environment`'s issue.
pub fn drift_marker(environment: &str) -> String {
    format!("<!-- deployer-drift:{environment} -->")
}

/// One environment's plan, or why there is none.
#[derive(Debug, Clone)]
pub struct EnvironmentPlan {
    pub environment: String,
    pub outcome: PlanOutcome,
}

#[derive(Debug, Clone)]
pub enum PlanOutcome {
    Planned {
        plan: Box<Plan>,
        /// Which version `live` would serve.
        release: Option<String>,
    },
    /// No plan could be read (the plan failed): why.
    Failed(String),
}

/// Where the report points and what it is about.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Where every plan is whole (the workflow run's summary).
    pub details_url: Option<String>,
    /// The pull request's preview environment, when it has one.
    pub preview_url: Option<String>,
    /// The commit planned.
    pub commit: Option<String>,
}

fn drift_cell(plan: &Plan) -> String {
    match &plan.review {
        None => "not measured".to_owned(),
        Some(review) => {
            let mut cell = match review.drift.len() {
                0 => "none".to_owned(),
                count => format!("**{count} resource(s)**"),
            };
            if !review.drift_unknown.is_empty() {
                let _ = write!(cell, " (unknown for {})", review.drift_unknown.len());
            }
            cell
        }
    }
}

/// A table cell: one line, no pipe.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn headline(entry: &EnvironmentPlan) -> String {
    match &entry.outcome {
        PlanOutcome::Failed(_) => format!("{}: the plan failed", entry.environment),
        PlanOutcome::Planned { plan, .. } => {
            let drift = match &plan.review {
                Some(review) if review.has_drift() => {
                    format!("; drift in {} resource(s)", review.drift.len())
                }
                _ => String::new(),
            };
            format!(
                "{}: {} to add, {} to change, {} to destroy{drift}",
                entry.environment, plan.add, plan.change, plan.destroy
            )
        }
    }
}

/// The summary: one row per environment. Never cut.
fn summary(title: &str, plans: &[EnvironmentPlan], context: &Context) -> String {
    let mut out = format!("## {title}\n\n");
    if let Some(commit) = &context.commit {
        let _ = write!(out, "Commit `{}`. ", cell(commit));
    }
    if let Some(url) = &context.details_url {
        let _ = write!(out, "The whole plans are in [the job summary]({url}).");
    }
    out.push_str("\n\n");
    // An empty --preview-url (a pull request without a preview) shows nothing.
    if let Some(url) = context.preview_url.as_deref().filter(|url| !url.is_empty()) {
        let _ = writeln!(out, "Preview environment: {url}\n");
    }
    out.push_str("| Environment | Add | Change | Destroy | Drift | Release |\n");
    out.push_str("|---|--:|--:|--:|---|---|\n");
    for entry in plans {
        match &entry.outcome {
            PlanOutcome::Planned { plan, release } => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    cell(&entry.environment),
                    plan.add,
                    plan.change,
                    plan.destroy,
                    drift_cell(plan),
                    cell(release.as_deref().unwrap_or("unchanged"))
                );
            }
            PlanOutcome::Failed(_) => {
                let _ = writeln!(
                    out,
                    "| {} | – | – | – | – | **the plan failed** (see the job log) |",
                    cell(&entry.environment)
                );
            }
        }
    }
    out
}

/// A fence longer than any run of backticks in `text`.
fn fence(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat((longest + 1).max(3))
}

/// The text of a plan as shown in its block.
fn plan_text(entry: &EnvironmentPlan) -> String {
    match &entry.outcome {
        PlanOutcome::Planned { plan, release } => {
            let mut text = render(plan);
            if let Some(release) = release {
                let _ = writeln!(text, "Release: {release}.");
            }
            text
        }
        PlanOutcome::Failed(reason) => format!("{reason}\n"),
    }
}

/// `text` cut at a line boundary to at most `budget` bytes, with how many
/// lines were left out; whole when it fits.
fn cut(text: &str, budget: usize) -> (&str, usize) {
    if text.len() <= budget {
        return (text, 0);
    }
    let mut end = 0;
    for (index, _) in text.match_indices('\n') {
        if index + 1 > budget {
            break;
        }
        end = index + 1;
    }
    let kept = &text[..end];
    (kept, text[end..].lines().count())
}

/// One plan collapsed in `<details>`, its text cut to fit `budget` bytes in
/// all (with a link to `details_url` when cut).
fn details(entry: &EnvironmentPlan, budget: usize, details_url: Option<&str>) -> String {
    let text = plan_text(entry);
    let fence = fence(&text);
    let open = format!(
        "<details><summary>{}</summary>\n\n{fence}text\n",
        headline(entry)
    );
    let close = format!("{fence}\n\n</details>\n\n");
    let note_for = |lines: usize| match details_url {
        Some(url) => format!(
            "… {lines} more line(s) cut to fit GitHub's limit: the whole plan is in [the job summary]({url}).\n\n"
        ),
        None => format!("… {lines} more line(s) cut to fit GitHub's limit.\n\n"),
    };
    if open.len() + text.len() + close.len() <= budget {
        return format!("{open}{text}{close}");
    }
    // Room for the note, whatever the count of lines cut.
    let reserve = open.len() + close.len() + note_for(usize::MAX).len();
    let (kept, left_out) = cut(&text, budget.saturating_sub(reserve));
    format!("{open}{kept}{close}{}", note_for(left_out))
}

/// The pull request's comment: the marker, the summary, then each plan
/// collapsed; at most `limit` bytes. Plans are cut (each to a fair share of
/// what the summary leaves, a small plan's unused share going to those after
/// it), never the summary.
pub fn comment(plans: &[EnvironmentPlan], context: &Context, limit: usize) -> String {
    let mut out = format!("{COMMENT_MARKER}\n");
    out.push_str(&summary("deployer plan", plans, context));
    out.push('\n');
    append_plans(&mut out, plans, context, limit);
    out
}

/// The job summary: the summary, then every plan whole, open.
pub fn job_summary(plans: &[EnvironmentPlan], context: &Context) -> String {
    let mut out = summary("deployer plan", plans, context);
    out.push('\n');
    for entry in plans {
        let text = plan_text(entry);
        let fence = fence(&text);
        let _ = write!(
            out,
            "### {}\n\n{fence}text\n{text}{fence}\n\n",
            headline(entry)
        );
    }
    out
}

fn append_plans(out: &mut String, plans: &[EnvironmentPlan], context: &Context, limit: usize) {
    for (index, entry) in plans.iter().enumerate() {
        let left = limit.saturating_sub(out.len());
        let share = left / (plans.len() - index);
        out.push_str(&details(entry, share, context.details_url.as_deref()));
    }
}

/// The body of `environment`'s drift issue, from its plan: the marker, what
/// drifted, and what to do; at most `limit` bytes.
pub fn drift_issue(entry: &EnvironmentPlan, context: &Context, limit: usize) -> String {
    let mut out = format!("{}\n", drift_marker(&entry.environment));
    let environment = &entry.environment;
    match &entry.outcome {
        PlanOutcome::Failed(reason) => {
            let _ = writeln!(
                out,
                "The nightly drift check could not plan **{environment}**: {}",
                cell(reason)
            );
        }
        PlanOutcome::Planned { plan, .. } => {
            let review = plan.review.clone().unwrap_or_default();
            let _ = writeln!(
                out,
                "**{environment}** has drifted: {} resource(s) changed in AWS since the last \
                 `deployer apply --env {environment}` recorded them.\n\n\
                 Either set them back with `deployer apply --env {environment}` (it sets back what \
                 the configuration manages, and records the rest as it is now), or, if the change \
                 was wanted, make it in the configuration first. This issue is updated every night \
                 while the drift lasts, and closed once it is gone.\n",
                review.drift.len()
            );
            let text = render_drift(&review);
            let fence = fence(&text);
            let mut tail = String::new();
            if let Some(url) = &context.details_url {
                let _ = writeln!(tail, "\nChecked by [this run]({url}).");
            }
            let budget = limit.saturating_sub(out.len() + tail.len() + 2 * fence.len() + 200);
            let (kept, left_out) = cut(&text, budget);
            let _ = write!(out, "{fence}text\n{kept}{fence}\n");
            if left_out > 0 {
                let _ = writeln!(
                    out,
                    "… {left_out} more line(s) cut to fit GitHub's limit (`deployer plan --env {environment} --drift-only` shows them all)."
                );
            }
            out.push_str(&tail);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::attributes::{AttributeChange, Planned};
    use crate::engine::drift::{DriftKind, DriftedAttribute, ResourceDrift, Review};
    use crate::engine::plan::{Action, PlannedResource};

    const URL: &str = "https://github.com/o/r/actions/runs/1";

    /// A plan changing `resources` resources, each with a long policy-like value.
    fn plan(resources: usize, drift: usize) -> Plan {
        let change = |index: usize| AttributeChange {
            name: format!("policy_{index}"),
            old: json!("x".repeat(30)),
            new: Planned::Known(
                json!({"Statement": (0..20).map(|n| format!("statement {n} of {index}")).collect::<Vec<_>>()}),
            ),
            forces_replacement: false,
        };
        Plan {
            resources: (0..resources)
                .map(|index| PlannedResource {
                    address: format!("iam_role.r{index}"),
                    kind: "iam_role".into(),
                    name: format!("role-{index}"),
                    id: Some(format!("role-{index}")),
                    action: Action::Update(vec![change(index)]),
                })
                .collect(),
            add: 0,
            change: resources,
            destroy: 0,
            review: Some(Review {
                drift: (0..drift)
                    .map(|index| ResourceDrift {
                        address: format!("log_group.g{index}"),
                        name: format!("group-{index}"),
                        kind: DriftKind::Changed,
                        recorded_id: None,
                        attributes: vec![DriftedAttribute {
                            name: "retention_days".into(),
                            recorded: json!(14),
                            observed: json!(3),
                        }],
                    })
                    .collect(),
                intent: Vec::new(),
                drift_unknown: Vec::new(),
            }),
        }
    }

    fn planned(environment: &str, plan: Plan) -> EnvironmentPlan {
        EnvironmentPlan {
            environment: environment.into(),
            outcome: PlanOutcome::Planned {
                plan: Box::new(plan),
                release: Some("publish version 2 and move live from 1 to 2".into()),
            },
        }
    }

    fn context() -> Context {
        Context {
            details_url: Some(URL.into()),
            preview_url: None,
            commit: Some("abc1234".into()),
        }
    }

    #[test]
    fn a_small_comment_has_the_marker_the_summary_then_each_plan_whole() {
        let plans = [
            planned("dev", plan(1, 0)),
            planned("stage", plan(0, 2)),
            EnvironmentPlan {
                environment: "prod".into(),
                outcome: PlanOutcome::Failed("the plan failed".into()),
            },
        ];
        let text = comment(&plans, &context(), GITHUB_LIMIT);
        assert!(text.starts_with(COMMENT_MARKER), "{text}");
        for row in [
            "| dev | 0 | 1 | 0 | none | publish version 2 and move live from 1 to 2 |",
            "| stage | 0 | 0 | 0 | **2 resource(s)** | publish version 2",
            "| prod | – | – | – | – | **the plan failed** (see the job log) |",
        ] {
            assert!(text.contains(row), "{row}: {text}");
        }
        let summary_end = text.find("<details>").expect("plans follow the summary");
        assert!(text[..summary_end].contains("| Environment |"));
        assert_eq!(text.matches("<details>").count(), 3);
        assert!(text.contains(
            "<summary>stage: 0 to add, 0 to change, 0 to destroy; drift in 2 resource(s)</summary>"
        ));
        assert!(text.contains("~ retention_days = 14 -> 3"), "{text}");
        assert!(!text.contains("cut to fit"), "{text}");
        assert!(!text.contains("Preview environment"), "{text}");
        let with_preview = Context {
            preview_url: Some("https://pr-7.example.test".into()),
            ..context()
        };
        let text = comment(&plans, &with_preview, GITHUB_LIMIT);
        let summary_end = text.find("<details>").expect("plans follow the summary");
        assert!(
            text[..summary_end].contains("Preview environment: https://pr-7.example.test"),
            "{text}"
        );
        let empty_preview = Context {
            preview_url: Some(String::new()),
            ..context()
        };
        assert!(!comment(&plans, &empty_preview, GITHUB_LIMIT).contains("Preview environment"));
    }

    #[test]
    fn a_huge_plan_is_cut_under_the_limit_with_the_link_and_the_summary_intact() {
        let huge = plan(2_000, 0);
        assert!(
            render(&huge).len() > 4 * GITHUB_LIMIT,
            "the plan must be huge"
        );
        let plans = [
            planned("dev", huge.clone()),
            planned("stage", plan(1, 1)),
            planned("prod", huge),
        ];
        let text = comment(&plans, &context(), GITHUB_LIMIT);
        assert!(text.len() <= GITHUB_LIMIT, "{} bytes", text.len());
        assert!(text.chars().count() <= GITHUB_LIMIT);
        // The summary is whole, and the same as in the job summary.
        let full = job_summary(&plans, &context());
        let summary_of = |text: &str| {
            let start = text.find("## deployer plan").expect("title");
            let end = text[start..]
                .find("\n\n<details>")
                .or_else(|| text[start..].find("\n\n###"))
                .expect("end");
            text[start..start + end].to_owned()
        };
        assert_eq!(summary_of(&text), summary_of(&full));
        assert!(text.contains("| dev | 0 | 2000 | 0 | none |"), "{text}");
        // Both huge plans are cut, with the link; the small one is whole.
        let link = format!("the whole plan is in [the job summary]({URL})");
        assert_eq!(text.matches(&link).count(), 2, "{text}");
        assert_eq!(text.matches("<details>").count(), 3);
        assert_eq!(
            text.matches("</details>").count(),
            3,
            "every block is closed"
        );
        assert!(
            text.contains("~ retention_days = 14 -> 3"),
            "the small plan is whole"
        );
        // The job summary holds every plan whole.
        assert!(full.contains("iam_role.r1999") && !full.contains("cut to fit"));
    }

    #[test]
    fn a_plan_text_with_backticks_cannot_close_its_block() {
        assert_eq!(fence("a ```` b"), "`````");
        assert_eq!(fence("plain"), "```");
    }

    #[test]
    fn the_drift_issue_names_the_environment_and_each_attribute_and_stays_under_the_limit() {
        let body = drift_issue(&planned("stage", plan(0, 2)), &context(), GITHUB_LIMIT);
        assert!(body.starts_with("<!-- deployer-drift:stage -->"), "{body}");
        assert!(
            body.contains("**stage** has drifted: 2 resource(s)"),
            "{body}"
        );
        assert!(body.contains("~ retention_days = 14 -> 3"), "{body}");
        assert!(body.contains(URL), "{body}");
        let huge = drift_issue(&planned("prod", plan(0, 5_000)), &context(), GITHUB_LIMIT);
        assert!(huge.len() <= GITHUB_LIMIT, "{} bytes", huge.len());
        assert!(huge.contains("more line(s) cut"), "{huge}");
    }
}
