//! The state's lock through both backends: one holder at a time, stale locks
//! reported and force-unlocked by id, and the lock item in Terraform's layout.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use state::{Backend, StateError};

use crate::support::{local, remote, remote_with, request, with_lock};
use state::LockBackend;

/// Terraform's lock info: its seven fields, each a string, as Terraform's Go
/// `LockInfo` decodes them; besides them only the `Deployer` object, which
/// Terraform's decoder ignores.
fn assert_terraform_lock_info(json: &str, id: &str, bucket: &str) {
    let info: serde_json::Value = serde_json::from_str(json).expect("lock info is JSON");
    let object = info.as_object().expect("object");
    let mut fields: Vec<&str> = object.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "Created",
            "Deployer",
            "ID",
            "Info",
            "Operation",
            "Path",
            "Version",
            "Who"
        ]
    );
    for field in [
        "Created",
        "ID",
        "Info",
        "Operation",
        "Path",
        "Version",
        "Who",
    ] {
        assert!(object[field].is_string(), "{field} is a string in {json}");
    }
    assert_eq!(info["ID"], id);
    assert_eq!(info["Operation"], "apply");
    assert_eq!(info["Who"], "tester@ci");
    assert_eq!(
        info["Path"],
        format!("s3://{bucket}/deployer/dev/state.json")
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(info["Created"].as_str().unwrap_or_default()).is_ok()
    );
    let holder = &info["Deployer"];
    assert_eq!(holder["RunURL"], "https://github.com/o/r/actions/runs/42");
    assert_eq!(holder["Host"], "ci");
    assert_eq!(holder["Process"], 4242);
    assert_eq!(holder["LeaseSeconds"], 600);
    assert!(
        chrono::DateTime::parse_from_rfc3339(holder["Heartbeat"].as_str().unwrap_or_default())
            .is_ok()
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
    assert_terraform_lock_info(
        item["Info"].as_s().expect("Info is a string"),
        &held.info.id,
        &remote.bucket,
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

async fn lock_file(remote: &crate::support::Remote, environment: &str) -> Option<(String, String)> {
    let key = format!("deployer/{environment}/state.json.tflock");
    match remote
        .s3
        .get_object()
        .bucket(&remote.bucket)
        .key(&key)
        .send()
        .await
    {
        Ok(object) => {
            let etag = object.e_tag().unwrap_or_default().to_owned();
            let bytes = object.body.collect().await.expect("body").into_bytes();
            Some((String::from_utf8(bytes.to_vec()).expect("utf-8"), etag))
        }
        Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => None,
        Err(error) => panic!("reading {key}: {error:?}"),
    }
}

async fn lock_item(remote: &crate::support::Remote, environment: &str) -> Option<String> {
    remote
        .dynamodb
        .get_item()
        .table_name(&remote.table)
        .key(
            "LockID",
            aws_sdk_dynamodb::types::AttributeValue::S(format!(
                "{}/deployer/{environment}/state.json",
                remote.bucket
            )),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("get")
        .item
        .and_then(|item| item.get("Info").and_then(|info| info.as_s().ok()).cloned())
}

/// `lock_backend = "s3"`: the lock is `<state key>.tflock` in the bucket,
/// Terraform's JSON; the table is not touched; a second run is refused naming
/// the holder and its run URL; release deletes the file.
#[tokio::test]
async fn the_s3_lock_file_is_terraforms_and_refuses_a_second_run() {
    let remote = remote_with(LockBackend::S3).await;
    let held = remote
        .backend
        .lock("dev", &request("apply", Duration::ZERO))
        .await
        .expect("lock");
    let (json, _) = lock_file(&remote, "dev")
        .await
        .expect("the lock file exists");
    assert_terraform_lock_info(&json, &held.info.id, &remote.bucket);
    assert_eq!(lock_item(&remote, "dev").await, None, "no item in s3 mode");

    let error = remote
        .backend
        .lock("dev", &request("apply", Duration::from_millis(300)))
        .await
        .expect_err("held");
    let message = error.to_string();
    for needle in [
        "tester@ci",
        "https://github.com/o/r/actions/runs/42",
        held.info.id.as_str(),
        "last heartbeat",
    ] {
        assert!(message.contains(needle), "{needle} missing from: {message}");
    }
    remote.backend.unlock(&held).await.expect("release");
    assert_eq!(lock_file(&remote, "dev").await, None, "released");
}

/// `both`: a lock held only in the table, as a Terraform run that still uses
/// the table holds it, blocks us (and we leave no lock file behind); a lock we
/// hold is in both places, with the same JSON.
#[tokio::test]
async fn both_sees_a_table_only_lock_and_holds_its_own_in_both_places() {
    let remote = remote_with(LockBackend::Both).await;
    let terraform = r#"{"ID":"tf-1","Operation":"OperationTypeApply","Info":"","Who":"someone@laptop","Version":"1.10.5","Created":"2026-12-01T10:00:00.000000Z","Path":"x"}"#;
    remote
        .dynamodb
        .put_item()
        .table_name(&remote.table)
        .item(
            "LockID",
            aws_sdk_dynamodb::types::AttributeValue::S(format!(
                "{}/deployer/dev/state.json",
                remote.bucket
            )),
        )
        .item(
            "Info",
            aws_sdk_dynamodb::types::AttributeValue::S(terraform.into()),
        )
        .send()
        .await
        .expect("a Terraform lock");
    let error = remote
        .backend
        .lock("dev", &request("apply", Duration::from_millis(300)))
        .await
        .expect_err("blocked by Terraform's lock");
    assert!(error.to_string().contains("someone@laptop"), "{error}");
    assert_eq!(
        lock_file(&remote, "dev").await,
        None,
        "the file was given back"
    );
    // A Terraform lock has no lease: it is never taken over.
    assert!(
        !state::LockInfo::is_stale(&serde_json::from_str(terraform).expect("info")),
        "never stale"
    );
    // Nor is it seen by a run that locks only in S3.
    let s3_only = with_lock(&remote, LockBackend::S3);
    let held = s3_only
        .lock("dev", &request("apply", Duration::ZERO))
        .await
        .expect("s3 mode does not look at the table");
    s3_only.unlock(&held).await.expect("release");

    remote
        .backend
        .force_unlock("dev", "tf-1")
        .await
        .expect("force-unlock removes the table's item");
    let held = remote
        .backend
        .lock("dev", &request("apply", Duration::ZERO))
        .await
        .expect("free");
    let (json, _) = lock_file(&remote, "dev").await.expect("file");
    assert_eq!(
        lock_item(&remote, "dev").await.as_deref(),
        Some(json.as_str())
    );
    let found = remote.backend.locks("dev").await.expect("locks");
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|lock| lock.info.id == held.info.id));
    remote.backend.unlock(&held).await.expect("release");
    assert_eq!(lock_file(&remote, "dev").await, None);
    assert_eq!(lock_item(&remote, "dev").await, None);
}

/// The emulator honours S3's conditional writes, which the lock file rests on:
/// `If-None-Match: *` refuses a second create, `If-Match` refuses a put or a
/// delete with another ETag.
#[tokio::test]
async fn the_emulator_honours_conditional_puts_and_deletes() {
    let remote = remote_with(LockBackend::S3).await;
    let put = |body: &'static str| {
        remote
            .s3
            .put_object()
            .bucket(&remote.bucket)
            .key("k.tflock")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(
                body.as_bytes(),
            ))
    };
    fn status<E>(
        error: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> u16 {
        error.raw_response().map_or(0, |raw| raw.status().as_u16())
    }
    let first = put("one").if_none_match("*").send().await.expect("created");
    let second = put("two")
        .if_none_match("*")
        .send()
        .await
        .expect_err("exists");
    assert_eq!(status(&second), 412);
    let stale = put("three")
        .if_match("\"0000\"")
        .send()
        .await
        .expect_err("wrong ETag");
    assert_eq!(status(&stale), 412);
    let renewed = put("four")
        .if_match(first.e_tag().expect("etag"))
        .send()
        .await
        .expect("right ETag");
    let delete = |etag: &str| {
        remote
            .s3
            .delete_object()
            .bucket(&remote.bucket)
            .key("k.tflock")
            .if_match(etag)
            .send()
    };
    let refused = delete(first.e_tag().expect("etag"))
        .await
        .expect_err("old ETag");
    assert_eq!(status(&refused), 412);
    delete(renewed.e_tag().expect("etag"))
        .await
        .expect("deleted");
}

