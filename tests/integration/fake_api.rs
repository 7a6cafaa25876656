//! Fake HTTP APIs on 127.0.0.1 for tests of commands that publish (`notify`, `ci`).
//!
//! The servers live in the library (`buildopt::notify::testserver`, `buildopt::notify::fake_forge`,
//! hidden from the docs) so unit and integration tests share one implementation:
//!
//! - [`FakeServer::start`]`(|req: &Recorded| -> Reply)` routes every request through a closure;
//!   [`FakeServer::scripted`]`(vec![Reply, ...])` answers in order, repeating the last;
//!   `server.url()` is `http://127.0.0.1:PORT`, `server.requests()` every request received
//!   (method, target, lower-cased headers, body; `path()`, `query()`, `header()`, `json()`).
//! - [`Reply::json`], [`Reply::text`], [`Reply::status`], `.header(k, v)`, `.delayed(d)`.
//! - [`fake_forge::start`]`(viewer)` is a stateful GitHub + GitLab + Slack: issue comments / MR
//!   notes with each forge's paging, SARIF uploads and their processing status, `/user`, and
//!   webhooks under `/services/`. [`github_env`] points buildopt at it.

#![allow(dead_code, unused_imports)]

pub use buildopt::notify::fake_forge::{self, Comment, ForgeState};
pub use buildopt::notify::testserver::{FakeServer, Recorded, Reply};

/// The environment of a GitHub Actions run that talks to `server` with `token`.
pub fn github_env(server: &FakeServer, token: &str) -> Vec<(String, String)> {
    [
        ("GITHUB_ACTIONS", "true".to_string()),
        ("GITHUB_API_URL", server.url()),
        ("GITHUB_TOKEN", token.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
