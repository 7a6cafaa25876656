//! Image archives as the Docker Engine writes and reads them (`docker save`, `docker load`):
//! the legacy layout and the OCI image layout, compressed layers or not.
//!
//! - `layout.rs`: the JSON documents (`manifest.json`, `index.json`, indexes, manifests, the
//!   config's layer list) and reference forms;
//! - `reader.rs`: which blobs of a save stream make each image, every blob handed to the caller
//!   as it streams by (the cache stores them; a scanner can read them);
//! - `writer.rs`: a load stream written blob by blob that any engine loads: an OCI layout with a
//!   `manifest.json` beside `index.json`, so the containerd image store keeps each image's id
//!   and older engines read the `manifest.json`.

#[cfg(test)]
pub(crate) mod fixtures;
pub mod layout;
pub mod reader;
pub mod writer;

pub use layout::{Descriptor, SaveManifestEntry};
pub use reader::{SavedImage, read_save};
pub use writer::LoadTar;

use crate::cache::digest::Digest;

/// A save stream that is not what the engine should have written.
#[derive(Debug, thiserror::Error)]
pub enum SaveFormatError {
    #[error("not a readable tar: {0}")]
    Tar(String),
    #[error("neither manifest.json nor index.json")]
    NoManifest,
    #[error("{0} is named but not in the tar")]
    Missing(String),
    #[error("{0} is larger than any image document should be")]
    TooLarge(String),
    #[error("{path}: {message}")]
    Json { path: String, message: String },
    #[error("{path} holds bytes whose digest is {actual}")]
    DigestMismatch { path: String, actual: Digest },
    #[error("config {config} lists {diff_ids} layer diff ids for {layers} layers")]
    LayerCount {
        config: Digest,
        diff_ids: usize,
        layers: usize,
    },
}

impl SaveFormatError {
    fn json(path: &str, error: serde_json::Error) -> Self {
        Self::Json {
            path: path.to_owned(),
            message: error.to_string(),
        }
    }
}
