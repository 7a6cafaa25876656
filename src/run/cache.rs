//! The build cache around a run: which store images to load into the daemon before the build,
//! which images to save into the store after it, and the RunReport's cache section.
//!
//! Moving images between the store and the daemon is `cache::daemon`'s; this file only decides
//! what goes in and out. A cache that fails (no store, a corrupt blob, a daemon error while
//! loading or saving) is a warning and a cache miss, never a failed build.
//!
//! May import `cache`, `engine`, `settings::cache` and `report::model`; never `commands`.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use tokio::runtime::Runtime;

use crate::cache::daemon::{self, Saved};
use crate::cache::docker_tar;
use crate::cache::lock::StoreLock;
use crate::cache::store::{BuildRecord, Store, is_stage_reference};
use crate::cache::{CacheError, ImageEntry, Index};
use crate::engine::{DockerEngine, ImageStore};
use crate::report::model::{CacheExport, CacheRestore, ImageReport, ImageResult, RunReport};
use crate::scheduler::remote::digest_tag;
use crate::settings::cache::CacheSettings;

/// The cache steps of a run: restore before the build, export after it. Both end in the
/// report's section, never in an error (a failing cache is a warning and a miss).
pub trait RunCache {
    /// Where the store is (never sent in a build context).
    fn store_dir(&self) -> &Path;
    /// Loads the store's images of `repositories` into the engine.
    fn restore(&self, repositories: &BTreeSet<String>) -> CacheRestore;
    /// Saves what the run made that the store lacks, then enforces the store's bounds.
    fn export(&self, report: &RunReport) -> CacheExport;
}

/// The store on this machine and the Docker daemon the run builds on.
pub struct DaemonCache<'a> {
    /// The checkout buildopt runs in (the store must not be tracked by it).
    pub repo: &'a Path,
    pub settings: &'a CacheSettings,
    pub runtime: &'a Runtime,
    pub engine: &'a DockerEngine,
    /// Warnings and waits, for stderr.
    pub say: &'a dyn Fn(&str),
    /// Whether the store's root passed `cache::daemon`'s checks in this run.
    pub root_checked: Cell<bool>,
}

impl RunCache for DaemonCache<'_> {
    fn store_dir(&self) -> &Path {
        &self.settings.dir
    }

    /// Loads the store's image of each of `repositories` into the daemon (one entry per
    /// repository, so this is bounded by the plan), and with `stages` their intermediate stages'
    /// images: an entry whose inputs digest matches is reused by the scheduler through its
    /// `inputs-…` tag, any other serves as a cache source.
    fn restore(&self, repositories: &BTreeSet<String>) -> CacheRestore {
        let clock = Instant::now();
        let mut restore = self.try_restore(repositories).unwrap_or_else(|error| {
            let warning = format!("cache restore failed: {error}");
            (self.say)(&format!("warning: {warning}; building without the cache"));
            CacheRestore {
                warning: Some(warning),
                ..CacheRestore::default()
            }
        });
        restore.duration_ms = clock.elapsed().as_millis() as u64;
        restore
    }

    /// Saves the images of this run that the store lacks (built, or reused but not stored under
    /// their inputs digest), records the run's cached steps, then enforces retention and the
    /// size limit.
    fn export(&self, report: &RunReport) -> CacheExport {
        let clock = Instant::now();
        let mut export = self.try_export(report).unwrap_or_else(|error| {
            let warning = format!("cache export failed: {error}");
            (self.say)(&format!("warning: {warning}"));
            CacheExport {
                warning: Some(warning),
                ..CacheExport::default()
            }
        });
        export.duration_ms = clock.elapsed().as_millis() as u64;
        export
    }
}

