//! The content-addressed store on disk.
//!
//! ```text
//! <root>/                    default `.build_cache/`
//!   blobs/sha256/<hex>       every blob of the saved images, each kept once, exactly as
//!                            `docker save` wrote it: configs, layers (compressed or not),
//!                            manifests and indexes
//!   index.json               the images: name, tags, inputs digest, blobs, last use, size;
//!                            and the build record (`history.rs`), kept apart from the images
//!   tmp/                     temp files and import staging (same file system, so renames are atomic)
//!   lock                     see `lock.rs`
//! ```
//!
//! Invariants: a blob file's name is the SHA-256 of its bytes (blobs enter only by rename after
//! hashing); `index.json` is replaced atomically; an image in the index references only blobs
//! that are present, because blobs are renamed in before the index that names them is written.
//! Blobs no image references are garbage that `prune::collect_garbage` removes.
//!
//! Links: the root may be a link the user configured; it is resolved once, when the store is
//! opened. Below it nothing is followed: its folders must be real folders (else the store is
//! refused), files are opened with `O_NOFOLLOW` and must be regular files, and removals remove
//! a link itself, never what it points at. Whatever is in `tmp/` when the lock is taken belongs
//! to a job that died (every writer of `tmp/` holds the lock), so taking the lock clears it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::CacheError;
use super::atomic;
use super::digest::{Digest, HashingWriter};
use super::history::BuildHistory;
use super::lock::StoreLock;
use crate::engine::ImageStore;
use crate::image_archive::{Descriptor, SavedImage};

/// The store folder when nothing else is configured.
pub const DEFAULT_DIR: &str = ".build_cache";
/// The index format this version writes. 2: images keep their OCI target, its other blobs and
/// the layers' diff ids, and layers are kept as saved (1 kept uncompressed layers). 3: the build
/// record (`history`) beside the images.
pub const INDEX_VERSION: u32 = 3;
/// The oldest index format this version reads: a format 2 index reads as one without a build
/// record; an older one is replaced by an empty index.
pub const OLDEST_INDEX_VERSION_READ: u32 = 2;
/// How long a job waits for the store lock unless the settings say otherwise.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(600);
/// How many build records [`Index::record_build`] keeps.
pub const BUILD_RECORDS_KEPT: usize = 20;

/// The tag prefix of an intermediate stage's image, `<repository>:stage-<name>` (level maximum).
pub const STAGE_TAG_PREFIX: &str = "stage-";

/// The reference the intermediate stage `stage` of `repository` is built and cached under;
/// `None` when `stage-<name>` cannot be a tag (a tag is at most 128 of `[A-Za-z0-9_.-]`).
pub fn stage_reference(repository: &str, stage: &str) -> Option<String> {
    let tag = format!("{STAGE_TAG_PREFIX}{stage}");
    let valid = tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    valid.then(|| format!("{repository}:{tag}"))
}

/// Whether `reference` names an intermediate stage's image (its tag starts with `stage-`).
pub fn is_stage_reference(reference: &str) -> bool {
    let repository = super::docker_tar::repository(reference);
    reference
        .get(repository.len()..)
        .and_then(|tag| tag.strip_prefix(':'))
        .is_some_and(|tag| tag.starts_with(STAGE_TAG_PREFIX))
}

/// The index name of an image saved with `tags`: its repository; for an image that has only
/// stage tags, its first stage reference, so a stage's entry sits next to its image's entry
/// instead of replacing it. `None` without tags.
pub fn entry_name(tags: &[String]) -> Option<String> {
    let name = tags
        .iter()
        .find(|tag| !is_stage_reference(tag))
        .map(|tag| super::docker_tar::repository(tag));
    name.or(tags.first().map(String::as_str)).map(str::to_owned)
}

