//! Matching an image's packages against OSV records: which issues affect which installed
//! package, under which id.
//!
//! Owns the OSV coordinates of each package (ecosystem string and name), the grouping of
//! records into issues and the findings made of them; the records come from a
//! [`RecordSource`] (the database, or [`MemoryRecords`] in tests), range evaluation from
//! [`osv::evaluate`] and ratings from [`severity`](super::severity).
//!
//! - **Coordinates.** `deb` on Debian: `Debian:<VERSION_ID>` (an image without `VERSION_ID`,
//!   testing or sid, takes the release number of its `VERSION_CODENAME`); on Ubuntu
//!   `Ubuntu:<YY.MM>`, with `:LTS` for even-year April releases; `apk` on Alpine
//!   `Alpine:v<major.minor>`, on Wolfi and Chainguard their names; `rpm` on Rocky Linux and
//!   AlmaLinux `<name>:<major>`, on RHEL Red Hat's `enterprise_linux:<major>` BaseOS and
//!   AppStream streams; `pypi` as `PyPI` under its PEP 503 name; `npm` with its scope;
//!   `golang` as `Go` (the toolchain as `stdlib`, `go1.21rc2` read as `1.21.0-rc.2`); `cargo`
//!   as `crates.io`; `maven` as `Maven` `group:artifact` (the group from the purl); `gem` as
//!   `RubyGems`. Distribution records name the source package: Debian, Ubuntu, Alpine, Wolfi,
//!   Chainguard, Rocky and Alma packages are looked up and compared by `source_name` and
//!   `source_version` (else their own), and every installed binary of a source gets its own
//!   finding; Red Hat's records name binary rpms.
//! - **One issue, one id.** Records that matched one package are joined when one names the
//!   other in `aliases` (either way, and through ids they share), when they name the same
//!   single `upstream` id, or for `DEBIAN-CVE-…`/`UBUNTU-CVE-…` records the CVE they are keyed
//!   by. A record naming two or more CVEs (a DSA fixing three) joins nothing: it is reported
//!   under its own id, and only when no other issue of that package names it and some CVE it
//!   names is not already reported for that package by a record of its own. An issue is reported under its smallest CVE id, else its
//!   smallest GHSA id, else its smallest record id; `aliases` are all its other ids. An
//!   umbrella's several CVEs are not its aliases but `related`: an ignore entry or another
//!   scanner's finding naming one of them is not about the umbrella.
//! - **Fixes.** `fixed_version` is the highest of the fixes that the issue's records say apply
//!   to the installed version (upgrading to it clears every record that names a fix),
//!   `fixed_versions` every fix they name for that package, in the ecosystem's order.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;
use std::str::FromStr;

use packageurl::PackageUrl;

use super::model::{Finding, ImageInventory, NotMatched, NotMatchedReason, Package};
use super::osv::{self, Affected, Record, Verdict};
use super::package::{OsRelease, PackageType};
use super::severity::{self, Rating};
use super::version::{self, VersionOrder};

/// Where OSV records come from: the records with an `affected[]` entry for `name` in
/// `ecosystem` (the full ecosystem string, `Debian:12`; for PyPI the PEP 503 name).
pub trait RecordSource {
    fn records(&self, ecosystem: &str, name: &str) -> Result<Vec<Record>, String>;
}

/// What matching one image gave.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MatchResult {
    /// One finding per issue, installed package and declaring file, sorted by package,
    /// version, path and id.
    pub findings: Vec<Finding>,
    /// How many records were read from the source (each lookup counted once).
    pub records_consulted: usize,
    /// Packages that could not be matched, each with why: no OSV data for their ecosystem, or
    /// a version that cannot be compared; and records that could not be evaluated for one.
    pub not_matchable: Vec<NotMatched>,
}

/// Matches every package of `image` against the records of `source`; an error only when the
/// source cannot be read.
pub fn match_image(
    image: &ImageInventory,
    source: &dyn RecordSource,
) -> Result<MatchResult, String> {
    let mut matcher = Matcher {
        source,
        records: HashMap::new(),
        issues: HashMap::new(),
        result: MatchResult::default(),
    };
    for package in &image.packages {
        matcher.match_package(package, image.os.as_ref())?;
    }
    let mut result = matcher.result;
    let mut seen = HashSet::new();
    result
        .not_matchable
        .retain(|entry| seen.insert(entry.clone()));
    result.findings.sort_by(|a, b| {
        (&a.package, &a.installed_version, &a.path, &a.id).cmp(&(
            &b.package,
            &b.installed_version,
            &b.path,
            &b.id,
        ))
    });
    result.findings.dedup_by(|a, b| {
        (&a.package, &a.installed_version, &a.path, &a.id)
            == (&b.package, &b.installed_version, &b.path, &b.id)
    });
    Ok(result)
}

/// Records held in memory, indexed by each `affected[]` entry's ecosystem and name.
#[derive(Debug, Default)]
pub struct MemoryRecords {
    by_package: HashMap<(String, String), Vec<Record>>,
}

impl MemoryRecords {
    pub fn new(records: impl IntoIterator<Item = Record>) -> Self {
        let mut by_package: HashMap<(String, String), Vec<Record>> = HashMap::new();
        for record in records {
            let keys: BTreeSet<(String, String)> = record
                .affected
                .iter()
                .filter_map(|entry| entry.package.as_ref())
                .map(|package| {
                    let name = osv_name(&package.ecosystem, &package.name);
                    (package.ecosystem.clone(), name)
                })
                .collect();
            for key in keys {
                by_package.entry(key).or_default().push(record.clone());
            }
        }
        Self { by_package }
    }
}

impl RecordSource for MemoryRecords {
    fn records(&self, ecosystem: &str, name: &str) -> Result<Vec<Record>, String> {
        let key = (ecosystem.to_owned(), name.to_owned());
        Ok(self.by_package.get(&key).cloned().unwrap_or_default())
    }
}

/// Where a package is looked up and what version is compared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Lookup {
    /// The ecosystem strings to look in (one, but two for RHEL's streams).
    ecosystems: Vec<String>,
    name: String,
    version: String,
    /// Distribution records name the source package: the finding says what was compared.
    by_source: bool,
}

/// One record that affects a package's version.
#[derive(Debug, Clone)]
struct Hit {
    record: Record,
    /// The fix that applies to the installed version, if any.
    fix: Option<String>,
    /// Every fix the record names for the package.
    fixes: Vec<String>,
    rating: Rating,
}

/// One issue of one package, ready to become findings.
#[derive(Debug, Clone, PartialEq)]
struct Issue {
    id: String,
    aliases: Vec<String>,
    /// An umbrella's several CVEs: issues of their own, never aliases.
    related: Vec<String>,
    fixed_version: Option<String>,
    fixed_versions: Vec<String>,
    rating: Rating,
    summary: Option<String>,
}

/// The issues of one lookup, and why some records or ecosystems could not be evaluated.
#[derive(Debug)]
struct Matched {
    issues: Vec<Issue>,
    unmatched: Vec<Unmatchable>,
}

/// Why a package, or one record for it, cannot be matched.
type Unmatchable = (NotMatchedReason, String);

struct Matcher<'a> {
    source: &'a dyn RecordSource,
    /// Records by (ecosystem, name): binaries of one source share a lookup.
    records: HashMap<(String, String), Rc<Vec<Record>>>,
    /// What each lookup gave.
    issues: HashMap<Lookup, Rc<Matched>>,
    result: MatchResult,
}

