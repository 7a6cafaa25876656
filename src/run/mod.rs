//! The build run, what `buildopt build` and `buildopt ci` do: restore the cache, plan, turn the
//! plan into jobs, build them on an [`Engine`], save the cache, and return the [`RunReport`].
//!
//! [`Run::execute`] is the one entry point, generic over the engine: the Docker daemon and the
//! fake engine of the tests run the same code. [`daemon::run_on_daemon`] connects it to the
//! daemon, the cache store and the console. Files: `plan.rs` gathers what to plan from git and
//! the CI, `jobs.rs` turns planned images into scheduler jobs, `outcome.rs` turns their outcomes
//! into the report's images, `cache.rs` decides what the store restores and saves.
//!
//! May import every library module (`settings`, `ci`, `git`, `workspace`, `plan`, `scheduler`,
//! `engine`, `cache`, `report::model`, `context`, `console`); never `commands`.

pub mod cache;
pub mod daemon;
mod jobs;
mod outcome;
pub mod plan;
pub mod scan;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio::runtime::Runtime;

use crate::ci::{CiContext, CiError};
use crate::engine::{Builder, DaemonInfo, Engine, EngineError, capabilities};
use crate::git::{Git, GitError};
use crate::notify::secret::Redactor;
use crate::plan::{Plan, PlannedImage, Reason, ReasonKind};
use crate::report::model::{
    CacheReport, ContextSize, ImageReport, RUN_REPORT_VERSION, RunInfo, RunReport,
};
use crate::scheduler::credentials::{Credentials, CredentialsError};
use crate::scheduler::tags::{self, TagError, TagVars};
use crate::scheduler::{self, Hooks, Options, Progress};
use crate::settings::cache::{CacheSettings, RestoreScope};
use crate::settings::pipeline::PipelineSettings;
use crate::settings::{ConfigError, Settings};
use crate::workspace::Workspace;
use crate::workspace::context::ContextError;
pub use cache::RunCache;
use jobs::{JobSettings, Labels};

/// Why a run could not run (a failed build is not an error: it is in the report).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
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
    /// A cache setting's value is invalid.
    #[error(transparent)]
    Setting(#[from] ConfigError),
    /// The CI's facts could not be read.
    #[error(transparent)]
    Ci(#[from] CiError),
    /// git failed (the branch for the tag templates).
    #[error(transparent)]
    Git(#[from] GitError),
    /// The vulnerability check's database or ignore file cannot be read.
    #[error(transparent)]
    Scan(#[from] crate::scan::ScanError),
}

impl From<scheduler::BuildError> for RunError {
    fn from(error: scheduler::BuildError) -> Self {
        match error {
            scheduler::BuildError::Daemon(engine) => Self::Engine(engine),
        }
    }
}

/// Why the engine cannot build one image index, if it cannot: then an image for several
/// platforms is built once per platform and only a registry gets it whole, as a manifest list.
fn one_platform_per_image(info: &DaemonInfo, builder: Builder) -> Option<String> {
    match builder {
        Builder::Classic => Some("the classic builder builds one platform at a time".to_owned()),
        Builder::BuildKit => capabilities::multi_platform_unavailable(info),
    }
}

/// Refuses, before anything is built, a run with an image for several platforms that the engine
/// cannot build as one image index and that is not pushed to a registry (`pushed` says whether
/// an image is): one line naming the image and the way.
fn check_platforms(
    order: &[&PlannedImage],
    info: &DaemonInfo,
    builder: Builder,
    pushed: impl Fn(&str) -> bool,
) -> Result<(), RunError> {
    let Some(reason) = one_platform_per_image(info, builder) else {
        return Ok(());
    };
    let unpushed = order
        .iter()
        .find(|i| i.platforms.len() > 1 && !pushed(&i.name));
    match unpushed {
        None => Ok(()),
        Some(image) => Err(RunError::EngineCannot(format!(
            "image '{}' is for {} platforms ({}), but {reason}; or push it (--push to a \
             registry), which gets a manifest list of one build per platform",
            image.name,
            image.platforms.len(),
            image.platforms.join(", ")
        ))),
    }
}

/// What the command line asks of a run, beyond the settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Build only these affected images (and what they build from).
    pub only: Vec<String>,
    /// Tag templates every image also gets.
    pub tags: Vec<String>,
    /// Push every tag that names a registry.
    pub push: bool,
    pub keep_going: bool,
    /// Clean the daemon up after the run (when the settings say so too).
    pub cleanup: bool,
    /// The builder asked for; `None` lets the engine decide.
    pub builder: Option<Builder>,
    /// Files and folders (such as report files) never sent in a build context.
    pub keep_out: Vec<PathBuf>,
}

impl RunOptions {
    /// A run of the images `only` names (every affected one when empty) with the pipeline's
    /// tags, push and keep-going, cleaning up after itself.
    pub fn of_pipeline(
        pipeline: &PipelineSettings,
        only: &[String],
        builder: Option<Builder>,
    ) -> Self {
        Self {
            only: only.to_vec(),
            tags: pipeline.tags.clone(),
            push: pipeline.push,
            keep_going: pipeline.keep_going,
            cleanup: true,
            builder,
            keep_out: Vec::new(),
        }
    }
}

/// Everything a run reads, resolved before it starts.
pub struct RunInputs<'a> {
    pub options: &'a RunOptions,
    pub settings: &'a Settings,
    pub cache: &'a CacheSettings,
    pub git: &'a Git,
    pub plan: &'a Plan,
    /// The workspace at the head commit, as planned.
    pub workspace: &'a Workspace,
    pub ci: &'a CiContext,
    pub hooks: &'a Hooks,
    pub redactor: &'a Redactor,
    /// Set with `--push`.
    pub credentials: Option<&'a Credentials>,
    /// The repository's web address, for the `source` label.
    pub source_url: Option<String>,
}

/// What a run reports while it goes: scheduler progress and notes or warnings for stderr.
pub struct Observers<'a> {
    pub progress: &'a (dyn Fn(Progress) + Sync),
    pub say: &'a dyn Fn(&str),
}

