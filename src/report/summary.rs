//! The Markdown report of a run for GitHub: the job summary (`$GITHUB_STEP_SUMMARY`) and the
//! sticky PR comment, which differ only in their size budget and the comment's hidden marker.
//!
//! Owns the layout (heading with counts, range, one table row per image with its size change,
//! the vulnerabilities when the run matched its images, reasons, failures with their log tail,
//! the cache restore and export, cleanup) and fitting it under a budget. GitHub drops a job
//! summary over 1 MiB whole and rejects a comment over 65,536 characters, so the least important
//! parts go first — reasons, then log-tail lines, then findings rows (least severe first), then
//! failure details, then table rows — and the text says what was left out. Every piece of
//! repository, build or vulnerability-record text goes through [`super::escape`].

use std::fmt::Write as _;

use super::escape::{code_block, code_span, markdown_text, shorten};
use super::findings_section::{self as findings, FULL_FINDINGS, NOT_SCANNED, Row, Vulnerabilities};
use super::model::{CacheReport, ImageReport, ImageResult, RunReport, RunScan};
use super::run::{ImageFigures, counts, duration, export_figures, restore_figures, size};
use super::scan_sarif::osv_link;

/// The job summary budget in bytes: GitHub's limit is 1 MiB, but content just under it has been
/// dropped silently (actions/runner#4337), so stay near 1,000,000.
pub const JOB_SUMMARY_BUDGET: usize = 1_000_000;

/// The PR comment budget: GitHub rejects bodies over 65,536 characters. Counted in bytes here,
/// which is never fewer than characters.
pub const PR_COMMENT_BUDGET: usize = 65_536;

/// Where readers find what a shortened report left out.
const FULL_REPORT: &str = "buildopt-report.json";

/// Caps that apply at every budget: one runaway log line or message must not crowd out the rest.
const MAX_NAME_CHARS: usize = 200;
const MAX_REASON_CHARS: usize = 500;
const MAX_MESSAGE_CHARS: usize = 2_000;
const MAX_LOG_LINE_CHARS: usize = 1_000;
/// Caps on a findings row's cells: ids, versions and package names are short in real records.
const MAX_ID_CHARS: usize = 100;
const MAX_VERSION_CHARS: usize = 100;

/// The job summary, within [`JOB_SUMMARY_BUDGET`].
pub fn job_summary(report: &RunReport) -> String {
    markdown(report, JOB_SUMMARY_BUDGET)
}

/// The sticky PR comment: the hidden marker for `header`, then the report, within
/// [`PR_COMMENT_BUDGET`].
pub fn pr_comment(report: &RunReport, header: &str) -> String {
    let marker = comment_marker(header);
    let body = markdown(report, PR_COMMENT_BUDGET.saturating_sub(marker.len() + 1));
    format!("{marker}\n{body}")
}

/// The hidden HTML comment that finds a sticky comment again: `<!-- buildopt:HEADER -->`.
///
/// The header keeps ASCII letters, digits, `.`, `_` and `-` (anything else becomes `-`, at most
/// 64 characters, `default` when empty), so it cannot close the comment or hold another marker.
pub fn comment_marker(header: &str) -> String {
    let header: String = header
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let header = if header.is_empty() {
        "default"
    } else {
        &header
    };
    format!("<!-- buildopt:{header} -->")
}

/// The report as Markdown within `budget` bytes. An image's size change is from its
/// `previous_size` (the image that held `<repository>:latest` before the run).
pub fn markdown(report: &RunReport, budget: usize) -> String {
    let page = Page::new(report);
    let failures = report.count(ImageResult::Failed);
    let findings = page.findings.len();
    let full = Detail {
        reasons: true,
        tail_lines: usize::MAX,
        findings,
        failures,
        rows: report.images.len(),
    };
    let fits = |detail: Detail| {
        let text = page.render(detail);
        (text.len() <= budget).then_some(text)
    };
    let lighter = [
        full,
        Detail {
            reasons: false,
            ..full
        },
        Detail {
            reasons: false,
            tail_lines: 20,
            ..full
        },
        Detail {
            reasons: false,
            tail_lines: 5,
            ..full
        },
        Detail {
            reasons: false,
            tail_lines: 0,
            ..full
        },
    ];
    if let Some(text) = lighter.into_iter().find_map(fits) {
        return text;
    }
    let without_tails = Detail {
        reasons: false,
        tail_lines: 0,
        ..full
    };
    let kept = most_that_fit(findings, |n| {
        fits(Detail {
            findings: n,
            ..without_tails
        })
        .is_some()
    });
    if let Some(text) = kept.and_then(|n| {
        fits(Detail {
            findings: n,
            ..without_tails
        })
    }) {
        return text;
    }
    let bare = Detail {
        reasons: false,
        tail_lines: 0,
        findings: 0,
        failures: 0,
        rows: report.images.len(),
    };
    let shown = most_that_fit(failures, |n| {
        fits(Detail {
            failures: n,
            ..bare
        })
        .is_some()
    });
    if let Some(n) = shown {
        return fits(Detail {
            failures: n,
            ..bare
        })
        .unwrap_or_default();
    }
    let rows = most_that_fit(report.images.len(), |n| {
        fits(Detail { rows: n, ..bare }).is_some()
    });
    match rows.and_then(|n| fits(Detail { rows: n, ..bare })) {
        Some(text) => text,
        None => cut(&page.render(Detail { rows: 0, ..bare }), budget),
    }
}

