//! The scheduling loop: starts every job whose parents are ready, up to the job limit, and reacts
//! to each end (success, failure, the daemon going away) and to cancellation, with each job's
//! hooks around it. What hooks and builds print leaves it only through the run's redactor.

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;

use super::hooks::{HookError, Hooks};
use super::remote;
use super::tags::split_reference;
use super::{
    BuildError, DIGEST_LABEL, Job, JobOutcome, Options, Progress, RunOutcome, StageOutcome,
    is_fatal,
};
use crate::engine::{
    BuildEvent, BuildOutcome, Engine, EngineError, EventSink, ImageInfo, PlatformImage,
};
use crate::notify::secret::Redactor;
use crate::report::model::{Failure, ImageResult, Warning};

/// Why a job that never ran was left out.
const PARENT_FAILED: &str = "parent failed";
const STOPPED: &str = "not started after a failure (use --keep-going to continue)";
const CANCELLED: &str = "cancelled";

/// Runs `jobs` on `engine`. `cancel` resolving (Ctrl-C) stops new starts, drops the running
/// builds (which ends them on the daemon) and returns with `interrupted` set. A daemon that is
/// gone ends the run with [`BuildError::Daemon`].
pub async fn run<E: Engine>(
    engine: &E,
    jobs: &[Job],
    options: Options<'_>,
    observe: &(dyn Fn(Progress) + Sync),
    cancel: impl Future<Output = ()>,
) -> Result<RunOutcome, BuildError> {
    let redacting = |progress| observe(redacted_progress(options.redactor, progress));
    let observe: &(dyn Fn(Progress) + Sync) = &redacting;
    let probed = probe_reusable(engine, jobs).await?;
    let mut outcomes: Vec<Option<JobOutcome>> = vec![None; jobs.len()];
    let mut started = vec![false; jobs.len()];
    let mut running: FuturesUnordered<BoxFuture<'_, (usize, Result<JobOutcome, EngineError>)>> =
        FuturesUnordered::new();
    let mut stop_starting = false;
    let mut interrupted = false;
    let mut cancel = std::pin::pin!(cancel);

    loop {
        mark_orphans(jobs, &mut outcomes);
        if !stop_starting {
            for index in ready(jobs, &outcomes, &started) {
                if running.len() >= options.jobs.max(1) {
                    break;
                }
                started[index] = true;
                let parents = parent_images(&jobs[index], &outcomes);
                let probed = &probed[index];
                running.push(Box::pin(async move {
                    let outcome =
                        run_job(engine, &jobs[index], parents, probed, options, observe).await;
                    (index, outcome)
                }));
            }
        }
        if running.is_empty() {
            break;
        }
        // Biased: a cancellation is seen before any further job result.
        tokio::select! {
            biased;
            () = &mut cancel, if !interrupted => {
                interrupted = true;
                stop_starting = true;
                for (index, was_started) in started.iter().enumerate() {
                    if *was_started && outcomes[index].is_none() {
                        outcomes[index] = Some(JobOutcome::skipped(CANCELLED));
                    }
                }
                running.clear();
            }
            Some((index, result)) = running.next() => {
                let outcome = result.map_err(BuildError::Daemon)?;
                if outcome.result == ImageResult::Failed && !options.keep_going {
                    stop_starting = true;
                }
                outcomes[index] = Some(outcome);
            }
        }
    }
    mark_orphans(jobs, &mut outcomes);
    let leftover = if interrupted { CANCELLED } else { STOPPED };
    let mut outcomes: Vec<JobOutcome> = outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| JobOutcome::skipped(leftover)))
        .collect();
    // After Ctrl-C nothing more runs, hooks included.
    if !interrupted {
        for (job, outcome) in jobs.iter().zip(&mut outcomes) {
            if outcome.result == ImageResult::Skipped {
                run_post_hook(options.hooks, job, outcome, options.build_timeout).await;
            }
        }
    }
    for outcome in &mut outcomes {
        redact_outcome(options.redactor, outcome);
    }
    Ok(RunOutcome {
        jobs: outcomes,
        interrupted,
    })
}

