//! GitHub Actions workflow commands for a run: `::error` annotations on the Dockerfile line where
//! a build step failed, `::warning` annotations for notes, and the `::group::` pair for log
//! groups. Owns the command syntax and its escaping; printing them is the caller's job.
//!
//! GitHub shows at most 10 errors and 10 warnings per step (50 per job) and drops the rest, so
//! the tenth of each kind says how many more there were.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::escape::{shorten, visible_controls, workflow_data, workflow_property};
use super::model::{ImageReport, ImageResult, RunReport};

/// The most annotations of one level GitHub shows for a step.
pub const MAX_PER_LEVEL: usize = 10;

/// Log-tail lines carried in an error annotation: enough to see the error, short enough to read.
const TAIL_LINES: usize = 10;
/// GitHub cuts titles at 255 characters.
const MAX_TITLE_CHARS: usize = 255;
const MAX_LINE_CHARS: usize = 500;

/// Error annotations for failed images, warnings for `notes` (plan notes, for instance) and for
/// an interrupted run, one command per line.
///
/// `dockerfiles` maps image names to their repository-relative Dockerfile path; an image found
/// there is annotated on the failing line of that file.
pub fn annotations(
    report: &RunReport,
    dockerfiles: &BTreeMap<String, String>,
    notes: &[String],
) -> String {
    let errors: Vec<String> = report
        .images
        .iter()
        .filter(|i| i.result == ImageResult::Failed)
        .map(|image| failure(image, dockerfiles.get(&image.name).map(String::as_str)))
        .collect();
    let mut warnings: Vec<String> = notes
        .iter()
        .map(|note| command("warning", &[], note))
        .collect();
    if report.run.interrupted {
        warnings.push(command(
            "warning",
            &[("title", "buildopt")],
            "the run was interrupted before every image finished",
        ));
    }
    let mut out = String::new();
    for line in capped(errors, "error", "images failed")
        .into_iter()
        .chain(capped(warnings, "warning", "notes"))
    {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// One workflow command, `::NAME key=value,…::MESSAGE`, with the properties and message
/// escaped so that nothing in them can end the command or start another. Control characters
/// other than line breaks are shown as symbols: an ANSI colour code or NUL in an annotation
/// only garbles it.
pub fn command(name: &str, properties: &[(&str, &str)], message: &str) -> String {
    let properties: Vec<String> = properties
        .iter()
        .map(|(key, value)| format!("{key}={}", workflow_property(&visible_controls(value))))
        .collect();
    let separator = if properties.is_empty() { "" } else { " " };
    format!(
        "::{name}{separator}{}::{}",
        properties.join(","),
        workflow_data(&visible_controls(message))
    )
}

/// Opens a collapsible log group titled `title`.
pub fn group(title: &str) -> String {
    command("group", &[], title)
}

/// Closes the innermost log group.
pub fn endgroup() -> String {
    "::endgroup::".to_string()
}

fn failure(image: &ImageReport, dockerfile: Option<&str>) -> String {
    let failure = image.failure.as_ref();
    let line = failure.and_then(|f| f.line).map(|l| l.to_string());
    let step = failure.and_then(|f| f.step.as_deref());
    let title = match step {
        Some(step) => format!("{} failed at {step}", image.name),
        None => format!("{} failed", image.name),
    };
    let title = shorten(&title, MAX_TITLE_CHARS);
    let mut message = failure.map_or("the build failed".to_string(), |f| f.message.clone());
    if let Some(failure) = failure {
        let tail = &failure.log_tail;
        for log_line in &tail[tail.len().saturating_sub(TAIL_LINES)..] {
            message.push('\n');
            message.push_str(&shorten(log_line, MAX_LINE_CHARS));
        }
    }
    let mut properties = Vec::new();
    if let Some(file) = dockerfile {
        properties.push(("file", file));
        if let Some(line) = &line {
            properties.push(("line", line.as_str()));
        }
    }
    properties.push(("title", &title));
    command("error", &properties, &message)
}

/// At most [`MAX_PER_LEVEL`] commands; when there are more, the last one shown counts the rest.
fn capped(mut lines: Vec<String>, level: &str, what: &str) -> Vec<String> {
    if lines.len() > MAX_PER_LEVEL {
        let more = lines.len() - (MAX_PER_LEVEL - 1);
        lines.truncate(MAX_PER_LEVEL - 1);
        lines.push(command(
            level,
            &[("title", "buildopt")],
            &format!("{more} more {what}; see the job summary"),
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{self, HOSTILE};

    fn dockerfiles() -> BTreeMap<String, String> {
        BTreeMap::from([("api".to_string(), "services/api/Dockerfile".to_string())])
    }

    #[test]
    fn a_failed_step_is_annotated_on_its_dockerfile_line() {
        let notes = vec!["buildopt.toml: `inputs` matches no file".to_string()];
        insta::assert_snapshot!(annotations(&fixtures::report(), &dockerfiles(), &notes));
    }

    #[test]
    fn without_a_known_dockerfile_the_annotation_has_no_file_or_line() {
        let text = annotations(&fixtures::report(), &BTreeMap::new(), &[]);
        assert!(
            text.starts_with("::error title=api failed at [3/4] RUN make::process"),
            "{text}"
        );
    }

    #[test]
    fn an_interrupted_run_warns() {
        let mut report = fixtures::report();
        report.run.interrupted = true;
        report.images.clear();
        assert_eq!(
            annotations(&report, &BTreeMap::new(), &[]),
            "::warning title=buildopt::the run was interrupted before every image finished\n"
        );
    }

    #[test]
    fn hostile_text_stays_inside_one_command_per_line() {
        let mut report = fixtures::hostile_report();
        let dockerfiles = BTreeMap::from([(
            report.images[2].name.clone(),
            format!("dir,line=1::{HOSTILE}/Dockerfile"),
        )]);
        report.run.interrupted = false;
        let notes = vec![HOSTILE.to_string()];
        let text = annotations(&report, &dockerfiles, &notes);
        insta::assert_snapshot!(text);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with(
            "::error file=dir%2Cline=1%3A%3A%3A%3Aerror file=x%3A%3Apwned\u{240d}%0A"
        ));
        assert!(
            lines[1].starts_with("::warning::::error file=x::pwned\u{240d}%0A::add-mask::"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn each_level_is_capped_with_a_count_of_the_rest() {
        let report = fixtures::many_images(100);
        let notes: Vec<String> = (0..12).map(|n| format!("note {n}")).collect();
        let text = annotations(&report, &BTreeMap::new(), &notes);
        let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("::error")).collect();
        let warnings: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("::warning"))
            .collect();
        assert_eq!(
            (errors.len(), warnings.len()),
            (MAX_PER_LEVEL, MAX_PER_LEVEL)
        );
        assert_eq!(
            errors[9],
            "::error title=buildopt::16 more images failed; see the job summary"
        );
        assert_eq!(
            warnings[9],
            "::warning title=buildopt::3 more notes; see the job summary"
        );
    }

    #[test]
    fn commands_escape_properties_and_data() {
        assert_eq!(
            command("error", &[("file", "a,b:c"), ("line", "3")], "x\ny%"),
            "::error file=a%2Cb%3Ac,line=3::x%0Ay%25"
        );
        assert_eq!(command("notice", &[], "hi"), "::notice::hi");
    }

    #[test]
    fn groups_escape_their_title() {
        assert_eq!(group("api\n::error::x"), "::group::api%0A::error::x");
        assert_eq!(endgroup(), "::endgroup::");
    }
}