/// One image the store can give back to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageEntry {
    /// The repository name, e.g. `acme/api`; one entry per name. An intermediate stage's image
    /// is named by its reference, e.g. `acme/api:stage-builder` (see [`entry_name`]).
    pub name: String,
    /// Every `name:tag` the image had when saved.
    pub tags: Vec<String>,
    /// The planner's inputs digest of the build that made it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_digest: Option<String>,
    /// The image config blob; its digest is the image id on the classic image store.
    pub config: Digest,
    /// The layer blobs as saved (compressed on the containerd image store), base first.
    pub layers: Vec<Digest>,
    /// The layers' uncompressed digests, from the config.
    pub diff_ids: Vec<Digest>,
    /// What the saved OCI layout's `index.json` pointed at (the image's manifest or index),
    /// whose digest is the image id on the containerd image store; `None` for a legacy save.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Descriptor>,
    /// The blobs the target reaches besides the config and layers (the target itself, indexes,
    /// manifests, attestations), so that it loads back whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_blobs: Vec<Digest>,
    /// Seconds since the Unix epoch when a build last saved or restored it.
    pub last_used: u64,
    /// Bytes of its config and layers (shared layers counted in each image).
    pub size: u64,
}

impl ImageEntry {
    /// The entry of an image read from a save stream, or `None` for an untagged one; `now` is
    /// its last use.
    pub fn from_saved(image: SavedImage, sizes: &BTreeMap<Digest, u64>, now: u64) -> Option<Self> {
        let name = entry_name(&image.tags)?;
        let size = image.blobs().iter().filter_map(|d| sizes.get(*d)).sum();
        Some(Self {
            name,
            tags: image.tags,
            inputs_digest: None,
            config: image.config,
            layers: image.layers,
            diff_ids: image.diff_ids,
            target: image.target,
            other_blobs: image.other_blobs,
            last_used: now,
            size,
        })
    }

    /// The image as an archive reader describes it, for writing a load stream.
    pub fn as_saved(&self) -> SavedImage {
        SavedImage {
            tags: self.tags.clone(),
            config: self.config.clone(),
            layers: self.layers.clone(),
            diff_ids: self.diff_ids.clone(),
            target: self.target.clone(),
            other_blobs: self.other_blobs.clone(),
        }
    }

    /// The config, every layer and the target's other blobs (the target among them).
    pub fn blobs(&self) -> impl Iterator<Item = &Digest> {
        std::iter::once(&self.config)
            .chain(&self.layers)
            .chain(&self.other_blobs)
    }

    /// The id a daemon with `image_store` gives this image after a load: the config digest on
    /// the classic store, the target's digest on the containerd store (unknown there for an
    /// image saved in the legacy layout).
    pub fn id_on(&self, image_store: ImageStore) -> Option<&Digest> {
        match image_store {
            ImageStore::Classic => Some(&self.config),
            ImageStore::Containerd => self.target.as_ref().map(|t| &t.digest),
        }
    }
}

/// The cache hits and misses of one build, for `cache stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// Steps served from the cache.
    pub cached_steps: u64,
    /// Steps that ran.
    pub total_steps: u64,
}

/// `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub version: u32,
    pub images: Vec<ImageEntry>,
    #[serde(default)]
    pub builds: Vec<BuildRecord>,
    /// Every image builds attempted and the inputs they built, kept when images are pruned.
    #[serde(default, skip_serializing_if = "BuildHistory::is_empty")]
    pub history: BuildHistory,
    /// The version of an older index that this empty one stands in for (its entries are not
    /// readable any more; their blobs are garbage the next prune collects).
    #[serde(skip)]
    pub replaced_version: Option<u32>,
}

impl Default for Index {
    fn default() -> Self {
        Self {
            version: INDEX_VERSION,
            images: Vec::new(),
            builds: Vec::new(),
            history: BuildHistory::default(),
            replaced_version: None,
        }
    }
}