impl Matcher<'_> {
    fn match_package(&mut self, package: &Package, os: Option<&OsRelease>) -> Result<(), String> {
        let lookup = match lookup_of(package, os) {
            Ok(lookup) => lookup,
            Err(why) => {
                self.not_matchable(package, why);
                return Ok(());
            }
        };
        let matched = match self.issues.get(&lookup) {
            Some(matched) => Rc::clone(matched),
            None => {
                let matched = Rc::new(self.issues_of(package.kind, &lookup)?);
                self.issues.insert(lookup.clone(), Rc::clone(&matched));
                matched
            }
        };
        for why in &matched.unmatched {
            self.not_matchable(package, why.clone());
        }
        for issue in &matched.issues {
            self.result.findings.push(finding(package, &lookup, issue));
        }
        Ok(())
    }

    /// The issues of a lookup, and why some of it could not be evaluated.
    fn issues_of(&mut self, kind: PackageType, lookup: &Lookup) -> Result<Matched, String> {
        let mut hits = Vec::new();
        let mut unmatched = Vec::new();
        for ecosystem in &lookup.ecosystems {
            let Some(order) = osv::order_of_ecosystem(ecosystem) else {
                let why = format!("no version order for {ecosystem}");
                unmatched.push((NotMatchedReason::UnreadableVersion, why));
                continue;
            };
            if !version::is_valid(order, &lookup.version) {
                let why = format!("version {:?} cannot be read as {order}", lookup.version);
                unmatched.push((NotMatchedReason::UnreadableVersion, why));
                continue;
            }
            let records = self.records_of(ecosystem, &lookup.name)?;
            for record in records.iter().filter(|record| !record.is_withdrawn()) {
                match hit_of(record, ecosystem, &lookup.name, order, &lookup.version) {
                    Ok(Some(hit)) => hits.push(hit),
                    Ok(None) => {}
                    Err(why) => unmatched.push((
                        NotMatchedReason::UnreadableRecord,
                        format!("{}: {why}", record.id),
                    )),
                }
            }
        }
        let order = lookup
            .ecosystems
            .first()
            .and_then(|ecosystem| osv::order_of_ecosystem(ecosystem))
            .unwrap_or_else(|| VersionOrder::of_package_type(kind));
        Ok(Matched {
            issues: issues_of_hits(hits, order),
            unmatched,
        })
    }

    fn records_of(&mut self, ecosystem: &str, name: &str) -> Result<Rc<Vec<Record>>, String> {
        let key = (ecosystem.to_owned(), name.to_owned());
        if let Some(records) = self.records.get(&key) {
            return Ok(Rc::clone(records));
        }
        let records = self
            .source
            .records(ecosystem, name)
            .map_err(|error| format!("reading the records of {ecosystem} {name}: {error}"))?;
        self.result.records_consulted += records.len();
        let records = Rc::new(records);
        self.records.insert(key, Rc::clone(&records));
        Ok(records)
    }

    fn not_matchable(&mut self, package: &Package, (reason, detail): Unmatchable) {
        self.result.not_matchable.push(NotMatched {
            package: qualified_name(package),
            version: package.version.clone(),
            kind: package.kind,
            path: package.path.clone(),
            reason,
            detail,
        });
    }
}

/// Whether `record` affects `version` of `name` in `ecosystem`: `Ok(None)` when it does not,
/// an error when no entry matched and one could not be evaluated.
fn hit_of(
    record: &Record,
    ecosystem: &str,
    name: &str,
    order: VersionOrder,
    version: &str,
) -> Result<Option<Hit>, String> {
    let entries: Vec<&Affected> = record
        .affected
        .iter()
        .filter(|entry| {
            entry.package.as_ref().is_some_and(|package| {
                package.ecosystem == ecosystem && osv_name(ecosystem, &package.name) == name
            })
        })
        .collect();
    let mut affected = false;
    let mut fix: Option<String> = None;
    let mut unreadable = None;
    for entry in &entries {
        match osv::evaluate(entry, order, version) {
            Verdict::Affected { fixed } => {
                affected = true;
                fix = lowest(order, fix, fixed);
            }
            Verdict::NotAffected => {}
            Verdict::CannotCompare(error) => unreadable = unreadable.or(Some(error)),
        }
    }
    if !affected {
        return match unreadable {
            Some(error) => Err(error.to_string()),
            None => Ok(None),
        };
    }
    let mut fixes: Vec<String> = Vec::new();
    for fixed in entries.iter().flat_map(|entry| osv::fixed_versions(entry)) {
        if !fixes.iter().any(|known| known == fixed) {
            fixes.push(fixed.to_owned());
        }
    }
    Ok(Some(Hit {
        rating: severity::rate_record(record, &entries),
        record: record.clone(),
        fix,
        fixes,
    }))
}

/// The ids a record names for its issue: its aliases, its single upstream id, and the CVE a
/// `DEBIAN-CVE-…` or `UBUNTU-CVE-…` record is keyed by.
fn linked_ids(record: &Record) -> Vec<&str> {
    let mut ids: Vec<&str> = record.aliases.iter().map(String::as_str).collect();
    if let [upstream] = record.upstream.as_slice() {
        ids.push(upstream);
    }
    if let Some(cve) = keyed_cve(&record.id) {
        ids.push(cve);
    }
    ids
}

/// The CVE a distribution's per-CVE record is keyed by: `DEBIAN-CVE-2024-1234`,
/// `UBUNTU-CVE-…`, `ALPINE-CVE-…` (an upper-case prefix, then the CVE id).
fn keyed_cve(id: &str) -> Option<&str> {
    let (prefix, _) = id.split_once("-CVE-")?;
    let keyed = !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_uppercase());
    keyed.then(|| &id[prefix.len() + 1..])
}

/// The CVE ids a record names, itself, its aliases and all its upstream ids included.
fn named_cves(record: &Record) -> BTreeSet<&str> {
    std::iter::once(record.id.as_str())
        .chain(record.aliases.iter().map(String::as_str))
        .chain(record.upstream.iter().map(String::as_str))
        .chain(keyed_cve(&record.id))
        .filter(|id| id.starts_with("CVE-"))
        .collect()
}

/// A record naming several CVEs (a DSA, a Go report of two CVEs): it never joins them.
fn is_umbrella(record: &Record) -> bool {
    named_cves(record).len() > 1
}

/// Groups the hits of one package into issues.
fn issues_of_hits(hits: Vec<Hit>, order: VersionOrder) -> Vec<Issue> {
    let (umbrellas, joinable): (Vec<Hit>, Vec<Hit>) =
        hits.into_iter().partition(|hit| is_umbrella(&hit.record));
    let mut issues = joined_issues(joinable, order);
    let reported: BTreeSet<String> = issues
        .iter()
        .flat_map(|issue| std::iter::once(&issue.id).chain(&issue.aliases))
        .cloned()
        .collect();
    for umbrella in umbrellas {
        // Dropped when another issue names it, or reports every CVE it names.
        let uncovered = !reported.contains(&umbrella.record.id)
            && named_cves(&umbrella.record)
                .iter()
                .any(|cve| !reported.contains(*cve));
        if uncovered {
            let (aliases, related) = umbrella_ids(&umbrella.record);
            let id = umbrella.record.id.clone();
            let mut issue = issue_of(id, aliases, &[umbrella], order);
            issue.related = related;
            issues.push(issue);
        }
    }
    issues
}

/// An umbrella's ids: its aliases and upstream ids that are not CVEs (the same issue), and
/// the several CVEs it names (each an issue of its own, so an ignore entry naming one must not
/// cover the umbrella).
fn umbrella_ids(record: &Record) -> (BTreeSet<String>, Vec<String>) {
    let cves = named_cves(record);
    let aliases = record
        .aliases
        .iter()
        .chain(&record.upstream)
        .filter(|id| !cves.contains(id.as_str()))
        .cloned()
        .collect();
    let related = cves
        .into_iter()
        .filter(|cve| *cve != record.id)
        .map(str::to_owned)
        .collect();
    (aliases, related)
}

/// The issues of records that may be joined: the connected parts of the graph whose nodes are
/// ids and whose edges go from each record's id to the ids it names.
fn joined_issues(hits: Vec<Hit>, order: VersionOrder) -> Vec<Issue> {
    let mut ids = IdSets::default();
    for hit in &hits {
        let own = ids.node(&hit.record.id);
        for linked in linked_ids(&hit.record) {
            let other = ids.node(linked);
            ids.join(own, other);
        }
    }
    let mut groups: HashMap<usize, Vec<Hit>> = HashMap::new();
    for hit in hits {
        let root = ids.root_of(&hit.record.id);
        groups.entry(root).or_default().push(hit);
    }
    let members = ids.members();
    let mut issues: Vec<Issue> = groups
        .into_iter()
        .map(|(root, group)| {
            let names: BTreeSet<String> = members.get(&root).cloned().unwrap_or_default();
            let id = reported_id(&names, &group);
            issue_of(id, names, &group, order)
        })
        .collect();
    issues.sort_by(|a, b| a.id.cmp(&b.id));
    issues
}

