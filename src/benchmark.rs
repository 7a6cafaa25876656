//! The benchmark behind `buildopt build --benchmark`: builds the current repository at every
//! level, cold and warm, and a plain sequential `docker build` of every image, and measures the
//! wall times into a [`BenchmarkReport`].
//!
//! Nothing of the user's is touched. The work tree (tracked and untracked, not ignored, files) is
//! copied into a scratch folder and committed there; every image gets the repository prefix
//! `buildopt-bench-<random>/` (the copy's `buildopt.toml` and its Dockerfiles' `FROM` and
//! `--from` references are rewritten; templated tags are dropped), hooks are left out, the cache
//! store is a scratch folder, the after-build cleanup is off, and nothing is pushed. "Cold" is
//! `--force` (no build cache, nothing reused); "warm" is the same build right after it. At the
//! end, on failure and after Ctrl-C too, every image the benchmark made is removed by its tags
//! and ids. Build cache entries the daemon keeps are not removed (they cannot be told apart from
//! the user's); `docker builder prune` reclaims them.
//!
//! May import `run`, `engine`, `git`, `workspace`, `plan` (its model), `settings`, `context` and
//! `report` (its models); never `commands`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::context::{Context, read_config};
use crate::engine::{BuildRequest, Builder, DockerEngine, Dockerfile, Engine, EngineError};
use crate::env::Env;
use crate::error::Error;
use crate::git::Git;
use crate::plan::Plan;
use crate::report::benchmark::{
    BENCHMARK_REPORT_VERSION, Baseline, BenchmarkCleanup, BenchmarkReport, BenchmarkRun,
};
use crate::report::model::{ImageResult, RunReport};
use crate::run::RunOptions;
use crate::run::daemon::{Connecting, run_on_daemon};
use crate::run::plan::{PlanRequest, plan_with_workspace};
use crate::scheduler::remote::digest_tag;
use crate::settings::{Flags, Level, RunFlags, RunSettings};
use crate::workspace::Workspace;
use crate::workspace::context;

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchmarkError {
    /// The scratch copy could not be made.
    #[error("benchmark: {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// git failed while listing or committing the copy.
    #[error("benchmark: git {args} failed: {message}")]
    Git { args: String, message: String },
    /// The copy's `buildopt.toml` could not be rewritten.
    #[error("benchmark: {path}: {message}")]
    Config { path: String, message: String },
    /// After renaming, an image no longer builds from the same internal images (a reference the
    /// rename could not see, such as `FROM ${BASE}`): building it would use the user's images.
    #[error(
        "benchmark: after renaming the images, '{image}' builds from [{renamed}] instead of [{original}]; rename its FROM references by hand or use literal names"
    )]
    Rename {
        image: String,
        original: String,
        renamed: String,
    },
    /// `--benchmark` with a flag it cannot honour (the command refuses it).
    #[error("benchmark: {0} cannot be combined with --benchmark")]
    Flag(&'static str),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BenchmarkError + '_ {
    move |source| BenchmarkError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The levels measured, in order.
const LEVELS: [Level; 4] = [Level::Minimal, Level::Medium, Level::Maximum, Level::Ci];

/// The hook scripts found by convention; the copy leaves them out.
const HOOK_SCRIPTS: [&str; 2] = ["scripts/pre-build-hook.sh", "scripts/post-build-hook.sh"];

/// What the baseline says it is.
const BASELINE_METHOD: &str = "classic builder, one Engine API build request per image in dependency order, warm daemon cache, after one warm-up pass";

/// What the benchmark's runs share with the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BenchmarkRequest {
    pub jobs: Option<usize>,
    pub keep_going: bool,
    pub builder: Option<Builder>,
}

/// Measures the repository in `ctx` (see the module doc). The report says when Ctrl-C stopped
/// it; the images it made are removed either way.
pub fn benchmark(ctx: &Context, request: &BenchmarkRequest) -> Result<BenchmarkReport, Error> {
    let git = Git::open(&ctx.dir)?;
    let (flags, _) = level_run(ctx, request, None, false);
    let settings = ctx.with_flags(&flags)?.settings.core;
    let (plan, workspace) = plan_with_workspace(ctx, &settings, &git, &PlanRequest::default())?;
    let prefix = format!("buildopt-bench-{}", random_hex());
    let scratch = Scratch::create(&prefix)?;
    let bench_ctx = scratch_copy(ctx, &git, &workspace, scratch.path(), &prefix)?;
    let bench_git = Git::open(&bench_ctx.dir)?;
    let (bench_plan, mut bench_workspace) =
        plan_with_workspace(&bench_ctx, &settings, &bench_git, &PlanRequest::default())?;
    same_graph(&plan, &bench_plan)?;
    in_plan_order(&bench_plan, &mut bench_workspace);

    let mut made = Made::default();
    let mut report = BenchmarkReport {
        version: BENCHMARK_REPORT_VERSION,
        repository: git.root().display().to_string(),
        prefix: prefix.clone(),
        images: plan.images.len(),
        runs: Vec::new(),
        baseline: None,
        cleanup: BenchmarkCleanup::default(),
        interrupted: false,
    };
    let say = |line: &str| ctx.info(line);
    let measured = measure(
        &bench_ctx,
        request,
        &bench_git,
        &bench_workspace,
        &mut report,
        &mut made,
        &say,
    );
    report.cleanup = remove_made(&bench_ctx, &made);
    measured?;
    Ok(report)
}

/// The scratch folder (the copy and the cache store), removed on drop.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn create(name: &str) -> Result<Self, BenchmarkError> {
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path).map_err(io(&path))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The runs, then the baseline; stops at the first interrupted run.
fn measure(
    ctx: &Context,
    request: &BenchmarkRequest,
    git: &Git,
    workspace: &Workspace,
    report: &mut BenchmarkReport,
    made: &mut Made,
    say: &dyn Fn(&str),
) -> Result<(), Error> {
    for level in LEVELS {
        for (cache, force) in [("cold", true), ("warm", false)] {
            say(&format!("benchmark: {level} {cache}…"));
            let (flags, options) = level_run(ctx, request, Some(level), force);
            // The whole run, as a user waits for it: settings, the daemon connection, the plan,
            // the cache restore, the build and the cache export.
            let started = Instant::now();
            let level_ctx = ctx.with_flags(&flags)?;
            let settings = &level_ctx.settings.core;
            let daemon = Connecting::start(&level_ctx)?;
            let (plan, workspace) =
                plan_with_workspace(&level_ctx, settings, git, &PlanRequest::default())?;
            let run = run_on_daemon(
                &level_ctx, daemon, &options, settings, git, &plan, &workspace,
            )?;
            let wall = started.elapsed();
            made.record(&run);
            report.runs.push(summarise(level, cache, &run, wall));
            if run.run.interrupted {
                report.interrupted = true;
                return Ok(());
            }
        }
    }
    say("benchmark: sequential docker build of every image (warm-up, then measured)…");
    match baseline(ctx, git, workspace, made)? {
        Some(baseline) => report.baseline = Some(baseline),
        None => report.interrupted = true,
    }
    Ok(())
}