/// How much of the report to show.
#[derive(Debug, Clone, Copy)]
struct Detail {
    reasons: bool,
    /// Log-tail lines per failure.
    tail_lines: usize,
    /// Vulnerability findings listed (the most severe).
    findings: usize,
    /// Failures shown with their step, message and log tail.
    failures: usize,
    /// Images listed in the table.
    rows: usize,
}

/// The largest `n` in `0..=max` for which `fits(n)`, assuming that fewer always fit too.
fn most_that_fit(max: usize, fits: impl Fn(usize) -> bool) -> Option<usize> {
    if !fits(0) {
        return None;
    }
    let (mut low, mut high) = (0, max);
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if fits(mid) { low = mid } else { high = mid - 1 }
    }
    Some(low)
}

/// The last resort when even the heading and notice are too long: cut at a line break within
/// the budget and say so. Unreachable with the standard budgets; kept for tiny ones.
fn cut(text: &str, budget: usize) -> String {
    const NOTE: &str = "\n_Cut to fit the size limit._\n";
    let room = budget.saturating_sub(NOTE.len());
    let mut end = room.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let end = text[..end].rfind('\n').map_or(0, |i| i + 1);
    format!("{}{NOTE}", &text[..end])
}

struct Page<'a> {
    report: &'a RunReport,
    /// The findings in reading order, when the run matched its images.
    findings: Vec<Row<'a>>,
}

impl<'a> Page<'a> {
    fn new(report: &'a RunReport) -> Self {
        let findings = match report.scan.as_ref().map(Vulnerabilities::of) {
            Some(Vulnerabilities::Matched(scan)) => findings::rows(scan),
            _ => Vec::new(),
        };
        Self { report, findings }
    }

    fn render(&self, detail: Detail) -> String {
        let mut out = String::new();
        self.heading(&mut out);
        self.table(&mut out, detail.rows);
        if let Some(scan) = &self.report.scan {
            self.vulnerabilities(&mut out, scan, detail.findings);
        }
        if detail.reasons {
            self.reasons(&mut out);
        }
        self.failures(&mut out, detail);
        if let Some(cache) = &self.report.cache {
            cache_figures(&mut out, cache);
        }
        self.cleanup(&mut out);
        self.shortened_notice(&mut out, detail);
        out
    }

