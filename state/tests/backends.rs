//! The state backends and locks against the emulator (remote) and a temp folder (local).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_s3::types::{BucketVersioningStatus, ServerSideEncryption, VersioningConfiguration};
use state::{Backend, DynamoDbLock, LocalBackend, LockRequest, S3Store, StateDocument, StateError};

struct Remote {
    backend: Backend,
    s3: aws_sdk_s3::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    bucket: String,
    table: String,
}

async fn remote() -> Remote {
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
    let backend = Backend::Remote {
        store: S3Store::new(s3.clone(), &bucket),
        lock: DynamoDbLock::new(dynamodb.clone(), &table),
    };
    Remote {
        backend,
        s3,
        dynamodb,
        bucket,
        table,
    }
}

fn local() -> (Backend, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    (
        Backend::Local(LocalBackend::new(dir.path().join(".deployer"))),
        dir,
    )
}

fn request(operation: &str, timeout: Duration) -> LockRequest {
    LockRequest {
        operation: operation.into(),
        info: format!("deployer {operation} --env dev"),
        who: "tester@ci".into(),
        version: "0.1.0".into(),
        timeout,
        force_unlock_command: "deployer force-unlock --env dev".into(),
    }
}

fn sample(environment: &str) -> StateDocument {
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
        },
    );
    document.outputs.insert("lambda_name".into(), "fn".into());
    document
}

async fn round_trip(backend: &Backend) {
    assert!(backend.read("dev").await.expect("read").is_none());
    let first = backend
        .write("dev", &sample("dev"), None)
        .await
        .expect("first write");
    assert_eq!(first.document.serial, 1);
    let read = backend.read("dev").await.expect("read").expect("stored");
    assert_eq!(read.document, first.document);
    assert_eq!(read.document.resources, sample("dev").resources);
    assert_eq!(read.document.outputs, sample("dev").outputs);

    let mut changed = read.document.clone();
    changed
        .outputs
        .insert("api_base_url".into(), "https://x/dev".into());
    let second = backend
        .write("dev", &changed, Some(&read))
        .await
        .expect("second write");
    assert_eq!(second.document.serial, 2);
    assert_eq!(second.document.lineage, first.document.lineage);
    assert_eq!(
        backend
            .read("dev")
            .await
            .expect("read")
            .expect("stored")
            .document,
        second.document
    );
    assert_eq!(backend.environments().await.expect("list"), ["dev"]);
}

#[tokio::test]
async fn documents_round_trip_through_both_backends() {
    let (backend, _dir) = local();
    round_trip(&backend).await;
    let remote = remote().await;
    round_trip(&remote.backend).await;

    let head = remote
        .s3
        .head_object()
        .bucket(&remote.bucket)
        .key(state::state_key("dev"))
        .send()
        .await
        .expect("head");
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    let history = remote.backend.history("dev", 10).await.expect("history");
    let serials: Vec<Option<u64>> = history.iter().map(|entry| entry.serial).collect();
    assert_eq!(serials, [Some(2), Some(1)], "S3 versions, newest first");
    assert!(history[0].is_latest && !history[1].is_latest);
}

async fn lost_update_is_refused(backend: &Backend) {
    let base = backend
        .write("stage", &sample("stage"), None)
        .await
        .expect("base");
    let reader_a = backend.read("stage").await.expect("read").expect("stored");
    let reader_b = backend.read("stage").await.expect("read").expect("stored");
    assert_eq!(reader_a.document.serial, base.document.serial);

    let mut from_a = reader_a.document.clone();
    from_a.outputs.insert("writer".into(), "a".into());
    backend
        .write("stage", &from_a, Some(&reader_a))
        .await
        .expect("a writes");

    let mut from_b = reader_b.document.clone();
    from_b.outputs.insert("writer".into(), "b".into());
    let error = backend
        .write("stage", &from_b, Some(&reader_b))
        .await
        .expect_err("b is stale");
    assert!(matches!(error, StateError::Stale { .. }), "{error:?}");
    assert!(error.to_string().contains("serial 2"), "{error}");

    let kept = backend
        .read("stage")
        .await
        .expect("read")
        .expect("stored")
        .document;
    assert_eq!(kept.outputs["writer"], "a", "nothing lost");
    assert_eq!(kept.serial, 2);

    // A first write when someone else already created the state is refused too.
    let error = backend
        .write("stage", &sample("stage"), None)
        .await
        .expect_err("exists");
    assert!(matches!(error, StateError::Stale { .. }), "{error:?}");
}