/// What to make available: each name with why (the plan's reasons, or the child that needs it).
type Selection = BTreeMap<String, Vec<Reason>>;

/// A run whose selection and tag variables are known: what [`Run::execute`] builds.
pub struct Run<'a> {
    inputs: RunInputs<'a>,
    selection: Selection,
    vars: TagVars,
    /// Every tag of each selected image, by image name.
    tags: BTreeMap<String, Vec<String>>,
}

impl<'a> Run<'a> {
    /// Selects the images to make available and resolves the tag variables; fails on an unknown
    /// `--only` name before anything talks to an engine.
    pub fn new(inputs: RunInputs<'a>) -> Result<Self, RunError> {
        let selection = select(inputs.plan, &inputs.options.only)?;
        let vars = tag_vars(inputs.ci, inputs.git, inputs.plan)?;
        let tags = image_tags(inputs.workspace, &selection, &inputs.options.tags, &vars)?;
        Ok(Self {
            inputs,
            selection,
            vars,
            tags,
        })
    }

    /// Restores the cache (when there is one and the settings enable it), builds the selection
    /// on `engine`, cleans up, saves the cache, and returns the report. Runs on `runtime`.
    pub fn execute<E: Engine>(
        &self,
        runtime: &Runtime,
        engine: &E,
        info: &DaemonInfo,
        cache: Option<&dyn RunCache>,
        observers: &Observers<'_>,
    ) -> Result<RunReport, RunError> {
        // Whatever the engine cannot do ends the run before the cache is touched.
        let decision = capabilities::choose_builder(
            info,
            self.inputs.options.builder,
            self.inputs.cache.enabled,
        )
        .map_err(RunError::EngineCannot)?;
        check_platforms(&self.order(), info, decision.builder, |name| {
            self.pushed(name)
        })?;
        let cache = cache.filter(|_| self.inputs.cache.enabled);
        let restore = cache.map(|cache| cache.restore(&self.repositories()));
        // Canonical, to compare with context folders; the store exists once the restore opened
        // it.
        let mut excluded: Vec<PathBuf> = cache
            .and_then(|cache| cache.store_dir().canonicalize().ok())
            .into_iter()
            .collect();
        let keep_out = &self.inputs.options.keep_out;
        excluded.extend(keep_out.iter().map(|path| canonical_or_lexical(path)));
        let mut report =
            runtime.block_on(self.build(engine, info, &decision, &excluded, observers))?;
        report.run.ci = self.inputs.ci.run_identity();
        if let (Some(cache), Some(restore)) = (cache, restore) {
            let export = (!report.run.interrupted).then(|| cache.export(&report));
            report.cache = Some(CacheReport {
                store: cache.store_dir().display().to_string(),
                restore,
                export,
            });
        }
        Ok(report)
    }

    /// What the cache restores: the repositories of the selected images, or of every image of
    /// the workspace when the settings ask for all.
    fn repositories(&self) -> BTreeSet<String> {
        let all = self.inputs.cache.restore == RestoreScope::All;
        self.inputs
            .workspace
            .images
            .iter()
            .filter(|i| all || self.selection.contains_key(&i.def.name))
            .map(|i| i.def.repository.clone())
            .collect()
    }

    /// Whether the run pushes `image` to a registry (`--push`, and a tag naming one).
    fn pushed(&self, image: &str) -> bool {
        let mut tags = self.tags.get(image).into_iter().flatten();
        self.inputs.options.push
            && tags.any(|tag| crate::scheduler::remote::registry_host(tag).is_some())
    }

    /// The selected images, in plan order.
    fn order(&self) -> Vec<&PlannedImage> {
        self.inputs
            .plan
            .images
            .iter()
            .filter(|i| self.selection.contains_key(&i.name))
            .collect()
    }

