//! The deployer under what AWS does and a forgiving emulator does not: random
//! throttling, server errors and dropped connections on every service, a new
//! role Lambda cannot assume for a while, functions Pending and InProgress, and
//! indexes CREATING (`emulator/faults.py`). Each command must converge, and the
//! emulator's counters must show the faults really happened.

use std::time::Instant;

use crate::support::{self, Account, assert_exit, names, settings, text};

impl Account {
    async fn count_apis(&self) -> usize {
        aws_sdk_apigatewayv2::Client::new(&self.config)
            .get_apis()
            .send()
            .await
            .expect("apis")
            .items()
            .iter()
            .filter(|api| api.name() == Some(names("dev").http_api.as_str()))
            .count()
    }
}

/// Every service errs on a tenth of its calls (throttling, a server error, a
/// dropped connection), with AWS's delays modelled.
fn faults(seed: u64) -> serde_json::Value {
    let services = [
        "iam",
        "sts",
        "s3",
        "dynamodb",
        "lambda",
        "apigateway",
        "logs",
    ];
    serde_json::json!({
        "seed": seed,
        "rules": services.iter().map(|service| serde_json::json!({
            "service": service, "probability": 0.1,
            "kinds": ["throttle", "server_error", "reset"]
        })).collect::<Vec<_>>(),
        "models": {"iam_propagation_s": 2, "lambda_update_s": 1, "gsi_creating_s": 1}
    })
}

/// The commands of an environment's life, each timed; panics when one fails.
fn life(account: &Account) -> Vec<(&'static str, f64)> {
    let steps: [(&str, &[&str]); 5] = [
        ("bootstrap", &["bootstrap", "--auto-approve"]),
        (
            "apply",
            &[
                "apply",
                "--env",
                "dev",
                "--auto-approve",
                "--artifact",
                "fn.zip",
            ],
        ),
        (
            "change",
            &[
                "apply",
                "--env",
                "dev",
                "--auto-approve",
                "--artifact",
                "fn.zip",
                "--var",
                "memory_mb=512",
            ],
        ),
        (
            "plan",
            &[
                "plan",
                "--env",
                "dev",
                "--detailed-exitcode",
                "--artifact",
                "fn.zip",
                "--var",
                "memory_mb=512",
            ],
        ),
        ("destroy", &["destroy", "--env", "dev", "--auto-approve"]),
    ];
    steps
        .iter()
        .map(|(name, args)| {
            let started = Instant::now();
            let output = account.deployer(args);
            assert_exit(&output, 0);
            if *name == "plan" {
                assert!(text(&output).contains("No changes"), "{}", text(&output));
            }
            (*name, started.elapsed().as_secs_f64())
        })
        .collect()
}

#[tokio::test]
async fn bootstrap_apply_change_and_destroy_converge_under_faults_and_aws_delays() {
    let quiet = Account::with_artifact().await;
    let without: Vec<(&str, f64)> = life(&quiet);
    let calm = emulator::served_requests(quiet.emulator.endpoint()).len();

    let account = Account::with_artifact().await;
    let seed = 15;
    emulator::configure_faults(account.emulator.endpoint(), &faults(seed));
    let with = life(&account);
    assert_eq!(account.count_apis().await, 0, "destroy removed the one API");
    let injected = emulator::injected_faults(account.emulator.endpoint());
    let total: u64 = injected.values().sum();
    let served = emulator::served_requests(account.emulator.endpoint()).len();
    assert!(total >= 10, "faults were injected: {injected:?}");
    for model in [
        "lambda CreateFunction role not assumable yet",
        "lambda GetFunction State Pending",
    ] {
        assert!(
            injected.contains_key(model),
            "{model} happened: {injected:?}"
        );
    }
    eprintln!("faults injected (seed {seed}): {total} of {served} requests: {injected:?}");
    eprintln!("requests without faults: {calm}; with: {served}");
    for ((name, calm_seconds), (_, seconds)) in without.iter().zip(with.iter()) {
        eprintln!("{name}: {seconds:.1} s under faults, {calm_seconds:.1} s without");
    }
}

