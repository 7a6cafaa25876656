//! Building an index: OSV records read from zips and folders of JSON files, each stored once
//! (zstd-compressed JSON keyed by id), with one row per (ecosystem, name, id) it affects. The
//! file is filled in one transaction under a temporary name, synced, and renamed into place,
//! so an index file that exists is complete.
//!
//! An entry that is not an OSV record (unparseable, or over 64 MiB) is skipped and counted; a
//! zip that cannot be read, or an entry whose CRC does not match, fails the whole build.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, Statement};

use super::{Summary, VulnDbError};
use crate::cache::atomic;
use crate::scan::osv::Record;

/// Part of every version: a change of the index layout gives new versions.
const FORMAT: &str = "buildopt-vulndb-1";
/// The largest OSV records are a few MB; anything this large is not one.
const MAX_RECORD_BYTES: u64 = 64 << 20;
const ZSTD_LEVEL: i32 = 3;

const SCHEMA: &str = "
    PRAGMA journal_mode = OFF;
    PRAGMA synchronous = OFF;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE records (id TEXT PRIMARY KEY, modified TEXT NOT NULL, json BLOB NOT NULL);
    CREATE TABLE affected (
        ecosystem TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL,
        PRIMARY KEY (ecosystem, name, id)
    ) WITHOUT ROWID;
";

/// Where records come from.
#[derive(Debug, Clone)]
pub(super) enum Source {
    /// A zip of OSV JSON files; `what` names it in errors (its URL or its path).
    Zip { path: PathBuf, what: String },
    /// The `.json` files under a folder, sorted.
    Files { root: PathBuf, files: Vec<PathBuf> },
}

impl Source {
    /// A folder (its `.json` files, recursively) or, for anything else, a zip.
    pub(super) fn of_path(path: &Path) -> Result<Self, VulnDbError> {
        let metadata = std::fs::metadata(path).map_err(VulnDbError::io(path))?;
        if metadata.is_dir() {
            let mut files = Vec::new();
            json_files(path, &mut files)?;
            files.sort();
            Ok(Self::Files {
                root: path.to_path_buf(),
                files,
            })
        } else {
            Ok(Self::Zip {
                path: path.to_path_buf(),
                what: path.display().to_string(),
            })
        }
    }

    /// The blake3 of the content: a zip's bytes, or each file's relative path and bytes.
    pub(super) fn content_hash(&self) -> Result<String, VulnDbError> {
        let mut hasher = blake3::Hasher::new();
        match self {
            Self::Zip { path, .. } => hash_file(&mut hasher, path)?,
            Self::Files { root, files } => {
                hasher.update(b"files\0");
                for file in files {
                    let relative = file.strip_prefix(root).unwrap_or(file);
                    hasher.update(relative.as_os_str().as_encoded_bytes());
                    hasher.update(b"\0");
                    let mut content = blake3::Hasher::new();
                    hash_file(&mut content, file)?;
                    hasher.update(content.finalize().as_bytes());
                }
            }
        }
        Ok(hasher.finalize().to_hex().to_string())
    }
}

/// Feeds the file at `path` to `hasher`.
pub(super) fn hash_file(hasher: &mut blake3::Hasher, path: &Path) -> Result<(), VulnDbError> {
    let file = File::open(path).map_err(VulnDbError::io(path))?;
    hasher
        .update_reader(BufReader::with_capacity(1 << 20, file))
        .map_err(VulnDbError::io(path))?;
    Ok(())
}

/// The `.json` files under `dir`; links to files count, links to folders are not followed
/// (they could loop).
fn json_files(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), VulnDbError> {
    let entries = std::fs::read_dir(dir).map_err(VulnDbError::io(dir))?;
    for entry in entries {
        let entry = entry.map_err(VulnDbError::io(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(VulnDbError::io(&path))?;
        if kind.is_dir() {
            json_files(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "json")
            && (kind.is_file() || path.is_file())
        {
            found.push(path);
        }
    }
    Ok(())
}

/// The version of an index of `parts` (content hashes, with whatever names them).
pub(super) fn version_of(parts: &[String]) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(FORMAT.as_bytes());
    for part in parts {
        hasher.update(b"\n");
        hasher.update(part.as_bytes());
    }
    hasher.finalize().to_hex()[..32].to_owned()
}

/// The name a package is keyed by: as OSV writes it, PyPI's normalised as PEP 503 says.
pub(super) fn name_key<'a>(ecosystem: &str, name: &'a str) -> Cow<'a, str> {
    if ecosystem == "PyPI" {
        Cow::Owned(pep503(name))
    } else {
        Cow::Borrowed(name)
    }
}

