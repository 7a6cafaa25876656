//! The sticky comment, for any forge: find our earlier comment by its hidden marker and author,
//! update it, or create it; plus the paged listing both GitHub and GitLab use.
//!
//! The author check matters: anyone can paste the marker into a comment of their own, and that
//! comment must not be edited. A create that failed in a way the server may still have acted on
//! (5xx, timeout) is retried only after listing again, so a retry never posts a second comment.

use super::http::{Answer, Call, HttpClient, HttpError};

/// A comment already on the pull or merge request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub id: u64,
    pub author: String,
    pub body: String,
}

/// What the sticky comment publisher did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickyOutcome {
    Created(u64),
    Updated(u64),
    /// Our comment already had this body; nothing was sent.
    Unchanged(u64),
}

impl std::fmt::Display for StickyOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Created(id) => write!(f, "created comment {id}"),
            Self::Updated(id) => write!(f, "updated comment {id}"),
            Self::Unchanged(id) => write!(f, "comment {id} already up to date"),
        }
    }
}

/// The comments of one pull or merge request, on one forge.
pub trait Thread {
    fn list(&self) -> Result<Vec<Existing>, HttpError>;
    fn create(&self, body: &str) -> Result<u64, HttpError>;
    fn update(&self, id: u64, body: &str) -> Result<(), HttpError>;
}

/// A forge's comment API as data: both GitHub and GitLab list, create and update comments with
/// a JSON `{"body": …}` and answer with the comment's `id`.
pub struct RestThread<'a> {
    pub http: &'a HttpClient,
    /// Next-page links must stay under this URL.
    pub api_base: &'a str,
    /// The first page of the listing.
    pub list: Call,
    /// Creates a comment (the body is added).
    pub create: Call,
    /// Updates comment `id` (the body is added).
    pub update: Box<dyn Fn(u64) -> Call + 'a>,
    /// Where a listed comment names its author (`/user/login`, `/author/username`).
    pub author_pointer: &'static str,
}

impl Thread for RestThread<'_> {
    fn list(&self) -> Result<Vec<Existing>, HttpError> {
        let items = list_all(self.http, self.list.clone(), self.api_base)?;
        Ok(items
            .iter()
            .filter_map(|item| {
                Some(Existing {
                    id: item.get("id")?.as_u64()?,
                    author: item.pointer(self.author_pointer)?.as_str()?.to_string(),
                    body: item.get("body")?.as_str().unwrap_or_default().to_string(),
                })
            })
            .collect())
    }

    fn create(&self, body: &str) -> Result<u64, HttpError> {
        let call = self
            .create
            .clone()
            .json(&serde_json::json!({ "body": body }));
        let created = self.http.send(&call)?.json(call.what())?;
        created
            .get("id")
            .and_then(|id| id.as_u64())
            .ok_or_else(|| decode(call.what(), "the answer has no id"))
    }

    fn update(&self, id: u64, body: &str) -> Result<(), HttpError> {
        let call = (self.update)(id).json(&serde_json::json!({ "body": body }));
        self.http.send(&call).map(drop)
    }
}

/// Updates the comment of `author` holding `marker` to `body`, or creates it.
pub fn upsert(
    thread: &impl Thread,
    marker: &str,
    author: &str,
    body: &str,
) -> Result<StickyOutcome, HttpError> {
    let mut listed_again = false;
    loop {
        let existing = thread.list()?;
        match existing
            .iter()
            .find(|c| c.author == author && c.body.contains(marker))
        {
            Some(ours) if ours.body == body => return Ok(StickyOutcome::Unchanged(ours.id)),
            Some(ours) => {
                thread.update(ours.id, body)?;
                return Ok(StickyOutcome::Updated(ours.id));
            }
            None => match thread.create(body) {
                Ok(id) => return Ok(StickyOutcome::Created(id)),
                Err(err) if !listed_again && may_have_acted(&err) => listed_again = true,
                Err(err) => return Err(err),
            },
        }
    }
}

fn may_have_acted(err: &HttpError) -> bool {
    match err {
        HttpError::Status { status, .. } => *status >= 500,
        HttpError::Transport { .. } => true,
        _ => false,
    }
}

