//! The binary seeds of the fuzz corpora: cache archives and `docker save` streams, valid and
//! broken, built here from raw tar headers so that the committed bytes can be made again
//! (`cargo test --test integration -- --ignored fuzz::write_binary_seeds`). The uncompressed
//! tars also feed the cache archive property, which mutates them before compressing, so that
//! its mutations reach the tar headers and the manifest rather than dying in the decoder.

use std::io::Write;

use buildopt::cache::archive::{ARCHIVE_VERSION, BlobRef, Manifest};
use buildopt::cache::{Digest, ImageEntry};
use serde_json::json;

/// A tar written header by header: names, types and sizes exactly as given, checksums right.
#[derive(Default)]
pub struct RawTar {
    bytes: Vec<u8>,
}

impl RawTar {
    fn header(&mut self, name: &[u8], kind: u8, size: u64, link: &[u8]) -> &mut Self {
        let mut header = tar::Header::new_old();
        let old = header.as_old_mut();
        let name = &name[..name.len().min(100)];
        let link = &link[..link.len().min(100)];
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
        old.linkflag = [kind];
        header.set_mode(0o644);
        header.set_size(size);
        header.set_mtime(0);
        header.set_cksum();
        self.bytes.extend_from_slice(header.as_bytes());
        self
    }

    fn body(&mut self, data: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(data);
        let padding = (512 - data.len() % 512) % 512;
        self.bytes.extend(std::iter::repeat_n(0u8, padding));
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.header(name.as_bytes(), b'0', data.len() as u64, b"")
            .body(data)
    }

    /// A regular file whose header claims `size` bytes while `data` follows.
    pub fn lying_file(&mut self, name: &str, size: u64, data: &[u8]) -> &mut Self {
        self.header(name.as_bytes(), b'0', size, b"").body(data)
    }

    /// An entry of another type (`2` symlink, `1` hard link, `5` folder, `x` PAX, `L` long name).
    pub fn special(&mut self, name: &str, kind: u8, link: &str, body: &[u8]) -> &mut Self {
        self.header(name.as_bytes(), kind, body.len() as u64, link.as_bytes())
            .body(body)
    }

    pub fn blob(&mut self, data: &[u8]) -> &mut Self {
        self.file(&format!("blobs/sha256/{}", Digest::of(data).hex()), data)
    }

    /// The tar with its two end-of-archive blocks.
    pub fn finish(&self) -> Vec<u8> {
        self.unterminated()
            .into_iter()
            .chain(std::iter::repeat_n(0u8, 1024))
            .collect()
    }

    /// The tar without its end-of-archive blocks.
    pub fn unterminated(&self) -> Vec<u8> {
        self.bytes.clone()
    }
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).expect("zstd")
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

const CONFIG: &[u8] =
    br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
const LAYER: &[u8] = b"layer bytes, not a real tar";

/// `manifest.json` of a cache archive carrying `blobs` (the first is the config) for one image.
fn cache_manifest(blobs: &[&[u8]], sizes_off_by: u64) -> Vec<u8> {
    let digests: Vec<Digest> = blobs.iter().map(|b| Digest::of(b)).collect();
    let images = digests
        .split_first()
        .map(|(config, layers)| ImageEntry {
            name: "app".into(),
            tags: vec!["app:latest".into()],
            inputs_digest: None,
            config: config.clone(),
            layers: layers.to_vec(),
            diff_ids: Vec::new(),
            target: None,
            other_blobs: Vec::new(),
            last_used: 1,
            size: blobs.iter().map(|b| b.len() as u64).sum(),
        })
        .into_iter()
        .collect();
    let manifest = Manifest {
        version: ARCHIVE_VERSION,
        images,
        blobs: blobs
            .iter()
            .zip(&digests)
            .map(|(bytes, digest)| BlobRef {
                digest: digest.clone(),
                size: (bytes.len() as u64).saturating_add(sizes_off_by),
            })
            .collect(),
        history: Default::default(),
    };
    serde_json::to_vec(&manifest).expect("manifest")
}

fn valid_cache_tar() -> RawTar {
    let mut tar = RawTar::default();
    tar.file("manifest.json", &cache_manifest(&[CONFIG, LAYER], 0))
        .blob(CONFIG)
        .blob(LAYER);
    tar
}

