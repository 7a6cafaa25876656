//! `buildopt scan --setup`: OSV's per-ecosystem archives downloaded into the database folder,
//! indexed, and the new index swapped in.
//!
//! Each archive is fetched conditionally (`If-None-Match` with the stored ETag; a 304 keeps the
//! stored archive), checked against the `x-goog-hash` md5 and crc32c Google Cloud Storage
//! sends, and read entry by entry while indexing (the zip's CRCs). Nothing is replaced until
//! every archive asked for was downloaded, checked and indexed: on any failure the old
//! archives and the old database stay, and the error names the URL and why. The index covers
//! the union of the ecosystems asked for now and those set up before.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::Digest;
use reqwest::blocking::Client;
use reqwest::header::{ETAG, HeaderMap, IF_NONE_MATCH};
use serde::{Deserialize, Serialize};

use super::index::{self, Source, TempPath};
use super::{Summary, VulnDb, VulnDbError};
use crate::cache::atomic;

/// Where `setup` keeps the database and where it downloads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupOptions {
    /// The database folder (`vulndb_dir`).
    pub dir: PathBuf,
    /// The base URL of OSV's export or a mirror of it (`vulndb_url`), e.g. [`super::DEFAULT_URL`].
    pub base_url: String,
    /// A database found current at the source less than this long ago, with every archive
    /// asked for, is kept without asking again (CI runs: the cache carries the database, and
    /// one check a day is what trivy-action's daily cache gives too); `None` always asks.
    pub recheck_after: Option<Duration>,
}

/// What `setup` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupReport {
    /// The archives (base ecosystem names) downloaded because they were new or changed.
    pub downloaded: Vec<String>,
    /// The archives kept as they were: the server answered 304, or they were set up before and
    /// not asked for this time.
    pub unchanged: Vec<String>,
    /// False when this content was indexed before: nothing was built.
    pub indexed: bool,
    /// True when the source was not asked at all: the database was checked recently enough
    /// (see [`SetupOptions::recheck_after`]).
    pub recent: bool,
    /// The database now current.
    pub summary: Summary,
}

/// A blocking HTTP client for [`setup`]: `timeout` bounds each whole download.
pub fn http_client(timeout: Duration) -> reqwest::Result<Client> {
    Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(30)))
        .user_agent(concat!("buildopt/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Downloads `<base_url>/<Ecosystem>/all.zip` for the base name of each of `ecosystems`
/// (`Debian:12` → `Debian`), indexes them with the archives set up before, and makes that
/// index current. The only function of this module that touches the network.
pub fn setup(
    options: &SetupOptions,
    ecosystems: &[String],
    http: &Client,
) -> Result<SetupReport, VulnDbError> {
    let dir = &options.dir;
    std::fs::create_dir_all(dir).map_err(VulnDbError::io(dir))?;
    let _lock = lock_folder(dir)?;
    let asked = base_names(ecosystems)?;
    let stored = stored_archives(dir)?;
    if asked.is_empty() && stored.is_empty() {
        return Err(VulnDbError::NothingToSetUp);
    }
    if let Some(report) = checked_recently(options, &asked, &stored)? {
        return Ok(report);
    }
    let mut downloads = BTreeMap::new();
    for ecosystem in &asked {
        let url = archive_url(&options.base_url, ecosystem)?;
        if let Some(download) = fetch(dir, ecosystem, &url, stored.get(ecosystem), http)? {
            downloads.insert(ecosystem.clone(), download);
        }
    }
    let sources = union_of(dir, &stored, &downloads);
    let parts: Vec<String> = sources
        .iter()
        .map(|(ecosystem, (_, hash))| format!("{ecosystem}={hash}"))
        .collect();
    let version = index::version_of(&parts);
    let target = index_path(dir, &version);
    let indexed = !target.is_file();
    if indexed {
        let sources: Vec<Source> = sources.into_values().map(|(source, _)| source).collect();
        index::build(&target, &version, &sources)?;
    }
    let summary = VulnDb::open_index(&target)?.summary;
    let downloaded: Vec<String> = downloads.keys().cloned().collect();
    for (ecosystem, download) in downloads {
        download.keep(&archive_dir(dir, &ecosystem))?;
    }
    make_current(dir, &version)?;
    note_checked(dir, &version);
    remove_other_indexes(dir, &version);
    let unchanged = stored
        .keys()
        .filter(|e| !downloaded.contains(e))
        .cloned()
        .collect();
    Ok(SetupReport {
        downloaded,
        unchanged,
        indexed,
        recent: false,
        summary,
    })
}

/// The current database as it is, when it holds every archive `asked` and a setup found it
/// current at the source within `recheck_after`.
fn checked_recently(
    options: &SetupOptions,
    asked: &[String],
    stored: &BTreeMap<String, ArchiveMeta>,
) -> Result<Option<SetupReport>, VulnDbError> {
    let Some(window) = options.recheck_after else {
        return Ok(None);
    };
    let dir = &options.dir;
    let Some(version) = current_version(dir)? else {
        return Ok(None);
    };
    let target = index_path(dir, &version);
    let recent = checked_at(dir, &version)
        .and_then(|at| at.elapsed().ok())
        .is_some_and(|since| since < window);
    if !recent || !target.is_file() || !asked.iter().all(|e| stored.contains_key(e)) {
        return Ok(None);
    }
    Ok(Some(SetupReport {
        downloaded: Vec::new(),
        unchanged: stored.keys().cloned().collect(),
        indexed: false,
        recent: true,
        summary: VulnDb::open_index(&target)?.summary,
    }))
}

/// Makes the OSV records at `path` (a folder of JSON files or a zip: a mirror, an air-gapped
/// copy) the current database of `dir`, indexed once per content; the network is not touched.
pub fn install(path: &Path, dir: &Path) -> Result<SetupReport, VulnDbError> {
    std::fs::create_dir_all(dir).map_err(VulnDbError::io(dir))?;
    let _lock = lock_folder(dir)?;
    let source = Source::of_path(path)?;
    let version = index::version_of(&[format!("local={}", source.content_hash()?)]);
    let target = index_path(dir, &version);
    let indexed = !target.is_file();
    if indexed {
        index::build(&target, &version, std::slice::from_ref(&source))?;
    }
    let summary = VulnDb::open_index(&target)?.summary;
    make_current(dir, &version)?;
    note_checked(dir, &version);
    remove_other_indexes(dir, &version);
    Ok(SetupReport {
        downloaded: Vec::new(),
        unchanged: Vec::new(),
        indexed,
        recent: false,
        summary,
    })
}

/// The version `current` names in `dir`; `None` when there is none.
pub(super) fn current_version(dir: &Path) -> Result<Option<String>, VulnDbError> {
    let path = dir.join("current");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(VulnDbError::io(&path)(e)),
    };
    let version = text.trim();
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(VulnDbError::Broken {
            path,
            reason: format!("names no index version: {version:?}"),
        });
    }
    Ok(Some(version.to_owned()))
}

