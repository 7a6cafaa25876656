//! The scan cache: each layer's inventory by diff ID, each engine image's configs by image id,
//! and the build origins by image id, as small JSON files written atomically.
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
use super::origin::BuildOrigin;
use crate::cache::atomic;
use crate::cache::digest::Digest;
use crate::env::Env;

/// Raised whenever a cataloger's output changes, so cached layer inventories are re-read.
pub const CATALOG_VERSION: u32 = 1;

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

    fn path(&self, kind: &str, digest: &Digest) -> PathBuf {
        self.root.join(kind).join(format!("{}.json", digest.hex()))
    }

    fn read<T: DeserializeOwned>(&self, path: &Path) -> Option<T> {
        let bytes = fs::read(path).ok()?;
        serde_json::from_slice(&bytes).ok()
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
