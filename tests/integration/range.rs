//! Base-commit resolution against real repositories, per CI event (reference §8, cases 1–16).

use buildopt::ci::{Base, CiError, Range, RangeRequest, detect, resolve_range};
use buildopt::env::Env;
use buildopt::git::EMPTY_TREE;
use serde_json::json;

use crate::support::TestRepo;

const ZEROS: &str = "0000000000000000000000000000000000000000";

/// A GitHub Actions environment with the payload written next to the repository.
fn github(
    repo: &TestRepo,
    event: &str,
    git_ref: &str,
    sha: &str,
    payload: serde_json::Value,
) -> Env {
    let path = repo.write_event("event.json", &payload);
    Env::from_pairs([
        ("GITHUB_ACTIONS", "true".to_owned()),
        ("GITHUB_EVENT_NAME", event.to_owned()),
        ("GITHUB_REF", git_ref.to_owned()),
        ("GITHUB_SHA", sha.to_owned()),
        ("GITHUB_REPOSITORY", "acme/app".to_owned()),
        ("GITHUB_EVENT_PATH", path.display().to_string()),
    ])
}

fn resolve_with(repo: &TestRepo, env: &Env, req: &RangeRequest) -> Result<Range, CiError> {
    let ci = detect(env).expect("detect");
    resolve_range(&repo.open(), &ci, req)
}

fn resolve(repo: &TestRepo, env: &Env) -> Range {
    resolve_with(repo, env, &RangeRequest::default()).expect("resolve")
}

/// The base SHA, or a panic showing the steps when the resolver chose "build all".
fn base_sha(range: &Range) -> &str {
    match &range.base {
        Base::Commit { sha, .. } => sha,
        Base::BuildAll { reason } => panic!(
            "expected a base commit, got build all: {reason}\n{:#?}",
            range.steps
        ),
    }
}

fn build_all_reason(range: &Range) -> &str {
    match &range.base {
        Base::BuildAll { reason } => reason,
        Base::Commit { sha, reason } => panic!(
            "expected build all, got {sha} ({reason})\n{:#?}",
            range.steps
        ),
    }
}

/// Sorted paths changed from the range's base to its head.
fn changed(repo: &TestRepo, range: &Range) -> Vec<String> {
    let mut paths: Vec<String> = repo
        .open()
        .diff(base_sha(range), &range.head)
        .expect("diff")
        .into_iter()
        .map(|c| c.path)
        .collect();
    paths.sort();
    paths
}

fn push_payload(before: &str, after: &str, forced: bool) -> serde_json::Value {
    json!({"before": before, "after": after, "forced": forced, "created": before == ZEROS,
           "repository": {"default_branch": "main", "full_name": "acme/app"}})
}

/// main: base → m1 (main.txt); feature from base: f1 (f1.txt), f2 (f2.txt). HEAD on feature.
fn forked_repo() -> (TestRepo, String, String, String) {
    let repo = TestRepo::new();
    let base = repo.commit_file("README", "r\n", "base");
    repo.checkout_new("feature");
    repo.commit_file("f1.txt", "1\n", "f1");
    let f2 = repo.commit_file("f2.txt", "2\n", "f2");
    repo.checkout("main");
    let m1 = repo.commit_file("main.txt", "m\n", "m1");
    repo.checkout("feature");
    (repo, base, m1, f2)
}

#[test]
fn push_of_several_commits_covers_all_of_them() {
    let repo = TestRepo::new();
    let before = repo.commit_file("a.txt", "a\n", "a");
    repo.commit_file("b.txt", "b\n", "b");
    let after = repo.commit_file("c.txt", "c\n", "c");
    let env = github(
        &repo,
        "push",
        "refs/heads/main",
        &after,
        push_payload(&before, &after, false),
    );
    let range = resolve(&repo, &env);
    assert_eq!(base_sha(&range), before);
    assert_eq!(range.head, after);
    assert_eq!(changed(&repo, &range), ["b.txt", "c.txt"]);
}

