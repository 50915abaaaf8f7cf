//! `smoke`: the API contract end to end, one step at a time, with names unique
//! to the run. Every step is a check; a failed one does not stop the others.
//!
//! Deployed, every path and method reaches the function (API Gateway's
//! `$default` route), so unknown routes and wrong methods get the API's own
//! JSON errors there too; CORS preflights are answered by API Gateway, so that
//! step checks what both it and the local server guarantee: the status, and
//! the CORS header.
//!
//! At the end the table is deleted, and checked to be gone, where the API
//! deletes tables; elsewhere the DELETE must be a 403 and the table stays,
//! archived. `smoke --read-only` runs only the steps that write nothing:
//! health, a page of the table listing, a missing table, an unknown route, a
//! wrong method and a CORS preflight.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Cleanup;
use super::workload::{LIST_CONSISTENCY_WAIT, eventually, run_id};
use crate::client::{Api, Call, Reply};
use crate::progress::Progress;

/// How many steps the smoke test has: the contract (21), then the clean-up.
pub fn steps(read_only: bool, cleanup: Cleanup) -> u64 {
    match (read_only, cleanup) {
        (true, _) => 6,
        (false, Cleanup::Delete) => 24,
        (false, Cleanup::Archive) => 22,
    }
}

/// The message of the API's 403 to a DELETE where deleting is not allowed.
const DELETE_NOT_ALLOWED: &str = "This environment does not allow deleting tables";

/// `body[field] == expected`, or a message saying what it was.
fn field_is(body: &Value, field: &str, expected: &Value) -> Result<(), String> {
    if &body[field] == expected {
        Ok(())
    } else {
        Err(format!("{field} is {}, expected {expected}", body[field]))
    }
}

fn error_is(expected: &str) -> impl FnOnce(&Reply) -> Result<(), String> {
    move |reply| field_is(&reply.body, "error", &json!(expected))
}

fn no_check(_: &Reply) -> Result<(), String> {
    Ok(())
}

/// The names in a listing's `field` array (`tables` by `tableId`, `users` by `username`).
fn listed(body: &Value, field: &str, key: &str) -> Vec<String> {
    body[field]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item[key].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The API and where each finished step is reported.
struct Smoke<'a> {
    api: &'a Api,
    progress: &'a Arc<dyn Progress>,
}

impl Smoke<'_> {
    /// Run one step: send `call`, then `verify` the reply; record the outcome.
    /// A failed request is listed with the run's failed requests, so the step
    /// only points to it.
    async fn step(
        &self,
        name: &str,
        call: Call,
        verify: impl FnOnce(&Reply) -> Result<(), String>,
    ) -> Option<Reply> {
        let outcome = match self.api.send(call).await {
            Ok(reply) => verify(&reply).map(|()| reply),
            Err(_) => Err("the request failed (see the failed requests)".to_owned()),
        };
        self.api.recorder().check(
            name,
            outcome.is_ok(),
            outcome
                .as_ref()
                .map_or_else(Clone::clone, |_| "ok".to_owned()),
        );
        self.progress.advance(1);
        outcome.ok()
    }

    /// Wait (bounded) until `path` lists exactly `expected` under `field`/`key`.
    async fn listing_step(
        &self,
        name: &str,
        path: &str,
        field: &str,
        key: &str,
        expected: &[&str],
    ) {
        let outcome = eventually(LIST_CONSISTENCY_WAIT, || async {
            let operation = if field == "tables" {
                "list_tables"
            } else {
                "list_users"
            };
            let reply = self.api.send(Call::get(operation, path)).await?;
            let names = listed(&reply.body, field, key);
            let matches = if field == "tables" {
                // Other tables exist: the new one must be among them.
                expected
                    .iter()
                    .all(|name| names.iter().any(|listed| listed == name))
            } else {
                names == expected
            };
            if matches {
                Ok(())
            } else {
                Err(format!("listed {names:?}, expected {expected:?}"))
            }
        })
        .await;
        self.api.recorder().check(
            name,
            outcome.is_ok(),
            outcome.err().unwrap_or_else(|| "ok".to_owned()),
        );
        self.progress.advance(1);
    }
}