/// Uncompressed cache archive tars, valid and broken, by name.
pub fn cache_tars() -> Vec<(&'static str, Vec<u8>)> {
    let manifest = cache_manifest(&[CONFIG, LAYER], 0);
    let mut seeds = vec![
        ("valid", valid_cache_tar().finish()),
        ("empty-manifest", {
            RawTar::default()
                .file("manifest.json", &cache_manifest(&[], 0))
                .finish()
        }),
        ("no-end-blocks", valid_cache_tar().unterminated()),
        ("blob-before-manifest", {
            RawTar::default()
                .blob(CONFIG)
                .file("manifest.json", &manifest)
                .finish()
        }),
        ("manifest-not-json", {
            RawTar::default()
                .file("manifest.json", b"{\"version\":2,")
                .finish()
        }),
        ("manifest-version-1", {
            RawTar::default()
                .file("manifest.json", br#"{"version":1,"images":[],"blobs":[]}"#)
                .finish()
        }),
        ("manifest-unknown-field", {
            RawTar::default()
                .file(
                    "manifest.json",
                    br#"{"version":2,"images":[],"blobs":[],"extra":1}"#,
                )
                .finish()
        }),
        ("blob-missing", {
            RawTar::default()
                .file("manifest.json", &manifest)
                .blob(CONFIG)
                .finish()
        }),
        ("blob-twice", { valid_cache_tar().blob(LAYER).finish() }),
        ("blob-not-declared", {
            valid_cache_tar().blob(b"stowaway").finish()
        }),
        ("blob-digest-mismatch", {
            RawTar::default()
                .file("manifest.json", &manifest)
                .blob(CONFIG)
                .file(
                    &format!("blobs/sha256/{}", Digest::of(LAYER).hex()),
                    b"other",
                )
                .finish()
        }),
        ("declared-size-larger", {
            RawTar::default()
                .file("manifest.json", &cache_manifest(&[CONFIG, LAYER], 1 << 40))
                .blob(CONFIG)
                .blob(LAYER)
                .finish()
        }),
        ("header-size-lies", {
            RawTar::default()
                .file("manifest.json", &manifest)
                .blob(CONFIG)
                .lying_file(
                    &format!("blobs/sha256/{}", Digest::of(LAYER).hex()),
                    1 << 20,
                    LAYER,
                )
                .finish()
        }),
        ("symlink-blob", {
            RawTar::default()
                .file("manifest.json", &manifest)
                .blob(CONFIG)
                .special(
                    &format!("blobs/sha256/{}", Digest::of(LAYER).hex()),
                    b'2',
                    "/etc/passwd",
                    b"",
                )
                .finish()
        }),
        ("pax-header", {
            RawTar::default()
                .special(
                    "././@PaxHeader",
                    b'x',
                    "",
                    b"30 path=blobs/sha256/../../x\n",
                )
                .file("manifest.json", &manifest)
                .finish()
        }),
        ("gnu-long-name", {
            RawTar::default()
                .special("././@LongLink", b'L', "", &[b'a'; 700])
                .file("manifest.json", &manifest)
                .finish()
        }),
        ("path-traversal", {
            valid_cache_tar().file("../../outside", b"x").finish()
        }),
        ("data-after-end", {
            let mut bytes = valid_cache_tar().finish();
            bytes.extend_from_slice(b"trailing data after the end blocks");
            bytes
        }),
    ];
    seeds.push(("folder-entry", {
        let mut tar = valid_cache_tar();
        tar.special("blobs/", b'5', "", b"");
        tar.finish()
    }));
    seeds
}

/// Cache archive files as `cache import` reads them, by file name.
pub fn cache_archives() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = cache_tars()
        .into_iter()
        .map(|(name, tar)| (format!("{name}.tar.zst"), zstd(&tar)))
        .collect();
    let valid = valid_cache_tar().finish();
    let zstd_valid = zstd(&valid);
    let gzip_valid = gzip(&valid);
    let flipped_end = {
        let mut bytes = zstd_valid.clone();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        bytes
    };
    files.extend([
        ("valid.tar.gz".to_owned(), gzip_valid.clone()),
        (
            "truncated.tar.zst".to_owned(),
            zstd_valid[..zstd_valid.len() / 2].to_vec(),
        ),
        ("bad-checksum.tar.zst".to_owned(), flipped_end),
        (
            "gzip-two-members.tar.gz".to_owned(),
            [gzip(&valid[..512]), gzip(&valid[512..])].concat(),
        ),
        (
            "gzip-trailing-garbage.tar.gz".to_owned(),
            [gzip_valid, b"garbage".to_vec()].concat(),
        ),
        ("plain-tar.tar".to_owned(), valid),
        ("empty.tar.zst".to_owned(), Vec::new()),
        (
            "zstd-magic-only.tar.zst".to_owned(),
            vec![0x28, 0xb5, 0x2f, 0xfd],
        ),
    ]);
    files
}