/// Lower case, every run of `-`, `_` and `.` one `-`.
fn pep503(name: &str) -> String {
    let mut normal = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                normal.push('-');
            }
            in_run = true;
        } else {
            normal.extend(c.to_lowercase());
            in_run = false;
        }
    }
    normal
}

/// Builds the index of `sources` at `target`: complete, or not there at all.
pub(super) fn build(
    target: &Path,
    version: &str,
    sources: &[Source],
) -> Result<Summary, VulnDbError> {
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(VulnDbError::io(dir))?;
    let temp = TempPath::next_to(target)?;
    let summary = fill(temp.path(), version, sources)?;
    let file = File::open(temp.path()).map_err(VulnDbError::io(temp.path()))?;
    file.sync_all().map_err(VulnDbError::io(temp.path()))?;
    temp.rename_to(target)?;
    atomic::sync_dir(dir).map_err(VulnDbError::io(dir))?;
    Ok(summary)
}

fn fill(path: &Path, version: &str, sources: &[Source]) -> Result<Summary, VulnDbError> {
    let sqlite = VulnDbError::sqlite;
    let mut connection = Connection::open(path).map_err(sqlite(path))?;
    connection.execute_batch(SCHEMA).map_err(sqlite(path))?;
    let transaction = connection.transaction().map_err(sqlite(path))?;
    let summary = {
        let mut indexer = Indexer::new(&transaction, path).map_err(sqlite(path))?;
        for source in sources {
            read_source(source, &mut |entry| indexer.add(entry))?;
        }
        indexer.finish(version)?
    };
    transaction.commit().map_err(sqlite(path))?;
    connection.close().map_err(|(_, e)| sqlite(path)(e))?;
    Ok(summary)
}

/// One entry of a source.
enum Entry<'a> {
    Json(&'a [u8]),
    Oversized,
}

