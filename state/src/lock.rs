//! Locks that keep two runs from changing one environment at once.
//!
//! Every lock holds Terraform's lock-info JSON, `{ID, Operation, Info, Who,
//! Version, Created, Path}` (seven strings), plus a `Deployer` object Terraform
//! ignores: the holder's run URL, host, process, last heartbeat and lease.
//!
//! The remote lock is the S3 lock file (`s3_lock`), an item in the legacy
//! DynamoDB lock table in Terraform's layout, or both ([`LockBackend`]). The
//! item (`LockID = "<bucket>/<key>"`, `Info` = the JSON) is taken with a
//! `PutItem` conditioned on `attribute_not_exists(LockID)`, renewed or taken
//! over with one conditioned on the exact `Info` read, and released with a
//! `DeleteItem` conditioned on the exact `Info` (so only our `ID` frees it).
//! The local lock is a file created exclusively beside the local state, with
//! the same JSON and the same rules (it is renewed, but never taken over: one
//! machine's runs can see each other).

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::StateError;

/// Where the remote lock is kept (the `lock_backend` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockBackend {
    /// The state object's `.tflock` file beside it in the bucket (Terraform
    /// 1.11's `use_lockfile`).
    #[serde(rename = "s3")]
    S3,
    /// An item in the legacy DynamoDB lock table.
    #[serde(rename = "dynamodb")]
    DynamoDb,
    /// Both, as Terraform allows while moving off the table: the lock file is
    /// taken first, then the item; a run holds the lock only when it holds both.
    #[serde(rename = "both")]
    Both,
}

impl LockBackend {
    /// The setting's default: `both` while the legacy lock table exists (so a
    /// Terraform run that still locks only there is seen), `s3` once it is gone.
    pub fn default_for(lock_table_exists: bool) -> Self {
        if lock_table_exists {
            Self::Both
        } else {
            Self::S3
        }
    }

    pub fn uses_s3(self) -> bool {
        matches!(self, Self::S3 | Self::Both)
    }

    pub fn uses_dynamodb(self) -> bool {
        matches!(self, Self::DynamoDb | Self::Both)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::S3 => "s3",
            Self::DynamoDb => "dynamodb",
            Self::Both => "both",
        }
    }
}

impl std::fmt::Display for LockBackend {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Lock information, field for field as Terraform writes it (seven strings),
/// plus the deployer's own `Deployer` object, which Terraform ignores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Operation")]
    pub operation: String,
    #[serde(rename = "Info")]
    pub info: String,
    #[serde(rename = "Who")]
    pub who: String,
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "Created")]
    pub created: String,
    #[serde(rename = "Path")]
    pub path: String,
    /// The holder's lease (absent from a lock Terraform took: such a lock
    /// never goes stale, as in Terraform).
    #[serde(rename = "Deployer", default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<Holder>,
}

/// Who holds a lock, and how long their lease runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The GitHub Actions run, when the holder runs in one.
    #[serde(rename = "RunURL", default, skip_serializing_if = "Option::is_none")]
    pub run_url: Option<String>,
    #[serde(rename = "Host")]
    pub host: String,
    #[serde(rename = "Process")]
    pub process: u32,
    /// RFC 3339: when the holder last renewed the lock.
    #[serde(rename = "Heartbeat")]
    pub heartbeat: String,
    /// A lock whose heartbeat is older than this is stale.
    #[serde(rename = "LeaseSeconds")]
    pub lease_seconds: u64,
}

/// What a run says about itself when it takes a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRequest {
    /// e.g. `apply`.
    pub operation: String,
    /// Free text, e.g. `deployer apply --env dev`.
    pub info: String,
    /// `user@host`.
    pub who: String,
    /// The deployer's version.
    pub version: String,
    /// How long to wait for a held lock (zero: fail at once).
    pub timeout: Duration,
    /// The command that force-unlocks this environment, without the lock ID
    /// (e.g. `deployer force-unlock --env dev`); a held-lock error appends the ID.
    pub force_unlock_command: String,
    /// How long the lock stays ours without a heartbeat.
    pub lease: Duration,
    /// The GitHub Actions run's URL, when there is one.
    pub run_url: Option<String>,
    pub host: String,
    pub process: u32,
}

/// A lock this run holds; hand it back to release it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLock {
    pub environment: String,
    /// The lock's id: `<bucket>/<key>` remotely, the lock file's path locally.
    pub lock_id: String,
    pub info: LockInfo,
    /// The stale lock this run took over, if it took one over.
    pub took_over: Option<LockInfo>,
    /// What each store holds now: the lock file's ETag, the item's `Info`.
    pub(crate) versions: Versions,
}

/// What a renewal or release is conditioned on, in each store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Versions {
    pub(crate) s3_etag: Option<String>,
    pub(crate) dynamodb_info: Option<String>,
}

/// One attempt's result.
#[allow(clippy::large_enum_variant)] // one per attempt, never stored
pub(crate) enum Attempt<T> {
    Acquired(T),
    HeldBy(LockInfo),
}

