//! The table of every setting: its names in the environment, its action input, its
//! `buildopt.toml` key, its default and its help line. Resolution reads the names from here;
//! `--help`, the settings table of docs/configuration.md and the wrapper checks are generated from or checked
//! against it (see `docs.rs`), so a setting added here is documented everywhere at once.

/// One setting: where it can be given, highest precedence first, and what it means.
#[derive(Debug, Clone, Copy)]
pub struct SettingVar {
    /// The setting's name.
    pub setting: &'static str,
    /// `BUILDOPT_<NAME>`.
    pub buildopt: &'static str,
    /// The name the original shell scripts used, kept as an alias.
    pub legacy: Option<&'static str>,
    /// The GitHub Action input as the action passes it to buildopt (`INPUT_<NAME>`).
    pub input: &'static str,
    /// The input's name in `action.yml` (and in the GitLab component, which uses the same names),
    /// when the action offers it.
    pub action_input: Option<&'static str>,
    /// The `buildopt.toml` key (`table.key` inside a table), when the file can set it.
    pub file_key: Option<&'static str>,
    /// The value when nothing sets it; "level" when the levels table decides.
    pub default: &'static str,
    /// One line for `--help` and docs/configuration.md.
    pub help: &'static str,
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
        action_input: None,
        file_key: None,
        default: "none",
        help: "",
    }
}

impl SettingVar {
    const fn action(self, name: &'static str) -> Self {
        Self {
            action_input: Some(name),
            ..self
        }
    }

    const fn file(self, key: &'static str) -> Self {
        Self {
            file_key: Some(key),
            ..self
        }
    }

    const fn default(self, value: &'static str) -> Self {
        Self {
            default: value,
            ..self
        }
    }

    const fn help(self, text: &'static str) -> Self {
        Self { help: text, ..self }
    }
}

pub const LEVEL: SettingVar = var(
    "level",
    "BUILDOPT_LEVEL",
    Some("OPTIMIZATION_LEVEL"),
    "INPUT_LEVEL",
)
.action("level")
.file("level")
.default("medium (`ci` for `buildopt ci`)")
.help("minimal, medium, maximum or ci (the levels table); CI_MODE=true selects ci");
pub const SELECTIVE: SettingVar = var(
    "selective",
    "BUILDOPT_SELECTIVE",
    Some("SELECTIVE_BUILD"),
    "INPUT_SELECTIVE",
)
.file("selective")
.default("level")
.help("plan only what changed; false plans every image");
pub const FORCE: SettingVar = var(
    "force",
    "BUILDOPT_FORCE",
    Some("FORCE_REBUILD"),
    "INPUT_FORCE",
)
.action("force")
.default("false")
.help("build every image, without the build cache and without reuse");
pub const VERBOSE: SettingVar = var(
    "verbose",
    "BUILDOPT_VERBOSE",
    Some("VERBOSE"),
    "INPUT_VERBOSE",
)
.default("false")
.help("say how the base was chosen and where each setting came from");
pub const JOBS: SettingVar = var("jobs", "BUILDOPT_JOBS", None, "INPUT_JOBS")
    .action("jobs")
    .file("jobs")
    .default("level")
    .help("images built at once");
pub const DEFAULT_BRANCH: SettingVar = var(
    "default_branch",
    "BUILDOPT_DEFAULT_BRANCH",
    None,
    "INPUT_DEFAULT_BRANCH",
)
.file("default_branch")
.help("the branch new branches are compared with when the CI does not say");
pub const PLATFORMS: SettingVar = var(
    "platforms",
    "BUILDOPT_PLATFORMS",
    Some("BUILDX_PLATFORMS"),
    "INPUT_PLATFORMS",
)
.action("platforms")
.file("platforms")
.help(
    "the platforms of every image that names none of its own (os/arch[/variant], comma \
     separated); several make one multi-platform image",
);
pub const SELECTION: SettingVar = var("selection", "BUILDOPT_SELECTION", None, "INPUT_SELECTION")
    .action("selection")
    .file("selection")
    .default("record")
    .help("what selects the images to build: record (the diff and the build record) or diff");
