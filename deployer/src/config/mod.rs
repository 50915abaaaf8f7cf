//! Configuration: `deployer.toml`, per-environment overrides and `--var`, all
//! checked before any AWS call.

mod names;
mod settings;

use std::path::{Path, PathBuf};

pub use names::{
    BOOTSTRAP, EnvironmentNames, PREVIEW_LAYER, PREVIEW_PREFIX, is_preview, validate_environment,
};
pub use settings::{
    Architecture, ConfigFile, DOCUMENTATION, KNOWN_KEYS, Settings, SettingsLayer, vars_layer,
};

/// The config file used when `--config` is not given and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "deployer.toml";

/// A configuration problem, found before anything touches AWS.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {detail}")]
    Unreadable { path: String, detail: String },
    #[error("config file {path} is not valid TOML: {detail}")]
    Malformed { path: String, detail: String },
    #[error("unknown setting `{key}` in {origin}; known settings: {}", KNOWN_KEYS.join(", "))]
    UnknownKey { key: String, origin: String },
    #[error("invalid setting in {origin}: {detail}")]
    Invalid { origin: String, detail: String },
    #[error("invalid environment name {environment:?}: {reason}")]
    InvalidEnvironment { environment: String, reason: String },
}

/// Where the region came from, most binding first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionSource {
    /// `--region`.
    Flag,
    /// `region` in the config file (or its `[env.*]` table).
    File,
    /// An ambient `AWS_REGION`, used only when neither says.
    Environment,
    /// The built-in default.
    Default,
}

/// Settings resolved for one run.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub region_source: RegionSource,
    /// The folder holding the config file (local state lives in `<dir>/.deployer`).
    pub dir: PathBuf,
}

/// Where the config comes from and what overrides it.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources<'a> {
    /// `--config`; `None` uses `./deployer.toml` when present.
    pub path: Option<&'a Path>,
    /// `--var KEY=VALUE`.
    pub vars: &'a [String],
    /// `--region`: wins over the file.
    pub region: Option<&'a str>,
    /// The ambient `AWS_REGION`: used only when neither `--region` nor the file
    /// names a region (a shell exported for another project must not move prod).
    pub ambient_region: Option<&'a str>,
}

