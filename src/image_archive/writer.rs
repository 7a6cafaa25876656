//! [`LoadTar`]: a `docker load` stream written blob by blob, in any order.
//!
//! Every blob goes in once, as `blobs/sha256/<hex>`; `manifest.json`, and for images saved in
//! the OCI layout `oci-layout` and `index.json`, come last, in [`LoadTar::finish`], once every
//! blob they name was written. The daemon extracts the whole tar before it reads them, so the
//! order costs it nothing, and a tar cut short (a blob that failed verification) names no image.
//!
//! Which document an engine reads: the containerd image store reads `index.json` when there is
//! one (the image comes back under its manifest or index digest, its id there); the classic
//! store reads `manifest.json` (the id is the config digest, whatever the layout). An image saved
//! in the legacy layout has no `index.json` entry to give back, so a tar that holds one has no
//! `index.json` at all and every engine reads its `manifest.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use super::layout::{
    CONTAINERD_NAME_ANNOTATION, Descriptor, Index, OCI_INDEX, OCI_LAYOUT_VERSION,
    OCI_REF_NAME_ANNOTATION, SaveManifestEntry, normalized, tag_of,
};
use super::reader::SavedImage;
use crate::cache::archive::{regular_file_header, tar_padding};
use crate::cache::digest::Digest;

/// A `docker load` tar being written to `out`.
pub struct LoadTar<W: Write> {
    out: W,
    manifest: Vec<SaveManifestEntry>,
    /// `index.json`, when every image has a target.
    index: Option<Index>,
    /// The blobs still to be written.
    pending: BTreeSet<Digest>,
    /// Bytes of the current entry still expected, and its padding.
    current: Option<(u64, u64)>,
}

impl<W: Write> LoadTar<W> {
    pub fn new(images: &[SavedImage], out: W) -> Self {
        let manifest = images
            .iter()
            .map(|image| SaveManifestEntry {
                config: blob_path(&image.config),
                repo_tags: Some(image.tags.clone()),
                layers: image.layers.iter().map(blob_path).collect(),
            })
            .collect();
        let index = images
            .iter()
            .map(index_entries)
            .collect::<Option<Vec<_>>>()
            .filter(|_| !images.is_empty())
            .map(|entries| Index {
                schema_version: 2,
                media_type: Some(OCI_INDEX.to_owned()),
                manifests: entries.into_iter().flatten().collect(),
            });
        let mut pending = BTreeSet::new();
        for image in images {
            pending.extend(image.blobs().into_iter().cloned());
        }
        Self {
            out,
            manifest,
            index,
            pending,
            current: None,
        }
    }

    /// The blobs still to be written.
    pub fn wanted(&self) -> Vec<Digest> {
        self.pending.iter().cloned().collect()
    }

    pub fn wants(&self, digest: &Digest) -> bool {
        self.pending.contains(digest)
    }

    /// Starts the entry of `digest`; its `size` bytes follow through `write`.
    pub fn begin_blob(&mut self, digest: &Digest, size: u64) -> io::Result<()> {
        if self.current.is_some() {
            return Err(io::Error::other("an entry is still open"));
        }
        if !self.pending.remove(digest) {
            return Err(io::Error::other(format!("{digest} is not wanted")));
        }
        self.out
            .write_all(header(&blob_path(digest), size)?.as_bytes())?;
        self.current = Some((size, tar_padding(size)));
        Ok(())
    }

    /// Ends the entry of `digest` once all its bytes were written.
    pub fn end_blob(&mut self, digest: &Digest) -> io::Result<()> {
        match self.current.take() {
            Some((0, pad)) => self.out.write_all(&ZEROS[..pad as usize]),
            Some((left, _)) => Err(io::Error::other(format!("{digest} is {left} bytes short"))),
            None => Err(io::Error::other("no entry is open")),
        }
    }

    /// Writes the layout's documents and the end of the tar; fails if a wanted blob was not
    /// written.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(missing) = self.pending.iter().next() {
            return Err(io::Error::other(format!("{missing} was never written")));
        }
        if self.current.is_some() {
            return Err(io::Error::other("an entry is still open"));
        }
        if let Some(index) = self.index.take() {
            let layout = serde_json::json!({ "imageLayoutVersion": OCI_LAYOUT_VERSION });
            self.document("oci-layout", &layout)?;
            self.document("index.json", &index)?;
        }
        let manifest = std::mem::take(&mut self.manifest);
        self.document("manifest.json", &manifest)?;
        // The end of a tar: two zero blocks.
        self.out.write_all(&ZEROS)?;
        self.out.write_all(&ZEROS)?;
        Ok(self.out)
    }

    fn document(&mut self, name: &str, value: &impl serde::Serialize) -> io::Result<()> {
        let json = serde_json::to_vec(value).map_err(io::Error::other)?;
        let size = json.len() as u64;
        self.out.write_all(header(name, size)?.as_bytes())?;
        self.out.write_all(&json)?;
        self.out.write_all(&ZEROS[..tar_padding(size) as usize])
    }
}

impl<W: Write> Write for LoadTar<W> {
    /// Bytes of the open entry; more than its header announced is an error.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some((left, _)) = &mut self.current else {
            return Err(io::Error::other("no entry is open"));
        };
        if buf.len() as u64 > *left {
            return Err(io::Error::other("more bytes than the entry's header says"));
        }
        let n = self.out.write(buf)?;
        *left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The `index.json` entries of one image, one per tag, named as docker names them; `None` for