/// A store's lock, once taken: what it is conditioned on now, and whose stale
/// lock it replaced.
pub(crate) struct Taken {
    pub(crate) version: String,
    pub(crate) took_over: Option<LockInfo>,
}

/// RFC 3339 with microseconds, as Terraform writes `Created`.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl LockInfo {
    pub(crate) fn new(request: &LockRequest, path: &str) -> Self {
        let now = now_rfc3339();
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            operation: request.operation.clone(),
            info: request.info.clone(),
            who: request.who.clone(),
            version: request.version.clone(),
            created: now.clone(),
            path: path.to_owned(),
            holder: Some(Holder {
                run_url: request.run_url.clone(),
                host: request.host.clone(),
                process: request.process,
                heartbeat: now,
                lease_seconds: request.lease.as_secs().max(1),
            }),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Lock info that could not be read (a half-written file): shown as unknown.
    pub(crate) fn unreadable(path: &str) -> Self {
        Self {
            id: "unknown".into(),
            operation: "unknown".into(),
            info: "the lock's information could not be read".into(),
            who: "unknown".into(),
            version: String::new(),
            created: "unknown".into(),
            path: path.to_owned(),
            holder: None,
        }
    }

    /// The holder's GitHub run URL, if it recorded one.
    pub fn run_url(&self) -> Option<&str> {
        self.holder
            .as_ref()
            .and_then(|holder| holder.run_url.as_deref())
    }

    /// The last heartbeat (RFC 3339), if the holder keeps a lease.
    pub fn heartbeat(&self) -> Option<&str> {
        self.holder.as_ref().map(|holder| holder.heartbeat.as_str())
    }

    /// How long ago the last heartbeat was, by this machine's clock.
    pub fn heartbeat_age(&self) -> Option<Duration> {
        let heartbeat = chrono::DateTime::parse_from_rfc3339(self.heartbeat()?).ok()?;
        let age = chrono::Utc::now().signed_duration_since(heartbeat);
        Some(age.to_std().unwrap_or(Duration::ZERO))
    }

    /// Whether the holder's lease ran out: its heartbeat is older than its
    /// lease. A lock without a lease (Terraform's) is never stale.
    pub fn is_stale(&self) -> bool {
        let Some(holder) = &self.holder else {
            return false;
        };
        self.heartbeat_age()
            .is_some_and(|age| age > Duration::from_secs(holder.lease_seconds))
    }

    /// The same lock, renewed now.
    pub(crate) fn renewed(&self) -> Self {
        let mut renewed = self.clone();
        if let Some(holder) = &mut renewed.holder {
            holder.heartbeat = now_rfc3339();
        }
        renewed
    }

    /// One line on who holds it: `who (run URL) since Created, last heartbeat …`.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{} since {} for {:?}",
            self.who, self.created, self.operation
        );
        if let Some(holder) = &self.holder {
            if let Some(url) = &holder.run_url {
                text.push_str(&format!(", run {url}"));
            }
            text.push_str(&format!(
                ", process {} on {}, last heartbeat {}",
                holder.process, holder.host, holder.heartbeat
            ));
        }
        text
    }
}

/// Try `attempt` until it acquires or `timeout` passes, backing off between
/// tries (100 ms growing to 2 s). On timeout: [`StateError::LockHeld`] with the
/// holder's details and the `force_unlock` command for its ID.
pub(crate) async fn acquire_with_backoff<T, F, Fut>(
    lock_id: &str,
    timeout: Duration,
    force_unlock: impl Fn(&str) -> String,
    mut attempt: F,
) -> Result<T, StateError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, StateError>>,
{
    use backon::BackoffBuilder;
    let started = Instant::now();
    let mut pauses = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_factor(1.5)
        .with_max_delay(Duration::from_secs(2))
        .with_jitter()
        .without_max_times()
        .build();
    loop {
        match attempt().await? {
            Attempt::Acquired(taken) => return Ok(taken),
            Attempt::HeldBy(info) => {
                let waited = started.elapsed();
                if waited >= timeout {
                    return Err(StateError::LockHeld {
                        lock_id: lock_id.to_owned(),
                        force_unlock: force_unlock(&info.id),
                        info: Box::new(info),
                    });
                }
                let pause = pauses.next().unwrap_or(Duration::from_secs(2));
                // The last pause ends at the timeout, so a lock freed by then is taken.
                tokio::time::sleep(pause.min(timeout - waited)).await;
            }
        }
    }
}

/// The lock table's attribute names (Terraform's).
const LOCK_ID: &str = "LockID";
const INFO: &str = "Info";

