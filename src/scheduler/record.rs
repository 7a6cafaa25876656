//! Planning against the build record: the run-time side of `plan::selection`.
//!
//! Owns: whether the record applies (the record-aware selection setting, caching on, a
//! selective plan, a store that recorded builds), reading the store's record, and asking the
//! daemon (and, when pushing, the registries) whether an image of each unrecorded inputs digest
//! exists under its `<repository>:inputs-<hex>` tag. Never fails a plan: a record that cannot be
//! read, a daemon that does not answer or a registry that refuses is a note on the plan saying
//! which check was skipped.

use std::collections::BTreeSet;

use super::credentials::Credentials;
use super::remote::{RemoteRef, digest_tag, registry_host};
use super::tags::split_reference;
use crate::cache::history::{BuildHistory, read_history};
use crate::engine::{DockerEngine, Engine};
use crate::env::Env;
use crate::plan::selection::{self, RecordSelection};
use crate::plan::{Mode, Plan, PlanInput};
use crate::settings::cache::CacheSettings;
use crate::settings::{ConfigError, SelectionMode, Settings};
use crate::workspace::Workspace;

/// What the record check may use.
#[derive(Debug, Clone, Copy)]
pub struct RecordSources<'a> {
    pub env: &'a Env,
    pub settings: &'a Settings,
    /// The run's cache settings: whether the cache is on, and where the store is.
    pub cache: &'a CacheSettings,
    /// `--push`: registries are asked too.
    pub push: bool,
    /// False for a plan that must contact no daemon (`build --dry-run`): the record alone
    /// selects, and a note says so.
    pub ask_daemon: bool,
}

/// One image whose inputs the record has no build of, and where an image of them would be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub image: String,
    /// `<repository>:inputs-<hex>` in the daemon.
    pub local: String,
    /// The same reference in its registry, when pushing and the repository names one.
    pub remote: Option<RemoteRef>,
}

/// What a plan is made with.
#[derive(Debug)]
enum Record {
    /// The diff decides alone: diff selection, caching off, a plan that builds everything, no
    /// store, or a store that recorded no build.
    NotInUse,
    /// The store's record could not be read: the diff decides alone, and the note says why.
    Unreadable(String),
    InUse(BuildHistory),
}

/// Plans `input`, against the build record when it applies (see the module docs).
pub fn plan(
    input: &PlanInput<'_>,
    workspace: &Workspace,
    sources: &RecordSources<'_>,
) -> Result<Plan, ConfigError> {
    Ok(match record(input, sources)? {
        Record::NotInUse => crate::plan::plan(input),
        Record::Unreadable(note) => {
            let mut plan = crate::plan::plan(input);
            plan.notes.push(note);
            plan
        }
        Record::InUse(history) => {
            crate::plan::plan_with_record(input, |diff| check(diff, workspace, &history, sources))
        }
    })
}

/// The record to plan against.
fn record(input: &PlanInput<'_>, sources: &RecordSources<'_>) -> Result<Record, ConfigError> {
    if sources.settings.selection == SelectionMode::Diff || input.mode != Mode::Selective {
        return Ok(Record::NotInUse);
    }
    let cache = sources.cache;
    if !cache.enabled {
        return Ok(Record::NotInUse);
    }
    Ok(match read_history(&cache.dir) {
        Ok(Some(history)) => Record::InUse(history),
        Ok(None) => Record::NotInUse,
        Err(error) => Record::Unreadable(format!(
            "the build record was not read ({error}): the diff alone selected the images"
        )),
    })
}

/// Which of the images the diff leaves out have no recorded build and no image anywhere, asking
/// the daemon the environment names.
fn check(
    diff: &Plan,
    workspace: &Workspace,
    history: &BuildHistory,
    sources: &RecordSources<'_>,
) -> RecordSelection {
    let mut notes = Vec::new();
    let credentials = if sources.push {
        Credentials::load(sources.env)
            .map_err(|error| {
                notes.push(format!(
                    "registries were not asked for images of unrecorded inputs: {error}"
                ));
            })
            .ok()
    } else {
        None
    };
    let mut selection = select_unbuilt(diff, workspace, history, credentials.as_ref(), |lookups| {
        match daemon_runtime(sources) {
            Ok((runtime, engine)) => runtime.block_on(find_existing(&engine, lookups)),
            Err(error) => {
                let note = format!(
                    "the daemon was not asked for images of unrecorded inputs ({error}); the \
                     record alone selected {}",
                    names(lookups)
                );
                (BTreeSet::new(), vec![note])
            }
        }
    });
    notes.append(&mut selection.notes);
    selection.notes = notes;
    selection
}

