//! `buildopt scan`: what is inside an image, read without running it.
//!
//! - `source.rs`: where images come from (a save stream, an OCI layout folder, the store) and
//!   which layers must be read; `daemon.rs`: the daemon's images, through `docker save`;
//! - `tar_stream.rs`: layer tars read entry by entry, extended headers bounded;
//! - `layer.rs`: one layer's package files and deletions, keyed by its diff ID;
//! - `squash.rs`: the layers applied in order, whiteouts and all: the final image's packages;
//! - `origin.rs`: which Dockerfile line made each layer, recorded at build time;
//! - `image.rs`: one platform's config, and its inventory put together;
//! - `cache.rs`: layer inventories by diff ID, daemon images by id, build origins;
//! - `package.rs`: what a cataloger finds in one file; `catalog/`: the catalogers;
//! - `model.rs`: the versioned inventory every renderer formats;
//! - `version/`: each ecosystem's version order;
//! - `osv.rs`: OSV records, and whether an installed version is affected by one;
//! - `purl.rs`: the package URL of each package found, in the forms syft writes;
//! - `policy.rs`: the report level, the gate and the exit code they come to; `ignore.rs`: the
//!   ignore files (`.buildoptignore`, `.trivyignore`);
//! - `external.rs`: Trivy or Grype run on the same image, their JSON read into findings;
//! - `matcher.rs`: an image's packages matched against OSV records, one finding per issue and
//!   installed package; `severity.rs`: CVSS base scores and the level of a finding;
//! - `vulnerabilities.rs`: matching, other scanners' findings, ignore files, level and gate.
//! - `vulndb/`: the vulnerability database: OSV archives downloaded and indexed by package.

pub mod cache;
pub mod catalog;
pub mod daemon;
pub mod external;
pub mod ignore;
pub mod image;
pub mod layer;
pub mod matcher;
pub mod model;
pub mod origin;
pub mod osv;
pub mod package;
pub mod policy;
pub mod purl;
pub mod severity;
pub mod source;
pub mod squash;
pub mod tar_stream;
pub mod version;
pub mod vulndb;
pub mod vulnerabilities;

use std::path::PathBuf;

pub use package::{FileFacts, Found, OsRelease, PackageType};

use self::cache::ScanCache;
use self::image::assemble;
use self::model::ImageInventory;
use self::origin::layer_origins;
use self::source::ReadImage;
use crate::cache::digest::Digest;
use crate::engine::EngineError;
use crate::image_archive::SaveFormatError;

/// Why a scan of one image could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("no image {reference:?} on the daemon")]
    NoSuchImage { reference: String },
    #[error("no image {reference:?} in the layer store at {store}")]
    NotInStore { reference: String, store: PathBuf },
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Archive {
        what: String,
        source: SaveFormatError,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("nothing to scan: name images with --image, --input or --from-cache, or use --all")]
    NothingAsked,
    #[error("--all scans the images the last build made, and no build is recorded here yet")]
    NothingBuilt,
    #[error("the vulnerability database cannot be read: {message}")]
    Database { message: String },
    #[error(transparent)]
    External(#[from] external::ExternalError),
    #[error(transparent)]
    Ignore(#[from] ignore::IgnoreError),
}

/// The inventories of images read from a source: layer inventories go to the cache (when
/// complete) and each image's layers get their origins from the cache's build records.
pub fn inventories(read: Vec<ReadImage>, cache: Option<&ScanCache>) -> Vec<ImageInventory> {
    read.into_iter()
        .map(|image| {
            if let Some(cache) = cache {
                for layer in image.layers.iter().flatten() {
                    // A cache that cannot be written costs the next scan time, nothing else.
                    let _ = cache.put_layer(layer);
                }
            }
            let build = cache.and_then(|c| c.origin(&image.target.ids()));
            let origins = layer_origins(&image.target.config, build.as_ref());
            assemble(&image.target, &image.layers, &origins, image.warnings)
        })
        .collect()
}

/// One thing to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanRequest {
    /// An image on the daemon.
    Daemon(String),
    /// A `docker save` tarball (plain or gzip) or an OCI image layout folder.
    Input(PathBuf),
    /// An image of the layer store at the given root.
    FromCache { reference: String, store: PathBuf },
}

