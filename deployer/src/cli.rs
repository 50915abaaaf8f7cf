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
#[command(
    name = "deployer",
    version,
    propagate_version = true,
    after_help = "Reference: docs/commands.md (every command), docs/settings.md (deployer.toml \
                  and --var keys), docs/data.md (migrate, export, import, destroy and restore), \
                  docs/security.md (what the roles may do)."
)]
pub struct Cli {
    /// Config file [default: ./deployer.toml when present]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// AWS region; wins over the config's `region`, which wins over an ambient
    /// AWS_REGION (used only when neither names one)
    #[arg(long, global = true, value_name = "R")]
    pub region: Option<String>,

    /// Where state lives [default: s3 when the configured state bucket exists, else local]
    #[arg(long, global = true, value_enum, env = "DEPLOYER_STATE")]
    pub state: Option<StateChoice>,

    /// Override a setting, e.g. --var memory_mb=512 (repeatable)
    #[arg(long = "var", global = true, value_name = "KEY=VALUE")]
    pub vars: Vec<String>,

    /// Show the resolved settings, and every AWS call as it starts, on stderr
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
    /// s3://<state_bucket>/deployer/<env>/state.json, locked as lock_backend says
    S3,
}

impl From<StateChoice> for crate::state_backend::Location {
    fn from(choice: StateChoice) -> Self {
        match choice {
            StateChoice::Local => Self::Local,
            StateChoice::S3 => Self::S3,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or converge the shared pieces: state bucket, lock table, GitHub OIDC
    /// provider, deploy role and policy. Adopts what already exists by name.
    #[command(after_help = "Reference: docs/commands.md#bootstrap")]
    Bootstrap(BootstrapArgs),
    /// Show what `apply --env E` would change
    #[command(
        after_help = "Reference: docs/commands.md#environments, docs/commands.md#saved-plans"
    )]
    Plan(PlanArgs),
    /// Create or converge one environment: table, execution role and policy, log
    /// group, function, HTTP API and invoke permission. New code or configuration
    /// is published as a version, invoked directly (GET /health, GET /tables), and
    /// only then served: the `live` alias, which API Gateway calls, moves to it
    #[command(
        after_help = "Reference: docs/commands.md#environments, docs/commands.md#releases-published-versions-behind-live-checked-before-traffic-rolled-back-in-seconds"
    )]
    Apply(ApplyArgs),
    /// Destroy one environment (--env E), or the bootstrap stack (--bootstrap)
    #[command(after_help = "Reference: docs/data.md#destroy-and-restore")]
    Destroy(DestroyArgs),
    /// Bring back a destroyed environment's table from its final backup; the next
    /// `apply --env E` converges the rest
    #[command(after_help = "Reference: docs/data.md#destroy-and-restore")]
    Restore(RestoreArgs),
    /// Move the items of another scores table (the legacy shared PlaygroundScores)
    /// into the environment's table: newer items there are kept, userCount is
    /// recounted, every table is verified. Resumes after a crash or Ctrl-C
    #[command(after_help = "Reference: docs/data.md#moving-data-migrate-export-import")]
    Migrate(MigrateArgs),
    /// Write the environment's tables (all, or --tables) to stdout as JSON lines
    #[command(after_help = "Reference: docs/data.md#moving-data-migrate-export-import")]
    Export(ExportArgs),
    /// Read JSON lines (as `export` writes them) into the environment's table,
    /// as `migrate` does from a table
    #[command(after_help = "Reference: docs/data.md#moving-data-migrate-export-import")]
    Import(ImportArgs),
    /// Move the `live` alias back to the previous release (or --to VERSION):
    /// seconds, no build; recorded in the state history
    #[command(
        after_help = "Reference: docs/commands.md#releases-published-versions-behind-live-checked-before-traffic-rolled-back-in-seconds"
    )]
    Rollback(RollbackArgs),
    /// Print the function's log events: those of the live release unless
    /// --release or --all-versions
    #[command(after_help = "Reference: docs/commands.md#reading-the-functions-logs")]
    Logs(LogsArgs),
    /// Print an environment's outputs (all, or the one NAME) from its state
    #[command(after_help = "Reference: docs/commands.md#outputs")]
    Output(OutputArgs),
    /// Remove a stale lock left by a run that died, given the lock's ID
    #[command(after_help = "Reference: docs/locking.md#seeing-and-clearing-locks")]
    ForceUnlock(ForceUnlockArgs),
    /// Inspect the state's lock
    #[command(subcommand)]
    #[command(after_help = "Reference: docs/locking.md#seeing-and-clearing-locks")]
    Lock(LockCommand),
    /// Inspect the state
    #[command(subcommand)]
    #[command(after_help = "Reference: docs/commands.md#state-and-locks")]
    State(StateCommand),
    /// Render JSON plans (`plan --env E --json`, one file per environment) for
    /// GitHub: a pull request's comment, a job summary, or a drift issue. No AWS call
    #[command(
        after_help = "Reference: docs/commands.md#plans-for-github-plan-report, docs/ci.md#the-pull-requests-plan-comment"
    )]
    PlanReport(PlanReportArgs),
    /// The environments with state in the state bucket
    #[command(subcommand)]
    #[command(after_help = "Reference: docs/commands.md#listing-environments, docs/ci.md#previews")]
    Environments(EnvironmentsCommand),
}

