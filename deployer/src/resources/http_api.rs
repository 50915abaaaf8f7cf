//! The HTTP API (API Gateway v2) with its CORS configuration, its one
//! `AWS_PROXY` integration to the function's `live` alias (payload 2.0, 29 s;
//! never `$LATEST`, so only a checked release serves clients), one route per
//! API endpoint plus `$default`, and the stage (auto-deploy). Found by name; the
//! API id, and so the URL clients use, never changes once created.
//!
//! API Gateway owns CORS: configured on the API, it answers preflights itself
//! and sets the headers on every response, its own included (see the function's
//! `api::cors`), with the function's own values. Without the `$default` route
//! API Gateway would answer unmatched paths and methods itself with
//! `{"message":"Not Found"}`; with it, they reach the function, which answers
//! the API's JSON 404, and 405 with `Allow`.

use aws_sdk_apigatewayv2::config::http::HttpResponse;
use aws_sdk_apigatewayv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_apigatewayv2::types::{Cors, IntegrationType, ProtocolType};
use serde_json::Value;
use std::collections::BTreeMap;

use super::Clients;
use super::cognito_user_pool;
use super::tags::{self, Taggable};
use crate::engine::Doing;
use crate::engine::attributes;
use crate::engine::{
    AttributeChange, AttributeName, AttributeSet, DesiredResource, EngineError, ObservedResource,
    Planned, Resource, Rule, Tags,
};

crate::attributes! {
    /// What is managed of the HTTP API.
    pub struct HttpApiAttributes, enum HttpApiAttribute {
        Protocol protocol: Option<String> => Rule::ForcesReplacement,
        Cors cors: Option<CorsRules>,
        Integration integration: Option<IntegrationTarget>,
        Routes routes: Vec<String> => Rule::Set,
        Authorizer authorizer: Planned<Authorizer>,
        Stage stage: StageValue,
        Tags tags: Tags,
    }
}

/// The API's CORS configuration, as the plan compares it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CorsRules {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub max_age: Option<i32>,
}

attributes::serialized_attribute_values!(CorsRules);

/// The API's Lambda proxy integration, as the plan compares it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IntegrationTarget {
    #[serde(rename = "type")]
    pub kind: String,
    pub uri: Option<String>,
    pub payload_format_version: Option<String>,
    pub timeout_ms: Option<i32>,
}

attributes::serialized_attribute_values!(IntegrationTarget);

/// The API's authorizer, as the plan compares it: `null` when it has none.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Authorizer {
    /// No authorizer: the API is open.
    Open,
    Jwt(JwtAuthorizer),
}

attributes::serialized_attribute_values!(Authorizer);

/// The JWT authorizer: whose tokens, for whom, read from which header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JwtAuthorizer {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub issuer: Option<String>,
    pub audiences: Option<Vec<String>>,
    pub identity_source: Option<String>,
}

/// The stage, as the plan compares it: `null` when the API has none.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct StageValue(pub Option<StageSettings>);

attributes::serialized_attribute_values!(StageValue);

/// The stage's auto-deploy, default throttling, the throttling of each route
/// that has its own (by route key, `null` where the stage has none for it)
/// and its access log.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StageSettings {
    pub name: String,
    pub auto_deploy: bool,
    pub throttle_rate_limit: Option<f64>,
    pub throttle_burst_limit: Option<i32>,
    pub route_throttles: BTreeMap<String, Option<RouteThrottle>>,
    pub access_log_destination: Option<String>,
    pub access_log_format: Option<String>,
}

/// One route's own throttling, as the plan compares it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RouteThrottle {
    pub rate_limit: Option<f64>,
    pub burst_limit: Option<i32>,
}

/// What is only observed of the HTTP API, never managed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HttpApiFacts {
    /// Its base URL, `https://<id>.execute-api.<region>.amazonaws.com`.
    pub endpoint: Option<String>,
}

use schema::cors::{ALLOW_HEADERS, ALLOW_METHODS, MAX_AGE_SECONDS};
use schema::routes::{READ_SESSION_ROUTE, Route};

pub const ADDRESS: &str = "apigatewayv2_api.http";
/// The route API Gateway takes for requests no other route matches.
pub const CATCH_ALL_ROUTE_KEY: &str = "$default";
const INTEGRATION_TIMEOUT_MS: i32 = 29_000;
use super::tags::{MANAGED_BY_KEY, MANAGED_BY_VALUE};

/// Whether observed `tags` mark the API as the deployer's.
fn is_managed(tags: &Value) -> bool {
    tags.get(MANAGED_BY_KEY).and_then(Value::as_str) == Some(MANAGED_BY_VALUE)
}

/// The route keys to register: every route of the API, and `$default`.
pub fn route_keys(routes: &[Route]) -> Vec<String> {
    routes
        .iter()
        .map(Route::route_key)
        .chain(std::iter::once(CATCH_ALL_ROUTE_KEY.to_owned()))
        .collect()
}

/// An existing API found by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundApi {
    pub id: String,
    pub endpoint: String,
}

