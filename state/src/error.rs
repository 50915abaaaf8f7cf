//! Typed errors of the state crate; the deployer adds its own context.

use crate::lock::LockInfo;

/// What went wrong reading, writing or locking state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state at {location} is not a valid state document ({detail}); it was left untouched")]
    Corrupt { location: String, detail: String },

    #[error(
        "state at {location} has format version {found}, newer than this deployer understands ({supported}); upgrade the deployer. The state was left untouched"
    )]
    UnsupportedFormat {
        location: String,
        found: u32,
        supported: u32,
    },

    #[error(
        "state at {location} changed since it was read (expected {expected}, found {found}); another run wrote it. Nothing was written: rerun to plan against the current state"
    )]
    Stale {
        location: String,
        expected: String,
        found: String,
    },

    #[error("{}", lock_held_message(.lock_id, .info, .force_unlock))]
    LockHeld {
        lock_id: String,
        info: Box<LockInfo>,
        /// The exact command that removes this lock.
        force_unlock: String,
    },

    #[error("lock {lock_id} is held with ID {held}, not {given}; nothing was removed")]
    LockIdMismatch {
        lock_id: String,
        held: String,
        given: String,
    },

    #[error("{}", lock_lost_message(.lock_id, .now.as_deref()))]
    LockLost {
        lock_id: String,
        /// Who holds it now, if anyone.
        now: Option<Box<LockInfo>>,
    },

    #[error("lock {lock_id} is not held by anyone")]
    NotLocked { lock_id: String },

    #[error("{action}: {detail}")]
    Io { action: String, detail: String },

    #[error("{action}: {detail}")]
    Aws { action: String, detail: String },
}

fn lock_held_message(lock_id: &str, info: &LockInfo, force_unlock: &str) -> String {
    let lease = match &info.holder {
        Some(holder) => format!(
            "; its lease of {} s clears it if that run stops renewing it",
            holder.lease_seconds
        ),
        None => String::new(),
    };
    format!(
        "the state is locked: {lock_id} is held by {} (lock ID {}){lease}. \
         Wait for that run to finish (--lock-timeout waits), or if it died, remove the lock with: {force_unlock}",
        info.describe(),
        info.id
    )
}

fn lock_lost_message(lock_id: &str, now: Option<&LockInfo>) -> String {
    match now {
        Some(holder) => format!(
            "lost the lock {lock_id}: it is now held by {} (lock ID {}); stopped before changing anything more",
            holder.describe(),
            holder.id
        ),
        None => format!(
            "lost the lock {lock_id}: it is no longer held; stopped before changing anything more"
        ),
    }
}

impl StateError {
    pub(crate) fn io(action: impl Into<String>, error: std::io::Error) -> Self {
        Self::Io {
            action: action.into(),
            detail: error.to_string(),
        }
    }

    /// A failed SDK call, described in one line.
    pub(crate) fn aws<E>(
        action: impl Into<String>,
        error: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Self
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        Self::Aws {
            action: action.into(),
            detail: crate::sdk_error::describe(error),
        }
    }
}