/// The images the diff leaves out whose inputs the record has no build of, less those `find`
/// says an image exists of (it gets the lookups and returns the images found and notes on the
/// questions it could not ask). `find` is not called when the record knows every image's inputs.
pub fn select_unbuilt(
    diff: &Plan,
    workspace: &Workspace,
    history: &BuildHistory,
    credentials: Option<&Credentials>,
    find: impl FnOnce(&[Lookup]) -> (BTreeSet<String>, Vec<String>),
) -> RecordSelection {
    let lookups: Vec<Lookup> = selection::unrecorded(diff, history)
        .into_iter()
        .filter_map(|image| {
            let def = &workspace
                .images
                .iter()
                .find(|i| i.def.name == image.name)?
                .def;
            Some(lookup(
                &image.name,
                &def.repository,
                &image.inputs_digest,
                credentials,
            ))
        })
        .collect();
    if lookups.is_empty() {
        return RecordSelection::default();
    }
    let (found, notes) = find(&lookups);
    RecordSelection {
        unbuilt: lookups
            .into_iter()
            .map(|l| l.image)
            .filter(|image| !found.contains(image))
            .collect(),
        notes,
    }
}

/// Where an image of `inputs_digest` would be: the daemon, and with `credentials` (pushing)
/// the registry its repository names.
pub fn lookup(
    image: &str,
    repository: &str,
    inputs_digest: &str,
    credentials: Option<&Credentials>,
) -> Lookup {
    let local = format!("{repository}:{}", digest_tag(inputs_digest));
    let remote = credentials.and_then(|credentials| {
        registry_host(repository).map(|server| RemoteRef {
            reference: local.clone(),
            auth: credentials.for_server(server),
        })
    });
    Lookup {
        image: image.to_owned(),
        local,
        remote,
    }
}

/// The images of `lookups` whose image exists in the daemon or, for those with a remote
/// reference, the registry; and a note per question that failed (the image then counts as
/// missing: building it is the safe side).
pub async fn find_existing<E: Engine>(
    engine: &E,
    lookups: &[Lookup],
) -> (BTreeSet<String>, Vec<String>) {
    let answers = futures_util::future::join_all(lookups.iter().map(|l| exists(engine, l))).await;
    let mut found = BTreeSet::new();
    let mut notes = Vec::new();
    for (lookup, answer) in lookups.iter().zip(answers) {
        match answer {
            Ok(true) => {
                found.insert(lookup.image.clone());
            }
            Ok(false) => {}
            Err(note) => notes.push(note),
        }
    }
    (found, notes)
}

/// Whether an image of the lookup exists: in the daemon, else in the registry.
async fn exists<E: Engine>(engine: &E, lookup: &Lookup) -> Result<bool, String> {
    let in_daemon = engine.inspect(&lookup.local).await.map_err(|error| {
        format!(
            "the daemon was not asked for {} ({error}); the record alone selected it",
            lookup.local
        )
    })?;
    if in_daemon.is_some() {
        return Ok(true);
    }
    let Some(remote) = &lookup.remote else {
        return Ok(false);
    };
    let (repo, tag) = split_reference(&remote.reference);
    let tag = tag.unwrap_or_else(|| "latest".to_owned());
    let digest = engine
        .registry_digest(&repo, &tag, remote.auth.as_ref())
        .await
        .map_err(|error| {
            format!(
                "the registry was not asked for {} ({error}); the record alone selected it",
                remote.reference
            )
        })?;
    Ok(digest.is_some())
}

