//! Choosing where state lives: `--state`, or s3 when the state bucket exists.

use aws_config::SdkConfig;
use state::{Backend, DynamoDbLock, LocalBackend, S3Store};

use crate::config::Config;
use crate::error::CliError;

/// Where the caller wants state kept; `None` in [`open`] asks AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// `.deployer/<env>.json` beside the config, with a lock file.
    Local,
    /// `s3://<state_bucket>/deployer/<env>/state.json`, locked in `<lock_table>`.
    S3,
}

/// Open the backend for this run and say which one on stderr (once).
pub async fn open(
    choice: Option<Location>,
    config: &Config,
    aws: &SdkConfig,
) -> Result<Backend, CliError> {
    let settings = &config.settings;
    let remote = || Backend::Remote {
        store: S3Store::new(crate::aws::s3(aws), &settings.state_bucket),
        lock: DynamoDbLock::new(crate::aws::dynamodb(aws), &settings.lock_table),
    };
    let local = || Backend::Local(LocalBackend::new(config.dir.join(".deployer")));
    let (backend, why) = match choice {
        Some(Location::S3) => (remote(), "--state s3"),
        Some(Location::Local) => (local(), "--state local"),
        None => {
            let head = crate::aws::s3(aws)
                .head_bucket()
                .bucket(&settings.state_bucket)
                .send()
                .await;
            match head {
                Ok(_) => (remote(), "the state bucket exists"),
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
                    return Err(CliError::aws(
                        format!(
                            "checking whether state bucket {} exists (pass --state local to work without AWS state)",
                            settings.state_bucket
                        ),
                        &error,
                    ));
                }
            }
        }
    };
    crate::ui::note(format_args!("state: {} ({why})", backend.describe()));
    Ok(backend)
}
