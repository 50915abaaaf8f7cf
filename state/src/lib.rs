//! The deployer's memory.
//!
//! - [`StateDocument`]: what the deployer remembers about one environment (or the
//!   bootstrap stack): format version, lineage, serial, resources and outputs.
//! - [`Backend`]: where documents live. [`Backend::Local`] keeps
//!   `.deployer/<env>.json` beside the config (the default before bootstrap);
//!   [`Backend::Remote`] keeps `s3://<bucket>/deployer/<env>/state.json` in the
//!   bootstrap bucket (SSE on every write, history from bucket versioning).
//! - Locks: [`Backend::lock`] takes the environment's lock (a lock file locally,
//!   an item in the bootstrap DynamoDB lock table remotely, in Terraform's layout:
//!   `LockID = "<bucket>/<key>"`, `Info` = `{ID, Operation, Info, Who, Version,
//!   Created, Path}`), waiting up to the request's timeout.
//! - Lost updates: a write names the [`Stored`] state it was based on and is
//!   refused ([`StateError::Stale`]) if someone wrote in between.
//!
//! This crate knows nothing of Lambda, IAM or API Gateway, and prints nothing.

mod document;
mod error;
mod local;
mod lock;
mod s3;
pub mod sdk_error;

use std::time::Duration;

pub use document::{FORMAT_VERSION, Origin, ResourceState, StateDocument};
pub use error::StateError;
pub use local::LocalBackend;
pub use lock::{DynamoDbLock, HeldLock, LockInfo, LockRequest};
pub use s3::{KEY_PREFIX, S3Store, state_key};

use lock::acquire_with_backoff;

/// The state name of the bootstrap stack.
pub const BOOTSTRAP_ENVIRONMENT: &str = "bootstrap";

/// A document as read from a backend, with what a later write must check.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub document: StateDocument,
    /// The S3 ETag the document was read with (remote backend only).
    etag: Option<String>,
}

/// One version of an environment's state kept by the bucket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryEntry {
    pub version_id: String,
    /// RFC 3339.
    pub modified: String,
    pub serial: Option<u64>,
    pub is_latest: bool,
}

/// Where state lives.
#[derive(Debug, Clone)]
pub enum Backend {
    Local(LocalBackend),
    Remote { store: S3Store, lock: DynamoDbLock },
}

impl Backend {
    /// Human description: `local .deployer` or `s3://bucket (locks in table)`.
    pub fn describe(&self) -> String {
        match self {
            Self::Local(local) => format!("local {}", local.dir().display()),
            Self::Remote { store, .. } => format!("s3://{}/{KEY_PREFIX}", store.bucket()),
        }
    }

    /// Where `environment`'s state is.
    pub fn location(&self, environment: &str) -> String {
        match self {
            Self::Local(local) => local.state_path(environment).display().to_string(),
            Self::Remote { store, .. } => store.location(environment),
        }
    }

    /// The id of `environment`'s lock: `<bucket>/<key>` (Terraform's `LockID`)
    /// or the local lock file's path.
    pub fn lock_id(&self, environment: &str) -> String {
        match self {
            Self::Local(local) => local.lock_path(environment).display().to_string(),
            Self::Remote { store, .. } => format!("{}/{}", store.bucket(), state_key(environment)),
        }
    }

    /// Read `environment`'s state; `None` when there is none yet.
    pub async fn read(&self, environment: &str) -> Result<Option<Stored>, StateError> {
        match self {
            Self::Local(local) => Ok(local.read(environment).await?.map(|document| Stored {
                document,
                etag: None,
            })),
            Self::Remote { store, .. } => {
                Ok(store
                    .read(environment)
                    .await?
                    .map(|(document, etag)| Stored {
                        document,
                        etag: Some(etag),
                    }))
            }
        }
    }

    /// Write `document` as the next revision of `previous` (the state this run
    /// read; `None` when there was none). Refused with [`StateError::Stale`] if
    /// the stored state is no longer `previous`. Returns what was stored.
    pub async fn write(
        &self,
        environment: &str,
        document: &StateDocument,
        previous: Option<&Stored>,
    ) -> Result<Stored, StateError> {
        let next = document.next_revision(previous.map(|stored| &stored.document));
        match self {
            Self::Local(local) => {
                let current = local.read(environment).await?;
                let describe = |document: Option<&StateDocument>| match document {
                    Some(document) => {
                        format!("serial {} of lineage {}", document.serial, document.lineage)
                    }
                    None => "no state".to_owned(),
                };
                let unchanged = match (&current, previous) {
                    (None, None) => true,
                    (Some(current), Some(previous)) => {
                        current.lineage == previous.document.lineage
                            && current.serial == previous.document.serial
                    }
                    _ => false,
                };
                if !unchanged {
                    return Err(StateError::Stale {
                        location: self.location(environment),
                        expected: describe(previous.map(|stored| &stored.document)),
                        found: describe(current.as_ref()),
                    });
                }
                local.write_atomically(environment, &next).await?;
                Ok(Stored {
                    document: next,
                    etag: None,
                })
            }
            Self::Remote { store, .. } => {
                let expected = previous.and_then(|stored| stored.etag.as_deref());
                let etag = store.write(environment, &next, expected).await?;
                Ok(Stored {
                    document: next,
                    etag: Some(etag),
                })
            }
        }
    }

