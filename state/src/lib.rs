//! The deployer's memory.
//!
//! - [`StateDocument`]: what the deployer remembers about one environment (or the
//!   bootstrap stack): format version, lineage, serial, resources and outputs.
//! - [`Backend`]: where documents live. [`Backend::Local`] keeps
//!   `.deployer/<env>.json` beside the config (the default before bootstrap);
//!   [`Backend::Remote`] keeps `s3://<bucket>/deployer/<env>/state.json` in the
//!   bootstrap bucket (SSE on every write, history from bucket versioning).
//! - Locks: [`Backend::lock`] takes the environment's lock, waiting up to the
//!   request's timeout: a lock file locally; remotely, by [`LockBackend`], the
//!   state object's `.tflock` file (Terraform 1.11's S3 lock file, created with
//!   `If-None-Match: *`), an item in the legacy DynamoDB lock table in
//!   Terraform's layout (`LockID = "<bucket>/<key>"`), or both. Every form holds
//!   Terraform's lock-info JSON (`{ID, Operation, Info, Who, Version, Created,
//!   Path}`) plus the holder's lease: [`Backend::renew`] is its heartbeat, and a
//!   lock whose heartbeat is older than its lease is stale and taken over by the
//!   next run (conditioned on the stale version, so one run wins).
//! - Lost updates: a write names the [`Stored`] state it was based on and is
//!   refused ([`StateError::Stale`]) if someone wrote in between.
//!
//! This crate knows nothing of Lambda, IAM or API Gateway, and prints nothing.

mod document;
mod error;
mod local;
mod lock;
mod s3;
mod s3_lock;
pub mod sdk_error;

use std::time::Duration;

pub use document::{FORMAT_VERSION, Origin, ResourceState, StateDocument};
pub use error::StateError;
pub use local::LocalBackend;
pub use lock::{DynamoDbLock, HeldLock, Holder, LockBackend, LockInfo, LockRequest};
pub use s3::{KEY_PREFIX, S3Store, state_key};
pub use s3_lock::{S3Lock, lock_file_key};

use lock::{Attempt, Taken, Versions, acquire_with_backoff};

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
    /// What this version records besides a change of resources (a stale
    /// lock's takeover).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The remote lock: where it is kept ([`LockBackend`]) and the stores.
#[derive(Debug, Clone)]
pub struct RemoteLock {
    pub backend: LockBackend,
    pub s3: S3Lock,
    pub dynamodb: DynamoDbLock,
}

/// A lock as found in one place, for `lock status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundLock {
    /// `s3://…/state.json.tflock`, `dynamodb://table/LockID` or the file's path.
    pub place: String,
    pub info: LockInfo,
}

/// Where state lives.
#[derive(Debug, Clone)]
pub enum Backend {
    Local(LocalBackend),
    Remote { store: S3Store, lock: RemoteLock },
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
                let etag = store.write(environment, &next, expected, None).await?;
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

    /// Take `environment`'s lock, waiting up to `request.timeout`. A stale
    /// lock (its holder's heartbeat older than its lease) is taken over; the
    /// held lock says whose it was ([`HeldLock::took_over`]).
    pub async fn lock(
        &self,
        environment: &str,
        request: &LockRequest,
    ) -> Result<HeldLock, StateError> {
        let lock_id = self.lock_id(environment);
        let base = LockInfo::new(request, &self.location(environment));
        let force_unlock = |id: &str| format!("{} {id}", request.force_unlock_command);
        let (info, versions, took_over) = match self {
            Self::Local(local) => {
                acquire_with_backoff(&lock_id, request.timeout, force_unlock, || async {
                    let info = base.renewed();
                    Ok(match local.try_lock(environment, &info).await? {
                        Attempt::Acquired(_) => {
                            Attempt::Acquired((info, Versions::default(), None))
                        }
                        Attempt::HeldBy(holder) => Attempt::HeldBy(holder),
                    })
                })
                .await?
            }
            Self::Remote { lock, .. } => {
                acquire_with_backoff(&lock_id, request.timeout, force_unlock, || {
                    remote_attempt(lock, environment, &lock_id, base.renewed())
                })
                .await?
            }
        };
        Ok(HeldLock {
            environment: environment.to_owned(),
            lock_id,
            info,
            took_over,
            versions,
        })
    }

