//! The S3 lock file, Terraform 1.11's way (`use_lockfile`): the object
//! `<state object key>.tflock` beside the state, holding the lock-info JSON.
//!
//! - Taken with `PutObject` and `If-None-Match: *`: of two runs, S3 lets one
//!   create it and answers the other `412 Precondition Failed`.
//! - Renewed (a heartbeat) with `PutObject` and `If-Match: <the ETag we wrote>`,
//!   so a run that lost its lock to a takeover finds out instead of writing over
//!   the new holder.
//! - A stale lock (its heartbeat older than its lease) is taken over the same
//!   way, conditioned on the stale object's ETag: of two runs taking it over
//!   one wins.
//! - Released with `DeleteObject` and `If-Match` the ETag of the object whose
//!   `ID` was checked to be ours.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use crate::lock::{Attempt, LockInfo, Taken};
use crate::{StateError, state_key};

/// The key of `environment`'s lock file: the state object's key + `.tflock`.
pub fn lock_file_key(environment: &str) -> String {
    format!("{}.tflock", state_key(environment))
}

/// Lock files in the state bucket.
#[derive(Debug, Clone)]
pub struct S3Lock {
    client: aws_sdk_s3::Client,
    bucket: String,
}

/// How a conditional put ended.
enum Put {
    Written(String),
    ConditionFailed,
}

impl S3Lock {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// `s3://bucket/deployer/<env>/state.json.tflock`.
    pub fn location(&self, environment: &str) -> String {
        format!("s3://{}/{}", self.bucket, lock_file_key(environment))
    }

    /// Put `info` at the lock file's key if it is absent (`None`) or still at
    /// the ETag `expected`.
    async fn put(
        &self,
        environment: &str,
        info: &LockInfo,
        expected: Option<&str>,
        doing: &str,
    ) -> Result<Put, StateError> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(lock_file_key(environment))
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(ByteStream::from(info.to_json().into_bytes()));
        let request = match expected {
            Some(etag) => request.if_match(etag),
            None => request.if_none_match("*"),
        };
        match request.send().await {
            Ok(output) => Ok(Put::Written(output.e_tag().unwrap_or_default().to_owned())),
            // 412, or (If-Match on a key that is gone) 404.
            Err(error)
                if matches!(
                    error.code(),
                    Some("PreconditionFailed" | "NoSuchKey" | "ConditionalRequestConflict")
                ) || error
                    .raw_response()
                    .is_some_and(|raw| matches!(raw.status().as_u16(), 404 | 409 | 412)) =>
            {
                Ok(Put::ConditionFailed)
            }
            Err(error) => Err(StateError::aws(
                format!("{doing} {}", self.location(environment)),
                &error,
            )),
        }
    }

    /// One conditional create; a stale holder's lock is taken over.
    pub(crate) async fn try_lock(
        &self,
        environment: &str,
        info: &LockInfo,
    ) -> Result<Attempt<Taken>, StateError> {
        if let Put::Written(etag) = self.put(environment, info, None, "taking lock").await? {
            return Ok(Attempt::Acquired(Taken {
                version: etag,
                took_over: None,
            }));
        }
        let Some((holder, etag)) = self.current(environment).await? else {
            // Released in between: the next attempt will likely win.
            return Ok(Attempt::HeldBy(LockInfo::unreadable(
                &self.location(environment),
            )));
        };
        if !holder.is_stale() {
            return Ok(Attempt::HeldBy(holder));
        }
        match self
            .put(environment, info, Some(&etag), "taking over stale lock")
            .await?
        {
            Put::Written(version) => Ok(Attempt::Acquired(Taken {
                version,
                took_over: Some(holder),
            })),
            Put::ConditionFailed => Ok(Attempt::HeldBy(holder)),
        }
    }

    /// Renew the lock we hold at ETag `previous`: the new ETag, or
    /// [`StateError::LockLost`].
    pub(crate) async fn renew(
        &self,
        environment: &str,
        info: &LockInfo,
        previous: &str,
    ) -> Result<String, StateError> {
        match self
            .put(environment, info, Some(previous), "renewing lock")
            .await?
        {
            Put::Written(etag) => Ok(etag),
            Put::ConditionFailed => Err(StateError::LockLost {
                lock_id: self.location(environment),
                now: self
                    .current(environment)
                    .await?
                    .map(|(holder, _)| Box::new(holder)),
            }),
        }
    }

    /// The holder's info and the lock file's ETag, if it is locked.
    pub async fn current(
        &self,
        environment: &str,
    ) -> Result<Option<(LockInfo, String)>, StateError> {
        let location = self.location(environment);
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(lock_file_key(environment))
            .send()
            .await
        {
            Ok(output) => output,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_no_such_key()) =>
            {
                return Ok(None);
            }
            Err(error) => {
                return Err(StateError::aws(format!("reading lock {location}"), &error));
            }
        };
        let etag = output.e_tag().unwrap_or_default().to_owned();
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|error| StateError::Aws {
                action: format!("reading lock {location}"),
                detail: crate::sdk_error::causes(&error),
            })?
            .into_bytes();
        let info =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| LockInfo::unreadable(&location));
        Ok(Some((info, etag)))
    }

    /// Remove the lock file if, and only if, it is held with `id`.
    pub(crate) async fn unlock(&self, environment: &str, id: &str) -> Result<(), StateError> {
        let location = self.location(environment);
        let Some((info, etag)) = self.current(environment).await? else {
            return Err(StateError::NotLocked { lock_id: location });
        };
        if info.id != id {
            return Err(StateError::LockIdMismatch {
                lock_id: location,
                held: info.id,
                given: id.to_owned(),
            });
        }
        let delete = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(lock_file_key(environment))
            .if_match(etag)
            .send()
            .await;
        match delete {
            Ok(_) => Ok(()),
            Err(error)
                if error.code() == Some("PreconditionFailed")
                    || error
                        .raw_response()
                        .is_some_and(|raw| raw.status().as_u16() == 412) =>
            {
                // Renewed or taken over between our read and the delete.
                Err(StateError::LockIdMismatch {
                    lock_id: location,
                    held: "a newer holder".into(),
                    given: id.to_owned(),
                })
            }
            Err(error) => Err(StateError::aws(
                format!("releasing lock {location}"),
                &error,
            )),
        }
    }
}