#[tokio::test]
async fn a_second_writer_of_the_same_serial_is_refused() {
    let (backend, _dir) = local();
    lost_update_is_refused(&backend).await;
    lost_update_is_refused(&remote().await.backend).await;
}

#[tokio::test]
async fn corrupt_and_future_states_are_refused_and_left_untouched() {
    let remote = remote().await;
    let key = state::state_key("dev");
    for (bytes, newer) in [
        (&b"{\"format_version\": 1, \"lineage\""[..], false),
        (b"not json at all", false),
        (b"{\"format_version\": 7, \"lineage\": \"x\"}", true),
    ] {
        remote
            .s3
            .put_object()
            .bucket(&remote.bucket)
            .key(&key)
            .body(bytes.to_vec().into())
            .send()
            .await
            .expect("plant");
        let error = remote.backend.read("dev").await.expect_err("refused");
        if newer {
            assert!(
                matches!(error, StateError::UnsupportedFormat { found: 7, .. }),
                "{error:?}"
            );
            assert!(error.to_string().contains("upgrade"), "{error}");
        } else {
            assert!(matches!(error, StateError::Corrupt { .. }), "{error:?}");
        }
        assert!(
            error
                .to_string()
                .contains(&format!("s3://{}/{key}", remote.bucket)),
            "{error}"
        );
        let stored = remote
            .s3
            .get_object()
            .bucket(&remote.bucket)
            .key(&key)
            .send()
            .await
            .expect("get")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        assert_eq!(&stored[..], bytes, "untouched");
    }

    let (backend, dir) = local();
    let path = dir.path().join(".deployer/dev.json");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, b"{\"format_version\": 1, \"serial\": 3").expect("plant");
    let error = backend.read("dev").await.expect_err("refused");
    assert!(matches!(error, StateError::Corrupt { .. }), "{error:?}");
    assert_eq!(
        std::fs::read(&path).expect("read"),
        b"{\"format_version\": 1, \"serial\": 3"
    );
}

async fn ten_racers(backend: Arc<Backend>) {
    let holders = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (backend, holders, most) = (backend.clone(), holders.clone(), most.clone());
            tokio::spawn(async move {
                let held = backend
                    .lock("race", &request("apply", Duration::from_secs(120)))
                    .await
                    .expect("eventually acquired");
                let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                holders.fetch_sub(1, Ordering::SeqCst);
                backend.unlock(&held).await.expect("release");
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(most.load(Ordering::SeqCst), 1, "never two holders at once");

    // Without waiting, nobody gets a held lock.
    let held = backend
        .lock("race", &request("apply", Duration::ZERO))
        .await
        .expect("free now");
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let backend = backend.clone();
            tokio::spawn(
                async move { backend.lock("race", &request("plan", Duration::ZERO)).await },
            )
        })
        .collect();
    for task in tasks {
        let result = task.await.expect("task");
        assert!(
            matches!(result, Err(StateError::LockHeld { .. })),
            "{result:?}"
        );
    }
    backend.unlock(&held).await.expect("release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_tasks_racing_for_a_lock_hold_it_one_at_a_time() {
    let (backend, _dir) = local();
    ten_racers(Arc::new(backend)).await;
    ten_racers(Arc::new(remote().await.backend)).await;
}

async fn stale_lock_is_reported_and_force_unlocked(backend: &Backend) {
    let dead = backend
        .lock("dev", &request("apply", Duration::ZERO))
        .await
        .expect("lock");
    // The holder dies without releasing. The next run waits, then reports it.
    let started = std::time::Instant::now();
    let error = backend
        .lock("dev", &request("plan", Duration::from_millis(400)))
        .await
        .expect_err("held");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "waited for the timeout"
    );
    let StateError::LockHeld {
        info, force_unlock, ..
    } = &error
    else {
        panic!("expected LockHeld, got {error:?}");
    };
    assert_eq!(info.who, "tester@ci");
    assert_eq!(info.operation, "apply");
    assert_eq!(info.id, dead.info.id);
    assert_eq!(
        force_unlock,
        &format!("deployer force-unlock --env dev {}", dead.info.id)
    );
    let message = error.to_string();
    for needle in [
        "tester@ci",
        "apply",
        dead.info.created.as_str(),
        force_unlock.as_str(),
    ] {
        assert!(message.contains(needle), "{needle} missing from: {message}");
    }

    let wrong = backend
        .force_unlock("dev", "not-the-id")
        .await
        .expect_err("refused");
    assert!(
        matches!(wrong, StateError::LockIdMismatch { .. }),
        "{wrong:?}"
    );
    assert!(
        backend.current_lock("dev").await.expect("read").is_some(),
        "still locked"
    );

    backend
        .force_unlock("dev", &dead.info.id)
        .await
        .expect("unlocked");
    assert!(backend.current_lock("dev").await.expect("read").is_none());
    let again = backend
        .force_unlock("dev", &dead.info.id)
        .await
        .expect_err("nothing to unlock");
    assert!(matches!(again, StateError::NotLocked { .. }), "{again:?}");
    let next = backend
        .lock("dev", &request("apply", Duration::ZERO))
        .await
        .expect("free");
    backend.unlock(&next).await.expect("release");
}

