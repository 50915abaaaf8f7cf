//! What went wrong moving data: defined apart from the run (`mod.rs`), so that
//! the lanes (`source.rs`) and the writes (`target.rs`) that return it do not
//! depend on the module that drives them.

use crate::engine::EngineError;

/// What went wrong moving data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A failed AWS call, saying what it was doing (`action: detail`); the
    /// SDK's error is its source, and [`EngineError::failure`] its kind.
    #[error(transparent)]
    Aws(#[from] EngineError),
    /// A ranking call's failure (`schema::ranking`), saying what it was
    /// doing and where; the ranking's error is its source.
    #[error("{action}: {detail}")]
    Ranking {
        action: String,
        detail: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
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
        error: aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> Self
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
    {
        Self::Aws(EngineError::sdk(action, error))
    }

    /// A ranking call's failure, `action` saying where (in which table).
    pub fn ranking(
        error: schema::ranking::RankingError,
        place: impl FnOnce(&str) -> String,
    ) -> Self {
        let (action, detail) = crate::ranking::failure(&error);
        Self::Ranking {
            action: place(&action),
            detail,
            source: Box::new(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::error::SdkError;
    use aws_sdk_dynamodb::operation::query::QueryError;
    use aws_sdk_dynamodb::types::error::ResourceNotFoundException;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;
    use crate::engine::Failure;

    fn not_found() -> SdkError<QueryError, HttpResponse> {
        let response = HttpResponse::new(
            StatusCode::try_from(400).expect("a status"),
            SdkBody::empty(),
        );
        SdkError::service_error(
            QueryError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("Requested resource not found")
                    .meta(
                        aws_sdk_dynamodb::error::ErrorMetadata::builder()
                            .code("ResourceNotFoundException")
                            .message("Requested resource not found")
                            .build(),
                    )
                    .build(),
            ),
            response,
        )
    }

    /// The message reads as it did when the SDK's error was flattened to
    /// text, and the SDK's error stays reachable as the source.
    #[test]
    fn a_failed_call_keeps_the_sdk_error_as_its_source_and_reads_as_before() {
        let error = DataError::aws("reading table t1 of DynamoDB table scores", not_found());
        assert_eq!(
            error.to_string(),
            "reading table t1 of DynamoDB table scores: ResourceNotFoundException: Requested resource not found"
        );
        let source = error.source().expect("the SDK's error");
        assert!(
            source
                .downcast_ref::<SdkError<QueryError, HttpResponse>>()
                .is_some_and(|sdk| sdk
                    .as_service_error()
                    .is_some_and(QueryError::is_resource_not_found_exception)),
            "{source:?}"
        );
        let DataError::Aws(engine) = &error else {
            panic!("an AWS failure: {error:?}");
        };
        assert_eq!(engine.failure(), Failure::NotFound);
    }

    #[test]
    fn a_failed_ranking_call_keeps_the_ranking_error_as_its_source() {
        let error = DataError::ranking(
            schema::ranking::RankingError::Contended {
                action: "ranking ann".into(),
            },
            |action| format!("{action} in DynamoDB table scores"),
        );
        assert_eq!(
            error.to_string(),
            "ranking ann in DynamoDB table scores: other writes kept changing the same items; run it again"
        );
        assert!(
            error
                .source()
                .and_then(|source| source.downcast_ref::<schema::ranking::RankingError>())
                .is_some()
        );
    }
}
