//! One environment's stack: the table, the Lambda execution role and its table
//! policy, the log group, the function, its `live` alias, the HTTP API (which
//! invokes the alias) and the invoke permission (on the alias).

use std::collections::BTreeMap;
use std::sync::Arc;

use schema::routes::{READ_SESSION_ROUTE, ROUTES};
use serde_json::{Value, json};

use crate::config::{EnvironmentNames, Settings};
use crate::engine::Resources;
use crate::package::Code;
use crate::resources::Clients;
use crate::resources::cloudwatch_alarm::{Alarm, DimensionValue};
use crate::resources::cognito_user_pool::{self, CognitoUserPool, FoundPool};
use crate::resources::dynamodb_scores_table::{self, ScoresTable};
use crate::resources::http_api::{self, HttpApi};
use crate::resources::iam_managed_policy::ManagedPolicy;
use crate::resources::iam_role::Role;
use crate::resources::lambda_alias::{self, LambdaAlias, Release, ReleaseRecord};
use crate::resources::lambda_function::{self, FunctionLayer, LambdaFunction};
use crate::resources::lambda_layer::{self, LambdaLayer};
use crate::resources::lambda_permission::InvokePermission;
use crate::resources::log_group::{self, LogGroup};
use crate::resources::tags::{MANAGED_BY_KEY, MANAGED_BY_VALUE};

pub const TABLE_POLICY_ADDRESS: &str = "iam_policy.table_access";
pub const EXECUTION_ROLE_ADDRESS: &str = "iam_role.lambda";
/// AWS's managed policy for Lambda logging (logs:* on `*`, which parliament
/// flags as RESOURCE_STAR: justified in `security/allowed-findings.json`, it is
/// not ours to edit). On an execution role the boundary leaves of it only
/// writing the function's own log streams.
pub const BASIC_EXECUTION_POLICY_ARN: &str =
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";

/// Tags on every resource of environment `names.environment`.
pub fn tags(settings: &Settings, names: &EnvironmentNames) -> BTreeMap<String, String> {
    let mut tags = settings.tags.clone();
    tags.insert("project".into(), "aimodelshare".into());
    tags.insert("workspace".into(), names.environment.clone());
    tags.insert(MANAGED_BY_KEY.into(), MANAGED_BY_VALUE.into());
    tags
}

/// The item operations the function performs on its table. TransactWriteItems
/// has no IAM action of its own: each part of a transaction is authorized as
/// its item operation (a Put as PutItem, an Update as UpdateItem, a Delete as
/// DeleteItem, a ConditionCheck as ConditionCheckItem). So: a user's write
/// puts or updates the user, its counter, its rank entry, bucket and team,
/// and deletes its old rank entry (DeleteItem); a new counter of a legacy
/// table is put with a check that the table exists (ConditionCheckItem); a
/// rank reads buckets and counts entries with Query on the table itself; a
/// page of the table listing reads its tables' user counters with
/// BatchGetItem; deleting a table reads its partition with Query and deletes
/// with BatchWriteItem, which the function refuses to do unless
/// `allow_table_delete` (a user written while its table was being deleted is
/// deleted again, with DeleteItem). The execution boundary allows no more
/// than these.
pub const FUNCTION_TABLE_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
    "dynamodb:Query",
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
];
/// What the function does with its table's indexes (byRank lists a class's
/// users, byCreatedAt the tables; byLeaderboard is only written).
pub const FUNCTION_INDEX_ACTIONS: &[&str] = &["dynamodb:Query"];

/// Exactly the item operations the function performs, on its table and indexes.
/// (cloudsplaining calls PutItem/UpdateItem InfrastructureModification: the
/// function's writes, justified in `security/allowed-findings.json`.)
pub fn table_policy(clients: &Clients, names: &EnvironmentNames) -> Value {
    let table = format!(
        "arn:aws:dynamodb:{}:{}:table/{}",
        clients.region, clients.account_id, names.table
    );
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TableItems",
                "Effect": "Allow",
                "Action": FUNCTION_TABLE_ACTIONS,
                "Resource": table
            },
            {
                "Sid": "TableIndexes",
                "Effect": "Allow",
                "Action": FUNCTION_INDEX_ACTIONS,
                "Resource": format!("{table}/index/*")
            }
        ]
    })
}

