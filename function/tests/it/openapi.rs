//! The OpenAPI document: generated from the code, committed as
//! `function/openapi.json`, served at `GET /openapi.json`, and covering every
//! route the API serves with every status it answers.

use playground_api::api::ROUTES;
use playground_api::api::openapi::{document_json, document_value};

use crate::support;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

#[test]
fn the_committed_document_is_what_the_code_generates() {
    let _turn = support::together_blocking();
    let generated = document_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).expect("write function/openapi.json");
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "function/openapi.json is not what the code generates; regenerate it with \
         `UPDATE_OPENAPI=1 cargo test -p function --test it openapi::` and commit it"
    );
}

#[test]
fn every_route_is_in_the_document_with_its_error_statuses() {
    let _turn = support::together_blocking();
    let document = document_value();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("paths");
    for route in ROUTES {
        if route.path == "/openapi.json" {
            continue;
        }
        let operation = &paths[route.path][route.method.to_lowercase()];
        assert!(
            operation.is_object(),
            "{} is not in the document",
            route.route_key()
        );
        let statuses: Vec<&str> = operation["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .map(String::as_str)
            .collect();
        let body = matches!(route.method, "POST" | "PUT" | "PATCH");
        for (status, expected) in [
            ("400", route.path != "/health"),
            ("404", route.path.contains('{')),
            ("413", body),
            ("503", true),
        ] {
            assert_eq!(
                statuses.contains(&status),
                expected,
                "{} documents {statuses:?}",
                route.route_key()
            );
        }
        // Every non-2xx answer is the JSON error shape (health's 503 aside).
        for (status, response) in operation["responses"].as_object().expect("responses") {
            if status.starts_with('2') || route.path == "/health" {
                continue;
            }
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{} {status}",
                route.route_key()
            );
        }
    }
    assert_eq!(
        paths.len(),
        ROUTES
            .iter()
            .filter(|route| route.path != "/openapi.json")
            .map(|route| route.path)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    // The stateful links from a created table.
    let links = document["paths"]["/tables"]["post"]["responses"]["201"]["links"]
        .as_object()
        .expect("links");
    assert!(
        links.contains_key("GetTable") && links.contains_key("PutUser"),
        "{links:?}"
    );
    assert_eq!(links["GetTable"]["operationId"], "getTable", "{links:?}");
    // Paging and id constraints.
    let list = &document["paths"]["/tables"]["get"]["parameters"];
    assert!(list.to_string().contains("\"maximum\":500"), "{list}");
    assert!(
        document.to_string().contains("^[A-Za-z0-9_-]{1,64}$"),
        "the id pattern is documented"
    );
}
