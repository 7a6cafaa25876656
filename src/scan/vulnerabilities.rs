//! The vulnerability check of scanned images: each image's packages matched against the
//! database (and, when chosen, Trivy's or Grype's findings merged in), then the ignore files,
//! the report level and the gate applied. Without a database every image is marked "not
//! scanned" (never a silent pass: with a gate on, that ends the run with exit 4).

use chrono::NaiveDate;

use super::ScanError;
use super::external::{self, ImageInput, Tool};
use super::ignore::IgnoreList;
use super::matcher::{RecordSource, match_image};
use super::model::{Finding, ImageInventory, MatchStatus, NotMatched, ScanWarning};
use super::osv::Record;
use super::policy::{Policy, apply};
use super::vulndb::VulnDb;
use crate::settings::scan::ScanSettings;

/// What the check matches against and how it judges.
pub struct Check<'a> {
    /// The database, with its content version and newest record date; `None`: not scanned.
    pub database: Option<Database<'a>>,
    /// Why there is no database, for the report.
    pub missing_reason: String,
    /// Trivy or Grype, run on each image besides buildopt's own matching.
    pub external: Option<Tool>,
    pub policy: &'a Policy,
    pub ignores: &'a IgnoreList,
    pub today: NaiveDate,
}

/// A database to match against.
pub struct Database<'a> {
    pub records: &'a dyn RecordSource,
    pub version: String,
    pub modified: Option<String>,
    /// The day it was built or last confirmed (`YYYY-MM-DD`), and its age in days then.
    pub built: Option<String>,
    pub age_days: Option<u64>,
}

impl RecordSource for VulnDb {
    fn records(&self, ecosystem: &str, name: &str) -> Result<Vec<Record>, String> {
        VulnDb::records(self, ecosystem, name).map_err(|e| e.to_string())
    }
}

/// What the check did, for people and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckSummary {
    pub images_matched: usize,
    pub records_consulted: usize,
    /// Ignore entries that have expired and would have covered a finding.
    pub expired_ignores: Vec<String>,
    pub warnings: Vec<String>,
}

/// Checks every image of `images` in place; `file_of` gives the tarball or layout folder an
/// image came from, for an external scanner (`None`: it reads the reference).
pub fn check(
    images: &mut [ImageInventory],
    check: &Check<'_>,
    file_of: &dyn Fn(&ImageInventory) -> Option<std::path::PathBuf>,
) -> Result<CheckSummary, ScanError> {
    let mut summary = CheckSummary::default();
    for image in images.iter_mut() {
        let found = find(image, check, file_of(image).as_deref(), &mut summary)?;
        judge(image, found, check, &mut summary);
    }
    Ok(summary)
}

/// Matches one image against the database (and runs the external scanner on it): every
/// finding, before the ignore files and the level, with the image's match status set. Without
/// a database the image is marked "not scanned" unless it has no package to match.
pub fn find(
    image: &mut ImageInventory,
    check: &Check<'_>,
    file: Option<&std::path::Path>,
    summary: &mut CheckSummary,
) -> Result<Vec<Finding>, ScanError> {
    let Some(database) = &check.database else {
        image.vulnerabilities = Some(nothing_matched(image, &check.missing_reason));
        return Ok(Vec::new());
    };
    let matched =
        match_image(image, database.records).map_err(|message| ScanError::Database { message })?;
    summary.images_matched += 1;
    summary.records_consulted += matched.records_consulted;
    let mut findings = matched.findings;
    if let Some(tool) = check.external {
        let input = match file {
            Some(path) if path.is_dir() => ImageInput::OciLayout(path),
            Some(path) => ImageInput::Archive(path),
            None => ImageInput::Reference(&image.image),
        };
        let found = external::scan(tool, input, image, None)?;
        summary.warnings.extend(found.skipped);
        merge(&mut findings, found.findings);
    }
    if let Some(warning) = not_matched_warning(&matched.not_matchable) {
        image.warnings.push(ScanWarning {
            path: None,
            layer: None,
            message: warning,
        });
    }
    image.vulnerabilities = Some(MatchStatus {
        scanned: true,
        reason: None,
        database: Some(database.version.clone()),
        database_modified: database.modified.clone(),
        database_built: None,
        database_age_days: None,
        ignored: 0,
        below_level: 0,
        not_matched: matched.not_matchable,
    });
    Ok(findings)
}