/// Find the HTTP API named `name`. Several with one name: the one tagged
/// `managed-by = deployer`, else an error listing them (never a guess).
pub async fn find_api(clients: &Clients, name: &str) -> Result<Option<FoundApi>, EngineError> {
    let action = format!("finding HTTP API {name}");
    let mut matches = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let page = clients
            .apigateway
            .get_apis()
            .set_next_token(next_token.clone())
            .send()
            .await
            .doing(|| action.clone())?;
        for api in page.items() {
            if api.name() == Some(name) {
                matches.push(api.clone());
            }
        }
        next_token = page.next_token().map(str::to_owned);
        if next_token.is_none() {
            break;
        }
    }
    let chosen = match matches.len() {
        0 => return Ok(None),
        1 => matches.remove(0),
        _ => {
            let managed: Vec<_> = matches
                .iter()
                .filter(|api| {
                    api.tags()
                        .and_then(|tags| tags.get(MANAGED_BY_KEY))
                        .is_some_and(|v| v == MANAGED_BY_VALUE)
                })
                .cloned()
                .collect();
            if managed.len() == 1 {
                managed[0].clone()
            } else {
                return Err(EngineError::new(
                    action,
                    format!(
                        "{} HTTP APIs have this name ({}); delete the extras, or tag the one to keep with managed-by=deployer",
                        matches.len(),
                        matches
                            .iter()
                            .filter_map(|api| api.api_id())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    };
    Ok(Some(FoundApi {
        id: chosen.api_id().unwrap_or_default().to_owned(),
        endpoint: chosen.api_endpoint().unwrap_or_default().to_owned(),
    }))
}

/// Sign-in at API Gateway: a JWT authorizer `<api>-jwt` (identity source the
/// `Authorization` header) that verifies a token's signature, issuer, audience
/// and expiry before the function runs, attached to every writing route, and to
/// the reading ones when reads are not public. `GET /health`, `GET
/// /openapi.json`, `$default` and [`READ_SESSION_ROUTE`] stay open: an app
/// fetches a stored sign-in session before it has a token, and the session's
/// id is the capability (the route has a throttle of its own, see
/// [`HttpApi::route_throttles`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub issuer: Issuer,
    pub protect_reads: bool,
}

/// Whose tokens the authorizer accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issuer {
    /// An issuer the settings name, and the audiences a token may be for.
    Named { url: String, audiences: Vec<String> },
    /// The environment's own user pool and its app client (the audience),
    /// found by name at apply when the plan cannot know them yet.
    UserPool {
        pool_name: String,
        client_name: String,
        planned: Option<cognito_user_pool::FoundPool>,
    },
}

const IDENTITY_SOURCE: &str = "$request.header.Authorization";
/// How a route behind the authorizer shows in the plan's `routes`.
const JWT_SUFFIX: &str = " (JWT)";
/// The routes (besides `$default`) that are never behind the authorizer.
const OPEN_ROUTES: [Route; 3] = [
    Route {
        method: "GET",
        path: "/health",
    },
    Route {
        method: "GET",
        path: "/openapi.json",
    },
    READ_SESSION_ROUTE,
];

impl Auth {
    /// Whether the route `key` (`METHOD /path`) is behind the authorizer.
    pub fn protects(&self, key: &str) -> bool {
        let open =
            key == CATCH_ALL_ROUTE_KEY || OPEN_ROUTES.iter().any(|route| route.route_key() == key);
        !open && (self.protect_reads || !key.starts_with("GET "))
    }

    fn value(issuer: &str, audiences: &[String]) -> JwtAuthorizer {
        JwtAuthorizer {
            kind: Some("JWT".to_owned()),
            issuer: Some(issuer.to_owned()),
            audiences: Some(audiences.to_vec()),
            identity_source: Some(IDENTITY_SOURCE.to_owned()),
        }
    }

    /// The issuer and audiences, when the plan knows them.
    fn planned(&self) -> Option<(String, Vec<String>)> {
        match &self.issuer {
            Issuer::Named { url, audiences } => Some((url.clone(), audiences.clone())),
            Issuer::UserPool { planned, .. } => planned
                .as_ref()
                .and_then(|pool| Some((pool.issuer.clone(), vec![pool.client_id.clone()?]))),
        }
    }

    /// The issuer and audiences, looking the user pool up when needed.
    async fn resolve(&self, clients: &Clients) -> Result<(String, Vec<String>), EngineError> {
        if let Some(known) = self.planned() {
            return Ok(known);
        }
        let (pool_name, client_name) = match &self.issuer {
            Issuer::Named { url, audiences } => return Ok((url.clone(), audiences.clone())),
            Issuer::UserPool {
                pool_name,
                client_name,
                ..
            } => (pool_name, client_name),
        };
        let missing = || {
            EngineError::new(
                format!("configuring the JWT authorizer for Cognito user pool {pool_name}"),
                format!("the pool or its app client {client_name} does not exist"),
            )
        };
        let pool = cognito_user_pool::find_pool(clients, pool_name, client_name)
            .await?
            .ok_or_else(missing)?;
        let client_id = pool.client_id.ok_or_else(missing)?;
        Ok((pool.issuer, vec![client_id]))
    }
}

/// Route throttling: the stage's default, which every route shares, or one
/// route's own ([`HttpApi::route_throttles`]), which replaces the default for
/// that route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Requests per second in the steady state.
    pub rate_limit: u32,
    /// Requests at once (the token bucket's size).
    pub burst_limit: u32,
}

impl Throttle {
    fn route_settings(self) -> aws_sdk_apigatewayv2::types::RouteSettings {
        aws_sdk_apigatewayv2::types::RouteSettings::builder()
            .throttling_rate_limit(f64::from(self.rate_limit))
            .throttling_burst_limit(self.burst())
            .build()
    }

    fn burst(self) -> i32 {
        i32::try_from(self.burst_limit).unwrap_or(i32::MAX)
    }

    /// A route's throttling as the plan compares it.
    fn value(self) -> RouteThrottle {
        RouteThrottle {
            rate_limit: Some(f64::from(self.rate_limit)),
            burst_limit: Some(self.burst()),
        }
    }
}

/// The stage's access log: one JSON object per request, written by API
/// Gateway into a log group of its own (docs/settings.md documents the fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    /// The log group's ARN, without the `:*` that names its streams.
    pub destination_arn: String,
}

