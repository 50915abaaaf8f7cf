//! Drift apart from intent: changes made by hand in AWS (drift) against
//! changes of the settings (intent), in text and JSON plans, and
//! `plan --drift-only`'s exit code.

use super::*;

impl Account {
    /// `deployer plan --env dev --artifact fn.zip` and `extra`.
    fn plan_dev(&self, extra: &[&str]) -> Output {
        let mut args = vec!["plan", "--env", "dev", "--artifact", "fn.zip"];
        args.extend_from_slice(extra);
        self.deployer(&args)
    }

    /// The JSON plan of dev (`extra`: more flags).
    fn json_plan_dev(&self, extra: &[&str]) -> Value {
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        let output = self.plan_dev(&args);
        assert_exit(&output, 0);
        serde_json::from_slice(&output.stdout).expect("JSON plan")
    }

    fn state_key(environment: &str) -> String {
        format!("deployer/{environment}/state.json")
    }

    /// The state document of `environment` as stored in the state bucket.
    async fn state_object(&self, environment: &str) -> Vec<u8> {
        let object = self
            .s3
            .get_object()
            .bucket(settings().state_bucket)
            .key(Self::state_key(environment))
            .send()
            .await
            .expect("state object");
        object
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .to_vec()
    }

    /// Overwrite the state document of `environment` (as another writer would).
    async fn put_state_object(&self, environment: &str, bytes: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(settings().state_bucket)
            .key(Self::state_key(environment))
            .body(bytes.into())
            .send()
            .await
            .expect("state written");
    }
}

#[tokio::test]
async fn a_change_made_by_hand_is_drift_and_a_setting_changed_is_intent() {
    let account = Account::bootstrapped().await;
    assert_exit(&account.apply_dev(), 0);
    let names = names("dev");

    // Right after an apply: no drift, no intent.
    let clean = account.plan_dev(&["--drift-only"]);
    assert_exit(&clean, 0);
    assert!(text(&clean).contains("No drift"), "{}", text(&clean));
    let json = account.json_plan_dev(&[]);
    assert_eq!(json["format_version"], 2, "{json}");
    assert_eq!(json["environment"], "dev", "{json}");
    assert_eq!(json["drift"], serde_json::json!([]), "{json}");
    assert_eq!(json["intent"], serde_json::json!([]), "{json}");

    // A setting changed, AWS untouched: intent only; --drift-only exits 0.
    let setting = ["--var", "memory_mb=1024"];
    let mut drift_only = setting.to_vec();
    drift_only.push("--drift-only");
    assert_exit(&account.plan_dev(&drift_only), 0);
    let mut detailed = setting.to_vec();
    detailed.push("--detailed-exitcode");
    assert_exit(&account.plan_dev(&detailed), 2);
    let intent = account.json_plan_dev(&setting);
    assert_eq!(intent["drift"], serde_json::json!([]), "{intent}");
    assert_eq!(
        intent["intent"][0]["address"], "lambda_function.api",
        "{intent}"
    );
    assert_eq!(intent["intent"][0]["changes"][0]["name"], "memory_mb");
    assert_eq!(intent["intent"][0]["changes"][0]["old"], 256);
    assert_eq!(intent["intent"][0]["changes"][0]["new"], 1024);
    let shown = text(&account.plan_dev(&setting));
    assert!(shown.contains("No drift"), "{shown}");
    assert!(
        shown.contains("Intent: what the code and settings change")
            && shown.contains("~ memory_mb = 256 -> 1024"),
        "{shown}"
    );

    // Changed by hand through the SDK: the function's memory and the log
    // group's retention.
    aws_sdk_lambda::Client::new(&account.config)
        .update_function_configuration()
        .function_name(&names.function)
        .memory_size(512)
        .send()
        .await
        .expect("memory changed by hand");
    aws_sdk_cloudwatchlogs::Client::new(&account.config)
        .put_retention_policy()
        .log_group_name(&names.log_group)
        .retention_in_days(3)
        .send()
        .await
        .expect("retention changed by hand");

    let drifted = account.plan_dev(&["--drift-only"]);
    assert_exit(&drifted, 2);
    let shown = text(&drifted);
    for line in [
        format!("# lambda_function.api ({}) changed", names.function),
        "~ memory_mb = 256 -> 512".to_owned(),
        format!("# log_group.function ({}) changed", names.log_group),
        "~ retention_days = 14 -> 3".to_owned(),
        "Drift: 2 resource(s) changed outside the deployer".to_owned(),
    ] {
        assert!(shown.contains(&line), "{line}: {shown}");
    }
    assert!(
        !shown.contains("Intent"),
        "--drift-only shows the drift only: {shown}"
    );
    let json = account.json_plan_dev(&[]);
    assert_eq!(json["intent"], serde_json::json!([]), "no intent: {json}");
    let drift = json["drift"].as_array().expect("drift");
    assert_eq!(drift.len(), 2, "{json}");
    assert_eq!(drift[0]["address"], "log_group.function");
    assert_eq!(
        drift[0]["attributes"],
        serde_json::json!([{"name": "retention_days", "recorded": 14, "observed": 3}])
    );
    assert_eq!(drift[1]["address"], "lambda_function.api");
    assert_eq!(
        drift[1]["attributes"],
        serde_json::json!([{"name": "memory_mb", "recorded": 256, "observed": 512}])
    );
    // The whole plan shows the drift and what apply does about it: the
    // retention is set back; the function's memory is the next release's.
    let shown = text(&account.plan_dev(&[]));
    assert!(
        shown.contains("No intended change") && shown.contains("~ retention_days = 3 -> 14"),
        "{shown}"
    );

    // The pull request's comment and the drift issue, from the JSON plan.
    let json_plan = account.plan_dev(&["--json"]);
    std::fs::write(account.dir.path().join("dev.json"), &json_plan.stdout).expect("dev.json");
    let comment = account.deployer(&[
        "plan-report",
        "--format",
        "github-comment",
        "dev.json",
        "prod.json",
        "--details-url",
        "https://example.test/run",
    ]);
    assert_exit(&comment, 0);
    let comment = String::from_utf8_lossy(&comment.stdout).into_owned();
    for part in [
        "<!-- deployer-plan -->",
        "| dev | 0 | 1 | 0 | **2 resource(s)** |",
        "| prod | – | – | – | – | **the plan failed**",
        "~ memory_mb = 256 -> 512",
    ] {
        assert!(comment.contains(part), "{part}: {comment}");
    }
    let issue = account.deployer(&["plan-report", "--format", "github-issue", "dev.json"]);
    assert_exit(&issue, 0);
    assert!(
        String::from_utf8_lossy(&issue.stdout).contains("**dev** has drifted: 2 resource(s)"),
        "{}",
        text(&issue)
    );

    // Drift and intent at once: a hand change, and the setting changed too.
    let both = account.json_plan_dev(&setting);
    assert_eq!(both["drift"].as_array().map(Vec::len), Some(2), "{both}");
    assert_eq!(both["intent"][0]["changes"][0]["old"], 256, "{both}");

    // Apply sets the drift back; the next plan measures from the new record.
    assert_exit(&account.apply_dev(), 0);
    assert_exit(&account.plan_dev(&["--drift-only"]), 0);
}

