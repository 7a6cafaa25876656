//! The scan cache: each layer's inventory by diff ID, each engine image's configs by image id,
//! the build origins by image id, each image's findings by image id and database version,
//! and the image ids each commit's build made, as small JSON files written atomically.
//!
//! It lives in the workspace's layer store (`<store>/scan/`), so it travels with the CI cache,
//! else under `$XDG_CACHE_HOME/buildopt/scan`. Layer inventories carry the catalog version:
//! when the catalogers change, old entries are misses, never wrong answers. A corrupt entry
//! is a miss too.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::image::ScanTarget;
use super::layer::LayerInventory;
use super::model::ImageInventory;
use super::origin::BuildOrigin;
use crate::cache::atomic;
use crate::cache::digest::Digest;
use crate::env::Env;

/// Raised whenever a cataloger's output changes, so cached layer inventories are re-read
/// (2: links and non-package executables recorded, so they hide the file below; BOMs).
pub const CATALOG_VERSION: u32 = 2;

/// The scan cache folder.
#[derive(Debug, Clone)]
pub struct ScanCache {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct CachedLayer {
    catalog: u32,
    inventory: LayerInventory,
}

/// The image a build last made for one workspace image: what `scan --all` scans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltImage {
    /// The reference the build tagged it with.
    pub reference: String,
    /// The engine's image id.
    pub id: String,
}

/// One engine image's inventories with their unjudged findings, as one run matched them.
#[derive(Serialize, Deserialize)]
struct StoredFindings {
    image_id: Digest,
    database: String,
    scanner: String,
    images: Vec<ImageInventory>,
}

/// What a daemon's image id stood for when it was last scanned: its platforms' configs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedImage {
    pub targets: Vec<ScanTarget>,
}

impl ScanCache {
    /// The cache inside the layer store at `store_root`.
    pub fn in_store(store_root: &Path) -> Self {
        Self {
            root: store_root.join("scan"),
        }
    }

