//! `buildopt cache`: set up, inspect, prune, export and import the build cache (see
//! [`crate::cache::transfer`]), and print CI cache keys. Every change to the store happens under its lock and ends by enforcing the
//! retention and the size limit, so the store never grows past them.
//!
//! Entry names, tags and paths come from the store and the checkout: the human forms show them
//! through [`console_name`]/[`console_line`], the JSON forms through [`escape::console_json`].

use std::path::Path;

use serde::Serialize;

use crate::cache::daemon::{self, enforce_limit, enforce_retention, merge};
use crate::cache::keys::{self, KeyInput};
use crate::cache::lock::StoreLock;
use crate::cache::prune::{self, PruneSummary};
use crate::cache::transfer::{Imported, export_archive, import_archive};
use crate::cache::unix_now;
use crate::cache::{CacheError, Store};
use crate::cli::{CacheAction, CacheArgs, Format};
use crate::context::{Context, write_stdout};
use crate::error::Error;
use crate::exit;
use crate::git::Git;
use crate::report::escape::{self, console_line, console_name};
use crate::run::plan::{PlanRequest, make_plan};
use crate::settings::Settings;
use crate::settings::cache::CacheSettings;

/// Runs one `cache` action.
pub fn run(ctx: &Context, args: &CacheArgs) -> Result<u8, Error> {
    let cache = &ctx.settings.cache;
    match &args.action {
        CacheAction::Setup => setup(ctx, cache),
        CacheAction::Stats => stats(ctx, cache),
        CacheAction::Cleanup => cleanup(ctx, cache),
        CacheAction::Optimize { buildkit_cache } => optimize(ctx, cache, buildkit_cache.as_deref()),
        CacheAction::Export { path, images, .. } => export(ctx, cache, &ctx.dir.join(path), images),
        CacheAction::Import {
            path,
            no_load,
            force,
        } => import(ctx, cache, &ctx.dir.join(path), !no_load, *force),
        CacheAction::Key => key(ctx, &ctx.settings.core),
    }
}

/// [`daemon::open_locked`] in the command's folder, saying on stderr why it waits.
fn open_locked(ctx: &Context, cache: &CacheSettings) -> Result<(Store, StoreLock), Error> {
    Ok(daemon::open_locked(&ctx.dir, cache, &|line| {
        ctx.info(line)
    })?)
}

/// A command that changes the store, skipped: a warning, exit 0.
fn skip(ctx: &Context, error: &CacheError) -> Result<u8, Error> {
    let warning = error.to_string();
    ctx.info(&format!("warning: {warning}; continuing without the cache"));
    #[derive(Serialize)]
    struct Skipped<'a> {
        skipped: bool,
        warning: &'a str,
    }
    let report = Skipped {
        skipped: true,
        warning: &warning,
    };
    render(ctx, &report, format!("cache skipped: {warning}\n"))?;
    Ok(exit::SUCCESS)
}

/// [`open_locked`] for a command: `Err(code)` when the cache is skipped (see [`skip`]).
fn open_or_skip(
    ctx: &Context,
    cache: &CacheSettings,
) -> Result<(Store, StoreLock), Result<u8, Error>> {
    match open_locked(ctx, cache) {
        Ok(opened) => Ok(opened),
        Err(Error::Cache(error)) if error.is_skip() => Err(skip(ctx, &error)),
        Err(other) => Err(Err(other)),
    }
}

fn render<T: Serialize>(ctx: &Context, value: &T, human: String) -> Result<(), Error> {
    match ctx.format {
        Format::Json => {
            let json = serde_json::to_string_pretty(value).map_err(|e| Error::Io {
                path: "stdout".into(),
                source: std::io::Error::other(e),
            })?;
            write_stdout(&(escape::console_json(&json) + "\n"))
        }
        Format::Human => write_stdout(&human),
    }
}

/// Creates the store and `buildkitd.toml` next to it.
fn setup(ctx: &Context, cache: &CacheSettings) -> Result<u8, Error> {
    let store = daemon::open_store(&ctx.dir, cache)?;
    let config = store.root().join("buildkitd.toml");
    let text = buildkitd_toml(cache.size_limit_bytes, cache.retention_days);
    std::fs::write(&config, text).map_err(|source| Error::Io {
        path: config.display().to_string(),
        source,
    })?;
    let human = format!(
        "cache store: {}\nbuildkit config: {} (use with buildkitd --config)\n",
        console_name(&store.root().display().to_string()),
        console_name(&config.display().to_string())
    );
    #[derive(Serialize)]
    struct Setup<'a> {
        store: &'a Path,
        buildkit_config: &'a Path,
    }
    render(
        ctx,
        &Setup {
            store: store.root(),
            buildkit_config: &config,
        },
        human,
    )?;
    Ok(exit::SUCCESS)
}

