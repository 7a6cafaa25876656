//! `buildopt build`: plans, runs the build on the Docker daemon (see [`crate::run`]) and prints
//! the RunReport; with `--dry-run`, prints the plan without talking to the daemon.

use crate::cli::{BuildArgs, Format};
use crate::context::{Context, builder, write_stdout};
use crate::error::Error;
use crate::exit;
use crate::git::Git;
use crate::report;
use crate::run::RunOptions;
use crate::run::daemon::{Connecting, ending, run_on_daemon};
use crate::run::plan::{PlanRequest, plan_with_workspace};

/// Runs `build`.
pub fn run(ctx: &Context, args: &BuildArgs) -> Result<u8, Error> {
    let settings = &ctx.settings;
    let pipeline = &settings.pipeline;
    let git = Git::open(&ctx.dir)?;
    let request = PlanRequest {
        base: args.base.clone(),
        head: args.head.clone(),
        push: pipeline.push,
        // `--dry-run` never talks to the daemon.
        without_daemon: args.dry_run,
    };
    let (plan, workspace) = plan_with_workspace(ctx, &settings.core, &git, &request)?;
    if args.dry_run {
        write_stdout(&report::plan::text(&plan))?;
        return Ok(exit::SUCCESS);
    }
    let daemon = Connecting::start(ctx)?;
    let options = RunOptions {
        cleanup: !args.no_cleanup,
        ..RunOptions::of_pipeline(pipeline, &args.only, args.builder.map(builder))
    };
    let report = run_on_daemon(
        ctx,
        daemon,
        &options,
        &settings.core,
        &git,
        &plan,
        &workspace,
    )?;
    let rendered = match ctx.format {
        Format::Json => report::run::json(&report) + "\n",
        Format::Human => report::run::table(&report),
    };
    let github = ctx.format == Format::Human && settings.github_actions();
    write_stdout(&crate::console::inert_in_github(github, rendered))?;
    Ok(exit::exit_code([ending(&report)]))
}
