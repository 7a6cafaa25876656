//! Cache archives between CI runs, with the daemon on either side: exporting saves the asked-for
//! images from the daemon into the store and writes the store as one archive (saved blobs are
//! compressed into it while other saves still run); importing restores an archive into the store
//! and streams its images into `docker load` as it is read (see [`DaemonTee`]).
//!
//! A missing or refused archive, a store that may not be used or a full disk is a cache miss
//! (the outcome says which), never an error. May import `engine` and `settings::cache`; never
//! `commands`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::archive::{self, ExportSummary};
use super::atomic::AtomicFile;
use super::daemon::{DaemonTee, cache_err, enforce_bounds, one_platform_notes, save_into_store};
use super::frames::FrameWorker;
use super::lock::StoreLock;
use super::prune::PruneSummary;
use super::unix_now;
use super::{CacheError, Limits, Store};
use crate::engine::{DockerEngine, EngineError};
use crate::settings::cache::CacheSettings;

/// What [`export_archive`] did.
#[derive(Debug)]
pub struct Exported {
    pub summary: ExportSummary,
    /// When images were asked for: (images saved, new blobs, `docker save` requests).
    pub saved: Option<(usize, usize, usize)>,
    /// What retention and the size limit removed before the archive was written.
    pub pruned: PruneSummary,
}

/// Saves `images` (none: only the store) from the daemon `connect` reaches into the locked
/// store, enforces the store's bounds, and writes the store to `path` atomically.
pub fn export_archive(
    (store, mut lock): (&Store, StoreLock),
    cache: &CacheSettings,
    path: &Path,
    images: &[String],
    connect: impl Future<Output = Result<DockerEngine, EngineError>>,
) -> Result<Exported, CacheError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let mut file = AtomicFile::create(path).map_err(|e| CacheError::io(path, e))?;
    let mut placed = None;
    let mut saved_counts = None;
    if !images.is_empty() {
        // Saved blobs go into the archive while the other saves still run (see cache::frames).
        let reserved = archive::manifest_reservation(&store.read_index()?, images.len());
        let handle = file.file().try_clone();
        let handle = handle.map_err(|e| CacheError::io(path, e))?;
        let worker = FrameWorker::start(handle, reserved, cache.compression, threads);
        let submitter = worker.submitter();
        let saved = runtime()?.block_on(async {
            let engine = connect.await.map_err(cache_err)?;
            let digests = BTreeMap::new();
            save_into_store(&engine, store, lock, images, &digests, Some(submitter)).await
        });
        placed = worker.finish();
        let saved = saved?;
        lock = saved.lock;
        saved_counts = Some((saved.images.len(), saved.new_blobs, saved.requests));
    }
    let pruned = enforce_bounds(store, &lock, cache, &store.read_index()?, unix_now())?;
    let (compression, placed) = (cache.compression, placed.as_ref());
    let summary = archive::export_into(store, &lock, file, path, compression, threads, placed)?;
    Ok(Exported {
        summary,
        saved: saved_counts,
        pruned,
    })
}

/// What an import did, for `buildopt cache import`'s output.
#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    /// False when the archive was missing or refused (a cache miss).
    pub restored: bool,
    pub warning: Option<String>,
    pub images: Vec<String>,
    pub blobs_added: usize,
    pub blobs_present: usize,
    pub loaded: Vec<String>,
    pub already_in_daemon: Vec<String>,
    /// The `docker load` uploads the loaded images went through (see `cache::requests`).
    pub load_requests: usize,
    /// The archive's tags left where they were, naming another image in the daemon.
    pub tags_kept: Vec<String>,
    /// Images loaded otherwise than they were saved (an image index into the classic store).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// How an import ended.
#[derive(Debug)]
pub enum Imported {
    /// The archive is in the store (and its images in the daemon, when loading).
    Restored(ImportReport),
    /// A cache miss: no archive, a refused one, or a store that may not be used.
    Missed(ImportReport),
    /// The images reached the daemon but the store's disk is full: the store stays as it was.
    NotStored(ImportReport),
}

impl ImportReport {
    fn miss(warning: String) -> Self {
        Self {
            warning: Some(warning),
            ..Self::default()
        }
    }
}

/// Imports the archive at `path` into the store (opened by `open`, which may find it must be
/// skipped) and, with `load`, into the daemon it reaches; `force` lets the archive's tags move
/// tags the daemon has on other images.
pub fn import_archive(
    open: impl FnOnce() -> Result<(Store, StoreLock), CacheError>,
    cache: &CacheSettings,
    path: &Path,
    load: Option<impl Future<Output = Result<DockerEngine, EngineError>>>,
    force: bool,
) -> Result<Imported, CacheError> {
    let miss = |warning: String| Ok(Imported::Missed(ImportReport::miss(warning)));
    if !path.is_file() {
        return miss(format!("no cache archive at {}", path.display()));
    }
    let (store, lock) = match open() {
        Ok(opened) => opened,
        Err(error) if error.is_skip() => return miss(error.to_string()),
        Err(other) => return Err(other),
    };
    let runtime = runtime()?;
    // The images go to the daemon while the archive is read (see `DaemonTee`). A daemon that
    // cannot be reached does not stop the store from being restored; its error comes after.
    let mut tee = load.map(|connect| {
        let engine = runtime.block_on(connect).map_err(cache_err);
        DaemonTee::new(&runtime, engine, force)
    });
    let limits = Limits::for_store(&store, cache.size_limit_bytes);
    let imported = match &mut tee {
        Some(tee) => archive::import_teeing(&store, &lock, path, &limits, tee),
        None => archive::import(&store, &lock, path, &limits),
    };
    let outcome = match imported {
        Ok(outcome) => outcome,
        Err(CacheError::BadArchive { path, reason }) => {
            // The upload, if any, was failed when the tee saw no `all_verified`; its error is
            // the expected one.
            if let Some(tee) = tee {
                tee.abandon();
            }
            return miss(format!("refused cache archive {path}: {reason}"));
        }
        Err(full) if full.is_disk_full() => {
            // The archive checked out, so its images reached the daemon; only the store could
            // not keep them, and stays as it was.
            let warning = format!("the store's disk is full: {full}");
            let Some(tee) = tee else {
                return miss(warning);
            };
            let (loaded, present) = tee.finish()?;
            return Ok(Imported::NotStored(ImportReport {
                loaded,
                already_in_daemon: present,
                ..ImportReport::miss(warning)
            }));
        }
        Err(other) => return Err(other),
    };
    let mut report = ImportReport {
        restored: true,
        images: outcome.images.iter().map(|i| i.name.clone()).collect(),
        blobs_added: outcome.blobs_added,
        blobs_present: outcome.blobs_present,
        ..ImportReport::default()
    };
    if let Some(tee) = tee {
        report.load_requests = tee.load_requests();
        report.tags_kept = tee.kept_tags().to_vec();
        let image_store = tee.image_store();
        (report.loaded, report.already_in_daemon) = tee.finish()?;
        report.notes = one_platform_notes(&store, &outcome.images, &report.loaded, image_store);
    }
    drop(lock);
    Ok(Imported::Restored(report))
}

fn runtime() -> Result<tokio::runtime::Runtime, CacheError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| CacheError::Io {
            path: "tokio runtime".into(),
            source,
        })
}
