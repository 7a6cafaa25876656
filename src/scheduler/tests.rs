//! Scheduler tests on the recording fake engine.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::*;
use crate::engine::fake::{FakeCall, FakeEngine};
use crate::engine::{BuildRequest, Dockerfile};
use crate::notify::secret::{Redactor, Secret};

fn job(name: &str, parents: &[(usize, &str)]) -> Job {
    let mut request = BuildRequest::new(Vec::new(), Dockerfile::Contents(name.as_bytes().to_vec()));
    request.tags = vec![format!("{name}:latest")];
    request.labels = BTreeMap::from([(DIGEST_LABEL.to_string(), format!("digest-{name}"))]);
    Job {
        name: name.into(),
        request,
        parents: parents
            .iter()
            .map(|(job, reference)| ParentRef {
                job: *job,
                references: vec![(*reference).to_string()],
            })
            .collect(),
        inputs_digest: format!("digest-{name}"),
        digest_ref: format!("{name}:inputs-digest"),
        reuse: true,
        publish: None,
        stages: Vec::new(),
        per_platform: false,
    }
}

fn run_on(engine: &FakeEngine, jobs: &[Job], options: Options) -> RunOutcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(run(engine, jobs, options, &|_| {}, std::future::pending()))
        .expect("run")
}

/// No hooks, for the tests that do not exercise them.
static NO_HOOKS: std::sync::LazyLock<Hooks> = std::sync::LazyLock::new(Hooks::none);

/// A run that holds no secrets.
static NO_SECRETS: std::sync::LazyLock<Redactor> = std::sync::LazyLock::new(Redactor::default);

fn sequential(keep_going: bool) -> Options<'static> {
    Options {
        jobs: 1,
        keep_going,
        hooks: &NO_HOOKS,
        redactor: &NO_SECRETS,
        build_timeout: None,
    }
}

fn results(outcome: &RunOutcome) -> Vec<(ImageResult, Option<&str>)> {
    outcome
        .jobs
        .iter()
        .map(|o| (o.result, o.skip_reason.as_deref()))
        .collect()
}