/// `progress` with secrets removed from the step name (a Dockerfile line, or what the builder
/// printed).
fn redacted_progress(redactor: &Redactor, progress: Progress) -> Progress {
    match progress {
        Progress::Step {
            image,
            name,
            position,
        } => Progress::Step {
            image,
            name: redactor.redact(&name),
            position,
        },
        other => other,
    }
}

/// Removes secrets from everything in `outcome` that a hook or a build printed: the failure
/// (step, message, log tail), the warnings, the step names and their errors. This is where that
/// text enters the RunReport, and so every report, comment, summary and message.
fn redact_outcome(redactor: &Redactor, outcome: &mut JobOutcome) {
    if let Some(failure) = &mut outcome.failure {
        failure.step = failure.step.as_deref().map(|step| redactor.redact(step));
        failure.message = redactor.redact(&failure.message);
        failure.log_tail = redactor.redact_lines(&failure.log_tail);
    }
    for warning in &mut outcome.warnings {
        warning.message = redactor.redact(&warning.message);
        warning.log_tail = redactor.redact_lines(&warning.log_tail);
    }
    let stage_steps = outcome.stages.iter_mut().flat_map(|s| s.steps.iter_mut());
    for step in outcome.steps.iter_mut().chain(stage_steps) {
        step.name = redactor.redact(&step.name);
        step.error = step.error.as_deref().map(|error| redactor.redact(error));
    }
}

/// What the up-front look at a job's digest reference found.
#[derive(Debug, Clone)]
enum Probed {
    /// Not looked at (the job may not reuse), or the look failed: look again when the job runs.
    NotAsked,
    Absent,
    Found(ImageInfo),
}

/// Inspects every reusable job's digest reference at once. A job's inputs digest covers its
/// parents' inputs, so what its reference holds does not depend on how the parents end; asked
/// up front, a no-change run needs one daemon round trip instead of one per level of the graph.
/// Only a daemon that is gone is an error here; any other failure is retried by the job.
async fn probe_reusable<E: Engine>(engine: &E, jobs: &[Job]) -> Result<Vec<Probed>, BuildError> {
    let looks = jobs.iter().map(|job| async move {
        if !job.reuse {
            return Ok(Probed::NotAsked);
        }
        match engine.inspect(&job.digest_ref).await {
            Ok(Some(image)) => Ok(Probed::Found(image)),
            Ok(None) => Ok(Probed::Absent),
            Err(error) if is_fatal(&error) => Err(BuildError::Daemon(error)),
            Err(_) => Ok(Probed::NotAsked),
        }
    });
    futures_util::future::try_join_all(looks).await
}

/// Jobs not yet started whose parents all have an image, in job order.
fn ready(jobs: &[Job], outcomes: &[Option<JobOutcome>], started: &[bool]) -> Vec<usize> {
    (0..jobs.len())
        .filter(|&i| !started[i] && outcomes[i].is_none())
        .filter(|&i| {
            jobs[i]
                .parents
                .iter()
                .all(|p| outcomes[p.job].as_ref().is_some_and(|o| o.image.is_some()))
        })
        .collect()
}

/// Marks as skipped every job with a parent that failed or was skipped, until nothing changes.
fn mark_orphans(jobs: &[Job], outcomes: &mut [Option<JobOutcome>]) {
    loop {
        let orphan = (0..jobs.len()).find(|&i| {
            outcomes[i].is_none()
                && jobs[i]
                    .parents
                    .iter()
                    .any(|p| outcomes[p.job].as_ref().is_some_and(|o| o.image.is_none()))
        });
        match orphan {
            Some(index) => outcomes[index] = Some(JobOutcome::skipped(PARENT_FAILED)),
            None => return,
        }
    }
}

/// For each reference the job uses for a parent: (reference, id of the parent's image).
fn parent_images(job: &Job, outcomes: &[Option<JobOutcome>]) -> Vec<(String, String)> {
    job.parents
        .iter()
        .filter_map(|parent| {
            let id = outcomes[parent.job].as_ref()?.image.as_ref()?.id.clone();
            Some(
                parent
                    .references
                    .iter()
                    .map(move |r| (r.clone(), id.clone())),
            )
        })
        .flatten()
        .collect()
}

