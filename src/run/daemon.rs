//! A run on the Docker daemon: the connection (made once everything that can be checked without
//! the daemon was), the inputs a run reads from the invocation (CI facts, cache settings, hooks,
//! credentials), the cache store as [`RunCache`], and the console that shows progress.
//!
//! May import what `run` may; never `commands`.

use std::io::IsTerminal;

use super::cache::DaemonCache;
use super::scan::{RunCheck, Stores, record_origins, scan_images};
use super::{Observers, Run, RunCache, RunError, RunInputs, RunOptions};
use crate::console::{Console, Style};
use crate::context::Context;
use crate::engine::{DockerEngine, EngineError};
use crate::exit;
use crate::git::Git;
use crate::plan::Plan;
use crate::report::model::RunReport;
use crate::scan::cache::ScanCache;
use crate::scan::policy;
use crate::scan::vulnerabilities::Loaded;
use crate::scheduler::Hooks;
use crate::scheduler::credentials::Credentials;
use crate::settings::Settings;
use crate::workspace::Workspace;

/// A daemon connection, made only once the run has checked everything it can without the
/// daemon (settings, revisions, image names, tags): nothing reaches the daemon for a run that
/// would be refused.
pub struct Connecting {
    runtime: tokio::runtime::Runtime,
    connect:
        std::pin::Pin<Box<dyn Future<Output = Result<DockerEngine, EngineError>> + Send + 'static>>,
}

impl Connecting {
    /// Starts the runtime the build runs on; the connection waits for [`Self::finish`].
    pub fn start(ctx: &Context) -> Result<Self, RunError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(RunError::Runtime)?;
        Ok(Self {
            runtime,
            connect: Box::pin(ctx.connect_daemon()),
        })
    }

    /// Connects: the runtime and the engine, or why the daemon is unreachable.
    fn finish(self) -> Result<(tokio::runtime::Runtime, DockerEngine), RunError> {
        let engine = self.runtime.spawn(self.connect);
        let joined = self.runtime.block_on(engine);
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
    let ci_context = &ctx.settings.ci;
    let cache = &ctx.settings.cache;
    let hooks = Hooks::resolve(ctx.file.hooks.as_ref(), &git.root().join(&workspace.root));
    let credentials = if options.push {
        Some(Credentials::load(&ctx.env)?)
    } else {
        None
    };
    // The database and ignore files are read before the build: a bad ignore file stops the
    // run before anything is built.
    let vulnerability_data = if ctx.settings.pipeline.scan {
        Some(Loaded::load(
            &ctx.settings.scan,
            None,
            std::time::SystemTime::now(),
        )?)
    } else {
        None
    };
    // The vulnerability database and the scan cache may sit in the project folder (GitLab
    // caches only paths there); like the store, they are never part of a build context.
    let mut options = options.clone();
    options.keep_out.push(ctx.settings.scan.vulndb_dir.clone());
    let scan_cache = scan_cache(ctx);
    options
        .keep_out
        .extend(scan_cache.as_ref().map(|cache| cache.root().to_path_buf()));
    let options = &options;
    let run = Run::new(RunInputs {
        options,
        settings,
        cache,
        git,
        plan,
        workspace,
        ci: ci_context,
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
        settings: cache,
        runtime: &runtime,
        engine: &engine,
        say: &say,
        root_checked: Default::default(),
    };
    let console = Console::new(style(ctx, settings));
    let progress = |progress| console.show(progress);
    let observers = Observers {
        progress: &progress,
        say: &say,
    };
    let store: &dyn RunCache = &store;
    let mut report = run.execute(&runtime, &engine, engine.info(), Some(store), &observers)?;
    if let Some(scan_cache) = &scan_cache {
        record_origins(&report, workspace, scan_cache);
    }
    if let Some(loaded) = &vulnerability_data
        && !report.run.interrupted
    {
        say("scanning the built and reused images");
        for line in &loaded.warnings {
            say(&format!("warning: {line}"));
        }
        let settings = &ctx.settings.scan;
        let policy = settings.policy();
        let check = RunCheck {
            check: loaded.check(settings, &policy, chrono::Utc::now().date_naive()),
            scanner: settings.scanner.as_str(),
        };
        let layer_store = ctx
            .settings
            .cache
            .enabled
            .then(|| ctx.dir.join(&ctx.settings.cache.dir));
        let stores = Stores {
            scan_cache: scan_cache.as_ref(),
            layer_store: layer_store.as_deref(),
        };
        let mut scan = runtime.block_on(scan_images(&engine, &report, stores, &check));
        for line in scan.warnings.iter().chain(&scan.errors) {
            say(&format!("warning: {line}"));
        }
        // The database's own warnings (none, or old) belong in every report too.
        scan.warnings.splice(0..0, loaded.warnings.iter().cloned());
        report.scan = Some(scan);
        if let Some(scan_cache) = &scan_cache {
            let retention = std::time::Duration::from_secs(cache.retention_days * 86_400);
            scan_cache.prune(retention, std::time::SystemTime::now());
        }
    }
    Ok(report)
}

/// The scan cache: the folder `scan_cache_dir` names, else inside the layer store when caching
/// is on, else the user's.
fn scan_cache(ctx: &Context) -> Option<ScanCache> {
    let cache = &ctx.settings.cache;
    let store = cache.enabled.then(|| ctx.dir.join(&cache.dir));
    let named = ctx.settings.scan.scan_cache_dir.as_deref();
    ScanCache::chosen(named, store.as_deref(), &ctx.env)
}

/// What a finished run came to, for its exit code (see [`exit::Ending`]): the build's ending,
/// and the vulnerability gate's when the run matched its images (a finding over the gate, or
/// an image left unscanned while a gate is on).
pub fn ending(report: &RunReport) -> exit::Ending {
    let build = if report.run.interrupted {
        exit::Ending::Interrupted
    } else if report.has_failures() {
        exit::Ending::BuildFailed
    } else {
        exit::Ending::Success
    };
    let scan = report.scan.as_ref().and_then(|scan| {
        let policy = scan.policy.as_ref()?;
        let mut endings = policy::endings(&scan.images, policy);
        if !scan.errors.is_empty() && policy.gate_on() {
            endings.push(exit::Ending::EnvironmentUnusable);
        }
        endings.into_iter().max()
    });
    build.max(scan.unwrap_or(exit::Ending::Success))
}

fn style(ctx: &Context, settings: &Settings) -> Style {
    if ctx.quiet {
        Style::Silent
    } else if ctx.settings.github_actions() {
        Style::GitHub
    } else if ctx.settings.in_ci
        || settings.level.profile().plain_console
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