fn read_source(
    source: &Source,
    visit: &mut dyn FnMut(Entry<'_>) -> Result<(), VulnDbError>,
) -> Result<(), VulnDbError> {
    match source {
        Source::Zip { path, what } => read_zip(path, what, visit),
        Source::Files { files, .. } => {
            for file in files {
                let size = std::fs::metadata(file)
                    .map_err(VulnDbError::io(file))?
                    .len();
                if size > MAX_RECORD_BYTES {
                    visit(Entry::Oversized)?;
                } else {
                    let bytes = std::fs::read(file).map_err(VulnDbError::io(file))?;
                    visit(Entry::Json(&bytes))?;
                }
            }
            Ok(())
        }
    }
}

/// Reads every entry of the zip to its end, so the zip crate checks each entry's CRC.
fn read_zip(
    path: &Path,
    what: &str,
    visit: &mut dyn FnMut(Entry<'_>) -> Result<(), VulnDbError>,
) -> Result<(), VulnDbError> {
    let zip_error = |reason: String| VulnDbError::Zip {
        what: what.to_owned(),
        reason,
    };
    let file = File::open(path).map_err(VulnDbError::io(path))?;
    // Small: the archive seeks to every entry, and a seek empties the buffer.
    let mut archive = zip::ZipArchive::new(BufReader::with_capacity(16 << 10, file))
        .map_err(|e| zip_error(e.to_string()))?;
    let mut buffer = Vec::new();
    for i in 0..archive.len() {
        let entry = archive
            .by_index(i)
            .map_err(|e| zip_error(format!("entry {i}: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        buffer.clear();
        entry
            .take(MAX_RECORD_BYTES + 1)
            .read_to_end(&mut buffer)
            .map_err(|e| VulnDbError::ZipEntry {
                what: what.to_owned(),
                entry: name,
                reason: e.to_string(),
            })?;
        if buffer.len() as u64 > MAX_RECORD_BYTES {
            visit(Entry::Oversized)?;
        } else {
            visit(Entry::Json(&buffer))?;
        }
    }
    Ok(())
}

/// Adds records to an open transaction with prepared statements, and keeps the counts.
struct Indexer<'t> {
    path: &'t Path,
    insert_record: Statement<'t>,
    insert_key: Statement<'t>,
    delete_keys: Statement<'t>,
    insert_meta: Statement<'t>,
    /// The `modified` of each stored id: the same record can be in two archives.
    stored: HashMap<String, String>,
    ecosystems: BTreeSet<String>,
    newest: Option<(chrono::DateTime<chrono::FixedOffset>, String)>,
    skipped: u64,
    withdrawn: u64,
}

impl<'t> Indexer<'t> {
    fn new(connection: &'t Connection, path: &'t Path) -> rusqlite::Result<Self> {
        Ok(Self {
            path,
            insert_record: connection.prepare(
                "INSERT OR REPLACE INTO records (id, modified, json) VALUES (?1, ?2, ?3)",
            )?,
            insert_key: connection.prepare(
                "INSERT OR IGNORE INTO affected (ecosystem, name, id) VALUES (?1, ?2, ?3)",
            )?,
            delete_keys: connection.prepare("DELETE FROM affected WHERE id = ?1")?,
            insert_meta: connection.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")?,
            stored: HashMap::new(),
            ecosystems: BTreeSet::new(),
            newest: None,
            skipped: 0,
            withdrawn: 0,
        })
    }

    fn add(&mut self, entry: Entry<'_>) -> Result<(), VulnDbError> {
        let Entry::Json(bytes) = entry else {
            self.skipped += 1;
            return Ok(());
        };
        let Ok(record) = serde_json::from_slice::<Record>(bytes) else {
            self.skipped += 1;
            return Ok(());
        };
        if record.is_withdrawn() {
            self.withdrawn += 1;
            return Ok(());
        }
        self.store(&record, bytes)
            .map_err(VulnDbError::sqlite(self.path))
    }

    /// Stores `record` unless a copy as new is stored already; a newer copy replaces it.
    fn store(&mut self, record: &Record, bytes: &[u8]) -> rusqlite::Result<()> {
        match self.stored.get(&record.id) {
            Some(modified) if *modified >= record.modified => return Ok(()),
            Some(_) => {
                self.delete_keys.execute([&record.id])?;
            }
            None => {}
        }
        let compressed = zstd::bulk::compress(bytes, ZSTD_LEVEL)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        self.insert_record
            .execute(rusqlite::params![record.id, record.modified, compressed])?;
        let keys: BTreeSet<(&str, Cow<'_, str>)> = record
            .affected
            .iter()
            .filter_map(|affected| affected.package.as_ref())
            .map(|p| (p.ecosystem.as_str(), name_key(&p.ecosystem, &p.name)))
            .collect();
        for (ecosystem, name) in keys {
            self.insert_key
                .execute(rusqlite::params![ecosystem, name.as_ref(), record.id])?;
            if !self.ecosystems.contains(ecosystem) {
                self.ecosystems.insert(ecosystem.to_owned());
            }
        }
        self.note_modified(&record.modified);
        self.stored
            .insert(record.id.clone(), record.modified.clone());
        Ok(())
    }

    /// Keeps the newest `modified` (compared as times: their fractions vary in length).
    fn note_modified(&mut self, modified: &str) {
        let Ok(time) = chrono::DateTime::parse_from_rfc3339(modified) else {
            return;
        };
        if self
            .newest
            .as_ref()
            .is_none_or(|(newest, _)| time > *newest)
        {
            self.newest = Some((time, modified.to_owned()));
        }
    }

    fn finish(mut self, version: &str) -> Result<Summary, VulnDbError> {
        let summary = Summary {
            version: version.to_owned(),
            built_at: now_in_seconds(),
            modified: self.newest.take().map(|(_, text)| text),
            ecosystems: std::mem::take(&mut self.ecosystems).into_iter().collect(),
            records: self.stored.len() as u64,
            skipped: self.skipped,
            withdrawn: self.withdrawn,
        };
        let built_at = summary
            .built_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let ecosystems = serde_json::to_string(&summary.ecosystems).unwrap_or_default();
        let rows = [
            ("version", summary.version.clone()),
            ("built_at", built_at.to_string()),
            ("modified", summary.modified.clone().unwrap_or_default()),
            ("ecosystems", ecosystems),
            ("records", summary.records.to_string()),
            ("skipped", summary.skipped.to_string()),
            ("withdrawn", summary.withdrawn.to_string()),
        ];
        for (key, value) in rows {
            self.insert_meta
                .execute([key, value.as_str()])
                .map_err(VulnDbError::sqlite(self.path))?;
        }
        Ok(summary)
    }
}

/// Now, to the second: what the index stores.
fn now_in_seconds() -> SystemTime {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// What an index file says about itself (its `meta` table).
pub(super) fn read_summary(connection: &Connection, path: &Path) -> Result<Summary, VulnDbError> {
    let rows: HashMap<String, String> = connection
        .prepare("SELECT key, value FROM meta")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
        .map_err(VulnDbError::sqlite(path))?;
    let broken = |key: &str| VulnDbError::Broken {
        path: path.to_path_buf(),
        reason: format!("the index has no readable {key:?}"),
    };
    let text = |key: &str| rows.get(key).cloned().ok_or_else(|| broken(key));
    let number =
        |key: &str| -> Result<u64, VulnDbError> { text(key)?.parse().map_err(|_| broken(key)) };
    let ecosystems: Vec<String> =
        serde_json::from_str(&text("ecosystems")?).map_err(|_| broken("ecosystems"))?;
    let modified = text("modified")?;
    Ok(Summary {
        version: text("version")?,
        built_at: UNIX_EPOCH + Duration::from_secs(number("built_at")?),
        modified: (!modified.is_empty()).then_some(modified),
        ecosystems,
        records: number("records")?,
        skipped: number("skipped")?,
        withdrawn: number("withdrawn")?,
    })
}

/// A file being written under a temporary name next to its target; removed on drop unless
/// renamed.
pub(super) struct TempPath {
    path: PathBuf,
    renamed: bool,
}

impl TempPath {
    pub(super) fn next_to(target: &Path) -> Result<Self, VulnDbError> {
        let dir = target.parent().unwrap_or(Path::new("."));
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let suffix = atomic::random_suffix().map_err(VulnDbError::io(dir))?;
        Ok(Self {
            path: dir.join(format!(".{name}.{suffix}.tmp")),
            renamed: false,
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the file over `target` (the caller syncs it and the folder).
    pub(super) fn rename_to(mut self, target: &Path) -> Result<(), VulnDbError> {
        std::fs::rename(&self.path, target).map_err(VulnDbError::io(target))?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pypi_names_are_normalised_as_pep_503_says() {
        assert_eq!(name_key("PyPI", "Flask__Caching"), "flask-caching");
        assert_eq!(name_key("PyPI", "zope.interface"), "zope-interface");
        assert_eq!(name_key("PyPI", "PyYAML"), "pyyaml");
        assert_eq!(name_key("PyPI", "a-._b"), "a-b");
        assert_eq!(name_key("npm", "@Scope/Pkg"), "@Scope/Pkg");
        assert_eq!(name_key("Maven", "org.Apache:Foo"), "org.Apache:Foo");
    }

    #[test]
    fn versions_depend_on_every_part_and_its_order() {
        let a = version_of(&["Debian=1".into(), "PyPI=2".into()]);
        assert_eq!(a, version_of(&["Debian=1".into(), "PyPI=2".into()]));
        assert_ne!(a, version_of(&["Debian=1".into(), "PyPI=3".into()]));
        assert_ne!(a, version_of(&["Debian=1".into()]));
        assert_eq!(a.len(), 32);
    }
}
