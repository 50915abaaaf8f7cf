//! `deployer restore --env E --backup ARN`: bring a destroyed environment's
//! table back from a backup (as `destroy --env E` takes one before deleting
//! it). Only the table: the next `deployer apply --env E` adopts it and
//! converges everything else, including what a restore does not carry over
//! (deletion protection, point-in-time recovery, tags).

use aws_config::SdkConfig;
use aws_sdk_dynamodb::client::Waiters;
use state::Backend;

use super::Outcome;
use crate::config::{Config, validate_environment};
use crate::engine::{Doing, EngineError};
use crate::error::CliError;
use crate::resources::Clients;

pub async fn run(
    config: &Config,
    aws: &SdkConfig,
    backend: &Backend,
    environment: &str,
    backup_arn: &str,
    lock_timeout: std::time::Duration,
) -> Result<Outcome, CliError> {
    let names = validate_environment(environment, &config.settings)?;
    if !backup_arn.starts_with("arn:aws")
        || !backup_arn.contains(":table/")
        || !backup_arn.contains("/backup/")
    {
        return Err(CliError::Usage(format!(
            "{backup_arn:?} is not a DynamoDB backup ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/TABLE/backup/ID)"
        )));
    }
    let clients = Clients::connect(aws, &config.settings.region).await?;
    let table = &names.table;
    let request = super::lock_request(
        environment,
        "restore",
        format!("deployer restore --env {environment}"),
        lock_timeout,
        config.settings.lock_lease(),
    );
    super::lock_guard::hold(backend, environment, &request, |fence| {
        restore(&clients, table, backup_arn, fence)
    })
    .await?;
    Ok(Outcome::new(
        format!(
            "Restored {table} from {backup_arn}.\nNext: `deployer apply --env {environment}` adopts it and converges the rest \
             (function, API, deletion protection, point-in-time recovery, tags)."
        ),
        0,
    ))
}

async fn restore(
    clients: &Clients,
    table: &str,
    backup_arn: &str,
    fence: crate::engine::Fence,
) -> Result<(), CliError> {
    let dynamodb = &clients.dynamodb;
    let exists = crate::engine::existing(
        dynamodb.describe_table().table_name(table).send().await,
        |error| error.is_resource_not_found_exception(),
        format!("checking whether DynamoDB table {table} exists"),
    )?;
    if exists.is_some() {
        return Err(CliError::Refused(format!(
            "refusing to restore: the table {table} exists. A restore brings back a destroyed \
             environment's table under its own name; to look at a backup beside a live table, \
             restore it to another name with `aws dynamodb restore-table-from-backup`"
        )));
    }
    let progress = crate::ui::progress();
    let address = crate::resources::dynamodb_scores_table::ADDRESS;
    fence.check(&format!(
        "restoring DynamoDB table {table} from {backup_arn}"
    ))?;
    let started = progress.start(address, &format!("restoring from {backup_arn}"));
    dynamodb
        .restore_table_from_backup()
        .target_table_name(table)
        .backup_arn(backup_arn)
        .send()
        .await
        .doing(|| format!("restoring DynamoDB table {table} from {backup_arn}"))?;
    // A restore takes minutes per GB; an hour bounds it. The wait changes
    // nothing: an interruption ends it at once (the restore goes on in AWS).
    let wait = dynamodb
        .wait_until_table_exists()
        .table_name(table)
        .wait(std::time::Duration::from_secs(3600));
    tokio::select! {
        waited = wait => waited.map_err(|error| {
            EngineError::waited(
                format!("waiting for the restored table {table} to become ACTIVE"),
                error,
            )
        })?,
        _ = fence.raised() => {
            return Err(CliError::Interrupted {
                what: format!(
                    "the restore of {table} from {backup_arn} goes on in AWS; the lock is released. \
                     `aws dynamodb describe-table --table-name {table}` shows when it is ACTIVE"
                ),
            });
        }
    };
    progress.done(address, "restored", started);
    Ok(())
}
