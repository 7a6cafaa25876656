//! GitHub's REST API: the sticky pull request comment and SARIF uploads to code scanning.
//!
//! The API base comes from `GITHUB_API_URL` (so GitHub Enterprise Server works), every call
//! sends `Authorization: Bearer`, `Accept: application/vnd.github+json` and
//! `X-GitHub-Api-Version`. Comments are listed 100 per page following `Link: rel="next"`, because
//! an unpaginated listing (30 per page) posts a new comment on every run once a PR has more.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use base64::Engine;

use super::http::{Call, HttpClient, HttpError};
use super::sarif::{self, Trimmed};
use super::secret::Secret;
use super::sticky::{self, RestThread, StickyOutcome};

/// github.com's API, when `GITHUB_API_URL` is not set.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// The REST API version buildopt is written against.
pub const API_VERSION: &str = "2022-11-28";
/// Who posts with the Actions `GITHUB_TOKEN`.
pub const DEFAULT_COMMENT_AUTHOR: &str = "github-actions[bot]";
/// GitHub rejects SARIF uploads over 10 MB gzip-compressed (HTTP 413).
pub const MAX_SARIF_GZIP_BYTES: usize = 10_000_000;

/// What can stop a GitHub publisher.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("repository {0:?} is not of the form owner/name")]
    Repository(String),
    #[error("SARIF file {path}: {message}")]
    Sarif { path: String, message: String },
}

/// How long to wait for GitHub to process an upload: `polls` checks, the first at once, the
/// next after `first_interval`, each interval twice the last (5, 10, 20, 40 s by default, close
/// to codeql-action's 5, 10, 20, 40, 80 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SarifPolling {
    pub polls: u32,
    pub first_interval: Duration,
}

impl Default for SarifPolling {
    fn default() -> Self {
        Self {
            polls: 5,
            first_interval: Duration::from_secs(5),
        }
    }
}

/// Where an uploaded SARIF file ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SarifOutcome {
    Complete {
        id: String,
    },
    /// GitHub could not process it; `errors` are its reasons.
    Failed {
        id: String,
        errors: Vec<String>,
    },
    /// Still `pending` after every poll: GitHub will finish on its own.
    Pending {
        id: String,
    },
}

/// One repository on one GitHub instance.
#[derive(Debug)]
pub struct GitHubApi<'a> {
    http: &'a HttpClient,
    base: String,
    token: &'a Secret,
    repository: String,
}

