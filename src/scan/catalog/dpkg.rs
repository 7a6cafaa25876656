//! dpkg: `var/lib/dpkg/status`, distroless `status.d/` stanzas, and licences from copyright files.
//!
//! Owns: reading the deb822 stanzas dpkg keeps for installed packages, and the machine-readable
//! (DEP-5) `License:` fields of `usr/share/doc/<package>/copyright`. Compared with syft
//! (`syft/pkg/cataloger/debian/parse_dpkg_db.go`, `parse_copyright.go`) and trivy
//! (`pkg/fanal/analyzer/pkg/dpkg/dpkg.go`).
//!
//! Rules chosen here:
//! - **Installed.** A stanza counts when its `Status:` state (the third word) is one in which
//!   the package's files are on disk: `installed`, `unpacked`, `half-configured`,
//!   `triggers-awaited`, `triggers-pending` (dpkg(1), "PACKAGE STATES"). `config-files`,
//!   `half-installed` and `not-installed` are skipped. A stanza without `Status:` counts as
//!   installed: distroless writes its `status.d` files that way. Syft instead drops any status
//!   containing `deinstall` and keeps the rest, so it also drops `deinstall ok installed` (marked
//!   for removal, still on disk) and keeps `install ok half-installed`; both are rare in images.
//! - **Source.** `Source: name` or `Source: name (version)`. `source_name` is set only when the
//!   name differs from `Package:`; `source_version` only when a parenthesised version is given
//!   and differs from `Version:`. `None` means "the binary's own", as [`Found`] documents.
//! - **Malformed input.** A line that is neither blank, a continuation, nor `Field: value`
//!   spoils its stanza, which is dropped (nothing in it can be trusted). The other stanzas are
//!   kept, so one bad stanza (a file truncated mid-field) loses no good package. A file where no
//!   package parsed and some line was malformed (binary garbage) is an error naming that line.
//!   Bytes that are not UTF-8 (an old Latin-1 description) are read lossily: the fields kept
//!   here are ASCII.
//! - **Licences.** Only DEP-5 files (first non-blank line `Format: <copyright-format URL>`);
//!   others give an empty list, as in current syft (syft 1.18 still read free-text files). Each
//!   `License:` field's first line is split on `or`/`and`/`,`/`|`/`&`, and each alternative
//!   contributes its first word (`GPL-3+ with Bison exception` gives `GPL-3+`), which matches the
//!   ids syft reports for single-licence fields while also keeping the second alternative of
//!   `GPL-2+ or Artistic` (syft keeps only the first word of the field). Unlike syft,
//!   `/usr/share/common-licenses/<name>` mentions are not licences here: they name the text on
//!   disk (`GPL-3` for a `GPL-3+` package) and repeat what the `License:` fields say. Names keep
//!   file order, each once (syft sorts them).

use crate::scan::package::{FileFacts, Found, PackageType};

const STATUS: &str = "var/lib/dpkg/status";
const STATUS_DIR: &str = "var/lib/dpkg/status.d/";
const DOC_DIR: &str = "usr/share/doc/";

/// Files dpkg keeps next to each package's stanza in `status.d` that are not stanzas.
const STATUS_DIR_SIDE_FILES: &[&str] = &[
    ".md5sums",
    ".list",
    ".conffiles",
    ".preinst",
    ".postinst",
    ".prerm",
    ".postrm",
    ".triggers",
    ".shlibs",
    ".symbols",
    ".templates",
    ".config",
];

/// Package states in which the package's files are on disk.
const PRESENT_STATES: &[&str] = &[
    "installed",
    "unpacked",
    "half-configured",
    "triggers-awaited",
    "triggers-pending",
];

/// Whether `path` is the status file, a distroless stanza file or a package's copyright file.
pub fn wants(path: &str) -> bool {
    path == STATUS || status_dir_entry(path).is_some() || copyright_package(path).is_some()
}