impl Config {
    /// Resolve the settings for `environment` (`None` for the bootstrap stack).
    pub fn resolve(
        sources: &ConfigSources<'_>,
        environment: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let file = match sources.path {
            Some(path) => ConfigFile::load(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                ConfigFile::load(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => ConfigFile::default(),
        };
        let vars = vars_layer(sources.vars)?;
        let mut settings = Settings::default();
        // A preview `pr-<number>` takes `[env.preview]` between the base and
        // its own `[env.pr-<number>]`.
        let preview = environment
            .filter(|name| is_preview(name))
            .and_then(|_| file.environments.get(PREVIEW_LAYER));
        let layers = std::iter::once(&file.base)
            .chain(preview)
            .chain(environment.and_then(|name| file.environments.get(name)));
        let mut region_source = RegionSource::Default;
        for layer in layers {
            if layer.names_region() {
                region_source = RegionSource::File;
            }
            settings.apply(layer.clone());
        }
        if region_source == RegionSource::Default
            && let Some(region) = sources.ambient_region.filter(|region| !region.is_empty())
        {
            settings.region = region.to_owned();
            region_source = RegionSource::Environment;
        }
        if let Some(region) = sources.region {
            settings.region = region.to_owned();
            region_source = RegionSource::Flag;
        }
        if vars.names_region() {
            region_source = RegionSource::Flag;
        }
        settings.apply(vars);
        check(&settings)?;
        let dir = file
            .path
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(Self {
            settings,
            region_source,
            dir,
        })
    }
}

/// How long a sign-in session may live, in seconds: a minute to a year.
pub const SESSION_LIFETIME_S: std::ops::RangeInclusive<u32> = 60..=31_536_000;

/// Value checks AWS would otherwise make halfway through an apply: each
/// setting's own (declared with it, in `settings.rs`), then how settings
/// relate to each other.
fn check(settings: &Settings) -> Result<(), ConfigError> {
    let invalid = |detail: String| ConfigError::Invalid {
        origin: "settings".into(),
        detail,
    };
    settings.check_each().map_err(invalid)?;
    if settings.auth_issuer.is_some() && settings.auth_audiences.is_empty() {
        return Err(invalid(
            "auth_issuer needs auth_audiences: the app client ids a token may be for".into(),
        ));
    }
    if settings.auth_create_user_pool {
        if settings.auth_issuer.is_some() || !settings.auth_audiences.is_empty() {
            return Err(invalid(
                "auth_create_user_pool makes the environment's user pool the issuer and its app \
                 client the audience: leave auth_issuer and auth_audiences unset"
                    .into(),
            ));
        }
        if settings.auth_callback_urls.is_empty() {
            return Err(invalid(
                "auth_create_user_pool needs auth_callback_urls: where the hosted sign-in page \
                 sends a signed-in student back to (the teaching app's URL)"
                    .into(),
            ));
        }
        for (key, url) in settings
            .auth_callback_urls
            .iter()
            .map(|url| ("auth_callback_urls", url))
            .chain(
                settings
                    .auth_logout_urls
                    .iter()
                    .map(|url| ("auth_logout_urls", url)),
            )
        {
            // Cognito takes https, or plain http only for localhost.
            let local = url.starts_with("http://localhost");
            if !(url.starts_with("https://") || local) || url.contains('#') || url.len() < 9 {
                return Err(invalid(format!(
                    "{key}: {url:?} is not an https URL (or http://localhost) without a fragment"
                )));
            }
        }
    }
    if settings.sign_in() && settings.auth_admin_group.trim().is_empty() {
        return Err(invalid("auth_admin_group is empty".into()));
    }
    if settings.use_layer && settings.layer_zip_path.is_none() {
        return Err(invalid("use_layer = true needs layer_zip_path".into()));
    }
    Ok(())
}

/// `90` (seconds), `30s`, `5m`, `1h`, `1m30s` (humantime's units).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(seconds));
    }
    humantime::parse_duration(text)
        .map_err(|error| format!("{text:?} is not a duration such as 30s, 5m or 1h: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("0s"), Ok(std::time::Duration::ZERO));
        assert_eq!(parse_duration("90"), Ok(std::time::Duration::from_secs(90)));
        assert_eq!(
            parse_duration("5m"),
            Ok(std::time::Duration::from_secs(300))
        );
        assert!(parse_duration("soon").is_err());
        assert_eq!(
            parse_duration("1m30s"),
            Ok(std::time::Duration::from_secs(90))
        );
    }

    fn resolve(
        text: &str,
        vars: &[&str],
        environment: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("deployer.toml");
        std::fs::write(&path, text).expect("write config");
        let vars: Vec<String> = vars.iter().map(|var| (*var).to_owned()).collect();
        Config::resolve(
            &ConfigSources {
                path: Some(&path),
                vars: &vars,
                region: None,
                ambient_region: None,
            },
            environment,
        )
    }

    fn region_of(text: &str, flag: Option<&str>, ambient: Option<&str>) -> (String, RegionSource) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("deployer.toml");
        std::fs::write(&path, text).expect("write config");
        let config = Config::resolve(
            &ConfigSources {
                path: Some(&path),
                vars: &[],
                region: flag,
                ambient_region: ambient,
            },
            Some("prod"),
        )
        .expect("valid");
        (config.settings.region, config.region_source)
    }

    #[test]
    fn the_region_is_the_flag_then_the_file_then_an_ambient_aws_region() {
        let file = "region = \"us-east-1\"\n";
        assert_eq!(
            region_of(file, None, Some("eu-west-1")),
            ("us-east-1".to_owned(), RegionSource::File),
            "a shell exported for another project does not move prod"
        );
        assert_eq!(
            region_of(file, Some("us-west-2"), Some("eu-west-1")),
            ("us-west-2".to_owned(), RegionSource::Flag)
        );
        assert_eq!(
            region_of(
                "[env.prod]\nregion = \"ap-south-1\"\n",
                None,
                Some("eu-west-1")
            ),
            ("ap-south-1".to_owned(), RegionSource::File)
        );
        assert_eq!(
            region_of("", None, Some("eu-west-1")),
            ("eu-west-1".to_owned(), RegionSource::Environment),
            "with nothing in the file, the environment's region is used"
        );
        assert_eq!(
            region_of("", None, None),
            ("us-east-1".to_owned(), RegionSource::Default)
        );
    }

