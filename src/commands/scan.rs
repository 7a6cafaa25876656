//! `buildopt scan`: reads the images asked for (the daemon's, files, folders, the store), puts
//! their inventories in one versioned report, matches them against the vulnerability database
//! (`--setup` downloads it) and writes the chosen output; the gate decides the exit code.

use std::collections::BTreeMap;

use crate::cache::digest::Digest;
use crate::cli::{Format, ScanArgs, ScanOutput};
use crate::context::{Context, write_stdout};
use crate::error::{Error, scan_ending};
use crate::exit;
use crate::report;
use crate::report::gitlab_container_scanning::GitlabScan;
use crate::report::scan_sarif::{ImageAnchor, SarifContext};
use crate::scan::cache::ScanCache;
use crate::scan::daemon::read_from_daemon;
use crate::scan::model::ImageInventory;
use crate::scan::model::{SCAN_FORMAT_VERSION, ScanReport, UnreadableImage};
use crate::scan::policy::{self, Policy};
use crate::scan::source::{ReadImage, ReadStats};
use crate::scan::vulndb;
use crate::scan::vulndb::{SetupOptions, http_client};
use crate::scan::vulnerabilities::{self, Loaded};
use crate::scan::{ScanError, ScanRequest, inventories, read_offline};
use crate::settings::run::RunFlags;
use crate::workspace::repository_of;

/// Runs `buildopt scan`.
pub fn run(ctx: &Context, args: &ScanArgs) -> Result<u8, Error> {
    if args.setup {
        return setup(ctx, args);
    }
    let cache = scan_cache(ctx);
    let requests = requests(ctx, args, cache.as_ref())?;
    let mut stats = ReadStats::default();
    let (read, failed) = read_all(ctx, &requests, cache.as_ref(), &mut stats)?;
    let mut report = ScanReport {
        version: SCAN_FORMAT_VERSION,
        images: inventories(read, cache.as_ref()),
        unreadable: failed.iter().map(Failed::unreadable).collect(),
    };
    ctx.info(&format!(
        "scanned {} image(s): {} layer(s) read, {} from the scan cache{}",
        report.images.len(),
        stats.layers_read,
        stats.layers_cached,
        match failed.len() {
            0 => String::new(),
            n => format!("; {n} could not be read"),
        }
    ));
    let policy = ctx.settings.scan.policy();
    let output = args.output.unwrap_or(match ctx.format {
        Format::Json => ScanOutput::Json,
        Format::Human => ScanOutput::Text,
    });
    if matches_vulnerabilities(ctx, args, output) {
        check_vulnerabilities(ctx, args, &requests, &mut report, &policy)?;
    }
    let anchors = sarif_anchors(&report, cache.as_ref());
    let text = render(&report, output, &anchors);
    match &args.output_file {
        Some(path) => {
            let path = ctx.dir.join(path);
            crate::cache::atomic::write(&path, text.as_bytes()).map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })?;
        }
        None => write_stdout(&text)?,
    }
    let mut endings = policy::endings(&report.images, &policy);
    endings.extend(failed.iter().map(|f| scan_ending(&f.error)));
    Ok(exit::exit_code(endings))
}

/// Whether this output gets findings (and so the gate). An SBOM is an inventory first:
/// CycloneDX carries the vulnerabilities when a database is there to match against (`--db`,
/// or a set-up one; a database that fails to open is reported), and without one it is the
/// inventory alone, neither warned about nor gated; SPDX 2.3 has no place for them.
fn matches_vulnerabilities(ctx: &Context, args: &ScanArgs, output: ScanOutput) -> bool {
    match output {
        ScanOutput::Spdx => false,
        ScanOutput::Cyclonedx => {
            args.db.is_some()
                || !matches!(
                    vulndb::VulnDb::open(&ctx.settings.scan.vulndb_dir),
                    Ok(None)
                )
        }
        _ => true,
    }
}