#[tokio::test]
async fn an_apply_converges_to_exactly_one_of_each_resource_under_faults() {
    let account = Account::with_artifact().await;
    assert_exit(&account.deployer(&["bootstrap", "--auto-approve"]), 0);
    emulator::configure_faults(account.emulator.endpoint(), &faults(42));
    let args = [
        "apply",
        "--env",
        "dev",
        "--auto-approve",
        "--artifact",
        "fn.zip",
    ];
    assert_exit(&account.deployer(&args), 0);
    assert_exit(
        &account.deployer(&[
            "plan",
            "--env",
            "dev",
            "--detailed-exitcode",
            "--artifact",
            "fn.zip",
        ]),
        0,
    );
    emulator::clear_faults(account.emulator.endpoint());
    assert_eq!(account.count_apis().await, 1, "exactly one HTTP API");
    let roles = aws_sdk_iam::Client::new(&account.config)
        .list_roles()
        .send()
        .await
        .expect("roles");
    assert_eq!(
        roles
            .roles()
            .iter()
            .filter(|role| role.role_name() == names("dev").lambda_role)
            .count(),
        1
    );
}

/// The lock's `ID`, when someone holds `dev`'s lock (the `.tflock` file: a
/// new bootstrap has no lock table).
async fn held_lock_id(account: &Account) -> Option<String> {
    let got = account
        .s3
        .get_object()
        .bucket(settings().state_bucket)
        .key("deployer/dev/state.json.tflock")
        .send()
        .await;
    let object = match got {
        Ok(object) => object,
        Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => return None,
        Err(error) => panic!("reading the lock file: {error:?}"),
    };
    let body = object.body.collect().await.expect("lock file").into_bytes();
    let info: serde_json::Value = serde_json::from_slice(&body).expect("lock info JSON");
    info["ID"].as_str().map(str::to_owned)
}

/// How many of each thing `dev` has, by name: HTTP APIs, roles, log groups,
/// functions, tables.
async fn census(account: &Account) -> [usize; 5] {
    census_of(account, "dev").await
}

/// How many of each thing `environment` has, by name: HTTP APIs, roles, log
/// groups, functions, tables.
async fn census_of(account: &Account, environment: &str) -> [usize; 5] {
    let names = names(environment);
    let config = &account.config;
    let roles = aws_sdk_iam::Client::new(config)
        .list_roles()
        .send()
        .await
        .expect("roles");
    let groups = aws_sdk_cloudwatchlogs::Client::new(config)
        .describe_log_groups()
        .send()
        .await
        .expect("log groups");
    let functions = aws_sdk_lambda::Client::new(config)
        .list_functions()
        .send()
        .await
        .expect("functions");
    let tables = aws_sdk_dynamodb::Client::new(config)
        .list_tables()
        .send()
        .await
        .expect("tables");
    [
        aws_sdk_apigatewayv2::Client::new(config)
            .get_apis()
            .send()
            .await
            .expect("apis")
            .items()
            .iter()
            .filter(|api| api.name() == Some(names.http_api.as_str()))
            .count(),
        roles
            .roles()
            .iter()
            .filter(|role| role.role_name() == names.lambda_role)
            .count(),
        groups
            .log_groups()
            .iter()
            .filter(|group| group.log_group_name() == Some(&names.log_group))
            .count(),
        functions
            .functions()
            .iter()
            .filter(|function| function.function_name() == Some(&names.function))
            .count(),
        tables
            .table_names()
            .iter()
            .filter(|table| *table == &names.table)
            .count(),
    ]
}

