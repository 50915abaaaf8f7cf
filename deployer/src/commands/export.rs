//! `deployer export --env E [--tables ID,…] > FILE.jsonl`: every table (class)
//! of the environment, or the ones named, as JSON lines of plain JSON items on
//! stdout: per table its metadata item (with the `userCount` the API reports)
//! then its users by name. Counters are left out: `import` recounts. So are
//! the derived rank entries, rank buckets and teams, and a user's own rank
//! attributes: the importing table ranks its users itself. Reads only, so it
//! takes no lock.

use std::io::Write;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;

use super::Outcome;
use crate::config::{Config, validate_environment};
use crate::data::shape::{
    Item, Kind, key_of, kind_of, reported_user_count, without_derived_attributes,
};
use crate::data::source::query_partition;
use crate::data::target::Target;
use crate::engine::Doing;
use crate::error::CliError;

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub environment: String,
    pub tables: Option<Vec<String>>,
    pub parallel: usize,
}

/// Every table of the environment: the metadata items in its `byCreatedAt`
/// listing index, newest first.
async fn all_tables(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<Vec<String>, CliError> {
    let mut tables = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .index_name(schema::BY_CREATED_AT)
            .key_condition_expression("#p = :p")
            .expression_attribute_names("#p", schema::TABLES_PARTITION)
            .expression_attribute_values(
                ":p",
                AttributeValue::S(schema::TABLES_PARTITION_VALUE.into()),
            )
            .scan_index_forward(false)
            .set_exclusive_start_key(start)
            .send()
            .await
            .doing(|| format!("listing the tables of DynamoDB table {table}"))?;
        tables.extend(
            page.items()
                .iter()
                .filter_map(|item| key_of(item).ok().map(|(table_id, _)| table_id.to_owned())),
        );
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return Ok(tables);
        }
    }
}

/// One table's lines: its metadata with the reported `userCount`, then its
/// users without their rank attributes.
fn lines_of(items: Vec<Item>) -> Result<Vec<String>, CliError> {
    let user_count = reported_user_count(&items).unwrap_or(0);
    let mut metadata = Vec::new();
    let mut users = Vec::new();
    for mut item in items {
        let Ok((_, username)) = key_of(&item) else {
            continue;
        };
        match kind_of(username) {
            Kind::Counter | Kind::Session | Kind::Derived => {}
            Kind::Metadata => {
                item.insert(
                    schema::USER_COUNT.to_owned(),
                    AttributeValue::N(user_count.to_string()),
                );
                metadata.push(item);
            }
            Kind::User => users.push(without_derived_attributes(item)),
        }
    }
    metadata
        .iter()
        .chain(users.iter())
        .map(|item| {
            crate::data::json::to_json(item)
                .map(|value| value.to_string())
                .map_err(CliError::Export)
        })
        .collect()
}

pub async fn run(
    config: &Config,
    aws: &SdkConfig,
    options: &ExportOptions,
) -> Result<Outcome, CliError> {
    let names = validate_environment(&options.environment, &config.settings)?;
    let client = crate::aws::dynamodb(aws);
    super::migrate::target_table(&client, &names.table, &options.environment).await?;
    let tables = match &options.tables {
        Some(tables) => tables.clone(),
        None => all_tables(&client, &names.table).await?,
    };
    let target = Target {
        client: client.clone(),
        table: names.table.clone(),
    };
    let (mut exported_items, mut exported_tables) = (0usize, 0usize);
    let mut stdout = std::io::stdout().lock();
    for chunk in tables.chunks(options.parallel.max(1)) {
        let mut running = tokio::task::JoinSet::new();
        for (index, table_id) in chunk.iter().enumerate() {
            let (client, table, table_id) = (
                target.client.clone(),
                target.table.clone(),
                table_id.clone(),
            );
            running
                .spawn(async move { (index, query_partition(&client, &table, &table_id).await) });
        }
        let mut read: Vec<Option<Vec<Item>>> = (0..chunk.len()).map(|_| None).collect();
        while let Some(joined) = running.join_next().await {
            let (index, items) = joined?;
            read[index] = Some(items?);
        }
        for (table_id, items) in chunk.iter().zip(read) {
            let items = items.unwrap_or_default();
            if items.is_empty() {
                return Err(CliError::Refused(format!(
                    "{table_id}: no such table in {}",
                    names.table
                )));
            }
            let lines = lines_of(items)?;
            exported_items += lines.len();
            exported_tables += 1;
            for line in lines {
                writeln!(stdout, "{line}")
                    .map_err(|source| CliError::io("writing to standard output", source))?;
            }
        }
    }
    stdout
        .flush()
        .map_err(|source| CliError::io("writing to standard output", source))?;
    crate::ui::note(format_args!(
        "Exported {exported_items} items of {exported_tables} tables from {}.",
        names.table
    ));
    Ok(Outcome::new(String::new(), 0))
}