fn builds(engine: &FakeEngine) -> Vec<String> {
    engine
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            FakeCall::Build { tags, .. } => Some(tags[0].clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_child_builds_after_its_parent_is_tagged_with_the_reference_the_child_uses() {
    let engine = FakeEngine::new();
    let jobs = [job("core", &[]), job("api", &[(0, "core:1.0")])];
    let outcome = run_on(
        &engine,
        &jobs,
        Options {
            jobs: 4,
            keep_going: false,
            hooks: &NO_HOOKS,
            redactor: &NO_SECRETS,
            build_timeout: None,
        },
    );
    assert_eq!(
        results(&outcome),
        [(ImageResult::Built, None), (ImageResult::Built, None)]
    );
    let calls = engine.calls();
    let core_id = outcome.jobs[0]
        .image
        .as_ref()
        .expect("core image")
        .id
        .clone();
    let tagged = calls
        .iter()
        .position(|c| {
            *c == FakeCall::Tag {
                image: core_id.clone(),
                repo: "core".into(),
                tag: "1.0".into(),
            }
        })
        .expect("core tagged as core:1.0");
    let api_build = calls
        .iter()
        .position(|c| matches!(c, FakeCall::Build { tags, .. } if tags[0] == "api:latest"))
        .expect("api built");
    assert!(tagged < api_build, "{calls:#?}");
}

#[test]
fn an_image_whose_digest_exists_is_retagged_not_rebuilt() {
    let engine = FakeEngine::new();
    let old = engine.add_image(&["core:inputs-digest"], &[(DIGEST_LABEL, "digest-core")]);
    let outcome = run_on(&engine, &[job("core", &[])], sequential(false));
    assert_eq!(outcome.jobs[0].result, ImageResult::Reused);
    assert!(builds(&engine).is_empty());
    assert!(engine.calls().contains(&FakeCall::Tag {
        image: old,
        repo: "core".into(),
        tag: "latest".into(),
    }));
}

#[test]
fn a_reused_image_that_already_carries_its_tags_is_not_tagged_again() {
    let engine = FakeEngine::new();
    engine.add_image(
        &["core:inputs-digest", "core:latest"],
        &[(DIGEST_LABEL, "digest-core")],
    );
    let outcome = run_on(&engine, &[job("core", &[])], sequential(false));
    assert_eq!(outcome.jobs[0].result, ImageResult::Reused);
    let tags: Vec<FakeCall> = engine
        .calls()
        .into_iter()
        .filter(|c| matches!(c, FakeCall::Tag { .. }))
        .collect();
    assert!(tags.is_empty(), "{tags:#?}");
}

#[test]
fn a_no_change_chain_looks_up_every_digest_once_before_any_job_runs() {
    let engine = FakeEngine::new();
    for name in ["core", "api", "web"] {
        engine.add_image(
            &[&format!("{name}:inputs-digest"), &format!("{name}:latest")],
            &[(DIGEST_LABEL, &format!("digest-{name}"))],
        );
    }
    let jobs = [
        job("core", &[]),
        job("api", &[(0, "core:1.0")]),
        job("web", &[(1, "api:latest")]),
    ];
    let outcome = run_on(&engine, &jobs, sequential(false));
    assert!(
        outcome.jobs.iter().all(|j| j.result == ImageResult::Reused),
        "{outcome:#?}"
    );
    assert_eq!(
        engine.calls(),
        [
            FakeCall::Inspect("core:inputs-digest".into()),
            FakeCall::Inspect("api:inputs-digest".into()),
            FakeCall::Inspect("web:inputs-digest".into()),
        ],
        "one look per image, nothing tagged: the images already carry their tags"
    );
}

#[test]
fn a_digest_tag_on_an_image_with_another_digest_is_not_reused() {
    let engine = FakeEngine::new();
    engine.add_image(&["core:inputs-digest"], &[(DIGEST_LABEL, "digest-other")]);
    let outcome = run_on(&engine, &[job("core", &[])], sequential(false));
    assert_eq!(outcome.jobs[0].result, ImageResult::Built);
}

#[test]
fn without_reuse_an_existing_digest_is_rebuilt() {
    let engine = FakeEngine::new();
    engine.add_image(&["core:inputs-digest"], &[(DIGEST_LABEL, "digest-core")]);
    let mut forced = job("core", &[]);
    forced.reuse = false;
    let outcome = run_on(&engine, &[forced], sequential(false));
    assert_eq!(outcome.jobs[0].result, ImageResult::Built);
}

#[test]
fn a_failure_skips_dependents_and_stops_new_starts() {
    let engine = FakeEngine::new();
    engine.fail_builds_tagged("core:latest", "exit code 1");
    let jobs = [
        job("core", &[]),
        job("api", &[(0, "core")]),
        job("linter", &[]),
    ];
    let outcome = run_on(&engine, &jobs, sequential(false));
    assert_eq!(outcome.jobs[0].result, ImageResult::Failed);
    let failure = outcome.jobs[0].failure.as_ref().expect("failure");
    assert_eq!(failure.message, "exit code 1");
    assert_eq!(
        outcome.jobs[1].skip_reason.as_deref(),
        Some("parent failed")
    );
    assert_eq!(outcome.jobs[2].result, ImageResult::Skipped);
    assert!(
        outcome.jobs[2]
            .skip_reason
            .as_deref()
            .is_some_and(|r| r.contains("--keep-going"))
    );
    assert_eq!(builds(&engine), ["core:latest"]);
}

#[test]
fn keep_going_lets_independent_images_build() {
    let engine = FakeEngine::new();
    engine.fail_builds_tagged("core:latest", "boom");
    let jobs = [
        job("core", &[]),
        job("api", &[(0, "core")]),
        job("deep", &[(1, "api")]),
        job("linter", &[]),
    ];
    let outcome = run_on(&engine, &jobs, sequential(true));
    assert_eq!(
        results(&outcome),
        [
            (ImageResult::Failed, None),
            (ImageResult::Skipped, Some("parent failed")),
            (ImageResult::Skipped, Some("parent failed")),
            (ImageResult::Built, None),
        ]
    );
}

#[test]
fn the_job_limit_holds_and_progress_reports_each_job() {
    let engine = FakeEngine::new();
    let events = Mutex::new(Vec::new());
    let jobs = [job("a", &[]), job("b", &[]), job("c", &[(0, "a")])];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let observe = |p: Progress| events.lock().expect("lock").push(p);
    let outcome = runtime
        .block_on(run(
            &engine,
            &jobs,
            Options {
                jobs: 2,
                keep_going: false,
                hooks: &NO_HOOKS,
                redactor: &NO_SECRETS,
                build_timeout: None,
            },
            &observe,
            std::future::pending(),
        ))
        .expect("run");
    assert!(!outcome.interrupted);
    let events = events.into_inner().expect("lock");
    let mut open = 0usize;
    let mut most = 0usize;
    for event in &events {
        match event {
            Progress::Started { .. } => open += 1,
            Progress::Finished { .. } => open -= 1,
            Progress::Step { .. } => {}
        }
        most = most.max(open);
    }
    assert!(most <= 2, "{events:#?}");
    let finished = events
        .iter()
        .filter(|e| matches!(e, Progress::Finished { .. }))
        .count();
    assert_eq!(finished, 3);
}

#[test]
fn cancelling_before_anything_ends_marks_every_job_cancelled() {
    let engine = FakeEngine::new();
    let jobs = [job("a", &[]), job("b", &[(0, "a")])];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = runtime
        .block_on(run(
            &engine,
            &jobs,
            sequential(false),
            &|_| {},
            std::future::ready(()),
        ))
        .expect("run");
    assert!(outcome.interrupted);
    assert!(
        outcome
            .jobs
            .iter()
            .all(|o| o.result == ImageResult::Skipped)
    );
}

fn hooks_in(dir: &std::path::Path, pre: &str, post: &str) -> Hooks {
    let options = crate::settings::file::HookOptions {
        pre_build: Some(pre.into()),
        post_build: Some(post.into()),
        pass_env: Vec::new(),
    };
    Hooks::resolve(Some(&options), dir)
}

#[test]
fn a_failing_pre_hook_fails_its_job_without_building_and_skips_its_dependents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hooks = hooks_in(
        dir.path(),
        "if [ \"$BUILDOPT_IMAGE\" = core ]; then echo no-core-today; exit 7; fi",
        "echo \"$BUILDOPT_IMAGE $BUILDOPT_RESULT\" >> post.log",
    );
    let engine = FakeEngine::new();
    let jobs = [
        job("core", &[]),
        job("api", &[(0, "core")]),
        job("tool", &[]),
    ];
    let options = Options {
        jobs: 1,
        keep_going: true,
        hooks: &hooks,
        redactor: &NO_SECRETS,
        build_timeout: None,
    };
    let outcome = run_on(&engine, &jobs, options);
    assert_eq!(
        results(&outcome),
        [
            (ImageResult::Failed, None),
            (ImageResult::Skipped, Some("parent failed")),
            (ImageResult::Built, None)
        ]
    );
    assert_eq!(builds(&engine), ["tool:latest"]);
    let failure = outcome.jobs[0].failure.as_ref().expect("failure");
    assert_eq!(failure.step.as_deref(), Some("pre-build hook"));
    assert_eq!(failure.log_tail, ["no-core-today"]);
    let post = std::fs::read_to_string(dir.path().join("post.log")).expect("post log");
    assert_eq!(post, "core failed\ntool built\napi skipped\n");
}

#[test]
fn a_failing_post_hook_is_a_warning_and_the_job_keeps_its_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hooks = hooks_in(dir.path(), "true", "echo cannot-notify >&2; exit 1");
    let engine = FakeEngine::new();
    let options = Options {
        jobs: 1,
        keep_going: false,
        hooks: &hooks,
        redactor: &NO_SECRETS,
        build_timeout: None,
    };
    let outcome = run_on(&engine, &[job("core", &[])], options);
    assert_eq!(outcome.jobs[0].result, ImageResult::Built);
    let warnings = &outcome.jobs[0].warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].message.starts_with("post-build hook failed"),
        "{warnings:?}"
    );
    assert_eq!(warnings[0].log_tail, ["cannot-notify"]);
}

