//! The vulnerability check of scanned images: each image's packages matched against the
//! database (and, when chosen, Trivy's or Grype's findings merged in), then the ignore files,
//! the report level and the gate applied. Without a database every image is marked "not
//! scanned" (never a silent pass: with a gate on, that ends the run with exit 4).

use chrono::NaiveDate;

use super::ScanError;
use super::external::{self, ImageInput, Tool};
use super::ignore::IgnoreList;
use super::matcher::{RecordSource, match_image};
use super::model::{Finding, ImageInventory, MatchStatus};
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
    image.vulnerabilities = Some(MatchStatus {
        scanned: true,
        reason: None,
        database: Some(database.version.clone()),
        database_modified: database.modified.clone(),
        ignored: 0,
        below_level: 0,
    });
    Ok(findings)
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
        ignored: 0,
        below_level: 0,
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
}

/// The database and ignore files a check reads, as the settings name them.
pub struct Loaded {
    /// `None`: no database has been set up.
    pub database: Option<VulnDb>,
    pub ignores: IgnoreList,
    /// Why there is no database, or that it is old, for people.
    pub warnings: Vec<String>,
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
        Ok(Self {
            database,
            ignores,
            warnings,
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
            }),
            missing_reason: NO_DATABASE.into(),
            external: settings.scanner.external(),
            policy,
            ignores: &self.ignores,
            today,
        }
    }
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
            Some(existing) => {
                for who in other.found_by {
                    if !existing.found_by.contains(&who) {
                        existing.found_by.push(who);
                    }
                }
            }
            None => findings.push(other),
        }
    }
}

fn same_issue(a: &Finding, b: &Finding) -> bool {
    let ids = |f: &Finding| -> Vec<String> {
        std::iter::once(&f.id)
            .chain(&f.aliases)
            .map(|id| id.to_ascii_uppercase())
            .collect()
    };
    let theirs = ids(b);
    ids(a).iter().any(|id| theirs.contains(id))
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
}