/// `scan --setup`: downloads the ecosystems asked for (else every supported one), or with
/// `--db PATH` installs that folder or zip of OSV records, and says what it did.
fn setup(ctx: &Context, args: &ScanArgs) -> Result<u8, Error> {
    if args.for_ci && !ci_scans(ctx)? {
        return Ok(exit::SUCCESS);
    }
    let settings = &ctx.settings.scan;
    let dir = &settings.vulndb_dir;
    if let Some(path) = &args.db {
        let path = ctx.dir.join(path);
        let done = vulndb::install(&path, dir).map_err(database_error)?;
        ctx.info(&format!(
            "vulnerability database {}: {} records from {}{}",
            dir.display(),
            done.summary.records,
            path.display(),
            if done.indexed {
                "; indexed"
            } else {
                "; index current"
            },
        ));
        return Ok(exit::SUCCESS);
    }
    let options = SetupOptions {
        dir: dir.clone(),
        base_url: settings.vulndb_url.clone(),
        recheck_after: args.for_ci.then_some(CI_RECHECK_AFTER),
    };
    let ecosystems = if !args.ecosystems.is_empty() {
        args.ecosystems.clone()
    } else if asks_for_images(args) {
        ecosystems_of_images(ctx, args)?
    } else if !settings.vulndb_ecosystems.is_empty() {
        settings.vulndb_ecosystems.clone()
    } else {
        DEFAULT_ECOSYSTEMS.iter().map(|e| e.to_string()).collect()
    };
    if ecosystems.is_empty() {
        return Ok(exit::SUCCESS);
    }
    let http = http_client(SETUP_TIMEOUT).map_err(|e| ScanError::Database {
        message: e.to_string(),
    })?;
    let done = vulndb::setup(&options, &ecosystems, &http).map_err(database_error)?;
    if done.recent {
        ctx.info(&format!(
            "vulnerability database {}: {} records, checked against the source less than {} hours ago; not asked again",
            dir.display(),
            done.summary.records,
            CI_RECHECK_AFTER.as_secs() / 3600
        ));
        return Ok(exit::SUCCESS);
    }
    ctx.info(&format!(
        "vulnerability database {}: {} records; downloaded {}, unchanged {}{}",
        dir.display(),
        done.summary.records,
        list(&done.downloaded),
        list(&done.unchanged),
        if done.indexed {
            "; indexed"
        } else {
            "; index current"
        },
    ));
    Ok(exit::SUCCESS)
}

/// `--setup --for-ci`: whether `buildopt ci` in this folder, run with no option, would scan
/// (and so need the database). Says so when it would not, and tells a GitHub Actions step in
/// its `scans` output, so the wrapper neither downloads nor caches a database nobody reads.
fn ci_scans(ctx: &Context) -> Result<bool, Error> {
    let ci = ctx.with_flags(&RunFlags::of_plain_ci(ctx.verbose))?;
    let scans = ci.settings.pipeline.scan;
    ctx.write_step_outputs(&[("scans", scans.to_string())])?;
    if !scans {
        ctx.info(&format!(
            "buildopt ci does not scan here (level {}, scan off): the vulnerability database is not needed; nothing downloaded",
            ci.settings.core.level
        ));
    }
    Ok(scans)
}

fn asks_for_images(args: &ScanArgs) -> bool {
    args.all || !args.image.is_empty() || !args.input.is_empty() || !args.from_cache.is_empty()
}

/// The ecosystems the packages of the images asked for are matched in.
fn ecosystems_of_images(ctx: &Context, args: &ScanArgs) -> Result<Vec<String>, Error> {
    let cache = scan_cache(ctx);
    let requests = requests(ctx, args, cache.as_ref())?;
    let (read, failed) = read_all(ctx, &requests, cache.as_ref(), &mut ReadStats::default())?;
    // Setup downloads nothing on a guess: an image it cannot read fails it, as before.
    if let Some(failed) = failed.into_iter().next() {
        return Err(failed.error.into());
    }
    let images = inventories(read, cache.as_ref());
    let found: std::collections::BTreeSet<String> = images
        .iter()
        .flat_map(crate::scan::matcher::ecosystems_of)
        .collect();
    if found.is_empty() {
        ctx.info("the images have no package to match: nothing to download");
    }
    Ok(found.into_iter().collect())
}

