//! The Slack incoming-webhook message for a run: Block Kit blocks (a header with the counts, the
//! range, a field per image, one line of vulnerabilities when the run matched its images, the
//! failures with their step and last log lines, a link to the run) and the plain `text`
//! fallback used in notifications, which carries the vulnerability line too.
//!
//! Owns Slack's limits: 50 blocks, 3,000 characters per section text, 10 fields of 2,000
//! characters per section, 150 characters per header, and a total kept under the ~13,000
//! characters at which Slack answers `msg_blocks_too_long`. Lists are cut with "…and N more".

use serde_json::{Value, json};

use super::escape::{shorten, slack_text};
use super::findings_section::summary_line;
use super::model::{ImageReport, ImageResult, RunReport};
use super::run::duration;

/// Images listed as fields: three sections of ten.
pub const MAX_IMAGE_FIELDS: usize = 30;
/// Failures shown with their step and log tail.
pub const MAX_FAILURES: usize = 5;

const FIELDS_PER_SECTION: usize = 10;
const MAX_HEADER_CHARS: usize = 150;
const MAX_SECTION_CHARS: usize = 3_000;
/// A failure section's share of the whole message, so five of them and the image fields stay
/// under Slack's undocumented total.
const MAX_FAILURE_CHARS: usize = 1_500;
const MAX_NAME_CHARS: usize = 100;
const MAX_FALLBACK_CHARS: usize = 3_000;
const TAIL_LINES: usize = 5;

/// The webhook payload: `{"text": …, "blocks": […]}`. `run_url` adds a link to the CI run.
pub fn slack(report: &RunReport, run_url: Option<&str>) -> Value {
    let mut blocks = vec![header(report), range(report)];
    blocks.extend(image_fields(report));
    if let Some(line) = report.scan.as_ref().and_then(summary_line) {
        blocks.push(section(&slack_text(&line)));
    }
    blocks.extend(failures(report));
    if let Some(url) = run_url {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": link(url, "View the run")}],
        }));
    }
    json!({ "text": fallback(report), "blocks": blocks })
}

fn counts(report: &RunReport) -> String {
    [
        ImageResult::Failed,
        ImageResult::Built,
        ImageResult::Reused,
        ImageResult::Skipped,
    ]
    .into_iter()
    .map(|result| (report.count(result), result.as_str()))
    .filter(|(count, _)| *count > 0)
    .map(|(count, word)| format!("{count} {word}"))
    .collect::<Vec<_>>()
    .join(", ")
}

fn title(report: &RunReport) -> String {
    let counts = counts(report);
    let counts = if counts.is_empty() {
        "nothing to build".to_string()
    } else {
        counts
    };
    let interrupted = if report.run.interrupted {
        " (interrupted)"
    } else {
        ""
    };
    format!("buildopt: {counts}{interrupted}")
}

fn header(report: &RunReport) -> Value {
    json!({
        "type": "header",
        "text": {"type": "plain_text", "text": shorten(&title(report), MAX_HEADER_CHARS), "emoji": false},
    })
}

fn range(report: &RunReport) -> Value {
    let run = &report.run;
    let reason = inline(&run.range_reason, 500);
    let head = short_sha(&run.head);
    let range = match &run.base {
        Some(base) => format!("*Range* `{}` → `{head}` ({reason})", short_sha(base)),
        None => format!("*Everything built* at `{head}` ({reason})"),
    };
    let text = format!(
        "{range}\nlevel {} · {} · {}",
        inline(run.level.as_str(), 50),
        inline(run.builder.as_str(), 50),
        duration(run.duration_ms)
    );
    section(&text)
}

