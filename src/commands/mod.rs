//! One module per subcommand, and nothing else: each reads the resolved settings, calls the
//! library (`run`, `cache`, `benchmark`, `notify::publish`, …) and hands the result to renderers
//! (`report`) and publishers (`notify`). A command never imports another command; what several
//! share lives outside this folder (`context`, `console`).

pub mod benchmark;
pub mod build;
pub mod cache;
pub mod ci;
pub mod notify;
pub mod plan;
pub mod scan;

use std::io::Write;

use crate::cli::{Cli, Command};
use crate::context::{Context, console_lines};
use crate::env::Env;
use crate::notify::secret::Redactor;

/// Runs the command and returns the exit code; errors are reported on stderr.
pub fn run(cli: Cli, env: Env) -> u8 {
    // Errors may quote what a hook or the daemon said: redacted like everything else.
    let redactor = Redactor::of_run(&env);
    let context = match Context::new(&cli, env.clone(), redactor.clone()) {
        // `scan --image/--input/--from-cache` needs no workspace: one that does not load is
        // not its problem.
        Err(_) if scans_without_workspace(&cli.command) => {
            Context::without_config_file(&cli, env, redactor.clone())
        }
        other => other,
    };
    let result = context.and_then(|ctx| match &cli.command {
        Command::Plan(args) => plan::run(&ctx, args),
        Command::Build(args) if args.benchmark => benchmark::run(&ctx, args),
        Command::Build(args) => build::run(&ctx, args),
        Command::Cache(args) => cache::run(&ctx, args),
        Command::Ci(args) => ci::run(&ctx, args),
        Command::Notify(args) => notify::run(&ctx, args),
        Command::Scan(args) => scan::run(&ctx, args),
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            let message = redactor.redact(&err.to_string());
            let _ = writeln!(std::io::stderr(), "error: {}", console_lines(&message));
            err.exit_code()
        }
    }
}

fn scans_without_workspace(command: &Command) -> bool {
    // `--for-ci` asks what `buildopt ci` would do, which the workspace's file decides.
    matches!(command, Command::Scan(args) if !args.all && !args.for_ci)
}
