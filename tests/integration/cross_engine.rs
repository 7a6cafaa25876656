//! Images carried between engines through the cache archive: built on one engine, exported,
//! imported into another, in every direction between the engines `BUILDOPT_TEST_CROSS` names
//! (`NAME=unix:///…/docker.sock` separated by spaces; tests/run.sh sets it after the per-engine
//! passes and runs this test on its own, since it needs every engine at once). Each image must
//! come back with the same config and tags, its id following the target's image store: the
//! config digest on the classic store, the saved manifest or index digest on the containerd store.

use std::path::Path;

use buildopt::engine::{BuildRequest, DockerEngine, Dockerfile, Engine, ImageStore};
use serde_json::Value;

use crate::cli::buildopt;

/// (name, DOCKER_HOST) of every engine under test.
fn engines() -> Vec<(String, String)> {
    let listed = std::env::var("BUILDOPT_TEST_CROSS")
        .expect("BUILDOPT_TEST_CROSS names the engines (tests/run.sh sets it)");
    let engines: Vec<(String, String)> = listed
        .split_whitespace()
        .map(|pair| {
            let (name, host) = pair.split_once('=').expect("NAME=DOCKER_HOST");
            (name.to_owned(), host.to_owned())
        })
        .collect();
    assert!(engines.len() >= 2, "at least two engines: {listed}");
    engines
}

async fn connect(host: &str) -> DockerEngine {
    DockerEngine::connect(Some(host), None, false)
        .await
        .unwrap_or_else(|e| panic!("{host}: {e}"))
}

/// Builds a one-layer image tagged `tag` on `engine`, with a label of its own.
async fn build_image(engine: &DockerEngine, tag: &str) {
    let dockerfile = format!(
        "FROM buildopt-test/busybox:latest\nRUN echo {tag} > /made-by\nLABEL buildopt.test.cross={tag}\n"
    );
    let mut request = BuildRequest::new(Vec::new(), Dockerfile::Contents(dockerfile.into_bytes()));
    request.builder = engine.default_builder();
    request.tags = vec![tag.to_owned()];
    engine
        .build(&request, &mut |_| {})
        .await
        .unwrap_or_else(|e| panic!("build {tag}: {e}"));
}

fn cache(dir: &Path, host: &str, args: &[&str]) -> Value {
    let mut all = vec!["--format", "json", "cache"];
    all.extend(args);
    let output = buildopt(dir, &all, &[("DOCKER_HOST", host)]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?} on {host}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

/// The entry of `name` in the store of `dir`.
fn entry(dir: &Path, name: &str) -> Value {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join(".build_cache/index.json")).expect("index"))
            .expect("json");
    index["images"]
        .as_array()
        .and_then(|images| images.iter().find(|i| i["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no entry {name}: {index}"))
}

#[tokio::test]
#[ignore = "needs every engine at once: tests/run.sh runs it with BUILDOPT_TEST_CROSS set"]
async fn images_cross_between_engines_with_their_config_tags_and_the_targets_id() {
    let engines = engines();
    for (from_name, from_host) in &engines {
        let from = connect(from_host).await;
        for (to_name, to_host) in engines.iter().filter(|(name, _)| name != from_name) {
            let to = connect(to_host).await;
            let repository = format!("buildopt-test/cross-{from_name}-to-{to_name}");
            let tag = format!("{repository}:{}", std::process::id());
            build_image(&from, &tag).await;
            let source = tempfile::tempdir().expect("tempdir");
            cache(
                source.path(),
                from_host,
                &["export", "c.tzst", "--image", &tag],
            );
            let saved = entry(source.path(), &repository);

            let target = tempfile::tempdir().expect("tempdir");
            std::fs::copy(source.path().join("c.tzst"), target.path().join("c.tzst"))
                .expect("copy");
            let imported = cache(target.path(), to_host, &["import", "c.tzst"]);
            assert_eq!(imported["loaded"][0], repository.as_str(), "{imported}");

            let case = format!("{from_name} → {to_name}");
            let info = to
                .inspect(&tag)
                .await
                .expect("inspect")
                .expect("the image is back");
            assert_eq!(info.labels["buildopt.test.cross"], tag, "{case}");
            assert!(
                info.repo_tags.contains(&tag),
                "{case}: {:?}",
                info.repo_tags
            );
            let (diff_ids, _) = to
                .layers_and_history(&tag)
                .await
                .expect("layers")
                .expect("the image is back");
            let saved_diff_ids: Vec<String> = saved["diff_ids"]
                .as_array()
                .expect("diff ids")
                .iter()
                .filter_map(|d| d.as_str().map(String::from))
                .collect();
            assert_eq!(diff_ids, saved_diff_ids, "{case}: the same layers");
            let expected_id = match (to.info().image_store, saved.get("target")) {
                (ImageStore::Classic, _) => Some(saved["config"].clone()),
                (ImageStore::Containerd, Some(target)) => Some(target["digest"].clone()),
                // Saved in the legacy layout: the containerd store makes a manifest of its own.
                (ImageStore::Containerd, None) => None,
            };
            if let Some(expected) = expected_id {
                assert_eq!(Value::from(info.id.clone()), expected, "{case}: the id");
            }
            for engine in [&from, &to] {
                let _ = engine.remove_image(&tag).await;
            }
        }
    }
}

