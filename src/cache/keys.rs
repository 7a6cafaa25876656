//! CI cache keys: the exact key from the images' inputs digests, and restore-key prefixes
//! (this branch or pull request, then the default branch) for `actions/cache`, GitLab `cache:`
//! or a Jenkins stash.
//!
//! Trust is part of the prefix: `buildopt-v1-trusted-…` for runs on the repository's own refs,
//! `buildopt-v1-untrusted-…` for pull requests (forks included) and runs that execute pull
//! request code with the base's cache scope (`pull_request_target`, `issue_comment`,
//! `workflow_run`). A trusted run's restore keys only name the trusted prefix, so a cache saved
//! by a fork's pull request can never be restored into a default-branch build. A tag (release)
//! run restores nothing. Keys never contain a fork-controlled branch name: pull requests are
//! scoped by number.

use std::fmt::Write as _;

use serde::Serialize;

use super::digest::Digest;
use crate::ci::{CiContext, EventKind};

/// The version of the key scheme; bump it when the archive format changes.
const SCHEME: &str = "buildopt-v1";
/// GitHub's limit on a key's length.
const MAX_KEY_LEN: usize = 512;
/// The part of a branch name kept in a key.
const MAX_SCOPE_LEN: usize = 100;

/// How far a run's cache may be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    /// Code from the repository's own refs.
    Trusted,
    /// Code from a pull request, possibly a fork's.
    Untrusted,
}

/// The keys for one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheKeys {
    pub key: String,
    /// Prefixes to try in order when the exact key misses.
    pub restore_keys: Vec<String>,
    pub trust: Trust,
    /// Whether this run may save its cache (never from untrusted runs' base scope, never from
    /// tag runs).
    pub save: bool,
}

/// The facts a key depends on.
#[derive(Debug, Clone)]
pub struct KeyInput<'a> {
    pub ci: &'a CiContext,
    /// `(image name, inputs digest)` of every image.
    pub images: Vec<(&'a str, &'a str)>,
    /// E.g. `linux-x86_64`: caches are not portable across platforms.
    pub platform: &'a str,
    /// The default branch when the CI system does not say.
    pub default_branch: Option<&'a str>,
}

/// The trust of a run, from its event.
pub fn trust(ci: &CiContext) -> Trust {
    let runs_pr_code_in_base_scope = matches!(
        ci.event_name.as_deref(),
        Some("pull_request_target" | "issue_comment" | "workflow_run")
    );
    if ci.event == EventKind::PullRequest || ci.pr_number.is_some() || runs_pr_code_in_base_scope {
        Trust::Untrusted
    } else {
        Trust::Trusted
    }
}

/// Computes the key and restore keys.
pub fn cache_keys(input: &KeyInput<'_>) -> CacheKeys {
    let trust = trust(input.ci);
    let tier = match trust {
        Trust::Trusted => "trusted",
        Trust::Untrusted => "untrusted",
    };
    let platform = sanitize(input.platform);
    let scope = scope(input.ci);
    let prefix = format!("{SCHEME}-{tier}-{platform}-{scope}-");
    let key = truncate(format!("{prefix}{}", inputs_hash(&input.images)));
    let default_branch = input.ci.default_branch.as_deref().or(input.default_branch);
    let default_prefix =
        default_branch.map(|b| format!("{SCHEME}-trusted-{platform}-branch-{}-", sanitize(b)));
    let is_tag_run = input.ci.event == EventKind::TagPush;
    let mut restore_keys = Vec::new();
    if !is_tag_run {
        restore_keys.push(prefix.clone());
        restore_keys.extend(default_prefix.filter(|p| *p != prefix));
    }
    // Untrusted runs in the base's scope (`pull_request_target`, ...) must not write there.
    let writes_base_scope = trust == Trust::Untrusted && input.ci.pr_number.is_none();
    let save = !is_tag_run && !writes_base_scope;
    CacheKeys {
        key,
        restore_keys,
        trust,
        save,
    }
}

/// `branch-<name>`, `pr-<number>`, `tag-<name>` or `local`.
fn scope(ci: &CiContext) -> String {
    if let Some(number) = ci.pr_number {
        return format!("pr-{number}");
    }
    if let Some(tag) = &ci.tag {
        return format!("tag-{}", sanitize(tag));
    }
    match &ci.branch {
        Some(branch) => format!("branch-{}", sanitize(branch)),
        None => "local".into(),
    }
}

