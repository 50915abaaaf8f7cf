//! `POST /sessions`, `GET /sessions/{sessionId}`, `PATCH /sessions/{sessionId}`:
//! a website stores a student's ID token under a session id, and an app opened
//! with `?sessionid=<id>` fetches it (the legacy handler's "drop-off" sign-in).
//!
//! Safer than the legacy handler:
//! - sessions have their own key space (`store/sessions.rs`): never a table or a user;
//! - a session ends at the earlier of the configured lifetime and its token's
//!   own `exp`, and reads treat it as gone from then on;
//! - a token that is not a JWT, or has expired, is refused;
//! - with sign-in on, POST and PATCH sit behind API Gateway's JWT authorizer
//!   and the token stored must be the caller's own (the very bearer token API
//!   Gateway verified), and only its owner may replace or refresh a session;
//! - no token is ever logged: this module logs nothing, and errors never echo one.
//!
//! GET stays open: the session id is the capability, so it must be
//! unguessable (at least 128 random bits, e.g. a UUIDv4 or 22 base64url
//! characters from a CSPRNG), and API Gateway throttles the route on its own.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::access::{Caller, MaybeCaller};
use super::bodies::ErrorBody;
use super::{ApiError, AppState, input, jwt};
use crate::store::{SessionWriter, StoreError};

/// Longest token accepted (a Cognito ID token is 1 to 2 KiB).
pub const MAX_TOKEN_CHARS: usize = 16 * 1024;

/// `POST /sessions`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct CreateSessionRequest {
    /// The session's id: unguessable (at least 128 random bits), as it is the
    /// only thing an app needs to read the token back.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub session_id: String,
    /// The student's ID token: a JWT that has not expired. With sign-in on, the
    /// same token as the request's `Authorization: Bearer`.
    #[schema(format = "jwt", max_length = 16384)]
    pub token: String,
}

/// `PATCH /sessions/{sessionId}`: a fresh token for a live session.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct RefreshSessionRequest {
    /// The new ID token: a JWT that has not expired.
    #[schema(format = "jwt", max_length = 16384)]
    pub token: String,
}

/// What POST and PATCH answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionStored {
    pub message: String,
    pub session_id: String,
    /// When the session ends, in seconds since the epoch: the earlier of the
    /// configured lifetime and the token's `exp`.
    pub expires_at: i64,
}

/// What GET answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub session_id: String,
    pub token: String,
}

/// `{sessionId}` in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct SessionPath {
    /// A session's id.
    #[param(rename = "sessionId", pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    #[serde(rename = "sessionId")]
    pub session_id: String,
}

fn session_id(id: &str) -> Result<&str, ApiError> {
    if input::is_valid_id(id) {
        Ok(id)
    } else {
        Err(ApiError::bad_request(
            "Invalid sessionId: use 1 to 64 characters from A-Z a-z 0-9 _ -",
        ))
    }
}

/// A required string field of a body.
fn string_field<'a>(object: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApiError> {
    match object.get(field) {
        Some(Value::String(text)) => Ok(text),
        None | Some(Value::Null) => Err(ApiError::bad_request(format!("{field} is required"))),
        Some(_) => Err(ApiError::bad_request(format!("{field} must be a string"))),
    }
}

/// The `exp` of a token, after checking it is a JWT (compact form, header and
/// claims JSON objects) that has not expired at `now`. The signature is not
/// checked here: with sign-in on, API Gateway has verified this very token.
pub fn token_expiry(token: &str, now: i64) -> Result<Option<i64>, ApiError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(ApiError::bad_request(format!(
            "token is longer than {MAX_TOKEN_CHARS} characters"
        )));
    }
    let claims = jwt::claims_of(token).ok_or_else(|| {
        ApiError::bad_request(
            "token must be a JWT (header.payload.signature, base64url), such as a Cognito ID token",
        )
    })?;
    let expiry = match claims.get("exp") {
        None => None,
        Some(Value::Number(number)) => match number.as_i64() {
            Some(exp) => Some(exp),
            // A fractional or huge `exp`: its whole seconds, saturating.
            None => number.as_f64().map(|exp| exp as i64),
        },
        Some(_) => {
            return Err(ApiError::bad_request(
                "token's exp claim must be a number of seconds since the epoch",
            ));
        }
    };
    if expiry.is_some_and(|exp| exp <= now) {
        return Err(ApiError::bad_request("token has expired"));
    }
    Ok(expiry)
}

/// Who may write this session: anyone with sign-in off; with it on, the
/// signed-in caller, and only with their own token.
fn writer<'a>(
    state: &AppState,
    caller: Option<&'a Caller>,
    headers: &HeaderMap,
    token: &str,
) -> Result<SessionWriter<'a>, ApiError> {
    if !state.access.enabled {
        return Ok(SessionWriter::Anyone);
    }
    let Some(caller) = caller else {
        return Err(ApiError::Unauthenticated(
            "Sign-in required: send your ID token as Authorization: Bearer <token>".into(),
        ));
    };
    if jwt::bearer_token(headers) != Some(token) {
        return Err(ApiError::Forbidden(
            "The session's token must be your own: the same token as this request's Authorization: Bearer".into(),
        ));
    }
    Ok(SessionWriter::Owner(&caller.sub))
}

