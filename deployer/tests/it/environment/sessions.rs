//! Sign-in sessions: Time to Live on the table (an adopted one's too), and the session
//! route's own throttle and authorization.

use super::*;

/// The Time to Live of `table`: its status and attribute, as DynamoDB describes them.
async fn time_to_live(
    config: &aws_config::SdkConfig,
    table: &str,
) -> (Option<String>, Option<String>) {
    let described = aws_sdk_dynamodb::Client::new(config)
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .expect("time to live");
    let description = described.time_to_live_description();
    (
        description
            .and_then(|d| d.time_to_live_status())
            .map(|status| status.as_str().to_owned()),
        description
            .and_then(|d| d.attribute_name())
            .map(str::to_owned),
    )
}

/// The route throttling of `route_key` on the stage `stage` of `api_id`:
/// `(rate, burst)`, `None` when the route has no settings of its own.
async fn route_throttle(
    config: &aws_config::SdkConfig,
    api_id: &str,
    stage: &str,
    route_key: &str,
) -> Option<(Option<f64>, Option<i32>)> {
    let stage = aws_sdk_apigatewayv2::Client::new(config)
        .get_stage()
        .api_id(api_id)
        .stage_name(stage)
        .send()
        .await
        .expect("stage");
    stage
        .route_settings()
        .and_then(|settings| settings.get(route_key))
        .map(|settings| {
            (
                settings.throttling_rate_limit(),
                settings.throttling_burst_limit(),
            )
        })
}

