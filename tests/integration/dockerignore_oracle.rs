//! The Docker daemon as the oracle for `.dockerignore` matching.
//!
//! Finding (Docker Engine 20.10, API 1.41): BuildKit behind `POST /build?version=2` does **not**
//! apply `.dockerignore` to a context sent as a tar body; it receives and copies everything, and
//! even an invalid ignore file builds. [`buildkit_tar_context_is_not_filtered`] pins that, because
//! it means buildopt's build engine must filter the context itself. BuildKit applies the file only
//! to session (FileSync) contexts, which bollard 0.21.1 cannot serve and the CLI here (no buildx)
//! cannot send. So the oracle is the classic builder: `DOCKER_BUILDKIT=0 docker build`, whose CLI
//! filters client-side with moby/patternmatcher, and is compared with
//! [`IgnoreRules::is_excluded_classic`]. The rows where classic and BuildKit are known to differ
//! (a wildcard exception under an excluded directory) are listed in [`DIVERGENT`] and asserted on
//! both sides: the classic answer from the daemon, the BuildKit answer from the reference.
//!
//! Each case is a temporary context (files + `.dockerignore` + a Dockerfile that copies the
//! context and prints the files it received). Invalid ignore files must fail the build.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use bollard::Docker;
use bollard::models::BuildInfoAux;
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion};
use buildopt::workspace::dockerignore::IgnoreRules;
use futures_util::StreamExt;

const BASE_IMAGE: &str = "buildopt-test/busybox:latest";
const DOCKERFILE: &str =
    "FROM buildopt-test/busybox\nCOPY . /ctx/\nRUN cd /ctx && find . -type f | sed 's/^/@@/'\n";
/// Builds run at once; the daemon has two cores.
const PARALLEL: usize = 4;

/// One build context: its ignore file and the files in it (besides `Dockerfile` and `.dockerignore`).
#[derive(Debug, Clone)]
struct Case {
    name: String,
    ignore: String,
    files: Vec<String>,
}

impl Case {
    fn new(name: &str, ignore: &[&str], files: &[&str]) -> Self {
        Self {
            name: name.to_string(),
            ignore: ignore.join("\n"),
            files: files.iter().map(ToString::to_string).collect(),
        }
    }

    /// Every file in the context, as the daemon will see it.
    fn all_files(&self) -> BTreeSet<String> {
        let mut all: BTreeSet<String> = self.files.iter().cloned().collect();
        all.insert("Dockerfile".to_string());
        all.insert(".dockerignore".to_string());
        all
    }
}

/// The rows of the truth table in selective-builds.md §5.3, each as one context.
fn truth_table() -> Vec<Case> {
    vec![
        Case::new("star-go", &["*.go"], &["root.go", "a/x.go"]),
        Case::new(
            "double-star-log",
            &["**/*.log"],
            &["a.log", "sub/deep/c.log", "keep.txt"],
        ),
        Case::new("question", &["temp?"], &["tempa", "tempab", "temp/x"]),
        Case::new(
            "star-dir",
            &["*/cache"],
            &["sub/cache/f", "sub/sub2/cache/f"],
        ),
        Case::new(
            "mid-double-star",
            &["docs/**/*.png"],
            &["docs/y.png", "docs/img/z/w.png", "docs/a.txt"],
        ),
        Case::new("a-double-star-b", &["a/**/b"], &["a/b", "a/x/y/b", "a/c"]),
        Case::new("dotdot", &["foo/../bar"], &["bar/f", "foo/bar"]),
        Case::new("space-hash", &[" #notcomment"], &["#notcomment", "other"]),
        Case::new("comment", &["# comment line"], &["#comment", "x"]),
        Case::new("dotfiles", &[".*"], &[".hidden", "sub/.hidden2", "visible"]),
        Case::new(
            "readme-order",
            &["*.md", "!README*.md", "README-secret.md"],
            &[
                "README.md",
                "README-secret.md",
                "README.MD",
                "docs/README.md",
                "other.md",
            ],
        ),
        Case::new(
            "readme-swapped",
            &["*.md", "README-secret.md", "!README*.md"],
            &["README-secret.md", "other.md"],
        ),
        Case::new(
            "docs-api",
            &["docs", "!docs/api"],
            &["docs/a.md", "docs/api/x.md", "x/docs/y.md"],
        ),
        Case::new(
            "node-modules-license",
            &["node_modules", "!**/LICENSE"],
            &["node_modules/p/LICENSE", "node_modules/p/i.js"],
        ),
        Case::new(
            "build-keep",
            &["build/*", "!build/keep"],
            &["build/keep/k.txt", "build/o.txt"],
        ),
        Case::new(
            "star-src-readme",
            &["*", "!src", "src/README.md"],
            &["src/a.rs", "src/README.md", "top"],
        ),
        Case::new("all-but-a", &["**", "!a"], &["a/x", "b/y", "c"]),
        Case::new("prefix", &["foo/**"], &["foo/y", "foo/bar/x", "foox"]),
        Case::new("dot", &["."], &["anything", "d/f"]),
        Case::new("dockerfile-listed", &["Dockerfile"], &["x"]),
        Case::new("lone-bang", &["a", "!"], &["a"]),
        Case::new("open-bracket", &["["], &["a"]),
        Case::new(
            "vendor-deep",
            &["vendor", "!**/deep/keep.txt"],
            &["vendor/deep/keep.txt", "vendor/x"],
        ),
        Case::new(
            "literal-exception",
            &["vendor", "!vendor/keep.txt"],
            &["vendor/keep.txt", "vendor/x"],
        ),
        Case::new(
            "classes",
            &["[ab].txt", "f[^x]"],
            &["a.txt", "c.txt", "fy", "fx"],
        ),
        Case::new("escapes", &["\\*", "a\\?"], &["*", "x", "a?", "ab"]),
        Case::new(
            "leading-slash-dot",
            &["/one", "./two/"],
            &["one", "two/t", "three"],
        ),
        Case::new("spaces", &["x y/*.txt"], &["x y/f g.txt", "x y/h"]),
    ]
}

