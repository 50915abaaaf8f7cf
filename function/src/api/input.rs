//! Validation of everything a client sends: ids, JSON bodies, counts, paging.

use serde_json::{Map, Value};

use super::ApiError;
use crate::schema::{MAX_COUNT, METADATA_USERNAME};
use crate::store::StartAfter;

/// Largest page size a client may ask for.
pub const MAX_LIMIT: u16 = 500;
/// Page size when none is given.
pub const DEFAULT_LIMIT: u16 = 50;
/// Longest display name accepted.
pub const MAX_DISPLAY_NAME_CHARS: usize = 256;

pub use crate::schema::is_valid_id;

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

/// A request body: a JSON object, with the text of each of its fields as sent,
/// so that numbers are read exactly (`serde_json` reads a number with a
/// fraction or an exponent as an `f64`, which cannot hold every integer of
/// 17 digits, nor tell `9007199254740991.5` from `9007199254740992`).
#[derive(Debug)]
pub struct Body {
    object: Map<String, Value>,
    raw: std::collections::HashMap<String, Box<serde_json::value::RawValue>>,
}

impl std::ops::Deref for Body {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Self::Target {
        &self.object
    }
}

impl Body {
    /// The text of field `name` as the client sent it.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.raw.get(name).map(|raw| raw.get())
    }
}

/// The request body as a JSON object. A field whose value JSON cannot carry
/// (a number beyond any `f64`, say) is a 400 that names it.
pub fn json_object(body: &[u8]) -> Result<Body, ApiError> {
    use serde_json::value::RawValue;
    let not_an_object = || ApiError::bad_request("Request body must be a JSON object");
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(not_an_object());
    }
    let malformed = |error: serde_json::Error| match field_at(body, error.line(), error.column()) {
        Some(field) => ApiError::bad_request(format!(
            "{field} cannot be read (JSON has no NaN or Infinity; a number must be finite): {error}"
        )),
        None => ApiError::bad_request(format!("Malformed JSON: {error}")),
    };
    let whole: Box<RawValue> = serde_json::from_slice(body).map_err(malformed)?;
    if !whole.get().trim_start().starts_with('{') {
        return Err(not_an_object());
    }
    let raw: std::collections::HashMap<String, Box<RawValue>> =
        serde_json::from_str(whole.get()).map_err(malformed)?;
    let mut object = Map::new();
    for (name, text) in &raw {
        let value = serde_json::from_str(text.get())
            .map_err(|error| ApiError::bad_request(format!("{name} cannot be read: {error}")))?;
        object.insert(name.clone(), value);
    }
    Ok(Body { object, raw })
}

/// The field (`metrics.accuracy`) whose value JSON text `body` holds at
/// `line`:`column` (1-based, as `serde_json` reports errors), so that a value
/// JSON cannot hold (`NaN`, `Infinity`, as Python writes them) is named.
pub fn field_at(body: &[u8], line: usize, column: usize) -> Option<String> {
    let mut offset = 0;
    for _ in 1..line {
        offset += body[offset..].iter().position(|b| *b == b'\n')? + 1;
    }
    let end = (offset + column.saturating_sub(1)).min(body.len());
    // One entry per open container: whether it is an object, and the key
    // being read in it.
    let mut path: Vec<(bool, Option<String>)> = Vec::new();
    let mut expecting_key = false;
    let mut index = 0;
    while index < end {
        match body[index] {
            b'{' => {
                path.push((true, None));
                expecting_key = true;
            }
            b'[' => {
                path.push((false, None));
                expecting_key = false;
            }
            b'}' | b']' => {
                path.pop();
                expecting_key = false;
            }
            b',' => expecting_key = matches!(path.last(), Some((true, _))),
            b'"' => {
                let start = index + 1;
                index += 1;
                while index < body.len() && body[index] != b'"' {
                    index += if body[index] == b'\\' { 2 } else { 1 };
                }
                if expecting_key {
                    let key =
                        String::from_utf8_lossy(&body[start..index.min(body.len())]).into_owned();
                    if let Some((_, last)) = path.last_mut() {
                        *last = Some(key);
                    }
                    expecting_key = false;
                }
            }
            _ => {}
        }
        index += 1;
    }
    let names: Vec<String> = path.into_iter().filter_map(|(_, key)| key).collect();
    (!names.is_empty()).then(|| names.join("."))
}

