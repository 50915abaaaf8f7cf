//! Where the data commands read items from, in lanes that run side by side:
//! the segments of a parallel scan of a table (`Segment`/`TotalSegments`), one
//! query per `tableId` when tables are named, or the lines of a JSON-lines
//! file. Each lane reads pages of at most [`PAGE`] items and says where the
//! next page starts, which is what a checkpoint keeps.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use serde::{Deserialize, Serialize};

use super::DataError;
use super::shape::Item;

/// Items per page: one BatchGetItem of the target reads their keys back.
pub const PAGE: usize = 100;

/// Where items come from.
#[derive(Debug, Clone)]
pub enum Origin {
    Table {
        client: aws_sdk_dynamodb::Client,
        name: String,
    },
    /// The lines of a JSON-lines file, read whole (an export of a class),
    /// and which lines hold each `tableId` (see [`Origin::lines`]).
    Lines {
        path: String,
        lines: Vec<String>,
        by_table: BTreeMap<String, Vec<usize>>,
        /// Lines that repeat an earlier line's key, and that line: refused,
        /// since the file cannot say which of the two is the item.
        repeats: BTreeMap<usize, usize>,
    },
}

/// One lane of reading.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Segment `index` of a parallel scan in `of` segments.
    Segment { index: u32, of: u32 },
    /// Every item of one `tableId`, by query.
    Table(String),
    /// The file's lines.
    Lines,
}

impl Lane {
    pub fn describe(&self) -> String {
        match self {
            Self::Segment { index, of } => format!("segment {}/{of}", index + 1),
            Self::Table(table_id) => format!("table {table_id}"),
            Self::Lines => "file".to_owned(),
        }
    }
}

/// Where a lane's next page starts: DynamoDB's `LastEvaluatedKey` (string
/// keys only, as a scores table's are), or a line number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    Key(BTreeMap<String, String>),
    Line(usize),
}

/// A page read, and where the lane goes on (`None`: the lane is done).
#[derive(Debug)]
pub struct Page {
    /// Items, or for a file the lines that are not items (with their number).
    pub items: Vec<Result<Item, (usize, String)>>,
    pub next: Option<Position>,
}

impl Page {
    /// A page DynamoDB answered (scan or query), its read capacity spent
    /// from `budget` (waiting when it is used up).
    async fn read(
        items: &[Item],
        consumed: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>,
        last_key: Option<&std::collections::HashMap<String, AttributeValue>>,
        budget: &Budget,
    ) -> Self {
        let units = consumed
            .and_then(aws_sdk_dynamodb::types::ConsumedCapacity::capacity_units)
            .unwrap_or_else(|| estimated_units(items));
        budget.spend(units).await;
        Self {
            items: items.iter().cloned().map(Ok).collect(),
            next: position_of(last_key),
        }
    }
}

/// A read-capacity budget: reads wait so the source spends at most `per_second`
/// read capacity units per second on average, gentle on a live table.
#[derive(Debug)]
pub struct Budget {
    per_second: Option<f64>,
    next: Mutex<Instant>,
}

impl Budget {
    pub fn new(per_second: Option<f64>) -> Self {
        Self {
            per_second,
            next: Mutex::new(Instant::now()),
        }
    }

