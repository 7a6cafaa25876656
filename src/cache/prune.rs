//! Keeping caches bounded: retention by age, the size limit by least recent use, garbage
//! collection of blobs no image references, and the same collection for a BuildKit
//! `type=local` cache folder (whose `blobs/` otherwise grow forever, moby/buildkit#1896).
//!
//! Choosing what to drop is pure ([`expired`], [`over_limit`]); deleting is separate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use super::CacheError;
use super::digest::Digest;
use super::lock::StoreLock;
use super::store::{Index, Store, digest_named_files};

const DAY: u64 = 24 * 3600;

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneSummary {
    /// Index entries dropped, by name.
    pub images_removed: Vec<String>,
    pub blobs_removed: usize,
    pub bytes_freed: u64,
}

/// Names of images not used for more than `days` days at `now` (Unix seconds).
pub fn expired(index: &Index, now: u64, days: u64) -> Vec<String> {
    let cutoff = now.saturating_sub(days.saturating_mul(DAY));
    index
        .images
        .iter()
        .filter(|image| image.last_used < cutoff)
        .map(|image| image.name.clone())
        .collect()
}

/// Names of the least recently used images to drop so the blobs the rest reference (each blob
/// counted once) fit in `limit` bytes. Ties go by name, so the choice is deterministic.
pub fn over_limit(index: &Index, sizes: &BTreeMap<Digest, u64>, limit: u64) -> Vec<String> {
    let mut by_use: Vec<_> = index.images.iter().collect();
    by_use.sort_by(|a, b| (a.last_used, &a.name).cmp(&(b.last_used, &b.name)));
    let mut dropped = Vec::new();
    let mut kept = by_use.as_slice();
    while kept_bytes(kept, sizes) > limit {
        let Some((oldest, rest)) = kept.split_first() else {
            break;
        };
        dropped.push(oldest.name.clone());
        kept = rest;
    }
    dropped
}

fn kept_bytes(images: &[&super::store::ImageEntry], sizes: &BTreeMap<Digest, u64>) -> u64 {
    let blobs: BTreeSet<&Digest> = images.iter().flat_map(|i| i.blobs()).collect();
    blobs
        .iter()
        .map(|d| sizes.get(*d).copied().unwrap_or(0))
        .sum()
}

/// Drops the named images from the index and collects the blobs nobody references any more.
pub fn remove_images(
    store: &Store,
    lock: &StoreLock,
    names: &[String],
) -> Result<PruneSummary, CacheError> {
    let mut index = store.read_index()?;
    index.images.retain(|image| !names.contains(&image.name));
    store.write_index(&index, lock)?;
    let mut summary = collect_garbage(store, lock, &index)?;
    summary.images_removed = names.to_vec();
    Ok(summary)
}

/// Deletes every blob `index` does not reference, and leftovers of dead jobs in `tmp/`.
pub fn collect_garbage(
    store: &Store,
    lock: &StoreLock,
    index: &Index,
) -> Result<PruneSummary, CacheError> {
    store.clear_tmp(lock)?;
    let referenced = index.referenced();
    let mut summary = PruneSummary::default();
    for (digest, size) in store.blob_sizes()? {
        if !referenced.contains(&digest) {
            let path = store.blob_path(&digest);
            std::fs::remove_file(&path).map_err(|e| CacheError::io(&path, e))?;
            summary.blobs_removed += 1;
            summary.bytes_freed += size;
        }
    }
    Ok(summary)
}

