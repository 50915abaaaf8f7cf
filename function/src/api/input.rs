//! Validation of everything a client sends: ids, JSON bodies, counts, paging.

use serde_json::{Map, Value};

use super::ApiError;
use crate::schema::{MAX_COUNT, METADATA_USERNAME};

/// Largest page size a client may ask for.
pub const MAX_LIMIT: u16 = 500;
/// Page size when none is given.
pub const DEFAULT_LIMIT: u16 = 50;
/// Longest display name accepted.
pub const MAX_DISPLAY_NAME_CHARS: usize = 256;

/// `^[A-Za-z0-9_-]{1,64}$`
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A `tableId` from a path or body.
pub fn table_id(id: &str) -> Result<&str, ApiError> {
    if is_valid_id(id) {
        Ok(id)
    } else {
        Err(ApiError::bad_request(
            "Invalid tableId: use 1 to 64 characters from A-Z a-z 0-9 _ -",
        ))
    }
}

/// A `username` from a path: a valid id that is not the reserved `_metadata`.
pub fn username(name: &str) -> Result<&str, ApiError> {
    if !is_valid_id(name) {
        return Err(ApiError::bad_request(
            "Invalid username: use 1 to 64 characters from A-Z a-z 0-9 _ -",
        ));
    }
    if name == METADATA_USERNAME {
        return Err(ApiError::bad_request(
            "Invalid username: '_metadata' is reserved",
        ));
    }
    Ok(name)
}

/// The request body as a JSON object.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("Request body must be a JSON object"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::bad_request("Request body must be a JSON object")),
        Err(error) => Err(ApiError::bad_request(format!("Malformed JSON: {error}"))),
    }
}

/// An optional display name: absent or null means "not given".
pub fn display_name(object: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match object.get("displayName") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name))
            if !name.trim().is_empty() && name.chars().count() <= MAX_DISPLAY_NAME_CHARS =>
        {
            Ok(Some(name.clone()))
        }
        Some(_) => Err(ApiError::bad_request(format!(
            "displayName must be a non-empty string of at most {MAX_DISPLAY_NAME_CHARS} characters"
        ))),
    }
}

/// A required non-negative integer count. Integer-valued strings (`"5"`) and
/// integral numbers (`5.0`) are accepted, as legacy clients send them.
pub fn count(object: &Map<String, Value>, field: &str) -> Result<u64, ApiError> {
    let invalid = || {
        ApiError::bad_request(format!(
            "{field} must be a non-negative integer (at most {MAX_COUNT})"
        ))
    };
    let value = match object.get(field) {
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request(format!("{field} is required")));
        }
        Some(Value::Number(number)) => match number.as_u64() {
            Some(value) => value,
            None => match number.as_f64() {
                Some(value)
                    if value.fract() == 0.0 && value >= 0.0 && value <= MAX_COUNT as f64 =>
                {
                    value as u64
                }
                _ => return Err(invalid()),
            },
        },
        Some(Value::String(text))
            if !text.is_empty() && text.len() <= 16 && text.bytes().all(|b| b.is_ascii_digit()) =>
        {
            text.parse::<u64>().map_err(|_| invalid())?
        }
        Some(_) => return Err(invalid()),
    };
    if value > MAX_COUNT {
        return Err(invalid());
    }
    Ok(value)
}

/// The `limit` query parameter: 1..=500, default 50.
pub fn limit(raw: Option<&str>) -> Result<u16, ApiError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .parse::<u16>()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| {
                ApiError::bad_request(format!("limit must be an integer from 1 to {MAX_LIMIT}"))
            }),
    }
}

/// The `lastKey` query parameter: absent, or a non-empty cursor from a previous page.
pub fn last_key(raw: Option<&str>) -> Result<Option<&str>, ApiError> {
    match raw {
        None => Ok(None),
        Some("") => Err(ApiError::bad_request(
            "Invalid lastKey: pass the lastKey of the previous page, or omit it",
        )),
        Some(cursor) => Ok(Some(cursor)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(object) => object,
            _ => Map::new(),
        }
    }

    #[test]
    fn ids_follow_the_contract_pattern() {
        for good in ["a", "A-b_9", &"x".repeat(64)] {
            assert!(is_valid_id(good), "{good}");
        }
        for bad in ["", "a b", "a/b", "é", &"x".repeat(65), "a.b"] {
            assert!(!is_valid_id(bad), "{bad}");
        }
        assert!(username("_metadata").is_err());
        assert!(username("_meta").is_ok());
    }

    #[test]
    fn counts_accept_integers_and_integer_strings_only() {
        let body = object(json!({
            "a": 5, "b": "7", "c": 5.0, "d": -1, "e": 5.5, "f": "5.5", "g": true,
            "h": "-3", "i": "", "j": [1], "k": 9_007_199_254_740_992u64, "l": "01"
        }));
        assert_eq!(count(&body, "a").ok(), Some(5));
        assert_eq!(count(&body, "b").ok(), Some(7));
        assert_eq!(count(&body, "c").ok(), Some(5));
        assert_eq!(count(&body, "l").ok(), Some(1));
        for bad in ["d", "e", "f", "g", "h", "i", "j", "k", "missing"] {
            assert!(count(&body, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_and_cursors_are_checked() {
        assert_eq!(limit(None).ok(), Some(50));
        assert_eq!(limit(Some("500")).ok(), Some(500));
        for bad in ["0", "501", "-1", "ten", "", "1.5"] {
            assert!(limit(Some(bad)).is_err(), "{bad}");
        }
        assert!(last_key(Some("")).is_err());
        assert_eq!(last_key(None).ok(), Some(None));
    }

    #[test]
    fn bodies_must_be_json_objects() {
        assert!(json_object(b"").is_err());
        assert!(json_object(b"[1]").is_err());
        assert!(json_object(b"{\"a\":").is_err());
        assert!(json_object(b"{}").is_ok());
    }
}