impl Index {
    /// Adds `entry`, replacing the entry of the same name; keeps the later last use.
    pub fn upsert(&mut self, mut entry: ImageEntry) {
        match self.images.iter_mut().find(|e| e.name == entry.name) {
            Some(existing) => {
                entry.last_used = entry.last_used.max(existing.last_used);
                *existing = entry;
            }
            None => self.images.push(entry),
        }
        self.images.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// Every blob some image references.
    pub fn referenced(&self) -> BTreeSet<&Digest> {
        self.images.iter().flat_map(ImageEntry::blobs).collect()
    }

    /// Records one build's cache use, keeping the last [`BUILD_RECORDS_KEPT`].
    pub fn record_build(&mut self, record: BuildRecord) {
        self.builds.push(record);
        let excess = self.builds.len().saturating_sub(BUILD_RECORDS_KEPT);
        self.builds.drain(..excess);
    }

    /// Parses `index.json`; `path` names the file in errors.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, CacheError> {
        let state = |message: String| CacheError::State {
            path: path.display().to_string(),
            message,
        };
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let version: Version = serde_json::from_slice(bytes).map_err(|e| state(e.to_string()))?;
        if version.version < OLDEST_INDEX_VERSION_READ {
            return Ok(Self {
                replaced_version: Some(version.version),
                ..Self::default()
            });
        }
        let mut index: Self = serde_json::from_slice(bytes).map_err(|e| state(e.to_string()))?;
        if index.version > INDEX_VERSION {
            return Err(state(format!(
                "index version {} (this buildopt reads {OLDEST_INDEX_VERSION_READ} to \
                 {INDEX_VERSION})",
                index.version
            )));
        }
        // Read as this format: the next write says so.
        index.version = INDEX_VERSION;
        Ok(index)
    }
}

/// A blob that was added (or found already present).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub digest: Digest,
    pub size: u64,
    /// False when the store already had it (the bytes were dropped).
    pub added: bool,
}

/// A blob written to the store's temp folder, not yet under its digest (see
/// [`Store::stage_blob`]). Dropped without [`Store::adopt_staged`], its temp file is removed.
#[derive(Debug)]
pub struct StagedBlob {
    pub digest: Digest,
    pub size: u64,
    /// `None` when the store already had the blob, or once adopted.
    temp: Option<PathBuf>,
    /// The fsync of the temp file, started as soon as it was written so that the disk works
    /// while the next blobs stream in; [`Store::adopt_staged`] waits for it.
    synced: Option<JoinHandle<io::Result<()>>>,
}

impl StagedBlob {
    /// The staged bytes, for a reader that wants them before the blob is adopted; `None` when
    /// the store already had the blob (nothing was staged).
    pub fn open_staged(&self) -> Option<io::Result<File>> {
        self.temp.as_ref().map(File::open)
    }