    fn heading(&self, out: &mut String) {
        let report = self.report;
        let counts = counts(report);
        let interrupted = if report.run.interrupted {
            " (interrupted)"
        } else {
            ""
        };
        let _ = writeln!(out, "## buildopt: {counts}{interrupted}\n");
        let run = &report.run;
        let reason = markdown_text(&shorten(&run.range_reason, MAX_REASON_CHARS));
        let head = code_span(short_sha(&run.head));
        let range = match &run.base {
            Some(base) => format!("Range {} → {head} ({reason})", code_span(short_sha(base))),
            None => format!("Everything built at {head} ({reason})"),
        };
        let engine = run
            .engine
            .as_ref()
            .map(|e| format!(" · {}", markdown_text(&e.describe())))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{range} · level {} · {}{engine} · {}\n",
            markdown_text(run.level.as_str()),
            markdown_text(run.builder.as_str()),
            duration(run.duration_ms)
        );
        for note in run.engine.iter().flat_map(|e| &e.notes) {
            let _ = writeln!(out, "> Engine: {}\n", markdown_text(note));
        }
    }

    fn table(&self, out: &mut String, rows: usize) {
        let images = &self.report.images;
        if images.is_empty() {
            out.push_str("No images.\n\n");
            return;
        }
        out.push_str("| Image | Result | Duration | Cached steps | Size | Change |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for image in images.iter().take(rows) {
            let _ = writeln!(out, "| {} |", self.row(image).join(" | "));
        }
        out.push('\n');
    }

    fn row(&self, image: &ImageReport) -> [String; 6] {
        let result = match &image.skip_reason {
            Some(why) => format!(
                "{} ({})",
                image.result.as_str(),
                markdown_text(&shorten(why, MAX_REASON_CHARS))
            ),
            None => image.result.as_str().to_string(),
        };
        let figures = ImageFigures::of(image);
        [
            name(image),
            result,
            figures.took,
            figures.cached,
            figures.size,
            figures.change,
        ]
    }

    /// The scan's part: counts by severity and the gate, then the findings, new since the base
    /// first; a package count for a scan that only listed packages; never a silent pass when
    /// nothing could be matched.
    fn vulnerabilities(&self, out: &mut String, scan: &RunScan, shown: usize) {
        match Vulnerabilities::of(scan) {
            Vulnerabilities::InventoryOnly { images: 0, .. } => {}
            Vulnerabilities::InventoryOnly { images, packages } => {
                let _ = writeln!(
                    out,
                    "Scanned {images} images: {packages} packages (not matched against vulnerability data).\n"
                );
            }
            Vulnerabilities::NotScanned => {
                let _ = writeln!(out, "### Vulnerabilities\n\n**{NOT_SCANNED}**\n");
                scan_notes(out, scan);
            }
            Vulnerabilities::Matched(scan) => {
                out.push_str("### Vulnerabilities\n\n");
                counts_line(out, scan);
                for image in scan.unscanned() {
                    let _ = writeln!(
                        out,
                        "- {}: **{NOT_SCANNED}**",
                        markdown_text(&shorten(&image.image, MAX_NAME_CHARS))
                    );
                }
                for image in &scan.base_unknown {
                    let sentence = findings::base_unknown_sentence(&shorten(image, MAX_NAME_CHARS));
                    let _ = writeln!(out, "- {}", markdown_text(&sentence));
                }
                let not_matched = findings::not_matched(scan);
                for (image, counts) in &not_matched {
                    let image = markdown_text(&shorten(image, MAX_NAME_CHARS));
                    let _ = writeln!(out, "- {image}: {}", markdown_text(counts));
                }
                if !scan.unscanned().is_empty()
                    || !scan.base_unknown.is_empty()
                    || !not_matched.is_empty()
                {
                    out.push('\n');
                }
                self.findings_table(out, scan, shown);
                scan_notes(out, scan);
            }
        }
    }

    fn findings_table(&self, out: &mut String, scan: &RunScan, shown: usize) {
        if self.findings.is_empty() {
            return;
        }
        let labels = findings::image_labels(scan);
        if shown > 0 {
            out.push_str(
                "| New | Severity | ID | Package | Fixed in | Image | Introduced by | Gate |\n",
            );
            out.push_str("|---|---|---|---|---|---|---|---|\n");
            for row in findings::most_severe(&self.findings, shown) {
                let _ = writeln!(out, "| {} |", finding_row(row, &labels).join(" | "));
            }
            out.push('\n');
        }
        let left_out = self.findings.len() - shown.min(self.findings.len());
        if left_out > 0 {
            let _ = writeln!(
                out,
                "_{left_out} less severe findings left out to fit the size limit: every finding is in `{FULL_FINDINGS}` and `{FULL_REPORT}`._\n"
            );
        }
    }

    fn reasons(&self, out: &mut String) {
        let planned: Vec<&ImageReport> = self
            .report
            .images
            .iter()
            .filter(|i| !i.reasons.is_empty())
            .collect();
        if planned.is_empty() {
            return;
        }
        out.push_str("### Why images were built\n\n");
        for image in planned {
            let reasons: Vec<String> = image
                .reasons
                .iter()
                .map(|r| markdown_text(&shorten(&r.detail, MAX_REASON_CHARS)))
                .collect();
            let _ = writeln!(out, "- **{}**: {}", name(image), reasons.join("; "));
        }
        out.push('\n');
    }

    fn failures(&self, out: &mut String, detail: Detail) {
        let failed: Vec<&ImageReport> = self
            .report
            .images
            .iter()
            .filter(|i| i.result == ImageResult::Failed)
            .take(detail.failures)
            .collect();
        if failed.is_empty() {
            return;
        }
        out.push_str("### Failures\n\n");
        for image in failed {
            failure(out, image, detail.tail_lines);
        }
    }

    fn cleanup(&self, out: &mut String) {
        let Some(cleanup) = &self.report.cleanup else {
            return;
        };
        let _ = writeln!(
            out,
            "Cleanup freed {}: dangling images {}, build cache older than {} days {}.\n",
            size(cleanup.dangling_images_bytes + cleanup.build_cache_bytes),
            size(cleanup.dangling_images_bytes),
            cleanup.retention_days,
            size(cleanup.build_cache_bytes),
        );
    }

    /// Says what a shortened report left out, so nobody mistakes it for the whole story.
    fn shortened_notice(&self, out: &mut String, detail: Detail) {
        let report = self.report;
        let mut left_out = Vec::new();
        let has_reasons = report.images.iter().any(|i| !i.reasons.is_empty());
        if !detail.reasons && has_reasons {
            left_out.push("reasons".to_string());
        }
        let longest_tail = report
            .images
            .iter()
            .filter_map(|i| i.failure.as_ref())
            .map(|f| f.log_tail.len())
            .max()
            .unwrap_or(0);
        if detail.failures > 0 && detail.tail_lines < longest_tail {
            left_out.push(match detail.tail_lines {
                0 => "log tails".to_string(),
                n => format!("log tails beyond {n} lines"),
            });
        }
        if detail.findings < self.findings.len() {
            left_out.push(format!(
                "{} of {} findings",
                self.findings.len() - detail.findings,
                self.findings.len()
            ));
        }
        let failures = report.count(ImageResult::Failed);
        if detail.failures < failures {
            left_out.push(format!(
                "details of {} failures",
                failures - detail.failures
            ));
        }
        if detail.rows < report.images.len() {
            left_out.push(format!(
                "{} of {} images in the table",
                report.images.len() - detail.rows,
                report.images.len()
            ));
        }
        if !left_out.is_empty() {
            let _ = writeln!(
                out,
                "_Shortened to fit the size limit: left out {}. The full report is in `{FULL_REPORT}`._",
                left_out.join(", ")
            );
        }
    }
}