/// A layer tar holding one file.
fn layer(name: &str, content: &[u8]) -> Vec<u8> {
    RawTar::default().file(name, content).finish()
}

fn image_config(layers: &[&[u8]]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| Digest::of(l).to_string()).collect();
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    }))
    .expect("config")
}

fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    json!({ "mediaType": media_type, "digest": Digest::of(bytes).to_string(), "size": bytes.len() })
}

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

fn oci_manifest(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
    let layers: Vec<_> = layers.iter().map(|l| descriptor(LAYER_TYPE, l)).collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": layers,
    }))
    .expect("manifest")
}

fn oci_index(manifests: &[serde_json::Value]) -> Vec<u8> {
    serde_json::to_vec(
        &json!({ "schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": manifests }),
    )
    .expect("index")
}

fn named(mut descriptor: serde_json::Value, name: &str) -> serde_json::Value {
    descriptor["annotations"] = json!({
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": "1",
    });
    descriptor
}

fn legacy_save(manifest: serde_json::Value, extra: impl FnOnce(&mut RawTar)) -> Vec<u8> {
    let (base, top) = (layer("base", b"base"), layer("top", b"top"));
    let mut tar = RawTar::default();
    tar.file(
        &format!("{}.json", Digest::of(&image_config(&[&base])).hex()),
        &image_config(&[&base]),
    )
    .file(
        &format!("{}.json", Digest::of(&image_config(&[&base, &top])).hex()),
        &image_config(&[&base, &top]),
    )
    .file("l1/layer.tar", &base)
    .special("l2/layer.tar", b'2', "../l1/layer.tar", b"")
    .file("l3/layer.tar", &top)
    .file("repositories", b"{}");
    extra(&mut tar);
    tar.file("manifest.json", manifest.to_string().as_bytes())
        .finish()
}

fn legacy_listing() -> serde_json::Value {
    let base = layer("base", b"base");
    let top = layer("top", b"top");
    let (a, b) = (
        Digest::of(&image_config(&[&base])),
        Digest::of(&image_config(&[&base, &top])),
    );
    json!([
        { "Config": format!("{}.json", a.hex()), "RepoTags": ["reg:5000/app:1"], "Layers": ["l1/layer.tar"] },
        { "Config": format!("{}.json", b.hex()), "RepoTags": ["other:latest"], "Layers": ["l2/layer.tar", "l3/layer.tar"] },
        { "Config": format!("{}.json", a.hex()), "RepoTags": null, "Layers": ["l1/layer.tar"] },
    ])
}

/// An OCI layout save; `index` is what `index.json` lists, `listing` `manifest.json` (if any).
fn oci_save(
    blobs: &[&[u8]],
    index: &[serde_json::Value],
    listing: Option<serde_json::Value>,
) -> Vec<u8> {
    let mut tar = RawTar::default();
    for blob in blobs {
        tar.blob(blob);
    }
    tar.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .file("index.json", &oci_index(index));
    if let Some(listing) = listing {
        tar.file("manifest.json", listing.to_string().as_bytes());
    }
    tar.finish()
}

fn blob_path(bytes: &[u8]) -> String {
    format!("blobs/sha256/{}", Digest::of(bytes).hex())
}

