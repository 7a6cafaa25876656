//! `docker save` streams into the store, and the store back out as `docker load` streams.
//!
//! Saving hands every blob of the daemon's tar (either layout, see [`crate::image_archive`]) to
//! the store, which keeps only what it lacks, and makes an index entry per tagged image. Loading
//! writes the reverse, streamed from the store or, during `cache import`, from the archive as it
//! is read ([`LoadTar`]).
//!
//! The daemon's tar is trusted only as far as needed: names are looked up, never used as paths,
//! and every blob is addressed by the digest of its bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use super::CacheError;
use super::digest::{Digest, HashingWriter};
use super::lock::StoreLock;
use super::store::{ImageEntry, StagedBlob, Store};
use crate::image_archive::{self, LoadTar, SaveFormatError};

pub use crate::image_archive::layout::{repository, tag_of};

/// What [`ingest_save`] read: an index entry per tagged image, and the blobs staged for the store.
#[derive(Debug)]
pub struct Ingested {
    pub images: Vec<ImageEntry>,
    /// To be put in place with [`Store::adopt_staged`] before an index names them.
    pub staged: Vec<StagedBlob>,
}

impl From<SaveFormatError> for CacheError {
    fn from(error: SaveFormatError) -> Self {
        Self::SaveFormat(error.to_string())
    }
}

/// Reads a `docker save` stream, staging its blobs in the store, and returns an index entry per
/// tagged image (with `last_used` = `now`, no inputs digest). The index itself is not changed.
/// `staged_hook` hears of each blob as soon as it is staged.
pub fn ingest_save(
    store: &Store,
    lock: &StoreLock,
    reader: &mut dyn Read,
    now: u64,
    staged_hook: &mut dyn FnMut(&StagedBlob),
) -> Result<Ingested, CacheError> {
    let mut staged = Vec::new();
    let mut sizes = BTreeMap::new();
    let mut stage = |blob: &mut dyn Read| -> Result<(Digest, u64), CacheError> {
        let blob = store.stage_blob(blob, lock)?;
        staged_hook(&blob);
        let named = (blob.digest.clone(), blob.size);
        sizes.insert(blob.digest.clone(), blob.size);
        staged.push(blob);
        Ok(named)
    };
    let saved = image_archive::read_save(reader, &mut stage)?;
    let images: Vec<ImageEntry> = saved
        .into_iter()
        .filter_map(|image| ImageEntry::from_saved(image, &sizes, now))
        .collect();
    // Blobs no indexed image names (untagged images', the v1 `json` files Docker 25+ keeps
    // among its blobs) are dropped now rather than collected later.
    let named: BTreeSet<&Digest> = images.iter().flat_map(ImageEntry::blobs).collect();
    staged.retain(|blob| named.contains(&blob.digest));
    Ok(Ingested { images, staged })
}

/// Writes a tar `docker load` accepts for `images`, streaming every blob from the store and
/// checking it against its digest on the way: whoever wrote the store's files (a CI cache
/// restored as a folder, say), a blob that does not match ends the tar before the documents
/// that name its images, so the daemon loads nothing of it.
pub fn write_load(store: &Store, images: &[ImageEntry], out: &mut dyn Write) -> io::Result<()> {
    let mut tar = load_tar(images, out);
    for digest in tar.wanted() {
        let mut file = store.open_blob(&digest).map_err(io::Error::other)?;
        let size = file.metadata()?.len();
        tar.begin_blob(&digest, size)?;
        let mut hashing = HashingWriter::new(&mut tar);
        // `take` pins the entry to the size in its header even if the file changed meanwhile.
        let copied = io::copy(&mut (&mut file).take(size), &mut hashing)?;
        let (actual, _, _) = hashing.finish();
        if copied != size {
            return Err(io::Error::other(format!(
                "{digest} shrank while being read"
            )));
        }
        if actual != digest {
            return Err(io::Error::other(format!(
                "the store's blob {digest} holds other bytes ({actual}); nothing was loaded"
            )));
        }
        tar.end_blob(&digest)?;
    }
    tar.finish()?.flush()
}

