//! Shared by the deployer's integration tests: running the binary against an
//! emulator and reading what it did.

#![allow(dead_code)] // each test binary uses a different part

use std::path::Path;
use std::process::{Command, Output, Stdio};

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

/// [`run_deployer`] with the health check that ends an apply (the local cloud
/// serves the API; on moto the check must fail).
pub fn run_deployer_checking_health(dir: &Path, endpoint: &str, args: &[&str]) -> Output {
    deployer_command(dir, endpoint)
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

fn deployer_command(dir: &Path, endpoint: &str) -> Command {
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
pub async fn deploy_policy(config: &aws_config::SdkConfig) -> serde_json::Value {
    managed_policy(config, "aimodelshare-github-actions-deployment").await
}

/// The default version of the customer managed policy `name` (decoded).
pub async fn managed_policy(config: &aws_config::SdkConfig, name: &str) -> serde_json::Value {
    let iam = aws_sdk_iam::Client::new(config);
    let arn = format!("arn:aws:iam::{}:policy/{name}", emulator::ACCOUNT_ID);
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
        // Above every rank key (16 hexadecimal digits first).
        let everything = "z";
        let buckets = ranking::buckets_up_to(dynamodb, table, class, everything)
            .await
            .expect("buckets");
        assert_eq!(
            buckets.iter().map(|bucket| bucket.entries).sum::<u64>(),
            members.len() as u64,
            "{class}: the buckets count every user once: {buckets:?}"
        );
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
