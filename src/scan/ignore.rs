//! Ignore files: the findings a team has accepted, each with its reason and, optionally, the
//! day the acceptance ends.
//!
//! `.buildoptignore` is TOML, one `[[ignore]]` table per entry:
//!
//! ```toml
//! [[ignore]]
//! id = "CVE-2023-1234"                 # the finding's id or any of its aliases (not `related`)
//! reason = "not reachable: we never parse untrusted certificates"   # required
//! expires = 2027-01-31                 # optional; the last day the entry applies
//! package = "openssl"                  # optional; the installed or the source package
//! image = "api"                        # optional; the image reference, repository or its last part
//! ```
//!
//! `.trivyignore` is read too, in Trivy's line format: an id per line, `#` comments, and an
//! optional `exp:YYYY-MM-DD` after the id. As in Trivy, that date is when the entry stops
//! applying (it applies on the days before it). An expired entry of either file no longer
//! covers anything and is reported as expired.

use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate};
use serde::Deserialize;

use super::model::Finding;

/// The name of buildopt's own ignore file, at the workspace root by default.
pub const BUILDOPT_IGNORE: &str = ".buildoptignore";
/// Trivy's ignore file, read too when present.
pub const TRIVY_IGNORE: &str = ".trivyignore";

/// One accepted finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreEntry {
    /// The id as written (matched without regard to ASCII case).
    pub id: String,
    /// Why it is accepted (always present in `.buildoptignore`; `.trivyignore` has none).
    pub reason: Option<String>,
    /// The date as written: `expires` (the last day it applies) or Trivy's `exp:` (the first
    /// day it no longer does).
    pub expires: Option<NaiveDate>,
    /// The last day the entry applies, whichever file it came from.
    pub last_day: Option<NaiveDate>,
    /// Only findings in this package (installed or source name).
    pub package: Option<String>,
    /// Only findings in this image.
    pub image: Option<String>,
    /// The file and 1-based line that holds the entry.
    pub file: PathBuf,
    pub line: usize,
}

impl IgnoreEntry {
    /// Whether the entry still applies on `today`.
    pub fn in_force_on(&self, today: NaiveDate) -> bool {
        self.last_day.is_none_or(|last| today <= last)
    }

    /// Whether the entry names this finding (by id or alias, within its package scope); its
    /// expiry is not considered here. An umbrella's `related` CVEs are issues of their own:
    /// accepting one of them accepts nothing about the others, so it does not cover it.
    pub fn covers(&self, finding: &Finding) -> bool {
        let id_matches = std::iter::once(&finding.id)
            .chain(&finding.aliases)
            .any(|id| id.eq_ignore_ascii_case(&self.id));
        let package_matches = self.package.as_deref().is_none_or(|package| {
            finding.package == package || finding.source_name.as_deref() == Some(package)
        });
        id_matches && package_matches
    }

    /// Whether the entry applies to the image `reference` (`ghcr.io/acme/api:1.2`): no scope,
    /// or the scope is the reference, its repository, or the repository's last part (`api`).
    pub fn applies_to_image(&self, reference: &str) -> bool {
        let Some(scope) = self.image.as_deref() else {
            return true;
        };
        let repository = repository_of(reference);
        let last = repository.rsplit('/').next().unwrap_or(repository);
        scope == reference || scope == repository || scope == last
    }
}

/// `ghcr.io/acme/api:1.2@sha256:...` → `ghcr.io/acme/api` (a registry port is kept).
fn repository_of(reference: &str) -> &str {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let name_start = without_digest.rfind('/').map_or(0, |slash| slash + 1);
    match without_digest[name_start..].find(':') {
        Some(colon) => &without_digest[..name_start + colon],
        None => without_digest,
    }
}

/// Every entry of the ignore files, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreList {
    pub entries: Vec<IgnoreEntry>,
}

/// An ignore file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Malformed {
        path: PathBuf,
        /// 1-based; the entry's or the offending value's line.
        line: usize,
        message: String,
    },
}

impl IgnoreList {
    /// Reads `buildoptignore` (TOML) and `trivyignore` (Trivy's line format). A missing file
    /// is no entries, except a `buildoptignore` the user named (`required`): a typo in its
    /// path must not pass silently.
    pub fn load(
        buildoptignore: &Path,
        required: bool,
        trivyignore: &Path,
    ) -> Result<Self, IgnoreError> {
        let mut list = Self::default();
        if let Some(text) = read_optional(buildoptignore, required)? {
            list.entries
                .extend(Self::parse_buildoptignore(&text, buildoptignore)?.entries);
        }
        if let Some(text) = read_optional(trivyignore, false)? {
            list.entries
                .extend(Self::parse_trivyignore(&text, trivyignore)?.entries);
        }
        Ok(list)
    }

