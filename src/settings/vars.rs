//! The environment variable names of every setting, in one table (the README lists the same).

/// The names one setting can be given by in the environment, highest precedence first.
#[derive(Debug, Clone, Copy)]
pub struct SettingVar {
    /// The setting's name, as in `buildopt.toml` where it can be set there.
    pub setting: &'static str,
    /// `BUILDOPT_<NAME>`.
    pub buildopt: &'static str,
    /// The name the original shell scripts used, kept as an alias.
    pub legacy: Option<&'static str>,
    /// The GitHub Action input, as the runner exports it.
    pub input: &'static str,
}

const fn var(
    setting: &'static str,
    buildopt: &'static str,
    legacy: Option<&'static str>,
    input: &'static str,
) -> SettingVar {
    SettingVar {
        setting,
        buildopt,
        legacy,
        input,
    }
}

pub const LEVEL: SettingVar = var(
    "level",
    "BUILDOPT_LEVEL",
    Some("OPTIMIZATION_LEVEL"),
    "INPUT_LEVEL",
);
pub const SELECTIVE: SettingVar = var(
    "selective",
    "BUILDOPT_SELECTIVE",
    Some("SELECTIVE_BUILD"),
    "INPUT_SELECTIVE",
);
pub const FORCE: SettingVar = var(
    "force",
    "BUILDOPT_FORCE",
    Some("FORCE_REBUILD"),
    "INPUT_FORCE",
);
pub const VERBOSE: SettingVar = var(
    "verbose",
    "BUILDOPT_VERBOSE",
    Some("VERBOSE"),
    "INPUT_VERBOSE",
);
pub const JOBS: SettingVar = var("jobs", "BUILDOPT_JOBS", None, "INPUT_JOBS");
pub const DEFAULT_BRANCH: SettingVar = var(
    "default_branch",
    "BUILDOPT_DEFAULT_BRANCH",
    None,
    "INPUT_DEFAULT_BRANCH",
);
pub const SELECTION: SettingVar = var("selection", "BUILDOPT_SELECTION", None, "INPUT_SELECTION");
pub const MAX_DEEPEN_ROUNDS: SettingVar = var(
    "max_deepen_rounds",
    "BUILDOPT_MAX_DEEPEN_ROUNDS",
    None,
    "INPUT_MAX_DEEPEN_ROUNDS",
);
// Build settings (`buildopt build`).
pub const AUTO_CLEANUP: SettingVar = var(
    "auto_cleanup",
    "BUILDOPT_AUTO_CLEANUP",
    Some("AUTO_CLEANUP"),
    "INPUT_AUTO_CLEANUP",
);
pub const CACHE_RETENTION_DAYS: SettingVar = var(
    "cache_retention_days",
    "BUILDOPT_CACHE_RETENTION_DAYS",
    Some("CACHE_RETENTION_DAYS"),
    "INPUT_CACHE_RETENTION_DAYS",
);
pub const BUILD_TIMEOUT: SettingVar = var(
    "build_timeout",
    "BUILDOPT_BUILD_TIMEOUT",
    None,
    "INPUT_BUILD_TIMEOUT",
);
/// `CI_MODE=true` (legacy) selects the `ci` level when no level is named.
pub const CI_MODE: &str = "CI_MODE";

/// Every setting that can come from the environment.
pub const SETTING_VARS: &[SettingVar] = &[
    LEVEL,
    SELECTIVE,
    FORCE,
    VERBOSE,
    JOBS,
    DEFAULT_BRANCH,
    SELECTION,
    MAX_DEEPEN_ROUNDS,
    AUTO_CLEANUP,
    CACHE_RETENTION_DAYS,
    BUILD_TIMEOUT,
    COMMENT,
    COMMENT_HEADER,
    COMMENT_AUTHOR,
    SLACK_WEBHOOK,
    SLACK_ON,
    SARIF,
    FAIL_ON_NOTIFY_ERROR,
    GITHUB_TOKEN,
    GITLAB_TOKEN,
];

