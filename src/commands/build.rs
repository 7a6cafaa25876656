//! `buildopt build`: plans, turns the plan into scheduler jobs, builds on the Docker daemon,
//! cleans up, and prints the RunReport.
//!
//! The build reads contexts and Dockerfiles from the work tree; the plan (and so each inputs
//! digest) comes from the head commit. Images the plan leaves out but an affected image builds
//! from are made available too (reused when their digest exists, else built), so a child never
//! builds FROM a stale or missing parent.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{build_cache, plan::plan_with_workspace};
use crate::build::credentials::{Credentials, CredentialsError};
use crate::build::remote::{digest_tag, registry_host};
use crate::build::tags::{self, TagError, TagVars};
use crate::build::{
    self, DIGEST_LABEL, Hooks, Job, JobOutcome, Options, ParentRef, Publish, RemoteRef, StageBuild,
};
use crate::cache::store::stage_reference;
use crate::ci;
use crate::cli::{BuildArgs, BuilderChoice, Format, PlanArgs};
use crate::console::{Console, Style};
use crate::context::{Context, write_stdout};
use crate::engine::{
    BuildRequest, Builder, DockerEngine, Dockerfile, Engine, EngineError, ImageInfo, StepRecord,
    capabilities,
};
use crate::error::Error;
use crate::exit;
use crate::git::Git;
use crate::plan::{Plan, PlannedImage, Reason, ReasonKind};
use crate::report::model::{
    CacheReport, CleanupReport, ContextSize, EngineReport, ImageReport, ImageResult,
    RUN_REPORT_VERSION, RunInfo, RunReport, StageReport, StepReport,
};
use crate::report::{self, build::table};
use crate::settings::cache::{CacheFlags, CacheSettings};
use crate::settings::{Flags, Level, Settings};
use crate::workspace::context::{self as build_context, ContextError};
use crate::workspace::dockerfile::ParseError;
use crate::workspace::{Image, Workspace, repository_of};

/// Why `buildopt build` could not run.
#[derive(Debug, thiserror::Error)]
pub enum BuildCommandError {
    /// `--only` named an image the repository does not have.
    #[error("--only {name}: no such image (images: {known})")]
    UnknownImage { name: String, known: String },
    /// A tag could not be made from its template.
    #[error(transparent)]
    Tag(#[from] TagError),
    /// A Dockerfile's references could not be resolved.
    #[error("{file}:{line}: {message}")]
    Dockerfile {
        file: String,
        line: usize,
        message: String,
    },
    /// A build context could not be read.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// The daemon could not be reached or went away.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// `--push` credentials could not be read.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The engine cannot do what the run asks (the line says what and why).
    #[error("{0}")]
    EngineCannot(String),
}

impl From<build::BuildError> for BuildCommandError {
    fn from(error: build::BuildError) -> Self {
        match error {
            build::BuildError::Daemon(engine) => Self::Engine(engine),
        }
    }
}

/// Runs `build`.
pub fn run(ctx: &Context, args: &BuildArgs) -> Result<u8, Error> {
    let settings = resolve_settings(ctx, args, None)?;
    // Not for `--dry-run`, which never talks to the daemon.
    let daemon = (!args.dry_run)
        .then(|| Connecting::start(ctx))
        .transpose()?;
    let git = Git::open(&ctx.dir)?;
    let (plan, workspace) = plan_with_workspace(ctx, &settings, &git, &plan_args(args))?;
    let Some(daemon) = daemon else {
        write_stdout(&report::plan::text(&plan))?;
        return Ok(exit::SUCCESS);
    };
    let report = execute(ctx, daemon, args, &settings, &git, &plan, &workspace, &[])?;
    let rendered = match ctx.format {
        Format::Json => report::build::json(&report) + "\n",
        Format::Human => table(&report),
    };
    let github = ctx.format == Format::Human && ctx.env.is_true("GITHUB_ACTIONS");
    write_stdout(&crate::console::inert_in_github(github, rendered))?;
    Ok(exit_code(&report))
}

/// The build's settings: the command line's level, `--ci`, `--force` and `--jobs` over the
/// environment and the configuration file; `default_level` when nothing names a level.
pub fn resolve_settings(
    ctx: &Context,
    args: &BuildArgs,
    default_level: Option<Level>,
) -> Result<Settings, Error> {
    let flags = Flags {
        level: args.level.or(args.ci.then_some(Level::Ci)),
        force: args.force,
        verbose: ctx.verbose,
        jobs: args.jobs,
        default_level,
    };
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    Ok(Settings::resolve(&flags, &ctx.env, &ctx.file, cpus)?)
}

/// The plan request a build makes.
pub fn plan_args(args: &BuildArgs) -> PlanArgs {
    PlanArgs {
        base: args.base.clone(),
        head: args.head.clone(),
        force: args.force,
        output: None,
    }
}

/// The exit code a finished build run ends with.
pub fn exit_code(report: &RunReport) -> u8 {
    if report.run.interrupted {
        exit::INTERRUPTED
    } else if report.has_failures() {
        exit::BUILD_FAILED
    } else {
        exit::SUCCESS
    }
}

/// A daemon connection under way. Started before the plan, its handshake (a `/version` call the
/// daemon takes several milliseconds to answer) runs while git works.
pub struct Connecting {
    runtime: tokio::runtime::Runtime,
    engine: tokio::task::JoinHandle<Result<DockerEngine, EngineError>>,
}

impl Connecting {
    /// Starts the runtime the build runs on and the connection in it.
    pub fn start(ctx: &Context) -> Result<Self, BuildCommandError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(BuildCommandError::Runtime)?;
        let engine = runtime.spawn(ctx.connect_daemon());
        Ok(Self { runtime, engine })
    }

