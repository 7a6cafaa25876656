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
//!
//! When a run comes to several of these at once (a build failed and a publisher failed, say),
//! [`Ending`]'s order decides: 130 over 2 over 4 over 1 over 5 over 3 over 0.

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

/// What a run came to, one kind of outcome each, ordered by precedence: when a run comes to
/// several, the greatest decides its exit code ([`exit_code`]). An interrupted run says so
/// whatever else happened; a usage or configuration error comes before an unusable environment,
/// which comes before failed builds, then failed publishers (when they count), then a policy
/// gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ending {
    Success,
    PolicyFailed,
    PublisherFailed,
    BuildFailed,
    EnvironmentUnusable,
    Usage,
    Interrupted,
}

impl Ending {
    /// The exit code of this ending alone.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => SUCCESS,
            Self::PolicyFailed => POLICY,
            Self::PublisherFailed => NOTIFY_FAILED,
            Self::BuildFailed => BUILD_FAILED,
            Self::EnvironmentUnusable => ENVIRONMENT,
            Self::Usage => USAGE,
            Self::Interrupted => INTERRUPTED,
        }
    }
}

/// The exit code of a run that came to `endings` (none: success).
pub fn exit_code(endings: impl IntoIterator<Item = Ending>) -> u8 {
    endings.into_iter().max().unwrap_or(Ending::Success).code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_serious_ending_decides_in_the_documented_order() {
        use Ending::*;
        assert_eq!(exit_code([]), SUCCESS);
        // 2 over 4 over 1 over 5 over 3 over 0, and an interruption over everything.
        let order = [
            Success,
            PolicyFailed,
            PublisherFailed,
            BuildFailed,
            EnvironmentUnusable,
            Usage,
            Interrupted,
        ];
        let codes = [0, 3, 5, 1, 4, 2, 130];
        for (i, ending) in order.iter().enumerate() {
            assert_eq!(ending.code(), codes[i]);
            for lesser in &order[..i] {
                assert_eq!(exit_code([*lesser, *ending]), codes[i]);
                assert_eq!(exit_code([*ending, *lesser]), codes[i]);
            }
        }
    }
}
