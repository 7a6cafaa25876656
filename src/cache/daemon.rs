//! Moving images between the build cache store and the Docker daemon: opening the store under
//! its lock (refusing one a checkout could plant), `docker save` into the store, `docker load`
//! out of it (in several uploads when the layers say it pays, see [`requests`]), streaming an
//! archive import into `docker load` ([`DaemonTee`]), and enforcing retention and the size limit.
//!
//! The store itself (layout, index, staging) is `store`; what a build run restores and saves is
//! `run::cache`. May import `engine`, `image_archive` and `settings::cache`; never `commands`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cache::archive::{BlobTee, Manifest};
use crate::cache::digest::Digest;
use crate::cache::frames::FrameSubmitter;
use crate::cache::lock::StoreLock;
use crate::cache::prune::{self, PruneSummary};
use crate::cache::requests::{self, ImageLayers};
use crate::cache::store::StagedBlob;
use crate::cache::{CacheError, ImageEntry, Index, Store, docker_tar, unix_now};
use crate::engine::{DockerEngine, Engine, EngineError, ImageStore, LoadStream};
use crate::image_archive::LoadTar;
use crate::image_archive::layout::Index as ImageIndex;
use crate::settings::cache::CacheSettings;

/// Opens the store and takes its lock, waiting at most the configured time (`say` tells why it
/// waits). A store that may not be used (see `check_store_root`) or a lock held too long is a
/// [`CacheError`] for which [`CacheError::is_skip`] holds: callers go on without the cache.
pub fn open_locked(
    repo: &Path,
    cache: &CacheSettings,
    say: &dyn Fn(&str),
) -> Result<(Store, StoreLock), CacheError> {
    lock(open_store(repo, cache)?, cache, say)
}

/// Takes the lock of `store`, waiting at most the settings' lock timeout and saying so.
pub fn lock(
    store: Store,
    cache: &CacheSettings,
    say: &dyn Fn(&str),
) -> Result<(Store, StoreLock), CacheError> {
    let lock = store.lock_within(cache.lock_timeout, |path| {
        say(&format!(
            "waiting for the cache lock {} (at most {} s)",
            path.display(),
            cache.lock_timeout.as_secs()
        ));
    })?;
    Ok((store, lock))
}

/// Opens the store after `check_store_root`; `repo` is the checkout buildopt runs in.
pub fn open_store(repo: &Path, cache: &CacheSettings) -> Result<Store, CacheError> {
    check_store_root(repo, &cache.dir)?;
    Store::open(&cache.dir)
}

/// Refuses a store root that the repository at `repo` tracks (a committed folder or link: a
/// pull request could plant links or entries in it) or that another user owns.
fn check_store_root(repo: &Path, root: &Path) -> Result<(), CacheError> {
    let refuse = |reason: String| CacheError::UnsafeStore {
        path: root.display().to_string(),
        reason,
    };
    let resolved = root.canonicalize().ok();
    // One git call per path: git refuses a whole list when one path lies outside the
    // repository, as a link's target may.
    let distinct_target = resolved.as_deref().filter(|resolved| *resolved != root);
    for path in std::iter::once(root).chain(distinct_target) {
        if tracked_by_git(repo, path) {
            return Err(refuse(
                "git tracks it (committed to the repository); the cache store must not come \
                 from a checkout"
                    .into(),
            ));
        }
    }
    if let Ok(meta) = std::fs::metadata(root) {
        let me = nix::unistd::geteuid().as_raw();
        let owner = std::os::unix::fs::MetadataExt::uid(&meta);
        if owner != me {
            return Err(refuse(format!(
                "owned by user {owner}, not by this user ({me})"
            )));
        }
    }
    Ok(())
}

/// Whether `git ls-files` in `repo` lists `path` or anything under it (the path taken
/// literally, not as a pattern); false where git cannot say (no repository, `path` outside it,
/// no git).
fn tracked_by_git(repo: &Path, path: &Path) -> bool {
    std::process::Command::new("git")
        .args(["--literal-pathspecs", "-c", "core.fsmonitor=false"])
        .args(["ls-files", "-z", "--"])
        .arg(path)
        .current_dir(repo)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .is_ok_and(|out| out.status.success() && !out.stdout.is_empty())
}