impl DaemonCache<'_> {
    /// The store under its lock. Its root is checked once a run (a git call or two): the
    /// builds in between change neither what git tracks nor who owns the folder.
    fn open_locked(&self) -> Result<(Store, StoreLock), CacheError> {
        if self.root_checked.get() {
            return daemon::lock(Store::open(&self.settings.dir)?, self.settings, self.say);
        }
        let opened = daemon::open_locked(self.repo, self.settings, self.say)?;
        self.root_checked.set(true);
        Ok(opened)
    }

    fn try_restore(&self, repositories: &BTreeSet<String>) -> Result<CacheRestore, CacheError> {
        let (runtime, engine) = (self.runtime, self.engine);
        let (store, lock) = self.open_locked()?;
        let mut index = store.read_index()?;
        if let Some(version) = index.replaced_version {
            let warning = format!(
                "the cache store {} is in format {version} of an older buildopt (this one uses \
                 {}); it starts afresh",
                store.root().display(),
                crate::cache::store::INDEX_VERSION
            );
            (self.say)(&format!("warning: {warning}"));
            // The old entries are gone: their blobs would only count against the size limit.
            store.write_index(&index, &lock)?;
            crate::cache::prune::collect_garbage(&store, &lock, &index)?;
            return Ok(CacheRestore {
                warning: Some(warning),
                ..CacheRestore::default()
            });
        }
        let mut wanted: Vec<ImageEntry> = index
            .images
            .iter()
            .filter(|entry| wanted(&entry.name, repositories, self.settings.stages))
            .cloned()
            .collect();
        if wanted.is_empty() {
            return Ok(CacheRestore::default());
        }
        for tag in wanted.iter_mut().flat_map(own_tags_only) {
            (self.say)(&format!(
                "warning: the store's entry tags {tag}, a repository this workspace does not \
                 build: not applied"
            ));
        }
        let sizes: BTreeMap<String, u64> =
            wanted.iter().map(|e| (e.name.clone(), e.size)).collect();
        let daemon::DaemonLoad {
            loaded,
            present,
            notes,
        } = runtime.block_on(daemon::load_into_daemon(engine, &store, wanted))?;
        for note in &notes {
            (self.say)(&format!("note: {note}"));
        }
        // Entries already in the daemon are marked used by the export's one index write; a
        // write here (fsync and all) is only worth it for what was loaded.
        if !loaded.is_empty() {
            touch(&mut index, loaded.iter(), crate::cache::unix_now());
            store.write_index(&index, &lock)?;
        }
        Ok(CacheRestore {
            bytes: loaded.iter().filter_map(|name| sizes.get(name)).sum(),
            loaded,
            already_in_daemon: present,
            duration_ms: 0,
            warning: None,
            notes,
        })
    }

    fn try_export(&self, report: &RunReport) -> Result<CacheExport, CacheError> {
        let (runtime, engine, cache) = (self.runtime, self.engine, self.settings);
        let (store, mut lock) = self.open_locked()?;
        let to_save = unsaved(&store.read_index()?, report, engine.info().image_store);
        let mut export = CacheExport::default();
        if !to_save.is_empty() {
            let references: Vec<String> = to_save.iter().flat_map(|i| references(i)).collect();
            let digests = to_save
                .iter()
                .flat_map(|i| entry_names(i).map(|name| (name, i.inputs_digest.clone())))
                .collect();
            let saved: Saved = runtime.block_on(daemon::save_into_store(
                engine,
                &store,
                lock,
                &references,
                &digests,
                None,
            ))?;
            lock = saved.lock;
            (export.saved, export.new_blobs, export.new_bytes) =
                (saved.images, saved.new_blobs, saved.new_bytes);
        }
        let mut index = store.read_index()?;
        let now = crate::cache::unix_now();
        touch(&mut index, used_entries(report).iter(), now);
        index.record_build(build_record(report, now));
        index.history.record_run(report, now);
        store.write_index(&index, &lock)?;
        export.pruned = daemon::enforce_bounds(&store, &lock, cache, &index, now)?.images_removed;
        Ok(export)
    }
}

/// Whether the store entry `name` is restored for `repositories`: an image's entry, and with
/// `stages` the entries of its intermediate stages.
fn wanted(name: &str, repositories: &BTreeSet<String>, stages: bool) -> bool {
    if is_stage_reference(name) {
        stages && repositories.contains(docker_tar::repository(name))
    } else {
        repositories.contains(name)
    }
}

/// Keeps only the tags of `entry` in its own repository (a store restored from a CI cache is
/// not trusted to tag anything else on the daemon); returns the tags dropped.
fn own_tags_only(entry: &mut ImageEntry) -> Vec<String> {
    let own = docker_tar::repository(&entry.name).to_owned();
    let (kept, dropped) = entry
        .tags
        .drain(..)
        .partition(|tag| docker_tar::repository(tag) == own);
    entry.tags = kept;
    dropped
}

/// Marks the restored entries as used now, so retention keeps images that builds still use.
fn touch<'a>(index: &mut Index, names: impl Iterator<Item = &'a String>, now: u64) {
    let names: BTreeSet<&String> = names.collect();
    for entry in index.images.iter_mut().filter(|e| names.contains(&e.name)) {
        entry.last_used = entry.last_used.max(now);
    }
}

/// The store entries this run used: the repository of every built or reused image and the
/// stages it built.
fn used_entries(report: &RunReport) -> Vec<String> {
    report
        .images
        .iter()
        .filter(|i| matches!(i.result, ImageResult::Built | ImageResult::Reused))
        .flat_map(entry_names)
        .collect()
}