impl<'a> GitHubApi<'a> {
    /// `repository` is `owner/name`; `base` the API URL (a trailing `/` is ignored).
    pub fn new(
        http: &'a HttpClient,
        base: &str,
        token: &'a Secret,
        repository: &str,
    ) -> Result<Self, GitHubError> {
        let valid = repository.split('/').count() == 2
            && repository.split('/').all(|part| {
                !matches!(part, "" | "." | "..")
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            });
        if !valid {
            return Err(GitHubError::Repository(repository.to_string()));
        }
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
            repository: repository.to_string(),
        })
    }

    /// Keeps one comment per `marker` on pull request `pr`, written by `author`, equal to `body`.
    pub fn sticky_comment(
        &self,
        pr: u64,
        marker: &str,
        author: &str,
        body: &str,
    ) -> Result<StickyOutcome, HttpError> {
        let get = reqwest::Method::GET;
        let thread = RestThread {
            http: self.http,
            api_base: &self.base,
            list: self.call(
                get,
                &format!("issues/{pr}/comments?per_page=100"),
                &format!("list the comments of pull request #{pr}"),
            ),
            create: self.call(
                reqwest::Method::POST,
                &format!("issues/{pr}/comments"),
                &format!("comment on pull request #{pr}"),
            ),
            update: Box::new(move |id| {
                self.call(
                    reqwest::Method::PATCH,
                    &format!("issues/comments/{id}"),
                    &format!("update comment {id} on pull request #{pr}"),
                )
            }),
            author_pointer: "/user/login",
        };
        sticky::upsert(&thread, marker, author, body)
    }

    /// Uploads one SARIF file for `commit_sha` and `git_ref`, trimmed to GitHub's limits (see
    /// [`sarif::fit`]), then waits for GitHub to process it; also says what the trim left out.
    pub fn upload_sarif(
        &self,
        path: &Path,
        commit_sha: &str,
        git_ref: &str,
        polling: SarifPolling,
    ) -> Result<(SarifOutcome, Trimmed), GitHubError> {
        let (sarif, trimmed) = encode_sarif(path, MAX_SARIF_GZIP_BYTES)?;
        let name = file_name(path);
        let body = serde_json::json!({"commit_sha": commit_sha, "ref": git_ref, "sarif": sarif});
        let call = self
            .call(
                reqwest::Method::POST,
                "code-scanning/sarifs",
                &format!("upload {name}"),
            )
            .json(&body)
            .idempotent();
        let answer = self.http.send(&call)?;
        let id = match answer.json(call.what())?.get("id") {
            Some(serde_json::Value::String(id)) => id.clone(),
            _ => return Err(sarif_error(path, "GitHub's answer has no upload id")),
        };
        Ok((self.wait_for_processing(&id, &name, polling)?, trimmed))
    }

    fn wait_for_processing(
        &self,
        id: &str,
        name: &str,
        polling: SarifPolling,
    ) -> Result<SarifOutcome, HttpError> {
        let what = format!("check the processing of {name}");
        let mut interval = polling.first_interval;
        for poll in 0..polling.polls {
            if poll > 0 {
                self.http.sleep(interval);
                interval = interval.saturating_mul(2);
            }
            let call = self.call(
                reqwest::Method::GET,
                &format!("code-scanning/sarifs/{id}"),
                &what,
            );
            let status = self.http.send(&call)?.json(&what)?;
            match status.get("processing_status").and_then(|s| s.as_str()) {
                Some("complete") => return Ok(SarifOutcome::Complete { id: id.into() }),
                Some("failed") => {
                    let errors = status.get("errors").and_then(|e| e.as_array());
                    let errors = errors.into_iter().flatten().map(plain_text).collect();
                    return Ok(SarifOutcome::Failed {
                        id: id.into(),
                        errors,
                    });
                }
                _ => {}
            }
        }
        Ok(SarifOutcome::Pending { id: id.into() })
    }

    /// A call to `/repos/{owner}/{name}/{path}` with GitHub's headers.
    fn call(&self, method: reqwest::Method, path: &str, what: &str) -> Call {
        let url = format!("{}/repos/{}/{path}", self.base, self.repository);
        Call::new(method, url, what)
            .header("authorization", format!("Bearer {}", self.token.expose()))
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
    }
}

/// The file gzip-compressed and base64-encoded, as the upload API wants it, with what fitting
/// it to GitHub's limits left out (a file within them is sent byte for byte); refused when it
/// is not JSON or GitHub would refuse its size.
fn encode_sarif(path: &Path, max_gzip_bytes: usize) -> Result<(String, Trimmed), GitHubError> {
    let mut bytes = std::fs::read(path).map_err(|err| sarif_error(path, &err.to_string()))?;
    let mut log = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|err| sarif_error(path, &format!("not JSON: {err}")))?;
    let trimmed = sarif::fit(&mut log);
    if !trimmed.is_empty() {
        bytes = serde_json::to_vec(&log).map_err(|err| sarif_error(path, &err.to_string()))?;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let gzip = encoder
        .write_all(&bytes)
        .and_then(|()| encoder.finish())
        .map_err(|err| sarif_error(path, &err.to_string()))?;
    if gzip.len() > max_gzip_bytes {
        let message = format!(
            "{} bytes gzip-compressed; GitHub accepts at most {max_gzip_bytes}",
            gzip.len()
        );
        return Err(sarif_error(path, &message));
    }
    Ok((
        base64::engine::general_purpose::STANDARD.encode(gzip),
        trimmed,
    ))
}

fn sarif_error(path: &Path, message: &str) -> GitHubError {
    GitHubError::Sarif {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

fn plain_text(value: &serde_json::Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

#[cfg(test)]
mod tests;
