//! `PUT /tables/{tableId}/users/{username}/moral-compass` (and its legacy
//! alias `/moralcompass`): a student's progress in the teaching apps, scored
//! as a "moral compass": the primary metric of their model weighted by the
//! share of tasks and questions done,
//! `primary × (tasksCompleted + questionsCorrect) / (totalTasks + totalQuestions)`,
//! 0 when nothing is to be done, computed as the legacy handler computed it
//! (decimal arithmetic to 28 significant digits).
//!
//! Exact where the legacy handler was not: a new user is counted through the
//! same counters as a score PUT (exact under concurrency and conflicts), only
//! this write's fields are set (a score PUT's `submissionCount` and
//! `totalCount` are kept, and this write is kept by it), and a number
//! DynamoDB cannot store, or JSON cannot carry exactly, is a 400 naming it.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bigdecimal::BigDecimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::access::MaybeCaller;
use super::bodies::{Count, ErrorBody, UserPath};
use super::input::{self, Body};
use super::{ApiError, AppState};
use crate::schema::{
    COMPLETED_TASK_IDS, METRICS, MORAL_COMPASS_SCORE, PRIMARY_METRIC, QUESTIONS_CORRECT,
    TASKS_COMPLETED, TEAM_NAME, TOTAL_QUESTIONS, TOTAL_TASKS, is_task_id, sorted_task_ids,
};
use crate::store::UserWrite;

/// Most metrics one write may carry.
pub const MAX_METRICS: usize = 32;
/// Longest metric name.
pub const MAX_METRIC_NAME_CHARS: usize = 64;
/// Most task ids one write may carry.
pub const MAX_TASK_IDS: usize = 1_000;
/// DynamoDB's numbers: magnitudes from 10^-130 to below 10^126.
const SMALLEST: f64 = 1e-130;
const LARGEST: f64 = f64::from_bits(1e126_f64.to_bits() - 1);

/// The body.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct MoralCompassRequest {
    /// The model's metrics by name: at least one, at most 32, each a number
    /// DynamoDB stores and JSON carries exactly (0, or a magnitude from
    /// 10^-130 to below 10^126, with no more digits than a double holds).
    #[schema(schema_with = metrics_schema)]
    pub metrics: BTreeMap<String, f64>,
    /// The metric that counts: `accuracy` when left out and present, else the
    /// first name in order. It must be one of `metrics`.
    #[schema(nullable = true, min_length = 1, max_length = 64)]
    pub primary_metric: Option<String>,
    /// 0 when left out.
    #[schema(nullable = true)]
    pub tasks_completed: Option<Count>,
    #[schema(nullable = true)]
    pub total_tasks: Option<Count>,
    #[schema(nullable = true)]
    pub questions_correct: Option<Count>,
    #[schema(nullable = true)]
    pub total_questions: Option<Count>,
    /// Stored (trimmed) when it holds a non-blank name; otherwise the stored team is kept.
    #[schema(max_length = 128, nullable = true)]
    pub team_name: Option<String>,
    /// Replaces the completed tasks when given (`[]` clears them).
    #[schema(nullable = true, max_items = 1000, inline)]
    pub completed_task_ids: Option<Vec<TaskId>>,
}

/// A task's id: `t` and its number.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
pub struct TaskId(pub String);

// Written out: utoipa's derive takes no length on a newtype.
impl utoipa::PartialSchema for TaskId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r"^t[0-9]+$"))
            .max_length(Some(24))
            .into()
    }
}

impl ToSchema for TaskId {}

fn metrics_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    let number = ObjectBuilder::new()
        .schema_type(Type::Number)
        .minimum(Some(-LARGEST))
        .maximum(Some(LARGEST))
        .description(Some(
            "0, or a magnitude from 1e-130 to below 1e126 (what DynamoDB stores)",
        ));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::from(number)))
        .min_properties(Some(1))
        .max_properties(Some(MAX_METRICS))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_METRIC_NAME_CHARS)),
        ))
        .build()
}

