//! Pure resolution of flags, environment and file into [`Settings`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::file::{FileOptions, Platform, check_platform};
use super::level::Level;
use super::vars::{self, SettingVar};
use crate::ci::Provider;
use crate::env::Env;

/// What selects the images a selective plan builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionMode {
    /// The diff between base and head, alone.
    Diff,
    /// The diff, plus every image whose current inputs have no recorded successful build and no
    /// image in the daemon (or, when pushing, the registry), when the cache store has a record.
    Record,
}

impl FromStr for SelectionMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "diff" => Ok(Self::Diff),
            "record" => Ok(Self::Record),
            _ => Err("expected diff or record".into()),
        }
    }
}

impl fmt::Display for SelectionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Diff => "diff",
            Self::Record => "record",
        })
    }
}

/// Where a resolved value came from, for `-v` output and error messages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Flag,
    Env(String),
    File,
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag => f.write_str("flag"),
            Self::Env(name) => write!(f, "${name}"),
            Self::File => f.write_str("buildopt.toml"),
            Self::Default => f.write_str("default"),
        }
    }
}

/// Values given on the command line; `None` means "not given".
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub level: Option<Level>,
    pub force: bool,
    pub verbose: u8,
    pub jobs: Option<usize>,
    /// The level when nothing names one (`buildopt ci` runs at `ci`); `None` means medium.
    pub default_level: Option<Level>,
}

/// A setting whose value could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value {value:?} for {setting} (from {origin}): {reason}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub value: String,
    pub origin: Source,
    pub reason: String,
}

/// The resolved settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub level: Level,
    pub selective: bool,
    /// What selects the images of a selective plan (see [`SelectionMode`]).
    pub selection: SelectionMode,
    pub force: bool,
    pub verbose: bool,
    pub jobs: usize,
    pub default_branch: Option<String>,
    /// The platforms of every image that names none of its own (`os/arch[/variant]`); empty
    /// leaves those images to the daemon's platform.
    pub platforms: Vec<String>,
    pub max_deepen_rounds: u32,
    // Build settings (`buildopt build`).
    /// Prune dangling images and old build cache after a build.
    pub auto_cleanup: bool,
    /// How long one image's build (its stages, the image, the push) may take before it fails
    /// and its dependents are skipped; `None` (the default) waits as long as the daemon works.
    pub build_timeout: Option<Duration>,
    /// Where each setting came from, by setting name.
    pub sources: BTreeMap<&'static str, Source>,
}

impl Settings {
    /// [`Settings::platforms`] unless `buildopt.toml` gave them: the workspace reads a file's
    /// value from each commit's own file.
    pub fn platforms_not_from_file(&self) -> &[String] {
        match self.sources.get(vars::PLATFORMS.setting) {
            Some(Source::File) => &[],
            _ => &self.platforms,
        }
    }
}

/// The number of rounds a shallow clone is deepened when nothing says otherwise (50 · 2⁶ commits).
pub const DEFAULT_DEEPEN_ROUNDS: u32 = 6;

impl Settings {
    /// Resolves every setting. `cpus` is the machine's parallelism, passed in to keep this pure.
    pub fn resolve(
        flags: &Flags,
        env: &Env,
        file: &FileOptions,
        cpus: usize,
    ) -> Result<Self, ConfigError> {
        let layers = Layers::of(env);
        let mut sources = BTreeMap::new();
        let mut record = |name: &'static str, source: Source| {
            sources.insert(name, source);
        };

