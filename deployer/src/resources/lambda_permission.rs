//! The permission that lets the HTTP API invoke the function's `live` alias
//! (the only thing it invokes): statement `AllowInvokeFromHttpApi` in the
//! alias's policy, principal `apigateway.amazonaws.com`, source ARN
//! `<execution-arn>/*/*` (any stage, any route of this API only). A statement
//! of the same name on the unqualified function, from before the alias, is
//! removed when the alias's is added.

use serde::Deserialize;
use serde_json::Value;

use super::Clients;
use super::http_api::find_api;
use super::lambda_alias::ALIAS_NAME;
use crate::engine::Doing;
use crate::engine::attributes;
use crate::engine::{
    AttributeChange, AttributeSet, DesiredResource, EngineError, ObservedResource, Planned,
    Resource,
};

crate::attributes! {
    /// What is managed of the invoke permission. The source ARN names the API's
    /// id, unknown until the API exists.
    pub struct PermissionAttributes, enum PermissionAttribute {
        Principal principal: StatementValue,
        Action action: StatementValue,
        SourceArn source_arn: Planned<StatementValue>,
    }
}

/// One field of the policy statement, as the plan compares it: a string, a
/// list of them (IAM allows either), or absent (`null`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum StatementValue {
    One(String),
    Many(Vec<String>),
    Absent,
}

impl StatementValue {
    fn one(text: &str) -> Self {
        Self::One(text.to_owned())
    }

    /// A field read from the statement; any other shape than IAM's is absent.
    fn read(value: &Value) -> Self {
        Self::deserialize(value).unwrap_or(Self::Absent)
    }
}

attributes::serialized_attribute_values!(StatementValue);

/// What `statement` (of the alias's policy) grants, as the plan compares it:
/// the service principal, the action and the source ARN condition.
fn attributes_of(statement: &Value) -> PermissionAttributes {
    let principal = match &statement["Principal"] {
        Value::Object(map) => map.get("Service").unwrap_or(&Value::Null),
        other => other,
    };
    PermissionAttributes {
        principal: StatementValue::read(principal),
        action: StatementValue::read(&statement["Action"]),
        source_arn: Planned::Known(StatementValue::read(
            &statement["Condition"]["ArnLike"]["AWS:SourceArn"],
        )),
    }
}

pub const ADDRESS: &str = "lambda_permission.http_api";
const PRINCIPAL: &str = "apigateway.amazonaws.com";
const ACTION: &str = "lambda:InvokeFunction";

#[derive(Debug, Clone)]
pub struct InvokePermission {
    pub clients: Clients,
    pub function_name: String,
    pub api_name: String,
    pub statement_id: String,
    /// The API's id when it already exists (otherwise known after apply).
    pub api_id: Option<String>,
    pub depends_on: Vec<String>,
}

impl InvokePermission {
    fn source_arn(&self, api_id: &str) -> String {
        format!(
            "arn:aws:execute-api:{}:{}:{api_id}/*/*",
            self.clients.region, self.clients.account_id
        )
    }

    fn doing(&self, what: &str) -> String {
        format!(
            "{what} permission {} of Lambda function {}",
            self.statement_id, self.function_name
        )
    }

    async fn add(&self) -> Result<(), EngineError> {
        let api = find_api(&self.clients, &self.api_name)
            .await?
            .ok_or_else(|| {
                EngineError::new(
                    self.doing("adding"),
                    format!("HTTP API {} does not exist", self.api_name),
                )
            })?;
        self.clients
            .lambda
            .add_permission()
            .function_name(&self.function_name)
            .qualifier(ALIAS_NAME)
            .statement_id(&self.statement_id)
            .action(ACTION)
            .principal(PRINCIPAL)
            .source_arn(self.source_arn(&api.id))
            .send()
            .await
            .doing(|| self.doing("adding"))?;
        Ok(())
    }

    async fn remove(&self) -> Result<(), EngineError> {
        self.clients
            .lambda
            .remove_permission()
            .function_name(&self.function_name)
            .qualifier(ALIAS_NAME)
            .statement_id(&self.statement_id)
            .send()
            .await
            .doing(|| self.doing("removing"))?;
        Ok(())
    }

