//! The cache archive: the whole store as one file for the CI's cache, and its safe import.
//!
//! Format: a tar stream, compressed with zstd or gzip (on every core), holding exactly
//! `manifest.json` first (format version, the index of images, every blob's digest and size),
//! then one regular file `blobs/sha256/<hex>` per blob listed there. Nothing else is valid.
//! Each entry is compressed in frames of its own (see `frames.rs`); readers see one stream.
//!
//! Because the format has only regular files with fixed-shape names, import is an allow-list
//! rather than a sanitiser: any other entry type (links, hard links, devices, FIFOs), any other
//! name (`..`, absolute paths, NUL bytes, long-name extensions), setuid/setgid/sticky bits, PAX
//! records (they can smuggle a size), a size that differs from the manifest, a duplicate, a blob
//! whose bytes do not hash to its name, too many entries, or too many decompressed bytes rejects
//! the whole archive. Blobs are hashed while they stream into a fresh staging folder inside the
//! store; only when the whole archive checked out are they synced, renamed into place and the
//! index merged, under the store lock. A refused archive leaves the store exactly as it was.
//! A [`BlobTee`] may receive the blobs as they stream (the `docker load` of `cache import`); it
//! hears whether they all checked out before anything is committed.
//!
//! Export writes a temp file next to the destination and renames it over, so a full disk or a
//! killed job leaves the previous archive intact.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::CacheError;
use super::atomic::AtomicFile;
use super::digest::Digest;
use super::frames::{self, FrameCompressor, PlacedFrames};
use super::history::BuildHistory;
use super::lock::StoreLock;
use super::store::{self, DiskRoom, ImageEntry, Index, Store};

/// The archive format this version writes; 2 carries the index entries of store format 2 (see
/// `store::INDEX_VERSION`), 3 also the build record.
pub const ARCHIVE_VERSION: u32 = 3;
/// The oldest archive format this version reads (a format 2 archive carries no build record).
pub const OLDEST_ARCHIVE_VERSION_READ: u32 = 2;
/// The first entry's name.
pub const MANIFEST_NAME: &str = "manifest.json";
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The largest zstd window a frame may ask for (32 MiB): ours use 2 MiB at level 3; a larger
/// request is a memory bomb.
const ZSTD_WINDOW_LOG_MAX: u32 = 25;

/// How the archive is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// zstd level 3 on every core: fast, and what CI caches use.
    Zstd,
    /// gzip level 6 on every core, for tools that cannot read zstd.
    Gzip,
}

/// Caps applied while importing, so a hostile archive cannot exhaust memory or disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries in the tar, manifest included.
    pub max_entries: u64,
    /// Bytes the manifest may declare for all blobs together; the decompressed stream may hold
    /// no more than these and their tar headers.
    pub max_total_bytes: u64,
    /// Bytes of `manifest.json`.
    pub max_manifest_bytes: u64,
    /// Room left on the store's file system, checked against the declared blobs before any is
    /// staged; `None` when it could not be read.
    pub disk: Option<DiskRoom>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_total_bytes: 64 << 30,
            max_manifest_bytes: 16 << 20,
            disk: None,
        }
    }
}

impl Limits {
    /// The caps of an import into `store`: blobs no larger in all than the store's size limit
    /// (which the next prune would enforce anyway) and than the room on its file system.
    pub fn for_store(store: &Store, size_limit_bytes: u64) -> Self {
        let default = Self::default();
        Self {
            max_total_bytes: default.max_total_bytes.min(size_limit_bytes),
            disk: store.disk_room(),
            ..default
        }
    }

    /// The decompressed bytes allowed before the manifest says what follows.
    fn max_stream_bytes(&self) -> u64 {
        let headers = self.max_entries.saturating_mul(BLOCK);
        self.max_total_bytes
            .saturating_add(self.max_manifest_bytes)
            .saturating_add(headers.saturating_mul(2))
            .saturating_add(END_RECORD)
    }
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub images: Vec<ImageEntry>,
    pub blobs: Vec<BlobRef>,
    /// The store's build record, merged into the importing store's.
    #[serde(default, skip_serializing_if = "BuildHistory::is_empty")]
    pub history: BuildHistory,
}

/// A blob the archive carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    pub images: usize,
    pub blobs: usize,
    /// Uncompressed bytes of the blobs.
    pub blob_bytes: u64,
    /// Bytes of the archive file.
    pub archive_bytes: u64,
    pub compression: Compression,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    /// The images the archive carried (now in the index).
    pub images: Vec<ImageEntry>,
    /// Blobs the store did not have before.
    pub blobs_added: usize,
    /// Blobs the store already had (their bytes were verified, then dropped).
    pub blobs_present: usize,
}

