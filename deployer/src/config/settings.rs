//! Settings: defaults (the legacy Terraform names, so existing deployments are
//! adopted in place), then `deployer.toml`, then its `[env.<name>]` table, then
//! `--var KEY=VALUE` flags. Unknown keys are errors naming the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;

pub use crate::package::Architecture;

/// Every setting, resolved for one environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    pub region: String,
    pub name_prefix: String,
    pub table_name: String,
    pub enable_pitr: bool,
    /// DynamoDB deletion protection on the scores table (destroy lifts it as a
    /// planned step, after a final backup).
    pub deletion_protection: bool,
    pub enable_gsi_by_user: bool,
    pub safe_concurrency: bool,
    /// Whether the function may delete playground tables (`DELETE
    /// /tables/{tableId}`); off by default, so that what is written to an
    /// environment stays unless its configuration says otherwise.
    pub allow_table_delete: bool,
    /// `None`: the environment's name.
    pub stage_name: Option<String>,
    pub cors_allow_origins: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub use_layer: bool,
    pub layer_zip_path: Option<PathBuf>,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub architecture: Architecture,
    pub log_retention_days: u32,
    /// Published versions of the function kept after a release (the newest
    /// ones; those `live` and the recorded releases point at are always kept).
    pub keep_versions: u32,
    /// Concurrent executions reserved for (and capping) the function; 0: none
    /// reserved (the account's unreserved pool, uncapped).
    pub reserved_concurrency: u32,
    /// Requests per second API Gateway lets through the stage (steady state).
    pub throttle_rate_limit: u32,
    /// Requests API Gateway lets through the stage at once (its token bucket).
    pub throttle_burst_limit: u32,
    /// `GET /sessions/{sessionId}`'s own throttling (requests per second, and
    /// at once): that route stays open even where sign-in is required (the
    /// session id is the capability), so guessing ids is kept slow.
    pub session_read_rate_limit: u32,
    pub session_read_burst_limit: u32,
    /// Seconds a sign-in session lives at most (the function's
    /// `SESSION_TTL_SECONDS`); DynamoDB Time to Live then sweeps it.
    pub session_lifetime_s: u32,
    /// Alarm thresholds: sums over 5 minutes of the function's `Errors` and
    /// `Throttles` and of the API's `5xx` answers.
    pub alarm_errors_threshold: u32,
    pub alarm_throttles_threshold: u32,
    pub alarm_5xx_threshold: u32,
    /// SNS topic the alarms notify; `None`: they only change state.
    pub alarm_sns_topic_arn: Option<String>,
    /// Sign-in: the JWT issuer API Gateway verifies tokens of (a Cognito user
    /// pool's issuer URL, say). `None`: the API is open.
    pub auth_issuer: Option<String>,
    /// The audiences (app client ids) a token may be for.
    pub auth_audiences: Vec<String>,
    /// The `cognito:groups` group whose members are admins.
    pub auth_admin_group: String,
    /// With sign-in, whether reads stay open.
    pub allow_public_read: bool,
    /// Sign-in by the environment's own Cognito user pool (with its app
    /// client, admin group and hosted sign-in domain), which then is the
    /// issuer and its client the audience; instead of `auth_issuer`.
    pub auth_create_user_pool: bool,
    /// Where the hosted sign-in page may send a signed-in student back to (the
    /// teaching app's callback URLs); needed with `auth_create_user_pool`.
    pub auth_callback_urls: Vec<String>,
    /// Where the hosted sign-out may send a student back to.
    pub auth_logout_urls: Vec<String>,
    /// The hosted sign-in domain's prefix
    /// (`<prefix>.auth.<region>.amazoncognito.com`); `None`: the
    /// environment's `<name_prefix>-<env>`.
    pub auth_domain_prefix: Option<String>,
    /// `owner/repo` whose workflows may assume the deploy role. No default:
    /// bootstrap refuses to run without it.
    pub github_repository: Option<String>,
    /// The OIDC `sub` claims the deploy role trusts; empty: the GitHub
    /// environments the workflows deploy from (see `stacks::bootstrap`).
    pub github_subjects: Vec<String>,
    pub oidc_thumbprint: String,
    pub state_bucket: String,
    pub lock_table: String,
    pub deploy_role_name: String,
    pub deploy_policy_name: String,
    /// The read-only role (and its policy) a job without approval assumes to
    /// make the plan that prod's reviewers read.
    pub plan_role_name: String,
    pub plan_policy_name: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            name_prefix: "aimodelshare-playground".into(),
            table_name: "PlaygroundScores".into(),
            enable_pitr: true,
            deletion_protection: true,
            enable_gsi_by_user: true,
            safe_concurrency: true,
            allow_table_delete: false,
            stage_name: None,
            cors_allow_origins: vec!["*".into()],
            tags: BTreeMap::new(),
            use_layer: false,
            layer_zip_path: None,
            memory_mb: 256,
            timeout_s: 10,
            architecture: Architecture::X86_64,
            log_retention_days: 14,
            keep_versions: 5,
            // Limits a classroom never reaches but that cap a runaway client
            // (README, "Limits"): a class of 100 joining at once is about 100
            // concurrent requests for a second or two.
            reserved_concurrency: 100,
            throttle_rate_limit: 100,
            throttle_burst_limit: 300,
            // An app reads its session once per page load; a class of 100
            // loading at once is the burst, well under what guessing needs.
            session_read_rate_limit: 10,
            session_read_burst_limit: 20,
            // 200 hours, the legacy handler's lifetime.
            session_lifetime_s: 720_000,
            alarm_errors_threshold: 5,
            alarm_throttles_threshold: 1,
            alarm_5xx_threshold: 5,
            alarm_sns_topic_arn: None,
            auth_issuer: None,
            auth_audiences: Vec::new(),
            auth_admin_group: "admin".into(),
            allow_public_read: true,
            auth_create_user_pool: false,
            auth_callback_urls: Vec::new(),
            auth_logout_urls: Vec::new(),
            auth_domain_prefix: None,
            github_repository: None,
            github_subjects: Vec::new(),
            // GitHub's published intermediate thumbprint; AWS no longer checks it,
            // but the API still requires one.
            oidc_thumbprint: "6938fd4d98bab03faadb97b34396831e3780aea1".into(),
            state_bucket: "aimodelshare-tfstate-prod-copilot-2024".into(),
            lock_table: "aimodelshare-tf-locks".into(),
            deploy_role_name: "aimodelshare-github-oidc-deployer".into(),
            deploy_policy_name: "aimodelshare-github-actions-deployment".into(),
            plan_role_name: "aimodelshare-github-oidc-planner".into(),
            plan_policy_name: "aimodelshare-github-actions-plan".into(),
        }
    }
}

