//! Publishing a RunReport: [`publish`], which `buildopt notify` and `buildopt ci` call.
//! May import `settings::notify`, `report` (renderers), the other `notify` modules and `context`;
//! never `commands`.
//!
//! ```ignore
//! pub fn publish(ctx: &Context, report: &RunReport, request: &PublishRequest)
//!     -> Result<PublishOutcome, Error>
//! ```
//!
//! `PublishRequest::default()` publishes everything the settings enable: the job summary (when
//! `GITHUB_STEP_SUMMARY` is set), the sticky comment (when the run is for a GitHub PR or a GitLab
//! MR), the SARIF files of `BUILDOPT_SARIF`, and Slack (when a webhook is set and the run matches
//! `BUILDOPT_SLACK_ON`). Setting `comment`, `slack` or `summary` publishes only those; `sarif`
//! adds files to upload. The only error is an invalid setting; a failing publisher is a warning
//! in the outcome, and [`PublishOutcome::exit_code`] says whether it should fail the command.
//! Call it from synchronous code, not inside a tokio runtime (the HTTP client is blocking).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::context::{Context, write_stdout};
use crate::error::Error;
use crate::exit;
use crate::notify::github_api::{DEFAULT_COMMENT_AUTHOR, GitHubApi, SarifOutcome, SarifPolling};
use crate::notify::gitlab::{GitLabApi, GitLabToken, JOB_TOKEN_HINT};
use crate::notify::http::{HttpClient, HttpConfig};
use crate::notify::secret::{Redactor, Secret};
use crate::notify::slack;
use crate::report::model::{CiRun, RunReport};
use crate::report::{self, escape, summary};
use crate::settings::notify::NotifySettings;

/// What to publish. The default publishes everything the settings enable.
#[derive(Debug, Clone, Default)]
pub struct PublishRequest {
    /// Publish the sticky comment. When `comment`, `slack` and `summary` are all false, every
    /// channel the settings enable is published.
    pub comment: bool,
    pub slack: bool,
    pub summary: bool,
    /// SARIF files to upload, besides the settings' own when no channel is named.
    pub sarif: Vec<PathBuf>,
}

impl PublishRequest {
    fn everything(&self) -> bool {
        !(self.comment || self.slack || self.summary)
    }
}

/// What was published, and what went wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishOutcome {
    /// One line per thing published ("created comment 3 on pull request #7").
    pub published: Vec<String>,
    /// Publishers that failed or were skipped, and why; never holds a secret.
    pub warnings: Vec<String>,
    /// A publisher failed (not just skipped).
    pub failed: bool,
    /// `fail_on_notify_error` was on.
    pub fail_on_error: bool,
}

impl PublishOutcome {
    /// [`exit::NOTIFY_FAILED`] when a publisher failed and `fail_on_notify_error` is on, else 0.
    pub fn exit_code(&self) -> u8 {
        self.ending().code()
    }

    /// What publishing came to: a failure counts only when `fail_on_notify_error` says so.
    pub fn ending(&self) -> exit::Ending {
        if self.failed && self.fail_on_error {
            exit::Ending::PublisherFailed
        } else {
            exit::Ending::Success
        }
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }

    fn fail(&mut self, message: String) {
        self.failed = true;
        self.warnings.push(message);
    }
}

/// Says on stderr what was published and what failed.
pub fn tell(ctx: &Context, outcome: &PublishOutcome) {
    for line in &outcome.published {
        ctx.info(line);
    }
    for warning in &outcome.warnings {
        // Text from an API answer: one inert line (see `report::escape::console`).
        let _ = writeln!(
            std::io::stderr(),
            "warning: {}",
            crate::report::escape::console_line(warning)
        );
    }
}

/// Reads a RunReport, naming the file when it is missing or is not one.
pub fn read_report(path: &Path) -> Result<RunReport, Error> {
    let error = |message: String| Error::Report {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|err| error(err.to_string()))?;
    serde_json::from_str(&text).map_err(|err| error(err.to_string()))
}

/// Publishes `report` as `request` and the settings say.
pub fn publish(
    ctx: &Context,
    report: &RunReport,
    request: &PublishRequest,
) -> Result<PublishOutcome, Error> {
    publish_with(ctx, report, request, &Tuning::default())
}

/// Timeouts, retries and SARIF polling; tests shrink them.
#[derive(Debug, Clone, Default)]
struct Tuning {
    http: HttpConfig,
    polling: SarifPolling,
}

