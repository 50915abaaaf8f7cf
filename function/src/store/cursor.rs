//! Opaque pagination cursors: a DynamoDB `LastEvaluatedKey` of string attributes,
//! as base64url (no padding) of a JSON object. Decoding checks the exact set of
//! key attributes the query expects, so a cursor from another listing (or a
//! forged one) is a 400, never a DynamoDB validation error.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::StoreError;

/// Longest cursor accepted, far above any real key (ids are at most 64 characters).
const MAX_CURSOR_LEN: usize = 1024;

/// Encode a `LastEvaluatedKey` whose attributes are all strings.
pub(crate) fn encode(key: &HashMap<String, AttributeValue>) -> Option<String> {
    let mut plain = BTreeMap::new();
    for (name, value) in key {
        plain.insert(name.as_str(), value.as_s().ok()?.as_str());
    }
    let json = serde_json::to_vec(&plain).ok()?;
    Some(URL_SAFE_NO_PAD.encode(json))
}

/// Decode a cursor into an `ExclusiveStartKey` with exactly `expected` attributes.
pub(crate) fn decode(
    cursor: &str,
    expected: &[&str],
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let invalid = |reason: &str| StoreError::InvalidCursor {
        reason: reason.to_owned(),
    };
    if cursor.len() > MAX_CURSOR_LEN {
        return Err(invalid("too long"));
    }
    let json = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid("not a cursor returned by this API"))?;
    let plain: BTreeMap<String, String> =
        serde_json::from_slice(&json).map_err(|_| invalid("not a cursor returned by this API"))?;
    if plain.len() != expected.len() || expected.iter().any(|name| !plain.contains_key(*name)) {
        return Err(invalid("it belongs to a different listing"));
    }
    if plain
        .values()
        .any(|value| value.is_empty() || value.len() > 256)
    {
        return Err(invalid("not a cursor returned by this API"));
    }
    Ok(plain
        .into_iter()
        .map(|(name, value)| (name, AttributeValue::S(value)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pairs: &[(&str, &str)]) -> HashMap<String, AttributeValue> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), AttributeValue::S((*value).to_owned())))
            .collect()
    }

    #[test]
    fn a_cursor_round_trips() {
        let original = key(&[("tableId", "t1"), ("username", "ann"), ("rank", "0001#ann")]);
        let cursor = encode(&original).expect("string keys encode");
        assert!(
            cursor
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        let decoded = decode(&cursor, &["tableId", "username", "rank"]).expect("decodes");
        assert_eq!(decoded, original);
    }

    #[test]
    fn foreign_or_garbage_cursors_are_rejected() {
        let cursor = encode(&key(&[("tableId", "t1"), ("username", "ann")])).expect("encodes");
        assert!(decode(&cursor, &["tableId", "username", "rank"]).is_err());
        assert!(decode("not base64!", &["tableId"]).is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode("[1,2]"), &["tableId"]).is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode(r#"{"tableId":5}"#), &["tableId"]).is_err());
        assert!(decode(&"A".repeat(2000), &["tableId"]).is_err());
    }

    #[test]
    fn non_string_keys_are_not_encoded() {
        let mut original = key(&[("tableId", "t1")]);
        original.insert("n".into(), AttributeValue::N("1".into()));
        assert_eq!(encode(&original), None);
    }
}