    async fn build<E: Engine>(
        &self,
        engine: &E,
        info: &DaemonInfo,
        decision: &capabilities::BuilderDecision,
        excluded: &[PathBuf],
        observers: &Observers<'_>,
    ) -> Result<RunReport, RunError> {
        let RunInputs {
            options,
            settings,
            cache,
            plan,
            workspace,
            ..
        } = &self.inputs;
        let started = chrono::Utc::now();
        let clock = Instant::now();
        for note in &decision.notes {
            (observers.say)(&format!("note: {note}"));
        }
        let builder = decision.builder;
        let order = self.order();
        let labels = Labels {
            revision: self.vars.sha.clone().unwrap_or_default(),
            source: self.inputs.source_url.clone(),
            created: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let previous = jobs::previous_images(engine, &order, workspace, cache.stages).await?;
        let cache_from = if cache.enabled && decision.cache_sources {
            previous.present.clone()
        } else {
            BTreeSet::new()
        };
        let own_platform = format!("{}/{}", info.os, info.arch);
        let job_settings = JobSettings {
            builder,
            force: settings.force,
            tags: &self.tags,
            labels: &labels,
            credentials: self.inputs.credentials,
            cache_from: &cache_from,
            inline_cache: cache.enabled && builder == Builder::BuildKit,
            stages: cache.stages,
            excluded,
            one_platform_per_image: one_platform_per_image(info, builder).is_some(),
            own_platform: &own_platform,
        };
        let (jobs, contexts) = self.jobs(&order, &job_settings)?;
        let scheduler_options = Options {
            jobs: settings.jobs,
            keep_going: options.keep_going,
            hooks: self.inputs.hooks,
            redactor: self.inputs.redactor,
            build_timeout: settings.build_timeout,
        };
        let cancel = async {
            if tokio::signal::ctrl_c().await.is_err() {
                // Without a signal handler the run simply cannot be cancelled.
                std::future::pending::<()>().await;
            }
        };
        let outcome =
            scheduler::run(engine, &jobs, scheduler_options, observers.progress, cancel).await?;
        let cleanup = if settings.auto_cleanup && options.cleanup && !outcome.interrupted {
            Some(jobs::cleanup(engine, self.inputs.cache.retention_days).await?)
        } else {
            None
        };
        let mut images: Vec<ImageReport> = order
            .iter()
            .zip(&jobs)
            .zip(outcome.jobs)
            .zip(contexts)
            .map(|(((planned, job), outcome), context)| {
                let reasons = &self.selection[&planned.name];
                let mut image = outcome::image_report(planned, reasons, job, outcome, context);
                image.previous_size = previous.sizes.get(&planned.name).copied();
                image
            })
            .collect();
        images.extend(
            plan.images
                .iter()
                .filter(|i| !self.selection.contains_key(&i.name))
                .map(|i| outcome::not_selected(i, &options.only)),
        );
        Ok(RunReport {
            version: RUN_REPORT_VERSION,
            run: RunInfo {
                base: plan.range.base.clone(),
                head: plan.range.head.clone(),
                range_reason: plan.range.reason.clone(),
                level: settings.level,
                builder,
                jobs: settings.jobs,
                started: labels.created.clone(),
                duration_ms: clock.elapsed().as_millis() as u64,
                interrupted: outcome.interrupted,
                ci: None,
                engine: Some(outcome::engine_report(info, decision.notes.clone())),
            },
            images,
            cleanup,
            cache: None,
            scan: None,
        })
    }

    /// One job per image in `order`, with the size of its context.
    fn jobs(
        &self,
        order: &[&PlannedImage],
        settings: &JobSettings<'_>,
    ) -> Result<(Vec<scheduler::Job>, Vec<ContextSize>), RunError> {
        let workspace = self.inputs.workspace;
        let mut jobs = Vec::new();
        let mut contexts = Vec::new();
        for planned in order {
            let image = workspace
                .images
                .iter()
                .find(|i| i.def.name == planned.name)
                .expect("every planned image is in the workspace it was planned from");
            let root = self.inputs.git.root();
            let (job, size) = jobs::make_job(root, image, planned, order, workspace, settings)?;
            jobs.push(job);
            contexts.push(size);
        }
        Ok((jobs, contexts))
    }
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

/// The affected images (only those named by `--only`, when given) plus every internal image they
/// build from, transitively.
fn select(plan: &Plan, only: &[String]) -> Result<Selection, RunError> {
    let by_name: BTreeMap<&str, &PlannedImage> =
        plan.images.iter().map(|i| (i.name.as_str(), i)).collect();
    for name in only {
        if !by_name.contains_key(name.as_str()) {
            return Err(RunError::UnknownImage {
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

/// Every tag of every selected image, by image name, made before an engine is reached: a
/// template this run cannot fill fails the run (exit 2) before anything builds.
fn image_tags(
    workspace: &Workspace,
    selection: &Selection,
    extra: &[String],
    vars: &TagVars,
) -> Result<BTreeMap<String, Vec<String>>, RunError> {
    workspace
        .images
        .iter()
        .filter(|i| selection.contains_key(&i.def.name))
        .map(|image| {
            let def = &image.def;
            let tags = tags::image_tags(&def.name, &def.repository, &def.tags, extra, vars)?;
            Ok((def.name.clone(), tags))
        })
        .collect()
}

fn tag_vars(ci_context: &CiContext, git: &Git, plan: &Plan) -> Result<TagVars, RunError> {
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