fn publish_with(
    ctx: &Context,
    report: &RunReport,
    request: &PublishRequest,
    tuning: &Tuning,
) -> Result<PublishOutcome, Error> {
    let settings = &ctx.settings.notify;
    let mut outcome = PublishOutcome {
        fail_on_error: settings.fail_on_error,
        ..PublishOutcome::default()
    };
    let secrets = secrets(settings);
    if settings.github_actions {
        mask(&secrets)?;
    }
    let run = ci_run(ctx, report);
    if request.everything() || request.summary {
        job_summary(settings, report, request.summary, &mut outcome);
    }
    let http = match HttpClient::new(tuning.http.clone(), &secrets) {
        Ok(http) => http,
        Err(err) => {
            outcome.fail(Redactor::new(secrets).redact(&err.to_string()));
            return Ok(outcome);
        }
    };
    let publisher = Publisher {
        settings,
        http: &http,
        run: run.as_ref(),
        report,
    };
    if request.everything() || request.comment {
        publisher.comment(request.comment, &mut outcome);
    }
    let mut sarif = if request.everything() {
        settings.sarif.clone()
    } else {
        Vec::new()
    };
    sarif.extend(request.sarif.iter().cloned());
    publisher.sarif(&sarif, tuning.polling, &mut outcome);
    if request.everything() || request.slack {
        publisher.slack(request.slack, &mut outcome);
    }
    Ok(outcome)
}

fn secrets(settings: &NotifySettings) -> Vec<&Secret> {
    let gitlab = settings.gitlab_token.as_ref().map(GitLabToken::secret);
    [
        settings.github_token.as_ref(),
        gitlab,
        settings.slack_webhook.as_ref(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Tells the GitHub runner to hide each secret, line by line (a multi-line `::add-mask::` masks
/// only its first line).
fn mask(secrets: &[&Secret]) -> Result<(), Error> {
    write_stdout(&mask_commands(secrets.iter().map(|s| s.expose())))
}

/// One `::add-mask::` line per non-blank line of each value.
pub fn mask_commands<'a>(values: impl Iterator<Item = &'a str>) -> String {
    values
        .flat_map(str::lines)
        .filter(|line| !line.trim().is_empty())
        .map(|line| format!("::add-mask::{line}\n"))
        .collect()
}

/// The run's CI facts: from the report, else from this process's CI environment.
fn ci_run(ctx: &Context, report: &RunReport) -> Option<CiRun> {
    if let Some(run) = &report.run.ci {
        return Some(run.clone());
    }
    ctx.settings.ci.run_identity()
}

fn job_summary(
    settings: &NotifySettings,
    report: &RunReport,
    asked: bool,
    outcome: &mut PublishOutcome,
) {
    let Some(path) = &settings.step_summary else {
        if asked {
            outcome.warn("job summary skipped: GITHUB_STEP_SUMMARY is not set".into());
        }
        return;
    };
    let text = summary::job_summary(report);
    let appended = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()));
    match appended {
        Ok(()) => outcome
            .published
            .push(format!("appended the job summary to {}", path.display())),
        Err(err) => outcome.fail(format!("job summary {}: {err}", path.display())),
    }
}

/// The network publishers, sharing one client.
struct Publisher<'a> {
    settings: &'a NotifySettings,
    http: &'a HttpClient,
    run: Option<&'a CiRun>,
    report: &'a RunReport,
}

