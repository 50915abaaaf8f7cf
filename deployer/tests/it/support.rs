//! Shared by the deployer's integration tests: an account on an emulator
//! with a folder to run the binary in ([`Account`]), the names the deployer
//! gives what it manages ([`names`], [`settings`]), a synthetic function
//! ([`executable`]), running the binary and reading what it did.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use deployer::config::{EnvironmentNames, Settings};
use emulator::Emulator;

/// The settings every test runs with: the defaults (`deployer.toml` sets only
/// `github_repository`), where the bootstrap stack's names come from.
pub fn settings() -> Settings {
    Settings::default()
}

/// The names of `environment`'s resources, as the deployer derives them.
pub fn names(environment: &str) -> EnvironmentNames {
    EnvironmentNames::new(environment, &settings())
}

/// The ARN of the customer managed policy `name` in the emulator's account.
pub fn policy_arn(name: &str) -> String {
    format!("arn:aws:iam::{}:policy/{name}", emulator::ACCOUNT_ID)
}

/// The ARN of the role `name` in the emulator's account.
pub fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{}:role/{name}", emulator::ACCOUNT_ID)
}

/// The ARN of the Lambda function `name` in the emulator's account and region.
pub fn function_arn(name: &str) -> String {
    format!(
        "arn:aws:lambda:{}:{}:function:{name}",
        emulator::REGION,
        emulator::ACCOUNT_ID
    )
}

/// The fake-ELF builder the deployer's unit tests use too (the file's
/// comment says why it is included, not exported).
#[path = "../../src/package/elf_fixture.rs"]
#[allow(dead_code)] // the unit and the integration tests each use part of it
pub mod elf;

pub use elf::{AARCH64, X86_64};

/// A synthetic `bootstrap` for `machine` ([`X86_64`], [`AARCH64`]) needing
/// glibc 2.28, followed by `marker` (which makes releases differ): the
/// emulator runs no code, so a valid ELF header is all the control plane needs.
pub fn executable(machine: u16, marker: &[u8]) -> Vec<u8> {
    elf::Elf::executable(machine)
        .needing(&["GLIBC_2.28"])
        .tail(marker)
        .build()
}

/// An account on an emulator of its own (the GitHub OIDC provider is one per
/// account, so tests cannot share one), a folder with `deployer.toml` to run
/// the deployer in, and clients to read back what it did. Each topic adds
/// the readings it needs in an `impl Account` of its own.
pub struct Account {
    pub emulator: Emulator,
    pub dir: tempfile::TempDir,
    pub config: aws_config::SdkConfig,
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub iam: aws_sdk_iam::Client,
    /// Whether the deployer's health check and pre-traffic check run: only
    /// the local cloud serves the API and runs the function (moto does not).
    checks: bool,
}

impl Account {
    /// An empty account on moto.
    pub async fn new() -> Self {
        Self::on(
            Emulator::start().unwrap_or_else(|error| panic!("{error}")),
            false,
        )
        .await
    }

    /// An empty account on `emulator`; the deployer runs its health and
    /// pre-traffic checks there when `checks`.
    pub async fn on(emulator: Emulator, checks: bool) -> Self {
        let config = emulator::sdk_config_for(emulator.endpoint()).await;
        let dir = tempfile::tempdir().expect("temp dir");
        write_config(dir.path());
        Self {
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config)
                    .force_path_style(true)
                    .build(),
            ),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            emulator,
            dir,
            config,
            checks,
        }
    }

    /// An account on moto with a function to deploy, `fn.zip` (x86_64, `v1`).
    pub async fn with_artifact() -> Self {
        let account = Self::new().await;
        account.write_artifact("fn.zip", &executable(X86_64, b"v1"));
        account
    }

    /// [`Account::with_artifact`], bootstrapped.
    pub async fn bootstrapped() -> Self {
        let account = Self::with_artifact().await;
        assert_exit(&account.deployer(&["bootstrap", "--auto-approve"]), 0);
        account
    }

    pub fn endpoint(&self) -> &str {
        self.emulator.endpoint()
    }

    /// Package `executable` as the function's zip `name` in the folder.
    pub fn write_artifact(&self, name: &str, executable: &[u8]) {
        let artifact = deployer::package::artifact::package(executable, name).expect("package");
        std::fs::write(self.dir.path().join(name), artifact.bytes).expect("write artifact");
    }

    /// Run `deployer args` in the folder, with no terminal on standard input
    /// (as in CI); on moto without the health and pre-traffic checks.
    pub fn deployer(&self, args: &[&str]) -> Output {
        let mut command = deployer_command(self.dir.path(), self.endpoint());
        if !self.checks {
            command
                .env("DEPLOYER_SKIP_HEALTH_CHECK", "true")
                .env("DEPLOYER_SKIP_PRE_TRAFFIC_CHECK", "true");
        }
        command.args(args).output().expect("run deployer")
    }

    /// `deployer apply --env dev --auto-approve --artifact fn.zip` and `extra`.
    pub fn apply_dev_with(&self, extra: &[&str]) -> Output {
        let mut args = vec![
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn.zip",
        ];
        args.extend_from_slice(extra);
        self.deployer(&args)
    }

    /// `deployer apply --env dev --auto-approve --artifact fn.zip`.
    pub fn apply_dev(&self) -> Output {
        self.apply_dev_with(&[])
    }

    /// The mutating requests the emulator served since its log was cleared.
    pub fn mutating_requests(&self) -> Vec<String> {
        mutating_requests(self.endpoint())
    }

    /// [`Self::mutating_requests`] but taking, renewing and releasing the
    /// state's lock (its `.tflock` file, or an item of the lock table).
    pub fn changes_besides_the_lock(&self) -> Vec<String> {
        self.mutating_requests()
            .into_iter()
            .filter(|request| {
                !(request.contains(".tflock?")
                    || request.contains("dynamodb")
                        && (request.ends_with("PutItem") || request.ends_with("DeleteItem")))
            })
            .collect()
    }

    /// The id of the HTTP API named `name`, if there is one.
    pub async fn api_named(&self, name: &str) -> Option<String> {
        let apis = aws_sdk_apigatewayv2::Client::new(&self.config)
            .get_apis()
            .send()
            .await
            .expect("apis");
        apis.items()
            .iter()
            .find(|api| api.name() == Some(name))
            .and_then(|api| api.api_id().map(str::to_owned))
    }
}