/// The id an issue is reported under: its smallest CVE, else its smallest GHSA, else the
/// smallest id of the records that matched.
fn reported_id(names: &BTreeSet<String>, group: &[Hit]) -> String {
    let smallest_with = |prefix: &str| names.iter().find(|id| id.starts_with(prefix)).cloned();
    smallest_with("CVE-")
        .or_else(|| smallest_with("GHSA-"))
        .or_else(|| group.iter().map(|hit| hit.record.id.clone()).min())
        .unwrap_or_default()
}

fn issue_of(id: String, mut names: BTreeSet<String>, group: &[Hit], order: VersionOrder) -> Issue {
    names.extend(group.iter().map(|hit| hit.record.id.clone()));
    names.remove(&id);
    let mut fixed_versions: Vec<String> = Vec::new();
    for fix in group.iter().flat_map(|hit| &hit.fixes) {
        if !fixed_versions.contains(fix) {
            fixed_versions.push(fix.clone());
        }
    }
    sort_versions(order, &mut fixed_versions);
    let fixed_version = group
        .iter()
        .filter_map(|hit| hit.fix.clone())
        .reduce(|a, b| highest(order, a, b));
    let rating = group
        .iter()
        .fold(Rating::UNKNOWN, |rating, hit| rating.max(hit.rating));
    let summary = group
        .iter()
        .filter(|hit| hit.record.summary.is_some())
        .min_by_key(|hit| (hit.record.id != id, hit.record.id.clone()))
        .and_then(|hit| hit.record.summary.clone());
    Issue {
        id,
        aliases: names.into_iter().collect(),
        related: Vec::new(),
        fixed_version,
        fixed_versions,
        rating,
        summary,
    }
}

fn finding(package: &Package, lookup: &Lookup, issue: &Issue) -> Finding {
    let (source_name, source_version) = if lookup.by_source {
        (Some(lookup.name.clone()), Some(lookup.version.clone()))
    } else {
        (None, None)
    };
    Finding {
        id: issue.id.clone(),
        aliases: issue.aliases.clone(),
        related: issue.related.clone(),
        package: qualified_name(package),
        installed_version: package.version.clone(),
        kind: package.kind,
        purl: package.purl.clone(),
        source_name,
        source_version,
        fixed_version: issue.fixed_version.clone(),
        fixed_versions: issue.fixed_versions.clone(),
        severity: issue.rating.level,
        score: issue.rating.score,
        summary: issue.summary.clone(),
        path: package.path.clone(),
        layer: package.layer.clone(),
        dockerfile: package.dockerfile.clone(),
        base_image: package.base_image.clone(),
        found_by: vec!["buildopt".to_owned()],
        new: None,
        fails_gate: false,
    }
}

/// Where `package` is looked up, or why it cannot be.
/// The OSV ecosystems (`Debian:12`, `PyPI`, ...) the packages of `image` are matched in: what
/// `scan --setup` downloads for it.
pub fn ecosystems_of(image: &ImageInventory) -> std::collections::BTreeSet<String> {
    image
        .packages
        .iter()
        .filter_map(|package| lookup_of(package, image.os.as_ref()).ok())
        .flat_map(|lookup| lookup.ecosystems)
        .collect()
}

fn lookup_of(package: &Package, os: Option<&OsRelease>) -> Result<Lookup, Unmatchable> {
    let plain = |ecosystem: &str, name: String, version: String| Lookup {
        ecosystems: vec![ecosystem.to_owned()],
        name,
        version,
        by_source: false,
    };
    let version = package.version.clone();
    match package.kind {
        PackageType::Deb | PackageType::Apk | PackageType::Rpm => distribution_lookup(package, os),
        PackageType::Pypi => Ok(plain("PyPI", pep503(&package.name), version)),
        PackageType::Npm => Ok(plain("npm", npm_name(package), version)),
        PackageType::Golang => {
            go_lookup(package).map_err(|why| (NotMatchedReason::UnreadableVersion, why))
        }
        PackageType::Cargo => Ok(plain("crates.io", package.name.clone(), version)),
        PackageType::Maven => {
            let group = purl_namespace(&package.purl).ok_or((
                NotMatchedReason::NoOsvName,
                "no Maven group id in its purl: OSV names Maven packages group:artifact".into(),
            ))?;
            Ok(plain("Maven", format!("{group}:{}", package.name), version))
        }
        PackageType::Gem => Ok(plain("RubyGems", package.name.clone(), version)),
    }
}

fn distribution_lookup(package: &Package, os: Option<&OsRelease>) -> Result<Lookup, Unmatchable> {
    distribution_coordinates(package, os).map_err(|why| (NotMatchedReason::NoRelease, why))?
}

/// The lookup of a distribution package; the outer error is a release that cannot be read,
/// the inner one a distribution without OSV data.
fn distribution_coordinates(
    package: &Package,
    os: Option<&OsRelease>,
) -> Result<Result<Lookup, Unmatchable>, String> {
    let kind = package.kind.as_str();
    let os = os.ok_or_else(|| format!("{kind} packages need the image's os-release"))?;
    let id = os.id.as_deref().unwrap_or("");
    let major = || release_part(os, 1);
    let (ecosystems, by_source) = match (package.kind, id) {
        (PackageType::Deb, "debian") => (vec![format!("Debian:{}", debian_release(os)?)], true),
        (PackageType::Deb, "ubuntu") => (vec![ubuntu_ecosystem(os)?], true),
        (PackageType::Apk, "alpine") => (vec![format!("Alpine:v{}", release_part(os, 2)?)], true),
        (PackageType::Apk, "wolfi") => (vec!["Wolfi".to_owned()], true),
        (PackageType::Apk, "chainguard") => (vec!["Chainguard".to_owned()], true),
        (PackageType::Rpm, "rocky") => (vec![format!("Rocky Linux:{}", major()?)], true),
        (PackageType::Rpm, "almalinux") => (vec![format!("AlmaLinux:{}", major()?)], true),
        (PackageType::Rpm, "rhel") => {
            let major = major()?;
            let streams = ["baseos", "appstream"]
                .map(|stream| format!("Red Hat:enterprise_linux:{major}::{stream}"));
            (streams.to_vec(), false)
        }
        _ => {
            let on = if id.is_empty() {
                "this distribution"
            } else {
                id
            };
            let why = format!("no OSV data for {kind} packages on {on}");
            return Ok(Err((NotMatchedReason::UnknownDistribution, why)));
        }
    };
    let (name, version) = if by_source {
        (
            package.source_name.clone().unwrap_or(package.name.clone()),
            package
                .source_version
                .clone()
                .unwrap_or(package.version.clone()),
        )
    } else {
        (package.name.clone(), package.version.clone())
    };
    Ok(Ok(Lookup {
        ecosystems,
        name,
        version,
        by_source,
    }))
}

/// Debian's release number: `VERSION_ID`, else (testing and sid have none) the number of
/// `VERSION_CODENAME` in Debian's distro-info-data.
fn debian_release(os: &OsRelease) -> Result<String, String> {
    if let Ok(major) = release_part(os, 1) {
        return Ok(major);
    }
    let codename = os.codename.as_deref().unwrap_or("");
    let number = match codename {
        "buster" => "10",
        "bullseye" => "11",
        "bookworm" => "12",
        "trixie" => "13",
        "forky" => "14",
        "duke" => "15",
        _ => {
            return Err(format!(
                "Debian without VERSION_ID and with codename {codename:?}: no OSV release to \
                 scope it to"
            ));
        }
    };
    Ok(number.to_owned())
}

/// `Ubuntu:<YY.MM>`, with `:LTS` for the April releases of even years.
fn ubuntu_ecosystem(os: &OsRelease) -> Result<String, String> {
    let release = release_part(os, 2)?;
    let lts = release
        .split_once('.')
        .and_then(|(year, month)| Some((year.parse::<u32>().ok()?, month)))
        .is_some_and(|(year, month)| year % 2 == 0 && month == "04");
    Ok(if lts {
        format!("Ubuntu:{release}:LTS")
    } else {
        format!("Ubuntu:{release}")
    })
}

