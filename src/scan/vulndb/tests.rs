//! Tests of the database read from `--db` inputs and of index building; the downloads are
//! tested against a local HTTP server in `tests/integration/vulndb.rs`.

use std::io::{Cursor, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;

use super::index::{self, Source};
use super::*;

/// PYSEC-2023-74 from pypa/advisory-database (requests, CVE-2023-32681), the fixture the
/// matcher's tests read too (tests/fixtures/scan/osv, prose left out).
const PYSEC_2023_74: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/scan/osv/PYSEC-2023-74.json"
));

/// GHSA-c2qf-rxjj-qqgw from github/advisory-database (npm semver, CVE-2022-25883), prose
/// left out; `summary` kept to check that records come back whole.
const GHSA_C2QF_RXJJ_QQGW: &str = r#"{
  "schema_version": "1.4.0",
  "id": "GHSA-c2qf-rxjj-qqgw",
  "modified": "2023-07-10T22:57:56Z",
  "published": "2023-06-21T06:30:28Z",
  "aliases": ["CVE-2022-25883"],
  "summary": "semver vulnerable to Regular Expression Denial of Service",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"}],
  "affected": [
    {"package": {"ecosystem": "npm", "name": "semver"},
     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "7.0.0"}, {"fixed": "7.5.2"}]}]},
    {"package": {"ecosystem": "npm", "name": "semver"},
     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "5.7.2"}]}]}
  ],
  "database_specific": {"cwe_ids": ["CWE-1333"], "severity": "MODERATE"}
}"#;

/// Written in the shape of osv.dev's Debian records: one record, one release each.
fn debian(id: &str, release: &str, fixed: &str) -> String {
    format!(
        r#"{{"id": "{id}", "modified": "2024-03-01T10:00:00Z", "upstream": ["CVE-2023-5363"],
            "affected": [{{"package": {{"ecosystem": "Debian:{release}", "name": "openssl"}},
              "ranges": [{{"type": "ECOSYSTEM", "events": [{{"introduced": "0"}}, {{"fixed": "{fixed}"}}]}}]}}]}}"#
    )
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        writer.start_file(*name, stored).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// The real-shaped records, one written record per form real data lacks, and entries that
/// are not records.
fn sample_entries() -> Vec<(&'static str, Vec<u8>)> {
    let withdrawn = r#"{"id": "GHSA-wwww-wwww-wwww", "modified": "2024-02-01T00:00:00Z",
        "withdrawn": "2024-02-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "npm", "name": "semver"}}]}"#;
    let unknown_fields = r#"{"id": "TEST-UNKNOWN", "modified": "2025-01-02T03:04:05.6Z",
        "schema_version": "9.9", "new_field": {"a": [1, 2]},
        "affected": [{"package": {"ecosystem": "Go", "name": "golang.org/x/net", "extra": 1},
          "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}], "new": true}]}"#;
    let pyyaml = r#"{"id": "TEST-PYYAML", "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "PyYAML"}}]}"#;
    vec![
        ("PYSEC-2023-74.json", PYSEC_2023_74.into()),
        ("GHSA-c2qf-rxjj-qqgw.json", GHSA_C2QF_RXJJ_QQGW.into()),
        (
            "DEBIAN-12.json",
            debian("DSA-TEST-12", "12", "3.0.11-1~deb12u2").into(),
        ),
        (
            "DEBIAN-11.json",
            debian("DSA-TEST-11", "11", "1.1.1w-0+deb11u1").into(),
        ),
        ("withdrawn.json", withdrawn.into()),
        ("unknown.json", unknown_fields.into()),
        ("pyyaml.json", pyyaml.into()),
        ("garbage.json", b"{\"id\": 7, \"modified\"".to_vec()),
        ("list.json", b"[]".to_vec()),
    ]
}

fn sample_zip() -> Vec<u8> {
    let entries = sample_entries();
    let borrowed: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    zip_of(&borrowed)
}

fn ids(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

/// Every file under `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

#[test]
fn records_are_found_by_exact_ecosystem_and_name() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("osv.zip");
    std::fs::write(&input, sample_zip()).unwrap();
    let db = VulnDb::from_path(&input, &dir.path().join("vulndb")).unwrap();

    assert_eq!(
        ids(&db.records("PyPI", "requests").unwrap()),
        ["PYSEC-2023-74"]
    );
    let semver = db.records("npm", "semver").unwrap();
    assert_eq!(ids(&semver), ["GHSA-c2qf-rxjj-qqgw"]);
    assert_eq!(semver[0].affected.len(), 2);
    assert_eq!(
        ids(&db.records("Debian:12", "openssl").unwrap()),
        ["DSA-TEST-12"]
    );
    assert_eq!(
        ids(&db.records("Debian:11", "openssl").unwrap()),
        ["DSA-TEST-11"]
    );
    assert!(db.records("Debian", "openssl").unwrap().is_empty());
    assert!(db.records("Debian:13", "openssl").unwrap().is_empty());
    assert!(db.records("npm", "Semver").unwrap().is_empty());
    assert!(db.records("PyPI", "semver").unwrap().is_empty());
    assert_eq!(
        ids(&db.records("Go", "golang.org/x/net").unwrap()),
        ["TEST-UNKNOWN"]
    );

    let summary = db.summary();
    assert_eq!(
        (summary.records, summary.withdrawn, summary.skipped),
        (6, 1, 2)
    );
    assert_eq!(
        db.ecosystems(),
        ["Debian:11", "Debian:12", "Go", "PyPI", "npm"]
    );
    assert_eq!(db.modified(), Some("2025-01-02T03:04:05.6Z"));
}

#[test]
fn pypi_names_match_whatever_their_spelling_in_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("osv.zip");
    std::fs::write(&input, sample_zip()).unwrap();
    let db = VulnDb::from_path(&input, &dir.path().join("vulndb")).unwrap();
    for asked in ["pyyaml", "PyYAML", "py_yaml", "py.yaml"] {
        let expected: &[&str] = if asked.contains(['_', '.']) {
            &[]
        } else {
            &["TEST-PYYAML"]
        };
        assert_eq!(
            ids(&db.records("PyPI", asked).unwrap()),
            expected,
            "{asked}"
        );
    }
}

#[test]
fn records_come_back_whole_for_reports() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("osv.zip");
    std::fs::write(&input, sample_zip()).unwrap();
    let db = VulnDb::from_path(&input, &dir.path().join("vulndb")).unwrap();
    let json = db.record_json("GHSA-c2qf-rxjj-qqgw").unwrap().unwrap();
    assert_eq!(
        json["summary"],
        "semver vulnerable to Regular Expression Denial of Service"
    );
    assert!(db.record_json("GHSA-wwww-wwww-wwww").unwrap().is_none());
    assert!(db.record_json("nope").unwrap().is_none());
}