#[test]
fn first_push_of_a_branch_diffs_from_the_fork_point_not_head_parent() {
    let (repo, base, _m1, f2) = forked_repo();
    let env = github(
        &repo,
        "push",
        "refs/heads/feature",
        &f2,
        push_payload(ZEROS, &f2, false),
    );
    let range = resolve(&repo, &env);
    assert_eq!(base_sha(&range), base, "{:#?}", range.steps);
    assert_eq!(changed(&repo, &range), ["f1.txt", "f2.txt"]);
}

#[test]
fn first_push_of_a_branch_without_new_commits_builds_nothing() {
    let repo = TestRepo::new();
    let tip = repo.commit_file("a.txt", "a\n", "a");
    repo.checkout_new("copy");
    let env = github(
        &repo,
        "push",
        "refs/heads/copy",
        &tip,
        push_payload(ZEROS, &tip, false),
    );
    let range = resolve(&repo, &env);
    assert_eq!(base_sha(&range), tip);
    assert!(changed(&repo, &range).is_empty());
}

#[test]
fn force_push_after_rebase_excludes_upstream_changes() {
    let (repo, _base, m1, old_tip) = forked_repo();
    repo.git(&["tag", "old-tip"]); // keeps the pre-rebase commits, as a CI fetch of `before` would
    repo.git(&["rebase", "-q", "main"]);
    let after = repo.sha("HEAD");
    let env = github(
        &repo,
        "push",
        "refs/heads/feature",
        &after,
        push_payload(&old_tip, &after, true),
    );
    let range = resolve(&repo, &env);
    assert_eq!(base_sha(&range), m1, "{:#?}", range.steps);
    assert_eq!(changed(&repo, &range), ["f1.txt", "f2.txt"]);
}

#[test]
fn force_push_dropping_commits_on_the_default_branch_diffs_from_the_old_fork() {
    let repo = TestRepo::new();
    let keep = repo.commit_file("a.txt", "a\n", "a");
    let dropped = repo.commit_file("b.txt", "b\n", "b");
    repo.git(&["reset", "-q", "--hard", &keep]);
    let after = repo.commit_file("c.txt", "c\n", "c");
    let env = github(
        &repo,
        "push",
        "refs/heads/main",
        &after,
        push_payload(&dropped, &after, true),
    );
    let range = resolve(&repo, &env);
    assert_eq!(base_sha(&range), keep);
    assert_eq!(changed(&repo, &range), ["c.txt"]);
}

#[test]
fn push_whose_before_is_absent_locally_does_not_trust_rev_parse() {
    let repo = TestRepo::new();
    let head = repo.commit_file("a.txt", "a\n", "a");
    repo.commit_file("b.txt", "b\n", "b");
    let missing = "0123456789abcdef0123456789abcdef01234567";
    assert_eq!(
        repo.git(&["rev-parse", missing]),
        missing,
        "plain rev-parse echoes a missing SHA"
    );
    assert_eq!(repo.open().resolve_commit(missing).unwrap(), None);
    let head_now = repo.sha("HEAD");
    let env = github(
        &repo,
        "push",
        "refs/heads/main",
        &head_now,
        push_payload(missing, &head_now, false),
    );
    let range = resolve(&repo, &env);
    assert!(
        build_all_reason(&range).contains("default branch"),
        "{:?}",
        range.base
    );
    assert!(
        range
            .steps
            .iter()
            .any(|s| s.contains("0123456 is not available")),
        "{:#?}",
        range.steps
    );
    assert_ne!(head, head_now);
}

#[test]
fn pull_request_whose_base_moved_uses_the_merge_base() {
    let (repo, base, _m1, f2) = forked_repo();
    let payload = json!({"number": 5, "pull_request": {"number": 5,
        "head": {"sha": f2, "ref": "feature"}, "base": {"sha": base, "ref": "main"}}});
    let env = github(&repo, "pull_request", "refs/pull/5/merge", &f2, payload);
    let range = resolve(&repo, &env);
    assert_eq!(base_sha(&range), base);
    assert_eq!(range.head, f2);
    assert_eq!(
        changed(&repo, &range),
        ["f1.txt", "f2.txt"],
        "main.txt must not leak in"
    );
}