/// A BuildKit daemon config whose garbage collection keeps the build cache within the limit:
/// context uploads and git checkouts go first after the retention period, then everything
/// beyond the limit.
pub fn buildkitd_toml(limit_bytes: u64, retention_days: u64) -> String {
    let keep_seconds = retention_days * 24 * 3600;
    let quarter = limit_bytes / 4;
    format!(
        "# Written by `buildopt cache setup`: BuildKit's cache kept within the buildopt limit.\n\
         [worker.oci]\n  gc = true\n  gckeepstorage = {limit_bytes}\n\n\
         [[worker.oci.gcpolicy]]\n  keepBytes = {quarter}\n  keepDuration = {keep_seconds}\n  \
         filters = [\"type==source.local\", \"type==exec.cachemount\", \"type==source.git.checkout\"]\n\n\
         [[worker.oci.gcpolicy]]\n  all = true\n  keepBytes = {limit_bytes}\n"
    )
}

#[derive(Debug, Serialize)]
struct Stats {
    store: String,
    entries: usize,
    blobs: usize,
    bytes: u64,
    /// Cached steps over all steps of the recorded builds; `None` when none was recorded.
    hit_ratio: Option<f64>,
    builds_recorded: usize,
    oldest_use: Option<u64>,
    newest_use: Option<u64>,
    size_limit_bytes: u64,
    retention_days: u64,
}

fn stats(ctx: &Context, cache: &CacheSettings) -> Result<u8, Error> {
    let store = daemon::open_store(&ctx.dir, cache)?;
    let index = store.read_index()?;
    let sizes = store.blob_sizes()?;
    let (cached, total) = index
        .builds
        .iter()
        .fold((0, 0), |(c, t), b| (c + b.cached_steps, t + b.total_steps));
    let stats = Stats {
        store: store.root().display().to_string(),
        entries: index.images.len(),
        blobs: sizes.len(),
        bytes: sizes.values().sum(),
        hit_ratio: (total > 0).then(|| cached as f64 / total as f64),
        builds_recorded: index.builds.len(),
        oldest_use: index.images.iter().map(|i| i.last_used).min(),
        newest_use: index.images.iter().map(|i| i.last_used).max(),
        size_limit_bytes: cache.size_limit_bytes,
        retention_days: cache.retention_days,
    };
    let human = format!(
        "store: {}\nentries: {}\nblobs: {} ({} bytes)\nhit ratio: {}\noldest use: {}\nnewest use: {}\nlimit: {} bytes, retention {} days\n",
        console_name(&stats.store),
        stats.entries,
        stats.blobs,
        stats.bytes,
        stats
            .hit_ratio
            .map_or("no builds recorded".into(), |r| format!(
                "{:.0}% of steps over {} builds",
                r * 100.0,
                stats.builds_recorded
            )),
        age(stats.oldest_use),
        age(stats.newest_use),
        stats.size_limit_bytes,
        stats.retention_days,
    );
    render(ctx, &stats, human)?;
    Ok(exit::SUCCESS)
}

fn age(at: Option<u64>) -> String {
    match at {
        Some(at) => format!("{} hours ago", unix_now().saturating_sub(at) / 3600),
        None => "-".into(),
    }
}

fn describe(summary: &PruneSummary) -> String {
    let names: Vec<String> = summary
        .images_removed
        .iter()
        .map(|name| console_name(name))
        .collect();
    let listed = match names.is_empty() {
        true => String::new(),
        false => format!(" ({})", names.join(", ")),
    };
    format!(
        "removed {} entries{listed}, {} blobs, {} bytes\n",
        names.len(),
        summary.blobs_removed,
        summary.bytes_freed
    )
}

fn cleanup(ctx: &Context, cache: &CacheSettings) -> Result<u8, Error> {
    let (store, lock) = match open_or_skip(ctx, cache) {
        Ok(opened) => opened,
        Err(done) => return done,
    };
    let summary = enforce_retention(&store, &lock, cache)?;
    render(ctx, &summary, describe(&summary))?;
    Ok(exit::SUCCESS)
}

fn optimize(ctx: &Context, cache: &CacheSettings, buildkit: Option<&Path>) -> Result<u8, Error> {
    let (store, lock) = match open_or_skip(ctx, cache) {
        Ok(opened) => opened,
        Err(done) => return done,
    };
    let mut summary = enforce_limit(&store, &lock, cache)?;
    if let Some(dir) = buildkit {
        let buildkit = prune::collect_buildkit_local(&ctx.dir.join(dir))?;
        summary = merge(summary, buildkit);
    }
    render(ctx, &summary, describe(&summary))?;
    Ok(exit::SUCCESS)
}