    /// Waits for the connection: the runtime and the engine, or why the daemon is unreachable.
    fn finish(self) -> Result<(tokio::runtime::Runtime, DockerEngine), BuildCommandError> {
        let joined = self.runtime.block_on(self.engine);
        let engine =
            joined.unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))?;
        Ok((self.runtime, engine))
    }
}

/// Restores the cache, builds what the plan selects, saves the cache, and returns the report.
/// `keep_out` names files and folders (such as report files) never sent in a build context.
#[allow(clippy::too_many_arguments)]
pub fn execute(
    ctx: &Context,
    daemon: Connecting,
    args: &BuildArgs,
    settings: &Settings,
    git: &Git,
    plan: &Plan,
    workspace: &Workspace,
    keep_out: &[PathBuf],
) -> Result<RunReport, Error> {
    let selection = select(plan, &args.only)?;
    let ci_context = ci::detect(&ctx.env)?;
    let vars = tag_vars(&ci_context, git, plan)?;
    let cache = CacheSettings::resolve(&CacheFlags::default(), &ctx.env, settings.level, &ctx.dir)?;
    // One connection for the restore, the build and the export.
    let (runtime, engine) = daemon.finish()?;
    let daemon = (&runtime, &engine);
    let restore = cache.enabled.then(|| {
        let repositories = workspace
            .images
            .iter()
            .filter(|i| selection.contains_key(&i.def.name))
            .map(|i| i.def.repository.clone())
            .collect();
        build_cache::restore(ctx, &cache, daemon, &repositories)
    });
    // Canonical, to compare with context folders; the store exists once the restore opened it.
    let mut excluded: Vec<PathBuf> = restore
        .as_ref()
        .and_then(|_| cache.dir.canonicalize().ok())
        .into_iter()
        .collect();
    excluded.extend(keep_out.iter().map(|path| canonical_or_lexical(path)));
    let mut report = runtime.block_on(build_all(
        ctx, &engine, args, settings, git, plan, workspace, &selection, &vars, &cache, &excluded,
    ))?;
    report.run.ci = ci_context.run_identity();
    if let Some(restore) = restore {
        let export =
            (!report.run.interrupted).then(|| build_cache::export(ctx, &cache, daemon, &report));
        report.cache = Some(CacheReport {
            store: cache.dir.display().to_string(),
            restore,
            export,
        });
    }
    Ok(report)
}