/// The answer: every field this write stored, the score, and whether it
/// created the user.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MoralCompassResponse {
    pub username: String,
    pub metrics: BTreeMap<String, f64>,
    pub primary_metric: String,
    pub moral_compass_score: f64,
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub tasks_completed: u64,
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub total_tasks: u64,
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub questions_correct: u64,
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub total_questions: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_task_ids: Option<Vec<String>>,
    pub message: String,
    /// Whether this PUT created the user (and counted it in `userCount`).
    pub created_new: bool,
}

/// A number as DynamoDB's `N` text: plain where that is short, else in
/// exponent form.
fn number_text(value: f64) -> String {
    if value == 0.0 {
        "0".to_owned()
    } else if (1e-6..1e21).contains(&value.abs()) {
        value.to_string()
    } else {
        format!("{value:e}")
    }
}

/// Metric `name`'s value from its JSON text: the double that text spells, if
/// that double is exactly the text's number (JSON carries it exactly) and
/// DynamoDB can store it.
fn metric_value(name: &str, text: &str) -> Result<f64, ApiError> {
    let field = format!("metrics.{name}");
    let text = text.trim();
    if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!("{field} must be a number")));
    }
    let value: f64 = text
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{field} must be a number")))?;
    let exact = BigDecimal::from_str(text).ok();
    let carried = BigDecimal::from_str(&number_text(value)).ok();
    if !value.is_finite() || exact.is_none() || exact != carried {
        return Err(ApiError::bad_request(format!(
            "{field} = {text} cannot be carried exactly by JSON (a double holds about 17 significant digits)"
        )));
    }
    if value != 0.0 && !(SMALLEST..=LARGEST).contains(&value.abs()) {
        return Err(ApiError::bad_request(format!(
            "{field} = {text} is beyond what DynamoDB stores (0, or a magnitude from 1e-130 to below 1e126)"
        )));
    }
    Ok(if value == 0.0 { 0.0 } else { value })
}

/// The metrics of a body, exactly.
fn metrics(body: &Body) -> Result<BTreeMap<String, f64>, ApiError> {
    let invalid = || {
        ApiError::bad_request(format!(
            "metrics must be a non-empty object of at most {MAX_METRICS} numbers"
        ))
    };
    let raw = body.raw(METRICS).ok_or_else(invalid)?;
    if !raw.trim_start().starts_with('{') {
        return Err(invalid());
    }
    let fields: HashMap<String, Box<RawValue>> =
        serde_json::from_str(raw).map_err(|_| invalid())?;
    if fields.is_empty() || fields.len() > MAX_METRICS {
        return Err(invalid());
    }
    fields
        .iter()
        .map(|(name, text)| {
            if name.is_empty() || name.chars().count() > MAX_METRIC_NAME_CHARS {
                return Err(ApiError::bad_request(format!(
                    "metric names must have 1 to {MAX_METRIC_NAME_CHARS} characters"
                )));
            }
            Ok((name.clone(), metric_value(name, text.get())?))
        })
        .collect()
}

/// A progress count: 0 when absent or null.
fn progress(body: &Body, field: &str) -> Result<u64, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(0),
        Some(_) => input::count(body, field),
    }
}

/// `primary × (done / to do)` to 28 significant digits, as the legacy
/// handler's `Decimal` computed it; 0 when there is nothing to do.
pub fn moral_compass_score(primary: f64, done: u64, to_do: u64) -> f64 {
    if to_do == 0 {
        return 0.0;
    }
    let Ok(primary) = BigDecimal::from_str(&number_text(primary)) else {
        return 0.0;
    };
    let ratio = (BigDecimal::from(done) / BigDecimal::from(to_do)).with_prec(28);
    let score = (primary * ratio).with_prec(28);
    // The nearest double, as Python's float() of the Decimal: through the
    // text, which Rust parses correctly rounded (BigDecimal's own to_f64 is
    // not always the nearest).
    let value = score.to_string().parse::<f64>().unwrap_or(0.0);
    if value == 0.0 || !value.is_finite() {
        0.0
    } else {
        value
    }
}