    /// The heartbeat: renew `held` now, in every place it is kept. Fails with
    /// [`StateError::LockLost`] when the lock is no longer this run's.
    pub async fn renew(&self, held: &mut HeldLock) -> Result<(), StateError> {
        let info = held.info.renewed();
        match self {
            Self::Local(local) => local.renew(&held.environment, &info).await?,
            Self::Remote { lock, .. } => {
                if let Some(etag) = &held.versions.s3_etag {
                    let etag = lock.s3.renew(&held.environment, &info, etag).await?;
                    held.versions.s3_etag = Some(etag);
                }
                if let Some(previous) = &held.versions.dynamodb_info {
                    let raw = lock.dynamodb.renew(&held.lock_id, &info, previous).await?;
                    held.versions.dynamodb_info = Some(raw);
                }
            }
        }
        held.info = info;
        Ok(())
    }

    /// Release a lock this run holds.
    pub async fn unlock(&self, held: &HeldLock) -> Result<(), StateError> {
        match self {
            Self::Local(local) => local.unlock(&held.environment, &held.info.id).await,
            Self::Remote { lock, .. } => {
                // The reverse of taking it: the table's item, then the file.
                let mut first_error = None;
                if held.versions.dynamodb_info.is_some()
                    && let Err(error) = lock.dynamodb.unlock(&held.lock_id, &held.info.id).await
                {
                    first_error = Some(error);
                }
                if held.versions.s3_etag.is_some()
                    && let Err(error) = lock.s3.unlock(&held.environment, &held.info.id).await
                {
                    first_error.get_or_insert(error);
                }
                first_error.map_or(Ok(()), Err)
            }
        }
    }

    /// Remove `environment`'s lock, only if it is held with `id`: from every
    /// place this backend keeps locks in that holds it.
    pub async fn force_unlock(&self, environment: &str, id: &str) -> Result<(), StateError> {
        match self {
            Self::Local(local) => local.unlock(environment, id).await,
            Self::Remote { lock, .. } => {
                let lock_id = self.lock_id(environment);
                let mut removed = false;
                let mut refusal = None;
                let mut results = Vec::new();
                if lock.backend.uses_dynamodb() {
                    results.push(lock.dynamodb.unlock(&lock_id, id).await);
                }
                if lock.backend.uses_s3() {
                    results.push(lock.s3.unlock(environment, id).await);
                }
                for result in results {
                    match result {
                        Ok(()) => removed = true,
                        Err(StateError::NotLocked { .. }) => {}
                        Err(error) => {
                            refusal.get_or_insert(error);
                        }
                    }
                }
                match (removed, refusal) {
                    (_, Some(error)) => Err(error),
                    (true, None) => Ok(()),
                    (false, None) => Err(StateError::NotLocked { lock_id }),
                }
            }
        }
    }

    /// Who holds `environment`'s lock, if anyone (the first place found).
    pub async fn current_lock(&self, environment: &str) -> Result<Option<LockInfo>, StateError> {
        Ok(self
            .locks(environment)
            .await?
            .into_iter()
            .next()
            .map(|found| found.info))
    }