/// `**1 critical, 2 high, …** · 2 fail the gate (critical or high) · 3 new since `base``.
fn counts_line(out: &mut String, scan: &RunScan) {
    let counts = scan.counts();
    let mut parts = vec![format!("**{}**", findings::counts_text(&counts, false))];
    if let Some(gate) = scan.policy.as_ref().and_then(findings::gate) {
        let failing = scan.failing();
        parts.push(match failing {
            0 => format!("none fails the gate ({gate})"),
            n => format!("**{n} fail the gate** ({gate})"),
        });
    }
    if let Some(base) = &scan.base {
        parts.push(format!(
            "{} new since {}",
            scan.new_findings(),
            code_span(short_sha(base))
        ));
    }
    let _ = writeln!(out, "{}\n", parts.join(" · "));
}

/// One findings row: new mark, severity, linked id, package and version, fix, image, origin,
/// gate mark.
fn finding_row(row: Row<'_>, labels: &findings::ImageLabels<'_>) -> [String; 8] {
    let finding = row.finding;
    let id = markdown_text(&shorten(&finding.id, MAX_ID_CHARS));
    let package = format!(
        "{} {}",
        markdown_text(&shorten(&finding.package, MAX_NAME_CHARS)),
        markdown_text(&shorten(&finding.installed_version, MAX_VERSION_CHARS))
    );
    let severity = finding.severity.as_str();
    [
        if row.is_new() { "**new**" } else { "" }.into(),
        match finding.severity {
            crate::scan::model::Severity::Critical | crate::scan::model::Severity::High => {
                format!("**{severity}**")
            }
            _ => severity.into(),
        },
        format!("[{id}]({})", osv_link(&shorten(&finding.id, MAX_ID_CHARS))),
        package,
        markdown_text(&shorten(findings::fixed(finding), MAX_VERSION_CHARS)),
        markdown_text(&shorten(&labels.label(row.image), MAX_NAME_CHARS)),
        markdown_text(&shorten(&findings::origin(finding), MAX_NAME_CHARS)),
        if finding.fails_gate { "**fails**" } else { "" }.into(),
    ]
}

