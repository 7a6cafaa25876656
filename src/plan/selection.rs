//! Which source selected each image, and selection against the build record.
//!
//! Owns: the [`SelectedBy`] verdict derived from an image's reasons, the record reason, and
//! which images the diff leaves out although the build record has no successful build of their
//! current inputs ([`unrecorded`]). Pure: whether an image of those inputs exists in the daemon
//! or a registry is the caller's question (`build::record`); the answer comes back as a
//! [`RecordSelection`] that [`super::affected::plan_with_record`] plans with.

use std::collections::BTreeSet;

use super::model::{Plan, PlannedImage, Reason, ReasonKind};
use crate::cache::history::BuildHistory;

/// The detail of a [`ReasonKind::Record`] reason.
pub const RECORD_REASON: &str =
    "no build of these inputs exists (the last build failed or was not saved)";

/// The source that selected an image, the first of these that applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectedBy {
    /// `--force` or `FORCE_REBUILD`.
    Force,
    /// No usable base commit (a first build): every image.
    FirstBuild,
    /// Selective builds are off: every image.
    AllImages,
    /// A change between base and head.
    Diff,
    /// The build record: no image of its inputs exists.
    Record,
    /// An image it builds from is rebuilt.
    Dependency,
}

impl SelectedBy {
    /// The source behind `reasons`; `None` when there are none (the image does not build).
    pub fn of(reasons: &[Reason]) -> Option<Self> {
        reasons.iter().map(|r| Self::of_kind(r.kind)).min()
    }

    fn of_kind(kind: ReasonKind) -> Self {
        match kind {
            ReasonKind::Forced => Self::Force,
            ReasonKind::NoBase => Self::FirstBuild,
            ReasonKind::NotSelective => Self::AllImages,
            ReasonKind::Record => Self::Record,
            ReasonKind::Parent => Self::Dependency,
            ReasonKind::NewImage
            | ReasonKind::Definition
            | ReasonKind::Dockerfile
            | ReasonKind::IgnoreFile
            | ReasonKind::Context
            | ReasonKind::NamedContext
            | ReasonKind::Input
            | ReasonKind::GlobalInput => Self::Diff,
        }
    }

    /// The word tables print.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Force => "force",
            Self::FirstBuild => "first build",
            Self::AllImages => "all images",
            Self::Diff => "diff",
            Self::Record => "record",
            Self::Dependency => "dependency",
        }
    }
}

/// What the record check decided: the images to build because no build of their inputs exists,
/// and notes on checks it could not make.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSelection {
    /// Image names.
    pub unbuilt: BTreeSet<String>,
    /// Sentences for the plan's notes (a check skipped, and why).
    pub notes: Vec<String>,
}

/// The images the diff plan leaves out whose current inputs digest the record has no
/// successful build of: each is built unless an image of those inputs exists elsewhere.
pub fn unrecorded<'a>(diff: &'a Plan, history: &BuildHistory) -> Vec<&'a PlannedImage> {
    diff.images
        .iter()
        .filter(|image| !image.affected)
        .filter(|image| !history.has_succeeded(&image.name, &image.inputs_digest))
        .collect()
}

/// The reason of an image selected by the record.
pub fn record_reason() -> Reason {
    Reason {
        kind: ReasonKind::Record,
        detail: RECORD_REASON.to_owned(),
        files: Vec::new(),
        file_count: 0,
    }
}
