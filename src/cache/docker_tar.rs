//! The `docker save` / `docker load` tar format, on the store's side.
//!
//! Saving splits the daemon's tar into blobs: each image config (`<id>.json`) and each layer
//! (`<dir>/layer.tar`, the uncompressed layer, whose digest is its diff id), streamed straight
//! into the store, which keeps only what it lacks. `manifest.json` then says which config and
//! layers make each tagged image. Loading writes the reverse: a minimal tar the daemon accepts
//! (the configs, one `<hex>/layer.tar` per layer, then `manifest.json`), streamed from the store
//! or, during `cache import`, from the archive as it is read ([`LoadTar`]).
//!
//! The daemon's tar is trusted only as far as needed: names are looked up, never used as paths,
//! and every blob is addressed by the digest of its bytes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};

use super::CacheError;
use super::archive::tar_padding;
use super::digest::Digest;
use super::lock::StoreLock;
use super::store::{ImageEntry, StagedBlob, Store};

/// The largest `manifest.json` read from a `docker save` stream.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// One element of a docker-save `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SaveManifestEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

/// What [`ingest_save`] read: an index entry per tagged image, and the blobs staged for the store.
#[derive(Debug)]
pub struct Ingested {
    pub images: Vec<ImageEntry>,
    /// To be put in place with [`Store::adopt_staged`] before an index names them.
    pub staged: Vec<StagedBlob>,
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
    let format = |m: String| CacheError::SaveFormat(m);
    let mut archive = tar::Archive::new(reader);
    let mut blobs: BTreeMap<String, (Digest, u64)> = BTreeMap::new();
    let mut links: BTreeMap<String, String> = BTreeMap::new();
    let mut manifest = None;
    let mut staged = Vec::new();
    for entry in archive.entries().map_err(|e| format(e.to_string()))? {
        let mut entry = entry.map_err(|e| format(e.to_string()))?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if path == "manifest.json" {
            let mut bytes = Vec::new();
            entry
                .by_ref()
                .take(MAX_MANIFEST_BYTES)
                .read_to_end(&mut bytes)
                .map_err(|e| format(e.to_string()))?;
            let parsed: Vec<SaveManifestEntry> = serde_json::from_slice(&bytes)
                .map_err(|e| format(format!("manifest.json: {e}")))?;
            manifest = Some(parsed);
        } else if kind.is_symlink() && path.ends_with("/layer.tar") {
            let target = entry.link_name_bytes().unwrap_or_default();
            links.insert(
                path.clone(),
                resolve_link(&path, &String::from_utf8_lossy(&target)),
            );
        } else if kind.is_file() && is_blob_path(&path) {
            let blob = store.stage_blob(&mut entry, lock)?;
            staged_hook(&blob);
            blobs.insert(path, (blob.digest.clone(), blob.size));
            staged.push(blob);
        }
    }
    let manifest = manifest.ok_or_else(|| format("no manifest.json".into()))?;
    let images = manifest
        .iter()
        .filter_map(|image| image_entry(image, &blobs, &links, now).transpose())
        .collect::<Result<_, _>>()?;
    Ok(Ingested { images, staged })
}

fn is_blob_path(path: &str) -> bool {
    path.ends_with("/layer.tar")
        || (path.ends_with(".json") && !path.contains('/') && path != "manifest.json")
}

/// `a/layer.tar` linking to `../b/layer.tar` → `b/layer.tar`.
fn resolve_link(path: &str, target: &str) -> String {
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// The index entry of one manifest element; `None` for an image saved without a name.
fn image_entry(
    image: &SaveManifestEntry,
    blobs: &BTreeMap<String, (Digest, u64)>,
    links: &BTreeMap<String, String>,
    now: u64,
) -> Result<Option<ImageEntry>, CacheError> {
    let tags = image.repo_tags.clone().unwrap_or_default();
    let Some(name) = super::store::entry_name(&tags) else {
        return Ok(None);
    };
    let lookup = |path: &String| {
        let real = links.get(path).unwrap_or(path);
        blobs
            .get(real)
            .cloned()
            .ok_or_else(|| CacheError::SaveFormat(format!("{path} is named but not in the tar")))
    };
    let (config, config_size) = lookup(&image.config)?;
    let mut size = config_size;
    let mut layers = Vec::new();
    for layer in &image.layers {
        let (digest, layer_size) = lookup(layer)?;
        size += layer_size;
        layers.push(digest);
    }
    Ok(Some(ImageEntry {
        name,
        tags,
        inputs_digest: None,
        config,
        layers,
        last_used: now,
        size,
    }))
}

/// `registry:5000/a/b:tag` → `registry:5000/a/b` (the colon of a port is not a tag's).
pub fn repository(reference: &str) -> &str {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => reference,
    }
}