#[test]
fn pull_request_merge_ref_checkout_diffs_against_the_first_parent() {
    let (repo, base, m1, f2) = forked_repo();
    repo.checkout(&m1);
    repo.git(&["merge", "-q", "--no-ff", "-m", "Merge f2 into m1", &f2]);
    let merge = repo.sha("HEAD");
    let payload = json!({"pull_request": {"number": 5,
        "head": {"sha": f2, "ref": "feature"}, "base": {"sha": base, "ref": "main"}}});
    let env = github(&repo, "pull_request", "refs/pull/5/merge", &merge, payload);
    let range = resolve(&repo, &env);
    assert_eq!(base_sha(&range), m1);
    assert_eq!(range.head, merge);
    assert_eq!(changed(&repo, &range), ["f1.txt", "f2.txt"]);
}

#[test]
fn merge_queue_batch_covers_every_pull_request_in_the_group() {
    let repo = TestRepo::new();
    let main = repo.commit_file("README", "r\n", "main");
    repo.checkout_new("gh-readonly-queue/main/pr-1");
    let first = repo.commit_file("pr1.txt", "1\n", "PR 1");
    let second = repo.commit_file("pr2.txt", "2\n", "PR 2");
    let payload = json!({"merge_group": {"head_sha": second, "base_sha": first,
        "base_ref": "refs/heads/main", "head_ref": "refs/heads/gh-readonly-queue/main/pr-2"}});
    let env = github(
        &repo,
        "merge_group",
        "refs/heads/gh-readonly-queue/main/pr-2",
        &second,
        payload,
    );
    let range = resolve(&repo, &env);
    assert_eq!(base_sha(&range), main);
    assert_eq!(changed(&repo, &range), ["pr1.txt", "pr2.txt"]);
}

#[test]
fn tag_push_diffs_from_the_nearest_ancestor_tag_not_the_newest_by_date() {
    let repo = TestRepo::new();
    let v1 = repo.commit_file("a.txt", "1\n", "one");
    repo.annotated_tag("v1.0", "release 1.0");
    repo.commit_file("a.txt", "2\n", "two");
    repo.checkout_new("hotfix");
    repo.git(&["reset", "-q", "--hard", "v1.0"]);
    repo.commit_file("hot.txt", "h\n", "hotfix");
    repo.tag("v1.0.1"); // lightweight, and newer by date than v1.0, but not an ancestor of v1.1
    repo.checkout("main");
    let v11 = repo.commit_file("b.txt", "b\n", "three");
    repo.annotated_tag("v1.1", "release 1.1");
    let env = github(
        &repo,
        "push",
        "refs/tags/v1.1",
        &v11,
        json!({"before": ZEROS, "after": v11}),
    );
    let range = resolve(&repo, &env);
    assert_eq!(
        base_sha(&range),
        v1,
        "annotated v1.0 must be peeled to its commit"
    );
    assert!(matches!(&range.base, Base::Commit { reason, .. } if reason.contains("v1.0")));
    assert_eq!(changed(&repo, &range), ["a.txt", "b.txt"]);

    let v12 = repo.commit_file("c.txt", "c\n", "four");
    repo.tag("v1.2");
    let env = github(
        &repo,
        "push",
        "refs/tags/v1.2",
        &v12,
        json!({"before": ZEROS, "after": v12}),
    );
    let range = resolve(&repo, &env);
    assert_eq!(
        base_sha(&range),
        v11,
        "lightweight tag after an annotated one"
    );
}

#[test]
fn first_tag_builds_everything() {
    let repo = TestRepo::new();
    repo.commit_file("a.txt", "1\n", "one");
    let head = repo.commit_file("a.txt", "2\n", "two");
    repo.annotated_tag("v0.1.0", "first");
    let env = github(
        &repo,
        "push",
        "refs/tags/v0.1.0",
        &head,
        json!({"before": ZEROS, "after": head}),
    );
    let range = resolve(&repo, &env);
    assert!(build_all_reason(&range).contains("first tag"));
}

