//! Jenkins: the git plugin's `GIT_*` variables and the multibranch `CHANGE_*`/`TAG_NAME` ones.
//!
//! Owns: turning them into a [`CiContext`]. Jenkins' changelog is never used: it is empty on a
//! branch's first build and is consumed by failed builds (reference §1.4).

use super::{CiContext, EventKind, Provider};
use crate::env::Env;

/// Builds the context of a Jenkins build.
pub(super) fn detect(env: &Env) -> CiContext {
    let get = |name: &str| env.get(name).map(str::to_owned);
    let event = if env.get("CHANGE_ID").is_some() {
        EventKind::PullRequest
    } else if env.get("TAG_NAME").is_some() {
        EventKind::TagPush
    } else {
        EventKind::Push
    };
    let mut ctx = CiContext::new(Provider::Jenkins, event);
    ctx.head_sha = get("GIT_COMMIT");
    ctx.tag = get("TAG_NAME");
    ctx.branch = get("CHANGE_BRANCH")
        .or_else(|| get("BRANCH_NAME"))
        .or_else(|| {
            // The git plugin reports `origin/main` for non-multibranch jobs.
            env.get("GIT_BRANCH")
                .map(|b| b.strip_prefix("origin/").unwrap_or(b).to_owned())
        });
    ctx.git_ref = match (&ctx.tag, &ctx.branch) {
        (Some(tag), _) => Some(format!("refs/tags/{tag}")),
        (None, Some(branch)) => Some(format!("refs/heads/{branch}")),
        (None, None) => None,
    };
    ctx.pr_number = env.get("CHANGE_ID").and_then(|n| n.parse().ok());
    ctx.target_branch = get("CHANGE_TARGET");
    ctx.previous_success_sha = get("GIT_PREVIOUS_SUCCESSFUL_COMMIT");
    ctx.repository = get("GIT_URL");
    ctx.run_url = get("BUILD_URL");
    let event_name = match event {
        EventKind::PullRequest => "change_request",
        EventKind::TagPush => "tag",
        _ => "branch",
    };
    ctx.event_name = Some(event_name.to_owned());
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multibranch_pull_request() {
        let env = Env::from_pairs([
            ("JENKINS_URL", "http://ci/"),
            ("GIT_COMMIT", "abc"),
            ("CHANGE_ID", "31"),
            ("CHANGE_TARGET", "main"),
            ("CHANGE_BRANCH", "topic"),
            ("BRANCH_NAME", "PR-31"),
        ]);
        let ctx = detect(&env);
        assert_eq!(ctx.event, EventKind::PullRequest);
        assert_eq!(ctx.pr_number, Some(31));
        assert_eq!(ctx.branch.as_deref(), Some("topic"));
        assert_eq!(ctx.target_branch.as_deref(), Some("main"));
    }

    #[test]
    fn branch_build_with_previous_success_and_plugin_branch_name() {
        let env = Env::from_pairs([
            ("GIT_COMMIT", "abc"),
            ("GIT_BRANCH", "origin/release/1"),
            ("GIT_PREVIOUS_SUCCESSFUL_COMMIT", "def"),
        ]);
        let ctx = detect(&env);
        assert_eq!(ctx.event, EventKind::Push);
        assert_eq!(ctx.branch.as_deref(), Some("release/1"));
        assert_eq!(ctx.previous_success_sha.as_deref(), Some("def"));
    }

    #[test]
    fn tag_build() {
        let ctx = detect(&Env::from_pairs([
            ("GIT_COMMIT", "abc"),
            ("TAG_NAME", "v1"),
        ]));
        assert_eq!(
            (ctx.event, ctx.git_ref.as_deref()),
            (EventKind::TagPush, Some("refs/tags/v1"))
        );
    }
}