        let (level, source) = layers.level(flags.level, flags.default_level, file)?;
        record("level", source);
        let (selective, source) = layers
            .pick(&vars::SELECTIVE, None, file.selective, parse_bool)?
            .unwrap_or((level.selective(), Source::Default));
        record("selective", source);
        let file_selection = file
            .selection
            .as_deref()
            .map(|raw| {
                parse_selection(raw).map_err(|reason| ConfigError {
                    setting: vars::SELECTION.setting,
                    value: raw.to_string(),
                    origin: Source::File,
                    reason,
                })
            })
            .transpose()?;
        let (selection, source) = layers
            .pick(&vars::SELECTION, None, file_selection, parse_selection)?
            .unwrap_or((SelectionMode::Record, Source::Default));
        record("selection", source);
        let force_flag = flags.force.then_some(true);
        let (force, source) = layers
            .pick(&vars::FORCE, force_flag, None, parse_bool)?
            .unwrap_or((false, Source::Default));
        record("force", source);
        let verbose_flag = (flags.verbose > 0).then_some(true);
        let (verbose, source) = layers
            .pick(&vars::VERBOSE, verbose_flag, None, parse_bool)?
            .unwrap_or((false, Source::Default));
        record("verbose", source);
        let (jobs, source) = layers
            .pick(&vars::JOBS, flags.jobs, file.jobs, parse_jobs)?
            .unwrap_or((level.jobs(cpus), Source::Default));
        // The flag and the file are typed but may still say 0, which would build nothing.
        if jobs == 0 {
            return Err(ConfigError {
                setting: vars::JOBS.setting,
                value: jobs.to_string(),
                origin: source,
                reason: JOBS_REASON.into(),
            });
        }
        record("jobs", source);
        let default_branch = layers.pick(
            &vars::DEFAULT_BRANCH,
            None,
            file.default_branch.clone(),
            parse_string,
        )?;
        if let Some((_, source)) = &default_branch {
            record("default_branch", source.clone());
        }
        let file_platforms = file
            .platforms
            .as_deref()
            .map(|list| Platform::names(Some(list)));
        let platforms = layers.pick(&vars::PLATFORMS, None, file_platforms, parse_platforms)?;
        if let Some((_, source)) = &platforms {
            record(vars::PLATFORMS.setting, source.clone());
        }
        let (max_deepen_rounds, source) = layers
            .pick(
                &vars::MAX_DEEPEN_ROUNDS,
                None,
                file.max_deepen_rounds,
                parse_rounds,
            )?
            .unwrap_or((DEFAULT_DEEPEN_ROUNDS, Source::Default));
        record("max_deepen_rounds", source);
        // Build settings (`buildopt build`).
        let (auto_cleanup, source) = layers
            .pick(&vars::AUTO_CLEANUP, None, file.auto_cleanup, parse_bool)?
            .unwrap_or((false, Source::Default));
        record("auto_cleanup", source);
        let (build_timeout, source) = layers
            .pick(
                &vars::BUILD_TIMEOUT,
                None,
                file.build_timeout,
                parse_seconds,
            )?
            .unwrap_or((0, Source::Default));
        record("build_timeout", source);

        Ok(Self {
            level,
            selective,
            selection,
            force,
            verbose,
            jobs,
            default_branch: default_branch.map(|(value, _)| value),
            platforms: platforms.map(|(value, _)| value).unwrap_or_default(),
            max_deepen_rounds,
            auto_cleanup,
            build_timeout: (build_timeout > 0).then(|| Duration::from_secs(build_timeout)),
            sources,
        })
    }
}

/// The environment layers of every setting, in precedence order; also used by `cache.rs`.
pub(super) struct Layers<'a> {
    pub(super) env: &'a Env,
    pub(super) github_inputs: bool,
}

impl<'a> Layers<'a> {
    /// The layers of `env`; the action's inputs count only in GitHub Actions.
    pub(super) fn of(env: &'a Env) -> Self {
        Self {
            env,
            github_inputs: Provider::detect(env) == Provider::GitHub,
        }
    }

    /// The first layer that sets the value: flag, `BUILDOPT_*`, legacy, `INPUT_*`, file.
    pub(super) fn pick<T>(
        &self,
        var: &SettingVar,
        flag: Option<T>,
        file: Option<T>,
        parse: fn(&str) -> Result<T, String>,
    ) -> Result<Option<(T, Source)>, ConfigError> {
        if let Some(value) = flag {
            return Ok(Some((value, Source::Flag)));
        }
        for name in self.env_names(var) {
            if let Some(raw) = self.env.get(name) {
                let value = parse(raw).map_err(|reason| ConfigError {
                    setting: var.setting,
                    value: raw.to_string(),
                    origin: Source::Env(name.to_string()),
                    reason,
                })?;
                return Ok(Some((value, Source::Env(name.to_string()))));
            }
        }
        Ok(file.map(|value| (value, Source::File)))
    }

    fn env_names(&self, var: &SettingVar) -> impl Iterator<Item = &'static str> {
        let input = self.github_inputs.then_some(var.input);
        std::iter::once(var.buildopt).chain(var.legacy).chain(input)
    }

    /// The level also honours the legacy `CI_MODE=true`, below every explicit level name.
    fn level(
        &self,
        flag: Option<Level>,
        default: Option<Level>,
        file: &FileOptions,
    ) -> Result<(Level, Source), ConfigError> {
        let file_level = match &file.level {
            Some(raw) => Some(raw.parse::<Level>().map_err(|reason| ConfigError {
                setting: "level",
                value: raw.clone(),
                origin: Source::File,
                reason,
            })?),
            None => None,
        };
        let explicit = self.pick(&vars::LEVEL, flag, None, |raw| raw.parse())?;
        if let Some(found) = explicit {
            return Ok(found);
        }
        if self.env.is_true(vars::CI_MODE) {
            return Ok((Level::Ci, Source::Env(vars::CI_MODE.to_string())));
        }
        Ok(file_level.map_or(
            (default.unwrap_or(Level::Medium), Source::Default),
            |level| (level, Source::File),
        ))
    }
}

