//! The Docker engine adapter against the real daemon (builds, caching, failures, image queries),
//! plus connection failures and a daemon dying mid-build, played by a fake daemon on a socket.
//!
//! Tests that need the daemon fail when it is unreachable and `CI` is set; elsewhere they note it
//! and return. Images are named `buildopt-test/engine-<test>-<pid>` and removed at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use buildopt::engine::{
    BuildEvent, BuildOutcome, BuildRequest, Builder, ContextFile, DockerEngine, Dockerfile, Engine,
    EngineError, INLINE_DOCKERFILE_NAME,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/engine");

/// The daemon, or `None` (after a note) when it is unreachable outside CI.
async fn daemon(test: &str) -> Option<DockerEngine> {
    let host = std::env::var("DOCKER_HOST").ok();
    match DockerEngine::connect(host.as_deref(), None, false).await {
        Ok(engine) => Some(engine),
        Err(error) => {
            let what = format!("Docker daemon ({error})");
            crate::skips::require(false, test, &what, "tests/testbed/start-dockerd.sh");
            None
        }
    }
}

fn image_name(test: &str) -> String {
    format!("buildopt-test/engine-{test}-{}", std::process::id())
}

/// A context folder with `app.sh` printing a value unique to this run, so a first build is never
/// served from an earlier run's cache.
fn context_dir() -> (tempfile::TempDir, Vec<ContextFile>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    std::fs::write(
        dir.path().join("app.sh"),
        format!("echo run-{nonce}-{}\n", std::process::id()),
    )
    .expect("app.sh");
    let files = vec![ContextFile {
        rel_path: "app.sh".into(),
        abs_path: dir.path().join("app.sh"),
    }];
    (dir, files)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).expect("fixture")
}

fn request(files: Vec<ContextFile>, dockerfile: &str, builder: Builder, tag: &str) -> BuildRequest {
    let mut request = BuildRequest::new(files, Dockerfile::Contents(fixture(dockerfile)));
    request.builder = builder;
    request.tags = vec![tag.to_owned()];
    request
}

async fn build(
    engine: &DockerEngine,
    request: &BuildRequest,
) -> (Result<BuildOutcome, EngineError>, Vec<BuildEvent>) {
    let mut events = Vec::new();
    let result = engine.build(request, &mut |event| events.push(event)).await;
    (result, events)
}

/// The Dockerfile's own steps (BuildKit also reports internal work: context transfer, export).
fn instruction_steps(outcome: &BuildOutcome) -> Vec<&buildopt::engine::StepRecord> {
    outcome
        .steps
        .iter()
        .filter(|s| s.position.is_some())
        .collect()
}

async fn remove(engine: &DockerEngine, references: &[&str]) {
    for reference in references {
        engine
            .remove_image(reference)
            .await
            .expect("remove test image");
    }
}

#[tokio::test]
async fn connects_and_reports_the_daemon_versions() {
    let Some(engine) = daemon("connects_and_reports_the_daemon_versions").await else {
        return;
    };
    let info = engine.info();
    assert!(!info.server_version.is_empty(), "{info:?}");
    assert!(info.api_version.starts_with("1."), "{info:?}");
    assert_eq!(info.os, "linux");
    assert!(
        engine.buildkit_available(),
        "a Linux daemon with API ≥ 1.39 serves BuildKit: {info:?}"
    );
}

