//! The `buildopt.toml` schema and its parser.
//!
//! Owns: reading the optional configuration file into typed options, rejecting unknown or invalid
//! keys with the file, the line and a suggestion. Every field is optional; defaults live in
//! `resolve.rs`, not here.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOptions {
    /// `minimal`, `medium`, `maximum` or `ci`.
    pub level: Option<String>,
    /// Plan only what changed (`false` plans every image).
    pub selective: Option<bool>,
    /// What selects the images to build: `diff` (the diff alone) or `record` (also what the
    /// build record has no successful build of; the default).
    pub selection: Option<String>,
    /// How many images build at once.
    pub jobs: Option<usize>,
    /// The branch pull requests target by default, used when the CI does not say.
    pub default_branch: Option<String>,
    /// The platforms of every image that names none of its own.
    pub platforms: Option<Vec<Platform>>,
    /// How many times a shallow clone may be deepened (doubling each time) to find the merge base.
    pub max_deepen_rounds: Option<u32>,
    // Build settings (`buildopt build`).
    /// After a build, remove dangling images and build cache older than the retention.
    pub auto_cleanup: Option<bool>,
    /// How many days unused build cache is kept by the cleanup after a build.
    pub cache_retention_days: Option<u64>,
    /// Seconds an image's build may take before it fails (0: no deadline).
    pub build_timeout: Option<u64>,
    /// Commands run around each image's build.
    pub hooks: Option<HookOptions>,
    /// Patterns (`.dockerignore` syntax, relative to this file) whose change affects every image.
    pub inputs: Option<Vec<String>>,
    /// The images, by name. When present, discovery uses only these.
    pub images: Option<BTreeMap<String, ImageOptions>>,
    /// Where and when `buildopt notify` publishes.
    pub notify: Option<NotifyOptions>,
    /// What `buildopt scan` reports and what fails the run.
    pub scan: Option<ScanOptions>,
}

/// The `[scan]` table. The database folder is not accepted here: it is a path on one machine
/// (`BUILDOPT_VULNDB_DIR`), not a property of the repository.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanOptions {
    /// Scan every image `build` and `ci` built or reused, whatever the level says.
    pub enabled: Option<bool>,
    /// `low`, `medium` or `high`.
    pub level: Option<String>,
    pub fail_on_critical: Option<bool>,
    pub fail_on_high: Option<bool>,
    /// Findings with no fix never fail the run.
    pub ignore_unfixed: Option<bool>,
    /// The ignore file, relative to the workspace root.
    pub ignore_file: Option<String>,
    /// `buildopt`, `trivy` or `grype`.
    pub scanner: Option<String>,
    /// The base URL of OSV's per-ecosystem archives (a mirror).
    pub vulndb_url: Option<String>,
    /// The ecosystems `scan --setup` downloads by default.
    pub vulndb_ecosystems: Option<Vec<String>>,
    /// Days after which the database is reported as old.
    pub vulndb_max_age_days: Option<u64>,
}

/// The `[notify]` table. Secrets (tokens, the Slack webhook) are not accepted here: a committed
/// file is no place for them; they come from the environment.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyOptions {
    /// Keep a sticky comment on the pull or merge request.
    pub comment: Option<bool>,
    /// Tells this comment from other buildopt comments on the same PR.
    pub comment_header: Option<String>,
    /// The login whose comment is updated (GitHub default `github-actions[bot]`).
    pub comment_author: Option<String>,
    /// `always`, `failure` or `change`.
    pub slack_on: Option<String>,
    /// SARIF files to upload to GitHub code scanning.
    pub sarif: Option<Vec<String>>,
    /// A failing publisher fails the command (exit 5) instead of warning.
    pub fail_on_error: Option<bool>,
}

/// The `[hooks]` table: shell commands run per image (`sh -c`), with `BUILDOPT_IMAGE`,
/// `BUILDOPT_TAG` and (after the build) `BUILDOPT_RESULT` in their environment.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookOptions {
    pub pre_build: Option<String>,
    pub post_build: Option<String>,
    /// buildopt's own secrets ([`crate::scheduler::hooks::SECRET_VARS`]) that hooks may see; by
    /// default hooks run without them.
    #[serde(default)]
    pub pass_env: Vec<String>,
}

