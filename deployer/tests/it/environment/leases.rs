//! The S3 lock file and its lease: a second run is refused naming the holder
//! and its GitHub run; a run killed with SIGKILL leaves a lock its lease
//! clears, taken over by the next run; SIGTERM releases the lock within 5 s;
//! a holder that cannot renew its lease stops; `lock status` shows it all.

use std::time::{Duration, Instant};

use super::*;

const RUN_URL: &str = "https://github.com/o/r/actions/runs/99";

/// `deployer args` started without a terminal, as in a GitHub Actions run.
fn spawn(account: &Account, args: &[&str]) -> std::process::Child {
    support::deployer_command(account.dir.path(), account.endpoint())
        .env("DEPLOYER_SKIP_HEALTH_CHECK", "true")
        .env("DEPLOYER_SKIP_PRE_TRAFFIC_CHECK", "true")
        .envs(IN_ACTIONS)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the deployer")
}

/// The environment of a GitHub Actions run, whose URL is [`RUN_URL`].
const IN_ACTIONS: [(&str, &str); 3] = [
    ("GITHUB_SERVER_URL", "https://github.com"),
    ("GITHUB_REPOSITORY", "o/r"),
    ("GITHUB_RUN_ID", "99"),
];

/// `deployer args` on a terminal, in a GitHub Actions run.
fn spawn_on_terminal(account: &Account, args: &str) -> std::process::Child {
    support::spawn_on_terminal(account, args, &IN_ACTIONS)
}

/// The lock file of `environment`'s state, when someone holds it.
async fn lock_file(account: &Account, environment: &str) -> Option<serde_json::Value> {
    let object = account
        .s3
        .get_object()
        .bucket(settings().state_bucket)
        .key(format!("deployer/{environment}/state.json.tflock"))
        .send()
        .await
        .ok()?;
    let bytes = object.body.collect().await.ok()?.into_bytes();
    serde_json::from_slice(&bytes).ok()
}

