//! `buildopt ci`: the whole pipeline the wrappers run — restore the cache, plan, build, save the
//! cache (all inside [`crate::run`]), then write the report files (RunReport JSON, JUnit,
//! dotenv, HTML), the GitHub step outputs and annotations, and publish as `buildopt notify` does
//! (job summary, sticky comment, SARIF, Slack). A build failure's exit code wins over a
//! publisher's.
//!
//! The level defaults to `ci`. The report files are never sent in a build context, so a second
//! run in the same work tree builds exactly what the first did.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cache::atomic;
use crate::cli::{CiArgs, Format};
use crate::context::{Context, builder, write_stdout};
use crate::error::Error;
use crate::exit;
use crate::git::Git;
use crate::notify;
use crate::notify::publish::{PublishRequest, mask_commands, publish, tell};
use crate::plan::Plan;
use crate::report::gitlab_container_scanning::GitlabScan;
use crate::report::model::{RunReport, RunScan};
use crate::report::scan_sarif::SarifContext;
use crate::report::{self, annotations::annotations, run::table};
use crate::run::RunOptions;
use crate::run::daemon::{Connecting, ending, run_on_daemon};
use crate::run::plan::{PlanRequest, plan_with_workspace};
use crate::run::scan::sarif_targets;
use crate::scan::model::{SCAN_FORMAT_VERSION, ScanReport};
use crate::settings::pipeline::PipelineSettings;
use crate::workspace::Workspace;

/// The job variable naming the cache archive the GitLab template exports into the project
/// folder (read only to keep that file out of build contexts).
const GITLAB_CACHE_ARCHIVE: &str = "BUILDOPT_CACHE_ARCHIVE";

/// The files one run writes, absolute.
struct ReportFiles {
    report: PathBuf,
    junit: PathBuf,
    dotenv: PathBuf,
    html: PathBuf,
    sbom: PathBuf,
    scan_junit: PathBuf,
    scan_sarif: PathBuf,
    container_scanning: PathBuf,
}

impl ReportFiles {
    fn new(dir: &Path, args: &CiArgs) -> Self {
        Self {
            report: dir.join(&args.report),
            junit: dir.join(&args.junit),
            dotenv: dir.join(&args.dotenv),
            html: dir.join(&args.html),
            sbom: dir.join(&args.sbom),
            scan_junit: dir.join(&args.scan_junit),
            scan_sarif: dir.join(&args.scan_sarif),
            container_scanning: dir.join(&args.container_scanning),
        }
    }

    fn all(&self) -> Vec<PathBuf> {
        vec![
            self.report.clone(),
            self.junit.clone(),
            self.dotenv.clone(),
            self.html.clone(),
            self.sbom.clone(),
            self.scan_junit.clone(),
            self.scan_sarif.clone(),
            self.container_scanning.clone(),
        ]
    }
}

/// Runs `ci`.
pub fn run(ctx: &Context, args: &CiArgs) -> Result<u8, Error> {
    let settings = &ctx.settings;
    let github = settings.github_actions();
    if github {
        mask_secrets(&settings.pipeline)?;
    }
    let git = Git::open(&ctx.dir)?;
    let request = PlanRequest {
        base: args.base.clone(),
        head: args.head.clone(),
        push: settings.pipeline.push,
        without_daemon: false,
    };
    let (plan, workspace) = plan_with_workspace(ctx, &settings.core, &git, &request)?;
    let daemon = Connecting::start(ctx)?;
    let files = ReportFiles::new(&ctx.dir, args);
    // The report files are never sent in a build context, nor the cache archive the GitLab
    // template keeps in the project folder.
    let mut keep_out = files.all();
    keep_out.extend(
        ctx.env
            .get(GITLAB_CACHE_ARCHIVE)
            .filter(|path| !path.is_empty())
            .map(|path| ctx.dir.join(path)),
    );
    let options = RunOptions {
        keep_out,
        ..RunOptions::of_pipeline(&settings.pipeline, &args.only, args.builder.map(builder))
    };
    let report = run_on_daemon(
        ctx,
        daemon,
        &options,
        &settings.core,
        &git,
        &plan,
        &workspace,
    )?;
    write_reports(&report, &files)?;
    let findings = write_findings(&report, &workspace, &files)?;
    if github {
        write_github(ctx, &plan, &report, &files, findings.as_deref())?;
    }
    let rendered = match ctx.format {
        Format::Json => report::run::json(&report) + "\n",
        Format::Human => table(&report),
    };
    write_stdout(&crate::console::inert_in_github(github, rendered))?;
    let request = PublishRequest {
        sarif: args
            .sarif
            .iter()
            .map(|path| ctx.dir.join(path))
            .chain(findings)
            .collect(),
        ..PublishRequest::default()
    };
    let published = publish(ctx, &report, &request)?;
    tell(ctx, &published);
    Ok(exit::exit_code([ending(&report), published.ending()]))
}

