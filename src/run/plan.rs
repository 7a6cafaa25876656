//! The plan stage of a run: gathering the commit range (from the CI and git), the workspace at
//! the head commit and the changes, then asking `plan` what builds. `buildopt plan`, the run,
//! the benchmark and `buildopt cache key` all plan through here.
//!
//! May import `ci`, `git`, `workspace`, `plan`, `settings`, `scheduler::record` and `context`;
//! never `commands`.

use std::path::Path;

use crate::ci::{self, Base, Range, RangeRequest};
use crate::context::Context;
use crate::error::Error;
use crate::git::{Change, ChangeStatus, EMPTY_TREE, Git, GitError, TreeEntry};
use crate::plan::{Graph, Mode, Plan, PlanInput, PlanRange, ReasonKind};
use crate::scheduler::record::{self, RecordSources};
use crate::settings::{Settings, Source};
use crate::workspace::{self, Location, Snapshot, Workspace, paths};

/// The commit range asked for (`--base`, `--head`); unset, the CI and git decide. And how far
/// the build record's checks may reach (see [`crate::scheduler::record`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanRequest {
    pub base: Option<String>,
    pub head: Option<String>,
    /// The run pushes (`--push`): registries are asked too for images of unrecorded inputs.
    pub push: bool,
    /// The plan must contact no daemon (`build --dry-run`, `cache key`).
    pub without_daemon: bool,
}

/// Gathers the range, the workspace and the changes, then plans.
pub fn make_plan(
    ctx: &Context,
    settings: &Settings,
    git: &Git,
    request: &PlanRequest,
) -> Result<Plan, Error> {
    plan_with_workspace(ctx, settings, git, request).map(|(plan, _)| plan)
}

/// [`make_plan`], also returning the workspace at the head commit (the build needs its parsed
/// Dockerfiles and ignore rules).
pub fn plan_with_workspace(
    ctx: &Context,
    settings: &Settings,
    git: &Git,
    request: &PlanRequest,
) -> Result<(Plan, Workspace), Error> {
    let ci_context = &ctx.settings.ci;
    let range_request = RangeRequest {
        base: request.base.clone(),
        head: request.head.clone(),
        max_deepen_rounds: settings.max_deepen_rounds,
        default_branch: settings.default_branch.clone(),
    };
    let range = ci::resolve_range(git, ci_context, &range_request)?;
    if settings.verbose {
        ctx.info(&format!("settings: {}", describe_sources(settings)));
        for step in &range.steps {
            ctx.info(&format!("base: {step}"));
        }
    }
    let location = location(ctx, settings, git)?;
    // The diff a selective plan needs is read while git lists the head's tree.
    let diff_base = match &range.base {
        Base::Commit { sha, .. } if settings.selective && !settings.force && sha != EMPTY_TREE => {
            Some(sha.as_str())
        }
        _ => None,
    };
    let (entries, diff) = std::thread::scope(|scope| {
        let diff = diff_base.map(|base| scope.spawn(|| git.diff(base, &range.head)));
        let entries = git.tree_entries(&range.head);
        let diff = diff.map(|thread| {
            thread
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
        });
        (entries, diff)
    });
    let snapshot = Snapshot::new(entries?, git);
    let workspace = workspace::load(&snapshot, &location)?;
    let graph = Graph::build(&workspace.images)?;
    let (mut mode, changes, mut plan_range) =
        mode_and_changes(settings, git, &range, snapshot.entries(), diff)?;
    let mut base_definitions = None;
    if let (Mode::Selective, Base::Commit { sha, .. }) = (&mode, &range.base)
        && touches_definitions(&changes, &workspace, &location)
    {
        match read_base_definitions(git, sha, &location)? {
            Ok(defs) => base_definitions = Some(defs),
            // Definitions the base cannot be compared with: build everything rather than guess.
            Err(err) => {
                let detail = format!("the build definitions at the base are invalid ({err})");
                plan_range = PlanRange {
                    base: None,
                    ..plan_range
                };
                plan_range.reason.clone_from(&detail);
                mode = Mode::All {
                    kind: ReasonKind::NoBase,
                    detail,
                };
            }
        }
    }
    let input = PlanInput {
        workspace: &workspace,
        snapshot: &snapshot,
        graph: &graph,
        changes: &changes,
        mode,
        range: plan_range,
        base_definitions: base_definitions.as_deref(),
    };
    let sources = RecordSources {
        env: &ctx.env,
        settings,
        cache: &ctx.settings.cache,
        push: request.push,
        ask_daemon: !request.without_daemon,
    };
    let plan = record::plan(&input, &workspace, &sources)?;
    Ok((plan, workspace))
}