/// One field per image, failed first, then built, reused and skipped.
fn image_fields(report: &RunReport) -> Vec<Value> {
    let mut images: Vec<&ImageReport> = report.images.iter().collect();
    images.sort_by_key(|i| match i.result {
        ImageResult::Failed => 0,
        ImageResult::Built => 1,
        ImageResult::Reused => 2,
        ImageResult::Skipped => 3,
    });
    let shown = &images[..images.len().min(MAX_IMAGE_FIELDS)];
    let mut blocks: Vec<Value> = shown
        .chunks(FIELDS_PER_SECTION)
        .map(|chunk| {
            let fields: Vec<Value> = chunk
                .iter()
                .map(|image| json!({"type": "mrkdwn", "text": image_field(image)}))
                .collect();
            json!({"type": "section", "fields": fields})
        })
        .collect();
    if images.len() > shown.len() {
        blocks.push(more(images.len() - shown.len(), "images"));
    }
    blocks
}

fn image_field(image: &ImageReport) -> String {
    let mut facts = vec![image.result.as_str().to_string()];
    if let Some(why) = &image.skip_reason {
        facts[0] = format!("skipped ({})", inline(why, 200));
    } else {
        facts.push(duration(image.duration_ms));
    }
    if !image.steps.is_empty() {
        facts.push(format!(
            "{}/{} cached",
            image.cached_steps(),
            image.steps.len()
        ));
    }
    format!("*{}*\n{}", name(image), facts.join(" · "))
}

fn failures(report: &RunReport) -> Vec<Value> {
    let failed: Vec<&ImageReport> = report
        .images
        .iter()
        .filter(|i| i.result == ImageResult::Failed)
        .collect();
    let mut blocks: Vec<Value> = failed
        .iter()
        .take(MAX_FAILURES)
        .map(|image| section(&failure_text(image)))
        .collect();
    if failed.len() > MAX_FAILURES {
        blocks.push(more(failed.len() - MAX_FAILURES, "failures"));
    }
    blocks
}

/// The failing step, message and last log lines, dropping log lines and then shortening the
/// message until the escaped text fits [`MAX_FAILURE_CHARS`].
fn failure_text(image: &ImageReport) -> String {
    let Some(failure) = &image.failure else {
        return format!("*{}* failed", name(image));
    };
    let at = match (&failure.step, failure.line) {
        (Some(step), Some(line)) => format!(" at `{}` (Dockerfile line {line})", inline(step, 200)),
        (Some(step), None) => format!(" at `{}`", inline(step, 200)),
        (None, Some(line)) => format!(" at Dockerfile line {line}"),
        (None, None) => String::new(),
    };
    let attempts = (0..=TAIL_LINES.min(failure.log_tail.len()))
        .rev()
        .map(|lines| (lines, 500))
        .chain([(0, 100)]);
    let mut text = String::new();
    for (lines, message_chars) in attempts {
        let message = inline(&failure.message, message_chars);
        text = format!("*{}* failed{at}: {message}", name(image));
        let tail = &failure.log_tail[failure.log_tail.len() - lines..];
        if !tail.is_empty() {
            let tail: Vec<String> = tail.iter().map(|line| inline(line, 300)).collect();
            text.push_str(&format!("\n```{}```", tail.join("\n")));
        }
        if text.chars().count() <= MAX_FAILURE_CHARS {
            break;
        }
    }
    text
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": shorten_escaped(text)}})
}

fn more(count: usize, what: &str) -> Value {
    json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": format!("…and {count} more {what}")}],
    })
}

/// A link whose URL cannot end the `<url|label>` form early.
fn link(url: &str, label: &str) -> String {
    let url = slack_text(url).replace('|', "%7C");
    format!("<{url}|{label}>")
}

fn fallback(report: &RunReport) -> String {
    let failed: Vec<&str> = report
        .images
        .iter()
        .filter(|i| i.result == ImageResult::Failed)
        .map(|i| i.name.as_str())
        .collect();
    let mut text = title(report);
    if let Some(line) = report.scan.as_ref().and_then(summary_line) {
        text = format!("{text}; {line}");
    }
    if !failed.is_empty() {
        text = format!("{text}; failed: {}", failed.join(", "));
    }
    inline(&text, MAX_FALLBACK_CHARS)
}

