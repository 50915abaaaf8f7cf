//! An IAM role: trust policy, attached managed policies, permissions boundary,
//! tags. Deleting detaches managed policies and deletes inline ones first (IAM
//! refuses otherwise). The boundary is set before any policy is attached, since
//! the deploy role may attach policies only to roles the boundary caps.

use aws_sdk_iam::types::Tag;
use serde_json::Value;

use super::Clients;
use super::tags::{self, Taggable};
use crate::engine::Doing;
use crate::engine::policy;
use crate::engine::{
    AttributeChange, AttributeSet, DesiredResource, EngineError, ObservedResource, Resource, Rule,
    Tags,
};

crate::attributes! {
    /// What is managed of a role. The boundary is compared only when the
    /// configuration names one.
    pub struct RoleAttributes, enum RoleAttribute {
        TrustPolicy trust_policy: Value => Rule::Policy,
        ManagedPolicies managed_policies: Vec<String> => Rule::Set,
        PermissionsBoundary permissions_boundary: Option<String>,
        Tags tags: Tags,
    }
}

#[derive(Debug, Clone)]
pub struct Role {
    pub clients: Clients,
    pub address: String,
    pub name: String,
    pub description: String,
    pub trust_policy: Value,
    pub managed_policy_arns: Vec<String>,
    /// The permissions boundary the role must carry (`None`: not managed).
    pub permissions_boundary: Option<String>,
    pub tags: std::collections::BTreeMap<String, String>,
    pub depends_on: Vec<String>,
}

impl Role {
    pub fn arn_of(clients: &Clients, name: &str) -> String {
        format!("arn:aws:iam::{}:role/{name}", clients.account_id)
    }

    fn doing(&self, what: &str) -> String {
        format!("{what} IAM role {}", self.name)
    }

    async fn attach(&self, arns: &[String]) -> Result<(), EngineError> {
        for arn in arns {
            self.clients
                .iam
                .attach_role_policy()
                .role_name(&self.name)
                .policy_arn(arn)
                .send()
                .await
                .doing(|| self.doing(&format!("attaching {arn} to")))?;
        }
        Ok(())
    }

    async fn detach(&self, arns: &[String]) -> Result<(), EngineError> {
        for arn in arns {
            self.clients
                .iam
                .detach_role_policy()
                .role_name(&self.name)
                .policy_arn(arn)
                .send()
                .await
                .doing(|| self.doing(&format!("detaching {arn} from")))?;
        }
        Ok(())
    }

    async fn attached(&self) -> Result<Vec<String>, EngineError> {
        let output = self
            .clients
            .iam
            .list_attached_role_policies()
            .role_name(&self.name)
            .send()
            .await
            .doing(|| self.doing("listing the policies attached to"))?;
        Ok(output
            .attached_policies()
            .iter()
            .filter_map(|policy| policy.policy_arn().map(str::to_owned))
            .collect())
    }

    fn iam_tag(key: &str, value: &str, action: &str) -> Result<Tag, EngineError> {
        Tag::builder()
            .key(key)
            .value(value)
            .build()
            .map_err(|error| EngineError::new(action, error.to_string()))
    }
}

#[async_trait::async_trait]
impl Taggable for Role {
    async fn untag(&self, keys: Vec<String>) -> Result<(), EngineError> {
        self.clients
            .iam
            .untag_role()
            .role_name(&self.name)
            .set_tag_keys(Some(keys))
            .send()
            .await
            .doing(|| self.doing("untagging"))?;
        Ok(())
    }

