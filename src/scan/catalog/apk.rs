//! apk: `lib/apk/db/installed` (and `usr/lib/apk/db/installed`, where newer Alpine keeps it).
//!
//! Owns: reading apk's installed database, the "index format" of the Alpine wiki's "Apk spec"
//! page (<https://wiki.alpinelinux.org/wiki/Apk_spec>, "Index Format" and "Installed Database"):
//! one record per package, records separated by a blank line, each line a one-letter field, a
//! colon and the value (`P:` name, `V:` version, `A:` architecture, `o:` origin, that is the
//! source package, `L:` licence; file lines `F:`/`R:`/`Z:`... are not needed here).
//!
//! Rules chosen here, as in [`super::dpkg`]: a line that is not `<letter>:<value>` spoils its
//! record, which is dropped, and the other records are kept; a file where no package parsed and
//! some line was malformed is an error naming that line. A record without `P:` or `V:` is
//! skipped. `source_name` is the origin when it differs from the name.
//!
//! Licences follow syft (`syft/pkg/cataloger/alpine/package.go`): an SPDX expression
//! (`MIT AND BSD-2-Clause`) is kept whole as one licence, while the older space-separated list
//! (`GPL-2.0-or-later MIT`) gives one licence per word. Syft tells them apart with an SPDX
//! parser; here a value is an expression when it has an operator word (`AND`, `OR`, `WITH`) or
//! a parenthesis, which separates the two forms apk databases hold.

use crate::scan::package::{FileFacts, Found, PackageType};

const DATABASES: &[&str] = &["lib/apk/db/installed", "usr/lib/apk/db/installed"];

/// Whether `path` is apk's installed database.
pub fn wants(path: &str) -> bool {
    DATABASES.contains(&path)
}

/// The packages of an installed database.
pub fn parse(bytes: &[u8]) -> Result<FileFacts, String> {
    Ok(FileFacts::Packages {
        database: true,
        packages: parse_records(&String::from_utf8_lossy(bytes))?,
    })
}

/// One record's fields by letter, and the 1-based number of its first malformed line, if any.
#[derive(Default)]
struct Record {
    fields: Vec<(char, String)>,
    malformed_line: Option<usize>,
}

impl Record {
    /// The first non-empty value of a field.
    fn field(&self, letter: char) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| *field == letter)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    /// Adds a field; anything else marks the record malformed.
    fn add_line(&mut self, number: usize, line: &str) {
        if self.malformed_line.is_some() {
            return;
        }
        let mut chars = line.chars();
        match (chars.next(), chars.next()) {
            (Some(letter), Some(':')) if letter.is_ascii_alphabetic() => {
                self.fields
                    .push((letter, chars.as_str().trim().to_string()));
            }
            _ => self.malformed_line = Some(number),
        }
    }

    /// Whether no line has been added yet.
    fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.malformed_line.is_none()
    }
}

/// Blank-line separated records; CRLF line ends are accepted.
fn split_records(text: &str) -> Vec<Record> {
    let mut records = Vec::new();
    let mut current = Record::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !current.is_empty() {
                records.push(std::mem::take(&mut current));
            }
        } else {
            current.add_line(index + 1, line);
        }
    }
    if !current.is_empty() {
        records.push(current);
    }
    records
}

/// The packages of the database's text (see the module doc for malformed records).
fn parse_records(text: &str) -> Result<Vec<Found>, String> {
    let records = split_records(text);
    let packages: Vec<Found> = records
        .iter()
        .filter(|record| record.malformed_line.is_none())
        .filter_map(package_of)
        .collect();
    match records.iter().find_map(|record| record.malformed_line) {
        Some(line) if packages.is_empty() => {
            Err(format!("line {line} is not a `<letter>:<value>` line"))
        }
        _ => Ok(packages),
    }
}

/// The package a record describes; `None` without `P:` or `V:`.
fn package_of(record: &Record) -> Option<Found> {
    let name = record.field('P')?;
    let mut found = Found::new(PackageType::Apk, name, record.field('V')?);
    found.arch = record.field('A').map(str::to_string);
    found.source_name = record
        .field('o')
        .filter(|origin| *origin != name)
        .map(str::to_string);
    found.licenses = record.field('L').map(license_names).unwrap_or_default();
    Some(found)
}

