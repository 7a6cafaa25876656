//! [`FakeEngine`]: an in-memory [`Engine`] that records every call, for unit tests of callers.
//!
//! It keeps an image store (id → [`ImageInfo`], tags pointing at ids), so inspect, tag,
//! find-by-label and remove behave like a daemon's; builds succeed with an id derived from the
//! request unless a failure was scripted for one of the request's tags. A build for several
//! platforms makes an image index, as on the containerd image store: one step per platform, and
//! [`ImageInfo::platforms`] lists each platform's image. A registry is modelled as a map from
//! `repo:tag` to image id: pushes fill it, pulls tag the image locally.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::{
    BuildEvent, BuildOutcome, BuildRequest, Engine, EngineError, EventSink, ImageInfo,
    PlatformImage, RegistryAuth, StepPosition, StepRecord,
};

/// The size of every image the fake makes (and of each platform's image in an index).
pub const IMAGE_SIZE: u64 = 1024;

/// One call the fake received, with the arguments that matter to callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeCall {
    Build {
        tags: Vec<String>,
        labels: BTreeMap<String, String>,
        target: Option<String>,
        platforms: Vec<String>,
    },
    Inspect(String),
    FindByLabel {
        key: String,
        value: String,
    },
    Tag {
        image: String,
        repo: String,
        tag: String,
    },
    Push {
        reference: String,
        authenticated: bool,
    },
    PushManifestList {
        reference: String,
        platforms: Vec<(String, String)>,
    },
    RegistryDigest(String),
    Pull(String),
    RemoveImage(String),
    PruneDangling,
    PruneBuildCache(Duration),
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<FakeCall>,
    images: BTreeMap<String, ImageInfo>,
    /// `repo:tag` → image id.
    tags: BTreeMap<String, String>,
    /// Tag → message of the build failure to return for requests carrying it.
    failures: BTreeMap<String, String>,
    /// Tags whose builds start a step and then never end (a hung daemon or build).
    hangs: BTreeSet<String>,
    pushed: BTreeSet<String>,
    /// The registry: `repo:tag` → image id.
    remote: BTreeMap<String, String>,
}

/// The recording fake; cheap to share by reference between concurrent tasks.
#[derive(Debug, Default)]
pub struct FakeEngine {
    state: Mutex<State>,
}

impl FakeEngine {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking test thread poisons the lock; the data is still what was recorded.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes builds of requests tagged `tag` fail at their last step with `message`.
    pub fn fail_builds_tagged(&self, tag: &str, message: &str) {
        self.state()
            .failures
            .insert(tag.to_owned(), message.to_owned());
    }

    /// Makes builds of requests tagged `tag` start their step and then hang forever.
    pub fn hang_builds_tagged(&self, tag: &str) {
        self.state().hangs.insert(tag.to_owned());
    }

    /// Adds an image as if it had been built earlier; returns its id.
    pub fn add_image(&self, tags: &[&str], labels: &[(&str, &str)]) -> String {
        let mut state = self.state();
        let id = format!("sha256:{:064x}", state.images.len() + 1);
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        store(
            &mut state,
            &id,
            tags.iter().map(|t| (*t).to_owned()).collect(),
            labels,
            &[],
        );
        id
    }

