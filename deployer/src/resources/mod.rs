//! One file per resource kind. Each reads its resource by deterministic name,
//! describes the attributes the configuration controls, and creates, updates or
//! deletes it with the AWS SDK. Every call site names what it was doing.

pub mod cloudwatch_alarm;
pub mod cognito_user_pool;
pub mod dynamodb_lock_table;
pub mod dynamodb_scores_table;
pub mod dynamodb_settings;
pub mod http_api;
pub mod iam_managed_policy;
pub mod iam_role;
pub mod lambda_alias;
pub mod lambda_function;
pub mod lambda_layer;
pub mod lambda_permission;
pub mod log_group;
pub mod oidc_provider;
pub mod s3_state_bucket;
pub mod tags;

use crate::engine::Doing;
use crate::engine::EngineError;

/// AWS clients and the account the stack lives in.
#[derive(Debug, Clone)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub iam: aws_sdk_iam::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigateway: aws_sdk_apigatewayv2::Client,
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
    pub region: String,
    pub account_id: String,
}

impl Clients {
    /// Clients for `config`, and the account id from STS GetCallerIdentity
    /// (which also proves the credentials work before anything is planned).
    pub async fn connect(
        config: &aws_config::SdkConfig,
        region: &str,
    ) -> Result<Self, EngineError> {
        let identity = crate::aws::sts(config)
            .get_caller_identity()
            .send()
            .await
            .doing(|| "asking STS which AWS account these credentials belong to");
        let identity = match identity {
            Ok(identity) => identity,
            Err(error) => {
                return Err(crate::aws::missing_credentials(config)
                    .await
                    .unwrap_or(error));
            }
        };
        Ok(Self {
            s3: crate::aws::s3(config),
            dynamodb: crate::aws::dynamodb(config),
            iam: crate::aws::iam(config),
            logs: crate::aws::logs(config),
            cloudwatch: crate::aws::cloudwatch(config),
            lambda: crate::aws::lambda(config),
            apigateway: crate::aws::apigateway(config),
            cognito: crate::aws::cognito(config),
            region: region.to_owned(),
            account_id: identity.account().unwrap_or_default().to_owned(),
        })
    }
}

#[cfg(test)]
impl Clients {
    /// Clients that are never called, for testing what resources desire.
    pub fn offline(region: &str) -> Self {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .build();
        Self {
            s3: crate::aws::s3(&config),
            dynamodb: crate::aws::dynamodb(&config),
            iam: crate::aws::iam(&config),
            logs: crate::aws::logs(&config),
            cloudwatch: crate::aws::cloudwatch(&config),
            lambda: crate::aws::lambda(&config),
            apigateway: crate::aws::apigateway(&config),
            cognito: crate::aws::cognito(&config),
            region: region.to_owned(),
            account_id: "123456789012".to_owned(),
        }
    }
}