#[test]
fn hung_hooks_end_at_the_build_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let deadline = Some(std::time::Duration::from_millis(300));
    let options = |hooks| Options {
        jobs: 1,
        keep_going: true,
        hooks,
        redactor: &NO_SECRETS,
        build_timeout: deadline,
    };
    // A pre-build hook that never ends fails its image like a hung build, and what it started
    // goes with it.
    let hooks = hooks_in(
        dir.path(),
        "(sleep 0.7; touch started.ran) & sleep 600",
        "true",
    );
    let engine = FakeEngine::new();
    let outcome = run_on(&engine, &[job("core", &[])], options(&hooks));
    assert_eq!(outcome.jobs[0].result, ImageResult::Failed);
    let failure = outcome.jobs[0].failure.as_ref().expect("failure");
    assert!(failure.message.starts_with("not done after"), "{failure:?}");
    assert!(builds(&engine).is_empty());
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert!(
        !dir.path().join("started.ran").exists(),
        "the hook's child outlived it"
    );
    // A post-build hook that never ends is a warning; the image keeps its result.
    let hooks = hooks_in(dir.path(), "true", "sleep 600; true");
    let engine = FakeEngine::new();
    let outcome = run_on(&engine, &[job("core", &[])], options(&hooks));
    assert_eq!(outcome.jobs[0].result, ImageResult::Built);
    let warnings = &outcome.jobs[0].warnings;
    assert!(
        warnings[0].message.starts_with("post-build hook stopped"),
        "{warnings:?}"
    );
}

