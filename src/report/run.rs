//! Renderers of a [`RunReport`]: the final table people read and the JSON programs read.
//!
//! Pure: each takes the report and returns text. Names, tags, messages and log lines go through
//! [`escape::console_name`] and [`escape::console_line`]: the table is printed on the console.

use std::fmt::Write as _;

use super::escape::{self, console_line, console_name};
use super::findings_section;
use super::model::{
    CacheExport, CacheReport, CacheRestore, ImageReport, ImageResult, RunReport, RunScan,
};

/// The final table: one row per image (image, result, duration, cached steps, size and the size
/// before the run when it changed, tags), then each platform of the images built for several,
/// failures with their log tail, warnings, then the totals.
pub fn table(report: &RunReport) -> String {
    let rows: Vec<[String; 6]> = report.images.iter().map(row).collect();
    let headers = ["image", "result", "duration", "cached", "size", "tags"];
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    write_row(&mut out, &headers.map(String::from), &widths);
    for row in &rows {
        write_row(&mut out, row, &widths);
    }
    for image in &report.images {
        write_platforms(&mut out, image);
    }
    for image in &report.images {
        write_failure(&mut out, image);
    }
    for image in &report.images {
        write_warnings(&mut out, image);
    }
    let _ = writeln!(
        out,
        "\n{} in {}{}",
        counts(report),
        duration(report.run.duration_ms),
        if report.run.interrupted {
            " (interrupted)"
        } else {
            ""
        }
    );
    if let Some(engine) = &report.run.engine {
        let _ = writeln!(out, "engine: {}", engine.describe());
        for note in &engine.notes {
            let _ = writeln!(out, "engine note: {}", console_line(note));
        }
    }
    if let Some(cleanup) = &report.cleanup {
        let _ = writeln!(
            out,
            "cleanup freed {} (dangling images {}, build cache older than {} days {})",
            size(cleanup.dangling_images_bytes + cleanup.build_cache_bytes),
            size(cleanup.dangling_images_bytes),
            cleanup.retention_days,
            size(cleanup.build_cache_bytes),
        );
    }
    if let Some(cache) = &report.cache {
        write_cache(&mut out, cache);
    }
    if let Some(scan) = &report.scan {
        write_scan(&mut out, scan);
    }
    out
}

/// The most findings over the gate the table lists; the JSON report has them all.
const MAX_FAILING_LINES: usize = 20;

/// The vulnerability line, then the findings that fail the gate (new ones first), each with
/// where it came from, so a failed gate says why at the terminal.
fn write_scan(out: &mut String, scan: &RunScan) {
    let Some(line) = findings_section::summary_line(scan) else {
        return;
    };
    let _ = writeln!(out, "{line}");
    if let Some(database) = findings_section::database(scan) {
        let age = findings_section::database_age(scan).map(|age| format!(", {age}"));
        let database = console_line(database);
        let _ = writeln!(out, "  database {database}{}", age.unwrap_or_default());
    }
    for (image, counts) in findings_section::not_matched(scan) {
        let _ = writeln!(out, "  {}: {counts}", console_line(&image));
    }
    let failing: Vec<_> = findings_section::rows(scan)
        .into_iter()
        .filter(|row| row.finding.fails_gate)
        .collect();
    let labels = findings_section::image_labels(scan);
    for row in failing.iter().take(MAX_FAILING_LINES) {
        let finding = row.finding;
        let _ = writeln!(
            out,
            "  {}{} {}: {} {} → {} in {}, {}",
            if row.is_new() { "new " } else { "" },
            console_line(&finding.id),
            finding.severity.as_str(),
            console_line(&finding.package),
            console_line(&finding.installed_version),
            console_line(findings_section::fixed(finding)),
            console_line(&labels.label(row.image)),
            console_line(&findings_section::origin(finding)),
        );
    }
    if failing.len() > MAX_FAILING_LINES {
        let _ = writeln!(
            out,
            "  … and {} more over the gate (buildopt-report.json)",
            failing.len() - MAX_FAILING_LINES
        );
    }
}

/// One line for the restore and one for the export, or their warnings.
fn write_cache(out: &mut String, cache: &CacheReport) {
    let _ = match &cache.restore.warning {
        Some(warning) => writeln!(out, "cache restore: {}", console_line(warning)),
        None => writeln!(out, "cache restore: {}", restore_figures(&cache.restore)),
    };
    for note in &cache.restore.notes {
        let _ = writeln!(out, "cache restore note: {}", console_line(note));
    }
    let _ = match cache.export.as_ref().map(|e| (e, &e.warning)) {
        None => writeln!(out, "cache export: skipped (interrupted)"),
        Some((_, Some(warning))) => writeln!(out, "cache export: {}", console_line(warning)),
        Some((export, None)) => writeln!(out, "cache export: {}", export_figures(export)),
    };
}