    async fn tag(&self, tags: &Tags) -> Result<(), EngineError> {
        let action = self.doing("tagging");
        let mut request = self.clients.iam.tag_role().role_name(&self.name);
        for (key, value) in tags {
            request = request.tags(Self::iam_tag(key, value, &action)?);
        }
        request.send().await.doing(|| action.clone())?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Resource for Role {
    fn address(&self) -> &str {
        &self.address
    }

    fn desired(&self) -> DesiredResource {
        DesiredResource::new(
            self.address(),
            "iam_role",
            &self.name,
            RoleAttributes {
                trust_policy: self.trust_policy.clone(),
                managed_policies: self.managed_policy_arns.clone(),
                permissions_boundary: self.permissions_boundary.clone(),
                tags: self.tags.clone(),
            },
        )
        .depending_on(self.depends_on.clone())
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        let iam = &self.clients.iam;
        let Some(output) = crate::engine::existing(
            iam.get_role().role_name(&self.name).send().await,
            |error| error.is_no_such_entity_exception(),
            self.doing("reading"),
        )?
        else {
            return Ok(None);
        };
        let Some(role) = output.role() else {
            return Ok(None);
        };
        let trust = role
            .assume_role_policy_document()
            .and_then(policy::decode)
            .unwrap_or(Value::Null);
        let tags = iam
            .list_role_tags()
            .role_name(&self.name)
            .send()
            .await
            .doing(|| self.doing("reading the tags of"))?;
        let tags = tags::observed(tags.tags().iter().map(|tag| (tag.key(), tag.value())));
        let boundary = role
            .permissions_boundary()
            .and_then(|boundary| boundary.permissions_boundary_arn())
            .map(str::to_owned);
        Ok(Some(ObservedResource {
            id: self.name.clone(),
            arn: Some(role.arn().to_owned()),
            attributes: RoleAttributes {
                trust_policy: trust,
                managed_policies: self.attached().await?,
                permissions_boundary: boundary,
                tags,
            }
            .into_observed(),
            facts: Default::default(),
        }))
    }

    async fn create(&self) -> Result<(), EngineError> {
        let action = self.doing("creating");
        let mut request = self
            .clients
            .iam
            .create_role()
            .role_name(&self.name)
            .description(&self.description)
            .assume_role_policy_document(self.trust_policy.to_string())
            .set_permissions_boundary(self.permissions_boundary.clone());
        for (key, value) in &self.tags {
            request = request.tags(Self::iam_tag(key, value, &action)?);
        }
        request.send().await.doing(|| action.clone())?;
        self.attach(&self.managed_policy_arns).await
    }

    async fn update(
        &self,
        _observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError> {
        let iam = &self.clients.iam;
        // The boundary first: policies may be attached only to bounded roles.
        let mut ordered = changes
            .iter()
            .map(|change| Ok((RoleAttributes::name_of(change)?, change)))
            .collect::<Result<Vec<_>, EngineError>>()?;
        ordered.sort_by_key(|(name, _)| *name != RoleAttribute::PermissionsBoundary);
        for (name, change) in ordered {
            match name {
                RoleAttribute::PermissionsBoundary => {
                    let Some(boundary) = &self.permissions_boundary else {
                        continue;
                    };
                    iam.put_role_permissions_boundary()
                        .role_name(&self.name)
                        .permissions_boundary(boundary)
                        .send()
                        .await
                        .doing(|| self.doing("setting the permissions boundary of"))?;
                }
                RoleAttribute::TrustPolicy => {
                    iam.update_assume_role_policy()
                        .role_name(&self.name)
                        .policy_document(self.trust_policy.to_string())
                        .send()
                        .await
                        .doing(|| self.doing("updating the trust policy of"))?;
                }
                RoleAttribute::ManagedPolicies => {
                    let old: Vec<String> = change
                        .old
                        .as_array()
                        .map(|items| {
                            items
                                .iter()
                                .filter_map(|item| item.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    let new = &self.managed_policy_arns;
                    let added: Vec<String> = new
                        .iter()
                        .filter(|arn| !old.contains(arn))
                        .cloned()
                        .collect();
                    let removed: Vec<String> = old
                        .iter()
                        .filter(|arn| !new.contains(arn))
                        .cloned()
                        .collect();
                    self.attach(&added).await?;
                    self.detach(&removed).await?;
                }
                RoleAttribute::Tags => tags::converge(self, &change.old, &self.tags).await?,
            }
        }
        Ok(())
    }

    async fn delete(&self, _observed: &ObservedResource) -> Result<(), EngineError> {
        let iam = &self.clients.iam;
        self.detach(&self.attached().await?).await?;
        let inline = iam
            .list_role_policies()
            .role_name(&self.name)
            .send()
            .await
            .doing(|| self.doing("listing the inline policies of"))?;
        for name in inline.policy_names() {
            iam.delete_role_policy()
                .role_name(&self.name)
                .policy_name(name)
                .send()
                .await
                .doing(|| self.doing(&format!("deleting inline policy {name} of")))?;
        }
        iam.delete_role()
            .role_name(&self.name)
            .send()
            .await
            .doing(|| self.doing("deleting"))?;
        Ok(())
    }
}