/// Lambda may assume the execution role.
pub fn lambda_trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The function's environment variables. (CORS is configured on the HTTP API,
/// which owns it; the function reads `CORS_ALLOW_ORIGINS` only when local.)
pub fn function_environment(
    settings: &Settings,
    names: &EnvironmentNames,
) -> BTreeMap<String, String> {
    use schema::function_env::{
        ALLOW_PUBLIC_READ, ALLOW_TABLE_DELETE, AUTH_ADMIN_GROUP, AUTH_ENABLED, SAFE_CONCURRENCY,
        SESSION_TTL_SECONDS, TABLE_NAME,
    };
    [
        (TABLE_NAME.to_owned(), names.table.clone()),
        (
            SAFE_CONCURRENCY.to_owned(),
            settings.safe_concurrency.to_string(),
        ),
        (
            ALLOW_TABLE_DELETE.to_owned(),
            settings.allow_table_delete.to_string(),
        ),
        (
            SESSION_TTL_SECONDS.to_owned(),
            settings.session_lifetime_s.to_string(),
        ),
    ]
    .into_iter()
    // Sign-in: the function applies the owner rules to the claims API
    // Gateway's authorizer verified (function/src/api/access.rs).
    .chain(
        settings
            .sign_in()
            .then(|| {
                [
                    (AUTH_ENABLED.to_owned(), "true".to_owned()),
                    (
                        AUTH_ADMIN_GROUP.to_owned(),
                        settings.auth_admin_group.clone(),
                    ),
                    (
                        ALLOW_PUBLIC_READ.to_owned(),
                        settings.allow_public_read.to_string(),
                    ),
                ]
            })
            .into_iter()
            .flatten(),
    )
    .collect()
}

/// What the stack needs beyond the settings: the packages to deploy and what
/// was found by name before planning.
#[derive(Debug, Clone)]
pub struct StackInputs {
    /// The function's code.
    pub code: Code,
    /// The layer's zip when `use_layer` (or, for destroy, an empty one so that
    /// an existing layer is found and removed).
    pub layer: Option<LayerInput>,
    /// The HTTP API's id when it already exists.
    pub api_id: Option<String>,
    pub table: TableInputs,
    pub release: ReleaseInputs,
    /// The environment's own user pool, when it is part of the stack (with
    /// `auth_create_user_pool`, or recorded in the state when destroying).
    pub user_pool: Option<UserPoolInputs>,
}

/// What the user pool needs beyond the settings.
#[derive(Debug, Clone, Default)]
pub struct UserPoolInputs {
    /// The pool and its app client, when they exist.
    pub found: Option<FoundPool>,
}

/// The environment's own Cognito user pool with its app client, admin group
/// and hosted sign-in domain.
pub fn user_pool(
    settings: &Settings,
    names: &EnvironmentNames,
    clients: &Clients,
) -> CognitoUserPool {
    CognitoUserPool {
        clients: clients.clone(),
        name: names.user_pool.clone(),
        client_name: names.app_client.clone(),
        admin_group: settings.auth_admin_group.clone(),
        domain: names.sign_in_domain.clone(),
        callback_urls: settings.auth_callback_urls.clone(),
        logout_urls: settings.auth_logout_urls.clone(),
        deletion_protection: settings.deletion_protection,
        tags: tags(settings, names),
    }
}

/// What the function's release needs beyond the settings.
#[derive(Debug, Clone)]
pub struct ReleaseInputs {
    /// Which version `live` should point at (decided before the final plan).
    pub release: Release,
    /// The releases the state records, oldest first.
    pub releases: Vec<ReleaseRecord>,
    /// Invoke a new version before `live` moves to it (off where nothing
    /// can run the function, such as moto).
    pub pre_traffic_check: bool,
}

