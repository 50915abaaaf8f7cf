//! Deterministic resource names derived from the settings and the environment
//! (the legacy Terraform names), and the validation of environment names.

use serde::Serialize;

use super::{ConfigError, Settings};

/// The reserved name of the bootstrap stack's state.
pub const BOOTSTRAP: &str = state::BOOTSTRAP_ENVIRONMENT;

/// The prefix of a pull request's preview environment, `pr-<number>`.
pub const PREVIEW_PREFIX: &str = "pr-";

/// The `[env.*]` table every preview environment takes before its own: a
/// settings layer, not an environment.
pub const PREVIEW_LAYER: &str = "preview";

/// Whether `environment` is a pull request's preview, `pr-<number>`.
pub fn is_preview(environment: &str) -> bool {
    environment
        .strip_prefix(PREVIEW_PREFIX)
        .is_some_and(|number| {
            !number.is_empty()
                && !number.starts_with('0')
                && number.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Every name one environment's resources use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvironmentNames {
    pub environment: String,
    pub table: String,
    pub lambda_role: String,
    pub dynamodb_policy: String,
    pub function: String,
    pub log_group: String,
    /// The HTTP API's access log group, `/aws/apigateway/<http_api>`.
    pub access_log_group: String,
    pub http_api: String,
    pub stage: String,
    pub permission_statement: String,
    pub layer: String,
    /// The Cognito user pool of `auth_create_user_pool`, its app client and
    /// its hosted sign-in domain's prefix.
    pub user_pool: String,
    pub app_client: String,
    pub sign_in_domain: String,
}

/// Limits AWS puts on each name, checked so a bad environment fails before any call.
const LIMITS: &[(&str, usize)] = &[
    ("DynamoDB table", 255),
    ("IAM role", 64),
    ("IAM policy", 128),
    ("Lambda function", 64),
    ("log group", 512),
    ("HTTP API", 128),
    ("API stage", 128),
    ("Lambda layer", 64),
    ("Cognito user pool", 128),
    ("Cognito app client", 128),
];

impl EnvironmentNames {
    pub fn new(environment: &str, settings: &Settings) -> Self {
        let prefix = format!("{}-{environment}", settings.name_prefix);
        let function = format!("{prefix}-api");
        Self {
            environment: environment.to_owned(),
            table: format!("{}-{environment}", settings.table_name),
            lambda_role: format!("{prefix}-lambda-role"),
            dynamodb_policy: format!("{prefix}-ddb-rw"),
            log_group: format!("/aws/lambda/{function}"),
            function,
            access_log_group: format!("/aws/apigateway/{prefix}-http-api"),
            http_api: format!("{prefix}-http-api"),
            stage: settings
                .stage_name
                .clone()
                .unwrap_or_else(|| environment.to_owned()),
            permission_statement: "AllowInvokeFromHttpApi".into(),
            layer: format!("{prefix}-extra"),
            user_pool: format!("{prefix}-users"),
            app_client: format!("{prefix}-app"),
            sign_in_domain: settings.auth_domain_prefix.clone().unwrap_or(prefix),
        }
    }

    fn limited(&self) -> [(&str, &str); 11] {
        [
            (&self.table, LIMITS[0].0),
            (&self.lambda_role, LIMITS[1].0),
            (&self.dynamodb_policy, LIMITS[2].0),
            (&self.function, LIMITS[3].0),
            (&self.log_group, LIMITS[4].0),
            (&self.http_api, LIMITS[5].0),
            (&self.stage, LIMITS[6].0),
            (&self.layer, LIMITS[7].0),
            (&self.access_log_group, LIMITS[4].0),
            (&self.user_pool, LIMITS[8].0),
            (&self.app_client, LIMITS[9].0),
        ]
        .map(|(name, kind)| (name.as_str(), kind))
    }
}

/// Check an environment name: lowercase letters, digits and hyphens, starting
/// with a letter, not `bootstrap`, and short enough for every derived name.
pub fn validate_environment(
    environment: &str,
    settings: &Settings,
) -> Result<EnvironmentNames, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidEnvironment {
        environment: environment.to_owned(),
        reason,
    };
    let well_formed = environment
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && environment
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase())
        && !environment.ends_with('-');
    if !well_formed {
        return Err(invalid(
            "use lowercase letters, digits and hyphens, starting with a letter (for example dev, stage, prod)".into(),
        ));
    }
    if environment == BOOTSTRAP {
        return Err(invalid(
            "'bootstrap' names the shared bootstrap stack; use `deployer bootstrap`".into(),
        ));
    }
    if environment == PREVIEW_LAYER {
        return Err(invalid(
            "'preview' names the settings layer of the pull-request previews pr-<number>; \
             use --env pr-<number>"
                .into(),
        ));
    }
    let names = EnvironmentNames::new(environment, settings);
    for (name, kind) in names.limited() {
        let limit = LIMITS
            .iter()
            .find(|(known, _)| *known == kind)
            .map_or(usize::MAX, |(_, limit)| *limit);
        if name.len() > limit {
            return Err(invalid(format!(
                "the {kind} name {name} would be {} characters, over AWS's limit of {limit}",
                name.len()
            )));
        }
    }
    if settings.auth_create_user_pool {
        check_sign_in_domain(&names.sign_in_domain).map_err(|reason| {
            invalid(format!(
                "the hosted sign-in domain prefix {:?} {reason}; set auth_domain_prefix",
                names.sign_in_domain
            ))
        })?;
    }
    Ok(names)
}

