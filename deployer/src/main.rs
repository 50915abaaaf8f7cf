//! `deployer`: provisions the playground API on AWS. See `deployer --help`.

use std::process::ExitCode;

use clap::Parser;

use deployer::cli::{Cli, Command, StateCommand};
use deployer::config::{Config, ConfigSources};
use deployer::error::CliError;
use deployer::{aws, commands, state_backend};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(text) => {
            if !text.is_empty() {
                println!("{text}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<String, CliError> {
    let sources = ConfigSources {
        path: cli.config.as_deref(),
        vars: &cli.vars,
        region: cli.region.as_deref(),
    };
    let environment = match &cli.command {
        Command::Output(args) => &args.env.environment,
        Command::ForceUnlock(args) => &args.env.environment,
        Command::State(StateCommand::List(args) | StateCommand::History(args)) => {
            &args.env.environment
        }
    };
    // Everything local is checked before any AWS call.
    let config = Config::resolve(&sources, Some(environment.as_str()))?;
    let environment = commands::state_environment(environment, &config.settings)?;
    let aws = aws::load(&config.settings.region).await;
    let backend = state_backend::open(cli.state, &config, &aws).await?;
    match &cli.command {
        Command::Output(args) => {
            commands::output::run(&backend, &environment, args.json, args.name.as_deref()).await
        }
        Command::ForceUnlock(args) => {
            commands::force_unlock::run(&backend, &environment, &args.lock_id).await
        }
        Command::State(StateCommand::List(args)) => {
            commands::state::list(&backend, &environment, args.json).await
        }
        Command::State(StateCommand::History(args)) => {
            commands::state::history(&backend, &environment, args.json).await
        }
    }
}
