//! The store's typed errors. The API maps them to HTTP statuses; none carries a
//! raw SDK dump to a client (the full context goes to the log).

use aws_sdk_dynamodb::error::DisplayErrorContext;

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
    DynamoDb { action: String, detail: String },
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
    /// Wrap an SDK error with what we were doing, keeping the SDK's whole error chain.
    pub(crate) fn dynamodb(action: impl Into<String>, error: impl std::error::Error) -> Self {
        Self::DynamoDb {
            action: action.into(),
            detail: DisplayErrorContext(error).to_string(),
        }
    }
}
