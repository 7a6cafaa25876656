//! CI provider detection and base-commit resolution (STUB: the git/CI helper replaces this module).
//!
//! Owns: reading the facts each CI system provides (GitHub's event payload, GitLab's and Jenkins'
//! variables) into a [`CiContext`], and choosing the commit range to diff per event.

use crate::env::Env;
use crate::git::{Git, GitError};

/// Which CI system runs buildopt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    GitHub,
    GitLab,
    Jenkins,
    Local,
}

/// Errors reading CI facts.
#[derive(Debug, thiserror::Error)]
pub enum CiError {
    /// The event payload could not be read or parsed.
    #[error("could not read the event payload {path}: {message}")]
    EventPayload { path: String, message: String },
    /// A git operation failed while resolving the base.
    #[error(transparent)]
    Git(#[from] GitError),
}

/// What the CI system tells us about this run.
#[derive(Debug, Clone)]
pub struct CiContext {
    pub provider: Provider,
}

/// Reads the CI facts from the environment.
pub fn detect(_env: &Env) -> Result<CiContext, CiError> {
    unimplemented!("ci helper")
}

/// User overrides of the range.
#[derive(Debug, Clone, Default)]
pub struct RangeRequest {
    pub base: Option<String>,
    pub head: Option<String>,
}

/// The chosen base: a commit to diff against, or "build everything" with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Commit { sha: String, reason: String },
    BuildAll { reason: String },
}

/// The commit range to plan for.
#[derive(Debug, Clone)]
pub struct Range {
    pub head: String,
    pub base: Base,
}

/// Chooses base and head for this run per the event rules.
pub fn resolve_range(_git: &Git, _ci: &CiContext, _req: &RangeRequest) -> Result<Range, CiError> {
    unimplemented!("ci helper")
}