    #[test]
    fn environment_tables_override_the_file_and_vars_override_both() {
        let text = "memory_mb = 384\n[env.prod]\nmemory_mb = 1024\nenable_pitr = true\n[env.dev]\nenable_pitr = false\n";
        assert_eq!(
            resolve(text, &[], Some("stage"))
                .expect("ok")
                .settings
                .memory_mb,
            384
        );
        assert_eq!(
            resolve(text, &[], Some("prod"))
                .expect("ok")
                .settings
                .memory_mb,
            1024
        );
        assert!(
            !resolve(text, &[], Some("dev"))
                .expect("ok")
                .settings
                .enable_pitr
        );
        let settings = resolve(
            text,
            &[
                "memory_mb=512",
                "region=eu-west-1",
                "cors_allow_origins=https://a.example,https://b.example",
                "architecture=arm64",
            ],
            Some("prod"),
        )
        .expect("ok")
        .settings;
        assert_eq!(settings.memory_mb, 512);
        assert_eq!(settings.region, "eu-west-1");
        assert_eq!(
            settings.cors_allow_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(settings.architecture, Architecture::Arm64);
    }

    #[test]
    fn a_preview_takes_the_preview_layer_between_the_base_and_its_own() {
        let text = "memory_mb = 384\nlog_retention_days = 30\n\
                    [env.preview]\nmemory_mb = 128\nlog_retention_days = 1\n\
                    [env.pr-7]\nmemory_mb = 512\n";
        let seven = resolve(text, &[], Some("pr-7")).expect("ok").settings;
        assert_eq!(
            seven.memory_mb, 512,
            "its own layer wins over the preview's"
        );
        assert_eq!(
            seven.log_retention_days, 1,
            "the preview's wins over the base"
        );
        let eight = resolve(text, &["memory_mb=1024"], Some("pr-8"))
            .expect("ok")
            .settings;
        assert_eq!((eight.memory_mb, eight.log_retention_days), (1024, 1));
        for other in ["dev", "prod", "pr-x"] {
            let settings = resolve(text, &[], Some(other)).expect("ok").settings;
            assert_eq!(
                (settings.memory_mb, settings.log_retention_days),
                (384, 30),
                "{other} does not take the preview layer"
            );
        }
        let error = resolve(text, &[], Some("pr-7"))
            .and_then(|config| validate_environment("preview", &config.settings))
            .expect_err("preview is a layer");
        assert!(error.to_string().contains("pr-<number>"), "{error}");
    }

    #[test]
    fn the_repositorys_previews_hold_throw_away_data() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deployer.toml");
        let resolve = |environment: &str| {
            Config::resolve(
                &ConfigSources {
                    path: Some(&path),
                    ..ConfigSources::default()
                },
                Some(environment),
            )
            .expect("the repository's deployer.toml resolves")
            .settings
        };
        let preview = resolve("pr-42");
        assert!(!preview.deletion_protection);
        assert!(!preview.final_backup);
        assert!(!preview.enable_alarms);
        assert!(!preview.enable_pitr);
        assert!(preview.log_retention_days <= 3, "short log retention");
        assert!(
            (1..=10).contains(&preview.reserved_concurrency),
            "a low concurrency cap, not none"
        );
        let dev = resolve("dev");
        assert!(dev.deletion_protection && dev.final_backup && dev.enable_alarms);
        assert_eq!(dev.log_retention_days, 14);
    }

    #[test]
    fn bad_config_is_named() {
        let error = resolve("memory_mb = ", &[], None).expect_err("malformed");
        assert!(error.to_string().contains("not valid TOML"), "{error}");
        let error = resolve("memroy_mb = 5", &[], None).expect_err("unknown");
        assert!(error.to_string().contains("memroy_mb"), "{error}");
        let error = resolve("[env.dev]\ncolour = 1", &[], None).expect_err("unknown in env");
        assert!(error.to_string().contains("[env.dev]"), "{error}");
        let error = resolve("", &["nope=1"], None).expect_err("unknown var");
        assert!(
            error.to_string().contains("nope") && error.to_string().contains("--var"),
            "{error}"
        );
        let error = resolve("memory_mb = \"big\"", &[], None).expect_err("wrong type");
        assert!(
            error.to_string().contains("memory_mb") || error.to_string().contains("invalid"),
            "{error}"
        );
        assert!(resolve("", &["memory_mb=64"], None).is_err());
        assert!(resolve("", &["log_retention_days=13"], None).is_err());
        assert!(resolve("", &["github_repository=nobody"], None).is_err());
        assert!(resolve("", &["novalue"], None).is_err());
    }