/// The layer to publish and the ARN of its latest version when that version
/// already holds this zip.
#[derive(Debug, Clone)]
pub struct LayerInput {
    pub content: Code,
    pub current_arn: Option<String>,
}

/// The environment's scores table; `table` says what the state knows of it.
pub fn scores_table(
    settings: &Settings,
    names: &EnvironmentNames,
    clients: &Clients,
    table: TableInputs,
) -> ScoresTable {
    ScoresTable {
        clients: clients.clone(),
        name: names.table.clone(),
        enable_pitr: settings.enable_pitr,
        deletion_protection: settings.deletion_protection,
        enable_gsi_by_user: settings.enable_gsi_by_user,
        prune_indexes: table.prune_indexes,
        index_keys_backfilled: table.index_keys_backfilled,
        tags: tags(settings, names),
    }
}

/// What the scores table needs beyond the settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableInputs {
    /// `--prune-indexes`: delete indexes the schema does not know.
    pub prune_indexes: bool,
    /// The state records that every item has its index keys.
    pub index_keys_backfilled: bool,
}

/// The environment's resources, in dependency order.
pub fn resources(
    settings: &Settings,
    names: &EnvironmentNames,
    clients: &Clients,
    inputs: StackInputs,
) -> Resources {
    let tags = tags(settings, names);
    let policy_arn = ManagedPolicy::arn_of(clients, &names.dynamodb_policy);
    let architecture = settings.architecture;
    let mut resources: Resources = vec![
        Arc::new(scores_table(settings, names, clients, inputs.table)),
        Arc::new(ManagedPolicy {
            clients: clients.clone(),
            address: TABLE_POLICY_ADDRESS.into(),
            name: names.dynamodb_policy.clone(),
            description: format!(
                "Item access of {} to its table {}",
                names.function, names.table
            ),
            document: table_policy(clients, names),
        }),
        Arc::new(Role {
            clients: clients.clone(),
            address: EXECUTION_ROLE_ADDRESS.into(),
            name: names.lambda_role.clone(),
            description: format!("Execution role of {}", names.function),
            trust_policy: lambda_trust_policy(),
            managed_policy_arns: vec![BASIC_EXECUTION_POLICY_ARN.into(), policy_arn],
            permissions_boundary: Some(ManagedPolicy::arn_of(
                clients,
                &settings.execution_boundary_name(),
            )),
            tags: tags.clone(),
            depends_on: vec![TABLE_POLICY_ADDRESS.into()],
        }),
        Arc::new(LogGroup {
            clients: clients.clone(),
            address: log_group::ADDRESS,
            name: names.log_group.clone(),
            retention_days: settings.log_retention_days,
            tags: tags.clone(),
        }),
    ];
    let mut function_depends_on = vec![
        EXECUTION_ROLE_ADDRESS.into(),
        log_group::ADDRESS.into(),
        dynamodb_scores_table::ADDRESS.into(),
    ];
    let function_layer = inputs.layer.map(|layer| {
        resources.push(Arc::new(LambdaLayer {
            clients: clients.clone(),
            name: names.layer.clone(),
            content: layer.content,
            architecture,
        }));
        function_depends_on.push(lambda_layer::ADDRESS.into());
        FunctionLayer {
            name: names.layer.clone(),
            planned_arn: layer.current_arn,
        }
    });
    let release = inputs.release;
    resources.push(Arc::new(LambdaFunction {
        clients: clients.clone(),
        name: names.function.clone(),
        role_name: names.lambda_role.clone(),
        architecture,
        memory_mb: settings.memory_mb,
        timeout_s: settings.timeout_s,
        environment: function_environment(settings, names),
        code: inputs.code.clone(),
        layer: function_layer,
        tags: tags.clone(),
        stage_release: release.release.existing_version().is_none(),
        reserved_concurrency: (settings.reserved_concurrency > 0)
            .then_some(settings.reserved_concurrency),
        depends_on: function_depends_on,
    }));
    resources.push(Arc::new(LambdaAlias {
        clients: clients.clone(),
        function_name: names.function.clone(),
        release: release.release,
        code_sha256: inputs.code.sha256,
        check_stage: release.pre_traffic_check.then(|| names.stage.clone()),
        function_timeout_s: settings.timeout_s,
        keep_versions: settings.keep_versions,
        releases: release.releases,
        depends_on: vec![lambda_function::ADDRESS.into()],
    }));
    let access_log = LogGroup {
        clients: clients.clone(),
        address: log_group::ACCESS_LOG_ADDRESS,
        name: names.access_log_group.clone(),
        retention_days: settings.log_retention_days,
        tags: tags.clone(),
    };
    let access_log_arn = access_log.arn();
    resources.push(Arc::new(access_log));
    let mut api_depends_on = vec![
        lambda_alias::ADDRESS.to_owned(),
        log_group::ACCESS_LOG_ADDRESS.to_owned(),
    ];
    if inputs.user_pool.is_some() {
        resources.push(Arc::new(user_pool(settings, names, clients)));
        if settings.auth_create_user_pool {
            api_depends_on.push(cognito_user_pool::ADDRESS.to_owned());
        }
    }
    let issuer = if settings.auth_create_user_pool {
        Some(http_api::Issuer::UserPool {
            pool_name: names.user_pool.clone(),
            client_name: names.app_client.clone(),
            planned: inputs.user_pool.and_then(|pool| pool.found),
        })
    } else {
        settings
            .auth_issuer
            .as_ref()
            .map(|issuer| http_api::Issuer::Named {
                url: issuer.clone(),
                audiences: settings.auth_audiences.clone(),
            })
    };
    resources.push(Arc::new(HttpApi {
        clients: clients.clone(),
        name: names.http_api.clone(),
        function_name: names.function.clone(),
        stage: names.stage.clone(),
        throttle: http_api::Throttle {
            rate_limit: settings.throttle_rate_limit,
            burst_limit: settings.throttle_burst_limit,
        },
        route_throttles: [(
            READ_SESSION_ROUTE.route_key(),
            http_api::Throttle {
                rate_limit: settings.session_read_rate_limit,
                burst_limit: settings.session_read_burst_limit,
            },
        )]
        .into(),
        access_log: http_api::AccessLog {
            destination_arn: access_log_arn,
        },
        auth: issuer.map(|issuer| http_api::Auth {
            issuer,
            protect_reads: !settings.allow_public_read,
        }),
        cors_allow_origins: settings.cors_allow_origins.clone(),
        route_keys: http_api::route_keys(ROUTES),
        tags: tags.clone(),
        depends_on: api_depends_on,
    }));
    resources.push(Arc::new(InvokePermission {
        clients: clients.clone(),
        function_name: names.function.clone(),
        api_name: names.http_api.clone(),
        statement_id: names.permission_statement.clone(),
        api_id: inputs.api_id.clone(),
        depends_on: vec![http_api::ADDRESS.into(), lambda_alias::ADDRESS.into()],
    }));
    if settings.enable_alarms {
        resources.extend(alarms(settings, names, clients, &inputs.api_id, &tags));
    }
    resources
}