/// The tree the generated patterns run over: nested dirs, dotfiles, spaces in names.
fn generated_tree() -> Vec<String> {
    let mut paths = Vec::new();
    for dir in ["", "a/", "a/b/", "b/", "a/a/", ".d/", "x y/", "b/a/c/"] {
        for file in ["a.txt", ".h", "f g.txt", "ab", "c"] {
            paths.push(format!("{dir}{file}"));
        }
    }
    paths
}

/// Deterministic pseudo-random ignore files built from glob fragments.
fn generated_cases(count: usize) -> Vec<Case> {
    const FRAGMENTS: &[&str] = &[
        "*", "**", "?", "a", "b", "a/", "b/", "*.txt", ".*", "[ab]", "x y", "c", "!",
    ];
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % n as u64).expect("small")
    };
    let tree = generated_tree();
    (0..count)
        .map(|i| {
            let lines: Vec<String> = (0..1 + next(4))
                .map(|_| {
                    let mut line = if next(3) == 0 {
                        "!".to_string()
                    } else {
                        String::new()
                    };
                    for part in 0..1 + next(3) {
                        if part > 0 && !line.ends_with('/') {
                            line.push('/');
                        }
                        line.push_str(FRAGMENTS[next(FRAGMENTS.len())]);
                    }
                    line
                })
                .collect();
            Case {
                name: format!("generated-{i}"),
                ignore: lines.join("\n"),
                files: tree.clone(),
            }
        })
        .collect()
}

/// The files a build received, or why it failed.
type Received = Result<BTreeSet<String>, String>;

/// Truth-table files the classic builder drops and BuildKit keeps (selective-builds.md §5.3).
const DIVERGENT: &[(&str, &str)] = &[
    ("node-modules-license", "node_modules/p/LICENSE"),
    ("vendor-deep", "vendor/deep/keep.txt"),
];

/// Writes the context into `dir`.
fn write_context(case: &Case, dir: &Path) {
    for file in &case.files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
        std::fs::write(&path, file).expect("write file");
    }
    std::fs::write(dir.join("Dockerfile"), DOCKERFILE).expect("write Dockerfile");
    std::fs::write(dir.join(".dockerignore"), &case.ignore).expect("write .dockerignore");
}

/// The files the build printed (lines `@@./path`).
fn received(output: &str) -> BTreeSet<String> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix("@@./"))
        .map(ToString::to_string)
        .collect()
}

/// Builds one context with the classic builder through the CLI, which applies `.dockerignore`.
fn classic_build(case: &Case) -> Result<BTreeSet<String>, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    write_context(case, dir.path());
    let out = Command::new("docker")
        .args(["build", "--no-cache", "--force-rm", "--network", "none"])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(received(&String::from_utf8_lossy(&out.stdout)))
}

/// Builds one context with the daemon's BuildKit, the whole directory sent as a tar body.
async fn buildkit_build(docker: &Docker, case: &Case) -> Result<BTreeSet<String>, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    write_context(case, dir.path());
    let tar = Command::new("tar")
        .arg("-cf")
        .arg("-")
        .arg("-C")
        .arg(dir.path())
        .arg(".")
        .output()
        .expect("run tar");
    assert!(
        tar.status.success(),
        "tar failed: {}",
        String::from_utf8_lossy(&tar.stderr)
    );
    let session = format!("buildopt-ignore-{}", std::process::id());
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .version(BuilderVersion::BuilderBuildKit)
        .session(&session)
        .nocache(true)
        .rm(true)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(tar.stdout.into())));
    let mut log = Vec::new();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| e.to_string())?;
        if let Some(BuildInfoAux::BuildKit(status)) = info.aux {
            if let Some(v) = status.vertexes.iter().find(|v| !v.error.is_empty()) {
                return Err(v.error.clone());
            }
            status
                .logs
                .iter()
                .for_each(|entry| log.extend_from_slice(&entry.msg));
        }
    }
    Ok(received(&String::from_utf8_lossy(&log)))
}

