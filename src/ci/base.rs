//! Base-commit resolution: the per-event table of reference §1.5, with this project's decisions.
//!
//! Owns: choosing `(base, head)` for a run, fetching single missing commits, deepening shallow
//! clones step by step, and the policy "when unsure, build everything and say why" — never an
//! empty plan by accident, never a silent two-dot diff against an unrelated commit.
//!
//! | event | base |
//! |---|---|
//! | `--base` | that revision (an error when it is not a commit) |
//! | GitHub PR | merge commit checkout: `HEAD^1`; else merge-base(origin/<base.ref> or base.sha, head) |
//! | push, `before` an ancestor, not forced | `before` |
//! | push, forced / not an ancestor | nearer of merge-base(before, head) and fork point from the default branch |
//! | push creating a branch | fork point from the default branch |
//! | tag | nearest earlier tag that is an ancestor |
//! | merge queue | merge-base(origin/<base_ref>, head), else `base_sha` |
//! | GitLab MR | merge-base(origin/<target>, head); `DIFF_BASE_SHA` only when the target is unavailable |
//! | Jenkins PR | merge-base(origin/<CHANGE_TARGET>, head) |
//! | Jenkins branch | `GIT_PREVIOUS_SUCCESSFUL_COMMIT` if an ancestor, else fork point from the default branch |
//! | local | merge-base with origin/HEAD, origin/main, origin/master, main, master |
//! | dispatch, schedule, others | build all |
//!
//! Anything unresolved is "build all"; when that happens on a root commit the base becomes the
//! empty tree ("initial commit").

use super::{Base, CiContext, CiError, EventKind, Provider, Range, RangeRequest};
use crate::git::{EMPTY_TREE, Git, GitError};

/// The remote CI checkouts fetch from, and the one deepening and single-commit fetches use.
const REMOTE: &str = "origin";

/// The first deepening step; each further round doubles it (dorny/paths-filter's schedule).
const FIRST_DEEPEN: u32 = 50;

/// Chooses base and head for this run per the event rules.
pub fn resolve_range(git: &Git, ci: &CiContext, req: &RangeRequest) -> Result<Range, CiError> {
    let mut resolver = Resolver::new(git, ci, req)?;
    let (head, base) = resolver.resolve()?;
    let base = resolver.initial_commit_fallback(&head, base)?;
    resolver.step(match &base {
        Base::Commit { sha, reason } => {
            format!("base {} ({reason}), head {}", short(sha), short(&head))
        }
        Base::BuildAll { reason } => format!("build all ({reason}), head {}", short(&head)),
    });
    Ok(Range {
        head,
        base,
        steps: resolver.steps,
    })
}

/// The state of one resolution: the inputs, what the repository looks like, and the step log.
struct Resolver<'a> {
    git: &'a Git,
    ci: &'a CiContext,
    req: &'a RangeRequest,
    shallow: bool,
    /// Whether an `origin` remote exists, asked only when a fetch is considered.
    has_origin: Option<bool>,
    steps: Vec<String>,
}

/// A merge base, or the reason there is none (which becomes a build-all reason).
type Found = Result<String, String>;

impl<'a> Resolver<'a> {
    fn new(git: &'a Git, ci: &'a CiContext, req: &'a RangeRequest) -> Result<Self, CiError> {
        let shallow = git.is_shallow()?;
        let mut resolver = Self {
            git,
            ci,
            req,
            shallow,
            has_origin: None,
            steps: Vec::new(),
        };
        let name = ci.event_name.as_deref().unwrap_or("-");
        resolver.step(format!(
            "provider {:?}, event {:?} ({name})",
            ci.provider, ci.event
        ));
        if shallow {
            resolver.step("the clone is shallow".to_owned());
        }
        Ok(resolver)
    }

    fn step(&mut self, line: String) {
        self.steps.push(line);
    }

    /// Whether an `origin` remote exists to fetch from.
    fn has_origin(&mut self) -> Result<bool, CiError> {
        if let Some(known) = self.has_origin {
            return Ok(known);
        }
        let known = self.git.has_remote(REMOTE)?;
        self.has_origin = Some(known);
        Ok(known)
    }

