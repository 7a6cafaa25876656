//! The plan as data: what builds, in which order, and why (or why not). Renderers read only this.

use std::collections::BTreeMap;

pub use super::selection::SelectedBy;

/// The version of the JSON form of a plan; bumped on incompatible changes.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// Why an image is in the plan.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ReasonKind {
    /// `--force` or `FORCE_REBUILD`.
    Forced,
    /// No usable base commit; everything builds.
    NoBase,
    /// Selective builds are off (level minimal or `SELECTIVE_BUILD=false`).
    NotSelective,
    /// The image did not exist at the base.
    NewImage,
    /// Its definition (args, target, context, ...) changed.
    Definition,
    /// Its Dockerfile changed.
    Dockerfile,
    /// The ignore file that filters its context changed.
    IgnoreFile,
    /// A file of its filtered context changed.
    Context,
    /// A file of one of its named contexts changed.
    NamedContext,
    /// A file matching its extra `inputs` changed.
    Input,
    /// A file matching the global `inputs` changed.
    GlobalInput,
    /// An image it builds from is rebuilt.
    Parent,
    /// The build record has no successful build of its inputs digest and no image of them
    /// exists (see `selection.rs`).
    Record,
}

/// One reason, with the files behind it (the first few, and how many there are).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reason {
    pub kind: ReasonKind,
    /// A sentence for people, e.g. `services/api/app.py changed`.
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub file_count: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One image of the repository and the planner's verdict on it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlannedImage {
    pub name: String,
    pub context: String,
    pub dockerfile: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub affected: bool,
    /// Every reason it builds (empty when it does not).
    pub reasons: Vec<Reason>,
    /// Which source selected it (absent when it does not build).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected_by: Option<SelectedBy>,
    /// Why it does not build (absent when it does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unaffected_because: Option<String>,
    /// Its level among the images that build (absent when it does not build).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<usize>,
    /// The internal images it builds from.
    pub depends_on: Vec<String>,
    /// `blake3:` hash of its filtered context, Dockerfile, ignore rules, args and parents' digests.
    pub inputs_digest: String,
    pub build_args: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
}

/// The commit range the plan was made for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlanRange {
    /// The base commit, absent when everything builds for lack of one.
    pub base: Option<String>,
    pub head: String,
    /// How the base was chosen, or why there is none.
    pub reason: String,
}

/// An image that existed at the base and no longer does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RemovedImage {
    pub name: String,
    pub detail: String,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    pub version: u32,
    pub range: PlanRange,
    /// How many paths changed between base and head.
    pub changed_files: usize,
    /// Every image, in build order (level, then name); unaffected images last.
    pub images: Vec<PlannedImage>,
    /// The names of the images that build, level by level.
    pub levels: Vec<Vec<String>>,
    pub removed: Vec<RemovedImage>,
    pub notes: Vec<String>,
}

impl Plan {
    /// The images that build, in build order.
    pub fn affected(&self) -> impl Iterator<Item = &PlannedImage> {
        self.images.iter().filter(|i| i.affected)
    }

    /// True when nothing builds.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }
}
