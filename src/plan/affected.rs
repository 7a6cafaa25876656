//! Which images are affected by a change set, and why; which are not, and why not.

use std::collections::{BTreeMap, BTreeSet};

use super::digest;
use super::graph::{Edge, Graph};
use super::model::{
    PLAN_FORMAT_VERSION, Plan, PlanRange, PlannedImage, Reason, ReasonKind, RemovedImage,
};
use super::selection::{RecordSelection, SelectedBy, record_reason};
use crate::git::{Change, ChangeStatus, TreeEntry};
use crate::workspace::dockerignore::IgnoreRules;
use crate::workspace::{
    Image, ImageDef, Listing, NamedContext, Origin, Snapshot, Workspace, image_name_for, paths,
};

/// How many file names a reason lists before it only counts.
const LISTED_FILES: usize = 10;

/// Whether the plan follows the diff or builds everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Build what the changes affect.
    Selective,
    /// Build everything, for this reason.
    All { kind: ReasonKind, detail: String },
}

/// What the planner needs.
#[derive(Debug)]
pub struct PlanInput<'a> {
    pub workspace: &'a Workspace,
    pub snapshot: &'a Snapshot<'a>,
    pub graph: &'a Graph,
    pub changes: &'a [Change],
    pub mode: Mode,
    pub range: PlanRange,
    /// The image definitions at the base, when a definition file changed and the base is known.
    pub base_definitions: Option<&'a [ImageDef]>,
}

/// Makes the plan from the diff alone. Pure: reads only its input.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    plan_with_record(input, |_| RecordSelection::default())
}

/// Makes the plan from the diff, then asks `check` which images the diff leaves out must build
/// anyway because no build of their inputs exists (see `selection.rs`), and plans again with
/// them and everything that builds from them. The inputs digests are computed once.
pub fn plan_with_record(
    input: &PlanInput<'_>,
    check: impl FnOnce(&Plan) -> RecordSelection,
) -> Plan {
    let order = build_order(input.graph);
    let global_rules = compile(&input.workspace.global_inputs);
    let digests = digests(input, &order, global_rules.as_ref());
    let decide = |unbuilt: &BTreeSet<String>| {
        decide(input, &order, global_rules.as_ref(), &digests, unbuilt)
    };
    let diff = decide(&BTreeSet::new());
    let selection = check(&diff);
    let mut plan = if selection.unbuilt.is_empty() {
        diff
    } else {
        decide(&selection.unbuilt)
    };
    plan.notes.extend(selection.notes);
    plan
}

/// The plan given the digests and the images the record selects (`unbuilt`).
fn decide(
    input: &PlanInput<'_>,
    order: &[usize],
    global_rules: Option<&IgnoreRules>,
    digests: &[String],
    unbuilt: &BTreeSet<String>,
) -> Plan {
    let images = &input.workspace.images;
    let mut direct: Vec<Vec<Reason>> = images.iter().map(|_| Vec::new()).collect();
    let mut ignored: Vec<Vec<String>> = images.iter().map(|_| Vec::new()).collect();
    match &input.mode {
        Mode::All { kind, detail } => {
            for reasons in &mut direct {
                reasons.push(reason(*kind, detail.clone(), Vec::new()));
            }
        }
        Mode::Selective => {
            let global = global_reason(input.changes, global_rules);
            for (i, image) in images.iter().enumerate() {
                let (reasons, excluded) =
                    direct_reasons(image, input.changes, input.base_definitions);
                direct[i] = reasons;
                direct[i].extend(global.clone());
                ignored[i] = excluded;
                if unbuilt.contains(&image.def.name) {
                    direct[i].push(record_reason());
                }
            }
        }
    }

    let mut affected = vec![false; images.len()];
    let mut level = vec![None; images.len()];
    let mut planned: Vec<Option<PlannedImage>> = images.iter().map(|_| None).collect();
    for &i in order {
        let mut reasons = std::mem::take(&mut direct[i]);
        reasons.extend(parent_reasons(
            &input.graph.parents[i],
            input.graph,
            &affected,
        ));
        affected[i] = !reasons.is_empty();
        if affected[i] {
            let parent_level = input.graph.parent_ids[i]
                .iter()
                .filter_map(|&p| level[p])
                .max();
            level[i] = Some(parent_level.map_or(0, |l: usize| l + 1));
        }
        let unaffected_because = (!affected[i]).then(|| why_not(&ignored[i]));
        planned[i] = Some(planned_image(
            &images[i],
            input.graph,
            i,
            reasons,
            unaffected_because,
            level[i],
            &digests[i],
        ));
    }

    let mut planned: Vec<PlannedImage> = planned.into_iter().flatten().collect();
    planned.sort_by(|a, b| (!a.affected, a.level, &a.name).cmp(&(!b.affected, b.level, &b.name)));
    Plan {
        version: PLAN_FORMAT_VERSION,
        range: input.range.clone(),
        changed_files: input.changes.len(),
        levels: levels_of(&planned),
        removed: removed_images(input),
        notes: input.graph.notes.clone(),
        images: planned,
    }
}

