//! Images for other and several platforms against the real daemon: one image index for two
//! platforms on the containerd image store (built, listed by the daemon, pushed as one manifest
//! list, saved and restored under the same index digest); on the classic store, a build per
//! platform and a manifest list in the registry when pushing, else a refusal; and RUN steps for
//! a foreign platform with and without an emulator.
//!
//! The bases are tests/testbed/make-base-images.sh's `buildopt-test/busybox-arm64` and
//! `-s390x`; tests/testbed/foreign-platforms.sh registers QEMU for arm64 only, so s390x stays a
//! platform the daemon cannot run. Whether the host runs a platform is asked of the kernel
//! itself, by starting that platform's busybox.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::build::{
    Images, REGISTRY, REGISTRY_PASSWORD, containerd_store, daemon_available, docker_config, prefix,
    registry_available,
};
use crate::cli::buildopt;
use crate::support::TestRepo;

/// Where tests/testbed/foreign-platforms.sh keeps the foreign busybox binaries.
const FOREIGN: &str = "/opt/buildopt-testbed/foreign";

/// A repository with one image `multi` (repository `repository`) for `platforms`, built from
/// `dockerfile` with a `hello.txt` beside it.
fn repo_with(repository: &str, platforms: &[&str], dockerfile: &str) -> TestRepo {
    let repo = TestRepo::new();
    let platforms: Vec<String> = platforms.iter().map(|p| format!("\"{p}\"")).collect();
    repo.write(
        "buildopt.toml",
        &format!(
            "[images.multi]\nimage = \"{repository}\"\nplatforms = [{}]\n",
            platforms.join(", ")
        ),
    );
    repo.write("Dockerfile", dockerfile);
    repo.write("hello.txt", "hello\n");
    repo.commit("images");
    repo
}

/// A RUN step on the build's own platform, then COPY-only for each target: no emulation.
const CROSS_DOCKERFILE: &str = "FROM --platform=$BUILDPLATFORM buildopt-test/busybox AS build\n\
                                ARG TARGETARCH\n\
                                RUN echo \"built for $TARGETARCH\" > /arch.txt\n\
                                FROM scratch\n\
                                COPY --from=build /arch.txt /\n\
                                COPY hello.txt /\n";

fn run(repo: &TestRepo, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, Value, String) {
    let mut all = vec!["--format", "json", "build"];
    all.extend(args);
    let mut env = env.to_vec();
    env.push(("CI", "true"));
    let output = buildopt(repo.path(), &all, &env);
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), report, stderr)
}

/// The daemon's socket (the pass's `DOCKER_HOST`, else the default one).
fn socket() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|host| host.strip_prefix("unix://").map(str::to_owned))
        .unwrap_or_else(|| "/var/run/docker.sock".into())
}

/// `GET path` of the Engine API, as JSON.
fn engine_api(path: &str) -> Value {
    let output = Command::new("curl")
        .args(["-fsS", "--unix-socket", &socket()])
        .arg(format!("http://localhost/v1.51{path}"))
        .output()
        .expect("curl");
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

/// The platforms (`os/arch`) of the image manifests the daemon lists for `reference`.
fn daemon_platforms(reference: &str) -> Vec<String> {
    let inspect = engine_api(&format!("/images/{reference}/json?manifests=1"));
    platforms_of(&inspect["Manifests"], "Kind", "image", "Descriptor")
}

/// The platforms of the entries of `list` whose `key` is `value`, read from each one's
/// `descriptor` member (or from the entry itself when `descriptor` is empty).
fn platforms_of(list: &Value, key: &str, value: &str, descriptor: &str) -> Vec<String> {
    let mut platforms: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| key.is_empty() || m[key] == value)
        .map(|m| {
            if descriptor.is_empty() {
                m
            } else {
                &m[descriptor]
            }
        })
        .map(|d| format!("{}/{}", d["platform"]["os"], d["platform"]["architecture"]))
        .map(|p| p.replace('"', ""))
        .collect();
    platforms.sort();
    platforms
}