#[test]
fn the_same_content_is_indexed_once_and_other_content_again() {
    let dir = tempfile::tempdir().unwrap();
    let vulndb = dir.path().join("vulndb");
    let (first, second) = (dir.path().join("a.zip"), dir.path().join("b.zip"));
    std::fs::write(&first, sample_zip()).unwrap();
    std::fs::write(&second, sample_zip()).unwrap();
    let one = VulnDb::from_path(&first, &vulndb).unwrap();
    let built = std::fs::metadata(one.path()).unwrap().modified().unwrap();
    let two = VulnDb::from_path(&second, &vulndb).unwrap();
    assert_eq!(one.version(), two.version());
    assert_eq!(one.path(), two.path());
    assert_eq!(
        std::fs::metadata(two.path()).unwrap().modified().unwrap(),
        built
    );
    std::fs::write(&second, zip_of(&[("a.json", PYSEC_2023_74.as_bytes())])).unwrap();
    let three = VulnDb::from_path(&second, &vulndb).unwrap();
    assert_ne!(three.version(), one.version());
    assert_eq!(three.summary().records, 1);
}

#[test]
fn a_folder_is_read_recursively_and_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("records");
    std::fs::create_dir_all(input.join("PyPI/requests")).unwrap();
    std::fs::create_dir_all(input.join("npm")).unwrap();
    std::fs::write(
        input.join("PyPI/requests/PYSEC-2023-74.json"),
        PYSEC_2023_74,
    )
    .unwrap();
    std::fs::write(
        input.join("npm/GHSA-c2qf-rxjj-qqgw.json"),
        GHSA_C2QF_RXJJ_QQGW,
    )
    .unwrap();
    std::fs::write(input.join("npm/broken.json"), "{").unwrap();
    std::fs::write(input.join("README.md"), "not a record").unwrap();
    let before = listing(&input);
    let vulndb = dir.path().join("vulndb");

    let db = VulnDb::from_path(&input, &vulndb).unwrap();
    assert_eq!(
        ids(&db.records("PyPI", "requests").unwrap()),
        ["PYSEC-2023-74"]
    );
    assert_eq!(
        ids(&db.records("npm", "semver").unwrap()),
        ["GHSA-c2qf-rxjj-qqgw"]
    );
    assert_eq!((db.summary().records, db.summary().skipped), (2, 1));
    let again = VulnDb::from_path(&input, &vulndb).unwrap();
    assert_eq!(again.version(), db.version());
    assert_eq!(listing(&input), before);
    assert_eq!(listing(&vulndb), [format!("local/{}.sqlite", db.version())]);

    std::fs::write(input.join("npm/broken.json"), PYSEC_2023_74).unwrap();
    let changed = VulnDb::from_path(&input, &vulndb).unwrap();
    assert_ne!(changed.version(), db.version());
}

