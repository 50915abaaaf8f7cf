//! Locks that keep two runs from changing one environment at once.
//!
//! The remote lock is an item in the bootstrap DynamoDB lock table in Terraform's
//! layout: `LockID = "<bucket>/<key>"` and `Info` = JSON
//! `{ID, Operation, Info, Who, Version, Created, Path}`. It is taken with a
//! `PutItem` conditioned on `attribute_not_exists(LockID)` and released with a
//! `DeleteItem` conditioned on the exact `Info` we wrote (so only our `ID` frees
//! it). The local lock is a file created exclusively beside the local state, with
//! the same JSON and the same rules.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::StateError;

/// Lock information, field for field as Terraform writes it.
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
}

/// A lock this run holds; hand it back to release it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLock {
    pub environment: String,
    /// The lock's id: `<bucket>/<key>` remotely, the lock file's path locally.
    pub lock_id: String,
    pub info: LockInfo,
}

/// One attempt's result.
pub(crate) enum Attempt {
    Acquired,
    HeldBy(LockInfo),
}

impl LockInfo {
    pub(crate) fn new(request: &LockRequest, path: &str) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            operation: request.operation.clone(),
            info: request.info.clone(),
            who: request.who.clone(),
            version: request.version.clone(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            path: path.to_owned(),
        }
    }

    pub(crate) fn to_json(&self) -> String {
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
        }
    }
}

/// Try `attempt` until it acquires or `timeout` passes, backing off between
/// tries (100 ms growing to 2 s). On timeout: [`StateError::LockHeld`] with the
/// holder's details and the `force_unlock` command for its ID.
pub(crate) async fn acquire_with_backoff<F, Fut>(
    lock_id: &str,
    timeout: Duration,
    force_unlock: impl Fn(&str) -> String,
    mut attempt: F,
) -> Result<(), StateError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt, StateError>>,
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
            Attempt::Acquired => return Ok(()),
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

    /// One conditional put; the holder's info when it is taken.
    pub(crate) async fn try_lock(
        &self,
        lock_id: &str,
        info: &LockInfo,
    ) -> Result<Attempt, StateError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(LOCK_ID, AttributeValue::S(lock_id.to_owned()))
            .item(INFO, AttributeValue::S(info.to_json()))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", LOCK_ID)
            .send()
            .await;
        match put {
            Ok(_) => Ok(Attempt::Acquired),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_conditional_check_failed_exception()) =>
            {
                // Released in between: the next attempt will likely win.
                Ok(Attempt::HeldBy(self.current(lock_id).await?.map_or_else(
                    || LockInfo::unreadable(lock_id),
                    |(info, _)| info,
                )))
            }
            Err(error) => Err(StateError::aws(
                format!("taking lock {lock_id} in DynamoDB table {}", self.table),
                &error,
            )),
        }
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
