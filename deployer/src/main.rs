//! `deployer`: provisions the playground API on AWS. See `deployer --help`.

use clap::Parser;
use deployer::cli::{Cli, Command, EnvironmentsCommand, LockCommand, StateCommand};
use deployer::commands::Outcome;
use deployer::commands::bootstrap::BootstrapOptions;
use deployer::commands::destroy::{DestroyBootstrapOptions, DestroyEnvironmentOptions};
use deployer::commands::environment::EnvironmentOptions;
use deployer::config::{Config, ConfigSources, RegionSource, validate_environment};
use deployer::error::CliError;
use deployer::{aws, cli, commands, state_backend, ui};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    ui::install();
    aws::log_calls(cli.verbose);
    let code = match run(cli).await {
        Ok(outcome) => {
            if !outcome.stdout.is_empty() {
                ui::output(&outcome.stdout);
            }
            outcome.exit_code
        }
        Err(error) => {
            ui::error(&error);
            1
        }
    };
    // Exit now rather than wait for a prompt's blocked read of the terminal
    // (a run stopped at its prompt by a signal or a lost lease); a run a
    // signal interrupted ends by that signal, so a calling script stops too.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    commands::lock_guard::exit(i32::from(code))
}

async fn run(cli: Cli) -> Result<Outcome, CliError> {
    let ambient_region = std::env::var("AWS_REGION").ok();
    let sources = ConfigSources {
        path: cli.config.as_deref(),
        vars: &cli.vars,
        region: cli.region.as_deref(),
        ambient_region: ambient_region.as_deref(),
    };
    // Everything local is checked before any AWS call.
    match &cli.command {
        Command::Bootstrap(args) => {
            let config = resolve(&cli, &sources, None)?;
            let aws = aws::load(&config.settings.region).await;
            let options = BootstrapOptions {
                plan_only: args.plan,
                detailed_exitcode: args.detailed_exitcode,
                json: args.json,
                auto_approve: args.auto_approve,
                lock_timeout: args.lock_timeout,
            };
            commands::bootstrap::run(&config, &aws, options).await
        }
        Command::Destroy(args) => match &args.environment {
            Some(environment) if !args.bootstrap => {
                let config = environment_config(&cli, &sources, environment)?;
                let (aws, backend) = connect(&cli, &config).await?;
                let options = DestroyEnvironmentOptions {
                    auto_approve: args.auto_approve,
                    skip_final_backup: args.skip_final_backup,
                    delete_user_accounts: args.delete_user_accounts,
                    lock_timeout: args.lock_timeout,
                };
                commands::destroy::environment(&config, &aws, &backend, environment, options).await
            }
            _ => {
                let config = resolve(&cli, &sources, None)?;
                let aws = aws::load(&config.settings.region).await;
                let options = DestroyBootstrapOptions {
                    auto_approve: args.auto_approve,
                    force: args.force,
                };
                commands::destroy::bootstrap(&config, &aws, options).await
            }
        },
        Command::Plan(args) => {
            let config = environment_config(&cli, &sources, &args.env.environment)?;
            let options = EnvironmentOptions {
                environment: args.env.environment.clone(),
                code: commands::environment::code(&config, args.artifact.as_deref(), false)?,
                layer: commands::environment::layer(&config)?,
                detailed_exitcode: args.detailed_exitcode,
                drift_only: args.drift_only,
                json: args.json,
                auto_approve: false,
                lock_timeout: std::time::Duration::ZERO,
                health_check_timeout: None,
                prune_indexes: args.prune_indexes,
                pre_traffic_check: false,
                artifact: args.artifact.clone(),
                out: args.out.clone(),
                saved: None,
            };
            let (aws, backend) = connect(&cli, &config).await?;
            commands::environment::plan(&config, &aws, &backend, &options).await
        }
        Command::Apply(args) => {
            // The saved plan and the artifact are checked before any AWS call.
            let saved = args
                .plan
                .as_deref()
                .map(commands::saved_plan::SavedPlan::read)
                .transpose()?;
            let environment = match (&args.environment, &saved) {
                (Some(given), Some(saved)) if *given != saved.environment => {
                    return Err(CliError::Usage(format!(
                        "the plan is for {}, not {given}",
                        saved.environment
                    )));
                }
                (Some(given), _) => given.clone(),
                (None, Some(saved)) => saved.environment.clone(),
                (None, None) => return Err(CliError::Usage("--env E is required".into())),
            };
            let config = environment_config(&cli, &sources, &environment)?;
            let artifact = args
                .artifact
                .clone()
                .or_else(|| saved.as_ref().map(|saved| saved.artifact.clone()));
            let code = commands::environment::code(&config, artifact.as_deref(), true)?;
            if let Some(saved) = &saved
                && code.sha256.as_deref() != Some(saved.artifact_sha256.as_str())
            {
                return Err(CliError::Usage(format!(
                    "the artifact {} is not the one the plan was made with (SHA-256 {} then, {} now)",
                    artifact
                        .as_deref()
                        .map_or_else(|| "built now".into(), |path| path.display().to_string()),
                    saved.artifact_sha256,
                    code.sha256.as_deref().unwrap_or("unknown")
                )));
            }
            let layer = commands::environment::layer(&config)?;
            let (aws, backend) = connect(&cli, &config).await?;
            let options = EnvironmentOptions {
                environment: environment.clone(),
                code,
                layer,
                detailed_exitcode: false,
                drift_only: false,
                json: args.json,
                auto_approve: args.auto_approve,
                lock_timeout: args.lock_timeout,
                health_check_timeout: (!args.skip_health_check)
                    .then_some(args.health_check_timeout),
                prune_indexes: args.prune_indexes,
                pre_traffic_check: !args.skip_pre_traffic_check,
                artifact,
                out: None,
                saved: saved
                    .as_ref()
                    .zip(args.plan.as_deref())
                    .map(|(saved, file)| (file, saved).into()),
            };
            commands::environment::apply_environment(&config, &aws, &backend, &options).await
        }
        Command::Migrate(args) => {
            let config = environment_config(&cli, &sources, &args.env.environment)?;
            let (aws, backend) = connect(&cli, &config).await?;
            let options = commands::migrate::MigrateOptions {
                environment: args.env.environment.clone(),
                from: commands::migrate::From::Table(args.from.clone()),
                selection: match &args.tables {
                    Some(tables) => commands::migrate::Selection::Tables(tables.clone()),
                    None => commands::migrate::Selection::All,
                },
                copy: copy_options(&args.copy),
                json: args.copy.json,
                lock_timeout: args.copy.lock_timeout,
            };
            commands::migrate::run(&config, &aws, &backend, &options).await
        }
        Command::Import(args) => {
            let config = environment_config(&cli, &sources, &args.env.environment)?;
            let (aws, backend) = connect(&cli, &config).await?;
            let options = commands::migrate::MigrateOptions {
                environment: args.env.environment.clone(),
                from: commands::migrate::From::File(args.file.clone()),
                selection: commands::migrate::Selection::All,
                copy: copy_options(&args.copy),
                json: args.copy.json,
                lock_timeout: args.copy.lock_timeout,
            };
            commands::migrate::run(&config, &aws, &backend, &options).await
        }
        Command::Export(args) => {
            let config = environment_config(&cli, &sources, &args.env.environment)?;
            // Reads the environment's table only: no state backend is opened.
            let aws = aws::load(&config.settings.region).await;
            let options = commands::export::ExportOptions {
                environment: args.env.environment.clone(),
                tables: args.tables.clone(),
                parallel: usize::from(args.parallel),
            };
            commands::export::run(&config, &aws, &options).await
        }
        Command::Restore(args) => {
            let config = environment_config(&cli, &sources, &args.env.environment)?;
            let (aws, backend) = connect(&cli, &config).await?;
            commands::restore::run(
                &config,
                &aws,
                &backend,
                &args.env.environment,
                &args.backup,
                args.lock_timeout,
            )
            .await
        }
        Command::Rollback(args) => {
            let config = environment_config(&cli, &sources, &args.env.environment)?;
            let (aws, backend) = connect(&cli, &config).await?;
            commands::rollback::run(
                &config,
                &aws,
                &backend,
                &args.env.environment,
                args.to.as_deref(),
                args.lock_timeout,
            )
            .await
        }
        Command::Logs(args) => {
            let config = environment_config(&cli, &sources, &args.env.environment)?;
            // Logs need no state: no backend is opened.
            let aws = aws::load(&config.settings.region).await;
            let versions = match (&args.release, args.all_versions) {
                (Some(version), _) => commands::logs::Versions::One(version.clone()),
                (None, true) => commands::logs::Versions::All,
                (None, false) => commands::logs::Versions::Live,
            };
            let options = commands::logs::LogsOptions {
                environment: args.env.environment.clone(),
                since: args.since,
                follow: args.follow,
                filter: args.filter.clone(),
                versions,
            };
            commands::logs::run(&config, &aws, &options)
                .await
                .map(|()| Outcome::new(String::new(), 0))
        }
        Command::Output(args) => {
            let (environment, backend) = open_state(&cli, &sources, &args.env.environment).await?;
            commands::output::run(&backend, &environment, args.json, args.name.as_deref())
                .await
                .map(Outcome::from)
        }
        Command::PlanReport(args) => {
            let context = commands::plan_report::markdown::Context {
                details_url: args.details_url.clone(),
                preview_url: args.preview_url.clone(),
                commit: args.commit.clone(),
            };
            commands::plan_report::run(&args.plans, args.format.into(), &context)
        }
        Command::ForceUnlock(args) => {
            let (environment, backend) = open_state(&cli, &sources, &args.env.environment).await?;
            commands::force_unlock::run(&backend, &environment, &args.lock_id)
                .await
                .map(Outcome::from)
        }
        Command::Lock(LockCommand::Status(args)) => {
            let (environment, backend) = open_state(&cli, &sources, &args.env.environment).await?;
            commands::lock_status::run(&backend, &environment, args.json)
                .await
                .map(Outcome::from)
        }
        Command::State(StateCommand::List(args)) => {
            let (environment, backend) = open_state(&cli, &sources, &args.env.environment).await?;
            commands::state_cmd::list(&backend, &environment, args.json)
                .await
                .map(Outcome::from)
        }
        Command::Environments(EnvironmentsCommand::List(args)) => {
            // The bucket's settings are the base's: no environment is named.
            let config = resolve(&cli, &sources, None)?;
            let (_, backend) = connect(&cli, &config).await?;
            let options = commands::environments::ListOptions {
                previews: args.previews,
                older_than: args.older_than,
                json: args.json,
            };
            commands::environments::list(&backend, &options)
                .await
                .map(Outcome::from)
        }
        Command::State(StateCommand::History(args)) => {
            let (environment, backend) = open_state(&cli, &sources, &args.env.environment).await?;
            commands::state_cmd::history(&backend, &environment, args.json)
                .await
                .map(Outcome::from)
        }
    }
}