/// What `--setup` downloads when no `--ecosystem` is named: every ecosystem buildopt matches.
const DEFAULT_ECOSYSTEMS: [&str; 10] = [
    "Debian",
    "Ubuntu",
    "Alpine",
    "Rocky Linux",
    "AlmaLinux",
    "PyPI",
    "npm",
    "Go",
    "crates.io",
    "RubyGems",
];
const SETUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
/// With `--for-ci`, a database checked against the source within this is not checked again:
/// the CI cache carries it between runs, and every check downloads each archive OSV
/// republished (several a day, npm's alone some 200 MB).
const CI_RECHECK_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn database_error(error: vulndb::VulnDbError) -> Error {
    Error::Scan(ScanError::Database {
        message: error.to_string(),
    })
}

/// Matches every image against the database (`--db`, else the set-up one), merges another
/// scanner's findings when one is chosen, and applies the ignore files, level and gate.
fn check_vulnerabilities(
    ctx: &Context,
    args: &ScanArgs,
    requests: &[ScanRequest],
    report: &mut ScanReport,
    policy: &Policy,
) -> Result<(), Error> {
    let settings = &ctx.settings.scan;
    let db = args.db.as_ref().map(|path| ctx.dir.join(path));
    let loaded = Loaded::load(settings, db.as_deref(), std::time::SystemTime::now())?;
    for line in &loaded.warnings {
        ctx.info(&format!("warning: {line}"));
    }
    let check = loaded.check(settings, policy, chrono::Utc::now().date_naive());
    let file = |image: &ImageInventory| file_of(requests, image);
    let summary = vulnerabilities::check(&mut report.images, &check, &file)?;
    for line in summary.expired_ignores.iter().chain(&summary.warnings) {
        ctx.info(&format!("warning: {line}"));
    }
    Ok(())
}

/// The tarball or layout folder an image came from, for Trivy or Grype.
fn file_of(requests: &[ScanRequest], image: &ImageInventory) -> Option<std::path::PathBuf> {
    requests.iter().find_map(|r| match r {
        ScanRequest::Input(path) if image.image == file_name(path) => Some(path.clone()),
        _ => None,
    })
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The folder `scan_cache_dir` names, else the layer store's scan cache when the workspace
/// has a store, else the user's.
fn scan_cache(ctx: &Context) -> Option<ScanCache> {
    let store = ctx.dir.join(&ctx.settings.cache.dir);
    let store = (ctx.settings.cache.enabled && store.is_dir()).then_some(store);
    let named = ctx.settings.scan.scan_cache_dir.as_deref();
    ScanCache::chosen(named, store.as_deref(), &ctx.env)
}

fn requests(
    ctx: &Context,
    args: &ScanArgs,
    cache: Option<&ScanCache>,
) -> Result<Vec<ScanRequest>, Error> {
    if args.all {
        let built = cache.map(ScanCache::last_built).unwrap_or_default();
        if built.is_empty() {
            return Err(Error::Scan(crate::scan::ScanError::NothingBuilt));
        }
        return Ok(built
            .into_values()
            .map(|b| ScanRequest::Daemon(b.reference))
            .collect());
    }
    let mut requests: Vec<ScanRequest> = args
        .image
        .iter()
        .cloned()
        .map(ScanRequest::Daemon)
        .collect();
    requests.extend(
        args.input
            .iter()
            .map(|p| ScanRequest::Input(ctx.dir.join(p))),
    );
    requests.extend(
        args.from_cache
            .iter()
            .map(|reference| ScanRequest::FromCache {
                reference: reference.clone(),
                store: ctx.dir.join(&ctx.settings.cache.dir),
            }),
    );
    if requests.is_empty() {
        return Err(Error::Scan(crate::scan::ScanError::NothingAsked));
    }
    Ok(requests)
}

/// An image asked for that could not be read, and why.
struct Failed {
    input: String,
    error: ScanError,
}

impl Failed {
    fn unreadable(&self) -> UnreadableImage {
        UnreadableImage {
            input: self.input.clone(),
            error: self.error.to_string(),
        }
    }
}

/// Reads every request. One that cannot be read (no such image, a corrupt file, no daemon
/// for `--image`) is said on stderr and returned as failed: it never stops the others.
fn read_all(
    ctx: &Context,
    requests: &[ScanRequest],
    cache: Option<&ScanCache>,
    stats: &mut ReadStats,
) -> Result<(Vec<ReadImage>, Vec<Failed>), Error> {
    let (mut read, mut failed) = (Vec::new(), Vec::new());
    let needs_daemon = requests.iter().any(|r| matches!(r, ScanRequest::Daemon(_)));
    let runtime = needs_daemon.then(runtime).transpose()?;
    let mut engine = None;
    for request in requests {
        let images = match (request, &runtime) {
            (ScanRequest::Daemon(reference), Some(runtime)) => runtime.block_on(async {
                if engine.is_none() {
                    engine = Some(ctx.connect_daemon().await?);
                }
                let engine = engine.as_ref().expect("connected above");
                read_from_daemon(engine, reference, cache, stats).await
            }),
            _ => read_offline(request, cache, stats),
        };
        match images {
            Ok(images) => read.extend(images),
            Err(error) => {
                let input = input_name(request);
                ctx.error(&format!("{input}: not scanned: {error}"));
                failed.push(Failed { input, error });
            }
        }
    }
    Ok((read, failed))
}

/// A request as the user named it.
fn input_name(request: &ScanRequest) -> String {
    match request {
        ScanRequest::Daemon(reference) | ScanRequest::FromCache { reference, .. } => {
            reference.clone()
        }
        ScanRequest::Input(path) => path.display().to_string(),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            path: "tokio runtime".into(),
            source,
        })
}