/// Drops expired entries and the blobs only they used.
pub fn enforce_retention(
    store: &Store,
    lock: &StoreLock,
    cache: &CacheSettings,
) -> Result<PruneSummary, CacheError> {
    let index = store.read_index()?;
    let expired = prune::expired(&index, unix_now(), cache.retention_days);
    prune::remove_images(store, lock, &expired)
}

/// Drops the least recently used entries until the store fits the limit.
pub fn enforce_limit(
    store: &Store,
    lock: &StoreLock,
    cache: &CacheSettings,
) -> Result<PruneSummary, CacheError> {
    let index = store.read_index()?;
    let over = prune::over_limit(&index, &store.blob_sizes()?, cache.size_limit_bytes);
    prune::remove_images(store, lock, &over)
}

/// Retention, then the size limit; each rewrites the index and collects garbage only when it
/// has something to drop (a collection reads every blob's size). `index` is the store's current
/// index.
pub fn enforce_bounds(
    store: &Store,
    lock: &StoreLock,
    cache: &CacheSettings,
    index: &Index,
    now: u64,
) -> Result<PruneSummary, CacheError> {
    let expired = prune::expired(index, now, cache.retention_days);
    let mut summary = PruneSummary::default();
    if !expired.is_empty() {
        summary = prune::remove_images(store, lock, &expired)?;
    }
    let index = store.read_index()?;
    let over = prune::over_limit(&index, &store.blob_sizes()?, cache.size_limit_bytes);
    if !over.is_empty() {
        summary = merge(summary, prune::remove_images(store, lock, &over)?);
    }
    Ok(summary)
}

pub fn merge(mut a: PruneSummary, b: PruneSummary) -> PruneSummary {
    a.images_removed.extend(b.images_removed);
    a.blobs_removed += b.blobs_removed;
    a.bytes_freed += b.bytes_freed;
    a
}

/// The save requests for `images`: several when their layers say it pays (see
/// `cache::requests`), else one.
async fn save_groups(
    engine: &DockerEngine,
    images: &[String],
) -> Result<Vec<Vec<String>>, CacheError> {
    if images.len() < 2 {
        return Ok(vec![images.to_vec()]);
    }
    let looks = images.iter().map(|image| engine.layers_and_history(image));
    let found = futures_util::future::try_join_all(looks)
        .await
        .map_err(cache_err)?;
    let candidates: Vec<ImageLayers> = images
        .iter()
        .zip(found)
        .map(|(reference, found)| ImageLayers {
            reference: reference.clone(),
            layers: found.and_then(|(ids, history)| requests::align_layer_sizes(&ids, &history)),
        })
        .collect();
    Ok(requests::group(&candidates, requests::MAX_REQUESTS))
}

/// What [`save_into_store`] did.
pub struct Saved {
    /// The repositories of the indexed entries.
    pub images: Vec<String>,
    /// Blobs the store did not have before, and their bytes.
    pub new_blobs: usize,
    pub new_bytes: u64,
    /// The `docker save` requests it took (see `cache::requests`).
    pub requests: usize,
    /// The store lock, back from the blocking thread that read the save stream.
    pub lock: StoreLock,
}