#[tokio::test]
async fn an_apply_killed_anywhere_converges_on_rerun_with_one_of_each_resource() {
    const APPLY: [&str; 6] = [
        "apply",
        "--env",
        "dev",
        "--auto-approve",
        "--artifact",
        "fn.zip",
    ];
    // How many calls an apply from empty makes.
    let reference = Account::with_artifact().await;
    assert_exit(&reference.deployer(&["bootstrap", "--auto-approve"]), 0);
    emulator::clear_served_requests(reference.emulator.endpoint());
    assert_exit(&reference.deployer(&APPLY), 0);
    let calls = emulator::served_requests(reference.emulator.endpoint()).len();
    assert!(calls > 20, "{calls}");

    // Ten kill points, spread over the call log by a seeded draw.
    let seed: u64 = 1_234_567;
    let mut state = seed;
    let mut points: Vec<usize> = (0..10)
        .map(|slot| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let width = calls / 10;
            slot * width + 1 + usize::try_from(state >> 33).unwrap_or(0) % width.max(1)
        })
        .collect();
    points.sort_unstable();
    eprintln!("kill points (seed {seed}), after N of {calls} calls: {points:?}");

    let mut converged = 0;
    for point in &points {
        let account = Account::with_artifact().await;
        assert_exit(&account.deployer(&["bootstrap", "--auto-approve"]), 0);
        emulator::clear_served_requests(account.emulator.endpoint());
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
            .current_dir(account.dir.path())
            .envs(emulator::aws_env(account.emulator.endpoint()))
            .env("DEPLOYER_SKIP_HEALTH_CHECK", "true")
            .env("DEPLOYER_SKIP_PRE_TRAFFIC_CHECK", "true")
            .env_remove("DEPLOYER_ENV")
            .args(APPLY)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start apply");
        let started = Instant::now();
        loop {
            let served = emulator::served_requests(account.emulator.endpoint()).len();
            if served >= *point || started.elapsed().as_secs() > 60 {
                break;
            }
            if child.try_wait().expect("wait").is_some() {
                break;
            }
        }
        let _ = child.kill(); // SIGKILL: no cleanup of any kind
        let _ = child.wait();
        if let Some(id) = held_lock_id(&account).await {
            assert_exit(&account.deployer(&["force-unlock", "--env", "dev", &id]), 0);
        }
        assert_exit(&account.deployer(&APPLY), 0);
        assert_exit(
            &account.deployer(&[
                "plan",
                "--env",
                "dev",
                "--detailed-exitcode",
                "--artifact",
                "fn.zip",
            ]),
            0,
        );
        assert_eq!(
            census(&account).await,
            [1, 1, 1, 1, 1],
            "after a kill at call {point}: one API, role, log group, function and table"
        );
        converged += 1;
    }
    eprintln!("{converged} of {} kill points converged", points.len());
    assert_eq!(converged, points.len());
}

/// A preview half destroyed by a run that failed (here: every DeleteTable
/// fails, and the table goes last) is destroyed completely by the next run:
/// the state still records what is left, and only that is deleted.
#[tokio::test]
async fn a_preview_half_destroyed_by_a_failed_run_is_destroyed_completely_on_the_next_try() {
    let account = Account::bootstrapped().await;
    support::add_preview_layer(account.dir.path());
    assert_exit(
        &account.deployer(&[
            "apply",
            "--env",
            "pr-7",
            "--auto-approve",
            "--artifact",
            "fn.zip",
        ]),
        0,
    );
    assert_eq!(census_of(&account, "pr-7").await, [1, 1, 1, 1, 1]);

    emulator::configure_faults(
        account.emulator.endpoint(),
        &serde_json::json!({"seed": 1, "rules": [{
            "service": "dynamodb", "operation": "DeleteTable", "probability": 1.0,
            "kinds": ["server_error"]
        }]}),
    );
    let failed = account.deployer(&["destroy", "--env", "pr-7", "--auto-approve"]);
    assert_exit(&failed, 1);
    assert!(
        emulator::injected_faults(account.emulator.endpoint())
            .keys()
            .any(|fault| fault.contains("DeleteTable")),
        "the fault happened"
    );
    assert_eq!(
        census_of(&account, "pr-7").await,
        [0, 0, 0, 0, 1],
        "half destroyed: all but the table is gone: {}",
        text(&failed)
    );
    let state_key = state::state_key("pr-7");
    assert!(
        account
            .s3
            .head_object()
            .bucket(settings().state_bucket)
            .key(&state_key)
            .send()
            .await
            .is_ok(),
        "the state still records what is left"
    );

    emulator::clear_faults(account.emulator.endpoint());
    let again = account.deployer(&["destroy", "--env", "pr-7", "--auto-approve"]);
    assert_exit(&again, 0);
    assert!(
        text(&again).contains("Destroy complete") && text(&again).contains("dynamodb_table.scores"),
        "the rerun deletes what is left: {}",
        text(&again)
    );
    let policy = format!(
        "arn:aws:iam::{}:policy/{}",
        emulator::ACCOUNT_ID,
        names("pr-7").dynamodb_policy
    );
    assert!(
        account
            .iam
            .get_policy()
            .policy_arn(&policy)
            .send()
            .await
            .is_err(),
        "the table policy is gone too"
    );
    assert_eq!(
        census_of(&account, "pr-7").await,
        [0, 0, 0, 0, 0],
        "nothing left"
    );
    assert!(
        account
            .s3
            .head_object()
            .bucket(settings().state_bucket)
            .key(&state_key)
            .send()
            .await
            .is_err(),
        "and no state"
    );
    let listed = account.deployer(&["environments", "list", "--previews", "--json"]);
    assert_exit(&listed, 0);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&listed.stdout).expect("JSON"),
        serde_json::json!([])
    );
}
