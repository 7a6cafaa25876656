//! `buildopt scan`: reads the images asked for (the daemon's, files, folders, the store), puts
//! their inventories in one versioned report and writes it in the chosen output.

use crate::cli::{Format, ScanArgs, ScanOutput};
use crate::context::{Context, write_stdout};
use crate::error::Error;
use crate::exit;
use crate::scan::cache::ScanCache;
use crate::scan::daemon::read_from_daemon;
use crate::scan::model::{SCAN_FORMAT_VERSION, ScanReport};
use crate::scan::source::{ReadImage, ReadStats};
use crate::scan::{ScanRequest, inventories, read_offline};

/// Runs `buildopt scan`.
pub fn run(ctx: &Context, args: &ScanArgs) -> Result<u8, Error> {
    let cache = scan_cache(ctx);
    let requests = requests(ctx, args, cache.as_ref())?;
    let mut stats = ReadStats::default();
    let read = read_all(ctx, &requests, cache.as_ref(), &mut stats)?;
    let report = ScanReport {
        version: SCAN_FORMAT_VERSION,
        images: inventories(read, cache.as_ref()),
    };
    ctx.info(&format!(
        "scanned {} image(s): {} layer(s) read, {} from the scan cache",
        report.images.len(),
        stats.layers_read,
        stats.layers_cached
    ));
    let output = args.output.unwrap_or(match ctx.format {
        Format::Json => ScanOutput::Json,
        Format::Human => ScanOutput::Text,
    });
    let text = render(&report, output);
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
    Ok(exit::SUCCESS)
}

/// The layer store's scan cache when the workspace has a store, else the user's.
fn scan_cache(ctx: &Context) -> Option<ScanCache> {
    let store = &ctx.settings.cache.dir;
    if ctx.settings.cache.enabled && store.is_dir() {
        Some(ScanCache::in_store(store))
    } else {
        ScanCache::for_user(&ctx.env)
    }
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
                store: ctx.settings.cache.dir.clone(),
            }),
    );
    if requests.is_empty() {
        return Err(Error::Scan(crate::scan::ScanError::NothingAsked));
    }
    Ok(requests)
}

fn read_all(
    ctx: &Context,
    requests: &[ScanRequest],
    cache: Option<&ScanCache>,
    stats: &mut ReadStats,
) -> Result<Vec<ReadImage>, Error> {
    let mut read = Vec::new();
    let needs_daemon = requests.iter().any(|r| matches!(r, ScanRequest::Daemon(_)));
    let runtime = needs_daemon.then(runtime).transpose()?;
    let engine = match &runtime {
        Some(runtime) => Some(
            runtime
                .block_on(ctx.connect_daemon())
                .map_err(crate::scan::ScanError::from)?,
        ),
        None => None,
    };
    for request in requests {
        let images = match (request, &runtime, &engine) {
            (ScanRequest::Daemon(reference), Some(runtime), Some(engine)) => {
                runtime.block_on(read_from_daemon(engine, reference, cache, stats))?
            }
            _ => read_offline(request, cache, stats)?,
        };
        read.extend(images);
    }
    Ok(read)
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

fn render(report: &ScanReport, output: ScanOutput) -> String {
    match output {
        ScanOutput::Json => {
            let mut text = serde_json::to_string_pretty(report).unwrap_or_default();
            text.push('\n');
            text
        }
        ScanOutput::Text => text_summary(report),
    }
}

/// One line per image and package type (replaced by the full text renderer).
fn text_summary(report: &ScanReport) -> String {
    let mut out = String::new();
    for image in &report.images {
        out.push_str(&format!(
            "{} {}: {} packages\n",
            image.image,
            image.platform.as_deref().unwrap_or(""),
            image.packages.len()
        ));
    }
    out
}
