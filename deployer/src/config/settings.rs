//! Settings: defaults (the legacy Terraform names, so existing deployments are
//! adopted in place), then `deployer.toml`, then its `[env.<name>]` table, then
//! `--var KEY=VALUE` flags. Unknown keys are errors naming the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ConfigError, SESSION_LIFETIME_S};

pub use crate::package::Architecture;

/// Declares every setting once: its documentation, its key (the same in
/// `deployer.toml`, `[env.*]` tables and `--var`), its type, its default and,
/// where a value alone can be wrong, its check. From that one list come
/// [`Settings`] and its `Default`, [`SettingsLayer`] (whose unknown keys serde
/// refuses), [`KNOWN_KEYS`], [`DOCUMENTATION`], how a layer applies and which
/// keys `--var` reads as lists. Checks that relate settings to each other are
/// in `config::check`.
///
/// A declarative macro rather than a derive (cargo-lambda's clap `Args` plus
/// serde): settings come from TOML and `--var KEY=VALUE`, never from their own
/// flags, so clap would add nothing but a second vocabulary.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $ty:ty = $default:expr $(, check $check:expr)?;
    )*) => {
        /// Every setting, resolved for one environment.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        pub struct Settings {
            $($(#[doc = $doc])+ pub $name: $ty,)*
        }

        impl Default for Settings {
            fn default() -> Self {
                Self { $($name: $default,)* }
            }
        }

        /// A layer of settings from the file, an `[env.*]` table or `--var`:
        /// every key optional.
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct SettingsLayer {
            $($name: Option<$ty>,)*
        }

        /// The keys a layer accepts, in declaration order (error messages list them).
        pub const KNOWN_KEYS: &[&str] = &[$(stringify!($name)),*];

        /// Each key with its documentation.
        pub const DOCUMENTATION: &[(&str, &str)] =
            &[$((stringify!($name), concat!($($doc, "\n"),+))),*];

        impl Settings {
            /// Apply `layer` over these settings.
            pub fn apply(&mut self, layer: SettingsLayer) {
                $(if let Some(value) = layer.$name {
                    self.$name = value;
                })*
            }

            /// Every setting's own check, in declaration order: the first
            /// failure's detail.
            pub(super) fn check_each(&self) -> Result<(), String> {
                $($(checked(&self.$name, $check)?;)?)*
                Ok(())
            }
        }

        /// Whether `key` names a list setting (`--var key=a,b` is a list).
        fn is_list(key: &str) -> bool {
            match key {
                $(stringify!($name) => <$ty as SettingType>::LIST,)*
                _ => false,
            }
        }
    };
}

/// What `--var` needs to know of a setting's type.
trait SettingType {
    /// A comma-separated `--var` value is a list of strings.
    const LIST: bool = false;
}

impl SettingType for String {}
impl SettingType for bool {}
impl SettingType for u32 {}
impl SettingType for Architecture {}
impl SettingType for state::LockBackend {}
impl SettingType for BTreeMap<String, String> {}
impl<T: SettingType> SettingType for Option<T> {}
impl SettingType for PathBuf {}
impl SettingType for Vec<String> {
    const LIST: bool = true;
}

/// Run `check` on `value` (a function pointer, so each check's argument type
/// is its setting's).
fn checked<T>(value: &T, check: fn(&T) -> Result<(), String>) -> Result<(), String> {
    check(value)
}

/// `value` is within `range`, or `key = value must be from A to B<unit>`.
fn within(
    key: &str,
    value: u32,
    range: std::ops::RangeInclusive<u32>,
    unit: &str,
) -> Result<(), String> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{key} = {value} must be from {} to {}{unit}",
            range.start(),
            range.end()
        ))
    }
}

/// An alarm threshold of 0 would alarm all the time.
fn alarm_threshold(key: &str, threshold: u32) -> Result<(), String> {
    if threshold == 0 {
        return Err(format!(
            "{key} = 0 would alarm all the time; the alarm fires when the 5-minute sum reaches it (1 or more)"
        ));
    }
    Ok(())
}

/// The retentions CloudWatch Logs accepts, in days.
const RETENTION: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