/// The repository the tests' deploy role trusts.
pub const REPOSITORY: &str = "octo-org/playground";

/// Write the `deployer.toml` every test starts from: only `github_repository`,
/// which bootstrap requires.
pub fn write_config(dir: &Path) {
    std::fs::write(
        dir.join("deployer.toml"),
        format!("github_repository = \"{REPOSITORY}\"\n"),
    )
    .expect("write deployer.toml");
}

/// Add the repository's `[env.preview]` table (deployer.toml) to the
/// `deployer.toml` in `dir`, so that `pr-<number>` environments take it.
pub fn add_preview_layer(dir: &Path) {
    let shipped = std::fs::read_to_string(emulator::workspace_root().join("deployer.toml"))
        .expect("read the repository's deployer.toml");
    let start = shipped
        .find("\n[env.preview]\n")
        .expect("the repository's deployer.toml has [env.preview]")
        + 1;
    let layer = &shipped[start..];
    let end = layer[1..].find("\n[").map_or(layer.len(), |end| end + 2);
    let mut config =
        std::fs::read_to_string(dir.join("deployer.toml")).expect("read deployer.toml");
    config.push('\n');
    config.push_str(&layer[..end]);
    std::fs::write(dir.join("deployer.toml"), config).expect("write deployer.toml");
}

/// Run `deployer args` in `dir` against the AWS endpoint `endpoint`, with no
/// terminal on standard input (as in CI).
pub fn run_deployer(dir: &Path, endpoint: &str, args: &[&str]) -> Output {
    run_deployer_with(dir, endpoint, args, &[])
}

/// [`run_deployer`] with extra environment variables. moto routes no HTTP API
/// traffic and runs no function, so the health check that ends an apply and
/// the pre-traffic check of a new version are skipped.
pub fn run_deployer_with(
    dir: &Path,
    endpoint: &str,
    args: &[&str],
    environment: &[(&str, &Path)],
) -> Output {
    deployer_command(dir, endpoint)
        .env("DEPLOYER_SKIP_HEALTH_CHECK", "true")
        .env("DEPLOYER_SKIP_PRE_TRAFFIC_CHECK", "true")
        .envs(environment.iter().copied())
        .args(args)
        .output()
        .expect("run deployer")
}

/// [`run_deployer`] with the health check but not the pre-traffic check
/// (moto cannot invoke a function: its Invoke needs Docker).
pub fn run_deployer_checking_health_only(dir: &Path, endpoint: &str, args: &[&str]) -> Output {
    deployer_command(dir, endpoint)
        .env("DEPLOYER_SKIP_PRE_TRAFFIC_CHECK", "true")
        .args(args)
        .output()
        .expect("run deployer")
}

pub fn deployer_command(dir: &Path, endpoint: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_deployer"));
    command
        .current_dir(dir)
        .envs(emulator::aws_env(endpoint))
        .env_remove("DEPLOYER_ENV")
        .env_remove("DEPLOYER_STATE")
        .env_remove("DEPLOYER_SKIP_HEALTH_CHECK")
        .env_remove("DEPLOYER_SKIP_PRE_TRAFFIC_CHECK")
        .stdin(Stdio::null());
    command
}

