//! The scan's settings: the report level, the gates (`FAIL_ON_CRITICAL`, `FAIL_ON_HIGH`,
//! `--ignore-unfixed`), the ignore file, which scanner runs besides buildopt's own, and where
//! the vulnerability database lives, comes from and how old it may be.
//!
//! Each comes from the `scan` command's flag (filled by the command line into [`ScanFlags`]),
//! then `BUILDOPT_<NAME>`, then the seed scripts' name (`FAIL_ON_CRITICAL`, `FAIL_ON_HIGH`;
//! `TRIVY_ENABLED=true` selects trivy below every explicit scanner name), then the action's
//! input, then `buildopt.toml`'s `[scan]` table, then the default.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::file::{FileOptions, ScanOptions};
use super::resolve::{Layers, parse_bool};
use super::vars::{self, SettingVar};
use super::{ConfigError, Source};
use crate::env::Env;
use crate::scan::external::Tool;
use crate::scan::ignore::{BUILDOPT_IGNORE, TRIVY_IGNORE};
use crate::scan::policy::{Policy, ScanLevel};

/// OSV's public bucket of per-ecosystem archives.
pub const DEFAULT_VULNDB_URL: &str = "https://osv-vulnerabilities.storage.googleapis.com";
/// Grype's freshness limit, which the seed had none of.
pub const DEFAULT_VULNDB_MAX_AGE_DAYS: u64 = 5;

/// Which scanner runs on each image besides buildopt's own matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scanner {
    /// buildopt's matching alone.
    #[default]
    Buildopt,
    Trivy,
    Grype,
}

impl Scanner {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buildopt => "buildopt",
            Self::Trivy => "trivy",
            Self::Grype => "grype",
        }
    }

    /// The tool to run besides buildopt's own matching, if any.
    pub fn external(self) -> Option<Tool> {
        match self {
            Self::Buildopt => None,
            Self::Trivy => Some(Tool::Trivy),
            Self::Grype => Some(Tool::Grype),
        }
    }
}

impl fmt::Display for Scanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scanner {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "buildopt" => Ok(Self::Buildopt),
            "trivy" => Ok(Self::Trivy),
            "grype" => Ok(Self::Grype),
            _ => Err("expected buildopt, trivy or grype".into()),
        }
    }
}

/// The resolved scan settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanSettings {
    pub level: ScanLevel,
    pub fail_on_critical: bool,
    pub fail_on_high: bool,
    pub ignore_unfixed: bool,
    /// `.buildoptignore` (or the named file), absolute.
    pub ignore_file: PathBuf,
    /// The ignore file was named by a setting: a missing file is then an error.
    pub ignore_file_named: bool,
    /// `.trivyignore` at the workspace root, read too when present.
    pub trivy_ignore_file: PathBuf,
    pub scanner: Scanner,
    /// The vulnerability database folder, absolute.
    pub vulndb_dir: PathBuf,
    /// The scan cache folder when a setting names one (absolute); else it is in the store.
    pub scan_cache_dir: Option<PathBuf>,
    /// The base URL `scan --setup` downloads from, without a trailing `/`.
    pub vulndb_url: String,
    /// What `scan --setup` downloads when asked for nothing in particular; empty: every
    /// ecosystem buildopt matches.
    pub vulndb_ecosystems: Vec<String>,
    pub vulndb_max_age_days: u64,
}

/// The scan settings the `scan` command line gave; defaults mean "not given".
#[derive(Debug, Clone, Default)]
pub struct ScanFlags {
    /// `scan --level` (not `build --level`, the optimisation level).
    pub level: Option<ScanLevel>,
    /// `--no-fail-high`.
    pub no_fail_high: bool,
    /// `--ignore-unfixed`.
    pub ignore_unfixed: bool,
    /// `--scanner`.
    pub scanner: Option<Scanner>,
}