/// Writes the whole store (every indexed image and its blobs) to `dest`, atomically.
/// `threads` is the number of compression threads (0 or 1: the calling one).
pub fn export(
    store: &Store,
    lock: &StoreLock,
    dest: &Path,
    compression: Compression,
    threads: u32,
) -> Result<ExportSummary, CacheError> {
    let file = AtomicFile::create(dest).map_err(|e| CacheError::io(dest, e))?;
    export_into(store, lock, file, dest, compression, threads, None)
}

/// [`export`] into `file`, the temp file of `dest`, which may already hold the `placed` frames
/// of a [`frames::FrameWorker`]. They are kept when every one is still wanted and the manifest
/// fits the head left for it; otherwise the file is written again from the start.
pub fn export_into(
    store: &Store,
    lock: &StoreLock,
    mut file: AtomicFile,
    dest: &Path,
    compression: Compression,
    threads: u32,
    placed: Option<&PlacedFrames>,
) -> Result<ExportSummary, CacheError> {
    let index = store.read_index()?;
    let manifest = manifest_of(store, &index)?;
    let mut compressor =
        FrameCompressor::new(compression, threads).map_err(|e| CacheError::io(dest, e))?;
    write_archive(store, lock, &manifest, &mut compressor, placed, file.file())
        .map_err(|e| CacheError::io(dest, e))?;
    file.commit().map_err(|e| CacheError::io(dest, e))?;
    let archive_bytes = std::fs::metadata(dest)
        .map_err(|e| CacheError::io(dest, e))?
        .len();
    Ok(ExportSummary {
        images: manifest.images.len(),
        blobs: manifest.blobs.len(),
        blob_bytes: manifest.blobs.iter().map(|b| b.size).sum(),
        archive_bytes,
        compression,
    })
}

/// The bytes to leave for the manifest at the start of an archive whose frames are placed
/// while `saving` more images are saved into a store indexed by `index`: a compressed manifest
/// is smaller than the index's JSON and the blob list together, and a saved image adds far less
/// than 16 KiB; what is left over becomes padding.
pub fn manifest_reservation(index: &Index, saving: usize) -> u64 {
    let index_json = serde_json::to_vec(index).map_or(0, |json| json.len() as u64);
    (64 << 10) + 2 * index_json + (16 << 10) * saving as u64
}

/// The manifest of everything the index references, with sizes from disk.
fn manifest_of(store: &Store, index: &Index) -> Result<Manifest, CacheError> {
    let sizes = store.blob_sizes()?;
    let mut blobs = Vec::new();
    for digest in index.referenced() {
        let size = *sizes.get(digest).ok_or_else(|| CacheError::State {
            path: store.blob_path(digest).display().to_string(),
            message: "the index references a blob that is missing".into(),
        })?;
        blobs.push(BlobRef {
            digest: digest.clone(),
            size,
        });
    }
    Ok(Manifest {
        version: ARCHIVE_VERSION,
        images: index.images.clone(),
        blobs,
        history: index.history.clone(),
    })
}

/// The archive as frames (see `frames.rs`): the manifest, each blob, the tar's end. With
/// usable `placed` frames, the manifest and padding fill the head and only the blobs not placed
/// follow the placed ones; else the file is truncated and written in the manifest's order.
fn write_archive(
    store: &Store,
    _lock: &StoreLock,
    manifest: &Manifest,
    compressor: &mut FrameCompressor,
    placed: Option<&PlacedFrames>,
    file: &mut File,
) -> io::Result<()> {
    let mut head = Vec::new();
    let json = serde_json::to_vec(manifest).map_err(io::Error::other)?;
    let size = json.len() as u64;
    compressor.write_entry(&mut head, MANIFEST_NAME, size, &mut json.as_slice())?;
    let kept = placed.and_then(|placed| keep_placed(manifest, compressor, placed, &head));
    let mut missing: Vec<&BlobRef> = manifest.blobs.iter().collect();
    match kept {
        Some((placed, padding)) => {
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&head)?;
            file.write_all(&padding)?;
            file.seek(SeekFrom::Start(placed.end))?;
            missing.retain(|blob| !placed.blobs.contains_key(&blob.digest));
        }
        None => {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&head)?;
        }
    }
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for blob in missing {
        let mut blob_file = store.open_blob(&blob.digest).map_err(io::Error::other)?;
        let name = frames::blob_entry_name(&blob.digest);
        compressor.write_entry(&mut out, &name, blob.size, &mut blob_file)?;
    }
    compressor.write_end(&mut out)?;
    out.flush()
}