/// Each session route's authorization type (`NONE` or `JWT`), by route key.
async fn session_route_authorization(
    config: &aws_config::SdkConfig,
    api_id: &str,
) -> Vec<(String, String)> {
    let routes = aws_sdk_apigatewayv2::Client::new(config)
        .get_routes()
        .api_id(api_id)
        .send()
        .await
        .expect("routes");
    let mut found: Vec<(String, String)> = routes
        .items()
        .iter()
        .filter(|route| {
            route
                .route_key()
                .is_some_and(|key| key.contains("/sessions"))
        })
        .map(|route| {
            (
                route.route_key().unwrap_or_default().to_owned(),
                route
                    .authorization_type()
                    .map_or("NONE", |kind| kind.as_str())
                    .to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

/// Sign-in sessions, as the deployer provisions them: Time to Live on `ttl`
/// on the table, `SESSION_TTL_SECONDS` for the function, and
/// `GET /sessions/{sessionId}` open (even where sign-in is required and reads
/// are not public) with a throttle of its own; each read back, changed in
/// place, and a rerun changing nothing.
#[tokio::test]
async fn sessions_get_time_to_live_and_an_open_read_route_with_a_throttle_of_its_own() {
    let account = Account::bootstrapped().await;
    let config = &account.config;
    let read_route = schema::routes::READ_SESSION_ROUTE.route_key();
    assert_exit(&account.apply_dev(), 0);

    assert_eq!(
        time_to_live(config, &names("dev").table).await,
        (
            Some("ENABLED".to_owned()),
            Some(schema::TIME_TO_LIVE.to_owned())
        ),
        "a created table gets Time to Live on `ttl`"
    );
    let api_id = account.api_id("dev").await.expect("api");
    assert_eq!(
        route_throttle(config, &api_id, "dev", &read_route).await,
        Some((Some(10.0), Some(20))),
        "the session read's own throttle, by default"
    );
    let stage = aws_sdk_apigatewayv2::Client::new(config)
        .get_stage()
        .api_id(&api_id)
        .stage_name("dev")
        .send()
        .await
        .expect("stage");
    let default = stage.default_route_settings().expect("default throttle");
    assert_eq!(
        (
            default.throttling_rate_limit(),
            default.throttling_burst_limit()
        ),
        (Some(100.0), Some(300)),
        "the other routes keep the stage's default"
    );
    let environment = || async {
        account
            .function("dev")
            .await
            .configuration()
            .and_then(|configuration| configuration.environment())
            .and_then(|environment| environment.variables())
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        environment()
            .await
            .get(schema::function_env::SESSION_TTL_SECONDS)
            .map(String::as_str),
        Some("720000")
    );
    let open = [
        ("GET /sessions/{sessionId}".to_owned(), "NONE".to_owned()),
        ("PATCH /sessions/{sessionId}".to_owned(), "NONE".to_owned()),
        ("POST /sessions".to_owned(), "NONE".to_owned()),
    ];
    assert_eq!(
        session_route_authorization(config, &api_id).await,
        open,
        "without sign-in every session route is open"
    );

    // A rerun plans nothing and makes no mutating call.
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(
        &account.deployer(&[
            "plan",
            "--env",
            "dev",
            "--detailed-exitcode",
            "--artifact",
            "fn.zip",
        ]),
        0,
    );
    assert_exit(&account.apply_dev(), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    // Changed in place: the route's throttle on the stage, the lifetime on the function.
    let changed = [
        "--var",
        "session_read_rate_limit=5",
        "--var",
        "session_read_burst_limit=8",
        "--var",
        "session_lifetime_s=3600",
    ];
    let plan = account.deployer(
        &[
            &changed[..],
            &["plan", "--env", "dev", "--artifact", "fn.zip"],
        ]
        .concat(),
    );
    assert_exit(&plan, 0);
    let shown = text(&plan);
    assert!(
        shown.contains("~ apigatewayv2_api.http") && shown.contains("route_throttles"),
        "{shown}"
    );
    assert!(shown.contains("SESSION_TTL_SECONDS"), "{shown}");
    assert!(!shown.contains("time_to_live"), "{shown}");
    let apply_changed = |extra: &[&str]| {
        account.deployer(
            &[
                &changed[..],
                extra,
                &[
                    "apply",
                    "--env",
                    "dev",
                    "--auto-approve",
                    "--artifact",
                    "fn.zip",
                ],
            ]
            .concat(),
        )
    };
    assert_exit(&apply_changed(&[]), 0);
    assert_eq!(
        route_throttle(config, &api_id, "dev", &read_route).await,
        Some((Some(5.0), Some(8)))
    );
    assert_eq!(
        environment()
            .await
            .get(schema::function_env::SESSION_TTL_SECONDS)
            .map(String::as_str),
        Some("3600")
    );

    // Sign-in required, reads not public: starting and refreshing a session
    // are behind the authorizer, reading one is not.
    let signed_in = [
        "--var",
        "auth_issuer=https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
        "--var",
        "auth_audiences=app-client-1",
        "--var",
        "allow_public_read=false",
    ];
    assert_exit(&apply_changed(&signed_in), 0);
    assert_eq!(
        session_route_authorization(config, &api_id).await,
        [
            ("GET /sessions/{sessionId}".to_owned(), "NONE".to_owned()),
            ("PATCH /sessions/{sessionId}".to_owned(), "JWT".to_owned()),
            ("POST /sessions".to_owned(), "JWT".to_owned()),
        ]
    );
    assert_eq!(
        route_throttle(config, &api_id, "dev", &read_route).await,
        Some((Some(5.0), Some(8))),
        "the open route keeps its throttle"
    );
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(&apply_changed(&signed_in), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    // Drift by hand is repaired: the route's throttle loosened.
    aws_sdk_apigatewayv2::Client::new(config)
        .update_stage()
        .api_id(&api_id)
        .stage_name("dev")
        .route_settings(
            &read_route,
            aws_sdk_apigatewayv2::types::RouteSettings::builder()
                .throttling_rate_limit(500.0)
                .throttling_burst_limit(1000)
                .build(),
        )
        .send()
        .await
        .expect("loosen the route's throttle by hand");
    assert_eq!(
        route_throttle(config, &api_id, "dev", &read_route).await,
        Some((Some(500.0), Some(1000)))
    );
    let drifted = account.deployer(
        &[
            &changed[..],
            &signed_in[..],
            &[
                "plan",
                "--env",
                "dev",
                "--detailed-exitcode",
                "--artifact",
                "fn.zip",
            ],
        ]
        .concat(),
    );
    assert_exit(&drifted, 2);
    assert_exit(&apply_changed(&signed_in), 0);
    assert_eq!(
        route_throttle(config, &api_id, "dev", &read_route).await,
        Some((Some(5.0), Some(8)))
    );

    // Out of range: refused before any AWS call.
    emulator::clear_served_requests(account.emulator.endpoint());
    for (var, message) in [
        (
            "session_lifetime_s=30",
            "session_lifetime_s = 30 must be from 60 (a minute) to 31536000 seconds (a year)",
        ),
        (
            "session_read_rate_limit=0",
            "session_read_rate_limit = 0 must be from 1 to 10000",
        ),
    ] {
        let refused = account.deployer(&["--var", var, "plan", "--env", "dev"]);
        assert_exit(&refused, 1);
        assert!(text(&refused).contains(message), "{}", text(&refused));
    }
    assert_eq!(
        emulator::served_requests(account.emulator.endpoint()).len(),
        0,
        "no AWS call"
    );
}

/// Create `table` by hand with the scores table's keys, and Time to Live on
/// `time_to_live` when given.
async fn table_by_hand(config: &aws_config::SdkConfig, table: &str, time_to_live: Option<&str>) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TimeToLiveSpecification,
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let mut request = dynamodb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, key_type) in [("tableId", KeyType::Hash), ("username", KeyType::Range)] {
        request = request
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(key_type)
                    .build()
                    .expect("key"),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute"),
            );
    }
    request.send().await.expect("table by hand");
    if let Some(attribute) = time_to_live {
        dynamodb
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(attribute)
                    .build()
                    .expect("specification"),
            )
            .send()
            .await
            .expect("time to live by hand");
    }
}

#[tokio::test]
async fn an_adopted_table_gets_time_to_live_in_place_unless_it_is_on_another_attribute() {
    let account = Account::bootstrapped().await;
    let config = &account.config;

    // Made by hand without Time to Live: adopted, and Time to Live planned as
    // an in-place change.
    table_by_hand(config, &names("dev").table, None).await;
    assert_eq!(
        time_to_live(config, &names("dev").table).await.0.as_deref(),
        Some("DISABLED")
    );
    let plan = account.deployer(&["plan", "--env", "dev", "--artifact", "fn.zip"]);
    assert_exit(&plan, 0);
    let shown = text(&plan);
    assert!(
        shown.contains("~ dynamodb_table.scores")
            && shown
                .lines()
                .any(|line| line.trim_start().starts_with("~ time_to_live ")
                    && line.ends_with(r#"= "disabled" -> "ttl""#)),
        "{shown}"
    );
    assert!(!shown.contains("+ dynamodb_table.scores"), "{shown}");
    assert_exit(&account.apply_dev(), 0);
    assert_eq!(
        time_to_live(config, &names("dev").table).await,
        (Some("ENABLED".to_owned()), Some("ttl".to_owned()))
    );
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(&account.apply_dev(), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    // Made by hand with Time to Live on another attribute: not switched. The
    // plan fails saying why and what to do, and nothing changes.
    table_by_hand(config, &names("qa").table, Some("expiresAt")).await;
    emulator::clear_served_requests(account.emulator.endpoint());
    let refused = account.deployer(&["plan", "--env", "qa", "--artifact", "fn.zip"]);
    assert_exit(&refused, 1);
    let shown = text(&refused);
    for part in [
        format!(
            r#"dynamodb_table.scores ({}) has time_to_live = "expiresAt""#,
            names("qa").table
        ),
        "one Time to Live change per table per hour".to_owned(),
        format!(
            "aws dynamodb update-time-to-live --table-name {} \
             --time-to-live-specification Enabled=false,AttributeName=<the attribute above>",
            names("qa").table
        ),
        "says DISABLED, and apply again".to_owned(),
    ] {
        assert!(shown.contains(&part), "{part}: {shown}");
    }
    let apply = account.deployer(&[
        "apply",
        "--env",
        "qa",
        "--auto-approve",
        "--artifact",
        "fn.zip",
    ]);
    assert_exit(&apply, 1);
    assert!(
        text(&apply).contains("only from \"disabled\""),
        "{}",
        text(&apply)
    );
    assert_eq!(account.mutating_requests(), Vec::<String>::new());
    assert_eq!(
        time_to_live(config, &names("qa").table).await,
        (Some("ENABLED".to_owned()), Some("expiresAt".to_owned()))
    );
}
