//! The container engine: building, inspecting, tagging, pushing, pulling and pruning images, and
//! asking a registry (through the daemon) whether it has an image.
//!
//! The scheduler talks to the [`Engine`] trait only. [`DockerEngine`] implements it against the
//! Docker Engine API (bollard); [`fake::FakeEngine`] implements it in memory for unit tests of
//! the callers. This file owns the error type and the data that crosses the boundary; the other
//! files own one concern each:
//!
//! - `docker.rs`: connecting (unix socket, tcp, tcp+TLS), version negotiation, every API call;
//! - `context.rs`: streaming the build context as a tar, file by file, without holding it in memory;
//! - `control.rs`: one build for several platforms through BuildKit's control API;
//! - `progress.rs`: folding BuildKit vertex status and classic builder output into [`StepRecord`]s;
//! - `platforms.rs`: the platforms of an image index and each one's size;
//! - `registry.rs`: a manifest list of per-platform images, put into their registry;
//! - `socket.rs`: raw connections to the daemon (HTTP upgrades, inspections bollard cannot ask for);
//! - `lines.rs`: mapping build step numbers to Dockerfile lines (parsed by `workspace::dockerfile`);
//! - `fake.rs`: the recording fake.
//!
//! # The Dockerfile in the context
//!
//! The daemon reads the Dockerfile from the uploaded tar. When it lives inside the context, pass
//! [`Dockerfile::InContext`] with its path inside the tar (the file must be in
//! [`BuildRequest::context_files`]). When it lives elsewhere (or is generated), pass
//! [`Dockerfile::Contents`]: the engine adds it to the tar as [`INLINE_DOCKERFILE_NAME`], so that
//! name must not be one of the context files.
//!
//! The daemon applies a `.dockerignore` it finds at the root of the tar, so a caller that already
//! filtered the files may leave it out (or include it: filtering twice gives the same set).

pub mod capabilities;
mod context;
mod control;
mod docker;
pub mod fake;
mod image_io;
mod lines;
mod platforms;
mod progress;
mod registry;
mod socket;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

pub use context::stream_context;
pub use docker::{DaemonInfo, DockerEngine};
pub use image_io::{LoadStream, LoadUpload};
pub use progress::{BuildKitFolder, ClassicFolder};

/// The name under which [`Dockerfile::Contents`] is added to the context tar.
pub const INLINE_DOCKERFILE_NAME: &str = ".buildopt.Dockerfile";

/// How many log lines of the failing step a [`EngineError::BuildFailed`] keeps.
pub const LOG_TAIL_LINES: usize = 20;

/// Everything the engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No daemon answered at the address tried (`tried` is the `DOCKER_HOST` value or the default
    /// socket); `hint` says how to fix it.
    #[error("no docker daemon at {tried}: {reason}; {hint}")]
    NoDaemon {
        tried: String,
        reason: String,
        hint: String,
    },
    /// The daemon went away while a build or push was streaming (connection reset, or the stream
    /// ended without a result).
    #[error("the docker daemon went away during {during}: {reason}")]
    DaemonGone { during: String, reason: String },
    /// A build step failed; `log_tail` holds the last [`LOG_TAIL_LINES`] lines of that step.
    #[error("build failed{}: {message}", step.as_ref().map(|s| format!(" at {s}")).unwrap_or_default())]
    BuildFailed {
        step: Option<String>,
        line: Option<usize>,
        log_tail: Vec<String>,
        message: String,
    },
    /// A push was refused (authentication, unknown repository, registry unreachable).
    #[error("push of {reference} failed: {message}")]
    Push { reference: String, message: String },
    /// A registry refused a lookup or pull (authentication, registry unreachable).
    #[error("registry lookup of {reference} failed: {message}")]
    Registry { reference: String, message: String },
    /// The daemon answered an API call with an error.
    #[error("docker api call {call} failed: {source}")]
    Api {
        call: String,
        source: bollard::errors::Error,
    },
    /// The daemon cannot do what the build asks of it (`what` names it and why).
    #[error("the docker daemon cannot do {what}")]
    Unsupported { what: String },
    /// A local file (context file, certificate) could not be read.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Which builder runs the Dockerfile (`buildkit` or `classic` in reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Builder {
    /// BuildKit through the `/build` session (API ≥ 1.39).
    BuildKit,
    /// The classic (legacy) builder.
    Classic,
}

