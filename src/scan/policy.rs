//! The scan policy: which findings an image's report keeps (the ignore file, then the report
//! level), which of those fail the gate (`FAIL_ON_CRITICAL`, `FAIL_ON_HIGH`, less what
//! `--ignore-unfixed` exempts), and the exit code the gate and unscanned images come to.
//!
//! The report level and the gate are kept apart on purpose: the level only decides what is
//! listed, the gate only decides the exit code among what is listed (trivy-action's most
//! reported surprise is the two being one).

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;

use super::ignore::{IgnoreEntry, IgnoreList};
use super::model::{Finding, ImageInventory, MatchStatus, Severity};
use crate::exit::{self, Ending};

/// What the report lists (`scan --level`, the seed's scan levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanLevel {
    /// Everything, unknown severity included.
    #[default]
    Low,
    /// Medium and above, and unknown.
    Medium,
    /// High and critical, and unknown.
    High,
}

impl ScanLevel {
    pub const ALL: [ScanLevel; 3] = [Self::Low, Self::Medium, Self::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }

    /// Whether a finding of `severity` is listed at this level. An unknown severity is never
    /// hidden: nobody has said it is harmless.
    pub fn reports(self, severity: Severity) -> bool {
        let floor = match self {
            Self::Low => Severity::Low,
            Self::Medium => Severity::Medium,
            Self::High => Severity::High,
        };
        severity == Severity::Unknown || severity >= floor
    }
}

impl fmt::Display for ScanLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScanLevel {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            _ => Err("expected low, medium or high".into()),
        }
    }
}

/// The policy settings `apply` and the gate read (from `ScanSettings::policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Policy {
    pub level: ScanLevel,
    pub fail_on_critical: bool,
    pub fail_on_high: bool,
    /// Findings with no fix are listed but never fail the gate.
    pub ignore_unfixed: bool,
}

impl Default for Policy {
    /// The seed's defaults: everything listed, critical and high fail.
    fn default() -> Self {
        Self {
            level: ScanLevel::Low,
            fail_on_critical: true,
            fail_on_high: true,
            ignore_unfixed: false,
        }
    }
}

impl Policy {
    /// Whether any gate is on: only then does an unscanned image fail the run.
    pub fn gate_on(&self) -> bool {
        self.fail_on_critical || self.fail_on_high
    }

    /// Whether a listed finding fails the gate.
    pub fn fails_gate(&self, finding: &Finding) -> bool {
        let over = match finding.severity {
            Severity::Critical => self.fail_on_critical,
            Severity::High => self.fail_on_high,
            Severity::Medium | Severity::Low | Severity::Unknown => false,
        };
        over && !(self.ignore_unfixed && finding.fixed_version.is_none())
    }
}

/// What the policy made of one image's findings.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyOutcome {
    /// The findings every output lists, in their given order, each with `fails_gate` set.
    pub kept: Vec<Finding>,
    /// Findings an ignore entry covers.
    pub ignored: usize,
    /// Findings the report level leaves out (not counting ignored ones).
    pub below_level: usize,
    /// Expired entries that would have covered a finding here: each once, in file order, so
    /// the report can say why a finding is back.
    pub expired_ignores: Vec<IgnoreEntry>,
}

impl PolicyOutcome {
    /// Whether any kept finding fails the gate.
    pub fn fails_gate(&self) -> bool {
        self.kept.iter().any(|finding| finding.fails_gate)
    }

    /// Puts the kept findings and the counts into `image` (its `findings` and its match
    /// status, when it has one).
    pub fn record(self, image: &mut ImageInventory) {
        if let Some(status) = image.vulnerabilities.as_mut() {
            status.ignored = self.ignored;
            status.below_level = self.below_level;
        }
        image.findings = self.kept;
    }
}

/// Applies the ignore entries (those in force on `today`), then the report level, then the
/// gate. Scope `ignores` to the image first ([`IgnoreList::for_image`]).
pub fn apply(
    findings: Vec<Finding>,
    policy: &Policy,
    ignores: &IgnoreList,
    today: NaiveDate,
) -> PolicyOutcome {
    let mut outcome = PolicyOutcome {
        kept: Vec::with_capacity(findings.len()),
        ignored: 0,
        below_level: 0,
        expired_ignores: Vec::new(),
    };
    for mut finding in findings {
        let covering = ignores.covering(&finding);
        if covering.clone().any(|entry| entry.in_force_on(today)) {
            outcome.ignored += 1;
            continue;
        }
        // Nothing in force covers it: every covering entry has expired.
        for expired in covering {
            if !outcome.expired_ignores.contains(expired) {
                outcome.expired_ignores.push(expired.clone());
            }
        }
        if !policy.level.reports(finding.severity) {
            outcome.below_level += 1;
            continue;
        }
        finding.fails_gate = policy.fails_gate(&finding);
        outcome.kept.push(finding);
    }
    outcome
}

