//! A run on the Docker daemon: the connection (started before the plan, so its handshake
//! overlaps git), the inputs a run reads from the invocation (CI facts, cache settings, hooks,
//! credentials), the cache store as [`RunCache`], and the console that shows progress.
//!
//! May import what `run` may; never `commands`.

use std::io::IsTerminal;

use super::cache::DaemonCache;
use super::{Observers, Run, RunCache, RunError, RunInputs, RunOptions};
use crate::ci;
use crate::console::{Console, Style};
use crate::context::Context;
use crate::engine::{DockerEngine, EngineError};
use crate::exit;
use crate::git::Git;
use crate::plan::Plan;
use crate::report::model::RunReport;
use crate::scheduler::Hooks;
use crate::scheduler::credentials::Credentials;
use crate::settings::cache::{CacheFlags, CacheSettings};
use crate::settings::{Level, Settings};
use crate::workspace::Workspace;

/// A daemon connection under way. Started before the plan, its handshake (a `/version` call the
/// daemon takes several milliseconds to answer) runs while git works.
pub struct Connecting {
    runtime: tokio::runtime::Runtime,
    engine: tokio::task::JoinHandle<Result<DockerEngine, EngineError>>,
}

impl Connecting {
    /// Starts the runtime the build runs on and the connection in it.
    pub fn start(ctx: &Context) -> Result<Self, RunError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(RunError::Runtime)?;
        let engine = runtime.spawn(ctx.connect_daemon());
        Ok(Self { runtime, engine })
    }

    /// Waits for the connection: the runtime and the engine, or why the daemon is unreachable.
    fn finish(self) -> Result<(tokio::runtime::Runtime, DockerEngine), RunError> {
        let joined = self.runtime.block_on(self.engine);
        let engine =
            joined.unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))?;
        Ok((self.runtime, engine))
    }
}

/// The run `plan` asks for, on the daemon `daemon` connects to: restores the cache, builds what
/// the plan selects, saves the cache, and returns the report.
pub fn run_on_daemon(
    ctx: &Context,
    daemon: Connecting,
    options: &RunOptions,
    settings: &Settings,
    git: &Git,
    plan: &Plan,
    workspace: &Workspace,
) -> Result<RunReport, RunError> {
    let ci_context = ci::detect(&ctx.env)?;
    let cache = CacheSettings::resolve(&CacheFlags::default(), &ctx.env, settings.level, &ctx.dir)?;
    let hooks = Hooks::resolve(ctx.file.hooks.as_ref(), &git.root().join(&workspace.root));
    let credentials = if options.push {
        Some(Credentials::load(&ctx.env)?)
    } else {
        None
    };
    let run = Run::new(RunInputs {
        options,
        settings,
        cache: &cache,
        git,
        plan,
        workspace,
        ci: &ci_context,
        hooks: &hooks,
        redactor: &ctx.redactor,
        credentials: credentials.as_ref(),
        source_url: repository_url(ctx),
    })?;
    // One connection for the restore, the build and the export.
    let (runtime, engine) = daemon.finish()?;
    let say = |line: &str| ctx.info(line);
    let store = DaemonCache {
        repo: &ctx.dir,
        settings: &cache,
        runtime: &runtime,
        engine: &engine,
        say: &say,
    };
    let console = Console::new(style(ctx, settings));
    let progress = |progress| console.show(progress);
    let observers = Observers {
        progress: &progress,
        say: &say,
    };
    let store: &dyn RunCache = &store;
    run.execute(&runtime, &engine, engine.info(), Some(store), &observers)
}

/// The exit code a finished run ends with.
pub fn exit_code(report: &RunReport) -> u8 {
    if report.run.interrupted {
        exit::INTERRUPTED
    } else if report.has_failures() {
        exit::BUILD_FAILED
    } else {
        exit::SUCCESS
    }
}

fn style(ctx: &Context, settings: &Settings) -> Style {
    if ctx.quiet {
        Style::Silent
    } else if ctx.env.is_true("GITHUB_ACTIONS") {
        Style::GitHub
    } else if ctx.env.get("CI").is_some()
        || settings.level == Level::Ci
        || !std::io::stderr().is_terminal()
    {
        Style::Plain
    } else {
        Style::Live
    }
}

/// The repository's web address when the CI says (GitHub), for the `source` label.
fn repository_url(ctx: &Context) -> Option<String> {
    let server = ctx.env.get("GITHUB_SERVER_URL")?;
    let repository = ctx.env.get("GITHUB_REPOSITORY")?;
    Some(format!("{server}/{repository}"))
}