    /// The cache in the folder a setting names.
    pub fn at(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// The cache a command uses: the folder `named` by a setting, else inside the layer store
    /// at `store` when there is one, else the user's.
    pub fn chosen(named: Option<&Path>, store: Option<&Path>, env: &Env) -> Option<Self> {
        match (named, store) {
            (Some(root), _) => Some(Self::at(root)),
            (None, Some(store)) => Some(Self::in_store(store)),
            (None, None) => Self::for_user(env),
        }
    }

    /// The user's cache: `$XDG_CACHE_HOME/buildopt/scan`, else `~/.cache/buildopt/scan`;
    /// `None` when neither variable is set.
    pub fn for_user(env: &Env) -> Option<Self> {
        let base = env
            .get("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| env.get("HOME").map(|home| Path::new(home).join(".cache")))?;
        Some(Self {
            root: base.join("buildopt").join("scan"),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The inventory of the layer `diff_id`, when cached by this catalog version.
    pub fn layer(&self, diff_id: &Digest) -> Option<LayerInventory> {
        let cached: CachedLayer = self.read(&self.path("layers", diff_id))?;
        (cached.catalog == CATALOG_VERSION && &cached.inventory.diff_id == diff_id)
            .then_some(cached.inventory)
    }

    /// Keeps a complete layer inventory; an incomplete one is never kept.
    pub fn put_layer(&self, inventory: &LayerInventory) -> std::io::Result<()> {
        if !inventory.complete {
            return Ok(());
        }
        let cached = CachedLayer {
            catalog: CATALOG_VERSION,
            inventory: inventory.clone(),
        };
        self.write(&self.path("layers", &inventory.diff_id), &cached)
    }

    /// The platforms of the engine image `id`, as last scanned.
    pub fn image(&self, id: &Digest) -> Option<CachedImage> {
        self.read(&self.path("images", id))
    }

    pub fn put_image(&self, id: &Digest, image: &CachedImage) -> std::io::Result<()> {
        self.write(&self.path("images", id), image)
    }

    /// The build origin recorded under any of `ids`.
    pub fn origin(&self, ids: &[&Digest]) -> Option<BuildOrigin> {
        ids.iter()
            .find_map(|id| self.read(&self.path("origins", id)))
    }

    pub fn put_origin(&self, id: &Digest, origin: &BuildOrigin) -> std::io::Result<()> {
        self.write(&self.path("origins", id), origin)
    }

    /// The images the last builds made, by workspace image name.
    pub fn last_built(&self) -> BTreeMap<String, BuiltImage> {
        self.read(&self.root.join("built.json")).unwrap_or_default()
    }

    /// Records images a build made (or reused), keeping the others' entries.
    pub fn put_built(&self, built: &BTreeMap<String, BuiltImage>) -> std::io::Result<()> {
        let mut all = self.last_built();
        all.extend(built.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.write(&self.root.join("built.json"), &all)
    }

    /// The inventories of the engine image `id` with every finding of the database `database`
    /// (before the ignore files and the level), as a run matched them with `scanner`.
    pub fn findings(
        &self,
        id: &Digest,
        database: &str,
        scanner: &str,
    ) -> Option<Vec<ImageInventory>> {
        let stored: StoredFindings = self.read(&self.findings_path(id, database, scanner))?;
        (stored.image_id == *id && stored.database == database && stored.scanner == scanner)
            .then_some(stored.images)
    }

    pub fn put_findings(
        &self,
        id: &Digest,
        database: &str,
        scanner: &str,
        images: &[ImageInventory],
    ) -> std::io::Result<()> {
        let stored = StoredFindings {
            image_id: id.clone(),
            database: database.to_owned(),
            scanner: scanner.to_owned(),
            images: images.to_vec(),
        };
        self.write(&self.findings_path(id, database, scanner), &stored)
    }

    /// The engine image id of each workspace image as of the build of `commit` (a run records
    /// the images it made over those of its base's record).
    pub fn commit_images(&self, commit: &str) -> Option<BTreeMap<String, String>> {
        self.read(&self.commit_path(commit)?)
    }

    pub fn put_commit_images(
        &self,
        commit: &str,
        images: &BTreeMap<String, String>,
    ) -> std::io::Result<()> {
        let Some(path) = self.commit_path(commit) else {
            return Ok(());
        };
        self.write(&path, images)
    }

    /// A commit's record file; `None` for anything but a hex object name (never a path).
    fn commit_path(&self, commit: &str) -> Option<PathBuf> {
        let hex = (4..=64).contains(&commit.len()) && commit.bytes().all(|b| b.is_ascii_hexdigit());
        hex.then(|| {
            self.root
                .join("commits")
                .join(format!("{}.json", commit.to_ascii_lowercase()))
        })
    }

    /// Findings are filed under a digest of what they depend on: the image, the database's
    /// content version, the scanner and the catalog version.
    fn findings_path(&self, id: &Digest, database: &str, scanner: &str) -> PathBuf {
        let key = format!("{id}\n{database}\n{scanner}\n{CATALOG_VERSION}");
        self.path("findings", &Digest::of(key.as_bytes()))
    }

    fn path(&self, kind: &str, digest: &Digest) -> PathBuf {
        self.root.join(kind).join(format!("{}.json", digest.hex()))
    }

    fn read<T: DeserializeOwned>(&self, path: &Path) -> Option<T> {
        let bytes = fs::read(path).ok()?;
        let value = serde_json::from_slice(&bytes).ok()?;
        // A used entry is kept by `prune`; a cache that cannot be touched only ages sooner.
        let _ = fs::File::options()
            .write(true)
            .open(path)
            .and_then(|file| file.set_modified(std::time::SystemTime::now()));
        Some(value)
    }

    /// Removes the entries not written or used for `max_age` (findings of old database
    /// versions, layers of images long gone); returns how many. Best effort: an entry that
    /// cannot be removed stays.
    pub fn prune(&self, max_age: std::time::Duration, now: std::time::SystemTime) -> usize {
        let Some(oldest) = now.checked_sub(max_age) else {
            return 0;
        };
        let mut removed = 0;
        for kind in ["layers", "images", "origins", "findings", "commits"] {
            let Ok(entries) = fs::read_dir(self.root.join(kind)) else {
                continue;
            };
            for entry in entries.flatten() {
                let stale = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|modified| modified < oldest);
                if stale && fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }

    fn write<T: Serialize>(&self, path: &Path, value: &T) -> std::io::Result<()> {
        if let Some(folder) = path.parent() {
            fs::create_dir_all(folder)?;
        }
        let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
        atomic::write(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory(complete: bool) -> LayerInventory {
        LayerInventory {
            diff_id: Digest::of(b"layer"),
            whiteouts: vec!["a".into()],
            opaque_dirs: Vec::new(),
            files: Vec::new(),
            warnings: Vec::new(),
            complete,
        }
    }

    #[test]
    fn complete_layers_round_trip_and_incomplete_ones_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ScanCache::in_store(dir.path());
        let diff_id = Digest::of(b"layer");
        cache.put_layer(&inventory(false)).unwrap();
        assert!(cache.layer(&diff_id).is_none());
        cache.put_layer(&inventory(true)).unwrap();
        assert_eq!(cache.layer(&diff_id), Some(inventory(true)));
    }

    #[test]
    fn corrupt_or_foreign_entries_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ScanCache::in_store(dir.path());
        let diff_id = Digest::of(b"layer");
        let path = cache.path("layers", &diff_id);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"{not json").unwrap();
        assert!(cache.layer(&diff_id).is_none());
        let old = serde_json::json!({"catalog": 0, "inventory": inventory(true)});
        fs::write(&path, old.to_string()).unwrap();
        assert!(cache.layer(&diff_id).is_none());
        // An entry filed under another layer's name.
        let other = Digest::of(b"other");
        fs::write(cache.path("layers", &other), fs::read(&path).unwrap()).unwrap();
        assert!(cache.layer(&other).is_none());
    }

    #[test]
    fn findings_are_kept_by_image_database_and_scanner() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ScanCache::in_store(dir.path());
        let id = Digest::of(b"image");
        let image = crate::report::scan_fixtures::inventory().images.remove(0);
        cache
            .put_findings(&id, "db1", "buildopt", std::slice::from_ref(&image))
            .unwrap();
        assert_eq!(cache.findings(&id, "db1", "buildopt"), Some(vec![image]));
        assert!(cache.findings(&id, "db2", "buildopt").is_none());
        assert!(cache.findings(&id, "db1", "trivy").is_none());
        assert!(
            cache
                .findings(&Digest::of(b"other"), "db1", "buildopt")
                .is_none()
        );
    }

    #[test]
    fn commit_records_are_named_by_hex_commits_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ScanCache::in_store(dir.path());
        let images = BTreeMap::from([("api".to_owned(), Digest::of(b"a").to_string())]);
        cache.put_commit_images("ABCDEF12", &images).unwrap();
        assert_eq!(cache.commit_images("abcdef12"), Some(images.clone()));
        for hostile in ["../../etc", "abc/def", "", "zz12"] {
            cache.put_commit_images(hostile, &images).unwrap();
            assert!(cache.commit_images(hostile).is_none(), "{hostile}");
        }
        assert_eq!(
            fs::read_dir(cache.root().join("commits")).unwrap().count(),
            1
        );
    }

    #[test]
    fn prune_removes_entries_neither_written_nor_used_lately() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ScanCache::in_store(dir.path());
        cache.put_layer(&inventory(true)).unwrap();
        let images = BTreeMap::from([("api".to_owned(), "x".to_owned())]);
        cache.put_commit_images("abcd1234", &images).unwrap();
        let day = std::time::Duration::from_secs(86_400);
        let now = std::time::SystemTime::now();
        assert_eq!(cache.prune(day, now), 0);
        // Eight days on, the commit record is used on the way: only the layer goes.
        let later = now + 8 * day;
        let path = cache.commit_path("abcd1234").unwrap();
        let file = fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(later).unwrap();
        assert_eq!(cache.prune(7 * day, later), 1);
        assert!(cache.layer(&Digest::of(b"layer")).is_none());
        assert_eq!(cache.commit_images("abcd1234"), Some(images));
    }

    #[test]
    fn the_user_cache_follows_xdg() {
        let env = Env::from_pairs([("XDG_CACHE_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(
            ScanCache::for_user(&env).unwrap().root(),
            Path::new("/x/buildopt/scan")
        );
        let env = Env::from_pairs([("HOME", "/h")]);
        assert_eq!(
            ScanCache::for_user(&env).unwrap().root(),
            Path::new("/h/.cache/buildopt/scan")
        );
        assert!(ScanCache::for_user(&Env::default()).is_none());
    }
}
