//! The invocation a command runs in: the folder, the configuration file, the environment, the
//! console options and the run's secrets, resolved once from the command line; and the few
//! console helpers every command shares (stdout, stderr lines).
//!
//! May import `cli` (for the flags it resolves), `settings::file`, `engine`, `env`,
//! `notify::secret` and `report::escape`; never `commands`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{BuilderChoice, Cli};
use crate::engine::EngineError;
use crate::engine::{Builder, DockerEngine};
use crate::env::Env;
use crate::error::Error;
use crate::notify::secret::Redactor;
use crate::report::escape::console_line;
use crate::settings::file::{self as config_file, FileOptions};
use crate::settings::{RunFlags, RunSettings};

/// Everything a command needs from the command line and the process, resolved once.
#[derive(Debug, Clone)]
pub struct Context {
    /// The folder buildopt runs in (`-C`).
    pub dir: PathBuf,
    pub config_path: Option<PathBuf>,
    pub file: FileOptions,
    pub env: Env,
    pub verbose: u8,
    pub quiet: bool,
    pub format: crate::cli::Format,
    /// Every setting of the run, resolved and checked before the command starts.
    pub settings: RunSettings,
    /// Every secret value of this run (see [`Redactor::of_run`]), built once: applied to what
    /// hooks and builds print and to every line on stderr.
    pub redactor: Redactor,
}

impl Context {
    /// Resolves the folder (`-C`), reads the configuration file and resolves every setting:
    /// an invalid one ends the command here, before any daemon or network work.
    pub fn new(cli: &Cli, env: Env, redactor: Redactor) -> Result<Self, Error> {
        let dir = working_dir(cli)?;
        let config_path = match &cli.config {
            Some(path) if path.is_absolute() => Some(path.clone()),
            Some(path) => Some(dir.join(path)),
            None => Some(dir.join("buildopt.toml")).filter(|p| p.is_file()),
        };
        let file = match &config_path {
            Some(path) => read_config(path)?,
            None => FileOptions::default(),
        };
        let settings = resolve_settings(&RunFlags::of_command(cli), &env, &file, &dir)?;
        Ok(Self {
            settings,
            dir,
            config_path,
            file,
            redactor,
            env,
            verbose: cli.verbose,
            quiet: cli.quiet,
            format: cli.format,
        })
    }

    /// The invocation without reading any configuration file: for commands that work in any
    /// folder when the workspace's file does not load.
    pub fn without_config_file(cli: &Cli, env: Env, redactor: Redactor) -> Result<Self, Error> {
        let dir = working_dir(cli)?;
        let file = FileOptions::default();
        let settings = resolve_settings(&RunFlags::of_command(cli), &env, &file, &dir)?;
        Ok(Self {
            settings,
            dir,
            config_path: None,
            file,
            redactor,
            env,
            verbose: cli.verbose,
            quiet: cli.quiet,
            format: cli.format,
        })
    }

    /// This invocation with the settings other `flags` than the command line's resolve to (the
    /// benchmark runs each level so).
    pub fn with_flags(&self, flags: &RunFlags) -> Result<Self, Error> {
        let settings = resolve_settings(flags, &self.env, &self.file, &self.dir)?;
        Ok(Self {
            settings,
            ..self.clone()
        })
    }

    /// Connects to the daemon `DOCKER_HOST`, `DOCKER_CERT_PATH` and `DOCKER_TLS_VERIFY` name.
    /// A command connects once and passes the engine on: each connection costs the daemon a
    /// version handshake. Use the engine within the runtime that made it.
    pub fn connect_daemon(
        &self,
    ) -> impl Future<Output = Result<DockerEngine, EngineError>> + Send + 'static {
        let host = self.env.get("DOCKER_HOST").map(str::to_owned);
        let cert_path = self.env.get("DOCKER_CERT_PATH").map(PathBuf::from);
        let tls_verify = self.env.is_true("DOCKER_TLS_VERIFY");
        async move { DockerEngine::connect(host.as_deref(), cert_path.as_deref(), tls_verify).await }
    }

    /// An error that does not end the command (one image of several not read), as `error: `
    /// and the line: said even when quiet, as the errors that end it are.
    pub fn error(&self, line: &str) {
        let line = self.redactor.redact(line);
        let _ = writeln!(std::io::stderr(), "error: {}", console_line(&line));
    }

    /// Adds `outputs` to the GitHub Actions step's outputs (`GITHUB_OUTPUT`); outside GitHub
    /// Actions, nothing.
    pub fn write_step_outputs(&self, outputs: &[(&str, String)]) -> Result<(), Error> {
        let Some(path) = self
            .env
            .get("GITHUB_OUTPUT")
            .filter(|_| self.settings.github_actions())
        else {
            return Ok(());
        };
        crate::notify::github::write_step_outputs(Path::new(path), outputs).map_err(|source| {
            Error::Io {
                path: path.to_string(),
                source,
            }
        })
    }

    /// Writes a line on stderr unless `--quiet`. Callers format names into it raw: the whole
    /// line goes through [`console_line`] once, here.
    pub fn info(&self, line: &str) {
        if !self.quiet {
            let line = self.redactor.redact(line);
            let _ = writeln!(std::io::stderr(), "{}", console_line(&line));
        }
    }
}

/// The folder the command runs in: `-C DIR`, else the current one.
fn working_dir(cli: &Cli) -> Result<PathBuf, Error> {
    match &cli.directory {
        Some(dir) => Ok(dir.clone()),
        None => std::env::current_dir().map_err(|source| Error::Io {
            path: ".".into(),
            source,
        }),
    }
}

/// Every setting `flags` resolve to here, with one job per CPU as the default parallelism.
fn resolve_settings(
    flags: &RunFlags,
    env: &Env,
    file: &FileOptions,
    dir: &Path,
) -> Result<RunSettings, Error> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    Ok(RunSettings::resolve(flags, env, file, dir, cpus)?)
}

/// An error message, which may hold names from the repository, the config or a store, for
/// stderr: its own line breaks stay (some messages end with the command that fixes the problem),
/// each line passes through [`console_line`], so no line starts a workflow command or holds an
/// escape sequence.
pub fn console_lines(message: &str) -> String {
    message
        .split('\n')
        .map(console_line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads and parses `buildopt.toml` at `path`.
pub fn read_config(path: &Path) -> Result<FileOptions, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(config_file::parse_bytes(&bytes, path)?)
}

/// Writes the command's result on stdout; a closed pipe (`| head`) is not an error.
pub fn write_stdout(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            path: "stdout".into(),
            source: err,
        }),
        _ => Ok(()),
    }
}

/// The engine's builder for `--builder`.
pub fn builder(choice: BuilderChoice) -> Builder {
    match choice {
        BuilderChoice::Buildkit => Builder::BuildKit,
        BuilderChoice::Classic => Builder::Classic,
    }
}
