//! `buildopt plan`: what would build for a commit range, in which order, and why.

use crate::cli::{Format, PlanArgs, PlanOutput};
use crate::context::{Context, write_stdout};
use crate::error::Error;
use crate::exit;
use crate::git::Git;
use crate::report;
use crate::run::plan::{PlanRequest, make_plan};

/// Runs `plan` and prints the result.
pub fn run(ctx: &Context, args: &PlanArgs) -> Result<u8, Error> {
    let git = Git::open(&ctx.dir)?;
    let request = PlanRequest {
        base: args.base.clone(),
        head: args.head.clone(),
        push: args.push,
        without_daemon: false,
    };
    let plan = make_plan(ctx, &ctx.settings.core, &git, &request)?;

    let output = args.output.unwrap_or(if ctx.format == Format::Json {
        PlanOutput::Json
    } else {
        PlanOutput::Text
    });
    let rendered = match output {
        PlanOutput::Text => report::plan::text(&plan),
        PlanOutput::Json => report::plan::json(&plan) + "\n",
        PlanOutput::Matrix => report::plan::matrix(&plan) + "\n",
    };
    write_stdout(&rendered)?;
    ctx.write_step_outputs(&report::plan::github_outputs(&plan))?;
    Ok(exit::SUCCESS)
}
