//! Turning the plan into scheduler jobs: each selected image's build request (context, tags,
//! OCI labels, cache sources, intermediate stage builds), the exact references it uses for its
//! internal parents, what `--push` publishes, what the daemon already holds, and the daemon
//! cleanup after the run.
//!
//! May import `engine`, `scheduler`, `workspace`, `plan` (its model) and `cache::store` (stage
//! references); never `commands`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::RunError;
use crate::cache::store::stage_reference;
use crate::engine::{BuildRequest, Builder, Dockerfile, Engine, EngineError};
use crate::plan::PlannedImage;
use crate::report::model::{CleanupReport, ContextSize};
use crate::scheduler::credentials::Credentials;
use crate::scheduler::remote::{digest_tag, registry_host};
use crate::scheduler::{DIGEST_LABEL, Job, ParentRef, Publish, RemoteRef, StageBuild};
use crate::workspace::context::{self, ContextError};
use crate::workspace::dockerfile::ParseError;
use crate::workspace::{Image, Workspace, repository_of};

/// What the daemon holds before the build (restored from the store or left by an earlier build)
/// for the images to build.
#[derive(Debug, Default)]
pub(super) struct Previous {
    /// `<repository>:latest`, and with `stages` each `<repository>:stage-<name>`, that exist:
    /// each may serve as a cache source of its repository.
    pub(super) present: BTreeSet<String>,
    /// The size of each image's `<repository>:latest`, by image name: its size before this run.
    pub(super) sizes: BTreeMap<String, u64>,
}

pub(super) async fn previous_images(
    engine: &impl Engine,
    order: &[&PlannedImage],
    workspace: &Workspace,
    stages: bool,
) -> Result<Previous, RunError> {
    // (image name when the reference is its `latest`, reference), asked of the daemon at once.
    let mut wanted: Vec<(Option<String>, String)> = Vec::new();
    for image in workspace
        .images
        .iter()
        .filter(|i| order.iter().any(|p| p.name == i.def.name))
    {
        wanted.push((
            Some(image.def.name.clone()),
            latest_of(&image.def.repository),
        ));
        if stages {
            let stage_refs = intermediate_stages(image)?;
            wanted.extend(
                stage_refs
                    .into_iter()
                    .map(|(_, reference)| (None, reference)),
            );
        }
    }
    let infos = futures_util::future::try_join_all(
        wanted
            .iter()
            .map(|(_, reference)| engine.inspect(reference)),
    )
    .await?;
    let mut previous = Previous::default();
    for ((name, reference), info) in wanted.into_iter().zip(infos) {
        let Some(info) = info else { continue };
        if let Some(name) = name {
            previous.sizes.insert(name, info.size);
        }
        previous.present.insert(reference);
    }
    Ok(previous)
}

/// The intermediate stages of the image's Dockerfile that can be built on their own, each with
/// the reference its image gets (`<repository>:stage-<name>`).
pub(super) fn intermediate_stages(image: &Image) -> Result<Vec<(String, String)>, RunError> {
    let stages = image
        .dockerfile
        .intermediate_stages(&image.def.args, image.def.target.as_deref())
        .map_err(|e| dockerfile_error(image, e))?;
    Ok(stages
        .into_iter()
        .filter_map(|stage| {
            let reference = stage_reference(&image.def.repository, &stage)?;
            Some((stage, reference))
        })
        .collect())
}

fn dockerfile_error(image: &Image, error: ParseError) -> RunError {
    RunError::Dockerfile {
        file: image.def.dockerfile.clone(),
        line: error.line,
        message: error.message,
    }
}

pub(super) fn latest_of(repository: &str) -> String {
    format!("{repository}:latest")
}

pub(super) struct Labels {
    pub(super) revision: String,
    pub(super) source: Option<String>,
    pub(super) created: String,
}

pub(super) struct JobSettings<'a> {
    pub(super) builder: Builder,
    pub(super) force: bool,
    /// Every tag of each selected image, by image name (made by [`super::Run::new`]).
    pub(super) tags: &'a BTreeMap<String, Vec<String>>,
    pub(super) labels: &'a Labels,
    /// Set with `--push`.
    pub(super) credentials: Option<&'a Credentials>,
    /// References that exist in the daemon and may serve as cache sources (see `cache_sources`).
    pub(super) cache_from: &'a BTreeSet<String>,
    /// Build with `BUILDKIT_INLINE_CACHE=1`, so the image carries its cache metadata.
    pub(super) inline_cache: bool,
    /// Build each intermediate stage as its own image first (level maximum).
    pub(super) stages: bool,
    /// Canonical paths never sent as part of a context: the cache store, report files.
    pub(super) excluded: &'a [PathBuf],
    /// The engine holds one platform per image: an image for several is built per platform and
    /// published as a manifest list (see [`Job::per_platform`]).
    pub(super) one_platform_per_image: bool,
    /// The engine's own platform (`linux/amd64`): built first, so the image's own tags name it.
    pub(super) own_platform: &'a str,
}