/// The manifest list the test registry holds for `repository:tag`.
fn registry_manifest(repository: &str, tag: &str) -> Value {
    let name = repository.trim_start_matches(&format!("{REGISTRY}/"));
    let output = Command::new("curl")
        .args(["-fsS", "-u", &format!("buildopt:{REGISTRY_PASSWORD}")])
        .args([
            "-H",
            "Accept: application/vnd.oci.image.index.v1+json, \
             application/vnd.docker.distribution.manifest.list.v2+json",
        ])
        .arg(format!("http://{REGISTRY}/v2/{name}/manifests/{tag}"))
        .output()
        .expect("curl");
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

fn image(report: &Value) -> &Value {
    &report["images"][0]
}

#[test]
fn two_platforms_make_one_index_that_is_pushed_saved_and_restored_with_its_digest() {
    let test = "platforms_index";
    if !daemon_available(test) || !containerd_store() || !registry_available(test) {
        return;
    }
    let prefix = prefix("index");
    let _images = Images(prefix.clone());
    let repository = format!("{REGISTRY}/{prefix}/multi");
    let repo = repo_with(
        &repository,
        &["linux/amd64", "linux/arm64"],
        CROSS_DOCKERFILE,
    );
    let config = docker_config(REGISTRY_PASSWORD);
    let config_dir = config.path().display().to_string();
    let store = tempfile::tempdir().expect("store");
    let store_dir = store.path().display().to_string();
    let env = [
        ("DOCKER_CONFIG", config_dir.as_str()),
        ("BUILDOPT_CACHE_DIR", store_dir.as_str()),
    ];

    let (code, report, stderr) = run(&repo, &["--level", "medium", "--push"], &env);
    assert_eq!(code, Some(0), "{stderr}\n{report}");
    let built = image(&report);
    assert_eq!(built["result"], "built", "{built}");
    let index = built["image_id"].as_str().expect("id").to_owned();
    let platforms: Vec<&str> = built["platforms"]
        .as_array()
        .expect("platforms")
        .iter()
        .map(|p| p["platform"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{built}");
    for platform in built["platforms"].as_array().expect("platforms") {
        // "built for arm64\n" and "hello\n" in tar entries: more than a kilobyte, uncompressed.
        assert!(platform["size"].as_u64() > Some(1024), "{platform}");
        let name = platform["platform"].as_str().expect("name");
        let steps = built["steps"].as_array().expect("steps");
        let own = steps.iter().filter(|s| s["platform"] == name).count();
        assert!(own >= 3, "{name}: {own} steps in {built}");
    }
    let latest = format!("{repository}:latest");
    assert_eq!(
        daemon_platforms(&latest),
        ["linux/amd64", "linux/arm64"],
        "the daemon's index"
    );
    let list = registry_manifest(&repository, "latest");
    assert_eq!(
        platforms_of(&list["manifests"], "", "", ""),
        ["linux/amd64", "linux/arm64"],
        "the registry's manifest list: {list}"
    );

    // A fresh runner: the images are gone, the store is kept.
    drop(Images(prefix.clone()));
    assert_eq!(engine_api(&format!("/images/{latest}/json")), Value::Null);
    let (code, report, stderr) = run(&repo, &["--level", "medium"], &env);
    assert_eq!(code, Some(0), "{stderr}\n{report}");
    assert_eq!(
        report["cache"]["restore"]["loaded"][0],
        repository.as_str(),
        "{report}"
    );
    let restored = image(&report);
    assert_eq!(restored["result"], "reused", "{restored}");
    assert_eq!(
        restored["image_id"],
        index.as_str(),
        "same index digest back"
    );
    assert_eq!(daemon_platforms(&latest), ["linux/amd64", "linux/arm64"]);
}

#[test]
fn on_the_classic_store_a_pushed_image_for_two_platforms_becomes_a_manifest_list() {
    let test = "platforms_classic_list";
    if !daemon_available(test) || containerd_store() || !registry_available(test) {
        return;
    }
    let prefix = prefix("classic-list");
    let _images = Images(prefix.clone());
    let repository = format!("{REGISTRY}/{prefix}/multi");
    let repo = repo_with(
        &repository,
        &["linux/arm64", "linux/amd64"],
        CROSS_DOCKERFILE,
    );
    let config = docker_config(REGISTRY_PASSWORD);
    let config_dir = config.path().display().to_string();
    let env = [("DOCKER_CONFIG", config_dir.as_str())];
    let (code, report, stderr) = run(&repo, &["--level", "minimal", "--push"], &env);
    assert_eq!(code, Some(0), "{stderr}\n{report}");
    let built = image(&report);
    assert_eq!(built["result"], "built", "{built}");
    let list = registry_manifest(&repository, "latest");
    assert_eq!(
        platforms_of(&list["manifests"], "", "", ""),
        ["linux/amd64", "linux/arm64"],
        "the registry's manifest list: {list}"
    );
    let digest = built["digest"].as_str().expect("digest");
    assert!(
        digest.starts_with(&format!("{repository}@sha256:")),
        "{built}"
    );
    // Locally, the engine's own platform carries the image's tags, each platform its own.
    let latest = format!("{repository}:latest");
    let own = crate::build::docker(&["image", "inspect", "--format", "{{.Architecture}}", &latest]);
    assert_eq!(own.trim(), "amd64");
    let arm = format!("{repository}:latest-linux-arm64");
    let arm = crate::build::docker(&["image", "inspect", "--format", "{{.Architecture}}", &arm]);
    assert_eq!(arm.trim(), "arm64");
}

#[test]
fn on_the_classic_store_two_platforms_are_refused_in_one_line_before_any_build() {
    let test = "platforms_classic_refusal";
    if !daemon_available(test) || containerd_store() {
        return;
    }
    let prefix = prefix("classic");
    let _images = Images(prefix.clone());
    let repo = repo_with(
        &format!("{prefix}/multi"),
        &["linux/amd64", "linux/arm64"],
        CROSS_DOCKERFILE,
    );
    let (code, report, stderr) = run(&repo, &["--level", "minimal"], &[]);
    assert_eq!(code, Some(4), "{stderr}\n{report}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("image 'multi' is for 2 platforms (linux/amd64, linux/arm64)")
            && lines[0].contains("containerd image store"),
        "{stderr}"
    );
    let listed = crate::build::docker(&["images", "-q", &format!("{prefix}/multi")]);
    assert!(listed.trim().is_empty(), "nothing built: {listed}");
}

/// Whether this machine runs `arch`'s programs (natively or through a binfmt_misc handler),
/// asked by starting that platform's busybox; `None` when the testbed did not fetch it.
fn host_runs(arch: &str) -> Option<bool> {
    let busybox = Path::new(FOREIGN).join(format!("busybox-{arch}/bin/busybox"));
    if !busybox.exists() {
        return None;
    }
    Some(
        Command::new(&busybox)
            .arg("true")
            .status()
            .is_ok_and(|s| s.success()),
    )
}

/// Whether the daemon has the base image `reference`; in CI it must.
fn base_image(reference: &str, test: &str) -> bool {
    let present = !crate::build::docker(&["images", "-q", reference])
        .trim()
        .is_empty();
    crate::skips::require(
        present,
        test,
        &format!("base image {reference}"),
        "tests/testbed/make-base-images.sh",
    )
}

/// Docker 20.10's BuildKit looks a base for another platform up in a registry, never in its own
/// store: foreign-platform builds from local bases need a newer engine.
fn resolves_foreign_bases_locally() -> bool {
    let version = crate::build::docker(&["version", "--format", "{{.Server.Version}}"]);
    version
        .split('.')
        .next()
        .and_then(|major| major.trim().parse::<u32>().ok())
        .is_some_and(|major| major >= 25)
}

#[test]
fn a_run_step_for_a_platform_the_daemon_cannot_run_is_said_in_one_line() {
    let test = "platforms_unrunnable";
    if !daemon_available(test) || !resolves_foreign_bases_locally() {
        return;
    }
    let fetched = host_runs("s390x");
    let testbed = "tests/testbed/foreign-platforms.sh";
    if !crate::skips::require(fetched.is_some(), test, "s390x busybox", testbed)
        || !base_image("buildopt-test/busybox-s390x", test)
    {
        return;
    }
    // This test shows a platform without an emulator: one that has one proves nothing here.
    if !crate::skips::require(
        fetched == Some(false),
        test,
        "platform without a binfmt_misc handler (s390x has one here)",
        "unregister qemu-s390x from /proc/sys/fs/binfmt_misc",
    ) {
        return;
    }
    let prefix = prefix("unrunnable");
    let _images = Images(prefix.clone());
    let repo = repo_with(
        &format!("{prefix}/multi"),
        &["linux/s390x"],
        "FROM buildopt-test/busybox-s390x\nRUN echo hello > /hello.txt\n",
    );
    let (code, report, stderr) = run(&repo, &["--level", "minimal"], &[]);
    assert_eq!(code, Some(1), "{stderr}\n{report}");
    let failure = &image(&report)["failure"];
    assert_eq!(
        failure["message"],
        "the daemon cannot run linux/s390x steps: its host has no emulator for linux/s390x \
         (binfmt_misc, e.g. QEMU user emulation); COPY-only steps and FROM \
         --platform=$BUILDPLATFORM stages need none",
        "{failure}"
    );
    assert_eq!(failure["line"], 2, "{failure}");
    assert!(
        failure
            .get("log_tail")
            .is_none_or(|t| t == &Value::Array(Vec::new())),
        "no raw exec error: {failure}"
    );
}

#[test]
fn a_run_step_for_arm64_runs_under_qemu() {
    let test = "platforms_emulated_run";
    if !daemon_available(test) || !resolves_foreign_bases_locally() {
        return;
    }
    let testbed = "tests/testbed/foreign-platforms.sh";
    if !crate::skips::require(
        host_runs("arm64") == Some(true),
        test,
        "qemu-aarch64 binfmt_misc handler",
        testbed,
    ) || !base_image("buildopt-test/busybox-arm64", test)
    {
        return;
    }
    let prefix = prefix("emulated");
    let _images = Images(prefix.clone());
    let reference = format!("{prefix}/multi");
    let repo = repo_with(
        &reference,
        &["linux/arm64"],
        "FROM buildopt-test/busybox-arm64\nRUN uname -m > /machine.txt\n",
    );
    let (code, report, stderr) = run(&repo, &["--level", "minimal"], &[]);
    assert_eq!(code, Some(0), "{stderr}\n{report}");
    let steps = image(&report)["steps"].to_string();
    assert!(steps.contains("RUN uname -m"), "{steps}");
    let latest = format!("{reference}:latest");
    let inspect = ["image", "inspect", "--format", "{{.Architecture}}", &latest];
    assert_eq!(crate::build::docker(&inspect).trim(), "arm64");
    // What the RUN step saw: an arm64 machine, emulated.
    let run = [
        "run",
        "--rm",
        "--platform",
        "linux/arm64",
        &latest,
        "cat",
        "/machine.txt",
    ];
    assert_eq!(crate::build::docker(&run).trim(), "aarch64");
}
