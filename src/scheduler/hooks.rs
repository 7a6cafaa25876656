//! Pre- and post-build hooks: which command runs for an image, and running it.
//!
//! A hook is a shell command from `[hooks]` in `buildopt.toml` (run with `sh -c`), else the
//! workspace's `scripts/pre-build-hook.sh` / `scripts/post-build-hook.sh` when the file exists
//! (run directly when executable, else with `sh`). Each run gets `BUILDOPT_IMAGE`,
//! `BUILDOPT_TAG` (the image's first tag) and, after the build, `BUILDOPT_RESULT`
//! (`built|reused|failed|skipped`) in its environment, and starts in the workspace folder. What
//! a failure means (a failed image, a warning) is the scheduler's call, not this module's.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::engine::LOG_TAIL_LINES;
use crate::report::model::ImageResult;
use crate::settings::file::HookOptions;

/// The script run before each image's build when `hooks.pre_build` is not set.
pub const PRE_BUILD_SCRIPT: &str = "scripts/pre-build-hook.sh";
/// The script run after each image's build when `hooks.post_build` is not set.
pub const POST_BUILD_SCRIPT: &str = "scripts/post-build-hook.sh";

/// The variables that hold buildopt's own secrets, also in the `INPUT_` form the GitHub Action
/// passes inputs in. Hooks run without them unless `hooks.pass_env` names them: a hook is
/// repository code, and on a pull request the repository is the attacker's.
pub const SECRET_VARS: [&str; 14] = [
    "GITHUB_TOKEN",
    "BUILDOPT_GITHUB_TOKEN",
    "BUILDOPT_GITLAB_TOKEN",
    "BUILDOPT_REGISTRY_PASSWORD",
    "SLACK_WEBHOOK",
    "BUILDOPT_SLACK_WEBHOOK",
    "INPUT_GITHUB_TOKEN",
    "INPUT_GITHUB-TOKEN",
    "INPUT_GITLAB_TOKEN",
    "INPUT_GITLAB-TOKEN",
    "INPUT_REGISTRY_PASSWORD",
    "INPUT_REGISTRY-PASSWORD",
    "INPUT_SLACK_WEBHOOK",
    "INPUT_SLACK-WEBHOOK",
];

/// The hooks of one run.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pre_build: Option<HookCommand>,
    post_build: Option<HookCommand>,
    /// Where hooks start.
    dir: PathBuf,
    /// Secret variables (of [`SECRET_VARS`]) the configuration lets hooks see.
    pass_env: Vec<String>,
}

/// One hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookCommand {
    /// A command line from `buildopt.toml`, run with `sh -c`.
    Shell(String),
    /// A script file found in the workspace.
    Script(PathBuf),
}

/// Which hook ran; names it in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    PreBuild,
    PostBuild,
}

impl std::fmt::Display for HookKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::PreBuild => "pre-build hook",
            Self::PostBuild => "post-build hook",
        })
    }
}

/// A hook that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The command could not be started.
    #[error("{kind} could not start ({command}): {source}")]
    Spawn {
        kind: HookKind,
        command: String,
        source: std::io::Error,
    },
    /// The command ran and failed; `log_tail` holds its last output lines (stdout, then stderr).
    #[error("{kind} failed ({command}): {status}")]
    Failed {
        kind: HookKind,
        command: String,
        status: std::process::ExitStatus,
        log_tail: Vec<String>,
    },
}

impl HookError {
    /// The hook's last output lines (empty when it never started).
    pub fn log_tail(&self) -> &[String] {
        match self {
            Self::Spawn { .. } => &[],
            Self::Failed { log_tail, .. } => log_tail,
        }
    }
}

impl Hooks {
    /// The hooks for a workspace in `dir`: the configured commands first, else the scripts.
    pub fn resolve(options: Option<&HookOptions>, dir: &Path) -> Self {
        let configured = |pick: fn(&HookOptions) -> &Option<String>| {
            options
                .and_then(|o| pick(o).clone())
                .filter(|command| !command.trim().is_empty())
                .map(HookCommand::Shell)
        };
        let script = |rel: &str| {
            let path = dir.join(rel);
            path.is_file().then_some(HookCommand::Script(path))
        };
        Self {
            pre_build: configured(|o| &o.pre_build).or_else(|| script(PRE_BUILD_SCRIPT)),
            post_build: configured(|o| &o.post_build).or_else(|| script(POST_BUILD_SCRIPT)),
            dir: dir.to_path_buf(),
            pass_env: options.map(|o| o.pass_env.clone()).unwrap_or_default(),
        }
    }