/// How many examples of each reason the warning names; the JSON lists every one.
const EXAMPLES: usize = 3;

/// The image's warning about what could not be matched: counts by reason with a few
/// examples, so a scan that checked little never passes silently.
pub fn not_matched_warning(not_matched: &[NotMatched]) -> Option<String> {
    if not_matched.is_empty() {
        return None;
    }
    let mut by_reason: std::collections::BTreeMap<_, Vec<&NotMatched>> = Default::default();
    for entry in not_matched {
        by_reason.entry(entry.reason).or_default().push(entry);
    }
    let parts: Vec<String> = by_reason
        .iter()
        .map(|(reason, entries)| {
            let mut examples: Vec<String> = entries.iter().map(|e| example(e)).collect();
            examples.dedup();
            let more = if examples.len() > EXAMPLES {
                ", …"
            } else {
                ""
            };
            examples.truncate(EXAMPLES);
            let (count, why) = (entries.len(), reason.as_str());
            format!("{count} {why} ({}{more})", examples.join(", "))
        })
        .collect();
    Some(format!(
        "{} not matched against vulnerability data: {} (all in the JSON report's vulnerabilities.not_matched)",
        not_matched.len(),
        parts.join("; ")
    ))
}

/// `name version`, and for a record that could not be evaluated its id.
fn example(entry: &NotMatched) -> String {
    match entry.reason {
        super::model::NotMatchedReason::UnreadableRecord => {
            let record = entry.detail.split(':').next().unwrap_or_default();
            format!("{} {}: {record}", entry.package, entry.version)
        }
        _ => format!("{} {}", entry.package, entry.version),
    }
}

/// The status of an image with no database to match against: an image with no package has
/// nothing to match, so it is scanned (with nothing found) all the same; any other is not.
fn nothing_matched(image: &ImageInventory, missing_reason: &str) -> MatchStatus {
    let empty = image.packages.is_empty();
    MatchStatus {
        scanned: empty,
        reason: Some(if empty {
            "no package to match".to_owned()
        } else {
            missing_reason.to_owned()
        }),
        database: None,
        database_modified: None,
        database_built: None,
        database_age_days: None,
        ignored: 0,
        below_level: 0,
        not_matched: Vec::new(),
    }
}

/// Applies the ignore files, the level and the gate to `findings` and puts what is reported
/// into `image`; expired ignore entries that would have covered a finding go to `summary`.
pub fn judge(
    image: &mut ImageInventory,
    findings: Vec<Finding>,
    check: &Check<'_>,
    summary: &mut CheckSummary,
) {
    let outcome = apply(
        findings,
        check.policy,
        &check.ignores.for_image(&image.image),
        check.today,
    );
    for expired in &outcome.expired_ignores {
        let line = format!(
            "{}: the ignore entry for {} has expired",
            image.image, expired.id
        );
        if !summary.expired_ignores.contains(&line) {
            summary.expired_ignores.push(line);
        }
    }
    outcome.record(image);
    // The age as of this check, also for findings a store kept from an earlier run.
    if let (Some(status), Some(database)) = (image.vulnerabilities.as_mut(), &check.database)
        && status.scanned
    {
        status.database_built = database.built.clone();
        status.database_age_days = database.age_days;
    }
}

/// The database and ignore files a check reads, as the settings name them.
pub struct Loaded {
    /// `None`: no database has been set up.
    pub database: Option<VulnDb>,
    pub ignores: IgnoreList,
    /// Why there is no database, or that it is old, for people.
    pub warnings: Vec<String>,
    /// The database's build (or last confirmation) day and its age in days at load.
    pub built: Option<String>,
    pub age_days: Option<u64>,
}

