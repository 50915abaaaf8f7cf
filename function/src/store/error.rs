//! The store's typed errors. The API maps them to HTTP statuses; none carries a
//! raw SDK dump to a client (the full context goes to the log).

use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use schema::ranking::RankingError;

/// What went wrong talking to the playground table.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Table not found")]
    TableNotFound,
    #[error("User not found in table")]
    UserNotFound,
    #[error("This environment does not allow deleting tables")]
    TableDeleteNotAllowed,
    #[error("Table '{table_id}' already exists")]
    TableAlreadyExists { table_id: String },
    #[error("Session not found or expired")]
    SessionNotFound,
    #[error("This session id is in use by another user's live session; pick another id")]
    SessionTaken,
    #[error("item {key} in DynamoDB table {table} is malformed: {problem}")]
    MalformedItem {
        table: String,
        key: String,
        problem: String,
    },
    #[error("{action}: {detail}")]
    DynamoDb {
        action: String,
        detail: String,
        /// Whether it may pass: a timeout, a dropped connection, throttling,
        /// a DynamoDB 5xx. The API answers 503 with `Retry-After`; anything
        /// else (access denied, a malformed request) is a 500.
        transient: bool,
    },
    #[error("{action}: gave up after {attempts} attempts that conflicted with concurrent writes")]
    Contended { action: String, attempts: u32 },
    #[error("{action}: DynamoDB left {left} items unprocessed after {attempts} attempts")]
    Unprocessed {
        action: String,
        attempts: u32,
        left: usize,
    },
}

impl StoreError {
    /// Wrap an SDK error with what we were doing, keeping the SDK's whole
    /// error chain, and whether it may pass.
    pub(crate) fn dynamodb<E, R>(action: impl Into<String>, error: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let transient = is_transient(&error);
        Self::DynamoDb {
            action: action.into(),
            detail: DisplayErrorContext(error).to_string(),
            transient,
        }
    }

    /// A request the SDK could not build (a bug, never transient).
    pub(crate) fn build(action: impl Into<String>, error: BuildError) -> Self {
        Self::DynamoDb {
            action: action.into(),
            detail: DisplayErrorContext(error).to_string(),
            transient: false,
        }
    }

    /// A ranking step of `schema::ranking` that failed, transient as the
    /// DynamoDB error under it was.
    pub(crate) fn ranking(action: impl Into<String>, error: RankingError) -> Self {
        let transient = match &error {
            RankingError::Aws { source, .. } => source
                .code()
                .is_none_or(|code| TRANSIENT_CODES.contains(&code)),
            RankingError::Build { .. } => false,
            RankingError::Contended { .. } => true,
        };
        Self::DynamoDb {
            action: action.into(),
            detail: DisplayErrorContext(error).to_string(),
            transient,
        }
    }

    /// A waiter that gave up (the function's `--create-table`, never a request).
    pub(crate) fn waiting(action: impl Into<String>, error: impl std::error::Error) -> Self {
        Self::DynamoDb {
            action: action.into(),
            detail: DisplayErrorContext(error).to_string(),
            transient: false,
        }
    }

    /// Whether a retry of the request may succeed (the API answers 503).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::DynamoDb { transient, .. } => *transient,
            Self::Contended { .. } | Self::Unprocessed { .. } => true,
            _ => false,
        }
    }
}

/// DynamoDB's error codes that say "not now" rather than "never".
const TRANSIENT_CODES: [&str; 8] = [
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "TransactionConflictException",
    "TransactionCanceledException",
];

/// Whether `error` may pass on a retry: the call timed out or never got an
/// answer (its outcome unknown: every write of the store is safe to send again,
/// see `users.rs`), or DynamoDB said so.
fn is_transient<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => service
            .err()
            .code()
            .is_some_and(|code| TRANSIENT_CODES.contains(&code)),
        _ => false,
    }
}
