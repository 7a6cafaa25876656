//! The build cache: a content-addressed store of image configs and layers, exported between CI
//! runs as one verified archive.
//!
//! This file owns the error type; the other files own one concern each:
//!
//! - `digest.rs`: `sha256:` digests and a writer that hashes what passes through it;
//! - `atomic.rs`: atomic file writes (temp file in the same folder, fsync, rename, fsync folder);
//! - `lock.rs`: the exclusive lock that serialises two jobs sharing one store;
//! - `store.rs`: the store on disk (blobs by digest, the index of images) and its invariants;
//! - `history.rs`: the build record (every image attempted, the inputs that built), kept in the
//!   index apart from the images so that pruning never forgets a build;
//! - `archive.rs`: exporting the store as tar + zstd/gzip and importing it back, verifying every
//!   blob and refusing anything but the expected regular files;
//! - `frames.rs`: archive entries as independent compressed frames, and the worker that
//!   compresses saved blobs while other saves still run;
//! - `prune.rs`: retention by age, the size limit by least recent use, garbage collection of
//!   unreferenced blobs, and the same for a BuildKit `type=local` cache folder;
//! - `docker_tar.rs`: splitting `docker save` tars into blobs and writing `docker load` tars;
//! - `requests.rs`: which images each of several concurrent `docker save`/`load` requests carries;
//! - `keys.rs`: CI cache keys and restore-key prefixes, with the run's trust in the prefix;
//! - `daemon.rs`: moving images between the store and the Docker daemon (save, load, streaming an
//!   import into `docker load`), opening the store under its lock, retention and the size limit;
//! - `transfer.rs`: exporting and importing archives with the daemon on either side.

pub mod archive;
pub mod atomic;
#[cfg(test)]
mod corpus;
pub mod daemon;
pub mod digest;
pub mod docker_tar;
pub mod frames;
pub mod history;
pub mod keys;
pub mod lock;
pub mod prune;
pub mod requests;
pub mod store;
pub mod transfer;

pub use archive::{Compression, ExportSummary, ImportOutcome, Limits};
pub use digest::Digest;
pub use keys::{CacheKeys, Trust};
pub use store::{ImageEntry, Index, Store};

/// Everything the cache can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A file or folder of the store or an archive could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The store's index (or another state file) is not what this version writes.
    #[error("{path}: unreadable cache state: {message}")]
    State { path: String, message: String },
    /// Another job held the store lock longer than the timeout. Callers go on without the cache.
    #[error("{path}: another job held the cache lock for {seconds} s")]
    LockTimeout { path: String, seconds: u64 },
    /// The store is not one buildopt may use: git tracks it, another user owns it, or one of its
    /// folders is a link. Callers go on without the cache.
    #[error("{path}: {reason}")]
    UnsafeStore { path: String, reason: String },
    /// An archive was refused; the store was left unchanged. Callers treat this as a cache miss.
    #[error("refused cache archive {path}: {reason}")]
    BadArchive { path: String, reason: String },
    /// A BuildKit `type=local` cache folder could not be read, so nothing in it was deleted.
    #[error("{path}: not a BuildKit local cache: {message}")]
    BuildKitCache { path: String, message: String },
    /// A `docker save` stream was not in the expected format.
    #[error("unexpected docker save output: {0}")]
    SaveFormat(String),
    /// The daemon failed while saving or loading images.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
}

/// Seconds since the Unix epoch: what the store records uses and ages are counted in.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl CacheError {
    /// Whether the cache is skipped for this run (a warning and a cache miss), not an error.
    pub fn is_skip(&self) -> bool {
        matches!(
            self,
            Self::LockTimeout { .. } | Self::UnsafeStore { .. } | Self::BadArchive { .. }
        )
    }

    /// Whether the store's file system is full (of bytes or of inodes, or over a quota).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Self::Io { source, .. }
            if matches!(source.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded))
    }

    /// An [`CacheError::Io`] naming `path`.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