/// The figures of one image as the tables print them; `-` where there is none.
pub struct ImageFigures {
    /// Its duration (`-` when skipped).
    pub took: String,
    /// `cached/total` steps.
    pub cached: String,
    pub size: String,
    /// Against `previous_size`: `+400.0 kB (+10.0%)`, `no change`.
    pub change: String,
}

impl ImageFigures {
    pub fn of(image: &ImageReport) -> Self {
        let dash = || "-".to_string();
        Self {
            took: if image.result == ImageResult::Skipped {
                dash()
            } else {
                duration(image.duration_ms)
            },
            cached: if image.steps.is_empty() {
                dash()
            } else {
                format!("{}/{}", image.cached_steps(), image.steps.len())
            },
            size: image.size.map_or_else(dash, size),
            change: match (image.size, image.previous_size) {
                (Some(now), Some(before)) => size_change(before, now),
                _ => dash(),
            },
        }
    }
}

/// `1 built, 2 reused, 0 failed, 1 skipped`.
pub fn counts(report: &RunReport) -> String {
    [
        ImageResult::Built,
        ImageResult::Reused,
        ImageResult::Failed,
        ImageResult::Skipped,
    ]
    .map(|result| format!("{} {}", report.count(result), result.as_str()))
    .join(", ")
}

/// `2 images loaded (2.0 MB), 1 already in the daemon, in 1.5 s`.
pub fn restore_figures(restore: &CacheRestore) -> String {
    format!(
        "{} images loaded ({}), {} already in the daemon, in {}",
        restore.loaded.len(),
        size(restore.bytes),
        restore.already_in_daemon.len(),
        duration(restore.duration_ms)
    )
}

/// `1 images saved, 2 new blobs (512 B), 0 entries pruned, in 850 ms`.
pub fn export_figures(export: &CacheExport) -> String {
    format!(
        "{} images saved, {} new blobs ({}), {} entries pruned, in {}",
        export.saved.len(),
        export.new_blobs,
        size(export.new_bytes),
        export.pruned.len(),
        duration(export.duration_ms)
    )
}

/// The versioned JSON form.
pub fn json(report: &RunReport) -> String {
    escape::console_json(&serde_json::to_string_pretty(report).unwrap_or_default())
}

fn row(image: &ImageReport) -> [String; 6] {
    let result = match &image.skip_reason {
        Some(reason) => format!("{}: {}", image.result.as_str(), console_line(reason)),
        None => image.result.as_str().to_string(),
    };
    let figures = ImageFigures::of(image);
    [
        console_name(&image.name),
        result,
        figures.took,
        figures.cached,
        match (image.size, image.previous_size) {
            (Some(now), Some(before)) if before != now => {
                format!("{} (was {})", figures.size, size(before))
            }
            _ => figures.size,
        },
        if image.tags.is_empty() {
            "-".into()
        } else {
            let tags: Vec<String> = image.tags.iter().map(|t| console_name(t)).collect();
            tags.join(", ")
        },
    ]
}

fn write_row(out: &mut String, cells: &[String; 6], widths: &[usize; 6]) {
    let mut line = String::new();
    for (cell, width) in cells.iter().zip(widths) {
        let _ = write!(line, "{cell:width$}  ");
    }
    let _ = writeln!(out, "{}", line.trim_end());
}

/// `api: linux/amd64 2.5 kB (3 steps, 1 cached), linux/arm64 2.4 kB (3 steps, 0 cached)`.
fn write_platforms(out: &mut String, image: &ImageReport) {
    if image.platforms.is_empty() {
        return;
    }
    let each: Vec<String> = image
        .platforms
        .iter()
        .map(|p| {
            let steps: Vec<_> = image.steps_of(&p.platform).collect();
            let cached = steps.iter().filter(|s| s.cached).count();
            let noun = if steps.len() == 1 { "step" } else { "steps" };
            format!(
                "{} {} ({} {noun}, {cached} cached)",
                console_line(&p.platform),
                size(p.size),
                steps.len()
            )
        })
        .collect();
    let _ = writeln!(out, "{}: {}", console_name(&image.name), each.join(", "));
}