    /// Hooks that never run anything.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn pre_build(&self) -> Option<&HookCommand> {
        self.pre_build.as_ref()
    }

    pub fn post_build(&self) -> Option<&HookCommand> {
        self.post_build.as_ref()
    }

    /// Runs the pre-build hook for `image`, when there is one.
    pub async fn run_pre_build(&self, image: &str, tag: &str) -> Result<(), HookError> {
        match &self.pre_build {
            Some(command) => {
                self.run(HookKind::PreBuild, command, image, tag, None)
                    .await
            }
            None => Ok(()),
        }
    }

    /// Runs the post-build hook for `image` with its `result`, when there is one.
    pub async fn run_post_build(
        &self,
        image: &str,
        tag: &str,
        result: ImageResult,
    ) -> Result<(), HookError> {
        match &self.post_build {
            Some(command) => {
                self.run(HookKind::PostBuild, command, image, tag, Some(result))
                    .await
            }
            None => Ok(()),
        }
    }

    async fn run(
        &self,
        kind: HookKind,
        command: &HookCommand,
        image: &str,
        tag: &str,
        result: Option<ImageResult>,
    ) -> Result<(), HookError> {
        let mut process = command.process();
        process
            .current_dir(&self.dir)
            .env("BUILDOPT_IMAGE", image)
            .env("BUILDOPT_TAG", tag)
            .stdin(Stdio::null())
            // A cancelled run (Ctrl-C) drops the future; the hook must not outlive it.
            .kill_on_drop(true);
        for var in withheld_vars(&self.pass_env) {
            process.env_remove(var);
        }
        match result {
            Some(result) => process.env("BUILDOPT_RESULT", result.as_str()),
            None => process.env_remove("BUILDOPT_RESULT"),
        };
        // Its own process group, so that a hook stopped at the deadline (or by Ctrl-C) takes
        // whatever it started with it.
        process
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = process.spawn().map_err(|source| HookError::Spawn {
            kind,
            command: command.to_string(),
            source,
        })?;
        let mut group = GroupKiller(child.id());
        let output = child
            .wait_with_output()
            .await
            .map_err(|source| HookError::Spawn {
                kind,
                command: command.to_string(),
                source,
            })?;
        // It ended: what it left running in the background was meant to stay.
        group.0 = None;
        if output.status.success() {
            return Ok(());
        }
        Err(HookError::Failed {
            kind,
            command: command.to_string(),
            status: output.status,
            log_tail: tail(&[&output.stdout, &output.stderr]),
        })
    }
}

/// Kills a hook's process group when the hook's future is dropped before the hook ended (the
/// deadline, a cancelled run): the hook and whatever it started go.
struct GroupKiller(Option<u32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|pid| i32::try_from(pid).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// The secret variables a hook runs without: all of [`SECRET_VARS`] but those `pass_env` names.
fn withheld_vars(pass_env: &[String]) -> impl Iterator<Item = &'static str> + '_ {
    SECRET_VARS
        .into_iter()
        .filter(|var| !pass_env.iter().any(|passed| passed == var))
}

impl HookCommand {
    fn process(&self) -> tokio::process::Command {
        match self {
            Self::Shell(line) => {
                let mut process = tokio::process::Command::new("sh");
                process.arg("-c").arg(line);
                process
            }
            Self::Script(path) if is_executable(path) => tokio::process::Command::new(path),
            Self::Script(path) => {
                let mut process = tokio::process::Command::new("sh");
                process.arg(path);
                process
            }
        }
    }
}

impl std::fmt::Display for HookCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Shell(line) => f.write_str(line),
            Self::Script(path) => write!(f, "{}", path.display()),
        }
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