/// Reads a request that needs no daemon: a file, a folder or the store.
pub fn read_offline(
    request: &ScanRequest,
    cache: Option<&ScanCache>,
    stats: &mut source::ReadStats,
) -> Result<Vec<ReadImage>, ScanError> {
    match request {
        ScanRequest::Daemon(reference) => Err(ScanError::NoSuchImage {
            reference: reference.clone(),
        }),
        ScanRequest::Input(path) if path.is_dir() => source::read_layout_dir(path, cache, stats),
        ScanRequest::Input(path) => read_archive_file(path, stats),
        ScanRequest::FromCache { reference, store } => {
            read_from_store(reference, store, cache, stats)
        }
    }
}

/// A `docker save` tarball, plain or gzip-compressed.
fn read_archive_file(
    path: &std::path::Path,
    stats: &mut source::ReadStats,
) -> Result<Vec<ReadImage>, ScanError> {
    use std::io::{BufRead, BufReader};
    let io_error = |source| ScanError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut buffered = BufReader::with_capacity(1 << 20, file);
    let gzipped = buffered
        .fill_buf()
        .map_err(io_error)?
        .starts_with(&[0x1f, 0x8b]);
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let archive_error = |source| ScanError::Archive {
        what: path.display().to_string(),
        source,
    };
    let read = if gzipped {
        let mut decoder = flate2::bufread::MultiGzDecoder::new(buffered);
        source::read_save_stream(&mut decoder, &name, stats).map_err(archive_error)?
    } else {
        source::read_save_stream(&mut buffered, &name, stats).map_err(archive_error)?
    };
    if read.is_empty() {
        return Err(ScanError::Input {
            path: path.to_path_buf(),
            message: "holds no image".into(),
        });
    }
    Ok(read)
}

/// The store's image whose id on either image store is `id` (config digest or target digest),
/// read from its blobs: a run reads a restored or reused image here rather than through
/// `docker save`. `None` when the store does not hold it or cannot be read.
pub fn read_store_image(
    root: &std::path::Path,
    id: &Digest,
    reference: &str,
    cache: Option<&ScanCache>,
    stats: &mut source::ReadStats,
) -> Option<Vec<ReadImage>> {
    if !root.is_dir() {
        return None;
    }
    let store = crate::cache::Store::open(root).ok()?;
    let index = store.read_index().ok()?;
    let entry = index.images.iter().find(|entry| {
        entry.config == *id || entry.target.as_ref().is_some_and(|t| t.digest == *id)
    })?;
    let read = source::read_store_entry(&store, entry, reference, cache, stats).ok()?;
    // A blob the store lost or could not read: the daemon has the whole image.
    let complete = read
        .iter()
        .all(|image| image.layers.iter().all(Option::is_some));
    complete.then_some(read)
}

fn read_from_store(
    reference: &str,
    root: &std::path::Path,
    cache: Option<&ScanCache>,
    stats: &mut source::ReadStats,
) -> Result<Vec<ReadImage>, ScanError> {
    let not_found = || ScanError::NotInStore {
        reference: reference.to_owned(),
        store: root.to_path_buf(),
    };
    if !root.is_dir() {
        return Err(not_found());
    }
    let store = crate::cache::Store::open(root).map_err(|e| ScanError::Input {
        path: root.to_path_buf(),
        message: e.to_string(),
    })?;
    let index = store.read_index().map_err(|e| ScanError::Input {
        path: store.index_path(),
        message: e.to_string(),
    })?;
    let entry = source::store_entry(&index.images, reference).ok_or_else(not_found)?;
    source::read_store_entry(&store, entry, reference, cache, stats)
}
