//! The environment's own sign-in (`auth_create_user_pool`): a Cognito user
//! pool whose accounts only admins create, its public app client (the
//! audience of the API's JWT authorizer), the admin group and the hosted
//! sign-in domain. One resource, as the HTTP API is with its children: the
//! client, the group and the domain live and die with their pool.
//!
//! The pool holds the students' accounts, which no backup can bring back
//! (Cognito exports no passwords): it is deletion-protected like the scores
//! table, never replaced, and `destroy` keeps it unless told
//! (`commands/destroy.rs`). Updates start from what Cognito describes, since
//! `UpdateUserPool` and `UpdateUserPoolClient` reset every field they are not
//! sent: Lambda triggers, e-mail settings or token lifetimes set by hand on an
//! adopted pool survive an apply. Tags go through `UpdateUserPool` too (its
//! `UserPoolTags`), which every emulator and AWS serve alike.

use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata;
use aws_sdk_cognitoidentityprovider::types::{
    AdminCreateUserConfigType, DeletionProtectionType, ExplicitAuthFlowsType, IssuerType,
    OAuthFlowType, PasswordPolicyType, PreventUserExistenceErrorTypes, UserPoolClientType,
    UserPoolPolicyType, UserPoolType, UsernameConfigurationType, VerifiedAttributeType,
};

use super::tags::{MANAGED_BY_KEY, MANAGED_BY_VALUE};
use super::{Clients, tags};
use crate::engine::Doing;
use crate::engine::attributes;
use crate::engine::{
    AttributeChange, AttributeSet, DesiredResource, EngineError, ObservedResource, Resource, Tags,
};

pub const ADDRESS: &str = "cognito_user_pool.sign_in";

crate::attributes! {
    /// What is managed of the pool and its children.
    pub struct UserPoolAttributes, enum UserPoolAttribute {
        AdminGroup admin_group: Option<String>,
        Client client: Option<AppClient>,
        DeletionProtection deletion_protection: Option<bool>,
        Domain domain: Option<String>,
        SignUp sign_up: Option<SignUp>,
        Tags tags: Tags,
    }
}

/// What is only observed of the pool, never managed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UserPoolFacts {
    /// Cognito's estimate of the pool's accounts.
    pub accounts: Option<i64>,
    /// The issuer of the pool's tokens.
    pub issuer: Option<String>,
    /// The app client's id.
    pub client_id: Option<String>,
}

/// Passwords: at least 12 characters, with each of the four classes Cognito
/// knows. (Every class is required explicitly: the SDK leaves a `false`
/// requirement out of the request, and a missing one is read as false by some
/// implementations and as true by others; a `true` is read alike by all.)
const PASSWORD_MINIMUM_LENGTH: i32 = 12;
const PASSWORD_CLASSES: [&str; 4] = ["lowercase", "uppercase", "numbers", "symbols"];
/// The days an admin's temporary password stays valid.
const TEMPORARY_PASSWORD_DAYS: i32 = 7;
/// How a teaching app signs in: the hosted page (authorization code, which a
/// public client protects with PKCE) or the SDK, with SRP or the password sent
/// to Cognito over TLS (what a notebook's `initiate_auth` does).
const AUTH_FLOWS: [&str; 3] = [
    "ALLOW_REFRESH_TOKEN_AUTH",
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_USER_SRP_AUTH",
];
const SCOPES: [&str; 3] = ["email", "openid", "profile"];
/// Sign-in with the pool's own accounts.
const COGNITO_PROVIDER: &str = "COGNITO";

/// The user pool, its app client, admin group and domain.
#[derive(Debug, Clone)]
pub struct CognitoUserPool {
    pub clients: Clients,
    pub name: String,
    pub client_name: String,
    pub admin_group: String,
    pub domain: String,
    pub callback_urls: Vec<String>,
    pub logout_urls: Vec<String>,
    pub deletion_protection: bool,
    pub tags: Tags,
}