/// Built or reused images whose repository, or one of whose stages built in this run, has no
/// store entry with their inputs digest, or whose repository's entry holds another image (a
/// `--force` rebuild makes a new image from the same inputs: the store must follow, or the next
/// restore would put the old image back under the tags).
fn unsaved<'a>(
    index: &Index,
    report: &'a RunReport,
    image_store: ImageStore,
) -> Vec<&'a ImageReport> {
    let stored_ids: BTreeMap<&str, String> = index
        .images
        .iter()
        .filter_map(|e| Some((e.name.as_str(), e.id_on(image_store)?.to_string())))
        .collect();
    let other_image = |image: &ImageReport| {
        image.image_id.as_ref().is_some_and(|id| {
            stored_ids
                .get(image.repository.as_str())
                .is_some_and(|stored| stored != id)
        })
    };
    // A stage whose image is also the final image is kept in the image's entry, under its tag.
    let stored: BTreeSet<(&str, &str)> = index
        .images
        .iter()
        .filter_map(|e| Some((e, e.inputs_digest.as_deref()?)))
        .flat_map(|(e, digest)| {
            let stage_tags = e.tags.iter().filter(|t| is_stage_reference(t));
            std::iter::once(e.name.as_str())
                .chain(stage_tags.map(String::as_str))
                .map(move |name| (name, digest))
        })
        .collect();
    report
        .images
        .iter()
        .filter(|i| matches!(i.result, ImageResult::Built | ImageResult::Reused))
        .filter(|i| {
            other_image(i)
                || entry_names(i)
                    .any(|name| !stored.contains(&(name.as_str(), i.inputs_digest.as_str())))
        })
        .collect()
}

/// The store entries one image of the run makes: its repository's, and one per stage built.
fn entry_names(image: &ImageReport) -> impl Iterator<Item = String> + '_ {
    std::iter::once(image.repository.clone())
        .chain(image.stages.iter().map(|s| s.reference.clone()))
}

/// What to save of one image: its `inputs-…` tag (so a later run reuses it), its tags in its
/// own repository (tags elsewhere would name the store entry after another repository) and the
/// images of the stages it built (each its own entry).
fn references(image: &ImageReport) -> Vec<String> {
    let own = format!("{}:", image.repository);
    std::iter::once(format!(
        "{}:{}",
        image.repository,
        digest_tag(&image.inputs_digest)
    ))
    .chain(image.tags.iter().filter(|t| t.starts_with(&own)).cloned())
    .chain(image.stages.iter().map(|s| s.reference.clone()))
    .collect()
}