    /// `environment`'s lock in every place this backend keeps locks in.
    pub async fn locks(&self, environment: &str) -> Result<Vec<FoundLock>, StateError> {
        let mut found = Vec::new();
        match self {
            Self::Local(local) => {
                if let Some(info) = local.current_lock(environment).await? {
                    found.push(FoundLock {
                        place: self.lock_id(environment),
                        info,
                    });
                }
            }
            Self::Remote { lock, .. } => {
                if lock.backend.uses_s3()
                    && let Some((info, _)) = lock.s3.current(environment).await?
                {
                    found.push(FoundLock {
                        place: lock.s3.location(environment),
                        info,
                    });
                }
                let lock_id = self.lock_id(environment);
                if lock.backend.uses_dynamodb()
                    && let Some((info, _)) = lock.dynamodb.current(&lock_id).await?
                {
                    found.push(FoundLock {
                        place: format!("dynamodb://{}/{lock_id}", lock.dynamodb.table()),
                        info,
                    });
                }
            }
        }
        Ok(found)
    }

    /// Where locks are kept: `local`, `s3`, `dynamodb` or `both`.
    pub fn lock_backend(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::Remote { lock, .. } => lock.backend.as_str(),
        }
    }

    /// Record in `environment`'s state history that this run took over the
    /// stale lock `held.took_over`: the state is written again unchanged as a
    /// new version that says so (the local backend keeps no history). Nothing
    /// to do without state, or when nothing was taken over.
    pub async fn record_takeover(&self, held: &HeldLock) -> Result<(), StateError> {
        let (Self::Remote { store, .. }, Some(stale)) = (self, &held.took_over) else {
            return Ok(());
        };
        let Some((document, etag)) = store.read(&held.environment).await? else {
            return Ok(());
        };
        let note = format!(
            "lock {} of {} (last heartbeat {}) taken over by {} (lock {})",
            stale.id,
            stale.who,
            stale.heartbeat().unwrap_or("unknown"),
            held.info.who,
            held.info.id
        );
        let next = document.next_revision(Some(&document));
        store
            .write(&held.environment, &next, Some(&etag), Some(&note))
            .await?;
        Ok(())
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
                    note: None,
                })
                .into_iter()
                .take(limit)
                .collect()),
            Self::Remote { store, .. } => store.history(environment, limit).await,
        }
    }

    /// When `environment`'s current state was first written (RFC 3339), from
    /// the bucket's versions; `None` when it has no state, or with the local
    /// backend, which keeps no history.
    pub async fn created(&self, environment: &str) -> Result<Option<String>, StateError> {
        match self {
            Self::Local(_) => Ok(None),
            Self::Remote { store, .. } => store.created(environment).await,
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

/// One attempt at the remote lock: the file first, then the table's item; a
/// run holds the lock only when it holds it in every place the backend uses,
/// and gives back the file when the item is held.
async fn remote_attempt(
    lock: &RemoteLock,
    environment: &str,
    lock_id: &str,
    info: LockInfo,
) -> Result<Attempt<(LockInfo, Versions, Option<LockInfo>)>, StateError> {
    let mut versions = Versions::default();
    let mut took_over = None;
    if lock.backend.uses_s3() {
        match lock.s3.try_lock(environment, &info).await? {
            Attempt::Acquired(Taken {
                version,
                took_over: stale,
            }) => {
                versions.s3_etag = Some(version);
                took_over = stale;
            }
            Attempt::HeldBy(holder) => return Ok(Attempt::HeldBy(holder)),
        }
    }
    if lock.backend.uses_dynamodb() {
        match lock.dynamodb.try_lock(lock_id, &info).await? {
            Attempt::Acquired(Taken {
                version,
                took_over: stale,
            }) => {
                versions.dynamodb_info = Some(version);
                took_over = took_over.or(stale);
            }
            Attempt::HeldBy(holder) => {
                if versions.s3_etag.is_some() {
                    lock.s3.unlock(environment, &info.id).await?;
                }
                return Ok(Attempt::HeldBy(holder));
            }
        }
    }
    Ok(Attempt::Acquired((info, versions, took_over)))
}

/// A default lock wait, as Terraform's `-lock-timeout=0s`: fail at once.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::ZERO;