/// One `[images.NAME]` table. Paths are relative to the folder of `buildopt.toml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageOptions {
    /// The image repository, e.g. `ghcr.io/acme/api`; defaults to the image's name.
    pub image: Option<String>,
    /// The build context folder (default `.`).
    pub context: Option<String>,
    /// The Dockerfile (default `<context>/Dockerfile`).
    pub dockerfile: Option<String>,
    /// The stage to build.
    pub target: Option<String>,
    /// Build arguments.
    pub args: Option<BTreeMap<String, String>>,
    /// Tag templates: `{sha}`, `{short_sha}`, `{branch}`, `{tag}`.
    pub tags: Option<Vec<String>>,
    /// Target platforms, e.g. `linux/amd64`; several make one multi-platform image.
    pub platforms: Option<Vec<Platform>>,
    /// Extra input patterns (`.dockerignore` syntax, relative to `buildopt.toml`).
    pub inputs: Option<Vec<String>>,
    /// Images this one needs built first, beyond what its Dockerfile says.
    pub depends_on: Option<Vec<String>>,
    /// Named build contexts: a folder, `docker-image://REF`, or `target:IMAGE`.
    pub contexts: Option<BTreeMap<String, String>>,
}

/// A target platform as written, `os/arch[/variant]` (`linux/arm64`, `linux/arm/v7`), checked
/// when the file is read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Platform(String);

impl Platform {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The names of an optional list of platforms, as a file gives one; none is empty.
    pub fn names(platforms: Option<&[Platform]>) -> Vec<String> {
        platforms
            .unwrap_or_default()
            .iter()
            .map(|p| p.0.clone())
            .collect()
    }
}

impl TryFrom<String> for Platform {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        check_platform(&value).map(|()| Self(value))
    }
}

/// Whether `value` is a platform as Docker spells one: `os/arch` or `os/arch/variant`, each part
/// lowercase letters, digits, `_` or `.`.
pub fn check_platform(value: &str) -> Result<(), String> {
    let parts: Vec<&str> = value.split('/').collect();
    let word = |part: &&str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
    };
    if (2..=3).contains(&parts.len()) && parts.iter().all(word) {
        Ok(())
    } else {
        Err(format!(
            "platform {value:?} is not os/arch[/variant] (e.g. linux/amd64, linux/arm/v7)"
        ))
    }
}

/// A configuration file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {message}{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
pub struct FileError {
    pub path: String,
    /// 1-based; 0 when the parser gave no position.
    pub line: usize,
    pub message: String,
    pub suggestion: Option<String>,
}

/// Parses the bytes of `buildopt.toml`, which TOML requires to be UTF-8: a file that is not
/// is an error naming the line and the byte offset of the first byte that breaks it (a lossy
/// reading would parse something else than what the file says). `path` only names the file.
pub fn parse_bytes(bytes: &[u8], path: &Path) -> Result<FileOptions, FileError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text, path),
        Err(err) => {
            let offset = err.valid_up_to();
            Err(FileError {
                path: path.display().to_string(),
                line: bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1,
                message: format!(
                    "not UTF-8: invalid byte sequence at byte offset {offset} (0x{:02x})",
                    bytes[offset]
                ),
                suggestion: None,
            })
        }
    }
}

/// Parses the text of `buildopt.toml`; `path` only names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<FileOptions, FileError> {
    toml::from_str(text).map_err(|err| file_error(text, path, &err))
}