/// The access log's line format: API Gateway fills in each `$context`
/// variable, `-` where a value does not apply. Every value is quoted so a `-`
/// keeps the line valid JSON. The client's address and user agent are left out:
/// the callers are students, and an address is personal data the log would
/// keep for `log_retention_days`.
pub const ACCESS_LOG_FORMAT: &str = concat!(
    r#"{"requestId":"$context.requestId","#,
    r#""requestTime":"$context.requestTime","#,
    r#""httpMethod":"$context.httpMethod","#,
    r#""routeKey":"$context.routeKey","#,
    r#""path":"$context.path","#,
    r#""status":"$context.status","#,
    r#""protocol":"$context.protocol","#,
    r#""responseLength":"$context.responseLength","#,
    r#""responseLatency":"$context.responseLatency","#,
    r#""integrationStatus":"$context.integrationStatus","#,
    r#""integrationLatency":"$context.integrationLatency","#,
    r#""integrationError":"$context.integrationErrorMessage","#,
    r#""error":"$context.error.message"}"#
);

impl AccessLog {
    fn settings(&self) -> aws_sdk_apigatewayv2::types::AccessLogSettings {
        aws_sdk_apigatewayv2::types::AccessLogSettings::builder()
            .destination_arn(&self.destination_arn)
            .format(ACCESS_LOG_FORMAT)
            .build()
    }
}

/// The stage as the plan compares it. `route_throttles`: the throttling of
/// each route that has its own, by route key (`null` where it has none).
fn stage_value(
    name: &str,
    auto_deploy: bool,
    rate_limit: Option<f64>,
    burst_limit: Option<i32>,
    route_throttles: BTreeMap<String, Option<RouteThrottle>>,
    access_log: Option<&aws_sdk_apigatewayv2::types::AccessLogSettings>,
) -> StageSettings {
    StageSettings {
        name: name.to_owned(),
        auto_deploy,
        throttle_rate_limit: rate_limit,
        throttle_burst_limit: burst_limit,
        route_throttles,
        access_log_destination: access_log
            .and_then(|log| log.destination_arn())
            .map(str::to_owned),
        access_log_format: access_log.and_then(|log| log.format()).map(str::to_owned),
    }
}

#[derive(Debug, Clone)]
pub struct HttpApi {
    pub clients: Clients,
    pub name: String,
    pub function_name: String,
    pub stage: String,
    pub throttle: Throttle,
    /// Routes throttled on their own, by route key (the stage's
    /// `RouteSettings`): [`READ_SESSION_ROUTE`], so that guessing session ids
    /// stays slow. Other routes' settings are left as they are.
    pub route_throttles: std::collections::BTreeMap<String, Throttle>,
    pub access_log: AccessLog,
    /// `None`: the API is open (no sign-in).
    pub auth: Option<Auth>,
    pub cors_allow_origins: Vec<String>,
    /// API Gateway route keys, e.g. `GET /tables/{tableId}`.
    pub route_keys: Vec<String>,
    pub tags: std::collections::BTreeMap<String, String>,
    pub depends_on: Vec<String>,
}

/// What a stage read back is, in the plan's terms: the throttling of the
/// routes in `throttled` among its route settings.
fn observed_stage<'a>(
    name: &str,
    stage: &aws_sdk_apigatewayv2::types::Stage,
    throttled: impl Iterator<Item = &'a String>,
) -> StageSettings {
    use aws_sdk_apigatewayv2::types::RouteSettings;
    let settings = stage.default_route_settings();
    let route_throttles = throttled
        .map(|key| {
            let settings = stage.route_settings().and_then(|routes| routes.get(key));
            let throttle = settings.map(|settings| RouteThrottle {
                rate_limit: settings.throttling_rate_limit(),
                burst_limit: settings.throttling_burst_limit(),
            });
            (key.clone(), throttle)
        })
        .collect();
    stage_value(
        name,
        stage.auto_deploy().unwrap_or(false),
        settings.and_then(RouteSettings::throttling_rate_limit),
        settings.and_then(RouteSettings::throttling_burst_limit),
        route_throttles,
        stage.access_log_settings(),
    )
}