/// The last [`LOG_TAIL_LINES`] non-empty lines of the outputs, in order.
fn tail(outputs: &[&[u8]]) -> Vec<String> {
    let lines: Vec<String> = outputs
        .iter()
        .flat_map(|bytes| {
            String::from_utf8_lossy(bytes)
                .lines()
                .filter(|line| !line.trim().is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    fn configured(pre: Option<&str>, post: Option<&str>) -> HookOptions {
        HookOptions {
            pre_build: pre.map(str::to_string),
            post_build: post.map(str::to_string),
            pass_env: Vec::new(),
        }
    }

    #[test]
    fn hooks_run_without_buildopts_secrets_unless_pass_env_names_them() {
        let all: Vec<&str> = withheld_vars(&[]).collect();
        assert_eq!(all, SECRET_VARS);
        let passed = ["SLACK_WEBHOOK".to_string()];
        let withheld: Vec<&str> = withheld_vars(&passed).collect();
        assert!(!withheld.contains(&"SLACK_WEBHOOK"));
        assert!(withheld.contains(&"GITHUB_TOKEN") && withheld.contains(&"INPUT_SLACK_WEBHOOK"));
    }

    #[test]
    fn configured_commands_win_over_scripts_which_are_used_when_present() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("scripts")).expect("mkdir");
        std::fs::write(dir.path().join(PRE_BUILD_SCRIPT), "true\n").expect("write");
        std::fs::write(dir.path().join(POST_BUILD_SCRIPT), "true\n").expect("write");

        let options = configured(Some("echo pre"), None);
        let hooks = Hooks::resolve(Some(&options), dir.path());
        assert_eq!(
            hooks.pre_build(),
            Some(&HookCommand::Shell("echo pre".into()))
        );
        assert_eq!(
            hooks.post_build(),
            Some(&HookCommand::Script(dir.path().join(POST_BUILD_SCRIPT)))
        );

        let empty = tempfile::tempdir().expect("tempdir");
        let hooks = Hooks::resolve(None, empty.path());
        assert_eq!((hooks.pre_build(), hooks.post_build()), (None, None));
    }

    #[test]
    fn hooks_see_image_tag_and_result_and_start_in_the_workspace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = configured(
            Some("echo \"pre $BUILDOPT_IMAGE $BUILDOPT_TAG ${BUILDOPT_RESULT:-none}\" >> log"),
            Some("echo \"post $BUILDOPT_IMAGE $BUILDOPT_TAG $BUILDOPT_RESULT\" >> log"),
        );
        let hooks = Hooks::resolve(Some(&options), dir.path());
        let runtime = runtime();
        runtime
            .block_on(hooks.run_pre_build("api", "acme/api:1"))
            .expect("pre");
        runtime
            .block_on(hooks.run_post_build("api", "acme/api:1", ImageResult::Reused))
            .expect("post");
        let log = std::fs::read_to_string(dir.path().join("log")).expect("log");
        assert_eq!(log, "pre api acme/api:1 none\npost api acme/api:1 reused\n");
    }

    #[test]
    fn a_failing_hook_keeps_the_tail_of_its_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = configured(
            Some("for i in $(seq 1 30); do echo line-$i; done; echo oops >&2; exit 3"),
            None,
        );
        let hooks = Hooks::resolve(Some(&options), dir.path());
        let error = runtime()
            .block_on(hooks.run_pre_build("api", "api:latest"))
            .expect_err("fails");
        let tail = error.log_tail();
        assert_eq!(tail.len(), LOG_TAIL_LINES);
        assert_eq!(tail.first().map(String::as_str), Some("line-12"));
        assert_eq!(tail.last().map(String::as_str), Some("oops"));
        assert!(error.to_string().contains("exit status: 3"), "{error}");
        assert!(
            error.to_string().starts_with("pre-build hook failed"),
            "{error}"
        );
    }

    #[test]
    fn a_script_without_the_executable_bit_runs_with_sh() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("scripts")).expect("mkdir");
        std::fs::write(
            dir.path().join(POST_BUILD_SCRIPT),
            "echo \"$BUILDOPT_RESULT\" > result\n",
        )
        .expect("write");
        let hooks = Hooks::resolve(None, dir.path());
        runtime()
            .block_on(hooks.run_post_build("api", "api:latest", ImageResult::Failed))
            .expect("post");
        let result = std::fs::read_to_string(dir.path().join("result")).expect("result");
        assert_eq!(result, "failed\n");
    }
}
