//! `buildopt cache` against the real daemon: build, export, wipe, import, rebuild from cache;
//! incremental export; pruning by size and age; two concurrent imports on one store.
//!
//! Images are built with the `docker` CLI and the classic builder (`DOCKER_BUILDKIT=0`), named
//! `buildopt-test/cache-<test>-<pid>` and removed at the end. Tests that need the daemon fail
//! when it is unreachable and `CI` is set; elsewhere they note it and return.

use std::path::Path;
use std::process::{Command, Output};

use crate::cli::buildopt;

fn daemon_available(test: &str) -> bool {
    let ok = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    crate::skips::require(ok, test, "Docker daemon", "tests/testbed/start-dockerd.sh")
}

fn docker(args: &[&str], dir: &Path) -> Output {
    let output = Command::new("docker")
        .args(args)
        .current_dir(dir)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker");
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn write_dockerfile(dir: &Path, nonce: &str, second: &str) {
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM buildopt-test/busybox:latest\nRUN echo {nonce} > /first\nRUN echo {second} > /second\n"
        ),
    )
    .expect("Dockerfile");
}

fn env_with_host() -> Vec<(&'static str, String)> {
    std::env::var("DOCKER_HOST")
        .map(|h| vec![("DOCKER_HOST", h)])
        .unwrap_or_default()
}

fn run(dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let host = env_with_host();
    let mut env: Vec<(&str, &str)> = host.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend_from_slice(extra);
    buildopt(dir, args, &env)
}

