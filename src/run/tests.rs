//! The whole run (plan → jobs → outcomes → RunReport) on the recording fake engine, in a
//! throwaway git repository: the code the daemon runs, without a daemon.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use super::plan::{PlanRequest, plan_with_workspace};
use super::*;
use crate::context::{Context, read_config};
use crate::engine::fake::{FakeCall, FakeEngine};
use crate::engine::{DaemonInfo, ImageStore};
use crate::env::Env;
use crate::report::model::ImageResult;
use crate::scheduler::DIGEST_LABEL;
use crate::scheduler::remote::digest_tag;
use crate::settings::{RunFlags, RunSettings};

/// Two images, `app` building FROM `base`, and `tool` on its own.
const FILES: &[(&str, &str)] = &[
    (
        "buildopt.toml",
        "[images.base]\nimage = \"t/base\"\ncontext = \"base\"\n\n\
         [images.app]\nimage = \"t/app\"\ncontext = \"app\"\n\n\
         [images.tool]\nimage = \"t/tool\"\ncontext = \"tool\"\n",
    ),
    ("base/Dockerfile", "FROM busybox:latest\nRUN echo base\n"),
    ("app/Dockerfile", "FROM t/base\nCOPY app.txt /\n"),
    ("app/app.txt", "app\n"),
    ("tool/Dockerfile", "FROM busybox:latest\nRUN echo tool\n"),
];

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args([
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

/// A repository with [`FILES`] in one commit.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in FILES {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "images"]);
    dir
}

/// The invocation in `dir`, in an environment of `env`.
fn context_with_env(dir: &Path, env: &[(&str, &str)]) -> Context {
    let config = dir.join("buildopt.toml");
    let file = read_config(&config).expect("config");
    let env = Env::from_pairs(env.iter().copied());
    let settings = RunSettings::resolve(&RunFlags::default(), &env, &file, dir, 2).expect("ok");
    Context {
        settings,
        dir: dir.to_path_buf(),
        file,
        config_path: Some(config),
        env,
        verbose: 0,
        quiet: true,
        format: crate::cli::Format::Human,
        redactor: Redactor::default(),
    }
}

fn daemon_info() -> DaemonInfo {
    DaemonInfo {
        address: "fake".into(),
        server_version: "20.10.24".into(),
        api_version: "1.41".into(),
        os: "linux".into(),
        arch: "amd64".into(),
        buildkit: false,
        image_store: ImageStore::Classic,
        storage_driver: "overlay2".into(),
    }
}

/// Everything a run reads, for the repository in `dir`, planned at its head.
struct Fixture {
    ctx: Context,
    settings: Settings,
    cache: CacheSettings,
    git: Git,
    plan: Plan,
    workspace: Workspace,
    ci: CiContext,
    hooks: Hooks,
    /// Set to push (`--push`).
    credentials: Option<crate::scheduler::credentials::Credentials>,
}

impl Fixture {
    fn new(dir: &Path) -> Self {
        Self::with_env(dir, &[])
    }

    /// [`Fixture::new`] in an environment of `env`.
    fn with_env(dir: &Path, env: &[(&str, &str)]) -> Self {
        let ctx = context_with_env(dir, env);
        let settings = ctx.settings.core.clone();
        let cache = ctx.settings.cache.clone();
        let git = Git::open(dir).expect("git");
        let (plan, workspace) =
            plan_with_workspace(&ctx, &settings, &git, &PlanRequest::default()).expect("plan");
        Self {
            ci: ctx.settings.ci.clone(),
            ctx,
            settings,
            cache,
            git,
            plan,
            workspace,
            hooks: Hooks::none(),
            credentials: None,
        }
    }

    fn inputs<'a>(&'a self, options: &'a RunOptions) -> RunInputs<'a> {
        RunInputs {
            options,
            settings: &self.settings,
            cache: &self.cache,
            git: &self.git,
            plan: &self.plan,
            workspace: &self.workspace,
            ci: &self.ci,
            hooks: &self.hooks,
            redactor: &self.ctx.redactor,
            credentials: self.credentials.as_ref(),
            source_url: None,
        }
    }

    /// Runs on `engine` without a cache store; returns the report and what the run said.
    fn run(&self, engine: &FakeEngine, options: &RunOptions) -> (RunReport, Vec<String>) {
        let (report, said) = self.run_on(engine, options, &daemon_info());
        (report.expect("run"), said)
    }

    /// Runs on `engine`, which describes itself as `info`, without a cache store.
    fn run_on(
        &self,
        engine: &FakeEngine,
        options: &RunOptions,
        info: &DaemonInfo,
    ) -> (Result<RunReport, RunError>, Vec<String>) {
        self.run_with(engine, options, info, None)
    }

    /// Runs on `engine`, which describes itself as `info`, with `cache` around the run.
    fn run_with(
        &self,
        engine: &FakeEngine,
        options: &RunOptions,
        info: &DaemonInfo,
        cache: Option<&dyn RunCache>,
    ) -> (Result<RunReport, RunError>, Vec<String>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let said = Mutex::new(Vec::new());
        let say = |line: &str| said.lock().expect("lock").push(line.to_string());
        let observers = Observers {
            progress: &|_| {},
            say: &say,
        };
        let run = Run::new(self.inputs(options)).expect("selection");
        let report = run.execute(&runtime, engine, info, cache, &observers);
        (report, said.into_inner().expect("lock"))
    }

    fn digest_of(&self, name: &str) -> String {
        let image = self.plan.images.iter().find(|i| i.name == name);
        image.expect("planned").inputs_digest.clone()
    }
}

fn result_of(report: &RunReport, name: &str) -> (ImageResult, Option<String>) {
    let image = report.images.iter().find(|i| i.name == name).expect(name);
    (image.result, image.skip_reason.clone())
}

fn built_tags(engine: &FakeEngine) -> Vec<String> {
    let builds = engine.calls().into_iter().filter_map(|call| match call {
        FakeCall::Build { tags, .. } => Some(tags[0].clone()),
        _ => None,
    });
    builds.collect()
}

#[test]
fn an_image_whose_inputs_exist_is_reused_and_the_others_are_built() {
    let repo = repository();
    let fixture = Fixture::new(repo.path());
    let engine = FakeEngine::new();
    let tool = fixture.digest_of("tool");
    engine.add_image(
        &[&format!("t/tool:{}", digest_tag(&tool))],
        &[(DIGEST_LABEL, &tool)],
    );
    let (report, _) = fixture.run(&engine, &RunOptions::default());

    assert_eq!(result_of(&report, "base").0, ImageResult::Built);
    assert_eq!(result_of(&report, "app").0, ImageResult::Built);
    assert_eq!(result_of(&report, "tool").0, ImageResult::Reused);
    assert_eq!(built_tags(&engine), ["t/base:latest", "t/app:latest"]);
    let app = report.images.iter().find(|i| i.name == "app").expect("app");
    assert!(app.tags.contains(&"t/app:latest".to_string()), "{app:?}");
    assert!(app.image_id.is_some() && app.context.is_some(), "{app:?}");
    assert_eq!(
        report.run.engine.as_ref().expect("engine").version,
        "20.10.24"
    );
    assert_eq!(report.run.head, fixture.plan.range.head);
    assert!(!report.has_failures() && report.cache.is_none());
}

#[test]
fn a_built_image_carries_its_inputs_digest_and_revision_labels() {
    let repo = repository();
    let fixture = Fixture::new(repo.path());
    let engine = FakeEngine::new();
    fixture.run(&engine, &RunOptions::default());
    let labels = engine.calls().into_iter().find_map(|call| match call {
        FakeCall::Build { tags, labels, .. } if tags[0] == "t/base:latest" => Some(labels),
        _ => None,
    });
    let labels = labels.expect("base built");
    assert_eq!(labels[DIGEST_LABEL], fixture.digest_of("base"));
    assert_eq!(
        labels["org.opencontainers.image.revision"],
        fixture.plan.range.head
    );
}

#[test]
fn a_failed_parent_skips_its_child_and_keep_going_builds_the_rest() {
    let repo = repository();
    let fixture = Fixture::new(repo.path());
    let engine = FakeEngine::new();
    engine.fail_builds_tagged("t/base:latest", "exit code 1");
    let options = RunOptions {
        keep_going: true,
        ..RunOptions::default()
    };
    let (report, _) = fixture.run(&engine, &options);

    assert_eq!(result_of(&report, "base").0, ImageResult::Failed);
    let base = report
        .images
        .iter()
        .find(|i| i.name == "base")
        .expect("base");
    assert!(
        base.failure.is_some() && base.image_id.is_none(),
        "{base:?}"
    );
    let (app, why) = result_of(&report, "app");
    assert_eq!(app, ImageResult::Skipped);
    assert_eq!(why.as_deref(), Some("parent failed"));
    assert_eq!(result_of(&report, "tool").0, ImageResult::Built);
    assert!(!built_tags(&engine).contains(&"t/app:latest".to_string()));
    assert!(report.has_failures());
    assert_eq!(daemon::ending(&report), crate::exit::Ending::BuildFailed);
}

#[test]
fn only_builds_the_named_image_and_what_it_builds_from() {
    let repo = repository();
    let fixture = Fixture::new(repo.path());
    let engine = FakeEngine::new();
    let options = RunOptions {
        only: vec!["app".into()],
        ..RunOptions::default()
    };
    let (report, _) = fixture.run(&engine, &options);

    assert_eq!(built_tags(&engine), ["t/base:latest", "t/app:latest"]);
    let (tool, why) = result_of(&report, "tool");
    assert_eq!(tool, ImageResult::Skipped);
    assert_eq!(why.as_deref(), Some("not selected by --only"));
    let base = report
        .images
        .iter()
        .find(|i| i.name == "base")
        .expect("base");
    assert_eq!(base.reasons[0].kind, ReasonKind::Parent);
}

#[test]
fn an_unknown_only_name_fails_before_any_engine_call() {
    let repo = repository();
    let fixture = Fixture::new(repo.path());
    let options = RunOptions {
        only: vec!["nope".into()],
        ..RunOptions::default()
    };
    let error = Run::new(fixture.inputs(&options)).err().expect("refused");
    assert!(
        matches!(&error, RunError::UnknownImage { name, .. } if name == "nope"),
        "{error}"
    );
}

/// A repository whose one image is for two platforms.
fn two_platform_repository() -> tempfile::TempDir {
    two_platform_repository_of("t/tool")
}

/// A repository whose one image, of `repository`, is for linux/arm64 and linux/amd64.
fn two_platform_repository_of(image: &str) -> tempfile::TempDir {
    let dir = repository();
    std::fs::write(
        dir.path().join("buildopt.toml"),
        format!(
            "[images.tool]\nimage = \"{image}\"\ncontext = \"tool\"\n\
             platforms = [\"linux/arm64\", \"linux/amd64\"]\n"
        ),
    )
    .expect("write");
    git(dir.path(), &["commit", "-q", "-am", "two platforms"]);
    dir
}

fn docker28(store: ImageStore) -> DaemonInfo {
    DaemonInfo {
        server_version: "28.5.2".into(),
        api_version: "1.51".into(),
        buildkit: true,
        image_store: store,
        ..daemon_info()
    }
}

/// The platforms of each build the engine was asked for, in order.
fn build_platforms(engine: &FakeEngine) -> Vec<Vec<String>> {
    engine
        .calls()
        .into_iter()
        .filter_map(|call| match call {
            FakeCall::Build { platforms, .. } => Some(platforms),
            _ => None,
        })
        .collect()
}

#[test]
fn an_image_for_two_platforms_is_one_build_and_reports_each_platform() {
    let repo = two_platform_repository();
    let fixture = Fixture::new(repo.path());
    let engine = FakeEngine::new();
    let (report, _) = fixture.run_on(
        &engine,
        &RunOptions::default(),
        &docker28(ImageStore::Containerd),
    );
    let report = report.expect("run");

    let builds = build_platforms(&engine);
    assert_eq!(builds, [vec!["linux/arm64", "linux/amd64"]]);
    let tool = report
        .images
        .iter()
        .find(|i| i.name == "tool")
        .expect("tool");
    assert_eq!(tool.result, ImageResult::Built);
    let platforms: Vec<(&str, u64)> = tool
        .platforms
        .iter()
        .map(|p| (p.platform.as_str(), p.size))
        .collect();
    let size = crate::engine::fake::IMAGE_SIZE;
    assert_eq!(platforms, [("linux/arm64", size), ("linux/amd64", size)]);
    assert_ne!(tool.platforms[0].manifest, tool.platforms[1].manifest);
    for platform in ["linux/amd64", "linux/arm64"] {
        assert_eq!(tool.steps_of(platform).count(), 1, "{platform}: {tool:?}");
    }

    // The index is reused by its inputs digest, platforms and all.
    let (again, _) = fixture.run_on(
        &engine,
        &RunOptions::default(),
        &docker28(ImageStore::Containerd),
    );
    let again = again.expect("run");
    let tool = again
        .images
        .iter()
        .find(|i| i.name == "tool")
        .expect("tool");
    assert_eq!(tool.result, ImageResult::Reused);
    assert_eq!(tool.platforms.len(), 2, "{tool:?}");
}

#[test]
fn the_scripts_buildx_platforms_makes_every_image_without_its_own_one_index() {
    let repo = repository();
    let env = [("BUILDX_PLATFORMS", "linux/arm64,linux/amd64")];
    let fixture = Fixture::with_env(repo.path(), &env);
    let engine = FakeEngine::new();
    let info = docker28(ImageStore::Containerd);
    let (report, _) = fixture.run_on(&engine, &RunOptions::default(), &info);
    report.expect("run");
    let builds = build_platforms(&engine);
    assert!(!builds.is_empty());
    assert!(
        builds
            .iter()
            .all(|platforms| platforms == &["linux/arm64", "linux/amd64"]),
        "{builds:?}"
    );
    // Unset, the same images build for the daemon's platform.
    let plain = Fixture::new(repo.path());
    assert_ne!(
        plain.plan.images[0].inputs_digest, fixture.plan.images[0].inputs_digest,
        "the platforms are part of the inputs digest"
    );
}

#[test]
fn on_the_classic_store_an_image_for_two_platforms_is_refused_before_any_build() {
    let repo = two_platform_repository();
    let fixture = Fixture::new(repo.path());
    let engine = FakeEngine::new();
    let (report, _) = fixture.run_on(
        &engine,
        &RunOptions::default(),
        &docker28(ImageStore::Classic),
    );
    let error = report.expect_err("refused");
    let line = error.to_string();
    assert!(
        line.starts_with("image 'tool' is for 2 platforms (linux/arm64, linux/amd64), but"),
        "{line}"
    );
    assert!(
        line.contains("containerd image store") && !line.contains('\n'),
        "{line}"
    );
    assert_eq!(
        crate::error::Error::Run(error).exit_code(),
        crate::exit::ENVIRONMENT
    );
    let built = engine
        .calls()
        .into_iter()
        .any(|call| matches!(call, FakeCall::Build { .. }));
    assert!(!built, "{:?}", engine.calls());
}

#[test]
fn on_the_classic_store_a_pushed_image_for_two_platforms_is_built_per_platform_and_listed() {
    let repo = two_platform_repository_of("127.0.0.1:5000/t/tool");
    let mut fixture = Fixture::new(repo.path());
    fixture.credentials = Some(crate::scheduler::credentials::Credentials::default());
    let engine = FakeEngine::new();
    let options = RunOptions {
        push: true,
        ..RunOptions::default()
    };
    let (report, _) = fixture.run_on(&engine, &options, &docker28(ImageStore::Classic));
    let report = report.expect("run");

    let calls = engine.calls();
    // One build per platform, the engine's own (linux/amd64) first, each with platform tags.
    let builds: Vec<(Vec<String>, String)> = calls
        .iter()
        .filter_map(|call| match call {
            FakeCall::Build {
                platforms, tags, ..
            } => Some((platforms.clone(), tags[0].clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        builds,
        [
            (
                vec!["linux/amd64".to_owned()],
                "127.0.0.1:5000/t/tool:latest-linux-amd64".to_owned()
            ),
            (
                vec!["linux/arm64".to_owned()],
                "127.0.0.1:5000/t/tool:latest-linux-arm64".to_owned()
            ),
        ]
    );
    let lists: Vec<(String, Vec<(String, String)>)> = calls
        .iter()
        .filter_map(|call| match call {
            FakeCall::PushManifestList {
                reference,
                platforms,
            } => Some((reference.clone(), platforms.clone())),
            _ => None,
        })
        .collect();
    let digest_tag = digest_tag(&fixture.digest_of("tool"));
    let list_of = |tag: &str| {
        (
            format!("127.0.0.1:5000/t/tool:{tag}"),
            vec![
                ("linux/amd64".to_owned(), format!("{tag}-linux-amd64")),
                ("linux/arm64".to_owned(), format!("{tag}-linux-arm64")),
            ],
        )
    };
    assert_eq!(lists, [list_of("latest"), list_of(&digest_tag)]);
    let tool = report
        .images
        .iter()
        .find(|i| i.name == "tool")
        .expect("tool");
    assert_eq!(tool.result, ImageResult::Built);
    assert_eq!(tool.platforms.len(), 2, "{tool:?}");
    assert!(
        tool.digest
            .as_deref()
            .is_some_and(|d| d.starts_with("127.0.0.1:5000/t/tool@sha256:")),
        "the list's digest: {tool:?}"
    );
    assert_eq!(tool.steps_of("linux/arm64").count(), 1, "{tool:?}");
}

/// A cache that records what the run asked of it.
#[derive(Default)]
struct RecordingCache {
    store: std::path::PathBuf,
    restored: Mutex<Vec<BTreeSet<String>>>,
    exported: Mutex<Vec<Vec<(String, ImageResult)>>>,
}

impl RunCache for RecordingCache {
    fn store_dir(&self) -> &Path {
        &self.store
    }

    fn restore(&self, repositories: &BTreeSet<String>) -> crate::report::model::CacheRestore {
        self.restored
            .lock()
            .expect("lock")
            .push(repositories.clone());
        crate::report::model::CacheRestore {
            loaded: vec!["t/base".into()],
            ..Default::default()
        }
    }

    fn export(&self, report: &RunReport) -> crate::report::model::CacheExport {
        let results = report.images.iter().map(|i| (i.name.clone(), i.result));
        self.exported.lock().expect("lock").push(results.collect());
        crate::report::model::CacheExport {
            saved: vec!["t/app".into()],
            ..Default::default()
        }
    }
}

/// Runs `--only app` with a [`RecordingCache`] whose store is a new temporary folder.
fn run_app_with_recording_cache(
    fixture: &Fixture,
) -> (RunReport, RecordingCache, tempfile::TempDir) {
    let store = tempfile::tempdir().expect("store");
    let cache = RecordingCache {
        store: store.path().to_path_buf(),
        ..RecordingCache::default()
    };
    let options = RunOptions {
        only: vec!["app".into()],
        ..RunOptions::default()
    };
    let engine = FakeEngine::new();
    let (report, _) = fixture.run_with(&engine, &options, &daemon_info(), Some(&cache));
    (report.expect("run"), cache, store)
}

#[test]
fn the_cache_restores_the_selection_before_the_build_and_saves_its_outcome_after() {
    let repo = repository();
    let mut fixture = Fixture::new(repo.path());
    fixture.cache.enabled = true;
    let (report, cache, store) = run_app_with_recording_cache(&fixture);

    let restored = cache.restored.into_inner().expect("lock");
    let wanted = BTreeSet::from(["t/app".to_string(), "t/base".to_string()]);
    assert_eq!(restored, [wanted]);
    let exported = cache.exported.into_inner().expect("lock");
    assert_eq!(exported.len(), 1);
    assert!(exported[0].contains(&("app".to_string(), ImageResult::Built)));
    let section = report.cache.expect("cache section");
    assert_eq!(section.store, store.path().display().to_string());
    assert_eq!(section.restore.loaded, ["t/base"]);
    assert_eq!(section.export.expect("exported").saved, ["t/app"]);
}

#[test]
fn restoring_all_loads_every_image_of_the_workspace_while_building_only_the_selection() {
    let repo = repository();
    let mut fixture = Fixture::new(repo.path());
    fixture.cache.enabled = true;
    fixture.cache.restore = crate::settings::cache::RestoreScope::All;
    let (report, cache, _store) = run_app_with_recording_cache(&fixture);

    let restored = cache.restored.into_inner().expect("lock");
    let every = BTreeSet::from(["t/app".into(), "t/base".into(), "t/tool".to_string()]);
    assert_eq!(restored, [every]);
    let built: Vec<&str> = report
        .images
        .iter()
        .filter(|i| i.result == ImageResult::Built)
        .map(|i| i.name.as_str())
        .collect();
    // base builds too: the fake engine holds no image of it to reuse.
    assert!(
        built.contains(&"app") && !built.contains(&"tool"),
        "tool is restored, not built: {built:?}"
    );
}