/// What was matched against which database, what the ignore files and the level left out,
/// unchanged images, and the scan's warnings and errors.
fn scan_notes(out: &mut String, scan: &RunScan) {
    let mut facts = Vec::new();
    if let Some(database) = findings::database(scan) {
        let age = findings::database_age(scan).map(|age| format!(", {age}"));
        facts.push(format!(
            "Database {}{}",
            code_span(&shorten(database, MAX_ID_CHARS)),
            age.unwrap_or_default()
        ));
    }
    if scan.images_matched + scan.findings_reused > 0 {
        facts.push(format!(
            "{} images matched, {} with findings reused from the store",
            scan.images_matched, scan.findings_reused
        ));
    }
    let (ignored, below_level) = findings::left_out(scan);
    if ignored > 0 {
        facts.push(format!("{ignored} ignored by the ignore files"));
    }
    if below_level > 0 {
        let level = scan.policy.map(|p| p.level.as_str()).unwrap_or("low");
        facts.push(format!("{below_level} below the level {level}"));
    }
    if !scan.unchanged.is_empty() {
        facts.push(format!(
            "{} images not rebuilt keep their stored findings (in `{FULL_FINDINGS}`)",
            scan.unchanged.len()
        ));
    }
    if !facts.is_empty() {
        let _ = writeln!(out, "{}\n", facts.join(" · "));
    }
    for (kind, lines) in [("Error", &scan.errors), ("Warning", &scan.warnings)] {
        for line in lines {
            let _ = writeln!(
                out,
                "> {kind}: {}\n",
                markdown_text(&shorten(line, MAX_MESSAGE_CHARS))
            );
        }
    }
}

fn failure(out: &mut String, image: &ImageReport, tail_lines: usize) {
    let Some(failure) = &image.failure else {
        let _ = writeln!(out, "**{}** failed.\n", name(image));
        return;
    };
    let at = match (&failure.step, failure.line) {
        (Some(step), Some(line)) => format!(" at {} (Dockerfile line {line})", code_span(step)),
        (Some(step), None) => format!(" at {}", code_span(step)),
        (None, Some(line)) => format!(" at Dockerfile line {line}"),
        (None, None) => String::new(),
    };
    let message = markdown_text(&shorten(&failure.message, MAX_MESSAGE_CHARS));
    let _ = writeln!(out, "**{}** failed{at}: {message}\n", name(image));
    let tail = &failure.log_tail;
    let shown = &tail[tail.len().saturating_sub(tail_lines)..];
    if shown.is_empty() {
        return;
    }
    let lines: Vec<String> = shown
        .iter()
        .map(|line| shorten(line, MAX_LOG_LINE_CHARS))
        .collect();
    let _ = writeln!(
        out,
        "<details><summary>Last {} log lines</summary>\n\n{}\n</details>\n",
        shown.len(),
        code_block(&lines.join("\n"))
    );
}

fn name(image: &ImageReport) -> String {
    markdown_text(&shorten(&image.name, MAX_NAME_CHARS))
}

/// The first 12 characters of a commit: enough to find it, short enough for a heading.
fn short_sha(sha: &str) -> &str {
    sha.char_indices().nth(12).map_or(sha, |(i, _)| &sha[..i])
}

