//! AWS clients from the standard configuration chain.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Load the SDK configuration for `region` (credentials, endpoint and the rest
/// from the standard chain, including `AWS_ENDPOINT_URL`).
pub async fn load(region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .load()
        .await
}

/// An S3 client; path-style addressing when a custom endpoint is set (emulators,
/// VPC endpoints), virtual-hosted otherwise.
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    let custom_endpoint = config.endpoint_url().is_some();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(custom_endpoint)
            .build(),
    )
}