/// The alarms: the function's errors and throttles, the API's 5xx answers.
fn alarms(
    settings: &Settings,
    names: &EnvironmentNames,
    clients: &Clients,
    api_id: &Option<String>,
    tags: &BTreeMap<String, String>,
) -> Vec<Arc<dyn crate::engine::Resource>> {
    let alarm = |address: &str,
                 name: String,
                 description: String,
                 (namespace, metric_name): (&'static str, &'static str),
                 dimensions,
                 threshold,
                 depends_on: &str| {
        Arc::new(Alarm {
            clients: clients.clone(),
            address: address.to_owned(),
            name,
            description,
            namespace,
            metric_name,
            dimensions,
            threshold,
            sns_topic_arn: settings.alarm_sns_topic_arn.clone(),
            tags: tags.clone(),
            depends_on: vec![depends_on.to_owned()],
        }) as Arc<dyn crate::engine::Resource>
    };
    let function = || {
        vec![(
            "FunctionName",
            DimensionValue::Known(names.function.clone()),
        )]
    };
    vec![
        alarm(
            "cloudwatch_alarm.function_errors",
            format!("{}-errors", names.function),
            format!(
                "{}: Errors summed over 5 minutes reach the threshold",
                names.function
            ),
            ("AWS/Lambda", "Errors"),
            function(),
            settings.alarm_errors_threshold,
            lambda_function::ADDRESS,
        ),
        alarm(
            "cloudwatch_alarm.function_throttles",
            format!("{}-throttles", names.function),
            format!(
                "{}: Throttles summed over 5 minutes reach the threshold",
                names.function
            ),
            ("AWS/Lambda", "Throttles"),
            function(),
            settings.alarm_throttles_threshold,
            lambda_function::ADDRESS,
        ),
        alarm(
            "cloudwatch_alarm.api_5xx",
            format!("{}-5xx", names.http_api),
            format!(
                "{}: 5xx answers summed over 5 minutes reach the threshold",
                names.http_api
            ),
            ("AWS/ApiGateway", "5xx"),
            vec![
                (
                    "ApiId",
                    DimensionValue::ApiId {
                        api_name: names.http_api.clone(),
                        planned: api_id.clone(),
                    },
                ),
                ("Stage", DimensionValue::Known(names.stage.clone())),
            ],
            settings.alarm_5xx_threshold,
            http_api::ADDRESS,
        ),
    ]
}

