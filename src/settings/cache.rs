//! The cache's settings: whether caching is on, where the store lives, its size limit,
//! retention, archive compression, how long to wait for the store's lock and which stored
//! images a build loads.
//!
//! Each comes from `BUILDOPT_<NAME>`, then the original scripts' name (`ENABLE_CACHING`,
//! `CACHE_SIZE_LIMIT_GB`, `CACHE_RETENTION_DAYS`), then the GitHub Action input, then
//! `buildopt.toml` (`cache_retention_days` only), then the default; a command-line flag
//! (`--cache-dir`, `--compression`, `--cache-retention-days`) wins over all of them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::FileOptions;
use super::resolve::{Layers, parse_bool};
use super::vars::{self, SettingVar};
use super::{ConfigError, Level};
use crate::cache::Compression;
use crate::cache::store::{DEFAULT_DIR, DEFAULT_LOCK_TIMEOUT};
use crate::env::Env;

/// The size limit when nothing sets one: GitHub's per-repository cache quota.
pub const DEFAULT_SIZE_LIMIT_GB: u64 = 10;
/// The retention when nothing sets one: GitHub evicts caches unused for 7 days.
pub const DEFAULT_RETENTION_DAYS: u64 = 7;

/// The resolved cache settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// Restore before and export after builds (levels medium, maximum and ci by default).
    pub enabled: bool,
    /// Also build, cache and restore the intermediate stages of multi-stage Dockerfiles as
    /// their own images (level maximum, when caching is on).
    pub stages: bool,
    /// The store folder, absolute.
    pub dir: PathBuf,
    pub size_limit_bytes: u64,
    pub retention_days: u64,
    pub compression: Compression,
    /// How long a job waits for another job's store lock before going on without the cache.
    pub lock_timeout: Duration,
    /// Which stored images a build loads into the daemon before it builds.
    pub restore: RestoreScope,
}

/// Which stored images a build loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestoreScope {
    /// The images the run builds and the images they build from: all a build needs.
    #[default]
    Built,
    /// Every image of the workspace the store holds, so the job ends with all of them in the
    /// daemon (for later steps that run them) as a job that builds everything would.
    All,
}

/// Cache settings given on the command line.
#[derive(Debug, Clone, Default)]
pub struct CacheFlags {
    pub dir: Option<PathBuf>,
    pub compression: Option<Compression>,
    pub retention_days: Option<u64>,
}

impl CacheSettings {
    /// Resolves the cache settings; relative folders are taken from `base` (the `-C` folder).
    /// The retention is the one setting here that `buildopt.toml` also sets
    /// (`cache_retention_days`): the store's pruning and the daemon cleanup after a build both
    /// read it from here.
    pub fn resolve(
        flags: &CacheFlags,
        env: &Env,
        file: &FileOptions,
        level: Level,
        base: &Path,
    ) -> Result<Self, ConfigError> {
        let layers = Layers::of(env);
        let pick = |var: &SettingVar, flag: Option<u64>, file_value: Option<u64>| {
            Ok::<_, ConfigError>(
                layers
                    .pick(var, flag, file_value, parse_count)?
                    .map(|(value, _)| value),
            )
        };
        let enabled = layers
            .pick(&vars::ENABLE_CACHING, None, None, parse_bool)?
            .map_or(level.profile().cache, |(on, _)| on);
        let dir = match &flags.dir {
            Some(dir) => dir.clone(),
            None => layers
                .pick(&vars::CACHE_DIR, None, None, |raw| Ok(PathBuf::from(raw)))?
                .map_or_else(|| PathBuf::from(DEFAULT_DIR), |(dir, _)| dir),
        };
        let compression = match flags.compression {
            Some(c) => c,
            None => layers
                .pick(&vars::CACHE_COMPRESSION, None, None, parse_compression)?
                .map_or(Compression::Zstd, |(c, _)| c),
        };
        let size_gb =
            pick(&vars::CACHE_SIZE_LIMIT_GB, None, None)?.unwrap_or(DEFAULT_SIZE_LIMIT_GB);
        let retention_days = pick(
            &vars::CACHE_RETENTION_DAYS,
            flags.retention_days,
            file.cache_retention_days,
        )?
        .unwrap_or(DEFAULT_RETENTION_DAYS);
        let lock_timeout = pick(&vars::CACHE_LOCK_TIMEOUT, None, None)?
            .map_or(DEFAULT_LOCK_TIMEOUT, Duration::from_secs);
        let restore = layers
            .pick(&vars::CACHE_RESTORE, None, None, parse_restore)?
            .map_or(RestoreScope::Built, |(scope, _)| scope);
        Ok(Self {
            enabled,
            stages: enabled && level.profile().stages,
            dir: base.join(dir),
            size_limit_bytes: size_gb.saturating_mul(1 << 30),
            retention_days,
            compression,
            lock_timeout,
            restore,
        })
    }
}

fn parse_count(raw: &str) -> Result<u64, String> {
    raw.trim()
        .parse::<u64>()
        .map_err(|_| "expected a whole number".into())
}