/// Image indices parents-first (by level, then name), so parents are decided before children.
fn build_order(graph: &Graph) -> Vec<usize> {
    // The graph was checked for cycles when it was built, so levels cannot fail here.
    let levels = graph
        .levels()
        .unwrap_or_else(|_| vec![0; graph.names.len()]);
    let mut order: Vec<usize> = (0..graph.names.len()).collect();
    order.sort_by(|&a, &b| (levels[a], &graph.names[a]).cmp(&(levels[b], &graph.names[b])));
    order
}

fn compile(patterns: &[String]) -> Option<IgnoreRules> {
    if patterns.is_empty() {
        return None;
    }
    // Patterns were validated when the definitions loaded; an invalid one matches nothing.
    IgnoreRules::parse(&patterns.join("\n")).ok()
}

fn reason(kind: ReasonKind, detail: String, files: Vec<String>) -> Reason {
    let file_count = files.len();
    let files = files.into_iter().take(LISTED_FILES).collect();
    Reason {
        kind,
        detail,
        files,
        file_count,
    }
}

/// "a changed" / "a and 3 more files changed".
fn describe(files: &[String], what: &str) -> String {
    match files {
        [] => format!("{what} changed"),
        [one] => format!("{one} changed"),
        [first, rest @ ..] => format!("{first} and {} more {what} changed", rest.len()),
    }
}

fn global_reason(changes: &[Change], rules: Option<&IgnoreRules>) -> Option<Reason> {
    let rules = rules?;
    let files: Vec<String> = changes
        .iter()
        .filter(|c| rules.is_excluded(&c.path))
        .map(|c| c.path.clone())
        .collect();
    (!files.is_empty()).then(|| {
        reason(
            ReasonKind::GlobalInput,
            format!("global input {}", describe(&files, "global inputs")),
            files,
        )
    })
}