/// The settings flags and the run of one measurement: `level` (`None`: the configured one),
/// `--force` when cold, never the cleanup, nothing pushed or tagged.
fn level_run(
    ctx: &Context,
    request: &BenchmarkRequest,
    level: Option<Level>,
    force: bool,
) -> (RunFlags, RunOptions) {
    let flags = RunFlags {
        core: Flags {
            level,
            force,
            verbose: ctx.verbose,
            jobs: request.jobs,
            default_level: None,
        },
        ..RunFlags::default()
    };
    let options = RunOptions {
        keep_going: request.keep_going,
        cleanup: false,
        builder: request.builder,
        ..RunOptions::default()
    };
    (flags, options)
}

fn summarise(level: Level, cache: &str, run: &RunReport, wall: Duration) -> BenchmarkRun {
    let count = |result| run.images.iter().filter(|i| i.result == result).count();
    // Dockerfile instructions only, not the builder's internal work (context upload, export).
    let instructions = || {
        run.images
            .iter()
            .flat_map(|i| &i.steps)
            .filter(|s| s.line.is_some())
    };
    let made = run
        .images
        .iter()
        .filter(|i| matches!(i.result, ImageResult::Built | ImageResult::Reused));
    BenchmarkRun {
        level: level.to_string(),
        cache: cache.into(),
        duration_ms: wall.as_millis() as u64,
        steps: instructions().count(),
        cached_steps: instructions().filter(|s| s.cached).count(),
        built: count(ImageResult::Built),
        reused: count(ImageResult::Reused),
        failed: count(ImageResult::Failed),
        total_size: made.filter_map(|i| i.size).sum(),
    }
}