fn file_error(text: &str, path: &Path, err: &toml::de::Error) -> FileError {
    let line = err.span().map_or(0, |span| line_of(text, span.start));
    let message = err.message().trim().to_string();
    FileError {
        path: path.display().to_string(),
        line,
        suggestion: suggest(&message),
        message,
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`"), the closest name.
fn suggest(message: &str) -> Option<String> {
    let unknown = between(message, "unknown field `", "`")?;
    let expected_part = message.split_once("expected")?.1;
    expected_part
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|candidate| (strsim::jaro_winkler(unknown, candidate), candidate))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate.to_string())
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> FileError {
        parse(text, Path::new("buildopt.toml")).expect_err("must fail")
    }

    #[test]
    fn parses_a_full_file() {
        let text = r#"
level = "maximum"
selective = true
jobs = 3
inputs = ["Cargo.lock"]

[images.api]
context = "services/api"
args = { VERSION = "1.2" }
depends_on = ["core"]
contexts = { shared = "shared" }
"#;
        let options = parse(text, Path::new("buildopt.toml")).expect("valid");
        assert_eq!(options.level.as_deref(), Some("maximum"));
        assert_eq!(options.jobs, Some(3));
        let api = &options.images.as_ref().expect("images")["api"];
        assert_eq!(api.context.as_deref(), Some("services/api"));
        assert_eq!(api.args.as_ref().expect("args")["VERSION"], "1.2");
    }

    #[test]
    fn unknown_top_level_key_names_line_and_suggests() {
        let e = err("level = \"ci\"\nselectve = true\n");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("unknown field `selectve`"), "{e}");
        assert_eq!(e.suggestion.as_deref(), Some("selective"));
        assert!(e.to_string().starts_with("buildopt.toml:2: "), "{e}");
    }

    #[test]
    fn unknown_image_key_names_line_and_suggests() {
        let e = err("[images.api]\ncontext = \".\"\ndockerfle = \"Dockerfile\"\n");
        assert_eq!(e.line, 3);
        assert_eq!(e.suggestion.as_deref(), Some("dockerfile"));
    }

    #[test]
    fn wrong_type_names_line_without_suggestion() {
        let e = err("jobs = \"four\"\n");
        assert_eq!(e.line, 1);
        assert!(e.message.contains("invalid type"), "{e}");
        assert_eq!(e.suggestion, None);
    }

    #[test]
    fn far_off_unknown_key_gets_no_suggestion() {
        let e = err("zzzzqqq = 1\n");
        assert_eq!(e.suggestion, None);
    }

    #[test]
    fn a_platform_that_is_not_os_arch_names_line_and_value() {
        let text = "[images.api]\ncontext = \"api\"\nplatforms = [\"linux/amd64\", \"arm64\"]\n";
        let e = parse(text, Path::new("buildopt.toml")).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.message.contains("platform \"arm64\" is not os/arch"),
            "{e}"
        );
        for good in [
            "linux/amd64",
            "linux/arm/v7",
            "linux/arm64/v8",
            "windows/amd64",
        ] {
            assert_eq!(check_platform(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "linux",
            "linux/",
            "linux/amd64/v8/x",
            "Linux/AMD64",
            "linux amd64",
        ] {
            assert!(check_platform(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn malformed_toml_names_line() {
        let e = err("level = \"ci\"\n[images.api\n");
        assert_eq!(e.line, 2);
    }

    #[test]
    fn notify_table_parses_and_rejects_unknown_keys_with_a_suggestion() {
        let text = "[notify]\ncomment = false\nslack_on = \"change\"\nsarif = [\"a.sarif\"]\n";
        let options = parse(text, Path::new("buildopt.toml")).expect("valid");
        let notify = options.notify.expect("notify");
        assert_eq!(notify.comment, Some(false));
        assert_eq!(notify.sarif, Some(vec!["a.sarif".to_string()]));
        let e = err("[notify]\ncomment = true\ncomment_heder = \"x\"\n");
        assert_eq!(e.line, 3);
        assert!(e.message.contains("unknown field `comment_heder`"), "{e}");
        assert_eq!(e.suggestion.as_deref(), Some("comment_header"));
    }

    #[test]
    fn scan_table_parses_and_rejects_unknown_keys_with_a_suggestion() {
        let text = "[scan]\nlevel = \"high\"\nfail_on_high = false\nvulndb_max_age_days = 9\n";
        let scan = parse(text, Path::new("buildopt.toml"))
            .expect("valid")
            .scan
            .expect("scan");
        assert_eq!(scan.level.as_deref(), Some("high"));
        assert_eq!(scan.fail_on_high, Some(false));
        assert_eq!(scan.vulndb_max_age_days, Some(9));
        let e = err("[scan]\nignore_unfxed = true\n");
        assert_eq!(e.line, 2);
        assert_eq!(e.suggestion.as_deref(), Some("ignore_unfixed"));
        let e = err("[scan]\nvulndb_dir = \"/tmp/db\"\n");
        assert!(e.message.contains("unknown field `vulndb_dir`"), "{e}");
    }

    #[test]
    fn empty_file_is_valid() {
        assert_eq!(parse("", Path::new("b.toml")), Ok(FileOptions::default()));
    }

    #[test]
    fn bytes_that_are_not_utf8_name_the_line_and_offset() {
        let err = parse_bytes(b"level = \"ci\"\n# caf\xe9\n", Path::new("buildopt.toml"))
            .expect_err("latin-1");
        assert_eq!(err.line, 2);
        assert!(err.message.contains("byte offset 18 (0xe9)"), "{err}");
        assert!(parse_bytes(b"level = \"ci\"\n", Path::new("b.toml")).is_ok());
    }
}
