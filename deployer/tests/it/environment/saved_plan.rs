//! A saved plan (`plan --out`, `apply FILE`) applied exactly or refused when stale.

use super::*;

#[tokio::test]
async fn a_saved_plan_is_applied_exactly_or_refused_when_stale() {
    let account = Account::bootstrapped().await;
    assert_exit(&account.apply_dev(), 0);
    account.write_artifact("fn2.zip", &executable(X86_64, b"v2"));
    let fn2 = std::fs::read(account.dir.path().join("fn2.zip")).expect("fn2");
    let fn2_sha = deployer::package::code_sha256(&fn2);

    let json = account.deployer(&["plan", "--env", "dev", "--artifact", "fn2.zip", "--json"]);
    assert_exit(&json, 0);
    let json: Value = serde_json::from_slice(&json.stdout).expect("JSON plan");
    assert_eq!(json["format_version"], 2, "{json}");
    assert_eq!(json["change"], 2, "{json}");

    let planned = account.deployer(&[
        "plan",
        "--env",
        "dev",
        "--artifact",
        "fn2.zip",
        "--out",
        "dev.plan",
    ]);
    assert_exit(&planned, 0);
    assert!(
        text(&planned).contains("`deployer apply dev.plan` applies exactly it"),
        "{}",
        text(&planned)
    );
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(account.dir.path().join("dev.plan")).expect("saved plan"),
    )
    .expect("saved plan JSON");
    assert_eq!(saved["format_version"], 2);
    assert_eq!(saved["environment"], "dev");
    assert_eq!(saved["artifact_sha256"], fn2_sha.as_str());
    assert!(saved["state"]["serial"].is_u64(), "{saved}");
    // The saved plan is the JSON plan; the file names the environment itself.
    let mut without_context = json.clone();
    let context = without_context.as_object_mut().expect("object");
    assert_eq!(context.remove("environment"), Some(Value::from("dev")));
    assert!(context.remove("release").is_some(), "{json}");
    assert_eq!(
        saved["plan"], without_context,
        "the saved plan is the JSON plan"
    );

    // Another artifact than the plan's: refused before any AWS call.
    let wrong = account.deployer(&["apply", "dev.plan", "--artifact", "fn.zip"]);
    assert_exit(&wrong, 1);
    assert!(
        text(&wrong).contains("is not the one the plan was made with"),
        "{}",
        text(&wrong)
    );

    // Applied exactly: no --env, no prompt.
    let applied = account.deployer(&["apply", "dev.plan"]);
    assert_exit(&applied, 0);
    assert!(
        text(&applied).contains("Apply complete: 0 added, 2 changed"),
        "{}",
        text(&applied)
    );
    assert_eq!(account.live_version().await, "2");

    // The same file again: the state has moved on; nothing changes.
    emulator::clear_served_requests(account.emulator.endpoint());
    let stale = account.deployer(&["apply", "dev.plan"]);
    assert_exit(&stale, 1);
    assert!(
        text(&stale).contains("the state has moved on since the plan was made"),
        "{}",
        text(&stale)
    );
    assert_eq!(account.changes_besides_the_lock(), Vec::<String>::new());

    // AWS changed after the plan was made: refused, and the change by hand stays.
    account.write_artifact("fn3.zip", &executable(X86_64, b"v3"));
    assert_exit(
        &account.deployer(&[
            "plan",
            "--env",
            "dev",
            "--artifact",
            "fn3.zip",
            "--out",
            "dev3.plan",
        ]),
        0,
    );
    aws_sdk_lambda::Client::new(&account.config)
        .update_function_configuration()
        .function_name(&names("dev").function)
        .memory_size(1024)
        .send()
        .await
        .expect("change memory by hand");
    emulator::clear_served_requests(account.emulator.endpoint());
    let drifted = account.deployer(&["apply", "dev3.plan"]);
    assert_exit(&drifted, 1);
    assert!(
        text(&drifted).contains("planning again now gives a different plan"),
        "{}",
        text(&drifted)
    );
    assert!(
        text(&drifted).contains("1024 -> 256"),
        "shows the plan now: {}",
        text(&drifted)
    );
    assert_eq!(account.changes_besides_the_lock(), Vec::<String>::new());
    assert_eq!(account.live_version().await, "2");

    // A plan for another environment is refused; so is a file that is not a plan.
    let other = account.deployer(&["apply", "--env", "stage", "dev.plan"]);
    assert_exit(&other, 1);
    assert!(
        text(&other).contains("the plan is for dev, not stage"),
        "{}",
        text(&other)
    );
    std::fs::write(account.dir.path().join("junk.plan"), "{}").expect("write");
    let junk = account.deployer(&["apply", "junk.plan"]);
    assert_exit(&junk, 1);
    assert!(
        text(&junk).contains("is not a saved plan"),
        "{}",
        text(&junk)
    );
}