pub(super) fn index_path(dir: &Path, version: &str) -> PathBuf {
    dir.join("index").join(format!("{version}.sqlite"))
}

fn archive_dir(dir: &Path, ecosystem: &str) -> PathBuf {
    dir.join("archives").join(ecosystem)
}

/// One setup at a time per folder: another one waits for the lock.
fn lock_folder(dir: &Path) -> Result<File, VulnDbError> {
    let path = dir.join(".setup.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(VulnDbError::io(&path))?;
    file.lock().map_err(VulnDbError::io(&path))?;
    Ok(file)
}

/// The archive names of `ecosystems` (the part before the first `:`), sorted, once each.
fn base_names(ecosystems: &[String]) -> Result<Vec<String>, VulnDbError> {
    let mut names: Vec<String> = Vec::new();
    for ecosystem in ecosystems {
        let base = ecosystem.split(':').next().unwrap_or_default().trim();
        let usable = !base.is_empty()
            && !base.starts_with('.')
            && !base.contains(['/', '\\'])
            && !base.chars().any(char::is_control);
        if !usable {
            return Err(VulnDbError::BadEcosystem(ecosystem.clone()));
        }
        if !names.iter().any(|n| n == base) {
            names.push(base.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// `<base>/<Ecosystem>/all.zip`, the ecosystem escaped as one path segment.
fn archive_url(base: &str, ecosystem: &str) -> Result<String, VulnDbError> {
    let bad_base = |reason: String| VulnDbError::Download {
        url: base.to_owned(),
        reason,
    };
    let mut url = reqwest::Url::parse(base).map_err(|e| bad_base(e.to_string()))?;
    url.path_segments_mut()
        .map_err(|()| bad_base("cannot be a base URL".into()))?
        .pop_if_empty()
        .push(ecosystem)
        .push("all.zip");
    Ok(url.to_string())
}

/// What is kept next to each archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ArchiveMeta {
    url: String,
    etag: Option<String>,
    blake3: String,
}

/// The archives set up before, by ecosystem: those with both the zip and its metadata.
fn stored_archives(dir: &Path) -> Result<BTreeMap<String, ArchiveMeta>, VulnDbError> {
    let archives = dir.join("archives");
    let entries = match std::fs::read_dir(&archives) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(VulnDbError::io(&archives)(e)),
    };
    let mut stored = BTreeMap::new();
    for entry in entries.flatten() {
        let folder = entry.path();
        let Some(ecosystem) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let meta = std::fs::read(folder.join("meta.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<ArchiveMeta>(&bytes).ok());
        if let Some(meta) = meta
            && folder.join("all.zip").is_file()
        {
            stored.insert(ecosystem, meta);
        }
    }
    Ok(stored)
}

/// An archive downloaded and checked, not yet in place.
struct Download {
    temp: TempPath,
    meta: ArchiveMeta,
}

impl Download {
    /// Puts the archive in place, then its metadata (a crash between the two leaves the old
    /// ETag, so the next setup downloads again).
    fn keep(self, folder: &Path) -> Result<(), VulnDbError> {
        self.temp.rename_to(&folder.join("all.zip"))?;
        let meta_path = folder.join("meta.json");
        let meta = serde_json::to_vec_pretty(&self.meta).unwrap_or_default();
        atomic::write(&meta_path, &meta).map_err(VulnDbError::io(&meta_path))
    }
}

/// Every archive to index, by ecosystem: the new downloads and the stored ones, each with the
/// blake3 of its bytes.
fn union_of(
    dir: &Path,
    stored: &BTreeMap<String, ArchiveMeta>,
    downloads: &BTreeMap<String, Download>,
) -> BTreeMap<String, (Source, String)> {
    let mut sources = BTreeMap::new();
    for (ecosystem, meta) in stored {
        let path = archive_dir(dir, ecosystem).join("all.zip");
        let source = Source::Zip {
            path,
            what: meta.url.clone(),
        };
        sources.insert(ecosystem.clone(), (source, meta.blake3.clone()));
    }
    for (ecosystem, download) in downloads {
        let source = Source::Zip {
            path: download.temp.path().to_path_buf(),
            what: download.meta.url.clone(),
        };
        sources.insert(ecosystem.clone(), (source, download.meta.blake3.clone()));
    }
    sources
}

/// Downloads the archive at `url` unless the stored one is current (then `None`).
fn fetch(
    dir: &Path,
    ecosystem: &str,
    url: &str,
    stored: Option<&ArchiveMeta>,
    http: &Client,
) -> Result<Option<Download>, VulnDbError> {
    let failed = |reason: String| VulnDbError::Download {
        url: url.to_owned(),
        reason,
    };
    let mut request = http.get(url);
    if let Some(etag) = stored.and_then(|meta| meta.etag.as_deref()) {
        request = request.header(IF_NONE_MATCH, etag);
    }
    let mut response = request.send().map_err(|e| failed(error_chain(&e)))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED && stored.is_some() {
        return Ok(None);
    }
    if status != reqwest::StatusCode::OK {
        return Err(failed(format!("the server answered {status}")));
    }
    let announced = announced_hashes(response.headers());
    let etag = response
        .headers()
        .get(ETAG)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let folder = archive_dir(dir, ecosystem);
    std::fs::create_dir_all(&folder).map_err(VulnDbError::io(&folder))?;
    let temp = TempPath::next_to(&folder.join("all.zip"))?;
    let file = File::create(temp.path()).map_err(VulnDbError::io(temp.path()))?;
    let mut body = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    response
        .copy_to(&mut body)
        .map_err(|e| failed(error_chain(&e)))?;
    let hashes = body.finish(temp.path())?;
    for (algorithm, expected) in announced {
        let actual = match algorithm {
            "md5" => &hashes.md5,
            _ => &hashes.crc32c,
        };
        if *actual != expected {
            return Err(VulnDbError::HashMismatch {
                url: url.to_owned(),
                algorithm,
                expected,
                actual: actual.clone(),
            });
        }
    }
    Ok(Some(Download {
        temp,
        meta: ArchiveMeta {
            url: url.to_owned(),
            etag,
            blake3: hashes.blake3,
        },
    }))
}

/// An error and its causes, one after the other ("error sending request: operation timed out").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

/// The checksums of `x-goog-hash` (`crc32c=<base64>,md5=<base64>`, in one header or several).
fn announced_hashes(headers: &HeaderMap) -> Vec<(&'static str, String)> {
    let mut hashes = Vec::new();
    for value in headers.get_all("x-goog-hash") {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(',') {
            match pair.trim().split_once('=') {
                Some(("md5", hash)) => hashes.push(("md5", hash.to_owned())),
                Some(("crc32c", hash)) => hashes.push(("crc32c", hash.to_owned())),
                _ => {}
            }
        }
    }
    hashes
}

/// The checksums of a download, in the forms compared and stored.
struct Hashes {
    md5: String,
    crc32c: String,
    blake3: String,
}

/// Writes a download to its file and hashes it on the way.
struct HashingWriter<W: Write> {
    inner: W,
    md5: md5::Md5,
    crc32c: u32,
    blake3: blake3::Hasher,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            md5: md5::Md5::new(),
            crc32c: 0,
            blake3: blake3::Hasher::new(),
        }
    }
}

impl HashingWriter<BufWriter<File>> {
    /// Flushes and syncs the file; the checksums (md5 and crc32c in base64, as
    /// `x-goog-hash` writes them).
    fn finish(self, path: &Path) -> Result<Hashes, VulnDbError> {
        let file = self
            .inner
            .into_inner()
            .map_err(|e| VulnDbError::io(path)(e.into_error()))?;
        file.sync_all().map_err(VulnDbError::io(path))?;
        Ok(Hashes {
            md5: BASE64.encode(self.md5.finalize()),
            crc32c: BASE64.encode(self.crc32c.to_be_bytes()),
            blake3: self.blake3.finalize().to_hex().to_string(),
        })
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        let done = &buf[..written];
        self.md5.update(done);
        self.crc32c = crc32c::crc32c_append(self.crc32c, done);
        self.blake3.update(done);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Records that `version` was found current at the source now (`checked`: the version and
/// the time in Unix seconds). Best effort: without it the age counts from the build.
fn note_checked(dir: &Path, version: &str) {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let _ = atomic::write(
        &dir.join("checked"),
        format!("{version} {seconds}\n").as_bytes(),
    );
}

/// When `version` was last found current at the source, if that is recorded.
pub(super) fn checked_at(dir: &Path, version: &str) -> Option<std::time::SystemTime> {
    let text = std::fs::read_to_string(dir.join("checked")).ok()?;
    let (checked_version, seconds) = text.trim().split_once(' ')?;
    let seconds: u64 = seconds.parse().ok()?;
    (checked_version == version).then(|| std::time::UNIX_EPOCH + Duration::from_secs(seconds))
}

/// Points `current` at `version`, atomically.
fn make_current(dir: &Path, version: &str) -> Result<(), VulnDbError> {
    let path = dir.join("current");
    atomic::write(&path, format!("{version}\n").as_bytes()).map_err(VulnDbError::io(&path))
}

/// Removes the indexes other than `version`'s; a reader that has one open keeps reading it.
fn remove_other_indexes(dir: &Path, version: &str) {
    let keep = format!("{version}.sqlite");
    let Ok(entries) = std::fs::read_dir(dir.join("index")) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_index = name.to_str().is_some_and(|n| n.ends_with(".sqlite"));
        if is_index && name != keep.as_str() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_are_the_base_ecosystems() {
        let names = [
            "Debian:12",
            "PyPI",
            "Debian:11",
            "Rocky Linux:9",
            "Alpine:v3.19",
        ];
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            base_names(&names).unwrap(),
            ["Alpine", "Debian", "PyPI", "Rocky Linux"]
        );
        for bad in ["", ":12", "../x", "a/b", ".hidden", "a\nb"] {
            assert!(
                matches!(
                    base_names(&[bad.to_string()]),
                    Err(VulnDbError::BadEcosystem(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn archive_urls_escape_the_ecosystem() {
        assert_eq!(
            archive_url("https://osv-vulnerabilities.storage.googleapis.com", "PyPI").unwrap(),
            "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"
        );
        assert_eq!(
            archive_url("http://127.0.0.1:8080/mirror/", "Rocky Linux").unwrap(),
            "http://127.0.0.1:8080/mirror/Rocky%20Linux/all.zip"
        );
        assert!(archive_url("not a url", "PyPI").is_err());
    }

    #[test]
    fn goog_hash_headers_are_read_in_either_form() {
        let mut headers = HeaderMap::new();
        headers.append(
            "x-goog-hash",
            "crc32c=n03x6A==,md5=Ojk9c3dhfxgoKVVHYwFbHQ=="
                .parse()
                .unwrap(),
        );
        headers.append("x-goog-hash", "sha1=ignored".parse().unwrap());
        assert_eq!(
            announced_hashes(&headers),
            [
                ("crc32c", "n03x6A==".to_string()),
                ("md5", "Ojk9c3dhfxgoKVVHYwFbHQ==".to_string())
            ]
        );
    }

    /// The known answers: md5("") and the crc32c check value of "123456789" (0xE3069283).
    #[test]
    fn download_checksums_are_written_as_gcs_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let (path, empty_path) = (dir.path().join("f"), dir.path().join("empty"));
        let empty = HashingWriter::new(BufWriter::new(File::create(&empty_path).unwrap()))
            .finish(&empty_path)
            .unwrap();
        assert_eq!(empty.md5, "1B2M2Y8AsgTpgAmY7PhCfg==");
        let mut writer = HashingWriter::new(BufWriter::new(File::create(&path).unwrap()));
        writer.write_all(b"123456789").unwrap();
        let hashes = writer.finish(&path).unwrap();
        assert_eq!(hashes.crc32c, BASE64.encode(0xE306_9283_u32.to_be_bytes()));
        assert_eq!(std::fs::read(&path).unwrap(), b"123456789");
    }
}