/// A lease kept alive by renewals is never taken over; one that ran out is,
/// by exactly one of two racing runs, conditioned on the stale version; the
/// old holder's next renewal finds it lost; the takeover is in the history.
async fn stale_lock_is_taken_over_once(remote: &crate::support::Remote, backend: &Backend) {
    let mut short = request("apply", Duration::ZERO);
    short.lease = Duration::from_secs(1);
    let mut alive = backend.lock("dev", &short).await.expect("lock");
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        backend.renew(&mut alive).await.expect("renewed");
    }
    let refused = backend
        .lock("dev", &request("apply", Duration::ZERO))
        .await
        .expect_err("a renewed lease holds");
    assert!(
        matches!(refused, StateError::LockHeld { .. }),
        "{refused:?}"
    );

    // The holder stops renewing (killed); its lease runs out.
    backend
        .write("dev", &crate::support::sample("dev"), None)
        .await
        .expect("some state");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let backend = backend.clone();
            tokio::spawn(
                async move { backend.lock("dev", &request("apply", Duration::ZERO)).await },
            )
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        match racer.await.expect("task") {
            Ok(held) => winners.push(held),
            Err(StateError::LockHeld { .. }) => {}
            Err(error) => panic!("{error:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "one run takes the stale lock over");
    let winner = winners.remove(0);
    assert_eq!(
        winner.took_over.as_ref().map(|stale| stale.id.as_str()),
        Some(alive.info.id.as_str())
    );
    let lost = backend.renew(&mut alive).await.expect_err("lost");
    assert!(matches!(lost, StateError::LockLost { .. }), "{lost:?}");
    assert!(lost.to_string().contains(&winner.info.id), "{lost}");

    backend.record_takeover(&winner).await.expect("recorded");
    let history = backend.history("dev", 5).await.expect("history");
    let note = history[0].note.clone().unwrap_or_default();
    assert!(
        note.contains(&alive.info.id) && note.contains("taken over"),
        "{history:?}"
    );
    backend.unlock(&winner).await.expect("release");
    backend.remove("dev").await.expect("cleanup");
    let _ = remote;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_lease_is_taken_over_by_one_run_in_every_lock_backend() {
    let remote = remote_with(LockBackend::Both).await;
    for lock_backend in [LockBackend::S3, LockBackend::DynamoDb, LockBackend::Both] {
        stale_lock_is_taken_over_once(&remote, &with_lock(&remote, lock_backend)).await;
    }
}