async fn check_three_step_build_then_cached(builder: Builder, test: &str) {
    let Some(engine) = daemon(test).await else {
        return;
    };
    let tag = format!("{}:1", image_name(test));
    let (_dir, files) = context_dir();
    let request = request(files, "three-step.Dockerfile", builder, &tag);

    let (first, events) = build(&engine, &request).await;
    let first = first.expect("first build");
    assert!(first.image_id.starts_with("sha256:"), "{}", first.image_id);
    let steps = instruction_steps(&first);
    assert_eq!(steps.len(), 3, "{:?}", first.steps);
    assert_eq!(
        steps.iter().map(|s| s.dockerfile_line).collect::<Vec<_>>(),
        [Some(1), Some(2), Some(3)]
    );
    assert!(
        steps[1..].iter().all(|s| !s.cached),
        "a new context is not cached: {steps:?}"
    );
    assert!(
        steps[2].duration > Duration::ZERO,
        "RUN takes time: {steps:?}"
    );
    let started = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                BuildEvent::StepStarted {
                    position: Some(_),
                    ..
                }
            )
        })
        .count();
    assert_eq!(started, 3, "{events:?}");

    let (second, _) = build(&engine, &request).await;
    let second = second.expect("second build");
    assert_eq!(second.image_id, first.image_id);
    let steps = instruction_steps(&second);
    assert!(
        steps[1..].iter().all(|s| s.cached),
        "a rebuild is served from cache: {steps:?}"
    );
    remove(&engine, &[&tag]).await;
}

#[tokio::test]
async fn buildkit_builds_report_steps_and_rebuilds_are_cached() {
    check_three_step_build_then_cached(Builder::BuildKit, "bk-cache").await;
}

#[tokio::test]
async fn classic_builds_report_steps_and_rebuilds_are_cached() {
    check_three_step_build_then_cached(Builder::Classic, "classic-cache").await;
}

async fn check_failing_run(builder: Builder, test: &str) {
    let Some(engine) = daemon(test).await else {
        return;
    };
    let (_dir, files) = context_dir();
    let request = request(
        files,
        "failing.Dockerfile",
        builder,
        &format!("{}:1", image_name(test)),
    );
    let (result, _) = build(&engine, &request).await;
    let Err(EngineError::BuildFailed {
        step,
        line,
        log_tail,
        message,
    }) = result
    else {
        panic!("expected BuildFailed, got {result:?}");
    };
    let step = step.expect("the failing step is named");
    assert!(step.contains("RUN echo \"about to fail\""), "{step}");
    assert_eq!(line, Some(3));
    assert!(
        log_tail.iter().any(|l| l.contains("about to fail")),
        "{log_tail:?}"
    );
    assert!(
        log_tail.iter().any(|l| l.contains("last words")),
        "{log_tail:?}"
    );
    assert!(!message.is_empty());
}

#[tokio::test]
async fn a_failing_run_step_is_named_with_its_log_tail_buildkit() {
    check_failing_run(Builder::BuildKit, "bk-fail").await;
}

#[tokio::test]
async fn a_failing_run_step_is_named_with_its_log_tail_classic() {
    check_failing_run(Builder::Classic, "classic-fail").await;
}

async fn check_args_and_target(builder: Builder, test: &str) {
    let Some(engine) = daemon(test).await else {
        return;
    };
    let (_dir, files) = context_dir();
    let tag = format!("{}:1", image_name(test));
    let mut request = request(files, "multi-stage.Dockerfile", builder, &tag);
    request.target = Some("runtime".into());
    request
        .build_args
        .insert("GREETING".into(), format!("hi-{test}"));
    let (outcome, _) = build(&engine, &request).await;
    let outcome = outcome.expect("the broken stage after the target is not built");
    let image = engine.inspect(&tag).await.expect("inspect").expect("built");
    assert_eq!(image.id, outcome.image_id);
    assert_eq!(
        image.labels.get("greeting").map(String::as_str),
        Some(format!("hi-{test}").as_str())
    );
    remove(&engine, &[&tag]).await;
}

#[tokio::test]
async fn build_args_and_target_select_the_stage_buildkit() {
    check_args_and_target(Builder::BuildKit, "bk-target").await;
}

#[tokio::test]
async fn build_args_and_target_select_the_stage_classic() {
    check_args_and_target(Builder::Classic, "classic-target").await;
}