/// What the HTTP API's authorizer and the outputs need of an existing pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPool {
    pub id: String,
    pub issuer: String,
    /// The app client's id, when the client exists.
    pub client_id: Option<String>,
}

/// The issuer URL Cognito writes into the pool's tokens: its `UPDATED` issuer
/// configuration has its own host, the `ORIGINAL` one (and a pool that says
/// neither) the regional endpoint.
pub fn issuer_of(region: &str, pool: &UserPoolType) -> String {
    let id = pool.id().unwrap_or_default();
    let updated = pool
        .issuer_configuration()
        .and_then(|configuration| configuration.r#type())
        == Some(&IssuerType::Updated);
    if updated {
        format!("https://issuer-cognito-idp.{region}.amazonaws.com/{id}")
    } else {
        format!("https://cognito-idp.{region}.amazonaws.com/{id}")
    }
}

/// The hosted sign-in's base URL for domain prefix `domain`.
pub fn hosted_url(region: &str, domain: &str) -> String {
    format!("https://{domain}.auth.{region}.amazoncognito.com")
}

/// The pool named `name` and its client `client_name`, found by name
/// (ListUserPools, DescribeUserPool, ListUserPoolClients).
pub async fn find_pool(
    clients: &Clients,
    name: &str,
    client_name: &str,
) -> Result<Option<FoundPool>, EngineError> {
    match find_described(clients, name).await? {
        Some(pool) => Ok(Some(found_of(clients, &pool, client_name).await?)),
        None => Ok(None),
    }
}

/// What the authorizer and the outputs need of the described `pool`.
async fn found_of(
    clients: &Clients,
    pool: &UserPoolType,
    client_name: &str,
) -> Result<FoundPool, EngineError> {
    let id = pool.id().unwrap_or_default().to_owned();
    Ok(FoundPool {
        issuer: issuer_of(&clients.region, pool),
        client_id: find_client_id(clients, &id, client_name).await?,
        id,
    })
}

async fn describe_pool(clients: &Clients, id: &str) -> Result<UserPoolType, EngineError> {
    let action = format!("reading Cognito user pool {id}");
    clients
        .cognito
        .describe_user_pool()
        .user_pool_id(id)
        .send()
        .await
        .doing(|| action.clone())?
        .user_pool
        .ok_or_else(|| EngineError::new(action, "Cognito described no pool"))
}

fn is_managed(pool: &UserPoolType) -> bool {
    pool.user_pool_tags()
        .and_then(|tags| tags.get(MANAGED_BY_KEY))
        .is_some_and(|value| value == MANAGED_BY_VALUE)
}

/// The pool named `name`, described. When names collide, the one tagged
/// managed-by=deployer; an error when that does not tell.
async fn find_described(
    clients: &Clients,
    name: &str,
) -> Result<Option<UserPoolType>, EngineError> {
    let action = format!("finding the Cognito user pool {name}");
    let mut ids = Vec::new();
    let mut next_token = None;
    loop {
        let page = clients
            .cognito
            .list_user_pools()
            .max_results(60)
            .set_next_token(next_token)
            .send()
            .await
            .doing(|| action.clone())?;
        ids.extend(
            page.user_pools()
                .iter()
                .filter(|pool| pool.name() == Some(name))
                .filter_map(|pool| pool.id().map(str::to_owned)),
        );
        next_token = page.next_token().map(str::to_owned);
        if next_token.is_none() {
            break;
        }
    }
    let mut pools = Vec::new();
    for id in &ids {
        let described = clients
            .cognito
            .describe_user_pool()
            .user_pool_id(id)
            .send()
            .await;
        match described {
            Ok(output) => pools.extend(output.user_pool),
            // The deploy and plan roles may describe only pools tagged
            // managed-by=deployer: among namesakes, one they may not read is
            // another's.
            Err(error)
                if ids.len() > 1
                    && error.code().is_some_and(|code| {
                        code == "AccessDeniedException" || code == "NotAuthorizedException"
                    }) => {}
            Err(error) => {
                return Err(EngineError::sdk(
                    format!("reading Cognito user pool {id}"),
                    error,
                ));
            }
        }
    }
    if pools.len() > 1 {
        pools.retain(is_managed);
    }
    match pools.len() {
        0 if ids.is_empty() => Ok(None),
        1 => Ok(pools.pop()),
        _ => Err(EngineError::new(
            action,
            format!(
                "{} user pools have this name ({}) and the tag {MANAGED_BY_KEY}={MANAGED_BY_VALUE} \
                 does not tell which is this environment's: tag the one to keep, or rename the \
                 others (their accounts stay), and apply again",
                ids.len(),
                ids.join(", ")
            ),
        )),
    }
}

async fn find_client_id(
    clients: &Clients,
    pool_id: &str,
    client_name: &str,
) -> Result<Option<String>, EngineError> {
    let action = format!("finding the app client {client_name} of Cognito user pool {pool_id}");
    let mut next_token = None;
    loop {
        let page = clients
            .cognito
            .list_user_pool_clients()
            .user_pool_id(pool_id)
            .max_results(60)
            .set_next_token(next_token)
            .send()
            .await
            .doing(|| action.clone())?;
        if let Some(client) = page
            .user_pool_clients()
            .iter()
            .find(|client| client.client_name() == Some(client_name))
        {
            return Ok(client.client_id().map(str::to_owned));
        }
        next_token = page.next_token().map(str::to_owned);
        if next_token.is_none() {
            return Ok(None);
        }
    }
}

/// The app client as the plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppClient {
    pub name: String,
    /// A public client (a browser or a notebook) can keep no secret.
    pub secret: bool,
    pub auth_flows: Vec<String>,
    pub oauth_flows: Vec<String>,
    pub scopes: Vec<String>,
    pub callback_urls: Vec<String>,
    pub logout_urls: Vec<String>,
    /// Sign-in failures do not tell whether a username exists.
    pub hides_whether_accounts_exist: bool,
}