/// Every image the benchmark made: its references, then its ids.
#[derive(Debug, Default)]
struct Made {
    references: BTreeSet<String>,
    /// In the order made; removed newest first, so children go before their parents.
    ids: Vec<String>,
}

impl Made {
    fn record(&mut self, run: &RunReport) {
        for image in &run.images {
            self.references.extend(image.tags.iter().cloned());
            if image.image_id.is_some() {
                let digest = digest_tag(&image.inputs_digest);
                self.references
                    .insert(format!("{}:{digest}", image.repository));
            }
            self.ids.extend(image.image_id.iter().cloned());
        }
    }
}

/// Removes every reference, then every id the benchmark made (twice, so parents whose children
/// went first are removed too); what remains is reported.
fn remove_made(ctx: &Context, made: &Made) -> BenchmarkCleanup {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return left_all(made);
    };
    runtime.block_on(async {
        let Ok(engine) = ctx.connect_daemon().await else {
            return left_all(made);
        };
        for reference in &made.references {
            // An image whose last reference goes is removed with it; the ids below catch the rest.
            let _ = engine.remove_image(reference).await;
        }
        let ids: Vec<&String> = made.ids.iter().rev().collect();
        let mut left = Vec::new();
        for _pass in 0..2 {
            left.clear();
            for id in &ids {
                if engine.remove_image(id).await.is_err() {
                    left.push((*id).clone());
                }
            }
        }
        let images: BTreeSet<&String> = made.ids.iter().collect();
        BenchmarkCleanup {
            removed: images.len().saturating_sub(left.len()),
            left,
        }
    })
}

fn left_all(made: &Made) -> BenchmarkCleanup {
    BenchmarkCleanup {
        removed: 0,
        left: made.references.iter().cloned().collect(),
    }
}

/// Builds every image one after another with the classic builder, tagged as the copy's
/// Dockerfiles expect, once to warm the cache and once measured. `None` after Ctrl-C.
fn baseline(
    ctx: &Context,
    git: &Git,
    workspace: &Workspace,
    made: &mut Made,
) -> Result<Option<Baseline>, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| BenchmarkError::Io {
            path: "async runtime".into(),
            source,
        })?;
    let requests = baseline_requests(git.root(), workspace)?;
    made.references
        .extend(requests.iter().flat_map(|r| r.tags.iter().cloned()));
    runtime.block_on(async {
        let engine = ctx
            .connect_daemon()
            .await
            .map_err(crate::run::RunError::from)?;
        let passes = async {
            build_sequentially(&engine, &requests, made).await?;
            let started = Instant::now();
            build_sequentially(&engine, &requests, made).await?;
            Ok::<_, EngineError>(started.elapsed())
        };
        tokio::select! {
            elapsed = passes => {
                let elapsed = elapsed.map_err(crate::run::RunError::from)?;
                Ok(Some(Baseline {
                    method: BASELINE_METHOD.into(),
                    duration_ms: elapsed.as_millis() as u64,
                    images: requests.len(),
                }))
            }
            _ = tokio::signal::ctrl_c() => Ok(None),
        }
    })
}

async fn build_sequentially(
    engine: &DockerEngine,
    requests: &[BuildRequest],
    made: &mut Made,
) -> Result<(), EngineError> {
    for request in requests {
        let outcome = engine.build(request, &mut |_| {}).await?;
        made.ids.push(outcome.image_id);
    }
    Ok(())
}