/// A copyright file's licences, or the installed packages of a status or `status.d` file.
pub fn parse(path: &str, bytes: &[u8]) -> Result<FileFacts, String> {
    if let Some(package) = copyright_package(path) {
        return Ok(FileFacts::Licenses {
            package: package.to_string(),
            licenses: copyright_licenses(&String::from_utf8_lossy(bytes)),
        });
    }
    Ok(FileFacts::Packages {
        database: path == STATUS,
        packages: parse_stanzas(&String::from_utf8_lossy(bytes))?,
    })
}

/// The stanza file's name for a package's file in `status.d`, skipping dpkg's side files.
fn status_dir_entry(path: &str) -> Option<&str> {
    let name = path.strip_prefix(STATUS_DIR)?;
    let side_file = STATUS_DIR_SIDE_FILES.iter().any(|ext| name.ends_with(ext));
    (!name.is_empty() && !name.contains('/') && !side_file).then_some(name)
}

/// The package a `usr/share/doc/<package>/copyright` path belongs to.
fn copyright_package(path: &str) -> Option<&str> {
    let package = path.strip_prefix(DOC_DIR)?.strip_suffix("/copyright")?;
    (!package.is_empty() && !package.contains('/')).then_some(package)
}

/// One stanza's fields (name, value with continuation lines joined by `\n`), and the 1-based
/// number of its first malformed line, if any.
#[derive(Default)]
struct Stanza {
    fields: Vec<(String, String)>,
    malformed_line: Option<usize>,
}

impl Stanza {
    /// A field's value; deb822 field names are case-insensitive.
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Adds a field or continues the last one; anything else marks the stanza malformed.
    fn add_line(&mut self, number: usize, line: &str) {
        if self.malformed_line.is_some() {
            return;
        }
        if line.starts_with([' ', '\t']) {
            match self.fields.last_mut() {
                Some((_, value)) => {
                    value.push('\n');
                    value.push_str(line.trim());
                }
                None => self.malformed_line = Some(number),
            }
            return;
        }
        match split_field(line) {
            Some((name, value)) => self.fields.push((name.to_string(), value.to_string())),
            None => self.malformed_line = Some(number),
        }
    }
}

/// `Name: value`, where a field name is printable ASCII without spaces or colons and does not
/// start with `#` or `-` (deb-control(5)).
fn split_field(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(':')?;
    let valid = !name.is_empty()
        && !name.starts_with(['#', '-'])
        && name.bytes().all(|b| b.is_ascii_graphic());
    valid.then_some((name, value.trim()))
}

/// Blank-line separated stanzas; CRLF line ends are accepted.
fn split_stanzas(text: &str) -> Vec<Stanza> {
    let mut stanzas = Vec::new();
    let mut current = Stanza::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !current.fields.is_empty() || current.malformed_line.is_some() {
                stanzas.push(std::mem::take(&mut current));
            }
        } else {
            current.add_line(index + 1, line);
        }
    }
    if !current.fields.is_empty() || current.malformed_line.is_some() {
        stanzas.push(current);
    }
    stanzas
}

/// The installed packages of a status file's text (see the module doc for the rules).
fn parse_stanzas(text: &str) -> Result<Vec<Found>, String> {
    let stanzas = split_stanzas(text);
    let packages: Vec<Found> = stanzas
        .iter()
        .filter(|stanza| stanza.malformed_line.is_none() && is_installed(stanza))
        .filter_map(package_of)
        .collect();
    let first_bad = stanzas.iter().find_map(|stanza| stanza.malformed_line);
    match first_bad {
        Some(line) if packages.is_empty() => Err(format!(
            "line {line} is not a `Field: value` line nor a continuation"
        )),
        _ => Ok(packages),
    }
}

/// Whether the package's files are on disk (see the module doc).
fn is_installed(stanza: &Stanza) -> bool {
    match stanza.field("Status") {
        None => true,
        Some(status) => status
            .split_whitespace()
            .nth(2)
            .is_some_and(|state| PRESENT_STATES.contains(&state)),
    }
}

/// The package a stanza describes; `None` without a `Package:` or `Version:`.
fn package_of(stanza: &Stanza) -> Option<Found> {
    let name = stanza.field("Package").filter(|name| !name.is_empty())?;
    let version = stanza
        .field("Version")
        .filter(|version| !version.is_empty())?;
    let mut found = Found::new(PackageType::Deb, name, version);
    found.arch = stanza.field("Architecture").map(str::to_string);
    if let Some((source, source_version)) = stanza.field("Source").and_then(split_source) {
        found.source_name = (source != name).then(|| source.to_string());
        found.source_version = source_version
            .filter(|source_version| *source_version != version)
            .map(str::to_string);
    }
    Some(found)
}