// The cache's settings (resolved in `cache.rs`).
pub const ENABLE_CACHING: SettingVar = var(
    "cache",
    "BUILDOPT_CACHE",
    Some("ENABLE_CACHING"),
    "INPUT_CACHE",
);
pub const CACHE_DIR: SettingVar = var("cache_dir", "BUILDOPT_CACHE_DIR", None, "INPUT_CACHE_DIR");
pub const CACHE_SIZE_LIMIT_GB: SettingVar = var(
    "cache_size_limit_gb",
    "BUILDOPT_CACHE_SIZE_LIMIT_GB",
    Some("CACHE_SIZE_LIMIT_GB"),
    "INPUT_CACHE_SIZE_LIMIT_GB",
);
pub const CACHE_LOCK_TIMEOUT: SettingVar = var(
    "cache_lock_timeout",
    "BUILDOPT_CACHE_LOCK_TIMEOUT",
    None,
    "INPUT_CACHE_LOCK_TIMEOUT",
);
pub const CACHE_COMPRESSION: SettingVar = var(
    "cache_compression",
    "BUILDOPT_CACHE_COMPRESSION",
    None,
    "INPUT_CACHE_COMPRESSION",
);

// The `ci` command's settings (resolved in `pipeline.rs`).
pub const TAGS: SettingVar = var("tags", "BUILDOPT_TAGS", None, "INPUT_TAGS");
pub const PUSH: SettingVar = var("push", "BUILDOPT_PUSH", None, "INPUT_PUSH");
pub const KEEP_GOING: SettingVar = var(
    "keep_going",
    "BUILDOPT_KEEP_GOING",
    None,
    "INPUT_KEEP_GOING",
);
pub const REGISTRY_USER: SettingVar = var(
    "registry_username",
    "BUILDOPT_REGISTRY_USER",
    None,
    "INPUT_REGISTRY_USERNAME",
);
pub const REGISTRY_PASSWORD: SettingVar = var(
    "registry_password",
    "BUILDOPT_REGISTRY_PASSWORD",
    None,
    "INPUT_REGISTRY_PASSWORD",
);
// Notifications (resolved in `notify.rs`).
pub const COMMENT: SettingVar = var("comment", "BUILDOPT_COMMENT", None, "INPUT_COMMENT");
pub const COMMENT_HEADER: SettingVar = var(
    "comment_header",
    "BUILDOPT_COMMENT_HEADER",
    None,
    "INPUT_COMMENT_HEADER",
);
pub const COMMENT_AUTHOR: SettingVar = var(
    "comment_author",
    "BUILDOPT_COMMENT_AUTHOR",
    None,
    "INPUT_COMMENT_AUTHOR",
);
pub const SLACK_WEBHOOK: SettingVar = var(
    "slack_webhook",
    "BUILDOPT_SLACK_WEBHOOK",
    Some("SLACK_WEBHOOK"),
    "INPUT_SLACK_WEBHOOK",
);
pub const SLACK_ON: SettingVar = var("slack_on", "BUILDOPT_SLACK_ON", None, "INPUT_SLACK_ON");
pub const SARIF: SettingVar = var("sarif", "BUILDOPT_SARIF", None, "INPUT_SARIF");
pub const FAIL_ON_NOTIFY_ERROR: SettingVar = var(
    "fail_on_notify_error",
    "BUILDOPT_FAIL_ON_NOTIFY_ERROR",
    None,
    "INPUT_FAIL_ON_NOTIFY_ERROR",
);
/// `GITHUB_TOKEN` is what workflows usually export; it is the "legacy" layer here.
pub const GITHUB_TOKEN: SettingVar = var(
    "github_token",
    "BUILDOPT_GITHUB_TOKEN",
    Some("GITHUB_TOKEN"),
    "INPUT_GITHUB_TOKEN",
);
pub const GITLAB_TOKEN: SettingVar = var(
    "gitlab_token",
    "BUILDOPT_GITLAB_TOKEN",
    None,
    "INPUT_GITLAB_TOKEN",
);
