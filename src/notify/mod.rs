//! Publishers: side effects only. They post or write what `report` rendered, and never format.
//!
//! `http` is the one HTTP client (timeouts, retries from `retry`, secret-free errors); `secret`
//! keeps tokens and webhook URLs out of every message. `github` writes step outputs,
//! `github_api` keeps the sticky PR comment and uploads SARIF (fitted to GitHub's limits by
//! `sarif`), `gitlab` keeps the sticky merge
//! request note, `slack` posts to an incoming webhook; `publish` runs them all for one RunReport.

#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
pub mod fake_forge;
pub mod github;
pub mod github_api;
pub mod gitlab;
pub mod http;
pub mod publish;
pub mod retry;
pub mod sarif;
pub mod secret;
pub mod slack;
mod sticky;
#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
pub mod testserver;
