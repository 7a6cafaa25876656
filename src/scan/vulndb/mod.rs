//! The vulnerability database: OSV records indexed by the package they affect.
//!
//! The database lives in a folder of its own (not the layer store): OSV's per-ecosystem
//! archives as downloaded (`archives/<Ecosystem>/`), one SQLite index per indexed content
//! (`index/<version>.sqlite`), `current`, which names the active index and is replaced
//! atomically, so readers see the old database or the new one, never a half-built one, and
//! `checked`, when a setup last found that index current at the source (its age). Indexes
//! of `--db PATH` inputs are kept apart (`local/<version>.sqlite`) and never become current.
//!
//! - `index.rs`: reading records from zips and folders, and building an index file;
//! - `setup.rs`: downloading the archives (conditional, checked) and swapping the index in.
//!
//! Package names are looked up exactly as OSV keys them, except PyPI's: OSV defines them as
//! PEP 503-normalised, published records do not always follow that, so both the records'
//! names and the asked name are normalised.

mod index;
mod setup;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::osv::Record;

pub use setup::{SetupOptions, SetupReport, http_client, install, setup};

/// OSV's public export, served by Google Cloud Storage: `<url>/<Ecosystem>/all.zip`.
pub const DEFAULT_URL: &str = "https://osv-vulnerabilities.storage.googleapis.com";

/// A database older than this many days gets a warning.
pub const DEFAULT_MAX_AGE_DAYS: u64 = 5;

/// The default database folder: `$XDG_CACHE_HOME/buildopt/vulndb`, else
/// `$HOME/.cache/buildopt/vulndb`; `None` when neither variable is set.
pub fn default_dir() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })?;
    Some(cache.join("buildopt").join("vulndb"))
}

/// Why the database could not be set up, built or read.
#[derive(Debug, thiserror::Error)]
pub enum VulnDbError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{what}: not a readable zip archive: {reason}")]
    Zip { what: String, reason: String },
    #[error("{what}: entry {entry:?} is damaged: {reason}")]
    ZipEntry {
        what: String,
        entry: String,
        reason: String,
    },
    #[error("{url}: {reason}")]
    Download { url: String, reason: String },
    #[error("{url}: the download's {algorithm} is {actual}, the server announced {expected}")]
    HashMismatch {
        url: String,
        algorithm: &'static str,
        expected: String,
        actual: String,
    },
    #[error("record {id} in {path}: {reason}")]
    Record {
        path: PathBuf,
        id: String,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Broken { path: PathBuf, reason: String },
    #[error("{0:?} is not an OSV ecosystem name")]
    BadEcosystem(String),
    #[error("no ecosystem to set up: name one, or scan an image first")]
    NothingToSetUp,
}

impl VulnDbError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn sqlite(path: &Path) -> impl FnOnce(rusqlite::Error) -> Self + '_ {
        move |source| Self::Sqlite {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What an index says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The content hash of what was indexed.
    pub version: String,
    pub built_at: SystemTime,
    /// The newest `modified` among the records.
    pub modified: Option<String>,
    /// Every `affected[].package.ecosystem` seen, sorted (`Debian:12`, `PyPI`, ...).
    pub ecosystems: Vec<String>,
    pub records: u64,
    /// Entries that were not OSV records (unparseable, or too large), skipped.
    pub skipped: u64,
    pub withdrawn: u64,
}

/// An open index, read-only.
pub struct VulnDb {
    connection: Connection,
    path: PathBuf,
    summary: Summary,
    /// When a setup last found this content current at the source (304s included).
    checked_at: Option<SystemTime>,
}

impl std::fmt::Debug for VulnDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VulnDb")
            .field("path", &self.path)
            .field("version", &self.summary.version)
            .finish()
    }
}

impl VulnDb {
    /// The current database of the folder `dir`; `None` when none was set up there.
    pub fn open(dir: &Path) -> Result<Option<Self>, VulnDbError> {
        // A setup that swaps in a new index removes the old one: read `current` again when
        // the index it named is gone by the time it is opened.
        let mut attempts = 0;
        loop {
            let Some(version) = setup::current_version(dir)? else {
                return Ok(None);
            };
            let path = setup::index_path(dir, &version);
            attempts += 1;
            if path.is_file() || attempts == 2 {
                let mut db = Self::open_index(&path)?;
                db.checked_at = setup::checked_at(dir, &version);
                return Ok(Some(db));
            }
        }
    }