impl HttpApi {
    fn desired_stage(&self) -> StageSettings {
        stage_value(
            &self.stage,
            true,
            Some(f64::from(self.throttle.rate_limit)),
            Some(self.throttle.burst()),
            self.route_throttles
                .iter()
                .map(|(key, throttle)| (key.clone(), Some(throttle.value())))
                .collect(),
            Some(&self.access_log.settings()),
        )
    }

    /// The stage's route settings: each throttled route's own.
    fn route_settings(
        &self,
    ) -> Option<std::collections::HashMap<String, aws_sdk_apigatewayv2::types::RouteSettings>> {
        (!self.route_throttles.is_empty()).then(|| {
            self.route_throttles
                .iter()
                .map(|(key, throttle)| (key.clone(), throttle.route_settings()))
                .collect()
        })
    }

    fn observed_stage(&self, stage: &aws_sdk_apigatewayv2::types::Stage) -> StageSettings {
        observed_stage(&self.stage, stage, self.route_throttles.keys())
    }

    fn doing(&self, what: &str) -> String {
        format!("{what} HTTP API {}", self.name)
    }

    /// The integration's target: the function's `live` alias.
    fn function_arn(&self) -> String {
        super::lambda_alias::LambdaAlias::arn_of(&self.clients, &self.function_name)
    }

    fn cors(&self) -> Cors {
        let owned = |values: &[&str]| values.iter().map(|value| (*value).to_owned()).collect();
        Cors::builder()
            .set_allow_origins(Some(self.cors_allow_origins.clone()))
            .set_allow_methods(Some(owned(ALLOW_METHODS)))
            .set_allow_headers(Some(owned(ALLOW_HEADERS)))
            .max_age(MAX_AGE_SECONDS)
            .build()
    }

    fn cors_value(&self) -> CorsRules {
        let owned = |values: &[&str]| values.iter().map(|value| (*value).to_owned()).collect();
        CorsRules {
            allow_origins: self.cors_allow_origins.clone(),
            allow_methods: owned(ALLOW_METHODS),
            allow_headers: owned(ALLOW_HEADERS),
            max_age: Some(MAX_AGE_SECONDS),
        }
    }

    fn integration_value(&self) -> IntegrationTarget {
        IntegrationTarget {
            kind: "AWS_PROXY".to_owned(),
            uri: Some(self.function_arn()),
            payload_format_version: Some("2.0".to_owned()),
            timeout_ms: Some(INTEGRATION_TIMEOUT_MS),
        }
    }

    async fn integration_id(
        &self,
        api_id: &str,
    ) -> Result<Option<(String, IntegrationTarget)>, EngineError> {
        let integrations = self
            .clients
            .apigateway
            .get_integrations()
            .api_id(api_id)
            .send()
            .await
            .doing(|| self.doing("reading the integrations of"))?;
        Ok(integrations
            .items()
            .iter()
            .find(|integration| integration.integration_type() == Some(&IntegrationType::AwsProxy))
            .map(|integration| {
                (
                    integration.integration_id().unwrap_or_default().to_owned(),
                    IntegrationTarget {
                        kind: "AWS_PROXY".to_owned(),
                        uri: integration.integration_uri().map(str::to_owned),
                        payload_format_version: integration
                            .payload_format_version()
                            .map(str::to_owned),
                        timeout_ms: integration.timeout_in_millis(),
                    },
                )
            }))
    }

    async fn ensure_integration(&self, api_id: &str) -> Result<String, EngineError> {
        let wanted = self.integration_value();
        let apigateway = &self.clients.apigateway;
        match self.integration_id(api_id).await? {
            Some((id, current)) if current == wanted => Ok(id),
            Some((id, _)) => {
                apigateway
                    .update_integration()
                    .api_id(api_id)
                    .integration_id(&id)
                    .integration_uri(self.function_arn())
                    .payload_format_version("2.0")
                    .timeout_in_millis(INTEGRATION_TIMEOUT_MS)
                    .send()
                    .await
                    .doing(|| self.doing("updating the integration of"))?;
                Ok(id)
            }
            None => {
                let created = apigateway
                    .create_integration()
                    .api_id(api_id)
                    .integration_type(IntegrationType::AwsProxy)
                    .integration_uri(self.function_arn())
                    .payload_format_version("2.0")
                    .timeout_in_millis(INTEGRATION_TIMEOUT_MS)
                    .send()
                    .await
                    .doing(|| self.doing("creating the integration of"))?;
                Ok(created.integration_id().unwrap_or_default().to_owned())
            }
        }
    }