/// Removes from a BuildKit `type=local` cache folder (`index.json` + `blobs/sha256/*`) every
/// blob its index does not reach. Unreadable metadata deletes nothing: an error is returned.
pub fn collect_buildkit_local(dir: &Path) -> Result<PruneSummary, CacheError> {
    let blob_dir = dir.join("blobs").join("sha256");
    let fail = |message: String| CacheError::BuildKitCache {
        path: dir.display().to_string(),
        message,
    };
    let index_path = dir.join("index.json");
    let index = std::fs::read(&index_path).map_err(|e| fail(format!("index.json: {e}")))?;
    let reachable = reachable_blobs(&index, &blob_dir).map_err(fail)?;
    let mut summary = PruneSummary::default();
    for (digest, path) in digest_named_files(&blob_dir)? {
        if !reachable.contains(&digest) {
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            std::fs::remove_file(&path).map_err(|e| CacheError::io(&path, e))?;
            summary.blobs_removed += 1;
            summary.bytes_freed += size;
        }
    }
    Ok(summary)
}

/// Every digest reachable from the OCI index `root`: descriptors under `manifests`, `config`
/// and `layers`, followed into blobs that are JSON (indexes, manifests, BuildKit cache configs).
fn reachable_blobs(root: &[u8], blob_dir: &Path) -> Result<BTreeSet<Digest>, String> {
    let root: serde_json::Value =
        serde_json::from_slice(root).map_err(|e| format!("index.json: {e}"))?;
    if !root
        .get("manifests")
        .is_some_and(serde_json::Value::is_array)
    {
        return Err("index.json has no manifests array".into());
    }
    let mut reachable = BTreeSet::new();
    let mut pending = descriptors(&root)?;
    while let Some(digest) = pending.pop() {
        if !reachable.insert(digest.clone()) {
            continue;
        }
        let path = blob_dir.join(digest.hex());
        let is_json_sized = std::fs::metadata(&path).is_ok_and(|m| m.len() <= 16 << 20);
        if !is_json_sized {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            pending.extend(descriptors(&value)?);
        }
    }
    Ok(reachable)
}

