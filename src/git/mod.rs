//! Runs the git binary (STUB: the git/CI helper replaces this module).
//!
//! Owns: every git invocation (diff, merge-base, deepen, rev-parse, ls-tree, show), always with
//! hooks and fsmonitor off, `-z`, `--no-renames`, and `GIT_NO_LAZY_FETCH=1` on existence checks.

mod blobs;

use std::path::{Path, PathBuf};

/// The empty tree, the base of a diff for a repository's initial commit.
pub const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// Errors from running git.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The git binary could not be started.
    #[error("could not run git: {0}")]
    NotFound(#[source] std::io::Error),
    /// The directory is not inside a git work tree.
    #[error("{path} is not inside a git repository")]
    NotARepository { path: PathBuf },
    /// A git command failed.
    #[error("`git {args}` failed: {stderr}")]
    Command { args: String, stderr: String },
}

/// How a path changed between two commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    Added,
    Deleted,
    Modified,
    TypeChanged,
    Unmerged,
    Unknown,
}

/// One changed path, relative to the repository root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub status: ChangeStatus,
    pub path: String,
}

/// One blob (or gitlink) of a tree listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// Octal mode as git prints it (`100644`, `100755`, `120000`, `160000`).
    pub mode: String,
    pub oid: String,
    /// Repository-relative path.
    pub path: String,
}

/// A git repository, reached through the git binary.
#[derive(Debug, Clone)]
pub struct Git {
    root: PathBuf,
}

impl Git {
    /// Opens the repository that contains `dir`.
    pub fn open(_dir: &Path) -> Result<Self, GitError> {
        unimplemented!("git helper")
    }
    /// The top of the work tree.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The full SHA of `rev` as a commit, or None when it does not exist locally.
    pub fn resolve_commit(&self, _rev: &str) -> Result<Option<String>, GitError> {
        unimplemented!("git helper")
    }
    /// Changed paths from `base` to `head` (base may be [`EMPTY_TREE`]).
    pub fn diff(&self, _base: &str, _head: &str) -> Result<Vec<Change>, GitError> {
        unimplemented!("git helper")
    }
    /// Every blob of `rev`'s tree, recursively.
    pub fn tree_entries(&self, _rev: &str) -> Result<Vec<TreeEntry>, GitError> {
        unimplemented!("git helper")
    }
    /// A file's content at `rev`, or None when it does not exist there.
    pub fn show(&self, _rev: &str, _path: &str) -> Result<Option<Vec<u8>>, GitError> {
        unimplemented!("git helper")
    }
}