fn build_record(report: &RunReport, at: u64) -> BuildRecord {
    let steps = report.images.iter().flat_map(|i| &i.steps);
    BuildRecord {
        at,
        cached_steps: steps.clone().filter(|s| s.cached).count() as u64,
        total_steps: steps.count() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Digest;
    use crate::report::fixtures;

    fn entry(name: &str, digest: Option<&str>, last_used: u64) -> ImageEntry {
        ImageEntry {
            name: name.into(),
            tags: vec![format!("{name}:latest")],
            inputs_digest: digest.map(String::from),
            config: Digest::of(name.as_bytes()),
            layers: Vec::new(),
            diff_ids: Vec::new(),
            target: None,
            other_blobs: Vec::new(),
            last_used,
            size: 1,
        }
    }

    /// A run whose images were all built, each with the image id [`entry`] stores for it.
    fn built_report() -> RunReport {
        let mut report = fixtures::report();
        for image in &mut report.images {
            image.result = ImageResult::Built;
            image.image_id = Some(Digest::of(image.repository.as_bytes()).to_string());
        }
        report
    }

    #[test]
    fn a_restored_entry_tags_only_its_own_repository() {
        let mut stage = entry("acme/api:stage-builder", None, 0);
        stage.tags = vec!["acme/api:stage-builder".into(), "busybox:latest".into()];
        assert_eq!(own_tags_only(&mut stage), ["busybox:latest"]);
        assert_eq!(stage.tags, ["acme/api:stage-builder"]);
        let mut image = entry("reg:5000/acme/api", None, 0);
        image.tags = vec![
            "reg:5000/acme/api:inputs-ab".into(),
            "reg:5000/acme/api:latest".into(),
            "reg:5000/other:latest".into(),
        ];
        assert_eq!(own_tags_only(&mut image), ["reg:5000/other:latest"]);
        assert_eq!(image.tags.len(), 2);
    }

    #[test]
    fn only_images_the_store_lacks_under_their_digest_are_saved() {
        let report = built_report();
        let first = report.images[0].clone();
        let second = report.images[1].clone();
        let index = Index {
            images: vec![
                entry(&first.repository, Some(&first.inputs_digest), 0),
                entry(&second.repository, Some("blake3:older"), 0),
            ],
            ..Index::default()
        };
        let names: Vec<&str> = unsaved(&index, &report, ImageStore::Classic)
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        assert!(!names.contains(&first.name.as_str()), "{names:?}");
        assert!(names.contains(&second.name.as_str()), "{names:?}");
    }

    #[test]
    fn a_rebuild_of_the_same_inputs_replaces_the_stored_image() {
        let mut report = built_report();
        report.images.truncate(1);
        let image = report.images[0].clone();
        let index = Index {
            images: vec![entry(&image.repository, Some(&image.inputs_digest), 0)],
            ..Index::default()
        };
        assert!(unsaved(&index, &report, ImageStore::Classic).is_empty());
        // `--force`: same inputs, a new image.
        report.images[0].image_id = Some(Digest::of(b"rebuilt").to_string());
        assert_eq!(unsaved(&index, &report, ImageStore::Classic).len(), 1);
    }

    #[test]
    fn saved_references_stay_in_the_image_repository() {
        let mut image = fixtures::report().images[0].clone();
        image.repository = "acme/api".into();
        image.inputs_digest = "blake3:abc".into();
        image.tags = vec!["acme/api:latest".into(), "other/api:v1".into()];
        assert_eq!(
            references(&image),
            vec!["acme/api:inputs-abc".to_string(), "acme/api:latest".into()]
        );
    }

    fn stage(name: &str, reference: &str) -> crate::report::model::StageReport {
        crate::report::model::StageReport {
            name: name.into(),
            reference: reference.into(),
            duration_ms: 1,
            steps: Vec::new(),
        }
    }

    #[test]
    fn stage_entries_are_restored_only_when_stages_are_cached() {
        let repositories = BTreeSet::from(["acme/api".to_string()]);
        assert!(wanted("acme/api", &repositories, false));
        assert!(!wanted("acme/api:stage-builder", &repositories, false));
        assert!(wanted("acme/api:stage-builder", &repositories, true));
        assert!(!wanted("acme/web:stage-builder", &repositories, true));
        assert!(!wanted("acme/web", &repositories, true));
    }

    #[test]
    fn an_image_is_saved_again_when_a_stage_it_built_is_not_stored() {
        let mut report = built_report();
        report.images.truncate(1);
        let image = &mut report.images[0];
        image.stages = vec![stage(
            "builder",
            &format!("{}:stage-builder", image.repository),
        )];
        let image = image.clone();
        let mut index = Index {
            images: vec![entry(&image.repository, Some(&image.inputs_digest), 0)],
            ..Index::default()
        };
        assert_eq!(
            unsaved(&index, &report, ImageStore::Classic).len(),
            1,
            "the stage is missing"
        );
        assert_eq!(
            references(&image).last(),
            Some(&format!("{}:stage-builder", image.repository))
        );
        let mut stage_entry = entry(&image.stages[0].reference, Some(&image.inputs_digest), 0);
        stage_entry.tags = vec![image.stages[0].reference.clone()];
        index.images.push(stage_entry.clone());
        assert!(unsaved(&index, &report, ImageStore::Classic).is_empty());
        // The stage's image was the final image too: kept under the image's entry's tags.
        index.images.pop();
        index.images[0].tags.push(image.stages[0].reference.clone());
        assert!(unsaved(&index, &report, ImageStore::Classic).is_empty());
    }

    #[test]
    fn restored_entries_are_marked_used() {
        let mut index = Index {
            images: vec![entry("a", None, 5), entry("b", None, 5)],
            ..Index::default()
        };
        touch(&mut index, [String::from("a")].iter(), 100);
        assert_eq!(index.images[0].last_used, 100);
        assert_eq!(index.images[1].last_used, 5);
    }

    #[test]
    fn the_build_record_counts_cached_steps() {
        let report = fixtures::report();
        let record = build_record(&report, 7);
        let steps: Vec<_> = report.images.iter().flat_map(|i| &i.steps).collect();
        assert_eq!(record.total_steps, steps.len() as u64);
        assert_eq!(
            record.cached_steps,
            steps.iter().filter(|s| s.cached).count() as u64
        );
        assert!(record.total_steps > record.cached_steps && record.cached_steps > 0);
    }
}
