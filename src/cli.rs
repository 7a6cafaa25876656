//! The command line, as clap types only. Resolution into settings happens in `settings`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Builds only the container images whose inputs changed, in dependency order, and explains why.
#[derive(Debug, Parser)]
#[command(name = "buildopt", version, about, long_about = None, after_help = ENV_HELP)]
pub struct Cli {
    /// The configuration file (default: buildopt.toml in the working folder).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run as if started in DIR.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// Say more: how the base commit was chosen, where each setting came from.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Say nothing on stderr but errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Output for people or for programs.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show which images would build for a commit range, in which order, and why.
    Plan(PlanArgs),
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The base commit (default: chosen per CI event; see the README).
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// The head commit (default: the CI's commit, else HEAD).
    #[arg(long, value_name = "REV")]
    pub head: Option<String>,
    /// Plan every image, whatever changed.
    #[arg(long)]
    pub force: bool,
    /// What to print: a table, the versioned JSON plan, or a GitHub Actions matrix.
    #[arg(long, value_enum)]
    pub output: Option<PlanOutput>,
}

/// `plan --output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    Text,
    Json,
    Matrix,
}

const ENV_HELP: &str = "\
Settings also come from the environment (a BUILDOPT_ name wins over its legacy alias, a flag over both):
  BUILDOPT_LEVEL (OPTIMIZATION_LEVEL)       minimal | medium | maximum | ci; CI_MODE=true selects ci
  BUILDOPT_SELECTIVE (SELECTIVE_BUILD)      plan only what changed (true/false)
  BUILDOPT_FORCE (FORCE_REBUILD)            plan every image
  BUILDOPT_VERBOSE (VERBOSE)                say more
  BUILDOPT_JOBS                             images built at once
  BUILDOPT_DEFAULT_BRANCH                   the branch to compare new branches with
  BUILDOPT_MAX_DEEPEN_ROUNDS                how often a shallow clone may be deepened
In GitHub Actions, INPUT_<NAME> (the action's inputs) come after those. Exit codes: 0 success,
1 a build failed, 2 usage or configuration error, 3 policy gate failed, 4 environment (git, daemon).";