    fn discard(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = std::fs::remove_file(temp);
        }
    }

    /// Waits for the fsync started at staging.
    fn wait_synced(&mut self) -> io::Result<()> {
        match self.synced.take() {
            Some(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the fsync thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        self.discard();
    }
}

/// The store at one folder.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `root`, creating its folders. `root` may be a link, resolved here
    /// once; a folder of the store that is a link (or not a folder) refuses the store.
    pub fn open(root: &Path) -> Result<Self, CacheError> {
        std::fs::create_dir_all(root).map_err(|e| CacheError::io(root, e))?;
        let resolved = root.canonicalize().map_err(|e| CacheError::io(root, e))?;
        let store = Self { root: resolved };
        for dir in [store.root.join("blobs"), store.blob_dir(), store.tmp_dir()] {
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(CacheError::io(&dir, e)),
            }
            real_dir(&dir)?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the store's exclusive lock (see `lock.rs`), waiting at most the default time, and
    /// clears `tmp/`.
    pub fn lock(&self, on_wait: impl FnOnce(&Path)) -> Result<StoreLock, CacheError> {
        self.lock_within(DEFAULT_LOCK_TIMEOUT, on_wait)
    }

    /// [`Store::lock`], giving up after `timeout` with [`CacheError::LockTimeout`].
    pub fn lock_within(
        &self,
        timeout: Duration,
        on_wait: impl FnOnce(&Path),
    ) -> Result<StoreLock, CacheError> {
        let lock = StoreLock::acquire(&self.root, timeout, on_wait)?;
        self.clear_tmp(&lock)?;
        Ok(lock)
    }

    /// Room on the store's file system for new blobs (see [`DiskRoom`]); `None` when the file
    /// system cannot say.
    pub fn disk_room(&self) -> Option<DiskRoom> {
        let stats = nix::sys::statvfs::statvfs(&self.root).ok()?;
        let unit = stats.fragment_size();
        Some(DiskRoom::new(
            stats.blocks_available().saturating_mul(unit),
            stats.blocks().saturating_mul(unit),
            unit,
        ))
    }

    pub fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    pub fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir().join(digest.hex())
    }

    /// Whether the blob is there as a regular file (a link named like a blob is not).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        std::fs::symlink_metadata(self.blob_path(digest)).is_ok_and(|m| m.is_file())
    }

    /// The index; a store without one is empty.
    pub fn read_index(&self) -> Result<Index, CacheError> {
        let path = self.index_path();
        let mut bytes = Vec::new();
        match open_regular(&path).and_then(|mut file| file.read_to_end(&mut bytes)) {
            Ok(_) => Index::parse(&bytes, &path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(CacheError::io(&path, e)),
        }
    }

    /// Replaces the index atomically. Call with the lock held.
    pub fn write_index(&self, index: &Index, _lock: &StoreLock) -> Result<(), CacheError> {
        let path = self.index_path();
        let mut bytes = serde_json::to_vec_pretty(index).map_err(|e| CacheError::State {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        bytes.push(b'\n');
        atomic::write(&path, &bytes).map_err(|e| CacheError::io(&path, e))
    }

    /// Streams `reader` into the store under the digest of its bytes, durably, at once. Bytes the
    /// store already has are dropped, so a layer shared by many images is kept once.
    #[cfg(test)]
    pub(crate) fn add_blob(
        &self,
        reader: &mut dyn Read,
        lock: &StoreLock,
    ) -> Result<StoredBlob, CacheError> {
        let staged = self.stage_blob(reader, lock)?;
        let (digest, size) = (staged.digest.clone(), staged.size);
        let added = self.adopt_staged(vec![staged], lock)? == 1;
        Ok(StoredBlob {
            digest,
            size,
            added,
        })
    }

    /// Streams `reader` into a temp file named for nothing yet, hashing it, without waiting for
    /// the disk: [`Store::adopt_staged`] makes a batch durable and puts it in place at once, so
    /// concurrent `docker save` streams are not held up by an fsync per blob. Bytes the store
    /// already has are dropped at once. Call with the lock held.
    pub fn stage_blob(
        &self,
        reader: &mut dyn Read,
        _lock: &StoreLock,
    ) -> Result<StagedBlob, CacheError> {
        let tmp_dir = self.tmp_dir();
        let suffix = atomic::random_suffix().map_err(|e| CacheError::io(&tmp_dir, e))?;
        let temp = tmp_dir.join(format!("blob-{suffix}"));
        let (digest, size, file) = match write_hashed_file(reader, &temp) {
            Ok(done) => done,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(CacheError::io(&temp, e));
            }
        };
        let mut staged = StagedBlob {
            digest,
            size,
            temp: Some(temp),
            synced: None,
        };
        if self.has_blob(&staged.digest) {
            staged.discard();
        } else {
            staged.synced = Some(std::thread::spawn(move || file.sync_all()));
        }
        Ok(staged)
    }

    /// Waits until the staged blobs are durable (their fsyncs started at staging), renames them
    /// into place under their digests (a blob staged twice is kept once) and syncs the blob
    /// folder once. Returns how many the store did not have.
    pub fn adopt_staged(
        &self,
        staged: Vec<StagedBlob>,
        _lock: &StoreLock,
    ) -> Result<usize, CacheError> {
        let mut added = 0;
        for mut blob in staged {
            let synced = blob.wait_synced();
            let Some(temp) = blob.temp.take() else {
                continue;
            };
            if self.has_blob(&blob.digest) {
                std::fs::remove_file(&temp).map_err(|e| CacheError::io(&temp, e))?;
                continue;
            }
            // Durable before it is named by its digest: a crash never leaves a short blob there.
            synced.map_err(|e| CacheError::io(&temp, e))?;
            let target = self.blob_path(&blob.digest);
            std::fs::rename(&temp, &target).map_err(|e| CacheError::io(&target, e))?;
            added += 1;
        }
        if added > 0 {
            let dir = self.blob_dir();
            atomic::sync_dir(&dir).map_err(|e| CacheError::io(&dir, e))?;
        }
        Ok(added)
    }

    /// Moves verified files (on the store's file system) into place under their digests: the
    /// ones the store lacks are made durable together (fsyncs on several threads, which the
    /// file system commits in batches), renamed, and the blob folder is synced once. Files of
    /// blobs the store already has are left where they are. Returns the blobs added; on an error
    /// none of them stays.
    pub(crate) fn adopt_files(
        &self,
        files: &[(PathBuf, &Digest)],
        lock: &StoreLock,
    ) -> Result<Vec<Digest>, CacheError> {
        let new: Vec<&(PathBuf, &Digest)> =
            files.iter().filter(|(_, d)| !self.has_blob(d)).collect();
        sync_files(
            &new.iter()
                .map(|(path, _)| path.as_path())
                .collect::<Vec<_>>(),
        )?;
        let mut added = Vec::with_capacity(new.len());
        let renamed = new.iter().try_for_each(|(path, digest)| {
            let target = self.blob_path(digest);
            std::fs::rename(path, &target).map_err(|e| CacheError::io(&target, e))?;
            added.push((*digest).clone());
            Ok(())
        });
        let synced = renamed.and_then(|()| {
            let dir = self.blob_dir();
            match added.is_empty() {
                true => Ok(()),
                false => atomic::sync_dir(&dir).map_err(|e| CacheError::io(&dir, e)),
            }
        });
        if let Err(error) = synced {
            self.remove_added(&added, lock);
            return Err(error);
        }
        Ok(added)
    }

    /// Takes back blobs a failed import added (nothing names them yet). Best effort: a blob
    /// left behind is unreferenced, and the next collection removes it.
    pub(crate) fn remove_added(&self, added: &[Digest], _lock: &StoreLock) {
        for digest in added {
            let _ = std::fs::remove_file(self.blob_path(digest));
        }
    }

    /// Opens a blob for reading (a regular file, never through a link).
    pub fn open_blob(&self, digest: &Digest) -> Result<File, CacheError> {
        let path = self.blob_path(digest);
        open_regular(&path).map_err(|e| CacheError::io(&path, e))
    }

    /// Every blob on disk with its size, by digest. Files that are not named like a digest (a
    /// stray file, a temp file of an older version) are ignored, never deleted from here.
    pub fn blob_sizes(&self) -> Result<BTreeMap<Digest, u64>, CacheError> {
        let dir = self.blob_dir();
        real_dir(&dir)?;
        let mut sizes = BTreeMap::new();
        for (digest, path) in digest_named_files(&dir)? {
            let meta = std::fs::symlink_metadata(&path).map_err(|e| CacheError::io(&path, e))?;
            if meta.is_file() {
                sizes.insert(digest, meta.len());
            }
        }
        Ok(sizes)
    }

    /// A fresh, empty staging folder under `tmp/`.
    pub fn staging_dir(&self, purpose: &str, _lock: &StoreLock) -> Result<PathBuf, CacheError> {
        let tmp = self.tmp_dir();
        let suffix = atomic::random_suffix().map_err(|e| CacheError::io(&tmp, e))?;
        let dir = tmp.join(format!("{purpose}-{suffix}"));
        std::fs::create_dir(&dir).map_err(|e| CacheError::io(&dir, e))?;
        Ok(dir)
    }

    /// Removes leftovers of jobs that died mid-write. Safe only with the lock held, because every
    /// writer of `tmp/` holds it.
    /// A link is removed itself, never followed; `tmp/` must still be a real folder.
    pub fn clear_tmp(&self, _lock: &StoreLock) -> Result<(), CacheError> {
        let tmp = self.tmp_dir();
        real_dir(&tmp)?;
        let entries = std::fs::read_dir(&tmp).map_err(|e| CacheError::io(&tmp, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| CacheError::io(&tmp, e))?;
            let path = entry.path();
            // `file_type` does not follow links, and `remove_dir_all` follows none inside.
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let removed = if is_dir {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| CacheError::io(&path, e))?;
        }
        Ok(())
    }
}

/// Room on a file system for an import's blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskRoom {
    /// Bytes an unprivileged writer may still use, less [`DiskRoom::margin`].
    pub free: u64,
    /// Kept free for everything else on the runner: the smaller of 1 GiB and 5% of the file
    /// system.
    pub margin: u64,
    /// The allocation unit: a file takes whole units.
    pub unit: u64,
}