    async fn ensure_routes(
        &self,
        api_id: &str,
        integration_id: &str,
        authorizer_id: Option<&str>,
    ) -> Result<(), EngineError> {
        use aws_sdk_apigatewayv2::types::AuthorizationType;
        let authorization = |key: &str| match authorizer_id {
            Some(id) if self.protects(key) => (AuthorizationType::Jwt, Some(id.to_owned())),
            _ => (AuthorizationType::None, None),
        };
        let apigateway = &self.clients.apigateway;
        let target = format!("integrations/{integration_id}");
        let existing = apigateway
            .get_routes()
            .api_id(api_id)
            .send()
            .await
            .doing(|| self.doing("reading the routes of"))?;
        for route in existing.items() {
            let key = route.route_key().unwrap_or_default();
            let id = route.route_id().unwrap_or_default();
            if !self.route_keys.iter().any(|wanted| wanted == key) {
                apigateway
                    .delete_route()
                    .api_id(api_id)
                    .route_id(id)
                    .send()
                    .await
                    .doing(|| self.doing(&format!("deleting route {key} of")))?;
            } else {
                let (kind, authorizer) = authorization(key);
                let same_auth = route
                    .authorization_type()
                    .unwrap_or(&AuthorizationType::None)
                    == &kind
                    && (kind == AuthorizationType::None
                        || route.authorizer_id() == authorizer.as_deref());
                if route.target() != Some(target.as_str()) || !same_auth {
                    apigateway
                        .update_route()
                        .api_id(api_id)
                        .route_id(id)
                        .target(&target)
                        .authorization_type(kind)
                        .set_authorizer_id(authorizer)
                        .send()
                        .await
                        .doing(|| self.doing(&format!("updating route {key} of")))?;
                }
            }
        }
        for key in &self.route_keys {
            if !existing
                .items()
                .iter()
                .any(|route| route.route_key() == Some(key.as_str()))
            {
                let (kind, authorizer) = authorization(key);
                apigateway
                    .create_route()
                    .api_id(api_id)
                    .route_key(key)
                    .target(&target)
                    .authorization_type(kind)
                    .set_authorizer_id(authorizer)
                    .send()
                    .await
                    .doing(|| self.doing(&format!("creating route {key} of")))?;
            }
        }
        Ok(())
    }

    async fn ensure_stage(&self, api_id: &str) -> Result<(), EngineError> {
        let apigateway = &self.clients.apigateway;
        let stages = apigateway
            .get_stages()
            .api_id(api_id)
            .send()
            .await
            .doing(|| self.doing("reading the stages of"))?;
        match stages
            .items()
            .iter()
            .find(|stage| stage.stage_name() == Some(self.stage.as_str()))
        {
            Some(stage) if self.observed_stage(stage) == self.desired_stage() => Ok(()),
            Some(_) => {
                // Routes are converged first: API Gateway refuses route
                // settings that name a route the API does not have.
                apigateway
                    .update_stage()
                    .api_id(api_id)
                    .stage_name(&self.stage)
                    .auto_deploy(true)
                    .default_route_settings(self.throttle.route_settings())
                    .set_route_settings(self.route_settings())
                    .access_log_settings(self.access_log.settings())
                    .send()
                    .await
                    .doing(|| {
                        self.doing(
                            "setting auto-deploy, throttling (default and per route) and \
                                 access logs on the stage of",
                        )
                    })?;
                Ok(())
            }
            None => {
                apigateway
                    .create_stage()
                    .api_id(api_id)
                    .stage_name(&self.stage)
                    .auto_deploy(true)
                    .default_route_settings(self.throttle.route_settings())
                    .set_route_settings(self.route_settings())
                    .access_log_settings(self.access_log.settings())
                    .set_tags(Some(self.tags.clone().into_iter().collect()))
                    .send()
                    .await
                    .doing(|| self.doing("creating the stage of"))?;
                Ok(())
            }
        }
    }

    async fn converge_children(&self, api_id: &str) -> Result<(), EngineError> {
        let integration_id = self.ensure_integration(api_id).await?;
        // The authorizer exists before routes name it, and goes after none does.
        let authorizer_id = self.ensure_authorizer(api_id).await?;
        self.ensure_routes(api_id, &integration_id, authorizer_id.as_deref())
            .await?;
        if self.auth.is_none() {
            self.remove_authorizer(api_id).await?;
        }
        self.ensure_stage(api_id).await
    }

    fn protects(&self, key: &str) -> bool {
        self.auth.as_ref().is_some_and(|auth| auth.protects(key))
    }

    fn shown_route(&self, key: &str, jwt: bool) -> String {
        if jwt {
            format!("{key}{JWT_SUFFIX}")
        } else {
            key.to_owned()
        }
    }

    fn authorizer_name(&self) -> String {
        format!("{}-jwt", self.name)
    }

    /// The API's JWT authorizer `<api>-jwt`: its id and what the plan compares.
    async fn find_authorizer(
        &self,
        api_id: &str,
    ) -> Result<Option<(String, JwtAuthorizer)>, EngineError> {
        let found = self
            .clients
            .apigateway
            .get_authorizers()
            .api_id(api_id)
            .send()
            .await
            .doing(|| self.doing("reading the authorizers of"))?;
        let name = self.authorizer_name();
        Ok(found
            .items()
            .iter()
            .find(|authorizer| authorizer.name() == Some(name.as_str()))
            .map(|authorizer| {
                let jwt = authorizer.jwt_configuration();
                (
                    authorizer.authorizer_id().unwrap_or_default().to_owned(),
                    JwtAuthorizer {
                        kind: authorizer
                            .authorizer_type()
                            .map(|kind| kind.as_str().to_owned()),
                        issuer: jwt.and_then(|jwt| jwt.issuer()).map(str::to_owned),
                        audiences: jwt.map(|jwt| jwt.audience().to_vec()),
                        identity_source: authorizer.identity_source().first().cloned(),
                    },
                )
            }))
    }