/// The mutating requests `endpoint` served since its log was cleared.
pub fn mutating_requests(endpoint: &str) -> Vec<String> {
    emulator::served_requests(endpoint)
        .iter()
        .filter(|request| request.is_mutating())
        .map(emulator::ServedRequest::describe)
        .collect()
}

/// Standard output and standard error, for assertion messages.
/// Start `deployer args` on a terminal (util-linux `script`), its keyboard
/// piped, with `env` besides the emulator's, as a person (or, with
/// `GITHUB_*`, an Actions run) would.
pub fn spawn_on_terminal(
    account: &Account,
    args: &str,
    env: &[(&str, &str)],
) -> std::process::Child {
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_deployer"));
    Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(account.dir.path())
        .envs(emulator::aws_env(account.emulator.endpoint()))
        .env("DEPLOYER_SKIP_HEALTH_CHECK", "true")
        .env("DEPLOYER_SKIP_PRE_TRAFFIC_CHECK", "true")
        .env_remove("DEPLOYER_ENV")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs the deployer on a terminal")
}

pub const SIGINT: i32 = 2;
pub const SIGTERM: i32 = 15;

/// The run ended by `signal` (not by an exit code a shell would take for a
/// command that handled the signal itself).
pub fn assert_signalled(output: &std::process::Output, signal: i32) {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        output.status.signal(),
        Some(signal),
        "ended by signal {signal}, not {:?}: {}",
        output.status,
        text(output)
    );
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", text(output));
}