impl DiskRoom {
    /// The room of a file system with `available` of `total` bytes free, allocated by `unit`.
    pub fn new(available: u64, total: u64, unit: u64) -> Self {
        let margin = (1u64 << 30).min(total / 20);
        Self {
            free: available.saturating_sub(margin),
            margin,
            unit: unit.max(1),
        }
    }

    /// Refuses files of `sizes` that would not fit; the error is the reason.
    pub fn check(&self, sizes: impl Iterator<Item = u64>) -> Result<(), String> {
        let needed = sizes.fold(0u64, |total, size| {
            total.saturating_add(size.div_ceil(self.unit).saturating_mul(self.unit))
        });
        if needed > self.free {
            return Err(format!(
                "needs {needed} bytes on disk, over the limit of {} bytes free on the store's \
                 file system (a margin of {} bytes kept)",
                self.free, self.margin
            ));
        }
        Ok(())
    }
}

/// Refuses a store whose folder `dir` is a link or not a folder.
fn real_dir(dir: &Path) -> Result<(), CacheError> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| CacheError::io(dir, e))?;
    if meta.is_dir() {
        return Ok(());
    }
    Err(CacheError::UnsafeStore {
        path: dir.display().to_string(),
        reason: "is a link or not a folder; a store follows no link below its root".into(),
    })
}

