//! Reading a JWT's parts, never verifying it: the function trusts a token only
//! where API Gateway's JWT authorizer has verified that very token (the
//! request's `Authorization: Bearer`), and uses this to read its claims
//! exactly as the token carries them (lists as lists), or to check that a
//! client's token is a JWT at all.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The claims of a compact JWT (`header.claims.signature`, base64url, header
/// and claims JSON objects); `None` when `token` is not one.
pub fn claims_of(token: &str) -> Option<Map<String, Value>> {
    let mut segments = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return None;
    };
    let base64url = |segment: &str| {
        segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !base64url(signature) {
        return None;
    }
    let object = |segment: &str| -> Option<Map<String, Value>> {
        match serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).ok()?).ok()? {
            Value::Object(object) => Some(object),
            _ => None,
        }
    };
    object(header)?;
    object(claims)
}

/// The bearer token of a request (`Authorization: Bearer <token>`, or the bare
/// token, as the legacy handler also took it).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => value,
    };
    (!token.is_empty()).then_some(token)
}

/// A compact JWT carrying `claims` (JSON text), its signature not a real one:
/// what the tests feed the parts of the API that never verify a token.
#[cfg(test)]
pub(crate) fn unsigned(claims: &str) -> String {
    format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::unsigned as jwt;

    #[test]
    fn only_compact_jwts_with_json_parts_have_claims() {
        let claims = claims_of(&jwt(r#"{"sub":"a","cognito:groups":["x admin"]}"#)).expect("a JWT");
        assert_eq!(claims["cognito:groups"], serde_json::json!(["x admin"]));
        for bad in [
            jwt("[1]"),
            "abc".to_owned(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            format!("{}.x", jwt("{}")),
            format!("{}!", jwt("{}")),
            format!("e30.{}.", URL_SAFE_NO_PAD.encode("nope")),
        ] {
            assert!(claims_of(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_bearer_token_is_read_with_or_without_its_scheme() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().expect("header"));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(
            header::AUTHORIZATION,
            "bearer  abc ".parse().expect("header"),
        );
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "abc".parse().expect("header"));
        assert_eq!(bearer_token(&headers), Some("abc"));
    }
}