    /// Adds an image that only the registry has, as `reference`; returns its id.
    pub fn add_registry_image(&self, reference: &str, labels: &[(&str, &str)]) -> String {
        let id = self.add_image(&[], labels);
        self.state().remote.insert(reference.to_owned(), id.clone());
        id
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<FakeCall> {
        self.state().calls.clone()
    }

    /// Every `repo:tag` pushed so far.
    pub fn pushed(&self) -> Vec<String> {
        self.state().pushed.iter().cloned().collect()
    }
}

fn store(
    state: &mut State,
    id: &str,
    tags: Vec<String>,
    labels: BTreeMap<String, String>,
    platforms: &[String],
) {
    for tag in &tags {
        retag(state, tag, id);
    }
    let index = platforms.len() > 1;
    let platforms = platforms
        .iter()
        .filter(|_| index)
        .map(|platform| PlatformImage {
            platform: platform.clone(),
            manifest: format!(
                "sha256:{}",
                blake3::hash(format!("{id}{platform}").as_bytes()).to_hex()
            ),
            size: IMAGE_SIZE,
        })
        .collect();
    let image = ImageInfo {
        id: id.to_owned(),
        size: IMAGE_SIZE,
        layers: 1,
        repo_digests: Vec::new(),
        repo_tags: tags,
        labels,
        created: None,
        platforms,
    };
    state.images.insert(id.to_owned(), image);
}

/// Points `tag` at `id`, taking it from the image that had it.
fn retag(state: &mut State, tag: &str, id: &str) {
    if let Some(previous) = state.tags.insert(tag.to_owned(), id.to_owned())
        && let Some(image) = state.images.get_mut(&previous)
    {
        image.repo_tags.retain(|t| t != tag);
    }
    if let Some(image) = state.images.get_mut(id)
        && !image.repo_tags.iter().any(|t| t == tag)
    {
        image.repo_tags.push(tag.to_owned());
    }
}

fn resolve(state: &State, reference: &str) -> Option<String> {
    let with_latest = if reference.contains(':') {
        reference.to_owned()
    } else {
        format!("{reference}:latest")
    };
    state.tags.get(&with_latest).cloned().or_else(|| {
        state
            .images
            .contains_key(reference)
            .then(|| reference.to_owned())
    })
}

/// The id a build of `request` gets: equal requests give equal ids, as cached builds do.
fn image_id_for(request: &BuildRequest) -> String {
    let description = format!(
        "{:?}{:?}{:?}{:?}{:?}{:?}",
        request.dockerfile,
        request.context_files,
        request.build_args,
        request.labels,
        request.target,
        request.platforms
    );
    format!("sha256:{}", blake3::hash(description.as_bytes()).to_hex())
}

/// The one step of a build, once per platform of an index (BuildKit prefixes each name with its
/// platform).
fn the_steps(platforms: &[String], error: Option<String>) -> Vec<StepRecord> {
    if platforms.len() < 2 {
        return vec![the_step(0, None, error)];
    }
    platforms
        .iter()
        .enumerate()
        .map(|(index, platform)| the_step(index, Some(platform), error.clone()))
        .collect()
}

fn the_step(index: usize, platform: Option<&String>, error: Option<String>) -> StepRecord {
    let name = match platform {
        Some(platform) => format!("[{platform} 1/1] FROM scratch"),
        None => "[1/1] FROM scratch".to_owned(),
    };
    StepRecord {
        index,
        name,
        position: Some(StepPosition {
            stage: None,
            number: 1,
            total: 1,
            platform: platform.cloned(),
        }),
        dockerfile_line: Some(1),
        duration: Duration::ZERO,
        cached: false,
        error,
    }
}

impl Engine for FakeEngine {
    async fn build(
        &self,
        request: &BuildRequest,
        on_event: EventSink<'_>,
    ) -> Result<BuildOutcome, EngineError> {
        let (failure, hangs) = {
            let mut state = self.state();
            state.calls.push(FakeCall::Build {
                tags: request.tags.clone(),
                labels: request.labels.clone(),
                target: request.target.clone(),
                platforms: request.platforms.clone(),
            });
            let failure = request
                .tags
                .iter()
                .find_map(|t| state.failures.get(t).cloned());
            (
                failure,
                request.tags.iter().any(|t| state.hangs.contains(t)),
            )
        };
        let steps = the_steps(&request.platforms, failure.clone());
        for step in &steps {
            on_event(BuildEvent::StepStarted {
                index: step.index,
                name: step.name.clone(),
                position: step.position.clone(),
            });
        }
        if hangs {
            std::future::pending::<()>().await;
        }
        for step in &steps {
            on_event(BuildEvent::StepFinished(step.clone()));
        }
        if let Some(message) = failure {
            return Err(EngineError::BuildFailed {
                step: Some(steps[0].name.clone()),
                line: Some(1),
                log_tail: Vec::new(),
                message,
            });
        }
        let image_id = image_id_for(request);
        store(
            &mut self.state(),
            &image_id,
            request.tags.clone(),
            request.labels.clone(),
            &request.platforms,
        );
        Ok(BuildOutcome {
            image_id,
            steps,
            duration: Duration::ZERO,
        })
    }

