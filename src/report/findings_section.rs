//! The vulnerability part of a run's CI reports, shared by the job summary and PR comment, the
//! HTML page and Slack: whether the run matched at all, the findings in reading order (new since
//! the base first, then by severity and id), which rows to keep when space is short (least
//! severe dropped first), and the words for the gate, a fix and a finding's origin.
//!
//! Everything here is plain, unescaped text: each renderer escapes it for its own format.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use super::model::{RunScan, SeverityCounts};
use crate::scan::model::{Finding, ImageInventory};
use crate::scan::policy::Policy;

/// Where the complete findings are when a report lists only some of them.
pub const FULL_FINDINGS: &str = "buildopt-scan.sarif";

/// The words every format uses when no image could be matched.
pub const NOT_SCANNED: &str = "not scanned: no vulnerability database";

/// What a run's scan can say about vulnerabilities.
#[derive(Debug)]
pub enum Vulnerabilities<'a> {
    /// Packages were listed but never matched (no policy, or no image was meant to be):
    /// reports give a package count, never "0 vulnerabilities".
    InventoryOnly { images: usize, packages: usize },
    /// Matching was asked for and no image could be matched.
    NotScanned,
    /// At least one image was matched.
    Matched(&'a RunScan),
}

impl<'a> Vulnerabilities<'a> {
    pub fn of(scan: &'a RunScan) -> Self {
        let asked = scan.images.iter().any(|i| i.vulnerabilities.is_some());
        if scan.policy.is_none() || !asked {
            let packages = scan.images.iter().map(|i| i.packages.len()).sum();
            return Self::InventoryOnly {
                images: scan.images.len(),
                packages,
            };
        }
        if scan.matched() {
            Self::Matched(scan)
        } else {
            Self::NotScanned
        }
    }
}

/// `Vulnerabilities: 1 critical, 2 high (1 new) — gate failed`, `Vulnerabilities: none`, or
/// `Vulnerabilities: not scanned: no vulnerability database`; nothing for a scan that only
/// listed packages. Made of counts and fixed words only, so it needs no escaping of its own.
pub fn summary_line(scan: &RunScan) -> Option<String> {
    let scan = match Vulnerabilities::of(scan) {
        Vulnerabilities::InventoryOnly { .. } => return None,
        Vulnerabilities::NotScanned => return Some(format!("Vulnerabilities: {NOT_SCANNED}")),
        Vulnerabilities::Matched(scan) => scan,
    };
    let counts = scan.counts();
    let mut line = match counts.total() {
        0 => "Vulnerabilities: none".to_string(),
        _ => format!("Vulnerabilities: {}", counts_text(&counts, true)),
    };
    if scan.base.is_some() && counts.total() > 0 {
        line.push_str(&format!(" ({} new)", scan.new_findings()));
    }
    if scan.policy.as_ref().and_then(gate).is_some() {
        line.push_str(match scan.failing() {
            0 => " — gate passed",
            _ => " — gate failed",
        });
    }
    let unscanned = scan.unscanned().len();
    if unscanned > 0 {
        let images = if unscanned == 1 { "image" } else { "images" };
        line.push_str(&format!("; {unscanned} {images} {NOT_SCANNED}"));
    }
    Some(line)
}

/// One finding of one image, as a table row.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub image: &'a ImageInventory,
    pub finding: &'a Finding,
}

impl Row<'_> {
    pub fn is_new(&self) -> bool {
        self.finding.new == Some(true)
    }
}

/// Every finding of the run's images in reading order: new since the base first, then the
/// rest; within each, most severe first, then by id, package and image.
pub fn rows(scan: &RunScan) -> Vec<Row<'_>> {
    let mut rows: Vec<Row<'_>> = scan
        .images
        .iter()
        .flat_map(|image| {
            image
                .findings
                .iter()
                .map(move |finding| Row { image, finding })
        })
        .collect();
    rows.sort_by(|a, b| reading_key(a).cmp(&reading_key(b)));
    rows
}

type ReadingKey<'a> = (
    bool,
    Reverse<crate::scan::model::Severity>,
    &'a str,
    &'a str,
    &'a str,
);

fn reading_key<'a>(row: &Row<'a>) -> ReadingKey<'a> {
    (
        !row.is_new(),
        Reverse(row.finding.severity),
        row.finding.id.as_str(),
        row.finding.package.as_str(),
        row.image.image.as_str(),
    )
}

