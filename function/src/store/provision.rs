//! Creating the table from the canonical schema (local mode's `--create-table`
//! and tests; the deployer provisions deployed tables from the same schema).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::TableStatus;

use super::StoreError;
use crate::schema::{self, TABLE_SCHEMA};

/// The status of the table (`None` when it does not exist).
pub async fn table_status(client: &Client, table: &str) -> Result<Option<TableStatus>, StoreError> {
    match client.describe_table().table_name(table).send().await {
        Ok(output) => Ok(output.table().and_then(|t| t.table_status().cloned())),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|service| service.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(error) => Err(StoreError::dynamodb(
            format!("describing DynamoDB table {table}"),
            error,
        )),
    }
}

/// Create `table` with the canonical schema (every index, on-demand billing)
/// unless it exists. Returns whether it was created.
pub async fn create_table_if_missing(client: &Client, table: &str) -> Result<bool, StoreError> {
    if table_status(client, table).await?.is_some() {
        return Ok(false);
    }
    let indexes: Vec<_> = TABLE_SCHEMA.global_secondary_indexes.iter().collect();
    let request = schema::create_table(client, table, &indexes)
        .map_err(|error| StoreError::build(format!("describing DynamoDB table {table}"), error))?;
    match request.send().await {
        Ok(_) => {}
        // Created concurrently by someone else: that is the outcome we wanted.
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|service| service.is_resource_in_use_exception()) =>
        {
            return Ok(false);
        }
        Err(error) => {
            return Err(StoreError::dynamodb(
                format!("creating DynamoDB table {table}"),
                error,
            ));
        }
    }
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(std::time::Duration::from_secs(120))
        .await
        .map_err(|error| {
            StoreError::waiting(
                format!("waiting for DynamoDB table {table} to become active"),
                error,
            )
        })?;
    Ok(true)
}