/// Writes a tar `docker load` accepts for `images`, streaming every blob from the store.
pub fn write_load(store: &Store, images: &[ImageEntry], out: &mut dyn Write) -> io::Result<()> {
    let mut tar = LoadTar::new(images, out);
    for digest in tar.wanted() {
        let mut file = store.open_blob(&digest).map_err(io::Error::other)?;
        let size = file.metadata()?.len();
        tar.begin_blob(&digest, size)?;
        // `take` pins the entry to the size in its header even if the file changed meanwhile.
        let copied = io::copy(&mut (&mut file).take(size), &mut tar)?;
        if copied != size {
            return Err(io::Error::other(format!(
                "{digest} shrank while being read"
            )));
        }
        tar.end_blob(&digest, &mut file)?;
    }
    tar.finish()?.flush()
}

/// A `docker load` tar written blob by blob, in any order: `manifest.json` comes last, in
/// [`LoadTar::finish`], once every blob it names was written. The daemon extracts the whole tar
/// before it reads the manifest, so the order costs it nothing, and a tar cut short before its
/// end (a blob that failed verification) names no image to load.
pub struct LoadTar<W: Write> {
    out: W,
    manifest: Vec<SaveManifestEntry>,
    /// The names each wanted blob still has to be written under (a config `<hex>.json`, a layer
    /// `<hex>/layer.tar`; a digest that is both has two).
    pending: BTreeMap<Digest, Vec<String>>,
    /// Bytes of the current entry still expected, and its padding.
    current: Option<(u64, u64)>,
}

impl<W: Write> LoadTar<W> {
    pub fn new(images: &[ImageEntry], out: W) -> Self {
        let manifest = images
            .iter()
            .map(|image| SaveManifestEntry {
                config: config_name(&image.config),
                repo_tags: Some(image.tags.clone()),
                layers: image.layers.iter().map(layer_name).collect(),
            })
            .collect();
        let mut pending: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
        for image in images {
            let names = std::iter::once((&image.config, config_name(&image.config)))
                .chain(image.layers.iter().map(|l| (l, layer_name(l))));
            for (digest, name) in names {
                let entry = pending.entry(digest.clone()).or_default();
                if !entry.contains(&name) {
                    entry.push(name);
                }
            }
        }
        Self {
            out,
            manifest,
            pending,
            current: None,
        }
    }

    /// The blobs still to be written.
    pub fn wanted(&self) -> Vec<Digest> {
        self.pending.keys().cloned().collect()
    }

    pub fn wants(&self, digest: &Digest) -> bool {
        self.pending.contains_key(digest)
    }

    /// Starts the entry of `digest` (its first name); its `size` bytes follow through `write`.
    pub fn begin_blob(&mut self, digest: &Digest, size: u64) -> io::Result<()> {
        let name = self
            .pending
            .get_mut(digest)
            .and_then(|names| names.pop())
            .ok_or_else(|| io::Error::other(format!("{digest} is not wanted")))?;
        self.out.write_all(header(&name, size)?.as_bytes())?;
        self.current = Some((size, tar_padding(size)));
        Ok(())
    }

    /// Ends the entry of `digest` after all its bytes were written, then writes it under its
    /// other names, if any, from `again` (its bytes from the start, e.g. the verified file).
    pub fn end_blob(&mut self, digest: &Digest, again: &mut File) -> io::Result<()> {
        match self.current.take() {
            Some((0, pad)) => self.out.write_all(&ZEROS[..pad as usize])?,
            Some((left, _)) => {
                return Err(io::Error::other(format!("{digest} is {left} bytes short")));
            }
            None => return Err(io::Error::other("no entry is open")),
        }
        let names = self.pending.remove(digest).unwrap_or_default();
        for name in names {
            again.seek(SeekFrom::Start(0))?;
            let size = again.metadata()?.len();
            self.out.write_all(header(&name, size)?.as_bytes())?;
            let copied = io::copy(&mut again.take(size), &mut self.out)?;
            if copied != size {
                return Err(io::Error::other(format!(
                    "{digest} shrank while being read"
                )));
            }
            self.out.write_all(&ZEROS[..tar_padding(size) as usize])?;
        }
        Ok(())
    }

    /// Writes `manifest.json` and the end of the tar; fails if a wanted blob was not written.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(missing) = self.pending.keys().next() {
            return Err(io::Error::other(format!("{missing} was never written")));
        }
        if self.current.is_some() {
            return Err(io::Error::other("an entry is still open"));
        }
        let json = serde_json::to_vec(&self.manifest).map_err(io::Error::other)?;
        let size = json.len() as u64;
        self.out
            .write_all(header("manifest.json", size)?.as_bytes())?;
        self.out.write_all(&json)?;
        self.out.write_all(&ZEROS[..tar_padding(size) as usize])?;
        // The end of a tar: two zero blocks.
        self.out.write_all(&ZEROS)?;
        self.out.write_all(&ZEROS)?;
        Ok(self.out)
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

