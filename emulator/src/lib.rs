//! Test support: the project's local AWS emulators.
//!
//! Two emulators, two jobs ([`Kind`]):
//! - **moto**, the control plane: [`shared_endpoint`] gives every integration test
//!   an AWS endpoint backed by moto's server, started through the project's
//!   launcher (`emulator/moto_server.py`), which serves one request at a time so
//!   DynamoDB conditional writes and transactions are linearizable as on AWS.
//! - **the local cloud** (ministack, `emulator/local_cloud.py`): it also runs the
//!   Lambda zip the deployer uploads and routes HTTP API traffic to it, so an
//!   end-to-end test deploys and then calls the API through API Gateway
//!   ([`execute_api_url`]).
//!
//! When `EMULATOR_ENDPOINT` is set (as `scripts/test` does, starting one emulator
//! for the whole run) that endpoint is used; otherwise the first call starts a
//! private emulator for this test process on a free loopback port. The launcher
//! exits when the test process's end of its standard input closes, so an emulator
//! never outlives the tests that started it.
//!
//! Tests isolate themselves by resource names from [`unique_name`], never by
//! resetting the emulator.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

/// The region every test uses.
pub const REGION: &str = "us-east-1";
/// moto's default account id, which ARNs it returns carry.
pub const ACCOUNT_ID: &str = "123456789012";

const INSTALL_HINT: &str = "install it with `scripts/setup-emulator` \
(creates .venv/ at the workspace root with the pinned moto[server] and ministack from emulator/requirements.txt)";

/// Which emulator to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// moto: the control plane; runs no Lambda code.
    Moto,
    /// ministack: runs Lambda code and routes API Gateway v2 traffic.
    LocalCloud,
}

impl Kind {
    fn launcher(self) -> &'static str {
        match self {
            Self::Moto => "emulator/moto_server.py",
            Self::LocalCloud => "emulator/local_cloud.py",
        }
    }
}

/// Why the emulator could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("the local AWS emulator is not installed: {python} does not exist; {INSTALL_HINT}")]
    NotInstalled { python: PathBuf },
    #[error("starting the local AWS emulator with {python}: {source}; {INSTALL_HINT}")]
    Spawn {
        python: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the local AWS emulator exited before it was ready (are moto and ministack installed in the venv? {INSTALL_HINT}); it printed: {output}"
    )]
    NotReady { output: String },
}

/// A running emulator owned by this process; stopped on drop.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    // Held open so the launcher's stdin watchdog keeps it alive; closing it stops the launcher.
    _stdin: Option<ChildStdin>,
    endpoint: String,
}

impl Emulator {
    /// Start a new control-plane emulator on a free loopback port and wait until
    /// it accepts connections: moto, or the local cloud when `EMULATOR_KIND` is
    /// `local-cloud` (how docs/emulators.md's comparison of the two was measured).
    pub fn start() -> Result<Self, EmulatorError> {
        let kind = match std::env::var("EMULATOR_KIND").as_deref() {
            Ok("local-cloud") => Kind::LocalCloud,
            _ => Kind::Moto,
        };
        Self::start_kind(kind)
    }

    /// Start a new local cloud (ministack) on a free loopback port.
    pub fn local_cloud() -> Result<Self, EmulatorError> {
        Self::start_kind(Kind::LocalCloud)
    }

    /// Start a new emulator of `kind` on a free loopback port and wait until it
    /// accepts connections.
    pub fn start_kind(kind: Kind) -> Result<Self, EmulatorError> {
        let root = workspace_root();
        let python = std::env::var_os("EMULATOR_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".venv/bin/python"));
        if !python.exists() {
            return Err(EmulatorError::NotInstalled { python });
        }
        let mut child = Command::new(&python)
            .arg(root.join(kind.launcher()))
            .args(["--host", "127.0.0.1", "--port", "0", "--exit-with-stdin"])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| EmulatorError::Spawn {
                python: python.clone(),
                source,
            })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or_else(|| EmulatorError::NotReady {
            output: "no standard output".into(),
        })?;
        let mut seen = String::new();
        let mut lines = BufReader::new(stdout).lines();
        let endpoint = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("READY ") {
                        break url.trim().to_owned();
                    }
                    seen.push_str(&line);
                    seen.push('\n');
                }
                Some(Err(_)) | None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(EmulatorError::NotReady { output: seen });
                }
            }
        };
        Ok(Self {
            child,
            _stdin: stdin,
            endpoint,
        })
    }

    /// The emulator's base URL, for example `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The emulator's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Emulator {
    /// Closing the launcher's stdin lets it end its own children (the local
    /// cloud's function processes) before it exits; a launcher that does not
    /// exit within two seconds is killed.
    fn drop(&mut self) {
        drop(self._stdin.take());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The URL through which the local cloud's API Gateway serves stage `stage` of
/// HTTP API `api_id` to any HTTP client (no `*.localhost` name to resolve).
pub fn execute_api_url(endpoint: &str, api_id: &str, stage: &str) -> String {
    format!(
        "{}/_aws/execute-api/{api_id}/{stage}",
        endpoint.trim_end_matches('/')
    )
}

/// The endpoint shared by all tests of this process: `EMULATOR_ENDPOINT` when set,
/// otherwise an emulator started on first use.
///
/// # Panics
/// When the emulator cannot be started; the message says how to install it. Tests
/// must fail, not skip, when the emulator is missing.
pub fn shared_endpoint() -> &'static str {
    static SHARED: OnceLock<String> = OnceLock::new();
    SHARED.get_or_init(|| {
        if let Ok(endpoint) = std::env::var("EMULATOR_ENDPOINT")
            && !endpoint.is_empty()
        {
            return endpoint;
        }
        match Emulator::start() {
            Ok(emulator) => {
                let endpoint = emulator.endpoint().to_owned();
                // Lives as long as the test process; the launcher exits with it.
                std::mem::forget(emulator);
                endpoint
            }
            Err(error) => panic!("{error}"),
        }
    })
}

