//! The state's lock and the terminal: an apply that waited plans again under the lock,
//! Ctrl-C releases it, destroying prod needs its name typed.

use super::*;

/// Run `deployer args` on a pseudo-terminal (util-linux `script`), typing `answer`.
fn deployer_on_terminal(account: &Account, args: &str, answer: &str) -> Output {
    use std::io::Write;
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_deployer"));
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(account.dir.path())
        .envs(emulator::aws_env(account.emulator.endpoint()))
        .env_remove("DEPLOYER_ENV")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs the deployer on a terminal");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(answer.as_bytes()).expect("type the answer");
    }
    child.wait_with_output().expect("wait")
}

/// The lock file of `environment`'s state (its lock info JSON), when someone
/// holds it: a new bootstrap has no lock table, so locks are the `.tflock` file.
async fn lock_item(account: &Account, environment: &str) -> Option<String> {
    let got = account
        .s3
        .get_object()
        .bucket(settings().state_bucket)
        .key(format!("deployer/{environment}/state.json.tflock"))
        .send()
        .await;
    match got {
        Ok(object) => {
            let body = object.body.collect().await.expect("lock file").into_bytes();
            Some(String::from_utf8(body.to_vec()).expect("lock file text"))
        }
        Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => None,
        Err(error) => panic!("reading the lock file: {error:?}"),
    }
}

/// Wait (up to 30 s) until someone holds `environment`'s lock.
async fn until_locked(account: &Account, environment: &str) -> String {
    for _ in 0..600 {
        if let Some(info) = lock_item(account, environment).await {
            return info;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("nobody took the lock of {environment}");
}

#[tokio::test]
async fn an_apply_that_waited_for_the_lock_plans_again_under_it_and_finds_nothing_to_do() {
    use std::io::Write;
    let account = Account::bootstrapped().await;
    emulator::clear_served_requests(account.emulator.endpoint());
    // The first apply takes the lock, then waits at its prompt.
    let mut first = support::spawn_on_terminal(&account, "apply --env dev --artifact fn.zip", &[]);
    let held = until_locked(&account, "dev").await;
    assert!(held.contains("deployer apply --env dev"), "{held}");
    // The second plans (the API is still missing), then waits for the lock.
    let endpoint = account.emulator.endpoint().to_owned();
    let dir = account.dir.path().to_path_buf();
    let second = std::thread::spawn(move || {
        support::run_deployer(
            &dir,
            &endpoint,
            &[
                "apply",
                "--env",
                "dev",
                "--auto-approve",
                "--artifact",
                "fn.zip",
                "--lock-timeout",
                "2m",
            ],
        )
    });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    first
        .stdin
        .take()
        .expect("keyboard")
        .write_all(b"yes\n")
        .expect("answer yes");
    let first = first.wait_with_output().expect("first apply");
    assert_exit(&first, 0);
    assert!(
        text(&first).contains("Apply complete: 12 added"),
        "{}",
        text(&first)
    );
    let second = second.join().expect("second apply");
    assert_exit(&second, 0);
    assert!(
        text(&second).contains("No changes."),
        "the second apply planned again under the lock: {}",
        text(&second)
    );
    let created_apis = emulator::served_requests(account.emulator.endpoint())
        .iter()
        .filter(|request| request.method == "POST" && request.path == "/v2/apis")
        .count();
    assert_eq!(created_apis, 1, "the HTTP API was created exactly once");
    assert_eq!(
        lock_item(&account, "dev").await,
        None,
        "the lock is released"
    );
}

#[tokio::test]
async fn ctrl_c_releases_the_lock_of_apply_and_of_destroy() {
    use std::io::Write;
    let account = Account::bootstrapped().await;
    for (command, environment) in [
        ("apply --env dev --artifact fn.zip", "dev"),
        ("destroy --env dev", "dev"),
    ] {
        if command.starts_with("destroy") {
            assert_exit(&account.apply_dev(), 0);
        }
        let mut run = support::spawn_on_terminal(&account, command, &[]);
        until_locked(&account, environment).await;
        // Ctrl-C on the terminal: SIGINT to the deployer, at its prompt.
        run.stdin
            .take()
            .expect("keyboard")
            .write_all(b"\x03")
            .expect("type Ctrl-C");
        let output = run.wait_with_output().expect("interrupted run");
        assert_ne!(output.status.code(), Some(0), "{}", text(&output));
        assert!(text(&output).contains("interrupt"), "{}", text(&output));
        assert_eq!(
            lock_item(&account, environment).await,
            None,
            "{command}: the lock is released: {}",
            text(&output)
        );
    }
    assert!(
        account.api_id("dev").await.is_some(),
        "nothing was destroyed"
    );
}

#[tokio::test]
async fn destroying_prod_needs_its_name_typed_on_a_terminal() {
    let account = Account::bootstrapped().await;
    assert_exit(
        &account.deployer(&[
            "apply",
            "--env",
            "prod",
            "--auto-approve",
            "--artifact",
            "fn.zip",
        ]),
        0,
    );

    let cancelled = deployer_on_terminal(&account, "destroy --env prod", "yes\n");
    assert_exit(&cancelled, 1);
    assert!(
        text(&cancelled).contains("Only 'prod' will be accepted"),
        "{}",
        text(&cancelled)
    );
    assert!(
        account.api_id("prod").await.is_some(),
        "'yes' is not enough for prod"
    );

    let destroyed = deployer_on_terminal(&account, "destroy --env prod", "prod\n");
    assert_exit(&destroyed, 0);
    assert!(
        text(&destroyed).contains("12 destroyed"),
        "{}",
        text(&destroyed)
    );
    assert_eq!(account.api_id("prod").await, None);
}
