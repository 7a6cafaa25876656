//! `buildopt cache`: set up, inspect, prune, export and import the build cache, and print CI
//! cache keys. Every change to the store happens under its lock and ends by enforcing the
//! retention and the size limit, so the store never grows past them.
//!
//! Entry names, tags and paths come from the store and the checkout: the human forms show them
//! through [`console_name`]/[`console_line`], the JSON forms through [`escape::console_json`].

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::cache::archive::{BlobTee, Manifest};
use crate::cache::atomic::AtomicFile;
use crate::cache::digest::Digest;
use crate::cache::frames::{FrameSubmitter, FrameWorker};
use crate::cache::keys::{self, KeyInput};
use crate::cache::lock::StoreLock;
use crate::cache::prune::{self, PruneSummary};
use crate::cache::requests::{self, ImageLayers};
use crate::cache::store::StagedBlob;
use crate::cache::{CacheError, ImageEntry, Index, Limits, Store, archive, docker_tar};
use crate::ci;
use crate::cli::{CacheAction, CacheArgs, Format, PlanArgs};
use crate::context::{Context, write_stdout};
use crate::engine::LoadStream;
use crate::engine::{DockerEngine, Engine, EngineError};
use crate::error::Error;
use crate::exit;
use crate::git::Git;
use crate::image_archive::LoadTar;
use crate::notify;
use crate::report::escape::{self, console_line, console_name};
use crate::settings::cache::{CacheFlags, CacheSettings};
use crate::settings::{Flags, Settings};

/// Runs one `cache` action.
pub fn run(ctx: &Context, args: &CacheArgs) -> Result<u8, Error> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let settings = Settings::resolve(&Flags::default(), &ctx.env, &ctx.file, cpus)?;
    let compression = match &args.action {
        CacheAction::Export { compression, .. } => *compression,
        _ => None,
    };
    let flags = CacheFlags {
        dir: args.cache_dir.clone(),
        compression,
    };
    let cache = CacheSettings::resolve(&flags, &ctx.env, settings.level, &ctx.dir)?;
    match &args.action {
        CacheAction::Setup => setup(ctx, &cache),
        CacheAction::Stats => stats(ctx, &cache),
        CacheAction::Cleanup => cleanup(ctx, &cache),
        CacheAction::Optimize { buildkit_cache } => {
            optimize(ctx, &cache, buildkit_cache.as_deref())
        }
        CacheAction::Export { path, images, .. } => {
            export(ctx, &cache, &ctx.dir.join(path), images)
        }
        CacheAction::Import {
            path,
            no_load,
            force,
        } => import(ctx, &cache, &ctx.dir.join(path), !no_load, *force),
        CacheAction::Key => key(ctx, &settings),
    }
}

pub(super) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Opens the store and takes its lock, waiting at most the configured time. A store that may
/// not be used (see [`check_store_root`]) or a lock held too long is a [`CacheError`] for which
/// [`CacheError::is_skip`] holds: callers go on without the cache.
pub(super) fn open_locked(
    ctx: &Context,
    cache: &CacheSettings,
) -> Result<(Store, StoreLock), Error> {
    let store = open_store(ctx, cache)?;
    let lock = store.lock_within(cache.lock_timeout, |path| {
        ctx.info(&format!(
            "waiting for the cache lock {} (at most {} s)",
            path.display(),
            cache.lock_timeout.as_secs()
        ));
    })?;
    Ok((store, lock))
}

/// Opens the store after [`check_store_root`].
fn open_store(ctx: &Context, cache: &CacheSettings) -> Result<Store, Error> {
    check_store_root(&ctx.dir, &cache.dir)?;
    Ok(Store::open(&cache.dir)?)
}