#[test]
fn damaged_zips_are_errors_that_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let vulndb = dir.path().join("vulndb");
    let good = sample_zip();
    let input = dir.path().join("osv.zip");

    let not_a_zip: &[u8] = b"<html>Service Unavailable</html>";
    std::fs::write(&input, not_a_zip).unwrap();
    let error = VulnDb::from_path(&input, &vulndb).unwrap_err();
    assert!(matches!(&error, VulnDbError::Zip { what, .. } if what.contains("osv.zip")));

    for cut in [good.len() / 2, good.len() - 10, 22, 0] {
        std::fs::write(&input, &good[..cut]).unwrap();
        let error = VulnDb::from_path(&input, &vulndb).unwrap_err();
        assert!(
            matches!(error, VulnDbError::Zip { .. }),
            "cut at {cut}: {error}"
        );
    }

    // A byte of the first entry's stored data flipped: the CRC no longer matches.
    let mut flipped = good.clone();
    let at = flipped
        .windows(b"PYSEC-2023-74\"".len())
        .position(|w| w == b"PYSEC-2023-74\"")
        .unwrap();
    flipped[at] ^= 0x20;
    std::fs::write(&input, &flipped).unwrap();
    let error = VulnDb::from_path(&input, &vulndb).unwrap_err();
    assert!(
        matches!(&error, VulnDbError::ZipEntry { entry, .. } if entry == "PYSEC-2023-74.json"),
        "{error}"
    );
    assert!(listing(&vulndb).is_empty(), "{:?}", listing(&vulndb));
    assert!(VulnDb::from_path(&dir.path().join("missing.zip"), &vulndb).is_err());
}

#[test]
fn a_failed_build_leaves_no_index_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let (good, bad) = (dir.path().join("good.zip"), dir.path().join("bad.zip"));
    std::fs::write(&good, sample_zip()).unwrap();
    std::fs::write(&bad, b"PK\x03\x04 truncated").unwrap();
    let target = dir.path().join("index/x.sqlite");
    let sources = [
        Source::of_path(&good).unwrap(),
        Source::of_path(&bad).unwrap(),
    ];
    assert!(index::build(&target, "x", &sources).is_err());
    assert!(listing(&dir.path().join("index")).is_empty());
}

#[test]
fn a_record_in_two_archives_is_stored_once_the_newest_copy_kept() {
    let dir = tempfile::tempdir().unwrap();
    let older = r#"{"id": "GHSA-dup", "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "npm", "name": "old-name"}}]}"#;
    let newer = r#"{"id": "GHSA-dup", "modified": "2024-06-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "npm", "name": "new-name"}},
                     {"package": {"ecosystem": "PyPI", "name": "new-name"}}]}"#;
    let (a, b) = (dir.path().join("npm.zip"), dir.path().join("PyPI.zip"));
    std::fs::write(&a, zip_of(&[("d.json", newer.as_bytes())])).unwrap();
    std::fs::write(&b, zip_of(&[("d.json", older.as_bytes())])).unwrap();
    let target = dir.path().join("x.sqlite");
    let sources = [Source::of_path(&b).unwrap(), Source::of_path(&a).unwrap()];
    let summary = index::build(&target, "x", &sources).unwrap();
    assert_eq!(summary.records, 1);
    let db = VulnDb::open_index(&target).unwrap();
    assert!(db.records("npm", "old-name").unwrap().is_empty());
    assert_eq!(ids(&db.records("npm", "new-name").unwrap()), ["GHSA-dup"]);
    assert_eq!(ids(&db.records("PyPI", "new-name").unwrap()), ["GHSA-dup"]);
}

#[test]
fn a_folder_without_a_database_opens_as_none_and_a_bad_pointer_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(VulnDb::open(&dir.path().join("absent")).unwrap().is_none());
    assert!(VulnDb::open(dir.path()).unwrap().is_none());
    for pointer in ["../../etc/passwd", "", "zz"] {
        std::fs::write(dir.path().join("current"), pointer).unwrap();
        assert!(
            matches!(VulnDb::open(dir.path()), Err(VulnDbError::Broken { .. })),
            "{pointer:?}"
        );
    }
    std::fs::write(dir.path().join("current"), "abc123\n").unwrap();
    let error = VulnDb::open(dir.path()).unwrap_err();
    assert!(error.to_string().contains("missing"), "{error}");
}

#[test]
fn an_index_that_is_not_sqlite_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("index")).unwrap();
    std::fs::write(dir.path().join("current"), "abc123\n").unwrap();
    std::fs::write(dir.path().join("index/abc123.sqlite"), "garbage").unwrap();
    assert!(VulnDb::open(dir.path()).is_err());
}

#[test]
fn the_age_counts_from_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("osv.zip");
    std::fs::write(&input, sample_zip()).unwrap();
    let db = VulnDb::from_path(&input, &dir.path().join("vulndb")).unwrap();
    let built = db.built_at();
    let day = Duration::from_secs(86_400);
    assert_eq!(db.age(built + 2 * day), 2 * day);
    assert_eq!(db.age(built - day), Duration::ZERO);
    assert!(!db.is_older_than(built + 5 * day, 5));
    assert!(db.is_older_than(built + 5 * day + Duration::from_secs(1), 5));
    assert!(!db.is_older_than(built, u64::MAX));
}
