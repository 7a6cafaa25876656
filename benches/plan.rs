//! Benchmark of `buildopt plan` on a generated repository: 100,000 files, 200 images, git history.
//!
//! Prints the median wall time of `buildopt plan` for a 1-file and a 5,000-file change next to
//! `git diff --name-only` on the same range plus `git ls-files` (the baseline: the floor for any
//! tool that has to know the changed files and the file set), as a ratio, and the peak memory of
//! the plan processes. `plan` runs as in CI: with a cache store present (`cache setup`) and the
//! daemon that `DOCKER_HOST` names answering when there is one (the engine is printed). The
//! issue's targets (within 3x of the baseline; under 100 ms for one changed file) are printed
//! next to the figures; nothing here asserts a time.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{ms, report, run};

const FILES: usize = 100_000;
const IMAGES: usize = 200;
const RUNS: usize = 11;

fn main() {
    if support::run_as_peak_child() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // BENCH_KEEP_REPO=DIR generates the repository there and keeps it, for profiling.
    let kept = std::env::var_os("BENCH_KEEP_REPO").map(PathBuf::from);
    if let Some(kept) = &kept {
        std::fs::create_dir_all(kept).expect("create BENCH_KEEP_REPO");
    }
    let repo = kept.as_deref().unwrap_or(dir.path());
    let started = Instant::now();
    let commits = generate(repo);
    report(&format!(
        "generated {FILES} files, {IMAGES} images, 3 commits in {:.1} s",
        started.elapsed().as_secs_f64()
    ));

    let buildopt = support::buildopt_binary();
    run(Command::new(&buildopt)
        .arg("-C")
        .arg(repo)
        .args(["--quiet", "cache", "setup"]));
    report(&support::engine_line());
    for (label, base, head) in [
        ("1 changed file", &commits[0], &commits[1]),
        ("5,000 changed files", &commits[1], &commits[2]),
    ] {
        let git = median(|| {
            run(Command::new("git")
                .current_dir(repo)
                .args(["diff", "--name-only", base, head]))
                + run(Command::new("git").current_dir(repo).arg("ls-files"))
        });
        let plan = median(|| {
            run(Command::new(&buildopt)
                .args(["-C"])
                .arg(repo)
                .args(["plan", "--base", base, "--head", head, "--output", "json"]))
        });
        let peak_kib = peak_of(&[
            buildopt.to_str().expect("utf-8 path"),
            "-C",
            repo.to_str().expect("utf-8 path"),
            "plan",
            "--base",
            base,
            "--head",
            head,
            "--output",
            "json",
        ]);
        let ratio = plan.as_secs_f64() / git.as_secs_f64();
        report(&format!(
            "{label:>20}: buildopt plan {:>8.1} ms | git diff --name-only + git ls-files {:>6.1} ms | ratio {ratio:>5.1}x | plan peak memory {:.1} MiB",
            ms(plan),
            ms(git),
            peak_kib as f64 / 1024.0
        ));
        report(&format!(
            "{label:>20}: target within 3x of the baseline: {}{}",
            verdict(ratio <= 3.0),
            match label {
                "1 changed file" => format!(
                    "; target under 100 ms: {}",
                    verdict(plan.as_secs_f64() < 0.1)
                ),
                _ => String::new(),
            }
        ));
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// The peak resident memory (KiB) of `command` and the git processes it runs, measured in a
/// fresh child of this benchmark so that the generator's own children do not count.
fn peak_of(command: &[&str]) -> i64 {
    support::peak_of(command).1
}

fn median(mut f: impl FnMut() -> Duration) -> Duration {
    f(); // warm the page cache
    let mut times: Vec<Duration> = (0..RUNS).map(|_| f()).collect();
    times.sort();
    times[RUNS / 2]
}

/// Writes three commits with `git fast-import`: the tree, a one-file change, a 5,000-file change.
fn generate(repo: &Path) -> Vec<String> {
    git(repo, &["init", "-q", "-b", "main"]);
    let mut child = Command::new("git")
        .current_dir(repo)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("fast-import");
    let mut input = std::io::BufWriter::new(child.stdin.take().expect("stdin"));
    let files_per_image = FILES / IMAGES;
    commit_header(&mut input, 1, "generated tree", None);
    for image in 0..IMAGES {
        let dir = format!("services/svc{image:03}");
        let parent = if image % 10 == 0 {
            "buildopt-test/busybox".to_string()
        } else {
            format!("svc{:03}", image - image % 10)
        };
        file(
            &mut input,
            &format!("{dir}/Dockerfile"),
            &format!("ARG TAG=latest\nFROM {parent}:${{TAG}}\nCOPY . /app\nRUN make -C /app\n"),
        );
        file(
            &mut input,
            &format!("{dir}/.dockerignore"),
            "*.md\ndocs\n!docs/keep\n",
        );
        for n in 0..files_per_image - 2 {
            file(
                &mut input,
                &format!("{dir}/src/m{}/f{n}.c", n % 7),
                &format!("int f{n}(void) {{ return {n}; }}\n"),
            );
        }
    }
    commit_header(&mut input, 2, "one change", Some(1));
    file(
        &mut input,
        "services/svc005/src/m0/f0.c",
        "int f0(void) { return -1; }\n",
    );
    commit_header(&mut input, 3, "many changes", Some(2));
    for n in 0..5000 {
        let image = n % IMAGES;
        let f = n / IMAGES;
        file(
            &mut input,
            &format!("services/svc{image:03}/src/m{}/f{f}.c", f % 7),
            &format!("int f{f}(void) {{ return {n}; }} // changed\n"),
        );
    }
    drop(input);
    assert!(child.wait().expect("wait").success(), "fast-import failed");
    // A work tree and an index, as a CI checkout has (and `git ls-files` reads).
    git(repo, &["reset", "-q", "--hard", "main"]);
    (1..=3)
        .map(|mark| rev(repo, &format!("refs/heads/main~{}", 3 - mark)))
        .collect()
}

fn commit_header(out: &mut impl Write, mark: usize, message: &str, parent: Option<usize>) {
    let _ = write!(
        out,
        "commit refs/heads/main\nmark :{mark}\ncommitter Bench <bench@example.invalid> {} +0000\ndata {}\n{message}\n",
        1_700_000_000 + mark,
        message.len() + 1
    );
    if let Some(parent) = parent {
        let _ = writeln!(out, "from :{parent}");
    }
}

fn file(out: &mut impl Write, path: &str, content: &str) {
    let _ = write!(
        out,
        "M 100644 inline {path}\ndata {}\n{content}\n",
        content.len()
    );
}

fn git(repo: &Path, args: &[&str]) {
    assert!(
        Command::new("git")
            .current_dir(repo)
            .args(args)
            .status()
            .expect("git")
            .success()
    );
}

fn rev(repo: &Path, name: &str) -> String {
    let out = Command::new("git")
        .current_dir(repo)
        .args(["rev-parse", name])
        .output()
        .expect("git");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