/// Opens a store file for reading: not through a link (`O_NOFOLLOW`), not blocking on a FIFO
/// (`O_NONBLOCK`, which regular files ignore), and only if what was opened is a regular file.
pub(crate) fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// fsyncs `files` on several threads: the file system then commits many of them per journal
/// commit instead of one each.
fn sync_files(files: &[&Path]) -> Result<(), CacheError> {
    const THREADS: usize = 16;
    if files.is_empty() {
        return Ok(());
    }
    let chunk = files.len().div_ceil(THREADS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|paths| {
                scope.spawn(move || {
                    paths.iter().try_for_each(|path| {
                        open_regular(path)
                            .and_then(|file| file.sync_all())
                            .map_err(|e| CacheError::io(path, e))
                    })
                })
            })
            .collect();
        handles.into_iter().try_for_each(|handle| {
            handle
                .join()
                .unwrap_or_else(|_| Err(CacheError::io(files[0], io::Error::other("panicked"))))
        })
    })
}

/// Copies `reader` into a new file at `path` and returns the digest and length. The file is not
/// synced: the caller does that before naming it by its digest.
pub(crate) fn write_hashed(reader: &mut dyn Read, path: &Path) -> io::Result<(Digest, u64)> {
    write_hashed_file(reader, path).map(|(digest, size, _)| (digest, size))
}

/// [`write_hashed`], handing back the written file.
fn write_hashed_file(reader: &mut dyn Read, path: &Path) -> io::Result<(Digest, u64, File)> {
    let mut writer = HashingWriter::new(File::create_new(path)?);
    // Large reads: fewer trips through the decoder and tar layers, and whole-chunk writes.
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        writer.write_all(&buf[..n])?;
    }
    Ok(writer.finish())
}

/// The copy buffer of [`write_hashed`].
const COPY_BUFFER: usize = 1 << 20;