    /// The entries that apply to the image `reference`.
    pub fn for_image(&self, reference: &str) -> Self {
        Self {
            entries: self
                .entries
                .iter()
                .filter(|entry| entry.applies_to_image(reference))
                .cloned()
                .collect(),
        }
    }

    /// The entries that name `finding`, in force or not.
    pub fn covering<'a>(
        &'a self,
        finding: &'a Finding,
    ) -> impl Iterator<Item = &'a IgnoreEntry> + Clone + 'a {
        self.entries.iter().filter(|entry| entry.covers(finding))
    }

    /// The entries that have expired by `today`, whether or not they cover anything.
    pub fn expired(&self, today: NaiveDate) -> impl Iterator<Item = &IgnoreEntry> {
        self.entries
            .iter()
            .filter(move |entry| !entry.in_force_on(today))
    }

    /// Parses a `.buildoptignore`; `path` names the file in errors and entries.
    pub fn parse_buildoptignore(text: &str, path: &Path) -> Result<Self, IgnoreError> {
        let text = without_bom(text);
        let malformed = |line: usize, message: String| IgnoreError::Malformed {
            path: path.to_path_buf(),
            line,
            message,
        };
        let file: RawFile = toml::from_str(text).map_err(|err| {
            let line = err.span().map_or(1, |span| line_of(text, span.start));
            malformed(line, err.message().trim().to_string())
        })?;
        let mut entries = Vec::with_capacity(file.ignore.len());
        for spanned in file.ignore {
            let line = line_of(text, spanned.span().start);
            let raw = spanned.into_inner();
            let id = checked_id(&raw.id).map_err(|message| malformed(line, message))?;
            let reason = raw.reason.trim();
            if reason.is_empty() {
                return Err(malformed(line, format!("entry {id}: the reason is empty")));
            }
            let expires = match &raw.expires {
                Some(value) => Some(
                    date_value(value.get_ref())
                        .map_err(|m| malformed(line_of(text, value.span().start), m))?,
                ),
                None => None,
            };
            entries.push(IgnoreEntry {
                id,
                reason: Some(reason.to_string()),
                expires,
                last_day: expires,
                package: non_empty(raw.package),
                image: non_empty(raw.image),
                file: path.to_path_buf(),
                line,
            });
        }
        Ok(Self { entries })
    }

    /// Parses a `.trivyignore`; `path` names the file in errors and entries.
    pub fn parse_trivyignore(text: &str, path: &Path) -> Result<Self, IgnoreError> {
        let mut entries = Vec::new();
        for (index, raw_line) in without_bom(text).lines().enumerate() {
            let line = index + 1;
            let content = raw_line.split('#').next().unwrap_or_default().trim();
            let mut tokens = content.split_whitespace();
            let Some(id) = tokens.next() else {
                continue;
            };
            let mut expires = None;
            for token in tokens {
                // Trivy reads `exp:` among the words after the id and passes over the others.
                if let Some(date) = token.strip_prefix("exp:") {
                    expires = Some(parse_date(date).map_err(|message| IgnoreError::Malformed {
                        path: path.to_path_buf(),
                        line,
                        message,
                    })?);
                }
            }
            entries.push(IgnoreEntry {
                id: id.to_string(),
                reason: None,
                expires,
                // `exp:D` stops applying on D.
                last_day: expires.map(|date| date.checked_sub_days(Days::new(1)).unwrap_or(date)),
                package: None,
                image: None,
                file: path.to_path_buf(),
                line,
            });
        }
        Ok(Self { entries })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    ignore: Vec<toml::Spanned<RawEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: String,
    reason: String,
    expires: Option<toml::Spanned<toml::Value>>,
    package: Option<String>,
    image: Option<String>,
}