fn write_failure(out: &mut String, image: &ImageReport) {
    let Some(failure) = &image.failure else {
        return;
    };
    let at = match (&failure.step, failure.line) {
        (Some(step), Some(line)) => format!(" at {} (Dockerfile line {line})", console_line(step)),
        (Some(step), None) => format!(" at {}", console_line(step)),
        _ => String::new(),
    };
    let (name, message) = (console_name(&image.name), console_line(&failure.message));
    let _ = writeln!(out, "\n{name} failed{at}: {message}");
    for line in &failure.log_tail {
        let _ = writeln!(out, "  | {}", console_line(line));
    }
}

fn write_warnings(out: &mut String, image: &ImageReport) {
    for warning in &image.warnings {
        let (name, message) = (console_name(&image.name), console_line(&warning.message));
        let _ = writeln!(out, "\nwarning: {name}: {message}");
        for line in &warning.log_tail {
            let _ = writeln!(out, "  | {}", console_line(line));
        }
    }
}

/// `850 ms`, `3.2 s`, `2 m 05 s`.
pub fn duration(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} m {:02} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// `+400.0 kB (+10.0%)`, `-1.2 MB (-3.5%)`, `no change`.
pub fn size_change(before: u64, now: u64) -> String {
    if before == now {
        return "no change".to_string();
    }
    let sign = if now > before { '+' } else { '-' };
    let amount = size(now.abs_diff(before));
    if before == 0 {
        return format!("{sign}{amount}");
    }
    let percent = now.abs_diff(before) as f64 * 100.0 / before as f64;
    format!("{sign}{amount} ({sign}{percent:.1}%)")
}

