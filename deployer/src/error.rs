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
    #[error("{action}: {detail}")]
    Aws { action: String, detail: String },
    #[error("{0}")]
    Usage(String),
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
    pub fn state(context: impl Into<String>) -> impl FnOnce(state::StateError) -> Self {
        let context = context.into();
        move |source| Self::State { context, source }
    }

    /// A failed SDK call, described in one line (code and message, or the causes).
    pub fn aws<E>(
        action: impl Into<String>,
        error: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Self
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        Self::Aws {
            action: action.into(),
            detail: state::sdk_error::describe(error),
        }
    }
}
