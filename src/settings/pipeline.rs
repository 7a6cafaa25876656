//! The settings only `buildopt ci` has: extra tags, push, keep-going and registry credentials,
//! which the wrappers pass as `BUILDOPT_*` variables or GitHub Action inputs rather than flags.
//!
//! Each comes from the flag, then `BUILDOPT_<NAME>`, then (in GitHub Actions) `INPUT_<NAME>`.

use super::file::FileOptions;
use super::resolve::{Layers, parse_bool};
use super::vars::{self, SettingVar};
use super::{ConfigError, Level, Source};
use crate::env::Env;
use crate::scheduler::tags::{self, TagError, TagVars};

/// The resolved `ci` settings.
#[derive(Clone, PartialEq, Eq)]
pub struct PipelineSettings {
    /// Tag templates added to every image (`--tag`, or `BUILDOPT_TAGS` split on commas and lines).
    pub tags: Vec<String>,
    pub push: bool,
    pub keep_going: bool,
    /// Inventory every built or reused image after the build (the level's default, or
    /// `BUILDOPT_SCAN` / `SECURITY_SCAN`).
    pub scan: bool,
    /// A registry login used for every registry, when both halves are set.
    pub registry: Option<RegistryLogin>,
}

/// A user name and password (or token) for pushing.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryLogin {
    pub username: String,
    pub password: String,
}

// Hand-written so that a password never reaches a log through `{:?}`.
impl std::fmt::Debug for PipelineSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineSettings")
            .field("tags", &self.tags)
            .field("push", &self.push)
            .field("keep_going", &self.keep_going)
            .field("scan", &self.scan)
            .field(
                "registry",
                &self.registry.as_ref().map(|login| &login.username),
            )
            .finish()
    }
}

impl std::fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegistryLogin({}, ***)", self.username)
    }
}

/// The `ci` settings the command line gave; empty or false means "not given".
#[derive(Debug, Clone, Default)]
pub struct PipelineFlags {
    pub tags: Vec<String>,
    pub push: bool,
    pub keep_going: bool,
}

impl PipelineSettings {
    /// Resolves the settings from the flags and the environment.
    pub fn resolve(
        flags: &PipelineFlags,
        env: &Env,
        file: &FileOptions,
        level: Level,
    ) -> Result<Self, ConfigError> {
        let layers = Layers::of(env);
        for template in &flags.tags {
            check_template(template).map_err(|reason| ConfigError {
                setting: vars::TAGS.setting,
                value: template.clone(),
                origin: Source::Flag,
                reason,
            })?;
        }
        let tags_flag = (!flags.tags.is_empty()).then(|| flags.tags.clone());
        let tags = pick(&layers, &vars::TAGS, tags_flag, parse_tags)?.unwrap_or_default();
        let push =
            pick(&layers, &vars::PUSH, flags.push.then_some(true), parse_bool)?.unwrap_or(false);
        let keep_going = pick(
            &layers,
            &vars::KEEP_GOING,
            flags.keep_going.then_some(true),
            parse_bool,
        )?
        .unwrap_or(false);
        let scan_in_file = file.scan.as_ref().and_then(|scan| scan.enabled);
        let scan = layers
            .pick(&vars::SCAN, None, scan_in_file, parse_bool)?
            .map_or(level.profile().scan, |(on, _)| on);
        Ok(Self {
            tags,
            push,
            keep_going,
            scan,
            registry: registry_login(env),
        })
    }
}

/// The login for every registry: `BUILDOPT_REGISTRY_USER` and `BUILDOPT_REGISTRY_PASSWORD`, or in
/// GitHub Actions the `registry_username` and `registry_password` inputs; both halves or none.
pub fn registry_login(env: &Env) -> Option<RegistryLogin> {
    let layers = Layers::of(env);
    let text = |var: &SettingVar| {
        layers
            .pick(var, None, None, parse_text)
            .ok()
            .flatten()
            .map(|(value, _)| value)
    };
    let username = text(&vars::REGISTRY_USER)?;
    let password = text(&vars::REGISTRY_PASSWORD)?;
    Some(RegistryLogin { username, password })
}

