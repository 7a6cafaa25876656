//! `buildopt notify`: publishes a RunReport written by an earlier `buildopt build --format json`
//! or `buildopt ci` (see [`crate::notify::publish`]).

use crate::cli::NotifyArgs;
use crate::context::Context;
use crate::error::Error;
use crate::notify::publish::{PublishRequest, publish, read_report, tell};

/// Runs `buildopt notify`.
pub fn run(ctx: &Context, args: &NotifyArgs) -> Result<u8, Error> {
    let report = read_report(&ctx.dir.join(&args.report))?;
    let request = PublishRequest {
        comment: args.comment,
        slack: args.slack,
        summary: args.summary,
        sarif: args.sarif.iter().map(|p| ctx.dir.join(p)).collect(),
    };
    let outcome = publish(ctx, &report, &request)?;
    tell(ctx, &outcome);
    Ok(outcome.exit_code())
}