fn parse_restore(raw: &str) -> Result<RestoreScope, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "built" => Ok(RestoreScope::Built),
        "all" => Ok(RestoreScope::All),
        _ => Err("expected built or all".into()),
    }
}

fn parse_compression(raw: &str) -> Result<Compression, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "zstd" => Ok(Compression::Zstd),
        "gzip" => Ok(Compression::Gzip),
        _ => Err("expected zstd or gzip".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(env: &[(&str, &str)], level: Level) -> Result<CacheSettings, ConfigError> {
        CacheSettings::resolve(
            &CacheFlags::default(),
            &Env::from_pairs(env.iter().copied()),
            &FileOptions::default(),
            level,
            Path::new("/repo"),
        )
    }

    #[test]
    fn the_retention_comes_from_the_environment_then_the_file_then_the_default() {
        let file = FileOptions {
            cache_retention_days: Some(3),
            ..FileOptions::default()
        };
        let resolve_with = |env: &[(&str, &str)]| {
            let env = Env::from_pairs(env.iter().copied());
            CacheSettings::resolve(
                &CacheFlags::default(),
                &env,
                &file,
                Level::Medium,
                Path::new("/"),
            )
            .expect("valid")
            .retention_days
        };
        assert_eq!(resolve_with(&[]), 3, "buildopt.toml");
        let flags = CacheFlags {
            retention_days: Some(1),
            ..CacheFlags::default()
        };
        let env = Env::from_pairs([("BUILDOPT_CACHE_RETENTION_DAYS", "9")]);
        let from_flag =
            CacheSettings::resolve(&flags, &env, &file, Level::Medium, Path::new("/")).expect("ok");
        assert_eq!(from_flag.retention_days, 1, "the flag wins");
        assert_eq!(
            resolve_with(&[("CACHE_RETENTION_DAYS", "5")]),
            5,
            "legacy name"
        );
        assert_eq!(
            resolve_with(&[
                ("BUILDOPT_CACHE_RETENTION_DAYS", "9"),
                ("CACHE_RETENTION_DAYS", "5")
            ]),
            9
        );
        assert_eq!(
            resolve(&[], Level::Medium).expect("valid").retention_days,
            DEFAULT_RETENTION_DAYS
        );
    }

    #[test]
    fn defaults_follow_the_level() {
        let s = resolve(&[], Level::Medium).expect("ok");
        assert!(s.enabled);
        assert_eq!(s.dir, Path::new("/repo/.build_cache"));
        assert_eq!((s.size_limit_bytes, s.retention_days), (10 << 30, 7));
        assert_eq!(s.lock_timeout, Duration::from_secs(600));
        assert_eq!(s.restore, RestoreScope::Built);
        assert!(!resolve(&[], Level::Minimal).expect("ok").enabled);
    }

    #[test]
    fn only_level_maximum_caches_intermediate_stages() {
        assert!(!resolve(&[], Level::Medium).expect("ok").stages);
        assert!(!resolve(&[], Level::Ci).expect("ok").stages);
        assert!(resolve(&[], Level::Maximum).expect("ok").stages);
        let off = resolve(&[("ENABLE_CACHING", "false")], Level::Maximum).expect("ok");
        assert!(!off.stages, "no stages without the cache");
    }

    #[test]
    fn buildopt_names_win_over_legacy_names() {
        let s = resolve(
            &[
                ("CACHE_SIZE_LIMIT_GB", "5"),
                ("BUILDOPT_CACHE_SIZE_LIMIT_GB", "2"),
                ("CACHE_RETENTION_DAYS", "3"),
                ("ENABLE_CACHING", "false"),
                ("BUILDOPT_CACHE_DIR", "/tmp/c"),
                ("BUILDOPT_CACHE_COMPRESSION", "gzip"),
                ("BUILDOPT_CACHE_LOCK_TIMEOUT", "5"),
                ("INPUT_CACHE_RESTORE", "built"),
                ("BUILDOPT_CACHE_RESTORE", "All"),
            ],
            Level::Ci,
        )
        .expect("ok");
        assert_eq!((s.size_limit_bytes, s.retention_days), (2 << 30, 3));
        assert!(!s.enabled);
        assert_eq!(s.dir, Path::new("/tmp/c"));
        assert_eq!(s.compression, Compression::Gzip);
        assert_eq!(s.lock_timeout, Duration::from_secs(5));
        assert_eq!(s.restore, RestoreScope::All);
    }

    #[test]
    fn malformed_values_name_the_variable() {
        for (name, value) in [
            ("CACHE_SIZE_LIMIT_GB", "ten"),
            ("CACHE_RETENTION_DAYS", "-1"),
            ("ENABLE_CACHING", "maybe"),
            ("BUILDOPT_CACHE_COMPRESSION", "xz"),
            ("BUILDOPT_CACHE_LOCK_TIMEOUT", "soon"),
            ("BUILDOPT_CACHE_RESTORE", "everything"),
        ] {
            let e = resolve(&[(name, value)], Level::Medium).expect_err("bad");
            assert!(e.to_string().contains(name), "{e}");
        }
    }
}
