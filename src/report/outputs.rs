//! GitHub Actions step outputs of a finished run: which images were built, reused and failed,
//! each image's digest and tags, and the vulnerability counts when the run matched its images,
//! as JSON values workflows read with `fromJSON` (the counts also one number per output).

use std::collections::BTreeMap;

use serde_json::Value;

use super::findings_section::Vulnerabilities;
use super::model::{ImageResult, RunReport, RunScan};

/// `built`, `reused`, `failed` (arrays of image names in build order), `digests` (name → the
/// registry digest once pushed, else the image id) and `tags` (name → every `repo:tag`), for
/// images that exist after the run; then [`vulnerability_outputs`].
pub fn run_outputs(report: &RunReport) -> Vec<(&'static str, String)> {
    let names = |wanted: ImageResult| -> String {
        let names: Vec<&str> = report
            .images
            .iter()
            .filter(|image| image.result == wanted)
            .map(|image| image.name.as_str())
            .collect();
        Value::from(names).to_string()
    };
    let present = || {
        report
            .images
            .iter()
            .filter(|image| matches!(image.result, ImageResult::Built | ImageResult::Reused))
    };
    let digests: BTreeMap<&str, &str> = present()
        .filter_map(|image| {
            let digest = image.digest.as_deref().or(image.image_id.as_deref())?;
            Some((image.name.as_str(), digest))
        })
        .collect();
    let tags: BTreeMap<&str, &[String]> = present()
        .map(|image| (image.name.as_str(), image.tags.as_slice()))
        .collect();
    let mut outputs = vec![
        ("built", names(ImageResult::Built)),
        ("reused", names(ImageResult::Reused)),
        ("failed", names(ImageResult::Failed)),
        ("digests", json(&digests)),
        ("tags", json(&tags)),
    ];
    if let Some(scan) = &report.scan {
        outputs.extend(vulnerability_outputs(scan));
    }
    outputs
}

/// `vulnerabilities` (`{"critical":N,"high":N,"medium":N,"low":N,"unknown":N}`) and one output
/// per severity (`vulnerabilities-critical` …), the names the Action declares; none when no
/// image was matched, so "not scanned" never reads as zero findings.
pub fn vulnerability_outputs(scan: &RunScan) -> Vec<(&'static str, String)> {
    let Vulnerabilities::Matched(scan) = Vulnerabilities::of(scan) else {
        return Vec::new();
    };
    let counts = scan.counts();
    vec![
        ("vulnerabilities", json(&counts)),
        ("vulnerabilities-critical", counts.critical.to_string()),
        ("vulnerabilities-high", counts.high.to_string()),
        ("vulnerabilities-medium", counts.medium.to_string()),
        ("vulnerabilities-low", counts.low.to_string()),
        ("vulnerabilities-unknown", counts.unknown.to_string()),
    ]
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn lists_by_result_and_maps_only_images_that_exist() {
        let mut report = fixtures::report();
        report.images[0].digest = Some("127.0.0.1:5000/base@sha256:aa".into());
        let outputs: BTreeMap<&str, String> = run_outputs(&report).into_iter().collect();
        assert_eq!(outputs["built"], r#"["base"]"#);
        assert_eq!(outputs["reused"], r#"["linter"]"#);
        assert_eq!(outputs["failed"], r#"["api"]"#);
        let digests: BTreeMap<String, String> =
            serde_json::from_str(&outputs["digests"]).expect("json");
        assert_eq!(digests["base"], "127.0.0.1:5000/base@sha256:aa");
        assert!(digests.contains_key("linter") && !digests.contains_key("api"));
        let tags: BTreeMap<String, Vec<String>> =
            serde_json::from_str(&outputs["tags"]).expect("json");
        assert_eq!(tags["base"], report.images[0].tags);
        assert!(!tags.contains_key("worker"));
    }

    #[test]
    fn a_matched_run_outputs_its_counts_by_severity() {
        let outputs = run_outputs(&fixtures::scan_report());
        let vulnerabilities: Vec<(&str, &str)> = outputs
            .iter()
            .filter(|(name, _)| name.starts_with("vulnerabilities"))
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        assert_eq!(
            vulnerabilities,
            [
                (
                    "vulnerabilities",
                    r#"{"critical":2,"high":1,"medium":4,"low":1,"unknown":1}"#
                ),
                ("vulnerabilities-critical", "2"),
                ("vulnerabilities-high", "1"),
                ("vulnerabilities-medium", "4"),
                ("vulnerabilities-low", "1"),
                ("vulnerabilities-unknown", "1"),
            ]
        );
    }

    #[test]
    fn a_run_that_did_not_match_has_no_vulnerability_outputs() {
        let mut inventory_only = fixtures::scan_report();
        if let Some(scan) = inventory_only.scan.as_mut() {
            scan.policy = None;
        }
        for report in [
            fixtures::unscanned_report(),
            inventory_only,
            fixtures::report(),
        ] {
            let outputs = run_outputs(&report);
            assert!(outputs.iter().all(|(name, _)| !name.starts_with("vuln")));
        }
    }
}