    /// Create or update the authorizer when sign-in is wanted; its id.
    async fn ensure_authorizer(&self, api_id: &str) -> Result<Option<String>, EngineError> {
        let Some(auth) = &self.auth else {
            return Ok(None);
        };
        let apigateway = &self.clients.apigateway;
        let (issuer, audiences) = auth.resolve(&self.clients).await?;
        let wanted = Auth::value(&issuer, &audiences);
        let jwt = aws_sdk_apigatewayv2::types::JwtConfiguration::builder()
            .issuer(issuer)
            .set_audience(Some(audiences))
            .build();
        match self.find_authorizer(api_id).await? {
            Some((id, current)) if current == wanted => Ok(Some(id)),
            Some((id, _)) => {
                apigateway
                    .update_authorizer()
                    .api_id(api_id)
                    .authorizer_id(&id)
                    .authorizer_type(aws_sdk_apigatewayv2::types::AuthorizerType::Jwt)
                    .identity_source(IDENTITY_SOURCE)
                    .jwt_configuration(jwt)
                    .send()
                    .await
                    .doing(|| self.doing("updating the JWT authorizer of"))?;
                Ok(Some(id))
            }
            None => {
                let created = apigateway
                    .create_authorizer()
                    .api_id(api_id)
                    .name(self.authorizer_name())
                    .authorizer_type(aws_sdk_apigatewayv2::types::AuthorizerType::Jwt)
                    .identity_source(IDENTITY_SOURCE)
                    .jwt_configuration(jwt)
                    .send()
                    .await
                    .doing(|| self.doing("creating the JWT authorizer of"))?;
                Ok(Some(created.authorizer_id().unwrap_or_default().to_owned()))
            }
        }
    }

    /// Delete the authorizer once sign-in is no longer wanted.
    async fn remove_authorizer(&self, api_id: &str) -> Result<(), EngineError> {
        if let Some((id, _)) = self.find_authorizer(api_id).await? {
            self.clients
                .apigateway
                .delete_authorizer()
                .api_id(api_id)
                .authorizer_id(&id)
                .send()
                .await
                .doing(|| self.doing("deleting the JWT authorizer of"))?;
        }
        Ok(())
    }

    fn api_arn(&self, api_id: &str) -> String {
        format!("arn:aws:apigateway:{}::/apis/{api_id}", self.clients.region)
    }

    /// A failed call on the API itself (update, tag, untag, delete). Denied on an
    /// API not tagged managed-by=deployer (one taken over in place), it says how
    /// to go on: the deploy role may not touch such an API, by design.
    fn api_error<E>(
        &self,
        what: &str,
        observed: &ObservedResource,
        error: SdkError<E, HttpResponse>,
    ) -> EngineError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let denied = error
            .code()
            .is_some_and(|code| code.contains("AccessDenied"));
        let mut failure = EngineError::sdk(self.doing(what), error);
        let tags = observed
            .attributes
            .get(HttpApiAttribute::Tags.name())
            .unwrap_or(&Value::Null);
        if denied && !is_managed(tags) {
            failure
                .detail
                .push_str(&takeover_hint(&self.api_arn(&observed.id)));
        }
        failure
    }
}

/// What to do when the deploy role is denied a change to an API that is not
/// tagged managed-by=deployer: by design it may not touch such an API.
fn takeover_hint(api_arn: &str) -> String {
    format!(
        "; this API is not tagged {MANAGED_BY_KEY}={MANAGED_BY_VALUE} (an API taken over in \
         place), and the deploy role may change, tag or delete only APIs that are: run this \
         first apply of the takeover with credentials that may tag it (such as those \
         `deployer bootstrap` runs with), or tag it by hand (`aws apigatewayv2 tag-resource \
         --resource-arn {api_arn} --tags {MANAGED_BY_KEY}={MANAGED_BY_VALUE}`), then apply again"
    )
}

/// An existing API, as its tags are converged.
struct ApiTags<'a> {
    api: &'a HttpApi,
    observed: &'a ObservedResource,
    arn: String,
}

