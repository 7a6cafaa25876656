//! CI provider detection and base-commit resolution.
//!
//! Owns: reading the facts each CI system provides (GitHub's event payload, GitLab's and Jenkins'
//! variables) into a [`CiContext`] (`github.rs`, `gitlab.rs`, `jenkins.rs`), and choosing the
//! commit range to diff per event (`base.rs`, the table of reference §1.5). Detection is pure:
//! it reads only the [`Env`] and the payload file; resolution talks to git.

mod base;
mod github;
mod gitlab;
mod jenkins;

use std::path::PathBuf;

use crate::env::Env;
use crate::git::GitError;

pub use base::resolve_range;

/// The SHA CI systems send for "no commit" (a created ref, a schedule's `CI_COMMIT_BEFORE_SHA`).
pub const NULL_SHA: &str = "0000000000000000000000000000000000000000";

/// Which CI system runs buildopt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    GitHub,
    GitLab,
    Jenkins,
    Local,
}

impl Provider {
    /// The provider's name as reports spell it: `github`, `gitlab`, `jenkins`, `local`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GitHub => "github",
            Self::GitLab => "gitlab",
            Self::Jenkins => "jenkins",
            Self::Local => "local",
        }
    }
}

/// What kind of run this is; decides the base-commit rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Commits pushed to a branch (GitHub `push`, GitLab `push`, a Jenkins branch build).
    Push,
    /// A tag was pushed.
    TagPush,
    /// A pull or merge request (GitHub `pull_request*`, GitLab MR pipeline, Jenkins `CHANGE_ID`).
    PullRequest,
    /// GitHub's merge queue (`merge_group`).
    MergeQueue,
    /// Started by hand (`workflow_dispatch`, GitLab `web`).
    Manual,
    /// Started by a schedule.
    Scheduled,
    /// Any other trigger (`workflow_run`, `release`, GitLab `trigger`/`api`/`pipeline`, ...).
    Other,
    /// Not running in CI.
    Local,
}

/// Errors reading CI facts or resolving the range.
#[derive(Debug, thiserror::Error)]
pub enum CiError {
    /// The event payload could not be read or parsed.
    #[error("could not read the event payload {path}: {message}")]
    EventPayload { path: String, message: String },
    /// A revision the user or the CI system named does not resolve to a local commit.
    #[error("{what} `{rev}` is not a commit in this repository")]
    UnknownRevision { what: String, rev: String },
    /// A git operation failed while resolving the base.
    #[error(transparent)]
    Git(#[from] GitError),
}

/// What the CI system tells us about this run. Every field is optional because each provider
/// and event fills a different subset; `None` means "not provided", never an empty string.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CiContext {
    pub provider: Provider,
    pub event: EventKind,
    /// The provider's own name of the trigger (`pull_request_target`, `merge_request_event`, ...).
    pub event_name: Option<String>,
    /// The commit the CI system checked out (`GITHUB_SHA`, `CI_COMMIT_SHA`, `GIT_COMMIT`). For a
    /// GitHub pull request this is the synthetic merge commit, not the PR head.
    pub head_sha: Option<String>,
    /// The full ref that triggered the run (`refs/heads/x`, `refs/tags/v1`, `refs/pull/7/merge`).
    pub git_ref: Option<String>,
    /// The branch being built: the pushed branch, or a PR's source branch.
    pub branch: Option<String>,
    /// The tag being built, for tag pushes.
    pub tag: Option<String>,
    /// Pull/merge request number (GitHub PR number, GitLab MR IID, Jenkins `CHANGE_ID`).
    pub pr_number: Option<u64>,
    /// The PR's head commit as the CI system reports it.
    pub pr_head_sha: Option<String>,
    /// The branch a PR/MR/merge queue merges into.
    pub target_branch: Option<String>,
    /// The commit the CI system offers as diff base: a PR's `base.sha`, `merge_group.base_sha`,
    /// GitLab's `CI_MERGE_REQUEST_DIFF_BASE_SHA`. Only a hint: each can be stale.
    pub event_base_sha: Option<String>,
    /// The tip before a push; None when the push created the ref (all zeros).
    pub before_sha: Option<String>,
    /// The push rewrote history (GitHub `forced`).
    pub forced: bool,
    /// The push created the ref (GitHub `created`, or `before` all zeros).
    pub created: bool,
    /// The last commit of this branch that built successfully (Jenkins
    /// `GIT_PREVIOUS_SUCCESSFUL_COMMIT`).
    pub previous_success_sha: Option<String>,
    /// The repository's default branch when the CI system says (payload, `CI_DEFAULT_BRANCH`).
    pub default_branch: Option<String>,
    /// `owner/name` or the GitLab project path.
    pub repository: Option<String>,
    /// The web page of this run, for PR comments and summaries.
    pub run_url: Option<String>,
    /// The GitHub event payload file that was read.
    pub event_path: Option<PathBuf>,
}