/// Saves `images` from the daemon into the store (only blobs it lacks are written) and indexes
/// them; `digests` gives the inputs digest to record per repository, when known. Each new blob
/// also goes to `frames` as soon as it is staged.
pub async fn save_into_store(
    engine: &DockerEngine,
    store: &Store,
    lock: StoreLock,
    images: &[String],
    digests: &BTreeMap<String, String>,
    frames: Option<FrameSubmitter>,
) -> Result<Saved, CacheError> {
    let before = store.blob_sizes()?;
    let at = unix_now();
    let groups = save_groups(engine, images).await?;
    // Every group's stream is read on its own blocking thread, all under the one store lock.
    let shared = Arc::new(lock);
    let saves = groups.iter().map(|group| {
        let (store, lock, frames) = (store.clone(), Arc::clone(&shared), frames.clone());
        engine.save_images(group, move |reader| {
            let mut hook = |blob: &StagedBlob| {
                if let (Some(frames), Some(Ok(file))) = (&frames, blob.open_staged()) {
                    frames.submit(blob.digest.clone(), blob.size, file);
                }
            };
            docker_tar::ingest_save(&store, &lock, reader, at, &mut hook)
        })
    });
    // All of them end before anything is returned: no thread keeps writing after an error.
    let mut entries = Vec::new();
    let mut staged = Vec::new();
    for saved in futures_util::future::join_all(saves).await {
        let ingested = saved.map_err(cache_err)??;
        entries.extend(ingested.images);
        staged.extend(ingested.staged);
    }
    let lock = Arc::into_inner(shared).expect("every save thread has ended");
    // Durable and in place before the index names them.
    store.adopt_staged(staged, &lock)?;
    let mut index = store.read_index()?;
    for entry in &entries {
        let mut entry = entry.clone();
        entry.inputs_digest = digests.get(&entry.name).cloned();
        index.upsert(entry);
    }
    store.write_index(&index, &lock)?;
    let after = store.blob_sizes()?;
    let new: Vec<u64> = after
        .iter()
        .filter(|(digest, _)| !before.contains_key(*digest))
        .map(|(_, size)| *size)
        .collect();
    Ok(Saved {
        images: entries.into_iter().map(|e| e.name).collect(),
        new_blobs: new.len(),
        new_bytes: new.iter().sum(),
        requests: groups.len(),
        lock,
    })
}

/// Loads an archive's images into the daemon while the archive is imported: once the manifest
/// checked out, the images the daemon lacks are found, and `docker load` uploads start (several
/// when the images' layers say it pays, see `cache::requests`) that receive their blobs as they
/// are read. A load tar's `manifest.json`, which alone makes the daemon load anything, is
/// written only after every blob of the archive matched its digest; a refused archive fails the
/// uploads instead, and the daemon discards what it received. Images the daemon already has get
/// their tags back only after the archive checked out.
///
/// A blob several uploads need goes in step to the first of them only; the others get it from
/// its staged file once the archive checked out, after every upload sent what it had. The
/// containerd image store locks a blob while one upload writes it, and a second upload of it
/// waits for that lock: fed the same bytes in step, both would wait forever (seen on Docker
/// 28.5).
pub struct DaemonTee<'a> {
    runtime: &'a tokio::runtime::Runtime,
    engine: Option<DockerEngine>,
    /// The first error talking to the daemon: [`DaemonTee::finish`] returns it.
    error: Option<CacheError>,
    /// The images the daemon has, and the ones being loaded.
    present: Vec<ImageEntry>,
    missing: Vec<ImageEntry>,
    /// One load tar per upload; `None` once finished or abandoned.
    tars: Vec<Option<LoadTar<LoadStream>>>,
    /// The daemon's answer to each upload.
    done: Vec<tokio::task::JoinHandle<Result<Vec<String>, EngineError>>>,
    /// The upload that takes the blob being read in step (see the type's doc).
    taking: Vec<usize>,
    /// The other uploads that need the blob being read, and its size.
    later: Vec<usize>,
    current_size: u64,
    /// Per upload, the blobs it gets from their staged files once the archive checked out.
    deferred: Vec<Vec<DeferredBlob>>,
    /// Whether the archive's tags may move tags the daemon has on other images.
    force: bool,
    /// Tags left where they were (they name another image; `--force` moves them).
    kept_tags: Vec<String>,
}

impl<'a> DaemonTee<'a> {
    /// A tee loading into `engine` (or, when it could not be reached, failing with why);
    /// `force` lets the archive's tags move tags the daemon has on other images.
    pub fn new(
        runtime: &'a tokio::runtime::Runtime,
        engine: Result<DockerEngine, CacheError>,
        force: bool,
    ) -> Self {
        let (engine, error) = match engine {
            Ok(engine) => (Some(engine), None),
            Err(error) => (None, Some(error)),
        };
        Self {
            runtime,
            engine,
            error,
            present: Vec::new(),
            missing: Vec::new(),
            tars: Vec::new(),
            done: Vec::new(),
            taking: Vec::new(),
            later: Vec::new(),
            current_size: 0,
            deferred: Vec::new(),
            force,
            kept_tags: Vec::new(),
        }
    }

