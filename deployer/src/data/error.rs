//! What went wrong moving data: defined apart from the run (`mod.rs`), so that
//! the lanes (`source.rs`) and the writes (`target.rs`) that return it do not
//! depend on the module that drives them.

/// What went wrong moving data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{action}: {detail}")]
    Aws { action: String, detail: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{context}: {source}")]
    State {
        context: String,
        #[source]
        source: state::StateError,
    },
}

impl DataError {
    /// A failed SDK call, described in one line, saying what it was doing.
    pub fn aws<E>(
        action: impl Into<String>,
        error: &aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> Self
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        Self::Aws {
            action: action.into(),
            detail: state::sdk_error::describe(error),
        }
    }
}
