//! The top-level error and its one mapping to exit codes (see [`crate::exit`]).

use crate::cache::CacheError;
use crate::ci::CiError;
use crate::commands::benchmark::BenchmarkError;
use crate::commands::build::BuildCommandError;
use crate::exit;
use crate::git::GitError;
use crate::plan::GraphError;
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
    /// `buildopt build` could not run (no daemon, unreadable context, bad tag template).
    #[error(transparent)]
    Build(#[from] BuildCommandError),
    /// The build cache failed (a refused archive is not an error: it is a cache miss).
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// `build --benchmark` could not prepare its scratch copy.
    #[error(transparent)]
    Benchmark(#[from] BenchmarkError),
    /// The run report given to `buildopt notify` is missing or is not a run report.
    #[error("{path}: cannot use this run report: {message}")]
    Report { path: String, message: String },
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
            Self::Build(
                BuildCommandError::UnknownImage { .. }
                | BuildCommandError::Tag(_)
                | BuildCommandError::Dockerfile { .. },
            ) => exit::USAGE,
            Self::Build(_) => exit::ENVIRONMENT,
            Self::Cache(CacheError::Engine(crate::engine::EngineError::BuildFailed { .. })) => {
                exit::BUILD_FAILED
            }
            Self::Cache(_) => exit::ENVIRONMENT,
            Self::Benchmark(BenchmarkError::Flag(_) | BenchmarkError::Rename { .. }) => exit::USAGE,
            Self::Benchmark(_) => exit::ENVIRONMENT,
        }
    }
}
