//! The check a new version of the function passes before the `live` alias
//! (what API Gateway calls) moves to it: the version itself is invoked (Lambda
//! `Invoke` with the version as qualifier, so no client is involved) with the
//! events API Gateway would send it (HTTP API, payload 2.0, through the named
//! stage): `GET /health`, which must answer 200 with `status: ok` (the function
//! is up and reaches its table), and `GET /tables?limit=1`, a read-only request
//! of the contract, which must answer 200 with a `tables` list. A function
//! error (a panic, a crash, a timeout), any other status or body fails the
//! check, with the function's error and the tail of its log (`LogType: Tail`,
//! the last 4 KB Lambda returns with the invocation).

use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::timeout::TimeoutConfig;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::LogType;
use base64::Engine as _;
use serde_json::{Value, json};
use std::time::Duration;

/// How much longer than the function's own timeout an invocation may take:
/// a new version starts cold (its init runs before the handler).
const COLD_START_MARGIN: Duration = Duration::from_secs(15);

/// One request of the check and what its answer must be.
struct Probe {
    path: &'static str,
    query: &'static str,
    expect: fn(&Value) -> Result<(), String>,
}

const PROBES: &[Probe] = &[
    Probe {
        path: "/health",
        query: "",
        expect: |body| match body["status"].as_str() {
            Some("ok") => Ok(()),
            other => Err(format!("status is {other:?}, not \"ok\"")),
        },
    },
    Probe {
        path: "/tables",
        query: "limit=1",
        expect: |body| {
            if body["tables"].is_array() {
                Ok(())
            } else {
                Err("the body has no `tables` list".to_owned())
            }
        },
    },
];

/// Why a version failed its check.
#[derive(Debug, thiserror::Error)]
#[error("GET {request}: {problem}{log}", log = log_suffix(.log))]
pub struct CheckFailed {
    /// `path?query` of the request that failed.
    pub request: String,
    pub problem: String,
    /// The tail of the version's log for that invocation, when Lambda sent one.
    pub log: Option<String>,
    /// The SDK's error, when the invocation itself failed.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

fn log_suffix(log: &Option<String>) -> String {
    match log {
        Some(log) if !log.trim().is_empty() => {
            format!(
                "\n    the version's log ends:\n      {}",
                log.trim_end().replace('\n', "\n      ")
            )
        }
        _ => String::new(),
    }
}

/// The event API Gateway sends for `GET path?query` through `stage`.
pub fn event(stage: &str, path: &str, query: &str) -> Value {
    let raw_path = format!("/{stage}{path}");
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": {
            "accept": "application/json",
            "user-agent": "deployer-pre-traffic-check",
            "x-forwarded-proto": "https"
        },
        "requestContext": {
            "http": {
                "method": "GET",
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "deployer-pre-traffic-check"
            },
            "requestId": "deployer-pre-traffic-check",
            "routeKey": "$default",
            "stage": stage
        },
        "isBase64Encoded": false
    })
}

/// Whether an answer to `probe` passes; the problem otherwise.
fn judge(probe: &Probe, function_error: Option<&str>, payload: &[u8]) -> Result<(), String> {
    let answer: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    if let Some(kind) = function_error {
        let message = answer["errorMessage"].as_str().map_or_else(
            || String::from_utf8_lossy(payload).into_owned(),
            str::to_owned,
        );
        return Err(format!("the function failed ({kind}): {message}"));
    }
    let status = answer["statusCode"].as_u64();
    let body: Value = answer["body"]
        .as_str()
        .and_then(|body| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null);
    if status != Some(200) {
        return Err(format!(
            "answered {} {}",
            status.map_or_else(|| "no status".to_owned(), |status| status.to_string()),
            answer["body"].as_str().unwrap_or_default()
        ));
    }
    (probe.expect)(&body).map_err(|problem| format!("answered 200, but {problem}"))
}

