//! The CLI's errors: each says what the deployer was doing.

use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{context}: {source}")]
    State {
        context: String,
        #[source]
        source: state::StateError,
    },
    /// The command line, or a file it names, asks for what cannot be done as
    /// given.
    #[error("{0}")]
    Usage(String),
    /// What the command needs is not so (a missing table, state or alias), or
    /// going on would be unsafe; the message says what to do first.
    #[error("{0}")]
    Refused(String),
    /// The person at the terminal did not confirm.
    #[error("cancelled: nothing was changed")]
    Cancelled,
    /// A confirmation is needed and nobody can give one.
    #[error(
        "refusing to proceed without --auto-approve: standard input is not a terminal, so nobody can confirm"
    )]
    NobodyToConfirm,
    /// Ctrl-C stopped the command; `what` says what is left and how to go on.
    #[error("interrupted: {what}")]
    Interrupted { what: String },
    /// The task asking for confirmation ended without an answer.
    #[error("asking for confirmation: {0}")]
    Confirmation(#[source] tokio::task::JoinError),
    /// A task the command ran concurrently panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
    /// The function's zip cannot be used.
    #[error(transparent)]
    Artifact(#[from] crate::package::artifact::ArtifactError),
    /// The function cannot be built from source (`apply` without `--artifact`).
    #[error(transparent)]
    Build(#[from] crate::package::from_source::BuildError),
    /// The layer's zip cannot be used.
    #[error(transparent)]
    LayerZip(#[from] crate::package::layer::LayerZipError),
    /// Reading or writing a file or a standard stream.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A saved plan that is not JSON of its shape, or cannot be written as JSON.
    #[error("{context}: {source}")]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
    },
    /// An item that has no JSON form.
    #[error("exporting an item: {0}")]
    Export(#[source] crate::data::json::JsonItemError),
    /// A rollback moved `live` but its record failed.
    #[error(
        "live now points at version {target}, but recording the rollback failed: {source}\n    \
         run `deployer rollback --env {environment} --to {target}` again to record it"
    )]
    RollbackUnrecorded {
        target: String,
        environment: String,
        #[source]
        source: Box<CliError>,
    },
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Plan(#[from] crate::engine::PlanStackError),
    #[error(
        "the API does not serve after this apply: {source}. The changes are applied and recorded. \
         The function's logs are in the CloudWatch log group {log_group} \
         (`aws logs tail {log_group} --since 10m`). Where this machine cannot reach the API's URL, \
         pass --skip-health-check"
    )]
    ApiNotServing {
        #[source]
        source: crate::commands::environment::health_check::HealthCheckError,
        log_group: String,
    },
}

impl CliError {
    /// A failed read or write, saying of what.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub fn state(context: impl Into<String>) -> impl FnOnce(state::StateError) -> Self {
        let context = context.into();
        move |source| Self::State { context, source }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// The messages are the ones the CLI printed when every one of these was a
    /// `Usage` string; the variants now keep what caused them.
    #[test]
    fn each_variant_says_what_it_said_and_keeps_its_source() {
        assert_eq!(
            CliError::Cancelled.to_string(),
            "cancelled: nothing was changed"
        );
        assert_eq!(
            CliError::NobodyToConfirm.to_string(),
            "refusing to proceed without --auto-approve: standard input is not a terminal, so nobody can confirm"
        );
        assert_eq!(
            CliError::Interrupted {
                what: "while waiting for the lock (`deployer apply --env dev`)".into()
            }
            .to_string(),
            "interrupted: while waiting for the lock (`deployer apply --env dev`)"
        );
        let io = CliError::io(
            "writing to standard output",
            std::io::Error::from(std::io::ErrorKind::BrokenPipe),
        );
        assert_eq!(
            io.to_string(),
            format!(
                "writing to standard output: {}",
                std::io::Error::from(std::io::ErrorKind::BrokenPipe)
            )
        );
        assert!(io.source().is_some());
        let unrecorded = CliError::RollbackUnrecorded {
            target: "3".into(),
            environment: "dev".into(),
            source: Box::new(CliError::Refused("the state moved".into())),
        };
        assert_eq!(
            unrecorded.to_string(),
            "live now points at version 3, but recording the rollback failed: the state moved\n    \
             run `deployer rollback --env dev --to 3` again to record it"
        );
        assert!(unrecorded.source().is_some());
    }

    /// An AWS call's failure reads as `action: code: message`, as it did when
    /// it was flattened to text, and keeps the SDK's error as its source.
    #[test]
    fn a_failed_aws_call_keeps_the_sdk_error_as_its_source() {
        use aws_sdk_s3::config::http::HttpResponse;
        use aws_sdk_s3::error::{ErrorMetadata, SdkError};

        let sdk: SdkError<ErrorMetadata, HttpResponse> = SdkError::service_error(
            ErrorMetadata::builder()
                .code("AccessDenied")
                .message("not yours")
                .build(),
            HttpResponse::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(403).expect("a status"),
                aws_smithy_types::body::SdkBody::empty(),
            ),
        );
        let error = CliError::from(crate::engine::EngineError::sdk(
            "checking whether state bucket b exists",
            sdk,
        ));
        assert_eq!(
            error.to_string(),
            "checking whether state bucket b exists: AccessDenied: not yours"
        );
        assert!(
            error
                .source()
                .and_then(|source| source.downcast_ref::<SdkError<ErrorMetadata, HttpResponse>>())
                .is_some(),
            "{:?}",
            error.source()
        );
    }
}
