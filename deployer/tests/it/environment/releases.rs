//! Releases: versions behind `live`, rollback, pruning, and limits changed without a
//! release.

use super::*;

impl Account {
    /// The version the dev function's `live` alias points at.
    pub(super) async fn live_version(&self) -> String {
        aws_sdk_lambda::Client::new(&self.config)
            .get_alias()
            .function_name(&names("dev").function)
            .name("live")
            .send()
            .await
            .expect("the alias live")
            .function_version()
            .expect("a version")
            .to_owned()
    }

    /// The SHA-256 of the code version `version` of the dev function runs.
    async fn code_sha256_of(&self, version: &str) -> String {
        aws_sdk_lambda::Client::new(&self.config)
            .get_function_configuration()
            .function_name(&names("dev").function)
            .qualifier(version)
            .send()
            .await
            .expect("the version's configuration")
            .code_sha256()
            .expect("a code SHA-256")
            .to_owned()
    }

    /// The dev function's published versions, oldest first.
    async fn published_versions(&self) -> Vec<String> {
        let listed = aws_sdk_lambda::Client::new(&self.config)
            .list_versions_by_function()
            .function_name(&names("dev").function)
            .send()
            .await
            .expect("versions");
        let mut versions: Vec<u64> = listed
            .versions()
            .iter()
            .filter_map(|version| version.version())
            .filter_map(|version| version.parse().ok())
            .collect();
        versions.sort_unstable();
        versions.iter().map(u64::to_string).collect()
    }

    pub(super) fn apply_artifact(&self, artifact: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            artifact,
        ];
        args.extend_from_slice(extra);
        self.deployer(&args)
    }
}