/// `deployer environments ...`.
#[derive(Debug, Subcommand)]
pub enum EnvironmentsCommand {
    /// Every environment with state (not the bootstrap stack), with its age
    /// (since its state was first written) and its last apply
    #[command(after_help = "Reference: docs/commands.md#listing-environments, docs/ci.md#previews")]
    List(EnvironmentsListArgs),
}

#[derive(Debug, Args)]
pub struct EnvironmentsListArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Only the pull requests' previews, pr-<number>
    #[arg(long)]
    pub previews: bool,
    /// Only environments older than this, e.g. 7d or 12h
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub older_than: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct PlanReportArgs {
    /// JSON plans as `deployer plan --env E --json` prints them, in the order
    /// shown; an empty or unreadable file is shown as a failed plan (named
    /// by the file's name)
    #[arg(value_name = "PLAN_JSON", required = true)]
    pub plans: Vec<PathBuf>,
    /// What to render
    #[arg(long, value_enum)]
    pub format: ReportFormat,
    /// Where every plan is whole (the workflow run's summary); cut plans link to it
    #[arg(long, value_name = "URL")]
    pub details_url: Option<String>,
    /// The pull request's preview environment, shown in the comment when given
    #[arg(long, value_name = "URL")]
    pub preview_url: Option<String>,
    /// The commit planned, shown in the comment
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
}

/// What `plan-report` renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A pull request comment: a summary per environment, then each plan
    /// collapsed; under 65,536 characters, plans cut with a link to --details-url
    GithubComment,
    /// A job summary: the summary, then every plan whole
    JobSummary,
    /// One environment's drift issue body (one PLAN_JSON)
    GithubIssue,
}

