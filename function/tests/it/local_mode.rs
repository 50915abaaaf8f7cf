//! The `playground-api` binary in local mode: serves HTTP, logs the boot line,
//! creates the table on request, stops cleanly on SIGTERM, refuses bad config.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support;

fn command(table: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_playground-api"));
    command
        .envs(emulator::aws_env(emulator::shared_endpoint()))
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("ALLOW_TABLE_DELETE")
        .env("TABLE_NAME", table)
        .env("PORT", "0")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A running server; killed and reaped if a test fails before stopping it.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the server and return it with its base URL and the lines logged so far.
fn start(table: &str) -> (Server, String, Vec<String>, mpsc::Receiver<String>) {
    let mut server = Server {
        child: command(table)
            .arg("--create-table")
            .spawn()
            .expect("spawn playground-api"),
    };
    let stdout = server.child.stdout.take().expect("stdout");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        let line = receiver
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no 'Listening on' line; got {lines:?}"));
        if let Some(url) = line.split("Listening on ").nth(1) {
            let url = url.trim().to_owned();
            lines.push(line);
            return (server, url, lines, receiver);
        }
        lines.push(line);
    }
}

fn http(base: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

#[test]
fn serves_http_and_stops_cleanly_on_sigterm() {
    let _turn = support::together_blocking();
    let table = emulator::unique_name("PlaygroundScores-local");
    let (mut server, url, lines, receiver) = start(&table);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(
        lines
            .iter()
            .any(|line| line.contains(&format!("[BOOT] Using DynamoDB table: {table}"))),
        "{lines:?}"
    );

    let (status, body) = http(&url, "GET", "/health", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&table), "{body}");
    let (status, _) = http(&url, "POST", "/tables", r#"{"tableId":"local-1"}"#);
    assert_eq!(status, 201);
    let (status, body) = http(
        &url,
        "PUT",
        "/tables/local-1/users/ann",
        r#"{"submissionCount":2,"totalCount":3}"#,
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(&url, "GET", "/tables/local-1", "");
    assert_eq!(status, 200);
    assert!(body.contains(r#""userCount":1"#), "{body}");
    // Deleting tables is off unless ALLOW_TABLE_DELETE says otherwise.
    let (_, body) = http(&url, "GET", "/health", "");
    assert!(body.contains(r#""allowTableDelete":false"#), "{body}");
    let (status, body) = http(&url, "DELETE", "/tables/local-1", "");
    assert_eq!(status, 403, "{body}");

    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let exit = server.child.wait().expect("wait");
    assert!(exit.success(), "exit after SIGTERM: {exit:?}");
    // Every line until standard output closes: the reader thread may not
    // have passed on the last ones yet when the process has exited.
    let rest: Vec<String> = receiver.iter().collect();
    assert!(rest.iter().any(|line| line.contains("Stopped")), "{rest:?}");
}

#[test]
fn bad_configuration_fails_before_serving_and_names_the_setting() {
    let _turn = support::together_blocking();
    let output = command("PlaygroundScores-x")
        .env("SAFE_CONCURRENCY", "sometimes")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SAFE_CONCURRENCY"), "{stderr}");

    let output = command("PlaygroundScores-x")
        .env("ALLOW_TABLE_DELETE", "perhaps")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ALLOW_TABLE_DELETE"), "{stderr}");

    let output = command("PlaygroundScores-x")
        .arg("--bogus")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--bogus"));
}

#[test]
fn create_table_is_refused_under_lambda() {
    let _turn = support::together_blocking();
    let output = command("PlaygroundScores-x")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .arg("--create-table")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("local mode only"));
}

#[test]
fn help_explains_the_environment() {
    let _turn = support::together_blocking();
    let output = command("PlaygroundScores-x")
        .arg("--help")
        .output()
        .expect("run");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for setting in [
        "TABLE_NAME",
        "SAFE_CONCURRENCY",
        "ALLOW_TABLE_DELETE",
        "CORS_ALLOW_ORIGINS",
        "PORT",
        "--create-table",
    ] {
        assert!(help.contains(setting), "{setting} missing from --help");
    }
}

/// No token reaches a log: sessions stored, read, refreshed and refused with
/// the function logging at `debug` (more than it does deployed), every line
/// it wrote is searched for the token and for its claims.
#[test]
fn no_session_token_is_ever_logged() {
    let _turn = support::together_blocking();
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let table = emulator::unique_name("PlaygroundScores-tokens");
    let mut command = command(&table);
    command.env("RUST_LOG", "debug").arg("--create-table");
    let mut server = Server {
        child: command.spawn().expect("spawn playground-api"),
    };
    let stdout = server.child.stdout.take().expect("stdout");
    let stderr = server.child.stderr.take().expect("stderr");
    let (sender, receiver) = mpsc::channel();
    for stream in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
        let sender = sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let url = loop {
        let line = receiver
            .recv_timeout(Duration::from_secs(60))
            .expect("a 'Listening on' line");
        if let Some(url) = line.split("Listening on ").nth(1) {
            break url.trim().to_owned();
        }
    };
    let secret_claims = URL_SAFE_NO_PAD.encode(r#"{"sub":"secret-student-7","exp":4102444800}"#);
    let token = format!(
        "{}.{secret_claims}.c2VjcmV0LXNpZ25hdHVyZQ",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#)
    );
    let expired = format!(
        "{}.{}.c2VjcmV0LXNpZ25hdHVyZQ",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(r#"{"sub":"secret-student-7","exp":1}"#)
    );
    let store = format!(r#"{{"sessionId":"link-1","token":"{token}"}}"#);
    assert_eq!(http(&url, "POST", "/sessions", &store).0, 201);
    let (status, body) = http(&url, "GET", "/sessions/link-1", "");
    assert_eq!(status, 200);
    assert!(body.contains(&token), "the client gets its token back");
    let refresh = format!(r#"{{"token":"{token}"}}"#);
    assert_eq!(http(&url, "PATCH", "/sessions/link-1", &refresh).0, 200);
    let refused = format!(r#"{{"sessionId":"link-2","token":"{expired}"}}"#);
    assert_eq!(http(&url, "POST", "/sessions", &refused).0, 400);
    assert_eq!(http(&url, "POST", "/sessions", "{\"token\": 5").0, 400);

    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let _ = server.child.wait();
    drop(sender);
    let logged: Vec<String> = receiver.iter().collect();
    assert!(
        logged.iter().any(|line| line.contains("Stopped")),
        "the log was read to its end: {logged:?}"
    );
    for line in &logged {
        for secret in [
            token.as_str(),
            expired.as_str(),
            secret_claims.as_str(),
            "secret-student-7",
            "c2VjcmV0LXNpZ25hdHVyZQ",
        ] {
            assert!(!line.contains(secret), "a token reached the log: {line}");
        }
    }
}