impl ScanSettings {
    /// Resolves the scan settings; relative paths are taken from `base` (the `-C` folder).
    pub fn resolve(
        flags: &ScanFlags,
        env: &Env,
        file: &FileOptions,
        base: &Path,
    ) -> Result<Self, ConfigError> {
        let layers = Layers::of(env);
        let table = file.scan.clone().unwrap_or_default();
        let level = pick(
            &layers,
            &vars::SCAN_LEVEL,
            flags.level,
            file_value(&table.level, &vars::SCAN_LEVEL, |raw| raw.parse())?,
            |raw| raw.parse(),
        )?
        .unwrap_or_default();
        let fail_on_critical = pick(
            &layers,
            &vars::FAIL_ON_CRITICAL,
            None,
            table.fail_on_critical,
            parse_bool,
        )?
        .unwrap_or(true);
        let fail_on_high = pick(
            &layers,
            &vars::FAIL_ON_HIGH,
            flags.no_fail_high.then_some(false),
            table.fail_on_high,
            parse_bool,
        )?
        .unwrap_or(true);
        let ignore_unfixed = pick(
            &layers,
            &vars::IGNORE_UNFIXED,
            flags.ignore_unfixed.then_some(true),
            table.ignore_unfixed,
            parse_bool,
        )?
        .unwrap_or(false);
        let ignore_file = pick(
            &layers,
            &vars::IGNORE_FILE,
            None,
            table.ignore_file.clone().map(PathBuf::from),
            |raw| Ok(PathBuf::from(raw)),
        )?;
        let vulndb_url = pick(
            &layers,
            &vars::VULNDB_URL,
            None,
            file_value(&table.vulndb_url, &vars::VULNDB_URL, parse_url)?,
            parse_url,
        )?
        .unwrap_or_else(|| DEFAULT_VULNDB_URL.to_string());
        let vulndb_ecosystems = pick(
            &layers,
            &vars::VULNDB_ECOSYSTEMS,
            None,
            table
                .vulndb_ecosystems
                .clone()
                .map(|names| names.iter().map(|n| n.trim().to_owned()).collect()),
            parse_ecosystems,
        )?
        .unwrap_or_default();
        let vulndb_max_age_days = pick(
            &layers,
            &vars::VULNDB_MAX_AGE_DAYS,
            None,
            table.vulndb_max_age_days,
            parse_days,
        )?
        .unwrap_or(DEFAULT_VULNDB_MAX_AGE_DAYS);
        let vulndb_dir = match pick(&layers, &vars::VULNDB_DIR, None, None, |raw| {
            Ok(PathBuf::from(raw))
        })? {
            Some(dir) => base.join(dir),
            None => default_vulndb_dir(env, base),
        };
        let scan_cache_dir = pick(&layers, &vars::SCAN_CACHE_DIR, None, None, |raw| {
            Ok(PathBuf::from(raw))
        })?
        .map(|dir| base.join(dir));
        Ok(Self {
            level,
            fail_on_critical,
            fail_on_high,
            ignore_unfixed,
            ignore_file_named: ignore_file.is_some(),
            ignore_file: base.join(ignore_file.unwrap_or_else(|| PathBuf::from(BUILDOPT_IGNORE))),
            trivy_ignore_file: base.join(TRIVY_IGNORE),
            scanner: scanner(&layers, flags, &table)?,
            vulndb_dir,
            scan_cache_dir,
            vulndb_url,
            vulndb_ecosystems,
            vulndb_max_age_days,
        })
    }

    /// The policy `scan::policy::apply` and the gate read.
    pub fn policy(&self) -> Policy {
        Policy {
            level: self.level,
            fail_on_critical: self.fail_on_critical,
            fail_on_high: self.fail_on_high,
            ignore_unfixed: self.ignore_unfixed,
        }
    }
}

