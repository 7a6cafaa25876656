//! JUnit XML of a scan, for GitLab (`artifacts:reports:junit`) and Jenkins (`junit`): one test
//! suite, one test case per image and platform. A case fails when a finding fails the gate; its
//! failure lists those findings, and its `system-out` the others. An image that was not matched
//! against vulnerability data is skipped, with the reason, never passed.
//!
//! Owns the layout and unique case names (GitLab keeps only the first of duplicate
//! (classname, name) pairs). The XML, with its escaping and the removal of characters XML
//! forbids, is `quick-junit`'s.

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::scan::model::{Finding, ImageInventory, ScanReport};

/// The `classname` of every case: GitLab shows it as the suite.
pub const CLASSNAME: &str = "buildopt.scan";

/// The `type` of a failure: findings over the gate.
pub const FAILURE_TYPE: &str = "VulnerabilityGate";

/// The JUnit document for a scan.
pub fn junit(report: &ScanReport) -> String {
    let mut suite = TestSuite::new("buildopt scan");
    if let Some(database) = report
        .images
        .iter()
        .find_map(|i| i.vulnerabilities.as_ref()?.database.clone())
    {
        suite.add_property(Property::new("database", database));
    }
    let mut names: Vec<String> = Vec::new();
    for image in &report.images {
        let name = unique(case_name(image), &names);
        names.push(name.clone());
        suite.add_test_case(test_case(image, name));
    }
    let mut document = Report::new("buildopt");
    document.add_test_suite(suite);
    document
        .to_string()
        .expect("a JUnit report of plain strings always serialises")
}

/// `<image> (<platform>)`, or the image alone.
fn case_name(image: &ImageInventory) -> String {
    match &image.platform {
        Some(platform) => format!("{} ({platform})", image.image),
        None => image.image.clone(),
    }
}

/// `name`, or `name #2`, `#3`... when an earlier case has it.
fn unique(name: String, taken: &[String]) -> String {
    if !taken.contains(&name) {
        return name;
    }
    (2..)
        .map(|n| format!("{name} #{n}"))
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or(name)
}

fn test_case(image: &ImageInventory, name: String) -> TestCase {
    let scanned = image.vulnerabilities.as_ref().is_some_and(|s| s.scanned);
    let mut findings: Vec<&Finding> = image.findings.iter().collect();
    // Most severe first; stable, so equal ones keep the report's order.
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let (failing, others): (Vec<&Finding>, Vec<&Finding>) =
        findings.into_iter().partition(|f| f.fails_gate);
    let status = if !scanned {
        let reason = image
            .vulnerabilities
            .as_ref()
            .and_then(|s| s.reason.clone())
            .unwrap_or_else(|| "not matched against vulnerability data".into());
        let mut status = TestCaseStatus::skipped();
        status.set_message(format!("not scanned: {reason}"));
        status
    } else if failing.is_empty() {
        TestCaseStatus::success()
    } else {
        failure(&failing)
    };
    let mut case = TestCase::new(name, status);
    case.set_classname(CLASSNAME);
    if !others.is_empty() {
        let lines: Vec<String> = others.iter().map(|f| line(f)).collect();
        case.set_system_out(format!(
            "{} finding(s) under the gate:\n{}\n",
            others.len(),
            lines.join("\n")
        ));
    }
    case
}

/// The failure: a one-line message naming every finding over the gate (GitLab shows the
/// message in its list), and one line each in the text.
fn failure(failing: &[&Finding]) -> TestCaseStatus {
    let lines: Vec<String> = failing.iter().map(|f| line(f)).collect();
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_type(FAILURE_TYPE);
    status.set_message(format!(
        "{} finding(s) fail the gate: {}",
        failing.len(),
        lines.join("; ")
    ));
    status.set_description(lines.join("\n"));
    status
}

/// `CVE-… libssl3 3.0.11-1 → 3.0.13-1 (critical 9.8), api/Dockerfile line 4`.
fn line(finding: &Finding) -> String {
    let fixed = finding.fixed_version.as_deref().unwrap_or("no fix yet");
    let score = finding
        .score
        .map(|s| format!(" {s:.1}"))
        .unwrap_or_default();
    let at = match (&finding.dockerfile, &finding.base_image) {
        (Some(line), _) => format!("{} line {}", line.path, line.line),
        (None, Some(base)) => format!("base image {base}"),
        (None, None) => finding.path.clone(),
    };
    format!(
        "{} {} {} → {fixed} ({}{score}), {at}",
        finding.id,
        finding.package,
        finding.installed_version,
        finding.severity.as_str()
    )
}

#[cfg(test)]
mod tests {
    use quick_xml::events::Event;
    use quick_xml::{Reader, XmlVersion};

    use super::*;
    use crate::report::findings_fixtures::{hostile_report, report};
    use crate::report::fixtures::HOSTILE;

    /// Each test case's name and what it holds: `failure`, `skipped` or nothing, with the
    /// message, and its `system-out`.
    #[derive(Debug, Default)]
    struct Case {
        name: String,
        classname: String,
        outcome: Option<String>,
        message: String,
        text: String,
        system_out: String,
    }