#[test]
fn dispatch_and_schedule_build_everything_unless_a_base_is_given() {
    let repo = TestRepo::new();
    let first = repo.commit_file("a.txt", "1\n", "one");
    let head = repo.commit_file("b.txt", "2\n", "two");
    for event in ["workflow_dispatch", "schedule"] {
        let env = github(&repo, event, "refs/heads/main", &head, json!({}));
        let range = resolve(&repo, &env);
        assert!(build_all_reason(&range).contains(event));

        let req = RangeRequest {
            base: Some("HEAD~1".into()),
            ..RangeRequest::default()
        };
        let range = resolve_with(&repo, &env, &req).unwrap();
        assert_eq!(base_sha(&range), first);
        assert_eq!(changed(&repo, &range), ["b.txt"]);
    }
}

#[test]
fn an_override_that_is_not_a_commit_is_an_error_naming_it() {
    let repo = TestRepo::new();
    repo.commit_file("a.txt", "1\n", "one");
    let env = Env::default();
    let req = RangeRequest {
        base: Some("no-such-branch".into()),
        ..RangeRequest::default()
    };
    let message = resolve_with(&repo, &env, &req).unwrap_err().to_string();
    assert!(
        message.contains("--base") && message.contains("no-such-branch"),
        "{message}"
    );
    let req = RangeRequest {
        head: Some("HEAD:a.txt".into()),
        ..RangeRequest::default()
    };
    let message = resolve_with(&repo, &env, &req).unwrap_err().to_string();
    assert!(message.contains("--head"), "{message}");
}

#[test]
fn identical_base_and_head_is_an_empty_diff() {
    let repo = TestRepo::new();
    let head = repo.commit_file("a.txt", "1\n", "one");
    let env = github(
        &repo,
        "push",
        "refs/heads/main",
        &head,
        push_payload(&head, &head, false),
    );
    let range = resolve(&repo, &env);
    assert_eq!(base_sha(&range), head);
    assert!(changed(&repo, &range).is_empty());
}

#[test]
fn initial_commit_diffs_against_the_empty_tree() {
    let repo = TestRepo::new();
    let head = repo.commit_file("app/Dockerfile", "FROM scratch\n", "initial");
    let env = github(
        &repo,
        "push",
        "refs/heads/main",
        &head,
        push_payload(ZEROS, &head, false),
    );
    let range = resolve(&repo, &env);
    assert_eq!(
        range.base,
        Base::Commit {
            sha: EMPTY_TREE.into(),
            reason: "initial commit".into()
        }
    );
    assert_eq!(changed(&repo, &range), ["app/Dockerfile"]);
}

/// origin: root → x (fork point) → 120 commits on main; feature from x: f1, f2.
fn deep_fork_clone(rounds: u32) -> (TestRepo, TestRepo, String, Range) {
    let origin = TestRepo::new();
    origin.commit_file("README", "r\n", "root");
    let fork = origin.commit_file("x.txt", "x\n", "fork point");
    origin.checkout_new("feature");
    origin.commit_file("f1.txt", "1\n", "f1");
    let f2 = origin.commit_file("f2.txt", "2\n", "f2");
    origin.checkout("main");
    origin.commit_file("main.txt", "m\n", "main work");
    origin.empty_commits(120, "main");
    origin.push_to_origin();
    let clone = origin.shallow_clone("ci", 1);
    clone.checkout("feature");
    assert_eq!(clone.git(&["rev-parse", "--is-shallow-repository"]), "true");
    let payload = json!({"pull_request": {"number": 9,
        "head": {"sha": f2, "ref": "feature"}, "base": {"sha": origin.sha("main"), "ref": "main"}}});
    let env = github(&clone, "pull_request", "refs/pull/9/merge", &f2, payload);
    let req = RangeRequest {
        max_deepen_rounds: rounds,
        ..RangeRequest::default()
    };
    let range = resolve_with(&clone, &env, &req).expect("resolve");
    (origin, clone, fork, range)
}

