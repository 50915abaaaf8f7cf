//! `playground-api`: the playground API's executable.
//!
//! Under Lambda (`AWS_LAMBDA_RUNTIME_API` set) it answers API Gateway events;
//! otherwise it serves HTTP on `127.0.0.1:$PORT`.

use std::process::ExitCode;

use playground_api::api::{CorsPolicy, local_router_with, router_with};
use playground_api::config::Config;
use playground_api::runtime::{self, telemetry};
use playground_api::store::{Store, create_table_if_missing};

const HELP: &str = "\
playground-api: the AI Model Share playground API

USAGE:
    playground-api [--create-table]

Under AWS Lambda (AWS_LAMBDA_RUNTIME_API set) it answers API Gateway HTTP API
events. Otherwise it serves HTTP on http://127.0.0.1:$PORT.

OPTIONS:
    --create-table   (local mode only) create TABLE_NAME with the canonical
                     schema if it does not exist, then serve
    -h, --help       print this help
    -V, --version    print the version

ENVIRONMENT:
    TABLE_NAME          DynamoDB table (default PlaygroundScores)
    SAFE_CONCURRENCY    true (default): a new user and the userCount increment
                        are one transaction; false: a conditional put then an
                        atomic increment (cheaper, still exact under concurrency)
    ALLOW_TABLE_DELETE  true: DELETE /tables/{tableId} deletes a table and its
                        users; false (default): it answers 403
    AUTH_ENABLED        true: writes need a caller signed in through API Gateway's
                        JWT authorizer, and follow the owner rules; false (default)
    AUTH_ADMIN_GROUP    the cognito:groups group of admins (default admin)
    ALLOW_PUBLIC_READ   true (default): reads need no sign-in
    SESSION_TTL_SECONDS how long a sign-in session lives at most (default
                        720000); a token's own exp can end it sooner
    CORS_ALLOW_ORIGINS  (local mode only) comma-separated origins, or * (default);
                        on Lambda, API Gateway's CORS configuration answers
    REQUEST_TIMEOUT_MS  (local mode only) each request's time to answer (default
                        10000); on Lambda, the invocation's deadline
    PORT                local HTTP port (default 3000; 0 picks a free one)
    AWS_REGION, AWS_ENDPOINT_URL, AWS_PROFILE and the usual AWS credentials
    RUST_LOG            log filter (default info)
";

#[derive(Debug, Default)]
struct Arguments {
    create_table: bool,
}

fn parse_arguments() -> Result<Option<Arguments>, String> {
    let mut arguments = Arguments::default();
    for argument in std::env::args().skip(1) {
        match argument.as_str() {
            "--create-table" => arguments.create_table = true,
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("playground-api {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?}; see --help")),
        }
    }
    Ok(Some(arguments))
}

#[tokio::main]
async fn main() -> ExitCode {
    let arguments = match parse_arguments() {
        Ok(Some(arguments)) => arguments,
        Ok(None) => return ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("playground-api: {message}");
            return ExitCode::FAILURE;
        }
    };
    let on_lambda = runtime::is_lambda();
    telemetry::init(on_lambda);
    match run(arguments, on_lambda).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("playground-api: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(arguments: Arguments, on_lambda: bool) -> Result<(), String> {
    let config = Config::from_env().map_err(|error| format!("configuration: {error}"))?;
    tracing::info!("[BOOT] Using DynamoDB table: {}", config.table_name);
    let client = aws_sdk_dynamodb::Client::new(&playground_api::load_aws_config().await);
    if arguments.create_table {
        if on_lambda {
            return Err(
                "--create-table is for local mode only; the deployer provisions the table on AWS"
                    .into(),
            );
        }
        let created = create_table_if_missing(&client, &config.table_name)
            .await
            .map_err(|error| error.to_string())?;
        tracing::info!(
            table = %config.table_name,
            "{}",
            if created { "created the table" } else { "the table already exists" }
        );
    }
    let store = Store::new(client, config.table_name.clone(), config.new_user_write)
        .allowing_table_delete(config.allow_table_delete)
        .with_session_lifetime(config.session_lifetime_s)
        .with_request_timeout(config.request_timeout);
    if on_lambda {
        runtime::lambda::run(router_with(store, config.access.clone()))
            .await
            .map_err(|error| format!("Lambda runtime: {error}"))
    } else {
        let app = local_router_with(
            store,
            CorsPolicy::new(config.cors_allow_origins.clone()),
            config.access.clone(),
        );
        runtime::local::serve(app, config.port)
            .await
            .map_err(|error| format!("serving on 127.0.0.1:{}: {error}", config.port))
    }
}