attributes::serialized_attribute_values!(AppClient);

/// Who may create accounts and how passwords are chosen, as the plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignUp {
    pub accounts_created_by: AccountCreation,
    pub password_minimum_length: Option<i32>,
    /// The character classes a password needs, of [`PASSWORD_CLASSES`].
    pub password_requires: Vec<String>,
    pub temporary_password_days: Option<i32>,
    pub verified_attributes: Vec<String>,
}

attributes::serialized_attribute_values!(SignUp);

/// Who creates a pool's accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum AccountCreation {
    #[serde(rename = "admins only")]
    AdminsOnly,
    #[serde(rename = "anyone (self sign-up)")]
    Anyone,
}

/// The app client's settings, on CreateUserPoolClient and
/// UpdateUserPoolClient alike: two builder types with the same methods.
macro_rules! client_settings {
    ($request:expr, $pool:expr) => {
        $request
            .set_explicit_auth_flows(Some(AUTH_FLOWS.map(ExplicitAuthFlowsType::from).to_vec()))
            .allowed_o_auth_flows(OAuthFlowType::Code)
            .set_allowed_o_auth_scopes(Some(SCOPES.map(str::to_owned).to_vec()))
            .allowed_o_auth_flows_user_pool_client(true)
            .set_callback_urls(Some(sorted($pool.callback_urls.clone())))
            .set_logout_urls(Some(sorted($pool.logout_urls.clone())))
            .prevent_user_existence_errors(PreventUserExistenceErrorTypes::Enabled)
            .enable_token_revocation(true)
    };
}

/// A list as a set: sorted, each value once.
fn sorted(values: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    let mut values: Vec<String> = values.into_iter().map(Into::into).collect();
    values.sort();
    values.dedup();
    values
}