/// Cognito's rules for a domain prefix (`<prefix>.auth.<region>.amazoncognito.com`).
fn check_sign_in_domain(prefix: &str) -> Result<(), &'static str> {
    if prefix.is_empty() || prefix.len() > 63 {
        return Err("must be 1 to 63 characters");
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || prefix.starts_with('-')
        || prefix.ends_with('-')
    {
        return Err("must be lowercase letters, digits and inner hyphens");
    }
    if ["aws", "amazon", "cognito"]
        .iter()
        .any(|reserved| prefix.contains(reserved))
    {
        return Err("may not contain aws, amazon or cognito");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_legacy_terraform_names() {
        let names = EnvironmentNames::new("dev", &Settings::default());
        assert_eq!(names.table, "PlaygroundScores-dev");
        assert_eq!(names.lambda_role, "aimodelshare-playground-dev-lambda-role");
        assert_eq!(names.dynamodb_policy, "aimodelshare-playground-dev-ddb-rw");
        assert_eq!(names.function, "aimodelshare-playground-dev-api");
        assert_eq!(
            names.log_group,
            "/aws/lambda/aimodelshare-playground-dev-api"
        );
        assert_eq!(names.http_api, "aimodelshare-playground-dev-http-api");
        assert_eq!(
            names.access_log_group,
            "/aws/apigateway/aimodelshare-playground-dev-http-api"
        );
        assert_eq!(names.stage, "dev");
        assert_eq!(names.permission_statement, "AllowInvokeFromHttpApi");
        assert_eq!(names.layer, "aimodelshare-playground-dev-extra");
        assert_eq!(names.user_pool, "aimodelshare-playground-dev-users");
        assert_eq!(names.app_client, "aimodelshare-playground-dev-app");
        assert_eq!(names.sign_in_domain, "aimodelshare-playground-dev");
    }

    #[test]
    fn previews_are_pr_and_a_pull_request_number() {
        for preview in ["pr-1", "pr-42", "pr-123456"] {
            assert!(is_preview(preview), "{preview}");
        }
        for other in [
            "pr-", "pr-0", "pr-042", "pr-4a", "pr-4-x", "dev", "prod", "preview", "xpr-4",
        ] {
            assert!(!is_preview(other), "{other}");
        }
    }

    #[test]
    fn the_sign_in_domain_follows_cognitos_rules() {
        let mut settings = Settings {
            auth_create_user_pool: true,
            ..Settings::default()
        };
        assert!(validate_environment("dev", &settings).is_ok());
        for bad in ["Class", "my-aws-class", "-class", "class-", &"c".repeat(64)] {
            settings.auth_domain_prefix = Some(bad.to_owned());
            let error = validate_environment("dev", &settings).expect_err(bad);
            assert!(error.to_string().contains("auth_domain_prefix"), "{error}");
        }
        // Only checked when the environment creates its pool.
        settings.auth_create_user_pool = false;
        assert!(validate_environment("dev", &settings).is_ok());
    }

    #[test]
    fn environment_names_are_validated() {
        let settings = Settings::default();
        for good in ["dev", "stage", "prod", "pr-42", "a"] {
            assert!(validate_environment(good, &settings).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Dev",
            "dev_1",
            "1dev",
            "dev-",
            "de v",
            "bootstrap",
            "preview",
            "dév",
        ] {
            let error = validate_environment(bad, &settings).expect_err(bad);
            assert!(error.to_string().contains("environment"), "{error}");
        }
        // The IAM role name is the tightest: 64 - len("aimodelshare-playground--lambda-role").
        let longest = "e".repeat(64 - "aimodelshare-playground--lambda-role".len());
        assert!(validate_environment(&longest, &settings).is_ok());
        let error = validate_environment(&format!("{longest}e"), &settings).expect_err("too long");
        assert!(error.to_string().contains("IAM role"), "{error}");
    }
}