/// The placed frames and the padding that completes their head, when they can stay: made with
/// this compression, every placed blob still in the manifest at the same size (the import
/// refuses anything else), and the manifest's frames fitting the head.
fn keep_placed<'a>(
    manifest: &Manifest,
    compressor: &FrameCompressor,
    placed: &'a PlacedFrames,
    head: &[u8],
) -> Option<(&'a PlacedFrames, Vec<u8>)> {
    if placed.compression != compressor.compression() {
        return None;
    }
    let wanted: BTreeMap<&Digest, u64> =
        manifest.blobs.iter().map(|b| (&b.digest, b.size)).collect();
    let all_wanted = placed
        .blobs
        .iter()
        .all(|(digest, size)| wanted.get(digest) == Some(size));
    let room = placed.reserved.checked_sub(head.len() as u64)?;
    let padding = frames::padding_frames(placed.compression, room)?;
    all_wanted.then_some((placed, padding))
}

/// The zero bytes that round a tar entry of `size` bytes up to whole 512-byte blocks.
pub(crate) fn tar_padding(size: u64) -> u64 {
    (512 - size % 512) % 512
}

/// Fills `header` as a regular file with a fixed mode and time (reproducible archives).
pub(crate) fn regular_file_header(
    mut header: tar::Header,
    name: &str,
    size: u64,
) -> io::Result<tar::Header> {
    header.set_path(name)?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Ok(header)
}

/// Verifies `archive` and merges it into the store. Any problem with the archive is
/// [`CacheError::BadArchive`] and leaves the store unchanged.
pub fn import(
    store: &Store,
    lock: &StoreLock,
    archive: &Path,
    limits: &Limits,
) -> Result<ImportOutcome, CacheError> {
    import_teeing(store, lock, archive, limits, &mut NoTee)
}

/// Something that also receives the archive's blobs while they stream in: the `docker load`
/// upload of `cache import`, which so runs while the archive is read rather than after it.
///
/// A tee sees a blob's bytes before they are verified: [`BlobTee::verified`] follows each blob
/// that checked out, [`BlobTee::all_verified`] comes only when the whole archive did, and on a
/// refusal the tee is left without that call (dropping it must then undo what it started). Its
/// own failures are its business: they never make the archive bad.
pub trait BlobTee {
    /// The archive's manifest checked out; called once, before any blob.
    fn start(&mut self, manifest: &Manifest);
    /// Whether the bytes of `digest` (`size` of them) should come through [`BlobTee::write`].
    fn wants(&mut self, digest: &Digest, size: u64) -> bool;
    /// The next bytes of the wanted blob being read.
    fn write(&mut self, bytes: &[u8]);
    /// The blob just read matched its digest; `staged` holds its bytes until the commit.
    fn verified(&mut self, digest: &Digest, staged: &Path);
    /// Every blob checked out; the store commit follows.
    fn all_verified(&mut self);
}

/// The tee of a plain import: wants nothing.
struct NoTee;

impl BlobTee for NoTee {
    fn start(&mut self, _: &Manifest) {}
    fn wants(&mut self, _: &Digest, _: u64) -> bool {
        false
    }
    fn write(&mut self, _: &[u8]) {}
    fn verified(&mut self, _: &Digest, _: &Path) {}
    fn all_verified(&mut self) {}
}