/// The cache's restore and export: what came back and went in, how long it took, and any
/// warning (a cache miss), plus the intermediate stages built to be cached.
fn cache_figures(out: &mut String, cache: &CacheReport) {
    out.push_str(
        "### Cache

",
    );
    let restore = &cache.restore;
    let _ = match &restore.warning {
        Some(warning) => writeln!(
            out,
            "- Restore: {} (a cache miss)",
            markdown_text(&shorten(warning, MAX_MESSAGE_CHARS))
        ),
        None => writeln!(out, "- Restore: {}", restore_figures(restore)),
    };
    let _ = match &cache.export {
        None => writeln!(out, "- Export: skipped (the run was interrupted)"),
        Some(export) => match &export.warning {
            Some(warning) => writeln!(
                out,
                "- Export: {}",
                markdown_text(&shorten(warning, MAX_MESSAGE_CHARS))
            ),
            None => writeln!(out, "- Export: {}", export_figures(export)),
        },
    };
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{self, HOSTILE};

    #[test]
    fn job_summary_of_a_mixed_run() {
        insta::assert_snapshot!(job_summary(&fixtures::report()));
    }

    #[test]
    fn engine_notes_follow_the_range_line() {
        let mut report = fixtures::report();
        if let Some(engine) = &mut report.run.engine {
            engine.notes = vec!["this engine's BuildKit ignores the inline cache".into()];
        }
        let text = job_summary(&report);
        let heading: Vec<&str> = text.lines().skip(2).take(3).collect();
        insta::assert_snapshot!(heading.join("\n"), @r"
        Range `0123456789ab` → `89abcdef0123` (merge base with origin/main) · level medium · buildkit · Docker 28.5.2 \(API 1.51, containerd image store\) · 1 m 05 s

        > Engine: this engine's BuildKit ignores the inline cache
        ");
    }

    #[test]
    fn pr_comment_starts_with_its_marker() {
        let comment = pr_comment(&fixtures::report(), "images");
        insta::assert_snapshot!(comment);
        assert!(comment.starts_with("<!-- buildopt:images -->\n## buildopt:"));
    }

    #[test]
    fn without_a_base_everything_is_built_and_the_reason_is_given() {
        let mut report = fixtures::report();
        report.run.base = None;
        report.run.range_reason = "shallow clone without history".into();
        report.run.interrupted = true;
        report.cleanup = None;
        let text = job_summary(&report);
        let heading: Vec<&str> = text.lines().take(3).collect();
        insta::assert_snapshot!(heading.join("\n"), @r"
        ## buildopt: 1 built, 1 reused, 1 failed, 1 skipped (interrupted)

        Everything built at `89abcdef0123` (shallow clone without history) · level medium · buildkit · Docker 28.5.2 \(API 1.51, containerd image store\) · 1 m 05 s
        ");
        assert!(!text.contains("Cleanup"));
    }

    #[test]
    fn a_run_without_images_says_so() {
        let mut report = fixtures::report();
        report.images.clear();
        let text = job_summary(&report);
        assert!(text.contains("No images."), "{text}");
        assert!(!text.contains("| Image"));
    }

    #[test]
    fn cache_figures_and_size_changes_come_from_the_report() {
        let mut report = fixtures::report();
        let text = job_summary(&report);
        assert!(
            text.contains("| base | built | 3.2 s | 2/3 | 4.4 MB | +400.0 kB (+10.0%) |"),
            "{text}"
        );
        assert!(
            text.contains("| linter | reused | 120 ms | - | 12.0 MB | no change |"),
            "{text}"
        );
        assert!(
            text.contains(
                "- Restore: 1 images loaded (2.0 MB), 1 already in the daemon, in 1.5 s\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "- Export: 2 images saved, 5 new blobs (1.2 MB), 1 entries pruned, in 850 ms\n"
            ),
            "{text}"
        );
        report.images[0].previous_size = None;
        let cache = report.cache.as_mut().expect("cache");
        cache.restore.warning = Some("cache restore failed: index.json: bad".into());
        cache.export = None;
        let text = job_summary(&report);
        assert!(
            text.contains("| base | built | 3.2 s | 2/3 | 4.4 MB | - |"),
            "{text}"
        );
        assert!(
            text.contains("- Restore: cache restore failed: index.json: bad (a cache miss)"),
            "{text}"
        );
        assert!(
            text.contains("- Export: skipped (the run was interrupted)"),
            "{text}"
        );
        report.cache = None;
        assert!(!job_summary(&report).contains("### Cache"));
    }

    #[test]
    fn comment_markers_are_sanitised() {
        assert_eq!(comment_marker("images"), "<!-- buildopt:images -->");
        assert_eq!(comment_marker(""), "<!-- buildopt:default -->");
        assert_eq!(
            comment_marker("a --> <!-- b\n"),
            "<!-- buildopt:a----------b- -->"
        );
        assert_eq!(comment_marker(&"x".repeat(100)).len(), 64 + 18);
    }

    #[test]
    fn hostile_text_cannot_inject_markdown_html_mentions_or_markers() {
        let text = pr_comment(&fixtures::hostile_report(), "images");
        insta::assert_snapshot!(text);
        assert_eq!(text.matches("<!-- buildopt:").count(), 1, "only the marker");
        let markdown = fixtures::outside_code(&text);
        assert_eq!(markdown.matches("<!--").count(), 1, "only the marker");
        for needle in [
            "<script",
            "</details><",
            "@channel",
            "@org",
            "#123",
            "](",
            "\n::",
        ] {
            assert!(!markdown.contains(needle), "{needle} in {markdown}");
        }
        // The log tail's fence is longer than the five-backtick run inside it.
        assert!(text.contains("``````text\n"));
        assert!(!text.contains(HOSTILE));
    }

    #[test]
    fn many_images_fit_the_comment_budget_and_say_what_was_left_out() {
        let report = fixtures::many_images(10_000);
        let comment = pr_comment(&report, "images");
        assert!(comment.len() <= PR_COMMENT_BUDGET, "{}", comment.len());
        assert!(comment.contains("| image-00000 |"));
        assert!(!comment.contains("| image-09999 |"));
        let notice = comment.lines().last().expect("notice");
        assert!(
            notice.starts_with(
                "_Shortened to fit the size limit: left out reasons, details of 2500 failures, "
            ),
            "{notice}"
        );
        assert!(notice.contains("images in the table"), "{notice}");
    }

    #[test]
    fn many_images_fit_the_job_summary_with_every_row() {
        let report = fixtures::many_images(10_000);
        let summary = job_summary(&report);
        assert!(summary.len() <= JOB_SUMMARY_BUDGET, "{}", summary.len());
        assert!(summary.contains("| image-09999 |"));
        assert!(summary.contains("_Shortened to fit the size limit: left out reasons"));
    }

    #[test]
    fn budgets_drop_reasons_then_tail_lines_then_failures() {
        let report = fixtures::many_images(40);
        let full = markdown(&report, usize::MAX);
        assert!(!full.contains("_Shortened"));
        assert!(full.contains("### Why images were built"));

        let no_reasons = markdown(&report, full.len() - 1);
        assert!(!no_reasons.contains("### Why images were built"));
        assert!(no_reasons.contains("log line 0 of 2\n"));
        assert!(
            no_reasons
                .ends_with("left out reasons. The full report is in `buildopt-report.json`._\n")
        );

        let twenty = markdown(&report, no_reasons.len() - 1);
        assert!(twenty.contains("Last 20 log lines") && !twenty.contains("log line 19 of 2\n"));
        assert!(twenty.contains("log tails beyond 20 lines"));
    }

    #[test]
    fn tiny_budgets_are_cut_at_a_line_and_say_so() {
        let text = markdown(&fixtures::report(), 80);
        assert!(text.len() <= 80, "{text}");
        assert!(text.ends_with("_Cut to fit the size limit._\n"), "{text}");
    }

    #[test]
    fn long_single_log_lines_are_capped() {
        let mut report = fixtures::report();
        let failure = report.images[2].failure.as_mut().expect("failure");
        failure.log_tail = vec!["x".repeat(50_000)];
        let text = job_summary(&report);
        assert!(text.contains(&format!("{}…", "x".repeat(MAX_LOG_LINE_CHARS - 1))));
        assert!(!text.contains(&"x".repeat(MAX_LOG_LINE_CHARS)));
    }

    /// The vulnerability section of `text`: from its heading to the next one.
    fn vulnerability_section(text: &str) -> &str {
        let start = text
            .find("### Vulnerabilities")
            .expect("vulnerability section");
        let end = text[start + 4..]
            .find("\n### ")
            .map_or(text.len(), |at| start + 4 + at + 1);
        &text[start..end]
    }

    #[test]
    fn vulnerabilities_of_a_scanned_run() {
        let text = job_summary(&fixtures::scan_report());
        let section = vulnerability_section(&text);
        insta::assert_snapshot!(section);
        let table = text.find("| Image | Result").expect("image table");
        assert!(table < text.find("### Vulnerabilities").expect("section"));
        let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| ")).collect();
        assert!(
            rows[1].starts_with("| **new** | **high** | [CVE-2023-52425]"),
            "{section}"
        );
        assert!(
            rows[4].starts_with("|  | **critical** | [CVE-2023-45853]"),
            "{section}"
        );
        assert!(section.contains("(https://osv.dev/vulnerability/GHSA-9hjg-9r4m-mvj7)"));
        assert!(section.contains("| base image debian:bookworm-slim | **fails** |"));
        assert!(section.contains("The base build's inventory of registry.example.com/acme/api:1.4.2 \\(linux/arm64\\) is unknown: all its findings are listed."));
        assert!(section.contains(
            "registry.example.com/acme/legacy:2: **not scanned: no vulnerability database**"
        ));
    }

    #[test]
    fn the_pr_comment_has_the_same_vulnerability_section() {
        let report = fixtures::scan_report();
        let comment = pr_comment(&report, "images");
        let summary = job_summary(&report);
        assert_eq!(
            vulnerability_section(&comment),
            vulnerability_section(&summary)
        );
    }

    #[test]
    fn without_a_database_the_run_says_not_scanned() {
        let text = job_summary(&fixtures::unscanned_report());
        let section = vulnerability_section(&text);
        assert!(
            section
                .starts_with("### Vulnerabilities\n\n**not scanned: no vulnerability database**\n"),
            "{section}"
        );
        assert!(!section.contains("| Severity"), "{section}");
        assert!(!text.contains("0 critical"), "{text}");
    }

    #[test]
    fn an_inventory_only_scan_is_one_package_count() {
        let mut report = fixtures::scan_report();
        if let Some(scan) = report.scan.as_mut() {
            scan.policy = None;
        }
        let text = job_summary(&report);
        assert!(!text.contains("### Vulnerabilities"), "{text}");
        assert!(!text.contains("critical"), "{text}");
        assert!(
            text.contains(
                "Scanned 4 images: 0 packages (not matched against vulnerability data).\n"
            ),
            "{text}"
        );
        report.scan = None;
        assert!(!job_summary(&report).contains("Scanned"));
    }

    #[test]
    fn a_clean_matched_run_says_none_fails_the_gate() {
        let mut report = fixtures::scan_report();
        if let Some(scan) = report.scan.as_mut() {
            for image in &mut scan.images {
                image.findings.clear();
            }
        }
        let text = job_summary(&report);
        let section = vulnerability_section(&text);
        assert!(
            section.contains("**0 critical, 0 high, 0 medium, 0 low, 0 unknown** · none fails the gate (critical or high)"),
            "{section}"
        );
        assert!(!section.contains("| Severity"), "{section}");
    }

    #[test]
    fn hostile_vulnerability_text_is_escaped() {
        let text = pr_comment(&fixtures::hostile_scan_report(), "images");
        let section = vulnerability_section(&text).to_string();
        insta::assert_snapshot!(section);
        assert_eq!(text.matches("<!-- buildopt:").count(), 1, "only the marker");
        let markdown = fixtures::outside_code(&text);
        for needle in [
            "<script",
            "</details><",
            "@channel",
            "@org",
            "#123",
            "\n::",
            "\u{1b}",
        ] {
            assert!(!markdown.contains(needle), "{needle} in {markdown}");
        }
        // Every link is one this renderer made, to OSV, with a percent-encoded id.
        for (at, _) in markdown.match_indices("](") {
            let target = &markdown[at + 2..];
            let end = target.find(')').expect("link end");
            let url = &target[..end];
            assert!(url.starts_with("https://osv.dev/vulnerability/"), "{url}");
            assert!(
                url.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._~/%:".contains(c)),
                "{url}"
            );
        }
        for row in section.lines().filter(|l| l.starts_with("| ")) {
            assert_eq!(row.matches(" | ").count(), 7, "{row}");
        }
    }

    #[test]
    fn five_thousand_findings_fit_the_comment_dropping_the_least_severe() {
        let report = fixtures::many_findings_report(5_000);
        let comment = pr_comment(&report, "images");
        assert!(comment.len() < PR_COMMENT_BUDGET, "{}", comment.len());
        let section = vulnerability_section(&comment);
        let rows: Vec<&str> = section
            .lines()
            .filter(|l| l.starts_with("| "))
            .skip(1)
            .collect();
        assert!(rows.len() > 50, "{}", rows.len());
        assert!(
            rows.iter()
                .all(|r| r.contains("**critical**") || r.contains("**high**"))
        );
        let left_out = 5_000 - rows.len();
        assert!(
            section.contains(&format!(
                "_{left_out} less severe findings left out to fit the size limit: every finding is in `buildopt-scan.sarif` and `buildopt-report.json`._"
            )),
            "{section}"
        );
        let notice = comment.lines().last().expect("notice");
        assert!(
            notice.contains(&format!("{left_out} of 5000 findings")),
            "{notice}"
        );
        // New findings of a severity come before the old ones.
        let first_old = rows.iter().position(|r| !r.starts_with("| **new**"));
        let last_new = rows.iter().rposition(|r| r.starts_with("| **new**"));
        assert!(first_old > last_new || first_old.is_none(), "{section}");
        let summary = job_summary(&report);
        assert!(summary.len() <= JOB_SUMMARY_BUDGET);
    }
}