    #[test]
    fn sessions_settings_default_and_are_checked_before_any_call() {
        let settings = resolve("", &[], Some("dev")).expect("defaults").settings;
        assert_eq!(settings.session_lifetime_s, 720_000);
        assert_eq!(settings.session_read_rate_limit, 10);
        assert_eq!(settings.session_read_burst_limit, 20);
        let settings = resolve(
            "session_lifetime_s = 3600\n[env.dev]\nsession_read_rate_limit = 5\n",
            &["session_read_burst_limit=7"],
            Some("dev"),
        )
        .expect("valid")
        .settings;
        assert_eq!(
            (
                settings.session_lifetime_s,
                settings.session_read_rate_limit,
                settings.session_read_burst_limit
            ),
            (3600, 5, 7)
        );
        for edge in ["session_lifetime_s=60", "session_lifetime_s=31536000"] {
            assert!(resolve("", &[edge], None).is_ok(), "{edge}");
        }
        for (var, message) in [
            (
                "session_lifetime_s=59",
                "session_lifetime_s = 59 must be from 60 (a minute) to 31536000 seconds (a year)",
            ),
            (
                "session_lifetime_s=31536001",
                "session_lifetime_s = 31536001",
            ),
            (
                "session_read_rate_limit=0",
                "session_read_rate_limit = 0 must be from 1 to 10000",
            ),
            (
                "session_read_burst_limit=0",
                "session_read_burst_limit = 0 must be from 1 to 5000",
            ),
            (
                "session_read_burst_limit=5001",
                "session_read_burst_limit = 5001",
            ),
        ] {
            let error = resolve("", &[var], None).expect_err(var).to_string();
            assert!(error.contains(message), "{var}: {error}");
        }
    }

    #[test]
    fn the_environments_own_user_pool_is_checked_before_any_call() {
        let pool = |vars: &[&str]| {
            let mut all = vec!["auth_create_user_pool=true"];
            all.extend_from_slice(vars);
            resolve("", &all, None).map(|config| config.settings)
        };
        let settings = pool(&[
            "auth_callback_urls=https://app.example/cb,http://localhost:8888/cb",
            "auth_logout_urls=https://app.example/",
        ])
        .expect("valid");
        assert!(settings.sign_in());
        assert_eq!(settings.auth_callback_urls.len(), 2);
        for (vars, named) in [
            (&[][..], "auth_callback_urls"),
            (&["auth_callback_urls=http://app.example/cb"][..], "https"),
            (&["auth_callback_urls=https://a.example/#x"][..], "fragment"),
            (
                &[
                    "auth_callback_urls=https://a.example/",
                    "auth_logout_urls=ftp://a.example/",
                ][..],
                "auth_logout_urls",
            ),
            (
                &[
                    "auth_callback_urls=https://a.example/",
                    "auth_issuer=https://issuer.example",
                    "auth_audiences=x",
                ][..],
                "leave auth_issuer",
            ),
            (
                &[
                    "auth_callback_urls=https://a.example/",
                    "auth_admin_group= ",
                ][..],
                "auth_admin_group",
            ),
        ] {
            let error = pool(vars).expect_err(named).to_string();
            assert!(error.contains(named), "{vars:?}: {error}");
        }
    }

    #[test]
    fn the_shipped_deployer_toml_is_valid_and_holds_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deployer.toml");
        let config = Config::resolve(
            &ConfigSources {
                path: Some(&path),
                vars: &[],
                region: None,
                ambient_region: None,
            },
            Some("dev"),
        )
        .expect("shipped config is valid");
        let defaults = Settings::default();
        assert_eq!(config.settings.state_bucket, defaults.state_bucket);
        assert_eq!(config.settings.lock_table, defaults.lock_table);
        assert_eq!(config.settings.name_prefix, defaults.name_prefix);
    }
}
