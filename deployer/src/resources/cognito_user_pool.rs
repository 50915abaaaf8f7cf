//! The environment's own sign-in (`auth_create_user_pool`): a Cognito user
//! pool whose accounts only admins create, its public app client (the
//! audience of the API's JWT authorizer), the admin group and the hosted
//! sign-in domain. One resource, as the HTTP API is with its children: the
//! client, the group and the domain live and die with their pool.
//!
//! The pool holds the students' accounts, which no backup can bring back
//! (Cognito exports no passwords): it is deletion-protected like the scores
//! table, never replaced, and `destroy` keeps it while it has accounts
//! (`commands/destroy.rs`). Updates start from what Cognito describes, since
//! `UpdateUserPool` and `UpdateUserPoolClient` reset every field they are not
//! sent: Lambda triggers, e-mail settings or token lifetimes set by hand on an
//! adopted pool survive an apply. Tags go through `UpdateUserPool` too (its
//! `UserPoolTags`), which every emulator and AWS serve alike.

use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata;
use aws_sdk_cognitoidentityprovider::types::{
    AdminCreateUserConfigType, DeletionProtectionType, ExplicitAuthFlowsType, OAuthFlowType,
    PasswordPolicyType, PreventUserExistenceErrorTypes, UserPoolClientType, UserPoolPolicyType,
    UserPoolType, UsernameConfigurationType, VerifiedAttributeType,
};
use serde_json::{Value, json};

use super::{Clients, tags};
use crate::engine::{
    AttributeChange, AttributeSet, DesiredResource, EngineError, ObservedResource, Resource, Tags,
};

pub const ADDRESS: &str = "cognito_user_pool.sign_in";

crate::attributes! {
    /// What is managed of the pool and its children. `issuer`, `client_id`
    /// and `accounts` are only observed.
    pub struct UserPoolAttributes, enum UserPoolAttribute {
        Accounts accounts: Option<i64>,
        AdminGroup admin_group: Option<String>,
        Client client: Option<Value>,
        ClientId client_id: Option<String>,
        DeletionProtection deletion_protection: Option<bool>,
        Domain domain: Option<String>,
        Issuer issuer: Option<String>,
        SignUp sign_up: Option<Value>,
        Tags tags: Tags,
    }
}

/// Passwords: at least 12 characters, with each of the four classes Cognito
/// knows. (Every class is required explicitly: the SDK leaves a `false`
/// requirement out of the request, and a missing one is read as false by some
/// implementations and as true by others; a `true` is read alike by all.)
const PASSWORD_MINIMUM_LENGTH: i32 = 12;
const PASSWORD_CLASSES: [&str; 4] = ["lowercase", "uppercase", "numbers", "symbols"];
/// The days an admin's temporary password stays valid.
const TEMPORARY_PASSWORD_DAYS: i32 = 7;
/// How a teaching app signs in: the hosted page (authorization code with
/// PKCE, as a public client must) or the SDK, with SRP or the password sent
/// to Cognito over TLS (what a notebook's `initiate_auth` does).
const AUTH_FLOWS: [&str; 3] = [
    "ALLOW_REFRESH_TOKEN_AUTH",
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_USER_SRP_AUTH",
];
const SCOPES: [&str; 3] = ["email", "openid", "profile"];

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

/// The issuer URL of pool `id` in `region`, as Cognito writes it into tokens.
pub fn issuer_of(region: &str, id: &str) -> String {
    format!("https://cognito-idp.{region}.amazonaws.com/{id}")
}

/// The hosted sign-in's base URL for domain prefix `domain`.
pub fn hosted_url(region: &str, domain: &str) -> String {
    format!("https://{domain}.auth.{region}.amazoncognito.com")
}

/// The pool named `name` and its client `client_name`, found by name
/// (ListUserPools, ListUserPoolClients); an error when names collide.
pub async fn find_pool(
    clients: &Clients,
    name: &str,
    client_name: &str,
) -> Result<Option<FoundPool>, EngineError> {
    let Some(id) = find_pool_id(clients, name).await? else {
        return Ok(None);
    };
    Ok(Some(FoundPool {
        issuer: issuer_of(&clients.region, &id),
        client_id: find_client_id(clients, &id, client_name).await?,
        id,
    }))
}