/// The reason an image without a database is "not scanned".
pub const NO_DATABASE: &str = "no vulnerability database: run `buildopt scan --setup`";

impl Loaded {
    /// Opens the database (`db`: a folder of OSV files or a zip, indexed into the settings'
    /// folder; else the set-up database) and reads the ignore files.
    pub fn load(
        settings: &ScanSettings,
        db: Option<&std::path::Path>,
        now: std::time::SystemTime,
    ) -> Result<Self, ScanError> {
        let database_error = |error: super::vulndb::VulnDbError| ScanError::Database {
            message: error.to_string(),
        };
        let database = match db {
            Some(path) => {
                Some(VulnDb::from_path(path, &settings.vulndb_dir).map_err(database_error)?)
            }
            None => VulnDb::open(&settings.vulndb_dir).map_err(database_error)?,
        };
        let mut warnings = Vec::new();
        match &database {
            Some(db) if db.is_older_than(now, settings.vulndb_max_age_days) => {
                warnings.push(format!(
                    "the vulnerability database is older than {} days: run `buildopt scan --setup`",
                    settings.vulndb_max_age_days
                ));
            }
            Some(_) => {}
            None => warnings.push(
                "no vulnerability database (run `buildopt scan --setup`, or `--setup --db PATH` offline): packages listed, not matched".into(),
            ),
        }
        let ignores = IgnoreList::load(
            &settings.ignore_file,
            settings.ignore_file_named,
            &settings.trivy_ignore_file,
        )?;
        let age_days = database.as_ref().map(|db| db.age(now).as_secs() / 86_400);
        let built = database.as_ref().map(|db| built_day(db, now));
        Ok(Self {
            database,
            ignores,
            warnings,
            built,
            age_days,
        })
    }

    /// The check these make with `policy`, as of `today`.
    pub fn check<'a>(
        &'a self,
        settings: &ScanSettings,
        policy: &'a Policy,
        today: NaiveDate,
    ) -> Check<'a> {
        Check {
            database: self.database.as_ref().map(|db| Database {
                records: db,
                version: db.version().to_owned(),
                modified: db.modified().map(str::to_owned),
                built: self.built.clone(),
                age_days: self.age_days,
            }),
            missing_reason: NO_DATABASE.into(),
            external: settings.scanner.external(),
            policy,
            ignores: &self.ignores,
            today,
        }
    }
}

/// The UTC day the database's age counts from ([`VulnDb::age`]: its build, or a later check).
fn built_day(db: &VulnDb, now: std::time::SystemTime) -> String {
    let since = now.checked_sub(db.age(now)).unwrap_or(now);
    chrono::DateTime::<chrono::Utc>::from(since)
        .format("%Y-%m-%d")
        .to_string()
}

/// Adds another scanner's findings: one finding per issue and package, whoever found it.
pub fn merge(findings: &mut Vec<Finding>, others: Vec<Finding>) {
    for other in others {
        let same = findings.iter_mut().find(|f| {
            f.package == other.package
                && f.installed_version == other.installed_version
                && f.path == other.path
                && same_issue(f, &other)
        });
        match same {
            Some(existing) => take_in(existing, other),
            None => findings.push(other),
        }
    }
}

/// Folds another scanner's finding of the same issue into `existing`: who found it, and the
/// worse rating (a Debian issue buildopt rates "unknown" that Trivy rates HIGH must reach the
/// gate), and the fix when buildopt's records name none.
fn take_in(existing: &mut Finding, other: Finding) {
    for who in other.found_by {
        if !existing.found_by.contains(&who) {
            existing.found_by.push(who);
        }
    }
    existing.severity = existing.severity.max(other.severity);
    existing.score = match (existing.score, other.score) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    if existing.fixed_version.is_none() {
        existing.fixed_version = other.fixed_version;
    }
    if existing.fixed_versions.is_empty() {
        existing.fixed_versions = other.fixed_versions;
    }
}

