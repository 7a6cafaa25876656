//! The registry side of a job when pushing (`--push`).
//!
//! Owns: which references of an image go to a registry (those whose repository names a registry
//! host), the tag that records an image's inputs digest in its registry, finding an image the
//! registry already has for the job's digest (pulled, so children can build FROM it), and
//! pushing every tag.

use super::tags::split_reference;
use crate::engine::{Engine, EngineError, ImageInfo, RegistryAuth};

/// A `repo:tag` in a registry, with the credentials for its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    pub reference: String,
    pub auth: Option<RegistryAuth>,
}

/// What a job does with registries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Publish {
    /// `<repository>:<digest tag>`: when the registry has it, the job pulls it instead of
    /// building. `None` when the image's repository names no registry.
    pub lookup: Option<RemoteRef>,
    /// Every tag to push after the image is built or reused, the digest tag included.
    pub push: Vec<RemoteRef>,
}

/// The registry host a reference names (`ghcr.io/acme/api:1` → `ghcr.io`), as Docker decides:
/// the first path component when it has a `.` or a `:`, or is `localhost`.
pub fn registry_host(reference: &str) -> Option<&str> {
    let (first, _) = reference.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

/// The tag recording an inputs digest (`blake3:ab12…` → `inputs-ab12…`, 40 hex digits).
pub fn digest_tag(inputs_digest: &str) -> String {
    let hex = inputs_digest
        .split_once(':')
        .map_or(inputs_digest, |(_, hex)| hex);
    format!("inputs-{}", hex.get(..40).unwrap_or(hex))
}

/// The image the registry holds for `lookup`, pulled and inspected; `None` when it has none.
pub async fn pull_existing<E: Engine>(
    engine: &E,
    lookup: &RemoteRef,
) -> Result<Option<ImageInfo>, EngineError> {
    let (repo, tag) = repo_and_tag(&lookup.reference);
    if engine
        .registry_digest(&repo, &tag, lookup.auth.as_ref())
        .await?
        .is_none()
    {
        return Ok(None);
    }
    engine
        .pull(&repo, &tag, lookup.auth.as_ref(), &mut |_| {})
        .await?;
    engine.inspect(&lookup.reference).await
}

/// Pushes every tag of `publish`, in order; the first refusal ends it.
pub async fn push_all<E: Engine>(engine: &E, publish: &Publish) -> Result<(), EngineError> {
    for remote in &publish.push {
        let (repo, tag) = repo_and_tag(&remote.reference);
        engine
            .push(&repo, &tag, remote.auth.as_ref(), &mut |_| {})
            .await?;
    }
    Ok(())
}

/// The reference of one platform's image of `reference` when the engine holds one platform per
/// image: `reg/app:1.2` for `linux/arm64/v8` is `reg/app:1.2-linux-arm64-v8`.
pub fn platform_tag(reference: &str, platform: &str) -> String {
    let (repo, tag) = repo_and_tag(reference);
    format!("{repo}:{tag}-{}", platform.replace('/', "-"))
}

/// Pushes, for every tag to push, each platform's image under its [`platform_tag`], then makes
/// the tag a manifest list of them. Returns the first list's `repo@digest`.
pub async fn push_manifest_lists<E: Engine>(
    engine: &E,
    publish: &Publish,
    platforms: &[String],
) -> Result<Option<String>, EngineError> {
    let mut first = None;
    for remote in &publish.push {
        let (repo, tag) = repo_and_tag(&remote.reference);
        let mut entries = Vec::new();
        for platform in platforms {
            let (_, platform_tag) = repo_and_tag(&platform_tag(&remote.reference, platform));
            engine
                .push(&repo, &platform_tag, remote.auth.as_ref(), &mut |_| {})
                .await?;
            entries.push((platform.clone(), platform_tag));
        }
        let digest = engine
            .push_manifest_list(&repo, &tag, &entries, remote.auth.as_ref())
            .await?;
        first.get_or_insert(format!("{repo}@{digest}"));
    }
    Ok(first)
}

fn repo_and_tag(reference: &str) -> (String, String) {
    let (repo, tag) = split_reference(reference);
    (repo, tag.unwrap_or_else(|| "latest".to_owned()))
}

#[cfg(test)]
mod platform_tests {
    use super::*;

    #[test]
    fn a_platform_tag_follows_the_tag() {
        assert_eq!(
            platform_tag("127.0.0.1:5000/team/app:1.2", "linux/arm64/v8"),
            "127.0.0.1:5000/team/app:1.2-linux-arm64-v8"
        );
        assert_eq!(
            platform_tag("reg.io/app", "linux/amd64"),
            "reg.io/app:latest-linux-amd64"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts_follow_dockers_rule() {
        assert_eq!(
            registry_host("127.0.0.1:5000/a/b:1"),
            Some("127.0.0.1:5000")
        );
        assert_eq!(registry_host("ghcr.io/acme/api"), Some("ghcr.io"));
        assert_eq!(registry_host("localhost/api:1"), Some("localhost"));
        assert_eq!(registry_host("acme/api:1"), None);
        assert_eq!(registry_host("api:1"), None);
    }

    #[test]
    fn digest_tags_are_valid_docker_tags() {
        let tag = digest_tag(&format!("blake3:{}", "ab".repeat(32)));
        assert_eq!(tag, format!("inputs-{}", "ab".repeat(20)));
        assert!(tag.len() <= 128);
    }
}
