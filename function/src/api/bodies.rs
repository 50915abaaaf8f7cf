//! Every request and response body of the API, as types: the handlers answer
//! with these, and the OpenAPI document (`openapi.rs`) is generated from them,
//! so the two cannot drift apart. Requests are parsed by `input.rs` (for the
//! exact 400 messages and the legacy leniency); their types here describe them.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::schema::MAX_COUNT;

/// Every error: `{"error": "..."}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people; never an internal detail.
    pub error: String,
}

/// `POST /tables`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct CreateTableRequest {
    /// The new table's id.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub table_id: String,
    /// Defaults to `tableId`.
    #[schema(min_length = 1, max_length = 256, pattern = r"\S", nullable = true)]
    pub display_name: Option<String>,
    /// The playground this table serves (stored). Its `playgroundId` is the
    /// path segment after `playground/` or `playgrounds/` when there is one,
    /// else the last path segment, and must be an id (`^[A-Za-z0-9_-]{1,64}$`),
    /// as the legacy handler derived it; otherwise 400.
    #[schema(format = "playground-url", max_length = 2048, nullable = true)]
    pub playground_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateTableResponse {
    pub table_id: String,
    pub display_name: String,
    pub message: String,
    /// With sign-in on: the creator, now the table's owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_principal: Option<String>,
    /// With `playgroundUrl`: the playground's id derived from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playground_id: Option<String>,
}

/// `PATCH /tables/{tableId}`: at least one of the two.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct PatchTableRequest {
    pub display_name: Option<String>,
    pub is_archived: Option<bool>,
}

// Written out: "at least one of the two, not null" is an `anyOf` of two
// required properties, which utoipa's derive cannot say.
impl utoipa::PartialSchema for PatchTableRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            AllOfBuilder, AnyOfBuilder, ObjectBuilder, SchemaType, Type,
        };
        let display_name = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(256))
                .pattern(Some(r"\S"))
        };
        let fields = ObjectBuilder::new()
            .property(
                "displayName",
                display_name()
                    .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                    .description(Some(
                        "The new display name; null is the same as leaving it out",
                    )),
            )
            .property(
                "isArchived",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::Boolean, Type::Null]))
                    .description(Some(
                        "Archive or unarchive; null is the same as leaving it out",
                    )),
            );
        let given = |name: &str, value: ObjectBuilder| {
            ObjectBuilder::new().property(name, value).required(name)
        };
        AllOfBuilder::new()
            .item(fields)
            .item(
                AnyOfBuilder::new()
                    .item(given("displayName", display_name()))
                    .item(given(
                        "isArchived",
                        ObjectBuilder::new().schema_type(Type::Boolean),
                    ))
                    .description(Some("At least one of the two, not null")),
            )
            .into()
    }
}

impl utoipa::ToSchema for PatchTableRequest {}

/// A count as a client may send it: a whole number, or (as legacy clients
/// send them) a string of digits, or an integral decimal such as `5.0`.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
#[serde(untagged)]
pub enum Count {
    Number(u64),
    Digits(String),
}

// Written out: utoipa's derive takes no bounds on an untagged enum's variants.
impl utoipa::PartialSchema for Count {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .maximum(Some(MAX_COUNT)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[0-9]{1,15}$")),
            )
            .description(Some(
                "A non-negative whole number (at most 2^53 - 1); legacy clients may send it as a string of up to 15 digits",
            ))
            .into()
    }
}

impl ToSchema for Count {}

/// `PUT /tables/{tableId}/users/{username}`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct PutUserRequest {
    pub submission_count: Count,
    pub total_count: Count,
    /// The user's team: stored (trimmed) when it holds a non-blank name and
    /// kept when left out; `null` or a blank name leave the stored team as it is.
    #[schema(max_length = 128, nullable = true)]
    pub team_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PutUserResponse {
    pub username: String,
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub submission_count: u64,
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_i64)]
    pub total_count: u64,
    pub message: String,
    /// Whether this PUT created the user (and counted it in `userCount`).
    pub created_new: bool,
    /// The team this PUT stored, if it named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_name: Option<String>,
}

/// A page of the table listing.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TablesPage {
    /// Newest first.
    pub tables: Vec<crate::store::TableRecord>,
    /// Present when there are more: pass it as `lastKey` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_key: Option<String>,
}

/// A page of a leaderboard.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsersPage {
    /// In leaderboard order: `moralCompassScore` descending (a user without
    /// one counts as 0), then `submissionCount` descending, then `username`.
    pub users: Vec<crate::store::UserRecord>,
    /// Present when there are more: pass it as `lastKey` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_key: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTableResponse {
    pub table_id: String,
    /// Users deleted by this request.
    pub deleted_users: u64,
    pub message: String,
}

/// `GET /health`, 200 and 503 alike.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `ok`, or `unavailable` (503).
    #[schema(pattern = "^(ok|unavailable)$")]
    pub status: &'static str,
    pub table_name: String,
    pub safe_concurrency: bool,
    pub allow_table_delete: bool,
    /// The Lambda version answering, on Lambda only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// When the check ran: RFC 3339, UTC.
    pub timestamp: String,
    /// Why it is unavailable (503 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `{tableId}` in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct TablePath {
    /// A table's id.
    #[param(rename = "tableId", pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    #[serde(rename = "tableId")]
    pub table_id: String,
}

/// `{tableId}` and `{username}` in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct UserPath {
    /// A table's id.
    #[param(rename = "tableId", pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    #[serde(rename = "tableId")]
    pub table_id: String,
    /// A user's name (`_metadata` is reserved: 400).
    #[param(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    pub username: String,
}

/// The paging of a listing: `limit` items from after `lastKey`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageQuery {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u16>,
    /// The `lastKey` of the previous page, as it was given (opaque) or
    /// JSON-encoded as a string; omit it (or send it empty) for the first
    /// page. Every string is taken: see the API's description for the legacy
    /// forms, and a `lastKey` that cannot be read is the first page.
    #[param(rename = "lastKey")]
    #[serde(rename = "lastKey")]
    pub last_key: Option<String>,
}

/// A user's read, with or without its ranks.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RankQuery {
    /// `true` adds the user's `rank` in the class and, in a team, its team's
    /// `teamRank`. Costs a few reads, never the whole class.
    #[param(rename = "withRank")]
    #[serde(rename = "withRank")]
    pub with_rank: Option<bool>,
}

/// A page of the team leaderboard.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamsPage {
    /// By average score descending, then more members, then the name.
    pub teams: Vec<crate::store::TeamRecord>,
    /// Present when there are more: pass it as `lastKey` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_key: Option<String>,
}

const _: () = assert!(MAX_COUNT == 9_007_199_254_740_991);