/// Where each image's Dockerfile and base `FROM` line are, for SARIF: from the build origins
/// the scan cache keeps for images buildopt built, by their config or manifest digest.
fn sarif_anchors(report: &ScanReport, cache: Option<&ScanCache>) -> BTreeMap<String, ImageAnchor> {
    let Some(cache) = cache else {
        return BTreeMap::new();
    };
    report
        .images
        .iter()
        .filter_map(|image| {
            let ids: Vec<&Digest> = std::iter::once(&image.id)
                .chain(image.manifest.as_ref())
                .collect();
            let origin = cache.origin(&ids)?;
            let anchor = ImageAnchor {
                dockerfile: origin.dockerfile,
                from_line: origin.from_line,
            };
            Some((repository_of(&image.image), anchor))
        })
        .collect()
}

fn render(
    report: &ScanReport,
    output: ScanOutput,
    anchors: &BTreeMap<String, ImageAnchor>,
) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let name = document_name(report);
    let now = chrono::Utc::now();
    match output {
        ScanOutput::Json => {
            let mut text = serde_json::to_string_pretty(report).unwrap_or_default();
            text.push('\n');
            text
        }
        ScanOutput::Text => report::scan_text::scan_text(report),
        ScanOutput::Cyclonedx => report::sbom_cyclonedx::cyclonedx(report, &name, now, version),
        ScanOutput::Spdx => report::sbom_spdx::spdx(report, &name, now, version),
        ScanOutput::Sarif => {
            let context = SarifContext {
                tool_version: version,
                anchors,
                configured: &[],
            };
            report::scan_sarif::sarif(report, &context)
        }
        ScanOutput::Junit => report::scan_junit::junit(report),
        ScanOutput::Gitlab => report::gitlab_container_scanning::container_scanning(
            report,
            &GitlabScan {
                tool_version: version,
                start_time: now,
                end_time: now,
            },
        ),
    }
}

/// The SBOM's name: the one image's reference, else a generic one.
fn document_name(report: &ScanReport) -> String {
    match report.images.as_slice() {
        [one] => one.image.clone(),
        _ => "buildopt-scan".to_owned(),
    }
}
