//! The engine's error: what it was doing, the failure in one line, and the
//! SDK's error itself as the source, with what kind of failure it was.

use std::error::Error;
use std::fmt;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::waiters::error::WaiterError;

/// A failed AWS call (or step), with what the engine was doing ("creating S3
/// bucket x"). Shown as `action: detail`; an SDK failure keeps the SDK's
/// error as its [`Error::source`].
#[derive(Debug, thiserror::Error)]
#[error("{action}: {detail}")]
pub struct EngineError {
    pub action: String,
    pub detail: String,
    failure: Failure,
    #[source]
    source: Option<Box<dyn Error + Send + Sync + 'static>>,
}

/// What kind of failure an AWS call met, as far as deciding what to do next
/// goes (wait and retry, treat as absent, explain a missing permission).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The service asked for fewer requests (one of the SDK's throttling
    /// codes, or HTTP 429).
    Throttling,
    /// What was named does not exist (a `NotFound`, `NoSuch…` code, or HTTP 404).
    NotFound,
    /// The caller may not do it (an `AccessDenied`, `NotAuthorized` or
    /// `Unauthorized` code, or HTTP 403).
    AccessDenied,
    /// Anything else, or not an AWS call at all.
    Other,
}

impl Failure {
    /// The kind of an SDK call's failure, from the service's error code, else
    /// the HTTP status of its response.
    pub fn of<E>(error: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata,
    {
        if let Some(failure) = error.code().and_then(Self::of_code) {
            return failure;
        }
        match error
            .raw_response()
            .map(|response| response.status().as_u16())
        {
            Some(429) => Self::Throttling,
            Some(404) => Self::NotFound,
            Some(403) => Self::AccessDenied,
            _ => Self::Other,
        }
    }

    /// The kind named by an AWS error code, if it names one.
    fn of_code(code: &str) -> Option<Self> {
        if aws_runtime::retries::classifiers::THROTTLING_ERRORS.contains(&code) {
            Some(Self::Throttling)
        } else if code.contains("NotFound") || code.starts_with("NoSuch") {
            Some(Self::NotFound)
        } else if code.contains("AccessDenied")
            || code.contains("NotAuthorized")
            || code.contains("Unauthorized")
        {
            Some(Self::AccessDenied)
        } else {
            None
        }
    }
}

impl EngineError {
    /// A failure that is not an SDK call's.
    pub fn new(action: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            detail: detail.into(),
            failure: Failure::Other,
            source: None,
        }
    }

    /// A failed SDK call, described in one line, kept as the source.
    pub fn sdk<E>(action: impl Into<String>, error: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    {
        Self {
            action: action.into(),
            detail: state::sdk_error::describe(&error),
            failure: Failure::of(&error),
            source: Some(Box::new(error)),
        }
    }

    /// A waiter that gave up, met a failure state or whose polling failed,
    /// described by its chain of causes and kept as the source; classified by
    /// the failed poll's error (code, else HTTP status) when there was one.
    pub fn waited<O, E>(action: impl Into<String>, error: WaiterError<O, E>) -> Self
    where
        O: fmt::Debug + Send + Sync + 'static,
        E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    {
        let failure = match &error {
            WaiterError::OperationFailed(failed) => Failure::of(failed.error()),
            other => other
                .code()
                .and_then(Failure::of_code)
                .unwrap_or(Failure::Other),
        };
        Self {
            failure,
            ..Self::caused_by(action, error)
        }
    }

    /// A failure that is not a single SDK call's, described by its chain of
    /// causes and kept as the source.
    pub fn caused_by(action: impl Into<String>, error: impl Error + Send + Sync + 'static) -> Self {
        Self {
            action: action.into(),
            detail: state::sdk_error::causes(&error),
            failure: Failure::Other,
            source: Some(Box::new(error)),
        }
    }

    /// What kind of failure this was.
    pub fn failure(&self) -> Failure {
        self.failure
    }
}

/// What every SDK call's result gets to become the engine's: `.doing(||
/// "reading the table")` names what was being done when it failed.
pub trait Doing<T> {
    /// The result, its error an [`EngineError`] that says what was being done.
    fn doing<A: Into<String>>(self, action: impl FnOnce() -> A) -> Result<T, EngineError>;
}

impl<T, E> Doing<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    fn doing<A: Into<String>>(self, action: impl FnOnce() -> A) -> Result<T, EngineError> {
        self.map_err(|error| EngineError::sdk(action(), error))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    /// A service's answer with `status` and, when given, an error `code`.
    fn answered(status: u16, code: Option<&str>) -> SdkError<ErrorMetadata, HttpResponse> {
        let mut metadata = ErrorMetadata::builder().message("the service said no");
        if let Some(code) = code {
            metadata = metadata.code(code);
        }
        let response = HttpResponse::new(
            StatusCode::try_from(status).expect("a status"),
            SdkBody::empty(),
        );
        SdkError::service_error(metadata.build(), response)
    }