/// Run every step that writes nothing; a CORS preflight is sent from `origin`.
pub async fn run_read_only(api: &Api, origin: &str, progress: &Arc<dyn Progress>) {
    let smoke = Smoke { api, progress };
    let run = run_id();
    smoke.health().await;
    smoke
        .step(
            "GET /tables answers a page of tables",
            Call::get("list_tables", "/tables?limit=10"),
            |reply| {
                reply.body["tables"]
                    .as_array()
                    .map(|_| ())
                    .ok_or_else(|| format!("no `tables` array in {}", reply.body))
            },
        )
        .await;
    smoke.missing_table(&format!("{run}-missing")).await;
    smoke.routing_and_cors(&run, origin).await;
}

impl Smoke<'_> {
    async fn health(&self) {
        self.step(
            "GET /health is ok",
            Call::get("health", "/health"),
            |reply| field_is(&reply.body, "status", &json!("ok")),
        )
        .await;
    }

    async fn missing_table(&self, missing: &str) {
        self.step(
            "GET /tables/{missing} is a 404",
            Call::get("get_table", format!("/tables/{missing}")).expect(404),
            error_is("Table not found"),
        )
        .await;
    }

    /// An unknown route, a wrong method, a CORS preflight from `origin`.
    async fn routing_and_cors(&self, run: &str, origin: &str) {
        self.step(
            "an unknown route is a 404",
            Call::get("unknown_route", format!("/{run}-no-such-route")).expect(404),
            error_is("Route not found"),
        )
        .await;
        self.step(
            "a wrong method is a 405 with Allow",
            Call::patch("wrong_method", "/tables", json!({})).expect(405),
            |reply| {
                let allow = reply
                    .headers
                    .get("allow")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default();
                if !(allow.contains("GET") && allow.contains("POST")) {
                    return Err(format!("Allow is {allow:?}, expected GET and POST"));
                }
                field_is(&reply.body, "error", &json!("Method not allowed"))
            },
        )
        .await;
        self.step(
            "a CORS preflight is answered",
            Call::options("preflight", "/tables")
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Headers", "content-type"),
            |reply| {
                reply
                    .headers
                    .get("access-control-allow-origin")
                    .map(|_| ())
                    .ok_or_else(|| "no access-control-allow-origin header".to_owned())
            },
        )
        .await;
    }

    /// Delete the run's table (with its one user) and see it gone, or, where
    /// the API does not delete tables, see the DELETE refused.
    async fn clean_up(&self, table: &str, cleanup: Cleanup) {
        let path = format!("/tables/{table}");
        match cleanup {
            Cleanup::Delete => {
                self.step(
                    "DELETE /tables/{tableId} deletes the table and its user",
                    Call::delete("delete_table", path.clone()),
                    |reply| {
                        field_is(&reply.body, "tableId", &json!(table))?;
                        field_is(&reply.body, "deletedUsers", &json!(1))
                    },
                )
                .await;
                self.step(
                    "the deleted table is a 404",
                    Call::get("get_table", path.clone()).expect(404),
                    error_is("Table not found"),
                )
                .await;
                self.step(
                    "DELETE of a deleted table is a 404",
                    Call::delete("delete_table", path).expect(404),
                    error_is("Table not found"),
                )
                .await;
            }
            Cleanup::Archive => {
                self.step(
                    "DELETE /tables/{tableId} is a 403 where deleting is not allowed",
                    Call::delete("delete_table", path).expect(403),
                    error_is(DELETE_NOT_ALLOWED),
                )
                .await;
            }
        }
    }
}