/// A path made absolute and canonical where it exists (a report file may not exist yet: then its
/// folder is canonicalised and the name appended).
fn canonical_or_lexical(path: &Path) -> PathBuf {
    if let Ok(path) = path.canonicalize() {
        return path;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            parent
                .canonicalize()
                .map_or_else(|_| path.to_path_buf(), |dir| dir.join(name))
        }
        _ => path.to_path_buf(),
    }
}

/// What to make available: each name with why (the plan's reasons, or the child that needs it).
type Selection = BTreeMap<String, Vec<Reason>>;

/// The affected images (only those named by `--only`, when given) plus every internal image they
/// build from, transitively.
fn select(plan: &Plan, only: &[String]) -> Result<Selection, BuildCommandError> {
    let by_name: BTreeMap<&str, &PlannedImage> =
        plan.images.iter().map(|i| (i.name.as_str(), i)).collect();
    for name in only {
        if !by_name.contains_key(name.as_str()) {
            return Err(BuildCommandError::UnknownImage {
                name: name.clone(),
                known: by_name.keys().copied().collect::<Vec<_>>().join(", "),
            });
        }
    }
    let mut wanted: Vec<&PlannedImage> = plan
        .affected()
        .filter(|i| only.is_empty() || only.contains(&i.name))
        .collect();
    let mut selection: Selection = wanted
        .iter()
        .map(|i| (i.name.clone(), i.reasons.clone()))
        .collect();
    while let Some(image) = wanted.pop() {
        for parent in &image.depends_on {
            if selection.contains_key(parent) {
                continue;
            }
            let reason = Reason {
                kind: ReasonKind::Parent,
                detail: format!("needed by '{}'", image.name),
                files: Vec::new(),
                file_count: 0,
            };
            selection.insert(parent.clone(), vec![reason]);
            wanted.extend(by_name.get(parent.as_str()));
        }
    }
    Ok(selection)
}

fn tag_vars(ci_context: &ci::CiContext, git: &Git, plan: &Plan) -> Result<TagVars, Error> {
    let sha = ci_context
        .sha()
        .map_or_else(|| plan.range.head.clone(), str::to_string);
    let branch = match &ci_context.branch {
        Some(branch) => Some(branch.clone()),
        None => git.current_branch()?,
    };
    Ok(TagVars {
        short_sha: Some(sha.get(..7).unwrap_or(&sha).to_string()),
        sha: Some(sha),
        branch,
        tag: ci_context.tag.clone(),
    })
}

