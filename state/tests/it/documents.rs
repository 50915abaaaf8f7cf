//! State documents through both backends: round trips, lost updates refused,
//! corrupt and future states left untouched, documents kept beside the state.

use aws_sdk_s3::types::ServerSideEncryption;
use state::{Backend, StateError};

use crate::support::{local, remote, sample};

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