/// [`import`], passing the blobs to `tee` as they stream (see [`BlobTee`]).
pub fn import_teeing(
    store: &Store,
    lock: &StoreLock,
    archive: &Path,
    limits: &Limits,
    tee: &mut dyn BlobTee,
) -> Result<ImportOutcome, CacheError> {
    let staging = store.staging_dir("import", lock)?;
    let staged = stage(archive, &staging, limits, tee);
    let result = match staged {
        Ok(manifest) => {
            tee.all_verified();
            commit(store, lock, &staging, manifest)
        }
        Err(reason) => Err(CacheError::BadArchive {
            path: archive.display().to_string(),
            reason: bounded(reason),
        }),
    };
    // The staging folder is ours alone (fresh, random name); whatever is left goes.
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Reads and verifies the whole archive into `staging`; the error is the refusal reason.
fn stage(
    archive: &Path,
    staging: &Path,
    limits: &Limits,
    tee: &mut dyn BlobTee,
) -> Result<Manifest, String> {
    let file = File::open(archive).map_err(|e| e.to_string())?;
    let decoded = decoder(BufReader::with_capacity(1 << 20, file)).map_err(|e| e.to_string())?;
    let remaining = Rc::new(Cell::new(limits.max_stream_bytes()));
    let capped = CappedReader {
        inner: decoded,
        remaining: Rc::clone(&remaining),
    };
    let mut tar = tar::Archive::new(capped);
    let manifest = stage_entries(&mut tar, &remaining, staging, limits, tee)?;
    check_end(tar.into_inner())?;
    Ok(manifest)
}

/// The manifest, then every blob into `staging`. Entries are read raw: GNU long names, PAX
/// records and sparse maps arrive as entries of their own and are refused from their header,
/// before their body is read (the `tar` crate would otherwise read those bodies into memory
/// first, whatever their size).
fn stage_entries<R: Read>(
    tar: &mut tar::Archive<R>,
    remaining: &Cell<u64>,
    staging: &Path,
    limits: &Limits,
    tee: &mut dyn BlobTee,
) -> Result<Manifest, String> {
    let mut entries = tar.entries().map_err(|e| e.to_string())?.raw(true);
    let manifest = read_manifest(entries.next(), limits)?;
    // From here on the stream may hold only what the manifest declares.
    remaining.set(remaining.get().min(declared_stream_bytes(&manifest)));
    tee.start(&manifest);
    let expected: BTreeMap<&Digest, u64> =
        manifest.blobs.iter().map(|b| (&b.digest, b.size)).collect();
    let mut seen = BTreeSet::new();
    let mut count = 1u64;
    for entry in entries {
        count += 1;
        if count > limits.max_entries {
            return Err(format!("more than {} entries", limits.max_entries));
        }
        let mut entry = entry.map_err(|e| format!("corrupt tar: {e}"))?;
        let digest = check_blob_header(&entry, &expected)?;
        if !seen.insert(digest.clone()) {
            return Err(format!("{digest} appears twice"));
        }
        stage_blob(&mut entry, &digest, expected[&digest], staging, tee)?;
    }
    if let Some(missing) = expected.keys().find(|d| !seen.contains(**d)) {
        return Err(format!("{missing} is listed in the manifest but missing"));
    }
    Ok(manifest)
}

/// The most decompressed bytes an archive with `manifest` can hold: each blob with its header
/// and padding, the manifest's own entry (already read) and the end of the archive, which
/// GNU tar pads to a 10 KiB record.
fn declared_stream_bytes(manifest: &Manifest) -> u64 {
    let blobs = manifest.blobs.iter().fold(0u64, |total, blob| {
        total.saturating_add(BLOCK + blob.size + tar_padding(blob.size))
    });
    blobs.saturating_add(END_RECORD)
}

/// A tar block.
const BLOCK: u64 = 512;
/// The most bytes allowed after the last entry: the two end blocks and GNU tar's padding to its
/// default record of 20 blocks, all zeros.
const END_RECORD: u64 = 22 * BLOCK;

/// After the tar's first end-of-archive block: the rest of the decompressed stream must be
/// zeros, the second end block among them, and the decoder must reach its end cleanly (zstd
/// checksums, gzip CRC and length, no trailing garbage), as GNU tar requires.
fn check_end<R: Read>(mut rest: R) -> Result<(), String> {
    let mut buf = [0u8; 8192];
    let mut zeros = 0u64;
    loop {
        let n = match rest.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("corrupt compressed stream after the tar: {e}")),
        };
        if buf[..n].iter().any(|&b| b != 0) {
            return Err("data after the end of the tar".into());
        }
        zeros += n as u64;
    }
    if zeros < BLOCK {
        return Err("the tar's end-of-archive blocks are missing".into());
    }
    Ok(())
}

fn decoder<'a, R: io::BufRead + 'a>(mut reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let magic = reader.fill_buf()?;
    if magic.starts_with(&ZSTD_MAGIC) {
        let mut decoder = zstd::stream::read::Decoder::with_buffer(reader)?;
        decoder.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
        Ok(Box::new(decoder))
    } else if magic.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(reader)))
    } else {
        Err(io::Error::other("neither zstd nor gzip"))
    }
}

