//! Who may write what, when the environment requires sign-in (`AUTH_ENABLED`,
//! set by the deployer with `auth_issuer`). API Gateway's JWT authorizer
//! verifies the token (signature, issuer, audience, expiry) before the function
//! runs; the function reads only the verified claims API Gateway passes in
//! `requestContext.authorizer.jwt.claims`, and never parses a token itself.
//!
//! The rules (also in ARCHITECTURE.md):
//! - the principal is `cognito:username`, else `email`, else `sub`; admins are
//!   the members of `AUTH_ADMIN_GROUP` (default `admin`) in `cognito:groups`;
//! - `POST /tables` needs a signed-in caller, who becomes the table's owner;
//! - `PATCH` and `DELETE /tables/{tableId}` need the owner or an admin; a table
//!   made before sign-in has no owner, so only admins;
//! - `PUT /tables/{tableId}/users/{username}` needs that user (principal equal
//!   to `username`), the table's owner, or an admin;
//! - reads are open when `ALLOW_PUBLIC_READ` (default), else need a caller.
//!
//! Without `AUTH_ENABLED` every request is allowed, as before.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// The signed-in caller, from the verified claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub sub: String,
    pub principal: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
}

impl Caller {
    /// The caller the authorizer's claims name; `None` without a `sub`.
    ///
    /// Groups are a list, and API Gateway flattens a list claim to text
    /// (`[admin staff]`), which cannot tell the group `x admin` from the groups
    /// `x` and `admin`. So groups are read from `token`, the claims of the very
    /// bearer token the authorizer verified (same `sub`), as the list they are,
    /// and compared as whole names. Without that token only a claim written as
    /// a JSON list is read; flattened text gives no group (fail closed).
    pub fn from_claims(
        claims: &HashMap<String, String>,
        token: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Option<Self> {
        let claim = |name: &str| {
            claims
                .get(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let sub = claim("sub")?;
        let email = claim("email");
        let principal = claim("cognito:username")
            .or_else(|| email.clone())
            .unwrap_or_else(|| sub.clone());
        let verified_token = token.filter(|token| {
            token.get("sub").and_then(serde_json::Value::as_str) == Some(sub.as_str())
        });
        let groups = match verified_token {
            Some(token) => match token.get(GROUPS_CLAIM) {
                Some(serde_json::Value::Array(groups)) => groups
                    .iter()
                    .filter_map(serde_json::Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                Some(serde_json::Value::String(group)) => vec![group.clone()],
                _ => Vec::new(),
            },
            None => claim(GROUPS_CLAIM)
                .and_then(|text| serde_json::from_str::<Vec<String>>(&text).ok())
                .unwrap_or_default(),
        };
        Some(Self {
            sub,
            principal,
            email,
            groups,
        })
    }

    pub fn owner(&self) -> Owner {
        Owner {
            sub: self.sub.clone(),
            principal: self.principal.clone(),
            email: self.email.clone(),
        }
    }
}

/// The claim listing a Cognito user's groups.
const GROUPS_CLAIM: &str = "cognito:groups";

/// A table's owner, as its metadata records it.
pub use crate::store::TableOwner as Owner;

/// What the environment requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub enabled: bool,
    pub admin_group: String,
    pub public_read: bool,
}

impl Default for Policy {
    /// Sign-in off: every request allowed.
    fn default() -> Self {
        Self {
            enabled: false,
            admin_group: "admin".into(),
            public_read: true,
        }
    }
}

/// What a request does, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    Read,
    CreateTable,
    /// `PATCH` or `DELETE` of a table.
    ChangeTable,
    /// `PUT` of `username`'s scores.
    WriteScores {
        username: &'a str,
    },
}

/// The rules' answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// 401: no signed-in caller where one is needed.
    Unauthenticated(String),
    /// 403: signed in, but not allowed.
    Forbidden(String),
}

impl Verdict {
    pub fn status(&self) -> u16 {
        match self {
            Self::Allowed => 200,
            Self::Unauthenticated(_) => 401,
            Self::Forbidden(_) => 403,
        }
    }
}

/// May `caller` do `action` on a table owned by `owner` (`None`: no owner)?
/// `owner` matters only for [`Action::ChangeTable`] and [`Action::WriteScores`].
pub fn decide(
    policy: &Policy,
    caller: Option<&Caller>,
    action: Action<'_>,
    owner: Option<&Owner>,
) -> Verdict {
    if !policy.enabled || (action == Action::Read && policy.public_read) {
        return Verdict::Allowed;
    }
    let Some(caller) = caller else {
        return Verdict::Unauthenticated(
            "Sign-in required: send a valid token as Authorization: Bearer <token>".into(),
        );
    };
    let is_admin = caller.groups.contains(&policy.admin_group);
    let is_owner = owner.is_some_and(|owner| owner.sub == caller.sub);
    match action {
        Action::Read | Action::CreateTable => Verdict::Allowed,
        Action::ChangeTable if is_admin || is_owner => Verdict::Allowed,
        Action::ChangeTable if owner.is_none() => Verdict::Forbidden(
            "This table has no owner (it was made before sign-in): only an admin may change it"
                .into(),
        ),
        Action::ChangeTable => {
            Verdict::Forbidden("Only the table's owner or an admin may change it".into())
        }
        Action::WriteScores { username }
            if caller.principal == username || is_owner || is_admin =>
        {
            Verdict::Allowed
        }
        Action::WriteScores { .. } => Verdict::Forbidden(format!(
            "You may write only your own scores (signed in as {}), unless you own the table or are an admin",
            caller.principal
        )),
    }
}

/// The caller of a request: from the verified JWT claims API Gateway put in
/// the Lambda event's request context; `None` locally and when unsigned.
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<Caller>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeCaller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        use lambda_http::request::RequestContext;
        let token = super::jwt::bearer_token(&parts.headers).and_then(super::jwt::claims_of);
        let caller = match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(context)) => context
                .authorizer
                .as_ref()
                .and_then(|authorizer| authorizer.jwt.as_ref())
                .and_then(|jwt| Caller::from_claims(&jwt.claims, token.as_ref())),
            _ => None,
        };
        Ok(Self(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(sub: &str, username: &str, groups: &[&str]) -> Caller {
        Caller {
            sub: sub.into(),
            principal: username.into(),
            email: None,
            groups: groups.iter().map(|group| (*group).to_owned()).collect(),
        }
    }

    #[test]
    fn the_rules_as_data() {
        let on = Policy {
            enabled: true,
            ..Policy::default()
        };
        let closed = Policy {
            public_read: false,
            ..on.clone()
        };
        let owner = Owner {
            sub: "sub-teacher".into(),
            principal: "teacher".into(),
            email: None,
        };
        let anonymous = None;
        let selfish = Some(caller("sub-ana", "ana", &[]));
        let other = Some(caller("sub-bo", "bo", &[]));
        let teacher = Some(caller("sub-teacher", "teacher", &[]));
        let admin = Some(caller("sub-root", "root", &["admin", "users"]));
        let who = [
            ("anonymous", &anonymous),
            ("self", &selfish),
            ("other", &other),
            ("owner", &teacher),
            ("admin", &admin),
        ];
        let put_ana = Action::WriteScores { username: "ana" };
        // route × {anonymous, self, other, owner, admin} → status
        /// Route, policy, action, the table's owner, and the status for each caller.
        type Row<'a> = (&'a str, &'a Policy, Action<'a>, Option<&'a Owner>, [u16; 5]);
        let table: [Row; 9] = [
            (
                "GET, public reads",
                &on,
                Action::Read,
                Some(&owner),
                [200, 200, 200, 200, 200],
            ),
            (
                "GET, closed reads",
                &closed,
                Action::Read,
                Some(&owner),
                [401, 200, 200, 200, 200],
            ),
            (
                "POST /tables",
                &on,
                Action::CreateTable,
                None,
                [401, 200, 200, 200, 200],
            ),
            (
                "PATCH|DELETE an owned table",
                &on,
                Action::ChangeTable,
                Some(&owner),
                [401, 403, 403, 200, 200],
            ),
            (
                "PATCH|DELETE a table without owner",
                &on,
                Action::ChangeTable,
                None,
                [401, 403, 403, 403, 200],
            ),
            (
                "PUT ana's scores",
                &on,
                put_ana,
                Some(&owner),
                [401, 200, 403, 200, 200],
            ),
            (
                "PUT ana's scores, no owner",
                &on,
                put_ana,
                None,
                [401, 200, 403, 403, 200],
            ),
            (
                "sign-in off: PATCH",
                &Policy::default(),
                Action::ChangeTable,
                None,
                [200; 5],
            ),
            (
                "sign-in off: PUT",
                &Policy::default(),
                put_ana,
                Some(&owner),
                [200; 5],
            ),
        ];
        for (route, policy, action, owner, expected) in table {
            for ((name, caller), status) in who.iter().zip(expected) {
                let verdict = decide(policy, caller.as_ref(), action, owner);
                assert_eq!(verdict.status(), status, "{route} as {name}: {verdict:?}");
            }
        }
    }

    #[test]
    fn claims_name_the_principal_and_groups_are_whole_names_from_the_verified_token() {
        let claims = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect()
        };
        let token = |value: serde_json::Value| match value {
            serde_json::Value::Object(object) => object,
            _ => serde_json::Map::new(),
        };
        let full = Caller::from_claims(
            &claims(&[
                ("sub", "abc"),
                ("cognito:username", "ana"),
                ("email", "ana@example.org"),
                ("cognito:groups", "[admin users]"),
            ]),
            Some(&token(
                serde_json::json!({"sub": "abc", "cognito:groups": ["admin", "users"]}),
            )),
        )
        .expect("a caller");
        assert_eq!(full.principal, "ana");
        assert_eq!(full.groups, ["admin", "users"]);
        let by_email = Caller::from_claims(
            &claims(&[("sub", "abc"), ("email", "bo@example.org")]),
            None,
        )
        .expect("a caller");
        assert_eq!(by_email.principal, "bo@example.org");
        let by_sub = Caller::from_claims(
            &claims(&[
                ("sub", "abc"),
                ("cognito:groups", r#"["teachers","admin"]"#),
            ]),
            None,
        )
        .expect("a caller");
        assert_eq!(by_sub.principal, "abc");
        assert_eq!(by_sub.groups, ["teachers", "admin"]);
        assert_eq!(
            Caller::from_claims(&claims(&[("email", "x@example.org")]), None),
            None
        );
        // Group names holding a comma or a space are whole names, never admin.
        let on = Policy {
            enabled: true,
            ..Policy::default()
        };
        for tricky in [
            vec!["teachers,admin"],
            vec!["x admin"],
            vec!["[admin]"],
            vec!["admin "],
        ] {
            let flattened = format!("[{}]", tricky.join(" "));
            let verified = token(serde_json::json!({"sub": "abc", "cognito:groups": tricky}));
            let caller = Caller::from_claims(
                &claims(&[("sub", "abc"), ("cognito:groups", &flattened)]),
                Some(&verified),
            )
            .expect("a caller");
            assert_eq!(caller.groups, tricky, "{flattened}");
            assert_eq!(
                decide(&on, Some(&caller), Action::ChangeTable, None).status(),
                403,
                "{tricky:?}"
            );
            // Without the verified token, flattened text gives no group at all.
            let unverified = Caller::from_claims(
                &claims(&[("sub", "abc"), ("cognito:groups", &flattened)]),
                None,
            )
            .expect("a caller");
            assert!(unverified.groups.is_empty(), "{flattened}");
        }
        // A token of another subject is not this caller's.
        let other = Caller::from_claims(
            &claims(&[("sub", "abc")]),
            Some(&token(
                serde_json::json!({"sub": "mallory", "cognito:groups": ["admin"]}),
            )),
        )
        .expect("a caller");
        assert!(other.groups.is_empty());
    }

    #[test]
    fn refusals_say_what_is_missing_without_echoing_a_token() {
        let on = Policy {
            enabled: true,
            ..Policy::default()
        };
        let Verdict::Unauthenticated(message) = decide(&on, None, Action::CreateTable, None) else {
            panic!("401 expected");
        };
        assert!(message.contains("Authorization: Bearer"), "{message}");
        let bo = caller("sub-bo", "bo", &[]);
        let Verdict::Forbidden(message) = decide(
            &on,
            Some(&bo),
            Action::WriteScores { username: "ana" },
            None,
        ) else {
            panic!("403 expected");
        };
        assert!(message.contains("signed in as bo"), "{message}");
    }
}
