//! The `docker save` / `docker load` tar format, on the store's side.
//!
//! Saving splits the daemon's tar into blobs: each image config (`<id>.json`) and each layer
//! (`<dir>/layer.tar`, the uncompressed layer, whose digest is its diff id), streamed straight
//! into the store, which keeps only what it lacks. `manifest.json` then says which config and
//! layers make each tagged image. Loading writes the reverse: a minimal tar the daemon accepts
//! (`manifest.json`, the configs, one `<hex>/layer.tar` per layer), streamed from the store.
//!
//! The daemon's tar is trusted only as far as needed: names are looked up, never used as paths,
//! and every blob is addressed by the digest of its bytes.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use super::CacheError;
use super::digest::Digest;
use super::lock::StoreLock;
use super::store::{ImageEntry, Store};

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

/// Reads a `docker save` stream into the store and returns an index entry per tagged image
/// (with `last_used` = `now`, no inputs digest). The index itself is not changed.
pub fn ingest_save(
    store: &Store,
    lock: &StoreLock,
    reader: &mut dyn Read,
    now: u64,
) -> Result<Vec<ImageEntry>, CacheError> {
    let format = |m: String| CacheError::SaveFormat(m);
    let mut archive = tar::Archive::new(reader);
    let mut blobs: BTreeMap<String, (Digest, u64)> = BTreeMap::new();
    let mut links: BTreeMap<String, String> = BTreeMap::new();
    let mut manifest = None;
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
            let stored = store.add_blob(&mut entry, lock)?;
            blobs.insert(path, (stored.digest, stored.size));
        }
    }
    let manifest = manifest.ok_or_else(|| format("no manifest.json".into()))?;
    manifest
        .iter()
        .filter_map(|image| image_entry(image, &blobs, &links, now).transpose())
        .collect()
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
    let manifest: Vec<SaveManifestEntry> = images
        .iter()
        .map(|image| SaveManifestEntry {
            config: format!("{}.json", image.config.hex()),
            repo_tags: Some(image.tags.clone()),
            layers: image
                .layers
                .iter()
                .map(|l| format!("{}/layer.tar", l.hex()))
                .collect(),
        })
        .collect();
    let mut files: BTreeMap<String, &Digest> = BTreeMap::new();
    for image in images {
        files.insert(format!("{}.json", image.config.hex()), &image.config);
        for layer in &image.layers {
            files.insert(format!("{}/layer.tar", layer.hex()), layer);
        }
    }
    let mut builder = tar::Builder::new(out);
    let json = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
    builder.append(
        &header("manifest.json", json.len() as u64)?,
        json.as_slice(),
    )?;
    for (name, digest) in files {
        let file = store.open_blob(digest).map_err(io::Error::other)?;
        let size = file.metadata()?.len();
        builder.append(&header(&name, size)?, file.take(size))?;
    }
    builder.into_inner()?.flush()
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

    #[test]
    fn save_tars_split_into_shared_blobs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let lock = store.lock(|_| {}).expect("lock");
        let images = ingest_save(&store, &lock, &mut save_tar().as_slice(), 9).expect("ingest");
        assert_eq!(images.len(), 2, "the untagged image is skipped");
        assert_eq!(images[0].name, "reg:5000/app");
        assert_eq!(
            images[1].layers[0], images[0].layers[0],
            "the symlinked layer is shared"
        );
        assert_eq!(images[1].layers[1], Digest::of(b"top layer"));
        assert_eq!(store.blob_sizes().expect("sizes").len(), 4);
        // Saving again adds nothing.
        ingest_save(&store, &lock, &mut save_tar().as_slice(), 9).expect("again");
        assert_eq!(store.blob_sizes().expect("sizes").len(), 4);
    }

    #[test]
    fn load_tars_name_every_blob_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let lock = store.lock(|_| {}).expect("lock");
        let images = ingest_save(&store, &lock, &mut save_tar().as_slice(), 9).expect("ingest");
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
        assert_eq!(names[0], "manifest.json");
        assert_eq!(names.len(), 1 + 2 + 2);
        // And it reads back as the same images.
        let again = ingest_save(&store, &lock, &mut out.as_slice(), 9).expect("re-ingest");
        assert_eq!(again, images);
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
                    ingest_save(&store, &lock, &mut bytes.as_slice(), 0),
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