/// Refuses a store root that the repository at `repo` tracks (a committed folder or link: a
/// pull request could plant links or entries in it) or that another user owns.
fn check_store_root(repo: &Path, root: &Path) -> Result<(), CacheError> {
    let refuse = |reason: String| CacheError::UnsafeStore {
        path: root.display().to_string(),
        reason,
    };
    let resolved = root.canonicalize().ok();
    for path in std::iter::once(root).chain(resolved.as_deref()) {
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

/// A command that changes the store, skipped: a warning, exit 0.
fn skip(ctx: &Context, error: &CacheError) -> Result<u8, Error> {
    let warning = error.to_string();
    ctx.info(&format!("warning: {warning}; continuing without the cache"));
    #[derive(Serialize)]
    struct Skipped<'a> {
        skipped: bool,
        warning: &'a str,
    }
    let report = Skipped {
        skipped: true,
        warning: &warning,
    };
    render(ctx, &report, format!("cache skipped: {warning}\n"))?;
    Ok(exit::SUCCESS)
}

/// [`open_locked`] for a command: `Err(code)` when the cache is skipped (see [`skip`]).
fn open_or_skip(
    ctx: &Context,
    cache: &CacheSettings,
) -> Result<(Store, StoreLock), Result<u8, Error>> {
    match open_locked(ctx, cache) {
        Ok(opened) => Ok(opened),
        Err(Error::Cache(error)) if error.is_skip() => Err(skip(ctx, &error)),
        Err(other) => Err(Err(other)),
    }
}

fn render<T: Serialize>(ctx: &Context, value: &T, human: String) -> Result<(), Error> {
    match ctx.format {
        Format::Json => {
            let json = serde_json::to_string_pretty(value).map_err(|e| Error::Io {
                path: "stdout".into(),
                source: std::io::Error::other(e),
            })?;
            write_stdout(&(escape::console_json(&json) + "\n"))
        }
        Format::Human => write_stdout(&human),
    }
}

/// Creates the store and `buildkitd.toml` next to it.
fn setup(ctx: &Context, cache: &CacheSettings) -> Result<u8, Error> {
    let store = open_store(ctx, cache)?;
    let config = store.root().join("buildkitd.toml");
    let text = buildkitd_toml(cache.size_limit_bytes, cache.retention_days);
    std::fs::write(&config, text).map_err(|source| Error::Io {
        path: config.display().to_string(),
        source,
    })?;
    let human = format!(
        "cache store: {}\nbuildkit config: {} (use with buildkitd --config)\n",
        console_name(&store.root().display().to_string()),
        console_name(&config.display().to_string())
    );
    #[derive(Serialize)]
    struct Setup<'a> {
        store: &'a Path,
        buildkit_config: &'a Path,
    }
    render(
        ctx,
        &Setup {
            store: store.root(),
            buildkit_config: &config,
        },
        human,
    )?;
    Ok(exit::SUCCESS)
}

/// A BuildKit daemon config whose garbage collection keeps the build cache within the limit:
/// context uploads and git checkouts go first after the retention period, then everything
/// beyond the limit.
pub fn buildkitd_toml(limit_bytes: u64, retention_days: u64) -> String {
    let keep_seconds = retention_days * 24 * 3600;
    let quarter = limit_bytes / 4;
    format!(
        "# Written by `buildopt cache setup`: BuildKit's cache kept within the buildopt limit.\n\
         [worker.oci]\n  gc = true\n  gckeepstorage = {limit_bytes}\n\n\
         [[worker.oci.gcpolicy]]\n  keepBytes = {quarter}\n  keepDuration = {keep_seconds}\n  \
         filters = [\"type==source.local\", \"type==exec.cachemount\", \"type==source.git.checkout\"]\n\n\
         [[worker.oci.gcpolicy]]\n  all = true\n  keepBytes = {limit_bytes}\n"
    )
}

#[derive(Debug, Serialize)]
struct Stats {
    store: String,
    entries: usize,
    blobs: usize,
    bytes: u64,
    /// Cached steps over all steps of the recorded builds; `None` when none was recorded.
    hit_ratio: Option<f64>,
    builds_recorded: usize,
    oldest_use: Option<u64>,
    newest_use: Option<u64>,
    size_limit_bytes: u64,
    retention_days: u64,
}

fn stats(ctx: &Context, cache: &CacheSettings) -> Result<u8, Error> {
    let store = open_store(ctx, cache)?;
    let index = store.read_index()?;
    let sizes = store.blob_sizes()?;
    let (cached, total) = index
        .builds
        .iter()
        .fold((0, 0), |(c, t), b| (c + b.cached_steps, t + b.total_steps));
    let stats = Stats {
        store: store.root().display().to_string(),
        entries: index.images.len(),
        blobs: sizes.len(),
        bytes: sizes.values().sum(),
        hit_ratio: (total > 0).then(|| cached as f64 / total as f64),
        builds_recorded: index.builds.len(),
        oldest_use: index.images.iter().map(|i| i.last_used).min(),
        newest_use: index.images.iter().map(|i| i.last_used).max(),
        size_limit_bytes: cache.size_limit_bytes,
        retention_days: cache.retention_days,
    };
    let human = format!(
        "store: {}\nentries: {}\nblobs: {} ({} bytes)\nhit ratio: {}\noldest use: {}\nnewest use: {}\nlimit: {} bytes, retention {} days\n",
        console_name(&stats.store),
        stats.entries,
        stats.blobs,
        stats.bytes,
        stats
            .hit_ratio
            .map_or("no builds recorded".into(), |r| format!(
                "{:.0}% of steps over {} builds",
                r * 100.0,
                stats.builds_recorded
            )),
        age(stats.oldest_use),
        age(stats.newest_use),
        stats.size_limit_bytes,
        stats.retention_days,
    );
    render(ctx, &stats, human)?;
    Ok(exit::SUCCESS)
}