/// Whether two findings are one issue: they share an id or alias, they are not reported
/// under two different CVEs, and neither is one of the other's `related` CVEs. An umbrella
/// naming several CVEs is not any one of them, so two of them must not be joined through it
/// (Trivy gives each CVE of a DSA the DSA as a vendor id).
fn same_issue(a: &Finding, b: &Finding) -> bool {
    let cve = |f: &Finding| f.id.to_ascii_uppercase().starts_with("CVE-");
    if cve(a) && cve(b) && !a.id.eq_ignore_ascii_case(&b.id) {
        return false;
    }
    let upper = |id: &String| id.to_ascii_uppercase();
    let ids = |f: &Finding| -> Vec<String> {
        std::iter::once(&f.id)
            .chain(&f.aliases)
            .map(upper)
            .collect()
    };
    let related = |f: &Finding| -> Vec<String> { f.related.iter().map(upper).collect() };
    let theirs = ids(b);
    let shared = ids(a).iter().any(|id| theirs.contains(id));
    let umbrella_of = |u: &Finding, f: &Finding| related(u).iter().any(|cve| ids(f).contains(cve));
    shared && !umbrella_of(a, b) && !umbrella_of(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::digest::Digest;
    use crate::scan::model::Severity;
    use crate::scan::package::PackageType;

    fn finding(id: &str, aliases: &[&str], by: &str) -> Finding {
        Finding {
            id: id.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            related: Vec::new(),
            package: "openssl".into(),
            installed_version: "3.0.11-1~deb12u2".into(),
            kind: PackageType::Deb,
            purl: "pkg:deb/debian/openssl@3.0.11-1~deb12u2".into(),
            source_name: None,
            source_version: None,
            fixed_version: None,
            fixed_versions: Vec::new(),
            severity: Severity::High,
            score: Some(7.5),
            summary: None,
            path: "/var/lib/dpkg/status".into(),
            layer: Digest::of(b"layer"),
            dockerfile: None,
            base_image: None,
            found_by: vec![by.into()],
            new: None,
            fails_gate: false,
        }
    }

    #[test]
    fn the_same_issue_found_twice_is_one_finding_found_by_both() {
        let mut ours = vec![finding("CVE-2024-1", &["DEBIAN-CVE-2024-1"], "buildopt")];
        merge(
            &mut ours,
            vec![
                finding("cve-2024-1", &[], "trivy"),
                finding("CVE-2024-2", &[], "trivy"),
            ],
        );
        assert_eq!(ours.len(), 2);
        assert_eq!(ours[0].found_by, ["buildopt", "trivy"]);
        assert_eq!(ours[1].found_by, ["trivy"]);
    }

    /// Trivy rates HIGH, with a fix, an issue buildopt's records rate "unknown" without one:
    /// the merged finding takes the worse rating and the fix, so the gate sees it.
    #[test]
    fn a_merged_finding_takes_the_worse_rating_and_the_missing_fix() {
        let mut unrated = finding("CVE-2024-1", &[], "buildopt");
        (unrated.severity, unrated.score) = (Severity::Unknown, None);
        let mut rated = finding("CVE-2024-1", &[], "trivy");
        (rated.severity, rated.score) = (Severity::High, Some(7.5));
        rated.fixed_version = Some("3.0.13-1~deb12u1".into());
        rated.fixed_versions = vec!["3.0.13-1~deb12u1".into()];
        let mut ours = vec![unrated];
        merge(&mut ours, vec![rated]);
        let [merged] = ours.as_slice() else {
            panic!("{ours:?}")
        };
        assert_eq!((merged.severity, merged.score), (Severity::High, Some(7.5)));
        assert_eq!(merged.fixed_version.as_deref(), Some("3.0.13-1~deb12u1"));
        assert_eq!(merged.fixed_versions, ["3.0.13-1~deb12u1"]);

        // Never lowered: buildopt's own higher rating and fix stay.
        let mut low = finding("CVE-2024-1", &[], "grype");
        (low.severity, low.score) = (Severity::Low, Some(2.0));
        low.fixed_version = Some("9".into());
        merge(&mut ours, vec![low]);
        assert_eq!(
            (ours[0].severity, ours[0].score),
            (Severity::High, Some(7.5))
        );
        assert_eq!(ours[0].fixed_version.as_deref(), Some("3.0.13-1~deb12u1"));
    }

    /// An umbrella (a DSA naming two CVEs) is not either CVE: two scanners' findings of those
    /// CVEs are not joined through it, nor into it.
    #[test]
    fn findings_are_not_joined_through_an_umbrella_s_cves() {
        let mut dsa = finding("DSA-9999-1", &[], "buildopt");
        dsa.related = vec!["CVE-2099-2001".into(), "CVE-2099-2002".into()];
        let mut ours = vec![dsa];
        merge(
            &mut ours,
            vec![
                finding("CVE-2099-2001", &["DSA-9999-1"], "trivy"),
                finding("CVE-2099-2002", &["DSA-9999-1"], "trivy"),
                finding("DSA-9999-1", &[], "trivy"),
            ],
        );
        let ids: Vec<(&str, &[String])> = ours
            .iter()
            .map(|f| (f.id.as_str(), f.found_by.as_slice()))
            .collect();
        assert_eq!(ids.len(), 3, "{ids:?}");
        assert_eq!(ours[0].found_by, ["buildopt", "trivy"]);
        assert_eq!(ours[1].id, "CVE-2099-2001");
        assert_eq!(ours[2].id, "CVE-2099-2002");
    }

    fn package(kind: PackageType, name: &str, version: &str) -> crate::scan::model::Package {
        crate::scan::model::Package::plain(kind, name, version)
    }

    /// A Fedora image's rpms and a Go `(devel)` module cannot be matched: the image's status
    /// lists them and a warning counts them, instead of a silent "no findings".
    #[test]
    fn packages_that_cannot_be_matched_are_reported_not_dropped() {
        let mut image = ImageInventory {
            image: "fedora-app".into(),
            platform: None,
            id: Digest::of(b"image"),
            manifest: None,
            os: Some(crate::scan::package::OsRelease {
                id: Some("fedora".into()),
                version_id: Some("39".into()),
                codename: None,
                pretty_name: None,
            }),
            packages: vec![
                package(PackageType::Rpm, "bash", "5.2.26-1.fc39"),
                package(PackageType::Rpm, "glibc", "2.38-16.fc39"),
                package(PackageType::Golang, "example.com/tool", "(devel)"),
            ],
            applications: Vec::new(),
            layers: Vec::new(),
            findings: Vec::new(),
            vulnerabilities: None,
            warnings: Vec::new(),
        };
        let records = crate::scan::matcher::MemoryRecords::default();
        let (policy, ignores) = (Policy::default(), IgnoreList::default());
        let check = Check {
            database: Some(Database {
                records: &records,
                version: "test".into(),
                modified: None,
                built: Some("2026-12-01".into()),
                age_days: Some(6),
            }),
            missing_reason: NO_DATABASE.into(),
            external: None,
            policy: &policy,
            ignores: &ignores,
            today: NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
        };
        let mut summary = CheckSummary::default();
        let findings = find(&mut image, &check, None, &mut summary).unwrap();
        judge(&mut image, findings, &check, &mut summary);
        let status = image.vulnerabilities.as_ref().unwrap();
        assert!(status.scanned);
        assert_eq!(status.not_matched.len(), 3, "{:?}", status.not_matched);
        assert_eq!(
            (status.database_built.as_deref(), status.database_age_days),
            (Some("2026-12-01"), Some(6))
        );
        let [warning] = image.warnings.as_slice() else {
            panic!("{:?}", image.warnings)
        };
        assert_eq!(
            warning.message,
            "3 not matched against vulnerability data: 2 distribution without OSV data \
             (bash 5.2.26-1.fc39, glibc 2.38-16.fc39); 1 version the ecosystem's order cannot \
             read (example.com/tool (devel)) (all in the JSON report's vulnerabilities.not_matched)"
        );
    }
}