/// The first `parts` numeric dot-separated parts of `VERSION_ID` (`3.19.1` → `3.19`).
fn release_part(os: &OsRelease, parts: usize) -> Result<String, String> {
    let version_id = os.version_id.as_deref().unwrap_or("");
    let taken: Vec<&str> = version_id.split('.').take(parts).collect();
    let numeric = |part: &&str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if taken.len() == parts && taken.iter().all(numeric) {
        Ok(taken.join("."))
    } else {
        Err(format!(
            "the image's VERSION_ID {version_id:?} names no release"
        ))
    }
}

fn go_lookup(package: &Package) -> Result<Lookup, String> {
    let version = if package.name == "stdlib" {
        go_toolchain_semver(&package.version).ok_or_else(|| {
            format!(
                "toolchain version {:?} is not a Go release",
                package.version
            )
        })?
    } else {
        // Go's OSV data writes module versions without the `v`.
        let bare = package.version.strip_prefix('v');
        bare.unwrap_or(&package.version).to_owned()
    };
    Ok(Lookup {
        ecosystems: vec!["Go".to_owned()],
        name: package.name.clone(),
        version,
        by_source: false,
    })
}

/// A Go toolchain version as Go's OSV data writes it: `go1.21.3` → `1.21.3`, `go1.20` →
/// `1.20.0`, `go1.21rc2` → `1.21.0-rc.2`; anything after a space (`X:boringcrypto`) dropped.
pub fn go_toolchain_semver(toolchain: &str) -> Option<String> {
    let release = toolchain.split_whitespace().next()?.strip_prefix("go")?;
    let split_at = release
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(release.len());
    let (numbers, rest) = release.split_at(split_at);
    let mut parts: Vec<&str> = numbers.split('.').collect();
    if parts.len() > 3 || parts.iter().any(|part| part.is_empty() || part.len() > 9) {
        return None;
    }
    parts.resize(3, "0");
    let core = parts.join(".");
    if rest.is_empty() {
        return Some(core);
    }
    let (kind, number) = ["rc", "beta", "alpha"]
        .iter()
        .find_map(|kind| Some((*kind, rest.strip_prefix(kind)?)))?;
    if number.is_empty() || number.len() > 9 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!("{core}-{kind}.{number}"))
}

/// The PEP 503 normal form: lower case, runs of `-`, `_` and `.` as one `-`.
pub fn pep503(name: &str) -> String {
    let mut normal = String::with_capacity(name.len());
    let mut in_separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator {
                normal.push('-');
            }
            in_separator = true;
        } else {
            normal.extend(c.to_lowercase());
            in_separator = false;
        }
    }
    normal
}

/// A name as OSV keys it in `ecosystem` (PyPI's normalised).
fn osv_name(ecosystem: &str, name: &str) -> String {
    if ecosystem == "PyPI" {
        pep503(name)
    } else {
        name.to_owned()
    }
}

/// An npm package's full name: its scope (from the purl) and name.
/// The name people and ignore files know a package by: an npm package with its scope
/// (`@babel/traverse`), a Maven artifact with its group (`org.yaml:snakeyaml`), else the name.
fn qualified_name(package: &Package) -> String {
    match package.kind {
        PackageType::Npm => npm_name(package),
        PackageType::Maven => match purl_namespace(&package.purl) {
            Some(group) => format!("{group}:{}", package.name),
            None => package.name.clone(),
        },
        _ => package.name.clone(),
    }
}

/// An npm package's full name: the inventory reports it with its scope; a package made
/// elsewhere (another tool's inventory) may carry the scope in its purl only.
fn npm_name(package: &Package) -> String {
    if package.name.starts_with('@') {
        return package.name.clone();
    }
    match purl_namespace(&package.purl) {
        Some(scope) => format!("{scope}/{}", package.name),
        None => package.name.clone(),
    }
}

fn purl_namespace(purl: &str) -> Option<String> {
    let parsed = PackageUrl::from_str(purl).ok()?;
    parsed
        .namespace()
        .filter(|namespace| !namespace.is_empty())
        .map(str::to_owned)
}

/// The lower of two optional versions (a version always beats none).
fn lowest(order: VersionOrder, a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let b_lower = version::compare(order, &b, &a).is_ok_and(Ordering::is_lt);
            Some(if b_lower { b } else { a })
        }
        (a, b) => a.or(b),
    }
}

fn highest(order: VersionOrder, a: String, b: String) -> String {
    if version::compare(order, &b, &a).is_ok_and(Ordering::is_gt) {
        b
    } else {
        a
    }
}

/// Sorts versions in `order`, versions it cannot read last in string order. An insertion
/// sort: a handful of fixes, and no panic when an order is not transitive (Maven's is not).
fn sort_versions(order: VersionOrder, versions: &mut Vec<String>) {
    let (mut readable, mut unreadable): (Vec<String>, Vec<String>) = versions
        .drain(..)
        .partition(|v| version::is_valid(order, v));
    let mut sorted: Vec<String> = Vec::with_capacity(readable.len());
    for candidate in readable.drain(..) {
        let at = sorted
            .iter()
            .rposition(|placed| {
                version::compare(order, placed, &candidate).is_ok_and(Ordering::is_le)
            })
            .map_or(0, |i| i + 1);
        sorted.insert(at, candidate);
    }
    unreadable.sort();
    versions.extend(sorted);
    versions.extend(unreadable);
}

/// Union-find over ids.
#[derive(Debug, Default)]
struct IdSets {
    index: HashMap<String, usize>,
    names: Vec<String>,
    parent: Vec<usize>,
}

impl IdSets {
    fn node(&mut self, id: &str) -> usize {
        if let Some(&node) = self.index.get(id) {
            return node;
        }
        let node = self.parent.len();
        self.index.insert(id.to_owned(), node);
        self.names.push(id.to_owned());
        self.parent.push(node);
        node
    }

    fn find(&mut self, mut node: usize) -> usize {
        while self.parent[node] != node {
            self.parent[node] = self.parent[self.parent[node]];
            node = self.parent[node];
        }
        node
    }