impl Builder {
    /// The builder's name as reports spell it: `buildkit` or `classic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BuildKit => "buildkit",
            Self::Classic => "classic",
        }
    }
}

/// One file of the build context: where it goes in the tar and where it is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    /// Path inside the context, `/`-separated, no leading `/` (e.g. `src/app.py`).
    pub rel_path: String,
    /// Where to read it; symlinks are sent as symlinks, directories as directory entries.
    pub abs_path: PathBuf,
}

/// Where the daemon finds the Dockerfile (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dockerfile {
    /// A path inside the context tar; the file must be among the context files.
    InContext(String),
    /// The Dockerfile's bytes, added to the tar as [`INLINE_DOCKERFILE_NAME`].
    Contents(Vec<u8>),
}

/// One image build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The exact, already filtered file set to send (parents need not be listed).
    pub context_files: Vec<ContextFile>,
    pub dockerfile: Dockerfile,
    /// The stage to build; `None` builds the last one.
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// Every tag to give the image (`repo:tag`); may be empty.
    pub tags: Vec<String>,
    pub no_cache: bool,
    pub builder: Builder,
    /// Images whose layers may serve as cache (inline cache for BuildKit).
    pub cache_from: Vec<String>,
    /// Each `os/arch[/variant]` to build for; empty is the daemon's platform. Several make one
    /// image index, built through BuildKit's control API (the containerd image store only).
    pub platforms: Vec<String>,
    /// Always try to pull a newer base image.
    pub pull: bool,
}

impl BuildRequest {
    /// A request with no arguments, labels, tags or cache sources, using BuildKit.
    pub fn new(context_files: Vec<ContextFile>, dockerfile: Dockerfile) -> Self {
        Self {
            context_files,
            dockerfile,
            target: None,
            build_args: BTreeMap::new(),
            labels: BTreeMap::new(),
            tags: Vec::new(),
            no_cache: false,
            builder: Builder::BuildKit,
            cache_from: Vec::new(),
            platforms: Vec::new(),
            pull: false,
        }
    }
}

/// Where a step sits in its Dockerfile stage: `[stage 2/4]` is `number` 2 of `total` 4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPosition {
    /// The stage name BuildKit prints (`builder`, `stage-1`); `None` for the classic builder and
    /// for unnamed single-stage files.
    pub stage: Option<String>,
    pub number: usize,
    pub total: usize,
    /// The platform BuildKit built the step for, in a build for several (`linux/arm64`).
    pub platform: Option<String>,
}

/// What happened in one build step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// Identifies the step in [`BuildEvent`]s: the order in which it first appeared in the build
    /// output (0-based). [`BuildOutcome::steps`] is ordered by start time, which may differ.
    pub index: usize,
    /// As the builder names it, e.g. `[2/4] COPY app.sh /app/` or `Step 2/4 : COPY app.sh /app/`.
    pub name: String,
    /// `None` for builder-internal work (loading the context, exporting the image).
    pub position: Option<StepPosition>,
    /// 1-based line of the instruction in the Dockerfile, when it could be located.
    pub dockerfile_line: Option<usize>,
    pub duration: Duration,
    pub cached: bool,
    pub error: Option<String>,
}

/// Progress of a build or push, emitted as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildEvent {
    /// A step began (for BuildKit: its vertex started or was found cached).
    StepStarted {
        index: usize,
        name: String,
        position: Option<StepPosition>,
    },
    /// A step finished, successfully or not.
    StepFinished(StepRecord),
    /// One line of output; `step` is the index of the step that printed it, when known.
    Log { step: Option<usize>, line: String },
}

/// The result of a successful build.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildOutcome {
    /// `sha256:…`
    pub image_id: String,
    pub steps: Vec<StepRecord>,
    /// Wall time measured by the client, upload included.
    pub duration: Duration,
}

/// Where a daemon keeps images, which decides what an image's id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageStore {
    /// The graph driver store (overlay2 and the like): an image's id is its config digest.
    Classic,
    /// The containerd image store (the default of fresh Docker 29 installations): an image's id
    /// is its manifest or index digest.
    Containerd,
}

