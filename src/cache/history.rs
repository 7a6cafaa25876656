//! The build record: which images the builds of a store attempted, how each attempt ended, and
//! which inputs digests built successfully.
//!
//! Owns: the record's data (kept in the index and carried by archives), how a run's report
//! enters it, how two records merge (an import), and reading it from a store folder without
//! creating or locking anything (the planner only reads).
//!
//! The record is kept apart from the image entries and their blobs on purpose: pruning images
//! for size or age forgets the blobs, never that the inputs were built, so it never causes a
//! rebuild. It is bounded per image, not by age.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::CacheError;
use super::store::{Index, open_regular};
use crate::report::model::{ImageReport, ImageResult, RunReport};

/// How many successful inputs digests the record keeps per image (branches alternate between a
/// few; older ones have long been superseded).
pub const SUCCEEDED_KEPT_PER_IMAGE: usize = 32;

/// How one attempt of an image ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Built by the run.
    Built,
    /// An image of the same inputs existed and was used.
    Reused,
    /// The build failed.
    Failed,
    /// Selected, but not run (an image it needs failed, or the run stopped).
    Skipped,
}

impl AttemptOutcome {
    /// Whether an image of the attempt's inputs exists afterwards.
    pub fn succeeded(self) -> bool {
        matches!(self, Self::Built | Self::Reused)
    }
}

/// The last attempt of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attempt {
    pub inputs_digest: String,
    pub outcome: AttemptOutcome,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

/// The record of a store's builds, by image name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildHistory {
    /// The last attempt of each image.
    #[serde(default)]
    pub attempts: BTreeMap<String, Attempt>,
    /// The inputs digests each image built (or reused) successfully, oldest first.
    #[serde(default)]
    pub succeeded: BTreeMap<String, Vec<String>>,
}

impl BuildHistory {
    /// True when no build was ever recorded: selection then follows the diff alone.
    pub fn is_empty(&self) -> bool {
        self.attempts.is_empty() && self.succeeded.is_empty()
    }

    /// Whether `image` built successfully from `inputs_digest`.
    pub fn has_succeeded(&self, image: &str, inputs_digest: &str) -> bool {
        self.succeeded
            .get(image)
            .is_some_and(|digests| digests.iter().any(|d| d == inputs_digest))
    }

    /// Records one attempt of `image`.
    pub fn record(&mut self, image: &str, attempt: Attempt) {
        if attempt.outcome.succeeded() {
            self.add_success(image, &attempt.inputs_digest);
        }
        let newer = self
            .attempts
            .get(image)
            .is_none_or(|last| last.at <= attempt.at);
        if newer {
            self.attempts.insert(image.to_owned(), attempt);
        }
    }

    /// Records every image the run attempted (what it built, reused, failed, or selected and
    /// skipped); images the run did not select are left as they were.
    pub fn record_run(&mut self, report: &RunReport, at: u64) {
        for image in &report.images {
            if let Some(outcome) = attempt_outcome(image) {
                let attempt = Attempt {
                    inputs_digest: image.inputs_digest.clone(),
                    outcome,
                    at,
                };
                self.record(&image.name, attempt);
            }
        }
    }

    /// Adds `other` (an imported record): the later attempt of each image, every success.
    pub fn merge(&mut self, other: &BuildHistory) {
        for (image, digests) in &other.succeeded {
            for digest in digests {
                self.add_success(image, digest);
            }
        }
        for (image, attempt) in &other.attempts {
            let newer = self
                .attempts
                .get(image)
                .is_none_or(|last| last.at < attempt.at);
            if newer {
                self.attempts.insert(image.clone(), attempt.clone());
            }
        }
    }

    /// Moves `inputs_digest` to the newest end of the image's successes, dropping the oldest
    /// beyond [`SUCCEEDED_KEPT_PER_IMAGE`].
    fn add_success(&mut self, image: &str, inputs_digest: &str) {
        let digests = self.succeeded.entry(image.to_owned()).or_default();
        digests.retain(|d| d != inputs_digest);
        digests.push(inputs_digest.to_owned());
        let excess = digests.len().saturating_sub(SUCCEEDED_KEPT_PER_IMAGE);
        digests.drain(..excess);
    }
}

/// How a run's image ended as an attempt; `None` when the run did not select it.
fn attempt_outcome(image: &ImageReport) -> Option<AttemptOutcome> {
    match image.result {
        ImageResult::Built => Some(AttemptOutcome::Built),
        ImageResult::Reused => Some(AttemptOutcome::Reused),
        ImageResult::Failed => Some(AttemptOutcome::Failed),
        // A selected image carries the reasons it was selected for.
        ImageResult::Skipped => (!image.reasons.is_empty()).then_some(AttemptOutcome::Skipped),
    }
}

