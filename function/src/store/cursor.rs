//! Opaque pagination cursors: a DynamoDB `LastEvaluatedKey` of string attributes,
//! as base64url (no padding) of a JSON object. Decoding checks the exact set of
//! key attributes the query expects, so a cursor from another listing (or a
//! forged one) is a 400, never a DynamoDB validation error.
//!
//! A client may also send back what the legacy handler's clients send
//! ([`StartAfter`]): the `aimodelshare` client library sends
//! `lastKey=json.dumps(previous lastKey)`, so our cursor arrives JSON-quoted;
//! the legacy handler returned `{tableId, username}` objects and took raw ids.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

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

/// Where a listing continues, as the client's `lastKey` says (see docs/api.md's
/// "Paging"): whatever a client sends back from a page it received works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAfter {
    /// The first page: no `lastKey`, or one the legacy handler ignored
    /// (malformed JSON, a number, an empty key).
    First,
    /// A cursor of this API, as given or JSON-encoded as a string.
    Cursor(String),
    /// The legacy handler's `{"tableId": ..., "username": ...}`, JSON-encoded:
    /// the page after that table (tables) or that user (users).
    LegacyKey {
        table_id: Option<String>,
        username: Option<String>,
    },
    /// A bare id, as the legacy handler took it: the page after that table
    /// (tables) or that user (users).
    Id(String),
}

impl StartAfter {
    /// Read a `lastKey` query parameter. Never fails: what cannot be read is
    /// the first page, as the legacy handler had it.
    pub fn parse(raw: Option<&str>) -> Self {
        let Some(raw) = raw.filter(|raw| !raw.is_empty()) else {
            return Self::First;
        };
        if plain(raw).is_some_and(|key| !key.is_empty()) {
            return Self::Cursor(raw.to_owned());
        }
        let id_or_first = |text: &str| {
            if crate::schema::is_valid_id(text) {
                Self::Id(text.to_owned())
            } else {
                Self::First
            }
        };
        match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(serde_json::Value::String(inner)) => {
                if plain(&inner).is_some_and(|key| !key.is_empty()) {
                    Self::Cursor(inner)
                } else {
                    id_or_first(&inner)
                }
            }
            Ok(serde_json::Value::Object(object)) => {
                let field = |name: &str| {
                    object
                        .get(name)
                        .and_then(serde_json::Value::as_str)
                        .filter(|value| crate::schema::is_valid_id(value))
                        .map(str::to_owned)
                };
                match (field("tableId"), field("username")) {
                    (None, None) => Self::First,
                    (table_id, username) => Self::LegacyKey { table_id, username },
                }
            }
            Ok(_) => Self::First,
            Err(_) => id_or_first(raw),
        }
    }
}

/// A cursor's attributes, if it is one of ours in form (whatever listing).
fn plain(cursor: &str) -> Option<BTreeMap<String, String>> {
    if cursor.len() > MAX_CURSOR_LEN {
        return None;
    }
    let json = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    serde_json::from_slice(&json).ok()
}

/// A cursor as an `ExclusiveStartKey` of one listing: its attributes are
/// exactly `expected`, and `belongs` (the listing's check of their values)
/// holds. `None` for a cursor of another listing or table, or a forged one:
/// the first page, so a cursor never crosses classes and never reaches
/// DynamoDB malformed.
pub(crate) fn decode(
    cursor: &str,
    expected: &[&str],
    belongs: impl Fn(&HashMap<String, AttributeValue>) -> bool,
) -> Option<HashMap<String, AttributeValue>> {
    let plain = plain(cursor)?;
    if plain.len() != expected.len()
        || expected.iter().any(|name| !plain.contains_key(*name))
        || plain
            .values()
            .any(|value| value.is_empty() || value.len() > 256)
    {
        return None;
    }
    let key: HashMap<String, AttributeValue> = plain
        .into_iter()
        .map(|(name, value)| (name, AttributeValue::S(value)))
        .collect();
    belongs(&key).then_some(key)
}

/// Whether `key`'s attribute `name` is the string `value`.
pub(crate) fn holds(key: &HashMap<String, AttributeValue>, name: &str, value: &str) -> bool {
    key.get(name)
        .and_then(|found| found.as_s().ok())
        .is_some_and(|found| found == value)
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
        let decoded = decode(&cursor, &["tableId", "username", "rank"], |_| true).expect("decodes");
        assert_eq!(decoded, original);
    }

    #[test]
    fn foreign_or_garbage_cursors_are_the_first_page() {
        let cursor = encode(&key(&[("tableId", "t1"), ("username", "ann")])).expect("encodes");
        let any = |_: &HashMap<String, AttributeValue>| true;
        assert!(decode(&cursor, &["tableId", "username", "rank"], any).is_none());
        assert!(
            decode(&cursor, &["tableId", "username"], |key| holds(
                key, "tableId", "t2"
            ))
            .is_none()
        );
        assert!(
            decode(&cursor, &["tableId", "username"], |key| holds(
                key, "tableId", "t1"
            ))
            .is_some()
        );
        assert!(decode("not base64!", &["tableId"], any).is_none());
        assert!(decode(&URL_SAFE_NO_PAD.encode("[1,2]"), &["tableId"], any).is_none());
        assert!(
            decode(
                &URL_SAFE_NO_PAD.encode(r#"{"tableId":5}"#),
                &["tableId"],
                any
            )
            .is_none()
        );
        assert!(
            decode(
                &URL_SAFE_NO_PAD.encode(r#"{"tableId":""}"#),
                &["tableId"],
                any
            )
            .is_none()
        );
        assert!(decode(&"A".repeat(2000), &["tableId"], any).is_none());
    }

    #[test]
    fn whatever_a_client_sends_back_is_read() {
        let cursor = encode(&key(&[("tableId", "t1"), ("username", "ann")])).expect("encodes");
        let quoted = serde_json::to_string(&cursor).expect("a JSON string");
        assert_eq!(
            StartAfter::parse(Some(&cursor)),
            StartAfter::Cursor(cursor.clone())
        );
        assert_eq!(StartAfter::parse(Some(&quoted)), StartAfter::Cursor(cursor));
        assert_eq!(
            StartAfter::parse(Some(r#"{"tableId":"t1","username":"ann"}"#)),
            StartAfter::LegacyKey {
                table_id: Some("t1".into()),
                username: Some("ann".into())
            }
        );
        assert_eq!(
            StartAfter::parse(Some(r#"{"tableId":"t1"}"#)),
            StartAfter::LegacyKey {
                table_id: Some("t1".into()),
                username: None
            }
        );
        assert_eq!(
            StartAfter::parse(Some("class-7")),
            StartAfter::Id("class-7".into())
        );
        assert_eq!(
            StartAfter::parse(Some(r#""class-7""#)),
            StartAfter::Id("class-7".into())
        );
        for ignored in [
            None,
            Some(""),
            Some("{bad json"),
            Some("12"),
            Some("[1]"),
            Some("null"),
            Some("{}"),
            Some(r#"{"tableId":"a b"}"#),
            Some("not an id!"),
        ] {
            assert_eq!(StartAfter::parse(ignored), StartAfter::First, "{ignored:?}");
        }
    }

    #[test]
    fn non_string_keys_are_not_encoded() {
        let mut original = key(&[("tableId", "t1")]);
        original.insert("n".into(), AttributeValue::N("1".into()));
        assert_eq!(encode(&original), None);
    }
}