    fn cases(xml: &str) -> Vec<Case> {
        let mut reader = Reader::from_str(xml);
        let mut cases: Vec<Case> = Vec::new();
        let mut inside: Option<String> = None;
        loop {
            let event = reader.read_event().expect("well-formed XML");
            match &event {
                Event::Start(e) | Event::Empty(e) => {
                    let name = e.name().as_ref().to_string();
                    let attribute = |key: &str| {
                        e.try_get_attribute(key)
                            .expect("attribute")
                            .map(|a| {
                                a.normalized_value(XmlVersion::Implicit1_0)
                                    .expect("value")
                                    .into_owned()
                            })
                            .unwrap_or_default()
                    };
                    match name.as_str() {
                        "testcase" => cases.push(Case {
                            name: attribute("name"),
                            classname: attribute("classname"),
                            ..Case::default()
                        }),
                        "failure" | "skipped" => {
                            if let Some(case) = cases.last_mut() {
                                case.outcome = Some(name.clone());
                                case.message = attribute("message");
                            }
                        }
                        _ => {}
                    }
                    if matches!(event, Event::Start(_)) {
                        inside = Some(name);
                    }
                }
                Event::Text(t) => {
                    let text = t.xml10_content().into_owned();
                    if let Some(case) = cases.last_mut() {
                        match inside.as_deref() {
                            Some("failure") => case.text.push_str(&text),
                            Some("system-out") => case.system_out.push_str(&text),
                            _ => {}
                        }
                    }
                }
                Event::GeneralRef(r) => {
                    let c = r.resolve_char_ref().expect("reference").unwrap_or(
                        match r.xml10_content().as_ref() {
                            "amp" => '&',
                            "lt" => '<',
                            "gt" => '>',
                            "quot" => '"',
                            _ => '\'',
                        },
                    );
                    if let Some(case) = cases.last_mut() {
                        match inside.as_deref() {
                            Some("failure") => case.text.push(c),
                            Some("system-out") => case.system_out.push(c),
                            _ => {}
                        }
                    }
                }
                Event::End(_) => inside = None,
                Event::Eof => break,
                _ => {}
            }
        }
        cases
    }

    #[test]
    fn one_case_per_image_failing_on_the_findings_over_the_gate() {
        let xml = junit(&report());
        insta::assert_snapshot!(xml);
        let cases = cases(&xml);
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), 4);
        assert_eq!(
            names[0],
            "registry.example.com/acme/api:1.4.2 (linux/amd64)"
        );
        assert_eq!(
            names[1],
            "registry.example.com/acme/api:1.4.2 (linux/arm64)"
        );
        assert!(names[2].starts_with("registry.example.com/acme/worker@sha256:332f8777"));
        assert_eq!(names[3], "registry.example.com/acme/legacy:2 (linux/amd64)");
        assert!(cases.iter().all(|c| c.classname == CLASSNAME));
        let api = &cases[0];
        assert_eq!(api.outcome.as_deref(), Some("failure"));
        assert!(
            api.message.starts_with("2 finding(s) fail the gate: "),
            "{}",
            api.message
        );
        assert!(api.message.contains(
            "CVE-2023-45853 zlib1g 1:1.2.13.dfsg-1 → no fix yet (critical 9.8), base image debian:bookworm-slim"
        ));
        assert!(api.message.contains(
            "CVE-2023-52425 libexpat1 2.5.0-1 → 2.5.0-1+deb12u1 (high 7.5), api/Dockerfile line 4"
        ));
        assert_eq!(api.text.lines().count(), 2);
        assert!(api.system_out.contains("6 finding(s) under the gate"));
        assert!(
            api.system_out
                .contains("GHSA-9wx4-h78v-vm56 requests 2.31.0 → 2.32.0")
        );
        assert_eq!(cases[2].outcome, None, "worker passes");
        assert_eq!(cases[3].outcome.as_deref(), Some("skipped"));
        assert!(
            cases[3]
                .message
                .starts_with("not scanned: no vulnerability database")
        );
    }

    #[test]
    fn duplicate_names_are_made_unique() {
        let mut report = report();
        let copy = report.images[2].clone();
        report.images.push(copy.clone());
        report.images.push(copy);
        let cases = cases(&junit(&report));
        let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert!(
            names[5].ends_with(" #3") && names[4].ends_with(" #2"),
            "{names:?}"
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), cases.len());
    }

    #[test]
    fn hostile_text_round_trips_through_an_xml_parser() {
        let xml = junit(&hostile_report());
        insta::assert_snapshot!(xml);
        let cases = cases(&xml);
        assert!(
            cases[0].name.contains("</details><script>"),
            "{}",
            cases[0].name
        );
        assert!(
            cases[0].message.contains("zlib1g::error"),
            "{}",
            cases[0].message
        );
        assert!(!xml.contains('\u{0}') && !xml.contains('\u{1b}'));
        assert!(cases[0].text.contains("@channel"), "{}", HOSTILE);
    }
}
