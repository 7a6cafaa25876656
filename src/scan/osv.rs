//! OSV records and OSV's rule for whether a version is affected.
//!
//! Owns the record model (only the fields matching needs; unknown fields are ignored), the
//! evaluation of an `affected[]` entry against an installed version exactly as the OSV schema
//! defines it, the fix that applies to that version, and the version order of each OSV
//! ecosystem string. Evaluation: `versions[]` lists affected versions (a listed version, equal
//! in the ecosystem's order or else the same string, is affected whatever the ranges say, and
//! the ranges are evaluated too, since the list can be stale); each `SEMVER` or `ECOSYSTEM`
//! range sorts its events by version (`introduced: "0"` first, `limit: "*"` last), skips the
//! version when it is not below some `limit`, then walks the events: reaching an `introduced`
//! makes the version affected, a `fixed` (`>=`) or a passed `last_affected` (`>`) clears it. `GIT` ranges need a commit graph and are ignored.
//! A range with one event version the order cannot read is not evaluated at all (its events
//! cannot be sorted): unless another range or the list says "affected", the verdict is
//! [`Verdict::CannotCompare`] naming that version, which the matcher reports as not matched
//! (never as "not affected").

use std::cmp::Ordering;

use serde::Deserialize;

use super::version::{self, VersionError, VersionOrder};

/// One OSV record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Record {
    pub id: String,
    pub modified: String,
    #[serde(default)]
    pub published: Option<String>,
    #[serde(default)]
    pub withdrawn: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub upstream: Vec<String>,
    #[serde(default)]
    pub related: Vec<String>,
    #[serde(default)]
    pub severity: Vec<Severity>,
    #[serde(default)]
    pub affected: Vec<Affected>,
    /// A one-line summary, when the record has one.
    #[serde(default)]
    pub summary: Option<String>,
    /// The database's own fields; GitHub's hold its severity word (`"severity": "MODERATE"`).
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

impl Record {
    /// A withdrawn record must never match: the caller skips it (evaluation does not look).
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn.is_some()
    }
}

/// A severity vector (`CVSS_V3`, `CVSS_V4`, ...) or a distribution's own rating (`Ubuntu`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Severity {
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