#[tokio::test]
async fn a_state_that_records_no_attributes_reports_drift_unknown_not_none() {
    let account = Account::bootstrapped().await;
    assert_exit(&account.apply_dev(), 0);
    // The state as an older deployer wrote it: no observed attributes.
    let state = account.state_object("dev").await;
    let mut document: Value = serde_json::from_slice(&state).expect("state JSON");
    for resource in document["resources"]
        .as_object_mut()
        .expect("resources")
        .values_mut()
    {
        resource
            .as_object_mut()
            .expect("resource")
            .remove("observed");
    }
    account
        .put_state_object("dev", serde_json::to_vec(&document).expect("JSON"))
        .await;

    let plan = account.plan_dev(&["--drift-only"]);
    assert_exit(&plan, 0);
    let shown = text(&plan);
    assert!(
        shown.contains("Drift unknown for") && shown.contains("lambda_function.api"),
        "{shown}"
    );
    let json = account.json_plan_dev(&[]);
    assert!(
        json["drift_unknown"]
            .as_array()
            .is_some_and(|unknown| !unknown.is_empty()),
        "{json}"
    );
    // An apply records them: drift is measured again.
    assert_exit(&account.apply_dev(), 0);
    let json = account.json_plan_dev(&[]);
    assert!(json.get("drift_unknown").is_none(), "{json}");
}

#[tokio::test]
async fn a_rollback_is_no_drift_and_the_alias_moved_by_hand_is() {
    let account = Account::bootstrapped().await;
    assert_exit(&account.apply_dev(), 0);
    account.write_artifact("fn2.zip", &executable(X86_64, b"v2"));
    assert_exit(
        &account.deployer(&[
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn2.zip",
        ]),
        0,
    );
    assert_exit(&account.deployer(&["rollback", "--env", "dev"]), 0);
    let after_rollback = account.plan_dev(&["--drift-only"]);
    assert_exit(&after_rollback, 0);
    assert!(
        text(&after_rollback).contains("No drift"),
        "{}",
        text(&after_rollback)
    );

    // The same move made by hand is drift.
    aws_sdk_lambda::Client::new(&account.config)
        .update_alias()
        .function_name(names("dev").function)
        .name("live")
        .function_version("2")
        .send()
        .await
        .expect("alias moved by hand");
    let moved = account.plan_dev(&["--drift-only"]);
    assert_exit(&moved, 2);
    assert!(
        text(&moved).contains("~ function_version = \"1\" -> \"2\""),
        "{}",
        text(&moved)
    );
}