/// `docker save` streams, valid and broken, by file name.
pub fn docker_saves() -> Vec<(String, Vec<u8>)> {
    let (base, top) = (layer("base", b"base"), layer("top", b"top"));
    let config = image_config(&[&base, &top]);
    let manifest = oci_manifest(&config, &[&base, &top]);
    let listing = json!([{ "Config": blob_path(&config), "RepoTags": ["app:1"], "Layers": [blob_path(&base), blob_path(&top)] }]);
    let manifest_ref = named(
        descriptor(MANIFEST_TYPE, &manifest),
        "docker.io/library/app:1",
    );
    let attestation_config = br#"{"architecture":"unknown","os":"unknown"}"#.to_vec();
    let attestation = oci_manifest(&attestation_config, &[]);
    let mut attestation_ref = descriptor(MANIFEST_TYPE, &attestation);
    attestation_ref["annotations"] = json!({ "vnd.docker.reference.type": "attestation-manifest" });
    attestation_ref["platform"] = json!({ "architecture": "unknown", "os": "unknown" });
    let image_index = oci_index(&[
        descriptor(MANIFEST_TYPE, &manifest),
        attestation_ref,
        json!({ "mediaType": MANIFEST_TYPE, "digest": format!("sha256:{}", "ab".repeat(32)), "size": 1, "platform": { "architecture": "arm64", "os": "linux" } }),
    ]);
    let image_index_ref = named(descriptor(INDEX_TYPE, &image_index), "app:1");
    let all: [&[u8]; 4] = [&config, &base, &top, &manifest];
    let self_index = {
        // An index that names itself cannot be built (its digest would change); one that names
        // a second index naming the first is the nearest cycle a stream can hold.
        let inner = oci_index(&[descriptor(MANIFEST_TYPE, &manifest)]);
        let outer = oci_index(&[
            descriptor(INDEX_TYPE, &inner),
            descriptor(INDEX_TYPE, &inner),
        ]);
        oci_save(
            &[&config, &base, &top, &manifest, &inner, &outer],
            &[
                descriptor(INDEX_TYPE, &outer),
                descriptor(INDEX_TYPE, &inner),
            ],
            None,
        )
    };
    vec![
        ("legacy.tar".into(), legacy_save(legacy_listing(), |_| {})),
        (
            "classic-oci.tar".into(),
            oci_save(
                &all,
                std::slice::from_ref(&manifest_ref),
                Some(listing.clone()),
            ),
        ),
        (
            "containerd-index.tar".into(),
            oci_save(
                &[
                    &config,
                    &base,
                    &top,
                    &manifest,
                    &attestation_config,
                    &attestation,
                    &image_index,
                ],
                &[
                    image_index_ref.clone(),
                    named(descriptor(INDEX_TYPE, &image_index), "reg:5000/app:latest"),
                ],
                Some(listing.clone()),
            ),
        ),
        (
            "oci-index-only.tar".into(),
            oci_save(&all, std::slice::from_ref(&manifest_ref), None),
        ),
        ("nested-indexes.tar".into(), self_index),
        (
            "index-names-missing-blob.tar".into(),
            oci_save(&all[..3], std::slice::from_ref(&manifest_ref), None),
        ),
        ("blob-name-mismatch.tar".into(), {
            let mut tar = RawTar::default();
            tar.file(&blob_path(&config), b"not the config")
                .file("manifest.json", listing.to_string().as_bytes());
            tar.finish()
        }),
        (
            "layer-count-mismatch.tar".into(),
            legacy_save(
                json!([{ "Config": format!("{}.json", Digest::of(&image_config(&[&base])).hex()), "RepoTags": ["a:1"], "Layers": ["l1/layer.tar", "l3/layer.tar"] }]),
                |_| {},
            ),
        ),
        (
            "symlink-loop.tar".into(),
            legacy_save(
                json!([{ "Config": format!("{}.json", Digest::of(&image_config(&[&base])).hex()), "RepoTags": ["a:1"], "Layers": ["x/layer.tar"] }]),
                |tar| {
                    tar.special("x/layer.tar", b'2', "../y/layer.tar", b"")
                        .special("y/layer.tar", b'2', "../x/layer.tar", b"");
                },
            ),
        ),
        (
            "symlink-escapes.tar".into(),
            legacy_save(
                json!([{ "Config": format!("{}.json", Digest::of(&image_config(&[&base])).hex()), "RepoTags": ["a:1"], "Layers": ["x/layer.tar"] }]),
                |tar| {
                    tar.special("x/layer.tar", b'2', "../../../../etc/passwd", b"");
                },
            ),
        ),
        (
            "manifest-wrong-types.tar".into(),
            legacy_save(
                json!([{ "Config": 7, "RepoTags": "app:1", "Layers": {} }]),
                |_| {},
            ),
        ),
        (
            "manifest-config-missing.tar".into(),
            legacy_save(
                json!([{ "Config": "nothere.json", "RepoTags": [], "Layers": [] }]),
                |_| {},
            ),
        ),
        (
            "neither-manifest-nor-index.tar".into(),
            RawTar::default().file("repositories", b"{}").finish(),
        ),
        ("empty-tar.tar".into(), vec![0u8; 1024]),
        (
            "not-a-tar.tar".into(),
            b"this is not a tar at all\n".to_vec(),
        ),
        ("header-size-lies.tar".into(), {
            let mut tar = RawTar::default();
            tar.lying_file("manifest.json", 1 << 30, b"[]");
            tar.finish()
        }),
        (
            "hardlink-and-folders.tar".into(),
            legacy_save(legacy_listing(), |tar| {
                tar.special("l4/", b'5', "", b"").special(
                    "l4/layer.tar",
                    b'1',
                    "l1/layer.tar",
                    b"",
                );
            }),
        ),
    ]
}