settings! {
    /// The AWS region every resource lives in.
    region: String = "us-east-1".into(), check |region| {
        let region_ok = !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if region_ok {
            Ok(())
        } else {
            Err(format!("region = {region:?} is not an AWS region name"))
        }
    };
    /// The prefix of every resource name (`<name_prefix>-<env>-...`).
    name_prefix: String = "aimodelshare-playground".into();
    /// The scores table's name; an environment's table is `<table_name>-<env>`.
    table_name: String = "PlaygroundScores".into();
    /// Point-in-time recovery on the scores table.
    enable_pitr: bool = true;
    /// DynamoDB deletion protection on the scores table (destroy lifts it as a
    /// planned step, after a final backup).
    deletion_protection: bool = true;
    /// Whether `destroy --env` takes a final backup of the scores table before
    /// deleting it (false: as `--skip-final-backup`, its items are lost; for
    /// throw-away previews).
    final_backup: bool = true;
    /// The `byUser` index on the scores table.
    enable_gsi_by_user: bool = true;
    /// The function's `SAFE_CONCURRENCY`: a new user and its count written in
    /// one transaction.
    safe_concurrency: bool = true;
    /// Whether the function may delete playground tables (`DELETE
    /// /tables/{tableId}`); off by default, so that what is written to an
    /// environment stays unless its configuration says otherwise.
    allow_table_delete: bool = false;
    /// `None`: the environment's name.
    stage_name: Option<String> = None;
    /// The origins API Gateway's CORS answers allow (`*`: any).
    cors_allow_origins: Vec<String> = vec!["*".into()], check |origins| {
        if origins.is_empty() {
            return Err("cors_allow_origins must list at least one origin (or \"*\")".into());
        }
        Ok(())
    };
    /// Tags on every taggable resource, besides the deployer's own.
    tags: BTreeMap<String, String> = BTreeMap::new();
    /// Whether the function runs with the layer published from `layer_zip_path`.
    use_layer: bool = false;
    /// The layer's zip, relative to the config file's folder.
    layer_zip_path: Option<PathBuf> = None;
    /// The function's memory, in MB.
    memory_mb: u32 = 256, check |memory_mb| within("memory_mb", *memory_mb, 128..=10_240, "");
    /// The function's timeout, in seconds.
    timeout_s: u32 = 10, check |timeout_s| within("timeout_s", *timeout_s, 1..=900, "");
    /// The function's CPU architecture (`x86_64` or `arm64`).
    architecture: Architecture = Architecture::X86_64;
    /// Days the function's and the API's logs are kept (a CloudWatch retention).
    log_retention_days: u32 = 14, check |days| {
        if RETENTION.contains(days) {
            Ok(())
        } else {
            Err(format!(
                "log_retention_days = {days} is not a CloudWatch retention; use one of {RETENTION:?}"
            ))
        }
    };
    /// Published versions of the function kept after a release (the newest
    /// ones; those `live` and the recorded releases point at are always kept).
    keep_versions: u32 = 5, check |kept| within(
        "keep_versions",
        *kept,
        1..=100,
        " (versions kept after a release, for rollback)",
    );
    /// Concurrent executions reserved for (and capping) the function; 0: none
    /// reserved (the account's unreserved pool, uncapped).
    // Limits a classroom never reaches but that cap a runaway client
    // (docs/settings.md, "Limits"): a class of 100 joining at once is about
    // 100 concurrent requests for a second or two.
    reserved_concurrency: u32 = 100, check |reserved| {
        if *reserved > 100_000 {
            return Err(format!(
                "reserved_concurrency = {reserved} is more than any Lambda quota; 0 reserves none"
            ));
        }
        Ok(())
    };
    /// Requests per second API Gateway lets through the stage (steady state).
    throttle_rate_limit: u32 = 100, check |rate| within(
        "throttle_rate_limit",
        *rate,
        1..=10_000,
        " requests per second (API Gateway's account quota)",
    );
    /// Requests API Gateway lets through the stage at once (its token bucket).
    throttle_burst_limit: u32 = 300, check |burst| within(
        "throttle_burst_limit",
        *burst,
        1..=5_000,
        " requests (API Gateway's account quota)",
    );
    /// `GET /sessions/{sessionId}`'s own throttling (requests per second, and
    /// at once): that route stays open even where sign-in is required (the
    /// session id is the capability), so guessing ids is kept slow.
    // An app reads its session once per page load; a class of 100 loading at
    // once is the burst, well under what guessing needs.
    session_read_rate_limit: u32 = 10, check |rate| within(
        "session_read_rate_limit",
        *rate,
        1..=10_000,
        " requests per second (API Gateway's account quota)",
    );
    /// Requests `GET /sessions/{sessionId}` lets through at once.
    session_read_burst_limit: u32 = 20, check |burst| within(
        "session_read_burst_limit",
        *burst,
        1..=5_000,
        " requests (API Gateway's account quota)",
    );
    /// Seconds a sign-in session lives at most (the function's
    /// `SESSION_TTL_SECONDS`); DynamoDB Time to Live then sweeps it.
    // 200 hours, the legacy handler's lifetime.
    session_lifetime_s: u32 = 720_000, check |lifetime| {
        if SESSION_LIFETIME_S.contains(lifetime) {
            return Ok(());
        }
        Err(format!(
            "session_lifetime_s = {lifetime} must be from {} (a minute) to {} seconds (a year): how long a \
             sign-in session lives at most",
            SESSION_LIFETIME_S.start(),
            SESSION_LIFETIME_S.end()
        ))
    };
    /// Alarm thresholds: sums over 5 minutes of the function's `Errors` and
    /// `Throttles` and of the API's `5xx` answers.
    alarm_errors_threshold: u32 = 5,
        check |threshold| alarm_threshold("alarm_errors_threshold", *threshold);
    /// The function's `Throttles` over 5 minutes that fire its alarm.
    alarm_throttles_threshold: u32 = 1,
        check |threshold| alarm_threshold("alarm_throttles_threshold", *threshold);
    /// The API's `5xx` answers over 5 minutes that fire its alarm.
    alarm_5xx_threshold: u32 = 5,
        check |threshold| alarm_threshold("alarm_5xx_threshold", *threshold);
    /// Whether the environment has its three alarms (off for throw-away
    /// previews: an apply then deletes any it has).
    enable_alarms: bool = true;
    /// SNS topic the alarms notify; `None`: they only change state.
    alarm_sns_topic_arn: Option<String> = None, check |topic| match topic {
        Some(topic) if !(topic.starts_with("arn:aws") && topic.contains(":sns:")) => Err(format!(
            "alarm_sns_topic_arn = {topic:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
        )),
        _ => Ok(()),
    };
    /// Sign-in: the JWT issuer API Gateway verifies tokens of (a Cognito user
    /// pool's issuer URL, say). `None`: the API is open.
    auth_issuer: Option<String> = None, check |issuer| {
        let Some(issuer) = issuer else {
            return Ok(());
        };
        // API Gateway takes only https issuers; plain http on loopback is for a
        // local identity provider in tests.
        let loopback =
            issuer.starts_with("http://127.0.0.1:") || issuer.starts_with("http://localhost:");
        if !(issuer.starts_with("https://") || loopback) || issuer.len() < 10 {
            return Err(format!(
                "auth_issuer = {issuer:?} is not an https URL (for a Cognito user pool: https://cognito-idp.REGION.amazonaws.com/POOL_ID)"
            ));
        }
        Ok(())
    };
    /// The audiences (app client ids) a token may be for.
    auth_audiences: Vec<String> = Vec::new();
    /// The `cognito:groups` group whose members are admins.
    auth_admin_group: String = "admin".into();
    /// With sign-in, whether reads stay open.
    allow_public_read: bool = true;
    /// Sign-in by the environment's own Cognito user pool (with its app
    /// client, admin group and hosted sign-in domain), which then is the
    /// issuer and its client the audience; instead of `auth_issuer`.
    auth_create_user_pool: bool = false;
    /// Where the hosted sign-in page may send a signed-in student back to (the
    /// teaching app's callback URLs); needed with `auth_create_user_pool`.
    auth_callback_urls: Vec<String> = Vec::new();
    /// Where the hosted sign-out may send a student back to.
    auth_logout_urls: Vec<String> = Vec::new();
    /// The hosted sign-in domain's prefix
    /// (`<prefix>.auth.<region>.amazoncognito.com`); `None`: the
    /// environment's `<name_prefix>-<env>`.
    auth_domain_prefix: Option<String> = None;
    /// `owner/repo` whose workflows may assume the deploy role. No default:
    /// bootstrap refuses to run without it.
    github_repository: Option<String> = None, check |repository| {
        let Some(repository) = repository else {
            return Ok(());
        };
        let repository_ok = repository.split_once('/').is_some_and(|(owner, repo)| {
            !owner.is_empty()
                && !repo.is_empty()
                && !repo.contains('/')
                && repository
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
        });
        if !repository_ok {
            return Err(format!("github_repository = {repository:?} must be owner/repo"));
        }
        Ok(())
    };
    /// The OIDC `sub` claims the deploy role trusts; empty: the GitHub
    /// environments the workflows deploy from (see `stacks::bootstrap`).
    github_subjects: Vec<String> = Vec::new();
    /// The thumbprint GitHub's OIDC provider is created with.
    // GitHub's published intermediate thumbprint; AWS no longer checks it, but
    // the API still requires one.
    oidc_thumbprint: String = "6938fd4d98bab03faadb97b34396831e3780aea1".into();
    /// The S3 bucket that keeps every stack's state (a bootstrap resource).
    state_bucket: String = "aimodelshare-tfstate-prod-copilot-2024".into(), check |bucket| {
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'));
        if !bucket_ok {
            return Err(format!(
                "state_bucket = {bucket:?} is not a valid S3 bucket name (3-63 lowercase letters, digits, '-' or '.')"
            ));
        }
        Ok(())
    };
    /// The legacy DynamoDB lock table (Terraform's layout), kept while
    /// `lock_backend` uses it.
    lock_table: String = "aimodelshare-tf-locks".into();
    /// Where the state's lock is kept: `s3` (the state object's `.tflock` file,
    /// as Terraform 1.11's `use_lockfile`), `dynamodb` (the legacy lock table)
    /// or `both`. Unset: `both` while the lock table exists, `s3` when it does
    /// not.
    lock_backend: Option<state::LockBackend> = None;
    /// How long a lock stays its holder's without a heartbeat, e.g. `10m`; the
    /// holder renews it every third of this. A lock whose last heartbeat is
    /// older is stale: the next run takes it over.
    lock_lease: String = "10m".into(), check |lease| {
        match super::parse_duration(lease) {
            Ok(lease) if lease.as_secs() >= 1 && lease.as_secs() <= 24 * 3600 => Ok(()),
            Ok(_) => Err(format!("lock_lease = {lease:?} must be from 1s to 24h")),
            Err(error) => Err(format!("lock_lease: {error}")),
        }
    };
    /// The role GitHub's workflows assume to deploy.
    deploy_role_name: String = "aimodelshare-github-oidc-deployer".into();
    /// The deploy role's policy.
    deploy_policy_name: String = "aimodelshare-github-actions-deployment".into();
    /// The read-only role a job without approval assumes to make the plan
    /// that prod's reviewers read.
    plan_role_name: String = "aimodelshare-github-oidc-planner".into();
    /// The plan role's policy.
    plan_policy_name: String = "aimodelshare-github-actions-plan".into();
    /// The role a pull request's workflow assumes to apply and destroy its
    /// preview `pr-<number>`, and nothing else.
    preview_role_name: String = "aimodelshare-github-oidc-preview".into();
    /// The preview role's policy.
    preview_policy_name: String = "aimodelshare-github-actions-preview".into();
}