    /// The image store of the daemon loaded into, once reached.
    pub fn image_store(&self) -> Option<ImageStore> {
        self.engine.as_ref().map(|engine| engine.info().image_store)
    }

    /// Sorts the manifest's images into present and missing, asking the daemon.
    fn sort_images(
        &mut self,
        engine: &DockerEngine,
        manifest: &Manifest,
    ) -> Result<(), CacheError> {
        let image_store = engine.info().image_store;
        for image in &manifest.images {
            let id = image.id_on(image_store).map(Digest::to_string);
            let found = match &id {
                Some(id) => self
                    .runtime
                    .block_on(engine.inspect(id))
                    .map_err(cache_err)?,
                None => None,
            };
            let mut image = image.clone();
            if !self.force {
                self.keep_other_images_tags(engine, &mut image, id.as_deref())?;
            }
            match found {
                Some(_) => self.present.push(image),
                // Every tag it had names another image: nothing would name it once loaded (and
                // the containerd store refuses a load that names no image).
                None if image.tags.is_empty() => {}
                None => self.missing.push(image),
            }
        }
        Ok(())
    }

    /// Drops from `image` the tags the daemon has on another image: an archive the user chose
    /// applies its tags, but never moves one that names something else (`--force` does).
    fn keep_other_images_tags(
        &mut self,
        engine: &DockerEngine,
        image: &mut ImageEntry,
        id: Option<&str>,
    ) -> Result<(), CacheError> {
        let mut kept = Vec::new();
        for tag in &image.tags {
            let current = self
                .runtime
                .block_on(engine.inspect(tag))
                .map_err(cache_err)?;
            if current.is_some_and(|info| Some(info.id.as_str()) != id) {
                kept.push(tag.clone());
            }
        }
        image.tags.retain(|tag| !kept.contains(tag));
        self.kept_tags.extend(kept);
        Ok(())
    }

    /// Starts one upload per group of the missing images.
    fn start_uploads(&mut self, engine: &DockerEngine, manifest: &Manifest) {
        let sizes: BTreeMap<&Digest, u64> =
            manifest.blobs.iter().map(|b| (&b.digest, b.size)).collect();
        let _context = self.runtime.enter();
        for images in load_groups(&self.missing, |d| sizes.get(d).copied()) {
            let upload = engine.start_load();
            self.tars
                .push(Some(docker_tar::load_tar(&images, upload.stream)));
            self.done.push(upload.done);
            self.deferred.push(Vec::new());
        }
    }

    /// An upload failed (the daemon stopped reading, say): it is abandoned, and the rest of the
    /// archive goes into the store and the other uploads. The daemon's answer says why.
    fn stop(&mut self, upload: usize, error: std::io::Error) {
        self.tars[upload] = None;
        self.error.get_or_insert(cache_err(EngineError::Io {
            path: "docker load stream".into(),
            source: error,
        }));
    }

    /// Applies `step` to every upload taking the current blob; a failing one is stopped.
    fn each_taking(
        &mut self,
        mut step: impl FnMut(&mut LoadTar<LoadStream>) -> std::io::Result<()>,
    ) {
        for upload in std::mem::take(&mut self.taking) {
            let Some(tar) = &mut self.tars[upload] else {
                continue;
            };
            match step(tar) {
                Ok(()) => self.taking.push(upload),
                Err(error) => self.stop(upload, error),
            }
        }
    }