#[test]
fn shallow_clone_is_deepened_until_the_merge_base_appears() {
    let (_origin, clone, fork, range) = deep_fork_clone(6);
    assert_eq!(base_sha(&range), fork, "{:#?}", range.steps);
    let deepened: Vec<&String> = range
        .steps
        .iter()
        .filter(|s| s.starts_with("deepened by"))
        .collect();
    assert_eq!(deepened.len(), 2, "50 then 100: {:#?}", range.steps);
    assert_eq!(changed(&clone, &range), ["f1.txt", "f2.txt"]);
}

#[test]
fn shallow_clone_beyond_the_deepen_bound_builds_everything() {
    let (_origin, _clone, _fork, range) = deep_fork_clone(1);
    let reason = build_all_reason(&range);
    assert!(
        reason.starts_with("merge base not found within the deepen bound"),
        "{reason}"
    );
    assert!(
        range
            .steps
            .iter()
            .any(|s| s == "deepened by 50: 2 -> 55 commits"),
        "{:#?}",
        range.steps
    );
}

fn gitlab(pairs: &[(&str, &str)]) -> Env {
    Env::from_pairs([("GITLAB_CI", "true")].iter().chain(pairs).copied())
}

#[test]
fn gitlab_merge_request_ignores_a_stale_diff_base() {
    let (repo, base, m1, f2) = forked_repo();
    let stale = repo.sha("main~1"); // == base here: retarget from a branch that forked earlier
    let other = {
        repo.checkout(&m1);
        repo.checkout_new("release");
        let r = repo.commit_file("release.txt", "r\n", "release");
        repo.checkout("feature");
        r
    };
    let env = gitlab(&[
        ("CI_PIPELINE_SOURCE", "merge_request_event"),
        ("CI_COMMIT_SHA", &f2),
        ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main"),
        ("CI_MERGE_REQUEST_DIFF_BASE_SHA", &other),
    ]);
    let range = resolve(&repo, &env);
    assert_eq!(base_sha(&range), base);
    assert!(
        range.steps.iter().any(|s| s.contains("stale")),
        "{:#?}",
        range.steps
    );
    assert_eq!(changed(&repo, &range), ["f1.txt", "f2.txt"]);
    assert_eq!(stale, base);

    let env = gitlab(&[
        ("CI_PIPELINE_SOURCE", "merge_request_event"),
        ("CI_COMMIT_SHA", &f2),
        ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "gone"),
        ("CI_MERGE_REQUEST_DIFF_BASE_SHA", &base),
    ]);
    let range = resolve(&repo, &env);
    assert_eq!(
        base_sha(&range),
        base,
        "diff base is the fallback when the target is unavailable"
    );
}

#[test]
fn gitlab_branch_pipelines() {
    let (repo, base, _m1, f2) = forked_repo();
    let push = |before: &str| {
        gitlab(&[
            ("CI_PIPELINE_SOURCE", "push"),
            ("CI_COMMIT_SHA", &f2),
            ("CI_COMMIT_BRANCH", "feature"),
            ("CI_COMMIT_BEFORE_SHA", before),
            ("CI_DEFAULT_BRANCH", "main"),
        ])
    };
    let range = resolve(&repo, &push(ZEROS));
    assert_eq!(
        base_sha(&range),
        base,
        "zero before: fork point from CI_DEFAULT_BRANCH"
    );
    let f1 = repo.sha("feature~1");
    let range = resolve(&repo, &push(&f1));
    assert_eq!(base_sha(&range), f1);
    assert_eq!(changed(&repo, &range), ["f2.txt"]);

    let schedule = gitlab(&[
        ("CI_PIPELINE_SOURCE", "schedule"),
        ("CI_COMMIT_SHA", &f2),
        ("CI_COMMIT_BEFORE_SHA", ZEROS),
    ]);
    assert!(build_all_reason(&resolve(&repo, &schedule)).contains("schedule"));
}