impl From<ReportFormat> for crate::commands::plan_report::Format {
    fn from(format: ReportFormat) -> Self {
        match format {
            ReportFormat::GithubComment => Self::GithubComment,
            ReportFormat::JobSummary => Self::JobSummary,
            ReportFormat::GithubIssue => Self::GithubIssue,
        }
    }
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
pub enum LockCommand {
    /// Who holds the lock of --env E (or `bootstrap`): holder, run URL, age,
    /// last heartbeat, in every place the lock is kept
    #[command(after_help = "Reference: docs/locking.md#seeing-and-clearing-locks")]
    Status(LockStatusArgs),
}

#[derive(Debug, Args)]
pub struct LockStatusArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// The resources recorded in the state and their ids
    #[command(after_help = "Reference: docs/commands.md#state-and-locks")]
    List(StateArgs),
    /// The stored versions of the state (S3 keeps every version)
    #[command(after_help = "Reference: docs/commands.md#state-and-locks")]
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

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Exit 0 when nothing would change, 2 when something would, 1 on error
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Show only the drift (what changed in AWS since the last apply recorded
    /// it); exit 0 without drift, 2 with drift, 1 on error
    #[arg(long, conflicts_with = "detailed_exitcode")]
    pub drift_only: bool,
    /// Print the plan as JSON
    #[arg(long)]
    pub json: bool,
    /// The function's zip (as `cargo lambda build --release --output-format zip` makes it);
    /// without it the code is shown as known after apply
    #[arg(long, value_name = "ZIP")]
    pub artifact: Option<PathBuf>,
    /// Plan to delete table indexes the schema does not know (kept otherwise)
    #[arg(long)]
    pub prune_indexes: bool,
    /// Save the plan to FILE (needs --artifact), with the state version and the
    /// artifact's hash it was made against; `deployer apply FILE` applies exactly it
    #[arg(long, value_name = "FILE", requires = "artifact")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved by `deployer plan --out FILE`: applied exactly, without asking,
    /// or refused (nothing changed) when the state or AWS has moved on since
    #[arg(value_name = "PLAN_FILE")]
    pub plan: Option<PathBuf>,
    /// Environment: dev, stage, prod, … (with PLAN_FILE: the plan's, and must match)
    #[arg(
        long = "env",
        env = "DEPLOYER_ENV",
        value_name = "E",
        required_unless_present = "plan"
    )]
    pub environment: Option<String>,
    /// Apply without asking (required when standard input is not a terminal)
    #[arg(long)]
    pub auto_approve: bool,
    /// The function's zip (as `cargo lambda build --release --output-format zip` makes it);
    /// without it the function is built from the workspace for this machine's architecture
    /// (with PLAN_FILE: the zip the plan names, whose hash must match)
    #[arg(long, value_name = "ZIP")]
    pub artifact: Option<PathBuf>,
    /// Print the plan and outputs as JSON
    #[arg(long)]
    pub json: bool,
    /// How long to wait for a held lock, e.g. 30s or 5m
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// After an apply that changed anything, how long to call GET <api_base_url>/health
    /// until it answers 200 before failing
    #[arg(long, value_name = "DURATION", default_value = "90s", value_parser = parse_duration)]
    pub health_check_timeout: std::time::Duration,
    /// Do not call the API after applying (for networks where its URL is not reachable)
    #[arg(long, env = "DEPLOYER_SKIP_HEALTH_CHECK")]
    pub skip_health_check: bool,
    /// Move the `live` alias to a new version without invoking it first (GET /health and a
    /// read-only GET /tables, sent to the version itself). Only where nothing can run the
    /// function, such as an emulator without a Lambda runtime
    #[arg(long, env = "DEPLOYER_SKIP_PRE_TRAFFIC_CHECK")]
    pub skip_pre_traffic_check: bool,
    /// Delete table indexes the schema does not know (kept and pointed out otherwise)
    #[arg(long)]
    pub prune_indexes: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["environment", "bootstrap"])))]