/// A load stream for the store's `images`, to be fed blob by blob.
pub fn load_tar<W: Write>(images: &[ImageEntry], out: W) -> LoadTar<W> {
    let saved: Vec<_> = images.iter().map(ImageEntry::as_saved).collect();
    LoadTar::new(&saved, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ImageStore;
    use crate::image_archive::fixtures;

    /// Ingests `tar` and puts its blobs in place, as a save does.
    fn ingest_into(store: &Store, lock: &StoreLock, tar: &[u8]) -> Vec<ImageEntry> {
        let ingested = ingest_save(store, lock, &mut &tar[..], 9, &mut |_| {}).expect("ingest");
        store.adopt_staged(ingested.staged, lock).expect("adopt");
        ingested.images
    }

    #[test]
    fn staged_blobs_enter_the_store_only_when_adopted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let lock = store.lock(|_| {}).expect("lock");
        let mut heard = Vec::new();
        let mut hook = |blob: &StagedBlob| {
            let staged = blob.open_staged().expect("new").expect("open");
            heard.push((blob.size, staged.metadata().expect("metadata").len()));
        };
        let tar = fixtures::legacy_save();
        let ingested =
            ingest_save(&store, &lock, &mut tar.as_slice(), 9, &mut hook).expect("ingest");
        assert_eq!(ingested.staged.len(), 4);
        assert_eq!(
            heard.len(),
            4,
            "the hook hears of every blob as it is staged"
        );
        assert!(
            heard.iter().all(|(size, on_disk)| size == on_disk),
            "{heard:?}"
        );
        assert!(store.blob_sizes().expect("sizes").is_empty());
        drop(ingested);
        let tmp = std::fs::read_dir(store.tmp_dir()).expect("tmp").count();
        assert_eq!(tmp, 0, "dropped staged blobs leave no temp files");
        assert_eq!(
            ingest_into(&store, &lock, &tar).len(),
            2,
            "the untagged image is skipped"
        );
        assert_eq!(store.blob_sizes().expect("sizes").len(), 4);
        assert_eq!(std::fs::read_dir(store.tmp_dir()).expect("tmp").count(), 0);
    }

    #[test]
    fn saves_split_into_shared_blobs_and_saving_again_adds_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let lock = store.lock(|_| {}).expect("lock");
        let save = fixtures::containerd_save();
        let images = ingest_into(&store, &lock, &save.tar);
        assert_eq!(images[0].name, "app");
        assert_eq!(images[0].layers, save.layers);
        assert_eq!(images[0].id_on(ImageStore::Containerd), Some(&save.index));
        assert_eq!(images[0].id_on(ImageStore::Classic), Some(&save.config));
        let sizes = store.blob_sizes().expect("sizes");
        assert_eq!(sizes.len(), 8);
        assert_eq!(images[0].size, sizes.values().sum::<u64>());
        let mut present = 0;
        let mut hook = |blob: &StagedBlob| present += usize::from(blob.open_staged().is_none());
        let again =
            ingest_save(&store, &lock, &mut save.tar.as_slice(), 9, &mut hook).expect("again");
        assert_eq!(present, 8, "blobs the store has are not staged");
        assert_eq!(store.adopt_staged(again.staged, &lock).expect("adopt"), 0);
    }

    #[test]
    fn load_tars_from_the_store_read_back_as_the_same_images() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let lock = store.lock(|_| {}).expect("lock");
        for tar in [
            fixtures::legacy_save(),
            fixtures::classic_oci_save(),
            fixtures::containerd_save().tar,
        ] {
            let images = ingest_into(&store, &lock, &tar);
            let mut out = Vec::new();
            write_load(&store, &images, &mut out).expect("write");
            assert_eq!(ingest_into(&store, &lock, &out), images);
        }
    }

    #[test]
    fn a_tampered_blob_ends_the_load_before_anything_names_an_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let lock = store.lock(|_| {}).expect("lock");
        let images = ingest_into(&store, &lock, &fixtures::containerd_save().tar);
        let layer = store.blob_path(&images[0].layers[1]);
        let mut bytes = std::fs::read(&layer).expect("layer");
        bytes[0] ^= 1;
        std::fs::write(&layer, &bytes).expect("tamper");
        let mut out = Vec::new();
        let error = write_load(&store, &images, &mut out).expect_err("refused");
        assert!(error.to_string().contains("holds other bytes"), "{error}");
        let names: Vec<String> = tar::Archive::new(out.as_slice())
            .entries()
            .expect("entries")
            .filter_map(|e| Some(e.ok()?.path().ok()?.display().to_string()))
            .collect();
        assert!(
            !names.iter().any(|n| n.ends_with(".json")),
            "no document names an image: {names:?}"
        );
    }

    #[test]
    fn a_malformed_save_is_a_save_format_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let lock = store.lock(|_| {}).expect("lock");
        let result = ingest_save(&store, &lock, &mut &[1u8; 700][..], 0, &mut |_| {});
        assert!(matches!(result, Err(CacheError::SaveFormat(_))));
        assert_eq!(std::fs::read_dir(store.tmp_dir()).expect("tmp").count(), 0);
    }
}