#[tokio::test]
async fn built_images_are_labelled_inspectable_taggable_and_found_by_label() {
    let test = "labels";
    let Some(engine) = daemon(test).await else {
        return;
    };
    let (dir, mut files) = context_dir();
    // The Dockerfile travels inside the context this time.
    std::fs::write(
        dir.path().join("Dockerfile"),
        fixture("three-step.Dockerfile"),
    )
    .expect("Dockerfile");
    files.push(ContextFile {
        rel_path: "Dockerfile".into(),
        abs_path: dir.path().join("Dockerfile"),
    });
    let name = image_name(test);
    let (first, second, third) = (
        format!("{name}:1"),
        format!("{name}:2"),
        format!("{name}:3"),
    );
    let digest = format!("inputs-{}", std::process::id());
    let mut request = BuildRequest::new(files, Dockerfile::InContext("Dockerfile".into()));
    request.tags = vec![first.clone(), second.clone()];
    request.labels = BTreeMap::from([("buildopt.inputs-digest".to_owned(), digest.clone())]);
    let (outcome, _) = build(&engine, &request).await;
    let outcome = outcome.expect("build");

    let image = engine
        .inspect(&first)
        .await
        .expect("inspect")
        .expect("built");
    assert_eq!(image.labels.get("buildopt.inputs-digest"), Some(&digest));
    assert!(
        image.repo_tags.contains(&first) && image.repo_tags.contains(&second),
        "every tag: {image:?}"
    );
    let base = engine
        .inspect("buildopt-test/busybox:latest")
        .await
        .expect("inspect")
        .expect("base image");
    assert_eq!(
        image.layers,
        base.layers + 2,
        "COPY and RUN add a layer each"
    );
    assert!(image.size >= base.size, "{} < {}", image.size, base.size);
    assert!(image.created.is_some());

    engine
        .tag(&outcome.image_id, &name, "3")
        .await
        .expect("tag");
    assert_eq!(
        engine.inspect(&third).await.expect("inspect").map(|i| i.id),
        Some(outcome.image_id.clone())
    );
    let found = engine
        .find_by_label("buildopt.inputs-digest", &digest)
        .await
        .expect("find");
    assert_eq!(
        found.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [outcome.image_id.as_str()]
    );
    assert!(
        engine
            .find_by_label("buildopt.inputs-digest", "no-such-digest")
            .await
            .expect("find")
            .is_empty()
    );

    remove(&engine, &[&first, &second, &third]).await;
    assert_eq!(engine.inspect(&first).await.expect("inspect"), None);
    assert!(
        !engine.remove_image(&first).await.expect("remove"),
        "already gone"
    );
}

#[tokio::test]
async fn pruning_build_cache_older_than_the_daemon_frees_nothing() {
    let Some(engine) = daemon("prune").await else {
        return;
    };
    // Other builds share this daemon: a cutoff of ten years checks the call without deleting theirs.
    let freed = engine
        .prune_build_cache(Duration::from_secs(10 * 365 * 24 * 3600))
        .await
        .expect("prune");
    assert_eq!(freed, 0);
}

#[tokio::test]
async fn the_inline_dockerfile_name_is_reserved() {
    let (dir, mut files) = context_dir();
    files.push(ContextFile {
        rel_path: INLINE_DOCKERFILE_NAME.into(),
        abs_path: dir.path().join("app.sh"),
    });
    let Some(engine) = daemon("inline-name").await else {
        return;
    };
    let (result, _) = build(
        &engine,
        &request(files, "three-step.Dockerfile", Builder::BuildKit, "x:1"),
    )
    .await;
    assert!(matches!(result, Err(EngineError::Io { .. })), "{result:?}");
}