/// More pages than any real pull request has; stops a server that always says "next".
const MAX_PAGES: usize = 100;

/// Every item of a paged JSON-array listing, following `Link: <…>; rel="next"` or GitLab's
/// `x-next-page`. A next link outside `api_base` is refused: it would receive the token.
pub fn list_all(
    http: &HttpClient,
    first: Call,
    api_base: &str,
) -> Result<Vec<serde_json::Value>, HttpError> {
    let what = first.what().to_string();
    let first_url = first.url().to_string();
    let mut call = first;
    let mut items = Vec::new();
    for _ in 0..MAX_PAGES {
        let answer = http.send(&call)?;
        match answer.json(&what)? {
            serde_json::Value::Array(page) => items.extend(page),
            other => return Err(decode(&what, &format!("expected a list, got {other}"))),
        }
        match next_page(&answer, &first_url) {
            None => return Ok(items),
            Some(next) if within(api_base, &next) => call = call.with_url(next),
            Some(_) => return Err(decode(&what, "the next page is on another server")),
        }
    }
    Err(decode(&what, &format!("more than {MAX_PAGES} pages")))
}

/// Whether `url` is on the server of `base` (scheme, host and port, no user info) and under its
/// path. A text prefix check is not enough: `https://api.github.com.evil.example/` and
/// `https://api.github.com@evil.example/` both start with `https://api.github.com`.
fn within(base: &str, url: &str) -> bool {
    let (Ok(base), Ok(url)) = (reqwest::Url::parse(base), reqwest::Url::parse(url)) else {
        return false;
    };
    let base_path = base.path().trim_end_matches('/');
    let path = url.path();
    url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default()
        && url.username().is_empty()
        && url.password().is_none()
        && (path == base_path || path.starts_with(&format!("{base_path}/")))
}

fn decode(what: &str, message: &str) -> HttpError {
    HttpError::Decode {
        what: what.to_string(),
        message: message.to_string(),
    }
}

/// The URL of the next page, from `Link` or else `x-next-page` applied to `first_url`.
fn next_page(answer: &Answer, first_url: &str) -> Option<String> {
    if let Some(link) = answer.header("link") {
        return next_link(link);
    }
    let page = answer.header("x-next-page")?.trim();
    if page.is_empty() {
        return None;
    }
    let separator = if first_url.contains('?') { '&' } else { '?' };
    Some(format!("{first_url}{separator}page={page}"))
}