#[allow(clippy::too_many_arguments)]
async fn build_all(
    ctx: &Context,
    engine: &DockerEngine,
    args: &BuildArgs,
    settings: &Settings,
    git: &Git,
    plan: &Plan,
    workspace: &Workspace,
    selection: &Selection,
    vars: &TagVars,
    cache: &CacheSettings,
    excluded: &[PathBuf],
) -> Result<RunReport, BuildCommandError> {
    let started = chrono::Utc::now();
    let clock = Instant::now();
    let requested = args.builder.map(|choice| match choice {
        BuilderChoice::Buildkit => Builder::BuildKit,
        BuilderChoice::Classic => Builder::Classic,
    });
    let decision = capabilities::choose_builder(engine.info(), requested, cache.enabled)
        .map_err(BuildCommandError::EngineCannot)?;
    for note in &decision.notes {
        ctx.info(&format!("note: {note}"));
    }
    let builder = decision.builder;
    let order: Vec<&PlannedImage> = plan
        .images
        .iter()
        .filter(|i| selection.contains_key(&i.name))
        .collect();
    let labels = Labels {
        revision: vars.sha.clone().unwrap_or_default(),
        source: repository_url(ctx),
        created: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let credentials = if args.push {
        Some(Credentials::load(&ctx.env)?)
    } else {
        None
    };
    let previous = previous_images(engine, &order, workspace, cache.stages).await?;
    let cache_from = if cache.enabled && decision.cache_sources {
        previous.present.clone()
    } else {
        BTreeSet::new()
    };
    let mut jobs = Vec::new();
    let mut contexts = Vec::new();
    for planned in &order {
        let image = workspace
            .images
            .iter()
            .find(|i| i.def.name == planned.name)
            .expect("every planned image is in the workspace it was planned from");
        let (job, size) = make_job(
            git.root(),
            image,
            planned,
            &order,
            workspace,
            &JobSettings {
                builder,
                force: settings.force,
                extra_tags: &args.tag,
                vars,
                labels: &labels,
                credentials: credentials.as_ref(),
                cache_from: &cache_from,
                inline_cache: cache.enabled && builder == Builder::BuildKit,
                stages: cache.stages,
                excluded,
            },
        )?;
        jobs.push(job);
        contexts.push(size);
    }
    let console = Console::new(style(ctx, settings));
    let observe = |progress| console.show(progress);
    let hooks = Hooks::resolve(ctx.file.hooks.as_ref(), &git.root().join(&workspace.root));
    let options = Options {
        jobs: settings.jobs,
        keep_going: args.keep_going,
        hooks: &hooks,
        redactor: &ctx.redactor,
        build_timeout: settings.build_timeout,
    };
    let cancel = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // Without a signal handler the run simply cannot be cancelled.
            std::future::pending::<()>().await;
        }
    };
    let outcome = build::run(engine, &jobs, options, &observe, cancel).await?;
    let cleanup = if settings.auto_cleanup && !args.no_cleanup && !outcome.interrupted {
        Some(cleanup(engine, settings.cache_retention_days).await?)
    } else {
        None
    };
    let mut images: Vec<ImageReport> = order
        .iter()
        .zip(&jobs)
        .zip(outcome.jobs)
        .zip(contexts)
        .map(|(((planned, job), outcome), context)| {
            let mut image = image_report(planned, &selection[&planned.name], job, outcome, context);
            image.previous_size = previous.sizes.get(&planned.name).copied();
            image
        })
        .collect();
    images.extend(
        plan.images
            .iter()
            .filter(|i| !selection.contains_key(&i.name))
            .map(|i| not_selected(i, &args.only)),
    );
    Ok(RunReport {
        version: RUN_REPORT_VERSION,
        run: RunInfo {
            base: plan.range.base.clone(),
            head: plan.range.head.clone(),
            range_reason: plan.range.reason.clone(),
            level: settings.level.to_string(),
            builder: match builder {
                Builder::BuildKit => "buildkit".into(),
                Builder::Classic => "classic".into(),
            },
            jobs: settings.jobs,
            started: labels.created.clone(),
            duration_ms: clock.elapsed().as_millis() as u64,
            interrupted: outcome.interrupted,
            ci: None,
            engine: Some(engine_report(engine.info(), decision.notes)),
        },
        images,
        cleanup,
        cache: None,
    })
}

fn engine_report(info: &crate::engine::DaemonInfo, notes: Vec<String>) -> EngineReport {
    EngineReport {
        version: info.server_version.clone(),
        api_version: info.api_version.clone(),
        image_store: info.image_store,
        storage_driver: info.storage_driver.clone(),
        notes,
    }
}

/// What the daemon holds before the build (restored from the store or left by an earlier build)
/// for the images to build.
#[derive(Debug, Default)]
struct Previous {
    /// `<repository>:latest`, and with `stages` each `<repository>:stage-<name>`, that exist:
    /// each may serve as a cache source of its repository.
    present: BTreeSet<String>,
    /// The size of each image's `<repository>:latest`, by image name: its size before this run.
    sizes: BTreeMap<String, u64>,
}

async fn previous_images(
    engine: &DockerEngine,
    order: &[&PlannedImage],
    workspace: &Workspace,
    stages: bool,
) -> Result<Previous, BuildCommandError> {
    // (image name when the reference is its `latest`, reference), asked of the daemon at once.
    let mut wanted: Vec<(Option<String>, String)> = Vec::new();
    for image in workspace
        .images
        .iter()
        .filter(|i| order.iter().any(|p| p.name == i.def.name))
    {
        wanted.push((
            Some(image.def.name.clone()),
            latest_of(&image.def.repository),
        ));
        if stages {
            let stage_refs = intermediate_stages(image)?;
            wanted.extend(
                stage_refs
                    .into_iter()
                    .map(|(_, reference)| (None, reference)),
            );
        }
    }
    let infos = futures_util::future::try_join_all(
        wanted
            .iter()
            .map(|(_, reference)| engine.inspect(reference)),
    )
    .await?;
    let mut previous = Previous::default();
    for ((name, reference), info) in wanted.into_iter().zip(infos) {
        let Some(info) = info else { continue };
        if let Some(name) = name {
            previous.sizes.insert(name, info.size);
        }
        previous.present.insert(reference);
    }
    Ok(previous)
}