impl CognitoUserPool {
    fn doing(&self, what: &str) -> String {
        format!("{what} Cognito user pool {}", self.name)
    }

    fn desired_sign_up() -> SignUp {
        SignUp {
            accounts_created_by: AccountCreation::AdminsOnly,
            password_minimum_length: Some(PASSWORD_MINIMUM_LENGTH),
            password_requires: PASSWORD_CLASSES.map(str::to_owned).to_vec(),
            temporary_password_days: Some(TEMPORARY_PASSWORD_DAYS),
            verified_attributes: vec!["email".into()],
        }
    }

    fn desired_client(&self) -> AppClient {
        AppClient {
            name: self.client_name.clone(),
            secret: false,
            auth_flows: sorted(AUTH_FLOWS),
            oauth_flows: vec!["code".into()],
            scopes: sorted(SCOPES),
            callback_urls: sorted(self.callback_urls.clone()),
            logout_urls: sorted(self.logout_urls.clone()),
            hides_whether_accounts_exist: true,
        }
    }

    fn observed_client(client: &UserPoolClientType) -> AppClient {
        AppClient {
            name: client.client_name().unwrap_or_default().to_owned(),
            secret: client.client_secret().is_some(),
            auth_flows: sorted(
                client
                    .explicit_auth_flows()
                    .iter()
                    .map(|flow| flow.as_str()),
            ),
            oauth_flows: sorted(
                client
                    .allowed_o_auth_flows()
                    .iter()
                    .map(|flow| flow.as_str()),
            ),
            scopes: sorted(client.allowed_o_auth_scopes().to_vec()),
            callback_urls: sorted(client.callback_urls().to_vec()),
            logout_urls: sorted(client.logout_urls().to_vec()),
            hides_whether_accounts_exist: client.prevent_user_existence_errors()
                == Some(&PreventUserExistenceErrorTypes::Enabled),
        }
    }

    fn observed_sign_up(pool: &UserPoolType) -> SignUp {
        let password = pool
            .policies()
            .and_then(UserPoolPolicyType::password_policy);
        let required: Vec<String> = password
            .map(|policy| {
                [
                    (policy.require_lowercase(), "lowercase"),
                    (policy.require_uppercase(), "uppercase"),
                    (policy.require_numbers(), "numbers"),
                    (policy.require_symbols(), "symbols"),
                ]
                .into_iter()
                .filter(|(required, _)| *required)
                .map(|(_, class)| class.to_owned())
                .collect()
            })
            .unwrap_or_default();
        let admins_only = pool
            .admin_create_user_config()
            .is_some_and(AdminCreateUserConfigType::allow_admin_create_user_only);
        SignUp {
            accounts_created_by: if admins_only {
                AccountCreation::AdminsOnly
            } else {
                AccountCreation::Anyone
            },
            password_minimum_length: password.and_then(PasswordPolicyType::minimum_length),
            password_requires: required,
            temporary_password_days: password
                .map(PasswordPolicyType::temporary_password_validity_days),
            verified_attributes: sorted(pool.auto_verified_attributes().iter().map(|a| a.as_str())),
        }
    }

    /// The password policy, over what the pool has (its password history, say).
    /// The password policy, over what the pool has (its password history
    /// and its sign-in policy, the first factors it allows).
    fn policies(current: Option<&UserPoolPolicyType>) -> UserPoolPolicyType {
        let password = PasswordPolicyType::builder()
            .set_password_history_size(
                current
                    .and_then(UserPoolPolicyType::password_policy)
                    .and_then(PasswordPolicyType::password_history_size),
            )
            .minimum_length(PASSWORD_MINIMUM_LENGTH)
            .require_lowercase(true)
            .require_uppercase(true)
            .require_numbers(true)
            .require_symbols(true)
            .temporary_password_validity_days(TEMPORARY_PASSWORD_DAYS)
            .build();
        UserPoolPolicyType::builder()
            .password_policy(password)
            .set_sign_in_policy(current.and_then(|policies| policies.sign_in_policy().cloned()))
            .build()
    }

