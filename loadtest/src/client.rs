//! The API under test, seen through HTTP: every call is timed and recorded
//! under an operation name, and a status other than the expected one is an error.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::error::LoadtestError;
use crate::metrics::Recorder;

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this much of an unexpected body is quoted in an error.
const QUOTED_BODY_CHARS: usize = 200;

/// One request to make and the status that means success.
#[derive(Debug, Clone)]
pub struct Call {
    pub operation: &'static str,
    pub method: Method,
    /// Path and query, starting with `/`, appended to the base URL.
    pub path: String,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
    pub expect: u16,
    /// Other statuses that also mean success.
    pub also: Vec<u16>,
}

impl Call {
    fn new(operation: &'static str, method: Method, path: String, expect: u16) -> Self {
        Self {
            operation,
            method,
            path,
            body: None,
            headers: Vec::new(),
            expect,
            also: Vec::new(),
        }
    }

    /// `GET path`, expecting 200.
    pub fn get(operation: &'static str, path: impl Into<String>) -> Self {
        Self::new(operation, Method::GET, path.into(), 200)
    }

    /// `POST path` with a JSON body, expecting 201.
    pub fn post(operation: &'static str, path: impl Into<String>, body: Value) -> Self {
        Self::new(operation, Method::POST, path.into(), 201).body(body)
    }

    /// `PUT path` with a JSON body, expecting 200.
    pub fn put(operation: &'static str, path: impl Into<String>, body: Value) -> Self {
        Self::new(operation, Method::PUT, path.into(), 200).body(body)
    }

    /// `PATCH path` with a JSON body, expecting 200.
    pub fn patch(operation: &'static str, path: impl Into<String>, body: Value) -> Self {
        Self::new(operation, Method::PATCH, path.into(), 200).body(body)
    }

    /// `DELETE path`, expecting 200.
    pub fn delete(operation: &'static str, path: impl Into<String>) -> Self {
        Self::new(operation, Method::DELETE, path.into(), 200)
    }

    /// `OPTIONS path`, expecting 204.
    pub fn options(operation: &'static str, path: impl Into<String>) -> Self {
        Self::new(operation, Method::OPTIONS, path.into(), 204)
    }

    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Expect `status` instead.
    pub fn expect(mut self, status: u16) -> Self {
        self.expect = status;
        self
    }

    /// Accept `status` as well.
    pub fn or(mut self, status: u16) -> Self {
        self.also.push(status);
        self
    }

    fn accepts(&self, status: u16) -> bool {
        status == self.expect || self.also.contains(&status)
    }

    fn expected(&self) -> String {
        std::iter::once(self.expect)
            .chain(self.also.iter().copied())
            .map(|status| status.to_string())
            .collect::<Vec<_>>()
            .join(" or ")
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// A response: status, the headers and the JSON body (`Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// The API at one base URL, recording into a [`Recorder`]. Cloning shares the
/// connection pool and the recorder.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base_url: String,
    recorder: Recorder,
}

impl Api {
    /// The API at `base_url` (`http://` or `https://`; a trailing `/` is ignored).
    pub fn new(base_url: &str, recorder: Recorder) -> Result<Self, LoadtestError> {
        let trimmed = base_url.trim().trim_end_matches('/');
        let parsed = reqwest::Url::parse(trimmed).map_err(|error| LoadtestError::InvalidUrl {
            url: base_url.to_owned(),
            reason: error.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(LoadtestError::InvalidUrl {
                url: base_url.to_owned(),
                reason: "it must be an http:// or https:// URL with a host".into(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            // A redirect is an answer of its own, not the page it points to.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| LoadtestError::Client(error.to_string()))?;
        Ok(Self {
            http,
            base_url: trimmed.to_owned(),
            recorder,
        })
    }

    /// The same API and connections, recording into `recorder` instead.
    pub fn with_recorder(&self, recorder: Recorder) -> Self {
        Self {
            http: self.http.clone(),
            base_url: self.base_url.clone(),
            recorder,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    async fn exchange(&self, call: &Call) -> Result<Reply, String> {
        let mut request = self.http.request(
            call.method.clone(),
            format!("{}{}", self.base_url, call.path),
        );
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|error| describe(&error))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|error| describe(&error))?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !call.accepts(status) {
            let text = String::from_utf8_lossy(&bytes);
            let quoted: String = text.chars().take(QUOTED_BODY_CHARS).collect();
            return Err(format!(
                "expected {}, got {status} {quoted}",
                call.expected()
            ));
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Send `call`, record its latency under its operation, and return the reply
    /// when the status is the expected one; otherwise the error (also recorded),
    /// naming the request.
    pub async fn send(&self, call: Call) -> Result<Reply, String> {
        let started = Instant::now();
        let result = self
            .exchange(&call)
            .await
            .map_err(|error| format!("{} {}: {error}", call.method, call.path));
        self.recorder.record(
            call.operation,
            started.elapsed(),
            result.as_ref().err().cloned(),
        );
        result
    }

    /// Wait until `GET /health` answers 200, polling for at most `timeout`
    /// (a new deployment may take a moment). Not recorded.
    pub async fn wait_until_ready(&self, timeout: Duration) -> Result<(), LoadtestError> {
        let started = Instant::now();
        let url = format!("{}/health", self.base_url);
        loop {
            let last = match self.http.get(&url).send().await {
                Ok(response) if response.status() == reqwest::StatusCode::OK => return Ok(()),
                Ok(response) => format!("status {}", response.status().as_u16()),
                Err(error) => describe(&error),
            };
            if started.elapsed() >= timeout {
                return Err(LoadtestError::NotReady {
                    url,
                    waited: timeout,
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// What `GET /health` said about the API: its body, as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub body: Value,
}

impl Health {
    /// `allowTableDelete`: whether the API deletes tables. `None` when the
    /// health answer does not say (an API from before `DELETE /tables/{tableId}`).
    pub fn allow_table_delete(&self) -> Option<bool> {
        self.body["allowTableDelete"].as_bool()
    }
}

impl Api {
    /// `GET /health`, not recorded: what the API says about itself (any status;
    /// the body must be JSON).
    pub async fn health(&self) -> Result<Health, LoadtestError> {
        let url = format!("{}/health", self.base_url);
        let unreadable = |reason: String| LoadtestError::Health {
            url: url.clone(),
            reason,
        };
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|error| unreadable(describe(&error)))?;
        let bytes = response
            .bytes()
            .await
            .map_err(|error| unreadable(describe(&error)))?;
        let body = serde_json::from_slice(&bytes)
            .map_err(|error| unreadable(format!("the answer is not JSON: {error}")))?;
        Ok(Health { body })
    }
}

/// A transport error with its causes, in one line.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
