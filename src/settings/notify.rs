//! The notification settings: the sticky comment, Slack, SARIF uploads, the tokens and the CI's
//! API endpoints, and whether a failing publisher fails the command.
//!
//! Each setting comes from `BUILDOPT_<NAME>`, then its alias (`SLACK_WEBHOOK`, `GITHUB_TOKEN`),
//! then (in GitHub Actions) `INPUT_<NAME>`, then the `[notify]` table of `buildopt.toml`, then the
//! default. Secrets come only from the environment. Resolution is pure.

use std::path::{Path, PathBuf};

use super::file::{FileOptions, NotifyOptions};
use super::resolve::{Layers, parse_bool};
use super::vars::{self, SettingVar};
use super::{ConfigError, Source};
use crate::env::Env;
use crate::notify::github_api::DEFAULT_API_URL;
use crate::notify::gitlab::GitLabToken;
use crate::notify::secret::Secret;

/// When Slack hears about a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlackOn {
    Always,
    /// An image failed or the run was interrupted (the default).
    Failure,
    /// Something was built or failed.
    Change,
}

/// The resolved notification settings.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// Keep a sticky comment on the pull or merge request (only runs for one have somewhere to
    /// put it). Default on.
    pub comment: bool,
    /// Tells this sticky comment from other buildopt comments on the same PR. Default `default`.
    pub comment_header: String,
    /// The login whose comment is updated; `None`: GitHub's `github-actions[bot]`, or on GitLab
    /// the token's own user.
    pub comment_author: Option<String>,
    pub slack_webhook: Option<Secret>,
    pub slack_on: SlackOn,
    /// SARIF files to upload, absolute.
    pub sarif: Vec<PathBuf>,
    /// A failing publisher fails the command (exit 5); default off: it is a warning.
    pub fail_on_error: bool,
    pub github_token: Option<Secret>,
    /// `GITHUB_API_URL`, else github.com's API.
    pub github_api_url: String,
    pub gitlab_token: Option<GitLabToken>,
    /// `CI_API_V4_URL`.
    pub gitlab_api_url: Option<String>,
    /// `CI_PROJECT_ID`.
    pub gitlab_project: Option<String>,
    /// `CI_MERGE_REQUEST_IID`.
    pub gitlab_mr_iid: Option<u64>,
    /// `GITHUB_STEP_SUMMARY`: the file the job summary is appended to.
    pub step_summary: Option<PathBuf>,
    /// Running in GitHub Actions: secrets are masked with `::add-mask::` before use.
    pub github_actions: bool,
}