/// Load the AWS configuration and open the state backend for `config`.
/// The resolved config for `environment`, whose name is checked first.
fn environment_config(
    cli: &Cli,
    sources: &ConfigSources<'_>,
    environment: &str,
) -> Result<Config, CliError> {
    let config = resolve(cli, sources, Some(environment))?;
    validate_environment(environment, &config.settings)?;
    Ok(config)
}

async fn connect(
    cli: &Cli,
    config: &Config,
) -> Result<(aws_config::SdkConfig, state::Backend), CliError> {
    let aws = aws::load(&config.settings.region).await;
    let backend = state_backend::open(cli.state.map(Into::into), config, &aws).await?;
    Ok((aws, backend))
}

/// Resolve the config for `environment`, validate the name, open its state backend.
async fn open_state(
    cli: &Cli,
    sources: &ConfigSources<'_>,
    environment: &str,
) -> Result<(String, state::Backend), CliError> {
    let config = resolve(cli, sources, Some(environment))?;
    let environment = commands::state_environment(environment, &config.settings)?;
    let (_, backend) = connect(cli, &config).await?;
    Ok((environment, backend))
}

/// Resolve the settings; with `-v`, show them on stderr.
fn resolve(
    cli: &Cli,
    sources: &ConfigSources<'_>,
    environment: Option<&str>,
) -> Result<Config, CliError> {
    let config = Config::resolve(sources, environment)?;
    note_ambient_region(&config, sources.ambient_region);
    if cli.verbose {
        ui::note(format_args!(
            "settings: {}",
            serde_json::to_string(&config.settings).unwrap_or_default()
        ));
    }
    Ok(config)
}

/// Say once when an ambient `AWS_REGION` differs from the region used.
fn note_ambient_region(config: &Config, ambient: Option<&str>) {
    static NOTED: std::sync::Once = std::sync::Once::new();
    let Some(ambient) = ambient.filter(|ambient| !ambient.is_empty()) else {
        return;
    };
    if ambient == config.settings.region {
        return;
    }
    let from = match config.region_source {
        RegionSource::Flag => "--region",
        RegionSource::File => "the config file",
        RegionSource::Environment | RegionSource::Default => return,
    };
    NOTED.call_once(|| {
        ui::note(format_args!(
            "note: AWS_REGION={ambient} in the environment is not used: the region is {} (from {from})",
            config.settings.region
        ));
    });
}

/// `--dry-run`, `--parallel`, `--max-rcu`, `--restart` of `migrate` and `import`.
fn copy_options(args: &cli::CopyArgs) -> deployer::data::CopyOptions {
    deployer::data::CopyOptions {
        parallel: usize::from(args.parallel),
        max_rcu: args.max_rcu.map(f64::from),
        dry_run: args.dry_run,
        restart: args.restart,
    }
}