/// The intermediate stages of the image's Dockerfile that can be built on their own, each with
/// the reference its image gets (`<repository>:stage-<name>`).
fn intermediate_stages(image: &Image) -> Result<Vec<(String, String)>, BuildCommandError> {
    let stages = image
        .dockerfile
        .intermediate_stages(&image.def.args, image.def.target.as_deref())
        .map_err(|e| dockerfile_error(image, e))?;
    Ok(stages
        .into_iter()
        .filter_map(|stage| {
            let reference = stage_reference(&image.def.repository, &stage)?;
            Some((stage, reference))
        })
        .collect())
}

fn dockerfile_error(image: &Image, error: ParseError) -> BuildCommandError {
    BuildCommandError::Dockerfile {
        file: image.def.dockerfile.clone(),
        line: error.line,
        message: error.message,
    }
}

fn latest_of(repository: &str) -> String {
    format!("{repository}:latest")
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

struct Labels {
    revision: String,
    source: Option<String>,
    created: String,
}

struct JobSettings<'a> {
    builder: Builder,
    force: bool,
    extra_tags: &'a [String],
    vars: &'a TagVars,
    labels: &'a Labels,
    /// Set with `--push`.
    credentials: Option<&'a Credentials>,
    /// References that exist in the daemon and may serve as cache sources (see `cache_sources`).
    cache_from: &'a BTreeSet<String>,
    /// Build with `BUILDKIT_INLINE_CACHE=1`, so the image carries its cache metadata.
    inline_cache: bool,
    /// Build each intermediate stage as its own image first (level maximum).
    stages: bool,
    /// Canonical paths never sent as part of a context: the cache store, report files.
    excluded: &'a [PathBuf],
}