impl Settings {
    /// `lock_lease` as a duration (checked when the settings were resolved).
    pub fn lock_lease(&self) -> std::time::Duration {
        super::parse_duration(&self.lock_lease).unwrap_or(std::time::Duration::from_secs(600))
    }
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
        let is_list = is_list(key);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings table users read: docs/settings.md.
    fn settings_reference() -> String {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        std::fs::read_to_string(root.join("docs/settings.md"))
            .expect("the settings reference, docs/settings.md, is readable")
    }

    #[test]
    fn every_setting_is_documented_here_and_in_the_settings_reference() {
        let reference = settings_reference();
        assert_eq!(
            DOCUMENTATION
                .iter()
                .map(|(key, _)| *key)
                .collect::<Vec<_>>(),
            KNOWN_KEYS
        );
        for (key, documentation) in DOCUMENTATION {
            assert!(
                !documentation.trim().is_empty(),
                "{key} has no documentation"
            );
            assert!(
                reference.contains(&format!("`{key}`")),
                "the settings reference does not mention `{key}`"
            );
        }
    }

    #[test]
    fn the_list_settings_are_the_lists_of_strings() {
        let lists: Vec<&str> = KNOWN_KEYS
            .iter()
            .copied()
            .filter(|key| is_list(key))
            .collect();
        assert_eq!(
            lists,
            [
                "cors_allow_origins",
                "auth_audiences",
                "auth_callback_urls",
                "auth_logout_urls",
                "github_subjects"
            ]
        );
    }

    #[test]
    fn an_optional_setting_is_set_by_a_layer_and_kept_without_one() {
        let mut settings = Settings::default();
        settings.apply(vars_layer(&["stage_name=v1".into()]).expect("valid"));
        assert_eq!(settings.stage_name.as_deref(), Some("v1"));
        settings.apply(SettingsLayer::default());
        assert_eq!(settings.stage_name.as_deref(), Some("v1"));
    }

    #[test]
    fn the_defaults_pass_their_own_checks() {
        assert_eq!(Settings::default().check_each(), Ok(()));
    }
}