/// The record of the store at `root`, read without creating, locking or changing anything;
/// `None` when there is no store or it recorded no build. An index of a format this version
/// does not read is an error (the caller warns and goes on with the diff alone).
pub fn read_history(root: &Path) -> Result<Option<BuildHistory>, CacheError> {
    let path = root.join("index.json");
    let mut bytes = Vec::new();
    match open_regular(&path).and_then(|mut file| file.read_to_end(&mut bytes)) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CacheError::io(&path, e)),
    }
    let index = Index::parse(&bytes, &path)?;
    Ok(Some(index.history).filter(|history| !history.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    fn attempt(digest: &str, outcome: AttemptOutcome, at: u64) -> Attempt {
        Attempt {
            inputs_digest: digest.into(),
            outcome,
            at,
        }
    }

    #[test]
    fn a_failed_attempt_is_kept_without_a_success() {
        let mut history = BuildHistory::default();
        history.record("base", attempt("d1", AttemptOutcome::Failed, 1));
        assert!(!history.has_succeeded("base", "d1"));
        assert_eq!(history.attempts["base"].outcome, AttemptOutcome::Failed);
        history.record("base", attempt("d2", AttemptOutcome::Built, 2));
        assert!(history.has_succeeded("base", "d2"));
        assert!(!history.has_succeeded("base", "d1"));
        assert!(!history.has_succeeded("api", "d2"));
    }

    #[test]
    fn successes_are_bounded_per_image_and_the_latest_is_kept() {
        let mut history = BuildHistory::default();
        for n in 0..(SUCCEEDED_KEPT_PER_IMAGE + 3) {
            history.record(
                "api",
                attempt(&format!("d{n}"), AttemptOutcome::Built, n as u64),
            );
        }
        // Built again: moves to the newest end instead of being dropped as old.
        history.record("api", attempt("d3", AttemptOutcome::Reused, 99));
        history.record("api", attempt("new", AttemptOutcome::Built, 100));
        let kept = &history.succeeded["api"];
        assert_eq!(kept.len(), SUCCEEDED_KEPT_PER_IMAGE);
        assert!(history.has_succeeded("api", "d3"));
        assert!(!history.has_succeeded("api", "d4"), "the oldest goes");
        assert_eq!(kept.last().map(String::as_str), Some("new"));
    }

    #[test]
    fn a_run_records_what_it_selected_only() {
        let mut report = fixtures::report();
        report.images.truncate(3);
        report.images[0].result = ImageResult::Failed;
        report.images[1].result = ImageResult::Built;
        report.images[2].result = ImageResult::Skipped;
        report.images[2].reasons.clear();
        let mut history = BuildHistory::default();
        history.record_run(&report, 5);
        let (failed, built, unselected) = (&report.images[0], &report.images[1], &report.images[2]);
        assert_eq!(
            history.attempts[&failed.name].outcome,
            AttemptOutcome::Failed
        );
        assert!(!history.has_succeeded(&failed.name, &failed.inputs_digest));
        assert!(history.has_succeeded(&built.name, &built.inputs_digest));
        assert!(!history.attempts.contains_key(&unselected.name));
    }

    #[test]
    fn a_merge_keeps_every_success_and_the_later_attempt() {
        let mut local = BuildHistory::default();
        local.record("base", attempt("d1", AttemptOutcome::Built, 10));
        let mut imported = BuildHistory::default();
        imported.record("base", attempt("d2", AttemptOutcome::Failed, 5));
        imported.record("api", attempt("a1", AttemptOutcome::Built, 5));
        local.merge(&imported);
        assert!(local.has_succeeded("base", "d1") && local.has_succeeded("api", "a1"));
        assert_eq!(
            local.attempts["base"].inputs_digest, "d1",
            "the later attempt"
        );
        assert_eq!(local.attempts.len(), 2);
    }

    #[test]
    fn reading_a_missing_or_empty_record_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            read_history(&dir.path().join("absent")).expect("read"),
            None
        );
        assert!(!dir.path().join("absent").exists(), "nothing is created");
        std::fs::write(
            dir.path().join("index.json"),
            br#"{"version":2,"images":[]}"#,
        )
        .expect("write");
        assert_eq!(read_history(dir.path()).expect("read"), None);
        let mut index = Index::default();
        index
            .history
            .record("base", attempt("d1", AttemptOutcome::Failed, 1));
        std::fs::write(
            dir.path().join("index.json"),
            serde_json::to_vec(&index).expect("json"),
        )
        .expect("write");
        let history = read_history(dir.path()).expect("read").expect("a record");
        assert_eq!(history.attempts["base"].outcome, AttemptOutcome::Failed);
    }
}
