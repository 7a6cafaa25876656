//! The RunReport: everything one `buildopt build` did, as data. Every renderer and publisher of a
//! run (final table, JSON, job summary, JUnit, Slack) reads only this.

use serde::{Deserialize, Serialize};

use crate::ci::Provider;
use crate::engine::{Builder, ImageStore};
use crate::plan::Reason;
use crate::settings::Level;

/// The version of the JSON form of a RunReport; bumped on incompatible changes.
pub const RUN_REPORT_VERSION: u32 = 1;

/// One run of `buildopt build`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub version: u32,
    pub run: RunInfo,
    /// Every image of the repository, in build order; images that did not build say why.
    pub images: Vec<ImageReport>,
    /// What the cleanup after the build freed, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<CleanupReport>,
    /// What the build cache restored before and saved after the build, when caching was on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheReport>,
    /// What is inside the images the run built or reused, when the run scanned them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<RunScan>,
}

/// The inventories of a run's images (`buildopt scan`'s model), their vulnerability findings
/// when the run matched them, and what reading and matching took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunScan {
    /// The built and reused images, each with its findings after the ignore files and the
    /// level (`vulnerabilities` says whether and against which database it was matched).
    pub images: Vec<crate::scan::model::ImageInventory>,
    /// Layers read from the daemon or the store, and layers whose inventory was cached.
    pub layers_read: usize,
    pub layers_cached: usize,
    /// Images read from the layer store's blobs (reused or restored ones) instead of through
    /// `docker save`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub images_from_store: usize,
    /// Images matched against the database in this run, and images whose findings for the
    /// same image id and database version came from the store instead (read and matched by
    /// an earlier run).
    #[serde(default)]
    pub images_matched: usize,
    #[serde(default)]
    pub findings_reused: usize,
    /// The policy the findings were judged by; `None` when the run only listed packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::scan::policy::Policy>,
    /// The base commit whose build the findings were compared with ("new since the base").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Images whose base build's inventory is unknown (no base, or not in the store): their
    /// findings have `new: null` and are all listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub base_unknown: Vec<String>,
    /// Workspace images this run did not build or reuse, with the findings the store kept for
    /// their last build and this database (so every configured image is reported).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchanged: Vec<crate::scan::model::ImageInventory>,
    /// Images that could not be scanned, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Things people should know: an old database, an expired ignore entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Reported findings by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityCounts {
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub unknown: usize,
}

impl SeverityCounts {
    /// The counts of `findings`.
    pub fn of<'a>(findings: impl IntoIterator<Item = &'a crate::scan::model::Finding>) -> Self {
        use crate::scan::model::Severity;
        let mut counts = Self::default();
        for finding in findings {
            *match finding.severity {
                Severity::Critical => &mut counts.critical,
                Severity::High => &mut counts.high,
                Severity::Medium => &mut counts.medium,
                Severity::Low => &mut counts.low,
                Severity::Unknown => &mut counts.unknown,
            } += 1;
        }
        counts
    }

    pub fn total(&self) -> usize {
        self.critical + self.high + self.medium + self.low + self.unknown
    }

    /// Each severity with its count, most severe first.
    pub fn by_severity(&self) -> [(crate::scan::model::Severity, usize); 5] {
        use crate::scan::model::Severity;
        [
            (Severity::Critical, self.critical),
            (Severity::High, self.high),
            (Severity::Medium, self.medium),
            (Severity::Low, self.low),
            (Severity::Unknown, self.unknown),
        ]
    }
}

impl RunScan {
    /// Whether any image was matched against vulnerability data (else the run only listed
    /// packages, or had no database).
    pub fn matched(&self) -> bool {
        self.images
            .iter()
            .any(|image| image.vulnerabilities.as_ref().is_some_and(|s| s.scanned))
    }

    /// Whether the run tried to match and some image was not scanned (no database).
    pub fn unscanned(&self) -> Vec<&crate::scan::model::ImageInventory> {
        self.images
            .iter()
            .filter(|image| image.vulnerabilities.as_ref().is_some_and(|s| !s.scanned))
            .collect()
    }

    /// Whether any image (built, reused or unchanged) was matched against a database: the
    /// run then has findings to upload, even none.
    pub fn matched_against_database(&self) -> bool {
        self.policy.is_some()
            && self.images.iter().chain(&self.unchanged).any(|image| {
                image
                    .vulnerabilities
                    .as_ref()
                    .is_some_and(|s| s.database.is_some())
            })
    }

    /// The findings report of the run: its built and reused images, then the unchanged ones
    /// with their stored findings.
    pub fn findings_report(&self) -> crate::scan::model::ScanReport {
        crate::scan::model::ScanReport {
            version: crate::scan::model::SCAN_FORMAT_VERSION,
            images: self.images.iter().chain(&self.unchanged).cloned().collect(),
            unreadable: Vec::new(),
        }
    }

    /// Every reported finding of the images this run built or reused.
    pub fn findings(&self) -> impl Iterator<Item = &crate::scan::model::Finding> {
        self.images.iter().flat_map(|image| &image.findings)
    }