const ZEROS: [u8; 512] = [0; 512];

fn config_name(digest: &Digest) -> String {
    format!("{}.json", digest.hex())
}

fn layer_name(digest: &Digest) -> String {
    format!("{}/layer.tar", digest.hex())
}

fn header(name: &str, size: u64) -> io::Result<tar::Header> {
    // GNU headers: `docker load` accepts the long layer paths they allow.
    super::archive::regular_file_header(tar::Header::new_gnu(), name, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(builder: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        builder
            .append(&header(name, data.len() as u64).expect("header"), data)
            .expect("append");
    }

    /// A save tar shaped like Docker 20.10's, with the second image's shared layer as a symlink.
    fn save_tar() -> Vec<u8> {
        let config_a = b"{\"a\":1}";
        let config_b = b"{\"b\":1}";
        let (ha, hb) = (Digest::of(config_a), Digest::of(config_b));
        let manifest = format!(
            "[{{\"Config\":\"{}.json\",\"RepoTags\":[\"reg:5000/app:1\"],\"Layers\":[\"l1/layer.tar\"]}},\
             {{\"Config\":\"{}.json\",\"RepoTags\":[\"other:latest\"],\"Layers\":[\"l2/layer.tar\",\"l3/layer.tar\"]}},\
             {{\"Config\":\"{}.json\",\"RepoTags\":null,\"Layers\":[]}}]",
            ha.hex(),
            hb.hex(),
            ha.hex()
        );
        let mut builder = tar::Builder::new(Vec::new());
        append(&mut builder, &format!("{}.json", ha.hex()), config_a);
        append(&mut builder, &format!("{}.json", hb.hex()), config_b);
        append(&mut builder, "l1/VERSION", b"1.0");
        append(&mut builder, "l1/layer.tar", b"base layer");
        let mut link = tar::Header::new_gnu();
        link.set_path("l2/layer.tar").expect("path");
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_link_name("../l1/layer.tar").expect("link");
        link.set_size(0);
        link.set_cksum();
        builder.append(&link, &b""[..]).expect("link");
        append(&mut builder, "l3/layer.tar", b"top layer");
        append(&mut builder, "manifest.json", manifest.as_bytes());
        builder.into_inner().expect("tar")
    }

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
        let ingested =
            ingest_save(&store, &lock, &mut save_tar().as_slice(), 9, &mut hook).expect("ingest");
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
        assert_eq!(ingest_into(&store, &lock, &save_tar()).len(), 2);
        assert_eq!(store.blob_sizes().expect("sizes").len(), 4);
        assert_eq!(std::fs::read_dir(store.tmp_dir()).expect("tmp").count(), 0);
    }

    #[test]
    fn save_tars_split_into_shared_blobs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let lock = store.lock(|_| {}).expect("lock");
        let images = ingest_into(&store, &lock, &save_tar());
        assert_eq!(images.len(), 2, "the untagged image is skipped");
        assert_eq!(images[0].name, "reg:5000/app");
        assert_eq!(
            images[1].layers[0], images[0].layers[0],
            "the symlinked layer is shared"
        );
        assert_eq!(images[1].layers[1], Digest::of(b"top layer"));
        assert_eq!(store.blob_sizes().expect("sizes").len(), 4);
        // Saving again adds nothing.
        let mut present = 0;
        let mut hook = |blob: &StagedBlob| present += usize::from(blob.open_staged().is_none());
        let again =
            ingest_save(&store, &lock, &mut save_tar().as_slice(), 9, &mut hook).expect("again");
        assert_eq!(present, 4, "blobs the store has are not staged");
        assert_eq!(store.adopt_staged(again.staged, &lock).expect("adopt"), 0);
        assert_eq!(store.blob_sizes().expect("sizes").len(), 4);
    }

    #[test]
    fn load_tars_name_every_blob_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let lock = store.lock(|_| {}).expect("lock");
        let images = ingest_into(&store, &lock, &save_tar());
        let mut out = Vec::new();
        write_load(&store, &images, &mut out).expect("write");
        let mut archive = tar::Archive::new(out.as_slice());
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names.last().map(String::as_str), Some("manifest.json"));
        assert_eq!(names.len(), 1 + 2 + 2);
        // And it reads back as the same images.
        assert_eq!(ingest_into(&store, &lock, &out), images);
    }

    fn image(config: &[u8], layers: &[&[u8]]) -> ImageEntry {
        ImageEntry {
            name: "app".into(),
            tags: vec!["app:1".into()],
            inputs_digest: None,
            config: Digest::of(config),
            layers: layers.iter().map(|l| Digest::of(l)).collect(),
            last_used: 0,
            size: 0,
        }
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
    fn a_load_tar_streamed_blob_by_blob_names_the_images_only_at_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The layer's bytes are also the config's: it goes in under both names.
        let shared: &[u8] = b"both";
        let other: &[u8] = b"another layer";
        let images = [image(shared, &[shared, other])];
        let mut tar = LoadTar::new(&images, Vec::new());
        let mut wanted = tar.wanted();
        wanted.sort_by_key(|d| *d != Digest::of(other));
        for digest in wanted {
            let bytes = if digest == Digest::of(shared) {
                shared
            } else {
                other
            };
            let path = dir.path().join(digest.hex());
            std::fs::write(&path, bytes).expect("staged");
            tar.begin_blob(&digest, bytes.len() as u64).expect("begin");
            let (head, tail) = bytes.split_at(2);
            tar.write_all(head).expect("write");
            tar.write_all(tail).expect("write");
            tar.end_blob(&digest, &mut File::open(&path).expect("open"))
                .expect("end");
        }
        let out = tar.finish().expect("finish");
        let got = entries(&out);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        let (hs, ho) = (Digest::of(shared), Digest::of(other));
        assert_eq!(names.len(), 4, "{names:?}");
        assert_eq!(names[0], format!("{}/layer.tar", ho.hex()));
        assert!(names.contains(&format!("{}.json", hs.hex()).as_str()));
        assert!(names.contains(&format!("{}/layer.tar", hs.hex()).as_str()));
        assert_eq!(names[3], "manifest.json");
        for (name, bytes) in &got[..3] {
            let expected = if name.starts_with(ho.hex()) {
                other
            } else {
                shared
            };
            assert_eq!(bytes, expected, "{name}");
        }
        let manifest: Vec<SaveManifestEntry> = serde_json::from_slice(&got[3].1).expect("manifest");
        assert_eq!(manifest[0].layers.len(), 2);
        assert_eq!(manifest[0].repo_tags, Some(vec!["app:1".to_string()]));
    }

    #[test]
    fn a_load_tar_refuses_short_long_and_missing_blobs() {
        let blob: &[u8] = b"layer";
        let images = [image(b"config", &[blob])];
        let digest = Digest::of(blob);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("staged");
        std::fs::write(&path, blob).expect("staged");

        let mut tar = LoadTar::new(&images, Vec::new());
        tar.begin_blob(&digest, 5).expect("begin");
        assert!(
            tar.write_all(b"layer!").is_err(),
            "more than the header says"
        );

        let mut tar = LoadTar::new(&images, Vec::new());
        tar.begin_blob(&digest, 5).expect("begin");
        tar.write_all(b"lay").expect("write");
        let short = tar.end_blob(&digest, &mut File::open(&path).expect("open"));
        assert!(short.is_err(), "fewer bytes than the header says");

        let mut tar = LoadTar::new(&images, Vec::new());
        assert!(tar.begin_blob(&Digest::of(b"unknown"), 1).is_err());
        tar.begin_blob(&digest, 5).expect("begin");
        tar.write_all(blob).expect("write");
        tar.end_blob(&digest, &mut File::open(&path).expect("open"))
            .expect("end");
        assert!(tar.finish().is_err(), "the config was never written");
    }

    #[test]
    fn malformed_save_streams_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let lock = store.lock(|_| {}).expect("lock");
        let mut no_manifest = tar::Builder::new(Vec::new());
        append(&mut no_manifest, "l1/layer.tar", b"x");
        let no_manifest = no_manifest.into_inner().expect("tar");
        let mut bad_json = tar::Builder::new(Vec::new());
        append(&mut bad_json, "manifest.json", b"{");
        let bad_json = bad_json.into_inner().expect("tar");
        let mut dangling = tar::Builder::new(Vec::new());
        append(
            &mut dangling,
            "manifest.json",
            b"[{\"Config\":\"x.json\",\"RepoTags\":[\"a:1\"],\"Layers\":[]}]",
        );
        let dangling = dangling.into_inner().expect("tar");
        for (case, bytes) in [
            ("no manifest", no_manifest),
            ("bad json", bad_json),
            ("dangling config", dangling),
            ("not a tar", vec![1u8; 700]),
        ] {
            assert!(
                matches!(
                    ingest_save(&store, &lock, &mut bytes.as_slice(), 0, &mut |_| {}),
                    Err(CacheError::SaveFormat(_))
                ),
                "{case}"
            );
        }
    }

    #[test]
    fn repository_strips_the_tag_not_the_port() {
        assert_eq!(repository("reg:5000/a/b:tag"), "reg:5000/a/b");
        assert_eq!(repository("reg:5000/a/b"), "reg:5000/a/b");
        assert_eq!(repository("busybox:latest"), "busybox");
        assert_eq!(
            resolve_link("l2/layer.tar", "../l1/layer.tar"),
            "l1/layer.tar"
        );
    }
}