/// One plain request per image, in the workspace's build order (the plan's), `<repo>:latest`.
fn baseline_requests(root: &Path, workspace: &Workspace) -> Result<Vec<BuildRequest>, Error> {
    let mut requests = Vec::new();
    for image in &workspace.images {
        let def = &image.def;
        let files = context::collect_skipping(&root.join(&def.context), &image.ignore, &[])
            .map_err(crate::run::RunError::from)?;
        let dockerfile = root.join(&def.dockerfile);
        let contents = std::fs::read(&dockerfile).map_err(io(&dockerfile))?;
        let mut request = BuildRequest::new(files.files, Dockerfile::Contents(contents));
        request.builder = Builder::Classic;
        request.target = def.target.clone();
        request.build_args = def.args.clone();
        request.tags = vec![format!("{}:latest", def.repository)];
        requests.push(request);
    }
    Ok(requests)
}

/// The plan lists images in build order; the workspace in definition order.
fn in_plan_order(plan: &Plan, workspace: &mut Workspace) {
    let position = |name: &str| plan.images.iter().position(|i| i.name == name);
    workspace
        .images
        .sort_by_key(|image| position(&image.def.name).unwrap_or(usize::MAX));
}

/// Copies the work tree into `scratch/repo`, renames every image under `prefix`, commits, and
/// returns the context to build it in: a scratch cache store, no hooks, no CI variables.
fn scratch_copy(
    ctx: &Context,
    git: &Git,
    workspace: &Workspace,
    scratch: &Path,
    prefix: &str,
) -> Result<Context, Error> {
    let copy = scratch.join("repo");
    copy_work_tree(git.root(), &copy)?;
    let renames: BTreeMap<String, String> = workspace
        .images
        .iter()
        .map(|i| {
            (
                i.def.repository.clone(),
                format!("{prefix}/{}", i.def.repository),
            )
        })
        .collect();
    let dockerfiles: BTreeSet<&str> = workspace
        .images
        .iter()
        .map(|i| i.def.dockerfile.as_str())
        .collect();
    for dockerfile in dockerfiles {
        let path = copy.join(dockerfile);
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        std::fs::write(&path, rename_references(&text, &renames)).map_err(io(&path))?;
    }
    let dir = copy.join(&workspace.root);
    let config = dir.join("buildopt.toml");
    let original = ctx.config_path.as_deref().filter(|p| p.is_file());
    write_config(original, &config, workspace, prefix)?;
    commit(&copy)?;
    let mut file = read_config(&config)?;
    file.hooks = None;
    let env = scratch_env(&ctx.env, &scratch.join("cache"));
    // Each level's run resolves its own (`Context::with_flags`); these are the copy's defaults.
    let settings = RunSettings::resolve(&RunFlags::default(), &env, &file, &dir, 1)?;
    Ok(Context {
        settings,
        dir,
        config_path: Some(config),
        file,
        env,
        redactor: ctx.redactor.clone(),
        verbose: ctx.verbose,
        quiet: true,
        format: ctx.format,
    })
}

/// Only what reaches the daemon, plus the scratch cache store: no CI facts (they describe the
/// user's repository, not the copy), no settings that would override the levels.
fn scratch_env(env: &Env, store: &Path) -> Env {
    let kept = env
        .iter()
        .filter(|(name, _)| {
            matches!(*name, "PATH" | "HOME" | "TMPDIR") || name.starts_with("DOCKER_")
        })
        .map(|(name, value)| (name.to_string(), value.to_string()));
    let store = (
        "BUILDOPT_CACHE_DIR".to_string(),
        store.display().to_string(),
    );
    Env::from_pairs(kept.chain([store]))
}

/// Copies the files git would see (tracked, and untracked but not ignored) except the hook
/// scripts.
fn copy_work_tree(root: &Path, copy: &Path) -> Result<(), BenchmarkError> {
    let listed = git_in(root, &["ls-files", "-z", "-co", "--exclude-standard"])?;
    for rel in listed.split('\0').filter(|r| !r.is_empty()) {
        if HOOK_SCRIPTS.contains(&rel) {
            continue;
        }
        let from = root.join(rel);
        let to = copy.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&from) else {
            continue; // deleted in the work tree but still tracked
        };
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&from).map_err(io(&from))?;
            std::os::unix::fs::symlink(target, &to).map_err(io(&to))?;
        } else if meta.is_file() {
            std::fs::copy(&from, &to).map_err(io(&from))?;
        }
    }
    Ok(())
}