fn assert_no_daemon_fast(result: Result<DockerEngine, EngineError>, started: Instant, tried: &str) {
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(10),
        "connecting must fail fast, took {elapsed:?}"
    );
    match result {
        Err(EngineError::NoDaemon { tried: t, hint, .. }) => {
            assert_eq!(t, tried);
            assert!(hint.contains("DOCKER_HOST"), "{hint}");
        }
        other => panic!("expected NoDaemon, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_socket_is_no_daemon_at_once() {
    let started = Instant::now();
    let result = DockerEngine::connect(Some("unix:///nonexistent/docker.sock"), None, false).await;
    assert_no_daemon_fast(result, started, "unix:///nonexistent/docker.sock");
    let error = DockerEngine::connect(Some("unix:///nonexistent/docker.sock"), None, false)
        .await
        .expect_err("no daemon");
    assert!(
        error
            .to_string()
            .contains("unix:///nonexistent/docker.sock"),
        "{error}"
    );
}

#[tokio::test]
async fn a_closed_tcp_port_is_no_daemon_at_once() {
    let started = Instant::now();
    let result = DockerEngine::connect(Some("tcp://127.0.0.1:1"), None, false).await;
    assert_no_daemon_fast(result, started, "tcp://127.0.0.1:1");
}

#[tokio::test]
async fn a_socket_that_never_answers_is_no_daemon_within_the_ping_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mute.sock");
    // Accepts connections (the kernel does, into the backlog) and never answers.
    let _listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let host = format!("unix://{}", path.display());
    let started = Instant::now();
    let result = DockerEngine::connect(Some(&host), None, false).await;
    assert_no_daemon_fast(result, started, &host);
}

/// How the fake daemon misbehaves once a build starts.
#[derive(Clone, Copy)]
enum Death {
    /// Closes the build connection after the first progress line.
    Crash,
    /// Keeps the build connection open but says nothing more, and stops answering pings.
    Freeze,
}

/// A fake daemon on a unix socket: answers the handshake, then dies as told during a build.
fn fake_daemon(path: PathBuf, death: Death) {
    let listener = UnixListener::bind(path).expect("bind fake daemon");
    tokio::spawn(async move {
        let frozen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            let frozen = frozen.clone();
            held.push(tokio::spawn(serve(connection, death, frozen)));
        }
    });
}

async fn serve(
    mut connection: UnixStream,
    death: Death,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if connection.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    if frozen.load(std::sync::atomic::Ordering::Relaxed) {
        std::future::pending::<()>().await;
    }
    let reply = |body: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nApi-Version: 1.41\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    if path.contains("/_ping") {
        let _ = connection.write_all(reply("OK").as_bytes()).await;
    } else if path.contains("/version") {
        let _ = connection
            .write_all(
                reply(r#"{"Version":"20.10.0-fake","ApiVersion":"1.41","Os":"linux"}"#).as_bytes(),
            )
            .await;
    } else if path.contains("/info") {
        let info = r#"{"Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"]]}"#;
        let _ = connection.write_all(reply(info).as_bytes()).await;
    } else if path.contains("/build") {
        let line = "{\"stream\":\"Step 1/2 : FROM scratch\\n\"}\n";
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{line}\r\n",
            line.len()
        );
        let _ = connection.write_all(response.as_bytes()).await;
        match death {
            Death::Crash => drop(connection),
            Death::Freeze => {
                frozen.store(true, std::sync::atomic::Ordering::Relaxed);
                std::future::pending::<()>().await;
            }
        }
    }
}

async fn build_against_dying_daemon(death: Death) -> (Result<BuildOutcome, EngineError>, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("fake.sock");
    fake_daemon(socket.clone(), death);
    let host = format!("unix://{}", socket.display());
    let engine = DockerEngine::connect(Some(&host), None, false)
        .await
        .expect("the fake daemon answers the handshake");
    assert_eq!(engine.info().server_version, "20.10.0-fake");
    let engine = engine.with_stream_probe(Duration::from_millis(500), Duration::from_millis(500));
    let (_context, files) = context_dir();
    let request = request(files, "three-step.Dockerfile", Builder::Classic, "never:1");
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(30), engine.build(&request, &mut |_| {}))
        .await
        .expect("a dying daemon must not hang the build");
    (result, started.elapsed())
}

#[tokio::test]
async fn a_daemon_crashing_mid_build_is_daemon_gone_not_success() {
    let (result, _) = build_against_dying_daemon(Death::Crash).await;
    assert!(
        matches!(result, Err(EngineError::DaemonGone { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_daemon_freezing_mid_build_is_daemon_gone_after_the_probe() {
    let (result, elapsed) = build_against_dying_daemon(Death::Freeze).await;
    assert!(
        matches!(result, Err(EngineError::DaemonGone { .. })),
        "{result:?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "probe 0.5 s + ping 0.5 s, took {elapsed:?}"
    );
}
