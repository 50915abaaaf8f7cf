//! Choosing where state lives: `--state`, or s3 when the state bucket exists.

use aws_config::SdkConfig;
use state::{Backend, DynamoDbLock, LocalBackend, LockBackend, RemoteLock, S3Lock, S3Store};

use crate::config::Config;
use crate::engine::EngineError;
use crate::error::CliError;

/// Where the caller wants state kept; `None` in [`open`] asks AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// `.deployer/<env>.json` beside the config, with a lock file.
    Local,
    /// `s3://<state_bucket>/deployer/<env>/state.json`, locked as `lock_backend` says.
    S3,
}

/// Open the backend for this run and say which one on stderr (once).
pub async fn open(
    choice: Option<Location>,
    config: &Config,
    aws: &SdkConfig,
) -> Result<Backend, CliError> {
    let settings = &config.settings;
    let remote =
        || async { Ok::<_, CliError>(remote(config, aws, lock_backend(config, aws).await?)) };
    let local = || Backend::Local(LocalBackend::new(config.dir.join(".deployer")));
    let (backend, why) = match choice {
        Some(Location::S3) => (remote().await?, "--state s3"),
        Some(Location::Local) => (local(), "--state local"),
        None => {
            let head = crate::aws::s3(aws)
                .head_bucket()
                .bucket(&settings.state_bucket)
                .send()
                .await;
            match head {
                Ok(_) => (remote().await?, "the state bucket exists"),
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|service| service.is_not_found()) =>
                {
                    (
                        local(),
                        "the state bucket does not exist yet; run `deployer bootstrap`",
                    )
                }
                Err(error) => {
                    if let Some(missing) = crate::aws::missing_credentials(aws).await {
                        return Err(missing.into());
                    }
                    return Err(EngineError::sdk(
                        format!(
                            "checking whether state bucket {} exists (pass --state local to work without AWS state)",
                            settings.state_bucket
                        ),
                        error,
                    )
                    .into());
                }
            }
        }
    };
    crate::ui::note(format_args!("state: {} ({why})", backend.describe()));
    Ok(backend)
}

/// The remote backend, its lock kept as `lock_backend` says.
pub fn remote(config: &Config, aws: &SdkConfig, lock_backend: LockBackend) -> Backend {
    let settings = &config.settings;
    Backend::Remote {
        store: S3Store::new(crate::aws::s3(aws), &settings.state_bucket),
        lock: RemoteLock {
            backend: lock_backend,
            s3: S3Lock::new(crate::aws::s3(aws), &settings.state_bucket),
            dynamodb: DynamoDbLock::new(crate::aws::dynamodb(aws), &settings.lock_table),
        },
    }
}

/// Where locks are kept: the `lock_backend` setting, or unset, `both` while the
/// legacy lock table exists and `s3` once it does not.
pub async fn lock_backend(config: &Config, aws: &SdkConfig) -> Result<LockBackend, CliError> {
    if let Some(chosen) = config.settings.lock_backend {
        return Ok(chosen);
    }
    Ok(LockBackend::default_for(
        lock_table_exists(config, aws).await?,
    ))
}

/// Whether the legacy lock table exists.
pub async fn lock_table_exists(config: &Config, aws: &SdkConfig) -> Result<bool, CliError> {
    let table = &config.settings.lock_table;
    let described = crate::aws::dynamodb(aws)
        .describe_table()
        .table_name(table)
        .send()
        .await;
    Ok(crate::engine::existing(
        described,
        |error| error.is_resource_not_found_exception(),
        format!("checking whether the lock table {table} exists (set lock_backend to skip this)"),
    )?
    .is_some())
}
