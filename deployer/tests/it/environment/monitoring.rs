//! Alarms, and the API's access logs in a log group of their own.

use super::*;

/// An alarm as read back: name, namespace, metric, threshold, actions, dimensions.
type AlarmView = (
    String,
    String,
    String,
    f64,
    Vec<String>,
    Vec<(String, String)>,
);

#[tokio::test]
async fn alarms_are_put_read_back_changed_and_removed() {
    let account = Account::bootstrapped().await;
    assert_exit(&account.apply_dev(), 0);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&account.config);
    let alarms = || async {
        let mut alarms: Vec<AlarmView> = cloudwatch
            .describe_alarms()
            .alarm_name_prefix(format!("{}-dev-", settings().name_prefix))
            .send()
            .await
            .expect("alarms")
            .metric_alarms()
            .iter()
            .map(|alarm| {
                (
                    alarm.alarm_name().unwrap_or_default().to_owned(),
                    alarm.namespace().unwrap_or_default().to_owned(),
                    alarm.metric_name().unwrap_or_default().to_owned(),
                    alarm.threshold().unwrap_or_default(),
                    alarm.alarm_actions().to_vec(),
                    alarm
                        .dimensions()
                        .iter()
                        .map(|d| {
                            (
                                d.name().unwrap_or_default().to_owned(),
                                d.value().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        alarms.sort_by(|a, b| a.0.cmp(&b.0));
        alarms
    };
    let api_id = account.api_id("dev").await.expect("api");
    let function = || vec![("FunctionName".to_owned(), names("dev").function)];
    assert_eq!(
        alarms().await,
        vec![
            (
                format!("{}-errors", names("dev").function),
                "AWS/Lambda".to_owned(),
                "Errors".to_owned(),
                5.0,
                vec![],
                function()
            ),
            (
                format!("{}-throttles", names("dev").function),
                "AWS/Lambda".to_owned(),
                "Throttles".to_owned(),
                1.0,
                vec![],
                function()
            ),
            (
                format!("{}-5xx", names("dev").http_api),
                "AWS/ApiGateway".to_owned(),
                "5xx".to_owned(),
                5.0,
                vec![],
                vec![
                    ("ApiId".to_owned(), api_id.clone()),
                    ("Stage".to_owned(), "dev".to_owned())
                ]
            ),
        ]
    );

    // A threshold and a topic: two alarms change, nothing else.
    let topic = "arn:aws:sns:us-east-1:123456789012:playground-alarms";
    let vars = [
        "--var",
        "alarm_errors_threshold=20",
        "--var",
        &format!("alarm_sns_topic_arn={topic}"),
    ];
    let plan =
        account.deployer(&[&vars[..], &["plan", "--env", "dev", "--artifact", "fn.zip"]].concat());
    let shown = text(&plan);
    assert!(shown.contains("~ threshold = 5 -> 20"), "{shown}");
    assert!(
        shown.contains("Plan: 0 to add, 3 to change, 0 to destroy."),
        "every alarm notifies the topic: {shown}"
    );
    let apply = |extra: &[&str]| {
        account.deployer(
            &[
                &vars[..],
                &[
                    "apply",
                    "--env",
                    "dev",
                    "--auto-approve",
                    "--artifact",
                    "fn.zip",
                ],
                extra,
            ]
            .concat(),
        )
    };
    assert_exit(&apply(&[]), 0);
    let changed = alarms().await;
    assert_eq!(changed[0].3, 20.0);
    assert!(
        changed.iter().all(|alarm| alarm.4 == [topic.to_owned()]),
        "{changed:?}"
    );
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(&apply(&[]), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    let refused = account.deployer(&["--var", "alarm_5xx_threshold=0", "plan", "--env", "dev"]);
    assert_exit(&refused, 1);
    assert!(
        text(&refused).contains("alarm_5xx_threshold = 0"),
        "{}",
        text(&refused)
    );

    assert_exit(
        &account.deployer(&["destroy", "--env", "dev", "--auto-approve"]),
        0,
    );
    assert_eq!(alarms().await, vec![]);
}

#[tokio::test]
async fn access_logs_go_to_a_log_group_of_their_own_with_retention_in_a_documented_format() {
    let account = Account::bootstrapped().await;
    assert_exit(&account.apply_dev(), 0);
    let api_id = account.api_id("dev").await.expect("api");
    let group = &names("dev").access_log_group;
    let stage_log = || async {
        let stage = aws_sdk_apigatewayv2::Client::new(&account.config)
            .get_stage()
            .api_id(&api_id)
            .stage_name("dev")
            .send()
            .await
            .expect("stage");
        let settings = stage.access_log_settings().expect("access log settings");
        (
            settings.destination_arn().unwrap_or_default().to_owned(),
            settings.format().unwrap_or_default().to_owned(),
        )
    };
    let retention = || async {
        aws_sdk_cloudwatchlogs::Client::new(&account.config)
            .describe_log_groups()
            .log_group_name_prefix(group)
            .send()
            .await
            .expect("log groups")
            .log_groups()
            .iter()
            .find(|found| found.log_group_name() == Some(group))
            .map(|found| found.retention_in_days())
    };
    let (destination, format) = stage_log().await;
    assert_eq!(
        destination,
        format!("arn:aws:logs:us-east-1:123456789012:log-group:{group}")
    );
    assert_eq!(retention().await, Some(Some(14)));
    // The format is JSON once API Gateway fills in its variables, with the
    // fields docs/settings.md documents and no client address.
    let filled = filled_in(&format);
    let line: Value = serde_json::from_str(&filled).expect("the access log format is JSON");
    let mut fields: Vec<&str> = line
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "error",
            "httpMethod",
            "integrationError",
            "integrationLatency",
            "integrationStatus",
            "path",
            "protocol",
            "requestId",
            "requestTime",
            "responseLatency",
            "responseLength",
            "routeKey",
            "status"
        ]
    );
    assert!(!format.contains("sourceIp"), "{format}");

    // Retention follows the setting on both log groups; a rerun changes nothing.
    let apply = || {
        account.deployer(&[
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            "fn.zip",
            "--var",
            "log_retention_days=30",
        ])
    };
    let applied = apply();
    assert_exit(&applied, 0);
    assert!(
        text(&applied).contains("Apply complete: 0 added, 2 changed"),
        "{}",
        text(&applied)
    );
    assert_eq!(retention().await, Some(Some(30)));
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(&apply(), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    // Access logs switched off by hand are drift, and apply turns them back on.
    aws_sdk_apigatewayv2::Client::new(&account.config)
        .update_stage()
        .api_id(&api_id)
        .stage_name("dev")
        .access_log_settings(
            aws_sdk_apigatewayv2::types::AccessLogSettings::builder()
                .destination_arn("")
                .format("")
                .build(),
        )
        .send()
        .await
        .expect("switch access logs off");
    let plan = account.deployer(&[
        "plan",
        "--env",
        "dev",
        "--artifact",
        "fn.zip",
        "--var",
        "log_retention_days=30",
    ]);
    assert!(
        text(&plan).contains("access_log_destination"),
        "{}",
        text(&plan)
    );
    assert_exit(&apply(), 0);
    assert_eq!(stage_log().await, (destination, format));

    assert_exit(
        &account.deployer(&["destroy", "--env", "dev", "--auto-approve"]),
        0,
    );
    assert_eq!(retention().await, None);
}

/// An access log format with every `$context.…` variable replaced by `-`, as
/// API Gateway writes a value that does not apply.
fn filled_in(format: &str) -> String {
    let mut filled = String::new();
    let mut rest = format;
    while let Some(start) = rest.find("$context.") {
        filled.push_str(&rest[..start]);
        let after = &rest[start + "$context.".len()..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
            .unwrap_or(after.len());
        filled.push('-');
        rest = &after[end..];
    }
    filled.push_str(rest);
    filled
}
