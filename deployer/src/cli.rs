//! The command line, as clap derive types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Provision and manage the AI Model Share playground API on AWS.
///
/// Settings come from ./deployer.toml (or --config), its [env.<name>] tables,
/// and --var KEY=VALUE flags, in that order. AWS access uses the standard
/// chain: AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, environment credentials,
/// web identity (GitHub OIDC), SSO.
#[derive(Debug, Parser)]
#[command(name = "deployer", version, propagate_version = true)]
pub struct Cli {
    /// Config file [default: ./deployer.toml when present]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// AWS region (overrides the config's `region`)
    #[arg(long, global = true, env = "AWS_REGION", value_name = "R")]
    pub region: Option<String>,

    /// Where state lives [default: s3 when the configured state bucket exists, else local]
    #[arg(long, global = true, value_enum, env = "DEPLOYER_STATE")]
    pub state: Option<StateChoice>,

    /// Override a setting, e.g. --var memory_mb=512 (repeatable)
    #[arg(long = "var", global = true, value_name = "KEY=VALUE")]
    pub vars: Vec<String>,

    /// More detail on stderr
    #[arg(short, long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// Which state backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateChoice {
    /// .deployer/<env>.json beside the config, with a lock file
    Local,
    /// s3://<state_bucket>/deployer/<env>/state.json, locked in <lock_table>
    S3,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print an environment's outputs (all, or the one NAME) from its state
    Output(OutputArgs),
    /// Remove a stale lock left by a run that died, given the lock's ID
    ForceUnlock(ForceUnlockArgs),
    /// Inspect the state
    #[command(subcommand)]
    State(StateCommand),
}

/// `--env`, also from `DEPLOYER_ENV`.
#[derive(Debug, Clone, Args)]
pub struct EnvArg {
    /// Environment: dev, stage, prod, … (`bootstrap` for the bootstrap stack where allowed)
    #[arg(long = "env", env = "DEPLOYER_ENV", value_name = "E")]
    pub environment: String,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// One output's name; its raw value is printed
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct ForceUnlockArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// The lock's ID, as shown in the "state is locked" error
    pub lock_id: String,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// The resources recorded in the state and their ids
    List(StateArgs),
    /// The stored versions of the state (S3 keeps every version)
    History(StateArgs),
}

#[derive(Debug, Args)]
pub struct StateArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}