/// Tells the runner to hide the registry password in every later log line.
fn mask_secrets(pipeline: &PipelineSettings) -> Result<(), Error> {
    // Line by line: a multi-line `::add-mask::` masks its first line and prints the rest.
    let passwords = pipeline
        .registry
        .iter()
        .map(|login| login.password.as_str());
    write_stdout(&mask_commands(passwords))
}

/// The RunReport JSON, the JUnit XML, the dotenv file, the HTML page, (when the run scanned)
/// the SBOM and (when it checked vulnerabilities) the scan's JUnit XML, each replaced
/// atomically. The scan's JUnit has a case per image, skipped when no database was there, so a
/// gate's exit 3 or 4 shows in GitLab's and Jenkins' test reports.
fn write_reports(report: &RunReport, files: &ReportFiles) -> Result<(), Error> {
    let dotenv = report::dotenv::dotenv(report);
    let checked = report.scan.as_ref().filter(|scan| scan.policy.is_some());
    for (path, text) in [
        (&files.report, report::run::json(report) + "\n"),
        (&files.junit, report::junit::junit(report)),
        (&files.dotenv, dotenv.text),
        (&files.html, report::html::html(report)),
    ]
    .into_iter()
    .chain(report.scan.as_ref().map(|scan| (&files.sbom, sbom(scan))))
    .chain(checked.map(|scan| {
        (
            &files.scan_junit,
            report::scan_junit::junit(&scan.findings_report()),
        )
    })) {
        atomic::write(path, text.as_bytes()).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// When the run matched its images against a database: the SARIF of its findings (every
/// configured image with a run) and GitLab's container-scanning report, each replaced
/// atomically. Returns the SARIF file, for the upload and the step outputs.
fn write_findings(
    report: &RunReport,
    workspace: &Workspace,
    files: &ReportFiles,
) -> Result<Option<PathBuf>, Error> {
    let Some(scan) = report
        .scan
        .as_ref()
        .filter(|s| s.matched_against_database())
    else {
        return Ok(None);
    };
    let findings = scan.findings_report();
    let targets = sarif_targets(report, workspace);
    let version = env!("CARGO_PKG_VERSION");
    let sarif = report::scan_sarif::sarif(
        &findings,
        &SarifContext {
            tool_version: version,
            anchors: &targets.anchors,
            configured: &targets.configured,
        },
    );
    let now = chrono::Utc::now();
    let gitlab = report::gitlab_container_scanning::container_scanning(
        &findings,
        &GitlabScan {
            tool_version: version,
            start_time: parse_time(&report.run.started).unwrap_or(now),
            end_time: now,
        },
    );
    for (path, text) in [
        (&files.scan_sarif, sarif),
        (&files.container_scanning, gitlab),
    ] {
        atomic::write(path, text.as_bytes()).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(Some(files.scan_sarif.clone()))
}

fn parse_time(rfc3339: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|time| time.with_timezone(&chrono::Utc))
}

/// The CycloneDX SBOM of the images the run scanned, with their findings.
fn sbom(scan: &RunScan) -> String {
    let inventory = ScanReport {
        version: SCAN_FORMAT_VERSION,
        images: scan.images.clone(),
        unreadable: Vec::new(),
    };
    let name = match inventory.images.as_slice() {
        [one] => one.image.clone(),
        _ => "buildopt-run".to_owned(),
    };
    report::sbom_cyclonedx::cyclonedx(
        &inventory,
        &name,
        chrono::Utc::now(),
        env!("CARGO_PKG_VERSION"),
    )
}

/// Step outputs (the plan's and the run's) and annotations on the failing Dockerfile lines.
fn write_github(
    ctx: &Context,
    plan: &Plan,
    report: &RunReport,
    files: &ReportFiles,
    scan_sarif: Option<&Path>,
) -> Result<(), Error> {
    if let Some(path) = ctx.env.get("GITHUB_OUTPUT") {
        let mut outputs = report::plan::github_outputs(plan);
        outputs.extend(report::outputs::run_outputs(report));
        outputs.push(("report", files.report.display().to_string()));
        let scan_sarif = scan_sarif.map(|p| p.display().to_string());
        outputs.push(("scan-sarif", scan_sarif.unwrap_or_default()));
        notify::github::write_step_outputs(Path::new(path), &outputs).map_err(|source| {
            Error::Io {
                path: path.to_string(),
                source,
            }
        })?;
    }
    let dockerfiles: BTreeMap<String, String> = plan
        .images
        .iter()
        .map(|image| (image.name.clone(), image.dockerfile.clone()))
        .collect();
    write_stdout(&annotations(report, &dockerfiles, &plan.notes))
}