impl ImageStore {
    /// The store of a daemon from its `/info` `DriverStatus` pairs: containerd's snapshotters
    /// announce themselves as the `driver-type`.
    pub fn from_driver_status(status: &[Vec<String>]) -> Self {
        let containerd = status.iter().any(|pair| {
            matches!(pair.as_slice(), [key, value]
                if key == "driver-type" && value.starts_with("io.containerd.snapshotter"))
        });
        if containerd {
            Self::Containerd
        } else {
            Self::Classic
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Containerd => "containerd",
        }
    }
}

/// What the daemon knows about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// `sha256:…`
    pub id: String,
    /// Bytes, all layers included.
    pub size: u64,
    pub layers: usize,
    pub repo_digests: Vec<String>,
    pub repo_tags: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339, as the daemon reports it.
    pub created: Option<String>,
    /// For an image index (several platforms, the containerd image store): each platform's
    /// image, in the index's order; empty for a single-platform image.
    pub platforms: Vec<PlatformImage>,
}

/// One platform's image in an image index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlatformImage {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// The platform's manifest digest (`sha256:…`) in the index; for an image built per
    /// platform on the classic store, that platform image's id.
    pub manifest: String,
    /// Uncompressed layer bytes, as the daemon sizes a single-platform image.
    pub size: u64,
}

/// Credentials for one registry. `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
    /// The registry host, e.g. `127.0.0.1:5000` or `ghcr.io`.
    pub server: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("server", &self.server)
            .finish()
    }
}

/// The callback that receives [`BuildEvent`]s; `Send` so builds can run on tokio worker threads.
pub type EventSink<'a> = &'a mut (dyn FnMut(BuildEvent) + Send);

/// The operations the scheduler needs from a container engine.
///
/// Every future is `Send`, so callers can spawn them on a multi-threaded runtime.
pub trait Engine: Send + Sync {
    /// Builds one image and gives it every requested tag.
    fn build(
        &self,
        request: &BuildRequest,
        on_event: EventSink<'_>,
    ) -> impl Future<Output = Result<BuildOutcome, EngineError>> + Send;

    /// The image `reference` (name, `name:tag` or id), or `None` when the daemon has no such image.
    fn inspect(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Option<ImageInfo>, EngineError>> + Send;

    /// Every image carrying the label `key=value`.
    fn find_by_label(
        &self,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<Vec<ImageInfo>, EngineError>> + Send;

    /// Gives `image` (a name or id) the name `repo:tag`.
    fn tag(
        &self,
        image: &str,
        repo: &str,
        tag: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Pushes `repo:tag`, reporting progress lines as [`BuildEvent::Log`].
    fn push(
        &self,
        repo: &str,
        tag: &str,
        credentials: Option<&RegistryAuth>,
        on_event: EventSink<'_>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Makes `repo:tag` in its registry a manifest list of the images pushed under the tags of
    /// `platforms` (`(os/arch[/variant], tag)`), for engines that hold one platform per image;
    /// returns the list's digest.
    fn push_manifest_list(
        &self,
        repo: &str,
        tag: &str,
        platforms: &[(String, String)],
        credentials: Option<&RegistryAuth>,
    ) -> impl Future<Output = Result<String, EngineError>> + Send;

    /// The manifest digest the registry holds for `repo:tag`, or `None` when it has no such tag.
    fn registry_digest(
        &self,
        repo: &str,
        tag: &str,
        credentials: Option<&RegistryAuth>,
    ) -> impl Future<Output = Result<Option<String>, EngineError>> + Send;

    /// Pulls `repo:tag` from its registry, reporting progress lines as [`BuildEvent::Log`].
    fn pull(
        &self,
        repo: &str,
        tag: &str,
        credentials: Option<&RegistryAuth>,
        on_event: EventSink<'_>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Removes the name or image `reference`; `Ok(false)` when it did not exist.
    fn remove_image(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<bool, EngineError>> + Send;

    /// Removes untagged images no container uses; returns the bytes freed.
    fn prune_dangling(&self) -> impl Future<Output = Result<u64, EngineError>> + Send;

    /// Removes build cache unused for longer than `older_than`; returns the bytes freed.
    fn prune_build_cache(
        &self,
        older_than: Duration,
    ) -> impl Future<Output = Result<u64, EngineError>> + Send;
}