fn published(mut job: Job, registry_tag: &str) -> Job {
    let lookup = RemoteRef {
        reference: registry_tag.to_owned(),
        auth: None,
    };
    job.request.tags.push(registry_tag.to_owned());
    job.publish = Some(Publish {
        push: vec![lookup.clone()],
        lookup: Some(lookup),
    });
    job
}

#[test]
fn when_pushing_an_image_the_registry_has_is_pulled_not_built_and_every_tag_pushed() {
    let engine = FakeEngine::new();
    engine.add_registry_image("reg.example/core:inputs-1", &[(DIGEST_LABEL, "other")]);
    let jobs = [
        published(job("core", &[]), "reg.example/core:inputs-1"),
        published(job("api", &[]), "reg.example/api:inputs-2"),
    ];
    let outcome = run_on(&engine, &jobs, sequential(false));
    assert_eq!(
        results(&outcome),
        [(ImageResult::Reused, None), (ImageResult::Built, None)]
    );
    assert_eq!(builds(&engine), ["api:latest"]);
    assert!(
        engine
            .calls()
            .contains(&FakeCall::Pull("reg.example/core:inputs-1".into()))
    );
    assert_eq!(
        engine.pushed(),
        ["reg.example/api:inputs-2", "reg.example/core:inputs-1"]
    );
}

fn with_stages(mut job: Job, stages: &[&str]) -> Job {
    job.stages = stages
        .iter()
        .map(|stage| {
            let mut request = job.request.clone();
            request.target = Some((*stage).to_string());
            request.tags = vec![format!("{}:stage-{stage}", job.name)];
            StageBuild {
                stage: (*stage).to_string(),
                request,
            }
        })
        .collect();
    job
}

#[test]
fn stages_build_in_order_before_the_image_and_are_reported() {
    let engine = FakeEngine::new();
    let jobs = [with_stages(job("api", &[]), &["deps", "builder"])];
    let outcome = run_on(&engine, &jobs, sequential(false));
    assert_eq!(outcome.jobs[0].result, ImageResult::Built);
    assert_eq!(
        builds(&engine),
        ["api:stage-deps", "api:stage-builder", "api:latest"]
    );
    let targets: Vec<Option<String>> = engine
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            FakeCall::Build { target, .. } => Some(target),
            _ => None,
        })
        .collect();
    assert_eq!(targets, [Some("deps".into()), Some("builder".into()), None]);
    let stages: Vec<(&str, usize)> = outcome.jobs[0]
        .stages
        .iter()
        .map(|s| (s.stage.as_str(), s.steps.len()))
        .collect();
    assert_eq!(stages, [("deps", 1), ("builder", 1)]);
}