    /// Remove the statement from the unqualified function's policy, where a
    /// deployment from before the alias (or the legacy one) put it: nothing
    /// invokes `$LATEST` any more, so nothing may.
    async fn remove_unqualified(&self) -> Result<(), EngineError> {
        let result = self
            .clients
            .lambda
            .remove_permission()
            .function_name(&self.function_name)
            .statement_id(&self.statement_id)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(EngineError::sdk(
                self.doing("removing the unqualified (pre-alias)"),
                error,
            )),
        }
    }
}

#[async_trait::async_trait]
impl Resource for InvokePermission {
    fn address(&self) -> &str {
        ADDRESS
    }

    fn desired(&self) -> DesiredResource {
        let source_arn = self.api_id.as_deref().map_or(Planned::Unknown, |id| {
            Planned::Known(StatementValue::One(self.source_arn(id)))
        });
        DesiredResource::new(
            self.address(),
            "lambda_permission",
            &self.statement_id,
            PermissionAttributes {
                principal: StatementValue::one(PRINCIPAL),
                action: StatementValue::one(ACTION),
                source_arn,
            },
        )
        .depending_on(self.depends_on.clone())
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        let Some(policy) = crate::engine::existing(
            self.clients
                .lambda
                .get_policy()
                .function_name(&self.function_name)
                .qualifier(ALIAS_NAME)
                .send()
                .await,
            |error| error.is_resource_not_found_exception(),
            self.doing("reading"),
        )?
        else {
            return Ok(None);
        };
        let document: Value = policy
            .policy()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(Value::Null);
        let statements = match &document["Statement"] {
            Value::Array(items) => items.clone(),
            Value::Null => Vec::new(),
            single => vec![single.clone()],
        };
        // Some emulators answer a qualified GetPolicy with every statement of
        // the function: only the alias's own is this permission.
        let alias_suffix = format!(":{ALIAS_NAME}");
        let Some(statement) = statements.iter().find(|statement| {
            statement["Sid"] == self.statement_id.as_str()
                && statement["Resource"]
                    .as_str()
                    .is_none_or(|resource| resource.ends_with(&alias_suffix))
        }) else {
            return Ok(None);
        };
        Ok(Some(ObservedResource {
            id: self.statement_id.clone(),
            arn: None,
            attributes: attributes_of(statement).into_observed(),
            facts: Default::default(),
        }))
    }

    async fn create(&self) -> Result<(), EngineError> {
        self.remove_unqualified().await?;
        self.add().await
    }

    async fn update(
        &self,
        _observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError> {
        // A statement cannot be edited: any change is a remove and an add,
        // which resolves the source ARN from the API as it is now.
        for change in changes {
            match PermissionAttributes::name_of(change)? {
                PermissionAttribute::Principal
                | PermissionAttribute::Action
                | PermissionAttribute::SourceArn => {}
            }
        }
        self.remove().await?;
        self.add().await
    }

    async fn delete(&self, _observed: &ObservedResource) -> Result<(), EngineError> {
        self.remove().await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{ACTION, PRINCIPAL, attributes_of};
    use crate::engine::AttributeSet;

    fn observed(statement: Value) -> Value {
        json!(attributes_of(&statement).into_observed())
    }

    #[test]
    fn a_statement_is_read_as_the_plan_shows_it() {
        let source_arn = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/*/*";
        assert_eq!(
            observed(json!({
                "Sid": "AllowInvokeFromHttpApi",
                "Effect": "Allow",
                "Principal": {"Service": PRINCIPAL},
                "Action": ACTION,
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f:live",
                "Condition": {"ArnLike": {"AWS:SourceArn": source_arn}}
            })),
            json!({"principal": PRINCIPAL, "action": ACTION, "source_arn": source_arn})
        );
        // What IAM also allows: lists, a principal that is not a service, no condition.
        assert_eq!(
            observed(json!({
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": [ACTION, "lambda:GetFunction"]
            })),
            json!({
                "principal": null,
                "action": [ACTION, "lambda:GetFunction"],
                "source_arn": null
            })
        );
        assert_eq!(
            observed(json!({"Principal": "*", "Action": ACTION}))["principal"],
            json!("*")
        );
    }
}