    /// Remove `environment`'s state once its resources are gone (S3 keeps the
    /// earlier versions behind a delete marker).
    pub async fn remove(&self, environment: &str) -> Result<(), StateError> {
        match self {
            Self::Local(local) => local.remove(environment).await,
            Self::Remote { store, .. } => store.remove(environment).await,
        }
    }

    /// Where the document `name` kept beside `environment`'s state is.
    pub fn location_beside(&self, environment: &str, name: &str) -> String {
        match self {
            Self::Local(local) => local.beside_path(environment, name).display().to_string(),
            Self::Remote { store, .. } => store.location_beside(environment, name),
        }
    }

    /// A document of the deployer's own kept beside `environment`'s state (a
    /// data migration's checkpoint): `<dir>/<env>.d/<name>` locally,
    /// `deployer/<env>/<name>` in the bucket, encrypted like the state. `None`
    /// when there is none.
    pub async fn read_beside(
        &self,
        environment: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StateError> {
        match self {
            Self::Local(local) => local.read_beside(environment, name).await,
            Self::Remote { store, .. } => store.read_beside(environment, name).await,
        }
    }

    /// Write (replace) the document `name` beside `environment`'s state.
    pub async fn write_beside(
        &self,
        environment: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<(), StateError> {
        match self {
            Self::Local(local) => local.write_beside(environment, name, bytes).await,
            Self::Remote { store, .. } => store.write_beside(environment, name, bytes).await,
        }
    }

    /// Remove the document `name` beside `environment`'s state, if it is there.
    pub async fn remove_beside(&self, environment: &str, name: &str) -> Result<(), StateError> {
        match self {
            Self::Local(local) => local.remove_beside(environment, name).await,
            Self::Remote { store, .. } => store.remove_beside(environment, name).await,
        }
    }

    /// Take `environment`'s lock, waiting up to `request.timeout`.
    pub async fn lock(
        &self,
        environment: &str,
        request: &LockRequest,
    ) -> Result<HeldLock, StateError> {
        let lock_id = self.lock_id(environment);
        let info = LockInfo::new(request, &self.location(environment));
        let force_unlock = |id: &str| format!("{} {id}", request.force_unlock_command);
        match self {
            Self::Local(local) => {
                acquire_with_backoff(&lock_id, request.timeout, force_unlock, || {
                    local.try_lock(environment, &info)
                })
                .await?;
            }
            Self::Remote { lock, .. } => {
                acquire_with_backoff(&lock_id, request.timeout, force_unlock, || {
                    lock.try_lock(&lock_id, &info)
                })
                .await?;
            }
        }
        Ok(HeldLock {
            environment: environment.to_owned(),
            lock_id,
            info,
        })
    }

    /// Release a lock this run holds.
    pub async fn unlock(&self, held: &HeldLock) -> Result<(), StateError> {
        self.force_unlock(&held.environment, &held.info.id).await
    }

    /// Remove `environment`'s lock, only if it is held with `id`.
    pub async fn force_unlock(&self, environment: &str, id: &str) -> Result<(), StateError> {
        match self {
            Self::Local(local) => local.unlock(environment, id).await,
            Self::Remote { lock, .. } => lock.unlock(&self.lock_id(environment), id).await,
        }
    }

    /// Who holds `environment`'s lock, if anyone.
    pub async fn current_lock(&self, environment: &str) -> Result<Option<LockInfo>, StateError> {
        match self {
            Self::Local(local) => local.current_lock(environment).await,
            Self::Remote { lock, .. } => Ok(lock
                .current(&self.lock_id(environment))
                .await?
                .map(|(info, _)| info)),
        }
    }

    /// The stored versions of `environment`'s state, newest first (at most
    /// `limit`). The local backend keeps no history: it lists the current file.
    pub async fn history(
        &self,
        environment: &str,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StateError> {
        match self {
            Self::Local(local) => Ok(local
                .read(environment)
                .await?
                .map(|document| HistoryEntry {
                    version_id: "local".into(),
                    modified: document.updated_at.clone(),
                    serial: Some(document.serial),
                    is_latest: true,
                })
                .into_iter()
                .take(limit)
                .collect()),
            Self::Remote { store, .. } => store.history(environment, limit).await,
        }
    }

    /// Environments with stored state in the bucket (remote) or folder (local).
    pub async fn environments(&self) -> Result<Vec<String>, StateError> {
        match self {
            Self::Local(local) => {
                let mut environments = Vec::new();
                let mut entries = match tokio::fs::read_dir(local.dir()).await {
                    Ok(entries) => entries,
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                        return Ok(environments);
                    }
                    Err(error) => {
                        return Err(StateError::io(
                            format!("listing {}", local.dir().display()),
                            error,
                        ));
                    }
                };
                while let Some(entry) = entries.next_entry().await.map_err(|error| {
                    StateError::io(format!("listing {}", local.dir().display()), error)
                })? {
                    if let Some(environment) = entry
                        .file_name()
                        .to_str()
                        .and_then(|name| name.strip_suffix(".json"))
                        && !environment.starts_with('.')
                    {
                        environments.push(environment.to_owned());
                    }
                }
                environments.sort();
                Ok(environments)
            }
            Self::Remote { store, .. } => store.environments().await,
        }
    }
}

/// A default lock wait, as Terraform's `-lock-timeout=0s`: fail at once.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::ZERO;
