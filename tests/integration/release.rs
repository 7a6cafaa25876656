//! The release machinery: `dist/package.sh` makes the archives that `dist/install.sh` installs
//! (proved by installing a packaged build of this crate from a local HTTP server), and the
//! workflows `.github/workflows/release.yml` and `ci.yml` pass actionlint (with shellcheck), the
//! GitHub workflow schema and the project's rules for workflows (actions pinned by commit SHA,
//! least-privilege permissions, no expressions inside scripts, checkouts without credentials).
//!
//! The validators and python3 come from `tests/testbed/install-peers.sh`. A missing one fails
//! the test when `CI` is set; elsewhere the test prints a note and returns.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{StaticServer, required_tool};
use serde_json::Value;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The targets dist/install.sh installs, as its `case` lists them.
fn install_sh_targets() -> BTreeSet<String> {
    let script = read("dist/install.sh");
    let triple =
        regex::Regex::new(r"\b(?:x86_64|aarch64)-(?:unknown-linux-(?:gnu|musl)|apple-darwin)\b")
            .unwrap();
    let targets: BTreeSet<String> = triple
        .find_iter(&script)
        .map(|m| m.as_str().to_string())
        .collect();
    assert_eq!(targets.len(), 6, "install.sh's targets: {targets:?}");
    targets
}