/// Run every step; a CORS preflight is sent from `origin`; the table is
/// cleaned up as `cleanup` says.
pub async fn run(api: &Api, origin: &str, cleanup: Cleanup, progress: &Arc<dyn Progress>) {
    let smoke = Smoke { api, progress };
    let run = run_id();
    let table = format!("{run}-smoke");
    let missing = format!("{run}-missing");
    let user = "alice";

    smoke.health().await;
    smoke
        .step(
            "POST /tables creates a table",
            Call::post(
                "create_table",
                "/tables",
                json!({"tableId": table, "displayName": "Smoke test"}),
            ),
            |reply| field_is(&reply.body, "tableId", &json!(table)),
        )
        .await;
    smoke
        .step(
            "POST /tables again is a 409",
            Call::post("create_table", "/tables", json!({"tableId": table})).expect(409),
            no_check,
        )
        .await;
    smoke
        .step(
            "GET /tables/{tableId} reads the new table",
            Call::get("get_table", format!("/tables/{table}")),
            |reply| {
                field_is(&reply.body, "displayName", &json!("Smoke test"))?;
                field_is(&reply.body, "userCount", &json!(0))?;
                field_is(&reply.body, "isArchived", &json!(false))
            },
        )
        .await;
    smoke.missing_table(&missing).await;
    smoke
        .listing_step(
            "GET /tables lists the new table",
            "/tables?limit=500",
            "tables",
            "tableId",
            &[&table],
        )
        .await;
    smoke
        .listing_step(
            "GET /tables/{tableId}/users is empty",
            &format!("/tables/{table}/users"),
            "users",
            "username",
            &[],
        )
        .await;
    smoke
        .step(
            "PUT a new user creates it",
            Call::put(
                "put_user",
                format!("/tables/{table}/users/{user}"),
                json!({"submissionCount": 1, "totalCount": 10}),
            ),
            |reply| field_is(&reply.body, "createdNew", &json!(true)),
        )
        .await;
    smoke
        .step(
            "PUT an existing user updates it",
            Call::put(
                "put_user",
                format!("/tables/{table}/users/{user}"),
                json!({"submissionCount": 2, "totalCount": 20}),
            ),
            |reply| field_is(&reply.body, "createdNew", &json!(false)),
        )
        .await;
    smoke
        .step(
            "GET the user reads the update",
            Call::get("get_user", format!("/tables/{table}/users/{user}")),
            |reply| {
                field_is(&reply.body, "submissionCount", &json!(2))?;
                field_is(&reply.body, "totalCount", &json!(20))
            },
        )
        .await;
    smoke
        .step(
            "GET a missing user is a 404",
            Call::get("get_user", format!("/tables/{table}/users/nobody")).expect(404),
            error_is("User not found in table"),
        )
        .await;
    smoke
        .step(
            "PUT a user into a missing table is a 404",
            Call::put(
                "put_user",
                format!("/tables/{missing}/users/{user}"),
                json!({"submissionCount": 1, "totalCount": 1}),
            )
            .expect(404),
            error_is("Table not found"),
        )
        .await;
    smoke
        .listing_step(
            "GET /tables/{tableId}/users lists the user",
            &format!("/tables/{table}/users"),
            "users",
            "username",
            &[user],
        )
        .await;
    smoke
        .step(
            "the table counts one user",
            Call::get("get_table", format!("/tables/{table}")),
            |reply| field_is(&reply.body, "userCount", &json!(1)),
        )
        .await;
    smoke
        .step(
            "PATCH archives the table",
            Call::patch(
                "patch_table",
                format!("/tables/{table}"),
                json!({"isArchived": true}),
            ),
            no_check,
        )
        .await;
    smoke
        .step(
            "the table reads as archived",
            Call::get("get_table", format!("/tables/{table}")),
            |reply| field_is(&reply.body, "isArchived", &json!(true)),
        )
        .await;
    smoke
        .step(
            "a bad table id is a 400",
            Call::post("create_table", "/tables", json!({"tableId": "bad id!"})).expect(400),
            |reply| {
                reply.body["error"]
                    .as_str()
                    .map(|_| ())
                    .ok_or_else(|| format!("no error in {}", reply.body))
            },
        )
        .await;
    smoke
        .step(
            "a negative count is a 400",
            Call::put(
                "put_user",
                format!("/tables/{table}/users/bob"),
                json!({"submissionCount": -1, "totalCount": 0}),
            )
            .expect(400),
            no_check,
        )
        .await;
    smoke.routing_and_cors(&run, origin).await;
    smoke.clean_up(&table, cleanup).await;
}
