//! The function's configuration, read from the environment once at start-up.

use crate::store::NewUserWrite;

/// The table name used when `TABLE_NAME` is unset (the legacy default).
pub const DEFAULT_TABLE_NAME: &str = "PlaygroundScores";
/// The local HTTP port used when `PORT` is unset.
pub const DEFAULT_PORT: u16 = 3000;

use crate::schema::function_env::{
    ALLOW_PUBLIC_READ, ALLOW_TABLE_DELETE, AUTH_ADMIN_GROUP, AUTH_ENABLED, SAFE_CONCURRENCY,
    SESSION_TTL_SECONDS, TABLE_NAME,
};

/// The longest session lifetime accepted: a year.
pub const MAX_SESSION_LIFETIME_S: i64 = 31_536_000;

/// A setting that could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}={value:?} is not valid: {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Everything the function reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `TABLE_NAME`: the DynamoDB table.
    pub table_name: String,
    /// `SAFE_CONCURRENCY` (default `true`): how new users are counted.
    pub new_user_write: NewUserWrite,
    /// `ALLOW_TABLE_DELETE` (default `false`): whether `DELETE /tables/{tableId}`
    /// may delete a table; otherwise it answers 403.
    pub allow_table_delete: bool,
    /// `AUTH_ENABLED` (default `false`), `AUTH_ADMIN_GROUP` (default `admin`),
    /// `ALLOW_PUBLIC_READ` (default `true`): who may write what (`api::access`).
    pub access: crate::api::access::Policy,
    /// `CORS_ALLOW_ORIGINS` (local mode only): comma-separated origins, or `*`
    /// (the default). On Lambda, API Gateway's CORS configuration answers.
    pub cors_allow_origins: Vec<String>,
    /// `PORT` (local mode only, default 3000; 0 picks a free port).
    pub port: u16,
    /// `SESSION_TTL_SECONDS` (default 720,000): how long a sign-in session
    /// lives at most; its token's own `exp` can end it sooner.
    pub session_lifetime_s: i64,
    /// `REQUEST_TIMEOUT_MS` (local mode only, default 10,000): each request's
    /// time to answer, as Lambda's timeout gives it on Lambda.
    pub request_timeout: std::time::Duration,
}

/// A boolean variable: true/1/yes or false/0/no (any case), `default` when
/// unset or empty.
fn flag(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match lookup(name)
        .map(|value| value.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") => Ok(default),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(ConfigError::Invalid {
            name,
            value: other.to_owned(),
            expected: "true or false",
        }),
    }
}

impl Config {
    /// Read the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table_name = lookup(TABLE_NAME)
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_TABLE_NAME.to_owned());
        if !valid_table_name(&table_name) {
            return Err(ConfigError::Invalid {
                name: TABLE_NAME,
                value: table_name,
                expected: "3 to 255 characters from A-Z a-z 0-9 _ - .",
            });
        }
        let new_user_write = if flag(&lookup, SAFE_CONCURRENCY, true)? {
            NewUserWrite::Transaction
        } else {
            NewUserWrite::ConditionalPut
        };
        let allow_table_delete = flag(&lookup, ALLOW_TABLE_DELETE, false)?;
        let access = crate::api::access::Policy {
            enabled: flag(&lookup, AUTH_ENABLED, false)?,
            admin_group: lookup(AUTH_ADMIN_GROUP)
                .map(|group| group.trim().to_owned())
                .filter(|group| !group.is_empty())
                .unwrap_or_else(|| "admin".into()),
            public_read: flag(&lookup, ALLOW_PUBLIC_READ, true)?,
        };
        let cors_allow_origins = parse_origins(lookup("CORS_ALLOW_ORIGINS").as_deref());
        let port = match lookup("PORT").filter(|port| !port.trim().is_empty()) {
            None => DEFAULT_PORT,
            Some(port) => port.trim().parse().map_err(|_| ConfigError::Invalid {
                name: "PORT",
                value: port,
                expected: "a TCP port number from 0 to 65535",
            })?,
        };
        let session_lifetime_s = match lookup(SESSION_TTL_SECONDS).filter(|v| !v.trim().is_empty())
        {
            None => crate::store::DEFAULT_SESSION_LIFETIME_S,
            Some(raw) => raw
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|seconds| (1..=MAX_SESSION_LIFETIME_S).contains(seconds))
                .ok_or(ConfigError::Invalid {
                    name: SESSION_TTL_SECONDS,
                    value: raw,
                    expected: "a whole number of seconds from 1 to 31536000 (a year)",
                })?,
        };
        let request_timeout = match lookup("REQUEST_TIMEOUT_MS").filter(|v| !v.trim().is_empty()) {
            None => crate::api::deadline::DEFAULT_REQUEST_TIMEOUT,
            Some(raw) => raw
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| (1_000..=900_000).contains(ms))
                .map(std::time::Duration::from_millis)
                .ok_or(ConfigError::Invalid {
                    name: "REQUEST_TIMEOUT_MS",
                    value: raw,
                    expected: "milliseconds from 1000 to 900000 (Lambda's longest timeout)",
                })?,
        };
        Ok(Self {
            request_timeout,
            session_lifetime_s,
            table_name,
            new_user_write,
            allow_table_delete,
            access,
            cors_allow_origins,
            port,
        })
    }
}