/// A layer of settings from the file, an `[env.*]` table or `--var`: every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsLayer {
    region: Option<String>,
    name_prefix: Option<String>,
    table_name: Option<String>,
    enable_pitr: Option<bool>,
    deletion_protection: Option<bool>,
    enable_gsi_by_user: Option<bool>,
    safe_concurrency: Option<bool>,
    allow_table_delete: Option<bool>,
    stage_name: Option<String>,
    cors_allow_origins: Option<Vec<String>>,
    tags: Option<BTreeMap<String, String>>,
    use_layer: Option<bool>,
    layer_zip_path: Option<PathBuf>,
    memory_mb: Option<u32>,
    timeout_s: Option<u32>,
    architecture: Option<Architecture>,
    log_retention_days: Option<u32>,
    keep_versions: Option<u32>,
    reserved_concurrency: Option<u32>,
    throttle_rate_limit: Option<u32>,
    throttle_burst_limit: Option<u32>,
    session_read_rate_limit: Option<u32>,
    session_read_burst_limit: Option<u32>,
    session_lifetime_s: Option<u32>,
    alarm_errors_threshold: Option<u32>,
    alarm_throttles_threshold: Option<u32>,
    alarm_5xx_threshold: Option<u32>,
    alarm_sns_topic_arn: Option<String>,
    auth_issuer: Option<String>,
    auth_audiences: Option<Vec<String>>,
    auth_admin_group: Option<String>,
    allow_public_read: Option<bool>,
    auth_create_user_pool: Option<bool>,
    auth_callback_urls: Option<Vec<String>>,
    auth_logout_urls: Option<Vec<String>>,
    auth_domain_prefix: Option<String>,
    github_repository: Option<String>,
    github_subjects: Option<Vec<String>>,
    oidc_thumbprint: Option<String>,
    state_bucket: Option<String>,
    lock_table: Option<String>,
    deploy_role_name: Option<String>,
    deploy_policy_name: Option<String>,
    plan_role_name: Option<String>,
    plan_policy_name: Option<String>,
}

/// The keys a layer accepts, for error messages.
pub const KNOWN_KEYS: &[&str] = &[
    "region",
    "name_prefix",
    "table_name",
    "enable_pitr",
    "deletion_protection",
    "enable_gsi_by_user",
    "safe_concurrency",
    "allow_table_delete",
    "stage_name",
    "cors_allow_origins",
    "tags",
    "use_layer",
    "layer_zip_path",
    "memory_mb",
    "timeout_s",
    "architecture",
    "log_retention_days",
    "keep_versions",
    "reserved_concurrency",
    "throttle_rate_limit",
    "throttle_burst_limit",
    "session_read_rate_limit",
    "session_read_burst_limit",
    "session_lifetime_s",
    "alarm_errors_threshold",
    "alarm_throttles_threshold",
    "alarm_5xx_threshold",
    "alarm_sns_topic_arn",
    "auth_issuer",
    "auth_audiences",
    "auth_admin_group",
    "allow_public_read",
    "auth_create_user_pool",
    "auth_callback_urls",
    "auth_logout_urls",
    "auth_domain_prefix",
    "github_repository",
    "github_subjects",
    "oidc_thumbprint",
    "state_bucket",
    "lock_table",
    "deploy_role_name",
    "deploy_policy_name",
    "plan_role_name",
    "plan_policy_name",
];

