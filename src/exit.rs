//! The process exit codes: a stable contract that scripts and the CI wrappers rely on.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success, including "nothing to build" |
//! | 1 | a build failed |
//! | 2 | usage or configuration error (bad flag, bad `buildopt.toml`, bad Dockerfile, a cycle) |
//! | 3 | a policy gate failed (vulnerabilities over the threshold) |
//! | 4 | the environment is not usable (no git repository, no git binary, no Docker daemon) |
//! | 5 | a publisher failed (PR comment, SARIF upload, Slack) and `fail_on_notify_error` is on |
//! | 130 | the run was interrupted (Ctrl-C) |

/// Everything worked, or there was nothing to do.
pub const SUCCESS: u8 = 0;
/// At least one image failed to build.
pub const BUILD_FAILED: u8 = 1;
/// The command line, the settings or the repository's build definitions are invalid.
pub const USAGE: u8 = 2;
/// A policy gate failed, such as vulnerabilities over the configured threshold.
pub const POLICY: u8 = 3;
/// Something buildopt needs from the machine is missing: git, a repository, the Docker daemon.
pub const ENVIRONMENT: u8 = 4;
/// A publisher failed and `fail_on_notify_error` asks for that to fail the command; by default
/// a failing publisher is only a warning.
pub const NOTIFY_FAILED: u8 = 5;
/// The run was cancelled with Ctrl-C (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;