pub const MAX_DEEPEN_ROUNDS: SettingVar = var(
    "max_deepen_rounds",
    "BUILDOPT_MAX_DEEPEN_ROUNDS",
    None,
    "INPUT_MAX_DEEPEN_ROUNDS",
)
.file("max_deepen_rounds")
.default("6")
.help("how often a shallow clone may be deepened to find the base");
pub const AUTO_CLEANUP: SettingVar = var(
    "auto_cleanup",
    "BUILDOPT_AUTO_CLEANUP",
    Some("AUTO_CLEANUP"),
    "INPUT_AUTO_CLEANUP",
)
.file("auto_cleanup")
.default("false")
.help("after a build, prune dangling images and build cache older than the retention");
pub const CACHE_RETENTION_DAYS: SettingVar = var(
    "cache_retention_days",
    "BUILDOPT_CACHE_RETENTION_DAYS",
    Some("CACHE_RETENTION_DAYS"),
    "INPUT_CACHE_RETENTION_DAYS",
)
.file("cache_retention_days")
.default("7")
.help("days unused cache is kept, in the store and by the cleanup (`--cache-retention-days`)");
pub const BUILD_TIMEOUT: SettingVar = var(
    "build_timeout",
    "BUILDOPT_BUILD_TIMEOUT",
    None,
    "INPUT_BUILD_TIMEOUT",
)
.action("build-timeout")
.file("build_timeout")
.default("0 (no deadline)")
.help("seconds one image's build may take before it fails");
/// `CI_MODE=true` (legacy) selects the `ci` level when no level is named.
pub const CI_MODE: &str = "CI_MODE";

// The cache's settings (resolved in `cache.rs`).
pub const ENABLE_CACHING: SettingVar = var(
    "cache",
    "BUILDOPT_CACHE",
    Some("ENABLE_CACHING"),
    "INPUT_CACHE",
)
.action("cache")
.default("level")
.help("restore the build cache before and save it after builds");
pub const SCAN: SettingVar = var("scan", "BUILDOPT_SCAN", Some("SECURITY_SCAN"), "INPUT_SCAN")
    .action("scan")
    .file("scan.enabled")
    .default("level")
    .help("list what is inside every image the run built or reused (`build` and `ci`)");
pub const CACHE_DIR: SettingVar = var("cache_dir", "BUILDOPT_CACHE_DIR", None, "INPUT_CACHE_DIR")
    .action("cache-dir")
    .default("`.build_cache`")
    .help("the cache store folder (`cache --cache-dir`)");
pub const CACHE_SIZE_LIMIT_GB: SettingVar = var(
    "cache_size_limit_gb",
    "BUILDOPT_CACHE_SIZE_LIMIT_GB",
    Some("CACHE_SIZE_LIMIT_GB"),
    "INPUT_CACHE_SIZE_LIMIT_GB",
)
.default("10")
.help("the store's size limit in GB, kept by least recent use");
pub const CACHE_LOCK_TIMEOUT: SettingVar = var(
    "cache_lock_timeout",
    "BUILDOPT_CACHE_LOCK_TIMEOUT",
    None,
    "INPUT_CACHE_LOCK_TIMEOUT",
)
.default("600")
.help("seconds to wait for another job's store lock before going on without the cache");
pub const CACHE_COMPRESSION: SettingVar = var(
    "cache_compression",
    "BUILDOPT_CACHE_COMPRESSION",
    None,
    "INPUT_CACHE_COMPRESSION",
)
.default("zstd")
.help("cache archive compression: zstd or gzip (`cache export --compression`)");

pub const CACHE_RESTORE: SettingVar = var(
    "cache_restore",
    "BUILDOPT_CACHE_RESTORE",
    None,
    "INPUT_CACHE_RESTORE",
)
.action("cache-restore")
.default("built")
.help(
    "which stored images a build loads: built (those it builds and builds from) or all (every \
     image of the workspace, for later jobs that run them)",
);

// Tags, push, keep-going and the registry login (resolved in `pipeline.rs`).
pub const TAGS: SettingVar = var("tags", "BUILDOPT_TAGS", None, "INPUT_TAGS")
    .action("tags")
    .help("extra tag templates for every image, comma or newline separated (`--tag`)");
pub const PUSH: SettingVar = var("push", "BUILDOPT_PUSH", None, "INPUT_PUSH")
    .action("push")
    .default("false")
    .help("push every tag that names a registry (`--push`)");
pub const KEEP_GOING: SettingVar = var(
    "keep_going",
    "BUILDOPT_KEEP_GOING",
    None,
    "INPUT_KEEP_GOING",
)
.action("keep-going")
.default("false")
.help("after a failure, build the images that do not depend on it (`--keep-going`)");
pub const REGISTRY_USER: SettingVar = var(
    "registry_username",
    "BUILDOPT_REGISTRY_USER",
    None,
    "INPUT_REGISTRY_USERNAME",
)
.action("registry-username")
.help("registry login for every registry, with the password");
pub const REGISTRY_PASSWORD: SettingVar = var(
    "registry_password",
    "BUILDOPT_REGISTRY_PASSWORD",
    None,
    "INPUT_REGISTRY_PASSWORD",
)
.action("registry-password")
.help("the registry password or token (a secret)");