#[async_trait::async_trait]
impl Taggable for ApiTags<'_> {
    async fn untag(&self, keys: Vec<String>) -> Result<(), EngineError> {
        self.api
            .clients
            .apigateway
            .untag_resource()
            .resource_arn(&self.arn)
            .set_tag_keys(Some(keys))
            .send()
            .await
            .map_err(|error| self.api.api_error("untagging", self.observed, error))?;
        Ok(())
    }

    async fn tag(&self, tags: &Tags) -> Result<(), EngineError> {
        self.api
            .clients
            .apigateway
            .tag_resource()
            .resource_arn(&self.arn)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|error| self.api.api_error("tagging", self.observed, error))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Resource for HttpApi {
    fn address(&self) -> &str {
        ADDRESS
    }

    fn desired(&self) -> DesiredResource {
        let mut routes: Vec<String> = self
            .route_keys
            .iter()
            .map(|key| self.shown_route(key, self.protects(key)))
            .collect();
        routes.sort();
        DesiredResource::new(
            self.address(),
            "apigatewayv2_api",
            &self.name,
            HttpApiAttributes {
                protocol: Some("HTTP".into()),
                cors: Some(self.cors_value()),
                integration: Some(self.integration_value()),
                routes,
                authorizer: self
                    .auth
                    .as_ref()
                    .map_or(Planned::Known(Authorizer::Open), |auth| {
                        auth.planned()
                            .map_or(Planned::Unknown, |(issuer, audiences)| {
                                Planned::Known(Authorizer::Jwt(Auth::value(&issuer, &audiences)))
                            })
                    }),
                stage: StageValue(Some(self.desired_stage())),
                tags: self.tags.clone(),
            },
        )
        .depending_on(self.depends_on.clone())
        .never_replaced("its id is in the URL every client uses")
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        let Some(found) = find_api(&self.clients, &self.name).await? else {
            return Ok(None);
        };
        let apigateway = &self.clients.apigateway;
        let api = apigateway
            .get_api()
            .api_id(&found.id)
            .send()
            .await
            .doing(|| self.doing("reading"))?;
        let cors = api.cors_configuration().map(|cors| CorsRules {
            allow_origins: cors.allow_origins().to_vec(),
            allow_methods: cors.allow_methods().to_vec(),
            allow_headers: cors.allow_headers().to_vec(),
            max_age: cors.max_age(),
        });
        let integration = self
            .integration_id(&found.id)
            .await?
            .map(|(_, value)| value);
        let routes = apigateway
            .get_routes()
            .api_id(&found.id)
            .send()
            .await
            .doing(|| self.doing("reading the routes of"))?;
        let mut route_keys: Vec<String> = routes
            .items()
            .iter()
            .filter_map(|route| {
                let jwt = route.authorization_type()
                    == Some(&aws_sdk_apigatewayv2::types::AuthorizationType::Jwt);
                route.route_key().map(|key| self.shown_route(key, jwt))
            })
            .collect();
        route_keys.sort();
        let authorizer = self
            .find_authorizer(&found.id)
            .await?
            .map_or(Authorizer::Open, |(_, value)| Authorizer::Jwt(value));
        let stages = apigateway
            .get_stages()
            .api_id(&found.id)
            .send()
            .await
            .doing(|| self.doing("reading the stages of"))?;
        let stage = stages
            .items()
            .iter()
            .find(|stage| stage.stage_name() == Some(self.stage.as_str()))
            .map(|stage| self.observed_stage(stage));
        let tags = api
            .tags()
            .map(|tags| tags::observed(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
            .unwrap_or_default();
        Ok(Some(
            ObservedResource {
                id: found.id.clone(),
                arn: Some(self.api_arn(&found.id)),
                attributes: HttpApiAttributes {
                    protocol: api.protocol_type().map(|p| p.as_str().to_owned()),
                    cors,
                    integration,
                    routes: route_keys,
                    authorizer: Planned::Known(authorizer),
                    stage: StageValue(stage),
                    tags,
                }
                .into_observed(),
                facts: Default::default(),
            }
            .with_facts(&HttpApiFacts {
                endpoint: Some(found.endpoint),
            }),
        ))
    }

    async fn create(&self) -> Result<(), EngineError> {
        let created = self
            .clients
            .apigateway
            .create_api()
            .name(&self.name)
            .protocol_type(ProtocolType::Http)
            .cors_configuration(self.cors())
            .set_tags(Some(self.tags.clone().into_iter().collect()))
            .send()
            .await
            .doing(|| self.doing("creating"))?;
        let api_id = created.api_id().unwrap_or_default().to_owned();
        self.converge_children(&api_id).await
    }

    async fn update(
        &self,
        observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError> {
        let apigateway = &self.clients.apigateway;
        let api_id = &observed.id;
        let mut children = false;
        // Tags first: an API taken over in place becomes the deployer's
        // (managed-by=deployer) before anything else of it changes.
        let mut ordered: Vec<&AttributeChange> = changes.iter().collect();
        ordered.sort_by_key(|change| change.name != "tags");
        for change in ordered {
            match HttpApiAttributes::name_of(change)? {
                // A new protocol is a new API: the planner refuses it. The endpoint is observed.
                HttpApiAttribute::Protocol => {}
                HttpApiAttribute::Cors => {
                    apigateway
                        .update_api()
                        .api_id(api_id)
                        .cors_configuration(self.cors())
                        .send()
                        .await
                        .map_err(|error| {
                            self.api_error("updating the CORS configuration of", observed, error)
                        })?;
                }
                HttpApiAttribute::Tags => {
                    let api = ApiTags {
                        api: self,
                        observed,
                        arn: self.api_arn(api_id),
                    };
                    tags::converge(&api, &change.old, &self.tags).await?;
                }
                HttpApiAttribute::Integration
                | HttpApiAttribute::Routes
                | HttpApiAttribute::Authorizer
                | HttpApiAttribute::Stage => {
                    children = true;
                }
            }
        }
        if children {
            self.converge_children(api_id).await?;
        }
        Ok(())
    }

    async fn delete(&self, observed: &ObservedResource) -> Result<(), EngineError> {
        self.clients
            .apigateway
            .delete_api()
            .api_id(&observed.id)
            .send()
            .await
            .map_err(|error| self.api_error("deleting", observed, error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{
        Auth, Issuer, READ_SESSION_ROUTE, Throttle, is_managed, observed_stage, stage_value,
        takeover_hint,
    };

    #[test]
    fn the_authorizer_guards_writes_and_reads_only_when_asked() {
        let auth = Auth {
            issuer: Issuer::Named {
                url: "https://issuer.example".into(),
                audiences: vec!["app".into()],
            },
            protect_reads: false,
        };
        assert!(auth.protects("PUT /tables/{tableId}/users/{username}"));
        assert!(auth.protects("POST /tables"));
        assert!(!auth.protects("GET /tables"));
        for open in [
            "GET /health",
            "GET /openapi.json",
            "$default",
            "GET /sessions/{sessionId}",
        ] {
            assert!(!auth.protects(open), "{open}");
        }
        // Starting and ending a session are writes.
        assert!(auth.protects("POST /sessions"));
        assert!(auth.protects("PATCH /sessions/{sessionId}"));
        let closed = Auth {
            protect_reads: true,
            ..auth
        };
        assert!(closed.protects("GET /tables"));
        assert!(closed.protects("GET /tables/{tableId}/users/{username}"));
        assert!(!closed.protects("GET /health"));
        // The session id is the capability: its read stays open.
        assert!(!closed.protects(&READ_SESSION_ROUTE.route_key()));
        assert!(closed.protects("POST /sessions"));
        assert!(closed.protects("PATCH /sessions/{sessionId}"));
    }

    #[test]
    fn a_routes_own_throttle_is_compared_with_what_the_stage_holds_for_it() {
        use aws_sdk_apigatewayv2::types::{RouteSettings, Stage};
        let key = READ_SESSION_ROUTE.route_key();
        let throttled = [(
            key.clone(),
            Throttle {
                rate_limit: 10,
                burst_limit: 20,
            },
        )];
        let wanted = stage_value(
            "dev",
            true,
            Some(100.0),
            Some(300),
            throttled
                .iter()
                .map(|(key, throttle)| (key.clone(), Some(throttle.value())))
                .collect(),
            None,
        );
        let stage = |route: Option<(f64, i32)>| {
            let builder = Stage::builder()
                .stage_name("dev")
                .auto_deploy(true)
                .default_route_settings(
                    RouteSettings::builder()
                        .throttling_rate_limit(100.0)
                        .throttling_burst_limit(300)
                        .build(),
                )
                // Another route's settings are not the deployer's.
                .route_settings(
                    "GET /tables",
                    RouteSettings::builder().throttling_rate_limit(1.0).build(),
                );
            let builder = match route {
                Some((rate, burst)) => builder.route_settings(
                    key.clone(),
                    RouteSettings::builder()
                        .throttling_rate_limit(rate)
                        .throttling_burst_limit(burst)
                        .build(),
                ),
                None => builder,
            };
            builder.build()
        };
        let keys = || throttled.iter().map(|(key, _)| key);
        assert_eq!(
            observed_stage("dev", &stage(Some((10.0, 20))), keys()),
            wanted
        );
        let missing = json!(observed_stage("dev", &stage(None), keys()));
        assert_ne!(missing, json!(wanted));
        assert_eq!(missing["route_throttles"][&key], json!(null));
        let drifted = json!(observed_stage("dev", &stage(Some((50.0, 20))), keys()));
        assert_ne!(drifted, json!(wanted));
        assert_eq!(
            drifted["route_throttles"][&key],
            json!({"rate_limit": 50.0, "burst_limit": 20})
        );
    }

    #[test]
    fn only_the_deployers_tag_marks_an_api_as_managed() {
        assert!(is_managed(
            &json!({"managed-by": "deployer", "project": "x"})
        ));
        assert!(!is_managed(&json!({"managed-by": "another-team"})));
        assert!(!is_managed(&json!({})));
        assert!(!is_managed(&serde_json::Value::Null));
    }

    #[test]
    fn the_takeover_hint_says_how_to_tag_the_api() {
        let hint = takeover_hint("arn:aws:apigateway:us-east-1::/apis/a1b2c3d4e5");
        assert!(hint.contains("credentials that may tag it"), "{hint}");
        assert!(
            hint.contains(
                "aws apigatewayv2 tag-resource --resource-arn \
                 arn:aws:apigateway:us-east-1::/apis/a1b2c3d4e5 --tags managed-by=deployer"
            ),
            "{hint}"
        );
    }
}