/// What a teaching app needs to sign students in with the environment's own
/// user pool, as observed once applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInOutputs {
    pub issuer: String,
    pub client_id: String,
    pub domain: String,
}

/// An environment's outputs, by name: the one place their names are
/// written. The names are what people and workflows read
/// (`deployer output --env dev api_base_url`), so they never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvironmentOutput {
    ApiBaseUrl,
    DynamodbTableName,
    LambdaName,
    AuthUserPoolId,
    AuthIssuer,
    AuthClientId,
    AuthHostedUiUrl,
    AuthSignInUrl,
    AuthTokenUrl,
    /// The final backup `destroy` took, kept in the state's history.
    FinalBackupArn,
}

impl EnvironmentOutput {
    /// The output's name in the state and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ApiBaseUrl => "api_base_url",
            Self::DynamodbTableName => "dynamodb_table_name",
            Self::LambdaName => "lambda_name",
            Self::AuthUserPoolId => "auth_user_pool_id",
            Self::AuthIssuer => "auth_issuer",
            Self::AuthClientId => "auth_client_id",
            Self::AuthHostedUiUrl => "auth_hosted_ui_url",
            Self::AuthSignInUrl => "auth_sign_in_url",
            Self::AuthTokenUrl => "auth_token_url",
            Self::FinalBackupArn => "final_backup_arn",
        }
    }

    /// This output of `outputs`, when recorded as text.
    pub fn read(self, outputs: &BTreeMap<String, Value>) -> Option<&str> {
        outputs.get(self.name()).and_then(Value::as_str)
    }

    /// Set this output of `outputs` to `value`.
    pub fn write(self, outputs: &mut BTreeMap<String, Value>, value: Value) {
        outputs.insert(self.name().to_owned(), value);
    }
}

