//! The top-level error and its one mapping to exit codes (see [`crate::exit`]). It wraps the
//! library modules' error types only; commands define none of their own.

use crate::benchmark::BenchmarkError;
use crate::cache::CacheError;
use crate::ci::CiError;
use crate::exit;
use crate::git::GitError;
use crate::plan::GraphError;
use crate::run::RunError;
use crate::settings::file::FileError;
use crate::settings::{ConfigError, ResolveError};
use crate::workspace::WorkspaceError;

/// Everything that can end a command early.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `buildopt.toml` is invalid.
    #[error(transparent)]
    ConfigFile(#[from] FileError),
    /// A setting's value is invalid.
    #[error(transparent)]
    Setting(#[from] ConfigError),
    /// The repository's build definitions are invalid.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// The image graph is invalid (a cycle).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// git failed or is missing.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The CI's facts could not be read or the range not resolved.
    #[error(transparent)]
    Ci(#[from] CiError),
    /// The build run could not run (no daemon, unreadable context, bad tag template).
    #[error(transparent)]
    Run(#[from] RunError),
    /// The build cache failed (a refused archive is not an error: it is a cache miss).
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// `build --benchmark` could not prepare its scratch copy.
    #[error(transparent)]
    Benchmark(#[from] BenchmarkError),
    /// The run report given to `buildopt notify` is missing or is not a run report.
    #[error("{path}: cannot use this run report: {message}")]
    Report { path: String, message: String },
    /// An image could not be scanned.
    #[error(transparent)]
    Scan(#[from] crate::scan::ScanError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl From<ResolveError> for Error {
    fn from(error: ResolveError) -> Self {
        match error {
            ResolveError::Setting(invalid) => Self::Setting(invalid),
            ResolveError::Ci(ci) => Self::Ci(ci),
        }
    }
}

impl Error {
    /// The exit code for this error: bad input is a usage error (2); a missing or failing
    /// environment (git, the repository, the event payload, files) is an environment error (4).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::ConfigFile(_) | Self::Setting(_) | Self::Graph(_) | Self::Report { .. } => {
                exit::USAGE
            }
            Self::Ci(CiError::UnknownRevision { .. }) => exit::USAGE,
            Self::Workspace(WorkspaceError::Git(_)) => exit::ENVIRONMENT,
            Self::Workspace(_) => exit::USAGE,
            Self::Git(_) | Self::Ci(_) | Self::Io { .. } => exit::ENVIRONMENT,
            Self::Run(
                RunError::UnknownImage { .. }
                | RunError::Tag(_)
                | RunError::Dockerfile { .. }
                | RunError::Setting(_)
                | RunError::Ci(CiError::UnknownRevision { .. }),
            ) => exit::USAGE,
            Self::Run(
                RunError::Context(_)
                | RunError::Engine(_)
                | RunError::Credentials(_)
                | RunError::Runtime(_)
                | RunError::EngineCannot(_)
                | RunError::Ci(_)
                | RunError::Git(_),
            ) => exit::ENVIRONMENT,
            Self::Cache(CacheError::Engine(crate::engine::EngineError::BuildFailed { .. })) => {
                exit::BUILD_FAILED
            }
            Self::Cache(_) => exit::ENVIRONMENT,
            Self::Benchmark(BenchmarkError::Flag(_) | BenchmarkError::Rename { .. }) => exit::USAGE,
            Self::Benchmark(_) => exit::ENVIRONMENT,
            Self::Run(RunError::Scan(error)) | Self::Scan(error) => scan_exit_code(error),
        }
    }
}

fn scan_exit_code(error: &crate::scan::ScanError) -> u8 {
    scan_ending(error).code()
}

/// Images that do not exist and unreadable inputs are usage errors; no daemon, or a file
/// that cannot be opened, is the environment.
pub fn scan_ending(error: &crate::scan::ScanError) -> exit::Ending {
    use crate::scan::ScanError;
    match error {
        ScanError::NoSuchImage { .. }
        | ScanError::NotInStore { .. }
        | ScanError::Input { .. }
        | ScanError::Archive { .. }
        | ScanError::NothingAsked
        | ScanError::NothingBuilt
        | ScanError::Ignore(_) => exit::Ending::Usage,
        ScanError::Io { .. }
        | ScanError::Engine(_)
        | ScanError::Database { .. }
        | ScanError::External(_) => exit::Ending::EnvironmentUnusable,
    }
}