    fn admin_create_only(current: Option<&AdminCreateUserConfigType>) -> AdminCreateUserConfigType {
        // The invitation's wording, if set, is kept.
        AdminCreateUserConfigType::builder()
            .allow_admin_create_user_only(true)
            .set_invite_message_template(
                current.and_then(|config| config.invite_message_template().cloned()),
            )
            .build()
    }

    fn protection(on: bool) -> DeletionProtectionType {
        if on {
            DeletionProtectionType::Active
        } else {
            DeletionProtectionType::Inactive
        }
    }

    /// UpdateUserPool with what the pool has, and ours over it: the sign-up
    /// rules, deletion protection `protect` and the tags.
    async fn update_pool(&self, pool_id: &str, protect: bool) -> Result<(), EngineError> {
        let pool = describe_pool(&self.clients, pool_id).await?;
        self.clients
            .cognito
            .update_user_pool()
            .user_pool_id(pool_id)
            .policies(Self::policies(pool.policies()))
            .deletion_protection(Self::protection(protect))
            .set_lambda_config(pool.lambda_config().cloned())
            .auto_verified_attributes(VerifiedAttributeType::Email)
            .set_sms_verification_message(pool.sms_verification_message().map(str::to_owned))
            .set_email_verification_message(pool.email_verification_message().map(str::to_owned))
            .set_email_verification_subject(pool.email_verification_subject().map(str::to_owned))
            .set_verification_message_template(pool.verification_message_template().cloned())
            .set_sms_authentication_message(pool.sms_authentication_message().map(str::to_owned))
            .set_user_attribute_update_settings(pool.user_attribute_update_settings().cloned())
            .set_mfa_configuration(pool.mfa_configuration().cloned())
            .set_device_configuration(pool.device_configuration().cloned())
            .set_email_configuration(pool.email_configuration().cloned())
            .set_sms_configuration(pool.sms_configuration().cloned())
            .set_user_pool_tags(Some(self.tags.clone().into_iter().collect()))
            .admin_create_user_config(Self::admin_create_only(pool.admin_create_user_config()))
            .set_user_pool_add_ons(pool.user_pool_add_ons().cloned())
            .set_account_recovery_setting(pool.account_recovery_setting().cloned())
            // Left out, the tier would fall back to ESSENTIALS and the issuer
            // and key settings to their defaults.
            .set_user_pool_tier(pool.user_pool_tier().cloned())
            .set_key_configuration(pool.key_configuration().cloned())
            .set_issuer_configuration(pool.issuer_configuration().cloned())
            .send()
            .await
            .doing(|| self.doing("updating"))?;
        Ok(())
    }