fn name(image: &ImageReport) -> String {
    inline(&image.name, MAX_NAME_CHARS)
}

/// Untrusted text on one line of mrkdwn or of a code span or block, at most `max` characters
/// before escaping. Line breaks
/// would split a `*bold*` name from its closing mark, and backticks would open code (Slack has
/// no way to escape them), so both are replaced: line breaks and other control characters by a
/// space, backticks by a look-alike.
fn inline(text: &str, max: usize) -> String {
    let text: String = shorten(text, max)
        .chars()
        .map(|c| match c {
            '`' => '\u{2cb}',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    slack_text(&text)
}

/// A last guard for a section assembled from already-escaped parts: cut at a line break so no
/// entity or code block is split.
fn shorten_escaped(text: &str) -> String {
    if text.chars().count() <= MAX_SECTION_CHARS {
        return text.to_string();
    }
    let head: String = text.chars().take(MAX_SECTION_CHARS - 1).collect();
    let end = head.rfind('\n').unwrap_or(0);
    format!("{}…", &head[..end])
}

fn short_sha(sha: &str) -> String {
    slack_text(&sha.chars().take(12).collect::<String>().replace('`', ""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    /// Every text of every block, for the limits that count characters.
    fn texts(payload: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for block in payload["blocks"].as_array().expect("blocks") {
            if let Some(text) = block["text"]["text"].as_str() {
                out.push(text.to_string());
            }
            for list in ["fields", "elements"] {
                for item in block[list].as_array().into_iter().flatten() {
                    out.push(item["text"].as_str().expect("text").to_string());
                }
            }
        }
        out
    }

    fn assert_within_limits(payload: &Value) {
        let blocks = payload["blocks"].as_array().expect("blocks");
        assert!(blocks.len() <= 50);
        for block in blocks {
            if block["type"] == "header" {
                let text = block["text"]["text"].as_str().expect("header");
                assert!(text.chars().count() <= MAX_HEADER_CHARS);
            }
            if let Some(text) = block["text"]["text"].as_str() {
                assert!(text.chars().count() <= MAX_SECTION_CHARS, "{text}");
            }
            if let Some(fields) = block["fields"].as_array() {
                assert!(fields.len() <= FIELDS_PER_SECTION);
                for field in fields {
                    assert!(field["text"].as_str().expect("field").chars().count() <= 2_000);
                }
            }
        }
        let total: usize = texts(payload).iter().map(|t| t.chars().count()).sum();
        assert!(total < 12_000, "{total}");
        let fallback = payload["text"].as_str().expect("fallback text");
        assert!(!fallback.is_empty() && fallback.chars().count() <= 40_000);
    }

    #[test]
    fn payload_of_a_mixed_run() {
        let payload = slack(
            &fixtures::report(),
            Some("https://ci.example.com/runs/1?a=1&b=2"),
        );
        insta::assert_json_snapshot!(payload);
        assert_within_limits(&payload);
    }

    #[test]
    fn without_a_run_url_there_is_no_link() {
        let payload = slack(&fixtures::report(), None);
        assert!(!payload.to_string().contains("View the run"));
    }

    #[test]
    fn hostile_text_cannot_mention_link_or_end_code() {
        let payload = slack(
            &fixtures::hostile_report(),
            Some("https://x/run|<!channel>"),
        );
        insta::assert_json_snapshot!(payload);
        assert_within_limits(&payload);
        for text in texts(&payload)
            .iter()
            .chain([&payload["text"].as_str().unwrap_or_default().to_string()])
        {
            assert!(
                !text.contains("<!channel>") && !text.contains("<script"),
                "{text}"
            );
            // The only `<…>` left is the run link this renderer made.
            let links = text.matches('<').count();
            assert!(
                links == 0 || text.starts_with("<https://x/run%7C&lt;!channel&gt;|"),
                "{text}"
            );
        }
        let failure = texts(&payload)
            .into_iter()
            .find(|t| t.contains("```"))
            .expect("failure with log tail");
        assert_eq!(failure.matches("```").count(), 2, "{failure}");
        for text in texts(&payload) {
            // Only the log-tail block has line breaks of its own beyond the range section's.
            assert!(!text.contains('\r') && !text.contains('\u{1b}'), "{text}");
            assert!(
                text.matches('`').count() % 2 == 0,
                "balanced code marks: {text}"
            );
        }
    }

    #[test]
    fn ten_thousand_images_are_cut_with_a_count() {
        let payload = slack(&fixtures::many_images(10_000), None);
        assert_within_limits(&payload);
        let texts = texts(&payload);
        assert!(texts.contains(&format!("…and {} more images", 10_000 - MAX_IMAGE_FIELDS)));
        assert!(texts.contains(&format!("…and {} more failures", 2_500 - MAX_FAILURES)));
    }

    #[test]
    fn huge_failures_drop_log_lines_then_shorten_the_message() {
        let mut report = fixtures::report();
        let failure = report.images[2].failure.as_mut().expect("failure");
        failure.message = "&".repeat(10_000);
        failure.log_tail = vec!["<".repeat(10_000); 10];
        let text = failure_text(&report.images[2]);
        assert!(
            text.chars().count() <= MAX_FAILURE_CHARS,
            "{}",
            text.chars().count()
        );
        assert!(text.ends_with("…"), "{text}");
    }

    #[test]
    fn an_empty_run_says_there_was_nothing_to_build() {
        let mut report = fixtures::report();
        report.images.clear();
        let payload = slack(&report, None);
        assert_eq!(payload["text"], "buildopt: nothing to build");
    }

    #[test]
    fn a_scanned_run_has_one_summary_line() {
        let payload = slack(&fixtures::scan_report(), None);
        assert_within_limits(&payload);
        let line = "Vulnerabilities: 2 critical, 1 high, 4 medium, 1 low, 1 unknown (3 new) — gate failed; 1 image not scanned: no vulnerability database";
        assert!(texts(&payload).iter().any(|t| t == line), "{payload}");
        let fallback = payload["text"].as_str().expect("fallback");
        insta::assert_snapshot!(fallback, @"buildopt: 1 failed, 1 built, 1 reused, 1 skipped; Vulnerabilities: 2 critical, 1 high, 4 medium, 1 low, 1 unknown (3 new) — gate failed; 1 image not scanned: no vulnerability database; failed: api");
    }

    #[test]
    fn the_summary_line_says_not_scanned_none_or_nothing() {
        let line = |report: RunReport| report.scan.as_ref().and_then(summary_line);
        assert_eq!(
            line(fixtures::unscanned_report()).as_deref(),
            Some("Vulnerabilities: not scanned: no vulnerability database")
        );
        let mut clean = fixtures::scan_report();
        if let Some(scan) = clean.scan.as_mut() {
            scan.images.truncate(3);
            scan.images.iter_mut().for_each(|i| i.findings.clear());
        }
        assert_eq!(
            line(clean.clone()).as_deref(),
            Some("Vulnerabilities: none — gate passed")
        );
        if let Some(scan) = clean.scan.as_mut() {
            scan.policy = None;
        }
        assert_eq!(line(clean), None);
        let mut ungated = fixtures::scan_report();
        if let Some(scan) = ungated.scan.as_mut() {
            scan.images.truncate(2);
            scan.base = None;
            if let Some(policy) = scan.policy.as_mut() {
                policy.fail_on_critical = false;
                policy.fail_on_high = false;
            }
        }
        assert_eq!(
            line(ungated).as_deref(),
            Some("Vulnerabilities: 2 critical, 1 high, 4 medium, 1 low, 1 unknown")
        );
    }

    #[test]
    fn hostile_scan_text_stays_out_of_the_message() {
        let payload = slack(&fixtures::hostile_scan_report(), None);
        assert_within_limits(&payload);
        let all = payload.to_string();
        assert!(
            !all.contains("<script") && !all.contains("<!channel>"),
            "{all}"
        );
    }
}
