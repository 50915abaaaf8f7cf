//! The API's OpenAPI 3.1 document, generated from the handlers' annotations
//! and the body types (`bodies.rs`): served at `GET /openapi.json` and
//! committed as `function/openapi.json` (a test fails when the two differ).
//! What a schema cannot say (ordering across pages, exact `userCount` under
//! concurrency, legacy leniency, CORS) is in the descriptions, and in docs/api.md.

use axum::Json;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi};

use super::{health, moral_compass, sessions, tables, tasks, teams, users};

const DESCRIPTION: &str = "Tables of users with scores, for ML teaching games.

Every error is `{\"error\": \"...\"}`. Every path and method reaches the API: an unknown path answers 404 `Route not found`, a method a known path does not serve 405 `Method not allowed` with `Allow`. A body over 64 KiB answers 413.

Listings are paged: pass the `lastKey` of a page to get the next one; a page without `lastKey` is the last. `lastKey` is opaque: send it back as it was given, or JSON-encoded as a string (as the `aimodelshare` client does). As the legacy API did, a JSON `{\"tableId\", \"username\"}` key or a bare id continues after that table (tables) or user (users), and a `lastKey` that cannot be read (or names an item that no longer exists, or belongs to another listing or table) starts from the first page. Tables list newest first; a leaderboard by `submissionCount` descending, then `username`, across pages too.

`userCount` is exact under any concurrency: a user's first PUT counts it once.

Counts may be sent as whole numbers, integral decimals (`5.0`) or strings of digits (`\"5\"`), as legacy clients send them; they are always answered as integers.

Sign-in, where the environment requires it: send `Authorization: Bearer <token>` (a JWT of the environment's issuer, verified by API Gateway). A table's creator owns it; `PATCH` and `DELETE` of a table need its owner or an admin, a `PUT` of scores that user, the owner or an admin. 401: no valid token; 403: signed in, not allowed. Without sign-in the API is open.

Sign-in sessions: a website stores a student's ID token (a JWT that has not expired) under an unguessable session id with `POST /sessions`; an app opened with `?sessionid=` reads it with `GET /sessions/{sessionId}` until it expires (the earlier of the environment's session lifetime and the token's `exp`), then 404. Where sign-in is required, POST and PATCH need the token's owner, with the same token as bearer. Sessions are never tables or users.

CORS is answered by API Gateway from the deployment's allowed origins: a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is a 204 with `Access-Control-Allow-Origin`, `-Allow-Methods`, `-Allow-Headers` and `-Max-Age`; other answers to an allowed `Origin` carry `Access-Control-Allow-Origin`.";

#[derive(OpenApi)]
#[openapi(
    info(title = "AI Model Share playground API", version = "1", description = DESCRIPTION),
    paths(
        tables::create, tables::list, tables::get, tables::patch, tables::delete,
        users::list, users::get, users::put, teams::list,
        moral_compass::put, moral_compass::put_legacy, tasks::patch, tasks::clear,
        sessions::create, sessions::get, sessions::refresh, health::check,
    ),
    tags(
        (name = "tables", description = "Tables (classes): create, list, read, rename, archive, delete"),
        (name = "users", description = "Users' scores and the leaderboard"),
        (name = "sessions", description = "Sign-in sessions: a website stores a student's ID token under a session id; an app opened with ?sessionid= reads it back"),
        (name = "health", description = "Whether the API's table is reachable"),
    ),
    modifiers(&Links)
)]
struct ApiDoc;

/// The links a stateful client (or fuzzer) follows: from a created table to
/// its reads, changes and users, and from a stored session to its read and refresh.
struct Links;

impl Modify for Links {
    fn modify(&self, document: &mut Document) {
        link(
            document,
            ("/tables", "tableId"),
            &[
                ("GetTable", "getTable"),
                ("UpdateTable", "updateTable"),
                ("DeleteTable", "deleteTable"),
                ("ListUsers", "listUsers"),
                ("PutUser", "putUser"),
                ("GetUser", "getUser"),
                ("ListTeams", "listTeams"),
            ],
        );
        link(
            document,
            ("/sessions", "sessionId"),
            &[
                ("GetSession", "getSession"),
                ("RefreshSession", "refreshSession"),
            ],
        );
    }
}

/// Link the 201 of `POST path` to `operations`, passing the created
/// resource's `parameter` from the response body.
fn link(document: &mut Document, (path, parameter): (&str, &str), operations: &[(&str, &str)]) {
    let Some(item) = document.paths.paths.get_mut(path) else {
        return;
    };
    let Some(create) = item.post.as_mut() else {
        return;
    };
    let Some(RefOr::T(created)) = create.responses.responses.get_mut("201") else {
        return;
    };
    for (name, operation) in operations {
        let link = LinkBuilder::new()
            .operation_id(*operation)
            .parameter(parameter, format!("$response.body#/{parameter}"))
            .description(format!("The created resource, by {operation}"))
            .build();
        created.links.insert((*name).to_owned(), RefOr::T(link));
    }
}

/// The document, as utoipa builds it.
pub fn document() -> Document {
    ApiDoc::openapi()
}

/// The document as JSON. utoipa 5.5 serializes a Link's `operationId` and
/// `operationRef` in snake case (its `Link` lacks the camelCase renaming its
/// other types have), which no OpenAPI reader understands: renamed here.
pub fn document_value() -> serde_json::Value {
    let mut value = serde_json::to_value(document()).unwrap_or_default();
    if let Some(paths) = value
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    {
        for operation in paths
            .values_mut()
            .filter_map(serde_json::Value::as_object_mut)
        {
            for operation in operation.values_mut() {
                let Some(responses) = operation
                    .get_mut("responses")
                    .and_then(serde_json::Value::as_object_mut)
                else {
                    continue;
                };
                for response in responses.values_mut() {
                    let Some(links) = response
                        .get_mut("links")
                        .and_then(serde_json::Value::as_object_mut)
                    else {
                        continue;
                    };
                    for link in links
                        .values_mut()
                        .filter_map(serde_json::Value::as_object_mut)
                    {
                        for (snake, camel) in [
                            ("operation_id", "operationId"),
                            ("operation_ref", "operationRef"),
                        ] {
                            if let Some(moved) = link.remove(snake) {
                                link.insert(camel.to_owned(), moved);
                            }
                        }
                    }
                }
            }
        }
    }
    value
}

/// The document as committed: pretty JSON with a final newline.
pub fn document_json() -> String {
    let mut text = serde_json::to_string_pretty(&document_value()).unwrap_or_default();
    text.push('\n');
    text
}

/// `GET /openapi.json`.
pub async fn serve() -> Response {
    Json(document_value()).into_response()
}