/// `512 B`, `2.0 MB` (decimal units, as the docker CLI prints).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{
        CacheExport, CacheRestore, CleanupReport, ContextSize, Failure, RUN_REPORT_VERSION,
        RunInfo, StepReport,
    };

    fn image(name: &str, result: ImageResult) -> ImageReport {
        ImageReport {
            duration_ms: 3200,
            context: Some(ContextSize {
                bytes: 10,
                files: 2,
            }),
            size: Some(2_100_000),
            layers: Some(3),
            image_id: Some("sha256:abc".into()),
            tags: vec![format!("{name}:latest")],
            ..ImageReport::new(name.into(), name.into(), result, format!("blake3:{name}"))
        }
    }

    fn step(name: &str, cached: bool) -> StepReport {
        StepReport {
            name: name.into(),
            line: Some(2),
            duration_ms: 10,
            cached,
            platform: None,
        }
    }

    #[test]
    fn hostile_names_and_output_cannot_start_a_command_or_reach_the_terminal() {
        let mut report = crate::report::fixtures::hostile_report();
        for image in &mut report.images {
            image.tags = vec![
                "t\u{1b}]8;;http://evil\u{7}x".into(),
                "\n::add-mask::x".into(),
            ];
            image.warnings = vec![crate::report::model::Warning {
                message: "w\r::warning::x\u{9b}31m".into(),
                log_tail: vec!["::stop-commands::t".into()],
            }];
        }
        let table = table(&report);
        assert!(
            !table.contains(['\u{1b}', '\u{9b}', '\r', '\u{0}']),
            "{table}"
        );
        for line in table.lines() {
            assert!(!line.trim().starts_with("::"), "{line:?} in {table}");
        }
    }

    #[test]
    fn final_table() {
        let mut base = image("base", ImageResult::Built);
        base.steps = vec![
            step("[1/3] FROM busybox", true),
            step("[2/3] COPY motd", false),
        ];
        let reused = image("linter", ImageResult::Reused);
        let mut failed = image("api", ImageResult::Failed);
        failed.size = None;
        failed.tags = Vec::new();
        failed.failure = Some(Failure {
            step: Some("[3/4] RUN make".into()),
            line: Some(4),
            message: "exit code: 2".into(),
            log_tail: vec!["make: *** no rule".into()],
        });
        let mut skipped = image("worker", ImageResult::Skipped);
        skipped.skip_reason = Some("parent failed".into());
        skipped.size = None;
        skipped.tags = Vec::new();
        let report = RunReport {
            version: RUN_REPORT_VERSION,
            run: RunInfo {
                base: Some("a".repeat(40)),
                head: "b".repeat(40),
                range_reason: "merge base".into(),
                engine: None,
                ..crate::report::fixtures::run_info()
            },
            images: vec![base, reused, failed, skipped],
            cleanup: Some(CleanupReport {
                dangling_images_bytes: 1500,
                build_cache_bytes: 3_000_000,
                retention_days: 7,
            }),
            cache: None,
            scan: None,
        };
        insta::assert_snapshot!(table(&report));
    }

    #[test]
    fn a_scanned_run_ends_with_its_vulnerabilities_and_the_findings_over_the_gate() {
        let text = table(&crate::report::fixtures::scan_report());
        let at = text
            .find("Vulnerabilities:")
            .expect("the vulnerability line");
        insta::assert_snapshot!(&text[at..]);
        let hostile = table(&crate::report::fixtures::hostile_scan_report());
        for line in hostile.lines() {
            assert!(!line.trim().starts_with("::"), "{line:?}");
            assert!(!line.contains('\u{1b}'), "{line:?}");
        }
        let mut unscanned = crate::report::fixtures::unscanned_report();
        assert!(table(&unscanned).contains("not scanned: no vulnerability database"));
        unscanned.scan = None;
        assert!(!table(&unscanned).contains("Vulnerabilities"));
    }

    #[test]
    fn the_table_ends_with_the_cache_figures_or_warnings() {
        let mut report = crate::report::fixtures::report();
        report.cache = Some(CacheReport {
            store: "/ci/.build_cache".into(),
            restore: CacheRestore {
                loaded: vec!["acme/base".into(), "acme/api".into()],
                already_in_daemon: vec!["acme/linter".into()],
                bytes: 2_000_000,
                duration_ms: 1500,
                warning: None,
                notes: Vec::new(),
            },
            export: Some(CacheExport {
                saved: vec!["acme/api".into()],
                new_blobs: 2,
                new_bytes: 512,
                pruned: Vec::new(),
                duration_ms: 850,
                warning: None,
            }),
        });
        let text = table(&report);
        assert!(
            text.contains(
                "cache restore: 2 images loaded (2.0 MB), 1 already in the daemon, in 1.5 s"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "cache export: 1 images saved, 2 new blobs (512 B), 0 entries pruned, in 850 ms"
            ),
            "{text}"
        );
        let cache = report.cache.as_mut().expect("cache");
        cache.restore.warning = Some("cache restore failed: index.json: bad".into());
        cache.export = None;
        let text = table(&report);
        assert!(
            text.contains("cache restore: cache restore failed: index.json: bad"),
            "{text}"
        );
        assert!(
            text.contains("cache export: skipped (interrupted)"),
            "{text}"
        );
    }

    #[test]
    fn an_image_for_several_platforms_gets_a_line_with_each_ones_size_and_steps() {
        let mut image = image("api", ImageResult::Built);
        let mut amd64 = step("[linux/amd64 2/2] RUN make", true);
        amd64.platform = Some("linux/amd64".into());
        let mut arm64 = step("[linux/amd64->arm64 2/2] RUN make", false);
        arm64.platform = Some("linux/arm64".into());
        image.steps = vec![
            step("[internal] load remote build context", false),
            amd64,
            arm64,
        ];
        image.platforms = ["linux/amd64", "linux/arm64"]
            .into_iter()
            .map(|platform| super::super::model::PlatformReport {
                platform: platform.into(),
                manifest: "sha256:0".into(),
                size: 2_500,
            })
            .collect();
        let report = RunReport {
            images: vec![image],
            ..super::super::fixtures::report()
        };
        let table = table(&report);
        assert!(
            table.contains(
                "\napi: linux/amd64 2.5 kB (1 step, 1 cached), linux/arm64 2.5 kB (1 step, 0 cached)\n"
            ),
            "{table}"
        );
    }

    #[test]
    fn the_size_column_shows_the_size_before_the_run_when_it_changed() {
        let mut grown = image("grown", ImageResult::Built);
        grown.size = Some(4_400_000);
        grown.previous_size = Some(4_000_000);
        let mut same = image("same", ImageResult::Reused);
        same.size = Some(2_000_000);
        same.previous_size = Some(2_000_000);
        let rows: Vec<String> = [grown, same].iter().map(|i| row(i)[4].clone()).collect();
        assert_eq!(rows, ["4.4 MB (was 4.0 MB)", "2.0 MB"]);
    }

    #[test]
    fn size_changes_are_signed_with_a_percentage() {
        assert_eq!(size_change(4_000_000, 4_400_000), "+400.0 kB (+10.0%)");
        assert_eq!(size_change(4_000_000, 3_000_000), "-1.0 MB (-25.0%)");
        assert_eq!(size_change(5, 5), "no change");
        assert_eq!(size_change(0, 2_000), "+2.0 kB");
    }

    #[test]
    fn durations_and_sizes_are_short() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(3250), "3.2 s");
        assert_eq!(duration(125_000), "2 m 05 s");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(2_000_000), "2.0 MB");
    }
}
