//! The GitLab dotenv report (`artifacts:reports:dotenv`): `KEY=value` lines that later jobs get as
//! variables — which images were built, reused, failed or skipped, the vulnerability counts when
//! the run matched its images, and each pushed digest.
//!
//! Owns GitLab's rules for the file: names of ASCII letters, digits and `_`; one line per
//! variable, no multi-line values, no comments or blank lines, no quoting (quotes are kept
//! as-is); at most 20 variables (the smallest plan limit) and 5 KiB. What does not fit is left
//! out whole — a cut list would be wrong data — and named in [`Dotenv::omitted`].

use std::collections::BTreeMap;

use super::findings_section::Vulnerabilities;
use super::model::{ImageResult, RunReport, RunScan};

/// The smallest `dotenv_variables` plan limit on GitLab; above it the upload is rejected.
pub const MAX_VARIABLES: usize = 20;

/// GitLab's `dotenv_size` limit in bytes.
pub const MAX_BYTES: usize = 5 * 1024;

const PREFIX: &str = "BUILDOPT_";

/// The rendered report and the variables that did not fit or were ambiguous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dotenv {
    pub text: String,
    pub omitted: Vec<String>,
}

/// The dotenv report of a run: `BUILDOPT_RESULT`, the `BUILT`, `REUSED`, `FAILED` and `SKIPPED`
/// image lists (comma-separated, in build order), the vulnerability counts when the run matched
/// (see [`vulnerability_variables`]), then `BUILDOPT_<IMAGE>_DIGEST` per pushed image.
pub fn dotenv(report: &RunReport) -> Dotenv {
    let mut variables = vec![(format!("{PREFIX}RESULT"), result(report).to_string())];
    for (suffix, wanted) in [
        ("BUILT", ImageResult::Built),
        ("REUSED", ImageResult::Reused),
        ("FAILED", ImageResult::Failed),
        ("SKIPPED", ImageResult::Skipped),
    ] {
        let names: Vec<String> = report
            .images
            .iter()
            .filter(|i| i.result == wanted)
            .map(|i| value(&i.name))
            .collect();
        variables.push((format!("{PREFIX}{suffix}"), names.join(",")));
    }
    if let Some(scan) = &report.scan {
        variables.extend(vulnerability_variables(scan));
    }
    let (digests, mut omitted) = digests(report);
    variables.extend(digests);

    let mut text = String::new();
    let mut count = 0;
    for (name, value) in variables {
        let line = format!("{name}={value}\n");
        if count < MAX_VARIABLES && text.len() + line.len() <= MAX_BYTES {
            text.push_str(&line);
            count += 1;
        } else {
            omitted.push(name);
        }
    }
    Dotenv { text, omitted }
}

/// `BUILDOPT_VULNERABILITIES_CRITICAL` … `_UNKNOWN` (reported findings by severity) and
/// `BUILDOPT_VULNERABILITIES_FAILING` (findings over the gate), when at least one image was
/// matched; none otherwise, so a later job cannot mistake "not scanned" for zero findings.
pub fn vulnerability_variables(scan: &RunScan) -> Vec<(String, String)> {
    let Vulnerabilities::Matched(scan) = Vulnerabilities::of(scan) else {
        return Vec::new();
    };
    let mut variables: Vec<(String, String)> = scan
        .counts()
        .by_severity()
        .into_iter()
        .map(|(severity, count)| {
            let name = severity.as_str().to_ascii_uppercase();
            (format!("{PREFIX}VULNERABILITIES_{name}"), count.to_string())
        })
        .collect();
    variables.push((
        format!("{PREFIX}VULNERABILITIES_FAILING"),
        scan.failing().to_string(),
    ));
    variables
}

/// `BUILDOPT_<IMAGE>_<SUFFIX>`: the image name upper-cased, every other character `_`.
pub fn variable_name(image: &str, suffix: &str) -> String {
    let image: String = image
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{PREFIX}{image}_{suffix}")
}

fn result(report: &RunReport) -> &'static str {
    if report.run.interrupted {
        "interrupted"
    } else if report.has_failures() {
        "failure"
    } else {
        "success"
    }
}

/// Digest variables in build order. Images whose names map to the same variable (`api-x` and
/// `api_x`) are both left out: either value would be a guess.
fn digests(report: &RunReport) -> (Vec<(String, String)>, Vec<String>) {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut order = Vec::new();
    for image in &report.images {
        let Some(digest) = &image.digest else {
            continue;
        };
        let name = variable_name(&image.name, "DIGEST");
        if !by_name.contains_key(&name) {
            order.push(name.clone());
        }
        by_name.entry(name).or_default().push(value(digest));
    }
    let mut variables = Vec::new();
    let mut ambiguous = Vec::new();
    for name in order {
        match by_name.remove(&name).as_deref() {
            Some([digest]) => variables.push((name, digest.clone())),
            _ => ambiguous.push(name),
        }
    }
    (variables, ambiguous)
}