impl Publisher<'_> {
    fn comment(&self, asked: bool, outcome: &mut PublishOutcome) {
        if !self.settings.comment && !asked {
            return;
        }
        let target = self
            .run
            .and_then(|run| Some((run.provider.as_str(), run.pr_number?)));
        let body = summary::pr_comment(self.report, &self.settings.comment_header);
        match target {
            Some(("github", pr)) => self.github_comment(pr, &body, outcome),
            Some(("gitlab", _)) => self.gitlab_note(&body, outcome),
            _ if asked => outcome.warn("comment skipped: the run is not for a GitHub pull request or a GitLab merge request".into()),
            _ => {}
        }
    }

    fn github_comment(&self, pr: u64, body: &str, outcome: &mut PublishOutcome) {
        let Some((api, _)) = self.github(outcome, "comment") else {
            return;
        };
        let marker = summary::comment_marker(&self.settings.comment_header);
        let author = self
            .settings
            .comment_author
            .as_deref()
            .unwrap_or(DEFAULT_COMMENT_AUTHOR);
        match api.sticky_comment(pr, &marker, author, body) {
            Ok(done) => outcome
                .published
                .push(format!("{done} on pull request #{pr}")),
            Err(err) => outcome.fail(format!("PR comment failed: {err}")),
        }
    }

    fn gitlab_note(&self, body: &str, outcome: &mut PublishOutcome) {
        let settings = self.settings;
        let (Some(base), Some(project), Some(iid)) = (
            settings.gitlab_api_url.as_deref(),
            settings.gitlab_project.as_deref(),
            settings.gitlab_mr_iid,
        ) else {
            outcome.warn(
                "MR note skipped: CI_API_V4_URL, CI_PROJECT_ID or CI_MERGE_REQUEST_IID is not set"
                    .into(),
            );
            return;
        };
        let Some(token) = &settings.gitlab_token else {
            outcome.warn(
                "MR note skipped: neither BUILDOPT_GITLAB_TOKEN nor CI_JOB_TOKEN is set".into(),
            );
            return;
        };
        let api = GitLabApi::new(self.http, base, token, project);
        let marker = summary::comment_marker(&settings.comment_header);
        let result = match &settings.comment_author {
            Some(author) => Ok(author.clone()),
            None => api.viewer(),
        }
        .and_then(|author| api.sticky_note(iid, &marker, &author, body));
        match (result, token) {
            (Ok(done), _) => outcome
                .published
                .push(format!("{done} on merge request !{iid}")),
            (Err(err), GitLabToken::Job(_)) => {
                outcome.fail(format!("MR note failed: {err} ({JOB_TOKEN_HINT})"));
            }
            (Err(err), GitLabToken::Private(_)) => outcome.fail(format!("MR note failed: {err}")),
        }
    }

    /// The GitHub API of this run's repository, or a warning saying what is missing.
    fn github(&self, outcome: &mut PublishOutcome, what: &str) -> Option<(GitHubApi<'_>, &CiRun)> {
        let run = self
            .run
            .filter(|run| run.provider == crate::ci::Provider::GitHub);
        let Some(run) = run else {
            outcome.warn(format!(
                "{what} skipped: the run is not a GitHub Actions run"
            ));
            return None;
        };
        let Some(token) = &self.settings.github_token else {
            outcome.warn(format!(
                "{what} skipped: no GitHub token (set BUILDOPT_GITHUB_TOKEN or GITHUB_TOKEN)"
            ));
            return None;
        };
        let Some(repository) = run.repository.as_deref() else {
            outcome.warn(format!("{what} skipped: the run names no repository"));
            return None;
        };
        match GitHubApi::new(self.http, &self.settings.github_api_url, token, repository) {
            Ok(api) => Some((api, run)),
            Err(err) => {
                outcome.fail(format!("{what} failed: {err}"));
                None
            }
        }
    }

    fn sarif(&self, files: &[PathBuf], polling: SarifPolling, outcome: &mut PublishOutcome) {
        if files.is_empty() {
            return;
        }
        let Some((api, run)) = self.github(outcome, "SARIF upload") else {
            return;
        };
        let (Some(sha), Some(git_ref)) = (run.sha.as_deref(), run.git_ref.as_deref()) else {
            outcome.warn("SARIF upload skipped: the run names no commit or ref".into());
            return;
        };
        for file in files {
            let name = file.display();
            let uploaded = api.upload_sarif(file, sha, git_ref, polling);
            if let Ok((_, trimmed)) = &uploaded
                && !trimmed.is_empty()
            {
                let note = trimmed.note(&name.to_string());
                self.note_in_summary(&note, outcome);
                outcome.warn(note);
            }
            match uploaded.map(|(sarif, _)| sarif) {
                Ok(SarifOutcome::Complete { id }) => {
                    outcome.published.push(format!("uploaded {name} ({id})"));
                }
                Ok(SarifOutcome::Pending { id }) => outcome.warn(format!(
                    "uploaded {name} ({id}); GitHub was still processing it when buildopt stopped waiting"
                )),
                Ok(SarifOutcome::Failed { id, errors }) => outcome.warn(format!(
                    "uploaded {name} ({id}) but GitHub could not process it: {}",
                    self.http.redactor().redact(&errors.join("; "))
                )),
                Err(err) => outcome.fail(format!("SARIF upload failed: {err}")),
            }
        }
    }

    /// Adds a note under the job summary (where the run's readers look), when there is one.
    fn note_in_summary(&self, note: &str, outcome: &mut PublishOutcome) {
        let Some(path) = &self.settings.step_summary else {
            return;
        };
        let line = format!("\n> **Note:** {}\n", escape::markdown_text(note));
        let appended = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(err) = appended {
            outcome.fail(format!("job summary {}: {err}", path.display()));
        }
    }

    fn slack(&self, asked: bool, outcome: &mut PublishOutcome) {
        let Some(webhook) = &self.settings.slack_webhook else {
            if asked {
                outcome.warn("Slack skipped: BUILDOPT_SLACK_WEBHOOK is not set".into());
            }
            return;
        };
        if !slack::wanted(self.settings.slack_on, self.report) {
            return;
        }
        let run_url = self.run.and_then(|run| run.run_url.as_deref());
        let message = report::slack::slack(self.report, run_url);
        match slack::post(self.http, webhook, &message) {
            Ok(()) => outcome.published.push("posted to Slack".into()),
            Err(err) => outcome.fail(format!("Slack failed: {err}")),
        }
    }
}

#[cfg(test)]
mod tests;