impl CiContext {
    /// The run's identity as reports keep it; none outside CI.
    pub fn run_identity(&self) -> Option<crate::report::model::CiRun> {
        (self.provider != Provider::Local).then(|| crate::report::model::CiRun {
            provider: self.provider,
            event: self.event_name.clone(),
            repository: self.repository.clone(),
            pr_number: self.pr_number,
            sha: self.head_sha.clone(),
            git_ref: self.git_ref.clone(),
            run_url: self.run_url.clone(),
        })
    }

    /// A context with only the provider and event set.
    pub fn new(provider: Provider, event: EventKind) -> Self {
        Self {
            provider,
            event,
            event_name: None,
            head_sha: None,
            git_ref: None,
            branch: None,
            tag: None,
            pr_number: None,
            pr_head_sha: None,
            target_branch: None,
            event_base_sha: None,
            before_sha: None,
            forced: false,
            created: false,
            previous_success_sha: None,
            default_branch: None,
            repository: None,
            run_url: None,
            event_path: None,
        }
    }

    /// The commit images should be labelled with (`{sha}`): the PR head for pull requests, else
    /// the checked-out commit.
    pub fn sha(&self) -> Option<&str> {
        self.pr_head_sha.as_deref().or(self.head_sha.as_deref())
    }

    /// The first 7 characters of [`Self::sha`] (`{short_sha}`).
    pub fn short_sha(&self) -> Option<&str> {
        self.sha().map(|s| s.get(..7).unwrap_or(s))
    }
}

impl Provider {
    /// Which CI system runs buildopt: the one place that reads `GITHUB_ACTIONS`, `GITLAB_CI` and
    /// Jenkins' variables (settings, consoles and step outputs all ask the resolved settings).
    pub fn detect(env: &Env) -> Self {
        if env.is_true("GITHUB_ACTIONS") {
            Self::GitHub
        } else if env.is_true("GITLAB_CI") {
            Self::GitLab
        } else if env.get("JENKINS_URL").is_some()
            || (env.get("BUILD_URL").is_some() && env.get("GIT_COMMIT").is_some())
        {
            Self::Jenkins
        } else {
            Self::Local
        }
    }
}

/// Whether this run is in CI: a recognised CI system, or any other that sets `CI` (they all do).
pub fn in_ci(env: &Env) -> bool {
    Provider::detect(env) != Provider::Local || env.get("CI").is_some()
}

/// Reads the CI facts from the environment (GitHub's event payload included: call it once per
/// run, as settings resolution does).
pub fn detect(env: &Env) -> Result<CiContext, CiError> {
    match Provider::detect(env) {
        Provider::GitHub => github::detect(env),
        Provider::GitLab => Ok(gitlab::detect(env)),
        Provider::Jenkins => Ok(jenkins::detect(env)),
        Provider::Local => Ok(CiContext::new(Provider::Local, EventKind::Local)),
    }
}

/// User overrides of the range, and the settings resolution needs.
#[derive(Debug, Clone)]
pub struct RangeRequest {
    /// `--base`: diff from this revision, whatever the event.
    pub base: Option<String>,
    /// `--head`: plan for this revision instead of the checked-out one.
    pub head: Option<String>,
    /// How many times a shallow clone may be deepened (depth 50, 100, 200, ...) to find a base.
    pub max_deepen_rounds: u32,
    /// The repository's default branch when the CI system does not say (Jenkins, local runs).
    pub default_branch: Option<String>,
}

impl Default for RangeRequest {
    fn default() -> Self {
        Self {
            base: None,
            head: None,
            max_deepen_rounds: 6,
            default_branch: None,
        }
    }
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
    /// How the base was chosen, one line per decision, for `-v` output.
    pub steps: Vec<String>,
}

/// A SHA from the CI system, with the all-zeros "no commit" value mapped to None.
fn non_null_sha(value: Option<&str>) -> Option<String> {
    value
        .filter(|v| !v.chars().all(|c| c == '0'))
        .map(str::to_owned)
}

/// `refs/heads/x` → `x`; other strings unchanged.
fn strip_heads(reference: &str) -> &str {
    reference.strip_prefix("refs/heads/").unwrap_or(reference)
}