    async fn inspect(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        let mut state = self.state();
        state.calls.push(FakeCall::Inspect(reference.to_owned()));
        Ok(resolve(&state, reference).and_then(|id| state.images.get(&id).cloned()))
    }

    async fn find_by_label(&self, key: &str, value: &str) -> Result<Vec<ImageInfo>, EngineError> {
        let mut state = self.state();
        state.calls.push(FakeCall::FindByLabel {
            key: key.to_owned(),
            value: value.to_owned(),
        });
        let matches = state
            .images
            .values()
            .filter(|i| i.labels.get(key).is_some_and(|v| v == value));
        Ok(matches.cloned().collect())
    }

    async fn tag(&self, image: &str, repo: &str, tag: &str) -> Result<(), EngineError> {
        let mut state = self.state();
        state.calls.push(FakeCall::Tag {
            image: image.to_owned(),
            repo: repo.to_owned(),
            tag: tag.to_owned(),
        });
        // The same error the daemon gives.
        let id = resolve(&state, image).ok_or_else(|| EngineError::Api {
            call: format!("tag {image} as {repo}:{tag}"),
            source: bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                message: format!("No such image: {image}"),
            },
        })?;
        retag(&mut state, &format!("{repo}:{tag}"), &id);
        Ok(())
    }

    async fn push(
        &self,
        repo: &str,
        tag: &str,
        credentials: Option<&RegistryAuth>,
        on_event: EventSink<'_>,
    ) -> Result<(), EngineError> {
        let reference = format!("{repo}:{tag}");
        let mut state = self.state();
        state.calls.push(FakeCall::Push {
            reference: reference.clone(),
            authenticated: credentials.is_some(),
        });
        if !state.tags.contains_key(&reference) {
            return Err(EngineError::Push {
                reference,
                message: "tag does not exist".to_owned(),
            });
        }
        on_event(BuildEvent::Log {
            step: None,
            line: format!("pushed {reference}"),
        });
        let id = state.tags[&reference].clone();
        state.remote.insert(reference.clone(), id);
        state.pushed.insert(reference);
        Ok(())
    }

    async fn push_manifest_list(
        &self,
        repo: &str,
        tag: &str,
        platforms: &[(String, String)],
        _credentials: Option<&RegistryAuth>,
    ) -> Result<String, EngineError> {
        let reference = format!("{repo}:{tag}");
        let mut state = self.state();
        state.calls.push(FakeCall::PushManifestList {
            reference: reference.clone(),
            platforms: platforms.to_vec(),
        });
        let mut ids = Vec::new();
        for (_, platform_tag) in platforms {
            let pushed = format!("{repo}:{platform_tag}");
            let id = state
                .remote
                .get(&pushed)
                .cloned()
                .ok_or_else(|| EngineError::Push {
                    reference: reference.clone(),
                    message: format!("{pushed} is not in the registry"),
                })?;
            ids.push(id);
        }
        // The registry answers a pull of the list with the first platform's image.
        state.remote.insert(reference.clone(), ids[0].clone());
        state.pushed.insert(reference);
        Ok(format!(
            "sha256:{}",
            blake3::hash(ids.concat().as_bytes()).to_hex()
        ))
    }

    async fn registry_digest(
        &self,
        repo: &str,
        tag: &str,
        _credentials: Option<&RegistryAuth>,
    ) -> Result<Option<String>, EngineError> {
        let reference = format!("{repo}:{tag}");
        let mut state = self.state();
        state
            .calls
            .push(FakeCall::RegistryDigest(reference.clone()));
        Ok(state
            .remote
            .get(&reference)
            .map(|id| id.replace("sha256:", "sha256:d")))
    }

    async fn pull(
        &self,
        repo: &str,
        tag: &str,
        _credentials: Option<&RegistryAuth>,
        _on_event: EventSink<'_>,
    ) -> Result<(), EngineError> {
        let reference = format!("{repo}:{tag}");
        let mut state = self.state();
        state.calls.push(FakeCall::Pull(reference.clone()));
        let Some(id) = state.remote.get(&reference).cloned() else {
            return Err(EngineError::Registry {
                reference,
                message: "manifest unknown".to_owned(),
            });
        };
        retag(&mut state, &reference, &id);
        Ok(())
    }