async fn find_pool_id(clients: &Clients, name: &str) -> Result<Option<String>, EngineError> {
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
            .map_err(|error| EngineError::sdk(action.clone(), &error))?;
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
    match ids.len() {
        0 => Ok(None),
        1 => Ok(ids.pop()),
        _ => Err(EngineError::new(
            action,
            format!(
                "{} user pools have this name ({}); the deployer cannot tell which holds the \
                 accounts: rename the extras (their accounts stay) and apply again",
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
            .map_err(|error| EngineError::sdk(action.clone(), &error))?;
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
#[derive(serde::Serialize)]
struct ClientShape {
    name: String,
    /// A public client (a browser or a notebook) can keep no secret.
    secret: bool,
    auth_flows: Vec<String>,
    oauth_flows: Vec<String>,
    scopes: Vec<String>,
    callback_urls: Vec<String>,
    logout_urls: Vec<String>,
    /// Sign-in failures do not tell whether a username exists.
    hides_whether_accounts_exist: bool,
}

impl ClientShape {
    fn value(self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

fn sorted(values: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    let mut values: Vec<String> = values.into_iter().map(Into::into).collect();
    values.sort();
    values
}

impl CognitoUserPool {
    fn doing(&self, what: &str) -> String {
        format!("{what} Cognito user pool {}", self.name)
    }

    /// Who may create accounts and how passwords are chosen, as the plan shows it.
    fn sign_up_value(
        admins_only: bool,
        minimum_length: Option<i32>,
        required: &[&str],
        temporary_days: Option<i32>,
        verified: Vec<String>,
    ) -> Value {
        json!({
            "accounts_created_by": if admins_only { "admins only" } else { "anyone (self sign-up)" },
            "password_minimum_length": minimum_length,
            "password_requires": required,
            "temporary_password_days": temporary_days,
            "verified_attributes": verified,
        })
    }

    fn desired_sign_up() -> Value {
        Self::sign_up_value(
            true,
            Some(PASSWORD_MINIMUM_LENGTH),
            &PASSWORD_CLASSES,
            Some(TEMPORARY_PASSWORD_DAYS),
            vec!["email".into()],
        )
    }

    fn desired_client(&self) -> Value {
        ClientShape {
            name: self.client_name.clone(),
            secret: false,
            auth_flows: sorted(AUTH_FLOWS),
            oauth_flows: vec!["code".into()],
            scopes: sorted(SCOPES),
            callback_urls: sorted(self.callback_urls.clone()),
            logout_urls: sorted(self.logout_urls.clone()),
            hides_whether_accounts_exist: true,
        }
        .value()
    }

    fn observed_client(client: &UserPoolClientType) -> Value {
        ClientShape {
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
        .value()
    }

    fn observed_sign_up(pool: &UserPoolType) -> Value {
        let password = pool
            .policies()
            .and_then(UserPoolPolicyType::password_policy);
        let required: Vec<&str> = password
            .map(|policy| {
                [
                    (policy.require_lowercase(), "lowercase"),
                    (policy.require_uppercase(), "uppercase"),
                    (policy.require_numbers(), "numbers"),
                    (policy.require_symbols(), "symbols"),
                ]
                .into_iter()
                .filter_map(|(required, class)| required.then_some(class))
                .collect()
            })
            .unwrap_or_default();
        Self::sign_up_value(
            pool.admin_create_user_config()
                .is_some_and(AdminCreateUserConfigType::allow_admin_create_user_only),
            password.and_then(PasswordPolicyType::minimum_length),
            &required,
            password.map(PasswordPolicyType::temporary_password_validity_days),
            sorted(pool.auto_verified_attributes().iter().map(|a| a.as_str())),
        )
    }

    /// The password policy, over what the pool has (its password history, say).
    fn password_policy(current: Option<&PasswordPolicyType>) -> UserPoolPolicyType {
        let mut policy = current
            .cloned()
            .map_or_else(PasswordPolicyType::builder, |current| {
                PasswordPolicyType::builder()
                    .set_password_history_size(current.password_history_size())
            });
        policy = policy
            .minimum_length(PASSWORD_MINIMUM_LENGTH)
            .require_lowercase(true)
            .require_uppercase(true)
            .require_numbers(true)
            .require_symbols(true)
            .temporary_password_validity_days(TEMPORARY_PASSWORD_DAYS);
        UserPoolPolicyType::builder()
            .password_policy(policy.build())
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

    async fn describe(&self, pool_id: &str) -> Result<UserPoolType, EngineError> {
        self.clients
            .cognito
            .describe_user_pool()
            .user_pool_id(pool_id)
            .send()
            .await
            .map_err(|error| EngineError::sdk(self.doing("reading"), &error))?
            .user_pool
            .ok_or_else(|| EngineError::new(self.doing("reading"), "Cognito described no pool"))
    }

    /// UpdateUserPool with what the pool has, and ours over it: the sign-up
    /// rules, deletion protection `protect` and the tags.
    async fn update_pool(&self, pool_id: &str, protect: bool) -> Result<(), EngineError> {
        let pool = self.describe(pool_id).await?;
        self.clients
            .cognito
            .update_user_pool()
            .user_pool_id(pool_id)
            .policies(Self::password_policy(
                pool.policies()
                    .and_then(UserPoolPolicyType::password_policy),
            ))
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
            .send()
            .await
            .map_err(|error| EngineError::sdk(self.doing("updating"), &error))?;
        Ok(())
    }

    /// Create the app client, or update it over what it has (token lifetimes,
    /// attribute permissions).
    async fn ensure_client(&self, pool_id: &str) -> Result<(), EngineError> {
        let cognito = &self.clients.cognito;
        let flows = AUTH_FLOWS.map(ExplicitAuthFlowsType::from).to_vec();
        let scopes = SCOPES.map(str::to_owned).to_vec();
        let Some(client_id) = find_client_id(&self.clients, pool_id, &self.client_name).await?
        else {
            cognito
                .create_user_pool_client()
                .user_pool_id(pool_id)
                .client_name(&self.client_name)
                .generate_secret(false)
                .set_explicit_auth_flows(Some(flows))
                .allowed_o_auth_flows(OAuthFlowType::Code)
                .set_allowed_o_auth_scopes(Some(scopes))
                .allowed_o_auth_flows_user_pool_client(true)
                .set_callback_urls(Some(self.callback_urls.clone()))
                .set_logout_urls(Some(self.logout_urls.clone()))
                .supported_identity_providers("COGNITO")
                .prevent_user_existence_errors(PreventUserExistenceErrorTypes::Enabled)
                .enable_token_revocation(true)
                .send()
                .await
                .map_err(|error| {
                    EngineError::sdk(
                        self.doing(&format!("creating the app client {} of", self.client_name)),
                        &error,
                    )
                })?;
            return Ok(());
        };
        let doing = self.doing(&format!("updating the app client {} of", self.client_name));
        let current = cognito
            .describe_user_pool_client()
            .user_pool_id(pool_id)
            .client_id(&client_id)
            .send()
            .await
            .map_err(|error| EngineError::sdk(doing.clone(), &error))?
            .user_pool_client
            .unwrap_or_else(|| UserPoolClientType::builder().build());
        cognito
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
            .set_explicit_auth_flows(Some(flows))
            .allowed_o_auth_flows(OAuthFlowType::Code)
            .set_allowed_o_auth_scopes(Some(scopes))
            .allowed_o_auth_flows_user_pool_client(true)
            .set_callback_urls(Some(self.callback_urls.clone()))
            .set_logout_urls(Some(self.logout_urls.clone()))
            .supported_identity_providers("COGNITO")
            .prevent_user_existence_errors(PreventUserExistenceErrorTypes::Enabled)
            .enable_token_revocation(true)
            .send()
            .await
            .map_err(|error| EngineError::sdk(doing, &error))?;
        Ok(())
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
            .map_err(|error| {
                EngineError::sdk(
                    self.doing(&format!("creating the group {} of", self.admin_group)),
                    &error,
                )
            })?;
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
                let mut failure = EngineError::sdk(
                    self.doing(&format!("creating the sign-in domain {} of", self.domain)),
                    &error,
                );
                if error.code() == Some("InvalidParameterException") {
                    failure.detail.push_str(
                        "; domain prefixes are unique across AWS in a region: set auth_domain_prefix to another",
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
            .map_err(|error| {
                EngineError::sdk(
                    self.doing(&format!("deleting the sign-in domain {domain} of")),
                    &error,
                )
            })?;
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
    fn desired(&self) -> DesiredResource {
        DesiredResource::new(
            ADDRESS,
            "cognito_user_pool",
            &self.name,
            UserPoolAttributes {
                accounts: None,
                admin_group: Some(self.admin_group.clone()),
                client: Some(self.desired_client()),
                client_id: None,
                deletion_protection: Some(self.deletion_protection),
                domain: Some(self.domain.clone()),
                issuer: None,
                sign_up: Some(Self::desired_sign_up()),
                tags: self.tags.clone(),
            },
        )
        .never_replaced("it holds the students' accounts, which no backup brings back")
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        let Some(found) = find_pool(&self.clients, &self.name, &self.client_name).await? else {
            return Ok(None);
        };
        let pool = self.describe(&found.id).await?;
        let client = match &found.client_id {
            None => None,
            Some(client_id) => {
                self.clients
                    .cognito
                    .describe_user_pool_client()
                    .user_pool_id(&found.id)
                    .client_id(client_id)
                    .send()
                    .await
                    .map_err(|error| {
                        EngineError::sdk(
                            self.doing(&format!("reading the app client {} of", self.client_name)),
                            &error,
                        )
                    })?
                    .user_pool_client
            }
        };
        let tags = pool
            .user_pool_tags()
            .map(|tags| tags::observed(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
            .unwrap_or_default();
        Ok(Some(ObservedResource {
            id: found.id.clone(),
            arn: pool.arn().map(str::to_owned),
            attributes: UserPoolAttributes {
                accounts: Some(i64::from(pool.estimated_number_of_users())),
                admin_group: self
                    .has_group(&found.id)
                    .await?
                    .then(|| self.admin_group.clone()),
                client: client.as_ref().map(Self::observed_client),
                client_id: found.client_id.clone(),
                deletion_protection: Some(
                    pool.deletion_protection() == Some(&DeletionProtectionType::Active),
                ),
                domain: pool.domain().map(str::to_owned),
                issuer: Some(found.issuer),
                sign_up: Some(Self::observed_sign_up(&pool)),
                tags,
            }
            .into_observed(),
        }))
    }

    async fn create(&self) -> Result<(), EngineError> {
        let created = self
            .clients
            .cognito
            .create_user_pool()
            .pool_name(&self.name)
            .policies(Self::password_policy(None))
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
            .map_err(|error| EngineError::sdk(self.doing("creating"), &error))?;
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
                UserPoolAttribute::Accounts
                | UserPoolAttribute::ClientId
                | UserPoolAttribute::Issuer => {}
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
            let domain = observed.attributes.get("domain").and_then(Value::as_str);
            self.converge_children(&observed.id, domain).await?;
        }
        Ok(())
    }

    /// The domain, then the pool with its client and groups (after lifting
    /// its deletion protection, a step the destroy plan shows).
    async fn delete(&self, observed: &ObservedResource) -> Result<(), EngineError> {
        if let Some(domain) = observed.attributes.get("domain").and_then(Value::as_str) {
            self.delete_domain(&observed.id, domain).await?;
        }
        if observed.attributes.get("deletion_protection") == Some(&Value::Bool(true)) {
            self.update_pool(&observed.id, false).await?;
        }
        self.clients
            .cognito
            .delete_user_pool()
            .user_pool_id(&observed.id)
            .send()
            .await
            .map_err(|error| EngineError::sdk(self.doing("deleting"), &error))?;
        Ok(())
    }
}