/// The `rel="next"` target of a `Link` header (RFC 8288).
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|param| matches!(param.trim(), "rel=\"next\"" | "rel=next"));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[test]
    fn a_next_page_on_another_server_is_refused_even_when_its_url_starts_like_the_api() {
        use crate::notify::http::tests::fast_client;
        use crate::notify::testserver::{FakeServer, Reply};
        let thief = FakeServer::scripted(vec![Reply::json(200, serde_json::json!([]))]);
        let thief_port = thief.url().rsplit(':').next().expect("port").to_string();
        let next = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let link = next.clone();
        let api = FakeServer::start(move |_| {
            let next = link.lock().expect("next").clone();
            Reply::json(200, serde_json::json!([]))
                .header("link", &format!("<{next}>; rel=\"next\""))
        });
        // `http://127.0.0.1:P@127.0.0.1:Q/…` starts with the API base, yet goes to port Q.
        *next.lock().expect("next") = format!("{}@127.0.0.1:{thief_port}/page2", api.url());
        let (http, _) = fast_client(&[]);
        let first = Call::get(format!("{}/comments", api.url()), "list the comments")
            .header("authorization", "Bearer ghp_CANARY");
        let base = api.url();
        let err = list_all(&http, first, &base).expect_err("refused");
        assert!(err.to_string().contains("another server"), "{err}");
        assert!(
            thief.requests().is_empty(),
            "the token went to another server"
        );
    }

    #[test]
    fn next_pages_must_stay_under_the_api_base() {
        let base = "https://gitlab.example/api/v4";
        assert!(within(
            base,
            "https://gitlab.example/api/v4/projects/1/notes?page=2"
        ));
        assert!(within(
            "https://api.github.com",
            "https://api.github.com/repos/o/r"
        ));
        for url in [
            "https://gitlab.example.evil/api/v4/x",
            "https://gitlab.example@evil.example/api/v4/x",
            "https://gitlab.example/api/v4evil/x",
            "http://gitlab.example/api/v4/x",
            "https://gitlab.example:8443/api/v4/x",
            "not a url",
        ] {
            assert!(!within(base, url), "{url}");
        }
    }

    #[test]
    fn next_links_are_found_among_the_others() {
        let link = r#"<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=3>; rel="next", <https://api.github.com/x?page=9>; rel="last""#;
        assert_eq!(
            next_link(link).as_deref(),
            Some("https://api.github.com/x?page=3")
        );
        assert_eq!(next_link(r#"<https://a/x?page=1>; rel="first""#), None);
    }

    /// A thread in memory whose create fails once with `first_create`, having acted or not.
    struct Memory {
        comments: RefCell<Vec<Existing>>,
        first_create: RefCell<Option<(HttpError, bool)>>,
    }

    impl Thread for Memory {
        fn list(&self) -> Result<Vec<Existing>, HttpError> {
            Ok(self.comments.borrow().clone())
        }
        fn create(&self, body: &str) -> Result<u64, HttpError> {
            let id = self.comments.borrow().len() as u64 + 1;
            let existing = Existing {
                id,
                author: "bot".into(),
                body: body.into(),
            };
            if let Some((err, acted)) = self.first_create.borrow_mut().take() {
                if acted {
                    self.comments.borrow_mut().push(existing);
                }
                return Err(err);
            }
            self.comments.borrow_mut().push(existing);
            Ok(id)
        }
        fn update(&self, id: u64, body: &str) -> Result<(), HttpError> {
            let mut comments = self.comments.borrow_mut();
            let comment = comments.iter_mut().find(|c| c.id == id).expect("id");
            comment.body = body.into();
            Ok(())
        }
    }

    fn memory(first_create: Option<(HttpError, bool)>) -> Memory {
        let spoof = Existing {
            id: 100,
            author: "mallory".into(),
            body: "<!-- m --> spoofed".into(),
        };
        Memory {
            comments: RefCell::new(vec![spoof]),
            first_create: RefCell::new(first_create),
        }
    }

    fn bad_gateway() -> HttpError {
        HttpError::Status {
            what: "create".into(),
            status: 502,
            message: "".into(),
        }
    }

    #[test]
    fn creates_then_updates_then_leaves_alone_and_never_touches_other_authors() {
        let thread = memory(None);
        let outcome = upsert(&thread, "<!-- m -->", "bot", "<!-- m --> one");
        assert_eq!(outcome, Ok(StickyOutcome::Created(2)));
        let outcome = upsert(&thread, "<!-- m -->", "bot", "<!-- m --> two");
        assert_eq!(outcome, Ok(StickyOutcome::Updated(2)));
        let outcome = upsert(&thread, "<!-- m -->", "bot", "<!-- m --> two");
        assert_eq!(outcome, Ok(StickyOutcome::Unchanged(2)));
        let comments = thread.comments.borrow();
        assert_eq!(comments.len(), 2);
        assert_eq!(comments[0].body, "<!-- m --> spoofed");
    }

    #[test]
    fn a_create_that_may_have_worked_is_checked_before_it_is_retried() {
        let thread = memory(Some((bad_gateway(), true)));
        let outcome = upsert(&thread, "<!-- m -->", "bot", "<!-- m --> one");
        assert_eq!(outcome, Ok(StickyOutcome::Unchanged(2)));
        assert_eq!(thread.comments.borrow().len(), 2, "no duplicate");
        let thread = memory(Some((bad_gateway(), false)));
        let outcome = upsert(&thread, "<!-- m -->", "bot", "<!-- m --> one");
        assert_eq!(outcome, Ok(StickyOutcome::Created(2)));
    }

    #[test]
    fn a_refused_create_is_an_error() {
        let forbidden = HttpError::Status {
            what: "create".into(),
            status: 403,
            message: "Resource not accessible by integration".into(),
        };
        let thread = memory(Some((forbidden.clone(), false)));
        assert_eq!(
            upsert(&thread, "<!-- m -->", "bot", "<!-- m --> x"),
            Err(forbidden)
        );
    }
}
