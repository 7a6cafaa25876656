//! `buildopt build`: plans, runs the build on the Docker daemon (see [`crate::run`]) and prints
//! the RunReport; with `--dry-run`, prints the plan without talking to the daemon.

use crate::cli::{BuildArgs, Format};
use crate::context::{Context, builder, write_stdout};
use crate::error::Error;
use crate::exit;
use crate::git::Git;
use crate::report;
use crate::run::RunOptions;
use crate::run::daemon::{Connecting, exit_code, run_on_daemon};
use crate::run::plan::{PlanRequest, plan_with_workspace};
use crate::settings::{Flags, Level};

/// Runs `build`.
pub fn run(ctx: &Context, args: &BuildArgs) -> Result<u8, Error> {
    let flags = Flags {
        level: args.level.or(args.ci.then_some(Level::Ci)),
        force: args.force,
        verbose: ctx.verbose,
        jobs: args.jobs,
        default_level: None,
    };
    let settings = ctx.settings(&flags)?;
    // Not for `--dry-run`, which never talks to the daemon.
    let daemon = (!args.dry_run)
        .then(|| Connecting::start(ctx))
        .transpose()?;
    let git = Git::open(&ctx.dir)?;
    let request = PlanRequest {
        base: args.base.clone(),
        head: args.head.clone(),
    };
    let (plan, workspace) = plan_with_workspace(ctx, &settings, &git, &request)?;
    let Some(daemon) = daemon else {
        write_stdout(&report::plan::text(&plan))?;
        return Ok(exit::SUCCESS);
    };
    let options = RunOptions {
        only: args.only.clone(),
        tags: args.tag.clone(),
        push: args.push,
        keep_going: args.keep_going,
        cleanup: !args.no_cleanup,
        builder: args.builder.map(builder),
        keep_out: Vec::new(),
    };
    let report = run_on_daemon(ctx, daemon, &options, &settings, &git, &plan, &workspace)?;
    let rendered = match ctx.format {
        Format::Json => report::run::json(&report) + "\n",
        Format::Human => report::run::table(&report),
    };
    let github = ctx.format == Format::Human && ctx.env.is_true("GITHUB_ACTIONS");
    write_stdout(&crate::console::inert_in_github(github, rendered))?;
    Ok(exit_code(&report))
}