fn pick<T>(
    layers: &Layers<'_>,
    var: &SettingVar,
    flag: Option<T>,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Option<T>, ConfigError> {
    Ok(layers.pick(var, flag, None, parse)?.map(|(value, _)| value))
}

/// Tag templates separated by commas or line breaks, blanks dropped; a template naming a
/// variable that does not exist is refused here, before anything builds.
fn parse_tags(raw: &str) -> Result<Vec<String>, String> {
    let templates: Vec<String> = raw
        .split([',', '\n'])
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .map(str::to_string)
        .collect();
    for template in &templates {
        check_template(template)?;
    }
    Ok(templates)
}

/// Expands `template` with every variable known, so only an unknown variable fails.
fn check_template(template: &str) -> Result<(), String> {
    let known = Some("x".to_string());
    let vars = TagVars {
        sha: known.clone(),
        short_sha: known.clone(),
        branch: known.clone(),
        tag: known,
    };
    match tags::expand("", template, &vars) {
        Err(TagError::Unknown { variable, .. }) => Err(format!(
            "unknown template variable {{{variable}}} (known: sha, short_sha, branch, tag)"
        )),
        _ => Ok(()),
    }
}

fn parse_text(raw: &str) -> Result<String, String> {
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        flags: &PipelineFlags,
        env: &[(&str, &str)],
    ) -> Result<PipelineSettings, ConfigError> {
        PipelineSettings::resolve(
            flags,
            &Env::from_pairs(env.iter().copied()),
            &FileOptions::default(),
            Level::Medium,
        )
    }

    #[test]
    fn the_file_turns_the_scan_on_and_the_environment_wins_over_it() {
        let file: FileOptions = toml::from_str("[scan]\nenabled = true\n").expect("toml");
        let resolve_with = |env: &[(&str, &str)]| {
            let env = Env::from_pairs(env.iter().copied());
            PipelineSettings::resolve(&PipelineFlags::default(), &env, &file, Level::Medium)
                .expect("settings")
                .scan
        };
        assert!(resolve_with(&[]), "on at level medium, by the file");
        assert!(!resolve_with(&[("SECURITY_SCAN", "false")]));
        assert!(
            !resolve(&PipelineFlags::default(), &[])
                .expect("settings")
                .scan
        );
    }

    #[test]
    fn inputs_count_only_in_github_actions() {
        let env = [("INPUT_TAGS", "{short_sha}"), ("INPUT_PUSH", "true")];
        let outside = resolve(&PipelineFlags::default(), &env).expect("settings");
        assert!(outside.tags.is_empty() && !outside.push);
        let inside = resolve(
            &PipelineFlags::default(),
            &[env[0], env[1], ("GITHUB_ACTIONS", "true")],
        )
        .expect("settings");
        assert_eq!(inside.tags, ["{short_sha}"]);
        assert!(inside.push);
    }

    #[test]
    fn tags_split_on_commas_and_lines_and_flags_win() {
        let env = [("BUILDOPT_TAGS", " v1 ,\n{branch}\n\n,edge ")];
        let settings = resolve(&PipelineFlags::default(), &env).expect("settings");
        assert_eq!(settings.tags, ["v1", "{branch}", "edge"]);
        let flags = PipelineFlags {
            tags: vec!["cli".into()],
            ..PipelineFlags::default()
        };
        assert_eq!(resolve(&flags, &env).expect("settings").tags, ["cli"]);
    }

    #[test]
    fn a_login_needs_both_halves_and_never_prints_the_password() {
        let half = resolve(
            &PipelineFlags::default(),
            &[("BUILDOPT_REGISTRY_USER", "u")],
        )
        .expect("settings");
        assert!(half.registry.is_none());
        let both = resolve(
            &PipelineFlags::default(),
            &[
                ("GITHUB_ACTIONS", "true"),
                ("INPUT_REGISTRY_USERNAME", "robot"),
                ("INPUT_REGISTRY_PASSWORD", "canary-secret-1234"),
            ],
        )
        .expect("settings");
        let login = both.registry.as_ref().expect("login");
        assert_eq!(login.username, "robot");
        assert!(!format!("{both:?}").contains("canary-secret-1234"));
    }

    #[test]
    fn an_unknown_template_variable_names_the_variable() {
        let err = resolve(
            &PipelineFlags::default(),
            &[("BUILDOPT_TAGS", "v1,{commit}")],
        )
        .expect_err("unknown variable");
        assert!(err.to_string().contains("$BUILDOPT_TAGS"), "{err}");
        assert!(err.to_string().contains("{commit}"), "{err}");
        let ok = resolve(
            &PipelineFlags::default(),
            &[("BUILDOPT_TAGS", "{branch}-{short_sha}")],
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn a_bad_boolean_names_the_variable() {
        let err =
            resolve(&PipelineFlags::default(), &[("BUILDOPT_PUSH", "maybe")]).expect_err("invalid");
        assert!(err.to_string().contains("BUILDOPT_PUSH"), "{err}");
    }
}
