//! Building the planned images on an [`Engine`]: the scheduler and what it needs.
//!
//! Owns: running [`Job`]s in dependency order, up to N at once, each starting as soon as its
//! internal parents are ready; pointing the exact reference a child uses for a parent at the image
//! just built (so a child never builds FROM a stale or pulled image); reusing an image whose
//! inputs digest already exists; failure, `--keep-going` and cancellation semantics; when the
//! pre- and post-build hooks run and what their failure means. Tag templates live in `tags.rs`,
//! finding and running hooks in `hooks.rs`, registry credentials in `credentials.rs`, and the
//! registry side of a job (reuse from the registry, pushing) in `remote.rs`, the scheduling in
//! `schedule.rs`, and whether images of the inputs the build record has no build of exist
//! (planning against the record) in `record.rs`. A job for several platforms on an engine
//! that holds one platform per image is built per platform (`schedule.rs`) and published as
//! manifest lists (`remote.rs`). Turning a plan into jobs and outcomes into a RunReport is
//! `run`'s job.

pub mod credentials;
pub mod hooks;
pub mod record;
pub mod remote;
mod schedule;
pub mod tags;

use std::time::Duration;

pub use schedule::run;

use crate::engine::{BuildRequest, EngineError, ImageInfo, StepRecord};
use crate::report::model::{Failure, ImageResult, Warning};

pub use hooks::Hooks;

use crate::notify::secret::Redactor;
pub use remote::{Publish, RemoteRef};

/// The label holding an image's inputs digest; reuse looks images up by it.
pub const DIGEST_LABEL: &str = "buildopt.inputs-digest";

/// One image to make available: built, or reused when allowed and its digest exists.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    /// The build, with every tag and label it should get.
    pub request: BuildRequest,
    /// The internal images this one builds from, with the references it uses for them.
    pub parents: Vec<ParentRef>,
    pub inputs_digest: String,
    /// The local reference that records the inputs digest (`<repository>:inputs-<hex>`): reuse
    /// looks it up with one inspect instead of listing every image by label.
    pub digest_ref: String,
    /// Whether an existing image with the same inputs digest may stand in for a build.
    pub reuse: bool,
    /// With `--push`: where to look for an existing image, and which tags to push.
    pub publish: Option<Publish>,
    /// Intermediate stages to build on their own, in order, before the image (when it is built,
    /// not reused), so their layers can be cached (level maximum).
    pub stages: Vec<StageBuild>,
    /// Build each of the request's platforms as an image of its own, tagged with
    /// [`remote::platform_tag`]s, and publish a manifest list of them under each pushed tag: for
    /// engines whose image store holds one platform per image.
    pub per_platform: bool,
}

/// One intermediate stage built as its own image.
#[derive(Debug, Clone)]
pub struct StageBuild {
    /// The stage name.
    pub stage: String,
    /// The build of that stage (`target` set) with the tags and labels its image gets.
    pub request: BuildRequest,
}

/// What building one intermediate stage did.
#[derive(Debug, Clone, PartialEq)]
pub struct StageOutcome {
    pub stage: String,
    pub duration: Duration,
    pub steps: Vec<StepRecord>,
}

/// How a job refers to one of its parents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentRef {
    /// Index of the parent in the job list.
    pub job: usize,
    /// The references the child's Dockerfile uses for it after ARG expansion (`core`, `core:1.0`).
    pub references: Vec<String>,
}

/// How the scheduler runs.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// How many jobs run at once (at least 1).
    pub jobs: usize,
    /// Let jobs that do not depend on a failed one start after a failure.
    pub keep_going: bool,
    /// Run around each job: a failing pre-build hook fails the job, a failing post-build hook
    /// adds a warning. Jobs skipped without starting get only the post-build hook.
    pub hooks: &'a Hooks,
    /// Every secret value of the run: applied to what hooks and builds print (failures,
    /// warnings, step names) before it leaves the scheduler, in progress events and outcomes.
    pub redactor: &'a Redactor,
    /// How long one job's image may take (its stages, the image, the push); past it the job
    /// fails, its build is dropped (which ends it on the daemon) and its dependents are skipped.
    /// `None`: no deadline.
    pub build_timeout: Option<Duration>,
}

/// What the scheduler tells its observer while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// A job began.
    Started { image: String },
    /// A build step began; `number`/`total` are the builder's stage position when it gave one.
    Step {
        image: String,
        name: String,
        position: Option<(usize, usize)>,
    },
    /// A job ended.
    Finished {
        image: String,
        result: ImageResult,
        duration: Duration,
    },
}

/// What happened to one job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutcome {
    pub result: ImageResult,
    pub skip_reason: Option<String>,
    pub duration: Duration,
    pub steps: Vec<StepRecord>,
    /// The image that now carries the job's tags (built or reused).
    pub image: Option<ImageInfo>,
    pub failure: Option<Failure>,
    /// Problems that did not fail the job (a failing post-build hook).
    pub warnings: Vec<Warning>,
    /// The intermediate stages built before the image (up to a failing one).
    pub stages: Vec<StageOutcome>,
}

impl JobOutcome {
    fn skipped(reason: impl Into<String>) -> Self {
        Self {
            result: ImageResult::Skipped,
            skip_reason: Some(reason.into()),
            duration: Duration::ZERO,
            steps: Vec::new(),
            image: None,
            failure: None,
            warnings: Vec::new(),
            stages: Vec::new(),
        }
    }
}

/// The result of a run that was not cut short by the daemon.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// One outcome per job, in job order.
    pub jobs: Vec<JobOutcome>,
    /// The run was cancelled before every job ended.
    pub interrupted: bool,
}

/// Why a whole run ended early.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The daemon could not be reached, or went away mid-run.
    #[error(transparent)]
    Daemon(EngineError),
}

/// True for engine errors that end the whole run rather than one image.
fn is_fatal(error: &EngineError) -> bool {
    matches!(
        error,
        EngineError::NoDaemon { .. } | EngineError::DaemonGone { .. }
    )
}

#[cfg(test)]
mod tests;