/// The `keep` rows that matter most, still in reading order: the least severe go first, and
/// among equal severity, old findings before new ones and those that pass the gate before
/// those that fail it.
pub fn most_severe<'a>(rows: &[Row<'a>], keep: usize) -> Vec<Row<'a>> {
    if keep >= rows.len() {
        return rows.to_vec();
    }
    let mut by_importance: Vec<usize> = (0..rows.len()).collect();
    by_importance.sort_by_key(|&index| {
        let finding = rows[index].finding;
        (
            Reverse(finding.severity),
            !rows[index].is_new(),
            !finding.fails_gate,
            index,
        )
    });
    let mut kept = by_importance[..keep].to_vec();
    kept.sort_unstable();
    kept.into_iter().map(|index| rows[index]).collect()
}

/// `critical`, `high`, `critical or high`, with what `--ignore-unfixed` exempts; `None` when no
/// gate is on.
pub fn gate(policy: &Policy) -> Option<String> {
    let severities = match (policy.fail_on_critical, policy.fail_on_high) {
        (true, true) => "critical or high",
        (true, false) => "critical",
        (false, true) => "high",
        (false, false) => return None,
    };
    let exempt = if policy.ignore_unfixed {
        ", findings without a fix exempt"
    } else {
        ""
    };
    Some(format!("{severities}{exempt}"))
}

/// `1 critical, 2 high, 0 medium, 0 low, 0 unknown`; with `skip_zero`, only the severities found.
pub fn counts_text(counts: &SeverityCounts, skip_zero: bool) -> String {
    counts
        .by_severity()
        .into_iter()
        .filter(|(_, count)| !skip_zero || *count > 0)
        .map(|(severity, count)| format!("{count} {}", severity.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The fix that applies, or `no fix yet`.
pub fn fixed(finding: &Finding) -> &str {
    finding.fixed_version.as_deref().unwrap_or("no fix yet")
}

/// The Dockerfile line (`api/Dockerfile:4`) or base image (`base image debian:12`) that
/// brought the package; `-` when neither is known (an image buildopt did not build).
pub fn origin(finding: &Finding) -> String {
    match (&finding.dockerfile, &finding.base_image) {
        (Some(line), _) => format!("{}:{}", line.path, line.line),
        (None, Some(base)) => format!("base image {base}"),
        (None, None) => "-".into(),
    }
}

/// Image names that name images of the run on several platforms: those rows also name the
/// platform, so two rows of one finding can be told apart.
pub fn image_labels(scan: &RunScan) -> ImageLabels<'_> {
    let mut platforms: BTreeMap<&str, usize> = BTreeMap::new();
    for image in &scan.images {
        *platforms.entry(image.image.as_str()).or_default() += 1;
    }
    ImageLabels { platforms }
}

/// See [`image_labels`].
pub struct ImageLabels<'a> {
    platforms: BTreeMap<&'a str, usize>,
}

impl ImageLabels<'_> {
    /// `acme/api:1.2` or, when the run holds it for several platforms, `acme/api:1.2
    /// (linux/arm64)`.
    pub fn label(&self, image: &ImageInventory) -> String {
        let several = self.platforms.get(image.image.as_str()).copied() > Some(1);
        match (&image.platform, several) {
            (Some(platform), true) => format!("{} ({platform})", image.image),
            _ => image.image.clone(),
        }
    }
}

/// The database the run's images were matched against, from the first matched image.
pub fn database(scan: &RunScan) -> Option<&str> {
    scan.images
        .iter()
        .filter_map(|image| image.vulnerabilities.as_ref())
        .filter(|status| status.scanned)
        .find_map(|status| status.database.as_deref())
}

/// `built 2026-12-01 (6 days old)`: the database's age as the check recorded it, so the
/// renderers never read the clock.
pub fn database_age(scan: &RunScan) -> Option<String> {
    let status = scan
        .images
        .iter()
        .filter_map(|image| image.vulnerabilities.as_ref())
        .find(|status| status.scanned && status.database.is_some())?;
    let built = status.database_built.as_deref()?;
    Some(match status.database_age_days {
        Some(1) => format!("built {built} (1 day old)"),
        Some(days) => format!("built {built} ({days} days old)"),
        None => format!("built {built}"),
    })
}

/// For each image with packages that could not be matched, its label and
/// `3 packages not matched (2 distribution without OSV data, 1 …)`; they do not fail the
/// gate, but are never silent.
pub fn not_matched(scan: &RunScan) -> Vec<(String, String)> {
    let labels = image_labels(scan);
    scan.images
        .iter()
        .filter_map(|image| {
            let status = image.vulnerabilities.as_ref()?;
            let counts = not_matched_counts(&status.not_matched)?;
            Some((labels.label(image), counts))
        })
        .collect()
}

fn not_matched_counts(list: &[crate::scan::model::NotMatched]) -> Option<String> {
    if list.is_empty() {
        return None;
    }
    let mut by_reason: std::collections::BTreeMap<_, usize> = Default::default();
    for entry in list {
        *by_reason.entry(entry.reason).or_default() += 1;
    }
    let parts: Vec<String> = by_reason
        .iter()
        .map(|(reason, count)| format!("{count} {}", reason.as_str()))
        .collect();
    Some(format!(
        "{} not matched against vulnerability data ({})",
        list.len(),
        parts.join(", ")
    ))
}

