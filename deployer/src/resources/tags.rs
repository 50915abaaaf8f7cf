//! Tags, the one way every taggable resource converges them: untag the keys the
//! configuration no longer has, then tag with the tags that are new or have
//! another value (a tag call never names a tag it does not change: the deploy
//! role may not name `managed-by` in one). Each resource kind says only how its
//! service untags and tags ([`Taggable`]).

use serde_json::Value;

use crate::engine::{EngineError, Tags};

/// The tag that marks a resource as the deployer's. The deploy role may
/// change, tag and delete only HTTP APIs and user pools that carry it (the
/// deploy policy's `HttpApi*` and `UserPool*` statements), and may never
/// remove or change it on an API.
pub const MANAGED_BY_KEY: &str = "managed-by";
pub const MANAGED_BY_VALUE: &str = "deployer";

/// Tags read back from AWS, from any service's key/value pairs.
pub fn observed<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Tags {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// Tags from a planned change's observed (old) value.
fn from_value(value: &Value) -> Tags {
    value
        .as_object()
        .map(|object| {
            object
                .iter()
                .map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// How one service untags and tags one resource.
#[async_trait::async_trait]
pub trait Taggable: Sync {
    /// Remove the tags with these keys.
    async fn untag(&self, keys: Vec<String>) -> Result<(), EngineError>;
    /// Add or overwrite these tags.
    async fn tag(&self, tags: &Tags) -> Result<(), EngineError>;
}

/// Move `resource`'s tags from `old` (what was observed) to `wanted`.
pub async fn converge(
    resource: &impl Taggable,
    old: &Value,
    wanted: &Tags,
) -> Result<(), EngineError> {
    let old = from_value(old);
    let removed: Vec<String> = old
        .keys()
        .filter(|key| !wanted.contains_key(*key))
        .cloned()
        .collect();
    if !removed.is_empty() {
        resource.untag(removed).await?;
    }
    let changed: Tags = wanted
        .iter()
        .filter(|(key, value)| old.get(*key) != Some(*value))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if !changed.is_empty() {
        resource.tag(&changed).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;

    #[derive(Default)]
    struct Recorded(Mutex<Vec<String>>);

    #[async_trait::async_trait]
    impl Taggable for Recorded {
        async fn untag(&self, keys: Vec<String>) -> Result<(), EngineError> {
            self.0.lock().expect("lock").push(format!("untag {keys:?}"));
            Ok(())
        }
        async fn tag(&self, tags: &Tags) -> Result<(), EngineError> {
            self.0.lock().expect("lock").push(format!("tag {tags:?}"));
            Ok(())
        }
    }

    #[tokio::test]
    async fn removed_keys_are_untagged_first_then_the_wanted_tags_set() {
        let recorded = Recorded::default();
        let wanted: Tags = [
            ("a".to_owned(), "2".to_owned()),
            ("managed-by".to_owned(), "deployer".to_owned()),
        ]
        .into();
        converge(
            &recorded,
            &json!({"a": "1", "gone": "x", "managed-by": "deployer"}),
            &wanted,
        )
        .await
        .expect("converged");
        assert_eq!(
            *recorded.0.lock().expect("lock"),
            ["untag [\"gone\"]", "tag {\"a\": \"2\"}"],
            "an unchanged tag is never named"
        );
        let recorded = Recorded::default();
        converge(&recorded, &Value::Null, &Tags::new())
            .await
            .expect("nothing to do");
        assert!(recorded.0.lock().expect("lock").is_empty());
    }
}