fn age(at: Option<u64>) -> String {
    match at {
        Some(at) => format!("{} hours ago", now().saturating_sub(at) / 3600),
        None => "-".into(),
    }
}

/// Drops expired entries and the blobs only they used.
pub(super) fn enforce_retention(
    store: &Store,
    lock: &StoreLock,
    cache: &CacheSettings,
) -> Result<PruneSummary, Error> {
    let index = store.read_index()?;
    let expired = prune::expired(&index, now(), cache.retention_days);
    Ok(prune::remove_images(store, lock, &expired)?)
}

/// Drops the least recently used entries until the store fits the limit.
pub(super) fn enforce_limit(
    store: &Store,
    lock: &StoreLock,
    cache: &CacheSettings,
) -> Result<PruneSummary, Error> {
    let index = store.read_index()?;
    let over = prune::over_limit(&index, &store.blob_sizes()?, cache.size_limit_bytes);
    Ok(prune::remove_images(store, lock, &over)?)
}

/// Retention, then the size limit; each rewrites the index and collects garbage only when it
/// has something to drop (a collection reads every blob's size). `index` is the store's current
/// index.
pub(super) fn enforce_bounds(
    store: &Store,
    lock: &StoreLock,
    cache: &CacheSettings,
    index: &Index,
    now: u64,
) -> Result<PruneSummary, Error> {
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

pub(super) fn merge(mut a: PruneSummary, b: PruneSummary) -> PruneSummary {
    a.images_removed.extend(b.images_removed);
    a.blobs_removed += b.blobs_removed;
    a.bytes_freed += b.bytes_freed;
    a
}

fn describe(summary: &PruneSummary) -> String {
    format!(
        "removed {} entries ({}), {} blobs, {} bytes\n",
        summary.images_removed.len(),
        summary
            .images_removed
            .iter()
            .map(|name| console_name(name))
            .collect::<Vec<_>>()
            .join(", "),
        summary.blobs_removed,
        summary.bytes_freed
    )
}

fn cleanup(ctx: &Context, cache: &CacheSettings) -> Result<u8, Error> {
    let (store, lock) = match open_or_skip(ctx, cache) {
        Ok(opened) => opened,
        Err(done) => return done,
    };
    let summary = enforce_retention(&store, &lock, cache)?;
    render(ctx, &summary, describe(&summary))?;
    Ok(exit::SUCCESS)
}

fn optimize(ctx: &Context, cache: &CacheSettings, buildkit: Option<&Path>) -> Result<u8, Error> {
    let (store, lock) = match open_or_skip(ctx, cache) {
        Ok(opened) => opened,
        Err(done) => return done,
    };
    let mut summary = enforce_limit(&store, &lock, cache)?;
    if let Some(dir) = buildkit {
        let buildkit = prune::collect_buildkit_local(&ctx.dir.join(dir))?;
        summary = merge(summary, buildkit);
    }
    render(ctx, &summary, describe(&summary))?;
    Ok(exit::SUCCESS)
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            path: "tokio runtime".into(),
            source,
        })
}

async fn connect(ctx: &Context) -> Result<DockerEngine, Error> {
    ctx.connect_daemon().await.map_err(cache_err)
}