/// Until when a session with `token` lives: the configured lifetime, cut
/// short by the token's own expiry.
fn expiry(state: &AppState, token: &str, now: i64) -> Result<i64, ApiError> {
    let lifetime_end = now.saturating_add(state.store.session_lifetime_s());
    Ok(token_expiry(token, now)?.map_or(lifetime_end, |exp| exp.min(lifetime_end)))
}

/// What storing `token` takes: now (epoch seconds), until when it lives, and
/// who writes it; or why it is refused.
fn accept<'a>(
    state: &AppState,
    caller: Option<&'a Caller>,
    headers: &HeaderMap,
    token: &str,
) -> Result<(i64, i64, SessionWriter<'a>), ApiError> {
    let now = epoch_now();
    let expires_at = expiry(state, token, now)?;
    Ok((now, expires_at, writer(state, caller, headers, token)?))
}

fn epoch_now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[utoipa::path(
    post, path = "/sessions", operation_id = "createSession", tag = "sessions",
    request_body = CreateSessionRequest,
    responses(
        (status = 201, description = "Stored until expiresAt", body = SessionStored),
        (status = 400, description = "A bad sessionId; a token that is not a JWT or has expired; malformed JSON", body = ErrorBody),
        (status = 401, description = "Sign-in required (where the environment requires it) and no valid token", body = ErrorBody),
        (status = 403, description = "Signed in, but the token in the body is not the caller's own bearer token", body = ErrorBody),
        (status = 409, description = "Signed in, and another user's live session has this id", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 503, description = "The table is busy; retry", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    MaybeCaller(caller): MaybeCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let object = input::json_object(&body)?;
    let session_id = session_id(string_field(&object, "sessionId")?)?;
    let token = string_field(&object, "token")?;
    let (now, expires_at, writer) = accept(&state, caller.as_ref(), &headers, token)?;
    state
        .store
        .put_session(session_id, token, expires_at, writer, now, &crate::now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SessionStored {
            message: "Session created".into(),
            session_id: session_id.to_owned(),
            expires_at,
        }),
    )
        .into_response())
}

#[utoipa::path(
    get, path = "/sessions/{sessionId}", operation_id = "getSession", tag = "sessions",
    params(SessionPath),
    responses(
        (status = 200, description = "The session's token", body = Session),
        (status = 400, description = "A bad sessionId", body = ErrorBody),
        (status = 404, description = "Session not found or expired", body = ErrorBody),
        (status = 503, description = "The table is busy; retry", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let session_id = session_id(&id)?;
    let session = state
        .store
        .get_session(session_id, epoch_now())
        .await?
        .ok_or(StoreError::SessionNotFound)?;
    Ok(Json(Session {
        session_id: session_id.to_owned(),
        token: session.token,
    })
    .into_response())
}

#[utoipa::path(
    patch, path = "/sessions/{sessionId}", operation_id = "refreshSession", tag = "sessions",
    params(SessionPath),
    request_body = RefreshSessionRequest,
    responses(
        (status = 200, description = "The token replaced; the session lives until expiresAt", body = SessionStored),
        (status = 400, description = "A bad sessionId; a token that is not a JWT or has expired; malformed JSON", body = ErrorBody),
        (status = 401, description = "Sign-in required (where the environment requires it) and no valid token", body = ErrorBody),
        (status = 403, description = "Signed in, but the token in the body is not the caller's own bearer token", body = ErrorBody),
        (status = 404, description = "Session not found or expired (or, signed in, not the caller's)", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 503, description = "The table is busy; retry", body = ErrorBody),
    )
)]
pub async fn refresh(
    State(state): State<Arc<AppState>>,
    MaybeCaller(caller): MaybeCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let session_id = session_id(&id)?;
    let object = input::json_object(&body)?;
    let token = string_field(&object, "token")?;
    let (now, expires_at, writer) = accept(&state, caller.as_ref(), &headers, token)?;
    state
        .store
        .refresh_session(session_id, token, expires_at, writer, now, &crate::now())
        .await?;
    Ok(Json(SessionStored {
        message: "Session refreshed".into(),
        session_id: session_id.to_owned(),
        expires_at,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::jwt::unsigned as jwt;

    #[test]
    fn tokens_must_be_unexpired_jwts() {
        let now = 1_000_000;
        assert_eq!(token_expiry(&jwt(r#"{"sub":"a"}"#), now).ok(), Some(None));
        assert_eq!(
            token_expiry(&jwt(r#"{"exp":2000000}"#), now).ok(),
            Some(Some(2_000_000))
        );
        for bad in [
            jwt(r#"{"exp":999999}"#),
            jwt(r#"{"exp":1000000}"#),
            jwt(r#"{"exp":"soon"}"#),
            jwt("[1]"),
            "abc".to_owned(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            format!("{}.x", jwt("{}")),
            format!("{}!", jwt("{}")),
            jwt(&format!(r#"{{"pad":"{}"}}"#, "x".repeat(MAX_TOKEN_CHARS))),
        ] {
            assert!(token_expiry(&bad, now).is_err(), "{bad}");
        }
        let pattern_like = jwt(r#"{"exp":2000000}"#);
        assert!(pattern_like.starts_with("eyJ") && pattern_like.contains(".eyJ"));
    }
}