impl NotifySettings {
    /// Resolves the settings; relative SARIF paths are taken from `base` (the `-C` folder).
    pub fn resolve(env: &Env, file: &FileOptions, base: &Path) -> Result<Self, ConfigError> {
        let layers = Layers::of(env);
        let github_actions = layers.github_inputs;
        let table = file.notify.clone().unwrap_or_default();
        let pick = |var: &SettingVar, file_value: Option<String>| -> Result<_, ConfigError> {
            Ok(layers
                .pick(var, None, file_value, parse_text)?
                .map(|(value, _)| value))
        };
        Ok(Self {
            comment: layers
                .pick(&vars::COMMENT, None, table.comment, parse_bool)?
                .is_none_or(|(on, _)| on),
            comment_header: pick(&vars::COMMENT_HEADER, table.comment_header.clone())?
                .unwrap_or_else(|| "default".into()),
            comment_author: pick(&vars::COMMENT_AUTHOR, table.comment_author.clone())?,
            slack_webhook: pick(&vars::SLACK_WEBHOOK, None)?.map(Secret::new),
            slack_on: slack_on(&layers, &table)?,
            sarif: sarif_paths(&layers, &table, base)?,
            fail_on_error: layers
                .pick(
                    &vars::FAIL_ON_NOTIFY_ERROR,
                    None,
                    table.fail_on_error,
                    parse_bool,
                )?
                .is_some_and(|(on, _)| on),
            github_token: pick(&vars::GITHUB_TOKEN, None)?.map(Secret::new),
            github_api_url: env.get("GITHUB_API_URL").unwrap_or(DEFAULT_API_URL).into(),
            gitlab_token: gitlab_token(env, pick(&vars::GITLAB_TOKEN, None)?),
            gitlab_api_url: env.get("CI_API_V4_URL").map(str::to_string),
            gitlab_project: env.get("CI_PROJECT_ID").map(str::to_string),
            gitlab_mr_iid: merge_request_iid(env)?,
            step_summary: env.get("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            github_actions,
        })
    }
}

fn slack_on(layers: &Layers<'_>, table: &NotifyOptions) -> Result<SlackOn, ConfigError> {
    let file_value = match &table.slack_on {
        Some(raw) => Some(parse_slack_on(raw).map_err(|reason| ConfigError {
            setting: vars::SLACK_ON.setting,
            value: raw.clone(),
            origin: Source::File,
            reason,
        })?),
        None => None,
    };
    Ok(layers
        .pick(&vars::SLACK_ON, None, file_value, parse_slack_on)?
        .map_or(SlackOn::Failure, |(on, _)| on))
}

/// `BUILDOPT_SARIF` holds paths separated by commas or newlines (a multi-line action input).
fn sarif_paths(
    layers: &Layers<'_>,
    table: &NotifyOptions,
    base: &Path,
) -> Result<Vec<PathBuf>, ConfigError> {
    let paths = layers
        .pick(&vars::SARIF, None, table.sarif.clone(), |raw| {
            Ok(raw
                .split([',', '\n'])
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect())
        })?
        .map(|(paths, _)| paths)
        .unwrap_or_default();
    Ok(paths.iter().map(|p| base.join(p)).collect())
}

/// An access token when one is set, else the job's own token.
fn gitlab_token(env: &Env, private: Option<String>) -> Option<GitLabToken> {
    match private {
        Some(token) => Some(GitLabToken::Private(Secret::new(token))),
        None => env
            .get("CI_JOB_TOKEN")
            .map(|token| GitLabToken::Job(Secret::new(token))),
    }
}

fn merge_request_iid(env: &Env) -> Result<Option<u64>, ConfigError> {
    let Some(raw) = env.get("CI_MERGE_REQUEST_IID") else {
        return Ok(None);
    };
    raw.trim().parse().map(Some).map_err(|_| ConfigError {
        setting: "merge_request_iid",
        value: raw.to_string(),
        origin: Source::Env("CI_MERGE_REQUEST_IID".into()),
        reason: "expected a whole number".into(),
    })
}

fn parse_text(raw: &str) -> Result<String, String> {
    Ok(raw.trim().to_string())
}

fn parse_slack_on(raw: &str) -> Result<SlackOn, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "always" => Ok(SlackOn::Always),
        "failure" => Ok(SlackOn::Failure),
        "change" => Ok(SlackOn::Change),
        _ => Err("expected always, failure or change".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(env: &[(&str, &str)], table: NotifyOptions) -> Result<NotifySettings, ConfigError> {
        let file = FileOptions {
            notify: Some(table),
            ..FileOptions::default()
        };
        NotifySettings::resolve(
            &Env::from_pairs(env.iter().copied()),
            &file,
            Path::new("/repo"),
        )
    }

    #[test]
    fn defaults() {
        let s = resolve(&[], NotifyOptions::default()).expect("ok");
        assert!(s.comment && !s.fail_on_error && !s.github_actions);
        assert_eq!(s.comment_header, "default");
        assert_eq!((s.comment_author, s.slack_on), (None, SlackOn::Failure));
        assert!(s.slack_webhook.is_none() && s.github_token.is_none() && s.sarif.is_empty());
        assert_eq!(s.github_api_url, "https://api.github.com");
        assert!(s.gitlab_token.is_none() && s.step_summary.is_none());
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let table = NotifyOptions {
            comment: Some(false),
            comment_header: Some("file".into()),
            slack_on: Some("always".into()),
            sarif: Some(vec!["a.sarif".into()]),
            fail_on_error: Some(true),
            ..NotifyOptions::default()
        };
        let s = resolve(&[], table.clone()).expect("ok");
        assert!(!s.comment && s.fail_on_error);
        assert_eq!(
            (s.comment_header.as_str(), s.slack_on),
            ("file", SlackOn::Always)
        );
        assert_eq!(s.sarif, [PathBuf::from("/repo/a.sarif")]);
        let env = [
            ("BUILDOPT_COMMENT", "true"),
            ("BUILDOPT_COMMENT_HEADER", "images"),
            ("BUILDOPT_SLACK_ON", "change"),
            ("BUILDOPT_SARIF", "b.sarif,\n/abs/c.sarif\n"),
            ("BUILDOPT_FAIL_ON_NOTIFY_ERROR", "no"),
        ];
        let s = resolve(&env, table).expect("ok");
        assert!(s.comment && !s.fail_on_error);
        assert_eq!(
            (s.comment_header.as_str(), s.slack_on),
            ("images", SlackOn::Change)
        );
        assert_eq!(
            s.sarif,
            [
                PathBuf::from("/repo/b.sarif"),
                PathBuf::from("/abs/c.sarif")
            ]
        );
    }

    #[test]
    fn secrets_follow_buildopt_then_legacy_then_action_inputs() {
        let env = [
            ("SLACK_WEBHOOK", "https://legacy"),
            ("GITHUB_TOKEN", "ghs_1"),
        ];
        let s = resolve(&env, NotifyOptions::default()).expect("ok");
        assert_eq!(s.slack_webhook, Some(Secret::new("https://legacy")));
        assert_eq!(s.github_token, Some(Secret::new("ghs_1")));
        let env = [
            ("BUILDOPT_SLACK_WEBHOOK", "https://new"),
            ("SLACK_WEBHOOK", "https://legacy"),
            ("BUILDOPT_GITHUB_TOKEN", "ghp_2"),
            ("GITHUB_TOKEN", "ghs_1"),
        ];
        let s = resolve(&env, NotifyOptions::default()).expect("ok");
        assert_eq!(s.slack_webhook, Some(Secret::new("https://new")));
        assert_eq!(s.github_token, Some(Secret::new("ghp_2")));
        let inputs = [("INPUT_GITHUB_TOKEN", "ghs_3")];
        let s = resolve(&inputs, NotifyOptions::default()).expect("ok");
        assert!(s.github_token.is_none(), "inputs only in GitHub Actions");
        let inputs = [("INPUT_GITHUB_TOKEN", "ghs_3"), ("GITHUB_ACTIONS", "true")];
        let s = resolve(&inputs, NotifyOptions::default()).expect("ok");
        assert_eq!(s.github_token, Some(Secret::new("ghs_3")));
    }

    #[test]
    fn gitlab_prefers_an_access_token_over_the_job_token() {
        let env = [
            ("CI_JOB_TOKEN", "job"),
            ("CI_API_V4_URL", "https://gitlab.example/api/v4"),
            ("CI_PROJECT_ID", "42"),
            ("CI_MERGE_REQUEST_IID", "7"),
        ];
        let s = resolve(&env, NotifyOptions::default()).expect("ok");
        assert!(matches!(&s.gitlab_token, Some(GitLabToken::Job(t)) if t.expose() == "job"));
        assert_eq!(
            (s.gitlab_project.as_deref(), s.gitlab_mr_iid),
            (Some("42"), Some(7))
        );
        let env = [("CI_JOB_TOKEN", "job"), ("BUILDOPT_GITLAB_TOKEN", "glpat")];
        let s = resolve(&env, NotifyOptions::default()).expect("ok");
        assert!(matches!(&s.gitlab_token, Some(GitLabToken::Private(t)) if t.expose() == "glpat"));
    }

    #[test]
    fn bad_values_name_their_source() {
        let e = resolve(
            &[("BUILDOPT_SLACK_ON", "sometimes")],
            NotifyOptions::default(),
        )
        .expect_err("bad");
        assert!(e.to_string().contains("$BUILDOPT_SLACK_ON"), "{e}");
        let table = NotifyOptions {
            slack_on: Some("never".into()),
            ..NotifyOptions::default()
        };
        let e = resolve(&[], table).expect_err("bad");
        assert_eq!((e.setting, &e.origin), ("slack_on", &Source::File));
        let e =
            resolve(&[("BUILDOPT_COMMENT", "maybe")], NotifyOptions::default()).expect_err("bad");
        assert_eq!(e.setting, "comment");
        let e =
            resolve(&[("CI_MERGE_REQUEST_IID", "x")], NotifyOptions::default()).expect_err("bad");
        assert!(e.to_string().contains("CI_MERGE_REQUEST_IID"), "{e}");
    }
}