/// An SPDX expression whole, else each word of an old space-separated list, each once.
fn license_names(value: &str) -> Vec<String> {
    let is_expression = value.contains(['(', ')'])
        || value
            .split_whitespace()
            .any(|word| ["AND", "OR", "WITH"].contains(&word));
    if is_expression {
        return vec![value.to_string()];
    }
    let mut names: Vec<String> = Vec::new();
    for word in value.split_whitespace() {
        if !names.iter().any(|name| name == word) {
            names.push(word.to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTALLED: &[u8] = include_bytes!("../../../tests/fixtures/scan/catalog/apk/installed");

    fn packages(bytes: &[u8]) -> Vec<Found> {
        match parse(bytes) {
            Ok(FileFacts::Packages {
                database: true,
                packages,
            }) => packages,
            other => panic!("expected a package database, got {other:?}"),
        }
    }

    fn names(packages: &[Found]) -> Vec<&str> {
        packages.iter().map(|found| found.name.as_str()).collect()
    }

    #[test]
    fn wants_both_database_locations_only() {
        assert!(wants("lib/apk/db/installed"));
        assert!(wants("usr/lib/apk/db/installed"));
        assert!(!wants("lib/apk/db/triggers"));
        assert!(!wants("etc/apk/world"));
        assert!(!wants("opt/lib/apk/db/installed"));
    }

    #[test]
    fn reads_each_record_of_the_database() {
        let packages = packages(INSTALLED);
        assert_eq!(
            names(&packages),
            [
                "musl",
                "busybox",
                "libcrypto3",
                "ssl_client",
                "scanelf",
                "ca-certificates-bundle"
            ]
        );
        let libcrypto = &packages[2];
        assert_eq!(libcrypto.version, "3.1.4-r5");
        assert_eq!(libcrypto.arch.as_deref(), Some("x86_64"));
        assert_eq!(libcrypto.source_name.as_deref(), Some("openssl"));
        assert_eq!(packages[0].source_name, None, "musl's origin is itself");
        assert_eq!(packages[3].source_name.as_deref(), Some("busybox"));
    }

    #[test]
    fn expressions_stay_whole_and_old_lists_are_split() {
        let packages = packages(INSTALLED);
        assert_eq!(packages[0].licenses, ["MIT"]);
        assert_eq!(packages[5].licenses, ["MPL-2.0 AND MIT"]);
        assert_eq!(packages[4].licenses, ["GPL-2.0-only"]);
        assert_eq!(
            license_names("GPL-2.0-or-later MIT MIT"),
            ["GPL-2.0-or-later", "MIT"]
        );
        assert_eq!(
            license_names("(MIT OR Apache-2.0)"),
            ["(MIT OR Apache-2.0)"]
        );
        assert_eq!(license_names(""), Vec::<String>::new());
    }

    #[test]
    fn records_without_name_or_version_are_skipped() {
        let packages = packages(b"P:a\n\nV:1\n\nP:b\nV:\n\nP:c\nV:3\r\n\r\n\r\n");
        assert_eq!(names(&packages), ["c"]);
        assert_eq!(packages[0].version, "3");
    }

    #[test]
    fn an_empty_database_has_no_packages() {
        assert_eq!(packages(b""), []);
        assert_eq!(packages(b"\n\n"), []);
    }

    #[test]
    fn a_truncated_record_is_dropped_and_the_good_ones_kept() {
        let text = b"P:musl\nV:1.2.4-r2\n\nP:busybox\nV:1.36.1-r15\nFoo";
        assert_eq!(names(&packages(text)), ["musl"]);
    }

    #[test]
    fn garbage_is_an_error_naming_the_line() {
        let error = parse(b"P:a\n\x7fELF\x02\x01\0\0binary\n").unwrap_err();
        assert!(error.contains("line 2"), "{error}");
        assert!(parse(b"{\"json\": true}").is_err());
        assert!(parse(b":\n").is_err());
        assert!(parse(&[0xc3, b':', b'x']).is_err());
    }

    #[test]
    fn huge_inputs_do_not_panic() {
        let long = format!("P:a\nV:{}\n", "1".repeat(1 << 20));
        assert_eq!(packages(long.as_bytes()).len(), 1);
        let many = "P:a\nV:1\n\n".repeat(10_000);
        assert_eq!(packages(many.as_bytes()).len(), 10_000);
    }
}