/// The scanner: an explicit name (flag, `BUILDOPT_SCANNER`, the action's input) first, then
/// the legacy `TRIVY_ENABLED=true`, then `buildopt.toml`, then buildopt alone.
fn scanner(
    layers: &Layers<'_>,
    flags: &ScanFlags,
    table: &ScanOptions,
) -> Result<Scanner, ConfigError> {
    if let Some((scanner, _)) =
        layers.pick(&vars::SCANNER, flags.scanner, None, |raw| raw.parse())?
    {
        return Ok(scanner);
    }
    if let Some(raw) = layers.env.get(vars::TRIVY_ENABLED) {
        let enabled = parse_bool(raw).map_err(|reason| ConfigError {
            setting: vars::SCANNER.setting,
            value: raw.to_string(),
            origin: Source::Env(vars::TRIVY_ENABLED.to_string()),
            reason,
        })?;
        if enabled {
            return Ok(Scanner::Trivy);
        }
    }
    Ok(file_value(&table.scanner, &vars::SCANNER, |raw| raw.parse())?.unwrap_or_default())
}

/// `$XDG_CACHE_HOME/buildopt/vulndb`, else `$HOME/.cache/buildopt/vulndb`; with neither set,
/// `.cache/buildopt/vulndb` under `base`.
fn default_vulndb_dir(env: &Env, base: &Path) -> PathBuf {
    let cache = env
        .get("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| env.get("HOME").map(|home| Path::new(home).join(".cache")))
        .unwrap_or_else(|| base.join(".cache"));
    cache.join("buildopt").join("vulndb")
}

fn pick<T>(
    layers: &Layers<'_>,
    var: &SettingVar,
    flag: Option<T>,
    file: Option<T>,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Option<T>, ConfigError> {
    Ok(layers.pick(var, flag, file, parse)?.map(|(value, _)| value))
}

/// A `[scan]` value the file gives as text, parsed as the environment's would be.
fn file_value<T>(
    raw: &Option<String>,
    var: &SettingVar,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Option<T>, ConfigError> {
    raw.as_deref()
        .map(|text| {
            parse(text).map_err(|reason| ConfigError {
                setting: var.setting,
                value: text.to_string(),
                origin: Source::File,
                reason,
            })
        })
        .transpose()
}

/// A list of OSV ecosystem names, comma- or newline-separated; `Rocky Linux` keeps its space.
fn parse_ecosystems(raw: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = raw
        .split([',', '\n'])
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(bad) = names
        .iter()
        .find(|n| n.contains(['/', '\\']) || n.starts_with('.'))
    {
        return Err(format!("{bad:?} is not an OSV ecosystem name"));
    }
    Ok(names)
}

fn parse_url(raw: &str) -> Result<String, String> {
    let url = raw.trim().trim_end_matches('/');
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    if scheme_ok && url.len() > url.find("://").map_or(0, |at| at + 3) {
        Ok(url.to_string())
    } else {
        Err("expected an http:// or https:// URL".into())
    }
}

fn parse_days(raw: &str) -> Result<u64, String> {
    match raw.trim().parse::<u64>() {
        Ok(0) | Err(_) => Err("expected a whole number of days, at least 1".into()),
        Ok(days) => Ok(days),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::file;

    fn resolve_with(
        flags: &ScanFlags,
        env: &[(&str, &str)],
        toml: &str,
    ) -> Result<ScanSettings, ConfigError> {
        let file = file::parse(toml, Path::new("buildopt.toml")).expect("valid file");
        ScanSettings::resolve(
            flags,
            &Env::from_pairs(env.iter().copied()),
            &file,
            Path::new("/repo"),
        )
    }

    fn resolve(env: &[(&str, &str)]) -> ScanSettings {
        resolve_with(&ScanFlags::default(), env, "").expect("valid")
    }

    #[test]
    fn defaults_are_the_seed_s() {
        let settings = resolve(&[("HOME", "/home/u")]);
        assert_eq!(settings.level, ScanLevel::Low);
        assert!(settings.fail_on_critical && settings.fail_on_high && !settings.ignore_unfixed);
        assert_eq!(settings.ignore_file, Path::new("/repo/.buildoptignore"));
        assert!(!settings.ignore_file_named);
        assert_eq!(settings.trivy_ignore_file, Path::new("/repo/.trivyignore"));
        assert_eq!(settings.scanner, Scanner::Buildopt);
        assert_eq!(
            settings.vulndb_dir,
            Path::new("/home/u/.cache/buildopt/vulndb")
        );
        assert_eq!(settings.vulndb_url, DEFAULT_VULNDB_URL);
        assert_eq!(settings.vulndb_max_age_days, 5);
        assert_eq!(settings.policy(), Policy::default());
    }

    #[test]
    fn the_database_folder_follows_xdg_then_home() {
        let xdg = resolve(&[("XDG_CACHE_HOME", "/xdg"), ("HOME", "/home/u")]);
        assert_eq!(xdg.vulndb_dir, Path::new("/xdg/buildopt/vulndb"));
        // The XDG spec ignores a relative XDG_CACHE_HOME.
        let relative = resolve(&[("XDG_CACHE_HOME", "xdg"), ("HOME", "/home/u")]);
        assert_eq!(
            relative.vulndb_dir,
            Path::new("/home/u/.cache/buildopt/vulndb")
        );
        let named = resolve(&[("BUILDOPT_VULNDB_DIR", "db"), ("XDG_CACHE_HOME", "/xdg")]);
        assert_eq!(named.vulndb_dir, Path::new("/repo/db"));
        let nothing = resolve(&[]);
        assert_eq!(
            nothing.vulndb_dir,
            Path::new("/repo/.cache/buildopt/vulndb")
        );
    }

    #[test]
    fn legacy_gates_and_flags_in_their_order() {
        let legacy = resolve(&[("FAIL_ON_HIGH", "false"), ("FAIL_ON_CRITICAL", "no")]);
        assert!(!legacy.fail_on_high && !legacy.fail_on_critical);
        let both = resolve(&[("FAIL_ON_HIGH", "false"), ("BUILDOPT_FAIL_ON_HIGH", "true")]);
        assert!(both.fail_on_high, "BUILDOPT_ wins over the legacy name");
        let flags = ScanFlags {
            no_fail_high: true,
            ignore_unfixed: true,
            level: Some(ScanLevel::High),
            scanner: Some(Scanner::Grype),
        };
        let flagged = resolve_with(
            &flags,
            &[
                ("BUILDOPT_FAIL_ON_HIGH", "true"),
                ("BUILDOPT_SCAN_LEVEL", "medium"),
                ("BUILDOPT_SCANNER", "trivy"),
            ],
            "",
        )
        .expect("valid");
        assert!(!flagged.fail_on_high && flagged.ignore_unfixed);
        assert_eq!(flagged.level, ScanLevel::High);
        assert_eq!(flagged.scanner, Scanner::Grype);
    }

    #[test]
    fn the_file_sets_the_policy_below_the_environment() {
        let toml = "[scan]\nlevel = \"medium\"\nfail_on_critical = false\nignore_unfixed = true\n\
                    ignore_file = \"security/accepted.toml\"\nscanner = \"grype\"\n\
                    vulndb_url = \"https://mirror.example/osv/\"\nvulndb_max_age_days = 2\n";
        let settings = resolve_with(&ScanFlags::default(), &[], toml).expect("valid");
        assert_eq!(settings.level, ScanLevel::Medium);
        assert!(!settings.fail_on_critical && settings.ignore_unfixed);
        assert_eq!(
            settings.ignore_file,
            Path::new("/repo/security/accepted.toml")
        );
        assert!(settings.ignore_file_named);
        assert_eq!(settings.scanner, Scanner::Grype);
        assert_eq!(settings.vulndb_url, "https://mirror.example/osv");
        assert_eq!(settings.vulndb_max_age_days, 2);
        let env = resolve_with(
            &ScanFlags::default(),
            &[("BUILDOPT_SCAN_LEVEL", "high")],
            toml,
        )
        .expect("valid");
        assert_eq!(env.level, ScanLevel::High);
    }

    #[test]
    fn the_ecosystems_to_set_up_come_as_a_list() {
        assert!(resolve(&[]).vulndb_ecosystems.is_empty());
        let listed = resolve(&[("BUILDOPT_VULNDB_ECOSYSTEMS", "Debian, PyPI\nRocky Linux,,")]);
        assert_eq!(listed.vulndb_ecosystems, ["Debian", "PyPI", "Rocky Linux"]);
        let file = resolve_with(
            &ScanFlags::default(),
            &[],
            "[scan]\nvulndb_ecosystems = [\"npm\", \" Go \"]\n",
        )
        .expect("valid");
        assert_eq!(file.vulndb_ecosystems, ["npm", "Go"]);
    }

    #[test]
    fn trivy_enabled_selects_trivy_below_explicit_names() {
        assert_eq!(
            resolve(&[("TRIVY_ENABLED", "true")]).scanner,
            Scanner::Trivy
        );
        assert_eq!(
            resolve(&[("TRIVY_ENABLED", "false")]).scanner,
            Scanner::Buildopt
        );
        let named = resolve(&[("TRIVY_ENABLED", "true"), ("BUILDOPT_SCANNER", "grype")]);
        assert_eq!(named.scanner, Scanner::Grype);
        let over_file = resolve_with(
            &ScanFlags::default(),
            &[("TRIVY_ENABLED", "1")],
            "[scan]\nscanner = \"grype\"\n",
        )
        .expect("valid");
        assert_eq!(over_file.scanner, Scanner::Trivy);
        let input = resolve(&[
            ("GITHUB_ACTIONS", "true"),
            ("INPUT_SCANNER", "grype"),
            ("INPUT_SCAN_LEVEL", "high"),
            ("INPUT_IGNORE_UNFIXED", "true"),
        ]);
        assert_eq!(input.scanner, Scanner::Grype);
        assert_eq!(input.level, ScanLevel::High);
        assert!(input.ignore_unfixed);
    }

    #[test]
    fn bad_values_name_their_source() {
        for (name, value) in [
            ("BUILDOPT_SCAN_LEVEL", "critical"),
            ("BUILDOPT_FAIL_ON_HIGH", "maybe"),
            ("FAIL_ON_CRITICAL", "2"),
            ("BUILDOPT_SCANNER", "snyk"),
            ("TRIVY_ENABLED", "sure"),
            ("BUILDOPT_VULNDB_URL", "ftp://mirror"),
            ("BUILDOPT_VULNDB_ECOSYSTEMS", "Debian,../../etc"),
            ("BUILDOPT_VULNDB_URL", "https://"),
            ("BUILDOPT_VULNDB_MAX_AGE_DAYS", "0"),
            ("BUILDOPT_VULNDB_MAX_AGE_DAYS", "99999999999999999999999"),
            ("BUILDOPT_IGNORE_UNFIXED", "-1"),
        ] {
            let err = resolve_with(&ScanFlags::default(), &[(name, value)], "").expect_err(name);
            assert!(err.to_string().contains(name), "{err}");
        }
        let err = resolve_with(&ScanFlags::default(), &[], "[scan]\nlevel = \"severe\"\n")
            .expect_err("bad level in the file");
        assert!(err.to_string().contains("buildopt.toml"), "{err}");
    }

    #[test]
    fn scanner_names_parse_and_print() {
        for scanner in [Scanner::Buildopt, Scanner::Trivy, Scanner::Grype] {
            assert_eq!(scanner.to_string().parse::<Scanner>(), Ok(scanner));
        }
        assert_eq!(" Trivy ".parse::<Scanner>(), Ok(Scanner::Trivy));
        assert_eq!(Scanner::Buildopt.external(), None);
        assert_eq!(Scanner::Grype.external(), Some(Tool::Grype));
        assert!("".parse::<Scanner>().is_err());
    }
}