fn unique(test: &str) -> (String, String) {
    let nonce = format!(
        "{test}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    );
    (
        format!("buildopt-test/cache-{test}-{}", std::process::id()),
        nonce,
    )
}

use crate::build::containerd_store;

fn image_id(tag: &str, dir: &Path) -> String {
    let out = docker(&["image", "inspect", "--format", "{{.Id}}", tag], dir);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The store entry `name` of the store in `dir`.
fn store_entry(dir: &Path, name: &str) -> serde_json::Value {
    let index = std::fs::read(dir.join(".build_cache/index.json")).expect("index");
    let index: serde_json::Value = serde_json::from_slice(&index).expect("json");
    index["images"]
        .as_array()
        .and_then(|images| images.iter().find(|i| i["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no entry {name} in {index}"))
}

fn blob_list(entry: &serde_json::Value, key: &str) -> Vec<String> {
    entry[key]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|d| d.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn export_wipe_import_then_rebuild_uses_the_cache_and_exports_only_new_layers() {
    if !daemon_available("cache round trip") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (image, nonce) = unique("roundtrip");
    let tag = format!("{image}:v1");
    write_dockerfile(dir.path(), &nonce, "two");
    docker(&["build", "-q", "-t", &tag, "."], dir.path());
    let saved_id = image_id(&tag, dir.path());

    let out = run(
        dir.path(),
        &["cache", "export", "c.tzst", "--image", &tag],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    docker(&["rmi", "-f", &tag], dir.path());
    // `rmi` also removes the classic builder's intermediate images, its whole cache for this
    // build. BuildKit's cache is left alone: other tests share this daemon and it plays no part.

    let (fresh, report) = import_into_fresh_folder(dir.path());
    assert_eq!(report["restored"], true, "{report}");
    assert_eq!(report["loaded"][0], image.as_str(), "{report}");
    assert_eq!(
        image_id(&tag, dir.path()),
        saved_id,
        "the image is back under its id"
    );

    // The classic builder of the containerd image store fails a `--cache-from` of a loaded
    // image ("creating image moby-dangling@… failed because it already exists", Docker 28.5):
    // there the rebuild starts from nothing, which this test does not pretend otherwise.
    let cache_from: &[&str] = if containerd_store() {
        &[]
    } else {
        &["--cache-from", &tag]
    };
    let mut rebuild = vec!["build"];
    rebuild.extend_from_slice(cache_from);
    rebuild.extend(["-t", &tag, "."]);
    let log = text(&docker(&rebuild, dir.path()));
    if !containerd_store() {
        assert_eq!(log.matches("Using cache").count(), 2, "{log}");
    }

    // A one-line change: only its layer, the new config and the image's own documents
    // (manifest, index: none in the legacy layout) enter the store.
    write_dockerfile(dir.path(), &nonce, "three");
    let tag2 = format!("{image}:v2");
    let mut build2 = vec!["build", "-q"];
    build2.extend_from_slice(cache_from);
    build2.extend(["-t", &tag2, "."]);
    docker(&build2, dir.path());
    let before = store_entry(&fresh, &image);
    let out = run(
        &fresh,
        &[
            "--format", "json", "cache", "export", "c.tzst", "--image", &tag2,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let after = store_entry(&fresh, &image);
    let (old_layers, new_layers) = (blob_list(&before, "layers"), blob_list(&after, "layers"));
    if !containerd_store() {
        let fresh_layers: Vec<&String> = new_layers
            .iter()
            .filter(|l| !old_layers.contains(l))
            .collect();
        assert_eq!(fresh_layers.len(), 1, "{before} {after}");
    }
    let documents = blob_list(&after, "other_blobs").len();
    let said = text(&out);
    let new_blobs: usize = said
        .split_once(" new blobs)")
        .and_then(|(head, _)| head.rsplit_once('(')?.1.parse().ok())
        .unwrap_or_else(|| panic!("no count of new blobs in {said}"));
    let changed = new_layers
        .iter()
        .filter(|l| !old_layers.contains(l))
        .count();
    assert_eq!(new_blobs, changed + 1 + documents, "{said} {after}");

    // Importing again: the daemon has the image, nothing is loaded.
    let out = run(
        &fresh,
        &["--format", "json", "cache", "import", "c.tzst"],
        &[],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["loaded"], serde_json::json!([]), "{report}");
    assert_eq!(report["already_in_daemon"][0], image.as_str(), "{report}");
    docker(&["rmi", "-f", &tag, &tag2], dir.path());
}

#[test]
fn independent_images_move_through_concurrent_saves_and_loads_unchanged() {
    if !daemon_available("concurrent saves and loads") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (image, nonce) = unique("parallel");
    // Each image's own layer (8 MB of random bytes) outweighs the busybox layer they share, so
    // one request per image finishes sooner than one request for both. (Two repositories: the
    // store keeps one entry per repository.)
    let tags: Vec<String> = ["one", "two"]
        .iter()
        .map(|n| format!("{image}-{n}:latest"))
        .collect();
    for (n, tag) in tags.iter().enumerate() {
        let context = dir.path().join(format!("context{n}"));
        std::fs::create_dir(&context).expect("mkdir");
        std::fs::write(
            context.join("Dockerfile"),
            format!(
                "FROM buildopt-test/busybox:latest\nRUN echo {nonce}-{n} > /id && head -c 8000000 /dev/urandom > /big\n"
            ),
        )
        .expect("Dockerfile");
        docker(&["build", "-q", "-t", tag, "."], &context);
    }
    let ids: Vec<String> = tags
        .iter()
        .map(|tag| {
            let out = docker(
                &["image", "inspect", "--format", "{{.Id}}", tag],
                dir.path(),
            );
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        })
        .collect();

    let mut export = vec!["cache", "export", "c.tzst"];
    for tag in &tags {
        export.extend(["--image", tag.as_str()]);
    }
    let out = run(dir.path(), &export, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("through 2 docker save requests"),
        "{}",
        text(&out)
    );
    let mut remove = vec!["rmi", "-f"];
    remove.extend(tags.iter().map(String::as_str));
    docker(&remove, dir.path());

    let (_, report) = import_into_fresh_folder(dir.path());
    // Two uploads sharing the busybox layer: on the containerd image store, fed that layer in
    // step, they waited for each other's lock on it forever (see `DaemonTee`).
    assert_eq!(report["load_requests"], 2, "{report}");
    for (tag, id) in tags.iter().zip(&ids) {
        let out = docker(
            &["image", "inspect", "--format", "{{.Id}}", tag],
            dir.path(),
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), id, "{tag}");
    }
    docker(&remove, dir.path());
}

/// Imports `dir/c.tzst` into a new folder `dir/fresh` (its own store), as a fresh CI runner
/// would; returns the folder and the JSON import report.
fn import_into_fresh_folder(dir: &Path) -> (std::path::PathBuf, serde_json::Value) {
    let fresh = dir.join("fresh");
    std::fs::create_dir(&fresh).expect("mkdir");
    std::fs::copy(dir.join("c.tzst"), fresh.join("c.tzst")).expect("copy");
    let out = run(
        &fresh,
        &["--format", "json", "cache", "import", "c.tzst"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = serde_json::from_slice(&out.stdout).expect("json");
    (fresh, report)
}

/// A store with one image saved from the daemon, for the tests that need real blobs.
fn store_with_image(test: &str) -> Option<(tempfile::TempDir, String)> {
    if !daemon_available(test) {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (image, nonce) = unique(test);
    let tag = format!("{image}:v1");
    write_dockerfile(dir.path(), &nonce, "two");
    docker(&["build", "-q", "-t", &tag, "."], dir.path());
    let out = run(
        dir.path(),
        &["cache", "export", "c.tzst", "--image", &tag],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    docker(&["rmi", "-f", &tag], dir.path());
    Some((dir, image))
}

fn stats(dir: &Path) -> serde_json::Value {
    let out = run(dir, &["--format", "json", "cache", "stats"], &[]);
    serde_json::from_slice(&out.stdout).expect("stats json")
}

#[test]
fn size_limit_and_retention_prune_the_store() {
    let Some((dir, _image)) = store_with_image("prune") else {
        return;
    };
    assert_eq!(stats(dir.path())["entries"], 1);
    let out = run(
        dir.path(),
        &["cache", "cleanup"],
        &[("CACHE_RETENTION_DAYS", "7")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        stats(dir.path())["entries"],
        1,
        "recently used entries stay"
    );

    // Age the entry by rewriting its last use, as if the last build was long ago.
    let index_path = dir.path().join(".build_cache/index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).expect("index")).expect("json");
    index["images"][0]["last_used"] = 0.into();
    std::fs::write(&index_path, serde_json::to_vec(&index).expect("json")).expect("write");
    run(
        dir.path(),
        &["cache", "cleanup"],
        &[("CACHE_RETENTION_DAYS", "7")],
    );
    let after = stats(dir.path());
    assert_eq!(
        (after["entries"].clone(), after["blobs"].clone()),
        (0.into(), 0.into())
    );

    // The size limit: re-import, then a limit of 0 GB drops everything.
    run(dir.path(), &["cache", "import", "c.tzst", "--no-load"], &[]);
    assert_eq!(stats(dir.path())["entries"], 1);
    let out = run(
        dir.path(),
        &["cache", "optimize"],
        &[("CACHE_SIZE_LIMIT_GB", "0")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(stats(dir.path())["bytes"], 0);
}

#[test]
fn two_concurrent_imports_on_one_store_both_succeed() {
    let Some((dir, image)) = store_with_image("concurrent") else {
        return;
    };
    let shared = dir.path().join("shared");
    let jobs: Vec<_> = (0..2)
        .map(|_| {
            let root = dir.path().to_path_buf();
            let shared = shared.clone();
            std::thread::spawn(move || {
                let store = shared.to_str().expect("utf-8").to_owned();
                run(
                    &root,
                    &[
                        "cache",
                        "--cache-dir",
                        &store,
                        "import",
                        "c.tzst",
                        "--no-load",
                    ],
                    &[],
                )
            })
        })
        .collect();
    for job in jobs {
        let out = job.join().expect("join");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains("restored 1 images"), "{}", text(&out));
    }
    let out = run(
        dir.path(),
        &[
            "--format",
            "json",
            "cache",
            "--cache-dir",
            "shared",
            "stats",
        ],
        &[],
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(stats["entries"], 1, "{stats}");
    let index = std::fs::read_to_string(shared.join("index.json")).expect("index");
    assert!(index.contains(&image));
    assert_eq!(
        std::fs::read_dir(shared.join("tmp")).expect("tmp").count(),
        0
    );
}

#[test]
fn a_bad_archive_is_a_cache_miss_with_exit_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("c.tzst"), b"\x28\xb5\x2f\xfdnot really").expect("write");
    let out = run(dir.path(), &["cache", "import", "c.tzst"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("warning: refused cache archive"),
        "{}",
        text(&out)
    );
    let out = run(dir.path(), &["cache", "import", "missing.tzst"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("no cache archive"), "{}", text(&out));
}

/// `c.tzst` with the bytes of the image's config changed (same length, still valid JSON, so
/// only the digest check can tell); returns the archive and the changed config's id.
fn with_changed_config(archive: &[u8], from: &str, to: &str) -> (Vec<u8>, String) {
    let tar = zstd::decode_all(archive).expect("zstd");
    let mut entries = tar::Archive::new(tar.as_slice());
    let mut out = tar::Builder::new(Vec::new());
    let mut config = None;
    let mut changed = None;
    // The changed config goes last, so everything else reached the daemon before its check.
    let mut last = None;
    for entry in entries.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).expect("read");
        if name == "manifest.json" {
            let manifest: serde_json::Value = serde_json::from_slice(&bytes).expect("manifest");
            let digest = manifest["images"][0]["config"].as_str().expect("config");
            config = Some(format!("blobs/sha256/{}", &digest["sha256:".len()..]));
        } else if Some(&name) == config.as_ref() {
            let text = String::from_utf8(bytes).expect("config json");
            assert!(text.contains(from), "{text}");
            let text = text.replacen(from, to, 1);
            changed = Some(format!("sha256:{}", sha256_hex(text.as_bytes())));
            last = Some((entry.header().clone(), text.into_bytes()));
            continue;
        }
        out.append(&entry.header().clone(), bytes.as_slice())
            .expect("append");
    }
    let (header, bytes) = last.expect("the config blob is in the archive");
    out.append(&header, bytes.as_slice()).expect("append");
    let tar = out.into_inner().expect("tar");
    let changed = changed.expect("changed");
    (zstd::encode_all(tar.as_slice(), 3).expect("zstd"), changed)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The import streams blobs to `docker load` before they are verified; a blob that then fails
/// its digest must leave the daemon without the image (and without the forged one), and the
/// store without anything. The config is the blob changed: the daemon recomputes an image id
/// from whatever config it gets, so only buildopt's check stands between it and a forged image.
#[test]
fn a_blob_failing_its_digest_mid_import_loads_nothing_into_the_daemon() {
    let Some((dir, image)) = store_with_image("forged") else {
        return;
    };
    let tag = format!("{image}:v1");
    let good = std::fs::read(dir.path().join("c.tzst")).expect("archive");
    let (bad, forged_id) = with_changed_config(&good, "forged-", "FORGED-");
    let fresh = dir.path().join("fresh");
    std::fs::create_dir(&fresh).expect("mkdir");
    std::fs::write(fresh.join("bad.tzst"), bad).expect("write");
    std::fs::write(fresh.join("good.tzst"), good).expect("write");
    let inspect = |reference: &str| {
        Command::new("docker")
            .args(["image", "inspect", reference])
            .output()
            .expect("docker")
            .status
            .success()
    };

    let out = run(
        &fresh,
        &["--format", "json", "cache", "import", "bad.tzst"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["restored"], false, "{report}");
    let warning = report["warning"].as_str().unwrap_or_default();
    assert!(warning.contains("does not match"), "{report}");
    assert!(
        !inspect(&tag),
        "the image was loaded from a refused archive"
    );
    assert!(!inspect(&forged_id), "the forged config was loaded");
    let store = fresh.join(".build_cache");
    assert!(!store.join("index.json").exists());
    assert_eq!(
        std::fs::read_dir(store.join("blobs/sha256"))
            .expect("blobs")
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(store.join("tmp")).expect("tmp").count(),
        0
    );

    // The control: the same archive unchanged loads the image.
    let out = run(
        &fresh,
        &["--format", "json", "cache", "import", "good.tzst"],
        &[],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["loaded"][0], image.as_str(), "{report}");
    assert!(inspect(&tag));
    docker(&["rmi", "-f", &tag], dir.path());
}

#[test]
fn an_import_never_moves_a_tag_from_another_image_unless_forced() {
    let Some((dir, image)) = store_with_image("tagmove") else {
        return;
    };
    let tag = format!("{image}:v1");
    // The daemon's own image under the archive's tag.
    docker(&["tag", "buildopt-test/busybox:latest", &tag], dir.path());
    let theirs = image_id(&tag, dir.path());
    let fresh = dir.path().join("fresh");
    std::fs::create_dir(&fresh).expect("mkdir");
    std::fs::copy(dir.path().join("c.tzst"), fresh.join("c.tzst")).expect("copy");

    let out = run(
        &fresh,
        &["--format", "json", "cache", "import", "c.tzst"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["tags_kept"], serde_json::json!([tag]), "{report}");
    assert!(text(&out).contains("--force moves it"), "{}", text(&out));
    assert_eq!(
        image_id(&tag, dir.path()),
        theirs,
        "the tag stayed where it was"
    );

    let out = run(
        &fresh,
        &["--format", "json", "cache", "import", "--force", "c.tzst"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_ne!(image_id(&tag, dir.path()), theirs, "--force moves it");
    docker(&["rmi", "-f", &tag], dir.path());
}