pub struct DestroyArgs {
    /// The environment to destroy
    #[arg(long = "env", env = "DEPLOYER_ENV", value_name = "E")]
    pub environment: Option<String>,
    /// Destroy the bootstrap stack (state bucket emptied of every version, lock
    /// table, OIDC provider, deploy role and policy)
    #[arg(long)]
    pub bootstrap: bool,
    /// Destroy without asking (required when standard input is not a terminal)
    #[arg(long)]
    pub auto_approve: bool,
    /// With --bootstrap: destroy even though environments still have state in the bucket
    #[arg(long, requires = "bootstrap")]
    pub force: bool,
    /// With --env: delete the scores table without taking a final backup first
    /// (its items are then lost)
    #[arg(long, conflicts_with = "bootstrap")]
    pub skip_final_backup: bool,
    /// With --env: delete the environment's Cognito user pool and its accounts
    /// too (without it the pool is kept, and a later apply adopts it; accounts
    /// cannot be backed up or restored)
    #[arg(long, conflicts_with = "bootstrap")]
    pub delete_user_accounts: bool,
    /// How long to wait for a held lock, e.g. 30s or 5m
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// How far back to start, e.g. 10m, 2h, 1d
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub since: std::time::Duration,
    /// Keep printing new events (every 2 s) until Ctrl-C
    #[arg(long)]
    pub follow: bool,
    /// Only events matching this CloudWatch Logs filter pattern (a word: events containing it)
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Only the events of this published version (or $LATEST), instead of the live one's
    #[arg(long, value_name = "VERSION", conflicts_with = "all_versions")]
    pub release: Option<String>,
    /// The events of every version
    #[arg(long)]
    pub all_versions: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// A published version to move `live` to, instead of the release before the
    /// live one (`deployer state history --env E` lists the releases)
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// How long to wait for a held lock, e.g. 30s or 5m
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
}

/// How `migrate` and `import` go.
#[derive(Debug, Clone, Args)]
pub struct CopyArgs {
    /// Decide and count every item, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Lanes read at once: scan segments with --all, tables with --tables (1 to 64)
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Read capacity units per second the source may spend, on average (gentle
    /// on a live table; default: no limit)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rcu: Option<u32>,
    /// Start over instead of resuming an unfinished run's checkpoint
    #[arg(long)]
    pub restart: bool,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
    /// How long to wait for a held lock, e.g. 30s or 5m
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("selection").required(true).args(["tables", "all"])))]
pub struct MigrateArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// The DynamoDB table to read, e.g. the legacy shared PlaygroundScores
    #[arg(long, value_name = "TABLE")]
    pub from: String,
    /// Only these tables (tableId), comma-separated
    #[arg(long, value_name = "ID,ID...", value_delimiter = ',')]
    pub tables: Option<Vec<String>>,
    /// Every table of the source (a parallel scan)
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub copy: CopyArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Only these tables (tableId), comma-separated; default: every table
    #[arg(long, value_name = "ID,ID...", value_delimiter = ',')]
    pub tables: Option<Vec<String>>,
    /// Tables read at once
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// A JSON-lines file of items, as `deployer export` writes it
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,
    #[command(flatten)]
    pub copy: CopyArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// The backup's ARN, as `destroy --env E` printed it (also in `state history`)
    #[arg(long, value_name = "ARN")]
    pub backup: String,
    /// How long to wait for a held lock, e.g. 30s or 5m
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Only show what would change
    #[arg(long)]
    pub plan: bool,
    /// With --plan: exit 0 when nothing would change, 2 when something would, 1 on error
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Print the plan (and outputs) as JSON
    #[arg(long)]
    pub json: bool,
    /// Apply without asking (required when standard input is not a terminal)
    #[arg(long)]
    pub auto_approve: bool,
    /// How long to wait for a held lock, e.g. 30s or 5m
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
}

/// Durations on the command line read as in settings (`lock_lease`).
pub use crate::config::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command's `--help` ends with where its reference is
    /// (`scripts/check-docs` checks that each page and anchor named
    /// here resolves).
    #[test]
    fn every_command_links_its_reference() {
        use clap::CommandFactory;
        fn missing(command: &clap::Command, path: &str, out: &mut Vec<String>) {
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                let help = sub.get_after_help().map(ToString::to_string);
                if !help.is_some_and(|help| help.starts_with("Reference: docs/")) {
                    out.push(path.clone());
                }
                missing(sub, &path, out);
            }
        }
        let mut out = Vec::new();
        missing(&Cli::command(), "deployer", &mut out);
        assert!(out.is_empty(), "no reference in --help: {out:?}");
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