/// The deploy policy's document as bootstrap wrote it into IAM (decoded).
/// The managed policies attached to `role`: `(name, ARN)`, sorted.
pub async fn attached_policies(
    config: &aws_config::SdkConfig,
    role: &str,
) -> Vec<(String, String)> {
    let attached = aws_sdk_iam::Client::new(config)
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap_or_else(|error| panic!("the policies attached to {role}: {error:?}"));
    let mut policies: Vec<(String, String)> = attached
        .attached_policies()
        .iter()
        .map(|policy| {
            (
                policy.policy_name().unwrap_or_default().to_owned(),
                policy.policy_arn().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    policies.sort();
    policies
}

/// Only the names of [`attached_policies`].
pub async fn attached_policy_names(config: &aws_config::SdkConfig, role: &str) -> Vec<String> {
    attached_policies(config, role)
        .await
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// Only the ARNs of [`attached_policies`], sorted.
pub async fn attached_policy_arns(config: &aws_config::SdkConfig, role: &str) -> Vec<String> {
    let mut arns: Vec<String> = attached_policies(config, role)
        .await
        .into_iter()
        .map(|(_, arn)| arn)
        .collect();
    arns.sort();
    arns
}

pub async fn deploy_policy(config: &aws_config::SdkConfig) -> serde_json::Value {
    managed_policy(config, &settings().deploy_policy_name).await
}

/// The default version of the customer managed policy `name` (decoded).
pub async fn managed_policy(config: &aws_config::SdkConfig, name: &str) -> serde_json::Value {
    let iam = aws_sdk_iam::Client::new(config);
    let arn = policy_arn(name);
    let policy = iam
        .get_policy()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap_or_else(|error| panic!("policy {name}: {error:?}"));
    let version = policy
        .policy()
        .and_then(|policy| policy.default_version_id())
        .expect("default version");
    let document = iam
        .get_policy_version()
        .policy_arn(&arn)
        .version_id(version)
        .send()
        .await
        .expect("policy version");
    let text = document
        .policy_version()
        .and_then(|version| version.document())
        .expect("document");
    deployer::engine::policy::decode(text)
        .unwrap_or_else(|| panic!("not a policy document: {text}"))
}

/// A user as its class's ranks should count it.
#[derive(Debug, Clone)]
pub struct RankedUser {
    pub table_id: String,
    pub username: String,
    /// Its `moralCompassScore` (0 when it has none).
    pub score: f64,
    pub submissions: u64,
    pub team: Option<String>,
}

impl RankedUser {
    pub fn new(
        table_id: &str,
        username: &str,
        score: f64,
        submissions: u64,
        team: Option<&str>,
    ) -> Self {
        Self {
            table_id: table_id.to_owned(),
            username: username.to_owned(),
            score,
            submissions,
            team: team.map(str::to_owned),
        }
    }

    pub fn rank_key(&self) -> String {
        schema::ranking::rank_key(self.score, self.submissions, &self.username)
    }
}

/// Every one of `users` is ranked in `table` exactly, and nothing else is:
/// each has the `rankKey` its attributes give (and `rankTeam` its team) and
/// its rank entry; each class has exactly one entry per user and its rank
/// buckets count exactly its users; each user's rank
/// (`schema::ranking::rank_of`) is its place in the class's order; and each
/// team (`schema::ranking::teams`) counts exactly its members and the exact
/// decimal sum of their scores.
pub async fn assert_ranked_exactly(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    users: &[RankedUser],
) {
    use aws_sdk_dynamodb::types::{AttributeValue, Select};
    use schema::ranking;
    let get = |table_id: &str, username: &str| {
        let request = dynamodb
            .get_item()
            .table_name(table)
            .key("tableId", AttributeValue::S(table_id.to_owned()))
            .key("username", AttributeValue::S(username.to_owned()))
            .consistent_read(true);
        async move { request.send().await.expect("get").item }
    };
    let mut classes: Vec<&str> = users.iter().map(|user| user.table_id.as_str()).collect();
    classes.sort_unstable();
    classes.dedup();
    for class in classes {
        let mut members: Vec<&RankedUser> =
            users.iter().filter(|user| user.table_id == class).collect();
        members.sort_by_key(|user| user.rank_key());
        for level in [ranking::Level::Bucket, ranking::Level::Group] {
            let ranges =
                ranking::ranges_between(dynamodb, table, class, level, "", ranking::LAST_KEY)
                    .await
                    .expect("buckets and groups");
            assert_eq!(
                ranges.iter().map(|range| range.entries).sum::<u64>(),
                members.len() as u64,
                "{class}: the {level:?}s count every user once: {ranges:?}"
            );
        }
        let mut entries = 0;
        let mut start = None;
        loop {
            let page = dynamodb
                .query()
                .table_name(table)
                .key_condition_expression("tableId = :t AND begins_with(username, :e)")
                .expression_attribute_values(":t", AttributeValue::S(class.to_owned()))
                .expression_attribute_values(":e", AttributeValue::S(ranking::entry_username("")))
                .select(Select::Count)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("entries");
            entries += page.count();
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        assert_eq!(
            entries as usize,
            members.len(),
            "{class}: one entry per user"
        );
        for (place, user) in members.iter().enumerate() {
            let name = &user.username;
            let item = get(class, name).await.expect("the user");
            let key = user.rank_key();
            assert_eq!(
                item.get(ranking::RANK_KEY),
                Some(&AttributeValue::S(key.clone())),
                "{class}/{name}"
            );
            assert_eq!(
                item.get(ranking::RANK_TEAM)
                    .and_then(|team| team.as_s().ok()),
                user.team.as_ref(),
                "{class}/{name}"
            );
            assert!(
                get(class, &ranking::entry_username(&key)).await.is_some(),
                "{class}/{name}: its rank entry"
            );
            assert_eq!(
                ranking::rank_of(dynamodb, table, class, &key)
                    .await
                    .expect("rank"),
                place as u64 + 1,
                "{class}/{name}"
            );
        }
        let teams = ranking::teams(dynamodb, table, class).await.expect("teams");
        let mut names: Vec<&str> = members
            .iter()
            .filter_map(|member| member.team.as_deref())
            .collect();
        names.sort_unstable();
        names.dedup();
        let mut found: Vec<&str> = teams.iter().map(|team| team.name.as_str()).collect();
        found.sort_unstable();
        assert_eq!(found, names, "{class}: {teams:?}");
        for standing in &teams {
            let scores: Vec<f64> = members
                .iter()
                .filter(|member| member.team.as_deref() == Some(standing.name.as_str()))
                .map(|member| member.score)
                .collect();
            assert_eq!(standing.members, scores.len() as u64, "{standing:?}");
            // The decimal sum of the scores as stored: 0.1 + 0.2 is 0.3.
            assert_eq!(
                standing.score_sum.normalized().to_string(),
                decimal_sum(&scores),
                "{class}: team {}",
                standing.name
            );
        }
    }
}

/// The exact decimal sum of `scores`, each read as the text it is stored as
/// (`schema::ranking::score_text`: 0.1 + 0.2 is "0.3"), without trailing
/// zeros. Every score must be a whole multiple of 10^-18.
pub fn decimal_sum(scores: &[f64]) -> String {
    let scale = 10_i128.pow(18);
    let scaled: i128 = scores
        .iter()
        .map(|score| {
            let text = schema::ranking::score_text(*score);
            let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
            assert!(
                fraction.len() <= 18 && !text.contains('e') && !text.starts_with('-'),
                "{text}"
            );
            format!("{whole}{fraction:0<18}")
                .parse::<i128>()
                .expect("digits")
        })
        .sum();
    let fraction = format!("{:018}", scaled % scale);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        (scaled / scale).to_string()
    } else {
        format!("{}.{fraction}", scaled / scale)
    }
}
