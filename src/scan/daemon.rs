//! The daemon's images: inspected first, and read through `docker save` only when the scan
//! cache does not already know every layer of every platform of the image id.

use super::ScanError;
use super::cache::{CachedImage, ScanCache};
use super::source::{ReadImage, ReadStats, read_save_stream};
use crate::cache::digest::Digest;
use crate::engine::{DockerEngine, Engine};

/// Every platform of the daemon's image `reference`.
pub async fn read_from_daemon(
    engine: &DockerEngine,
    reference: &str,
    cache: Option<&ScanCache>,
    stats: &mut ReadStats,
) -> Result<Vec<ReadImage>, ScanError> {
    let info = engine
        .inspect(reference)
        .await?
        .ok_or_else(|| ScanError::NoSuchImage {
            reference: reference.to_owned(),
        })?;
    let id: Option<Digest> = info.id.parse().ok();
    if let Some(known) = from_cache(cache, id.as_ref(), reference, stats) {
        return Ok(known);
    }
    save_from_daemon(engine, reference, id.as_ref(), cache, stats).await
}

/// Every platform of the daemon's image `reference` (whose engine id is `id`), read through
/// `docker save` whatever the scan cache knows.
pub async fn save_from_daemon(
    engine: &DockerEngine,
    reference: &str,
    id: Option<&Digest>,
    cache: Option<&ScanCache>,
    stats: &mut ReadStats,
) -> Result<Vec<ReadImage>, ScanError> {
    let name = reference.to_owned();
    let (read, streamed) = engine
        .save_images(&[reference.to_owned()], move |reader| {
            let mut streamed = ReadStats::default();
            read_save_stream(reader, &name, &mut streamed).map(|read| (read, streamed))
        })
        .await?
        .map_err(|source| ScanError::Archive {
            what: format!("docker save {reference}"),
            source,
        })?;
    stats.layers_read += streamed.layers_read;
    Ok(as_engine_image(read, id, reference, cache))
}

/// The platforms of the engine's image `id`, read elsewhere (a save stream, the layer store):
/// named `reference`, known by the engine's id too (the build origins are filed under it), and
/// remembered in the scan cache so a later scan of `id` reads no layer.
pub fn as_engine_image(
    read: Vec<ReadImage>,
    id: Option<&Digest>,
    reference: &str,
    cache: Option<&ScanCache>,
) -> Vec<ReadImage> {
    let read: Vec<ReadImage> = read
        .into_iter()
        .map(|mut image| {
            image.target.reference = reference.to_owned();
            if let Some(id) = id
                && !image.target.ids().contains(&id)
            {
                image.target.other_ids.push(id.clone());
            }
            image
        })
        .collect();
    if let (Some(cache), Some(id)) = (cache, id) {
        let targets = read.iter().map(|r| r.target.clone()).collect();
        let _ = cache.put_image(id, &CachedImage { targets });
    }
    read
}

/// The image from the cache alone, when it knows the id and every layer.
pub fn from_cache(
    cache: Option<&ScanCache>,
    id: Option<&Digest>,
    reference: &str,
    stats: &mut ReadStats,
) -> Option<Vec<ReadImage>> {
    let cache = cache?;
    let known = cache.image(id?)?;
    let mut read = Vec::new();
    for mut target in known.targets {
        let layers: Option<Vec<_>> = target
            .config
            .rootfs
            .diff_ids
            .iter()
            .map(|d| cache.layer(d))
            .collect();
        let layers = layers?;
        stats.layers_cached += layers.len();
        target.reference = reference.to_owned();
        read.push(ReadImage {
            target,
            layers: layers.into_iter().map(Some).collect(),
            warnings: Vec::new(),
        });
    }
    (!read.is_empty()).then_some(read)
}