fn export(
    ctx: &Context,
    cache: &CacheSettings,
    path: &Path,
    images: &[String],
) -> Result<u8, Error> {
    let (store, mut lock) = match open_or_skip(ctx, cache) {
        Ok(opened) => opened,
        Err(done) => return done,
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let mut file = AtomicFile::create(path).map_err(|e| CacheError::io(path, e))?;
    let mut placed = None;
    if !images.is_empty() {
        // Saved blobs go into the archive while the other saves still run (see cache::frames).
        let reserved = archive::manifest_reservation(&store.read_index()?, images.len());
        let handle = file.file().try_clone();
        let handle = handle.map_err(|e| CacheError::io(path, e))?;
        let worker = FrameWorker::start(handle, reserved, cache.compression, threads);
        let submitter = worker.submitter();
        let saved = runtime()?.block_on(async {
            let engine = connect(ctx).await?;
            let digests = BTreeMap::new();
            save_into_store(&engine, &store, lock, images, &digests, Some(submitter)).await
        });
        placed = worker.finish();
        let saved = saved?;
        lock = saved.lock;
        ctx.info(&format!(
            "saved {} images into the store ({} new blobs) through {} docker save requests",
            saved.images.len(),
            saved.new_blobs,
            saved.requests
        ));
    }
    let pruned = enforce_bounds(&store, &lock, cache, &store.read_index()?, now())?;
    if !pruned.images_removed.is_empty() {
        ctx.info(&format!("pruned: {}", describe(&pruned).trim_end()));
    }
    let (compression, placed) = (cache.compression, placed.as_ref());
    let summary = archive::export_into(&store, &lock, file, path, compression, threads, placed)?;
    let human = format!(
        "exported {} images, {} blobs ({} bytes) to {} ({} bytes, {:?})\n",
        summary.images,
        summary.blobs,
        summary.blob_bytes,
        console_name(&path.display().to_string()),
        summary.archive_bytes,
        summary.compression
    );
    render(ctx, &summary, human)?;
    Ok(exit::SUCCESS)
}

/// The save requests for `images`: several when their layers say it pays (see
/// `cache::requests`), else one.
async fn save_groups(engine: &DockerEngine, images: &[String]) -> Result<Vec<Vec<String>>, Error> {
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
pub(super) struct Saved {
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
pub(super) async fn save_into_store(
    engine: &DockerEngine,
    store: &Store,
    lock: StoreLock,
    images: &[String],
    digests: &BTreeMap<String, String>,
    frames: Option<FrameSubmitter>,
) -> Result<Saved, Error> {
    let before = store.blob_sizes()?;
    let at = now();
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

#[derive(Debug, Serialize)]
struct ImportReport {
    /// False when the archive was missing or refused (a cache miss).
    restored: bool,
    warning: Option<String>,
    images: Vec<String>,
    blobs_added: usize,
    blobs_present: usize,
    loaded: Vec<String>,
    already_in_daemon: Vec<String>,
    /// The `docker load` uploads the loaded images went through (see `cache::requests`).
    load_requests: usize,
    /// The archive's tags left where they were, naming another image in the daemon.
    tags_kept: Vec<String>,
}

fn import(
    ctx: &Context,
    cache: &CacheSettings,
    path: &Path,
    load: bool,
    force: bool,
) -> Result<u8, Error> {
    let miss = |warning: String| {
        ctx.info(&format!("warning: {warning}; continuing without the cache"));
        let report = ImportReport {
            restored: false,
            warning: Some(warning.clone()),
            images: Vec::new(),
            blobs_added: 0,
            blobs_present: 0,
            loaded: Vec::new(),
            already_in_daemon: Vec::new(),
            load_requests: 0,
            tags_kept: Vec::new(),
        };
        let human = format!("cache miss: {}\n", console_line(&warning));
        render(ctx, &report, human).map(|()| exit::SUCCESS)
    };
    if !path.is_file() {
        return miss(format!("no cache archive at {}", path.display()));
    }
    let (store, lock) = match open_locked(ctx, cache) {
        Ok(opened) => opened,
        Err(Error::Cache(error)) if error.is_skip() => return miss(error.to_string()),
        Err(other) => return Err(other),
    };
    let runtime = runtime()?;
    // The images go to the daemon while the archive is read (see `DaemonTee`). A daemon that
    // cannot be reached does not stop the store from being restored; its error comes after.
    let mut tee = if load {
        Some(DaemonTee::new(
            &runtime,
            runtime.block_on(connect(ctx)),
            force,
        ))
    } else {
        None
    };
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
            ctx.info(&format!("warning: {warning}; the store stays as it was"));
            let (loaded, present) = tee.finish()?;
            let report = ImportReport {
                restored: false,
                warning: Some(warning.clone()),
                images: Vec::new(),
                blobs_added: 0,
                blobs_present: 0,
                loaded,
                already_in_daemon: present,
                load_requests: 0,
                tags_kept: Vec::new(),
            };
            let human = format!("cache not stored: {}\n", console_line(&warning));
            return render(ctx, &report, human).map(|()| exit::SUCCESS);
        }
        Err(other) => return Err(other.into()),
    };
    let mut report = ImportReport {
        restored: true,
        warning: None,
        images: outcome.images.iter().map(|i| i.name.clone()).collect(),
        blobs_added: outcome.blobs_added,
        blobs_present: outcome.blobs_present,
        loaded: Vec::new(),
        already_in_daemon: Vec::new(),
        load_requests: 0,
        tags_kept: Vec::new(),
    };
    if let Some(tee) = tee {
        report.load_requests = tee.done.len();
        report.tags_kept = tee.kept_tags.clone();
        for tag in &tee.kept_tags {
            ctx.info(&format!(
                "warning: kept {tag}: the daemon has it on another image (--force moves it)"
            ));
        }
        let (loaded, present) = tee.finish()?;
        report.loaded = loaded;
        report.already_in_daemon = present;
    }
    drop(lock);
    let human = format!(
        "restored {} images ({} new blobs, {} already stored); loaded {}, already in the daemon {}\n",
        report.images.len(),
        report.blobs_added,
        report.blobs_present,
        report.loaded.len(),
        report.already_in_daemon.len()
    );
    render(ctx, &report, human)?;
    Ok(exit::SUCCESS)
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
struct DaemonTee<'a> {
    runtime: &'a tokio::runtime::Runtime,
    engine: Option<DockerEngine>,
    /// The first error talking to the daemon: [`DaemonTee::finish`] returns it.
    error: Option<Error>,
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
    fn new(
        runtime: &'a tokio::runtime::Runtime,
        engine: Result<DockerEngine, Error>,
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

    /// Sorts the manifest's images into present and missing, asking the daemon.
    fn sort_images(&mut self, engine: &DockerEngine, manifest: &Manifest) -> Result<(), Error> {
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
    ) -> Result<(), Error> {
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
    fn wait_for_load(&mut self) -> Result<(), Error> {
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

    /// After a refused archive: the upload is failed and its expected error ignored.
    fn abandon(mut self) {
        let _ = self.wait_for_load();
    }

    /// After a successful import: waits for the load and tags the present images. Returns
    /// (loaded, already present) image names, or the first error from the daemon.
    fn finish(mut self) -> Result<(Vec<String>, Vec<String>), Error> {
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

fn cache_err(error: EngineError) -> Error {
    Error::Cache(error.into())
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

/// Loads the images the daemon lacks; images it has (same id) only get their tags back.
/// Returns (loaded, already present) image names.
pub(super) async fn load_into_daemon(
    engine: &DockerEngine,
    store: &Store,
    images: Vec<ImageEntry>,
) -> Result<(Vec<String>, Vec<String>), Error> {
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
    let names = missing.iter().map(|i| i.name.clone()).collect();
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
    Ok((names, present))
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
async fn retag(engine: &DockerEngine, image: &ImageEntry, has: &[String]) -> Result<(), Error> {
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

fn key(ctx: &Context, settings: &Settings) -> Result<u8, Error> {
    let git = Git::open(&ctx.dir)?;
    let plan_args = PlanArgs {
        base: None,
        head: None,
        force: true,
        output: None,
    };
    let plan = super::plan::make_plan(ctx, settings, &git, &plan_args)?;
    let ci = ci::detect(&ctx.env)?;
    let platform = format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH);
    let keys = keys::cache_keys(&KeyInput {
        ci: &ci,
        images: plan
            .images
            .iter()
            .map(|i| (i.name.as_str(), i.inputs_digest.as_str()))
            .collect(),
        platform: &platform,
        default_branch: settings.default_branch.as_deref(),
    });
    let human = format!(
        "key: {}\nrestore-keys:\n{}trust: {:?}\nsave: {}\n",
        console_name(&keys.key),
        keys.restore_keys
            .iter()
            .map(|k| format!("  {}\n", console_name(k)))
            .collect::<String>(),
        keys.trust,
        keys.save
    );
    render(ctx, &keys, human)?;
    if let Some(path) = ctx
        .env
        .get("GITHUB_OUTPUT")
        .filter(|_| ctx.env.is_true("GITHUB_ACTIONS"))
    {
        let outputs = [
            ("cache-key", keys.key.clone()),
            ("cache-restore-keys", keys.restore_keys.join("\n")),
            ("cache-save", keys.save.to_string()),
        ];
        notify::github::write_step_outputs(Path::new(path), &outputs).map_err(|source| {
            Error::Io {
                path: path.to_string(),
                source,
            }
        })?;
    }
    Ok(exit::SUCCESS)
}

#[cfg(test)]
mod tests {
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

    use super::*;

    #[test]
    fn buildkitd_config_is_valid_toml_sized_from_the_limit() {
        let text = buildkitd_toml(10 << 30, 7);
        let value: toml::Value = toml::from_str(&text).expect("toml");
        let worker = &value["worker"]["oci"];
        assert_eq!(worker["gckeepstorage"].as_integer(), Some(10 << 30));
        let policies = worker["gcpolicy"].as_array().expect("policies");
        assert_eq!(policies.len(), 2);
        assert_eq!(
            policies[0]["keepDuration"].as_integer(),
            Some(7 * 24 * 3600)
        );
        assert_eq!(policies[1]["keepBytes"].as_integer(), Some(10 << 30));
    }
}