fn export(
    ctx: &Context,
    cache: &CacheSettings,
    path: &Path,
    images: &[String],
) -> Result<u8, Error> {
    let (store, lock) = match open_or_skip(ctx, cache) {
        Ok(opened) => opened,
        Err(done) => return done,
    };
    let exported = export_archive((&store, lock), cache, path, images, ctx.connect_daemon())?;
    if let Some((images, new_blobs, requests)) = exported.saved {
        ctx.info(&format!(
            "saved {images} images into the store ({new_blobs} new blobs) through {requests} \
             docker save requests"
        ));
    }
    if !exported.pruned.images_removed.is_empty() {
        ctx.info(&format!(
            "pruned: {}",
            describe(&exported.pruned).trim_end()
        ));
    }
    let summary = exported.summary;
    let human = format!(
        "exported {} images, {} blobs ({} bytes) to {} ({} bytes, {:?})\n",
        summary.images,
        summary.blobs,
        summary.blob_bytes,
        console_name(&path.display().to_string()),
        summary.archive_bytes,
        summary.compression
    );
    render(ctx, &summary, human)?;
    Ok(exit::SUCCESS)
}

fn import(
    ctx: &Context,
    cache: &CacheSettings,
    path: &Path,
    load: bool,
    force: bool,
) -> Result<u8, Error> {
    let open = || daemon::open_locked(&ctx.dir, cache, &|line| ctx.info(line));
    let connect = load.then(|| ctx.connect_daemon());
    let (report, human) = match import_archive(open, cache, path, connect, force)? {
        Imported::Missed(report) => {
            let warning = report.warning.clone().unwrap_or_default();
            ctx.info(&format!("warning: {warning}; continuing without the cache"));
            (report, format!("cache miss: {}\n", console_line(&warning)))
        }
        Imported::NotStored(report) => {
            let warning = report.warning.clone().unwrap_or_default();
            ctx.info(&format!("warning: {warning}; the store stays as it was"));
            (
                report,
                format!("cache not stored: {}\n", console_line(&warning)),
            )
        }
        Imported::Restored(report) => {
            for tag in &report.tags_kept {
                ctx.info(&format!(
                    "warning: kept {tag}: the daemon has it on another image (--force moves it)"
                ));
            }
            for note in &report.notes {
                ctx.info(&format!("note: {}", console_line(note)));
            }
            let human = format!(
                "restored {} images ({} new blobs, {} already stored); loaded {}, already in the daemon {}\n",
                report.images.len(),
                report.blobs_added,
                report.blobs_present,
                report.loaded.len(),
                report.already_in_daemon.len()
            );
            (report, human)
        }
    };
    render(ctx, &report, human)?;
    Ok(exit::SUCCESS)
}

fn key(ctx: &Context, settings: &Settings) -> Result<u8, Error> {
    let git = Git::open(&ctx.dir)?;
    // A key comes from the images' inputs alone: no daemon is asked.
    let request = PlanRequest {
        without_daemon: true,
        ..PlanRequest::default()
    };
    let plan = make_plan(ctx, settings, &git, &request)?;
    let ci = &ctx.settings.ci;
    let platform = format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH);
    let keys = keys::cache_keys(&KeyInput {
        ci,
        images: plan
            .images
            .iter()
            .map(|i| (i.name.as_str(), i.inputs_digest.as_str()))
            .collect(),
        platform: &platform,
        default_branch: settings.default_branch.as_deref(),
    });
    let human = format!(
        "key: {}\nrestore-keys:\n{}trust: {:?}\nsave: {}\n",
        console_name(&keys.key),
        keys.restore_keys
            .iter()
            .map(|k| format!("  {}\n", console_name(k)))
            .collect::<String>(),
        keys.trust,
        keys.save
    );
    render(ctx, &keys, human)?;
    ctx.write_step_outputs(&[
        ("cache-key", keys.key.clone()),
        ("cache-restore-keys", keys.restore_keys.join("\n")),
        ("cache-save", keys.save.to_string()),
    ])?;
    Ok(exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildkitd_config_is_valid_toml_sized_from_the_limit() {
        let text = buildkitd_toml(10 << 30, 7);
        let value: toml::Value = toml::from_str(&text).expect("toml");
        let worker = &value["worker"]["oci"];
        assert_eq!(worker["gckeepstorage"].as_integer(), Some(10 << 30));
        let policies = worker["gcpolicy"].as_array().expect("policies");
        assert_eq!(policies.len(), 2);
        assert_eq!(
            policies[0]["keepDuration"].as_integer(),
            Some(7 * 24 * 3600)
        );
        assert_eq!(policies[1]["keepBytes"].as_integer(), Some(10 << 30));
    }
}