#[utoipa::path(
    put, path = "/tables/{tableId}/users/{username}/moral-compass", operation_id = "putMoralCompass", tag = "users",
    params(UserPath),
    request_body = MoralCompassRequest,
    responses(
        (status = 200, description = "Stored; a new user is counted in userCount exactly once", body = MoralCompassResponse),
        (status = 400, description = "Bad metrics (naming the one), primaryMetric not among them, bad counts, team or task ids; a bad tableId or username", body = ErrorBody),
        (status = 401, description = "Sign-in required (where the environment requires it) and no valid token", body = ErrorBody),
        (status = 403, description = "Signed in as another user, neither the table's owner nor an admin", body = ErrorBody),
        (status = 404, description = "Table not found", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 503, description = "Too many concurrent writes, or DynamoDB busy or slow; retry", body = ErrorBody),
    )
)]
pub async fn put(
    State(state): State<Arc<AppState>>,
    MaybeCaller(caller): MaybeCaller,
    Path((table_id, username)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (table_id, username) =
        super::users::writable_user(&state, caller.as_ref(), &table_id, &username).await?;
    let body = input::json_object(&body)?;
    let metrics = metrics(&body)?;
    let primary_metric = match body.get(PRIMARY_METRIC) {
        None | Some(Value::Null) => {
            if metrics.contains_key("accuracy") {
                "accuracy".to_owned()
            } else {
                metrics.keys().next().cloned().unwrap_or_default()
            }
        }
        Some(Value::String(name)) if metrics.contains_key(name) => name.clone(),
        Some(Value::String(name)) => {
            return Err(ApiError::bad_request(format!(
                "primaryMetric \"{name}\" is not one of metrics"
            )));
        }
        Some(_) => return Err(ApiError::bad_request("primaryMetric must be a string")),
    };
    let tasks_completed = progress(&body, TASKS_COMPLETED)?;
    let total_tasks = progress(&body, TOTAL_TASKS)?;
    let questions_correct = progress(&body, QUESTIONS_CORRECT)?;
    let total_questions = progress(&body, TOTAL_QUESTIONS)?;
    let team_name = input::team_name(&body)?;
    let completed_task_ids = task_ids(&body, COMPLETED_TASK_IDS)?;
    let score = moral_compass_score(
        metrics[&primary_metric],
        tasks_completed.saturating_add(questions_correct),
        total_tasks.saturating_add(total_questions),
    );

    let number = |value: f64| AttributeValue::N(number_text(value));
    let count = |value: u64| AttributeValue::N(value.to_string());
    let mut write = UserWrite::default();
    write.sets.extend([
        (
            METRICS,
            AttributeValue::M(
                metrics
                    .iter()
                    .map(|(name, value)| (name.clone(), number(*value)))
                    .collect(),
            ),
        ),
        (PRIMARY_METRIC, AttributeValue::S(primary_metric.clone())),
        (TASKS_COMPLETED, count(tasks_completed)),
        (TOTAL_TASKS, count(total_tasks)),
        (QUESTIONS_CORRECT, count(questions_correct)),
        (TOTAL_QUESTIONS, count(total_questions)),
        (MORAL_COMPASS_SCORE, number(score)),
    ]);
    if let Some(team) = &team_name {
        write
            .sets
            .push((TEAM_NAME, AttributeValue::S(team.clone())));
    }
    match &completed_task_ids {
        Some(ids) if ids.is_empty() => write.removes.push(COMPLETED_TASK_IDS),
        Some(ids) => write
            .sets
            .push((COMPLETED_TASK_IDS, AttributeValue::Ss(ids.clone()))),
        None => {}
    }
    let outcome = state
        .store
        .put_user(table_id, username, &write, &crate::now())
        .await?;
    Ok(Json(MoralCompassResponse {
        username: username.to_owned(),
        metrics,
        primary_metric,
        moral_compass_score: score,
        tasks_completed,
        total_tasks,
        questions_correct,
        total_questions,
        team_name,
        completed_task_ids,
        message: "Moral compass data updated".into(),
        created_new: outcome.created_new,
    })
    .into_response())
}

/// The legacy alias, `/moralcompass`, to which the client library falls back.
#[utoipa::path(
    put, path = "/tables/{tableId}/users/{username}/moralcompass", operation_id = "putMoralCompassLegacy", tag = "users",
    params(UserPath),
    request_body = MoralCompassRequest,
    responses(
        (status = 200, description = "As /moral-compass", body = MoralCompassResponse),
        (status = 400, description = "As /moral-compass", body = ErrorBody),
        (status = 401, description = "As /moral-compass", body = ErrorBody),
        (status = 403, description = "As /moral-compass", body = ErrorBody),
        (status = 404, description = "Table not found", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 503, description = "As /moral-compass", body = ErrorBody),
    )
)]
pub async fn put_legacy(
    state: State<Arc<AppState>>,
    caller: MaybeCaller,
    path: Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    put(state, caller, path, body).await
}