/// Makes one job's image available, between its hooks. `Err` only for errors that end the
/// whole run.
async fn run_job<E: Engine>(
    engine: &E,
    job: &Job,
    parents: Vec<(String, String)>,
    probed: &Probed,
    options: Options<'_>,
    observe: &(dyn Fn(Progress) + Sync),
) -> Result<JobOutcome, EngineError> {
    let start = Instant::now();
    observe(Progress::Started {
        image: job.name.clone(),
    });
    let hooks = options.hooks;
    // The deadline covers the pre-build hook with the build: a hook is repository code, and a
    // hung one must not hang the run either.
    let work = async {
        match hooks.run_pre_build(&job.name, first_tag(job)).await {
            Err(hook) => Ok(hook_failed(hook)),
            Ok(()) => make_and_publish(engine, job, &parents, probed, observe).await,
        }
    };
    let mut outcome = match options.build_timeout {
        None => work.await?,
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .unwrap_or_else(|_| Ok(timed_out(limit)))?,
    };
    run_post_hook(hooks, job, &mut outcome, options.build_timeout).await;
    outcome.duration = start.elapsed();
    observe(Progress::Finished {
        image: job.name.clone(),
        result: outcome.result,
        duration: outcome.duration,
    });
    Ok(outcome)
}

/// Makes the job's image and, when the job publishes, pushes it. Dropped at the deadline, which
/// drops the daemon requests in flight and so ends the build there.
async fn make_and_publish<E: Engine>(
    engine: &E,
    job: &Job,
    parents: &[(String, String)],
    probed: &Probed,
    observe: &(dyn Fn(Progress) + Sync),
) -> Result<JobOutcome, EngineError> {
    let outcome = match make_image(engine, job, parents, probed, observe).await {
        Ok(outcome) => outcome,
        Err(error) if is_fatal(&error) => return Err(error),
        Err(error) => failed(error),
    };
    match &job.publish {
        Some(publish) if outcome.image.is_some() => {
            publish_image(engine, publish, job.per_platform, outcome).await
        }
        _ => Ok(outcome),
    }
}

/// What passing the build deadline `limit` is called, naming the settings that set it.
fn past_deadline(limit: Duration) -> String {
    format!(
        "not done after {} s (build_timeout, BUILDOPT_BUILD_TIMEOUT)",
        limit.as_secs()
    )
}

/// A job whose image was not ready within the build deadline.
fn timed_out(limit: Duration) -> JobOutcome {
    failed_with(Failure {
        step: None,
        line: None,
        message: format!("{}: the build was stopped", past_deadline(limit)),
        log_tail: Vec::new(),
    })
}

/// Pushes the image's tags (with `per_platform`, each platform's image and a manifest list of
/// them under each tag) and refreshes its facts (the registry digests). A refused push fails
/// the job, so its dependents do not build on an image that is not where it should be.
async fn publish_image<E: Engine>(
    engine: &E,
    publish: &remote::Publish,
    per_platform: bool,
    mut outcome: JobOutcome,
) -> Result<JobOutcome, EngineError> {
    let pushed = if per_platform {
        let platforms = outcome.image.as_ref().map(|i| i.platforms.iter());
        let platforms: Vec<String> = platforms
            .into_iter()
            .flatten()
            .map(|p| p.platform.clone())
            .collect();
        remote::push_manifest_lists(engine, publish, &platforms).await
    } else {
        remote::push_all(engine, publish).await.map(|()| None)
    };
    match pushed {
        Err(error) if is_fatal(&error) => Err(error),
        Err(error) => {
            let mut failure = failed(error);
            failure.steps = outcome.steps;
            Ok(failure)
        }
        Ok(list) => {
            if let Some(image) = &outcome.image
                && let Some(mut fresh) = engine.inspect(&image.id).await?
            {
                // The per-platform images and the manifest list are known here, not to the
                // daemon, which holds one platform per image.
                if fresh.platforms.is_empty() {
                    fresh.platforms.clone_from(&image.platforms);
                }
                fresh.repo_digests.splice(0..0, list);
                outcome.image = Some(fresh);
            }
            Ok(outcome)
        }
    }
}

/// The tag hooks get as `BUILDOPT_TAG`: the job's first.
fn first_tag(job: &Job) -> &str {
    job.request.tags.first().map_or("", String::as_str)
}