    /// The reported findings by severity.
    pub fn counts(&self) -> SeverityCounts {
        SeverityCounts::of(self.findings())
    }

    /// Findings over the gate.
    pub fn failing(&self) -> usize {
        self.findings().filter(|f| f.fails_gate).count()
    }

    /// Findings known to be new since the base build.
    pub fn new_findings(&self) -> usize {
        self.findings().filter(|f| f.new == Some(true)).count()
    }
}

/// Facts about the run as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The base commit, absent when everything was planned for lack of one.
    pub base: Option<String>,
    pub head: String,
    /// How the base was chosen, or why there is none.
    pub range_reason: String,
    /// The optimization level (`minimal`, `medium`, `maximum`, `ci`).
    pub level: Level,
    /// `buildkit` or `classic`.
    pub builder: Builder,
    /// How many images could build at once.
    pub jobs: usize,
    /// RFC 3339 start time.
    pub started: String,
    pub duration_ms: u64,
    /// The run was cancelled (Ctrl-C) before it finished.
    pub interrupted: bool,
    /// The CI run this was, when buildopt ran in CI: what publishers and links need later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<CiRun>,
    /// The Docker engine the run built on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineReport>,
}

/// Which engine a run used: what decides how images are built, saved and identified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineReport {
    /// The engine's version, e.g. `28.5.2`.
    pub version: String,
    /// The API version both sides spoke, e.g. `1.51`.
    pub api_version: String,
    /// Where the engine keeps images.
    pub image_store: ImageStore,
    /// The storage driver (`overlay2`; the snapshotter on the containerd store).
    pub storage_driver: String,
    /// What the engine could not do of what the run asked, one line each (a fallback taken, a
    /// cache limit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl EngineReport {
    /// One line for people: `Docker 28.5.2 (API 1.51, containerd image store)`.
    pub fn describe(&self) -> String {
        format!(
            "Docker {} (API {}, {} image store)",
            self.version,
            self.api_version,
            self.image_store.as_str()
        )
    }
}

/// The identity of the CI run a report belongs to, copied from the CI's facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CiRun {
    /// `github`, `gitlab` or `jenkins`.
    pub provider: Provider,
    /// The provider's name of the trigger (`pull_request`, `merge_request_event`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// `owner/name` or the GitLab project path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// The pull or merge request number, when the run is for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr_number: Option<u64>,
    /// The commit the CI checked out (for a GitHub pull request, its merge commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    /// The full ref of the run (`refs/heads/main`, `refs/pull/7/merge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// The web page of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_url: Option<String>,
}

/// What happened to one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageResult {
    /// Built by this run.
    Built,
    /// An image with the same inputs digest existed; it was re-tagged instead of rebuilt.
    Reused,
    /// The build failed.
    Failed,
    /// Not built; `skip_reason` says why.
    Skipped,
}

impl ImageResult {
    /// The word used in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Built => "built",
            Self::Reused => "reused",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// One image of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageReport {
    pub name: String,
    pub repository: String,
    /// The Dockerfile, relative to the repository's root (absent in reports of older versions).
    #[serde(default)]
    pub dockerfile: String,
    pub result: ImageResult,
    /// Why it was skipped: `parent failed`, `not affected: …`, `stopped after a failure`, ….
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// Why the plan built it.
    pub reasons: Vec<Reason>,
    pub inputs_digest: String,
    pub duration_ms: u64,
    /// Build steps in start order (empty unless built).
    pub steps: Vec<StepReport>,
    /// The filtered context that was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<ContextSize>,
    /// Bytes, all layers included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Bytes of the image that held `<repository>:latest` before this run, when there was one:
    /// with `size`, the image's size change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<usize>,
    /// `sha256:…` image id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// The registry digest (`repo@sha256:…`), once pushed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Every `repo:tag` the image got.
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Problems that did not fail the image, such as a failing post-build hook.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// Intermediate stages built on their own before the image (level maximum), in build order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageReport>,
    /// For an image for several platforms: each platform's image, in the index's (or build's)
    /// order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformReport>,
}

/// One platform's image in an image index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformReport {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// The platform's manifest digest (`sha256:…`) in the index; for an image built per
    /// platform on the classic store, that platform image's id.
    pub manifest: String,
    /// Uncompressed layer bytes, as [`ImageReport::size`] of a single-platform image.
    pub size: u64,
}

impl ImageReport {
    /// An image that has not run: no steps, sizes, tags, failure or warnings yet.
    pub fn new(
        name: String,
        repository: String,
        result: ImageResult,
        inputs_digest: String,
    ) -> Self {
        Self {
            name,
            repository,
            dockerfile: String::new(),
            result,
            skip_reason: None,
            reasons: Vec::new(),
            inputs_digest,
            duration_ms: 0,
            steps: Vec::new(),
            context: None,
            size: None,
            layers: None,
            image_id: None,
            digest: None,
            tags: Vec::new(),
            failure: None,
            warnings: Vec::new(),
            previous_size: None,
            stages: Vec::new(),
            platforms: Vec::new(),
        }
    }

