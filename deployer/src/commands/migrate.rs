//! `deployer migrate --env E --from TABLE (--tables ID,… | --all)`: move the
//! items of another scores table (the legacy shared `PlaygroundScores`) into
//! the environment's table, exactly, resumably, verified (`crate::data`).
//! `deployer import --env E FILE` does the same from a JSON-lines file.

use aws_config::SdkConfig;
use state::Backend;

use super::Outcome;
use super::data_report::render;
use crate::config::{Config, validate_environment};
use crate::data::source::{Lane, Origin};
use crate::data::target::Target;
use crate::data::{CheckpointStore, CopyOptions, copy};
use crate::error::CliError;

/// What to migrate.
#[derive(Debug, Clone)]
pub enum Selection {
    All,
    Tables(Vec<String>),
}

/// Where the items come from.
#[derive(Debug, Clone)]
pub enum From {
    Table(String),
    File(std::path::PathBuf),
}

#[derive(Debug, Clone)]
pub struct MigrateOptions {
    pub environment: String,
    pub from: From,
    pub selection: Selection,
    pub copy: CopyOptions,
    pub json: bool,
    pub lock_timeout: std::time::Duration,
}

/// The environment's table, which must exist (`apply` creates it).
pub async fn target_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    environment: &str,
) -> Result<Option<u64>, CliError> {
    let found = crate::engine::existing(
        client.describe_table().table_name(table).send().await,
        |error| error.is_resource_not_found_exception(),
        format!("reading DynamoDB table {table}"),
    )?;
    match found {
        Some(output) => Ok(output
            .table()
            .and_then(|table| table.item_count())
            .and_then(|count| u64::try_from(count).ok())),
        None => Err(CliError::Refused(format!(
            "the table {table} does not exist: `deployer apply --env {environment}` creates it first"
        ))),
    }
}

pub async fn run(
    config: &Config,
    aws: &SdkConfig,
    backend: &Backend,
    options: &MigrateOptions,
) -> Result<Outcome, CliError> {
    let names = validate_environment(&options.environment, &config.settings)?;
    let client = crate::aws::dynamodb(aws);
    target_table(&client, &names.table, &options.environment).await?;
    let (origin, lanes, checkpoint_name, estimate, verb) = match &options.from {
        From::Table(source) => {
            if *source == names.table {
                return Err(CliError::Usage(format!(
                    "--from {source} is the environment's own table"
                )));
            }
            let estimate = crate::engine::existing(
                client.describe_table().table_name(source).send().await,
                |error| error.is_resource_not_found_exception(),
                format!("reading DynamoDB table {source}"),
            )?
            .ok_or_else(|| CliError::Refused(format!("--from {source}: no such DynamoDB table")))?
            .table()
            .and_then(|table| table.item_count())
            .and_then(|count| u64::try_from(count).ok());
            let lanes = match &options.selection {
                Selection::All => {
                    let of = u32::try_from(options.copy.parallel.clamp(1, 64)).unwrap_or(1);
                    (0..of).map(|index| Lane::Segment { index, of }).collect()
                }
                Selection::Tables(tables) => {
                    let mut tables = tables.clone();
                    tables.sort();
                    tables.dedup();
                    tables.into_iter().map(Lane::Table).collect()
                }
            };
            let origin = Origin::Table {
                client: client.clone(),
                name: source.clone(),
            };
            let estimate = matches!(options.selection, Selection::All)
                .then_some(estimate)
                .flatten();
            (
                origin,
                lanes,
                format!("migrate-from-{source}.json"),
                estimate,
                "Migrated",
            )
        }
        From::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|source| CliError::io(format!("reading {}", path.display()), source))?;
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            let estimate = Some(lines.len() as u64);
            let digest = {
                use sha2::Digest;
                let hash = sha2::Sha256::digest(text.as_bytes());
                hash.iter()
                    .take(6)
                    .map(|byte| format!("{byte:02x}"))
                    .collect::<String>()
            };
            let origin = Origin::lines(format!("{} (sha256 {digest}…)", path.display()), lines);
            (
                origin,
                vec![Lane::Lines],
                format!("import-{digest}.json"),
                estimate,
                "Imported",
            )
        }
    };
    let target = Target {
        client: client.clone(),
        table: names.table.clone(),
    };
    let store = CheckpointStore {
        backend: backend.clone(),
        environment: options.environment.clone(),
        name: checkpoint_name,
    };
    let progress = crate::ui::CopyProgress::new(
        format!("{} into {}", origin.describe(), names.table),
        estimate,
    );
    let report = |tally: &crate::data::Tally| progress.report(tally);
    // An interruption (or a lease that may be lost) stops the run where its
    // checkpoint is (every page's position is kept only once its writes are
    // done) and releases the lock.
    let interrupted = || CliError::Interrupted {
        what: format!(
            "stopped where the checkpoint {} says; run the same command again to resume",
            store.location()
        ),
    };
    let run_copy = || async {
        copy(&origin, lanes, &target, &store, &options.copy, &report)
            .await
            .map_err(CliError::from)
    };
    let summary = if options.copy.dry_run {
        tokio::select! {
            summary = run_copy() => summary?,
            _ = tokio::signal::ctrl_c() => return Err(interrupted()),
        }
    } else {
        let operation = if matches!(options.from, From::File(_)) {
            "import"
        } else {
            "migrate"
        };
        let request = super::lock_request(
            &options.environment,
            operation,
            format!("deployer {operation} --env {}", options.environment),
            options.lock_timeout,
            config.settings.lock_lease(),
        );
        super::lock_guard::hold(
            backend,
            &options.environment,
            &request,
            |fence| async move {
                tokio::select! {
                    summary = run_copy() => summary,
                    _ = fence.raised() => Err(interrupted()),
                }
            },
        )
        .await?
    };
    progress.finish();
    let exit = u8::from(summary.has_differences());
    let text = if options.json {
        super::to_json(&summary)
    } else {
        render(&summary, verb)
    };
    Ok(Outcome::new(text, exit))
}