macro_rules! apply_layer {
    ($settings:expr, $layer:expr, $($field:ident),* ; $($optional:ident),*) => {{
        $(if let Some(value) = $layer.$field { $settings.$field = value; })*
        $(if let Some(value) = $layer.$optional { $settings.$optional = Some(value); })*
    }};
}

impl SettingsLayer {
    /// Whether this layer sets `region`.
    pub fn names_region(&self) -> bool {
        self.region.is_some()
    }
}

impl Settings {
    /// The permissions boundary that caps every execution role the deployer
    /// creates (a bootstrap resource).
    pub fn execution_boundary_name(&self) -> String {
        format!("{}-execution-boundary", self.name_prefix)
    }

    /// Whether requests are signed in: by a named issuer or the environment's
    /// own user pool.
    pub fn sign_in(&self) -> bool {
        self.auth_issuer.is_some() || self.auth_create_user_pool
    }

    /// Apply `layer` over these settings.
    pub fn apply(&mut self, layer: SettingsLayer) {
        apply_layer!(self, layer,
            region, name_prefix, table_name, enable_pitr, deletion_protection, enable_gsi_by_user,
            safe_concurrency, allow_table_delete,
            cors_allow_origins, tags, use_layer, memory_mb, timeout_s, architecture,
            log_retention_days, keep_versions, reserved_concurrency, throttle_rate_limit,
            throttle_burst_limit, session_read_rate_limit, session_read_burst_limit,
            session_lifetime_s, alarm_errors_threshold, alarm_throttles_threshold,
            alarm_5xx_threshold, auth_audiences, auth_admin_group, allow_public_read,
            auth_create_user_pool, auth_callback_urls, auth_logout_urls, github_subjects, oidc_thumbprint,
            state_bucket, lock_table, deploy_role_name, deploy_policy_name,
            plan_role_name, plan_policy_name;
            stage_name, layer_zip_path, github_repository, alarm_sns_topic_arn, auth_issuer,
            auth_domain_prefix);
    }
}

/// The parsed `deployer.toml`: top-level settings and per-environment tables.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    pub path: Option<PathBuf>,
    pub base: SettingsLayer,
    pub environments: BTreeMap<String, SettingsLayer>,
}

/// Top-level settings (checked key by key in [`layer_from_table`]) and `[env.*]` tables.
#[derive(Deserialize)]
struct FileShape {
    #[serde(flatten)]
    base: toml::Table,
    #[serde(default)]
    env: BTreeMap<String, toml::Table>,
}

fn layer_from_table(table: toml::Table, source: &str) -> Result<SettingsLayer, ConfigError> {
    if let Some(unknown) = table.keys().find(|key| !KNOWN_KEYS.contains(&key.as_str())) {
        return Err(ConfigError::UnknownKey {
            key: unknown.clone(),
            origin: source.to_owned(),
        });
    }
    toml::Value::Table(table)
        .try_into()
        .map_err(|error: toml::de::Error| ConfigError::Invalid {
            origin: source.to_owned(),
            detail: error.message().to_owned(),
        })
}

impl ConfigFile {
    /// Parse `text` read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let source = path.display().to_string();
        let shape: FileShape = toml::from_str(text).map_err(|error| ConfigError::Malformed {
            path: source.clone(),
            detail: error.to_string(),
        })?;
        let base = layer_from_table(shape.base, &source)?;
        let mut environments = BTreeMap::new();
        for (name, table) in shape.env {
            let layer = layer_from_table(table, &format!("{source} [env.{name}]"))?;
            environments.insert(name, layer);
        }
        Ok(Self {
            path: Some(path.to_owned()),
            base,
            environments,
        })
    }

    /// Read and parse `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Unreadable {
            path: path.display().to_string(),
            detail: error.to_string(),
        })?;
        Self::parse(&text, path)
    }
}

/// Parse `--var KEY=VALUE` flags into one layer. A value is read as TOML
/// (`memory_mb=512`, `enable_pitr=false`, `cors_allow_origins=["https://a"]`), or
/// as a plain string when it is not valid TOML (`region=eu-west-1`). A
/// comma-separated value of a list setting is a list.
pub fn vars_layer(vars: &[String]) -> Result<SettingsLayer, ConfigError> {
    let mut table = toml::Table::new();
    for var in vars {
        let Some((key, raw)) = var.split_once('=') else {
            return Err(ConfigError::Invalid {
                origin: format!("--var {var}"),
                detail: "expected KEY=VALUE".into(),
            });
        };
        let key = key.trim();
        let parsed = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut parsed| parsed.remove("v"));
        let is_list = matches!(
            key,
            "cors_allow_origins"
                | "github_subjects"
                | "auth_audiences"
                | "auth_callback_urls"
                | "auth_logout_urls"
        );
        let value = match parsed {
            Some(value) if !(is_list && value.is_str()) => value,
            _ if is_list => toml::Value::Array(
                raw.split(',')
                    .map(|item| toml::Value::String(item.trim().to_owned()))
                    .filter(|item| item.as_str() != Some(""))
                    .collect(),
            ),
            Some(value) => value,
            None => toml::Value::String(raw.to_owned()),
        };
        table.insert(key.to_owned(), value);
    }
    layer_from_table(table, "--var")
}