/// A list of task ids of a body: `None` when absent or null; each `t<n>`,
/// returned each once, sorted by number.
pub fn task_ids(body: &Body, field: &str) -> Result<Option<Vec<String>>, ApiError> {
    let invalid = || {
        ApiError::bad_request(format!(
            "{field} must be a list of at most {MAX_TASK_IDS} task ids matching ^t\\d+$"
        ))
    };
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.len() <= MAX_TASK_IDS => items
            .iter()
            .map(|item| match item {
                Value::String(id) if is_task_id(id) && id.len() <= 24 => Ok(id.clone()),
                _ => Err(invalid()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|ids| Some(sorted_task_ids(ids))),
        Some(_) => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_is_the_legacy_handlers() {
        assert_eq!(moral_compass_score(0.8, 3, 4), 0.6);
        assert_eq!(moral_compass_score(0.9, 1, 3), 0.3);
        assert_eq!(moral_compass_score(0.75, 0, 10), 0.0);
        assert_eq!(moral_compass_score(0.75, 5, 0), 0.0);
        assert_eq!(moral_compass_score(1.0, 2, 3), 0.666_666_666_666_666_6);
        assert_eq!(moral_compass_score(-0.5, 1, 2), -0.25);
        // Python: float(Decimal("0.7") * (Decimal(1) / Decimal(3)))
        assert_eq!(moral_compass_score(0.7, 1, 3), 0.233_333_333_333_333_34);
    }

    #[test]
    fn metrics_are_taken_exactly_or_refused_by_name() {
        assert_eq!(metric_value("a", "0.85").ok(), Some(0.85));
        assert_eq!(metric_value("a", "8.5e-1").ok(), Some(0.85));
        assert_eq!(metric_value("a", "-0").ok(), Some(0.0));
        assert_eq!(
            metric_value("a", "0.8571428571428571").ok(),
            Some(0.857_142_857_142_857_1)
        );
        assert_eq!(metric_value("a", "1e125").ok(), Some(1e125));
        for (text, needle) in [
            ("0.12345678901234567890123", "carried exactly"),
            ("12345678901234567891", "carried exactly"),
            ("1e200", "DynamoDB"),
            ("1e-200", "DynamoDB"),
            ("1e400", "carried exactly"),
            ("\"5\"", "must be a number"),
            ("true", "must be a number"),
        ] {
            match metric_value("accuracy", text) {
                Err(ApiError::BadRequest(message)) => {
                    assert!(message.contains("metrics.accuracy"), "{text}: {message}");
                    assert!(message.contains(needle), "{text}: {message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
