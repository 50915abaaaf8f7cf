//! How fast `deployer migrate` moves items, on the emulator: a legacy table of
//! ITEMS users in 10 classes is migrated into an empty environment table with
//! `--all --parallel N`, for each N given, and the summary's items per second
//! printed. Run through `scripts/measure-migrate`, which builds the deployer
//! and installs the emulator. These are the emulator's rates (moto serves one
//! request at a time), not DynamoDB's.
//!
//! Usage: measure_migrate DEPLOYER ITEMS PARALLEL...

use aws_sdk_dynamodb::types::AttributeValue;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, deployer, items, parallels @ ..] = args.as_slice() else {
        eprintln!("usage: measure_migrate DEPLOYER ITEMS PARALLEL...");
        std::process::exit(2);
    };
    let items: usize = items.parse().expect("ITEMS is a number");
    let emulator = emulator::Emulator::start().unwrap_or_else(|error| panic!("{error}"));
    let config = emulator::sdk_config_for(emulator.endpoint()).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    schema::create_table(&client, "PlaygroundScores", &[])
        .expect("request")
        .send()
        .await
        .expect("create the legacy table");
    let classes = 10;
    let mut all = Vec::new();
    for class in 0..classes {
        let table_id = format!("class-{class}");
        all.push(item(&[
            ("tableId", s(&table_id)),
            ("username", s("_metadata")),
            ("createdAt", s("2024-01-01T00:00:00.000Z")),
            ("userCount", n(items / classes)),
        ]));
        for index in 0..items / classes {
            all.push(item(&[
                ("tableId", s(&table_id)),
                ("username", s(&format!("student-{index:05}"))),
                ("submissionCount", n(index % 40)),
                ("totalCount", n(index % 90)),
                ("lastUpdated", s("2024-05-01T12:00:00.123456")),
            ]));
        }
    }
    emulator::put_items(&client, "PlaygroundScores", all).await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("deployer.toml"), "").expect("config");
    println!("| items | --parallel | seconds | items/s |");
    println!("| --- | --- | --- | --- |");
    for (run, parallel) in parallels.iter().enumerate() {
        let environment = format!("measure{run}");
        let indexes: Vec<_> = schema::TABLE_SCHEMA
            .global_secondary_indexes
            .iter()
            .collect();
        schema::create_table(
            &client,
            &format!("PlaygroundScores-{environment}"),
            &indexes,
        )
        .expect("request")
        .send()
        .await
        .expect("create the environment's table");
        let output = std::process::Command::new(deployer)
            .current_dir(dir.path())
            .envs(emulator::aws_env(emulator.endpoint()))
            .args([
                "migrate",
                "--env",
                &environment,
                "--from",
                "PlaygroundScores",
                "--all",
                "--json",
            ])
            .args(["--parallel", parallel])
            .output()
            .expect("run the deployer");
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        println!(
            "| {} | {parallel} | {:.1} | {:.0} |",
            summary["counts"]["read"],
            summary["seconds"].as_f64().unwrap_or(0.0),
            summary["items_per_second"].as_f64().unwrap_or(0.0)
        );
    }
}

fn item(pairs: &[(&str, AttributeValue)]) -> std::collections::HashMap<String, AttributeValue> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect()
}
fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.into())
}
fn n(value: usize) -> AttributeValue {
    AttributeValue::N(value.to_string())
}