    fn join(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.parent[a.max(b)] = a.min(b);
        }
    }

    /// The root of a known id.
    fn root_of(&mut self, id: &str) -> usize {
        let node = self.node(id);
        self.find(node)
    }

    /// Every id, by the root of its set.
    fn members(&mut self) -> HashMap<usize, BTreeSet<String>> {
        let mut members: HashMap<usize, BTreeSet<String>> = HashMap::new();
        for node in 0..self.parent.len() {
            let root = self.find(node);
            members
                .entry(root)
                .or_default()
                .insert(self.names[node].clone());
        }
        members
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::cache::digest::Digest;
    use crate::scan::model::{DockerfileLine, Severity};

    fn fixture(name: &str) -> Record {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/scan/osv")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn fixtures(names: &[&str]) -> MemoryRecords {
        MemoryRecords::new(names.iter().map(|name| fixture(name)))
    }

    fn inline(json: &str) -> Record {
        serde_json::from_str(json).unwrap()
    }

    fn package(kind: PackageType, name: &str, version: &str) -> crate::scan::model::Package {
        crate::scan::model::Package::plain(kind, name, version)
    }

    fn deb(name: &str, version: &str, source: Option<(&str, Option<&str>)>) -> Package {
        let mut package = package(PackageType::Deb, name, version);
        package.path = "/var/lib/dpkg/status".to_owned();
        if let Some((source_name, source_version)) = source {
            package.source_name = Some(source_name.to_owned());
            package.source_version = source_version.map(str::to_owned);
        }
        package
    }

    fn os(id: &str, version_id: Option<&str>, codename: Option<&str>) -> OsRelease {
        OsRelease {
            id: Some(id.to_owned()),
            version_id: version_id.map(str::to_owned),
            codename: codename.map(str::to_owned),
            pretty_name: None,
        }
    }

    fn bookworm() -> OsRelease {
        os("debian", Some("12"), Some("bookworm"))
    }

    fn image(os: Option<OsRelease>, packages: Vec<Package>) -> ImageInventory {
        ImageInventory {
            image: "test".to_owned(),
            platform: Some("linux/amd64".to_owned()),
            id: Digest::of(b"image"),
            manifest: None,
            os,
            packages,
            applications: Vec::new(),
            layers: Vec::new(),
            findings: Vec::new(),
            vulnerabilities: None,
            warnings: Vec::new(),
        }
    }

    fn matched(image: &ImageInventory, source: &dyn RecordSource) -> MatchResult {
        match_image(image, source).unwrap()
    }

    fn ids(result: &MatchResult) -> Vec<(&str, &str)> {
        result
            .findings
            .iter()
            .map(|f| (f.package.as_str(), f.id.as_str()))
            .collect()
    }

    /// pip 23.0.1 (the test image's): PyPA's PYSEC and GitHub's GHSA both alias
    /// CVE-2023-5752, so they are one issue under the CVE, with the higher of their scores.
    #[test]
    fn pysec_ghsa_and_cve_aliases_are_one_issue() {
        let source = fixtures(&["PYSEC-2023-228.json", "GHSA-mq26-g339-26xf.json"]);
        let mut pip = package(PackageType::Pypi, "pip", "23.0.1");
        pip.dockerfile = Some(DockerfileLine {
            path: "Dockerfile".to_owned(),
            line: 7,
            stage: None,
        });
        let result = matched(&image(Some(bookworm()), vec![pip]), &source);
        assert_eq!(result.records_consulted, 2);
        let [finding] = result.findings.as_slice() else {
            panic!("{:?}", result.findings);
        };
        assert_eq!(finding.id, "CVE-2023-5752");
        assert_eq!(finding.aliases, ["GHSA-mq26-g339-26xf", "PYSEC-2023-228"]);
        assert_eq!(finding.severity, Severity::Medium);
        assert_eq!(finding.score, Some(5.5));
        assert_eq!(finding.fixed_version.as_deref(), Some("23.3"));
        assert_eq!(finding.fixed_versions, ["23.3"]);
        assert_eq!(
            (
                finding.source_name.as_ref(),
                finding.source_version.as_ref()
            ),
            (None, None)
        );
        assert_eq!(finding.installed_version, "23.0.1");
        assert_eq!(finding.dockerfile.as_ref().map(|d| d.line), Some(7));
        assert_eq!(finding.found_by, ["buildopt"]);
        assert!(result.not_matchable.is_empty());
    }

    /// requests 2.31.0 is past CVE-2023-32681's fix, not past the two later issues; an older
    /// install elsewhere in the image gets all three, each once, at its own path.
    #[test]
    fn requests_findings_per_installed_copy() {
        let source = fixtures(&[
            "PYSEC-2023-74.json",
            "GHSA-j8r2-6x86-q33q.json",
            "GHSA-9wx4-h78v-vm56.json",
            "GHSA-9hjg-9r4m-mvj7.json",
        ]);
        let current = package(PackageType::Pypi, "requests", "2.31.0");
        let mut old = package(PackageType::Pypi, "Requests", "2.28.1");
        old.path = "/usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA".to_owned();
        let result = matched(&image(None, vec![current, old]), &source);
        assert_eq!(
            ids(&result),
            [
                ("Requests", "CVE-2023-32681"),
                ("Requests", "CVE-2024-35195"),
                ("Requests", "CVE-2024-47081"),
                ("requests", "CVE-2024-35195"),
                ("requests", "CVE-2024-47081"),
            ]
        );
        let merged = &result.findings[0];
        assert_eq!(merged.aliases, ["GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"]);
        assert_eq!(
            (merged.severity, merged.score),
            (Severity::Medium, Some(6.1))
        );
        assert_eq!(merged.fixed_version.as_deref(), Some("2.31.0"));
        let netrc = &result.findings[4];
        assert_eq!(netrc.fixed_version.as_deref(), Some("2.32.4"));
        assert_eq!(netrc.score, Some(5.3));
        // One lookup of the normalised name served both copies.
        assert_eq!(result.records_consulted, 4);
    }

    /// setuptools 66.1.1: a CVSS v3 record, a record with only a CVSS v4 vector, and an old
    /// record it is past.
    #[test]
    fn setuptools_with_a_v4_only_record() {
        let source = fixtures(&[
            "GHSA-cx63-2mw6-8hw5.json",
            "GHSA-5rjg-fvgr-3xxf.json",
            "PYSEC-2022-43012.json",
        ]);
        let setuptools = package(PackageType::Pypi, "setuptools", "66.1.1");
        let result = matched(&image(None, vec![setuptools]), &source);
        let found: Vec<(&str, Severity, Option<f64>, Option<&str>)> = result
            .findings
            .iter()
            .map(|f| {
                (
                    f.id.as_str(),
                    f.severity,
                    f.score,
                    f.fixed_version.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("CVE-2024-6345", Severity::High, Some(8.8), Some("70.0.0")),
                ("CVE-2025-47273", Severity::High, Some(8.7), Some("78.1.1")),
            ]
        );
    }

    #[test]
    fn npm_release_lines_and_sorted_fixes() {
        let source = fixtures(&["GHSA-c2qf-rxjj-qqgw.json"]);
        let current = package(PackageType::Npm, "semver", "7.5.4");
        let mut old = package(PackageType::Npm, "semver", "7.5.1");
        old.path = "/app/node_modules/old/node_modules/semver/package.json".to_owned();
        let result = matched(&image(None, vec![current, old]), &source);
        let [finding] = result.findings.as_slice() else {
            panic!("{:?}", result.findings);
        };
        assert_eq!(finding.installed_version, "7.5.1");
        assert_eq!(finding.id, "CVE-2022-25883");
        assert_eq!(finding.aliases, ["GHSA-c2qf-rxjj-qqgw"]);
        assert_eq!(finding.fixed_version.as_deref(), Some("7.5.2"));
        assert_eq!(finding.fixed_versions, ["5.7.2", "6.3.1", "7.5.2"]);
    }

    /// GHSA-67hx-6x53-jw92's package and range as published: the finding names the package
    /// with its scope, as the record and `npm ls` do.
    #[test]
    fn a_scoped_npm_package_is_reported_with_its_scope() {
        let source = MemoryRecords::new([inline(
            r#"{"id": "GHSA-67hx-6x53-jw92", "modified": "2023-10-17T19:06:23Z",
                "aliases": ["CVE-2023-45133"],
                "affected": [{"package": {"ecosystem": "npm", "name": "@babel/traverse"},
                  "ranges": [{"type": "ECOSYSTEM",
                    "events": [{"introduced": "0"}, {"fixed": "7.23.2"}]}]}]}"#,
        )]);
        let mut traverse = package(PackageType::Npm, "traverse", "7.22.5");
        traverse.purl = "pkg:npm/%40babel/traverse@7.22.5".to_owned();
        let unscoped = package(PackageType::Npm, "traverse", "0.6.7");
        let result = matched(&image(None, vec![traverse, unscoped]), &source);
        let [finding] = result.findings.as_slice() else {
            panic!("{:?}", result.findings);
        };
        assert_eq!(
            (finding.package.as_str(), finding.id.as_str()),
            ("@babel/traverse", "CVE-2023-45133")
        );
    }

    /// Debian 12's util-linux binaries as the test image's dpkg status lists them: the record
    /// names the source, each binary gets its finding, and bsdutils' epoch (its own, not the
    /// source's) does not hide it.
    #[test]
    fn every_binary_of_an_affected_debian_source_gets_a_finding() {
        let source = MemoryRecords::new([
            fixture("written/DEBIAN-CVE-2099-1001.json"),
            fixture("written/DEBIAN-CVE-2099-3001.json"),
        ]);
        let util_linux = Some(("util-linux", Some("2.38.1-5+deb12u3")));
        let packages = vec![
            deb("bsdutils", "1:2.38.1-5+deb12u3", util_linux),
            deb("libblkid1", "2.38.1-5+deb12u3", util_linux),
            deb("mount", "2.38.1-5+deb12u3", util_linux),
            deb("util-linux", "2.38.1-5+deb12u3", None),
            deb("zlib1g", "1:1.2.13.dfsg-1", Some(("zlib", None))),
            deb("libc6", "2.36-9+deb12u14", Some(("glibc", None))),
        ];
        let result = matched(&image(Some(bookworm()), packages), &source);
        assert_eq!(
            ids(&result),
            [
                ("bsdutils", "CVE-2099-1001"),
                ("libblkid1", "CVE-2099-1001"),
                ("mount", "CVE-2099-1001"),
                ("util-linux", "CVE-2099-1001"),
                ("zlib1g", "CVE-2099-3001"),
            ]
        );
        let bsdutils = &result.findings[0];
        assert_eq!(bsdutils.installed_version, "1:2.38.1-5+deb12u3");
        assert_eq!(bsdutils.source_name.as_deref(), Some("util-linux"));
        assert_eq!(bsdutils.source_version.as_deref(), Some("2.38.1-5+deb12u3"));
        assert_eq!(bsdutils.fixed_version.as_deref(), Some("2.38.1-5+deb12u4"));
        // Debian 13's fix is not this release's.
        assert_eq!(bsdutils.fixed_versions, ["2.38.1-5+deb12u4"]);
        assert_eq!(bsdutils.aliases, ["DEBIAN-CVE-2099-1001"]);
        // The CVSS vector, not the urgency "high".
        assert_eq!(
            (bsdutils.severity, bsdutils.score),
            (Severity::High, Some(7.8))
        );
        assert_eq!(
            bsdutils.summary.as_deref(),
            Some("util-linux: a written flaw for the matcher's tests")
        );
        let zlib = &result.findings[4];
        assert_eq!(zlib.fixed_version, None);
        assert!(zlib.fixed_versions.is_empty());
        assert_eq!(zlib.source_version.as_deref(), Some("1:1.2.13.dfsg-1"));
        assert_eq!(zlib.severity, Severity::Unknown);
        // util-linux, zlib and glibc: one lookup each.
        assert_eq!(result.records_consulted, 2);
    }

    /// A DSA naming three CVEs joins none of them; it is reported on its own while one of its
    /// CVEs has no record of its own, and not once all have.
    #[test]
    fn a_record_naming_several_cves_never_joins_them() {
        let libssl = || deb("libssl3", "3.0.20-1~deb12u2", Some(("openssl", None)));
        let two = MemoryRecords::new([
            fixture("written/DSA-9999-1.json"),
            fixture("written/DEBIAN-CVE-2099-2001.json"),
            fixture("written/DEBIAN-CVE-2099-2002.json"),
        ]);
        let result = matched(&image(Some(bookworm()), vec![libssl()]), &two);
        assert_eq!(
            ids(&result),
            [
                ("libssl3", "CVE-2099-2001"),
                ("libssl3", "CVE-2099-2002"),
                ("libssl3", "DSA-9999-1"),
            ]
        );
        let first = &result.findings[0];
        assert_eq!(first.aliases, ["DEBIAN-CVE-2099-2001"]);
        assert_eq!((first.severity, first.score), (Severity::High, Some(7.5)));
        assert_eq!(result.findings[1].score, Some(5.3));
        let dsa = &result.findings[2];
        assert!(dsa.aliases.is_empty(), "{:?}", dsa.aliases);
        assert_eq!(
            dsa.related,
            ["CVE-2099-2001", "CVE-2099-2002", "CVE-2099-2003"]
        );
        assert_eq!(dsa.fixed_version.as_deref(), Some("3.0.21-1~deb12u1"));
        assert_eq!(dsa.severity, Severity::Unknown);

        let all = MemoryRecords::new([
            fixture("written/DSA-9999-1.json"),
            fixture("written/DEBIAN-CVE-2099-2001.json"),
            fixture("written/DEBIAN-CVE-2099-2002.json"),
            fixture("written/DEBIAN-CVE-2099-2003.json"),
        ]);
        let result = matched(&image(Some(bookworm()), vec![libssl()]), &all);
        assert_eq!(
            ids(&result),
            [
                ("libssl3", "CVE-2099-2001"),
                ("libssl3", "CVE-2099-2002"),
                ("libssl3", "CVE-2099-2003"),
            ]
        );
    }

    /// Ignoring one CVE of a DSA naming three must not hide the DSA's finding (the other two
    /// are still unfixed); ignoring the DSA's own id does.
    #[test]
    fn ignoring_one_cve_of_an_umbrella_does_not_cover_it() {
        let libssl = deb("libssl3", "3.0.20-1~deb12u2", Some(("openssl", None)));
        let source = MemoryRecords::new([fixture("written/DSA-9999-1.json")]);
        let result = matched(&image(Some(bookworm()), vec![libssl]), &source);
        let [dsa] = result.findings.as_slice() else {
            panic!("{:?}", result.findings);
        };
        let path = Path::new(".trivyignore");
        let one_cve = crate::scan::ignore::IgnoreList::parse_trivyignore("CVE-2099-2002\n", path);
        assert!(!one_cve.unwrap().entries[0].covers(dsa));
        let own_id = crate::scan::ignore::IgnoreList::parse_trivyignore("dsa-9999-1\n", path);
        assert!(own_id.unwrap().entries[0].covers(dsa));
    }

    fn demo_record(id: &str, aliases: &[&str], upstream: &[&str], extra: &str) -> Record {
        inline(&format!(
            r#"{{"id": "{id}", "modified": "2099-01-01T00:00:00Z",
                "aliases": {aliases:?}, "upstream": {upstream:?}{extra},
                "affected": [{{"package": {{"ecosystem": "PyPI", "name": "demo"}},
                  "ranges": [{{"type": "ECOSYSTEM", "events": [{{"introduced": "0"}}, {{"fixed": "2.0"}}]}}]}}]}}"#
        ))
    }

    fn demo_ids(records: Vec<Record>) -> Vec<(String, Vec<String>)> {
        let source = MemoryRecords::new(records);
        let demo = package(PackageType::Pypi, "demo", "1.0");
        matched(&image(None, vec![demo]), &source)
            .findings
            .into_iter()
            .map(|f| (f.id, f.aliases))
            .collect()
    }

    fn owned(id: &str, aliases: &[&str]) -> (String, Vec<String>) {
        (
            id.to_owned(),
            aliases.iter().map(|a| (*a).to_owned()).collect(),
        )
    }

    #[test]
    fn the_reported_id_is_the_cve_else_the_ghsa_else_the_records_own() {
        // Named one way only, no CVE: the GHSA.
        let one_way = vec![
            demo_record("PYSEC-2099-1", &["GHSA-aaaa-aaaa-aaaa"], &[], ""),
            demo_record("GHSA-aaaa-aaaa-aaaa", &[], &[], ""),
        ];
        assert_eq!(
            demo_ids(one_way),
            [owned("GHSA-aaaa-aaaa-aaaa", &["PYSEC-2099-1"])]
        );
        // The other way, and in the other order: the same.
        let other_way = vec![
            demo_record("GHSA-aaaa-aaaa-aaaa", &["PYSEC-2099-1"], &[], ""),
            demo_record("PYSEC-2099-1", &[], &[], ""),
        ];
        assert_eq!(
            demo_ids(other_way),
            [owned("GHSA-aaaa-aaaa-aaaa", &["PYSEC-2099-1"])]
        );
        // Alone: its own id.
        assert_eq!(
            demo_ids(vec![demo_record("PYSEC-2099-2", &[], &[], "")]),
            [owned("PYSEC-2099-2", &[])]
        );
        // The same single upstream id joins; the CVE becomes the id.
        let upstream = vec![
            demo_record("OSV-2099-1", &[], &["CVE-2099-7"], ""),
            demo_record("OSV-2099-2", &[], &["CVE-2099-7"], ""),
        ];
        assert_eq!(
            demo_ids(upstream),
            [owned("CVE-2099-7", &["OSV-2099-1", "OSV-2099-2"])]
        );
        // Upstream lists of several ids join nothing.
        let several = vec![
            demo_record("OSV-2099-3", &[], &["X-1", "X-2"], ""),
            demo_record("OSV-2099-4", &[], &["X-1", "X-3"], ""),
        ];
        assert_eq!(
            demo_ids(several),
            [owned("OSV-2099-3", &[]), owned("OSV-2099-4", &[])]
        );
    }

    #[test]
    fn distribution_records_are_keyed_by_their_cve() {
        assert_eq!(keyed_cve("DEBIAN-CVE-2024-1234"), Some("CVE-2024-1234"));
        assert_eq!(keyed_cve("UBUNTU-CVE-2024-1234"), Some("CVE-2024-1234"));
        assert_eq!(keyed_cve("ALPINE-CVE-2024-1234"), Some("CVE-2024-1234"));
        for id in [
            "CVE-2024-1234",
            "-CVE-2024-1",
            "GHSA-cve-x",
            "Debian-CVE-1",
            "DSA-5000-1",
        ] {
            assert_eq!(keyed_cve(id), None, "{id}");
        }
        // Keyed records join a GHSA that aliases the CVE, without any alias of their own.
        let records = vec![
            demo_record("UBUNTU-CVE-2099-8", &[], &[], ""),
            demo_record("GHSA-dddd-dddd-dddd", &["CVE-2099-8"], &[], ""),
        ];
        assert_eq!(
            demo_ids(records),
            [owned(
                "CVE-2099-8",
                &["GHSA-dddd-dddd-dddd", "UBUNTU-CVE-2099-8"]
            )]
        );
    }

    /// A record naming several CVEs that another record names as its alias is that issue.
    #[test]
    fn a_record_naming_several_cves_named_by_another_is_not_reported_twice() {
        let records = vec![
            demo_record("GO-2099-1", &["CVE-2099-11", "CVE-2099-12"], &[], ""),
            demo_record("GHSA-eeee-eeee-eeee", &["GO-2099-1"], &[], ""),
        ];
        assert_eq!(
            demo_ids(records),
            [owned("GHSA-eeee-eeee-eeee", &["GO-2099-1"])]
        );
    }

    #[test]
    fn the_result_does_not_depend_on_record_order() {
        let records = vec![
            fixture("PYSEC-2023-74.json"),
            fixture("GHSA-j8r2-6x86-q33q.json"),
            fixture("GHSA-9wx4-h78v-vm56.json"),
            demo_record("GHSA-bbbb-bbbb-bbbb", &["CVE-2023-32681"], &[], ""),
        ];
        let requests = package(PackageType::Pypi, "requests", "2.28.1");
        let forward = matched(
            &image(None, vec![requests.clone()]),
            &MemoryRecords::new(records.clone()),
        );
        let backward = matched(
            &image(None, vec![requests]),
            &MemoryRecords::new(records.into_iter().rev()),
        );
        assert_eq!(forward, backward);
    }

    /// Records merged into one issue: the highest level and the highest score, each from
    /// whichever record has it.
    #[test]
    fn severity_is_the_highest_among_merged_records() {
        let scored = r#", "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"}]"#;
        let worded = r#", "database_specific": {"severity": "CRITICAL"}"#;
        let records = vec![
            demo_record("PYSEC-2099-5", &["CVE-2099-5"], &[], scored),
            demo_record("GHSA-cccc-cccc-cccc", &["CVE-2099-5"], &[], worded),
        ];
        let source = MemoryRecords::new(records);
        let demo = package(PackageType::Pypi, "demo", "1.0");
        let result = matched(&image(None, vec![demo]), &source);
        let finding = &result.findings[0];
        assert_eq!(finding.id, "CVE-2099-5");
        assert_eq!(
            (finding.severity, finding.score),
            (Severity::Critical, Some(5.3))
        );
    }

    /// GO-2023-2102 names two CVEs: Go's stdlib finding keeps the Go id. The toolchain
    /// version comes as `go1.19.8` (fzf's build info); modules keep their `v` in the finding.
    #[test]
    fn go_stdlib_and_modules() {
        let source = fixtures(&["GO-2023-2102.json"]);
        let packages = vec![
            package(PackageType::Golang, "stdlib", "go1.19.8"),
            package(PackageType::Golang, "golang.org/x/net", "v0.15.0"),
            package(PackageType::Golang, "golang.org/x/text", "v0.13.0"),
        ];
        let mut newer = package(PackageType::Golang, "stdlib", "go1.21.3");
        newer.path = "/usr/local/bin/caddy".to_owned();
        let mut devel = package(PackageType::Golang, "stdlib", "devel go1.22-abc");
        devel.path = "/usr/local/bin/dev".to_owned();
        let mut all = packages;
        all.extend([newer, devel]);
        let result = matched(&image(None, all), &source);
        assert_eq!(
            ids(&result),
            [
                ("golang.org/x/net", "GO-2023-2102"),
                ("stdlib", "GO-2023-2102"),
            ]
        );
        let stdlib = &result.findings[1];
        assert_eq!(stdlib.installed_version, "go1.19.8");
        assert_eq!(stdlib.fixed_version.as_deref(), Some("1.20.10"));
        assert_eq!(stdlib.fixed_versions, ["1.20.10", "1.21.3"]);
        assert_eq!(stdlib.aliases, ["GHSA-4374-p667-p6c8"]);
        assert_eq!(stdlib.related, ["CVE-2023-39325", "CVE-2023-44487"]);
        assert_eq!(result.findings[0].installed_version, "v0.15.0");
        assert_eq!(result.findings[0].fixed_version.as_deref(), Some("0.17.0"));
        assert_eq!(result.not_matchable.len(), 1, "{:?}", result.not_matchable);
        let devel = &result.not_matchable[0];
        assert_eq!(devel.reason, NotMatchedReason::UnreadableVersion);
        assert!(devel.detail.contains("is not a Go release"), "{devel:?}");
    }

    #[test]
    fn go_toolchain_versions_read_as_go_osv_data_writes_them() {
        let cases = [
            ("go1.21.3", Some("1.21.3")),
            ("go1.20", Some("1.20.0")),
            ("go1.21rc2", Some("1.21.0-rc.2")),
            ("go1.9beta1", Some("1.9.0-beta.1")),
            ("go1.21.3 X:boringcrypto", Some("1.21.3")),
            ("1.21.3", None),
            ("go", None),
            ("go1..2", None),
            ("go1.2.3.4", None),
            ("go1.21rc", None),
            ("go1.21-pre", None),
            ("devel +abc", None),
            ("", None),
        ];
        for (toolchain, semver) in cases {
            assert_eq!(
                go_toolchain_semver(toolchain).as_deref(),
                semver,
                "{toolchain}"
            );
        }
        let huge = format!("go1.{}", "9".repeat(10_000));
        assert_eq!(go_toolchain_semver(&huge), None);
    }

    #[test]
    fn pep503_names() {
        assert_eq!(pep503("Requests"), "requests");
        assert_eq!(pep503("zope.interface"), "zope-interface");
        assert_eq!(pep503("Foo__Bar-.baz"), "foo-bar-baz");
    }

    fn lookup(
        package: &Package,
        os: Option<&OsRelease>,
    ) -> Result<(Vec<String>, String, String), String> {
        lookup_of(package, os)
            .map(|l| (l.ecosystems, l.name, l.version))
            .map_err(|(_, why)| why)
    }

    /// Ecosystem strings, name and compared version.
    type Coordinates<'a> = (Vec<&'a str>, &'a str, &'a str);

    #[test]
    fn each_package_type_has_its_osv_coordinates() {
        let apk = {
            let mut p = package(PackageType::Apk, "libcrypto3", "3.1.4-r5");
            p.source_name = Some("openssl".to_owned());
            p
        };
        let rpm = package(PackageType::Rpm, "openssl-libs", "1:3.0.7-27.el9");
        let mut maven = package(PackageType::Maven, "commons-lang3", "3.12.0");
        maven.purl = "pkg:maven/org.apache.commons/commons-lang3@3.12.0".to_owned();
        let mut scoped = package(PackageType::Npm, "fs", "3.1.0");
        scoped.purl = "pkg:npm/%40npmcli/fs@3.1.0".to_owned();
        let cases: Vec<(Package, Option<OsRelease>, Coordinates)> = vec![
            (
                deb("bash", "5.2.15-2+b8", Some(("bash", Some("5.2.15-2")))),
                Some(bookworm()),
                (vec!["Debian:12"], "bash", "5.2.15-2"),
            ),
            (
                deb("bash", "5.2.21-2", None),
                Some(os("debian", None, Some("trixie"))),
                (vec!["Debian:13"], "bash", "5.2.21-2"),
            ),
            (
                deb("bash", "5.1-6ubuntu1", None),
                Some(os("ubuntu", Some("22.04"), Some("jammy"))),
                (vec!["Ubuntu:22.04:LTS"], "bash", "5.1-6ubuntu1"),
            ),
            (
                deb("bash", "5.2.15-2ubuntu1", None),
                Some(os("ubuntu", Some("23.10"), None)),
                (vec!["Ubuntu:23.10"], "bash", "5.2.15-2ubuntu1"),
            ),
            (
                apk.clone(),
                Some(os("alpine", Some("3.19.1"), None)),
                (vec!["Alpine:v3.19"], "openssl", "3.1.4-r5"),
            ),
            (
                apk,
                Some(os("wolfi", Some("20230201"), None)),
                (vec!["Wolfi"], "openssl", "3.1.4-r5"),
            ),
            (
                rpm.clone(),
                Some(os("rocky", Some("9.3"), None)),
                (vec!["Rocky Linux:9"], "openssl-libs", "1:3.0.7-27.el9"),
            ),
            (
                rpm,
                Some(os("rhel", Some("9.4"), None)),
                (
                    vec![
                        "Red Hat:enterprise_linux:9::baseos",
                        "Red Hat:enterprise_linux:9::appstream",
                    ],
                    "openssl-libs",
                    "1:3.0.7-27.el9",
                ),
            ),
            (
                package(PackageType::Pypi, "Zope.Interface", "6.0"),
                None,
                (vec!["PyPI"], "zope-interface", "6.0"),
            ),
            (scoped, None, (vec!["npm"], "@npmcli/fs", "3.1.0")),
            (
                maven,
                None,
                (vec!["Maven"], "org.apache.commons:commons-lang3", "3.12.0"),
            ),
            (
                package(PackageType::Cargo, "itoa", "1.0.9"),
                None,
                (vec!["crates.io"], "itoa", "1.0.9"),
            ),
            (
                package(PackageType::Gem, "rack", "2.2.22"),
                None,
                (vec!["RubyGems"], "rack", "2.2.22"),
            ),
        ];
        for (package, os, (ecosystems, name, version)) in cases {
            let expected = (
                ecosystems.iter().map(|e| (*e).to_owned()).collect(),
                name.to_owned(),
                version.to_owned(),
            );
            assert_eq!(lookup(&package, os.as_ref()), Ok(expected), "{package:?}");
        }
    }

    #[test]
    fn packages_without_osv_coordinates_say_why() {
        let bash = deb("bash", "5.2.15-2", None);
        let bare_maven = package(PackageType::Maven, "commons-lang3", "3.12.0");
        let cases = [
            (bash.clone(), None, "need the image's os-release"),
            (
                bash.clone(),
                Some(os("debian", None, Some("experimental-name"))),
                "no OSV release",
            ),
            (
                bash.clone(),
                Some(os("ubuntu", Some("jammy"), None)),
                "names no release",
            ),
            (
                bash.clone(),
                Some(os("linuxmint", Some("21.2"), None)),
                "no OSV data for deb packages on linuxmint",
            ),
            (
                package(PackageType::Rpm, "bash", "5.1.8-6.fc39"),
                Some(os("fedora", Some("39"), None)),
                "no OSV data for rpm packages on fedora",
            ),
            (bare_maven, None, "no Maven group id"),
        ];
        for (package, os, why) in cases {
            let error = lookup(&package, os.as_ref()).unwrap_err();
            assert!(error.contains(why), "{error}");
        }
        let source = MemoryRecords::default();
        let result = matched(&image(None, vec![bash]), &source);
        assert_eq!(
            result.not_matchable,
            [NotMatched {
                package: "bash".into(),
                version: "5.2.15-2".into(),
                kind: PackageType::Deb,
                path: "/var/lib/dpkg/status".into(),
                reason: NotMatchedReason::NoRelease,
                detail: "deb packages need the image's os-release".into(),
            }]
        );
        assert!(result.findings.is_empty());
    }

    /// Each case the scan cannot check is reported with its reason, never dropped.
    #[test]
    fn unmatchable_packages_are_reported_by_reason() {
        let reason = |os: Option<OsRelease>, package: Package| {
            let result = matched(&image(os, vec![package]), &MemoryRecords::default());
            let reasons: Vec<NotMatchedReason> =
                result.not_matchable.iter().map(|n| n.reason).collect();
            reasons
        };
        let sid = os("debian", None, Some("sid"));
        let bash = deb("bash", "5.2.15-2", None);
        assert_eq!(reason(Some(sid), bash), [NotMatchedReason::NoRelease]);
        let fedora = Some(os("fedora", Some("39"), None));
        let rpm = package(PackageType::Rpm, "bash", "5.2.26-1.fc39");
        assert_eq!(reason(fedora, rpm), [NotMatchedReason::UnknownDistribution]);
        let odd = package(PackageType::Pypi, "demo", "1.0-foo-bar");
        assert_eq!(reason(None, odd), [NotMatchedReason::UnreadableVersion]);
        let devel = package(PackageType::Golang, "example.com/tool", "(devel)");
        assert_eq!(reason(None, devel), [NotMatchedReason::UnreadableVersion]);
    }

    /// Records with no `affected`, an entry without a package, a fix no order can read, a
    /// withdrawal, vectors that cannot be scored; an installed version no order can read.
    #[test]
    fn malformed_records_and_versions_never_panic() {
        let records = vec![
            inline(r#"{"id": "X-EMPTY", "modified": "x"}"#),
            inline(r#"{"id": "X-NOPKG", "modified": "x", "affected": [{"versions": ["1.0"]}]}"#),
            demo_record(
                "X-WITHDRAWN",
                &[],
                &[],
                r#", "withdrawn": "2099-01-02T00:00:00Z""#,
            ),
            demo_record(
                "X-BADVECTOR",
                &[],
                &[],
                r#", "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N"}, {"type": "CVSS_V4", "score": "💥"}], "database_specific": {"severity": 5}"#,
            ),
            inline(
                r#"{"id": "X-BADFIX", "modified": "x", "affected": [{"package": {"ecosystem": "PyPI", "name": "demo"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "not a version!"}]}]}]}"#,
            ),
        ];
        let source = MemoryRecords::new(records);
        let demo = package(PackageType::Pypi, "demo", "1.0");
        let mut unreadable = package(PackageType::Pypi, "demo", "latest-and-greatest");
        unreadable.path = "/other".to_owned();
        let result = matched(&image(None, vec![demo, unreadable]), &source);
        let [finding] = result.findings.as_slice() else {
            panic!("{:?}", result.findings);
        };
        assert_eq!(finding.id, "X-BADVECTOR");
        assert_eq!((finding.severity, finding.score), (Severity::Unknown, None));
        assert_eq!(result.not_matchable.len(), 2, "{:?}", result.not_matchable);
        let bad_fix = &result.not_matchable[0];
        assert_eq!(bad_fix.reason, NotMatchedReason::UnreadableRecord);
        assert_eq!(
            (bad_fix.package.as_str(), bad_fix.path.as_str()),
            ("demo", "/demo")
        );
        assert!(
            bad_fix
                .detail
                .starts_with("X-BADFIX: PEP 440 cannot read version \"not a version!\""),
            "{bad_fix:?}"
        );
        assert!(
            result.not_matchable[1]
                .detail
                .contains("cannot be read as PEP 440")
        );
    }

    /// Binaries of one source share its lookup, and each is reported when it cannot be
    /// matched.
    #[test]
    fn each_binary_of_an_unmatchable_source_is_reported() {
        let broken = Some(("util-linux", Some("not a version!")));
        let packages = vec![
            deb("bsdutils", "1:2.38.1-5+deb12u3", broken),
            deb("mount", "2.38.1-5+deb12u3", broken),
        ];
        let source = MemoryRecords::new([fixture("written/DEBIAN-CVE-2099-1001.json")]);
        let result = matched(&image(Some(bookworm()), packages), &source);
        assert_eq!(result.not_matchable.len(), 2, "{:?}", result.not_matchable);
        let mount = &result.not_matchable[1];
        assert_eq!(
            (mount.package.as_str(), mount.version.as_str()),
            ("mount", "2.38.1-5+deb12u3")
        );
        assert!(
            mount.detail.ends_with("cannot be read as dpkg"),
            "{mount:?}"
        );
        assert_eq!(result.records_consulted, 0);
    }

    struct Broken;

    impl RecordSource for Broken {
        fn records(&self, _: &str, _: &str) -> Result<Vec<Record>, String> {
            Err("index truncated".to_owned())
        }
    }

    #[test]
    fn a_source_that_cannot_be_read_is_an_error() {
        let demo = package(PackageType::Pypi, "demo", "1.0");
        let error = match_image(&image(None, vec![demo]), &Broken).unwrap_err();
        assert_eq!(error, "reading the records of PyPI demo: index truncated");
    }
}
