//! The Markdown report of a run for GitHub: the job summary (`$GITHUB_STEP_SUMMARY`) and the
//! sticky PR comment, which differ only in their size budget and the comment's hidden marker.
//!
//! Owns the layout (heading with counts, range, one table row per image with its size change,
//! reasons, failures with their log tail, the cache restore and export, cleanup) and fitting it
//! under a budget. GitHub drops a job summary over 1 MiB
//! whole and rejects a comment over 65,536 characters, so the least important parts go first —
//! reasons, then log-tail lines, then failure details, then table rows — and the text says what
//! was left out. Every piece of repository or build text goes through [`super::escape`].

use std::fmt::Write as _;

use super::escape::{code_block, code_span, markdown_text, shorten};
use super::model::{CacheReport, ImageReport, ImageResult, RunReport};
use super::run::{ImageFigures, counts, duration, export_figures, restore_figures, size};

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
    let page = Page { report };
    let failures = report.count(ImageResult::Failed);
    let full = Detail {
        reasons: true,
        tail_lines: usize::MAX,
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
    let bare = Detail {
        reasons: false,
        tail_lines: 0,
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
}

impl Page<'_> {
    fn render(&self, detail: Detail) -> String {
        let mut out = String::new();
        self.heading(&mut out);
        self.table(&mut out, detail.rows);
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
}