/// Runs the post-build hook with the job's result; its failure becomes a warning.
/// Runs the post-build hook, within the build deadline of its own when there is one (the hook
/// is killed then); a failure is a warning.
async fn run_post_hook(
    hooks: &Hooks,
    job: &Job,
    outcome: &mut JobOutcome,
    deadline: Option<Duration>,
) {
    let hook = hooks.run_post_build(&job.name, first_tag(job), outcome.result);
    let warning = match deadline {
        None => hook.await.err().map(hook_warning),
        Some(limit) => match tokio::time::timeout(limit, hook).await {
            Ok(ran) => ran.err().map(hook_warning),
            Err(_) => Some(Warning {
                message: format!("post-build hook stopped: {}", past_deadline(limit)),
                log_tail: Vec::new(),
            }),
        },
    };
    outcome.warnings.extend(warning);
}

fn hook_warning(hook: super::hooks::HookError) -> Warning {
    Warning {
        message: hook.to_string(),
        log_tail: hook.log_tail().to_vec(),
    }
}

async fn make_image<E: Engine>(
    engine: &E,
    job: &Job,
    parents: &[(String, String)],
    probed: &Probed,
    observe: &(dyn Fn(Progress) + Sync),
) -> Result<JobOutcome, EngineError> {
    if job.reuse
        && let Some(existing) = find_reusable(engine, job, probed).await?
    {
        // A tag is a write the daemon serialises; a no-change run finds most already in place.
        for reference in job.request.tags.iter().chain([&job.digest_ref]) {
            if !carries_tag(&existing, reference) {
                tag(engine, &existing.id, reference).await?;
            }
        }
        return Ok(done(ImageResult::Reused, Vec::new(), existing));
    }
    // Point the child's references at the parents built (or reused) in this run.
    for (reference, id) in parents {
        tag(engine, id, reference).await?;
    }
    let name = job.name.clone();
    let mut on_event = |event: BuildEvent| {
        if let BuildEvent::StepStarted {
            name: step,
            position,
            ..
        } = event
        {
            observe(Progress::Step {
                image: name.clone(),
                name: step,
                position: position.map(|p| (p.number, p.total)),
            });
        }
    };
    let mut stages = Vec::new();
    for stage in &job.stages {
        let clock = Instant::now();
        match engine.build(&stage.request, &mut on_event).await {
            Ok(built) => stages.push(StageOutcome {
                stage: stage.stage.clone(),
                duration: clock.elapsed(),
                steps: built.steps,
            }),
            Err(error) if is_fatal(&error) => return Err(error),
            Err(error) => {
                let mut outcome = failed(error);
                if let Some(failure) = &mut outcome.failure {
                    failure.message = format!("stage '{}': {}", stage.stage, failure.message);
                }
                outcome.stages = stages;
                return Ok(outcome);
            }
        }
    }
    let (built, platforms) = if job.per_platform {
        build_per_platform(engine, job, &mut on_event).await?
    } else {
        (engine.build(&job.request, &mut on_event).await?, Vec::new())
    };
    tag(engine, &built.image_id, &job.digest_ref).await?;
    let mut image = inspect_built(engine, job, &built.image_id).await?;
    if !platforms.is_empty() {
        image.platforms = platforms;
    }
    let mut outcome = done(ImageResult::Built, built.steps, image);
    outcome.stages = stages;
    Ok(outcome)
}

async fn inspect_built<E: Engine>(
    engine: &E,
    job: &Job,
    id: &str,
) -> Result<ImageInfo, EngineError> {
    engine
        .inspect(id)
        .await?
        .ok_or_else(|| EngineError::DaemonGone {
            during: format!("build of {}", job.name),
            reason: format!("the image {id} it reported does not exist"),
        })
}