// The scan's policy and vulnerability data (resolved in `scan.rs`).
pub const SCAN_LEVEL: SettingVar = var(
    "scan_level",
    "BUILDOPT_SCAN_LEVEL",
    None,
    "INPUT_SCAN_LEVEL",
)
.action("scan-level")
.file("scan.level")
.default("low")
.help(
    "what the scan reports: low (everything), medium or high (drop lower known severities; \
     unknown is always reported) (`scan --level`)",
);
pub const FAIL_ON_CRITICAL: SettingVar = var(
    "fail_on_critical",
    "BUILDOPT_FAIL_ON_CRITICAL",
    Some("FAIL_ON_CRITICAL"),
    "INPUT_FAIL_ON_CRITICAL",
)
.action("fail-on-critical")
.file("scan.fail_on_critical")
.default("true")
.help("a reported critical finding fails the run (exit 3)");
pub const FAIL_ON_HIGH: SettingVar = var(
    "fail_on_high",
    "BUILDOPT_FAIL_ON_HIGH",
    Some("FAIL_ON_HIGH"),
    "INPUT_FAIL_ON_HIGH",
)
.action("fail-on-high")
.file("scan.fail_on_high")
.default("true")
.help("a reported high finding fails the run (exit 3; `scan --no-fail-high`)");
pub const IGNORE_UNFIXED: SettingVar = var(
    "ignore_unfixed",
    "BUILDOPT_IGNORE_UNFIXED",
    None,
    "INPUT_IGNORE_UNFIXED",
)
.action("ignore-unfixed")
.file("scan.ignore_unfixed")
.default("false")
.help("findings with no fix are listed but never fail the run (`scan --ignore-unfixed`)");
pub const IGNORE_FILE: SettingVar = var(
    "ignore_file",
    "BUILDOPT_IGNORE_FILE",
    None,
    "INPUT_IGNORE_FILE",
)
.action("ignore-file")
.file("scan.ignore_file")
.default("`.buildoptignore`")
.help("accepted findings, each with a reason and an optional expiry; `.trivyignore` is read too");
pub const SCANNER: SettingVar = var("scanner", "BUILDOPT_SCANNER", None, "INPUT_SCANNER")
    .action("scanner")
    .file("scan.scanner")
    .default("buildopt")
    .help(
        "buildopt, trivy or grype: also run that tool on each image and merge its findings \
         (`scan --scanner`); TRIVY_ENABLED=true selects trivy",
    );
pub const VULNDB_DIR: SettingVar = var(
    "vulndb_dir",
    "BUILDOPT_VULNDB_DIR",
    None,
    "INPUT_VULNDB_DIR",
)
.default("`$XDG_CACHE_HOME/buildopt/vulndb`, else `~/.cache/buildopt/vulndb`")
.help("the vulnerability database folder, outside the layer store and its size limit");
pub const SCAN_CACHE_DIR: SettingVar = var(
    "scan_cache_dir",
    "BUILDOPT_SCAN_CACHE_DIR",
    None,
    "INPUT_SCAN_CACHE_DIR",
)
.default("`<cache_dir>/scan` when caching is on, else `$XDG_CACHE_HOME/buildopt/scan`")
.help(
    "where the scan keeps layer inventories, findings and build records (the GitLab template \
     names a project folder, so GitLab's cache carries it)",
);
pub const VULNDB_URL: SettingVar = var(
    "vulndb_url",
    "BUILDOPT_VULNDB_URL",
    None,
    "INPUT_VULNDB_URL",
)
.action("vulndb-url")
.file("scan.vulndb_url")
.default("`https://osv-vulnerabilities.storage.googleapis.com`")
.help("where `scan --setup` downloads OSV's per-ecosystem archives (a mirror, or a test server)");
pub const VULNDB_ECOSYSTEMS: SettingVar = var(
    "vulndb_ecosystems",
    "BUILDOPT_VULNDB_ECOSYSTEMS",
    None,
    "INPUT_VULNDB_ECOSYSTEMS",
)
.file("scan.vulndb_ecosystems")
.default("every ecosystem buildopt matches")
.help(
    "the OSV ecosystems `scan --setup` downloads when it is given no `--ecosystem` and no \
     image, comma- or newline-separated (`Debian,PyPI`)",
);
pub const VULNDB_MAX_AGE_DAYS: SettingVar = var(
    "vulndb_max_age_days",
    "BUILDOPT_VULNDB_MAX_AGE_DAYS",
    None,
    "INPUT_VULNDB_MAX_AGE_DAYS",
)
.action("vulndb-max-age-days")
.file("scan.vulndb_max_age_days")
.default("5")
.help("a vulnerability database older than this many days is reported with a warning");
/// `TRIVY_ENABLED=true` (legacy) selects the trivy scanner when no scanner is named.
pub const TRIVY_ENABLED: &str = "TRIVY_ENABLED";