/// The whole number a JSON number's text spells, exactly, whatever its
/// spelling (`5`, `5.0`, `5e0`, `0.5e1`, `-0`): `None` when it is not integral,
/// negative (other than zero) or above `max`.
pub fn exact_whole_number(text: &str, max: u64) -> Option<u64> {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // digits × 10^(exponent - fraction digits), digits without leading zeros.
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    let mut scale = exponent.checked_sub(i64::try_from(fraction.len()).ok()?)?;
    let mut digits = digits.to_owned();
    while scale < 0 {
        if digits.is_empty() {
            break;
        }
        // Dropping a digit below the decimal point: it must be 0.
        if !digits.ends_with('0') {
            return None;
        }
        digits.pop();
        scale += 1;
    }
    if digits.is_empty() {
        return Some(0);
    }
    if negative {
        return None;
    }
    // At most 20 digits fit a u64; anything longer is above any `max`.
    let length = i64::try_from(digits.len()).ok()?.checked_add(scale)?;
    if length > 20 {
        return None;
    }
    let value: u128 = format!("{digits}{}", "0".repeat(usize::try_from(scale).ok()?))
        .parse()
        .ok()?;
    u64::try_from(value).ok().filter(|value| *value <= max)
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
/// integral numbers in any spelling (`5.0`, `5e0`) are accepted, as legacy
/// clients send them, and read exactly (see [`Body`]).
pub fn count(object: &Body, field: &str) -> Result<u64, ApiError> {
    let invalid = || {
        ApiError::bad_request(format!(
            "{field} must be a non-negative integer (at most {MAX_COUNT})"
        ))
    };
    let value = match object.get(field) {
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request(format!("{field} is required")));
        }
        Some(Value::Number(_)) => object
            .raw(field)
            .and_then(|text| exact_whole_number(text.trim(), MAX_COUNT))
            .ok_or_else(invalid)?,
        Some(Value::String(text))
            if !text.is_empty() && text.len() <= 15 && text.bytes().all(|b| b.is_ascii_digit()) =>
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

/// Longest team name accepted.
pub const MAX_TEAM_NAME_CHARS: usize = 128;
/// Longest `playgroundUrl` accepted.
pub const MAX_PLAYGROUND_URL_CHARS: usize = 2048;

/// An optional team name: trimmed; absent, `null` or blank mean "not given",
/// as the legacy handler had it.
pub fn team_name(object: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match object.get("teamName") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) if name.chars().count() <= MAX_TEAM_NAME_CHARS => {
            let name = name.trim();
            Ok((!name.is_empty()).then(|| name.to_owned()))
        }
        Some(_) => Err(ApiError::bad_request(format!(
            "teamName must be a string of at most {MAX_TEAM_NAME_CHARS} characters"
        ))),
    }
}

/// An optional `playgroundUrl` and the playground id derived from it.
pub fn playground(object: &Map<String, Value>) -> Result<Option<(String, String)>, ApiError> {
    match object.get("playgroundUrl") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(url)) if url.chars().count() <= MAX_PLAYGROUND_URL_CHARS => {
            match playground_id(url) {
                Some(id) => Ok(Some((url.clone(), id.to_owned()))),
                None => Err(ApiError::bad_request(
                    "Invalid playgroundUrl: could not find a playground id in its path (the segment after playground/, else the last one, of 1 to 64 characters from A-Z a-z 0-9 _ -)",
                )),
            }
        }
        Some(_) => Err(ApiError::bad_request(format!(
            "playgroundUrl must be a string of at most {MAX_PLAYGROUND_URL_CHARS} characters"
        ))),
    }
}

/// The playground id in a playground URL, as the legacy handler derived it:
/// in the URL's path, the segment after the first `playground` or
/// `playgrounds` (any case) when one follows, else the last segment; it must
/// be an id.
pub fn playground_id(url: &str) -> Option<&str> {
    let without_fragment = url.split('#').next().unwrap_or("");
    let without_query = without_fragment.split('?').next().unwrap_or("");
    let path = match without_query.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty()
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            rest.split_once('/').map_or("", |(_, path)| path)
        }
        _ => without_query
            .strip_prefix("//")
            .map_or(without_query, |rest| {
                rest.split_once('/').map_or("", |(_, path)| path)
            }),
    };
    let segments: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    let after_playground = segments.iter().enumerate().find_map(|(index, part)| {
        (part.eq_ignore_ascii_case("playground") || part.eq_ignore_ascii_case("playgrounds"))
            .then(|| segments.get(index + 1))
            .flatten()
    });
    let id = match after_playground {
        Some(id) => *id,
        None => *segments.last()?,
    };
    is_valid_id(id).then_some(id)
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

/// A listing's `limit` and `lastKey` query parameters (see [`limit`] and
/// [`last_key`]).
pub fn paging(
    query: &std::collections::HashMap<String, String>,
) -> Result<(u16, StartAfter), ApiError> {
    Ok((
        limit(query.get("limit").map(String::as_str))?,
        last_key(query.get("lastKey").map(String::as_str)),
    ))
}

/// A boolean query parameter (`withRank`): `true` or `false` (also `1` and
/// `0`, in any case); absent is `false`.
pub fn flag(raw: Option<&str>, name: &str) -> Result<bool, ApiError> {
    match raw.map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0" | "") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(_) => Err(ApiError::bad_request(format!(
            "{name} must be true or false"
        ))),
    }
}