#[test]
fn jenkins_change_request_and_branch_builds() {
    let (repo, base, _m1, f2) = forked_repo();
    let jenkins = |extra: &[(&str, &str)]| {
        let common = [
            ("JENKINS_URL", "http://jenkins/"),
            ("GIT_COMMIT", f2.as_str()),
            ("BRANCH_NAME", "feature"),
        ];
        Env::from_pairs(common.iter().chain(extra).copied())
    };
    let range = resolve(
        &repo,
        &jenkins(&[("CHANGE_ID", "3"), ("CHANGE_TARGET", "main")]),
    );
    assert_eq!(base_sha(&range), base);

    let f1 = repo.sha("feature~1");
    let range = resolve(&repo, &jenkins(&[("GIT_PREVIOUS_SUCCESSFUL_COMMIT", &f1)]));
    assert_eq!(base_sha(&range), f1);
    assert_eq!(changed(&repo, &range), ["f2.txt"]);

    let range = resolve(&repo, &jenkins(&[]));
    assert!(build_all_reason(&range).contains("first build of this branch"));

    let req = RangeRequest {
        default_branch: Some("main".into()),
        ..RangeRequest::default()
    };
    let range = resolve_with(&repo, &jenkins(&[]), &req).unwrap();
    assert_eq!(
        base_sha(&range),
        base,
        "first build compares with the default branch when known"
    );
}

#[test]
fn local_runs_use_the_merge_base_with_main_or_ask_for_a_base() {
    let (repo, base, _m1, _f2) = forked_repo();
    let range = resolve(&repo, &Env::default());
    assert_eq!(base_sha(&range), base, "{:#?}", range.steps);

    repo.checkout("main");
    let range = resolve(&repo, &Env::default());
    assert_eq!(build_all_reason(&range), "no base: pass --base");
}

#[test]
fn pull_request_merge_commit_in_a_depth_one_clone_is_deepened_to_see_its_parents() {
    let (origin, _base, m1, f2) = forked_repo();
    origin.checkout(&m1);
    origin.git(&["merge", "-q", "--no-ff", "-m", "Merge f2 into m1", &f2]);
    let merge = origin.sha("HEAD");
    origin.checkout("main");
    origin.push_to_origin();
    origin.git(&[
        "push",
        "-q",
        "origin",
        &format!("{merge}:refs/pull/5/merge"),
    ]);
    let clone = origin.shallow_clone("ci", 1);
    clone.git(&["fetch", "-q", "--depth=1", "origin", "refs/pull/5/merge"]);
    clone.checkout("FETCH_HEAD");
    let payload = json!({"pull_request": {"number": 5,
        "head": {"sha": f2, "ref": "feature"}, "base": {"sha": m1, "ref": "main"}}});
    let env = github(&clone, "pull_request", "refs/pull/5/merge", &merge, payload);
    let range = resolve(&clone, &env);
    assert_eq!(base_sha(&range), m1, "{:#?}", range.steps);
    assert_eq!(range.head, merge);
    assert_eq!(changed(&clone, &range), ["f1.txt", "f2.txt"]);
}

#[test]
fn push_in_a_depth_one_clone_fetches_the_previous_tip() {
    let origin = TestRepo::new();
    origin.commit_file("a.txt", "a\n", "a");
    let before = origin.commit_file("b.txt", "b\n", "b");
    origin.commit_file("c.txt", "c\n", "c");
    let after = origin.commit_file("d.txt", "d\n", "d");
    origin.push_to_origin();
    let clone = origin.shallow_clone("ci", 1);
    assert_eq!(clone.open().resolve_commit(&before).unwrap(), None);
    let env = github(
        &clone,
        "push",
        "refs/heads/main",
        &after,
        push_payload(&before, &after, false),
    );
    let range = resolve(&clone, &env);
    assert_eq!(base_sha(&range), before, "{:#?}", range.steps);
    assert!(
        range
            .steps
            .iter()
            .any(|s| s.starts_with("fetched missing commit")),
        "{:#?}",
        range.steps
    );
    assert_eq!(changed(&clone, &range), ["c.txt", "d.txt"]);
}