/// `path` relative to `dir`, `/`-separated, when it lies strictly inside it.
fn path_inside(dir: &Path, path: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let relative = path.strip_prefix(dir).ok()?;
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

pub(super) fn make_job(
    repo_root: &Path,
    image: &Image,
    planned: &PlannedImage,
    order: &[&PlannedImage],
    workspace: &Workspace,
    settings: &JobSettings<'_>,
) -> Result<(Job, ContextSize), RunError> {
    let def = &image.def;
    let context_dir = repo_root.join(&def.context);
    let skip: Vec<String> = settings
        .excluded
        .iter()
        .filter_map(|path| path_inside(&context_dir, path))
        .collect();
    let files = context::collect_skipping(&context_dir, &image.ignore, &skip)?;
    let size = ContextSize {
        bytes: files.bytes,
        files: files.file_count,
    };
    let dockerfile_path = repo_root.join(&def.dockerfile);
    let contents = std::fs::read(&dockerfile_path).map_err(|source| ContextError::Io {
        path: dockerfile_path.display().to_string(),
        source,
    })?;
    let mut request = BuildRequest::new(files.files, Dockerfile::Contents(contents));
    request.target = def.target.clone();
    request.build_args = def.args.clone();
    request.builder = settings.builder;
    request.no_cache = settings.force;
    request.platforms = def.platforms.clone();
    let stage_refs = if settings.stages {
        intermediate_stages(image)?
    } else {
        Vec::new()
    };
    add_cache_sources(&mut request, &def.repository, &stage_refs, settings);
    request.labels = labels(settings.labels, &planned.inputs_digest);
    let stages = stage_builds(&mut request, stage_refs);
    // Made for every selected image, and jobs are made for selected images only.
    request.tags = settings.tags[&def.name].clone();
    let publish = settings.credentials.and_then(|credentials| {
        publish(
            &def.repository,
            &mut request.tags,
            &planned.inputs_digest,
            credentials,
        )
    });
    let per_platform =
        settings.one_platform_per_image && def.platforms.len() > 1 && publish.is_some();
    if per_platform {
        own_platform_first(&mut request.platforms, settings.own_platform);
    }
    let job = Job {
        name: def.name.clone(),
        request,
        parents: parent_refs(image, planned, order, workspace)?,
        inputs_digest: planned.inputs_digest.clone(),
        digest_ref: format!("{}:{}", def.repository, digest_tag(&planned.inputs_digest)),
        // Reuse finds the first platform's image alone; the others and the list are rebuilt.
        reuse: !settings.force && !per_platform,
        publish,
        stages,
        per_platform,
    };
    Ok((job, size))
}

/// Moves the engine's own platform (`own`, or a variant of it) to the front of `platforms`.
fn own_platform_first(platforms: &mut [String], own: &str) {
    let is_own = |p: &String| p == own || p.starts_with(&format!("{own}/"));
    if let Some(index) = platforms.iter().position(is_own) {
        platforms[..=index].rotate_right(1);
    }
}

/// The previous image of the repository, and of each of its intermediate stages, as cache
/// sources: with BuildKit through their inline cache metadata, with the classic builder through
/// their parent chain (which `docker load` does not restore, so without it a loaded image would
/// not serve as cache).
fn add_cache_sources(
    request: &mut BuildRequest,
    repository: &str,
    stage_refs: &[(String, String)],
    settings: &JobSettings<'_>,
) {
    let previous = std::iter::once(latest_of(repository))
        .chain(stage_refs.iter().map(|(_, reference)| reference.clone()));
    request
        .cache_from
        .extend(previous.filter(|r| settings.cache_from.contains(r)));
    if settings.inline_cache {
        request
            .build_args
            .insert(INLINE_CACHE_ARG.into(), "1".into());
    }
}

/// One build per intermediate stage, copied from the image's `request` (same context, arguments,
/// labels and cache sources) with the stage as target and its own reference as only tag. The
/// image's build then also takes every stage image as cache source: built just before, they
/// hold the steps the final image's cache metadata (BuildKit's `mode=min`) or parent chain
/// leaves out.
fn stage_builds(request: &mut BuildRequest, stage_refs: Vec<(String, String)>) -> Vec<StageBuild> {
    let builds: Vec<StageBuild> = stage_refs
        .into_iter()
        .map(|(stage, reference)| {
            let mut build = request.clone();
            build.target = Some(stage.clone());
            build.tags = vec![reference];
            StageBuild {
                stage,
                request: build,
            }
        })
        .collect();
    for build in &builds {
        if !request.cache_from.contains(&build.request.tags[0]) {
            request.cache_from.push(build.request.tags[0].clone());
        }
    }
    builds
}

/// The BuildKit build argument that writes cache metadata into the image config.
const INLINE_CACHE_ARG: &str = "BUILDKIT_INLINE_CACHE";

/// What `--push` does for one image: when its repository names a registry, it also gets the
/// digest tag (so a later run finds it there); every tag with a registry host is pushed.
/// `None` when no tag goes to a registry.
fn publish(
    repository: &str,
    tags: &mut Vec<String>,
    inputs_digest: &str,
    credentials: &Credentials,
) -> Option<Publish> {
    let lookup = registry_host(repository).map(|server| {
        let reference = format!("{repository}:{}", digest_tag(inputs_digest));
        tags.push(reference.clone());
        RemoteRef {
            reference,
            auth: credentials.for_server(server),
        }
    });
    let push: Vec<RemoteRef> = tags
        .iter()
        .filter_map(|tag| {
            registry_host(tag).map(|server| RemoteRef {
                reference: tag.clone(),
                auth: credentials.for_server(server),
            })
        })
        .collect();
    (!push.is_empty()).then_some(Publish { lookup, push })
}

fn labels(labels: &Labels, digest: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::from([
        (
            "org.opencontainers.image.revision".to_string(),
            labels.revision.clone(),
        ),
        (
            "org.opencontainers.image.created".to_string(),
            labels.created.clone(),
        ),
        (DIGEST_LABEL.to_string(), digest.to_string()),
    ]);
    if let Some(source) = &labels.source {
        out.insert("org.opencontainers.image.source".into(), source.clone());
    }
    out
}

/// Each internal parent (as a job index) with the exact references the Dockerfile uses for it.
fn parent_refs(
    image: &Image,
    planned: &PlannedImage,
    order: &[&PlannedImage],
    workspace: &Workspace,
) -> Result<Vec<ParentRef>, RunError> {
    let refs = image
        .dockerfile
        .external_refs(&image.def.args, image.def.target.as_deref())
        .map_err(|e| dockerfile_error(image, e))?;
    let mut parents = Vec::new();
    for parent in &planned.depends_on {
        let Some(job) = order.iter().position(|p| &p.name == parent) else {
            continue;
        };
        let Some(repository) = workspace
            .images
            .iter()
            .find(|i| &i.def.name == parent)
            .map(|i| i.def.repository.as_str())
        else {
            continue;
        };
        let references: BTreeSet<String> = refs
            .iter()
            .filter(|r| !r.reference.contains('@') && repository_of(&r.reference) == repository)
            .map(|r| r.reference.clone())
            .collect();
        parents.push(ParentRef {
            job,
            references: references.into_iter().collect(),
        });
    }
    Ok(parents)
}

pub(super) async fn cleanup(
    engine: &impl Engine,
    retention_days: u64,
) -> Result<CleanupReport, EngineError> {
    let dangling = engine.prune_dangling().await?;
    let cache = engine
        .prune_build_cache(Duration::from_secs(retention_days * 24 * 3600))
        .await?;
    Ok(CleanupReport {
        dangling_images_bytes: dangling,
        build_cache_bytes: cache,
        retention_days,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_inside_a_context_is_named_relative_to_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::create_dir_all(root.join("ctx/.cache/store")).expect("mkdir");
        assert_eq!(
            path_inside(&root.join("ctx"), &root.join("ctx/.cache/store")),
            Some(".cache/store".into())
        );
        assert_eq!(path_inside(&root.join("ctx"), &root.join("ctx")), None);
        assert_eq!(
            path_inside(&root.join("ctx/.cache"), &root.join("ctx")),
            None
        );
    }
}

#[cfg(test)]
mod platform_tests {
    use super::own_platform_first;

    #[test]
    fn the_engines_own_platform_is_built_first() {
        let mut platforms = vec![
            "linux/arm64".to_owned(),
            "linux/s390x".into(),
            "linux/amd64".into(),
        ];
        own_platform_first(&mut platforms, "linux/amd64");
        assert_eq!(platforms, ["linux/amd64", "linux/arm64", "linux/s390x"]);
        own_platform_first(&mut platforms, "linux/riscv64");
        assert_eq!(platforms, ["linux/amd64", "linux/arm64", "linux/s390x"]);
        let mut arm = vec!["linux/amd64".to_owned(), "linux/arm64/v8".into()];
        own_platform_first(&mut arm, "linux/arm64");
        assert_eq!(arm, ["linux/arm64/v8", "linux/amd64"]);
    }
}