/// Invoke `function` at `version` with each probe; the first failure.
///
/// Each invocation is one attempt, bounded by `function_timeout` plus a margin
/// for a cold start: a version that hangs fails the check once, rather than
/// being invoked again by the SDK's retries.
pub async fn check(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    version: &str,
    stage: &str,
    function_timeout: Duration,
) -> Result<(), CheckFailed> {
    let one_bounded_attempt = aws_sdk_lambda::config::Builder::default()
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(function_timeout + COLD_START_MARGIN)
                .build(),
        );
    for probe in PROBES {
        let request = if probe.query.is_empty() {
            probe.path.to_owned()
        } else {
            format!("{}?{}", probe.path, probe.query)
        };
        let output = lambda
            .invoke()
            .function_name(function)
            .qualifier(version)
            .log_type(LogType::Tail)
            .payload(Blob::new(event(stage, probe.path, probe.query).to_string()))
            .customize()
            .config_override(one_bounded_attempt.clone())
            .send()
            .await
            .map_err(|error| CheckFailed {
                request: request.clone(),
                problem: format!(
                    "invoking version {version}: {}",
                    state::sdk_error::describe(&error)
                ),
                log: None,
                source: Some(Box::new(error)),
            })?;
        let log = output
            .log_result()
            .and_then(|tail| base64::engine::general_purpose::STANDARD.decode(tail).ok())
            .map(|tail| String::from_utf8_lossy(&tail).into_owned());
        let payload = output.payload().map(Blob::as_ref).unwrap_or_default();
        judge(probe, output.function_error(), payload).map_err(|problem| CheckFailed {
            request,
            problem,
            log,
            source: None,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &Value) -> Vec<u8> {
        json!({"statusCode": status, "headers": {}, "body": body.to_string()})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn health_must_be_200_and_ok() {
        let health = &PROBES[0];
        assert_eq!(
            judge(health, None, &answer(200, &json!({"status": "ok"}))),
            Ok(())
        );
        assert_eq!(
            judge(
                health,
                None,
                &answer(503, &json!({"status": "unavailable"}))
            ),
            Err(r#"answered 503 {"status":"unavailable"}"#.to_owned())
        );
        assert_eq!(
            judge(health, None, &answer(200, &json!({"status": "starting"}))),
            Err(r#"answered 200, but status is Some("starting"), not "ok""#.to_owned())
        );
    }

    #[test]
    fn a_function_error_names_its_kind_and_message() {
        let payload =
            json!({"errorType": "Runtime.ExitError", "errorMessage": "panicked at health"});
        assert_eq!(
            judge(
                &PROBES[0],
                Some("Unhandled"),
                payload.to_string().as_bytes()
            ),
            Err("the function failed (Unhandled): panicked at health".to_owned())
        );
    }

    #[test]
    fn the_listing_must_hold_a_tables_list() {
        let listing = &PROBES[1];
        assert_eq!(
            judge(listing, None, &answer(200, &json!({"tables": []}))),
            Ok(())
        );
        assert!(judge(listing, None, &answer(200, &json!({"items": []}))).is_err());
        assert!(judge(listing, None, b"not json").is_err());
    }

    #[test]
    fn events_come_through_the_named_stage() {
        let event = event("dev", "/tables", "limit=1");
        assert_eq!(event["rawPath"], "/dev/tables");
        assert_eq!(event["rawQueryString"], "limit=1");
        assert_eq!(event["requestContext"]["stage"], "dev");
        assert_eq!(event["requestContext"]["http"]["method"], "GET");
    }

    #[test]
    fn a_failure_shows_the_log_tail_indented() {
        let failure = CheckFailed {
            request: "/health".into(),
            problem: "the function failed (Unhandled): boom".into(),
            log: Some("START\nthread 'main' panicked\nEND\n".into()),
            source: None,
        };
        assert_eq!(
            failure.to_string(),
            "GET /health: the function failed (Unhandled): boom\n    the version's log ends:\n      START\n      thread 'main' panicked\n      END"
        );
    }
}
