//! GitLab CI: the predefined `CI_*` variables.
//!
//! Owns: mapping `CI_PIPELINE_SOURCE` (and `CI_COMMIT_TAG`) to [`EventKind`] and the merge
//! request, push and project variables into a [`CiContext`].

use super::{CiContext, EventKind, Provider, non_null_sha};
use crate::env::Env;

/// Builds the context of a GitLab CI job.
pub(super) fn detect(env: &Env) -> CiContext {
    let source = env.get("CI_PIPELINE_SOURCE").unwrap_or("");
    let tag = env.get("CI_COMMIT_TAG").map(str::to_owned);
    let mut ctx = CiContext::new(Provider::GitLab, event_kind(source, tag.is_some()));
    let get = |name: &str| env.get(name).map(str::to_owned);
    ctx.event_name = Some(source.to_owned()).filter(|s| !s.is_empty());
    ctx.head_sha = get("CI_COMMIT_SHA");
    ctx.branch = get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME").or_else(|| get("CI_COMMIT_BRANCH"));
    ctx.git_ref = match (&tag, &ctx.branch) {
        (Some(tag), _) => Some(format!("refs/tags/{tag}")),
        (None, Some(branch)) => Some(format!("refs/heads/{branch}")),
        (None, None) => None,
    };
    ctx.tag = tag;
    ctx.pr_number = env.get("CI_MERGE_REQUEST_IID").and_then(|n| n.parse().ok());
    ctx.target_branch = get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME");
    ctx.event_base_sha = non_null_sha(env.get("CI_MERGE_REQUEST_DIFF_BASE_SHA"));
    // Zeros for MR pipelines, new branches, schedules and manual runs (gitlab#493695).
    ctx.before_sha = non_null_sha(env.get("CI_COMMIT_BEFORE_SHA"));
    ctx.created = ctx.event == EventKind::Push && ctx.before_sha.is_none();
    ctx.default_branch = get("CI_DEFAULT_BRANCH");
    ctx.repository = get("CI_PROJECT_PATH");
    ctx.run_url = get("CI_PIPELINE_URL").or_else(|| get("CI_JOB_URL"));
    ctx
}

fn event_kind(source: &str, is_tag: bool) -> EventKind {
    match source {
        _ if is_tag => EventKind::TagPush,
        "merge_request_event" => EventKind::PullRequest,
        "push" => EventKind::Push,
        "schedule" => EventKind::Scheduled,
        "web" => EventKind::Manual,
        _ => EventKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_request_pipeline() {
        let env = Env::from_pairs([
            ("GITLAB_CI", "true"),
            ("CI_PIPELINE_SOURCE", "merge_request_event"),
            ("CI_COMMIT_SHA", "abc"),
            ("CI_MERGE_REQUEST_IID", "12"),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "topic"),
            ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main"),
            ("CI_MERGE_REQUEST_DIFF_BASE_SHA", "def"),
            ("CI_COMMIT_BEFORE_SHA", super::super::NULL_SHA),
            ("CI_PROJECT_PATH", "group/proj"),
        ]);
        let ctx = detect(&env);
        assert_eq!(ctx.event, EventKind::PullRequest);
        assert_eq!(ctx.pr_number, Some(12));
        assert_eq!(ctx.branch.as_deref(), Some("topic"));
        assert_eq!(ctx.target_branch.as_deref(), Some("main"));
        assert_eq!(ctx.event_base_sha.as_deref(), Some("def"));
        assert_eq!(ctx.before_sha, None);
        assert!(!ctx.created);
        assert_eq!(ctx.repository.as_deref(), Some("group/proj"));
    }

    #[test]
    fn branch_push_with_zero_before_is_created() {
        let env = Env::from_pairs([
            ("CI_PIPELINE_SOURCE", "push"),
            ("CI_COMMIT_BRANCH", "feature"),
            (
                "CI_COMMIT_BEFORE_SHA",
                "0000000000000000000000000000000000000000",
            ),
        ]);
        let ctx = detect(&env);
        assert_eq!(ctx.event, EventKind::Push);
        assert!(ctx.created);
        assert_eq!(ctx.git_ref.as_deref(), Some("refs/heads/feature"));
    }

    #[test]
    fn tags_schedules_and_others() {
        let tag = detect(&Env::from_pairs([
            ("CI_PIPELINE_SOURCE", "push"),
            ("CI_COMMIT_TAG", "v2"),
        ]));
        assert_eq!(
            (tag.event, tag.tag.as_deref()),
            (EventKind::TagPush, Some("v2"))
        );
        let schedule = detect(&Env::from_pairs([("CI_PIPELINE_SOURCE", "schedule")]));
        assert_eq!(schedule.event, EventKind::Scheduled);
        let web = detect(&Env::from_pairs([("CI_PIPELINE_SOURCE", "web")]));
        assert_eq!(web.event, EventKind::Manual);
        let trigger = detect(&Env::from_pairs([("CI_PIPELINE_SOURCE", "trigger")]));
        assert_eq!(
            (trigger.event, trigger.event_name.as_deref()),
            (EventKind::Other, Some("trigger"))
        );
    }
}