/// The dummy credentials the emulator accepts.
pub fn credentials() -> Credentials {
    Credentials::new("testing", "testing", None, None, "emulator")
}

/// An SDK configuration pointed at `endpoint` with dummy credentials and [`REGION`].
pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(credentials())
        .load()
        .await
}

/// An SDK configuration pointed at the shared emulator.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_for(shared_endpoint()).await
}

/// Environment variables that point a child process's AWS SDK at `endpoint`,
/// the standard way (`AWS_ENDPOINT_URL`).
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", REGION.into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// A name no other test (in this or another process) uses: `prefix` plus the
/// process id, a per-process counter and the clock. Only `[A-Za-z0-9-]`, so it is
/// valid for DynamoDB tables, IAM and API ids alike.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{count}-{nanos:x}", std::process::id())
}

/// Write `items` into `table` straight through DynamoDB (BatchWriteItem, 25
/// at a time), as tests seed a table behind the API's back; panics when the
/// emulator refuses a batch or leaves an item unprocessed.
pub async fn put_items(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    items: Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
) {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    for chunk in items.chunks(25) {
        let requests = chunk
            .iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item.clone()))
                    .build()
                    .expect("a put request");
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        let output = client
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .unwrap_or_else(|error| panic!("seeding {table}: {error:?}"));
        assert!(
            output
                .unprocessed_items()
                .is_none_or(|left| left.is_empty()),
            "the emulator left items of {table} unprocessed"
        );
    }
}

/// One request the emulator served, from its request log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The signing service (`s3`, `dynamodb`, `iam`, `sts`, ...).
    pub service: Option<String>,
    /// JSON-protocol operation (`DynamoDB_20120810.PutItem`).
    pub target: Option<String>,
    /// Query-protocol operation (`CreateRole`).
    pub action: Option<String>,
}

impl ServedRequest {
    /// The operation's name, when the protocol names it.
    pub fn operation(&self) -> Option<&str> {
        self.target
            .as_deref()
            .map(|target| target.rsplit('.').next().unwrap_or(target))
            .or(self.action.as_deref())
    }

    /// Whether the request could change anything: named operations unless they
    /// read (Get, List, Describe, Query, Scan, BatchGet, Head), REST calls unless
    /// GET or HEAD.
    pub fn is_mutating(&self) -> bool {
        const READS: &[&str] = &[
            "Get", "List", "Describe", "Query", "Scan", "BatchGet", "Head",
        ];
        match self.operation() {
            Some(operation) => !READS.iter().any(|prefix| operation.starts_with(prefix)),
            None => !matches!(self.method.as_str(), "GET" | "HEAD"),
        }
    }

    /// `METHOD service operation-or-path`, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "{} {} {}",
            self.method,
            self.service.as_deref().unwrap_or("?"),
            self.operation()
                .map_or_else(|| format!("{}?{}", self.path, self.query), str::to_owned)
        )
    }
}

/// `method path` on the emulator's own endpoints, with a JSON `body`; the answer's body.
fn emulator_request(endpoint: &str, method: &str, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let address = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(address)
        .unwrap_or_else(|error| panic!("connecting to the emulator at {endpoint}: {error}"));
    let _ = write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.split("\r\n\r\n").nth(1).unwrap_or("[]").to_owned()
}

fn log_request(endpoint: &str, method: &str) -> String {
    emulator_request(endpoint, method, "/_emulator/requests", "")
}

