//! The `loadtest` command lines the deploy workflow runs parse with this
//! binary's own command line definition, and cover every scenario: the smoke
//! test once read-only (for every environment) and once writing, and the load
//! scenarios (where they run is checked in deployer/tests/workflows.rs).

use clap::Parser as _;
use loadtest::cli::Cli;

/// The `loadtest ...` command lines of `deploy.yml`, split into words, with
/// shell variables replaced by sample values.
fn workflow_command_lines() -> Vec<Vec<String>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../.github/workflows/deploy.yml"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{path}: {error}"));
    text.lines()
        .map(|line| line.trim().trim_start_matches("run:").trim())
        .filter(|line| line.starts_with("loadtest "))
        .map(|line| {
            line.split_whitespace()
                .map(|word| {
                    let word = word.trim_matches('"');
                    if word.starts_with("$api_base_url") || word.starts_with("${") {
                        "https://id.execute-api.us-east-1.amazonaws.com/dev".to_owned()
                    } else {
                        word.replace("$SUMMARIES", "load-summaries")
                    }
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_deploy_workflow_runs_every_scenario_with_flags_that_exist() {
    let lines = workflow_command_lines();
    let mut scenarios = Vec::new();
    for words in &lines {
        let cli = Cli::try_parse_from(words)
            .unwrap_or_else(|error| panic!("`{}` does not parse: {error}", words.join(" ")));
        assert!(
            cli.json.is_some(),
            "`{}` keeps a JSON summary for the artifacts",
            words.join(" ")
        );
        assert!(
            !cli.allow_writes,
            "`{}`: the workflow never overrides the refusal to write",
            words.join(" ")
        );
        let scenario = cli.scenario.scenario();
        scenarios.push((scenario.name(), scenario.writes()));
    }
    scenarios.sort_unstable();
    assert_eq!(
        scenarios,
        [
            ("mixed", true),
            ("multi-table", true),
            ("single-table", true),
            ("smoke", false),
            ("smoke", true)
        ],
        "{lines:?}"
    );
}

#[test]
fn a_misspelt_flag_would_not_parse() {
    let words = ["loadtest", "mixed", "--worker", "3"];
    assert!(Cli::try_parse_from(words).is_err());
}
