//! After the build: what the run's images are made of.
//!
//! Every built or reused image's build origin (its Dockerfile's stage chain) goes to the scan
//! cache under the image's id, so a later scan of it, here or after a restore, names the
//! Dockerfile line of each layer; the workspace image → reference map lets `scan --all` find
//! them. With scanning on, each image is then inventoried into the report, its layers read
//! from the scan cache where they are known.

use std::collections::BTreeMap;

use crate::cache::digest::Digest;
use crate::engine::DockerEngine;
use crate::report::model::{ImageResult, RunReport, RunScan};
use crate::scan::cache::{BuiltImage, ScanCache};
use crate::scan::daemon::read_from_daemon;
use crate::scan::inventories;
use crate::scan::origin::BuildOrigin;
use crate::scan::source::ReadStats;
use crate::workspace::Workspace;

/// Records each built or reused image's origin and reference in `cache`. A cache that cannot
/// be written only loses the Dockerfile lines of a later scan: nothing fails.
pub fn record_origins(report: &RunReport, workspace: &Workspace, cache: &ScanCache) {
    let mut built = BTreeMap::new();
    for (image, id, reference) in made_images(report) {
        let Some(def) = workspace.images.iter().find(|i| i.def.name == image.name) else {
            continue;
        };
        let origin = BuildOrigin::of_build(
            &def.def.dockerfile,
            &def.dockerfile,
            def.def.target.as_deref(),
            &def.def.args,
        );
        if let Ok(origin) = origin {
            let _ = cache.put_origin(&id, &origin);
        }
        built.insert(
            image.name.clone(),
            BuiltImage {
                reference,
                id: id.to_string(),
            },
        );
    }
    if !built.is_empty() {
        let _ = cache.put_built(&built);
    }
}

/// The inventories of the run's built and reused images.
pub async fn scan_images(
    engine: &DockerEngine,
    report: &RunReport,
    cache: Option<&ScanCache>,
) -> RunScan {
    let mut stats = ReadStats::default();
    let mut read = Vec::new();
    let mut errors = Vec::new();
    for (image, _, reference) in made_images(report) {
        match read_from_daemon(engine, &reference, cache, &mut stats).await {
            Ok(images) => read.extend(images),
            Err(error) => errors.push(format!("{}: {error}", image.name)),
        }
    }
    RunScan {
        images: inventories(read, cache),
        layers_read: stats.layers_read,
        layers_cached: stats.layers_cached,
        images_matched: 0,
        findings_reused: 0,
        policy: None,
        base: None,
        base_unknown: Vec::new(),
        unchanged: Vec::new(),
        errors,
        warnings: Vec::new(),
    }
}

/// Each built or reused image with its id and the reference to read it by (its first tag).
fn made_images(
    report: &RunReport,
) -> impl Iterator<Item = (&crate::report::model::ImageReport, Digest, String)> {
    report.images.iter().filter_map(|image| {
        let made = matches!(image.result, ImageResult::Built | ImageResult::Reused);
        let id: Digest = image.image_id.as_deref()?.parse().ok()?;
        let reference = image.tags.first()?.clone();
        made.then_some((image, id, reference))
    })
}