/// The digests of the descriptors directly under `value`.
fn descriptors(value: &serde_json::Value) -> Result<Vec<Digest>, String> {
    let mut found = Vec::new();
    let mut push = |descriptor: &serde_json::Value| -> Result<(), String> {
        if let Some(digest) = descriptor.get("digest").and_then(serde_json::Value::as_str) {
            found.push(digest.parse::<Digest>()?);
        }
        Ok(())
    };
    for key in ["manifests", "layers"] {
        if let Some(list) = value.get(key).and_then(serde_json::Value::as_array) {
            list.iter().try_for_each(&mut push)?;
        }
    }
    if let Some(config) = value.get("config").filter(|c| c.is_object()) {
        push(config)?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::store::ImageEntry;

    fn image(name: &str, blobs: &[&[u8]], last_used: u64) -> ImageEntry {
        ImageEntry {
            name: name.into(),
            tags: Vec::new(),
            inputs_digest: None,
            config: Digest::of(name.as_bytes()),
            layers: blobs.iter().map(|b| Digest::of(b)).collect(),
            diff_ids: Vec::new(),
            target: None,
            other_blobs: Vec::new(),
            last_used,
            size: 0,
        }
    }

    fn sizes(index: &Index, size: u64) -> BTreeMap<Digest, u64> {
        index
            .referenced()
            .into_iter()
            .map(|d| (d.clone(), size))
            .collect()
    }

    #[test]
    fn expired_uses_whole_days_of_last_use() {
        let now = 100 * DAY;
        let index = Index {
            images: vec![
                image("old", &[], now - 8 * DAY),
                image("new", &[], now - DAY),
            ],
            ..Index::default()
        };
        assert_eq!(expired(&index, now, 7), vec!["old".to_string()]);
        assert!(expired(&index, now, 30).is_empty());
        assert_eq!(expired(&index, now, 0).len(), 2);
    }

    #[test]
    fn size_limit_drops_least_recently_used_and_counts_shared_blobs_once() {
        let index = Index {
            images: vec![
                image("a", &[b"base", b"layer-a"], 30),
                image("b", &[b"base", b"layer-b"], 10),
                image("c", &[b"base", b"layer-c"], 20),
            ],
            ..Index::default()
        };
        // 3 configs + base + 3 layers = 7 blobs of 10 bytes.
        let sizes = sizes(&index, 10);
        assert!(over_limit(&index, &sizes, 70).is_empty());
        assert_eq!(over_limit(&index, &sizes, 69), vec!["b".to_string()]);
        assert_eq!(
            over_limit(&index, &sizes, 30),
            vec!["b".to_string(), "c".into()]
        );
        assert_eq!(over_limit(&index, &sizes, 0).len(), 3);
    }

    #[test]
    fn garbage_collection_keeps_referenced_blobs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let lock = store.lock(|_| {}).expect("lock");
        let kept = store.add_blob(&mut &b"kept"[..], &lock).expect("add");
        let gone = store.add_blob(&mut &b"gone!"[..], &lock).expect("add");
        std::fs::write(store.tmp_dir().join("blob-dead"), "x").expect("write");
        let mut index = Index::default();
        let mut entry = image("a", &[], 1);
        entry.config = kept.digest.clone();
        index.upsert(entry);
        store.write_index(&index, &lock).expect("write");
        let summary = remove_images(&store, &lock, &[]).expect("gc");
        assert_eq!((summary.blobs_removed, summary.bytes_freed), (1, 5));
        assert!(store.has_blob(&kept.digest) && !store.has_blob(&gone.digest));
        assert_eq!(std::fs::read_dir(store.tmp_dir()).expect("ls").count(), 0);
        let summary = remove_images(&store, &lock, &["a".into()]).expect("gc");
        assert_eq!(
            (summary.images_removed.len(), summary.blobs_removed),
            (1, 1)
        );
    }

    fn write_blob(dir: &Path, bytes: &[u8]) -> Digest {
        let digest = Digest::of(bytes);
        std::fs::write(dir.join(digest.hex()), bytes).expect("blob");
        digest
    }

    #[test]
    fn buildkit_local_cache_keeps_what_its_index_reaches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = dir.path().join("blobs/sha256");
        std::fs::create_dir_all(&blobs).expect("mkdir");
        let layer = write_blob(&blobs, b"layer-bytes");
        let config = write_blob(&blobs, b"{\"layers\":[]}");
        let manifest = write_blob(
            &blobs,
            format!(
                "{{\"config\":{{\"digest\":\"{config}\"}},\"layers\":[{{\"digest\":\"{layer}\"}}]}}"
            )
            .as_bytes(),
        );
        let orphan = write_blob(&blobs, b"old-layer");
        std::fs::write(
            dir.path().join("index.json"),
            format!("{{\"schemaVersion\":2,\"manifests\":[{{\"digest\":\"{manifest}\"}}]}}"),
        )
        .expect("index");
        let summary = collect_buildkit_local(dir.path()).expect("gc");
        assert_eq!(summary.blobs_removed, 1);
        for kept in [&layer, &config, &manifest] {
            assert!(blobs.join(kept.hex()).is_file());
        }
        assert!(!blobs.join(orphan.hex()).exists());
    }

    #[test]
    fn malformed_buildkit_indexes_delete_nothing() {
        for bad in [
            "",
            "{",
            "{}",
            "{\"manifests\":{}}",
            "{\"manifests\":[{\"digest\":\"sha256:../../x\"}]}",
        ] {
            let dir = tempfile::tempdir().expect("tempdir");
            let blobs = dir.path().join("blobs/sha256");
            std::fs::create_dir_all(&blobs).expect("mkdir");
            let orphan = write_blob(&blobs, b"x");
            std::fs::write(dir.path().join("index.json"), bad).expect("index");
            assert!(
                matches!(
                    collect_buildkit_local(dir.path()),
                    Err(CacheError::BuildKitCache { .. })
                ),
                "{bad:?}"
            );
            assert!(blobs.join(orphan.hex()).is_file());
        }
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(collect_buildkit_local(dir.path()).is_err(), "missing index");
    }
}
