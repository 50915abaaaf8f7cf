//! Shared by the state crate's tests: both backends (a temp folder, and S3 with
//! a DynamoDB lock table on the emulator), lock requests and sample documents.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use state::{
    Backend, DynamoDbLock, LocalBackend, LockBackend, LockRequest, RemoteLock, S3Lock, S3Store,
    StateDocument,
};

pub struct Remote {
    pub backend: Backend,
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub bucket: String,
    pub table: String,
}

/// A bucket and a lock table, the lock kept in both (as while moving off the table).
pub async fn remote() -> Remote {
    remote_with(LockBackend::Both).await
}

/// The same backend's lock kept as `lock_backend` says.
pub fn with_lock(remote: &Remote, lock_backend: LockBackend) -> Backend {
    Backend::Remote {
        store: S3Store::new(remote.s3.clone(), &remote.bucket),
        lock: RemoteLock {
            backend: lock_backend,
            s3: S3Lock::new(remote.s3.clone(), &remote.bucket),
            dynamodb: DynamoDbLock::new(remote.dynamodb.clone(), &remote.table),
        },
    }
}

pub async fn remote_with(lock_backend: LockBackend) -> Remote {
    let config = emulator::sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let bucket = emulator::unique_name("state-test").to_lowercase();
    let table = emulator::unique_name("locks-test");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    s3.put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("enable versioning");
    dynamodb
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("LockID")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("LockID")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .send()
        .await
        .expect("create lock table");
    let mut remote = Remote {
        backend: Backend::Local(LocalBackend::new("unused")),
        s3,
        dynamodb,
        bucket,
        table,
    };
    remote.backend = with_lock(&remote, lock_backend);
    remote
}

pub fn local() -> (Backend, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    (
        Backend::Local(LocalBackend::new(dir.path().join(".deployer"))),
        dir,
    )
}

pub fn request(operation: &str, timeout: Duration) -> LockRequest {
    LockRequest {
        operation: operation.into(),
        info: format!("deployer {operation} --env dev"),
        who: "tester@ci".into(),
        version: "0.1.0".into(),
        timeout,
        force_unlock_command: "deployer force-unlock --env dev".into(),
        lease: Duration::from_secs(600),
        run_url: Some("https://github.com/o/r/actions/runs/42".into()),
        host: "ci".into(),
        process: 4242,
    }
}

pub fn sample(environment: &str) -> StateDocument {
    let mut document = StateDocument::new(environment, "0.1.0");
    document.resources.insert(
        "dynamodb_table.scores".into(),
        state::ResourceState {
            kind: "dynamodb_table".into(),
            name: format!("PlaygroundScores-{environment}"),
            id: format!("PlaygroundScores-{environment}"),
            arn: None,
            origin: state::Origin::Created,
            attributes: Default::default(),
            observed: None,
        },
    );
    document.outputs.insert("lambda_name".into(), "fn".into());
    document
}