    /// Create the app client, or update it over what it has (token lifetimes,
    /// attribute permissions).
    async fn ensure_client(&self, pool_id: &str) -> Result<(), EngineError> {
        let cognito = &self.clients.cognito;
        let Some(client_id) = find_client_id(&self.clients, pool_id, &self.client_name).await?
        else {
            let request = cognito
                .create_user_pool_client()
                .user_pool_id(pool_id)
                .client_name(&self.client_name)
                .generate_secret(false)
                .supported_identity_providers(COGNITO_PROVIDER);
            client_settings!(request, self)
                .send()
                .await
                .doing(|| self.client_doing("creating"))?;
            return Ok(());
        };
        let current = self
            .describe_client(pool_id, &client_id, "updating")
            .await?
            .unwrap_or_else(|| UserPoolClientType::builder().build());
        let request = cognito
            .update_user_pool_client()
            .user_pool_id(pool_id)
            .client_id(&client_id)
            .client_name(&self.client_name)
            .set_refresh_token_validity(
                Some(current.refresh_token_validity()).filter(|days| *days > 0),
            )
            .set_access_token_validity(current.access_token_validity())
            .set_id_token_validity(current.id_token_validity())
            .set_token_validity_units(current.token_validity_units().cloned())
            .set_read_attributes(Some(current.read_attributes().to_vec()).filter(|a| !a.is_empty()))
            .set_write_attributes(
                Some(current.write_attributes().to_vec()).filter(|a| !a.is_empty()),
            )
            .set_analytics_configuration(current.analytics_configuration().cloned())
            .set_auth_session_validity(current.auth_session_validity())
            // A default redirect set by hand stays while it is a callback URL.
            .set_default_redirect_uri(
                current
                    .default_redirect_uri()
                    .filter(|uri| self.callback_urls.iter().any(|url| url == uri))
                    .map(str::to_owned),
            )
            .set_enable_propagate_additional_user_context_data(
                current.enable_propagate_additional_user_context_data(),
            )
            // Identity providers federated by hand (a school's SAML, say) stay.
            .set_supported_identity_providers(Some(sorted(
                current
                    .supported_identity_providers()
                    .iter()
                    .map(String::as_str)
                    .chain([COGNITO_PROVIDER]),
            )));
        client_settings!(request, self)
            .send()
            .await
            .doing(|| self.client_doing("updating"))?;
        Ok(())
    }

    /// `what` (reading, updating) the app client, for messages.
    fn client_doing(&self, what: &str) -> String {
        self.doing(&format!("{what} the app client {} of", self.client_name))
    }

    /// The app client as Cognito describes it; `what` is the step it is for.
    async fn describe_client(
        &self,
        pool_id: &str,
        client_id: &str,
        what: &str,
    ) -> Result<Option<UserPoolClientType>, EngineError> {
        Ok(self
            .clients
            .cognito
            .describe_user_pool_client()
            .user_pool_id(pool_id)
            .client_id(client_id)
            .send()
            .await
            .doing(|| self.client_doing(what))?
            .user_pool_client)
    }

    /// Whether the group exists (GetGroup).
    async fn has_group(&self, pool_id: &str) -> Result<bool, EngineError> {
        let found = self
            .clients
            .cognito
            .get_group()
            .user_pool_id(pool_id)
            .group_name(&self.admin_group)
            .send()
            .await;
        crate::engine::existing(
            found,
            |error| error.code() == Some("ResourceNotFoundException"),
            self.doing(&format!("reading the group {} of", self.admin_group)),
        )
        .map(|group| group.is_some())
    }

    async fn ensure_group(&self, pool_id: &str) -> Result<(), EngineError> {
        if self.has_group(pool_id).await? {
            return Ok(());
        }
        self.clients
            .cognito
            .create_group()
            .user_pool_id(pool_id)
            .group_name(&self.admin_group)
            .description("Admins of the playground API: may change any table and any score")
            .send()
            .await
            .doing(|| self.doing(&format!("creating the group {} of", self.admin_group)))?;
        Ok(())
    }

    /// Give the pool the domain prefix wanted, after deleting another it had.
    async fn ensure_domain(&self, pool_id: &str, current: Option<&str>) -> Result<(), EngineError> {
        if current == Some(self.domain.as_str()) {
            return Ok(());
        }
        if let Some(old) = current {
            self.delete_domain(pool_id, old).await?;
        }
        self.clients
            .cognito
            .create_user_pool_domain()
            .user_pool_id(pool_id)
            .domain(&self.domain)
            .send()
            .await
            .map_err(|error| {
                let invalid = error.code() == Some("InvalidParameterException");
                let mut failure = EngineError::sdk(
                    self.doing(&format!("creating the sign-in domain {} of", self.domain)),
                    error,
                );
                if invalid {
                    failure.detail.push_str(
                        "; if the prefix is taken (prefixes are unique across AWS in a region), \
                         set auth_domain_prefix to another",
                    );
                }
                failure
            })?;
        Ok(())
    }

