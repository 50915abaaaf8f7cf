//! One-line descriptions of AWS SDK errors for people: the service's error code
//! and message when it sent them, otherwise the chain of causes (for example a
//! refused connection). Never the raw response dump.

use std::error::Error;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// Describe an SDK call's failure in one line.
pub fn describe<E>(error: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + Error + 'static,
{
    if let Some(code) = error.code() {
        return match error.message() {
            Some(message) if !message.is_empty() => format!("{code}: {message}"),
            _ => code.to_owned(),
        };
    }
    if let SdkError::ServiceError(service) = error {
        return format!(
            "the service answered HTTP {} without an error code",
            service.raw().status().as_u16()
        );
    }
    causes(error)
}

/// `error: cause: cause…`, skipping repeats.
pub fn causes(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.ends_with(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}
