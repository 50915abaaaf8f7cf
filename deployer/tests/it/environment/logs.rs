//! `deployer logs`: the live release's events or any version's, and `--follow`.

use super::*;

#[tokio::test]
async fn logs_prints_the_live_releases_events_or_any_versions() {
    let account = Account::bootstrapped().await;
    assert_exit(&account.apply_dev(), 0);
    account.write_artifact("fn2.zip", &executable(X86_64, b"v2"));
    assert_exit(&account.apply_artifact("fn2.zip", &[]), 0);
    assert_eq!(account.live_version().await, "2");

    // Events as Lambda writes them: one stream per execution environment,
    // named after the version it runs.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&account.config);
    let group = &names("dev").log_group;
    let now = chrono::Utc::now().timestamp_millis();
    for (stream, events) in [
        (
            "2026/12/01/[1]aaaa",
            vec![(now - 5_000, "old release ERROR x")],
        ),
        (
            "2026/12/01/[2]bbbb",
            vec![(now - 4_000, "START v2"), (now - 3_000, "v2 ERROR boom")],
        ),
        (
            "2026/12/01/[2]cccc",
            vec![(now - 3 * 3_600_000, "v2 three hours ago")],
        ),
    ] {
        logs.create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await
            .expect("stream");
        let mut put = logs
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream);
        for (timestamp, message) in events {
            put = put.log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(timestamp)
                    .message(message)
                    .build()
                    .expect("event"),
            );
        }
        put.send().await.expect("put events");
    }
    let printed = |args: &[&str]| {
        let output = account.deployer(&[&["logs", "--env", "dev"][..], args].concat());
        assert_exit(&output, 0);
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| {
                line.split_once(' ')
                    .map_or(line, |(_, rest)| rest)
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        printed(&[]),
        ["[2] START v2", "[2] v2 ERROR boom"],
        "the live release, last 10 minutes"
    );
    assert_eq!(printed(&["--release", "1"]), ["[1] old release ERROR x"]);
    assert_eq!(
        printed(&["--all-versions", "--filter", "ERROR"]),
        ["[1] old release ERROR x", "[2] v2 ERROR boom"]
    );
    assert_eq!(
        printed(&["--since", "4h"]),
        [
            "[2] v2 three hours ago",
            "[2] START v2",
            "[2] v2 ERROR boom"
        ]
    );
    let refused = account.deployer(&["logs", "--env", "stage"]);
    assert_exit(&refused, 1);
    assert!(
        text(&refused).contains(&format!("{} does not exist", names("stage").log_group)),
        "{}",
        text(&refused)
    );
}

#[tokio::test]
async fn logs_follow_prints_events_that_arrive_after_it_started() {
    use std::io::BufRead;
    let account = Account::bootstrapped().await;
    assert_exit(&account.apply_dev(), 0);
    let mut follower = std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(account.dir.path())
        .envs(emulator::aws_env(account.emulator.endpoint()))
        .env_remove("DEPLOYER_ENV")
        .args(["logs", "--env", "dev", "--follow"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start logs --follow");
    let stdout = follower.stdout.take().expect("stdout");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // Let it make its first pass (nothing yet), then write an event.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&account.config);
    let group = &names("dev").log_group;
    let stream = "2026/12/01/[1]follow";
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .expect("stream");
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(chrono::Utc::now().timestamp_millis())
                .message("arrived while following")
                .build()
                .expect("event"),
        )
        .send()
        .await
        .expect("put event");
    let line = received
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|error| {
            let _ = follower.kill();
            panic!("no line within 20 s: {error}")
        });
    follower.kill().expect("stop the follower");
    let _ = follower.wait();
    assert!(line.ends_with("[1] arrived while following"), "{line}");
}