fn read_optional(path: &Path, required: bool) -> Result<Option<String>, IgnoreError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|err| IgnoreError::Malformed {
                path: path.to_path_buf(),
                line: line_of_bytes(err.as_bytes(), err.utf8_error().valid_up_to()),
                message: "not UTF-8".into(),
            }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && !required => Ok(None),
        Err(source) => Err(IgnoreError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Editors on Windows may start a file with a byte-order mark; it is not part of the first id.
fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

fn checked_id(raw: &str) -> Result<String, String> {
    let id = raw.trim();
    if id.is_empty() {
        Err("the id is empty".into())
    } else if id.chars().any(char::is_whitespace) {
        Err(format!("id {id:?} contains white space"))
    } else {
        Ok(id.to_string())
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `expires` as a TOML date (`2027-01-31`) or a string (`"2027-01-31"`).
fn date_value(value: &toml::Value) -> Result<NaiveDate, String> {
    match value {
        toml::Value::String(text) => parse_date(text),
        toml::Value::Datetime(datetime) => match (datetime.date, datetime.time, datetime.offset) {
            (Some(date), None, None) => NaiveDate::from_ymd_opt(
                i32::from(date.year),
                u32::from(date.month),
                u32::from(date.day),
            )
            .ok_or_else(|| format!("expires: {datetime} is not a date")),
            _ => Err(format!(
                "expires: {datetime} is not a plain date (YYYY-MM-DD)"
            )),
        },
        other => Err(format!(
            "expires: expected a date (YYYY-MM-DD), found a {}",
            other.type_str()
        )),
    }
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let valid_shape = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    valid_shape
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| format!("{text:?} is not a date (YYYY-MM-DD)"))
}

fn line_of(text: &str, offset: usize) -> usize {
    line_of_bytes(text.as_bytes(), offset)
}

fn line_of_bytes(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::digest::Digest;
    use crate::scan::PackageType;
    use crate::scan::model::Severity;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/scan/ignore");

    fn day(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    fn buildopt(text: &str) -> Result<IgnoreList, IgnoreError> {
        IgnoreList::parse_buildoptignore(text, Path::new(".buildoptignore"))
    }

    fn malformed(text: &str) -> (usize, String) {
        match buildopt(text) {
            Err(IgnoreError::Malformed { line, message, .. }) => (line, message),
            other => panic!("expected a malformed-file error, got {other:?}"),
        }
    }

    fn finding(id: &str, aliases: &[&str], package: &str, source: Option<&str>) -> Finding {
        Finding {
            id: id.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            related: Vec::new(),
            package: package.into(),
            installed_version: "1".into(),
            kind: PackageType::Deb,
            purl: format!("pkg:deb/debian/{package}@1"),
            source_name: source.map(str::to_string),
            source_version: None,
            fixed_version: None,
            fixed_versions: Vec::new(),
            severity: Severity::High,
            score: None,
            summary: None,
            path: "var/lib/dpkg/status".into(),
            layer: Digest::of(b"l"),
            dockerfile: None,
            base_image: None,
            found_by: vec!["buildopt".into()],
            new: None,
            fails_gate: false,
        }
    }

    #[test]
    fn the_fixture_buildoptignore_parses_with_lines_and_scopes() {
        let list = IgnoreList::load(
            &Path::new(FIXTURES).join("buildoptignore.toml"),
            true,
            Path::new("/nonexistent/.trivyignore"),
        )
        .unwrap();
        assert_eq!(list.entries.len(), 3, "{list:#?}");
        let first = &list.entries[0];
        assert_eq!(first.id, "CVE-2023-5678");
        assert_eq!(first.expires, Some(day("2027-01-31")));
        assert_eq!(first.package.as_deref(), Some("openssl"));
        assert!(first.reason.as_deref().unwrap().contains("certificates"));
        assert_eq!(list.entries[1].expires, Some(day("2026-06-30")));
        assert_eq!(list.entries[2].image.as_deref(), Some("api"));
        assert!(list.entries.iter().all(|e| e.line > 1));
    }

    #[test]
    fn the_fixture_trivyignore_reads_ids_comments_and_expiry() {
        let path = Path::new(FIXTURES).join("trivyignore");
        let list =
            IgnoreList::load(Path::new("/nonexistent/.buildoptignore"), false, &path).unwrap();
        let ids: Vec<&str> = list.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "CVE-2018-14618",
                "CVE-2019-14697",
                "GHSA-8489-44mv-ggj8",
                "CVE-2022-0001"
            ]
        );
        let expiring = &list.entries[1];
        assert_eq!(expiring.expires, Some(day("2023-01-01")));
        // Trivy's exp: is the first day it no longer applies.
        assert!(expiring.in_force_on(day("2022-12-31")));
        assert!(!expiring.in_force_on(day("2023-01-01")));
        assert_eq!(list.entries[3].expires, Some(day("2030-02-28")));
    }

    #[test]
    fn trivyignore_comments_blank_lines_and_other_words() {
        let text = "# header\n\n   \nCVE-1 # inline comment exp:2000-01-01\n\tCVE-2\texp:2030-01-01 note\r\n#CVE-3\n";
        let list = IgnoreList::parse_trivyignore(text, Path::new(".trivyignore")).unwrap();
        assert_eq!(list.entries.len(), 2);
        assert_eq!(list.entries[0].expires, None);
        assert_eq!(list.entries[0].line, 4);
        assert_eq!(list.entries[1].expires, Some(day("2030-01-01")));
        assert_eq!(list.entries[1].line, 5);
    }

    #[test]
    fn trivyignore_bad_expiry_names_file_and_line() {
        for bad in [
            "exp:2023-13-01",
            "exp:",
            "exp:tomorrow",
            "exp:2023-1-1",
            "exp:99999-01-01",
        ] {
            let text = format!("CVE-1\nCVE-2 {bad}\n");
            let err =
                IgnoreList::parse_trivyignore(&text, Path::new("ci/.trivyignore")).expect_err(bad);
            assert!(err.to_string().starts_with("ci/.trivyignore:2: "), "{err}");
        }
    }

    #[test]
    fn buildoptignore_expiry_is_inclusive_of_its_last_day() {
        let list =
            buildopt("[[ignore]]\nid = \"CVE-1\"\nreason = \"r\"\nexpires = \"2027-01-31\"\n")
                .unwrap();
        let entry = &list.entries[0];
        assert!(entry.in_force_on(day("2027-01-30")));
        assert!(entry.in_force_on(day("2027-01-31")));
        assert!(!entry.in_force_on(day("2027-02-01")));
        assert_eq!(list.expired(day("2027-02-01")).count(), 1);
        assert_eq!(list.expired(day("2027-01-31")).count(), 0);
        let forever = buildopt("[[ignore]]\nid = \"CVE-1\"\nreason = \"r\"\n").unwrap();
        assert!(forever.entries[0].in_force_on(day("9999-12-31")));
    }

    #[test]
    fn an_entry_matches_by_id_or_alias_within_its_package() {
        let list = buildopt(
            "[[ignore]]\nid = \"ghsa-xxxx-yyyy-zzzz\"\nreason = \"r\"\n\
             [[ignore]]\nid = \"CVE-2\"\nreason = \"r\"\npackage = \"openssl\"\n",
        )
        .unwrap();
        let by_alias = finding("CVE-1", &["GHSA-xxxx-yyyy-zzzz"], "curl", None);
        assert_eq!(list.covering(&by_alias).count(), 1);
        let binary_of_source = finding("CVE-2", &[], "libssl3", Some("openssl"));
        assert_eq!(list.covering(&binary_of_source).count(), 1);
        let other_package = finding("CVE-2", &[], "curl", Some("curl"));
        assert_eq!(list.covering(&other_package).count(), 0);
        let unrelated = finding("CVE-3", &["CVE-33"], "openssl", None);
        assert_eq!(list.covering(&unrelated).count(), 0);
    }

    #[test]
    fn an_image_scope_matches_reference_repository_or_name() {
        let list = buildopt(
            "[[ignore]]\nid = \"CVE-1\"\nreason = \"r\"\nimage = \"api\"\n\
             [[ignore]]\nid = \"CVE-2\"\nreason = \"r\"\nimage = \"localhost:5000/acme/web\"\n\
             [[ignore]]\nid = \"CVE-3\"\nreason = \"r\"\n",
        )
        .unwrap();
        let ids = |reference: &str| -> Vec<String> {
            list.for_image(reference)
                .entries
                .into_iter()
                .map(|e| e.id)
                .collect()
        };
        assert_eq!(ids("ghcr.io/acme/api:1.2"), ["CVE-1", "CVE-3"]);
        assert_eq!(ids("api"), ["CVE-1", "CVE-3"]);
        assert_eq!(
            ids("localhost:5000/acme/web:2@sha256:abc"),
            ["CVE-2", "CVE-3"]
        );
        assert_eq!(ids("acme/apis:1"), ["CVE-3"]);
        assert_eq!(repository_of("localhost:5000/web"), "localhost:5000/web");
    }

    #[test]
    fn an_umbrella_is_covered_by_its_own_ids_not_by_one_of_its_cves() {
        let mut dsa = finding("DSA-9999-1", &["DLA-9999-1"], "libssl3", Some("openssl"));
        dsa.related = vec!["CVE-2099-2001".into(), "CVE-2099-2002".into()];
        let path = Path::new(".trivyignore");
        let list = IgnoreList::parse_trivyignore("CVE-2099-2001\ndla-9999-1\n", path).unwrap();
        assert!(!list.entries[0].covers(&dsa));
        assert!(list.entries[1].covers(&dsa));
    }

    #[test]
    fn a_malformed_buildoptignore_names_the_line() {
        let (line, message) = malformed("[[ignore]]\nid = \"CVE-1\"\n");
        assert_eq!(line, 1, "{message}");
        assert!(message.contains("reason"), "{message}");
        let (line, message) = malformed("[[ignore]]\nid = \"CVE-1\"\nreason = \"  \"\n");
        assert_eq!(line, 1);
        assert!(message.contains("reason is empty"), "{message}");
        let (line, message) = malformed(
            "# c\n[[ignore]]\nid = \"CVE-1\"\nreason = \"r\"\nexpires = \"2027-02-30\"\n",
        );
        assert_eq!(line, 5);
        assert!(message.contains("not a date"), "{message}");
        let (line, message) =
            malformed("[[ignore]]\nid = \"CVE-1\"\nreason = \"r\"\nexpire = 2027-01-01\n");
        assert_eq!(line, 4);
        assert!(message.contains("unknown field `expire`"), "{message}");
        let (line, _) = malformed(
            "[[ignore]]\nid = \"CVE-1\"\nreason = \"r\"\nexpires = 2027-01-01T10:00:00Z\n",
        );
        assert_eq!(line, 4);
        let (line, _) =
            malformed("[[ignore]]\nid = \"CVE-1\"\nreason = \"r\"\nexpires = 20270101\n");
        assert_eq!(line, 4);
        let (line, _) = malformed("[[ignore]]\nid = 17\nreason = \"r\"\n");
        assert_eq!(line, 2);
        let (_, message) = malformed("[[ignore]]\nid = \"CVE 1\"\nreason = \"r\"\n");
        assert!(message.contains("white space"), "{message}");
        let (line, _) = malformed("[[ignore]]\nid = \"CVE-1\"\nreason = \"r\n");
        assert_eq!(line, 3);
        let (line, _) = malformed("ignore = \"CVE-1\"\n");
        assert_eq!(line, 1);
    }

    #[test]
    fn garbage_truncated_and_huge_inputs_are_errors_or_entries_never_panics() {
        let valid = "[[ignore]]\nid = \"CVE-1\"\nreason = \"r\"\nexpires = 2027-01-31\n";
        for cut in 0..valid.len() {
            let _ = buildopt(&valid[..cut]);
            let _ = IgnoreList::parse_trivyignore(&valid[..cut], Path::new(".trivyignore"));
        }
        for garbage in [
            "\u{0}\u{1}\u{2}",
            "[[[[",
            "}}}}",
            "exp:",
            "\u{feff}CVE-1",
            "# only",
        ] {
            let _ = buildopt(garbage);
            let _ = IgnoreList::parse_trivyignore(garbage, Path::new(".trivyignore"));
        }
        let bom = IgnoreList::parse_trivyignore("\u{feff}CVE-1\n", Path::new(".trivyignore"));
        assert_eq!(bom.unwrap().entries[0].id, "CVE-1");
        let bom = buildopt("\u{feff}[[ignore]]\nid = \"CVE-1\"\nreason = \"r\"\n");
        assert_eq!(bom.unwrap().entries[0].id, "CVE-1");
        let huge = format!(
            "[[ignore]]\nid = \"{}\"\nreason = \"r\"\n",
            "C".repeat(1 << 20)
        );
        assert_eq!(buildopt(&huge).unwrap().entries[0].id.len(), 1 << 20);
        let many = "CVE-1 exp:2030-01-01\n".repeat(50_000);
        let list = IgnoreList::parse_trivyignore(&many, Path::new(".trivyignore")).unwrap();
        assert_eq!(list.entries.len(), 50_000);
        let far =
            buildopt("[[ignore]]\nid = \"CVE-1\"\nreason = \"r\"\nexpires = 9999-12-31\n").unwrap();
        assert!(far.entries[0].in_force_on(day("9999-12-31")));
        let earliest = IgnoreList::parse_trivyignore("CVE-1 exp:0000-01-01\n", Path::new("t"));
        assert!(earliest.is_ok(), "{earliest:?}");
    }

    #[test]
    fn missing_files_are_empty_unless_required_and_bad_bytes_are_named() {
        let dir = std::env::temp_dir().join(format!("buildopt-ignore-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("absent");
        let empty = IgnoreList::load(&missing, false, &missing).unwrap();
        assert!(empty.entries.is_empty());
        let err = IgnoreList::load(&missing, true, &missing).unwrap_err();
        assert!(matches!(err, IgnoreError::Read { .. }), "{err}");
        assert!(err.to_string().contains("absent"), "{err}");
        let latin1 = dir.join("latin1");
        std::fs::write(&latin1, b"CVE-1\n# caf\xe9\n").unwrap();
        let err = IgnoreList::load(&missing, false, &latin1).unwrap_err();
        assert!(err.to_string().ends_with("latin1:2: not UTF-8"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
