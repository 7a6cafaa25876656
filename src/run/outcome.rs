//! Turning the scheduler's outcomes into the RunReport's images: what each selected image did
//! (result, steps, sizes, tags, pushed digest, stages) and why each other image was left out.
//!
//! May import `engine`, `scheduler`, `plan` (its model) and `report::model`; never `commands`.

use crate::engine::{DaemonInfo, ImageInfo, StepRecord};
use crate::plan::{PlannedImage, Reason};
use crate::report::model::{
    ContextSize, EngineReport, ImageReport, ImageResult, PlatformReport, StageReport, StepReport,
};
use crate::scheduler::{Job, JobOutcome};

/// The daemon the run built on, and the notes on the builder chosen.
pub(super) fn engine_report(info: &DaemonInfo, notes: Vec<String>) -> EngineReport {
    EngineReport {
        version: info.server_version.clone(),
        api_version: info.api_version.clone(),
        image_store: info.image_store,
        storage_driver: info.storage_driver.clone(),
        notes,
    }
}

/// The registry digest of a pushed image: the repo digest of a repository it was pushed to.
/// (The containerd image store lists repo digests for images never pushed, too.)
fn pushed_digest(job: &Job, repo_digests: &[String]) -> Option<String> {
    let publish = job.publish.as_ref()?;
    repo_digests
        .iter()
        .find(|digest| {
            let repository = digest.split_once('@').map_or("", |(r, _)| r);
            publish.push.iter().any(|target| {
                crate::image_archive::layout::repository(&target.reference) == repository
            })
        })
        .cloned()
}

pub(super) fn image_report(
    planned: &PlannedImage,
    reasons: &[Reason],
    job: &Job,
    outcome: JobOutcome,
    context: ContextSize,
) -> ImageReport {
    let info: Option<ImageInfo> = outcome.image;
    let made = info.is_some();
    ImageReport {
        name: planned.name.clone(),
        repository: crate::scheduler::tags::split_reference(&job.request.tags[0]).0,
        dockerfile: planned.dockerfile.clone(),
        result: outcome.result,
        skip_reason: outcome.skip_reason,
        reasons: reasons.to_vec(),
        inputs_digest: planned.inputs_digest.clone(),
        duration_ms: outcome.duration.as_millis() as u64,
        steps: step_reports(&outcome.steps),
        context: (outcome.result == ImageResult::Built).then_some(context),
        size: info.as_ref().map(|i| i.size),
        platforms: info.as_ref().map(platform_reports).unwrap_or_default(),
        layers: info.as_ref().map(|i| i.layers),
        digest: info
            .as_ref()
            .and_then(|i| pushed_digest(job, &i.repo_digests)),
        image_id: info.map(|i| i.id),
        tags: if made {
            job.request.tags.clone()
        } else {
            Vec::new()
        },
        failure: outcome.failure,
        warnings: outcome.warnings,
        previous_size: None,
        stages: outcome
            .stages
            .iter()
            .zip(&job.stages)
            .map(|(built, build)| StageReport {
                name: built.stage.clone(),
                reference: build.request.tags[0].clone(),
                duration_ms: built.duration.as_millis() as u64,
                steps: step_reports(&built.steps),
            })
            .collect(),
    }
}

fn platform_reports(image: &ImageInfo) -> Vec<PlatformReport> {
    image
        .platforms
        .iter()
        .map(|p| PlatformReport {
            platform: p.platform.clone(),
            manifest: p.manifest.clone(),
            size: p.size,
        })
        .collect()
}

fn step_reports(steps: &[StepRecord]) -> Vec<StepReport> {
    steps
        .iter()
        .map(|s| StepReport {
            name: s.name.clone(),
            line: s.dockerfile_line,
            duration_ms: s.duration.as_millis() as u64,
            cached: s.cached,
            platform: s.position.as_ref().and_then(|p| p.platform.clone()),
        })
        .collect()
}

pub(super) fn not_selected(planned: &PlannedImage, only: &[String]) -> ImageReport {
    let reason = if planned.affected && !only.is_empty() {
        "not selected by --only".to_string()
    } else {
        format!(
            "not affected: {}",
            planned
                .unaffected_because
                .as_deref()
                .unwrap_or("nothing it uses changed")
        )
    };
    ImageReport {
        skip_reason: Some(reason),
        dockerfile: planned.dockerfile.clone(),
        ..ImageReport::new(
            planned.name.clone(),
            planned.name.clone(),
            ImageResult::Skipped,
            planned.inputs_digest.clone(),
        )
    }
}