/// The target triple of this test binary, which is also the crate's binary's.
fn host_target() -> String {
    let arch = std::env::consts::ARCH;
    match std::env::consts::OS {
        "linux" if cfg!(target_env = "musl") => format!("{arch}-unknown-linux-musl"),
        "linux" => format!("{arch}-unknown-linux-gnu"),
        "macos" => format!("{arch}-apple-darwin"),
        other => panic!("no release target for the OS {other}"),
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn report(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn succeeded(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}",
        report(output)
    );
}

/// Runs `sh dist/package.sh` with `args` and the environment `env` on top of PATH alone.
fn package(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new("sh")
        .arg(root().join("dist/package.sh"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .expect("sh dist/package.sh")
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every entry of a .tar.gz: (path, mode, uid, gid, content).
fn entries(archive: &Path) -> Vec<(String, u32, u64, u64, Vec<u8>)> {
    let file = std::fs::File::open(archive).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut found = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        found.push((
            entry.path().unwrap().display().to_string(),
            header.mode().unwrap(),
            header.uid().unwrap(),
            header.gid().unwrap(),
            content,
        ));
    }
    found
}

#[test]
fn release_archive_of_this_build_installs_with_install_sh_and_runs() {
    let test = "package.sh and install.sh";
    let Some(_) = required_tool("python3", test) else {
        return;
    };
    let target = host_target();
    assert!(install_sh_targets().contains(&target), "{target}");
    let releases = tempfile::tempdir().unwrap();
    let out_dir = releases.path().join(format!("v{VERSION}"));
    let binary = env!("CARGO_BIN_EXE_buildopt");

    let out = package(
        &[VERSION, &target, binary, &out_dir.display().to_string()],
        &[],
    );
    succeeded(&out, "dist/package.sh");

    // One checksum line in sha256sum format, on stdout and in <archive>.sha256, naming the
    // archive's real SHA-256.
    let name = format!("buildopt-{VERSION}-{target}");
    let archive = out_dir.join(format!("{name}.tar.gz"));
    let bytes = std::fs::read(&archive).unwrap();
    let line = format!("{}  {name}.tar.gz\n", sha256_hex(&bytes));
    assert_eq!(String::from_utf8_lossy(&out.stdout), line);
    assert_eq!(
        std::fs::read_to_string(out_dir.join(format!("{name}.tar.gz.sha256"))).unwrap(),
        line
    );
    let mut listed: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec![format!("{name}.tar.gz"), format!("{name}.tar.gz.sha256")]
    );

    // The layout install.sh accepts: one top folder holding the binary (and the README).
    let unpacked = entries(&archive);
    let paths: Vec<&str> = unpacked.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            format!("{name}/"),
            format!("{name}/README.md"),
            format!("{name}/buildopt")
        ]
    );
    let (_, mode, uid, gid, content) = &unpacked[2];
    assert_eq!((mode & 0o777, *uid, *gid), (0o755, 0, 0));
    assert!(
        *content == std::fs::read(binary).unwrap(),
        "the archive holds the binary unchanged"
    );

    // install.sh reads the line from a checksums file, as it reads dist/checksums.txt.
    let server = StaticServer::start(releases.path());
    let machine = tempfile::tempdir().unwrap();
    let checksums = machine.path().join("checksums.txt");
    std::fs::write(&checksums, format!("# released\n{line}")).unwrap();
    let installed = Command::new("sh")
        .arg(root().join("dist/install.sh"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", machine.path())
        .env("BUILDOPT_VERSION", format!("v{VERSION}"))
        .env("BUILDOPT_DOWNLOAD_BASE", &server.base)
        .env("BUILDOPT_CHECKSUMS", &checksums)
        .env("RUNNER_TOOL_CACHE", machine.path().join("tools"))
        .output()
        .expect("sh dist/install.sh");
    succeeded(&installed, "dist/install.sh of the packaged archive");
    let dest = PathBuf::from(String::from_utf8_lossy(&installed.stdout).trim());
    assert_eq!(
        dest,
        machine
            .path()
            .join(format!("tools/buildopt/{VERSION}/{target}"))
    );
    let ran = Command::new(dest.join("buildopt"))
        .arg("--version")
        .output()
        .unwrap();
    succeeded(&ran, "the installed buildopt --version");
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        format!("buildopt {VERSION}\n")
    );

    // The same line from another archive is refused: the checksum really binds the archive.
    drop(server);
    std::fs::write(
        &archive,
        [bytes.as_slice(), b"trailing byte".as_slice()].concat(),
    )
    .unwrap();
    let server = StaticServer::start(releases.path());
    let other = tempfile::tempdir().unwrap();
    let refused = Command::new("sh")
        .arg(root().join("dist/install.sh"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", other.path())
        .env("BUILDOPT_VERSION", VERSION)
        .env("BUILDOPT_DOWNLOAD_BASE", &server.base)
        .env("BUILDOPT_CHECKSUMS", &checksums)
        .env("RUNNER_TOOL_CACHE", other.path().join("tools"))
        .output()
        .expect("sh dist/install.sh");
    assert!(!refused.status.success(), "{}", report(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("checksum mismatch"),
        "{}",
        report(&refused)
    );
}

#[test]
fn release_package_sh_is_reproducible_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("fake-buildopt");
    std::fs::write(&binary, "#!/bin/sh\necho fake\n").unwrap();
    let binary = binary.display().to_string();
    let out = |n: &str| dir.path().join(n).display().to_string();
    let epoch = [("SOURCE_DATE_EPOCH", "1700000000")];

    let first = package(
        &["v1.2.3", "aarch64-apple-darwin", &binary, &out("a")],
        &epoch,
    );
    succeeded(&first, "package.sh");
    let archive = "buildopt-1.2.3-aarch64-apple-darwin.tar.gz";
    let first_bytes = std::fs::read(dir.path().join("a").join(archive)).unwrap();
    let (_, mode, ..) = &entries(&dir.path().join("a").join(archive))[2];
    assert_eq!(
        mode & 0o777,
        0o755,
        "the binary is executable, whatever its mode was"
    );

    let gnu_tar = Command::new("tar")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("GNU tar"));
    if gnu_tar {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let second = package(
            &["1.2.3", "aarch64-apple-darwin", &binary, &out("b")],
            &epoch,
        );
        succeeded(&second, "package.sh again");
        assert_eq!(second.stdout, first.stdout, "the same checksum line");
        assert!(first_bytes == std::fs::read(dir.path().join("b").join(archive)).unwrap());
        let later = package(
            &["1.2.3", "aarch64-apple-darwin", &binary, &out("c")],
            &[("SOURCE_DATE_EPOCH", "1800000000")],
        );
        succeeded(&later, "package.sh with another date");
        assert_ne!(later.stdout, first.stdout, "the date is in the archive");
    }

    for (args, why) in [
        (
            vec!["1.2.3", "sparc-sun-solaris", binary.as_str()],
            "unsupported target",
        ),
        (
            vec!["1.2.3", "x86_64-unknown-linux-gnu", "/nonexistent/buildopt"],
            "no binary",
        ),
        (
            vec!["1.2.3;rm", "x86_64-unknown-linux-gnu", binary.as_str()],
            "invalid version",
        ),
        (
            vec!["", "x86_64-unknown-linux-gnu", binary.as_str()],
            "empty",
        ),
    ] {
        let target = out("refused");
        let mut args = args.clone();
        args.push(&target);
        let refused = package(&args, &[]);
        assert!(!refused.status.success(), "{args:?}: {}", report(&refused));
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains(why),
            "{args:?}: no {why:?} in {}",
            report(&refused)
        );
        assert!(!Path::new(&target).exists(), "{args:?} left {target}");
    }
    let usage = package(&["1.2.3", "x86_64-unknown-linux-gnu"], &[]);
    assert!(String::from_utf8_lossy(&usage.stderr).contains("usage"));
    let bad_epoch = package(
        &["1.2.3", "x86_64-unknown-linux-gnu", &binary, &out("d")],
        &[("SOURCE_DATE_EPOCH", "yesterday")],
    );
    assert!(!bad_epoch.status.success(), "{}", report(&bad_epoch));

    let script = read("dist/package.sh");
    assert!(script.starts_with("#!/bin/sh\n") && script.contains("\nset -eu\n"));
    if let Some(shellcheck) = required_tool("shellcheck", "shellcheck package.sh") {
        let checked = Command::new(shellcheck)
            .args(["-s", "sh", "dist/package.sh"])
            .current_dir(root())
            .output()
            .unwrap();
        succeeded(&checked, "shellcheck -s sh dist/package.sh");
    }
}

// ---------------------------------------------------------------------------------------------
// The workflows

const WORKFLOWS: [&str; 2] = [".github/workflows/release.yml", ".github/workflows/ci.yml"];

fn workflow(rel: &str) -> Value {
    serde_norway::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"))
}

/// What in a workflow breaks the project's rules: a `uses:` not pinned to a full commit SHA with
/// a version comment (local actions aside), a job without its own `permissions:` or a top level
/// that grants any, a checkout that keeps its credentials, an expression inside a script.
fn rule_breaks(text: &str) -> Vec<String> {
    let mut breaks = Vec::new();
    let pinned = regex::Regex::new(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+){0,2}$").unwrap();
    for line in text.lines() {
        let Some(uses) = line
            .trim_start()
            .trim_start_matches("- ")
            .strip_prefix("uses: ")
        else {
            continue;
        };
        if !uses.starts_with("./") && !pinned.is_match(uses) {
            breaks.push(format!(
                "not pinned by commit SHA with a version comment: {uses}"
            ));
        }
    }
    let doc: Value = serde_norway::from_str(text).expect("YAML");
    if doc["permissions"] != serde_json::json!({}) {
        breaks.push("the top-level permissions must be {}".into());
    }
    for (name, job) in doc["jobs"].as_object().expect("jobs") {
        if !job["permissions"].is_object() {
            breaks.push(format!("job {name} does not state its permissions"));
        }
        for step in job["steps"].as_array().into_iter().flatten() {
            if let Some(script) = step["run"].as_str()
                && script.contains("${{")
            {
                breaks.push(format!("job {name}: an expression inside run: {script}"));
            }
            let uses = step["uses"].as_str().unwrap_or_default();
            if uses.starts_with("actions/checkout@") && step["with"]["persist-credentials"] != false
            {
                breaks.push(format!(
                    "job {name}: checkout without persist-credentials: false"
                ));
            }
        }
    }
    breaks
}

#[test]
fn release_workflows_follow_the_rules_and_the_rules_catch_breaks() {
    for rel in WORKFLOWS {
        assert_eq!(rule_breaks(&read(rel)), Vec::<String>::new(), "{rel}");
    }
    let release = read(".github/workflows/release.yml");
    let mutations = [
        (
            "          case \"$DIGEST\" in",
            "          echo \"${{ github.ref_name }}\"\n          case \"$DIGEST\" in",
            "an expression inside run",
        ),
        (
            "docker/login-action@5e57cd118135c172c3672efd75eb46360885c0ef # v3.6.0",
            "docker/login-action@v3",
            "not pinned",
        ),
        (
            "docker/build-push-action@263435318d21b8e681c14492fe198d362a7d2c83 # v6.18.0",
            "docker/build-push-action@263435318d21b8e681c14492fe198d362a7d2c83",
            "not pinned",
        ),
        ("permissions: {}", "permissions: write-all", "top-level"),
        (
            "    permissions:\n      contents: write\n      pull-requests: write\n",
            "",
            "job checksums-pr does not state",
        ),
        (
            "          ref: ${{ github.event.repository.default_branch }}\n          persist-credentials: false",
            "          ref: ${{ github.event.repository.default_branch }}",
            "persist-credentials",
        ),
    ];
    for (from, to, why) in mutations {
        assert!(release.contains(from), "release.yml no longer has {from:?}");
        let broken = release.replacen(from, to, 1);
        let found = rule_breaks(&broken);
        assert!(
            found.iter().any(|b| b.contains(why)),
            "{why:?} not caught: {found:?}"
        );
    }
}

#[test]
fn release_workflows_pass_actionlint_and_the_workflow_schema() {
    let test = "actionlint and check-jsonschema on the workflows";
    let (Some(linter), Some(_), Some(checker)) = (
        required_tool("actionlint", test),
        required_tool("shellcheck", test),
        required_tool("check-jsonschema", test),
    ) else {
        return;
    };
    for rel in WORKFLOWS {
        let linted = Command::new(&linter)
            .args(["-no-color", rel])
            .current_dir(root())
            .output()
            .unwrap();
        succeeded(&linted, &format!("actionlint {rel}"));
        let schema = Command::new(&checker)
            .args(["--builtin-schema", "vendor.github-workflows", rel])
            .current_dir(root())
            .output()
            .unwrap();
        succeeded(
            &schema,
            &format!("check-jsonschema vendor.github-workflows {rel}"),
        );
    }

    // The same checks reject a shell mistake and a job that needs a missing job.
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let broken = read(".github/workflows/release.yml")
        .replace("needs: [version, build]", "needs: [version, bild]")
        .replace(
            "cat \"$out\"/*.tar.gz.sha256 >\"$out/SHA256SUMS\"",
            "cat $out/*.tar.gz.sha256 > $out/SHA256SUMS",
        );
    let file = workflows.join("release.yml");
    std::fs::write(&file, broken).unwrap();
    let linted = Command::new(&linter)
        .args(["-no-color", &file.display().to_string()])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let said = report(&linted);
    assert!(!linted.status.success(), "{said}");
    assert!(said.contains("bild") && said.contains("SC2086"), "{said}");
}

#[test]
fn release_workflow_builds_packages_and_publishes_what_install_sh_expects() {
    let release = workflow(".github/workflows/release.yml");
    assert_eq!(release["on"]["push"]["tags"], serde_json::json!(["v*"]));
    let jobs = &release["jobs"];

    let targets: BTreeSet<String> = jobs["build"]["strategy"]["matrix"]["include"]
        .as_array()
        .expect("the build matrix")
        .iter()
        .map(|e| e["target"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(targets, install_sh_targets());
    let build = serde_json::to_string(&jobs["build"]["steps"]).unwrap();
    assert!(
        build.contains("cargo build --release --locked --bin buildopt --target \\\"$TARGET\\\"")
    );
    assert!(
        build.contains("rustup toolchain install"),
        "the toolchain from rust-toolchain.toml"
    );

    // The packaging loop names every target, through dist/package.sh.
    let package = serde_json::to_string(&jobs["package"]["steps"]).unwrap();
    for target in install_sh_targets() {
        assert!(package.contains(&target), "package job lacks {target}");
    }
    assert!(package.contains("sh dist/package.sh \\\"$VERSION\\\" \\\"$target\\\""));
    assert!(package.contains("sha256sum --check --strict SHA256SUMS"));
    assert!(package.contains("sh dist/install.sh"));

    // The release carries the archives and SHA256SUMS, only after everything else is built.
    let publish = serde_json::to_string(&jobs["release"]).unwrap();
    assert!(publish.contains("./*.tar.gz SHA256SUMS"), "{publish}");
    assert_eq!(
        jobs["release"]["needs"],
        serde_json::json!(["version", "package", "image-manifest"])
    );
    assert_eq!(
        jobs["release"]["permissions"],
        serde_json::json!({"contents": "write"})
    );
    assert_eq!(
        jobs["image"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "build")
            .expect("the image build step")["with"]["file"],
        "dist/Dockerfile"
    );
    let pr = serde_json::to_string(&jobs["checksums-pr"]).unwrap();
    assert!(pr.contains("dist/checksums.txt") && pr.contains("gh pr create"));

    // The version check reads Cargo.toml and compares it with the tag.
    let check = serde_json::to_string(&jobs["version"]).unwrap();
    assert!(check.contains("Cargo.toml") && check.contains("\\\"$TAG\\\" != \\\"v$version\\\""));

    let ci = workflow(".github/workflows/ci.yml");
    let steps = ci["jobs"]["test"]["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["run"] == ".ci/run"));
    let action = ci["jobs"]["action"]["steps"].as_array().unwrap();
    assert!(action.iter().any(|s| s["uses"] == "./"));
}