#[test]
fn a_failing_stage_fails_the_image_without_building_it() {
    let engine = FakeEngine::new();
    engine.fail_builds_tagged("api:stage-builder", "exit code: 1");
    let jobs = [with_stages(job("api", &[]), &["deps", "builder"])];
    let outcome = run_on(&engine, &jobs, sequential(false));
    let api = &outcome.jobs[0];
    assert_eq!(api.result, ImageResult::Failed);
    assert_eq!(builds(&engine), ["api:stage-deps", "api:stage-builder"]);
    let failure = api.failure.as_ref().expect("failure");
    assert_eq!(failure.message, "stage 'builder': exit code: 1");
    assert_eq!(api.stages.len(), 1, "the stage that succeeded is kept");
}

#[test]
fn a_reused_image_builds_no_stage() {
    let engine = FakeEngine::new();
    engine.add_image(&["api:inputs-digest"], &[(DIGEST_LABEL, "digest-api")]);
    let jobs = [with_stages(job("api", &[]), &["builder"])];
    let outcome = run_on(&engine, &jobs, sequential(false));
    assert_eq!(outcome.jobs[0].result, ImageResult::Reused);
    assert!(builds(&engine).is_empty());
    assert!(outcome.jobs[0].stages.is_empty());
}

#[test]
fn what_hooks_and_builds_print_leaves_the_scheduler_redacted() {
    const CANARY: &str = "canary-Zq8/pw";
    let dir = tempfile::tempdir().expect("tempdir");
    // base64 of `user:canary-Zq8/pw`, as HTTP Basic would carry it, and the plain value split.
    let hooks = hooks_in(
        dir.path(),
        "true",
        "echo dXNlcjpjYW5hcnktWnE4L3B3; echo canary-Z; echo q8/pw; exit 1",
    );
    let engine = FakeEngine::new();
    engine.fail_builds_tagged("core:latest", &format!("echo {CANARY}: exit code: 1"));
    let redactor = Redactor::new(&[Secret::new(CANARY)]);
    let options = Options {
        jobs: 1,
        keep_going: true,
        hooks: &hooks,
        redactor: &redactor,
        build_timeout: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let seen = std::sync::Mutex::new(Vec::new());
    let observe = |progress: Progress| seen.lock().expect("seen").push(format!("{progress:?}"));
    let outcome = runtime
        .block_on(run(
            &engine,
            &[job("core", &[])],
            options,
            &observe,
            std::future::pending(),
        ))
        .expect("run");
    let everything = format!("{:?} {:?}", outcome.jobs, seen.lock().expect("seen"));
    for leaked in [CANARY, "dXNlcjpjYW5hcnktWnE4L3B3"] {
        assert!(!everything.contains(leaked), "{leaked} in {everything}");
    }
    let job = &outcome.jobs[0];
    assert_eq!(
        job.failure.as_ref().expect("failure").log_tail,
        Vec::<String>::new()
    );
    assert_eq!(
        job.failure.as_ref().expect("failure").message,
        "echo ***: exit code: 1"
    );
    assert_eq!(
        job.warnings[0].log_tail.last().map(String::as_str),
        Some("***")
    );
}

#[test]
fn a_hung_build_fails_at_the_deadline_and_skips_its_dependents() {
    for keep_going in [true, false] {
        let engine = FakeEngine::new();
        engine.hang_builds_tagged("core:latest");
        let jobs = [
            job("core", &[]),
            job("api", &[(0, "core")]),
            job("tool", &[]),
        ];
        let options = Options {
            build_timeout: Some(std::time::Duration::from_millis(50)),
            ..sequential(keep_going)
        };
        let outcome = run_on(&engine, &jobs, options);
        let tool = if keep_going {
            (ImageResult::Built, None)
        } else {
            (
                ImageResult::Skipped,
                Some("not started after a failure (use --keep-going to continue)"),
            )
        };
        assert_eq!(
            results(&outcome),
            [
                (ImageResult::Failed, None),
                (ImageResult::Skipped, Some("parent failed")),
                tool
            ]
        );
        let failure = outcome.jobs[0].failure.as_ref().expect("failure");
        assert!(failure.message.starts_with("not done after"), "{failure:?}");
        assert!(
            failure.message.contains("BUILDOPT_BUILD_TIMEOUT"),
            "{failure:?}"
        );
    }
}