/// an image without a target (saved in the legacy layout).
fn index_entries(image: &SavedImage) -> Option<Vec<Descriptor>> {
    let target = image.target.as_ref()?;
    let entry = |tag: &String| {
        let mut descriptor = target.clone();
        let full = normalized(tag);
        let short = tag_of(&full).to_owned();
        descriptor.annotations = BTreeMap::from([
            (CONTAINERD_NAME_ANNOTATION.to_owned(), full),
            (OCI_REF_NAME_ANNOTATION.to_owned(), short),
        ]);
        descriptor
    };
    Some(image.tags.iter().map(entry).collect())
}

fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

const ZEROS: [u8; 512] = [0; 512];

fn header(name: &str, size: u64) -> io::Result<tar::Header> {
    // GNU headers, as docker's own tars use.
    regular_file_header(tar::Header::new_gnu(), name, size)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read;

    use super::super::fixtures;
    use super::*;

    fn read(tar: &[u8]) -> (Vec<SavedImage>, fixtures::Blobs) {
        fixtures::read_in_memory(tar).expect("read")
    }

    /// A load tar for `images`, each blob written in two pieces from `blobs`.
    fn load(images: &[SavedImage], blobs: &BTreeMap<Digest, Vec<u8>>) -> Vec<u8> {
        let mut tar = LoadTar::new(images, Vec::new());
        for digest in tar.wanted() {
            let bytes = &blobs[&digest];
            tar.begin_blob(&digest, bytes.len() as u64).expect("begin");
            let (head, tail) = bytes.split_at(bytes.len() / 2);
            tar.write_all(head).expect("write");
            tar.write_all(tail).expect("write");
            tar.end_blob(&digest).expect("end");
        }
        tar.finish().expect("finish")
    }

    /// (name, bytes) of every entry of a tar.
    fn entries(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .expect("entries")
            .map(|e| {
                let mut e = e.expect("entry");
                let mut bytes = Vec::new();
                e.read_to_end(&mut bytes).expect("read");
                (e.path().expect("path").display().to_string(), bytes)
            })
            .collect()
    }

    #[test]
    fn a_containerd_save_loads_back_as_the_same_layout() {
        let save = fixtures::containerd_save();
        let (images, blobs) = read(&save.tar);
        let written = load(&images, &blobs);
        let got = entries(&written);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names[names.len() - 3..],
            ["oci-layout", "index.json", "manifest.json"]
        );
        assert_eq!(names.len(), 3 + blobs.len(), "every blob once: {names:?}");
        let index: Index = serde_json::from_slice(&got[names.len() - 2].1).expect("index");
        assert_eq!(index.manifests.len(), 2, "one entry per tag");
        assert!(index.manifests.iter().all(|m| m.digest == save.index));
        let named: Vec<_> = index
            .manifests
            .iter()
            .filter_map(Descriptor::reference)
            .collect();
        assert_eq!(named, ["app:1", "reg:5000/app:latest"]);
        assert_eq!(
            index.manifests[0].annotations[CONTAINERD_NAME_ANNOTATION],
            "docker.io/library/app:1"
        );
        assert_eq!(index.manifests[0].annotations[OCI_REF_NAME_ANNOTATION], "1");
        let (again, _) = read(&written);
        assert_eq!(again, images, "it reads back as the same images");
    }

    #[test]
    fn legacy_images_load_through_manifest_json_alone() {
        let (mut images, blobs) = read(&fixtures::legacy_save());
        images.retain(|i| !i.tags.is_empty());
        let written = load(&images, &blobs);
        let names: Vec<String> = entries(&written).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.last().map(String::as_str), Some("manifest.json"));
        assert!(!names.iter().any(|n| n == "index.json"));
        assert_eq!(names.len(), 1 + 4, "a shared layer goes in once: {names:?}");
        let (again, _) = read(&written);
        assert_eq!(again, images);
        // An OCI image beside a legacy one: no index.json either.
        let save = fixtures::containerd_save();
        let (oci, oci_blobs) = read(&save.tar);
        let mut all = blobs.clone();
        all.extend(oci_blobs);
        let mixed = [images[0].clone(), oci[0].clone()];
        let names: Vec<String> = entries(&load(&mixed, &all))
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert!(!names.iter().any(|n| n == "index.json"));
    }

    #[test]
    fn a_load_tar_refuses_short_long_unwanted_and_missing_blobs() {
        let (images, blobs) = read(&fixtures::classic_oci_save());
        let layer = images[0].layers[0].clone();
        let bytes = &blobs[&layer];
        let size = bytes.len() as u64;

        let mut tar = LoadTar::new(&images, Vec::new());
        tar.begin_blob(&layer, size).expect("begin");
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(tar.write_all(&longer).is_err(), "more than the header says");

        let mut tar = LoadTar::new(&images, Vec::new());
        tar.begin_blob(&layer, size).expect("begin");
        tar.write_all(&bytes[..3]).expect("write");
        assert!(
            tar.end_blob(&layer).is_err(),
            "fewer bytes than the header says"
        );

        let mut tar = LoadTar::new(&images, Vec::new());
        assert!(tar.begin_blob(&Digest::of(b"unknown"), 1).is_err());
        tar.begin_blob(&layer, size).expect("begin");
        tar.write_all(bytes).expect("write");
        tar.end_blob(&layer).expect("end");
        assert!(tar.begin_blob(&layer, size).is_err(), "a blob goes in once");
        assert!(tar.finish().is_err(), "the config was never written");
    }
}