    fn resolve(&mut self) -> Result<(String, Base), CiError> {
        if let Some(base) = &self.req.base {
            let (head, sha) = match self.head_and_base_at_once(base)? {
                Some(both) => both,
                None => (
                    self.head(self.ci.head_sha.as_deref())?,
                    self.required(base, "--base")?,
                ),
            };
            return Ok((
                head,
                Base::Commit {
                    sha,
                    reason: format!("--base {base}"),
                },
            ));
        }
        match (self.ci.provider, self.ci.event) {
            (Provider::GitHub, EventKind::PullRequest) => self.github_pull_request(),
            (Provider::GitLab, EventKind::PullRequest) => self.gitlab_merge_request(),
            (_, EventKind::PullRequest) => self.jenkins_change_request(),
            (_, EventKind::MergeQueue) => self.merge_queue(),
            (_, EventKind::TagPush) => self.tag_push(),
            (Provider::Jenkins, EventKind::Push) => self.jenkins_branch(),
            (_, EventKind::Push) => self.push(),
            (_, EventKind::Local) => self.local(),
            (_, EventKind::Manual | EventKind::Scheduled | EventKind::Other) => {
                let head = self.head(self.ci.head_sha.as_deref())?;
                let name = self.ci.event_name.as_deref().unwrap_or("this");
                let reason =
                    format!("the {name} event has no base commit; pass --base to limit the build");
                Ok((head, Base::BuildAll { reason }))
            }
        }
    }

    // ---- heads and single commits -------------------------------------------------------

    /// `--head`, else the CI system's commit when it exists locally, else `HEAD`.
    fn head(&mut self, candidate: Option<&str>) -> Result<String, CiError> {
        if let Some(rev) = &self.req.head {
            return self.required(rev, "--head");
        }
        if let Some(sha) = candidate {
            if let Some(found) = self.git.resolve_commit(sha)? {
                return Ok(found);
            }
            self.step(format!(
                "{} is not checked out locally; using HEAD",
                short(sha)
            ));
        }
        self.git.resolve_commit("HEAD")?.ok_or_else(no_head)
    }

    /// The head ([`Self::head`]'s first choice) and `--base` in one git process, when both
    /// resolve as they are; `None` sends the caller the one-at-a-time way, which fetches what
    /// is missing and says what it fell back to.
    fn head_and_base_at_once(&self, base: &str) -> Result<Option<(String, String)>, CiError> {
        let head = match (&self.req.head, &self.ci.head_sha) {
            (Some(rev), _) => rev.as_str(),
            (None, Some(sha)) => sha.as_str(),
            (None, None) => "HEAD",
        };
        Ok(match self.git.resolve_commits(&[head, base])?.as_slice() {
            [Some(head), Some(base)] => Some((head.clone(), base.clone())),
            _ => None,
        })
    }

    /// A revision the user named: it must resolve (after fetching a missing SHA).
    fn required(&mut self, rev: &str, what: &str) -> Result<String, CiError> {
        self.commit(rev)?.ok_or_else(|| CiError::UnknownRevision {
            what: what.to_owned(),
            rev: rev.to_owned(),
        })
    }

    /// The commit `rev` names; a full SHA that is missing locally is fetched from origin once.
    fn commit(&mut self, rev: &str) -> Result<Option<String>, CiError> {
        if let Some(sha) = self.git.resolve_commit(rev)? {
            return Ok(Some(sha));
        }
        if !is_full_sha(rev) || !self.has_origin()? {
            return Ok(None);
        }
        let depth = self.shallow.then_some(1);
        match self.git.fetch(REMOTE, &[rev.to_owned()], depth) {
            Ok(()) => self.step(format!("fetched missing commit {}", short(rev))),
            Err(e) => self.step(format!("could not fetch {}: {e}", short(rev))),
        }
        Ok(self.git.resolve_commit(rev)?)
    }

