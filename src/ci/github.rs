//! GitHub Actions: the `GITHUB_*` variables and the event payload at `GITHUB_EVENT_PATH`.
//!
//! Owns: mapping GitHub's event names to [`EventKind`] and the payload fields the base rules use
//! (`before`/`after`/`forced`/`created`, `pull_request.{head,base}`, `merge_group.*`,
//! `repository.default_branch`). A payload that is not JSON, has a wrong type, or lacks a field
//! its event needs is an error naming the file.

use std::path::Path;

use serde::Deserialize;

use super::{CiContext, CiError, EventKind, Provider, non_null_sha, strip_heads};
use crate::env::Env;

#[derive(Debug, Default, Deserialize)]
struct Payload {
    before: Option<String>,
    after: Option<String>,
    forced: Option<bool>,
    created: Option<bool>,
    number: Option<u64>,
    repository: Option<Repository>,
    pull_request: Option<PullRequest>,
    merge_group: Option<MergeGroup>,
}

#[derive(Debug, Deserialize)]
struct Repository {
    default_branch: Option<String>,
    full_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PullRequest {
    number: Option<u64>,
    head: Option<Side>,
    base: Option<Side>,
}

#[derive(Debug, Deserialize)]
struct Side {
    sha: Option<String>,
    #[serde(rename = "ref")]
    reference: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MergeGroup {
    head_sha: Option<String>,
    base_sha: Option<String>,
    base_ref: Option<String>,
}

/// Builds the context of a GitHub Actions run.
pub(super) fn detect(env: &Env) -> Result<CiContext, CiError> {
    let event_name = env.get("GITHUB_EVENT_NAME").unwrap_or("").to_owned();
    let git_ref = env.get("GITHUB_REF").map(str::to_owned);
    let tag = git_ref
        .as_deref()
        .and_then(|r| r.strip_prefix("refs/tags/"))
        .map(str::to_owned);
    let event = event_kind(&event_name, tag.is_some());
    let payload = match env.get("GITHUB_EVENT_PATH") {
        Some(path) => read_payload(Path::new(path), event)?,
        None => Payload::default(),
    };

    let mut ctx = CiContext::new(Provider::GitHub, event);
    ctx.event_name = Some(event_name).filter(|n| !n.is_empty());
    ctx.head_sha = env
        .get("GITHUB_SHA")
        .map(str::to_owned)
        .or_else(|| non_null_sha(payload.after.as_deref()));
    ctx.branch = env
        .get("GITHUB_HEAD_REF")
        .or_else(|| {
            git_ref
                .as_deref()
                .and_then(|r| r.strip_prefix("refs/heads/"))
        })
        .map(str::to_owned);
    ctx.git_ref = git_ref;
    ctx.tag = tag;
    ctx.before_sha = non_null_sha(payload.before.as_deref());
    ctx.created =
        payload.created.unwrap_or(false) || (payload.before.is_some() && ctx.before_sha.is_none());
    ctx.forced = payload.forced.unwrap_or(false);
    ctx.repository = env.get("GITHUB_REPOSITORY").map(str::to_owned).or_else(|| {
        payload
            .repository
            .as_ref()
            .and_then(|r| r.full_name.clone())
    });
    ctx.default_branch = payload
        .repository
        .as_ref()
        .and_then(|r| r.default_branch.clone());
    ctx.run_url = run_url(env);
    ctx.event_path = env.get("GITHUB_EVENT_PATH").map(Into::into);
    if let Some(pr) = &payload.pull_request {
        ctx.pr_number = pr.number.or(payload.number);
        ctx.pr_head_sha = pr.head.as_ref().and_then(|h| h.sha.clone());
        ctx.event_base_sha = pr.base.as_ref().and_then(|b| b.sha.clone());
        ctx.target_branch = pr.base.as_ref().and_then(|b| b.reference.clone());
        if ctx.branch.is_none() {
            ctx.branch = pr.head.as_ref().and_then(|h| h.reference.clone());
        }
    }
    if let Some(group) = &payload.merge_group {
        ctx.head_sha = group.head_sha.clone().or(ctx.head_sha);
        ctx.event_base_sha = group.base_sha.clone();
        ctx.target_branch = group.base_ref.as_deref().map(|r| strip_heads(r).to_owned());
    }
    Ok(ctx)
}

fn event_kind(name: &str, is_tag: bool) -> EventKind {
    match name {
        "push" if is_tag => EventKind::TagPush,
        "push" => EventKind::Push,
        "pull_request"
        | "pull_request_target"
        | "pull_request_review"
        | "pull_request_review_comment" => EventKind::PullRequest,
        "merge_group" => EventKind::MergeQueue,
        "workflow_dispatch" => EventKind::Manual,
        "schedule" => EventKind::Scheduled,
        _ => EventKind::Other,
    }
}

fn run_url(env: &Env) -> Option<String> {
    let server = env.get("GITHUB_SERVER_URL").unwrap_or("https://github.com");
    Some(format!(
        "{server}/{}/actions/runs/{}",
        env.get("GITHUB_REPOSITORY")?,
        env.get("GITHUB_RUN_ID")?
    ))
}

/// Reads and checks the payload: the fields the event's base rule needs must be there.
fn read_payload(path: &Path, event: EventKind) -> Result<Payload, CiError> {
    let fail = |message: String| CiError::EventPayload {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let payload: Payload = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
    match missing_field(&payload, event) {
        Some(field) => Err(fail(format!(
            "missing field `{field}` required by this event"
        ))),
        None => Ok(payload),
    }
}

/// The first field the event's base rule needs that the payload lacks.
fn missing_field(payload: &Payload, event: EventKind) -> Option<&'static str> {
    match event {
        EventKind::Push | EventKind::TagPush => match (&payload.before, &payload.after) {
            (None, _) => Some("before"),
            (_, None) => Some("after"),
            _ => None,
        },
        EventKind::PullRequest => {
            let Some(pr) = &payload.pull_request else {
                return Some("pull_request");
            };
            if pr.head.as_ref().and_then(|h| h.sha.as_ref()).is_none() {
                Some("pull_request.head.sha")
            } else if pr
                .base
                .as_ref()
                .and_then(|b| b.reference.as_ref())
                .is_none()
            {
                Some("pull_request.base.ref")
            } else {
                None
            }
        }
        EventKind::MergeQueue => {
            let Some(group) = &payload.merge_group else {
                return Some("merge_group");
            };
            if group.head_sha.is_none() {
                Some("merge_group.head_sha")
            } else if group.base_ref.is_none() {
                Some("merge_group.base_ref")
            } else {
                None
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "1111111111111111111111111111111111111111";
    const BEFORE: &str = "2222222222222222222222222222222222222222";

    fn run(
        event: &str,
        git_ref: &str,
        payload: &str,
    ) -> (tempfile::TempDir, Result<CiContext, CiError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("event.json");
        std::fs::write(&path, payload).unwrap();
        let env = Env::from_pairs([
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", event),
            ("GITHUB_REF", git_ref),
            ("GITHUB_SHA", HEAD),
            ("GITHUB_REPOSITORY", "o/r"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_EVENT_PATH", path.to_str().unwrap()),
        ]);
        let result = detect(&env);
        (dir, result)
    }

    #[test]
    fn push_payload_fills_before_forced_and_default_branch() {
        let payload = format!(
            r#"{{"before":"{BEFORE}","after":"{HEAD}","forced":true,"created":false,
               "repository":{{"default_branch":"main","full_name":"o/r"}}}}"#
        );
        let (_dir, ctx) = run("push", "refs/heads/feature/x", &payload);
        let ctx = ctx.unwrap();
        assert_eq!(ctx.event, EventKind::Push);
        assert_eq!(ctx.branch.as_deref(), Some("feature/x"));
        assert_eq!(ctx.before_sha.as_deref(), Some(BEFORE));
        assert!(ctx.forced && !ctx.created);
        assert_eq!(ctx.default_branch.as_deref(), Some("main"));
        assert_eq!(
            ctx.run_url.as_deref(),
            Some("https://github.com/o/r/actions/runs/42")
        );
        assert_eq!(ctx.short_sha(), Some("1111111"));
    }

    #[test]
    fn zero_before_means_created() {
        let payload = format!(
            r#"{{"before":"{}","after":"{HEAD}"}}"#,
            super::super::NULL_SHA
        );
        let (_dir, ctx) = run("push", "refs/heads/new", &payload);
        let ctx = ctx.unwrap();
        assert!(ctx.created);
        assert_eq!(ctx.before_sha, None);
    }

    #[test]
    fn tag_push_sets_tag() {
        let payload = format!(r#"{{"before":"{BEFORE}","after":"{HEAD}"}}"#);
        let (_dir, ctx) = run("push", "refs/tags/v1.2.0", &payload);
        let ctx = ctx.unwrap();
        assert_eq!(ctx.event, EventKind::TagPush);
        assert_eq!(ctx.tag.as_deref(), Some("v1.2.0"));
        assert_eq!(ctx.branch, None);
    }

    #[test]
    fn pull_request_payload_fills_head_target_and_number() {
        let payload = r#"{"number":7,"pull_request":{"number":7,
            "head":{"sha":"abc","ref":"topic"},"base":{"sha":"def","ref":"main"}}}"#;
        let (_dir, ctx) = run("pull_request_target", "refs/pull/7/merge", payload);
        let ctx = ctx.unwrap();
        assert_eq!(ctx.event, EventKind::PullRequest);
        assert_eq!(ctx.pr_number, Some(7));
        assert_eq!(ctx.pr_head_sha.as_deref(), Some("abc"));
        assert_eq!(ctx.event_base_sha.as_deref(), Some("def"));
        assert_eq!(ctx.target_branch.as_deref(), Some("main"));
        assert_eq!(ctx.branch.as_deref(), Some("topic"));
        assert_eq!(ctx.sha(), Some("abc"));
    }

    #[test]
    fn merge_group_payload_strips_refs_heads() {
        let payload =
            r#"{"merge_group":{"head_sha":"h","base_sha":"b","base_ref":"refs/heads/main"}}"#;
        let (_dir, ctx) = run(
            "merge_group",
            "refs/heads/gh-readonly-queue/main/pr-1",
            payload,
        );
        let ctx = ctx.unwrap();
        assert_eq!(ctx.event, EventKind::MergeQueue);
        assert_eq!(ctx.head_sha.as_deref(), Some("h"));
        assert_eq!(ctx.event_base_sha.as_deref(), Some("b"));
        assert_eq!(ctx.target_branch.as_deref(), Some("main"));
    }

    #[test]
    fn dispatch_and_schedule_need_no_fields() {
        let (_dir, ctx) = run("workflow_dispatch", "refs/heads/main", "{}");
        assert_eq!(ctx.unwrap().event, EventKind::Manual);
        let (_dir, ctx) = run("schedule", "refs/heads/main", "{}");
        assert_eq!(ctx.unwrap().event, EventKind::Scheduled);
        let (_dir, ctx) = run("release", "refs/tags/v1", "{}");
        assert_eq!(ctx.unwrap().event, EventKind::Other);
    }

    fn payload_error(event: &str, payload: &str) -> String {
        let (dir, ctx) = run(event, "refs/heads/main", payload);
        let message = ctx.unwrap_err().to_string();
        assert!(
            message.contains(dir.path().join("event.json").to_str().unwrap()),
            "{message}"
        );
        message
    }

    #[test]
    fn malformed_payloads_are_errors_naming_the_file() {
        assert!(payload_error("push", "not json").contains("expected"));
        assert!(payload_error("push", "[1, 2]").contains("invalid type"));
        assert!(
            payload_error("push", r#"{"before":5,"after":"x"}"#).contains("invalid type: integer")
        );
        assert!(payload_error("push", r#"{"after":"x"}"#).contains("`before`"));
        assert!(payload_error("pull_request", "{}").contains("`pull_request`"));
        let no_head = r#"{"pull_request":{"base":{"ref":"main","sha":"x"},"head":{}}}"#;
        assert!(payload_error("pull_request", no_head).contains("`pull_request.head.sha`"));
        assert!(
            payload_error("merge_group", r#"{"merge_group":{"head_sha":"h"}}"#)
                .contains("base_ref")
        );
        assert!(
            payload_error("pull_request", r#"{"pull_request":{"number":"seven"}}"#)
                .contains("invalid type")
        );
    }

    #[test]
    fn missing_payload_file_is_an_error_naming_it() {
        let env = Env::from_pairs([
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_EVENT_PATH", "/nonexistent/event.json"),
        ]);
        let message = detect(&env).unwrap_err().to_string();
        assert!(message.contains("/nonexistent/event.json"), "{message}");
    }
}