fn describe_sources(settings: &Settings) -> String {
    settings
        .sources
        .iter()
        .map(|(name, source)| format!("{name} from {source}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The workspace folder and config file, relative to the repository root, and the default
/// platforms when the environment sets them (a `buildopt.toml` value is read from each commit's
/// own file instead, so a base commit is compared with what it said).
fn location(ctx: &Context, settings: &Settings, git: &Git) -> Result<Location, Error> {
    let root = relative_to_repo(git.root(), &ctx.dir)?;
    let config = match &ctx.config_path {
        Some(path) => Some(relative_to_repo(git.root(), path)?),
        None => None,
    };
    Ok(Location {
        root,
        config,
        platforms: settings.platforms_not_from_file().to_vec(),
    })
}

fn relative_to_repo(repo: &Path, path: &Path) -> Result<String, Error> {
    let canonical = |p: &Path| {
        p.canonicalize().map_err(|source| Error::Io {
            path: p.display().to_string(),
            source,
        })
    };
    let (repo, path) = (canonical(repo)?, canonical(path)?);
    let rel = path.strip_prefix(&repo).map_err(|_| Error::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(format!("is outside the repository {}", repo.display())),
    })?;
    Ok(rel.to_string_lossy().replace('\\', "/"))
}

fn mode_and_changes(
    settings: &Settings,
    git: &Git,
    range: &Range,
    head_entries: &[TreeEntry],
    read_diff: Option<Result<Vec<Change>, GitError>>,
) -> Result<(Mode, Vec<Change>, PlanRange), Error> {
    let everything = |kind: ReasonKind, detail: String| {
        let plan_range = PlanRange {
            base: None,
            head: range.head.clone(),
            reason: detail.clone(),
        };
        Ok((Mode::All { kind, detail }, Vec::new(), plan_range))
    };
    if settings.force {
        let by = match settings.sources.get("force") {
            Some(Source::Env(name)) => format!("${name}"),
            _ => "--force".to_string(),
        };
        return everything(ReasonKind::Forced, format!("forced by {by}"));
    }
    if !settings.selective {
        let detail = format!("selective builds are off (level {})", settings.level);
        return everything(ReasonKind::NotSelective, detail);
    }
    match &range.base {
        Base::Commit { sha, reason } => {
            let plan_range = PlanRange {
                base: Some(sha.clone()),
                head: range.head.clone(),
                reason: reason.clone(),
            };
            let changes = if sha == EMPTY_TREE {
                // Everything at head is new: the listing already read says what, without a diff.
                head_entries
                    .iter()
                    .map(|entry| Change {
                        status: ChangeStatus::Added,
                        path: entry.path.clone(),
                    })
                    .collect()
            } else {
                match read_diff {
                    Some(diff) => diff?,
                    None => git.diff(sha, &range.head)?,
                }
            };
            Ok((Mode::Selective, changes, plan_range))
        }
        Base::BuildAll { reason } => everything(ReasonKind::NoBase, reason.clone()),
    }
}

/// True when a file that defines images (or could, once added) changed.
fn touches_definitions(changes: &[Change], workspace: &Workspace, location: &Location) -> bool {
    let mut candidates: Vec<String> = workspace.definition_files.clone();
    candidates.extend(location.config.clone());
    candidates.extend(
        std::iter::once("buildopt.toml")
            .chain(workspace::compose::COMPOSE_FILES.iter().copied())
            .filter_map(|f| paths::join(&location.root, f)),
    );
    changes.iter().any(|c| candidates.contains(&c.path))
}

/// The image definitions at `base`: `Err` inside `Ok` when they are invalid there.
fn read_base_definitions(
    git: &Git,
    base: &str,
    location: &Location,
) -> Result<Result<Vec<workspace::ImageDef>, workspace::WorkspaceError>, Error> {
    let snapshot = Snapshot::new(git.tree_entries(base)?, git);
    match workspace::definitions(&snapshot, location) {
        Ok(found) => Ok(Ok(found.images)),
        Err(workspace::WorkspaceError::Git(err)) => Err(err.into()),
        Err(invalid) => Ok(Err(invalid)),
    }
}