/// The files of `dir` whose names are sha256 digests, with their paths; other names are skipped.
pub(crate) fn digest_named_files(dir: &Path) -> Result<Vec<(Digest, PathBuf)>, CacheError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CacheError::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| CacheError::io(dir, e))?;
        if let Some(digest) = entry
            .file_name()
            .to_str()
            .and_then(|n| Digest::from_hex(n).ok())
        {
            files.push((digest, entry.path()));
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, config: &[u8], layers: &[&[u8]], last_used: u64) -> ImageEntry {
        ImageEntry {
            name: name.into(),
            tags: vec![format!("{name}:latest")],
            inputs_digest: None,
            config: Digest::of(config),
            layers: layers.iter().map(|l| Digest::of(l)).collect(),
            diff_ids: Vec::new(),
            target: None,
            other_blobs: Vec::new(),
            last_used,
            size: (config.len() + layers.iter().map(|l| l.len()).sum::<usize>()) as u64,
        }
    }

    #[test]
    fn a_stage_image_gets_its_own_entry_name() {
        let tags = |list: &[&str]| list.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(
            entry_name(&tags(&[
                "reg:5000/acme/api:inputs-ab",
                "reg:5000/acme/api:latest"
            ])),
            Some("reg:5000/acme/api".into())
        );
        assert_eq!(
            entry_name(&tags(&["acme/api:stage-builder"])),
            Some("acme/api:stage-builder".into())
        );
        // The same image as a stage and the final image: the image's entry, with every tag.
        assert_eq!(
            entry_name(&tags(&["acme/api:stage-builder", "acme/api:latest"])),
            Some("acme/api".into())
        );
        assert_eq!(entry_name(&[]), None);
        assert!(is_stage_reference("reg:5000/acme/api:stage-x"));
        assert!(!is_stage_reference("reg:5000/stage-x"));
        assert!(!is_stage_reference("acme/api:latest"));
        assert_eq!(
            stage_reference("acme/api", "builder"),
            Some("acme/api:stage-builder".into())
        );
        assert_eq!(stage_reference("acme/api", "a/b"), None);
        assert_eq!(stage_reference("acme/api", &"x".repeat(123)), None);
        assert!(stage_reference("acme/api", &"x".repeat(122)).is_some());
    }

    #[test]
    fn shared_blobs_are_kept_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let lock = store.lock(|_| {}).expect("lock");
        let first = store.add_blob(&mut &b"layer"[..], &lock).expect("add");
        let second = store.add_blob(&mut &b"layer"[..], &lock).expect("add");
        assert!(first.added && !second.added);
        assert_eq!(first.digest, Digest::of(b"layer"));
        assert_eq!(store.blob_sizes().expect("sizes").len(), 1);
        assert_eq!(
            std::fs::read(store.blob_path(&first.digest)).expect("read"),
            b"layer"
        );
        assert_eq!(std::fs::read_dir(store.tmp_dir()).expect("ls").count(), 0);
    }

    #[test]
    fn index_round_trips_and_upsert_replaces_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        assert_eq!(store.read_index().expect("empty"), Index::default());
        let lock = store.lock(|_| {}).expect("lock");
        let mut index = Index::default();
        index.upsert(entry("b", b"c1", &[b"l1"], 10));
        index.upsert(entry("a", b"c2", &[b"l1", b"l2"], 5));
        index.upsert(entry("b", b"c3", &[b"l3"], 7));
        assert_eq!(index.images.len(), 2);
        assert_eq!(index.images[1].config, Digest::of(b"c3"));
        assert_eq!(index.images[1].last_used, 10, "the later use is kept");
        assert_eq!(index.referenced().len(), 5);
        store.write_index(&index, &lock).expect("write");
        assert_eq!(store.read_index().expect("read"), index);
    }

    #[test]
    fn build_records_are_bounded() {
        let mut index = Index::default();
        for at in 0..(BUILD_RECORDS_KEPT as u64 + 5) {
            index.record_build(BuildRecord {
                at,
                cached_steps: 1,
                total_steps: 2,
            });
        }
        assert_eq!(index.builds.len(), BUILD_RECORDS_KEPT);
        assert_eq!(index.builds[0].at, 5);
    }

    #[test]
    fn malformed_index_files_are_state_errors() {
        let path = Path::new("index.json");
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            b"{\"version\":4,\"images\":[]}",
            b"{\"version\":2,\"images\":[],\"extra\":1}",
            b"{\"version\":3,\"images\":[],\"history\":{\"attempts\":{\"a\":{}}}}",
            b"{\"version\":2,\"images\":[{\"name\":\"a\",\"tags\":[],\"config\":\"sha256:00\",\"layers\":[],\"last_used\":0,\"size\":0}]}",
        ] {
            assert!(
                matches!(Index::parse(bad, path), Err(CacheError::State { .. })),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn an_index_of_an_older_format_reads_as_an_empty_one_that_says_so() {
        let old = br#"{"version":1,"images":[{"name":"a","tags":[],"config":"sha256:00","layers":[],"last_used":0,"size":0}]}"#;
        let index = Index::parse(old, Path::new("index.json")).expect("parse");
        assert!(index.images.is_empty());
        assert_eq!(index.replaced_version, Some(1));
    }

    #[test]
    fn an_index_of_format_2_reads_without_a_record_and_is_written_as_format_3() {
        let old = br#"{"version":2,"images":[{"name":"a","tags":["a:latest"],"inputs_digest":"blake3:1","config":"sha256:0000000000000000000000000000000000000000000000000000000000000000","layers":[],"diff_ids":[],"last_used":0,"size":0}]}"#;
        let index = Index::parse(old, Path::new("index.json")).expect("parse");
        assert_eq!(index.images.len(), 1);
        assert!(index.history.is_empty());
        assert_eq!(index.replaced_version, None);
        assert_eq!(index.version, INDEX_VERSION);
    }

    #[test]
    fn the_build_record_survives_pruning_every_image() {
        use crate::cache::history::{Attempt, AttemptOutcome};
        let mut index = Index::default();
        index.upsert(entry("a", b"c1", &[b"l1"], 10));
        index.history.record(
            "a",
            Attempt {
                inputs_digest: "blake3:1".into(),
                outcome: AttemptOutcome::Built,
                at: 10,
            },
        );
        index.images.clear();
        let json = serde_json::to_vec(&index).expect("json");
        let read = Index::parse(&json, Path::new("index.json")).expect("parse");
        assert!(read.history.has_succeeded("a", "blake3:1"));
    }

    #[test]
    fn stray_files_in_the_blob_folder_are_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        std::fs::write(store.blob_dir().join("notes.txt"), "x").expect("write");
        assert!(store.blob_sizes().expect("sizes").is_empty());
    }

    #[test]
    fn the_disk_room_keeps_a_margin_and_counts_whole_units() {
        let small = DiskRoom::new(19 << 20, 20 << 20, 4096);
        assert_eq!(small.margin, 1 << 20, "5% of a small file system");
        assert_eq!(small.free, 18 << 20);
        let big = DiskRoom::new(500 << 30, 1000 << 30, 4096);
        assert_eq!(big.margin, 1 << 30, "at most 1 GiB");
        // 4,608 one-byte files take 18 MiB in 4 KiB units.
        assert!(small.check(std::iter::repeat_n(1, 4608)).is_ok());
        let err = small.check(std::iter::repeat_n(1, 4609)).expect_err("over");
        assert!(err.contains("free on the store's file system"), "{err}");
    }

    #[test]
    fn a_store_folder_that_is_a_link_refuses_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).expect("mkdir");
        std::fs::write(outside.join("victim"), "x").expect("write");
        let root = dir.path().join("store");
        std::fs::create_dir_all(root.join("blobs/sha256")).expect("mkdir");
        std::os::unix::fs::symlink(&outside, root.join("tmp")).expect("symlink");
        assert!(matches!(
            Store::open(&root),
            Err(CacheError::UnsafeStore { .. })
        ));
        // A link as the root itself is the user's choice: resolved once.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("real"), &link).expect("symlink");
        std::fs::create_dir(dir.path().join("real")).expect("mkdir");
        let store = Store::open(&link).expect("open");
        assert_eq!(
            store.root(),
            dir.path().join("real").canonicalize().expect("real")
        );
        assert!(outside.join("victim").exists());
    }
}