#[tokio::test]
async fn releases_are_versions_behind_live_and_rollback_moves_live_back() {
    let account = Account::bootstrapped().await;
    assert_exit(&account.apply_dev(), 0);
    assert_eq!(account.live_version().await, "1");
    assert_eq!(account.published_versions().await, ["1"]);

    // API Gateway invokes the alias, never $LATEST; the permission is on the alias.
    let api_id = account.api_id("dev").await.expect("api");
    let integrations = aws_sdk_apigatewayv2::Client::new(&account.config)
        .get_integrations()
        .api_id(&api_id)
        .send()
        .await
        .expect("integrations");
    let uris: Vec<&str> = integrations
        .items()
        .iter()
        .filter_map(|integration| integration.integration_uri())
        .collect();
    assert!(
        !uris.is_empty()
            && uris
                .iter()
                .all(|uri| uri.ends_with(&format!(":function:{}:live", names("dev").function))),
        "{uris:?}"
    );
    let lambda = aws_sdk_lambda::Client::new(&account.config);
    let policy = lambda
        .get_policy()
        .function_name(&names("dev").function)
        .qualifier("live")
        .send()
        .await
        .expect("the alias's policy");
    assert!(
        policy
            .policy()
            .is_some_and(|policy| policy.contains("AllowInvokeFromHttpApi")),
        "{policy:?}"
    );

    // New code: a new version, live moves to it; the same code again changes nothing.
    account.write_artifact("fn2.zip", &executable(X86_64, b"v2"));
    let plan = account.deployer(&["plan", "--env", "dev", "--artifact", "fn2.zip"]);
    assert!(
        text(&plan).contains("Release: publish version 2 and move live from 1 to 2."),
        "{}",
        text(&plan)
    );
    assert_exit(&account.apply_artifact("fn2.zip", &[]), 0);
    assert_eq!(account.live_version().await, "2");
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(&account.apply_artifact("fn2.zip", &[]), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    // Rollback: live back to 1, recorded in the history.
    let rolled = account.deployer(&["rollback", "--env", "dev"]);
    assert_exit(&rolled, 0);
    assert!(
        text(&rolled).contains(&format!(
            "live moved from version 2 to 1 (code {}).",
            account.code_sha256_of("1").await
        )),
        "{}",
        text(&rolled)
    );
    assert_eq!(account.live_version().await, "1");
    let history = account.deployer(&["state", "history", "--env", "dev"]);
    let history = String::from_utf8_lossy(&history.stdout).into_owned();
    let releases: Vec<String> = history
        .lines()
        .skip_while(|line| !line.starts_with("release"))
        .skip(1)
        .map(|line| {
            line.split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(releases, ["1 rollback", "2 apply", "1 apply"], "{history}");

    // The rolled-back code again: a no-op; live stays at 1.
    emulator::clear_served_requests(account.emulator.endpoint());
    let plan = account.deployer(&[
        "plan",
        "--env",
        "dev",
        "--artifact",
        "fn2.zip",
        "--detailed-exitcode",
    ]);
    assert_exit(&plan, 0);
    assert_exit(&account.apply_artifact("fn2.zip", &[]), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());
    assert_eq!(account.live_version().await, "1");
    // Nothing before 1 to go back to.
    let refused = account.deployer(&["rollback", "--env", "dev"]);
    assert_exit(&refused, 1);
    assert!(
        text(&refused).contains("no release before version 1"),
        "{}",
        text(&refused)
    );

    // New code after a rollback: a normal release.
    account.write_artifact("fn3.zip", &executable(X86_64, b"v3"));
    assert_exit(&account.apply_artifact("fn3.zip", &[]), 0);
    assert_eq!(account.live_version().await, "3");

    // --to a published version, and refused for one that is not.
    assert_exit(
        &account.deployer(&["rollback", "--env", "dev", "--to", "2"]),
        0,
    );
    assert_eq!(account.live_version().await, "2");
    let missing = account.deployer(&["rollback", "--env", "dev", "--to", "99"]);
    assert_exit(&missing, 1);
    assert!(
        text(&missing).contains(&format!(
            "version 99 of {} is not published",
            names("dev").function
        )),
        "{}",
        text(&missing)
    );
    assert_eq!(account.live_version().await, "2");
}

#[tokio::test]
async fn old_versions_are_pruned_but_never_live_or_the_last_releases() {
    let account = Account::bootstrapped().await;
    let keep = ["--var", "keep_versions=2"];
    for (number, marker) in [b"p1", b"p2", b"p3", b"p4"].iter().enumerate() {
        let name = format!("p{}.zip", number + 1);
        account.write_artifact(&name, &executable(X86_64, *marker));
        assert_exit(&account.apply_artifact(&name, &keep), 0);
    }
    // Versions 1..4 released; the newest 2 are kept, and the last 2 releases
    // (the same two) are protected.
    assert_eq!(account.published_versions().await, ["3", "4"]);
    assert_eq!(account.live_version().await, "4");

    // Roll back to 3, then release new code: the newest two (4, 5) stay, and
    // 3 too, older but the release before the live one.
    assert_exit(&account.deployer(&["rollback", "--env", "dev"]), 0);
    assert_eq!(account.live_version().await, "3");
    account.write_artifact("p5.zip", &executable(X86_64, b"p5"));
    assert_exit(&account.apply_artifact("p5.zip", &keep), 0);
    assert_eq!(account.live_version().await, "5");
    assert_eq!(account.published_versions().await, ["3", "4", "5"]);
}

#[tokio::test]
async fn limits_are_applied_changed_without_a_release_and_read_back() {
    let account = Account::bootstrapped().await;
    assert_exit(&account.apply_dev(), 0);
    let limits = [
        "--var",
        "throttle_rate_limit=20",
        "--var",
        "throttle_burst_limit=40",
        "--var",
        "reserved_concurrency=0",
    ];
    let plan = account.deployer(
        &[
            &limits[..],
            &["plan", "--env", "dev", "--artifact", "fn.zip"],
        ]
        .concat(),
    );
    let shown = text(&plan);
    assert!(
        shown.contains(r#"~ reserved_concurrency = 100 -> "none""#),
        "{shown}"
    );
    assert!(shown.contains("throttle_rate_limit"), "{shown}");
    assert!(
        !shown.contains("lambda_alias.live"),
        "limits are not a release: {shown}"
    );
    assert_exit(
        &account.deployer(
            &[
                &limits[..],
                &[
                    "apply",
                    "--env",
                    "dev",
                    "--auto-approve",
                    "--artifact",
                    "fn.zip",
                ],
            ]
            .concat(),
        ),
        0,
    );

    let api_id = account.api_id("dev").await.expect("api");
    let stage = aws_sdk_apigatewayv2::Client::new(&account.config)
        .get_stage()
        .api_id(&api_id)
        .stage_name("dev")
        .send()
        .await
        .expect("stage");
    let throttling = stage
        .default_route_settings()
        .expect("default route settings");
    assert_eq!(throttling.throttling_rate_limit(), Some(20.0));
    assert_eq!(throttling.throttling_burst_limit(), Some(40));
    assert_eq!(
        account
            .function("dev")
            .await
            .concurrency()
            .and_then(|concurrency| concurrency.reserved_concurrent_executions()),
        None,
        "no reservation"
    );
    assert_eq!(account.live_version().await, "1", "no new version");
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(
        &account.deployer(
            &[
                &limits[..],
                &[
                    "apply",
                    "--env",
                    "dev",
                    "--auto-approve",
                    "--artifact",
                    "fn.zip",
                ],
            ]
            .concat(),
        ),
        0,
    );
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    // Out of range: refused before any AWS call.
    let refused = account.deployer(&["--var", "throttle_burst_limit=0", "plan", "--env", "dev"]);
    assert_exit(&refused, 1);
    assert!(
        text(&refused).contains("throttle_burst_limit = 0 must be from 1 to 5000"),
        "{}",
        text(&refused)
    );
}