    /// The database of `path` (`--db`): a folder of OSV JSON files (searched recursively) or a
    /// zip of them, indexed once per content into `dir/local/` (the input is never written).
    pub fn from_path(path: &Path, dir: &Path) -> Result<Self, VulnDbError> {
        let source = index::Source::of_path(path)?;
        let version = index::version_of(&[source.content_hash()?]);
        let target = dir.join("local").join(format!("{version}.sqlite"));
        if !target.is_file() {
            index::build(&target, &version, std::slice::from_ref(&source))?;
        }
        Self::open_index(&target)
    }

    fn open_index(path: &Path) -> Result<Self, VulnDbError> {
        if !path.is_file() {
            return Err(VulnDbError::Broken {
                path: path.to_path_buf(),
                reason: "the index is missing".into(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection =
            Connection::open_with_flags(path, flags).map_err(VulnDbError::sqlite(path))?;
        let summary = index::read_summary(&connection, path)?;
        Ok(Self {
            connection,
            path: path.to_path_buf(),
            summary,
            checked_at: None,
        })
    }

    /// Every non-withdrawn record with an `affected[]` entry for exactly `ecosystem` (the full
    /// OSV string: `Debian:12`, `PyPI`, ...) and `name`, in id order.
    pub fn records(&self, ecosystem: &str, name: &str) -> Result<Vec<Record>, VulnDbError> {
        let key = index::name_key(ecosystem, name);
        let rows = self.query_rows(
            "SELECT r.id, r.json FROM affected a JOIN records r ON r.id = a.id
             WHERE a.ecosystem = ?1 AND a.name = ?2 ORDER BY a.id",
            rusqlite::params![ecosystem, key.as_ref()],
        )?;
        rows.into_iter()
            .map(|(id, stored)| {
                let json = self.decompress(&id, &stored)?;
                serde_json::from_slice(&json).map_err(|e| self.record_error(&id, e.to_string()))
            })
            .collect()
    }

    /// The record `id` as published (summary, details, references included), for reports.
    pub fn record_json(&self, id: &str) -> Result<Option<serde_json::Value>, VulnDbError> {
        let stored: Option<Vec<u8>> = self
            .connection
            .prepare("SELECT json FROM records WHERE id = ?1")
            .and_then(|mut statement| statement.query_row([id], |row| row.get(0)).optional())
            .map_err(VulnDbError::sqlite(&self.path))?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let json = self.decompress(id, &stored)?;
        serde_json::from_slice(&json)
            .map(Some)
            .map_err(|e| self.record_error(id, e.to_string()))
    }

    fn query_rows(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<(String, Vec<u8>)>, VulnDbError> {
        let mut statement = self
            .connection
            .prepare(sql)
            .map_err(VulnDbError::sqlite(&self.path))?;
        let rows = statement
            .query_map(params, |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(VulnDbError::sqlite(&self.path))?;
        Ok(rows)
    }

    fn decompress(&self, id: &str, stored: &[u8]) -> Result<Vec<u8>, VulnDbError> {
        zstd::decode_all(stored).map_err(|e| self.record_error(id, e.to_string()))
    }

    fn record_error(&self, id: &str, reason: String) -> VulnDbError {
        VulnDbError::Record {
            path: self.path.clone(),
            id: id.to_owned(),
            reason,
        }
    }

    /// The content hash of what was indexed: the same data gives the same version.
    pub fn version(&self) -> &str {
        &self.summary.version
    }

    /// The newest `modified` among the records (RFC 3339, as the records write it).
    pub fn modified(&self) -> Option<&str> {
        self.summary.modified.as_deref()
    }

    /// When this index was built.
    pub fn built_at(&self) -> SystemTime {
        self.summary.built_at
    }

    /// When a setup last confirmed this database against its source: the build, or a later
    /// setup whose downloads were all unchanged. `None` for `--db` inputs.
    pub fn checked_at(&self) -> Option<SystemTime> {
        self.checked_at
    }

    /// How old the data is at `now`: since the last check against the source, else since the
    /// build (zero when `now` is earlier).
    pub fn age(&self, now: SystemTime) -> Duration {
        let since = self.checked_at.map_or(self.summary.built_at, |checked| {
            checked.max(self.summary.built_at)
        });
        now.duration_since(since).unwrap_or(Duration::ZERO)
    }

    /// Whether the data is older than `max_age_days` days at `now` (see [`VulnDb::age`]).
    pub fn is_older_than(&self, now: SystemTime, max_age_days: u64) -> bool {
        self.age(now) > Duration::from_secs(max_age_days.saturating_mul(86_400))
    }

    /// Every full ecosystem string some record affects, sorted.
    pub fn ecosystems(&self) -> &[String] {
        &self.summary.ecosystems
    }

    /// Everything the index says about itself.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The index file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests;