#[tokio::test]
async fn a_stale_lock_blocks_with_its_holder_until_force_unlocked_by_id() {
    let (backend, _dir) = local();
    stale_lock_is_reported_and_force_unlocked(&backend).await;
    stale_lock_is_reported_and_force_unlocked(&remote().await.backend).await;
}

#[tokio::test]
async fn the_lock_item_has_terraforms_layout() {
    let remote = remote().await;
    let held = remote
        .backend
        .lock("dev", &request("apply", Duration::ZERO))
        .await
        .expect("lock");
    let lock_id = format!("{}/deployer/dev/state.json", remote.bucket);
    assert_eq!(held.lock_id, lock_id);
    let item = remote
        .dynamodb
        .get_item()
        .table_name(&remote.table)
        .key(
            "LockID",
            aws_sdk_dynamodb::types::AttributeValue::S(lock_id.clone()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("get")
        .item
        .expect("lock item exists");
    let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["Info", "LockID"]);
    let info: serde_json::Value =
        serde_json::from_str(item["Info"].as_s().expect("Info is a string")).expect("Info is JSON");
    let object = info.as_object().expect("object");
    let mut fields: Vec<&str> = object.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "Created",
            "ID",
            "Info",
            "Operation",
            "Path",
            "Version",
            "Who"
        ]
    );
    assert_eq!(info["ID"], held.info.id.as_str());
    assert_eq!(info["Operation"], "apply");
    assert_eq!(info["Who"], "tester@ci");
    assert_eq!(
        info["Path"],
        format!("s3://{}/deployer/dev/state.json", remote.bucket)
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(info["Created"].as_str().unwrap_or_default()).is_ok()
    );
    remote.backend.unlock(&held).await.expect("release");
    let gone = remote
        .dynamodb
        .get_item()
        .table_name(&remote.table)
        .key(
            "LockID",
            aws_sdk_dynamodb::types::AttributeValue::S(lock_id),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("get");
    assert!(gone.item.is_none(), "released");
}

/// A document beside an environment's state (a migration's checkpoint): read
/// back, replaced, removed, on both backends; encrypted in the bucket; never
/// taken for an environment's state by the listing.
#[tokio::test]
async fn documents_beside_the_state_round_trip_and_are_not_environments() {
    let remote = remote().await;
    let (local, _dir) = local();
    for backend in [&remote.backend, &local] {
        assert_eq!(
            backend
                .read_beside("dev", "checkpoint.json")
                .await
                .expect("read"),
            None
        );
        backend
            .write_beside("dev", "checkpoint.json", b"{\"one\":1}".to_vec())
            .await
            .expect("write");
        backend
            .write_beside("dev", "checkpoint.json", b"{\"two\":2}".to_vec())
            .await
            .expect("replace");
        assert_eq!(
            backend
                .read_beside("dev", "checkpoint.json")
                .await
                .expect("read"),
            Some(b"{\"two\":2}".to_vec())
        );
        assert_eq!(
            backend.environments().await.expect("list"),
            Vec::<String>::new(),
            "{}",
            backend.location_beside("dev", "checkpoint.json")
        );
        backend
            .remove_beside("dev", "checkpoint.json")
            .await
            .expect("remove");
        backend
            .remove_beside("dev", "checkpoint.json")
            .await
            .expect("remove again");
        assert_eq!(
            backend
                .read_beside("dev", "checkpoint.json")
                .await
                .expect("read"),
            None
        );
    }
    assert_eq!(
        remote.backend.location_beside("dev", "checkpoint.json"),
        format!("s3://{}/deployer/dev/checkpoint.json", remote.bucket)
    );
    remote
        .backend
        .write_beside("dev", "checkpoint.json", b"{}".to_vec())
        .await
        .expect("write");
    let head = remote
        .s3
        .head_object()
        .bucket(&remote.bucket)
        .key("deployer/dev/checkpoint.json")
        .send()
        .await
        .expect("head");
    assert_eq!(
        head.server_side_encryption().map(|sse| sse.as_str()),
        Some("AES256")
    );
}