    /// Removing a tag untags (and removes the image with its last tag); removing an id removes
    /// the image and its tags.
    async fn remove_image(&self, reference: &str) -> Result<bool, EngineError> {
        let mut state = self.state();
        state
            .calls
            .push(FakeCall::RemoveImage(reference.to_owned()));
        let Some(id) = resolve(&state, reference) else {
            return Ok(false);
        };
        let tag = if reference.contains(':') {
            reference.to_owned()
        } else {
            format!("{reference}:latest")
        };
        let untagged_only = state.tags.remove(&tag).is_some();
        let image = state
            .images
            .get_mut(&id)
            .expect("tags point at stored images");
        image.repo_tags.retain(|t| *t != tag);
        if !untagged_only || image.repo_tags.is_empty() {
            let removed = state.images.remove(&id).expect("just looked up");
            for tag in removed.repo_tags {
                state.tags.remove(&tag);
            }
        }
        Ok(true)
    }

    async fn prune_dangling(&self) -> Result<u64, EngineError> {
        self.state().calls.push(FakeCall::PruneDangling);
        Ok(0)
    }

    async fn prune_build_cache(&self, older_than: Duration) -> Result<u64, EngineError> {
        self.state()
            .calls
            .push(FakeCall::PruneBuildCache(older_than));
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Dockerfile;

    fn request(tag: &str, label: (&str, &str)) -> BuildRequest {
        let mut request =
            BuildRequest::new(Vec::new(), Dockerfile::Contents(b"FROM scratch\n".to_vec()));
        request.tags = vec![tag.to_owned()];
        request
            .labels
            .insert(label.0.to_owned(), label.1.to_owned());
        request
    }

    #[tokio::test]
    async fn builds_are_stored_found_by_label_tagged_and_removed() {
        let engine = FakeEngine::new();
        let mut events = Vec::new();
        let outcome = engine
            .build(&request("app:1", ("k", "v")), &mut |e| events.push(e))
            .await
            .expect("build");
        assert_eq!(events.len(), 2);
        let found = engine.find_by_label("k", "v").await.expect("find");
        assert_eq!(
            found.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
            [outcome.image_id.as_str()]
        );
        engine
            .tag(&outcome.image_id, "app", "2")
            .await
            .expect("tag");
        let image = engine
            .inspect("app:2")
            .await
            .expect("inspect")
            .expect("tagged");
        assert_eq!(image.repo_tags, ["app:1", "app:2"]);
        assert!(engine.remove_image("app:1").await.expect("remove"));
        assert!(
            engine.inspect("app:2").await.expect("inspect").is_some(),
            "still tagged app:2"
        );
        assert!(engine.remove_image("app:2").await.expect("remove"));
        assert_eq!(
            engine.inspect(&outcome.image_id).await.expect("inspect"),
            None
        );
        assert!(!engine.remove_image("app:2").await.expect("remove"));
    }

    #[tokio::test]
    async fn scripted_failures_and_pushes_are_recorded() {
        let engine = FakeEngine::new();
        engine.fail_builds_tagged("bad:1", "exit code: 1");
        let error = engine
            .build(&request("bad:1", ("k", "v")), &mut |_| {})
            .await
            .expect_err("scripted");
        assert!(
            matches!(error, EngineError::BuildFailed { ref message, .. } if message == "exit code: 1")
        );
        let id = engine.add_image(&["base:latest"], &[]);
        let auth = RegistryAuth {
            username: "u".into(),
            password: "p".into(),
            server: "r".into(),
        };
        engine
            .push("base", "latest", Some(&auth), &mut |_| {})
            .await
            .expect("push");
        assert!(engine.push("nope", "1", None, &mut |_| {}).await.is_err());
        assert_eq!(engine.pushed(), ["base:latest"]);
        assert_eq!(
            engine.inspect("base").await.expect("inspect").map(|i| i.id),
            Some(id)
        );
        assert!(matches!(engine.calls()[0], FakeCall::Build { .. }));
        assert_eq!(
            engine.calls()[1],
            FakeCall::Push {
                reference: "base:latest".into(),
                authenticated: true
            }
        );
    }
}
