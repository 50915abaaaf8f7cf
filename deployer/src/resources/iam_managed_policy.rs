//! A customer managed IAM policy. A changed document becomes a new default
//! version (the oldest non-default version is deleted first when IAM's limit of
//! five is reached).

use serde_json::Value;

use super::Clients;
use crate::engine::Doing;
use crate::engine::policy;
use crate::engine::{
    AttributeChange, AttributeSet, DesiredResource, EngineError, ObservedResource, Resource, Rule,
};

crate::attributes! {
    /// What is managed of a customer managed policy: its document. The default
    /// version's id is only observed.
    pub struct ManagedPolicyAttributes, enum ManagedPolicyAttribute {
        Document document: Value => Rule::Policy,
        Version version: Option<String>,
    }
}

#[derive(Debug, Clone)]
pub struct ManagedPolicy {
    pub clients: Clients,
    pub address: String,
    pub name: String,
    pub description: String,
    pub document: Value,
}

impl ManagedPolicy {
    pub fn arn_of(clients: &Clients, name: &str) -> String {
        format!("arn:aws:iam::{}:policy/{name}", clients.account_id)
    }

    /// Whether the managed policy `arn` exists.
    pub async fn exists(clients: &Clients, arn: &str) -> Result<bool, EngineError> {
        crate::engine::existing(
            clients.iam.get_policy().policy_arn(arn).send().await,
            |error| error.is_no_such_entity_exception(),
            format!("checking that IAM policy {arn} exists"),
        )
        .map(|found| found.is_some())
    }

    pub fn arn(&self) -> String {
        Self::arn_of(&self.clients, &self.name)
    }

    fn doing(&self, what: &str) -> String {
        format!("{what} IAM policy {}", self.name)
    }
}

#[async_trait::async_trait]
impl Resource for ManagedPolicy {
    fn address(&self) -> &str {
        &self.address
    }

    fn desired(&self) -> DesiredResource {
        DesiredResource::new(
            self.address(),
            "iam_policy",
            &self.name,
            ManagedPolicyAttributes {
                document: self.document.clone(),
                version: None,
            },
        )
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        let iam = &self.clients.iam;
        let Some(found) = crate::engine::existing(
            iam.get_policy().policy_arn(self.arn()).send().await,
            |error| error.is_no_such_entity_exception(),
            self.doing("reading"),
        )?
        else {
            return Ok(None);
        };
        let version = found
            .policy()
            .and_then(|policy| policy.default_version_id())
            .unwrap_or("v1")
            .to_owned();
        let output = iam
            .get_policy_version()
            .policy_arn(self.arn())
            .version_id(&version)
            .send()
            .await
            .doing(|| self.doing("reading the document of"))?;
        let document = output
            .policy_version()
            .and_then(|version| version.document())
            .and_then(policy::decode)
            .unwrap_or(Value::Null);
        Ok(Some(ObservedResource {
            id: self.arn(),
            arn: Some(self.arn()),
            attributes: ManagedPolicyAttributes {
                document,
                version: Some(version),
            }
            .into_observed(),
            facts: Default::default(),
        }))
    }

    async fn create(&self) -> Result<(), EngineError> {
        self.clients
            .iam
            .create_policy()
            .policy_name(&self.name)
            .description(&self.description)
            .policy_document(self.document.to_string())
            .send()
            .await
            .doing(|| self.doing("creating"))?;
        Ok(())
    }

    async fn update(
        &self,
        _observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError> {
        for change in changes {
            match ManagedPolicyAttributes::name_of(change)? {
                ManagedPolicyAttribute::Document => self.new_default_version().await?,
                // Only observed: never planned.
                ManagedPolicyAttribute::Version => {}
            }
        }
        Ok(())
    }

    async fn delete(&self, observed: &ObservedResource) -> Result<(), EngineError> {
        self.delete_everywhere(observed).await
    }
}

impl ManagedPolicy {
    /// A changed document becomes the new default version (the oldest other
    /// version is deleted first when IAM's limit of five is reached).
    async fn new_default_version(&self) -> Result<(), EngineError> {
        let iam = &self.clients.iam;
        let versions = iam
            .list_policy_versions()
            .policy_arn(self.arn())
            .send()
            .await
            .doing(|| self.doing("listing versions of"))?;
        if versions.versions().len() >= 5
            && let Some(oldest) = versions
                .versions()
                .iter()
                .filter(|version| !version.is_default_version())
                .min_by_key(|version| version.create_date().map(|date| date.secs()))
                .and_then(|version| version.version_id())
        {
            iam.delete_policy_version()
                .policy_arn(self.arn())
                .version_id(oldest)
                .send()
                .await
                .doing(|| self.doing("deleting an old version of"))?;
        }
        iam.create_policy_version()
            .policy_arn(self.arn())
            .policy_document(self.document.to_string())
            .set_as_default(true)
            .send()
            .await
            .doing(|| self.doing("updating the document of"))?;
        Ok(())
    }

    /// Detach it from every role, delete its other versions, then the policy.
    async fn delete_everywhere(&self, _observed: &ObservedResource) -> Result<(), EngineError> {
        let iam = &self.clients.iam;
        let arn = self.arn();
        let entities = iam
            .list_entities_for_policy()
            .policy_arn(&arn)
            .send()
            .await
            .doing(|| self.doing("listing the attachments of"))?;
        for role in entities.policy_roles() {
            if let Some(role_name) = role.role_name() {
                iam.detach_role_policy()
                    .role_name(role_name)
                    .policy_arn(&arn)
                    .send()
                    .await
                    .doing(|| self.doing(&format!("detaching from role {role_name}")))?;
            }
        }
        let versions = iam
            .list_policy_versions()
            .policy_arn(&arn)
            .send()
            .await
            .doing(|| self.doing("listing versions of"))?;
        for version in versions
            .versions()
            .iter()
            .filter(|version| !version.is_default_version())
        {
            if let Some(id) = version.version_id() {
                iam.delete_policy_version()
                    .policy_arn(&arn)
                    .version_id(id)
                    .send()
                    .await
                    .doing(|| self.doing("deleting a version of"))?;
            }
        }
        iam.delete_policy()
            .policy_arn(&arn)
            .send()
            .await
            .doing(|| self.doing("deleting"))?;
        Ok(())
    }
}
