//! JUnit XML for GitLab (`artifacts:reports:junit`) and Jenkins (`junit` step): each image is a
//! test case of one test suite, so failed builds show in the merge request and mark the Jenkins
//! build unstable.
//!
//! Owns the document layout and XML escaping. GitLab shows `classname` as the suite name and
//! keeps only the first of duplicate names; image names are unique in a repository.

use std::fmt::Write as _;

use super::model::{ImageReport, ImageResult, RunReport};

/// The `classname` of every test case: GitLab groups the cases under it.
pub const CLASSNAME: &str = "buildopt.build";

/// The JUnit document for a run.
pub fn junit(report: &RunReport) -> String {
    let tests = report.images.len();
    let failures = report.count(ImageResult::Failed);
    let skipped = report.count(ImageResult::Skipped);
    let time = seconds(report.run.duration_ms);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!(
        "tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time}\""
    );
    let _ = writeln!(out, "<testsuites name=\"buildopt\" {counts}>");
    let _ = writeln!(
        out,
        "  <testsuite name=\"buildopt build\" {counts} timestamp=\"{}\">",
        attribute(&report.run.started)
    );
    properties(&mut out, report);
    for image in &report.images {
        testcase(&mut out, image);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn properties(out: &mut String, report: &RunReport) {
    let run = &report.run;
    let mut properties = vec![
        ("head", run.head.as_str()),
        ("range_reason", run.range_reason.as_str()),
        ("level", run.level.as_str()),
        ("builder", run.builder.as_str()),
    ];
    if let Some(base) = &run.base {
        properties.insert(0, ("base", base));
    }
    if run.interrupted {
        properties.push(("interrupted", "true"));
    }
    out.push_str("    <properties>\n");
    for (name, value) in properties {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            attribute(value)
        );
    }
    out.push_str("    </properties>\n");
}

fn testcase(out: &mut String, image: &ImageReport) {
    let _ = write!(
        out,
        "    <testcase classname=\"{CLASSNAME}\" name=\"{}\" time=\"{}\"",
        attribute(&image.name),
        seconds(image.duration_ms)
    );
    match image.result {
        ImageResult::Failed => {
            out.push_str(">\n");
            failure(out, image);
            system_out(out, image);
            out.push_str("    </testcase>\n");
        }
        ImageResult::Skipped => {
            let why = image.skip_reason.as_deref().unwrap_or("not built");
            let _ = writeln!(
                out,
                ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                attribute(why)
            );
        }
        ImageResult::Built | ImageResult::Reused => {
            out.push_str(">\n");
            system_out(out, image);
            out.push_str("    </testcase>\n");
        }
    }
}

/// `<failure>` with the failing step and message as its message and the log tail as its text,
/// which GitLab shows when the case is opened.
fn failure(out: &mut String, image: &ImageReport) {
    let Some(failure) = &image.failure else {
        out.push_str("      <failure message=\"the build failed\" type=\"BuildFailed\"/>\n");
        return;
    };
    let at = match (&failure.step, failure.line) {
        (Some(step), Some(line)) => format!("{step} (Dockerfile line {line}): "),
        (Some(step), None) => format!("{step}: "),
        (None, Some(line)) => format!("Dockerfile line {line}: "),
        (None, None) => String::new(),
    };
    let _ = writeln!(
        out,
        "      <failure message=\"{}\" type=\"BuildFailed\">{}</failure>",
        attribute(&format!("{at}{}", failure.message)),
        text(&failure.log_tail.join("\n"))
    );
}

/// The steps with their timing and whether the cache served them.
fn system_out(out: &mut String, image: &ImageReport) {
    if image.steps.is_empty() {
        return;
    }
    let lines: Vec<String> = image
        .steps
        .iter()
        .map(|step| {
            let cached = if step.cached { " (cached)" } else { "" };
            format!("{} {}{cached}", step.name, seconds(step.duration_ms))
        })
        .collect();
    let _ = writeln!(
        out,
        "      <system-out>{}</system-out>",
        text(&lines.join("\n"))
    );
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Character data: `&`, `<` and `>` escaped, and characters XML 1.0 forbids (controls other than
/// tab, line feed and carriage return) replaced by their visible symbols.
fn text(value: &str) -> String {
    escape(value, false)
}

/// An attribute value: like [`text`] plus quotes, and tab and line breaks as character
/// references so attribute-value normalisation does not turn them into spaces.
fn attribute(value: &str) -> String {
    escape(value, true)
}

fn escape(value: &str, in_attribute: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\'' if in_attribute => out.push_str("&apos;"),
            '\n' if in_attribute => out.push_str("&#10;"),
            '\r' if in_attribute => out.push_str("&#13;"),
            '\t' if in_attribute => out.push_str("&#9;"),
            '\t' | '\n' | '\r' => out.push(c),
            '\u{0}'..='\u{1f}' => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}')),
            '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use quick_xml::events::Event;
    use quick_xml::{Reader, XmlVersion};

    use super::*;
    use crate::report::fixtures::{self, HOSTILE};

    /// An element's name, decoded attributes and text.
    type Element = (String, Vec<(String, String)>, String);

    /// What a JUnit reader sees: each element, in document order.
    fn parse(xml: &str) -> Vec<Element> {
        let mut reader = Reader::from_str(xml);
        let mut elements = Vec::new();
        // The open elements, innermost last: text belongs to the innermost.
        let mut open: Vec<usize> = Vec::new();
        loop {
            let event = reader.read_event().expect("well-formed XML");
            if let Event::Start(_) = event {
                open.push(elements.len());
            }
            match event {
                Event::Start(e) | Event::Empty(e) => {
                    let name = e.name().as_ref().to_string();
                    let attributes = e
                        .attributes()
                        .map(|a| {
                            let a = a.expect("attribute");
                            let key = a.key.as_ref().to_string();
                            let value = a
                                .normalized_value(XmlVersion::Implicit1_0)
                                .expect("value")
                                .into_owned();
                            (key, value)
                        })
                        .collect();
                    elements.push((name, attributes, String::new()));
                }
                Event::Text(t) => {
                    if let Some(&i) = open.last() {
                        elements[i].2.push_str(&t.xml10_content());
                    }
                }
                Event::GeneralRef(r) => {
                    let c = match r.resolve_char_ref().expect("character reference") {
                        Some(c) => c,
                        None => match r.xml10_content().as_ref() {
                            "amp" => '&',
                            "lt" => '<',
                            "gt" => '>',
                            "quot" => '"',
                            "apos" => '\'',
                            other => panic!("unexpected entity {other}"),
                        },
                    };
                    if let Some(&i) = open.last() {
                        elements[i].2.push(c);
                    }
                }
                Event::End(_) => {
                    open.pop();
                }
                Event::Eof => break,
                _ => {}
            }
        }
        elements
    }

    fn attribute_of<'a>(
        element: &'a (String, Vec<(String, String)>, String),
        key: &str,
    ) -> &'a str {
        element
            .1
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    #[test]
    fn one_case_per_image_with_failure_and_skip() {
        let xml = junit(&fixtures::report());
        insta::assert_snapshot!(xml);
        let elements = parse(&xml);
        let cases: Vec<&str> = elements
            .iter()
            .filter(|e| e.0 == "testcase")
            .map(|e| attribute_of(e, "name"))
            .collect();
        assert_eq!(cases, ["base", "linter", "api", "worker"]);
        let failure = elements.iter().find(|e| e.0 == "failure").expect("failure");
        assert!(
            attribute_of(failure, "message").starts_with("[3/4] RUN make (Dockerfile line 4): ")
        );
        assert_eq!(attribute_of(failure, "type"), "BuildFailed");
        assert!(
            failure.2.ends_with("make: *** [Makefile:2: app] Error 1"),
            "{}",
            failure.2
        );
    }

    #[test]
    fn hostile_text_round_trips_through_an_xml_parser() {
        let report = fixtures::hostile_report();
        let xml = junit(&report);
        insta::assert_snapshot!(xml);
        let elements = parse(&xml);
        let names: Vec<&str> = elements
            .iter()
            .filter(|e| e.0 == "testcase")
            .map(|e| attribute_of(e, "name"))
            .collect();
        let expected: Vec<&str> = report.images.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, expected, "names survive escaping exactly");
        let reason = elements
            .iter()
            .find(|e| attribute_of(e, "name") == "range_reason")
            .expect("property");
        assert_eq!(attribute_of(reason, "value"), HOSTILE);
        let failure = elements.iter().find(|e| e.0 == "failure").expect("failure");
        assert!(failure.2.contains("</details><script>"));
        assert!(
            failure.2.contains("\u{241b}[31mred"),
            "ESC shown, not dropped"
        );
        assert!(!xml.contains('\u{0}') && !xml.contains('\u{1b}'));
    }

    #[test]
    fn properties_carry_base_and_head_and_no_base_when_there_is_none() {
        let mut report = fixtures::report();
        let with_base = junit(&report);
        assert!(with_base.contains(
            "<property name=\"base\" value=\"0123456789abcdef0123456789abcdef01234567\"/>"
        ));
        report.run.base = None;
        let without = junit(&report);
        assert!(!without.contains("<property name=\"base\""));
        assert!(without.contains("<property name=\"head\""));
    }

    #[test]
    fn ten_thousand_images_stay_well_formed_and_under_gitlabs_limit() {
        let xml = junit(&fixtures::many_images(10_000));
        assert!(xml.len() < 30_000_000, "{}", xml.len());
        let cases = parse(&xml).iter().filter(|e| e.0 == "testcase").count();
        assert_eq!(cases, 10_000);
    }

    #[test]
    fn times_are_seconds_with_milliseconds() {
        assert_eq!(seconds(0), "0.000");
        assert_eq!(seconds(65_042), "65.042");
    }
}