/// Locks in the bootstrap DynamoDB lock table.
#[derive(Debug, Clone)]
pub struct DynamoDbLock {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDbLock {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// One conditional put; the holder's info when it is taken. A stale lock
    /// (its lease ran out) is taken over with a put conditioned on the very
    /// `Info` that was read, so of two runs taking it over one wins.
    pub(crate) async fn try_lock(
        &self,
        lock_id: &str,
        info: &LockInfo,
    ) -> Result<Attempt<Taken>, StateError> {
        let raw = info.to_json();
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(LOCK_ID, AttributeValue::S(lock_id.to_owned()))
            .item(INFO, AttributeValue::S(raw.clone()))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", LOCK_ID)
            .send()
            .await;
        match put {
            Ok(_) => Ok(Attempt::Acquired(Taken {
                version: raw,
                took_over: None,
            })),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_conditional_check_failed_exception()) =>
            {
                let Some((holder, held_raw)) = self.current(lock_id).await? else {
                    // Released in between: the next attempt will likely win.
                    return Ok(Attempt::HeldBy(LockInfo::unreadable(lock_id)));
                };
                if !holder.is_stale() {
                    return Ok(Attempt::HeldBy(holder));
                }
                match self.replace(lock_id, &raw, &held_raw).await? {
                    true => Ok(Attempt::Acquired(Taken {
                        version: raw,
                        took_over: Some(holder),
                    })),
                    false => Ok(Attempt::HeldBy(holder)),
                }
            }
            Err(error) => Err(StateError::aws(
                format!("taking lock {lock_id} in DynamoDB table {}", self.table),
                &error,
            )),
        }
    }

    /// Write `raw` as the item's `Info` if it still is `expected`; `false` when
    /// it no longer is.
    async fn replace(&self, lock_id: &str, raw: &str, expected: &str) -> Result<bool, StateError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(LOCK_ID, AttributeValue::S(lock_id.to_owned()))
            .item(INFO, AttributeValue::S(raw.to_owned()))
            .condition_expression("#info = :expected")
            .expression_attribute_names("#info", INFO)
            .expression_attribute_values(":expected", AttributeValue::S(expected.to_owned()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(StateError::aws(
                format!("renewing lock {lock_id} in DynamoDB table {}", self.table),
                &error,
            )),
        }
    }

    /// Renew the lock we hold as `previous` with `info`; the new version, or
    /// [`StateError::LockLost`] when the item is no longer ours.
    pub(crate) async fn renew(
        &self,
        lock_id: &str,
        info: &LockInfo,
        previous: &str,
    ) -> Result<String, StateError> {
        let raw = info.to_json();
        if self.replace(lock_id, &raw, previous).await? {
            return Ok(raw);
        }
        Err(StateError::LockLost {
            lock_id: lock_id.to_owned(),
            now: self
                .current(lock_id)
                .await?
                .map(|(holder, _)| Box::new(holder)),
        })
    }

    /// The current holder's info and the raw `Info` string, if locked.
    pub async fn current(&self, lock_id: &str) -> Result<Option<(LockInfo, String)>, StateError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(LOCK_ID, AttributeValue::S(lock_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| {
                StateError::aws(
                    format!("reading lock {lock_id} in DynamoDB table {}", self.table),
                    &error,
                )
            })?;
        let Some(raw) = output
            .item()
            .and_then(|item| item.get(INFO))
            .and_then(|info| info.as_s().ok())
        else {
            return Ok(output
                .item()
                .map(|_| (LockInfo::unreadable(lock_id), String::new())));
        };
        let info = serde_json::from_str(raw).unwrap_or_else(|_| LockInfo::unreadable(lock_id));
        Ok(Some((info, raw.clone())))
    }

    /// Every lock held in the table: the items whose `Info` is set, as
    /// (`LockID`, holder). Terraform's `-md5` digest items hold no `Info` and
    /// are not locks.
    pub async fn held_locks(&self) -> Result<Vec<(String, LockInfo)>, StateError> {
        let action = || format!("listing the locks in DynamoDB table {}", self.table);
        let mut held = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|error| StateError::aws(action(), &error))?;
            for item in page.items() {
                let (Some(lock_id), Some(raw)) = (
                    item.get(LOCK_ID).and_then(|id| id.as_s().ok()),
                    item.get(INFO).and_then(|info| info.as_s().ok()),
                ) else {
                    continue;
                };
                let info =
                    serde_json::from_str(raw).unwrap_or_else(|_| LockInfo::unreadable(lock_id));
                held.push((lock_id.clone(), info));
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(held),
            }
        }
    }

    /// Remove the lock if, and only if, it is held with `id`.
    pub(crate) async fn unlock(&self, lock_id: &str, id: &str) -> Result<(), StateError> {
        let Some((info, raw)) = self.current(lock_id).await? else {
            return Err(StateError::NotLocked {
                lock_id: lock_id.to_owned(),
            });
        };
        if info.id != id {
            return Err(StateError::LockIdMismatch {
                lock_id: lock_id.to_owned(),
                held: info.id,
                given: id.to_owned(),
            });
        }
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(LOCK_ID, AttributeValue::S(lock_id.to_owned()))
            .condition_expression("#info = :info")
            .expression_attribute_names("#info", INFO)
            .expression_attribute_values(":info", AttributeValue::S(raw))
            .send()
            .await;
        match delete {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_conditional_check_failed_exception()) =>
            {
                Err(StateError::NotLocked {
                    lock_id: lock_id.to_owned(),
                })
            }
            Err(error) => Err(StateError::aws(
                format!("releasing lock {lock_id} in DynamoDB table {}", self.table),
                &error,
            )),
        }
    }
}