/// Builds each platform of the job's request as an image of its own, tagged with the platform
/// tags of the request's tags; the first platform's image also gets the request's tags. The
/// outcome is the first platform's build with every platform's steps (each marked with its
/// platform), and each platform's image.
async fn build_per_platform<E: Engine>(
    engine: &E,
    job: &Job,
    on_event: EventSink<'_>,
) -> Result<(BuildOutcome, Vec<PlatformImage>), EngineError> {
    let mut outcome: Option<BuildOutcome> = None;
    let mut images = Vec::new();
    for platform in &job.request.platforms {
        let mut request = job.request.clone();
        request.platforms = vec![platform.clone()];
        request.tags = (job.request.tags.iter())
            .map(|t| remote::platform_tag(t, platform))
            .collect();
        let mut built = engine.build(&request, on_event).await?;
        for step in &mut built.steps {
            if let Some(position) = &mut step.position {
                position.platform = Some(platform.clone());
            }
        }
        if outcome.is_none() {
            // The first platform (the engine's own, when built) carries the image's own tags.
            for reference in &job.request.tags {
                tag(engine, &built.image_id, reference).await?;
            }
        }
        let image = inspect_built(engine, job, &built.image_id).await?;
        images.push(PlatformImage {
            platform: platform.clone(),
            manifest: image.id.clone(),
            size: image.size,
        });
        match &mut outcome {
            None => outcome = Some(built),
            Some(first) => {
                first.steps.extend(built.steps);
                first.duration += built.duration;
            }
        }
    }
    let outcome = outcome.ok_or_else(|| EngineError::Unsupported {
        what: format!("a build of {} for no platform", job.name),
    })?;
    Ok((outcome, images))
}

/// The local image recorded under the job's digest reference (and really labelled with that
/// digest), else (when pushing) the one its registry holds under the digest tag, pulled.
async fn find_reusable<E: Engine>(
    engine: &E,
    job: &Job,
    probed: &Probed,
) -> Result<Option<ImageInfo>, EngineError> {
    let local = match probed {
        Probed::Found(image) => Some(image.clone()),
        Probed::Absent => None,
        Probed::NotAsked => engine.inspect(&job.digest_ref).await?,
    };
    if let Some(image) = local.filter(|i| i.labels.get(DIGEST_LABEL) == Some(&job.inputs_digest)) {
        return Ok(Some(image));
    }
    match job.publish.as_ref().and_then(|p| p.lookup.as_ref()) {
        Some(lookup) => remote::pull_existing(engine, lookup).await,
        None => Ok(None),
    }
}

/// Whether the daemon already lists `reference` (`repo` alone meaning `repo:latest`) among the
/// image's tags.
fn carries_tag(image: &ImageInfo, reference: &str) -> bool {
    let (repo, tag) = split_reference(reference);
    let full = format!("{repo}:{}", tag.as_deref().unwrap_or("latest"));
    image.repo_tags.contains(&full)
}

async fn tag<E: Engine>(engine: &E, id: &str, reference: &str) -> Result<(), EngineError> {
    let (repo, tag) = split_reference(reference);
    engine
        .tag(id, &repo, tag.as_deref().unwrap_or("latest"))
        .await
}

fn done(
    result: ImageResult,
    steps: Vec<crate::engine::StepRecord>,
    image: ImageInfo,
) -> JobOutcome {
    JobOutcome {
        result,
        skip_reason: None,
        duration: Duration::ZERO,
        steps,
        image: Some(image),
        failure: None,
        warnings: Vec::new(),
        stages: Vec::new(),
    }
}

/// A job whose pre-build hook failed: it fails without building.
fn hook_failed(hook: HookError) -> JobOutcome {
    let log_tail = hook.log_tail().to_vec();
    failed_with(Failure {
        step: Some(super::hooks::HookKind::PreBuild.to_string()),
        line: None,
        message: hook.to_string(),
        log_tail,
    })
}

fn failed(error: EngineError) -> JobOutcome {
    let failure = match error {
        EngineError::BuildFailed {
            step,
            line,
            log_tail,
            message,
        } => Failure {
            step,
            line,
            message,
            log_tail,
        },
        other => Failure {
            step: None,
            line: None,
            message: other.to_string(),
            log_tail: Vec::new(),
        },
    };
    failed_with(failure)
}

fn failed_with(failure: Failure) -> JobOutcome {
    JobOutcome {
        result: ImageResult::Failed,
        skip_reason: None,
        duration: Duration::ZERO,
        steps: Vec::new(),
        image: None,
        failure: Some(failure),
        warnings: Vec::new(),
        stages: Vec::new(),
    }
}
