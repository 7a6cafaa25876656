//! An in-memory GitHub, GitLab and Slack behind a [`FakeServer`], for tests of the publishers
//! and of the commands that call them. Not part of buildopt's interface.
//!
//! It keeps one list of comments, served as GitHub issue comments of any pull request and as
//! GitLab merge request notes, paged as each forge pages (GitHub: `per_page` default 30 and
//! `Link: rel="next"`; GitLab: `per_page` default 20 and `x-next-page`). SARIF uploads are
//! stored and report the `processing_status` values queued with [`ForgeState::queue_sarif_status`]
//! (then `complete`). Slack webhooks under `/services/` answer `ok`. Paths may start with
//! `/api/v4` (GitLab) or `/api/v3` (GitHub Enterprise). Everything else is 404.
//! Every request is recorded by the server.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::testserver::{FakeServer, Recorded, Reply};

/// A comment or note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: u64,
    pub author: String,
    pub body: String,
}

/// The forge's data; tests read and seed it.
#[derive(Debug)]
pub struct ForgeState {
    pub comments: Mutex<Vec<Comment>>,
    /// The author of comments the API creates (GitHub's bot; GitLab's `/user`).
    pub viewer: String,
    /// Bodies of SARIF uploads, as sent.
    pub sarif_uploads: Mutex<Vec<Value>>,
    sarif_statuses: Mutex<VecDeque<Value>>,
    /// One-shot answers given instead of the real one: (method, path fragment, reply).
    faults: Mutex<Vec<(String, String, Reply)>>,
}

impl ForgeState {
    /// Answers the next `method` request whose path contains `fragment` with `reply` instead
    /// (a 502, a 429 with `retry-after`, ...); later requests are served normally.
    pub fn fail_once(&self, method: &str, fragment: &str, reply: Reply) {
        self.faults
            .lock()
            .expect("faults")
            .push((method.into(), fragment.into(), reply));
    }

    fn take_fault(&self, req: &Recorded) -> Option<Reply> {
        let mut faults = self.faults.lock().expect("faults");
        let at = faults.iter().position(|(method, fragment, _)| {
            *method == req.method && req.path().contains(fragment)
        })?;
        Some(faults.remove(at).2)
    }

    /// Adds a comment by `author`; returns its id.
    pub fn seed(&self, author: &str, body: &str) -> u64 {
        let mut comments = self.comments.lock().expect("comments");
        let id = comments.len() as u64 + 1;
        comments.push(Comment {
            id,
            author: author.into(),
            body: body.into(),
        });
        id
    }

    /// The next SARIF status answer, e.g. `{"processing_status": "pending"}`.
    pub fn queue_sarif_status(&self, status: Value) {
        self.sarif_statuses
            .lock()
            .expect("statuses")
            .push_back(status);
    }

    /// The comments now.
    pub fn comments(&self) -> Vec<Comment> {
        self.comments.lock().expect("comments").clone()
    }
}

/// Starts the fake; comments created through the API are written by `viewer`.
pub fn start(viewer: &str) -> (FakeServer, Arc<ForgeState>) {
    let state = Arc::new(ForgeState {
        comments: Mutex::new(Vec::new()),
        viewer: viewer.into(),
        sarif_uploads: Mutex::new(Vec::new()),
        sarif_statuses: Mutex::new(VecDeque::new()),
        faults: Mutex::new(Vec::new()),
    });
    let handler_state = state.clone();
    let server = FakeServer::start(move |req| route(&handler_state, req));
    (server, state)
}