/// A runtime and a connection to the daemon the environment names; the error says why there is
/// none.
fn daemon_runtime(
    sources: &RecordSources<'_>,
) -> Result<(tokio::runtime::Runtime, DockerEngine), String> {
    if !sources.ask_daemon {
        return Err("--dry-run contacts no daemon".to_owned());
    }
    let env = sources.env;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    let host = env.get("DOCKER_HOST");
    let cert_path = env.get("DOCKER_CERT_PATH").map(std::path::Path::new);
    let tls_verify = env.is_true("DOCKER_TLS_VERIFY");
    let engine = runtime
        .block_on(DockerEngine::connect(host, cert_path, tls_verify))
        .map_err(|error| error.to_string())?;
    Ok((runtime, engine))
}

fn names(lookups: &[Lookup]) -> String {
    lookups
        .iter()
        .map(|l| l.image.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::FakeEngine;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    fn credentials() -> Credentials {
        Credentials::load(&Env::from_pairs([
            ("BUILDOPT_REGISTRY_USER", "u"),
            ("BUILDOPT_REGISTRY_PASSWORD", "p"),
        ]))
        .expect("credentials")
    }

    use crate::cache::history::{Attempt, AttemptOutcome};
    use crate::git::{Change, ChangeStatus};
    use crate::plan::{Graph, PlanRange, SelectedBy};
    use crate::settings::file::FileOptions;
    use crate::settings::{Flags, Settings};
    use crate::workspace::fake::FakeTree;
    use crate::workspace::{Location, load};

    /// The issue's repository: `api` and `worker` build FROM `base`; `linter` stands alone.
    const REPO: &[(&str, &str)] = &[
        ("base/Dockerfile", "FROM busybox\nCOPY motd /etc/motd\n"),
        ("base/motd", "fixed\n"),
        ("api/Dockerfile", "FROM base\nCOPY . /api\n"),
        ("worker/Dockerfile", "FROM base\nCOPY . /worker\n"),
        ("linter/Dockerfile", "FROM busybox\nCOPY . /lint\n"),
        ("linter/lint.sh", "lint v2\n"),
    ];

    /// Plans `REPO` after a change of the linter only, with `check` deciding the record.
    fn plan_linter_change(check: impl FnOnce(&Plan, &Workspace) -> RecordSelection) -> Plan {
        let tree = FakeTree::with(REPO);
        let snapshot = tree.snapshot();
        let workspace = load(&snapshot, &Location::default()).expect("workspace");
        let graph = Graph::build(&workspace.images).expect("graph");
        let changes = [Change {
            status: ChangeStatus::Modified,
            path: "linter/lint.sh".into(),
        }];
        let input = PlanInput {
            workspace: &workspace,
            snapshot: &snapshot,
            graph: &graph,
            changes: &changes,
            mode: Mode::Selective,
            range: PlanRange {
                base: Some("b".repeat(40)),
                head: "h".repeat(40),
                reason: "test".into(),
            },
            base_definitions: None,
        };
        crate::plan::plan_with_record(&input, |diff| check(diff, &workspace))
    }

    /// A record where `base` failed at older inputs and every other image built its current
    /// inputs (those of `diff`).
    fn base_failed(diff: &Plan) -> BuildHistory {
        let mut history = BuildHistory::default();
        for image in &diff.images {
            let (digest, outcome) = match image.name.as_str() {
                "base" => ("blake3:older".to_owned(), AttemptOutcome::Failed),
                "api" | "worker" => ("blake3:older".to_owned(), AttemptOutcome::Skipped),
                _ => (image.inputs_digest.clone(), AttemptOutcome::Built),
            };
            history.record(
                &image.name,
                Attempt {
                    inputs_digest: digest,
                    outcome,
                    at: 1,
                },
            );
        }
        history
    }

    fn nothing_found(_: &[Lookup]) -> (BTreeSet<String>, Vec<String>) {
        (BTreeSet::new(), Vec::new())
    }

    fn selected(plan: &Plan) -> Vec<(&str, Option<SelectedBy>)> {
        plan.affected()
            .map(|i| (i.name.as_str(), i.selected_by))
            .collect()
    }

    #[test]
    fn images_whose_last_build_failed_build_with_their_dependents() {
        let plan = plan_linter_change(|diff, workspace| {
            select_unbuilt(diff, workspace, &base_failed(diff), None, nothing_found)
        });
        assert_eq!(
            selected(&plan),
            [
                ("base", Some(SelectedBy::Record)),
                ("linter", Some(SelectedBy::Diff)),
                ("api", Some(SelectedBy::Record)),
                ("worker", Some(SelectedBy::Record)),
            ]
        );
        let base = plan.images.iter().find(|i| i.name == "base").expect("base");
        assert_eq!(base.reasons[0].detail, selection::RECORD_REASON);
        let api = plan.images.iter().find(|i| i.name == "api").expect("api");
        assert_eq!(
            api.reasons.iter().map(|r| r.kind).collect::<Vec<_>>(),
            [
                crate::plan::ReasonKind::Record,
                crate::plan::ReasonKind::Parent
            ]
        );
        assert_eq!(plan.levels, [vec!["base", "linter"], vec!["api", "worker"]]);
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    }

    #[test]
    fn recorded_inputs_are_not_rebuilt_even_with_their_blobs_pruned() {
        // Every image built its current inputs; the store may have dropped every image since.
        let plan = plan_linter_change(|diff, workspace| {
            let mut history = BuildHistory::default();
            for image in &diff.images {
                history.record(
                    &image.name,
                    Attempt {
                        inputs_digest: image.inputs_digest.clone(),
                        outcome: AttemptOutcome::Built,
                        at: 1,
                    },
                );
            }
            select_unbuilt(diff, workspace, &history, None, |_| {
                panic!("nothing to look for")
            })
        });
        assert_eq!(selected(&plan), [("linter", Some(SelectedBy::Diff))]);
    }

    #[test]
    fn an_image_of_the_inputs_in_the_daemon_is_not_rebuilt() {
        let engine = FakeEngine::new();
        let mut asked = Vec::new();
        let plan = plan_linter_change(|diff, workspace| {
            let base = diff.images.iter().find(|i| i.name == "base").expect("base");
            engine.add_image(&[&format!("base:{}", digest_tag(&base.inputs_digest))], &[]);
            select_unbuilt(diff, workspace, &base_failed(diff), None, |lookups| {
                asked = lookups.iter().map(|l| l.image.clone()).collect();
                block_on(find_existing(&engine, lookups))
            })
        });
        assert_eq!(
            asked,
            ["api", "base", "worker"],
            "only what the diff left out"
        );
        // base exists: neither it nor, through it, its children are selected by dependency;
        // api and worker still have no build of their own inputs.
        assert_eq!(
            selected(&plan),
            [
                ("api", Some(SelectedBy::Record)),
                ("linter", Some(SelectedBy::Diff)),
                ("worker", Some(SelectedBy::Record)),
            ]
        );
    }

    #[test]
    fn without_a_daemon_the_record_alone_selects_and_the_plan_says_so() {
        let plan = plan_linter_change(|diff, workspace| {
            select_unbuilt(diff, workspace, &base_failed(diff), None, |lookups| {
                (
                    BTreeSet::new(),
                    vec![format!("no daemon: {}", names(lookups))],
                )
            })
        });
        assert_eq!(plan.affected().count(), 4);
        assert_eq!(plan.notes, ["no daemon: api, base, worker"]);
    }

    #[test]
    fn the_record_applies_only_to_record_selection_with_caching_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join(".build_cache");
        std::fs::create_dir(&store).expect("mkdir");
        let mut index = crate::cache::Index::default();
        index.history.record(
            "base",
            Attempt {
                inputs_digest: "blake3:1".into(),
                outcome: AttemptOutcome::Failed,
                at: 1,
            },
        );
        std::fs::write(
            store.join("index.json"),
            serde_json::to_vec(&index).expect("json"),
        )
        .expect("write");
        let tree = FakeTree::with(REPO);
        let snapshot = tree.snapshot();
        let workspace = load(&snapshot, &Location::default()).expect("workspace");
        let graph = Graph::build(&workspace.images).expect("graph");
        let input = |mode| PlanInput {
            workspace: &workspace,
            snapshot: &snapshot,
            graph: &graph,
            changes: &[],
            mode,
            range: PlanRange {
                base: None,
                head: "h".repeat(40),
                reason: "test".into(),
            },
            base_definitions: None,
        };
        let applies = |pairs: &[(&str, &str)], mode| {
            let env = Env::from_pairs(pairs.iter().copied());
            let (settings, cache) = resolved(&env, dir.path());
            let sources = RecordSources {
                env: &env,
                settings: &settings,
                cache: &cache,
                push: false,
                ask_daemon: false,
            };
            match record(&input(mode), &sources).expect("resolves") {
                Record::InUse(history) => Some(history.attempts.len()),
                Record::NotInUse => None,
                Record::Unreadable(note) => panic!("{note}"),
            }
        };
        assert_eq!(applies(&[], Mode::Selective), Some(1));
        assert_eq!(
            applies(&[("BUILDOPT_SELECTION", "diff")], Mode::Selective),
            None
        );
        assert_eq!(
            applies(&[("BUILDOPT_CACHE", "false")], Mode::Selective),
            None
        );
        assert_eq!(
            applies(&[("BUILDOPT_LEVEL", "minimal")], Mode::Selective),
            None
        );
        let everything = Mode::All {
            kind: crate::plan::ReasonKind::Forced,
            detail: "forced".into(),
        };
        assert_eq!(applies(&[], everything), None);
        assert_eq!(
            applies(&[("BUILDOPT_CACHE_DIR", "elsewhere")], Mode::Selective),
            None,
            "no store: the diff decides alone"
        );
        // A record of a newer buildopt: a note, never a failed plan.
        std::fs::write(store.join("index.json"), br#"{"version":9,"images":[]}"#).expect("write");
        let env = Env::from_pairs([("CI", "true")]);
        let (settings, cache) = resolved(&env, dir.path());
        let sources = RecordSources {
            env: &env,
            settings: &settings,
            cache: &cache,
            push: false,
            ask_daemon: false,
        };
        let planned = plan(&input(Mode::Selective), &workspace, &sources).expect("a plan");
        assert!(planned.is_empty(), "the diff alone: nothing changed");
        assert_eq!(planned.notes.len(), 1, "{:?}", planned.notes);
        assert!(
            planned.notes[0].contains("the build record was not read"),
            "{:?}",
            planned.notes
        );
    }

    #[test]
    fn a_lookup_names_the_inputs_tag_and_its_registry_only_when_pushing() {
        let local = lookup("base", "acme/base", "blake3:abcd", None);
        assert_eq!(local.local, "acme/base:inputs-abcd");
        assert_eq!(local.remote, None);
        let credentials = credentials();
        let pushed = lookup("base", "reg:5000/base", "blake3:ab", Some(&credentials));
        let remote = pushed.remote.expect("a registry");
        assert_eq!(remote.reference, "reg:5000/base:inputs-ab");
        assert_eq!(remote.auth.map(|a| a.server), Some("reg:5000".into()));
        // A repository without a registry host is only looked for in the daemon.
        assert_eq!(
            lookup("base", "acme/base", "blake3:ab", Some(&credentials)).remote,
            None
        );
    }

    #[test]
    fn an_image_in_the_daemon_or_the_registry_exists_and_others_do_not() {
        let engine = FakeEngine::new();
        engine.add_image(&["acme/base:inputs-aa"], &[]);
        engine.add_registry_image("reg:5000/api:inputs-bb", &[]);
        let credentials = credentials();
        let lookups = [
            lookup("base", "acme/base", "blake3:aa", None),
            lookup("api", "reg:5000/api", "blake3:bb", Some(&credentials)),
            lookup("worker", "reg:5000/worker", "blake3:cc", Some(&credentials)),
            // Not pushing: the registry is not asked.
            lookup("tool", "reg:5000/api", "blake3:bb", None),
        ];
        let (found, notes) = block_on(find_existing(&engine, &lookups));
        assert_eq!(found, BTreeSet::from(["base".into(), "api".into()]));
        assert!(notes.is_empty(), "{notes:?}");
    }

    /// The general and cache settings `env` resolves to, with stores relative to `dir`.
    fn resolved(env: &Env, dir: &std::path::Path) -> (Settings, CacheSettings) {
        let file = FileOptions::default();
        let settings = Settings::resolve(&Flags::default(), env, &file, 1).expect("settings");
        let flags = crate::settings::cache::CacheFlags::default();
        let cache = CacheSettings::resolve(&flags, env, &file, settings.level, dir)
            .expect("cache settings");
        (settings, cache)
    }
}