    /// The tip of `branch`: `origin/<branch>`, else the local branch, else fetched from origin.
    fn branch_tip(&mut self, branch: &str) -> Result<Option<(String, String)>, CiError> {
        let remote_ref = format!("refs/remotes/{REMOTE}/{branch}");
        for (label, rev) in [
            (format!("{REMOTE}/{branch}"), remote_ref.clone()),
            (branch.to_owned(), format!("refs/heads/{branch}")),
        ] {
            if let Some(sha) = self.git.resolve_commit(&rev)? {
                return Ok(Some((label, sha)));
            }
        }
        if !self.has_origin()? {
            return Ok(None);
        }
        let refspec = format!("+refs/heads/{branch}:{remote_ref}");
        if let Err(e) = self
            .git
            .fetch(REMOTE, &[refspec], self.shallow.then_some(1))
        {
            self.step(format!("could not fetch branch {branch}: {e}"));
            return Ok(None);
        }
        self.step(format!("fetched branch {branch}"));
        Ok(self
            .git
            .resolve_commit(&remote_ref)?
            .map(|sha| (format!("{REMOTE}/{branch}"), sha)))
    }

    // ---- merge bases and deepening ------------------------------------------------------

    /// merge-base(`branch`, head), deepening a shallow clone as needed.
    fn fork_point(&mut self, branch: &str, head: &str) -> Result<Found, CiError> {
        let Some((label, tip)) = self.branch_tip(branch)? else {
            return Ok(Err(format!("branch {branch} is not available")));
        };
        self.branch_merge_base(branch, &label, &tip, head)
    }

    /// merge-base(the run's target branch, head); None when the run names no target branch or
    /// it cannot be fetched, so each event can fall back to the base SHA its CI system sent.
    fn target_fork_point(&mut self, head: &str) -> Result<Option<Found>, CiError> {
        let Some(target) = self.ci.target_branch.clone() else {
            self.step("the run names no target branch".to_owned());
            return Ok(None);
        };
        let Some((label, tip)) = self.branch_tip(&target)? else {
            self.step(format!("target branch {target} is not available"));
            return Ok(None);
        };
        self.branch_merge_base(&target, &label, &tip, head)
            .map(Some)
    }

    /// merge-base of a branch's tip and head, deepening that branch and head.
    fn branch_merge_base(
        &mut self,
        branch: &str,
        label: &str,
        tip: &str,
        head: &str,
    ) -> Result<Found, CiError> {
        let refs = vec![
            format!("+refs/heads/{branch}:refs/remotes/{REMOTE}/{branch}"),
            head.to_owned(),
        ];
        Ok(self
            .merge_base(label, tip, head, &refs)?
            .map_err(|reason| format!("{reason} ({label})")))
    }

    /// merge-base(`tip`, head), deepening `refs` while the clone is shallow.
    fn merge_base(
        &mut self,
        label: &str,
        tip: &str,
        head: &str,
        refs: &[String],
    ) -> Result<Found, CiError> {
        let found = self.deepening(refs, |git| trusted_merge_base(git, tip, head))?;
        match found {
            Some(mb) => {
                self.step(format!("merge-base of {label} and head: {}", short(&mb)));
                Ok(Ok(mb))
            }
            None if self.shallow => Ok(Err(
                "merge base not found within the deepen bound".to_owned()
            )),
            None => Ok(Err("no merge base: the histories are unrelated".to_owned())),
        }
    }

    /// Runs `attempt`; while it finds nothing in a shallow clone, deepens by 50, 100, 200, ...
    /// for at most `max_deepen_rounds`, stopping early when the history stops growing. After the
    /// bound the caller builds everything: a two-dot fallback would leak the base branch's changes
    /// in (reference §2.1, n8n PR #32459).
    fn deepening(
        &mut self,
        refs: &[String],
        attempt: impl Fn(&Git) -> Result<Option<String>, GitError>,
    ) -> Result<Option<String>, CiError> {
        if let Some(found) = attempt(self.git)? {
            return Ok(Some(found));
        }
        if !self.shallow || !self.has_origin()? {
            return Ok(None);
        }
        let mut count = self.git.commit_count()?;
        for round in 0..self.req.max_deepen_rounds {
            let depth = FIRST_DEEPEN.saturating_mul(2u32.saturating_pow(round));
            if let Err(e) = self.git.deepen(REMOTE, depth, refs) {
                self.step(format!("deepen by {depth} failed: {e}"));
                return Ok(None);
            }
            let grown = self.git.commit_count()?;
            self.step(format!("deepened by {depth}: {count} -> {grown} commits"));
            if let Some(found) = attempt(self.git)? {
                return Ok(Some(found));
            }
            if grown == count {
                self.step("the history stopped growing".to_owned());
                return Ok(None);
            }
            count = grown;
        }
        Ok(None)
    }