/// Reasons that come from the image's own inputs, and the changed files its ignore rules dropped.
fn direct_reasons(
    image: &Image,
    changes: &[Change],
    base: Option<&[ImageDef]>,
) -> (Vec<Reason>, Vec<String>) {
    let def = &image.def;
    let mut reasons = Vec::new();
    if let Some(base) = base {
        reasons.extend(definition_reason(def, base));
    }
    if matches!(def.origin, Origin::Dockerfile)
        && changes
            .iter()
            .any(|c| c.status == ChangeStatus::Added && c.path == def.dockerfile)
    {
        reasons.push(reason(
            ReasonKind::NewImage,
            format!("new image ({} added)", def.dockerfile),
            vec![def.dockerfile.clone()],
        ));
    }
    let specific_ignore = format!("{}.dockerignore", def.dockerfile);
    let root_ignore = paths::join(&def.context, ".dockerignore").unwrap_or_default();
    let extra = compile(&def.inputs);
    let mut buckets: BTreeMap<(ReasonKind, String), Vec<String>> = BTreeMap::new();
    let mut excluded = Vec::new();
    for change in changes {
        let path = change.path.as_str();
        let mut add = |kind: ReasonKind, label: &str| {
            buckets
                .entry((kind, label.to_string()))
                .or_default()
                .push(path.to_string())
        };
        if path == def.dockerfile {
            add(ReasonKind::Dockerfile, "");
        }
        let is_ignore_file = path == specific_ignore
            || (path == root_ignore
                && image.ignore_file.as_deref() != Some(specific_ignore.as_str()));
        if is_ignore_file {
            add(ReasonKind::IgnoreFile, "");
        }
        // The Dockerfile and the ignore file have reasons of their own; as context files they
        // would only repeat them.
        let has_own_reason = path == def.dockerfile || is_ignore_file;
        if let Some(rel) = paths::strip_dir(path, &def.context)
            && !has_own_reason
        {
            if image.ignore.is_excluded(rel) {
                excluded.push(path.to_string());
            } else {
                add(ReasonKind::Context, "");
            }
        }
        for (name, context) in &def.contexts {
            if let NamedContext::Local(dir) = context
                && let Some(rel) = paths::strip_dir(path, dir)
            {
                let context_ignore = image.context_ignores.get(name);
                if context_ignore.and_then(|(file, _)| file.as_deref()) == Some(path) {
                    add(ReasonKind::IgnoreFile, name);
                } else if !context_ignore.is_some_and(|(_, rules)| rules.is_excluded(rel)) {
                    add(ReasonKind::NamedContext, name);
                }
            }
        }
        if extra.as_ref().is_some_and(|rules| rules.is_excluded(path)) {
            add(ReasonKind::Input, "");
        }
    }
    for ((kind, label), files) in buckets {
        let detail = match kind {
            ReasonKind::Dockerfile => format!("Dockerfile {} changed", def.dockerfile),
            ReasonKind::IgnoreFile if label.is_empty() => {
                format!("ignore file {} changed", files[0])
            }
            ReasonKind::IgnoreFile => format!(
                "ignore file {} of named context '{label}' changed",
                files[0]
            ),
            ReasonKind::Context => describe(&files, "files of its context"),
            ReasonKind::NamedContext => {
                format!("named context '{label}': {}", describe(&files, "files"))
            }
            _ => format!("input {}", describe(&files, "inputs")),
        };
        reasons.push(reason(kind, detail, files));
    }
    (reasons, excluded)
}

fn definition_reason(def: &ImageDef, base: &[ImageDef]) -> Option<Reason> {
    let Some(old) = base.iter().find(|b| b.name == def.name) else {
        return Some(reason(
            ReasonKind::NewImage,
            "new image (not defined at the base)".into(),
            Vec::new(),
        ));
    };
    let mut fields = Vec::new();
    let mut check = |name: &'static str, differs: bool| {
        if differs {
            fields.push(name);
        }
    };
    check("context", old.context != def.context);
    check("dockerfile", old.dockerfile != def.dockerfile);
    check("target", old.target != def.target);
    check("args", old.args != def.args);
    check("platforms", old.platforms != def.platforms);
    check("inputs", old.inputs != def.inputs);
    check("depends_on", old.depends_on != def.depends_on);
    check("contexts", old.contexts != def.contexts);
    check("image", old.repository != def.repository);
    (!fields.is_empty()).then(|| {
        let file = match &def.origin {
            Origin::Config(file) | Origin::Compose(file) => file.as_str(),
            Origin::Dockerfile => "its definition",
        };
        reason(
            ReasonKind::Definition,
            format!("{} changed in {file}", fields.join(", ")),
            Vec::new(),
        )
    })
}

fn parent_reasons(edges: &[Edge], graph: &Graph, affected: &[bool]) -> Vec<Reason> {
    edges
        .iter()
        .filter_map(|edge| {
            let parent = graph.names.iter().position(|n| *n == edge.parent)?;
            affected[parent].then(|| {
                let how = match edge.via {
                    "from" => "builds FROM",
                    "copy_from" => "copies from",
                    "mount_from" => "mounts from",
                    "context" => "uses as a named context",
                    _ => "depends on",
                };
                let at = edge
                    .line
                    .map(|l| format!(" (line {l})"))
                    .unwrap_or_default();
                reason(
                    ReasonKind::Parent,
                    format!("{how} '{}'{at}, which is rebuilt", edge.parent),
                    Vec::new(),
                )
            })
        })
        .collect()
}

fn why_not(ignored: &[String]) -> String {
    if ignored.is_empty() {
        "none of its inputs changed".to_string()
    } else {
        format!(
            "only files its ignore rules exclude changed ({})",
            describe(ignored, "files").trim_end_matches(" changed")
        )
    }
}