/// Configure the emulator's injected faults and behaviour models
/// (`emulator/faults.py` documents `config`); replaces what was configured.
///
/// # Panics
/// When the emulator cannot be reached.
pub fn configure_faults(endpoint: &str, config: &serde_json::Value) {
    emulator_request(endpoint, "POST", "/_emulator/faults", &config.to_string());
}

/// Turn every injected fault off.
pub fn clear_faults(endpoint: &str) {
    emulator_request(endpoint, "DELETE", "/_emulator/faults", "");
}

/// What the emulator injected since it was configured, by `service operation kind`.
///
/// # Panics
/// When the emulator cannot be reached or answers no JSON.
pub fn injected_faults(endpoint: &str) -> std::collections::BTreeMap<String, u64> {
    let body = emulator_request(endpoint, "GET", "/_emulator/faults", "");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|error| {
        panic!("the emulator's faults answer is not JSON ({error}): {body}")
    });
    answer["injected"]
        .as_object()
        .map(|injected| {
            injected
                .iter()
                .map(|(what, count)| (what.clone(), count.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// The requests `endpoint` served since its log was last cleared.
///
/// # Panics
/// When the emulator cannot be reached or its log is not JSON.
pub fn served_requests(endpoint: &str) -> Vec<ServedRequest> {
    let body = log_request(endpoint, "GET");
    let entries: Vec<serde_json::Value> = serde_json::from_str(&body)
        .unwrap_or_else(|error| panic!("the emulator's request log is not JSON ({error}): {body}"));
    let text = |entry: &serde_json::Value, key: &str| {
        entry.get(key).and_then(|v| v.as_str()).map(str::to_owned)
    };
    entries
        .iter()
        .map(|entry| ServedRequest {
            method: text(entry, "method").unwrap_or_default(),
            path: text(entry, "path").unwrap_or_default(),
            query: text(entry, "query").unwrap_or_default(),
            service: text(entry, "service"),
            target: text(entry, "target"),
            action: text(entry, "action"),
        })
        .collect()
}

/// Clear `endpoint`'s request log.
pub fn clear_served_requests(endpoint: &str) {
    log_request(endpoint, "DELETE");
}

/// The workspace root (the folder holding `emulator/`), found from the running
/// test's package folder: cargo sets `CARGO_MANIFEST_DIR` when it runs a test.
/// The compile-time value is only a fallback, since a target directory shared
/// between clones may hold this crate compiled in another clone.
pub fn workspace_root() -> PathBuf {
    let holds_emulator = |folder: &Path| folder.join("emulator/moto_server.py").is_file();
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .and_then(|package| {
            package
                .ancestors()
                .find(|folder| holds_emulator(folder))
                .map(Path::to_path_buf)
        })
        .or_else(|| compiled.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emulator_starts_answers_and_stops_by_its_pid() {
        let emulator = Emulator::start().unwrap_or_else(|error| panic!("{error}"));
        let address = emulator
            .endpoint()
            .strip_prefix("http://")
            .expect("endpoint is http")
            .to_owned();
        assert!(std::net::TcpStream::connect(&address).is_ok());
        let pid = emulator.pid();
        drop(emulator);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map(|stat| stat.contains(") Z "))
                    .unwrap_or(true),
            "emulator process {pid} still running after drop"
        );
        assert!(std::net::TcpStream::connect(&address).is_err());
    }

    #[test]
    fn the_local_cloud_starts_logs_requests_and_stops_when_dropped() {
        let cloud = Emulator::local_cloud().unwrap_or_else(|error| panic!("{error}"));
        clear_served_requests(cloud.endpoint());
        let address = cloud
            .endpoint()
            .strip_prefix("http://")
            .expect("endpoint is http")
            .to_owned();
        {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(&address).expect("connect");
            let _ = write!(
                stream,
                "GET /_ministack/health HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
            );
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
        let served = served_requests(cloud.endpoint());
        assert_eq!(served.len(), 1, "{served:?}");
        assert_eq!(served[0].path, "/_ministack/health");
        assert_eq!(
            execute_api_url(cloud.endpoint(), "abc123", "dev"),
            format!("{}/_aws/execute-api/abc123/dev", cloud.endpoint())
        );
        drop(cloud);
        assert!(std::net::TcpStream::connect(&address).is_err());
    }

    #[test]
    fn the_request_log_tells_reads_from_writes() {
        let emulator = Emulator::start().unwrap_or_else(|error| panic!("{error}"));
        clear_served_requests(emulator.endpoint());
        assert!(served_requests(emulator.endpoint()).is_empty());
        let read = ServedRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            service: Some("dynamodb".into()),
            target: Some("DynamoDB_20120810.DescribeTable".into()),
            action: None,
        };
        assert!(!read.is_mutating());
        let write = ServedRequest {
            target: Some("DynamoDB_20120810.PutItem".into()),
            ..read.clone()
        };
        assert!(write.is_mutating());
        let rest_put = ServedRequest {
            method: "PUT".into(),
            target: None,
            ..read.clone()
        };
        assert!(rest_put.is_mutating());
        let iam_read = ServedRequest {
            target: None,
            action: Some("GetRole".into()),
            ..read
        };
        assert!(!iam_read.is_mutating());
    }

    /// A DynamoDB table `name` keyed by the string `k`.
    async fn key_table(dynamodb: &aws_sdk_dynamodb::Client, name: &str) {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        dynamodb
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("k")
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("key"),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("k")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("definition"),
            )
            .send()
            .await
            .expect("table");
    }

    #[tokio::test]
    async fn injected_faults_are_what_the_service_returns_and_are_counted() {
        use aws_sdk_dynamodb::types::AttributeValue;
        let emulator = Emulator::start().unwrap_or_else(|error| panic!("{error}"));
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(emulator.endpoint())
            .region(Region::new(REGION))
            .credentials_provider(credentials())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        key_table(&dynamodb, "faults").await;
        configure_faults(
            emulator.endpoint(),
            &serde_json::json!({
                "rules": [{"service": "dynamodb", "operation": "PutItem", "probability": 1.0,
                           "kinds": ["throttle"], "limit": 1}],
                "models": {"transaction_window_ms": 500}
            }),
        );
        let put = || {
            dynamodb
                .put_item()
                .table_name("faults")
                .item("k", AttributeValue::S("a".into()))
                .send()
        };
        let throttled = put().await.expect_err("throttled");
        assert_eq!(
            throttled
                .as_service_error()
                .and_then(|e| aws_sdk_dynamodb::error::ProvideErrorMetadata::code(e)),
            Some("ThrottlingException")
        );
        put().await.expect("the rule's limit is reached");
        // A committed transaction keeps its item in flight: a plain write conflicts.
        dynamodb
            .transact_write_items()
            .transact_items(
                aws_sdk_dynamodb::types::TransactWriteItem::builder()
                    .put(
                        aws_sdk_dynamodb::types::Put::builder()
                            .table_name("faults")
                            .item("k", AttributeValue::S("b".into()))
                            .build()
                            .expect("put"),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("transaction");
        let conflict = dynamodb
            .put_item()
            .table_name("faults")
            .item("k", AttributeValue::S("b".into()))
            .send()
            .await
            .expect_err("in flight");
        assert!(
            conflict
                .as_service_error()
                .is_some_and(|e| e.is_transaction_conflict_exception()),
            "{conflict:?}"
        );
        let injected = injected_faults(emulator.endpoint());
        assert_eq!(
            injected.get("dynamodb PutItem throttle"),
            Some(&1),
            "{injected:?}"
        );
        assert_eq!(
            injected.get("dynamodb PutItem TransactionConflictException"),
            Some(&1),
            "{injected:?}"
        );
        clear_faults(emulator.endpoint());
        assert!(injected_faults(emulator.endpoint()).is_empty());
    }

    #[tokio::test]
    async fn a_transaction_sent_again_with_its_token_is_applied_once() {
        use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
        let emulator = Emulator::start().unwrap_or_else(|error| panic!("{error}"));
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(emulator.endpoint())
            .region(Region::new(REGION))
            .credentials_provider(credentials())
            .load()
            .await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        key_table(&dynamodb, "tokens").await;
        let add = |by: &str, token: &str| {
            dynamodb
                .transact_write_items()
                .transact_items(
                    TransactWriteItem::builder()
                        .update(
                            Update::builder()
                                .table_name("tokens")
                                .key("k", AttributeValue::S("count".into()))
                                .update_expression("ADD n :by")
                                .expression_attribute_values(":by", AttributeValue::N(by.into()))
                                .build()
                                .expect("update"),
                        )
                        .build(),
                )
                .client_request_token(token)
                .send()
        };
        add("1", "first").await.expect("applied");
        add("1", "first").await.expect("answered as the first was");
        add("1", "second").await.expect("another token: applied");
        let mismatch = add("5", "first")
            .await
            .expect_err("same token, other request");
        assert_eq!(
            mismatch
                .as_service_error()
                .and_then(|e| aws_sdk_dynamodb::error::ProvideErrorMetadata::code(e)),
            Some("IdempotentParameterMismatchException"),
            "{mismatch:?}"
        );
        let item = dynamodb
            .get_item()
            .table_name("tokens")
            .key("k", AttributeValue::S("count".into()))
            .consistent_read(true)
            .send()
            .await
            .expect("read");
        assert_eq!(
            item.item().and_then(|item| item.get("n")),
            Some(&AttributeValue::N("2".into())),
            "each token applied once"
        );
    }

    #[test]
    fn unique_names_differ() {
        assert_ne!(unique_name("t"), unique_name("t"));
        assert!(
            unique_name("t")
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        );
    }
}