/// Outputs once applied: the API's base URL, the table and function names,
/// and with the environment's own user pool, how to sign in.
pub fn outputs(
    settings: &Settings,
    names: &EnvironmentNames,
    api_endpoint: Option<&str>,
    sign_in: Option<SignInOutputs>,
) -> BTreeMap<String, Value> {
    let mut outputs = BTreeMap::new();
    if let Some(endpoint) = api_endpoint {
        EnvironmentOutput::ApiBaseUrl.write(
            &mut outputs,
            json!(format!(
                "{}/{}",
                endpoint.trim_end_matches('/'),
                names.stage
            )),
        );
    }
    EnvironmentOutput::DynamodbTableName.write(&mut outputs, json!(names.table));
    EnvironmentOutput::LambdaName.write(&mut outputs, json!(names.function));
    if let Some(sign_in) = sign_in {
        let hosted = cognito_user_pool::hosted_url(&settings.region, &sign_in.domain);
        let encode = |text: &str| {
            percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        };
        let sign_in_url = settings.auth_callback_urls.first().map(|callback| {
            format!(
                "{hosted}/oauth2/authorize?client_id={}&response_type=code&scope=openid+email+profile&redirect_uri={}",
                encode(&sign_in.client_id),
                encode(callback)
            )
        });
        EnvironmentOutput::AuthUserPoolId
            .write(&mut outputs, json!(sign_in.issuer.rsplit('/').next()));
        EnvironmentOutput::AuthIssuer.write(&mut outputs, json!(sign_in.issuer));
        EnvironmentOutput::AuthClientId.write(&mut outputs, json!(sign_in.client_id));
        EnvironmentOutput::AuthHostedUiUrl.write(&mut outputs, json!(hosted));
        EnvironmentOutput::AuthSignInUrl.write(&mut outputs, json!(sign_in_url));
        EnvironmentOutput::AuthTokenUrl
            .write(&mut outputs, json!(format!("{hosted}/oauth2/token")));
    }
    outputs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outputs_say_how_to_sign_in_with_the_environments_pool() {
        let settings = Settings {
            auth_create_user_pool: true,
            auth_callback_urls: vec!["https://app.example/cb?x=1".into()],
            region: "eu-west-1".into(),
            ..Settings::default()
        };
        let names = EnvironmentNames::new("dev", &settings);
        let outputs = outputs(
            &settings,
            &names,
            Some("https://abc.execute-api.eu-west-1.amazonaws.com"),
            Some(SignInOutputs {
                issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool".into(),
                client_id: "client123".into(),
                domain: "aimodelshare-playground-dev".into(),
            }),
        );
        let hosted = "https://aimodelshare-playground-dev.auth.eu-west-1.amazoncognito.com";
        // The names are what people and workflows read: they never change.
        assert_eq!(
            outputs["api_base_url"],
            json!("https://abc.execute-api.eu-west-1.amazonaws.com/dev")
        );
        assert_eq!(outputs["dynamodb_table_name"], json!(names.table));
        assert_eq!(outputs["lambda_name"], json!(names.function));
        assert_eq!(
            EnvironmentOutput::ApiBaseUrl.read(&outputs),
            Some("https://abc.execute-api.eu-west-1.amazonaws.com/dev")
        );
        assert_eq!(
            outputs["auth_issuer"],
            json!("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool")
        );
        assert_eq!(outputs["auth_user_pool_id"], json!("eu-west-1_Pool"));
        assert_eq!(outputs["auth_client_id"], json!("client123"));
        assert_eq!(outputs["auth_hosted_ui_url"], json!(hosted));
        assert_eq!(
            outputs["auth_sign_in_url"],
            json!(format!(
                "{hosted}/oauth2/authorize?client_id=client123&response_type=code&scope=openid+email+profile\
                 &redirect_uri=https%3A%2F%2Fapp%2Eexample%2Fcb%3Fx%3D1"
            ))
        );
        assert_eq!(
            outputs["auth_token_url"],
            json!(format!("{hosted}/oauth2/token"))
        );
        let without = super::outputs(&settings, &names, None, None);
        assert!(
            !without.keys().any(|key| key.starts_with("auth_")),
            "{without:?}"
        );
    }
}