    async fn delete_domain(&self, pool_id: &str, domain: &str) -> Result<(), EngineError> {
        self.clients
            .cognito
            .delete_user_pool_domain()
            .user_pool_id(pool_id)
            .domain(domain)
            .send()
            .await
            .doing(|| self.doing(&format!("deleting the sign-in domain {domain} of")))?;
        Ok(())
    }

    /// The pool's children, created or brought to what is wanted.
    async fn converge_children(
        &self,
        pool_id: &str,
        domain: Option<&str>,
    ) -> Result<(), EngineError> {
        self.ensure_client(pool_id).await?;
        self.ensure_group(pool_id).await?;
        self.ensure_domain(pool_id, domain).await
    }
}

#[async_trait::async_trait]
impl Resource for CognitoUserPool {
    fn address(&self) -> &str {
        ADDRESS
    }

    fn desired(&self) -> DesiredResource {
        DesiredResource::new(
            self.address(),
            "cognito_user_pool",
            &self.name,
            UserPoolAttributes {
                admin_group: Some(self.admin_group.clone()),
                client: Some(self.desired_client()),
                deletion_protection: Some(self.deletion_protection),
                domain: Some(self.domain.clone()),
                sign_up: Some(Self::desired_sign_up()),
                tags: self.tags.clone(),
            },
        )
        .never_replaced("it holds the students' accounts, which no backup brings back")
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        let Some(pool) = find_described(&self.clients, &self.name).await? else {
            return Ok(None);
        };
        let found = found_of(&self.clients, &pool, &self.client_name).await?;
        let client = match &found.client_id {
            None => None,
            Some(client_id) => {
                self.describe_client(&found.id, client_id, "reading")
                    .await?
            }
        };
        let tags = pool
            .user_pool_tags()
            .map(|tags| tags::observed(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
            .unwrap_or_default();
        Ok(Some(
            ObservedResource {
                id: found.id.clone(),
                arn: pool.arn().map(str::to_owned),
                attributes: UserPoolAttributes {
                    admin_group: self
                        .has_group(&found.id)
                        .await?
                        .then(|| self.admin_group.clone()),
                    client: client.as_ref().map(Self::observed_client),
                    deletion_protection: Some(
                        pool.deletion_protection() == Some(&DeletionProtectionType::Active),
                    ),
                    domain: pool.domain().map(str::to_owned),
                    sign_up: Some(Self::observed_sign_up(&pool)),
                    tags,
                }
                .into_observed(),
                facts: Default::default(),
            }
            .with_facts(&UserPoolFacts {
                accounts: Some(i64::from(pool.estimated_number_of_users())),
                issuer: Some(found.issuer),
                client_id: found.client_id.clone(),
            }),
        ))
    }

    async fn create(&self) -> Result<(), EngineError> {
        let created = self
            .clients
            .cognito
            .create_user_pool()
            .pool_name(&self.name)
            .policies(Self::policies(None))
            .deletion_protection(Self::protection(self.deletion_protection))
            .auto_verified_attributes(VerifiedAttributeType::Email)
            .admin_create_user_config(Self::admin_create_only(None))
            // Usernames are what the leaderboards show and what PUT .../users/{username}
            // names: "Ada" and "ada" are one student. Fixed at creation by Cognito.
            .username_configuration(
                UsernameConfigurationType::builder()
                    .case_sensitive(false)
                    .build()
                    .map_err(|error| EngineError::new(self.doing("creating"), error.to_string()))?,
            )
            .set_user_pool_tags(Some(self.tags.clone().into_iter().collect()))
            .send()
            .await
            .doing(|| self.doing("creating"))?;
        let pool_id = created
            .user_pool()
            .and_then(UserPoolType::id)
            .ok_or_else(|| EngineError::new(self.doing("creating"), "Cognito returned no pool id"))?
            .to_owned();
        self.converge_children(&pool_id, None).await
    }

    async fn update(
        &self,
        observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError> {
        let mut pool = false;
        let mut children = false;
        for change in changes {
            match UserPoolAttributes::name_of(change)? {
                UserPoolAttribute::SignUp
                | UserPoolAttribute::DeletionProtection
                | UserPoolAttribute::Tags => pool = true,
                UserPoolAttribute::Client
                | UserPoolAttribute::AdminGroup
                | UserPoolAttribute::Domain => children = true,
            }
        }
        if pool {
            self.update_pool(&observed.id, self.deletion_protection)
                .await?;
        }
        if children {
            let domain = observed.attribute::<String>(UserPoolAttribute::Domain);
            self.converge_children(&observed.id, domain.as_deref())
                .await?;
        }
        Ok(())
    }

    /// The domain, then the pool with its client and groups (after lifting
    /// its deletion protection, a step the destroy plan shows).
    async fn delete(&self, observed: &ObservedResource) -> Result<(), EngineError> {
        if let Some(domain) = observed.attribute::<String>(UserPoolAttribute::Domain) {
            self.delete_domain(&observed.id, &domain).await?;
        }
        if observed.attribute::<bool>(UserPoolAttribute::DeletionProtection) == Some(true) {
            self.update_pool(&observed.id, false).await?;
        }
        self.clients
            .cognito
            .delete_user_pool()
            .user_pool_id(&observed.id)
            .send()
            .await
            .doing(|| self.doing("deleting"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cognitoidentityprovider::types::{
        IssuerConfigurationType, IssuerType, UserPoolType,
    };

    use super::{CognitoUserPool, issuer_of};

    #[test]
    fn the_issuer_follows_the_pools_issuer_configuration() {
        let pool = |kind: Option<IssuerType>| {
            UserPoolType::builder()
                .id("eu-west-1_Pool")
                .set_issuer_configuration(
                    kind.map(|kind| IssuerConfigurationType::builder().r#type(kind).build()),
                )
                .build()
        };
        assert_eq!(
            issuer_of("eu-west-1", &pool(None)),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool"
        );
        assert_eq!(
            issuer_of("eu-west-1", &pool(Some(IssuerType::Original))),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool"
        );
        assert_eq!(
            issuer_of("eu-west-1", &pool(Some(IssuerType::Updated))),
            "https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pool"
        );
    }

    #[test]
    fn a_pool_read_back_shows_its_sign_up_rules_as_the_plan_does() {
        use aws_sdk_cognitoidentityprovider::types::{
            AdminCreateUserConfigType, PasswordPolicyType, UserPoolPolicyType,
            VerifiedAttributeType,
        };
        let configured = UserPoolType::builder()
            .policies(CognitoUserPool::policies(None))
            .admin_create_user_config(CognitoUserPool::admin_create_only(None))
            .auto_verified_attributes(VerifiedAttributeType::Email)
            .build();
        assert_eq!(
            CognitoUserPool::observed_sign_up(&configured),
            CognitoUserPool::desired_sign_up()
        );
        let open = UserPoolType::builder()
            .policies(
                UserPoolPolicyType::builder()
                    .password_policy(
                        PasswordPolicyType::builder()
                            .minimum_length(8)
                            .require_numbers(true)
                            .build(),
                    )
                    .build(),
            )
            .admin_create_user_config(
                AdminCreateUserConfigType::builder()
                    .allow_admin_create_user_only(false)
                    .build(),
            )
            .build();
        assert_eq!(
            serde_json::to_value(CognitoUserPool::observed_sign_up(&open)).expect("serializes"),
            serde_json::json!({
                "accounts_created_by": "anyone (self sign-up)",
                "password_minimum_length": 8,
                "password_requires": ["numbers"],
                "temporary_password_days": 0,
                "verified_attributes": [],
            })
        );
    }
}