/// A digest of the sorted `(name, inputs digest)` pairs, shortened to 32 hex characters.
fn inputs_hash(images: &[(&str, &str)]) -> String {
    let mut sorted = images.to_vec();
    sorted.sort();
    let mut text = String::new();
    for (name, digest) in sorted {
        let _ = writeln!(text, "{name}\t{digest}");
    }
    Digest::of(text.as_bytes()).hex()[..32].to_string()
}

/// Keeps letters, digits, `.`, `_` and `-`; everything else becomes `-`.
fn sanitize(text: &str) -> String {
    text.chars()
        .take(MAX_SCOPE_LEN)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn truncate(mut key: String) -> String {
    key.truncate(MAX_KEY_LEN);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::Provider;

    fn ci(event: EventKind, branch: Option<&str>, pr: Option<u64>) -> CiContext {
        let mut ci = CiContext::new(Provider::GitHub, event);
        ci.branch = branch.map(str::to_owned);
        ci.pr_number = pr;
        ci.default_branch = Some("main".into());
        ci
    }

    fn keys(ci: &CiContext) -> CacheKeys {
        cache_keys(&KeyInput {
            ci,
            images: vec![("api", "blake3:aa"), ("web", "blake3:bb")],
            platform: "linux-x86_64",
            default_branch: None,
        })
    }

    #[test]
    fn default_branch_push_restores_only_trusted_prefixes() {
        let k = keys(&ci(EventKind::Push, Some("main"), None));
        assert_eq!(k.trust, Trust::Trusted);
        assert!(
            k.key
                .starts_with("buildopt-v1-trusted-linux-x86_64-branch-main-")
        );
        assert_eq!(
            k.restore_keys,
            vec!["buildopt-v1-trusted-linux-x86_64-branch-main-"]
        );
        assert!(k.save);
    }

    #[test]
    fn feature_branch_falls_back_to_the_default_branch() {
        let k = keys(&ci(EventKind::Push, Some("feat/x y"), None));
        assert_eq!(
            k.restore_keys,
            vec![
                "buildopt-v1-trusted-linux-x86_64-branch-feat-x-y-",
                "buildopt-v1-trusted-linux-x86_64-branch-main-",
            ]
        );
    }

    #[test]
    fn fork_pull_request_caches_never_match_a_trusted_restore_key() {
        // A fork names its branch `main` to collide with the default branch's scope.
        let pr = keys(&ci(EventKind::PullRequest, Some("main"), Some(7)));
        assert_eq!(pr.trust, Trust::Untrusted);
        assert!(
            pr.key
                .starts_with("buildopt-v1-untrusted-linux-x86_64-pr-7-")
        );
        let main = keys(&ci(EventKind::Push, Some("main"), None));
        for restore in &main.restore_keys {
            assert!(!pr.key.starts_with(restore), "{restore} matches {}", pr.key);
        }
        // The pull request itself may read the default branch's cache.
        assert_eq!(
            pr.restore_keys[1],
            "buildopt-v1-trusted-linux-x86_64-branch-main-"
        );
    }

    #[test]
    fn pull_request_target_is_untrusted_and_does_not_save() {
        let mut run = ci(EventKind::Other, Some("main"), None);
        run.event_name = Some("pull_request_target".into());
        let k = keys(&run);
        assert_eq!(k.trust, Trust::Untrusted);
        assert!(!k.save);
        assert!(k.key.starts_with("buildopt-v1-untrusted-"));
    }

    #[test]
    fn tag_runs_restore_nothing() {
        let mut run = ci(EventKind::TagPush, None, None);
        run.tag = Some("v1.0".into());
        let k = keys(&run);
        assert!(k.restore_keys.is_empty() && !k.save);
        assert!(k.key.contains("-tag-v1.0-"));
    }

    #[test]
    fn key_depends_on_inputs_not_their_order() {
        let run = ci(EventKind::Push, Some("main"), None);
        let a = cache_keys(&KeyInput {
            ci: &run,
            images: vec![("web", "blake3:bb"), ("api", "blake3:aa")],
            platform: "linux-x86_64",
            default_branch: None,
        });
        assert_eq!(a.key, keys(&run).key);
        let b = cache_keys(&KeyInput {
            ci: &run,
            images: vec![("api", "blake3:ab"), ("web", "blake3:bb")],
            platform: "linux-x86_64",
            default_branch: None,
        });
        assert_ne!(b.key, a.key);
    }

    #[test]
    fn hostile_branch_names_are_sanitised_and_bounded() {
        let long = format!("$(curl x)`;{}", "a".repeat(1000));
        let k = keys(&ci(EventKind::Push, Some(&long), None));
        assert!(k.key.len() <= MAX_KEY_LEN);
        assert!(
            k.key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        );
    }
}
