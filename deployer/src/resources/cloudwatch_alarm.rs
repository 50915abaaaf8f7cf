//! A CloudWatch alarm on one of the environment's metrics (the function's
//! `Errors` or `Throttles`, the API's `5xx`): the sum over 5 minutes at or
//! above a threshold, missing data not breaching, notifying an optional SNS
//! topic. `PutMetricAlarm` creates and replaces an alarm whole, so any change
//! is one call. The API's alarm names the API's id, known once it exists.

use super::Clients;
use super::http_api::find_api;
use crate::engine::Doing;
use crate::engine::attributes;
use crate::engine::{
    AttributeChange, AttributeSet, DesiredResource, EngineError, ObservedResource, Planned,
    Resource,
};
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic, Tag};

crate::attributes! {
    /// What is managed of an alarm.
    pub struct AlarmAttributes, enum AlarmAttribute {
        Metric metric: Planned<Metric>,
        Threshold threshold: Option<i64>,
        PeriodS period_s: Option<i32>,
        Actions actions: Option<Vec<String>>,
    }
}

/// The metric an alarm watches and how, as the plan compares it. An alarm on
/// another metric or rule than this deployer's is read without dimensions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Metric {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub statistic: Option<String>,
    pub comparison: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<std::collections::BTreeMap<String, String>>,
}

attributes::serialized_attribute_values!(Metric);

/// The window each alarm sums over.
const PERIOD_S: i32 = 300;
const MISSING_DATA: &str = "notBreaching";