/// The `lastKey` query parameter, in any form a client sends back (see
/// [`StartAfter`]): never refused here.
pub fn last_key(raw: Option<&str>) -> StartAfter {
    StartAfter::parse(raw)
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

    fn body(value: Value) -> Body {
        json_object(value.to_string().as_bytes()).expect("a JSON object")
    }

    #[test]
    fn integral_numbers_are_read_exactly_whatever_their_spelling() {
        let max = MAX_COUNT;
        for (text, value) in [
            ("0", Some(0)),
            ("-0", Some(0)),
            ("-0.0", Some(0)),
            ("5", Some(5)),
            ("5.0", Some(5)),
            ("5.000", Some(5)),
            ("5e0", Some(5)),
            ("0.5e1", Some(5)),
            ("50e-1", Some(5)),
            ("5E+2", Some(500)),
            ("9007199254740991", Some(max)),
            ("9007199254740991.0", Some(max)),
            ("9007199254740991e0", Some(max)),
            ("9.007199254740991e15", Some(max)),
            ("900719925474099.1e1", Some(max)),
            ("0.0000e10", Some(0)),
            ("9007199254740991.5", None),
            ("9007199254740992", None),
            ("9007199254740992.0", None),
            ("1e16", None),
            ("1e400", None),
            ("1e-400", None),
            ("5.5", None),
            ("0.1", None),
            ("-1", None),
            ("-5.0", None),
            ("1e99999999999999999999", None),
        ] {
            assert_eq!(exact_whole_number(text, max), value, "{text}");
        }
        let parsed = json_object(
            br#"{"submissionCount": 9007199254740991.0, "totalCount": 9007199254740991.5}"#,
        )
        .expect("an object");
        assert_eq!(count(&parsed, "submissionCount").ok(), Some(max));
        assert!(count(&parsed, "totalCount").is_err());
        let Err(ApiError::BadRequest(message)) = json_object(br#"{"totalCount": 1e400}"#) else {
            panic!("a number beyond f64 is a 400");
        };
        assert!(message.contains("totalCount"), "{message}");
        for (body, field) in [
            (
                &br#"{"metrics": {"accuracy": NaN}, "x": 1}"#[..],
                "metrics.accuracy",
            ),
            (
                br#"{"a": 1, "metrics": {"f1": 0.5, "loss": Infinity}}"#,
                "metrics.loss",
            ),
            (b"{\n \"totalCount\":\n -Infinity}", "totalCount"),
        ] {
            let Err(ApiError::BadRequest(message)) = json_object(body) else {
                panic!("{body:?} is a 400");
            };
            assert!(message.contains(field), "{message}");
        }
    }

    #[test]
    fn counts_accept_integers_and_integer_strings_only() {
        let body = body(json!({
            "a": 5, "b": "7", "c": 5.0, "d": -1, "e": 5.5, "f": "5.5", "g": true,
            "h": "-3", "i": "", "j": [1], "k": 9_007_199_254_740_992u64, "l": "01",
            "m": "999999999999999", "n": "1000000000000000"
        }));
        assert_eq!(count(&body, "a").ok(), Some(5));
        assert_eq!(count(&body, "b").ok(), Some(7));
        assert_eq!(count(&body, "c").ok(), Some(5));
        assert_eq!(count(&body, "l").ok(), Some(1));
        assert_eq!(count(&body, "m").ok(), Some(999_999_999_999_999));
        for bad in ["d", "e", "f", "g", "h", "i", "j", "k", "n", "missing"] {
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
        assert_eq!(last_key(Some("")), StartAfter::First);
        assert_eq!(last_key(None), StartAfter::First);
    }

    #[test]
    fn playground_ids_are_derived_as_the_legacy_handler_did() {
        for (url, id) in [
            ("https://example.com/playground/my-pg", Some("my-pg")),
            (
                "https://example.com/Playgrounds/pg_1/leaderboard?x=1#y",
                Some("pg_1"),
            ),
            ("https://example.com/apps/my-pg/", Some("my-pg")),
            ("https://example.com/apps/my-pg?playground=x", Some("my-pg")),
            ("my-pg", Some("my-pg")),
            ("example.com/playground/abc", Some("abc")),
            ("//example.com/abc", Some("abc")),
            ("https://example.com", None),
            ("https://example.com/", None),
            ("https://example.com/playground/bad id", None),
            ("https://example.com/a/b.c", None),
            ("", None),
            ("???", None),
        ] {
            assert_eq!(playground_id(url), id, "{url}");
        }
    }

    #[test]
    fn team_names_are_trimmed_and_blank_ones_ignored() {
        let body =
            object(json!({"a": " Red ", "b": "  ", "c": 5, "d": null, "e": "x".repeat(129)}));
        let team = |field: &str| {
            let mut one = Map::new();
            if let Some(value) = body.get(field) {
                one.insert("teamName".into(), value.clone());
            }
            team_name(&one)
        };
        assert_eq!(team("a").ok(), Some(Some("Red".into())));
        assert_eq!(team("b").ok(), Some(None));
        assert_eq!(team("d").ok(), Some(None));
        assert_eq!(team("missing").ok(), Some(None));
        assert!(team("c").is_err());
        assert!(team("e").is_err());
    }

    #[test]
    fn bodies_must_be_json_objects() {
        assert!(json_object(b"").is_err());
        assert!(json_object(b"[1]").is_err());
        assert!(json_object(b"{\"a\":").is_err());
        assert!(json_object(b"{}").is_ok());
    }
}