/// Wait (up to 60 s) until someone holds `environment`'s lock file.
async fn until_locked(account: &Account, environment: &str) -> serde_json::Value {
    for _ in 0..3000 {
        if let Some(info) = lock_file(account, environment).await {
            return info;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("nobody took the lock of {environment}");
}

/// How long until the lock file of `environment` is gone (up to 30 s).
async fn until_unlocked(account: &Account, environment: &str) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if lock_file(account, environment).await.is_none() {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the lock of {environment} was never released");
}

/// SIGTERM to `run`, which holds `dev`'s lock: the lock is gone within 5 s and
/// the run ends by the signal (so a calling shell script stops too).
async fn terminated_releasing_the_lock(
    account: &Account,
    run: std::process::Child,
) -> std::process::Output {
    signal(&run, "TERM");
    let released = until_unlocked(account, "dev").await;
    assert!(
        released <= Duration::from_secs(5),
        "released after {released:?}"
    );
    let output = run.wait_with_output().expect("terminated run");
    support::assert_signalled(&output, support::SIGTERM);
    output
}

fn apply(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = vec![
        "--var",
        "lock_backend=s3",
        "apply",
        "--env",
        "dev",
        "--auto-approve",
        "--artifact",
        "fn.zip",
    ];
    args.extend_from_slice(extra);
    args
}

fn signal(child: &std::process::Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{name}");
}

#[tokio::test]
async fn with_the_s3_lock_a_second_apply_is_refused_naming_the_holder_and_its_run() {
    use std::io::Write;
    let account = Account::bootstrapped().await;
    // The first holds the lock at its prompt.
    let mut first = spawn_on_terminal(
        &account,
        "--var lock_backend=s3 apply --env dev --artifact fn.zip",
    );
    let held = until_locked(&account, "dev").await;
    assert_eq!(held["Deployer"]["RunURL"], RUN_URL, "{held}");
    let second = account.deployer(&apply(&[]));
    first
        .stdin
        .take()
        .expect("keyboard")
        .write_all(b"yes\n")
        .expect("answer yes");
    let first = first.wait_with_output().expect("first apply");
    assert_exit(&first, 0);
    assert_ne!(second.status.code(), Some(0), "{}", text(&second));
    for needle in [
        "the state is locked",
        RUN_URL,
        "deployer force-unlock --env dev",
    ] {
        assert!(
            text(&second).contains(needle),
            "{needle} missing: {}",
            text(&second)
        );
    }
    assert_eq!(lock_file(&account, "dev").await, None, "released");
}

#[tokio::test]
async fn a_killed_apply_leaves_a_lock_its_lease_clears_and_the_next_apply_takes_over() {
    let account = Account::bootstrapped().await;
    assert_exit(&account.deployer(&apply(&[])), 0);
    // A change (more memory) that the killed run was making.
    let mut killed = spawn(
        &account,
        &apply(&["--var", "lock_lease=3s", "--var", "memory_mb=512"]),
    );
    let held = until_locked(&account, "dev").await;
    killed.kill().expect("SIGKILL");
    let _ = killed.wait();
    assert!(lock_file(&account, "dev").await.is_some(), "left behind");

    let status = account.deployer(&[
        "--var",
        "lock_backend=s3",
        "lock",
        "status",
        "--env",
        "dev",
        "--json",
    ]);
    assert_exit(&status, 0);
    let status: Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(status["locked"], true);
    assert_eq!(status["locks"][0]["run_url"], RUN_URL);
    assert_eq!(status["locks"][0]["id"], held["ID"]);
    assert_eq!(status["locks"][0]["lease_seconds"], 3);

    // Waiting longer than the lease, the next run takes the lock over: no
    // force-unlock.
    let next = account.deployer(&apply(&[
        "--var",
        "lock_lease=3s",
        "--var",
        "memory_mb=512",
        "--lock-timeout",
        "30s",
    ]));
    assert_exit(&next, 0);
    let id = held["ID"].as_str().expect("ID");
    assert!(
        text(&next).contains(&format!("took over the stale lock {id}")),
        "{}",
        text(&next)
    );
    assert_eq!(lock_file(&account, "dev").await, None, "released");
    let again = account.deployer(&apply(&["--var", "memory_mb=512"]));
    assert_exit(&again, 0);
    assert!(text(&again).contains("No changes."), "{}", text(&again));
    // One of each resource.
    let apis = aws_sdk_apigatewayv2::Client::new(&account.config)
        .get_apis()
        .send()
        .await
        .expect("apis");
    let dev_apis = apis
        .items()
        .iter()
        .filter(|api| api.name() == Some(names("dev").http_api.as_str()))
        .count();
    assert_eq!(dev_apis, 1, "one HTTP API");
    let history = account.deployer(&["state", "history", "--env", "dev", "--json"]);
    assert!(
        text(&history).contains("taken over"),
        "the takeover is in the history: {}",
        text(&history)
    );
}

#[tokio::test]
async fn sigterm_mid_apply_releases_the_lock_within_5_s_and_a_rerun_converges() {
    let account = Account::bootstrapped().await;
    // Lambda keeps a new function Pending for 2 s: the apply is mid-way for a while.
    emulator::configure_faults(
        account.endpoint(),
        &serde_json::json!({"models": {"lambda_update_s": 2}}),
    );
    let run = spawn(&account, &apply(&[]));
    until_locked(&account, "dev").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let output = terminated_releasing_the_lock(&account, run).await;
    assert!(text(&output).contains("interrupted"), "{}", text(&output));
    assert!(
        !text(&output).contains("Apply complete"),
        "stopped mid-way: {}",
        text(&output)
    );

    emulator::clear_faults(account.endpoint());
    assert_exit(&account.deployer(&apply(&[])), 0);
    let again = account.deployer(&apply(&[]));
    assert_exit(&again, 0);
    assert!(text(&again).contains("No changes."), "{}", text(&again));
}

/// SIGTERM to a restore waiting for its table (the restore goes on in AWS;
/// DynamoDB keeps a restored table CREATING for minutes per GB): the lock is
/// gone within 5 s, the run ends by the signal, and the next apply adopts the
/// restored table with every item and converges.
#[tokio::test]
async fn sigterm_to_a_restore_waiting_on_its_backup_releases_the_lock_within_5_s() {
    use super::destroy::put_users;
    let account = Account::bootstrapped().await;
    assert_exit(&account.deployer(&apply(&[])), 0);
    let table = names("dev").table;
    put_users(&account.config, &table, 12).await;
    let destroyed = account.deployer(&[
        "--var",
        "lock_backend=s3",
        "destroy",
        "--env",
        "dev",
        "--auto-approve",
    ]);
    assert_exit(&destroyed, 0);
    let arn = text(&destroyed)
        .lines()
        .find_map(|line| line.strip_prefix(&format!("Final backup of {}: ", names("dev").table)))
        .expect("the backup's ARN is printed")
        .trim()
        .to_owned();

    emulator::configure_faults(
        account.endpoint(),
        &serde_json::json!({"models": {"table_restoring_s": 600}}),
    );
    let run = spawn(
        &account,
        &[
            "--var",
            "lock_backend=s3",
            "restore",
            "--env",
            "dev",
            "--backup",
            &arn,
        ],
    );
    until_locked(&account, "dev").await;
    // Waiting: the restored table exists, CREATING.
    let dynamodb = aws_sdk_dynamodb::Client::new(&account.config);
    let mut status = None;
    for _ in 0..600 {
        status = dynamodb
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .ok()
            .and_then(|described| described.table()?.table_status().cloned());
        if status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        status.as_ref().map(|status| status.as_str()),
        Some("CREATING"),
        "the restore is under way"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let output = terminated_releasing_the_lock(&account, run).await;
    assert!(
        text(&output).contains("goes on in AWS"),
        "says the restore goes on: {}",
        text(&output)
    );

    emulator::clear_faults(account.endpoint());
    assert_exit(&account.deployer(&apply(&[])), 0);
    // Every user is back (the apply adds the class's rank buckets beside them).
    let scan = dynamodb
        .scan()
        .table_name(&table)
        .send()
        .await
        .expect("scan the restored table");
    let users = scan
        .items()
        .iter()
        .filter(|item| {
            item.get("username")
                .and_then(|name| name.as_s().ok())
                .is_some_and(|name| name.starts_with("student-"))
        })
        .count();
    assert_eq!(users, 12);
    let again = account.deployer(&apply(&[]));
    assert_exit(&again, 0);
    assert!(text(&again).contains("No changes."), "{}", text(&again));
}

/// A holder whose heartbeats fail (its lock file removed under it, as a
/// takeover would) stops before its next change and leaves the lock alone.
#[tokio::test]
async fn a_holder_that_cannot_renew_its_lease_stops_before_its_next_change() {
    let account = Account::bootstrapped().await;
    // At its prompt, holding the lock.
    let mut run = spawn_on_terminal(
        &account,
        "--var lock_backend=s3 --var lock_lease=1s apply --env dev --artifact fn.zip",
    );
    // Kept open: the run waits at its prompt until it stops by itself.
    let keyboard = run.stdin.take();
    until_locked(&account, "dev").await;
    account
        .s3
        .delete_object()
        .bucket(settings().state_bucket)
        .key("deployer/dev/state.json.tflock")
        .send()
        .await
        .expect("remove the lock file");
    let output = run.wait_with_output().expect("apply");
    drop(keyboard);
    assert_ne!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains("stopped before the next change"),
        "{}",
        text(&output)
    );
    assert!(text(&output).contains("lost the lock"), "{}", text(&output));
    assert_eq!(account.api_id("dev").await, None, "nothing was changed");
    // A rerun converges.
    assert_exit(&account.deployer(&apply(&[])), 0);
}