/// Findings the ignore files and the report level left out, over every image.
pub fn left_out(scan: &RunScan) -> (usize, usize) {
    scan.images
        .iter()
        .filter_map(|image| image.vulnerabilities.as_ref())
        .fold((0, 0), |(ignored, below), status| {
            (ignored + status.ignored, below + status.below_level)
        })
}

/// The sentence for an image whose base build's inventory is unknown.
pub fn base_unknown_sentence(image: &str) -> String {
    format!("The base build's inventory of {image} is unknown: all its findings are listed.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    fn scan() -> RunScan {
        fixtures::scan_report().scan.expect("scan")
    }

    #[test]
    fn new_findings_come_first_then_by_severity_and_id() {
        let scan = scan();
        let rows = rows(&scan);
        let new = rows.iter().take_while(|r| r.is_new()).count();
        assert_eq!(new, scan.new_findings());
        assert!(rows[new..].iter().all(|r| !r.is_new()));
        for group in [&rows[..new], &rows[new..]] {
            for pair in group.windows(2) {
                let (a, b) = (pair[0].finding, pair[1].finding);
                assert!(
                    a.severity > b.severity || (a.severity == b.severity && a.id <= b.id),
                    "{} before {}",
                    a.id,
                    b.id
                );
            }
        }
    }

    #[test]
    fn the_least_severe_rows_are_dropped_first_and_the_order_is_kept() {
        let scan = scan();
        let rows = rows(&scan);
        let kept = most_severe(&rows, 3);
        assert_eq!(kept.len(), 3);
        let lowest_kept = kept.iter().map(|r| r.finding.severity).min();
        let dropped: Vec<&Row<'_>> = rows
            .iter()
            .filter(|r| !kept.iter().any(|k| std::ptr::eq(k.finding, r.finding)))
            .collect();
        assert!(
            dropped
                .iter()
                .all(|r| Some(r.finding.severity) <= lowest_kept)
        );
        let positions: Vec<usize> = kept
            .iter()
            .map(|k| {
                rows.iter()
                    .position(|r| std::ptr::eq(r.finding, k.finding))
                    .expect("kept row")
            })
            .collect();
        assert!(positions.windows(2).all(|p| p[0] < p[1]), "{positions:?}");
        assert_eq!(most_severe(&rows, 0).len(), 0);
        assert_eq!(most_severe(&rows, usize::MAX).len(), rows.len());
    }

    #[test]
    fn the_gate_names_its_severities_and_the_unfixed_exemption() {
        let mut policy = Policy::default();
        assert_eq!(gate(&policy).as_deref(), Some("critical or high"));
        policy.fail_on_high = false;
        policy.ignore_unfixed = true;
        assert_eq!(
            gate(&policy).as_deref(),
            Some("critical, findings without a fix exempt")
        );
        policy.fail_on_critical = false;
        assert_eq!(gate(&policy), None);
    }

    #[test]
    fn an_inventory_only_scan_is_never_a_count_of_zero_vulnerabilities() {
        let mut scan = scan();
        scan.policy = None;
        assert!(matches!(
            Vulnerabilities::of(&scan),
            Vulnerabilities::InventoryOnly { images: 4, .. }
        ));
        let mut scan = self::scan();
        for image in &mut scan.images {
            image.vulnerabilities = None;
        }
        assert!(matches!(
            Vulnerabilities::of(&scan),
            Vulnerabilities::InventoryOnly { .. }
        ));
        let scan = fixtures::unscanned_report().scan.expect("scan");
        assert!(matches!(
            Vulnerabilities::of(&scan),
            Vulnerabilities::NotScanned
        ));
    }

    #[test]
    fn counts_list_every_severity_or_only_those_found() {
        let counts = SeverityCounts {
            critical: 1,
            high: 2,
            ..SeverityCounts::default()
        };
        assert_eq!(
            counts_text(&counts, false),
            "1 critical, 2 high, 0 medium, 0 low, 0 unknown"
        );
        assert_eq!(counts_text(&counts, true), "1 critical, 2 high");
    }

    #[test]
    fn rows_of_an_image_on_several_platforms_name_the_platform() {
        let scan = scan();
        let labels = image_labels(&scan);
        assert_eq!(
            labels.label(&scan.images[1]),
            "registry.example.com/acme/api:1.4.2 (linux/arm64)"
        );
        assert_eq!(
            labels.label(&scan.images[3]),
            "registry.example.com/acme/legacy:2"
        );
    }
}