    /// True when `ancestor` is an ancestor of `head`, deepening a shallow clone to find out.
    fn is_ancestor(&mut self, ancestor: &str, head: &str) -> Result<bool, CiError> {
        let refs = [head.to_owned(), ancestor.to_owned()];
        let found = self.deepening(&refs, |git| trusted_merge_base(git, ancestor, head))?;
        Ok(found.as_deref() == Some(ancestor))
    }

    /// The repository's default branch: from the CI system, else from the caller's settings.
    fn default_branch(&self) -> Option<&'a str> {
        self.ci
            .default_branch
            .as_deref()
            .or(self.req.default_branch.as_deref())
    }

    /// The fork point from the default branch, unless this run is on the default branch itself
    /// (its fork point would be its own tip: nothing to build).
    fn default_fork_point(&mut self, head: &str) -> Result<Found, CiError> {
        let Some(default) = self.default_branch() else {
            return Ok(Err("the default branch is not known".to_owned()));
        };
        if self.ci.branch.as_deref() == Some(default) {
            return Ok(Err(format!("this is the default branch {default}")));
        }
        self.fork_point(default, head)
    }

    // ---- the events ---------------------------------------------------------------------

    /// GitHub `pull_request*`: what merging changes, else the three-dot range of the PR.
    fn github_pull_request(&mut self) -> Result<(String, Base), CiError> {
        if self.req.head.is_none()
            && let Some((merge, first_parent)) = self.merge_ref_checkout()?
        {
            let reason =
                "pull request merge commit: its first parent is the current base".to_owned();
            return Ok((
                merge,
                Base::Commit {
                    sha: first_parent,
                    reason,
                },
            ));
        }
        let head = self.head(self.ci.pr_head_sha.as_deref())?;
        let found = match (
            self.target_fork_point(&head)?,
            self.ci.event_base_sha.clone(),
        ) {
            (Some(found), _) => found,
            (None, Some(base_sha)) => {
                self.step("using pull_request.base.sha".to_owned());
                match self.commit(&base_sha)? {
                    Some(tip) => self.merge_base(
                        "pull_request.base.sha",
                        &tip,
                        &head,
                        &[base_sha, head.clone()],
                    )?,
                    None => Err(format!(
                        "pull_request.base.sha {} is not available",
                        short(&base_sha)
                    )),
                }
            }
            (None, None) => Err("the pull request's base branch is not available".to_owned()),
        };
        Ok((
            head,
            base_from(found, "pull request: merge-base with the base branch"),
        ))
    }

    /// `HEAD` is GitHub's synthetic `refs/pull/N/merge` commit when it has two parents and the
    /// second is the PR head; then `HEAD^1..HEAD` is exactly what merging changes against the
    /// *current* base (fern-api/fern PR #13220; `base.sha` can be stale, tj-actions #704).
    fn merge_ref_checkout(&mut self) -> Result<Option<(String, String)>, CiError> {
        let (Some(pr_head), Some(head)) = (
            self.ci.pr_head_sha.clone(),
            self.git.resolve_commit("HEAD")?,
        ) else {
            return Ok(None);
        };
        if head == pr_head {
            return Ok(None);
        }
        if self.shallow && self.has_origin()? && self.git.is_shallow_boundary(&head)? {
            match self.git.deepen(REMOTE, 1, std::slice::from_ref(&head)) {
                Ok(()) => self.step("deepened the merge commit by 1 to see its parents".to_owned()),
                Err(e) => self.step(format!("could not deepen the merge commit: {e}")),
            }
        }
        let parents = self.git.parents(&head)?;
        match parents.as_slice() {
            [first, second] if *second == pr_head => {
                self.step(format!(
                    "HEAD {} is the merge commit of PR head {}",
                    short(&head),
                    short(&pr_head)
                ));
                Ok(Some((head, first.clone())))
            }
            _ => Ok(None),
        }
    }

    /// A branch push (GitHub or GitLab): `before` when it is an ancestor, else the nearest
    /// trustworthy fork point; never `HEAD^` (tj-actions #952 missed all but the last commit).
    fn push(&mut self) -> Result<(String, Base), CiError> {
        let head = self.head(self.ci.head_sha.as_deref())?;
        let before = self.ci.before_sha.clone();
        let Some(before) = before else {
            self.step("the push created the branch".to_owned());
            let fork = self.default_fork_point(&head)?;
            return Ok((
                head,
                base_from(
                    fork.map_err(|r| format!("new branch: {r}")),
                    "new branch: fork point from the default branch",
                ),
            ));
        };
        let Some(before) = self.commit(&before)? else {
            self.step(format!("previous tip {} is not available", short(&before)));
            let fork = self.default_fork_point(&head)?;
            return Ok((
                head,
                base_from(
                    fork,
                    "previous tip unavailable: fork point from the default branch",
                ),
            ));
        };
        let refs = [before.clone(), head.clone()];
        let rewritten = self.merge_base("the previous tip", &before, &head, &refs)?;
        if rewritten.as_deref() == Ok(before.as_str()) && !self.ci.forced {
            let reason = format!("push: previous tip {}", short(&before));
            return Ok((
                head,
                Base::Commit {
                    sha: before,
                    reason,
                },
            ));
        }
        self.step("the push rewrote history".to_owned());
        let fork = self.default_fork_point(&head)?;
        let base = match (rewritten, fork) {
            (Ok(mb), Ok(fork)) => self.nearer(mb, fork)?,
            (Ok(mb), Err(_)) => Base::Commit {
                sha: mb,
                reason: "force push: merge-base of the old and new tips".into(),
            },
            (Err(_), Ok(fork)) => Base::Commit {
                sha: fork,
                reason: "force push: fork point from the default branch".into(),
            },
            (Err(reason), Err(_)) => Base::BuildAll {
                reason: format!("force push: {reason}"),
            },
        };
        Ok((head, base))
    }

    /// Of two ancestors of head, the one closer to head: after a rebase onto a newer default
    /// branch, merge-base(before, after) is the old fork point and diffing from it would pull
    /// the default branch's new commits into this push (reference §8.3).
    fn nearer(&mut self, rewritten: String, fork: String) -> Result<Base, CiError> {
        if rewritten != fork && self.git.is_ancestor(&rewritten, &fork)? {
            return Ok(Base::Commit {
                sha: fork,
                reason: "force push: fork point from the default branch".into(),
            });
        }
        Ok(Base::Commit {
            sha: rewritten,
            reason: "force push: merge-base of the old and new tips".into(),
        })
    }

    /// A tag: the nearest earlier tag that is an ancestor (not the newest by date, tj-actions
    /// #2106), peeled to its commit so annotated and lightweight tags behave alike.
    fn tag_push(&mut self) -> Result<(String, Base), CiError> {
        let head = self.head(self.ci.head_sha.as_deref())?;
        let parent = format!("{head}^");
        let refs = ["+refs/tags/*:refs/tags/*".to_owned(), head.clone()];
        let Some(tag) = self.deepening(&refs, |git| git.nearest_tag(&parent))? else {
            let this = self.ci.tag.as_deref().unwrap_or("this tag");
            return Ok((
                head,
                Base::BuildAll {
                    reason: format!("first tag: no earlier tag is an ancestor of {this}"),
                },
            ));
        };
        let Some(sha) = self.git.resolve_commit(&format!("refs/tags/{tag}"))? else {
            return Ok((
                head,
                Base::BuildAll {
                    reason: format!("previous tag {tag} does not point at a commit"),
                },
            ));
        };
        Ok((
            head,
            Base::Commit {
                sha,
                reason: format!("previous tag {tag}"),
            },
        ))
    }

    /// GitHub merge queue: the merge base with the target covers every PR of the batch;
    /// `base_sha` is the previous queue entry and would cover only the last PR (iotaledger/iota
    /// PR #12491), so it is only a fallback.
    fn merge_queue(&mut self) -> Result<(String, Base), CiError> {
        let head = self.head(self.ci.head_sha.as_deref())?;
        let found = self
            .target_fork_point(&head)?
            .unwrap_or_else(|| Err("the merge group's base branch is not available".to_owned()));
        if let (Err(reason), Some(base_sha)) = (&found, self.ci.event_base_sha.clone()) {
            self.step(format!("{reason}; trying merge_group.base_sha"));
            if let Some(sha) = self.commit(&base_sha)?
                && self.is_ancestor(&sha, &head)?
            {
                return Ok((
                    head,
                    Base::Commit {
                        sha,
                        reason: "merge queue: base_sha (previous queue entry)".into(),
                    },
                ));
            }
        }
        Ok((
            head,
            base_from(found, "merge queue: merge-base with the target branch"),
        ))
    }

    /// GitLab MR pipeline: merge-base with the target branch. `CI_MERGE_REQUEST_DIFF_BASE_SHA`
    /// is not updated when the MR is retargeted (gitlab#442031), so it is used only when the
    /// target branch cannot be fetched.
    fn gitlab_merge_request(&mut self) -> Result<(String, Base), CiError> {
        let head = self.head(self.ci.head_sha.as_deref())?;
        let diff_base = self.ci.event_base_sha.clone();
        let Some(found) = self.target_fork_point(&head)? else {
            if let Some(diff_base) = diff_base
                && let Some(sha) = self.commit(&diff_base)?
                && self.is_ancestor(&sha, &head)?
            {
                let reason =
                    "merge request diff base (the target branch is not available)".to_owned();
                return Ok((head, Base::Commit { sha, reason }));
            }
            return Ok((
                head,
                Base::BuildAll {
                    reason: "the target branch is not available".into(),
                },
            ));
        };
        if let (Ok(mb), Some(diff_base)) = (&found, diff_base)
            && *mb != diff_base
        {
            self.step(format!(
                "ignoring stale CI_MERGE_REQUEST_DIFF_BASE_SHA {}",
                short(&diff_base)
            ));
        }
        Ok((
            head,
            base_from(found, "merge request: merge-base with the target branch"),
        ))
    }

    /// Jenkins multibranch change request: merge-base with `CHANGE_TARGET`.
    fn jenkins_change_request(&mut self) -> Result<(String, Base), CiError> {
        let head = self.head(self.ci.head_sha.as_deref())?;
        let found = self
            .target_fork_point(&head)?
            .unwrap_or_else(|| Err("the CHANGE_TARGET branch is not available".to_owned()));
        Ok((
            head,
            base_from(found, "change request: merge-base with the target branch"),
        ))
    }

    /// Jenkins branch build: since the last successful build, never the changelog (empty on a
    /// branch's first build, ods-jenkins-shared-library#19).
    fn jenkins_branch(&mut self) -> Result<(String, Base), CiError> {
        let head = self.head(self.ci.head_sha.as_deref())?;
        if let Some(previous) = self.ci.previous_success_sha.clone() {
            match self.commit(&previous)? {
                Some(sha) if self.is_ancestor(&sha, &head)? => {
                    let reason = format!("last successful build {}", short(&sha));
                    return Ok((head, Base::Commit { sha, reason }));
                }
                _ => self.step(format!(
                    "last successful build {} is not an ancestor of head",
                    short(&previous)
                )),
            }
        }
        let fork = self.default_fork_point(&head)?;
        Ok((
            head,
            base_from(
                fork.map_err(|r| format!("first build of this branch: {r}")),
                "fork point from the default branch",
            ),
        ))
    }

    /// No CI: merge-base with the remote's default branch, else a local main/master.
    fn local(&mut self) -> Result<(String, Base), CiError> {
        let current = self.git.current_branch()?;
        let candidates = self.local_candidates(current.as_deref());
        let mut revs: Vec<&str> = candidates.iter().map(|(_, rev)| rev.as_str()).collect();
        // Without --head, HEAD is resolved in the same git call as the candidates.
        let batched_head = self.req.head.is_none();
        if batched_head {
            revs.insert(0, "HEAD");
        }
        let mut tips = self.git.resolve_commits(&revs)?;
        let head = if batched_head {
            tips.remove(0).ok_or_else(no_head)?
        } else {
            self.head(None)?
        };
        if let Some(((label, _), tip)) = candidates
            .iter()
            .zip(tips)
            .find_map(|(candidate, tip)| tip.map(|tip| (candidate, tip)))
        {
            let found = self.merge_base(label, &tip, &head, &[])?;
            return Ok((head, base_from(found, &format!("merge-base with {label}"))));
        }
        Ok((
            head,
            Base::BuildAll {
                reason: "no base: pass --base".into(),
            },
        ))
    }

    /// Where a local run looks for its base, best first; a local branch only when HEAD is not on it.
    fn local_candidates(&self, current: Option<&str>) -> Vec<(String, String)> {
        let mut candidates = Vec::new();
        let mut branches: Vec<&str> = self.req.default_branch.as_deref().into_iter().collect();
        branches.extend(["main", "master"]);
        if let Some(d) = self.req.default_branch.as_deref() {
            candidates.push((
                format!("{REMOTE}/{d}"),
                format!("refs/remotes/{REMOTE}/{d}"),
            ));
        }
        candidates.push((
            format!("{REMOTE}/HEAD"),
            format!("refs/remotes/{REMOTE}/HEAD"),
        ));
        for branch in ["main", "master"] {
            candidates.push((
                format!("{REMOTE}/{branch}"),
                format!("refs/remotes/{REMOTE}/{branch}"),
            ));
        }
        for branch in branches.into_iter().filter(|b| Some(*b) != current) {
            candidates.push((branch.to_owned(), format!("refs/heads/{branch}")));
        }
        candidates
    }

    /// "Build all" on a commit without parents becomes a diff against the empty tree; a shallow
    /// boundary also has no local parents but is not a root.
    fn initial_commit_fallback(&mut self, head: &str, base: Base) -> Result<Base, CiError> {
        let Base::BuildAll { reason } = base else {
            return Ok(base);
        };
        let is_root = self.git.parents(head)?.is_empty()
            && !(self.shallow && self.git.is_shallow_boundary(head)?);
        if !is_root {
            return Ok(Base::BuildAll { reason });
        }
        self.step(format!("head has no parent ({reason})"));
        Ok(Base::Commit {
            sha: EMPTY_TREE.to_owned(),
            reason: "initial commit".into(),
        })
    }
}