/// Fails (rather than truncating silently) once more than the cap was decompressed. The cap is
/// shared so that it can be lowered once the manifest says what follows.
struct CappedReader<R> {
    inner: R,
    remaining: Rc<Cell<u64>>,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let remaining = self
            .remaining
            .get()
            .checked_sub(n as u64)
            .ok_or_else(|| io::Error::other("decompressed size over the limit"))?;
        self.remaining.set(remaining);
        Ok(n)
    }
}

fn read_manifest<R: Read>(
    first: Option<io::Result<tar::Entry<'_, R>>>,
    limits: &Limits,
) -> Result<Manifest, String> {
    let mut entry = first
        .ok_or("empty archive")?
        .map_err(|e| format!("corrupt tar: {e}"))?;
    check_plain_regular(entry.header())?;
    if entry.header().path_bytes().as_ref() != MANIFEST_NAME.as_bytes() {
        return Err(format!("the first entry is not {MANIFEST_NAME}"));
    }
    if entry.size() > limits.max_manifest_bytes {
        return Err(format!(
            "{MANIFEST_NAME} over {} bytes",
            limits.max_manifest_bytes
        ));
    }
    let mut bytes = Vec::new();
    entry
        .by_ref()
        .take(limits.max_manifest_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("corrupt tar: {e}"))?;
    if bytes.len() as u64 != entry.size() {
        return Err(format!("{MANIFEST_NAME} is shorter than its header says"));
    }
    check_version(&bytes)?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| format!("{MANIFEST_NAME}: {e}"))?;
    check_manifest(&manifest, limits)?;
    Ok(manifest)
}

/// An archive of another format is refused before its entries are parsed, saying which.
fn check_version(manifest: &[u8]) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let found = serde_json::from_slice::<Version>(manifest)
        .map_err(|e| format!("{MANIFEST_NAME}: {e}"))?
        .version;
    match found.cmp(&ARCHIVE_VERSION) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Less if found >= OLDEST_ARCHIVE_VERSION_READ => Ok(()),
        std::cmp::Ordering::Less => Err(format!(
            "archive format {found}, written by an older buildopt (this one reads formats \
             {OLDEST_ARCHIVE_VERSION_READ} to {ARCHIVE_VERSION}); the next save writes a new one"
        )),
        std::cmp::Ordering::Greater => Err(format!(
            "archive format {found}, written by a newer buildopt (this one reads formats \
             {OLDEST_ARCHIVE_VERSION_READ} to {ARCHIVE_VERSION})"
        )),
    }
}

fn check_manifest(manifest: &Manifest, limits: &Limits) -> Result<(), String> {
    if !(OLDEST_ARCHIVE_VERSION_READ..=ARCHIVE_VERSION).contains(&manifest.version) {
        return Err(format!("archive version {}", manifest.version));
    }
    if manifest.blobs.len() as u64 >= limits.max_entries {
        return Err(format!("more than {} entries", limits.max_entries));
    }
    let mut listed = BTreeSet::new();
    let mut total = 0u64;
    for blob in &manifest.blobs {
        if !listed.insert(&blob.digest) {
            return Err(format!("{} is listed twice", blob.digest));
        }
        total = total.saturating_add(blob.size);
    }
    if total > limits.max_total_bytes {
        return Err(format!(
            "declares {total} bytes, over the limit of {} bytes (the store's size limit)",
            limits.max_total_bytes
        ));
    }
    if let Some(disk) = &limits.disk {
        disk.check(manifest.blobs.iter().map(|b| b.size))?;
    }
    let referenced = manifest.images.iter().flat_map(ImageEntry::blobs);
    if let Some(missing) = referenced.into_iter().find(|d| !listed.contains(d)) {
        return Err(format!(
            "an image references {missing}, which is not listed"
        ));
    }
    Ok(())
}

/// Refuses anything but a plain regular file, from its header alone: other types (links,
/// devices, directories, GNU long names `L`/`K`, PAX records `x`/`g`, GNU sparse `S`) and
/// setuid, setgid or sticky bits.
fn check_plain_regular(header: &tar::Header) -> Result<(), String> {
    let name = shown(&header.path_bytes());
    let kind = header.entry_type();
    if kind != tar::EntryType::Regular {
        return Err(format!("{name} is a {kind:?} entry, not a regular file"));
    }
    let mode = header.mode().map_err(|e| format!("{name}: {e}"))?;
    if mode & 0o7000 != 0 {
        return Err(format!(
            "{name} has setuid, setgid or sticky bits ({mode:o})"
        ));
    }
    Ok(())
}

