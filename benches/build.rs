//! Benchmark of `buildopt build` on the real daemon, for the example repository and a generated
//! one with 20 images (15 of them FROM another).
//!
//! Prints, as medians of a few runs: (a) a no-change `buildopt build` (no base, so every image is
//! planned and reused by its inputs digest) and a no-change commit range (`--base HEAD`: the plan
//! is empty) against a plain sequential `docker build` of every image with a warm cache, and (b) a build
//! after a one-image change against the same baseline, as ratios. The baseline is the docker
//! CLI, one image after another in dependency order, with the classic builder
//! (`DOCKER_BUILDKIT=0`) or, with `BENCH_BASELINE=buildkit`, BuildKit (`DOCKER_BUILDKIT=1`,
//! which needs the buildx plugin on a current CLI). Runs on the engine `DOCKER_HOST` names and
//! prints it. Numbers only; nothing here asserts a time.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::repos::{GENERATED_IMAGES, Plain, example_repo, generated_repo, git, init};
use support::{ms, report, run};

const RUNS: usize = 5;
/// The generated repository's shape: 5 roots, each the base of 3 more images.
const ROOTS: usize = 5;

fn main() {
    report(&support::engine_line());
    report(&format!("baseline builder: {}", baseline_builder().0));
    let prefix = format!("bo-bench-{}", std::process::id());
    let example = tempfile::tempdir().expect("tempdir");
    let images = example_repo(example.path(), &prefix);
    measure(
        "example (4 images)",
        example.path(),
        &images,
        "tools/linter/lint.sh",
    );
    let generated = tempfile::tempdir().expect("tempdir");
    let images = generated_repo(generated.path(), &prefix, ROOTS);
    measure(
        "generated (20 images)",
        generated.path(),
        &images,
        &format!("img{:02}/file.txt", GENERATED_IMAGES - 1),
    );
    remove_images(&prefix);
    measure_fresh_runner(&prefix);
    remove_images(&prefix);
}

/// What a restore is worth after a one-line change on a fresh runner (the daemon's images and
/// BuildKit's cache gone, the store kept), against the same change on a warm daemon, for one
/// image whose slow step comes before the changed file. Where the engine uses the inline cache
/// of restored images (the classic store) the slow step is cached in both; where it does not
/// (the containerd image store), the difference is what a fresh runner pays.
fn measure_fresh_runner(prefix: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path();
    std::fs::create_dir(repo.join("app")).expect("mkdir");
    std::fs::write(
        repo.join("buildopt.toml"),
        format!("[images.app]\nimage = \"{prefix}/fresh\"\ncontext = \"app\"\n"),
    )
    .expect("config");
    std::fs::write(
        repo.join("app/Dockerfile"),
        "FROM buildopt-test/busybox:latest\n\
         RUN i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; echo $i > /count\n\
         COPY app.txt /app.txt\n",
    )
    .expect("Dockerfile");
    std::fs::write(repo.join("app/app.txt"), "0\n").expect("file");
    init(repo);
    let store = repo.join("store");
    let build = || {
        let mut command = buildopt(repo);
        command.env("BUILDOPT_CACHE_DIR", &store);
        command
    };
    run(build().arg("--force"));
    let mut change = 0;
    let mut next_change = || {
        change += 1;
        std::fs::write(repo.join("app/app.txt"), format!("{change}\n")).expect("write");
        git(repo, &["commit", "-qam", "one change"]);
    };
    let warm = median(|| {
        next_change();
        run(&mut build())
    });
    let fresh = median(|| {
        next_change();
        remove_images(prefix);
        let _ = Command::new("docker")
            .args(["builder", "prune", "-af"])
            .stdout(Stdio::null())
            .status();
        run(&mut build())
    });
    report(&format!(
        "fresh runner: one-line change after the slow step, warm daemon {:.0} ms; fresh runner restoring from the store {:.0} ms ({:.1}x the warm time)",
        ms(warm),
        ms(fresh),
        fresh.as_secs_f64() / warm.as_secs_f64().max(f64::EPSILON)
    ));
}

/// Prints the two ratios for one repository; `leaf` is a file only one image uses.
fn measure(label: &str, repo: &Path, images: &[Plain], leaf: &str) {
    run(&mut buildopt(repo)); // first build: fills the daemon's cache and the images
    plain_build_all(repo, images); // warms the classic builder's cache too
    let no_change = median(|| run(&mut buildopt(repo)));
    let empty_range = median(|| run(buildopt(repo).args(["--base", "HEAD"])));
    let baseline = median(|| plain_build_all(repo, images));
    let mut change = 0;
    let one_change = median(|| {
        change += 1;
        std::fs::write(repo.join(leaf), format!("change {change}\n")).expect("write");
        git(repo, &["commit", "-qam", "one change"]);
        run(&mut buildopt(repo))
    });
    report(&format!(
        "{label}: baseline = sequential `docker build` of every image, {}, warm cache: {:.0} ms",
        baseline_builder().0,
        ms(baseline)
    ));
    report(&format!(
        "{label}: no-change buildopt build {:.0} ms = {:.1}x faster than the baseline",
        ms(no_change),
        ratio(baseline, no_change)
    ));
    report(&format!(
        "{label}: no-change commit range (`--base HEAD`, nothing affected) {:.0} ms = {:.1}x faster than the baseline",
        ms(empty_range),
        ratio(baseline, empty_range)
    ));
    report(&format!(
        "{label}: one-image change buildopt build {:.0} ms = {:.1}x faster than the baseline",
        ms(one_change),
        ratio(baseline, one_change)
    ));
}

fn ratio(baseline: Duration, measured: Duration) -> f64 {
    baseline.as_secs_f64() / measured.as_secs_f64().max(f64::EPSILON)
}

fn buildopt(repo: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_buildopt"));
    command
        .current_dir(repo)
        .args(["--quiet", "build", "--no-cleanup"])
        .env("CI", "true");
    command
}

/// The baseline's builder (name, `DOCKER_BUILDKIT` value), from `BENCH_BASELINE`.
fn baseline_builder() -> (&'static str, &'static str) {
    match std::env::var("BENCH_BASELINE").as_deref() {
        Ok("buildkit") => ("BuildKit (DOCKER_BUILDKIT=1)", "1"),
        _ => ("the classic builder (DOCKER_BUILDKIT=0)", "0"),
    }
}

fn plain_build_all(repo: &Path, images: &[Plain]) -> Duration {
    let started = Instant::now();
    for image in images {
        let mut command = Command::new("docker");
        command
            .current_dir(repo)
            .env("DOCKER_BUILDKIT", baseline_builder().1)
            .args(["build", "-q", "-t", &image.tag, "-f", &image.dockerfile]);
        for arg in &image.args {
            command.args(["--build-arg", arg]);
        }
        run(command.arg(&image.context));
    }
    started.elapsed()
}

fn remove_images(prefix: &str) {
    let listed = Command::new("docker")
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .output()
        .expect("docker images");
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let mine: Vec<&str> = listed.lines().filter(|l| l.starts_with(prefix)).collect();
    if !mine.is_empty() {
        let _ = Command::new("docker")
            .args(["rmi", "-f"])
            .args(&mine)
            .stdout(Stdio::null())
            .status();
    }
}

fn median(mut f: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS).map(|_| f()).collect();
    times.sort();
    times[RUNS / 2]
}