/// `path` relative to `dir`, `/`-separated, when it lies strictly inside it.
fn path_inside(dir: &Path, path: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let relative = path.strip_prefix(dir).ok()?;
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn make_job(
    repo_root: &Path,
    image: &Image,
    planned: &PlannedImage,
    order: &[&PlannedImage],
    workspace: &Workspace,
    settings: &JobSettings<'_>,
) -> Result<(Job, ContextSize), BuildCommandError> {
    let def = &image.def;
    let context_dir = repo_root.join(&def.context);
    let skip: Vec<String> = settings
        .excluded
        .iter()
        .filter_map(|path| path_inside(&context_dir, path))
        .collect();
    let files = build_context::collect_skipping(&context_dir, &image.ignore, &skip)?;
    let size = ContextSize {
        bytes: files.bytes,
        files: files.file_count,
    };
    let dockerfile_path = repo_root.join(&def.dockerfile);
    let contents = std::fs::read(&dockerfile_path).map_err(|source| ContextError::Io {
        path: dockerfile_path.display().to_string(),
        source,
    })?;
    let mut request = BuildRequest::new(files.files, Dockerfile::Contents(contents));
    request.target = def.target.clone();
    request.build_args = def.args.clone();
    request.builder = settings.builder;
    request.no_cache = settings.force;
    let stage_refs = if settings.stages {
        intermediate_stages(image)?
    } else {
        Vec::new()
    };
    add_cache_sources(&mut request, &def.repository, &stage_refs, settings);
    request.labels = labels(settings.labels, &planned.inputs_digest);
    let stages = stage_builds(&mut request, stage_refs);
    request.tags = tags::image_tags(
        &def.name,
        &def.repository,
        &def.tags,
        settings.extra_tags,
        settings.vars,
    )?;
    let publish = settings.credentials.and_then(|credentials| {
        publish(
            &def.repository,
            &mut request.tags,
            &planned.inputs_digest,
            credentials,
        )
    });
    let job = Job {
        name: def.name.clone(),
        request,
        parents: parent_refs(image, planned, order, workspace)?,
        inputs_digest: planned.inputs_digest.clone(),
        digest_ref: format!("{}:{}", def.repository, digest_tag(&planned.inputs_digest)),
        reuse: !settings.force,
        publish,
        stages,
    };
    Ok((job, size))
}

/// The previous image of the repository, and of each of its intermediate stages, as cache
/// sources: with BuildKit through their inline cache metadata, with the classic builder through
/// their parent chain (which `docker load` does not restore, so without it a loaded image would
/// not serve as cache).
fn add_cache_sources(
    request: &mut BuildRequest,
    repository: &str,
    stage_refs: &[(String, String)],
    settings: &JobSettings<'_>,
) {
    let previous = std::iter::once(latest_of(repository))
        .chain(stage_refs.iter().map(|(_, reference)| reference.clone()));
    request
        .cache_from
        .extend(previous.filter(|r| settings.cache_from.contains(r)));
    if settings.inline_cache {
        request
            .build_args
            .insert(INLINE_CACHE_ARG.into(), "1".into());
    }
}

/// One build per intermediate stage, copied from the image's `request` (same context, arguments,
/// labels and cache sources) with the stage as target and its own reference as only tag. The
/// image's build then also takes every stage image as cache source: built just before, they
/// hold the steps the final image's cache metadata (BuildKit's `mode=min`) or parent chain
/// leaves out.
fn stage_builds(request: &mut BuildRequest, stage_refs: Vec<(String, String)>) -> Vec<StageBuild> {
    let builds: Vec<StageBuild> = stage_refs
        .into_iter()
        .map(|(stage, reference)| {
            let mut build = request.clone();
            build.target = Some(stage.clone());
            build.tags = vec![reference];
            StageBuild {
                stage,
                request: build,
            }
        })
        .collect();
    for build in &builds {
        if !request.cache_from.contains(&build.request.tags[0]) {
            request.cache_from.push(build.request.tags[0].clone());
        }
    }
    builds
}

/// The BuildKit build argument that writes cache metadata into the image config.
const INLINE_CACHE_ARG: &str = "BUILDKIT_INLINE_CACHE";

/// What `--push` does for one image: when its repository names a registry, it also gets the
/// digest tag (so a later run finds it there); every tag with a registry host is pushed.
/// `None` when no tag goes to a registry.
fn publish(
    repository: &str,
    tags: &mut Vec<String>,
    inputs_digest: &str,
    credentials: &Credentials,
) -> Option<Publish> {
    let lookup = registry_host(repository).map(|server| {
        let reference = format!("{repository}:{}", digest_tag(inputs_digest));
        tags.push(reference.clone());
        RemoteRef {
            reference,
            auth: credentials.for_server(server),
        }
    });
    let push: Vec<RemoteRef> = tags
        .iter()
        .filter_map(|tag| {
            registry_host(tag).map(|server| RemoteRef {
                reference: tag.clone(),
                auth: credentials.for_server(server),
            })
        })
        .collect();
    (!push.is_empty()).then_some(Publish { lookup, push })
}

fn labels(labels: &Labels, digest: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::from([
        (
            "org.opencontainers.image.revision".to_string(),
            labels.revision.clone(),
        ),
        (
            "org.opencontainers.image.created".to_string(),
            labels.created.clone(),
        ),
        (DIGEST_LABEL.to_string(), digest.to_string()),
    ]);
    if let Some(source) = &labels.source {
        out.insert("org.opencontainers.image.source".into(), source.clone());
    }
    out
}

/// Each internal parent (as a job index) with the exact references the Dockerfile uses for it.
fn parent_refs(
    image: &Image,
    planned: &PlannedImage,
    order: &[&PlannedImage],
    workspace: &Workspace,
) -> Result<Vec<ParentRef>, BuildCommandError> {
    let refs = image
        .dockerfile
        .external_refs(&image.def.args, image.def.target.as_deref())
        .map_err(|e| dockerfile_error(image, e))?;
    let mut parents = Vec::new();
    for parent in &planned.depends_on {
        let Some(job) = order.iter().position(|p| &p.name == parent) else {
            continue;
        };
        let Some(repository) = workspace
            .images
            .iter()
            .find(|i| &i.def.name == parent)
            .map(|i| i.def.repository.as_str())
        else {
            continue;
        };
        let references: BTreeSet<String> = refs
            .iter()
            .filter(|r| !r.reference.contains('@') && repository_of(&r.reference) == repository)
            .map(|r| r.reference.clone())
            .collect();
        parents.push(ParentRef {
            job,
            references: references.into_iter().collect(),
        });
    }
    Ok(parents)
}

async fn cleanup(engine: &DockerEngine, retention_days: u64) -> Result<CleanupReport, EngineError> {
    let dangling = engine.prune_dangling().await?;
    let cache = engine
        .prune_build_cache(Duration::from_secs(retention_days * 24 * 3600))
        .await?;
    Ok(CleanupReport {
        dangling_images_bytes: dangling,
        build_cache_bytes: cache,
        retention_days,
    })
}

/// The registry digest of a pushed image: the repo digest of a repository it was pushed to.
/// (The containerd image store lists repo digests for images never pushed, too.)
fn pushed_digest(job: &Job, repo_digests: &[String]) -> Option<String> {
    let publish = job.publish.as_ref()?;
    repo_digests
        .iter()
        .find(|digest| {
            let repository = digest.split_once('@').map_or("", |(r, _)| r);
            publish.push.iter().any(|target| {
                crate::image_archive::layout::repository(&target.reference) == repository
            })
        })
        .cloned()
}

fn image_report(
    planned: &PlannedImage,
    reasons: &[Reason],
    job: &Job,
    outcome: JobOutcome,
    context: ContextSize,
) -> ImageReport {
    let info: Option<ImageInfo> = outcome.image;
    let made = info.is_some();
    ImageReport {
        name: planned.name.clone(),
        repository: build::tags::split_reference(&job.request.tags[0]).0,
        result: outcome.result,
        skip_reason: outcome.skip_reason,
        reasons: reasons.to_vec(),
        inputs_digest: planned.inputs_digest.clone(),
        duration_ms: outcome.duration.as_millis() as u64,
        steps: step_reports(&outcome.steps),
        context: (outcome.result == ImageResult::Built).then_some(context),
        size: info.as_ref().map(|i| i.size),
        layers: info.as_ref().map(|i| i.layers),
        digest: info
            .as_ref()
            .and_then(|i| pushed_digest(job, &i.repo_digests)),
        image_id: info.map(|i| i.id),
        tags: if made {
            job.request.tags.clone()
        } else {
            Vec::new()
        },
        failure: outcome.failure,
        warnings: outcome.warnings,
        previous_size: None,
        stages: outcome
            .stages
            .iter()
            .zip(&job.stages)
            .map(|(built, build)| StageReport {
                name: built.stage.clone(),
                reference: build.request.tags[0].clone(),
                duration_ms: built.duration.as_millis() as u64,
                steps: step_reports(&built.steps),
            })
            .collect(),
    }
}

fn step_reports(steps: &[StepRecord]) -> Vec<StepReport> {
    steps
        .iter()
        .map(|s| StepReport {
            name: s.name.clone(),
            line: s.dockerfile_line,
            duration_ms: s.duration.as_millis() as u64,
            cached: s.cached,
        })
        .collect()
}

fn not_selected(planned: &PlannedImage, only: &[String]) -> ImageReport {
    let reason = if planned.affected && !only.is_empty() {
        "not selected by --only".to_string()
    } else {
        format!(
            "not affected: {}",
            planned
                .unaffected_because
                .as_deref()
                .unwrap_or("nothing it uses changed")
        )
    };
    ImageReport {
        skip_reason: Some(reason),
        ..ImageReport::new(
            planned.name.clone(),
            planned.name.clone(),
            ImageResult::Skipped,
            planned.inputs_digest.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_inside_a_context_is_named_relative_to_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::create_dir_all(root.join("ctx/.cache/store")).expect("mkdir");
        assert_eq!(
            path_inside(&root.join("ctx"), &root.join("ctx/.cache/store")),
            Some(".cache/store".into())
        );
        assert_eq!(path_inside(&root.join("ctx"), &root.join("ctx")), None);
        assert_eq!(
            path_inside(&root.join("ctx/.cache"), &root.join("ctx")),
            None
        );
    }
}
