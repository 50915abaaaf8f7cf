//! The state's lock through both backends: one holder at a time, stale locks
//! reported and force-unlocked by id, and the lock item in Terraform's layout.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use state::{Backend, StateError};

use crate::support::{local, remote, request};

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