/// How the gate and the vulnerability data end a run over `images`: a failed gate
/// ([`Ending::PolicyFailed`], exit 3) when a listed finding fails it, and
/// [`Ending::EnvironmentUnusable`] (exit 4) when an image was not scanned
/// (`vulnerabilities.scanned == false`, e.g. no database) while a gate is on: never a silent
/// pass. An image with no match status (`vulnerabilities: None`) was only inventoried, and
/// the gate does not look at it. The caller adds these to the run's other endings, whose order
/// ([`exit::exit_code`]) puts a failed build (1) and exit 4 above the gate (3).
pub fn endings<'a>(
    images: impl IntoIterator<Item = &'a ImageInventory>,
    policy: &Policy,
) -> Vec<Ending> {
    let mut endings = Vec::new();
    for image in images {
        let unscanned = image
            .vulnerabilities
            .as_ref()
            .is_some_and(|status: &MatchStatus| !status.scanned);
        if unscanned && policy.gate_on() {
            endings.push(Ending::EnvironmentUnusable);
        }
        if image.findings.iter().any(|finding| finding.fails_gate) {
            endings.push(Ending::PolicyFailed);
        }
    }
    endings.sort();
    endings.dedup();
    endings
}

/// The exit code of a scan over `images` alone: [`endings`] in the order of `crate::exit`.
pub fn exit_code<'a>(images: impl IntoIterator<Item = &'a ImageInventory>, policy: &Policy) -> u8 {
    exit::exit_code(endings(images, policy))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::cache::digest::Digest;
    use crate::scan::PackageType;
    use crate::scan::ignore::IgnoreList;

    fn finding(id: &str, severity: Severity, fixed: Option<&str>) -> Finding {
        Finding {
            id: id.into(),
            aliases: vec![format!("GHSA-{id}")],
            related: Vec::new(),
            package: "openssl".into(),
            installed_version: "3.0.11-1~deb12u2".into(),
            kind: PackageType::Deb,
            purl: "pkg:deb/debian/openssl@3.0.11-1~deb12u2".into(),
            source_name: Some("openssl".into()),
            source_version: None,
            fixed_version: fixed.map(str::to_string),
            fixed_versions: fixed.iter().map(|v| v.to_string()).collect(),
            severity,
            score: None,
            summary: None,
            path: "var/lib/dpkg/status".into(),
            layer: Digest::of(b"layer"),
            dockerfile: None,
            base_image: None,
            found_by: vec!["buildopt".into()],
            new: None,
            fails_gate: false,
        }
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn ignores(toml: &str) -> IgnoreList {
        IgnoreList::parse_buildoptignore(toml, Path::new(".buildoptignore")).unwrap()
    }

    fn every_severity() -> Vec<Finding> {
        [
            Severity::Unknown,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .iter()
        .enumerate()
        .map(|(i, s)| finding(&format!("CVE-2024-{i}"), *s, Some("9")))
        .collect()
    }

    fn severities(outcome: &PolicyOutcome) -> Vec<Severity> {
        outcome.kept.iter().map(|f| f.severity).collect()
    }

    #[test]
    fn each_level_drops_lower_known_severities_and_never_unknown() {
        use Severity::*;
        let policy = |level| Policy {
            level,
            ..Policy::default()
        };
        let none = IgnoreList::default();
        let today = day("2026-12-06");
        let low = apply(every_severity(), &policy(ScanLevel::Low), &none, today);
        assert_eq!(severities(&low), [Unknown, Low, Medium, High, Critical]);
        assert_eq!(low.below_level, 0);
        let medium = apply(every_severity(), &policy(ScanLevel::Medium), &none, today);
        assert_eq!(severities(&medium), [Unknown, Medium, High, Critical]);
        assert_eq!(medium.below_level, 1);
        let high = apply(every_severity(), &policy(ScanLevel::High), &none, today);
        assert_eq!(severities(&high), [Unknown, High, Critical]);
        assert_eq!(high.below_level, 2);
        for level in ScanLevel::ALL {
            assert!(level.reports(Unknown), "{level}");
        }
    }

    #[test]
    fn the_gate_fails_on_critical_and_high_as_configured() {
        let none = IgnoreList::default();
        let today = day("2026-12-06");
        let failing = |policy: Policy| -> Vec<Severity> {
            apply(every_severity(), &policy, &none, today)
                .kept
                .iter()
                .filter(|f| f.fails_gate)
                .map(|f| f.severity)
                .collect()
        };
        let default = Policy::default();
        assert_eq!(failing(default), [Severity::High, Severity::Critical]);
        let no_high = Policy {
            fail_on_high: false,
            ..default
        };
        assert_eq!(failing(no_high), [Severity::Critical]);
        let off = Policy {
            fail_on_high: false,
            fail_on_critical: false,
            ..default
        };
        assert!(failing(off).is_empty());
        assert!(!off.gate_on() && default.gate_on() && no_high.gate_on());
    }

    #[test]
    fn ignore_unfixed_lists_findings_without_a_fix_but_never_fails_on_them() {
        let findings = vec![
            finding("CVE-2024-1", Severity::Critical, None),
            finding("CVE-2024-2", Severity::Critical, Some("3.0.13-1")),
        ];
        let policy = Policy {
            ignore_unfixed: true,
            ..Policy::default()
        };
        let outcome = apply(
            findings.clone(),
            &policy,
            &IgnoreList::default(),
            day("2026-01-01"),
        );
        assert_eq!(outcome.kept.len(), 2);
        assert!(!outcome.kept[0].fails_gate);
        assert!(outcome.kept[1].fails_gate);
        let strict = apply(
            findings,
            &Policy::default(),
            &IgnoreList::default(),
            day("2026-01-01"),
        );
        assert!(strict.kept.iter().all(|f| f.fails_gate));
    }

    #[test]
    fn an_ignore_entry_applies_through_its_expiry_day_and_is_reported_after() {
        let list = ignores(
            "[[ignore]]\nid = \"CVE-2024-3\"\nreason = \"not reachable\"\nexpires = 2027-01-31\n",
        );
        let findings = || vec![finding("CVE-2024-3", Severity::High, Some("9"))];
        let on_the_day = apply(findings(), &Policy::default(), &list, day("2027-01-31"));
        assert!(on_the_day.kept.is_empty());
        assert_eq!(on_the_day.ignored, 1);
        assert!(on_the_day.expired_ignores.is_empty());
        assert!(!on_the_day.fails_gate());
        let day_after = apply(findings(), &Policy::default(), &list, day("2027-02-01"));
        assert_eq!(day_after.ignored, 0);
        assert!(day_after.fails_gate());
        assert_eq!(day_after.expired_ignores.len(), 1);
        assert_eq!(day_after.expired_ignores[0].id, "CVE-2024-3");
    }

    #[test]
    fn an_ignore_entry_matches_an_alias_and_counts_before_the_level() {
        let list = ignores("[[ignore]]\nid = \"ghsa-cve-2024-0\"\nreason = \"vendor says no\"\n");
        let policy = Policy {
            level: ScanLevel::High,
            ..Policy::default()
        };
        // CVE-2024-0 has the alias GHSA-CVE-2024-0 and unknown severity; CVE-2024-1 is low.
        let outcome = apply(every_severity(), &policy, &list, day("2026-12-06"));
        assert_eq!(outcome.ignored, 1);
        assert_eq!(outcome.below_level, 2);
        assert_eq!(severities(&outcome), [Severity::High, Severity::Critical]);
    }

    fn image(findings: Vec<Finding>, status: Option<bool>) -> ImageInventory {
        ImageInventory {
            image: "acme/api:1".into(),
            platform: None,
            id: Digest::of(b"config"),
            manifest: None,
            os: None,
            packages: Vec::new(),
            applications: Vec::new(),
            layers: Vec::new(),
            findings,
            vulnerabilities: status.map(|scanned| MatchStatus {
                scanned,
                reason: (!scanned).then(|| "no vulnerability database".into()),
                database: None,
                database_modified: None,
                ignored: 0,
                below_level: 0,
                database_built: None,
                database_age_days: None,
                not_matched: Vec::new(),
            }),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn exit_codes_follow_the_gate_and_the_order_of_crate_exit() {
        let policy = Policy::default();
        let mut failing = finding("CVE-2024-9", Severity::High, Some("9"));
        failing.fails_gate = true;
        let clean = image(vec![finding("CVE-1", Severity::Low, None)], Some(true));
        let over = image(vec![failing], Some(true));
        let unscanned = image(Vec::new(), Some(false));
        let inventory_only = image(Vec::new(), None);
        assert_eq!(exit_code([&clean, &inventory_only], &policy), exit::SUCCESS);
        assert_eq!(exit_code([&clean, &over], &policy), exit::POLICY);
        assert_eq!(exit_code([&unscanned], &policy), exit::ENVIRONMENT);
        assert_eq!(exit_code([&over, &unscanned], &policy), exit::ENVIRONMENT);
        let off = Policy {
            fail_on_critical: false,
            fail_on_high: false,
            ..policy
        };
        assert_eq!(exit_code([&unscanned], &off), exit::SUCCESS);
        let mut run = endings([&over], &policy);
        run.push(Ending::BuildFailed);
        assert_eq!(exit::exit_code(run), exit::BUILD_FAILED);
    }

    #[test]
    fn the_outcome_is_recorded_in_the_image() {
        let mut target = image(Vec::new(), Some(true));
        let outcome = apply(
            every_severity(),
            &Policy {
                level: ScanLevel::Medium,
                ..Policy::default()
            },
            &IgnoreList::default(),
            day("2026-12-06"),
        );
        outcome.record(&mut target);
        assert_eq!(target.findings.len(), 4);
        assert_eq!(target.vulnerabilities.as_ref().unwrap().below_level, 1);
    }

    #[test]
    fn levels_parse_case_insensitively_and_refuse_others() {
        assert_eq!("HIGH".parse::<ScanLevel>(), Ok(ScanLevel::High));
        assert_eq!(" medium ".parse::<ScanLevel>(), Ok(ScanLevel::Medium));
        for bad in ["", "critical", "maximum", "lowest", "\u{0}"] {
            assert!(bad.parse::<ScanLevel>().is_err(), "{bad:?}");
        }
    }
}