/// `name` or `name (version)`.
fn split_source(source: &str) -> Option<(&str, Option<&str>)> {
    let mut words = source.splitn(2, char::is_whitespace);
    let name = words.next().filter(|name| !name.is_empty())?;
    let version = words
        .next()
        .map(str::trim)
        .and_then(|rest| rest.strip_prefix('(')?.strip_suffix(')'))
        .map(str::trim)
        .filter(|version| !version.is_empty());
    Some((name, version))
}

/// Licence names from a DEP-5 copyright file; empty for any other copyright file.
fn copyright_licenses(text: &str) -> Vec<String> {
    let mut lines = text
        .lines()
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let Some(first) = lines.by_ref().find(|line| !line.trim().is_empty()) else {
        return Vec::new();
    };
    if !is_dep5_format(first) {
        return Vec::new();
    }
    let mut licenses: Vec<String> = Vec::new();
    let fields = lines.filter_map(|line| split_field(line).filter(|(name, _)| *name == "License"));
    for (_, value) in fields {
        for license in license_names(value) {
            if !licenses.contains(&license) {
                licenses.push(license);
            }
        }
    }
    licenses
}

/// Whether a copyright file's first line declares the machine-readable format.
fn is_dep5_format(line: &str) -> bool {
    split_field(line).is_some_and(|(name, value)| {
        name.eq_ignore_ascii_case("Format")
            && value.contains("debian.org/doc/packaging-manuals/copyright-format/")
    })
}

