//! `buildopt build --benchmark`: refuses the flags the benchmark would ignore, measures (see
//! [`crate::benchmark`]) and prints the table or the JSON report.

use crate::benchmark::{BenchmarkError, BenchmarkRequest, benchmark};
use crate::cli::{BuildArgs, Format};
use crate::context::{Context, builder, write_stdout};
use crate::error::Error;
use crate::exit;
use crate::report::benchmark::{json, table};

/// Runs `build --benchmark`.
pub fn run(ctx: &Context, args: &BuildArgs) -> Result<u8, Error> {
    refuse_flags(args)?;
    let request = BenchmarkRequest {
        jobs: args.jobs,
        keep_going: args.keep_going,
        builder: args.builder.map(builder),
    };
    let report = benchmark(ctx, &request)?;
    let rendered = match ctx.format {
        Format::Json => json(&report) + "\n",
        Format::Human => table(&report),
    };
    write_stdout(&rendered)?;
    Ok(if report.interrupted {
        exit::INTERRUPTED
    } else if report.runs.iter().any(|r| r.failed > 0) {
        exit::BUILD_FAILED
    } else {
        exit::SUCCESS
    })
}

fn refuse_flags(args: &BuildArgs) -> Result<(), BenchmarkError> {
    let refused = [
        (args.push, "--push"),
        (args.dry_run, "--dry-run"),
        (args.force, "--force"),
        (args.level.is_some() || args.ci, "--level/--ci"),
        (!args.only.is_empty(), "--only"),
        (!args.tag.is_empty(), "--tag"),
        (args.base.is_some() || args.head.is_some(), "--base/--head"),
    ];
    match refused.into_iter().find(|(set, _)| *set) {
        Some((_, flag)) => Err(BenchmarkError::Flag(flag)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benchmark_refuses_flags_it_would_ignore() {
        assert!(refuse_flags(&dummy()).is_ok());
        let pushing = BuildArgs {
            push: true,
            ..dummy()
        };
        assert!(matches!(
            refuse_flags(&pushing),
            Err(BenchmarkError::Flag("--push"))
        ));
    }

    fn dummy() -> BuildArgs {
        BuildArgs {
            level: None,
            ci: false,
            force: false,
            tag: Vec::new(),
            push: false,
            jobs: None,
            keep_going: false,
            cache_retention_days: None,
            no_cleanup: false,
            dry_run: false,
            only: Vec::new(),
            builder: None,
            base: None,
            head: None,
            benchmark: true,
        }
    }
}
