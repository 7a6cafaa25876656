//! GitLab's REST API: the sticky merge request note.
//!
//! Calls go to `CI_API_V4_URL` for project `CI_PROJECT_ID`. A `BUILDOPT_GITLAB_TOKEN` (a project
//! or personal access token with the `api` scope) is sent as `PRIVATE-TOKEN`; without one,
//! `CI_JOB_TOKEN` is tried as `JOB-TOKEN`, but GitLab does not let job tokens write merge request
//! notes (gitlab-org/gitlab#464591, #545150), so expect a 401/403 and the hint in [`JOB_TOKEN_HINT`].
//! Notes are listed 100 per page following `x-next-page` (or `Link`), oldest first.

use super::http::{Call, HttpClient, HttpError};
use super::secret::Secret;
use super::sticky::{self, RestThread, StickyOutcome};

/// Why a job token usually fails, for warnings.
pub const JOB_TOKEN_HINT: &str = "GitLab's CI_JOB_TOKEN cannot write merge request notes \
(gitlab-org/gitlab#464591); set BUILDOPT_GITLAB_TOKEN to an access token with the api scope";

/// A GitLab token and the header it goes in.
#[derive(Debug, Clone)]
pub enum GitLabToken {
    /// `BUILDOPT_GITLAB_TOKEN`, sent as `PRIVATE-TOKEN`.
    Private(Secret),
    /// `CI_JOB_TOKEN`, sent as `JOB-TOKEN`.
    Job(Secret),
}

impl GitLabToken {
    pub fn secret(&self) -> &Secret {
        match self {
            Self::Private(secret) | Self::Job(secret) => secret,
        }
    }

    fn header(&self) -> &'static str {
        match self {
            Self::Private(_) => "private-token",
            Self::Job(_) => "job-token",
        }
    }
}

/// One project on one GitLab instance.
#[derive(Debug)]
pub struct GitLabApi<'a> {
    http: &'a HttpClient,
    base: String,
    token: &'a GitLabToken,
    /// The project id, or its path URL-encoded.
    project: String,
}

impl<'a> GitLabApi<'a> {
    /// `base` is `CI_API_V4_URL`; `project` the numeric id or the `group/name` path.
    pub fn new(http: &'a HttpClient, base: &str, token: &'a GitLabToken, project: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
            project: encode_segment(project),
        }
    }

    /// The username of the token's user (a project access token's bot user), who authors notes.
    pub fn viewer(&self) -> Result<String, HttpError> {
        let what = "look up the token's user";
        let call = self.call(reqwest::Method::GET, format!("{}/user", self.base), what);
        let user = self.http.send(&call)?.json(what)?;
        user.get("username")
            .and_then(|name| name.as_str())
            .map(str::to_string)
            .ok_or_else(|| HttpError::Decode {
                what: what.into(),
                message: "no username".into(),
            })
    }

    /// Keeps one note per `marker` on merge request `iid`, written by `author`, equal to `body`.
    pub fn sticky_note(
        &self,
        iid: u64,
        marker: &str,
        author: &str,
        body: &str,
    ) -> Result<StickyOutcome, HttpError> {
        let notes = self.notes_url(iid);
        let thread = RestThread {
            http: self.http,
            api_base: &self.base,
            list: self.call(
                reqwest::Method::GET,
                format!("{notes}?per_page=100&sort=asc&order_by=created_at"),
                &format!("list the notes of merge request !{iid}"),
            ),
            create: self.call(
                reqwest::Method::POST,
                notes.clone(),
                &format!("comment on merge request !{iid}"),
            ),
            update: Box::new(move |id| {
                self.call(
                    reqwest::Method::PUT,
                    format!("{notes}/{id}"),
                    &format!("update note {id} on merge request !{iid}"),
                )
            }),
            author_pointer: "/author/username",
        };
        sticky::upsert(&thread, marker, author, body)
    }

    fn notes_url(&self, iid: u64) -> String {
        format!(
            "{}/projects/{}/merge_requests/{iid}/notes",
            self.base, self.project
        )
    }

    fn call(&self, method: reqwest::Method, url: String, what: &str) -> Call {
        Call::new(method, url, what).header(self.token.header(), self.token.secret().expose())
    }
}

/// A project path as one URL segment (`group/app` → `group%2Fapp`).
fn encode_segment(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::fake_forge;
    use crate::notify::http::tests::fast_client;
    use crate::notify::testserver::Recorded;

    const MARKER: &str = "<!-- buildopt:default -->";

    #[test]
    fn notes_are_created_then_updated_through_pages_with_the_private_token() {
        let (server, forge) = fake_forge::start("project_5_bot");
        forge.seed("mallory", &format!("{MARKER} spoofed"));
        for n in 0..150 {
            forge.seed("dev", &format!("note {n}"));
        }
        let token = GitLabToken::Private(Secret::new("glpat-CANARY"));
        let (http, _) = fast_client(&[token.secret()]);
        let api = GitLabApi::new(
            &http,
            &format!("{}/api/v4", server.url()),
            &token,
            "group/app",
        );

        let author = api.viewer().expect("viewer");
        assert_eq!(author, "project_5_bot");
        let first = api.sticky_note(3, MARKER, &author, &format!("{MARKER} one"));
        assert_eq!(first.expect("create"), StickyOutcome::Created(152));
        let second = api.sticky_note(3, MARKER, &author, &format!("{MARKER} two"));
        assert_eq!(second.expect("update"), StickyOutcome::Updated(152));

        let notes = forge.comments();
        assert_eq!(notes.len(), 152);
        assert_eq!(notes[0].body, format!("{MARKER} spoofed"));
        assert_eq!(notes[151].body, format!("{MARKER} two"));
        let requests = server.requests();
        let lines: Vec<String> = requests.iter().map(Recorded::line).collect();
        let notes = "/api/v4/projects/group%2Fapp/merge_requests/3/notes";
        assert_eq!(
            lines,
            [
                "GET /api/v4/user".to_string(),
                format!("GET {notes}"),
                format!("GET {notes}"),
                format!("POST {notes}"),
                format!("GET {notes}"),
                format!("GET {notes}"),
                format!("PUT {notes}/152"),
            ]
        );
        assert_eq!(requests[2].query("page"), Some("2"));
        assert_eq!(
            requests[6].json(),
            serde_json::json!({"body": format!("{MARKER} two")})
        );
        assert!(
            requests
                .iter()
                .all(|r| r.header("private-token") == Some("glpat-CANARY"))
        );
        assert!(requests.iter().all(|r| r.header("job-token").is_none()));
    }

    #[test]
    fn a_job_token_goes_in_its_own_header() {
        let (server, _forge) = fake_forge::start("bot");
        let token = GitLabToken::Job(Secret::new("job-CANARY"));
        let (http, _) = fast_client(&[token.secret()]);
        let api = GitLabApi::new(&http, &server.url(), &token, "42");
        api.sticky_note(1, MARKER, "bot", "x").expect("create");
        assert!(
            server
                .requests()
                .iter()
                .all(|r| r.header("job-token") == Some("job-CANARY")
                    && r.header("private-token").is_none())
        );
    }
}