/// A value on one line: control characters (line breaks above all, which GitLab rejects) become
/// `_`, and the surrounding whitespace GitLab would trim is removed here.
fn value(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{self, HOSTILE};

    fn is_valid_line(line: &str) -> bool {
        let Some((name, value)) = line.split_once('=') else {
            return false;
        };
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !value.contains(['\r', '\n'])
    }

    #[test]
    fn lists_and_digests_of_a_mixed_run() {
        let dotenv = dotenv(&fixtures::report());
        insta::assert_snapshot!(dotenv.text, @r"
        BUILDOPT_RESULT=failure
        BUILDOPT_BUILT=base
        BUILDOPT_REUSED=linter
        BUILDOPT_FAILED=api
        BUILDOPT_SKIPPED=worker
        BUILDOPT_BASE_DIGEST=registry.example.com/base@sha256:aaaa
        BUILDOPT_LINTER_DIGEST=registry.example.com/linter@sha256:bbbb
        ");
        assert!(dotenv.omitted.is_empty());
    }

    #[test]
    fn names_are_upper_case_with_underscores() {
        assert_eq!(
            variable_name("web-app.v2", "DIGEST"),
            "BUILDOPT_WEB_APP_V2_DIGEST"
        );
        assert_eq!(variable_name("ünï", "DIGEST"), "BUILDOPT__N__DIGEST");
    }

    #[test]
    fn hostile_names_give_one_valid_line_per_variable() {
        let mut report = fixtures::hostile_report();
        report.images[0].name = format!("base\nBUILDOPT_RESULT=success\r{HOSTILE}");
        let dotenv = dotenv(&report);
        insta::assert_snapshot!(dotenv.text);
        for line in dotenv.text.lines() {
            assert!(is_valid_line(line), "{line}");
        }
        let results = dotenv
            .text
            .lines()
            .filter(|l| l.starts_with("BUILDOPT_RESULT="));
        assert_eq!(results.count(), 1, "{}", dotenv.text);
    }

    #[test]
    fn colliding_names_are_left_out_not_guessed() {
        let mut report = fixtures::report();
        report.images[1].name = "BASE".into();
        let dotenv = dotenv(&report);
        assert!(!dotenv.text.contains("_DIGEST="), "{}", dotenv.text);
        assert_eq!(dotenv.omitted, ["BUILDOPT_BASE_DIGEST"]);
    }

    #[test]
    fn ten_thousand_images_stay_within_gitlabs_limits() {
        let dotenv = dotenv(&fixtures::many_images(10_000));
        assert!(dotenv.text.len() <= MAX_BYTES);
        assert!(dotenv.text.lines().count() <= MAX_VARIABLES);
        assert!(dotenv.text.starts_with("BUILDOPT_RESULT=failure\n"));
        // The lists are each longer than 5 KiB: left out whole, never cut.
        for list in ["BUILT", "REUSED", "FAILED", "SKIPPED"] {
            assert!(dotenv.omitted.contains(&format!("{PREFIX}{list}")));
        }
        assert_eq!(
            dotenv.omitted.len() + dotenv.text.lines().count(),
            5 + 10_000
        );
    }

    #[test]
    fn an_interrupted_run_says_so() {
        let mut report = fixtures::report();
        report.run.interrupted = true;
        assert!(
            dotenv(&report)
                .text
                .starts_with("BUILDOPT_RESULT=interrupted\n")
        );
    }

    #[test]
    fn a_matched_run_gives_the_vulnerability_counts() {
        let dotenv = dotenv(&fixtures::scan_report());
        insta::assert_snapshot!(dotenv.text, @r"
        BUILDOPT_RESULT=failure
        BUILDOPT_BUILT=base
        BUILDOPT_REUSED=linter
        BUILDOPT_FAILED=api
        BUILDOPT_SKIPPED=worker
        BUILDOPT_VULNERABILITIES_CRITICAL=2
        BUILDOPT_VULNERABILITIES_HIGH=1
        BUILDOPT_VULNERABILITIES_MEDIUM=4
        BUILDOPT_VULNERABILITIES_LOW=1
        BUILDOPT_VULNERABILITIES_UNKNOWN=1
        BUILDOPT_VULNERABILITIES_FAILING=3
        BUILDOPT_BASE_DIGEST=registry.example.com/base@sha256:aaaa
        BUILDOPT_LINTER_DIGEST=registry.example.com/linter@sha256:bbbb
        ");
        assert!(dotenv.omitted.is_empty());
    }

    #[test]
    fn a_run_that_did_not_match_has_no_vulnerability_counts() {
        let mut inventory_only = fixtures::scan_report();
        if let Some(scan) = inventory_only.scan.as_mut() {
            scan.policy = None;
        }
        for report in [fixtures::unscanned_report(), inventory_only] {
            let dotenv = dotenv(&report);
            assert!(!dotenv.text.contains("VULNERABILITIES"), "{}", dotenv.text);
        }
    }
}