/// An image index of two platforms, built on each engine with the containerd image store and
/// carried into every other engine: a containerd store gets the index back under its digest; a
/// classic store gets the saving daemon's own platform, and the import says so.
#[tokio::test]
#[ignore = "needs every engine at once: tests/run.sh runs it with BUILDOPT_TEST_CROSS set"]
async fn an_index_of_two_platforms_crosses_as_an_index_or_as_its_own_platform() {
    let engines = engines();
    for (from_name, from_host) in &engines {
        let from = connect(from_host).await;
        if from.info().image_store != ImageStore::Containerd {
            continue;
        }
        for (to_name, to_host) in engines.iter().filter(|(name, _)| name != from_name) {
            let to = connect(to_host).await;
            let case = format!("{from_name} → {to_name}");
            let repository = format!("buildopt-test/cross-index-{from_name}-to-{to_name}");
            let tag = format!("{repository}:{}", std::process::id());
            let dockerfile = format!(
                "FROM --platform=$BUILDPLATFORM buildopt-test/busybox:latest AS made\n\
                 ARG TARGETARCH\nRUN echo {tag} $TARGETARCH > /made-by\n\
                 FROM scratch\nCOPY --from=made /made-by /\n"
            );
            let mut request =
                BuildRequest::new(Vec::new(), Dockerfile::Contents(dockerfile.into_bytes()));
            request.platforms = vec!["linux/amd64".into(), "linux/arm64".into()];
            request.tags = vec![tag.clone()];
            let built = from
                .build(&request, &mut |_| {})
                .await
                .unwrap_or_else(|e| panic!("{case}: build: {e}"));
            let source = tempfile::tempdir().expect("tempdir");
            cache(
                source.path(),
                from_host,
                &["export", "c.tzst", "--image", &tag],
            );
            let target = tempfile::tempdir().expect("tempdir");
            std::fs::copy(source.path().join("c.tzst"), target.path().join("c.tzst"))
                .expect("copy");
            let imported = cache(target.path(), to_host, &["import", "c.tzst"]);
            assert_eq!(imported["loaded"][0], repository.as_str(), "{imported}");
            let info = to
                .inspect(&tag)
                .await
                .expect("inspect")
                .expect("the image is back");
            match to.info().image_store {
                ImageStore::Containerd => {
                    assert_eq!(info.id, built.image_id, "{case}: the index digest");
                    assert_eq!(info.platforms.len(), 2, "{case}: {info:?}");
                    assert!(imported.get("notes").is_none(), "{case}: {imported}");
                }
                ImageStore::Classic => {
                    assert!(info.platforms.is_empty(), "{case}: {info:?}");
                    let note = imported["notes"][0].as_str().unwrap_or_default();
                    assert!(
                        note.ends_with(
                            "an image of 2 platforms, and the classic image store \
                                        holds one platform per image: linux/amd64 (the saving \
                                        daemon's own) was loaded"
                        ),
                        "{case}: {imported}"
                    );
                }
            }
            for engine in [&from, &to] {
                let _ = engine.remove_image(&tag).await;
            }
        }
    }
}