/// Checks one blob entry's header and returns its digest.
fn check_blob_header<R: Read>(
    entry: &tar::Entry<'_, R>,
    expected: &BTreeMap<&Digest, u64>,
) -> Result<Digest, String> {
    let header = entry.header();
    check_plain_regular(header)?;
    let raw = header.path_bytes();
    let digest = std::str::from_utf8(&raw)
        .ok()
        .and_then(|name| name.strip_prefix(frames::BLOB_PREFIX))
        .and_then(|hex| Digest::from_hex(hex).ok())
        .ok_or_else(|| format!("unexpected entry {}", shown(&raw)))?;
    let size = *expected
        .get(&digest)
        .ok_or_else(|| format!("{} is not listed in the manifest", shown(&raw)))?;
    if entry.size() != size {
        return Err(format!(
            "{} is {} bytes, the manifest says {size}",
            shown(&raw),
            entry.size()
        ));
    }
    Ok(digest)
}

/// The most characters of an archive's text (an entry name, a parser's message) that a
/// refusal repeats: a hostile archive must not fill the console or the JSON report.
const SHOWN_CHARS: usize = 300;

/// `text` quoted and escaped for a message, cut to [`SHOWN_CHARS`] characters.
pub(crate) fn shown(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let cut: String = text.chars().take(SHOWN_CHARS).collect();
    if cut.len() < text.len() {
        format!("{cut:?}… ({} bytes)", text.len())
    } else {
        format!("{cut:?}")
    }
}

/// A refusal reason cut to a bounded length (parsers' messages may quote the archive).
fn bounded(reason: String) -> String {
    const MOST: usize = 4 * SHOWN_CHARS;
    if reason.chars().count() <= MOST {
        return reason;
    }
    let cut: String = reason.chars().take(MOST).collect();
    format!("{cut}… ({} bytes)", reason.len())
}

/// Streams one blob into `staging/<hex>` (and to `tee` when it wants it), hashing as it goes.
/// The staged file is not synced here: [`commit`] syncs each file it moves into the store.
fn stage_blob<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    digest: &Digest,
    size: u64,
    staging: &Path,
    tee: &mut dyn BlobTee,
) -> Result<(), String> {
    let path = staging.join(digest.hex());
    let teeing = tee.wants(digest, size);
    let mut reader = TeeReader {
        inner: entry.take(size),
        tee: teeing.then_some(&mut *tee),
    };
    let (actual, written) =
        store::write_hashed(&mut reader, &path).map_err(|e| match CacheError::io(&path, e) {
            full if full.is_disk_full() => format!("the store's disk is full: {full}"),
            CacheError::Io { source, .. } => format!("{digest}: {source}"),
            other => other.to_string(),
        })?;
    if written != size {
        return Err(format!("{digest} ends after {written} of {size} bytes"));
    }
    if &actual != digest {
        return Err(format!("{digest} does not match its content ({actual})"));
    }
    if teeing {
        tee.verified(digest, &path);
    }
    Ok(())
}

/// Passes what it reads to the tee too.
struct TeeReader<'a, R> {
    inner: R,
    tee: Option<&'a mut dyn BlobTee>,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(tee) = &mut self.tee {
            tee.write(&buf[..n]);
        }
        Ok(n)
    }
}

/// Moves the verified blobs into the store (made durable as one batch, see
/// [`Store::adopt_files`]) and merges the index.
fn commit(
    store: &Store,
    lock: &StoreLock,
    staging: &Path,
    manifest: Manifest,
) -> Result<ImportOutcome, CacheError> {
    let staged: Vec<(PathBuf, &Digest)> = manifest
        .blobs
        .iter()
        .map(|blob| (staging.join(blob.digest.hex()), &blob.digest))
        .collect();
    let added = store.adopt_files(&staged, lock)?;
    // Restoring is not a use: last use stays what the saving build recorded, so an image no
    // build produces any more still ages out; but never later than now, or it would never age.
    let now = super::unix_now();
    let mut images = manifest.images;
    for image in &mut images {
        image.last_used = image.last_used.min(now);
    }
    let indexed = store.read_index().and_then(|mut index| {
        for image in &images {
            index.upsert(image.clone());
        }
        index.history.merge(&manifest.history);
        store.write_index(&index, lock)
    });
    if let Err(error) = indexed {
        // A full disk, say: the store stays as it was.
        store.remove_added(&added, lock);
        return Err(error);
    }
    Ok(ImportOutcome {
        images,
        blobs_added: added.len(),
        blobs_present: manifest.blobs.len() - added.len(),
    })
}