    /// Waits for the daemon's answers to the uploads started; unfinished uploads are failed
    /// first (see `LoadStream`). The first error wins.
    fn wait_for_load(&mut self) -> Result<(), CacheError> {
        self.tars.clear();
        let mut first_error = None;
        for done in std::mem::take(&mut self.done) {
            let answer = self
                .runtime
                .block_on(done)
                .map_err(|e| EngineError::DaemonGone {
                    during: "docker load".into(),
                    reason: e.to_string(),
                })
                .and_then(|answer| answer);
            if let Err(error) = answer {
                first_error.get_or_insert(cache_err(error));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The `docker load` uploads started.
    pub fn load_requests(&self) -> usize {
        self.done.len()
    }

    /// The archive's tags left where they were (they name another image in the daemon).
    pub fn kept_tags(&self) -> &[String] {
        &self.kept_tags
    }

    /// After a refused archive: the upload is failed and its expected error ignored.
    pub fn abandon(mut self) {
        let _ = self.wait_for_load();
    }

    /// After a successful import: waits for the load and tags the present images. Returns
    /// (loaded, already present) image names, or the first error from the daemon.
    pub fn finish(mut self) -> Result<(Vec<String>, Vec<String>), CacheError> {
        // The daemon's answer first: when it stopped reading, it says why.
        self.wait_for_load()?;
        if let Some(error) = self.error {
            return Err(error);
        }
        let engine = self.engine.as_ref().expect("no error, so connected");
        for image in &self.present {
            self.runtime.block_on(retag(engine, image, &[]))?;
        }
        let names = |images: Vec<ImageEntry>| images.into_iter().map(|i| i.name).collect();
        Ok((names(self.missing), names(self.present)))
    }
}

/// A daemon error while moving images, as the cache's error.
pub fn cache_err(error: EngineError) -> CacheError {
    error.into()
}

impl BlobTee for DaemonTee<'_> {
    fn start(&mut self, manifest: &Manifest) {
        let Some(engine) = self.engine.take() else {
            return;
        };
        let sorted = self.sort_images(&engine, manifest);
        if let Err(error) = sorted {
            self.error = Some(error);
        } else if !self.missing.is_empty() {
            self.start_uploads(&engine, manifest);
        }
        self.engine = Some(engine);
    }

    fn wants(&mut self, digest: &Digest, size: u64) -> bool {
        let mut wanting = (0..self.tars.len())
            .filter(|&i| self.tars[i].as_ref().is_some_and(|tar| tar.wants(digest)));
        self.taking = wanting.next().into_iter().collect();
        self.later = wanting.collect();
        self.current_size = size;
        self.each_taking(|tar| tar.begin_blob(digest, size));
        !self.taking.is_empty()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.each_taking(|tar| tar.write_all(bytes));
    }

    fn verified(&mut self, digest: &Digest, staged: &Path) {
        self.each_taking(|tar| tar.end_blob(digest));
        self.taking.clear();
        for upload in std::mem::take(&mut self.later) {
            self.deferred[upload].push(DeferredBlob {
                digest: digest.clone(),
                size: self.current_size,
                staged: staged.to_path_buf(),
            });
        }
    }

    fn all_verified(&mut self) {
        // What each upload got in step reaches the daemon first: a deferred blob may wait for
        // the upload that had it to finish writing it.
        for upload in 0..self.tars.len() {
            if let Some(Err(error)) = self.tars[upload].as_mut().map(std::io::Write::flush) {
                self.stop(upload, error);
            }
        }
        for upload in 0..self.tars.len() {
            let Some(mut tar) = self.tars[upload].take() else {
                continue;
            };
            let deferred = std::mem::take(&mut self.deferred[upload]);
            let written = deferred
                .iter()
                .try_for_each(|blob| blob.write_to(&mut tar))
                .and_then(|()| tar.finish())
                .and_then(LoadStream::finish);
            if let Err(error) = written {
                self.stop(upload, error);
            }
        }
    }
}

/// A blob an upload gets from its staged file (see [`DaemonTee`]).
struct DeferredBlob {
    digest: Digest,
    size: u64,
    staged: PathBuf,
}

impl DeferredBlob {
    fn write_to(&self, tar: &mut LoadTar<LoadStream>) -> std::io::Result<()> {
        let mut file = std::io::Read::take(std::fs::File::open(&self.staged)?, self.size);
        tar.begin_blob(&self.digest, self.size)?;
        std::io::copy(&mut file, tar)?;
        tar.end_blob(&self.digest)
    }
}

/// What [`load_into_daemon`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DaemonLoad {
    /// Names of the images loaded.
    pub loaded: Vec<String>,
    /// Names of the images the daemon had (only re-tagged).
    pub present: Vec<String>,
    /// One line per image loaded otherwise than it was saved (see [`one_platform_note`]).
    pub notes: Vec<String>,
}

/// Loads the images the daemon lacks; images it has (same id) only get their tags back.
pub async fn load_into_daemon(
    engine: &DockerEngine,
    store: &Store,
    images: Vec<ImageEntry>,
) -> Result<DaemonLoad, CacheError> {
    let mut missing = Vec::new();
    let mut present = Vec::new();
    let image_store = engine.info().image_store;
    let infos = futures_util::future::try_join_all(images.iter().map(|image| async move {
        match image.id_on(image_store) {
            Some(id) => engine.inspect(&id.to_string()).await,
            None => Ok(None),
        }
    }))
    .await
    .map_err(cache_err)?;
    for (image, info) in images.into_iter().zip(infos) {
        match info {
            Some(info) => {
                retag(engine, &image, &info.repo_tags).await?;
                present.push(image.name);
            }
            None => missing.push(image),
        }
    }
    let names: Vec<String> = missing.iter().map(|i| i.name.clone()).collect();
    let notes = one_platform_notes(store, &missing, &names, Some(image_store));
    let sizes = if missing.is_empty() {
        BTreeMap::new()
    } else {
        store.blob_sizes()?
    };
    let groups = load_groups(&missing, |d| sizes.get(d).copied());
    let loads = groups.into_iter().map(|group| {
        let store = store.clone();
        engine.load_images(move |out| docker_tar::write_load(&store, &group, out))
    });
    // Every upload ends before an error is returned.
    for loaded in futures_util::future::join_all(loads).await {
        loaded.map_err(cache_err)?;
    }
    Ok(DaemonLoad {
        loaded: names,
        present,
        notes,
    })
}

/// The notes of [`one_platform_note`] for the `loaded` ones of `images`, loaded into a daemon
/// with `image_store`.
pub fn one_platform_notes(
    store: &Store,
    images: &[ImageEntry],
    loaded: &[String],
    image_store: Option<ImageStore>,
) -> Vec<String> {
    if image_store != Some(ImageStore::Classic) {
        return Vec::new();
    }
    images
        .iter()
        .filter(|image| loaded.contains(&image.name))
        .filter_map(|image| one_platform_note(store, image))
        .collect()
}

/// For an image saved as an index of several platforms, what the classic image store (one
/// platform per image) gets of it: the image its save's `manifest.json` named, which is the
/// platform of the daemon that saved it (and, as cache keys name the platform, of this one).
/// `None` for a single-platform image, or when the store cannot say.
fn one_platform_note(store: &Store, image: &ImageEntry) -> Option<String> {
    let target = image.target.as_ref().filter(|t| t.is_index())?;
    let index: ImageIndex = read_json(store, &target.digest)?;
    let platforms = index
        .manifests
        .iter()
        .filter(|m| m.is_manifest() && !m.is_attestation())
        .count();
    if platforms < 2 {
        return None;
    }
    let config: serde_json::Value = read_json(store, &image.config)?;
    let platform = ["os", "architecture", "variant"]
        .iter()
        .filter_map(|key| config[key].as_str().filter(|v| !v.is_empty()))
        .collect::<Vec<_>>()
        .join("/");
    Some(format!(
        "{}: an image of {platforms} platforms, and the classic image store holds one platform \
         per image: {platform} (the saving daemon's own) was loaded",
        image.name
    ))
}

fn read_json<T: serde::de::DeserializeOwned>(store: &Store, digest: &Digest) -> Option<T> {
    let file = store.open_blob(digest).ok()?;
    serde_json::from_reader(std::io::BufReader::new(file)).ok()
}

/// `images` split into the `docker load` uploads that move them fastest (see
/// `cache::requests`); `size_of` gives a blob's bytes. Images saved in the OCI layout never share
/// an upload with images saved in the legacy layout: a tar of both has no `index.json`, and the
/// containerd image store would give the OCI ones new ids.
fn load_groups(
    images: &[ImageEntry],
    size_of: impl Fn(&Digest) -> Option<u64>,
) -> Vec<Vec<ImageEntry>> {
    let (oci, legacy): (Vec<_>, Vec<_>) = images.iter().partition(|i| i.target.is_some());
    let oci_share = requests::MAX_REQUESTS.saturating_sub(usize::from(!legacy.is_empty()));
    let mut groups = upload_groups(&oci, oci_share.max(1), &size_of);
    let legacy_share = requests::MAX_REQUESTS.saturating_sub(groups.len()).max(1);
    groups.extend(upload_groups(&legacy, legacy_share, &size_of));
    groups
}

fn upload_groups(
    images: &[&ImageEntry],
    most: usize,
    size_of: &impl Fn(&Digest) -> Option<u64>,
) -> Vec<Vec<ImageEntry>> {
    if images.is_empty() {
        return Vec::new();
    }
    let candidates: Vec<ImageLayers> = images
        .iter()
        .map(|image| ImageLayers {
            reference: image.name.clone(),
            layers: image
                .blobs()
                .map(|d| size_of(d).map(|size| (d.to_string(), size)))
                .collect(),
        })
        .collect();
    requests::group(&candidates, most)
        .into_iter()
        .map(|names| {
            images
                .iter()
                .filter(|image| names.contains(&image.name))
                .map(|image| (*image).clone())
                .collect()
        })
        .collect()
}

/// Gives an image the daemon has (by id) every tag it was saved with that it lacks (`has`).
async fn retag(
    engine: &DockerEngine,
    image: &ImageEntry,
    has: &[String],
) -> Result<(), CacheError> {
    let Some(id) = image.id_on(engine.info().image_store) else {
        return Ok(());
    };
    for tag in image.tags.iter().filter(|tag| !has.contains(tag)) {
        let (repo, version) = (docker_tar::repository(tag), docker_tar::tag_of(tag));
        engine
            .tag(&id.to_string(), repo, version)
            .await
            .map_err(cache_err)?;
    }
    Ok(())
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Digest as BlobDigest;
    use crate::image_archive::Descriptor;

    fn entry(name: &str, blobs: &[&[u8]], oci: bool) -> ImageEntry {
        let digests: Vec<BlobDigest> = blobs.iter().map(|b| BlobDigest::of(b)).collect();
        ImageEntry {
            name: name.into(),
            tags: vec![format!("{name}:latest")],
            inputs_digest: None,
            config: digests[0].clone(),
            layers: digests[1..].to_vec(),
            diff_ids: digests[1..].to_vec(),
            target: oci.then(|| Descriptor {
                media_type: crate::image_archive::layout::OCI_MANIFEST.into(),
                digest: BlobDigest::of(name.as_bytes()),
                size: 1,
                platform: None,
                annotations: Default::default(),
            }),
            other_blobs: Vec::new(),
            last_used: 0,
            size: 0,
        }
    }

    #[test]
    fn large_images_split_over_uploads_but_never_mix_layouts() {
        let sizes = |_: &BlobDigest| Some(1u64 << 30);
        let images = [
            entry("a", &[b"ca", b"base", b"la"], true),
            entry("b", &[b"cb", b"base", b"lb"], true),
            entry("c", &[b"cc", b"base", b"lc"], true),
        ];
        // Large layers of their own: worth several uploads.
        assert!(load_groups(&images, sizes).len() > 1);
        let legacy = entry("d", &[b"cd", b"base"], false);
        let mixed = [images[0].clone(), legacy];
        let groups = load_groups(&mixed, sizes);
        assert_eq!(groups.len(), 2);
        for group in groups {
            assert!(
                group.iter().all(|i| i.target.is_some())
                    || group.iter().all(|i| i.target.is_none())
            );
        }
    }

    #[test]
    fn an_index_of_two_platforms_says_which_one_the_classic_store_gets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let lock = store.lock(|_| {}).expect("lock");
        // The containerd store's save of an index of linux/amd64 and linux/arm64/v8 (with an
        // attestation manifest, which is no platform).
        let tar = crate::image_archive::fixtures::containerd_save().tar;
        let ingested = docker_tar::ingest_save(&store, &lock, &mut tar.as_slice(), 9, &mut |_| {})
            .expect("ingest");
        store.adopt_staged(ingested.staged, &lock).expect("adopt");
        let image = &ingested.images[0];
        let note = one_platform_note(&store, image).expect("an index of two platforms");
        assert_eq!(
            note,
            format!(
                "{}: an image of 2 platforms, and the classic image store holds one platform \
                 per image: linux/amd64 (the saving daemon's own) was loaded",
                image.name
            )
        );
        let single = ImageEntry {
            target: None,
            ..image.clone()
        };
        assert_eq!(one_platform_note(&store, &single), None);
    }
}
