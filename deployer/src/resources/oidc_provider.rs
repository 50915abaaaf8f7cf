//! GitHub Actions' OIDC identity provider. Only one may exist per URL in an
//! account, so an existing one is adopted. AWS no longer checks GitHub's
//! thumbprint, but the API still requires one (from config).

use aws_sdk_iam::types::Tag;

use super::Clients;
use super::tags::{self, Taggable};
use crate::engine::Doing;
use crate::engine::{
    AttributeChange, AttributeSet, DesiredResource, EngineError, ObservedResource, Resource, Rule,
    Tags,
};

crate::attributes! {
    /// What is managed of the OIDC provider.
    pub struct OidcProviderAttributes, enum OidcProviderAttribute {
        Url url: String => Rule::ForcesReplacement,
        ClientIds client_ids: Vec<String> => Rule::Set,
        Thumbprints thumbprints: Vec<String> => Rule::Set,
        Tags tags: Tags,
    }
}

pub const ADDRESS: &str = "iam_openid_connect_provider.github";
pub const HOST: &str = "token.actions.githubusercontent.com";
pub const CLIENT_ID: &str = "sts.amazonaws.com";

#[derive(Debug, Clone)]
pub struct OidcProvider {
    pub clients: Clients,
    pub thumbprint: String,
    pub tags: std::collections::BTreeMap<String, String>,
}

impl OidcProvider {
    pub fn arn(clients: &Clients) -> String {
        format!("arn:aws:iam::{}:oidc-provider/{HOST}", clients.account_id)
    }

    fn doing(&self, what: &str) -> String {
        format!(
            "{what} the GitHub OIDC provider {}",
            Self::arn(&self.clients)
        )
    }

    fn strings(value: &serde_json::Value) -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn wanted(&self) -> OidcProviderAttributes {
        OidcProviderAttributes {
            url: format!("https://{HOST}"),
            client_ids: vec![CLIENT_ID.to_owned()],
            thumbprints: vec![self.thumbprint.to_lowercase()],
            tags: self.tags.clone(),
        }
    }
}

#[async_trait::async_trait]
impl Taggable for OidcProvider {
    async fn untag(&self, keys: Vec<String>) -> Result<(), EngineError> {
        self.clients
            .iam
            .untag_open_id_connect_provider()
            .open_id_connect_provider_arn(Self::arn(&self.clients))
            .set_tag_keys(Some(keys))
            .send()
            .await
            .doing(|| self.doing("untagging"))?;
        Ok(())
    }

    async fn tag(&self, tags: &Tags) -> Result<(), EngineError> {
        let mut request = self
            .clients
            .iam
            .tag_open_id_connect_provider()
            .open_id_connect_provider_arn(Self::arn(&self.clients));
        for (key, value) in tags {
            request = request.tags(
                Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(|error| EngineError::new(self.doing("tagging"), error.to_string()))?,
            );
        }
        request.send().await.doing(|| self.doing("tagging"))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Resource for OidcProvider {
    fn address(&self) -> &str {
        ADDRESS
    }

    fn desired(&self) -> DesiredResource {
        DesiredResource::new(
            self.address(),
            "iam_openid_connect_provider",
            HOST,
            self.wanted(),
        )
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        let arn = Self::arn(&self.clients);
        let Some(output) = crate::engine::existing(
            self.clients
                .iam
                .get_open_id_connect_provider()
                .open_id_connect_provider_arn(&arn)
                .send()
                .await,
            |error| error.is_no_such_entity_exception(),
            self.doing("reading"),
        )?
        else {
            return Ok(None);
        };
        let url = output.url().unwrap_or_default();
        let url = if url.starts_with("https://") {
            url.to_owned()
        } else {
            format!("https://{url}")
        };
        let thumbprints: Vec<String> = output
            .thumbprint_list()
            .iter()
            .map(|t| t.to_lowercase())
            .collect();
        let tags = tags::observed(output.tags().iter().map(|tag| (tag.key(), tag.value())));
        Ok(Some(ObservedResource {
            id: arn.clone(),
            arn: Some(arn),
            attributes: OidcProviderAttributes {
                url,
                client_ids: output.client_id_list().to_vec(),
                thumbprints,
                tags,
            }
            .into_observed(),
            facts: Default::default(),
        }))
    }

    async fn create(&self) -> Result<(), EngineError> {
        let mut request = self
            .clients
            .iam
            .create_open_id_connect_provider()
            .url(format!("https://{HOST}"))
            .client_id_list(CLIENT_ID)
            .thumbprint_list(self.thumbprint.to_lowercase());
        for (key, value) in &self.tags {
            request = request.tags(
                Tag::builder()
                    .key(key)
                    .value(value)
                    .build()
                    .map_err(|error| EngineError::new(self.doing("creating"), error.to_string()))?,
            );
        }
        request.send().await.doing(|| self.doing("creating"))?;
        Ok(())
    }

    async fn update(
        &self,
        _observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError> {
        let iam = &self.clients.iam;
        let arn = Self::arn(&self.clients);
        let wanted = self.wanted();
        for change in changes {
            match OidcProviderAttributes::name_of(change)? {
                // A new URL is a new provider: the planner replaces it.
                OidcProviderAttribute::Url => {}
                OidcProviderAttribute::ClientIds => {
                    let (old, new) = (Self::strings(&change.old), &wanted.client_ids);
                    for added in new.iter().filter(|id| !old.contains(id)) {
                        iam.add_client_id_to_open_id_connect_provider()
                            .open_id_connect_provider_arn(&arn)
                            .client_id(added)
                            .send()
                            .await
                            .doing(|| self.doing("adding a client id to"))?;
                    }
                    for removed in old.iter().filter(|id| !new.contains(id)) {
                        iam.remove_client_id_from_open_id_connect_provider()
                            .open_id_connect_provider_arn(&arn)
                            .client_id(removed)
                            .send()
                            .await
                            .doing(|| self.doing("removing a client id from"))?;
                    }
                }
                OidcProviderAttribute::Thumbprints => {
                    iam.update_open_id_connect_provider_thumbprint()
                        .open_id_connect_provider_arn(&arn)
                        .set_thumbprint_list(Some(wanted.thumbprints.clone()))
                        .send()
                        .await
                        .doing(|| self.doing("updating the thumbprints of"))?;
                }
                OidcProviderAttribute::Tags => {
                    tags::converge(self, &change.old, &self.tags).await?;
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, _observed: &ObservedResource) -> Result<(), EngineError> {
        self.clients
            .iam
            .delete_open_id_connect_provider()
            .open_id_connect_provider_arn(Self::arn(&self.clients))
            .send()
            .await
            .doing(|| self.doing("deleting"))?;
        Ok(())
    }
}