fn route(state: &ForgeState, req: &Recorded) -> Reply {
    if let Some(fault) = state.take_fault(req) {
        return fault;
    }
    let segments: Vec<&str> = req.path().trim_start_matches('/').split('/').collect();
    // GitLab's API lives under /api/v4, GitHub Enterprise's under /api/v3.
    let segments = match segments.as_slice() {
        ["api", "v3" | "v4", rest @ ..] => rest,
        all => all,
    };
    match (req.method.as_str(), segments) {
        ("GET", ["repos", _, _, "issues", _, "comments"]) => list(state, req, 30, Paging::Link),
        ("POST", ["repos", _, _, "issues", _, "comments"]) => create(state, req, "user", "login"),
        ("PATCH", ["repos", _, _, "issues", "comments", id]) => update(state, req, id),
        ("POST", ["repos", _, _, "code-scanning", "sarifs"]) => upload_sarif(state, req),
        ("GET", ["repos", _, _, "code-scanning", "sarifs", _]) => sarif_status(state),
        ("GET", ["projects", _, "merge_requests", _, "notes"]) => {
            list(state, req, 20, Paging::NextPage)
        }
        ("POST", ["projects", _, "merge_requests", _, "notes"]) => {
            create(state, req, "author", "username")
        }
        ("PUT", ["projects", _, "merge_requests", _, "notes", id]) => update(state, req, id),
        ("GET", ["user"]) => Reply::json(200, json!({"username": state.viewer})),
        ("POST", ["services", ..]) => Reply::text(200, "ok"),
        _ => Reply::json(404, json!({"message": "Not Found"})),
    }
}

enum Paging {
    Link,
    NextPage,
}

fn list(state: &ForgeState, req: &Recorded, default_per_page: usize, paging: Paging) -> Reply {
    let number = |name: &str, default: usize| {
        req.query(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (page, per_page) = (
        number("page", 1).max(1),
        number("per_page", default_per_page),
    );
    let comments = state.comments();
    let items: Vec<Value> = comments
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|c| {
            json!({"id": c.id, "body": c.body, "user": {"login": c.author},
                   "author": {"username": c.author}})
        })
        .collect();
    let more = comments.len() > page * per_page;
    let reply = Reply::json(200, Value::Array(items));
    match (more, paging) {
        (false, Paging::NextPage) => reply.header("x-next-page", ""),
        (false, Paging::Link) => reply,
        (true, Paging::NextPage) => reply.header("x-next-page", &(page + 1).to_string()),
        (true, Paging::Link) => {
            let host = req.header("host").unwrap_or("127.0.0.1");
            let next = format!(
                "<http://{host}{}?per_page={per_page}&page={}>; rel=\"next\"",
                req.path(),
                page + 1
            );
            reply.header("link", &next)
        }
    }
}

fn create(state: &ForgeState, req: &Recorded, author_key: &str, name_key: &str) -> Reply {
    let Some(body) = req
        .json()
        .get("body")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Reply::json(422, json!({"message": "body is missing"}));
    };
    let id = state.seed(&state.viewer, &body);
    Reply::json(
        201,
        json!({"id": id, "body": body, author_key: {name_key: state.viewer}}),
    )
}

fn update(state: &ForgeState, req: &Recorded, id: &str) -> Reply {
    let body = req
        .json()
        .get("body")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut comments = state.comments.lock().expect("comments");
    let found = comments.iter_mut().find(|c| c.id.to_string() == id);
    match (found, body) {
        (Some(comment), Some(body)) => {
            comment.body = body;
            Reply::json(200, json!({"id": comment.id, "body": comment.body}))
        }
        (None, _) => Reply::json(404, json!({"message": "Not Found"})),
        (_, None) => Reply::json(422, json!({"message": "body is missing"})),
    }
}

fn upload_sarif(state: &ForgeState, req: &Recorded) -> Reply {
    let mut uploads = state.sarif_uploads.lock().expect("uploads");
    uploads.push(req.json());
    let id = format!("sarif-{}", uploads.len());
    Reply::json(202, json!({"id": id, "url": format!("/sarifs/{id}")}))
}

fn sarif_status(state: &ForgeState) -> Reply {
    let queued = state.sarif_statuses.lock().expect("statuses").pop_front();
    Reply::json(
        200,
        queued.unwrap_or_else(|| json!({"processing_status": "complete"})),
    )
}