/// The licence names of a `License:` field's first line: the first word of each alternative.
fn license_names(expression: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut take_next = true;
    let spaced = expression.replace(',', " , ");
    for word in spaced.split_whitespace() {
        if ["or", "and", ",", "|", "&"].contains(&word.to_ascii_lowercase().as_str()) {
            take_next = true;
        } else if take_next {
            take_next = false;
            if !word.eq_ignore_ascii_case("none") {
                names.push(word.to_string());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS_FIXTURE: &str = include_str!("../../../tests/fixtures/scan/catalog/dpkg/status");
    const ZLIB_COPYRIGHT: &[u8] =
        include_bytes!("../../../tests/fixtures/scan/catalog/dpkg/zlib1g.copyright");
    const BASH_COPYRIGHT: &[u8] =
        include_bytes!("../../../tests/fixtures/scan/catalog/dpkg/bash.copyright");
    const BASE_FILES_COPYRIGHT: &[u8] =
        include_bytes!("../../../tests/fixtures/scan/catalog/dpkg/base-files.copyright");
    const DISTROLESS_STANZA: &[u8] =
        include_bytes!("../../../tests/fixtures/scan/catalog/dpkg/status.d/libssl3");

    fn packages(path: &str, bytes: &[u8]) -> (bool, Vec<Found>) {
        match parse(path, bytes) {
            Ok(FileFacts::Packages { database, packages }) => (database, packages),
            other => panic!("expected packages, got {other:?}"),
        }
    }

    fn licenses(path: &str, bytes: &[u8]) -> Vec<String> {
        match parse(path, bytes) {
            Ok(FileFacts::Licenses { package, licenses }) => {
                assert_eq!(Some(package.as_str()), copyright_package(path));
                licenses
            }
            other => panic!("expected licences, got {other:?}"),
        }
    }

    fn names(packages: &[Found]) -> Vec<&str> {
        packages.iter().map(|found| found.name.as_str()).collect()
    }

    #[test]
    fn wants_the_status_file_status_d_stanzas_and_copyright_files() {
        assert!(wants("var/lib/dpkg/status"));
        assert!(wants("var/lib/dpkg/status.d/libssl3"));
        assert!(wants("var/lib/dpkg/status.d/libstdc++6"));
        assert!(wants("usr/share/doc/zlib1g/copyright"));
        assert!(!wants("var/lib/dpkg/status.d/libssl3.md5sums"));
        assert!(!wants("var/lib/dpkg/status-old"));
        assert!(!wants("var/lib/dpkg/status.d/"));
        assert!(!wants("var/lib/dpkg/info/bash.list"));
        assert!(!wants("usr/share/doc/zlib1g/examples/copyright"));
        assert!(!wants("usr/share/doc//copyright"));
        assert!(!wants("opt/var/lib/dpkg/status"));
    }

    #[test]
    fn reads_installed_packages_of_the_machines_status_file() {
        let (database, packages) = packages("var/lib/dpkg/status", STATUS_FIXTURE.as_bytes());
        assert!(database);
        assert_eq!(
            names(&packages),
            [
                "base-files",
                "bash",
                "bsdutils",
                "libc6",
                "tzdata",
                "zlib1g"
            ],
            "the hand-written `deinstall ok config-files` stanza is skipped"
        );
        let bsdutils = &packages[2];
        assert_eq!(bsdutils.version, "1:2.38.1-5+deb12u3");
        assert_eq!(bsdutils.arch.as_deref(), Some("amd64"));
        assert_eq!(bsdutils.source_name.as_deref(), Some("util-linux"));
        assert_eq!(bsdutils.source_version.as_deref(), Some("2.38.1-5+deb12u3"));
        assert!(bsdutils.licenses.is_empty());
    }

    #[test]
    fn source_name_and_version_are_set_only_when_they_differ() {
        let (_, packages) = packages("var/lib/dpkg/status", STATUS_FIXTURE.as_bytes());
        let bash = &packages[1];
        assert_eq!(bash.version, "5.2.15-2+b8");
        assert_eq!(
            bash.source_name, None,
            "`Source: bash (...)` is its own name"
        );
        assert_eq!(bash.source_version.as_deref(), Some("5.2.15-2"));
        let libc6 = &packages[3];
        assert_eq!(libc6.source_name.as_deref(), Some("glibc"));
        assert_eq!(libc6.source_version, None);
        let tzdata = &packages[4];
        assert_eq!(
            (tzdata.source_name.as_ref(), tzdata.arch.as_deref()),
            (None, Some("all"))
        );
    }

    #[test]
    fn a_status_d_stanza_without_status_is_installed_and_not_a_database() {
        let (database, packages) = packages("var/lib/dpkg/status.d/libssl3", DISTROLESS_STANZA);
        assert!(!database);
        assert_eq!(names(&packages), ["libssl3"]);
        assert_eq!(packages[0].source_name.as_deref(), Some("openssl"));
    }

    #[test]
    fn only_states_with_files_on_disk_count() {
        let text = "Package: a\nStatus: install ok unpacked\nVersion: 1\n\n\
                    Package: b\nStatus: deinstall ok installed\nVersion: 1\n\n\
                    Package: c\nStatus: install ok half-installed\nVersion: 1\n\n\
                    Package: d\nStatus: purge ok not-installed\nVersion: 1\n\n\
                    Package: e\nStatus: install ok triggers-pending\nVersion: 1\n\n\
                    Package: f\nStatus: install ok\nVersion: 1\n";
        let (_, packages) = packages("var/lib/dpkg/status", text.as_bytes());
        assert_eq!(names(&packages), ["a", "b", "e"]);
    }

    #[test]
    fn crlf_continuations_and_extra_blank_lines_are_accepted() {
        let text = "\r\n\r\nPackage: a\r\nStatus: install ok installed\r\nDescription: x\r\n \
                    more\r\n .\r\nVersion: 1.0\r\n\r\n\r\n\r\nPackage: b\r\nVersion: 2\r\n";
        let (_, packages) = packages("var/lib/dpkg/status", text.as_bytes());
        assert_eq!(names(&packages), ["a", "b"]);
        assert_eq!(packages[0].version, "1.0");
    }

    #[test]
    fn stanzas_missing_package_or_version_are_skipped() {
        let text = "Package: a\n\nVersion: 1\n\nPackage: b\nVersion:\n\nPackage: c\nVersion: 3\n";
        let (_, packages) = packages("var/lib/dpkg/status", text.as_bytes());
        assert_eq!(names(&packages), ["c"]);
    }

    #[test]
    fn an_empty_status_file_has_no_packages() {
        assert_eq!(packages("var/lib/dpkg/status", b"").1, []);
        assert_eq!(packages("var/lib/dpkg/status", b"\n \n").1, []);
    }

    #[test]
    fn a_truncated_stanza_is_dropped_and_the_good_ones_kept() {
        let mut text =
            STATUS_FIXTURE[..STATUS_FIXTURE.find("Package: zlib1g").unwrap()].to_string();
        text.push_str("Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2\nMaintai");
        let (_, packages) = packages("var/lib/dpkg/status", text.as_bytes());
        assert_eq!(
            names(&packages),
            ["base-files", "bash", "bsdutils", "libc6", "tzdata"]
        );
    }

    #[test]
    fn garbage_is_an_error_naming_the_line() {
        let error =
            parse("var/lib/dpkg/status", b"\x7fELF\x02\x01\x01\0\0\0garbage\n").unwrap_err();
        assert!(error.contains("line 1"), "{error}");
        let error = parse("var/lib/dpkg/status", b"Package: a\n\n continued\n").unwrap_err();
        assert!(error.contains("line 3"), "{error}");
        let error = parse("var/lib/dpkg/status.d/x", b"Package a\nVersion 1\n").unwrap_err();
        assert!(error.contains("line 1"), "{error}");
    }

    #[test]
    fn huge_and_odd_inputs_do_not_panic() {
        let long_value = format!("Package: a\nVersion: {}\n", "9".repeat(1 << 20));
        assert_eq!(
            packages("var/lib/dpkg/status", long_value.as_bytes())
                .1
                .len(),
            1
        );
        let many = "Package: a\nVersion: 1\n\n".repeat(10_000);
        assert_eq!(
            packages("var/lib/dpkg/status", many.as_bytes()).1.len(),
            10_000
        );
        for odd in ["Source:", "Source: (1)", "Source: x (", "Source: x ()"] {
            let text = format!("Package: a\nVersion: 1\n{odd}\n");
            let (_, found) = packages("var/lib/dpkg/status", text.as_bytes());
            assert_eq!(found[0].source_version, None, "{odd}");
        }
        assert!(parse("var/lib/dpkg/status", &[0xff, 0xfe, b':', b'\n']).is_err());
    }

    #[test]
    fn dep5_copyright_gives_each_license_once_in_order() {
        assert_eq!(
            licenses("usr/share/doc/zlib1g/copyright", ZLIB_COPYRIGHT),
            ["Zlib"]
        );
        assert_eq!(
            licenses("usr/share/doc/bash/copyright", BASH_COPYRIGHT),
            [
                "GPL-3+",
                "GPL-2+",
                "GFDL-NIV-1.3",
                "Latex2e",
                "BSD-4-clause-UC",
                "MIT-like",
                "permissive"
            ]
        );
    }

    #[test]
    fn a_non_dep5_copyright_gives_no_licenses() {
        assert_eq!(
            licenses("usr/share/doc/base-files/copyright", BASE_FILES_COPYRIGHT),
            Vec::<String>::new()
        );
        assert_eq!(
            licenses("usr/share/doc/x/copyright", b""),
            Vec::<String>::new()
        );
        assert_eq!(
            licenses("usr/share/doc/x/copyright", b"\0\x01binary"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn license_expressions_are_split_into_names() {
        assert_eq!(license_names("GPL-2+ or Artistic"), ["GPL-2+", "Artistic"]);
        assert_eq!(license_names("GPL-3+ with Bison exception"), ["GPL-3+"]);
        assert_eq!(
            license_names("MIT and BSD-3-clause, Zlib"),
            ["MIT", "BSD-3-clause", "Zlib"]
        );
        assert_eq!(license_names("LGPL-2.1+ | GPL-2+"), ["LGPL-2.1+", "GPL-2+"]);
        assert_eq!(license_names("none"), Vec::<String>::new());
        assert_eq!(license_names(""), Vec::<String>::new());
        assert_eq!(license_names("or and ,"), Vec::<String>::new());
    }
}