/// One dimension of the alarm's metric: a known value, or the id of the HTTP
/// API named here (looked up at apply when the plan cannot know it yet).
#[derive(Debug, Clone)]
pub enum DimensionValue {
    Known(String),
    ApiId {
        api_name: String,
        planned: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Alarm {
    pub clients: Clients,
    pub address: String,
    pub name: String,
    pub description: String,
    pub namespace: &'static str,
    pub metric_name: &'static str,
    pub dimensions: Vec<(&'static str, DimensionValue)>,
    pub threshold: u32,
    /// SNS topic notified when the alarm fires and when it recovers.
    pub sns_topic_arn: Option<String>,
    pub tags: std::collections::BTreeMap<String, String>,
    pub depends_on: Vec<String>,
}

impl Alarm {
    fn doing(&self, what: &str) -> String {
        format!("{what} CloudWatch alarm {}", self.name)
    }

    fn metric_value(&self, dimensions: &[(&str, String)]) -> Metric {
        Metric {
            namespace: Some(self.namespace.to_owned()),
            name: Some(self.metric_name.to_owned()),
            statistic: Some("Sum".to_owned()),
            comparison: Some(">=".to_owned()),
            dimensions: Some(
                dimensions
                    .iter()
                    .map(|(name, value)| ((*name).to_owned(), value.clone()))
                    .collect(),
            ),
        }
    }

    fn actions(&self) -> Vec<String> {
        self.sns_topic_arn.iter().cloned().collect()
    }

    /// The dimensions with every value known, looking up the API's id.
    async fn resolved_dimensions(&self) -> Result<Vec<(&'static str, String)>, EngineError> {
        let mut resolved = Vec::new();
        for (name, value) in &self.dimensions {
            let value = match value {
                DimensionValue::Known(value) => value.clone(),
                DimensionValue::ApiId { api_name, .. } => {
                    find_api(&self.clients, api_name)
                        .await?
                        .ok_or_else(|| {
                            EngineError::new(
                                self.doing("putting"),
                                format!("HTTP API {api_name} does not exist"),
                            )
                        })?
                        .id
                }
            };
            resolved.push((*name, value));
        }
        Ok(resolved)
    }

    async fn put(&self, with_tags: bool) -> Result<(), EngineError> {
        let dimensions = self.resolved_dimensions().await?;
        let mut request = self
            .clients
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(&self.name)
            .alarm_description(&self.description)
            .namespace(self.namespace)
            .metric_name(self.metric_name)
            .set_dimensions(Some(
                dimensions
                    .iter()
                    .map(|(name, value)| Dimension::builder().name(*name).value(value).build())
                    .collect(),
            ))
            .statistic(Statistic::Sum)
            .period(PERIOD_S)
            .evaluation_periods(1)
            .threshold(f64::from(self.threshold))
            .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
            .treat_missing_data(MISSING_DATA)
            .set_alarm_actions(Some(self.actions()))
            .set_ok_actions(Some(self.actions()));
        if with_tags {
            request = request.set_tags(Some(
                self.tags
                    .iter()
                    .map(|(key, value)| Tag::builder().key(key).value(value).build())
                    .collect(),
            ));
        }
        request.send().await.doing(|| self.doing("putting"))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Resource for Alarm {
    fn address(&self) -> &str {
        &self.address
    }

    fn desired(&self) -> DesiredResource {
        let known: Option<Vec<(&str, String)>> = self
            .dimensions
            .iter()
            .map(|(name, value)| match value {
                DimensionValue::Known(value) => Some((*name, value.clone())),
                DimensionValue::ApiId { planned, .. } => planned.clone().map(|id| (*name, id)),
            })
            .collect();
        DesiredResource::new(
            self.address(),
            "cloudwatch_alarm",
            &self.name,
            AlarmAttributes {
                metric: known.map_or(Planned::Unknown, |dimensions| {
                    Planned::Known(self.metric_value(&dimensions))
                }),
                threshold: Some(i64::from(self.threshold)),
                period_s: Some(PERIOD_S),
                actions: Some(self.actions()),
            },
        )
        .depending_on(self.depends_on.clone())
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        let output = self
            .clients
            .cloudwatch
            .describe_alarms()
            .alarm_names(&self.name)
            .send()
            .await
            .doing(|| self.doing("reading"))?;
        let Some(alarm) = output
            .metric_alarms()
            .iter()
            .find(|alarm| alarm.alarm_name() == Some(self.name.as_str()))
        else {
            return Ok(None);
        };
        let dimensions: Vec<(&str, String)> = alarm
            .dimensions()
            .iter()
            .map(|dimension| {
                (
                    dimension.name().unwrap_or_default(),
                    dimension.value().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let same_rule = alarm.statistic() == Some(&Statistic::Sum)
            && alarm.comparison_operator()
                == Some(&ComparisonOperator::GreaterThanOrEqualToThreshold)
            && alarm.namespace() == Some(self.namespace)
            && alarm.metric_name() == Some(self.metric_name);
        // Another metric or rule than this deployer's shows as a change of `metric`.
        let metric = if same_rule {
            self.metric_value(&dimensions)
        } else {
            Metric {
                namespace: alarm.namespace().map(str::to_owned),
                name: alarm.metric_name().map(str::to_owned),
                statistic: alarm
                    .statistic()
                    .map(|statistic| statistic.as_str().to_owned()),
                comparison: alarm
                    .comparison_operator()
                    .map(|comparison| comparison.as_str().to_owned()),
                dimensions: None,
            }
        };
        Ok(Some(ObservedResource {
            id: self.name.clone(),
            arn: alarm.alarm_arn().map(str::to_owned),
            attributes: AlarmAttributes {
                metric: Planned::Known(metric),
                // Thresholds are whole counts; a fractional one set by hand shows as a change.
                #[allow(clippy::cast_possible_truncation)]
                threshold: alarm.threshold().map(|threshold| {
                    if threshold.fract() == 0.0 {
                        threshold as i64
                    } else {
                        -1
                    }
                }),
                period_s: alarm.period(),
                actions: Some(alarm.alarm_actions().to_vec()),
            }
            .into_observed(),
            facts: Default::default(),
        }))
    }

    async fn create(&self) -> Result<(), EngineError> {
        self.put(true).await
    }

    async fn update(
        &self,
        _observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError> {
        for change in changes {
            match AlarmAttributes::name_of(change)? {
                AlarmAttribute::Metric
                | AlarmAttribute::Threshold
                | AlarmAttribute::PeriodS
                | AlarmAttribute::Actions => {}
            }
        }
        // PutMetricAlarm replaces the whole alarm: one call for any change.
        self.put(false).await
    }

    async fn delete(&self, _observed: &ObservedResource) -> Result<(), EngineError> {
        self.clients
            .cloudwatch
            .delete_alarms()
            .alarm_names(&self.name)
            .send()
            .await
            .doing(|| self.doing("deleting"))?;
        Ok(())
    }
}
