//! After an apply that changed anything, the deployer calls `GET
//! <api_base_url>/health` until it answers 200, so an apply ends only when the
//! API serves: through API Gateway, the function's code, and its table.

use std::time::{Duration, Instant};

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest pause between attempts.
const MAX_PAUSE: Duration = Duration::from_secs(5);
/// The most of an answer's body an error repeats.
const BODY_SHOWN: usize = 300;

/// The API did not answer its health check.
#[derive(Debug, thiserror::Error)]
pub enum HealthCheckError {
    #[error("{url} is not a URL the health check can call: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "GET {url} did not answer 200 within {waited_s} s ({attempts} attempts); the last answer was {last}"
    )]
    NotHealthy {
        url: String,
        waited_s: u64,
        attempts: u32,
        last: String,
    },
}

/// Call `GET url` until it answers 200 or `timeout` has passed. `progress` is
/// told of every attempt that fails, with what it got.
pub async fn wait_until_healthy(
    url: &str,
    timeout: Duration,
    mut progress: impl FnMut(&str),
) -> Result<Duration, HealthCheckError> {
    let client = client_for(url)?;
    let started = Instant::now();
    let mut pause = Duration::from_millis(250);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let last = match client.get(url).send().await {
            Ok(response) if response.status() == reqwest::StatusCode::OK => {
                return Ok(started.elapsed());
            }
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                let shown: String = body.chars().take(BODY_SHOWN).collect();
                format!("HTTP {status}: {shown}")
            }
            Err(error) => format!("no answer: {}", describe(&error)),
        };
        let elapsed = started.elapsed();
        if elapsed + pause > timeout {
            return Err(HealthCheckError::NotHealthy {
                url: url.to_owned(),
                waited_s: elapsed.as_secs(),
                attempts,
                last,
            });
        }
        progress(&last);
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// A client for `url`. A `*.localhost` host resolves to the loopback address,
/// as RFC 6761 (section 6.3) lets every localhost name do: glibc resolves only
/// `localhost` itself, and the local cloud names its APIs
/// `<id>.execute-api.localhost`.
fn client_for(url: &str) -> Result<reqwest::Client, HealthCheckError> {
    let bad = |reason: String| HealthCheckError::BadUrl {
        url: url.to_owned(),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|error| bad(error.to_string()))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| bad("it has no host".into()))?;
    let mut builder = reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .user_agent(concat!("deployer/", env!("CARGO_PKG_VERSION")));
    if host.ends_with(".localhost") {
        let port = parsed.port_or_known_default().unwrap_or(80);
        builder = builder.resolve(host, std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    builder.build().map_err(|error| bad(error.to_string()))
}

/// An error and its causes in one line.
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A server on loopback that answers each connection with the next of `answers`.
    fn serve(answers: Vec<&'static str>) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        std::thread::spawn(move || {
            for answer in answers {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {answer}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                );
            }
        });
        port
    }

    #[tokio::test]
    async fn waits_through_errors_until_the_api_answers_200() {
        let port = serve(vec!["502 Bad Gateway", "503 Service Unavailable", "200 OK"]);
        let mut seen = Vec::new();
        let waited = wait_until_healthy(
            &format!("http://api.execute-api.localhost:{port}/dev/health"),
            Duration::from_secs(20),
            |last| seen.push(last.to_owned()),
        )
        .await
        .expect("healthy");
        assert!(waited < Duration::from_secs(20));
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[0].contains("502"), "{seen:?}");
    }

    #[tokio::test]
    async fn gives_up_within_its_bound_saying_what_it_got() {
        let port = serve(vec!["500 Internal Server Error"; 50]);
        let url = format!("http://127.0.0.1:{port}/dev/health");
        let error = wait_until_healthy(&url, Duration::from_secs(2), |_| {})
            .await
            .expect_err("never healthy");
        let message = error.to_string();
        assert!(message.contains(&url), "{message}");
        assert!(message.contains("HTTP 500"), "{message}");
        let HealthCheckError::NotHealthy { waited_s, .. } = error else {
            panic!("{message}");
        };
        assert!(waited_s <= 2, "{message}");
    }

    #[tokio::test]
    async fn an_unreachable_api_is_reported_as_no_answer() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("address").port()
        };
        let error = wait_until_healthy(
            &format!("http://127.0.0.1:{port}/health"),
            Duration::from_millis(600),
            |_| {},
        )
        .await
        .expect_err("nothing listens");
        assert!(error.to_string().contains("no answer"), "{error}");
    }

    #[tokio::test]
    async fn a_bad_url_is_refused() {
        let error = wait_until_healthy("not a url", Duration::from_secs(1), |_| {})
            .await
            .expect_err("bad url");
        assert!(matches!(error, HealthCheckError::BadUrl { .. }), "{error}");
    }
}