/// One affected package and the versions of it that are affected.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Affected {
    #[serde(default)]
    pub package: Option<Package>,
    #[serde(default)]
    pub ranges: Vec<Range>,
    #[serde(default)]
    pub versions: Vec<String>,
    #[serde(default)]
    pub severity: Vec<Severity>,
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
    #[serde(default)]
    pub ecosystem_specific: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Package {
    pub ecosystem: String,
    pub name: String,
    #[serde(default)]
    pub purl: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Range {
    #[serde(rename = "type")]
    pub kind: RangeKind,
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RangeKind {
    Semver,
    Ecosystem,
    Git,
    /// A range type this schema version does not know; never matches.
    #[serde(other)]
    Unknown,
}

/// One event of a range: exactly one of the four keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

impl Event {
    fn version(&self) -> &str {
        match self {
            Self::Introduced(v) | Self::Fixed(v) | Self::LastAffected(v) | Self::Limit(v) => v,
        }
    }

    /// Among events at one version: introduced first, limits last.
    fn rank(&self) -> u8 {
        match self {
            Self::Introduced(_) => 0,
            Self::Fixed(_) | Self::LastAffected(_) => 1,
            Self::Limit(_) => 2,
        }
    }

    /// `introduced: "0"` and `limit: "*"` are below and above every version.
    fn bound(&self) -> Option<Ordering> {
        match self {
            Self::Introduced(v) if v == "0" => Some(Ordering::Less),
            Self::Limit(v) if v == "*" => Some(Ordering::Greater),
            _ => None,
        }
    }
}

/// Whether one installed version is affected by one `affected[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Affected; `fixed` is the fix that applies to this version (the smallest `fixed` above
    /// it in the range that matched), `None` when there is none yet.
    Affected {
        fixed: Option<String>,
    },
    NotAffected,
    /// No range matched, and some range could not be evaluated: the installed version or an
    /// event's version is not one the order can read.
    CannotCompare(VersionError),
}

/// Evaluates `affected` for `version`, comparing in `order` (the order of the entry's
/// ecosystem; `SEMVER` ranges always compare as SemVer).
pub fn evaluate(affected: &Affected, order: VersionOrder, version: &str) -> Verdict {
    let mut unreadable = None;
    for range in &affected.ranges {
        match range_includes(range, order, version) {
            Ok(true) => {
                return Verdict::Affected {
                    fixed: applicable_fix(range, order, version),
                };
            }
            Ok(false) => {}
            Err(error) => unreadable = unreadable.or(Some(error)),
        }
    }
    if affected
        .versions
        .iter()
        .any(|listed| same_version(order, listed, version))
    {
        return Verdict::Affected {
            fixed: smallest_fix_above(affected, order, version),
        };
    }
    unreadable.map_or(Verdict::NotAffected, Verdict::CannotCompare)
}

/// Whether a `versions[]` entry names `version`: equal in the ecosystem's order when both can
/// be read (PyPI `2.0` is `2.0.0`, dpkg `0:1.2-3` is `1.2-3`), else the same string.
fn same_version(order: VersionOrder, listed: &str, version: &str) -> bool {
    listed == version || version::compare(order, listed, version).is_ok_and(Ordering::is_eq)
}

/// Whether `version` is affected by `affected`; a version that cannot be compared is not.
pub fn affects(affected: &Affected, order: VersionOrder, version: &str) -> bool {
    matches!(evaluate(affected, order, version), Verdict::Affected { .. })
}

/// Every `fixed` version of the entry's `SEMVER` and `ECOSYSTEM` ranges, once each, in the
/// order they appear.
pub fn fixed_versions(affected: &Affected) -> Vec<&str> {
    let mut fixes: Vec<&str> = Vec::new();
    let events = affected
        .ranges
        .iter()
        .filter(|range| matches!(range.kind, RangeKind::Semver | RangeKind::Ecosystem))
        .flat_map(|range| &range.events);
    for event in events {
        if let Event::Fixed(fix) = event
            && !fixes.contains(&fix.as_str())
        {
            fixes.push(fix);
        }
    }
    fixes
}

/// The order a range compares in: `SEMVER` ranges in SemVer, `ECOSYSTEM` ranges in the
/// ecosystem's order; `None` for ranges that are never evaluated.
fn range_order(range: &Range, ecosystem_order: VersionOrder) -> Option<VersionOrder> {
    match range.kind {
        RangeKind::Semver => Some(VersionOrder::Semver),
        RangeKind::Ecosystem => Some(ecosystem_order),
        RangeKind::Git | RangeKind::Unknown => None,
    }
}

fn range_includes(
    range: &Range,
    ecosystem_order: VersionOrder,
    version: &str,
) -> Result<bool, VersionError> {
    let Some(order) = range_order(range, ecosystem_order) else {
        return Ok(false);
    };
    let events = sorted_events(&range.events, order)?;
    let compare_to = |event: &Event| -> Result<Ordering, VersionError> {
        match event.bound() {
            // The version against the bound: below `"0"`'s never, above `"*"` never.
            Some(bound) => Ok(bound.reverse()),
            None => version::compare(order, version, event.version()),
        }
    };
    if !below_some_limit(&events, &compare_to)? {
        return Ok(false);
    }
    let mut affected = false;
    for event in events {
        let position = compare_to(event)?;
        match event {
            Event::Introduced(_) if position.is_ge() => affected = true,
            Event::Fixed(_) if position.is_ge() => affected = false,
            Event::LastAffected(_) if position.is_gt() => affected = false,
            _ => {}
        }
    }
    Ok(affected)
}

/// True when the range has no `limit`, or the version is below one of them.
fn below_some_limit(
    events: &[&Event],
    compare_to: &impl Fn(&Event) -> Result<Ordering, VersionError>,
) -> Result<bool, VersionError> {
    let mut limits = events
        .iter()
        .filter(|e| matches!(e, Event::Limit(_)))
        .peekable();
    if limits.peek().is_none() {
        return Ok(true);
    }
    for limit in limits {
        if compare_to(limit)?.is_lt() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The events in `order`, bounds first and last, ties broken by [`Event::rank`]; an error
/// when an event's version cannot be read.
fn sorted_events(events: &[Event], order: VersionOrder) -> Result<Vec<&Event>, VersionError> {
    for event in events.iter().filter(|e| e.bound().is_none()) {
        version::compare(order, event.version(), event.version())?;
    }
    // An insertion sort: ranges hold a handful of events, and unlike `sort_by` it cannot
    // panic when an order is not transitive (Maven's is not).
    let mut sorted: Vec<&Event> = Vec::with_capacity(events.len());
    for event in events {
        let at = sorted
            .iter()
            .rposition(|placed| {
                event_order(placed, event, order)
                    .then_with(|| placed.rank().cmp(&event.rank()))
                    .is_le()
            })
            .map_or(0, |i| i + 1);
        sorted.insert(at, event);
    }
    Ok(sorted)
}

fn event_order(a: &Event, b: &Event, order: VersionOrder) -> Ordering {
    match (a.bound(), b.bound()) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(x), None) => x,
        (None, Some(y)) => y.reverse(),
        // Both were checked readable by `sorted_events`.
        (None, None) => {
            version::compare(order, a.version(), b.version()).unwrap_or(Ordering::Equal)
        }
    }
}

/// The smallest `fixed` of `range` above `version`.
fn applicable_fix(range: &Range, ecosystem_order: VersionOrder, version: &str) -> Option<String> {
    let order = range_order(range, ecosystem_order)?;
    smallest_above(fixes_of(range), order, version)
}

/// The smallest `fixed` above `version` among all evaluated ranges, in the ecosystem's order
/// (for a version matched only by the `versions` list).
fn smallest_fix_above(affected: &Affected, order: VersionOrder, version: &str) -> Option<String> {
    let fixes = affected
        .ranges
        .iter()
        .filter(|range| range_order(range, order).is_some())
        .flat_map(fixes_of);
    smallest_above(fixes, order, version)
}

fn fixes_of(range: &Range) -> impl Iterator<Item = &str> {
    range.events.iter().filter_map(|event| match event {
        Event::Fixed(fix) => Some(fix.as_str()),
        _ => None,
    })
}

fn smallest_above<'a>(
    candidates: impl Iterator<Item = &'a str>,
    order: VersionOrder,
    version: &str,
) -> Option<String> {
    candidates
        .filter(|fix| version::compare(order, fix, version).is_ok_and(Ordering::is_gt))
        .reduce(|best, fix| {
            if version::compare(order, fix, best).is_ok_and(Ordering::is_lt) {
                fix
            } else {
                best
            }
        })
        .map(str::to_owned)
}

