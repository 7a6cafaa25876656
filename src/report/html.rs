//! The HTML report of a run: one self-contained page (inline CSS and SVG, no scripts, no external
//! assets, no links) that the `ci` command writes to `buildopt-report.html` for a CI artifact.
//!
//! Owns the page layout: the heading with counts and range, a bar chart of each image's build
//! time and share of cached steps, the image table (with size change and the intermediate
//! stages level maximum builds), the vulnerabilities when the run matched its images (counts by
//! severity and the gate, every finding with those new since the base first), failures with
//! their log tail, the cache restore and export, and the cleanup. Every piece of repository,
//! build or vulnerability-record text goes through [`super::escape::html_text`].

use std::fmt::Write as _;

use super::escape::{html_text, shorten};
use super::findings_section::{self as findings, NOT_SCANNED, Vulnerabilities};
use super::model::{CacheReport, ImageReport, ImageResult, RunReport, RunScan};
use super::run::{ImageFigures, counts, duration, export_figures, restore_figures, size};

/// Images drawn in the chart; the table lists them all.
const MAX_CHART_IMAGES: usize = 60;
/// Caps on single pieces of text, so one runaway line cannot swamp the page.
const MAX_NAME_CHARS: usize = 200;
const MAX_TEXT_CHARS: usize = 2_000;
const MAX_LOG_LINE_CHARS: usize = 1_000;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#1f2328}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #d0d7de;padding:4px 8px;\
text-align:left;vertical-align:top}th{background:#f6f8fa}td.n{text-align:right}\
.built{color:#1a7f37}.reused{color:#0969da}.failed{color:#cf222e}.skipped{color:#6e7781}\
pre{background:#f6f8fa;padding:8px;overflow-x:auto}svg text{font-size:12px}\
.warning{color:#9a6700}.critical,.high,.fails{color:#cf222e;font-weight:bold}\
.medium{color:#9a6700}";

/// The whole page.
pub fn html(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>buildopt report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    );
    heading(&mut out, report);
    chart(&mut out, &report.images);
    table(&mut out, &report.images);
    if let Some(scan) = &report.scan {
        vulnerabilities(&mut out, scan);
    }
    failures(&mut out, &report.images);
    if let Some(cache) = &report.cache {
        cache_section(&mut out, cache);
    }
    if let Some(cleanup) = &report.cleanup {
        let _ = writeln!(
            out,
            "<p>Cleanup freed {}: dangling images {}, build cache older than {} days {}.</p>",
            size(cleanup.dangling_images_bytes + cleanup.build_cache_bytes),
            size(cleanup.dangling_images_bytes),
            cleanup.retention_days,
            size(cleanup.build_cache_bytes),
        );
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn text(value: &str, max: usize) -> String {
    html_text(&shorten(value, max))
}

fn heading(out: &mut String, report: &RunReport) {
    let counts = counts(report);
    let interrupted = if report.run.interrupted {
        " (interrupted)"
    } else {
        ""
    };
    let _ = writeln!(out, "<h1>buildopt: {counts}{interrupted}</h1>");
    let run = &report.run;
    let reason = text(&run.range_reason, MAX_TEXT_CHARS);
    let head = html_text(&run.head);
    let range = match &run.base {
        Some(base) => format!(
            "Range <code>{}</code> → <code>{head}</code> ({reason})",
            html_text(base)
        ),
        None => format!("Everything built at <code>{head}</code> ({reason})"),
    };
    let _ = writeln!(
        out,
        "<p>{range} · level {} · {} · {} jobs · started {} · {}</p>",
        html_text(run.level.as_str()),
        html_text(run.builder.as_str()),
        run.jobs,
        html_text(&run.started),
        duration(run.duration_ms)
    );
}

/// Two bars per image that ran: its build time (scaled to the longest) and its share of cached
/// steps, with the figures written next to them.
fn chart(out: &mut String, images: &[ImageReport]) {
    let ran: Vec<&ImageReport> = images
        .iter()
        .filter(|i| i.result != ImageResult::Skipped)
        .collect();
    if ran.is_empty() {
        return;
    }
    let shown = &ran[..ran.len().min(MAX_CHART_IMAGES)];
    let longest = shown
        .iter()
        .map(|i| i.duration_ms)
        .max()
        .unwrap_or(0)
        .max(1);
    const ROW: usize = 22;
    const LABEL: usize = 180;
    const TIME: usize = 300;
    const RATIO: usize = 150;
    let width = LABEL + TIME + 90 + RATIO + 60;
    let height = ROW * (shown.len() + 1);
    out.push_str("<h2>Build time and cached steps</h2>\n");
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         role=\"img\" aria-label=\"build time and cached steps per image\">"
    );
    let ratio_x = LABEL + TIME + 90;
    let _ = writeln!(
        out,
        "<text x=\"{LABEL}\" y=\"14\">build time</text><text x=\"{ratio_x}\" y=\"14\">cached steps</text>"
    );
    for (row, image) in shown.iter().enumerate() {
        let y = ROW * (row + 1);
        let bar = (image.duration_ms as f64 / longest as f64 * TIME as f64).round() as usize;
        let _ = writeln!(
            out,
            "<text x=\"0\" y=\"{}\">{}</text>\
             <rect x=\"{LABEL}\" y=\"{}\" width=\"{}\" height=\"14\" fill=\"#0969da\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            y + 13,
            text(&image.name, 24),
            y + 2,
            bar.max(1),
            LABEL + bar.max(1) + 4,
            y + 13,
            duration(image.duration_ms)
        );
        let (fill, label) = match image.cached_ratio() {
            Some(ratio) => (
                (ratio * RATIO as f64).round() as usize,
                format!("{}/{}", image.cached_steps(), image.steps.len()),
            ),
            None => (0, "-".to_string()),
        };
        let _ = writeln!(
            out,
            "<rect x=\"{ratio_x}\" y=\"{}\" width=\"{RATIO}\" height=\"14\" fill=\"#d0d7de\"/>\
             <rect x=\"{ratio_x}\" y=\"{}\" width=\"{fill}\" height=\"14\" fill=\"#1a7f37\"/>\
             <text x=\"{}\" y=\"{}\">{label}</text>",
            y + 2,
            y + 2,
            ratio_x + RATIO + 4,
            y + 13,
        );
    }
    out.push_str("</svg>\n");
    if shown.len() < ran.len() {
        let _ = writeln!(
            out,
            "<p>The chart shows the first {} of {} images that ran; the table lists all.</p>",
            shown.len(),
            ran.len()
        );
    }
}

fn table(out: &mut String, images: &[ImageReport]) {
    out.push_str("<h2>Images</h2>\n");
    if images.is_empty() {
        out.push_str("<p>No images.</p>\n");
        return;
    }
    out.push_str(
        "<table>\n<tr><th>Image</th><th>Result</th><th>Duration</th><th>Cached steps</th>\
         <th>Size</th><th>Change</th><th>Stages</th><th>Why</th></tr>\n",
    );
    for image in images {
        let result = image.result.as_str();
        let result_cell = match &image.skip_reason {
            Some(why) => format!("{result} ({})", text(why, MAX_TEXT_CHARS)),
            None => result.to_string(),
        };
        let ImageFigures {
            took,
            cached,
            size,
            change,
        } = ImageFigures::of(image);
        let stages = if image.stages.is_empty() {
            "-".to_string()
        } else {
            image
                .stages
                .iter()
                .map(|s| {
                    format!(
                        "{}: {}, {}/{} cached",
                        text(&s.name, MAX_NAME_CHARS),
                        duration(s.duration_ms),
                        s.cached_steps(),
                        s.steps.len()
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let why = image
            .reasons
            .iter()
            .map(|r| text(&r.detail, MAX_TEXT_CHARS))
            .collect::<Vec<_>>()
            .join("<br>");
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"{result}\">{result_cell}</td><td class=\"n\">{took}</td>\
             <td class=\"n\">{cached}</td><td class=\"n\">{size}</td><td class=\"n\">{change}</td>\
             <td>{stages}</td><td>{why}</td></tr>",
            text(&image.name, MAX_NAME_CHARS),
        );
    }
    out.push_str("</table>\n");
}

/// The scan's section: counts and the gate, images not scanned or without a known base, then
/// every finding (a page has no size limit), new since the base first. A scan that only listed
/// packages gets one line, never "0 vulnerabilities".
fn vulnerabilities(out: &mut String, scan: &RunScan) {
    let scan = match Vulnerabilities::of(scan) {
        Vulnerabilities::InventoryOnly { images: 0, .. } => return,
        Vulnerabilities::InventoryOnly { images, packages } => {
            let _ = writeln!(
                out,
                "<p>Scanned {images} images: {packages} packages (not matched against vulnerability data).</p>"
            );
            return;
        }
        Vulnerabilities::NotScanned => {
            let _ = writeln!(
                out,
                "<h2>Vulnerabilities</h2>\n<p class=\"failed\"><strong>{NOT_SCANNED}</strong></p>"
            );
            scan_warnings(out, scan);
            return;
        }
        Vulnerabilities::Matched(scan) => scan,
    };
    out.push_str("<h2>Vulnerabilities</h2>\n");
    let mut facts = vec![findings::counts_text(&scan.counts(), false)];
    if let Some(gate) = scan.policy.as_ref().and_then(findings::gate) {
        facts.push(format!("{} fail the gate ({gate})", scan.failing()));
    }
    if let Some(base) = &scan.base {
        facts.push(format!(
            "{} new since <code>{}</code>",
            scan.new_findings(),
            html_text(base)
        ));
    }
    if let Some(database) = findings::database(scan) {
        let age = findings::database_age(scan).map(|age| format!(", {}", html_text(&age)));
        facts.push(format!(
            "database <code>{}</code>{}",
            text(database, MAX_NAME_CHARS),
            age.unwrap_or_default()
        ));
    }
    let _ = writeln!(out, "<p>{}</p>", facts.join(" · "));
    for image in scan.unscanned() {
        let _ = writeln!(
            out,
            "<p class=\"failed\">{}: {NOT_SCANNED}</p>",
            text(&image.image, MAX_NAME_CHARS)
        );
    }
    for image in &scan.base_unknown {
        let sentence = findings::base_unknown_sentence(&shorten(image, MAX_NAME_CHARS));
        let _ = writeln!(out, "<p>{}</p>", html_text(&sentence));
    }
    for (image, counts) in findings::not_matched(scan) {
        let _ = writeln!(
            out,
            "<p>{}: {}</p>",
            text(&image, MAX_NAME_CHARS),
            html_text(&counts)
        );
    }
    findings_table(out, scan);
    scan_warnings(out, scan);
}

fn findings_table(out: &mut String, scan: &RunScan) {
    let rows = findings::rows(scan);
    if rows.is_empty() {
        return;
    }
    let labels = findings::image_labels(scan);
    out.push_str(
        "<table>\n<tr><th>New</th><th>Severity</th><th>ID</th><th>Package</th><th>Installed</th>\
         <th>Fixed in</th><th>Image</th><th>Introduced by</th><th>Gate</th></tr>\n",
    );
    for row in rows {
        let finding = row.finding;
        let severity = finding.severity.as_str();
        let score = finding
            .score
            .map(|score| format!(" {score:.1}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"{severity}\">{severity}{score}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"fails\">{}</td></tr>",
            if row.is_new() { "new" } else { "" },
            text(&finding.id, MAX_NAME_CHARS),
            text(&finding.package, MAX_NAME_CHARS),
            text(&finding.installed_version, MAX_NAME_CHARS),
            text(findings::fixed(finding), MAX_NAME_CHARS),
            text(&labels.label(row.image), MAX_NAME_CHARS),
            text(&findings::origin(finding), MAX_NAME_CHARS),
            if finding.fails_gate { "fails" } else { "" },
        );
    }
    out.push_str("</table>\n");
}

fn scan_warnings(out: &mut String, scan: &RunScan) {
    for line in scan.errors.iter().chain(&scan.warnings) {
        let _ = writeln!(
            out,
            "<p class=\"warning\">{}</p>",
            text(line, MAX_TEXT_CHARS)
        );
    }
}

fn failures(out: &mut String, images: &[ImageReport]) {
    let failed: Vec<&ImageReport> = images.iter().filter(|i| i.failure.is_some()).collect();
    let warned: Vec<&ImageReport> = images.iter().filter(|i| !i.warnings.is_empty()).collect();
    if !failed.is_empty() {
        out.push_str("<h2>Failures</h2>\n");
    }
    for image in failed {
        let Some(failure) = &image.failure else {
            continue;
        };
        let at = match (&failure.step, failure.line) {
            (Some(step), Some(line)) => format!(
                " at <code>{}</code> (Dockerfile line {line})",
                text(step, MAX_TEXT_CHARS)
            ),
            (Some(step), None) => format!(" at <code>{}</code>", text(step, MAX_TEXT_CHARS)),
            (None, Some(line)) => format!(" at Dockerfile line {line}"),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "<p><strong>{}</strong> failed{at}: {}</p>",
            text(&image.name, MAX_NAME_CHARS),
            text(&failure.message, MAX_TEXT_CHARS)
        );
        log_tail(out, &failure.log_tail);
    }
    if !warned.is_empty() {
        out.push_str("<h2>Warnings</h2>\n");
    }
    for image in warned {
        for warning in &image.warnings {
            let _ = writeln!(
                out,
                "<p class=\"warning\"><strong>{}</strong>: {}</p>",
                text(&image.name, MAX_NAME_CHARS),
                text(&warning.message, MAX_TEXT_CHARS)
            );
            log_tail(out, &warning.log_tail);
        }
    }
}

fn log_tail(out: &mut String, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let lines: Vec<String> = lines
        .iter()
        .map(|line| text(line, MAX_LOG_LINE_CHARS))
        .collect();
    let _ = writeln!(out, "<pre>{}</pre>", lines.join("\n"));
}

fn cache_section(out: &mut String, cache: &CacheReport) {
    out.push_str("<h2>Cache</h2>\n<ul>\n");
    let _ = writeln!(
        out,
        "<li>Store: <code>{}</code></li>",
        html_text(&cache.store)
    );
    let restore = &cache.restore;
    let _ = match &restore.warning {
        Some(warning) => writeln!(
            out,
            "<li class=\"warning\">Restore: {} (a cache miss)</li>",
            text(warning, MAX_TEXT_CHARS)
        ),
        None => writeln!(out, "<li>Restore: {}</li>", restore_figures(restore)),
    };
    let _ = match &cache.export {
        None => writeln!(out, "<li>Export: skipped (the run was interrupted)</li>"),
        Some(export) => match &export.warning {
            Some(warning) => writeln!(
                out,
                "<li class=\"warning\">Export: {}</li>",
                text(warning, MAX_TEXT_CHARS)
            ),
            None => writeln!(out, "<li>Export: {}</li>", export_figures(export)),
        },
    };
    out.push_str("</ul>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{self, HOSTILE};
    use crate::report::model::StageReport;

    /// The element names the page opens, in order of first use.
    fn elements(page: &str) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for part in page.split('<').skip(1) {
            let name: String = part
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
                .collect();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    #[test]
    fn page_of_a_mixed_run() {
        let mut report = fixtures::report();
        report.images[0].stages = vec![StageReport {
            name: "builder".into(),
            reference: "registry.example.com/base:stage-builder".into(),
            duration_ms: 2100,
            steps: vec![
                fixtures::step("[builder 1/2] FROM busybox", 1, true),
                fixtures::step("[builder 2/2] RUN make", 2, true),
            ],
        }];
        let page = html(&report);
        insta::assert_snapshot!(page);
        assert!(page.contains("builder: 2.1 s, 2/2 cached"));
        assert!(page.contains("+400.0 kB (+10.0%)"));
        assert!(page.contains("<li>Restore: 1 images loaded (2.0 MB)"));
    }

    #[test]
    fn hostile_text_is_escaped_and_the_page_is_self_contained() {
        let page = html(&fixtures::hostile_report());
        insta::assert_snapshot!(page);
        assert!(!page.contains(HOSTILE));
        let allowed = [
            "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "h1", "p", "code", "h2",
            "svg", "text", "rect", "table", "tr", "th", "td", "br", "strong", "pre", "ul", "li",
        ];
        for element in elements(&page) {
            assert!(
                allowed.contains(&element.as_str()),
                "<{element} in the page"
            );
        }
        for needle in [
            "<script",
            "<!-- buildopt",
            "href=",
            "src=",
            "url(",
            "\u{1b}",
            "\r",
        ] {
            assert!(!page.contains(needle), "{needle:?} in the page");
        }
        // The only comment-like text is escaped.
        assert!(page.contains("&lt;!-- buildopt:summary --&gt;"));
    }

    #[test]
    fn many_images_are_all_in_the_table_and_the_chart_is_capped() {
        let report = fixtures::many_images(200);
        let page = html(&report);
        assert!(page.contains("<td>image-00199</td>"));
        assert!(page.contains("The chart shows the first 60 of 150 images that ran"));
        assert_eq!(page.matches("fill=\"#0969da\"").count(), MAX_CHART_IMAGES);
    }

    #[test]
    fn vulnerability_section_of_a_scanned_run() {
        let page = html(&fixtures::scan_report());
        let start = page.find("<h2>Vulnerabilities</h2>").expect("section");
        let end = page[start..].find("<h2>Failures</h2>").expect("failures") + start;
        let section = &page[start..end];
        insta::assert_snapshot!(section);
        let first_old = section.find("<tr><td></td>").expect("old finding");
        let last_new = section.rfind("<tr><td>new</td>").expect("new finding");
        assert!(last_new < first_old);
        assert!(page.find("<h2>Images</h2>") < Some(start));
    }

    #[test]
    fn an_unscanned_run_says_so_and_an_inventory_only_one_counts_packages() {
        let page = html(&fixtures::unscanned_report());
        assert!(page.contains("<strong>not scanned: no vulnerability database</strong>"));
        assert!(!page.contains("<th>Severity</th>"));
        let mut report = fixtures::scan_report();
        if let Some(scan) = report.scan.as_mut() {
            scan.policy = None;
        }
        let page = html(&report);
        assert!(!page.contains("Vulnerabilities") && !page.contains("0 critical"));
        assert!(page.contains("<p>Scanned 4 images: 0 packages"));
    }

    #[test]
    fn hostile_vulnerability_text_is_escaped() {
        let page = html(&fixtures::hostile_scan_report());
        for needle in ["<script", "<!-- buildopt", "href=", "src=", "\u{1b}", "\r"] {
            assert!(!page.contains(needle), "{needle:?} in the page");
        }
        assert!(page.contains("<td>CVE-2023-::error file=x::pwned"));
    }
}