    /// Account for `units` spent, waiting first if the budget is used up.
    async fn spend(&self, units: f64) {
        let Some(rate) = self.per_second else { return };
        let wait = {
            let mut next = self
                .next
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let start = (*next).max(now);
            *next = start + Duration::from_secs_f64(units / rate);
            start.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

fn position_of(
    key: Option<&std::collections::HashMap<String, AttributeValue>>,
) -> Option<Position> {
    key.map(|key| {
        Position::Key(
            key.iter()
                .filter_map(|(name, value)| {
                    value.as_s().ok().map(|text| (name.clone(), text.clone()))
                })
                .collect(),
        )
    })
}

fn start_key(
    after: Option<&Position>,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    match after {
        Some(Position::Key(key)) => Some(
            key.iter()
                .map(|(name, value)| (name.clone(), AttributeValue::S(value.clone())))
                .collect(),
        ),
        _ => None,
    }
}

/// What a page of `items` costs when DynamoDB does not say: an eventually
/// consistent read is half a unit per 4 KB.
fn estimated_units(items: &[Item]) -> f64 {
    let bytes: usize = items
        .iter()
        .flat_map(|item| item.iter())
        .map(|(name, value)| name.len() + format!("{value:?}").len())
        .sum();
    (bytes as f64 / 4096.0).ceil().max(1.0) / 2.0
}

impl Origin {
    /// The lines of a file named `path`, indexed once by `tableId`, so that
    /// verifying each table reads its own lines only.
    pub fn lines(path: String, lines: Vec<String>) -> Self {
        let mut by_table: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut first: std::collections::HashMap<(String, String), usize> =
            std::collections::HashMap::new();
        let mut repeats = BTreeMap::new();
        for (index, line) in lines.iter().enumerate() {
            let Ok(item) = super::json::from_line(line) else {
                continue;
            };
            let Ok((table_id, username)) = super::shape::key_of(&item) else {
                continue;
            };
            match first.entry((table_id.to_owned(), username.to_owned())) {
                std::collections::hash_map::Entry::Occupied(earlier) => {
                    repeats.insert(index, *earlier.get());
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(index);
                    by_table.entry(table_id.to_owned()).or_default().push(index);
                }
            }
        }
        Self::Lines {
            path,
            lines,
            by_table,
            repeats,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Table { name, .. } => format!("DynamoDB table {name}"),
            Self::Lines { path, .. } => path.clone(),
        }
    }

    /// The next page of `lane`, from `after` (`None`: its start).
    pub async fn read(
        &self,
        lane: &Lane,
        after: Option<&Position>,
        budget: &Budget,
    ) -> Result<Page, DataError> {
        match (self, lane) {
            (Self::Table { client, name }, Lane::Segment { index, of }) => {
                let output = client
                    .scan()
                    .table_name(name)
                    .segment(i32::try_from(*index).unwrap_or(0))
                    .total_segments(i32::try_from(*of).unwrap_or(1))
                    .limit(i32::try_from(PAGE).unwrap_or(100))
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .set_exclusive_start_key(start_key(after))
                    .send()
                    .await
                    .map_err(|error| {
                        DataError::aws(
                            format!("scanning {} of DynamoDB table {name}", lane.describe()),
                            error,
                        )
                    })?;
                Ok(Page::read(
                    output.items(),
                    output.consumed_capacity(),
                    output.last_evaluated_key(),
                    budget,
                )
                .await)
            }
            (Self::Table { client, name }, Lane::Table(table_id)) => {
                let output = partition_query(client, name, table_id)
                    .limit(i32::try_from(PAGE).unwrap_or(100))
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .set_exclusive_start_key(start_key(after))
                    .send()
                    .await
                    .map_err(|error| {
                        DataError::aws(
                            format!("querying table {table_id} of DynamoDB table {name}"),
                            error,
                        )
                    })?;
                Ok(Page::read(
                    output.items(),
                    output.consumed_capacity(),
                    output.last_evaluated_key(),
                    budget,
                )
                .await)
            }
            (Self::Lines { lines, repeats, .. }, Lane::Lines) => {
                let from = match after {
                    Some(Position::Line(line)) => *line,
                    _ => 0,
                };
                let to = (from + PAGE).min(lines.len());
                let items = (from..to)
                    .filter(|index| !lines[*index].trim().is_empty())
                    .map(|index| match repeats.get(&index) {
                        Some(earlier) => Err((
                            index + 1,
                            format!("repeats the key of line {}", earlier + 1),
                        )),
                        None => super::json::from_line(&lines[index])
                            .map_err(|error| (index + 1, error.to_string())),
                    })
                    .collect();
                Ok(Page {
                    items,
                    next: (to < lines.len()).then_some(Position::Line(to)),
                })
            }
            (origin, lane) => Err(DataError::Invalid(format!(
                "{} cannot be read as {}",
                origin.describe(),
                lane.describe()
            ))),
        }
    }

    /// Every item of `table_id` (a strongly consistent query of its partition,
    /// or the file's lines of it), for verification.
    pub async fn all_of(&self, table_id: &str) -> Result<Vec<Item>, DataError> {
        match self {
            Self::Table { client, name } => query_partition(client, name, table_id).await,
            Self::Lines {
                lines, by_table, ..
            } => Ok(by_table
                .get(table_id)
                .into_iter()
                .flatten()
                .filter_map(|index| super::json::from_line(&lines[*index]).ok())
                .collect()),
        }
    }
}

/// A query of one `tableId`'s partition of `table` (its key condition `#t = :t`).
pub fn partition_query(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    table_id: &str,
) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
    client
        .query()
        .table_name(table)
        .key_condition_expression("#t = :t")
        .expression_attribute_names("#t", schema::TABLE_ID)
        .expression_attribute_values(":t", AttributeValue::S(table_id.to_owned()))
}

/// Every item of one `tableId` in a table, strongly consistent.
pub async fn query_partition(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    table_id: &str,
) -> Result<Vec<Item>, DataError> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = partition_query(client, table, table_id)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|error| {
                DataError::aws(
                    format!("reading table {table_id} of DynamoDB table {table}"),
                    error,
                )
            })?;
        items.extend(page.items().iter().cloned());
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(items);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Origin;

    #[test]
    fn a_files_lines_are_indexed_by_table_and_a_repeated_key_is_named() {
        let lines: Vec<String> = [
            r#"{"tableId":"c1","username":"ana"}"#,
            r#"{"tableId":"c2","username":"bo"}"#,
            "",
            r#"{"tableId":"c1","username":"ana","submissionCount":2}"#,
            "not json",
            r#"{"tableId":"c1","username":"cy"}"#,
        ]
        .map(str::to_owned)
        .to_vec();
        let Origin::Lines {
            by_table, repeats, ..
        } = Origin::lines("f".into(), lines)
        else {
            panic!("lines");
        };
        assert_eq!(by_table["c1"], [0, 5]);
        assert_eq!(by_table["c2"], [1]);
        assert_eq!(repeats.into_iter().collect::<Vec<_>>(), [(3, 0)]);
    }
}
