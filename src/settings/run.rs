//! Every setting of one run, resolved once before a command does any work.
//!
//! [`RunSettings::resolve`] reads the flags, the environment and `buildopt.toml` into the core,
//! cache, pipeline, scan and notification settings and detects the CI system (reading GitHub's event
//! payload once). Any invalid value fails here, naming its source, so a command never reaches
//! the daemon or the network with a setting it would refuse later.

use std::path::Path;

use super::cache::{CacheFlags, CacheSettings};
use super::file::FileOptions;
use super::notify::NotifySettings;
use super::pipeline::{PipelineFlags, PipelineSettings};
use super::scan::{ScanFlags, ScanSettings};
use super::{ConfigError, Flags, Settings};
use crate::ci::{self, CiContext, CiError, Provider};
use crate::env::Env;

/// What the command line gave, per group of settings; defaults mean "not given".
#[derive(Debug, Clone, Default)]
pub struct RunFlags {
    pub core: Flags,
    pub cache: CacheFlags,
    pub pipeline: PipelineFlags,
    pub scan: ScanFlags,
}

/// The resolved settings of one run.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub core: Settings,
    pub cache: CacheSettings,
    pub pipeline: PipelineSettings,
    pub scan: ScanSettings,
    pub notify: NotifySettings,
    /// What the CI system says about this run (a local run outside CI).
    pub ci: CiContext,
    /// The run is in CI (a known system, or `CI` set): consoles print plain lines.
    pub in_ci: bool,
}

/// Why the settings of a run could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A setting's value is invalid (exit 2).
    #[error(transparent)]
    Setting(#[from] ConfigError),
    /// The CI system's facts could not be read, such as an unreadable event payload (exit 4).
    #[error(transparent)]
    Ci(#[from] CiError),
}

impl RunSettings {
    /// Resolves every setting; relative paths are taken from `base` (the `-C` folder) and
    /// `cpus` is the machine's parallelism, passed in to keep this free of the process.
    pub fn resolve(
        flags: &RunFlags,
        env: &Env,
        file: &FileOptions,
        base: &Path,
        cpus: usize,
    ) -> Result<Self, ResolveError> {
        let core = Settings::resolve(&flags.core, env, file, cpus)?;
        let cache = CacheSettings::resolve(&flags.cache, env, file, core.level, base)?;
        let pipeline = PipelineSettings::resolve(&flags.pipeline, env, file, core.level)?;
        let scan = ScanSettings::resolve(&flags.scan, env, file, base)?;
        let notify = NotifySettings::resolve(env, file, base)?;
        let ci = ci::detect(env)?;
        Ok(Self {
            core,
            cache,
            pipeline,
            scan,
            notify,
            ci,
            in_ci: ci::in_ci(env),
        })
    }

    /// The run is a GitHub Actions job: step outputs, workflow commands and masking apply.
    pub fn github_actions(&self) -> bool {
        self.ci.provider == Provider::GitHub
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn resolve(env: &[(&str, &str)], file: &FileOptions) -> Result<RunSettings, ResolveError> {
        RunSettings::resolve(
            &RunFlags::default(),
            &Env::from_pairs(env.iter().copied()),
            file,
            Path::new("/repo"),
            2,
        )
    }

    #[test]
    fn a_bad_value_in_any_group_fails_the_whole_resolution() {
        for (name, value) in [
            ("BUILDOPT_JOBS", "0"),
            ("BUILDOPT_CACHE_COMPRESSION", "xz"),
            ("BUILDOPT_PUSH", "maybe"),
            ("BUILDOPT_SLACK_ON", "sometimes"),
            ("BUILDOPT_SCAN_LEVEL", "severe"),
        ] {
            let err = resolve(&[(name, value)], &FileOptions::default()).expect_err(name);
            assert!(matches!(err, ResolveError::Setting(_)), "{name}: {err}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn the_event_payload_is_read_during_resolution() {
        let missing = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_EVENT_PATH", "/nonexistent/event.json"),
        ];
        let err = resolve(&missing, &FileOptions::default()).expect_err("no payload");
        assert!(matches!(err, ResolveError::Ci(_)), "{err}");
    }

    #[test]
    fn the_ci_system_is_detected_once_for_every_group() {
        let env = [("GITHUB_ACTIONS", "true"), ("INPUT_PUSH", "true")];
        let settings = resolve(&env, &FileOptions::default()).expect("valid");
        assert!(settings.github_actions() && settings.in_ci);
        assert!(settings.pipeline.push && settings.notify.github_actions);
        let local = resolve(&[("INPUT_PUSH", "true")], &FileOptions::default()).expect("valid");
        assert!(!local.github_actions() && !local.in_ci && !local.pipeline.push);
        let other_ci = resolve(&[("CI", "woodpecker")], &FileOptions::default()).expect("valid");
        assert!(other_ci.in_ci && !other_ci.github_actions());
    }

    #[test]
    fn paths_are_taken_from_the_base_folder() {
        let settings =
            resolve(&[("BUILDOPT_SARIF", "a.sarif")], &FileOptions::default()).expect("valid");
        assert_eq!(settings.notify.sarif, [PathBuf::from("/repo/a.sarif")]);
        assert_eq!(settings.cache.dir, Path::new("/repo/.build_cache"));
    }
}