    /// The steps BuildKit ran for `platform` (steps it shared between platforms name one).
    pub fn steps_of<'a>(&'a self, platform: &'a str) -> impl Iterator<Item = &'a StepReport> {
        self.steps
            .iter()
            .filter(move |s| s.platform.as_deref() == Some(platform))
    }

    /// Steps that were served from the build cache.
    pub fn cached_steps(&self) -> usize {
        self.steps.iter().filter(|s| s.cached).count()
    }

    /// Cached steps over all steps; `None` without steps.
    pub fn cached_ratio(&self) -> Option<f64> {
        (!self.steps.is_empty()).then(|| self.cached_steps() as f64 / self.steps.len() as f64)
    }
}

/// An intermediate stage built as its own image (`--target <stage>`), so the cache keeps its
/// layers: the final build alone keeps only the final stage's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// The stage name (`FROM … AS name`).
    pub name: String,
    /// The reference it was tagged with, `<repository>:stage-<name>`.
    pub reference: String,
    pub duration_ms: u64,
    /// Its build steps in start order.
    pub steps: Vec<StepReport>,
}

impl StageReport {
    /// Steps that were served from the build cache.
    pub fn cached_steps(&self) -> usize {
        self.steps.iter().filter(|s| s.cached).count()
    }
}

/// One build step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// As the builder names it, e.g. `[2/4] COPY app.sh /app/`.
    pub name: String,
    /// 1-based Dockerfile line, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub duration_ms: u64,
    pub cached: bool,
    /// The platform the step built for, in a build for several (`linux/arm64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// The size of a context as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextSize {
    pub bytes: u64,
    pub files: usize,
}

/// Why an image failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The failing step, when the builder said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
    /// The last lines the failing step printed.
    pub log_tail: Vec<String>,
}

/// A problem that did not fail its image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub message: String,
    /// The last output lines of what went wrong, when it printed any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}

/// What the cleanup freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupReport {
    pub dangling_images_bytes: u64,
    pub build_cache_bytes: u64,
    pub retention_days: u64,
}

/// The build cache around one run. Hits and misses per image show as reused images and cached
/// steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheReport {
    /// The store folder.
    pub store: String,
    pub restore: CacheRestore,
    /// Absent when the run was interrupted (nothing is saved from a cut-short run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<CacheExport>,
}

/// Images loaded from the store into the daemon before the build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRestore {
    /// Repositories loaded into the daemon.
    pub loaded: Vec<String>,
    /// Repositories the daemon already had (only re-tagged).
    pub already_in_daemon: Vec<String>,
    /// Bytes of the loaded images (config and layers).
    pub bytes: u64,
    pub duration_ms: u64,
    /// Why nothing was restored (a missing daemon, an unreadable store): a cache miss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// What the restore did differently from what was saved, one line each (an image index
    /// loaded into the classic image store as one of its platforms).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Images saved from the daemon into the store after the build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheExport {
    /// Repositories saved (built or reused images the store did not hold yet).
    pub saved: Vec<String>,
    /// Blobs (configs and layers) the store did not have before.
    pub new_blobs: usize,
    pub new_bytes: u64,
    /// Entries dropped by retention or the size limit.
    pub pruned: Vec<String>,
    pub duration_ms: u64,
    /// Why saving failed; the build's result does not change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl RunReport {
    /// True when an image failed.
    pub fn has_failures(&self) -> bool {
        self.images.iter().any(|i| i.result == ImageResult::Failed)
    }

    /// How many images ended with `result`.
    pub fn count(&self, result: ImageResult) -> usize {
        self.images.iter().filter(|i| i.result == result).count()
    }
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(cached: bool) -> StepReport {
        StepReport {
            name: "RUN x".into(),
            line: Some(2),
            duration_ms: 5,
            cached,
            platform: None,
        }
    }

    #[test]
    fn cached_ratio_counts_cached_steps_and_is_none_without_steps() {
        let mut image = ImageReport::new(
            "api".into(),
            "api".into(),
            ImageResult::Built,
            "blake3:x".into(),
        );
        assert_eq!(image.cached_ratio(), None);
        image.steps = vec![step(true), step(false), step(true), step(true)];
        assert_eq!(image.cached_steps(), 3);
        assert_eq!(image.cached_ratio(), Some(0.75));
    }

    #[test]
    fn a_report_reads_back_as_written() {
        for report in [
            crate::report::fixtures::report(),
            crate::report::fixtures::hostile_report(),
        ] {
            let json = serde_json::to_string_pretty(&report).expect("json");
            let back: RunReport = serde_json::from_str(&json).expect("read back");
            assert_eq!(back, report);
        }
    }

    #[test]
    fn results_serialize_in_snake_case() {
        let json = serde_json::to_string(&ImageResult::Reused).expect("json");
        assert_eq!(json, "\"reused\"");
    }
}