/// HEAD names no commit (an empty repository).
fn no_head() -> CiError {
    CiError::UnknownRevision {
        what: "HEAD".into(),
        rev: "HEAD".into(),
    }
}

/// merge-base(a, b), except that in a shallow clone a grafted boundary commit is not trusted as
/// the merge base: its real parents may lead to a better one (n8n PR #32459).
fn trusted_merge_base(git: &Git, a: &str, b: &str) -> Result<Option<String>, GitError> {
    let Some(mb) = git.merge_base(a, b)? else {
        return Ok(None);
    };
    if git.is_shallow_boundary(&mb)? && mb != a && mb != b {
        return Ok(None);
    }
    Ok(Some(mb))
}

fn base_from(found: Found, reason: &str) -> Base {
    match found {
        Ok(sha) => Base::Commit {
            sha,
            reason: reason.to_owned(),
        },
        Err(reason) => Base::BuildAll { reason },
    }
}

fn is_full_sha(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_shas_are_recognised() {
        assert!(is_full_sha("4b825dc642cb6eb9a060e54bf8d69288fbee4904"));
        assert!(!is_full_sha("4b825dc"));
        assert!(!is_full_sha("origin/main"));
    }

    #[test]
    fn base_from_keeps_the_reason_of_a_failure() {
        assert_eq!(
            base_from(Err("no".into()), "yes"),
            Base::BuildAll {
                reason: "no".into()
            }
        );
        assert_eq!(
            base_from(Ok("abc".into()), "yes"),
            Base::Commit {
                sha: "abc".into(),
                reason: "yes".into()
            }
        );
    }
}