pub(super) fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn parse_selection(raw: &str) -> Result<SelectionMode, String> {
    raw.parse()
}

const JOBS_REASON: &str = "expected a whole number of at least 1";

fn parse_jobs(raw: &str) -> Result<usize, String> {
    match raw.trim().parse::<usize>() {
        Ok(0) | Err(_) => Err(JOBS_REASON.into()),
        Ok(n) => Ok(n),
    }
}

fn parse_rounds(raw: &str) -> Result<u32, String> {
    raw.trim()
        .parse::<u32>()
        .map_err(|_| "expected a whole number".into())
}

fn parse_seconds(raw: &str) -> Result<u64, String> {
    raw.trim()
        .parse::<u64>()
        .map_err(|_| "expected a whole number of seconds (0: no deadline)".into())
}

fn parse_string(raw: &str) -> Result<String, String> {
    Ok(raw.trim().to_string())
}

/// Platforms separated by commas or line breaks (as buildx's `--platform` and the action's
/// `platforms` input take them), each `os/arch[/variant]`; blanks dropped, repeats once.
fn parse_platforms(raw: &str) -> Result<Vec<String>, String> {
    let mut platforms: Vec<String> = Vec::new();
    for platform in raw
        .split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        check_platform(platform)?;
        if !platforms.iter().any(|known| known == platform) {
            platforms.push(platform.to_owned());
        }
    }
    Ok(platforms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        flags: Flags,
        env: &[(&str, &str)],
        file: FileOptions,
    ) -> Result<Settings, ConfigError> {
        Settings::resolve(&flags, &Env::from_pairs(env.iter().copied()), &file, 4)
    }

    fn file_with_level(level: &str) -> FileOptions {
        FileOptions {
            level: Some(level.into()),
            ..FileOptions::default()
        }
    }

    #[test]
    fn auto_cleanup_takes_the_legacy_name_and_defaults_to_off() {
        let s = resolve(Flags::default(), &[], FileOptions::default()).expect("ok");
        assert!(!s.auto_cleanup);
        let env = [("AUTO_CLEANUP", "true")];
        let s = resolve(Flags::default(), &env, FileOptions::default()).expect("ok");
        assert!(s.auto_cleanup);
        let bad = resolve(
            Flags::default(),
            &[("AUTO_CLEANUP", "weekly")],
            FileOptions::default(),
        );
        assert!(bad.is_err());
    }

    #[test]
    fn defaults_are_the_medium_level() {
        let s = resolve(Flags::default(), &[], FileOptions::default()).expect("ok");
        assert_eq!(
            (s.level, s.selective, s.force, s.jobs),
            (Level::Medium, true, false, 4)
        );
        assert_eq!(s.sources["level"], Source::Default);
        assert_eq!(s.max_deepen_rounds, DEFAULT_DEEPEN_ROUNDS);
    }

    #[test]
    fn level_precedence_flag_env_legacy_input_file() {
        let file = file_with_level("maximum");
        let gh = ("GITHUB_ACTIONS", "true");
        type Case<'a> = (Option<Level>, &'a [(&'a str, &'a str)], Level, Source);
        let cases: &[Case<'_>] = &[
            (None, &[], Level::Maximum, Source::File),
            (
                None,
                &[gh, ("INPUT_LEVEL", "ci")],
                Level::Ci,
                Source::Env("INPUT_LEVEL".into()),
            ),
            (
                None,
                &[gh, ("INPUT_LEVEL", "ci"), ("OPTIMIZATION_LEVEL", "minimal")],
                Level::Minimal,
                Source::Env("OPTIMIZATION_LEVEL".into()),
            ),
            (
                None,
                &[
                    ("OPTIMIZATION_LEVEL", "minimal"),
                    ("BUILDOPT_LEVEL", "medium"),
                ],
                Level::Medium,
                Source::Env("BUILDOPT_LEVEL".into()),
            ),
            (
                Some(Level::Ci),
                &[("BUILDOPT_LEVEL", "medium")],
                Level::Ci,
                Source::Flag,
            ),
        ];
        for (flag, env, level, source) in cases {
            let flags = Flags {
                level: *flag,
                ..Flags::default()
            };
            let s = resolve(flags, env, file.clone()).expect("ok");
            assert_eq!(
                (s.level, &s.sources["level"]),
                (*level, source),
                "env {env:?}"
            );
        }
    }

    #[test]
    fn inputs_are_ignored_outside_github_actions() {
        let s = resolve(
            Flags::default(),
            &[("INPUT_LEVEL", "ci")],
            FileOptions::default(),
        )
        .expect("ok");
        assert_eq!(s.level, Level::Medium);
    }

    #[test]
    fn ci_mode_selects_ci_below_explicit_levels() {
        let s = resolve(
            Flags::default(),
            &[("CI_MODE", "true")],
            file_with_level("maximum"),
        )
        .expect("ok");
        assert_eq!(s.level, Level::Ci);
        let s = resolve(
            Flags::default(),
            &[("CI_MODE", "true"), ("OPTIMIZATION_LEVEL", "minimal")],
            FileOptions::default(),
        )
        .expect("ok");
        assert_eq!(s.level, Level::Minimal);
    }

    #[test]
    fn level_defaults_follow_the_level_unless_overridden() {
        let s = resolve(Flags::default(), &[], file_with_level("minimal")).expect("ok");
        assert_eq!((s.selective, s.jobs), (false, 1));
        let s = resolve(
            Flags::default(),
            &[("SELECTIVE_BUILD", "true")],
            file_with_level("minimal"),
        )
        .expect("ok");
        assert!(s.selective);
        let file = FileOptions {
            level: Some("minimal".into()),
            jobs: Some(3),
            ..FileOptions::default()
        };
        assert_eq!(
            resolve(Flags::default(), &[], file.clone())
                .expect("ok")
                .jobs,
            3
        );
        let flags = Flags {
            jobs: Some(7),
            ..Flags::default()
        };
        assert_eq!(
            resolve(flags, &[("BUILDOPT_JOBS", "2")], file)
                .expect("ok")
                .jobs,
            7
        );
    }

    #[test]
    fn buildopt_name_wins_over_legacy_alias() {
        let s = resolve(
            Flags::default(),
            &[("FORCE_REBUILD", "true"), ("BUILDOPT_FORCE", "false")],
            FileOptions::default(),
        )
        .expect("ok");
        assert!(!s.force);
        assert_eq!(s.sources["force"], Source::Env("BUILDOPT_FORCE".into()));
    }

    #[test]
    fn force_flag_wins_and_empty_env_is_unset() {
        let flags = Flags {
            force: true,
            ..Flags::default()
        };
        assert!(
            resolve(
                flags,
                &[("BUILDOPT_FORCE", "false")],
                FileOptions::default()
            )
            .expect("ok")
            .force
        );
        let s = resolve(
            Flags::default(),
            &[("BUILDOPT_FORCE", ""), ("FORCE_REBUILD", "yes")],
            FileOptions::default(),
        )
        .expect("ok");
        assert!(s.force);
    }

    #[test]
    fn invalid_values_name_the_variable_and_value() {
        let e = resolve(
            Flags::default(),
            &[("SELECTIVE_BUILD", "maybe")],
            FileOptions::default(),
        )
        .expect_err("bad");
        assert_eq!((e.setting, e.value.as_str()), ("selective", "maybe"));
        assert!(e.to_string().contains("$SELECTIVE_BUILD"), "{e}");
        let e = resolve(
            Flags::default(),
            &[("BUILDOPT_JOBS", "0")],
            FileOptions::default(),
        )
        .expect_err("bad");
        assert_eq!(e.setting, "jobs");
        let zero_jobs = Flags {
            jobs: Some(0),
            ..Flags::default()
        };
        let e = resolve(zero_jobs, &[], FileOptions::default()).expect_err("--jobs 0");
        assert_eq!((e.setting, &e.origin), ("jobs", &Source::Flag));
        let file = FileOptions {
            jobs: Some(0),
            ..FileOptions::default()
        };
        let e = resolve(Flags::default(), &[], file).expect_err("jobs = 0");
        assert_eq!((e.setting, &e.origin), ("jobs", &Source::File));
        let e = resolve(Flags::default(), &[], file_with_level("turbo")).expect_err("bad");
        assert_eq!((e.setting, &e.origin), ("level", &Source::File));
    }

    #[test]
    fn file_default_branch_and_rounds() {
        let file = FileOptions {
            default_branch: Some("trunk".into()),
            max_deepen_rounds: Some(2),
            ..FileOptions::default()
        };
        let s = resolve(
            Flags::default(),
            &[("BUILDOPT_DEFAULT_BRANCH", "develop")],
            file.clone(),
        )
        .expect("ok");
        assert_eq!(s.default_branch.as_deref(), Some("develop"));
        let s = resolve(Flags::default(), &[], file).expect("ok");
        assert_eq!(
            (s.default_branch.as_deref(), s.max_deepen_rounds),
            (Some("trunk"), 2)
        );
    }

    #[test]
    fn platforms_come_from_the_scripts_name_the_buildopt_name_or_the_file_and_are_checked() {
        let file = FileOptions {
            platforms: Some(vec![
                Platform::try_from("linux/arm/v7".to_owned()).expect("ok"),
            ]),
            ..FileOptions::default()
        };
        let legacy = [("BUILDX_PLATFORMS", " linux/amd64, linux/arm64 ,linux/amd64")];
        let s = resolve(Flags::default(), &legacy, file.clone()).expect("legacy");
        assert_eq!(s.platforms, ["linux/amd64", "linux/arm64"]);
        assert_eq!(
            s.sources.get("platforms"),
            Some(&Source::Env("BUILDX_PLATFORMS".into()))
        );
        let both = [
            ("BUILDX_PLATFORMS", "linux/amd64"),
            ("BUILDOPT_PLATFORMS", "linux/s390x"),
        ];
        let s = resolve(Flags::default(), &both, file.clone()).expect("both");
        assert_eq!(s.platforms, ["linux/s390x"]);
        assert_eq!(s.platforms_not_from_file(), ["linux/s390x"]);
        let s = resolve(Flags::default(), &[], file).expect("file");
        assert!(s.platforms_not_from_file().is_empty());
        assert_eq!(
            (s.platforms, s.sources.get("platforms")),
            (vec!["linux/arm/v7".to_owned()], Some(&Source::File))
        );
        let s = resolve(Flags::default(), &[], FileOptions::default()).expect("none");
        assert!(s.platforms.is_empty() && !s.sources.contains_key("platforms"));
        let error = resolve(
            Flags::default(),
            &[("BUILDOPT_PLATFORMS", "linux/amd64,arm64")],
            FileOptions::default(),
        )
        .expect_err("arm64 alone is no platform");
        assert_eq!(error.setting, "platforms");
        assert!(error.reason.contains("\"arm64\""), "{}", error.reason);
    }

    #[test]
    fn selection_is_record_aware_unless_set_to_diff() {
        let default = resolve(Flags::default(), &[], FileOptions::default()).expect("default");
        assert_eq!(default.selection, SelectionMode::Record);
        assert_eq!(default.sources["selection"], Source::Default);
        let file = FileOptions {
            selection: Some("diff".into()),
            ..FileOptions::default()
        };
        let from_file = resolve(Flags::default(), &[], file.clone()).expect("file");
        assert_eq!(
            (from_file.selection, &from_file.sources["selection"]),
            (SelectionMode::Diff, &Source::File)
        );
        let env = [("BUILDOPT_SELECTION", "Record")];
        let from_env = resolve(Flags::default(), &env, file).expect("env");
        assert_eq!(
            from_env.selection,
            SelectionMode::Record,
            "the environment wins"
        );
        let bad = [("BUILDOPT_SELECTION", "both")];
        let e = resolve(Flags::default(), &bad, FileOptions::default()).expect_err("bad");
        assert_eq!((e.setting, e.value.as_str()), ("selection", "both"));
        let file = FileOptions {
            selection: Some("git".into()),
            ..FileOptions::default()
        };
        let e = resolve(Flags::default(), &[], file).expect_err("bad");
        assert_eq!((e.setting, &e.origin), ("selection", &Source::File));
    }

    #[test]
    fn the_build_deadline_is_off_by_default_and_set_in_seconds() {
        let none = resolve(Flags::default(), &[], FileOptions::default()).expect("default");
        assert_eq!(none.build_timeout, None);
        let file = FileOptions {
            build_timeout: Some(600),
            ..FileOptions::default()
        };
        let from_file = resolve(Flags::default(), &[], file.clone()).expect("file");
        assert_eq!(from_file.build_timeout, Some(Duration::from_secs(600)));
        let env = [("BUILDOPT_BUILD_TIMEOUT", "0")];
        let off = resolve(Flags::default(), &env, file).expect("env");
        assert_eq!(off.build_timeout, None, "0 turns the file's deadline off");
        let bad = [("BUILDOPT_BUILD_TIMEOUT", "10m")];
        let err = resolve(Flags::default(), &bad, FileOptions::default()).expect_err("10m");
        assert_eq!(err.setting, "build_timeout");
    }
}