/// The version order of an OSV ecosystem string (`Debian:12`, `Alpine:v3.19`,
/// `Ubuntu:Pro:22.04:LTS`, `PyPI`, ...); `None` for ecosystems this scanner cannot order
/// (NuGet, Packagist, Hex, Pub, ...).
pub fn order_of_ecosystem(ecosystem: &str) -> Option<VersionOrder> {
    let base = ecosystem.split(':').next().unwrap_or(ecosystem);
    let order = match base {
        "Debian" | "Ubuntu" => VersionOrder::Debian,
        "Alpine" | "Wolfi" | "Chainguard" => VersionOrder::Apk,
        "Red Hat" | "Rocky Linux" | "AlmaLinux" | "Azure Linux" | "SUSE" | "openSUSE"
        | "openEuler" | "Mageia" => VersionOrder::Rpm,
        "PyPI" => VersionOrder::Pep440,
        "npm" | "crates.io" | "Go" => VersionOrder::Semver,
        "Maven" => VersionOrder::Maven,
        "RubyGems" => VersionOrder::RubyGems,
        _ => return None,
    };
    Some(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> Record {
        serde_json::from_str(json).unwrap()
    }

    fn verdict(affected: &Affected, version: &str) -> Verdict {
        let ecosystem = &affected.package.as_ref().unwrap().ecosystem;
        evaluate(affected, order_of_ecosystem(ecosystem).unwrap(), version)
    }

    fn fixed_in(fix: &str) -> Verdict {
        Verdict::Affected {
            fixed: Some(fix.to_owned()),
        }
    }

    const NO_FIX: Verdict = Verdict::Affected { fixed: None };

    /// PYSEC-2023-74 from pypa/advisory-database (requests, CVE-2023-32681), the fixture the
    /// matcher's tests read too (tests/fixtures/scan/osv, prose left out).
    const PYSEC_2023_74: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/scan/osv/PYSEC-2023-74.json"
    ));

    /// GHSA-c2qf-rxjj-qqgw from github/advisory-database (npm semver, CVE-2022-25883): three
    /// `affected` entries, one per release line; the fixture the matcher's tests read too.
    const GHSA_C2QF_RXJJ_QQGW: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/scan/osv/GHSA-c2qf-rxjj-qqgw.json"
    ));

    /// GO-2023-2102 from golang/vulndb (HTTP/2 rapid reset): two intervals in one `SEMVER`
    /// range, the second opening at a pre-release; symbols and prose left out.
    const GO_2023_2102: &str = r#"{
      "schema_version": "1.3.1",
      "id": "GO-2023-2102",
      "modified": "0001-01-01T00:00:00Z",
      "published": "0001-01-01T00:00:00Z",
      "aliases": ["CVE-2023-44487", "CVE-2023-39325", "GHSA-4374-p667-p6c8"],
      "affected": [
        {"package": {"name": "stdlib", "ecosystem": "Go"},
         "ranges": [{"type": "SEMVER", "events": [
           {"introduced": "0"}, {"fixed": "1.20.10"}, {"introduced": "1.21.0-0"}, {"fixed": "1.21.3"}]}],
         "ecosystem_specific": {"imports": [{"path": "net/http"}]}},
        {"package": {"name": "golang.org/x/net", "ecosystem": "Go"},
         "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.17.0"}]}]}
      ],
      "database_specific": {"url": "https://pkg.go.dev/vuln/GO-2023-2102"}
    }"#;

    #[test]
    fn a_real_pypi_record_matches_its_ecosystem_range_and_ignores_the_git_one() {
        let record = record(PYSEC_2023_74);
        let requests = &record.affected[0];
        assert_eq!(verdict(requests, "2.28.1"), fixed_in("2.31.0"));
        assert_eq!(verdict(requests, "2.3.0"), fixed_in("2.31.0"));
        assert_eq!(verdict(requests, "2.31.0"), Verdict::NotAffected);
        assert_eq!(verdict(requests, "2.2.1"), Verdict::NotAffected);
        assert_eq!(verdict(requests, "2.31.0rc1"), fixed_in("2.31.0"));
        assert_eq!(fixed_versions(requests), ["2.31.0"]);
        assert_eq!(record.aliases, ["CVE-2023-32681", "GHSA-j8r2-6x86-q33q"]);
    }

    #[test]
    fn a_real_npm_record_with_one_entry_per_release_line() {
        let record = record(GHSA_C2QF_RXJJ_QQGW);
        let hits = |version: &str| -> Vec<Verdict> {
            record
                .affected
                .iter()
                .map(|a| verdict(a, version))
                .collect()
        };
        let not = Verdict::NotAffected;
        assert_eq!(hits("7.5.1"), [fixed_in("7.5.2"), not.clone(), not.clone()]);
        assert_eq!(hits("6.3.0"), [not.clone(), fixed_in("6.3.1"), not.clone()]);
        assert_eq!(hits("5.7.1"), [not.clone(), not.clone(), fixed_in("5.7.2")]);
        assert_eq!(hits("5.7.2"), [not.clone(), not.clone(), not.clone()]);
        assert_eq!(hits("7.5.2"), [not.clone(), not.clone(), not]);
        assert_eq!(record.severity[0].kind, "CVSS_V3");
    }

    #[test]
    fn a_real_go_record_with_two_intervals_in_one_semver_range() {
        let record = record(GO_2023_2102);
        let stdlib = &record.affected[0];
        assert_eq!(verdict(stdlib, "1.20.9"), fixed_in("1.20.10"));
        assert_eq!(verdict(stdlib, "1.20.10"), Verdict::NotAffected);
        assert_eq!(verdict(stdlib, "1.21.0-rc.2"), fixed_in("1.21.3"));
        assert_eq!(verdict(stdlib, "v1.21.2"), fixed_in("1.21.3"));
        assert_eq!(verdict(stdlib, "1.21.3"), Verdict::NotAffected);
        assert_eq!(fixed_versions(stdlib), ["1.20.10", "1.21.3"]);
        assert_eq!(verdict(&record.affected[1], "v0.15.0"), fixed_in("0.17.0"));
    }

    /// Written: a Debian record in osv.dev's shape, events out of order, compared as dpkg does.
    #[test]
    fn unsorted_events_are_sorted_in_the_ecosystems_order() {
        let record = record(
            r#"{"id": "DEBIAN-CVE-2099-0001", "modified": "2099-01-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "Debian:12", "name": "glibc"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [
                    {"fixed": "2.36-9+deb12u4"}, {"introduced": "2.36-9+deb12u1~"}, {"introduced": "0"},
                    {"fixed": "2.36-9~"}]}]}]}"#,
        );
        let glibc = &record.affected[0];
        assert_eq!(verdict(glibc, "2.35-1"), fixed_in("2.36-9~"));
        assert_eq!(verdict(glibc, "2.36-9"), Verdict::NotAffected);
        assert_eq!(verdict(glibc, "2.36-9+deb12u1"), fixed_in("2.36-9+deb12u4"));
        assert_eq!(
            verdict(glibc, "2.36-9+deb12u3+b1"),
            fixed_in("2.36-9+deb12u4")
        );
        assert_eq!(verdict(glibc, "1:2.0"), Verdict::NotAffected);
    }

    /// Written: `last_affected` includes its own version, and no fix applies.
    #[test]
    fn last_affected_is_inclusive_and_has_no_fix() {
        let record = record(
            r#"{"id": "TEST-LAST", "modified": "2024-01-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "PyPI", "name": "demo"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [
                    {"last_affected": "1.4.2"}, {"introduced": "1.0"}]}]}]}"#,
        );
        let demo = &record.affected[0];
        assert_eq!(verdict(demo, "0.9"), Verdict::NotAffected);
        assert_eq!(verdict(demo, "1.0.0"), NO_FIX);
        assert_eq!(verdict(demo, "1.4.2"), NO_FIX);
        assert_eq!(verdict(demo, "1.4.2.post1"), Verdict::NotAffected);
        assert!(fixed_versions(demo).is_empty());
    }

    /// Written: a `limit` bounds the range from above; `*` bounds nothing.
    #[test]
    fn limits_bound_a_range_and_star_is_infinity() {
        let record = record(
            r#"{"id": "TEST-LIMIT", "modified": "2024-01-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "crates.io", "name": "demo"},
                  "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "1.0.0"}, {"limit": "1.5.0"}]},
                    {"type": "ECOSYSTEM", "events": [{"limit": "*"}, {"introduced": "3.0.0"}]}
                  ]}]}"#,
        );
        let demo = &record.affected[0];
        assert_eq!(verdict(demo, "1.4.9"), NO_FIX);
        assert_eq!(verdict(demo, "1.5.0"), Verdict::NotAffected);
        assert_eq!(verdict(demo, "2.0.0"), Verdict::NotAffected);
        assert_eq!(verdict(demo, "300.0.0"), NO_FIX);
    }

    /// Written: the `versions` list is stale (it misses 1.2.0, and lists 1.3.0 that the range
    /// calls fixed): both say "affected".
    #[test]
    fn a_stale_versions_list_and_the_ranges_both_count() {
        let record = record(
            r#"{"id": "TEST-STALE", "modified": "2024-01-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "Alpine:v3.19", "name": "busybox"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.36.1-r16"}]}],
                  "versions": ["1.36.1-r15", "1.36.1-r17"]}]}"#,
        );
        let busybox = &record.affected[0];
        assert_eq!(verdict(busybox, "1.36.1-r2"), fixed_in("1.36.1-r16"));
        assert_eq!(verdict(busybox, "1.36.1-r15"), fixed_in("1.36.1-r16"));
        assert_eq!(verdict(busybox, "1.36.1-r17"), NO_FIX);
        assert_eq!(verdict(busybox, "1.36.1-r18"), Verdict::NotAffected);
    }

    /// Written: a listed version matches an installed one the order calls equal, not only the
    /// same string.
    #[test]
    fn listed_versions_compare_in_the_ecosystems_order() {
        let record = record(
            r#"{"id": "TEST-LISTED", "modified": "2024-01-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "PyPI", "name": "demo"}, "versions": ["2.0", "odd-1"]},
                  {"package": {"ecosystem": "Debian:12", "name": "demo"}, "versions": ["0:1.2-3"]}]}"#,
        );
        let (pypi, debian) = (&record.affected[0], &record.affected[1]);
        assert_eq!(verdict(pypi, "2.0.0"), NO_FIX);
        assert_eq!(verdict(pypi, "2.0.1"), Verdict::NotAffected);
        assert_eq!(
            verdict(pypi, "odd-1"),
            NO_FIX,
            "unreadable: the same string"
        );
        assert_eq!(verdict(debian, "1.2-3"), NO_FIX);
        assert_eq!(verdict(debian, "1:1.2-3"), Verdict::NotAffected);
    }

    #[test]
    fn the_fix_is_the_smallest_one_above_the_installed_version() {
        let record = record(
            r#"{"id": "TEST-FIXES", "modified": "2024-01-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "Rocky Linux:9", "name": "openssl"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [
                    {"introduced": "0"}, {"fixed": "1:3.0.7-27.el9"},
                    {"introduced": "1:3.2.0-1.el9"}, {"fixed": "1:3.2.2-6.el9_5"}]}]}]}"#,
        );
        let openssl = &record.affected[0];
        assert_eq!(
            verdict(openssl, "1:3.0.7-24.el9"),
            fixed_in("1:3.0.7-27.el9")
        );
        assert_eq!(
            verdict(openssl, "1:3.2.2-6.el9_4"),
            fixed_in("1:3.2.2-6.el9_5")
        );
        assert_eq!(verdict(openssl, "1:3.0.7-28.el9"), Verdict::NotAffected);
    }

    #[test]
    fn withdrawn_records_say_so() {
        let record = record(
            r#"{"id": "GHSA-xxxx-xxxx-xxxx", "modified": "2024-02-01T00:00:00Z",
                "withdrawn": "2024-02-01T00:00:00Z", "affected": []}"#,
        );
        assert!(record.is_withdrawn());
        assert!(!self::record(PYSEC_2023_74).is_withdrawn());
    }

    #[test]
    fn unreadable_versions_cannot_be_compared_unless_listed() {
        let record = record(
            r#"{"id": "TEST-ODD", "modified": "2024-01-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "npm", "name": "demo"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2.x"}]},
                             {"type": "ECOSYSTEM", "events": [{"introduced": "2.0.0"}]}],
                  "versions": ["not-a-version"]}]}"#,
        );
        let demo = &record.affected[0];
        assert!(
            matches!(verdict(demo, "1.0.0"), Verdict::CannotCompare(e) if e.version == "1.2.x")
        );
        assert_eq!(verdict(demo, "2.1.0"), NO_FIX);
        assert!(matches!(verdict(demo, "latest"), Verdict::CannotCompare(_)));
        assert!(affects(demo, VersionOrder::Semver, "not-a-version"));
        assert!(!affects(demo, VersionOrder::Semver, "1.0.0"));
    }

    #[test]
    fn unknown_fields_and_range_types_are_ignored() {
        let record = record(
            r#"{"id": "X-1", "modified": "2024-01-01T00:00:00Z", "schema_version": "9.9",
                "new_field": {"a": [1, 2]}, "credits": [{"name": "someone"}],
                "affected": [{"package": {"ecosystem": "npm", "name": "demo", "extra": 1},
                  "ranges": [{"type": "FUTURE", "events": [{"introduced": "0"}]}],
                  "new_affected_field": true}]}"#,
        );
        assert_eq!(verdict(&record.affected[0], "1.0.0"), Verdict::NotAffected);
    }

    #[test]
    fn malformed_records_are_errors_never_panics() {
        let truncated = &PYSEC_2023_74[..PYSEC_2023_74.len() / 2];
        for bad in [
            truncated,
            "",
            "[]",
            "garbage",
            r#"{"id": 7, "modified": "x"}"#,
            r#"{"modified": "x"}"#,
            r#"{"id": "X", "modified": "x", "affected": {"not": "a list"}}"#,
            r#"{"id": "X", "modified": "x", "affected": [{"ranges": [{"type": "ECOSYSTEM",
                "events": [{"introduced": "0", "fixed": "1"}]}]}]}"#,
            r#"{"id": "X", "modified": "x", "affected": [{"ranges": [{"type": "ECOSYSTEM",
                "events": [{"patched": "1"}]}]}]}"#,
            r#"{"id": "X", "modified": "x", "affected": [{"versions": [1, 2]}]}"#,
        ] {
            assert!(serde_json::from_str::<Record>(bad).is_err(), "{bad}");
        }
        let huge = format!(
            r#"{{"id": "X", "modified": "x", "affected": [{{"package": {{"ecosystem": "npm", "name": "d"}},
                "ranges": [{{"type": "SEMVER", "events": [{{"introduced": "{0}.0.0"}}]}}]}}]}}"#,
            "9".repeat(5000)
        );
        let record = record(&huge);
        assert!(matches!(
            verdict(&record.affected[0], "1.0.0"),
            Verdict::CannotCompare(_)
        ));
    }

    /// Written: Maven's order is not transitive (`1` < `1-a` < `1-0-snapshot` < `1`); sorting
    /// such events must not panic.
    #[test]
    fn events_in_a_non_transitive_order_sort_without_panicking() {
        let events = ["1", "1-a", "1-0-snapshot", "1-b", "1-0-rc", "2", "1-c"];
        let ranges: Vec<String> = events
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let key = if i % 2 == 0 { "introduced" } else { "fixed" };
                format!(r#"{{"{key}": "{v}"}}"#)
            })
            .collect();
        let record = record(&format!(
            r#"{{"id": "TEST-MAVEN", "modified": "2024-01-01T00:00:00Z",
                "affected": [{{"package": {{"ecosystem": "Maven", "name": "g:a"}},
                  "ranges": [{{"type": "ECOSYSTEM", "events": [{}]}}]}}]}}"#,
            ranges.join(", ")
        ));
        for version in events {
            let _ = verdict(&record.affected[0], version);
        }
    }

    #[test]
    fn ecosystem_strings_map_to_their_orders() {
        let cases = [
            ("Debian:12", Some(VersionOrder::Debian)),
            ("Debian", Some(VersionOrder::Debian)),
            ("Ubuntu:22.04:LTS", Some(VersionOrder::Debian)),
            ("Ubuntu:Pro:18.04:LTS", Some(VersionOrder::Debian)),
            ("Alpine:v3.19", Some(VersionOrder::Apk)),
            (
                "Red Hat:enterprise_linux:9::appstream",
                Some(VersionOrder::Rpm),
            ),
            ("Rocky Linux:9", Some(VersionOrder::Rpm)),
            ("AlmaLinux:9", Some(VersionOrder::Rpm)),
            ("PyPI", Some(VersionOrder::Pep440)),
            ("npm", Some(VersionOrder::Semver)),
            ("crates.io", Some(VersionOrder::Semver)),
            ("Go", Some(VersionOrder::Semver)),
            ("RubyGems", Some(VersionOrder::RubyGems)),
            ("Maven", Some(VersionOrder::Maven)),
            ("NuGet", None),
            ("", None),
        ];
        for (ecosystem, order) in cases {
            assert_eq!(order_of_ecosystem(ecosystem), order, "{ecosystem}");
        }
    }
}