fn commit(copy: &Path) -> Result<(), BenchmarkError> {
    git_in(copy, &["init", "-q", "-b", "main"])?;
    git_in(copy, &["add", "-A"])?;
    git_in(
        copy,
        &[
            "-c",
            "user.name=buildopt benchmark",
            "-c",
            "user.email=benchmark@buildopt.invalid",
            "commit",
            "-q",
            "--no-verify",
            "-m",
            "benchmark copy",
        ],
    )?;
    Ok(())
}

fn git_in(dir: &Path, args: &[&str]) -> Result<String, BenchmarkError> {
    let output = Command::new("git")
        .args([
            "-c",
            "core.fsmonitor=false",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(io(Path::new("git")))?;
    if !output.status.success() {
        return Err(BenchmarkError::Git {
            args: args.join(" "),
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Writes the copy's `buildopt.toml`: the original (when there is one) with every image renamed
/// under `prefix`, its tags and hooks dropped; images found without a configuration file are
/// written out as `[images.NAME]` tables, so the renaming applies to them too.
fn write_config(
    original: Option<&Path>,
    config: &Path,
    workspace: &Workspace,
    prefix: &str,
) -> Result<(), BenchmarkError> {
    let bad = |message: String| BenchmarkError::Config {
        path: config.display().to_string(),
        message,
    };
    let mut table: toml::Table = match original {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(io(path))?;
            text.parse()
                .map_err(|e: toml::de::Error| bad(e.to_string()))?
        }
        None => toml::Table::new(),
    };
    table.remove("hooks");
    let images = table
        .entry("images")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .ok_or_else(|| bad("`images` is not a table".into()))?;
    for image in &workspace.images {
        let def = &image.def;
        let entry = images
            .entry(def.name.clone())
            .or_insert_with(|| toml::Value::Table(discovered(def, &workspace.root)))
            .as_table_mut()
            .ok_or_else(|| bad(format!("`images.{}` is not a table", def.name)))?;
        entry.insert(
            "image".into(),
            format!("{prefix}/{}", def.repository).into(),
        );
        entry.insert("tags".into(), toml::Value::Array(Vec::new()));
    }
    let text = toml::to_string(&table).map_err(|e| bad(e.to_string()))?;
    std::fs::write(config, text).map_err(io(config))
}

/// A `[images.NAME]` table for an image found without a configuration file.
fn discovered(def: &crate::workspace::ImageDef, root: &str) -> toml::Table {
    let relative = |path: &str| {
        Path::new(path)
            .strip_prefix(root)
            .map_or_else(|_| path.to_string(), |p| p.display().to_string())
    };
    let mut table = toml::Table::new();
    let context = relative(&def.context);
    table.insert(
        "context".into(),
        (if context.is_empty() {
            ".".into()
        } else {
            context
        })
        .into(),
    );
    table.insert("dockerfile".into(), relative(&def.dockerfile).into());
    if let Some(target) = &def.target {
        table.insert("target".into(), target.clone().into());
    }
    if !def.args.is_empty() {
        let args = def
            .args
            .iter()
            .map(|(k, v)| (k.clone(), toml::Value::from(v.clone())))
            .collect();
        table.insert("args".into(), toml::Value::Table(args));
    }
    table
}

/// Renames image references in `FROM` lines and `--from=` flags: a word that is a renamed
/// repository, or one followed by `:tag` or `@digest`, gets the new name.
pub fn rename_references(text: &str, renames: &BTreeMap<String, String>) -> String {
    let rename = |word: &str| -> Option<String> {
        renames.iter().find_map(|(from, to)| {
            let rest = word.strip_prefix(from.as_str())?;
            (rest.is_empty() || rest.starts_with(':') || rest.starts_with('@'))
                .then(|| format!("{to}{rest}"))
        })
    };
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let is_from = line
            .split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("FROM"));
        let mut image_seen = false;
        let mut rewritten = String::with_capacity(line.len());
        for piece in line.split_inclusive(char::is_whitespace) {
            let word = piece.trim_end();
            let space = &piece[word.len()..];
            let renamed = if let Some(value) = word.strip_prefix("--from=") {
                rename(value).map(|v| format!("--from={v}"))
            } else if is_from
                && !image_seen
                && !word.starts_with("--")
                && !word.is_empty()
                && !word.eq_ignore_ascii_case("FROM")
            {
                image_seen = true;
                rename(word)
            } else {
                None
            };
            rewritten.push_str(renamed.as_deref().unwrap_or(word));
            rewritten.push_str(space);
        }
        out.push_str(&rewritten);
    }
    out
}

/// Every image of the copy must build from the same internal images as in the original.
fn same_graph(original: &Plan, renamed: &Plan) -> Result<(), BenchmarkError> {
    for image in &original.images {
        let copy = renamed.images.iter().find(|i| i.name == image.name);
        let before: BTreeSet<&String> = image.depends_on.iter().collect();
        let after: BTreeSet<&String> = copy
            .map(|i| i.depends_on.iter().collect())
            .unwrap_or_default();
        if copy.is_none() || before != after {
            let list = |set: &BTreeSet<&String>| {
                set.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(BenchmarkError::Rename {
                image: image.name.clone(),
                original: list(&before),
                renamed: list(&after),
            });
        }
    }
    Ok(())
}

/// Eight random hex digits for the scratch prefix.
fn random_hex() -> String {
    let mut bytes = [0u8; 4];
    // Without randomness, the process id and the time still keep concurrent runs apart.
    if getrandom::fill(&mut bytes).is_err() {
        let seed = std::process::id() ^ chrono::Utc::now().timestamp_subsec_nanos();
        bytes = seed.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renames() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("base".to_string(), "buildopt-bench-1/base".to_string()),
            (
                "ghcr.io/acme/core".to_string(),
                "buildopt-bench-1/ghcr.io/acme/core".to_string(),
            ),
        ])
    }

    #[test]
    fn from_lines_and_copy_from_are_renamed() {
        let text = "FROM base AS runtime\nfrom --platform=linux/amd64 ghcr.io/acme/core:1.2 as b\nCOPY --from=base:latest /a /b\nRUN echo base\n";
        assert_eq!(
            rename_references(text, &renames()),
            "FROM buildopt-bench-1/base AS runtime\nfrom --platform=linux/amd64 buildopt-bench-1/ghcr.io/acme/core:1.2 as b\nCOPY --from=buildopt-bench-1/base:latest /a /b\nRUN echo base\n"
        );
    }

    #[test]
    fn other_images_and_longer_names_stay() {
        let text = "FROM basement\nFROM buildopt-test/busybox:latest\nFROM base@sha256:abc\nCOPY --from=builder /x /y";
        assert_eq!(
            rename_references(text, &renames()),
            "FROM basement\nFROM buildopt-test/busybox:latest\nFROM buildopt-bench-1/base@sha256:abc\nCOPY --from=builder /x /y"
        );
    }

    #[test]
    fn each_run_is_one_level_never_cleaning_up() {
        let env = Env::from_pairs(Vec::<(String, String)>::new());
        let file = crate::settings::file::FileOptions::default();
        let settings =
            RunSettings::resolve(&RunFlags::default(), &env, &file, Path::new("."), 1).expect("ok");
        let ctx = Context {
            settings,
            dir: PathBuf::from("."),
            config_path: None,
            file,
            env,
            verbose: 0,
            quiet: true,
            format: crate::cli::Format::Human,
            redactor: crate::notify::secret::Redactor::default(),
        };
        let (flags, run) = level_run(
            &ctx,
            &BenchmarkRequest::default(),
            Some(Level::Maximum),
            true,
        );
        assert_eq!(flags.core.level, Some(Level::Maximum));
        assert!(flags.core.force && !run.cleanup && !run.push && run.tags.is_empty());
    }
}