/// True when the daemon, the CLI and the base image are there. Without them the test is skipped,
/// except in CI (`CI` set), where it panics.
fn daemon_ready() -> bool {
    let why = match Command::new("docker")
        .args(["image", "inspect", BASE_IMAGE])
        .output()
    {
        Ok(out) if out.status.success() => return true,
        Ok(out) => format!(
            "daemon or {BASE_IMAGE} unavailable: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("docker CLI unavailable: {e}"),
    };
    crate::skips::require(
        false,
        "dockerignore_oracle",
        &why,
        "tests/testbed/start-dockerd.sh and make-base-images.sh",
    )
}

/// Runs `classic_build` over all cases, `PARALLEL` at a time, in input order.
fn classic_builds(cases: &[Case]) -> Vec<Received> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Received>>> =
        cases.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    *slots[i].lock().expect("slot") = Some(classic_build(case));
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|s| s.into_inner().expect("slot").expect("every case ran"))
        .collect()
}

/// What the classic builder should COPY according to us; `None` when the file is invalid.
fn expected_classic(case: &Case) -> Option<BTreeSet<String>> {
    let rules = IgnoreRules::parse(&case.ignore).ok()?;
    Some(
        case.all_files()
            .into_iter()
            .filter(|f| !rules.is_excluded_classic(f))
            .collect(),
    )
}

/// One line per case where the daemon and `IgnoreRules` disagree.
fn disagreements(cases: &[Case], results: Vec<Received>) -> Vec<String> {
    let mut problems = Vec::new();
    for (case, got) in cases.iter().zip(results) {
        match (expected_classic(case), got) {
            (Some(want), Ok(got)) if want != got => problems.push(format!(
                "{} ({:?}): daemon sent extra {:?}, missing {:?}",
                case.name,
                case.ignore,
                got.difference(&want).collect::<Vec<_>>(),
                want.difference(&got).collect::<Vec<_>>(),
            )),
            (Some(_), Err(e)) => problems.push(format!(
                "{} ({:?}): build failed: {e}",
                case.name, case.ignore
            )),
            (None, Ok(got)) => problems.push(format!(
                "{} ({:?}): invalid for us, daemon built {got:?}",
                case.name, case.ignore
            )),
            _ => {}
        }
    }
    problems
}

#[test]
fn classic_builder_agrees_with_ignore_rules() {
    if !daemon_ready() {
        return;
    }
    let mut cases = truth_table();
    cases.extend(generated_cases(40));
    let results = classic_builds(&cases);
    let problems = disagreements(&cases, results);
    assert!(
        problems.is_empty(),
        "{} of {} cases disagree:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}

/// The known divergence rows: the daemon (classic) drops them, BuildKit semantics keep them, and
/// no other truth-table file differs between the two modes.
#[test]
fn truth_table_divergence_is_exactly_the_known_rows() {
    let mut divergent = Vec::new();
    for case in truth_table() {
        let Ok(rules) = IgnoreRules::parse(&case.ignore) else {
            continue;
        };
        for file in case.all_files() {
            if rules.is_excluded(&file) != rules.is_excluded_classic(&file) {
                assert!(
                    rules.is_excluded_classic(&file) && !rules.is_excluded(&file),
                    "{}: {file}",
                    case.name
                );
                divergent.push((case.name.clone(), file));
            }
        }
    }
    let known: Vec<(String, String)> = DIVERGENT
        .iter()
        .map(|(c, f)| ((*c).to_string(), (*f).to_string()))
        .collect();
    assert_eq!(divergent, known);
}

/// Pins the daemon fact the build engine relies on: a tar-body context reaches BuildKit
/// unfiltered, so buildopt must apply `.dockerignore` itself before sending it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buildkit_tar_context_is_not_filtered() {
    if !daemon_ready() {
        return;
    }
    let docker = Docker::connect_with_local_defaults().expect("connect to the daemon");
    let case = Case::new(
        "tar-body",
        &["secret", "*.log"],
        &["secret", "app.log", "main.rs"],
    );
    let got = buildkit_build(&docker, &case)
        .await
        .expect("BuildKit build");
    assert_eq!(
        got,
        case.all_files(),
        "the daemon's BuildKit now filters tar contexts; revisit the oracle"
    );
    let invalid = Case::new("tar-body-invalid", &["["], &["a"]);
    assert!(
        buildkit_build(&docker, &invalid).await.is_ok(),
        "an invalid .dockerignore is not even read"
    );
}