// Notifications (resolved in `notify.rs`).
pub const COMMENT: SettingVar = var("comment", "BUILDOPT_COMMENT", None, "INPUT_COMMENT")
    .action("comment")
    .file("notify.comment")
    .default("true")
    .help("keep a sticky PR/MR comment");
pub const COMMENT_HEADER: SettingVar = var(
    "comment_header",
    "BUILDOPT_COMMENT_HEADER",
    None,
    "INPUT_COMMENT_HEADER",
)
.action("comment-header")
.file("notify.comment_header")
.default("`default`")
.help("tells several buildopt comments on one PR apart");
pub const COMMENT_AUTHOR: SettingVar = var(
    "comment_author",
    "BUILDOPT_COMMENT_AUTHOR",
    None,
    "INPUT_COMMENT_AUTHOR",
)
.file("notify.comment_author")
.default("github-actions[bot]")
.help("whose comment is updated (on GitLab, the token's user)");
pub const SLACK_WEBHOOK: SettingVar = var(
    "slack_webhook",
    "BUILDOPT_SLACK_WEBHOOK",
    Some("SLACK_WEBHOOK"),
    "INPUT_SLACK_WEBHOOK",
)
.action("slack-webhook")
.help("Slack incoming webhook URL (a secret)");
pub const SLACK_ON: SettingVar = var("slack_on", "BUILDOPT_SLACK_ON", None, "INPUT_SLACK_ON")
    .action("slack-on")
    .file("notify.slack_on")
    .default("failure")
    .help("when Slack hears of a run: always, failure or change");
pub const SARIF: SettingVar = var("sarif", "BUILDOPT_SARIF", None, "INPUT_SARIF")
    .action("sarif")
    .file("notify.sarif")
    .help("SARIF files to upload, comma or newline separated (`--sarif`)");
pub const FAIL_ON_NOTIFY_ERROR: SettingVar = var(
    "fail_on_notify_error",
    "BUILDOPT_FAIL_ON_NOTIFY_ERROR",
    None,
    "INPUT_FAIL_ON_NOTIFY_ERROR",
)
.action("fail-on-notify-error")
.file("notify.fail_on_error")
.default("false")
.help("a failing publisher exits 5 instead of warning");
/// `GITHUB_TOKEN` is what workflows usually export; it is the "legacy" layer here.
pub const GITHUB_TOKEN: SettingVar = var(
    "github_token",
    "BUILDOPT_GITHUB_TOKEN",
    Some("GITHUB_TOKEN"),
    "INPUT_GITHUB_TOKEN",
)
.action("github-token")
.help("GitHub token for the comment and SARIF uploads; API at GITHUB_API_URL");
pub const GITLAB_TOKEN: SettingVar = var(
    "gitlab_token",
    "BUILDOPT_GITLAB_TOKEN",
    None,
    "INPUT_GITLAB_TOKEN",
)
.help("GitLab access token (PRIVATE-TOKEN), else CI_JOB_TOKEN");

/// Every setting, in the order `--help` and the docs/configuration.md list them.
pub const SETTING_VARS: &[SettingVar] = &[
    LEVEL,
    SELECTIVE,
    FORCE,
    VERBOSE,
    JOBS,
    DEFAULT_BRANCH,
    SELECTION,
    PLATFORMS,
    MAX_DEEPEN_ROUNDS,
    BUILD_TIMEOUT,
    AUTO_CLEANUP,
    TAGS,
    PUSH,
    KEEP_GOING,
    SCAN,
    SCAN_LEVEL,
    FAIL_ON_CRITICAL,
    FAIL_ON_HIGH,
    IGNORE_UNFIXED,
    IGNORE_FILE,
    SCANNER,
    VULNDB_DIR,
    SCAN_CACHE_DIR,
    VULNDB_URL,
    VULNDB_ECOSYSTEMS,
    VULNDB_MAX_AGE_DAYS,
    REGISTRY_USER,
    REGISTRY_PASSWORD,
    ENABLE_CACHING,
    CACHE_DIR,
    CACHE_SIZE_LIMIT_GB,
    CACHE_RETENTION_DAYS,
    CACHE_LOCK_TIMEOUT,
    CACHE_COMPRESSION,
    CACHE_RESTORE,
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