fn digests(
    input: &PlanInput<'_>,
    order: &[usize],
    global_rules: Option<&IgnoreRules>,
) -> Vec<String> {
    let images = &input.workspace.images;
    let global: Vec<&TreeEntry> = match global_rules {
        Some(rules) => input
            .snapshot
            .entries()
            .iter()
            .filter(|e| rules.is_excluded(&e.path))
            .collect(),
        None => Vec::new(),
    };
    let own = own_inputs_of_all(images, input.snapshot.listing(), &global);
    let mut own: Vec<Option<blake3::Hasher>> = own.into_iter().map(Some).collect();
    let mut digests = vec![String::new(); images.len()];
    for &i in order {
        let parents: Vec<(&str, &str)> = input.graph.parent_ids[i]
            .iter()
            .map(|&p| (input.graph.names[p].as_str(), digests[p].as_str()))
            .collect();
        let hasher = own[i].take().unwrap_or_default();
        digests[i] = digest::finish(hasher, &parents);
    }
    digests
}

/// [`digest::own_inputs`] of every image, spread over the machine's cores: in a large
/// repository, filtering and hashing the contexts is most of the plan's own work.
fn own_inputs_of_all(
    images: &[Image],
    listing: Listing<'_>,
    global: &[&TreeEntry],
) -> Vec<blake3::Hasher> {
    let hash = |image: &Image| {
        let extra = compile(&image.def.inputs);
        digest::own_inputs(image, listing, global, extra.as_ref())
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(images.len());
    if threads <= 1 {
        return images.iter().map(hash).collect();
    }
    // Images differ a lot in size, so each thread takes the next image until none is left.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut hashed: Vec<(usize, blake3::Hasher)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(image) = images.get(i) else {
                            return done;
                        };
                        done.push((i, hash(image)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    hashed.sort_unstable_by_key(|(i, _)| *i);
    hashed.into_iter().map(|(_, hasher)| hasher).collect()
}

fn planned_image(
    image: &Image,
    graph: &Graph,
    index: usize,
    reasons: Vec<Reason>,
    unaffected_because: Option<String>,
    level: Option<usize>,
    digest: &str,
) -> PlannedImage {
    let def = &image.def;
    PlannedImage {
        name: def.name.clone(),
        context: if def.context.is_empty() {
            ".".into()
        } else {
            def.context.clone()
        },
        dockerfile: def.dockerfile.clone(),
        target: def.target.clone(),
        affected: !reasons.is_empty(),
        selected_by: SelectedBy::of(&reasons),
        reasons,
        unaffected_because,
        level,
        depends_on: graph.parents[index]
            .iter()
            .map(|e| e.parent.clone())
            .collect(),
        inputs_digest: digest.to_string(),
        build_args: def.args.clone(),
        tags: def.tags.clone(),
        platforms: def.platforms.clone(),
    }
}

fn levels_of(images: &[PlannedImage]) -> Vec<Vec<String>> {
    let mut levels: Vec<Vec<String>> = Vec::new();
    for image in images {
        if let Some(level) = image.level {
            if levels.len() <= level {
                levels.resize(level + 1, Vec::new());
            }
            levels[level].push(image.name.clone());
        }
    }
    levels
}

fn removed_images(input: &PlanInput<'_>) -> Vec<RemovedImage> {
    let current: BTreeSet<&str> = input
        .workspace
        .images
        .iter()
        .map(|i| i.def.name.as_str())
        .collect();
    let mut removed = BTreeMap::new();
    if let Some(base) = input.base_definitions {
        for def in base.iter().filter(|d| !current.contains(d.name.as_str())) {
            removed.insert(def.name.clone(), "no longer defined".to_string());
        }
    }
    let discovering = input
        .workspace
        .images
        .iter()
        .all(|i| matches!(i.def.origin, Origin::Dockerfile));
    if discovering && input.mode == Mode::Selective {
        for change in input
            .changes
            .iter()
            .filter(|c| c.status == ChangeStatus::Deleted)
        {
            if let Some(name) = image_name_for(&change.path, &input.workspace.root)
                && !current.contains(name.as_str())
                && paths::strip_dir(&change.path, &input.workspace.root).is_some()
            {
                removed.insert(name, format!("its Dockerfile {} was deleted", change.path));
            }
        }
    }
    removed
        .into_iter()
        .map(|(name, detail)| RemovedImage { name, detail })
        .collect()
}
