//! The command line's share of the settings: each command's clap arguments turned into the
//! plain [`RunFlags`] that resolution takes (clap types stop here).

use super::cache::CacheFlags;
use super::pipeline::PipelineFlags;
use super::run::RunFlags;
use super::scan::ScanFlags;
use super::{Flags, Level};
use crate::cli::{BuildArgs, CacheAction, CacheArgs, CiArgs, Cli, Command};

impl RunFlags {
    /// The flags of the command `cli` runs.
    pub fn of_command(cli: &Cli) -> Self {
        match &cli.command {
            Command::Plan(args) => Self {
                core: Flags {
                    force: args.force,
                    verbose: cli.verbose,
                    ..Flags::default()
                },
                ..Self::default()
            },
            Command::Build(args) => Self::of_build(args, cli.verbose),
            Command::Ci(args) => Self::of_ci(args, cli.verbose),
            Command::Cache(args) => Self::of_cache(args, cli.verbose),
            Command::Notify(_) => Self {
                core: Flags {
                    verbose: cli.verbose,
                    ..Flags::default()
                },
                ..Self::default()
            },
            Command::Scan(args) => Self {
                core: Flags {
                    verbose: cli.verbose,
                    ..Flags::default()
                },
                scan: ScanFlags {
                    level: args.level,
                    no_fail_high: args.no_fail_high,
                    ignore_unfixed: args.ignore_unfixed,
                    scanner: args.scanner,
                },
                ..Self::default()
            },
        }
    }

    /// The flags of `buildopt build`.
    fn of_build(args: &BuildArgs, verbose: u8) -> Self {
        Self {
            core: Flags {
                level: args.level.or(args.ci.then_some(Level::Ci)),
                force: args.force,
                verbose,
                jobs: args.jobs,
                default_level: None,
            },
            cache: CacheFlags {
                retention_days: args.cache_retention_days,
                ..CacheFlags::default()
            },
            pipeline: PipelineFlags {
                tags: args.tag.clone(),
                push: args.push,
                keep_going: args.keep_going,
            },
            scan: ScanFlags::default(),
        }
    }

    /// The flags of `buildopt ci`, which runs at level `ci` unless something names another.
    fn of_ci(args: &CiArgs, verbose: u8) -> Self {
        Self {
            core: Flags {
                level: args.level,
                force: args.force,
                verbose,
                jobs: args.jobs,
                default_level: Some(Level::Ci),
            },
            cache: CacheFlags {
                retention_days: args.cache_retention_days,
                ..CacheFlags::default()
            },
            pipeline: PipelineFlags {
                tags: args.tag.clone(),
                push: args.push,
                keep_going: args.keep_going,
            },
            scan: ScanFlags::default(),
        }
    }

    /// The flags of `buildopt ci` given no option: what a CI wrapper's plain `buildopt ci`
    /// resolves, its level and scan coming from the environment and `buildopt.toml`.
    pub fn of_plain_ci(verbose: u8) -> Self {
        Self {
            core: Flags {
                verbose,
                default_level: Some(Level::Ci),
                ..Flags::default()
            },
            ..Self::default()
        }
    }

    fn of_cache(args: &CacheArgs, verbose: u8) -> Self {
        let compression = match &args.action {
            CacheAction::Export { compression, .. } => *compression,
            _ => None,
        };
        Self {
            core: Flags {
                verbose,
                ..Flags::default()
            },
            cache: CacheFlags {
                dir: args.cache_dir.clone(),
                compression,
                retention_days: args.cache_retention_days,
            },
            pipeline: PipelineFlags::default(),
            scan: ScanFlags::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn flags(args: &[&str]) -> RunFlags {
        let cli = Cli::try_parse_from(std::iter::once("buildopt").chain(args.iter().copied()))
            .expect("valid command line");
        RunFlags::of_command(&cli)
    }

    #[test]
    fn build_and_ci_give_the_same_pipeline_flags() {
        for command in ["build", "ci"] {
            let got = flags(&[
                command,
                "--tag",
                "v1",
                "--push",
                "--keep-going",
                "--jobs",
                "3",
            ]);
            assert_eq!(got.pipeline.tags, ["v1"], "{command}");
            assert!(got.pipeline.push && got.pipeline.keep_going, "{command}");
            assert_eq!(got.core.jobs, Some(3), "{command}");
        }
        assert_eq!(flags(&["ci"]).core.default_level, Some(Level::Ci));
        assert_eq!(flags(&["build", "--ci"]).core.level, Some(Level::Ci));
    }

    #[test]
    fn cache_flags_reach_the_cache_settings() {
        let got = flags(&[
            "cache",
            "--cache-dir",
            "/c",
            "export",
            "a.tar",
            "--compression",
            "gzip",
        ]);
        assert_eq!(got.cache.dir.as_deref(), Some(std::path::Path::new("/c")));
        assert_eq!(got.cache.compression, Some(crate::cache::Compression::Gzip));
        assert!(flags(&["-v", "plan", "--force"]).core.force);
        for command in [&["build"][..], &["ci"], &["cache", "stats"]] {
            let mut args = command.to_vec();
            args.extend(["--cache-retention-days", "2"]);
            assert_eq!(flags(&args).cache.retention_days, Some(2), "{command:?}");
        }
    }
}