/// `*` or a comma-separated list (a JSON array, as Terraform wrote it, also works).
fn parse_origins(raw: Option<&str>) -> Vec<String> {
    let raw = raw.map(str::trim).unwrap_or("");
    let origins: Vec<String> = if raw.starts_with('[') {
        serde_json::from_str::<Vec<String>>(raw).unwrap_or_default()
    } else {
        raw.split(',')
            .map(|origin| origin.trim().to_owned())
            .collect()
    };
    let origins: Vec<String> = origins
        .into_iter()
        .filter(|origin| !origin.is_empty())
        .collect();
    if origins.is_empty() {
        vec!["*".to_owned()]
    } else {
        origins
    }
}

fn valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = config(&[]).expect("defaults are valid");
        assert_eq!(config.table_name, "PlaygroundScores");
        assert_eq!(config.new_user_write, NewUserWrite::Transaction);
        assert!(
            !config.allow_table_delete,
            "deleting tables is off by default"
        );
        assert_eq!(config.cors_allow_origins, ["*"]);
        assert_eq!(config.port, 3000);
        assert_eq!(config.session_lifetime_s, 720_000);
        assert_eq!(config.request_timeout, std::time::Duration::from_secs(10));
        assert_eq!(
            super::Config::from_lookup(|name| (name == "REQUEST_TIMEOUT_MS").then(|| "2500".into()))
                .expect("valid")
                .request_timeout,
            std::time::Duration::from_millis(2_500)
        );
        assert!(
            super::Config::from_lookup(|name| (name == "REQUEST_TIMEOUT_MS").then(|| "10".into()))
                .is_err()
        );
    }

    #[test]
    fn the_session_lifetime_is_whole_seconds_up_to_a_year() {
        assert_eq!(
            config(&[("SESSION_TTL_SECONDS", " 60 ")])
                .expect("valid")
                .session_lifetime_s,
            60
        );
        for bad in ["0", "-5", "1.5", "31536001", "soon"] {
            let error = config(&[("SESSION_TTL_SECONDS", bad)]).expect_err(bad);
            assert!(error.to_string().contains("SESSION_TTL_SECONDS"), "{error}");
        }
    }

    #[test]
    fn settings_are_read_and_bad_ones_named() {
        let parsed = config(&[
            ("TABLE_NAME", "PlaygroundScores-dev"),
            ("SAFE_CONCURRENCY", "False"),
            ("ALLOW_TABLE_DELETE", " TRUE "),
            ("CORS_ALLOW_ORIGINS", "https://a.example, https://b.example"),
            ("PORT", "0"),
        ])
        .expect("valid");
        assert_eq!(parsed.table_name, "PlaygroundScores-dev");
        assert_eq!(parsed.new_user_write, NewUserWrite::ConditionalPut);
        assert!(parsed.allow_table_delete);
        assert_eq!(
            parsed.cors_allow_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(parsed.port, 0);
        assert_eq!(
            config(&[("CORS_ALLOW_ORIGINS", r#"["https://x.example"]"#)])
                .expect("valid")
                .cors_allow_origins,
            ["https://x.example"]
        );
        let error = config(&[("SAFE_CONCURRENCY", "maybe")]).expect_err("invalid");
        assert!(error.to_string().contains("SAFE_CONCURRENCY"), "{error}");
        for off in ["", "false", "0", "no"] {
            assert!(
                !config(&[("ALLOW_TABLE_DELETE", off)])
                    .expect("valid")
                    .allow_table_delete,
                "{off:?}"
            );
        }
        let error = config(&[("ALLOW_TABLE_DELETE", "sometimes")]).expect_err("invalid");
        assert!(error.to_string().contains("ALLOW_TABLE_DELETE"), "{error}");
        assert!(config(&[("PORT", "http")]).is_err());
        assert!(config(&[("TABLE_NAME", "no spaces allowed")]).is_err());
    }
}