    #[test]
    fn a_failure_is_classified_by_its_code_then_by_its_status() {
        for (status, code, failure) in [
            (400, Some("ThrottlingException"), Failure::Throttling),
            (400, Some("TooManyRequestsException"), Failure::Throttling),
            (503, Some("SlowDown"), Failure::Throttling),
            (400, Some("ResourceNotFoundException"), Failure::NotFound),
            (404, Some("NoSuchEntity"), Failure::NotFound),
            (404, Some("NoSuchBucket"), Failure::NotFound),
            (403, Some("AccessDenied"), Failure::AccessDenied),
            (400, Some("AccessDeniedException"), Failure::AccessDenied),
            (400, Some("NotAuthorizedException"), Failure::AccessDenied),
            (400, Some("ValidationException"), Failure::Other),
            (429, None, Failure::Throttling),
            (404, None, Failure::NotFound),
            (403, None, Failure::AccessDenied),
            (500, None, Failure::Other),
        ] {
            assert_eq!(
                Failure::of(&answered(status, code)),
                failure,
                "{status} {code:?}"
            );
        }
    }

    #[test]
    fn a_failed_call_says_what_was_done_in_one_line_and_keeps_the_sdk_error() {
        let result: Result<(), _> = Err(answered(400, Some("ThrottlingException")));
        let error = result.doing(|| "reading the table").expect_err("a failure");
        assert_eq!(
            error.to_string(),
            "reading the table: ThrottlingException: the service said no"
        );
        assert_eq!(error.failure(), Failure::Throttling);
        let source = error.source().expect("the SDK's error");
        assert!(
            source
                .downcast_ref::<SdkError<ErrorMetadata, HttpResponse>>()
                .is_some(),
            "{source:?}"
        );
        let waited = EngineError::caused_by(
            "waiting for the table",
            std::io::Error::other("gave up after 3600 s"),
        );
        assert_eq!(
            waited.to_string(),
            "waiting for the table: gave up after 3600 s"
        );
        assert_eq!(waited.failure(), Failure::Other);
        assert!(
            waited
                .source()
                .and_then(|source| source.downcast_ref::<std::io::Error>())
                .is_some(),
            "the waiter's error is kept"
        );
        let plain = EngineError::new("ordering resources", "a cycle");
        assert_eq!(plain.failure(), Failure::Other);
        assert!(plain.source().is_none());
    }

    /// A waiter's failure keeps the waiter's error (and through it the
    /// failed poll's) as its source, and is classified by the poll's code.
    #[test]
    fn a_failed_wait_keeps_its_source_and_is_classified_by_the_poll() {
        use aws_smithy_runtime_api::client::waiters::error::{
            ExceededMaxWait, OperationFailed, WaiterError,
        };
        use std::time::Duration;

        type Waited = WaiterError<(), ErrorMetadata>;
        let failed: Waited = WaiterError::OperationFailed(OperationFailed::new(answered(
            400,
            Some("ResourceNotFoundException"),
        )));
        let error = EngineError::waited("waiting for DynamoDB table locks", failed);
        assert_eq!(
            error.to_string(),
            "waiting for DynamoDB table locks: operation failed while waiting: service error: \
             Error { code: \"ResourceNotFoundException\", message: \"the service said no\" }"
        );
        assert_eq!(error.failure(), Failure::NotFound);
        let waiter = error
            .source()
            .and_then(|source| source.downcast_ref::<Waited>())
            .expect("the waiter's error is kept");
        assert!(
            waiter
                .source()
                .and_then(|poll| poll.downcast_ref::<SdkError<ErrorMetadata, HttpResponse>>())
                .is_some(),
            "the failed poll is kept under it"
        );
        let denied: Waited =
            WaiterError::OperationFailed(OperationFailed::new(answered(403, None)));
        assert_eq!(
            EngineError::waited("waiting", denied).failure(),
            Failure::AccessDenied
        );
        let gave_up: Waited = WaiterError::ExceededMaxWait(ExceededMaxWait::new(
            Duration::from_secs(300),
            Duration::from_secs(301),
            40,
        ));
        let gave_up = EngineError::waited("waiting", gave_up);
        assert_eq!(
            gave_up.to_string(),
            "waiting: exceeded max wait time (300s)"
        );
        assert_eq!(gave_up.failure(), Failure::Other);
        assert!(gave_up.source().is_some());
    }
}
