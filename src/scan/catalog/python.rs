//! Python: installed distributions' core metadata (`*.dist-info/METADATA`, `*.egg-info/PKG-INFO`,
//! an `*.egg-info` file, `EGG-INFO/PKG-INFO`), wherever they are in the image.
//!
//! Owns: reading the metadata headers ("Core metadata specifications", packaging.python.org:
//! email-style `Name: value` fields, continuation lines starting with whitespace, the headers
//! ending at the first empty line, after which the description body is not read). As in
//! Python's own `email` parser, a line that is not a header also ends the headers, so a file
//! that is not metadata lacks `Name:` or `Version:` and is an error.
//!
//! Licences, each once in order: `License-Expression:` (PEP 639) if present, else `License:`
//! when it is a short one-line name (not the licence's full text, which older tools put there,
//! and not `UNKNOWN`), then the last segment of each `Classifier: License :: ...` trove
//! classifier (`MIT License`). Vendored copies (`_vendor/*.dist-info`) are packages too, as in
//! syft (`**/*.dist-info/METADATA` and friends).
//!
//! Deliberate differences from syft (1.18): the name is kept as written (`PyYAML`, `boolean.py`)
//! where syft reports it normalised (`pyyaml`, `boolean-py`), since [`Found`] keeps names as
//! the ecosystem writes them (a comparison must normalise both per PEP 503); and trove
//! classifiers add licences, which syft does not read, so a package declaring only a classifier
//! still has a licence.

use crate::scan::package::{FileFacts, Found, PackageType};

/// A `License:` value longer than this is a licence's text, not its name.
const MAX_LICENSE_NAME_CHARS: usize = 80;

/// Whether `path` is an installed distribution's metadata file.
pub fn wants(path: &str) -> bool {
    let named_dir = |suffix: &str| {
        path.strip_suffix(suffix)
            .and_then(|dir| dir.rsplit('/').next())
            .is_some_and(|dir_name| !dir_name.is_empty())
    };
    named_dir(".dist-info/METADATA")
        || named_dir(".egg-info/PKG-INFO")
        || named_dir(".egg-info/METADATA")
        || named_dir(".egg-info")
        || path == "EGG-INFO/PKG-INFO"
        || path.ends_with("/EGG-INFO/PKG-INFO")
}

/// The distribution a metadata file declares; the path adds nothing, the headers name it.
pub fn parse(_path: &str, bytes: &[u8]) -> Result<FileFacts, String> {
    let text = decode(bytes)?;
    let headers = read_headers(&text);
    let name = header(&headers, "Name").ok_or("no `Name:` header")?;
    let version = header(&headers, "Version").ok_or("no `Version:` header")?;
    let mut found = Found::new(PackageType::Pypi, name, version);
    found.licenses = licenses(&headers);
    Ok(FileFacts::Packages {
        database: false,
        packages: vec![found],
    })
}

/// The file's text. Metadata is UTF-8, but files written by Windows tools may start with a
/// byte order mark, which would otherwise glue itself to the first header's name; a UTF-16
/// file with its mark is decoded too.
fn decode(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, String> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return Ok(String::from_utf8_lossy(rest));
    }
    let utf16 = |rest: &[u8], unit: fn([u8; 2]) -> u16| {
        if !rest.len().is_multiple_of(2) {
            return Err("UTF-16 text with an odd number of bytes".to_string());
        }
        let units = rest.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
        Ok(std::borrow::Cow::Owned(
            char::decode_utf16(units)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect(),
        ))
    };
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return utf16(rest, u16::from_be_bytes);
    }
    Ok(String::from_utf8_lossy(bytes))
}

/// One header: its name, its first line, and whether continuation lines carried more text.
struct Header<'a> {
    name: &'a str,
    value: &'a str,
    multi_line: bool,
}

/// The headers up to the first empty line or the first line that is not a header.
fn read_headers(text: &str) -> Vec<Header<'_>> {
    let mut headers: Vec<Header<'_>> = Vec::new();
    for line in text
        .lines()
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
    {
        if line.starts_with([' ', '\t']) {
            match headers.last_mut() {
                Some(last) => last.multi_line |= !line.trim().is_empty(),
                None => break,
            }
            continue;
        }
        let Some((name, value)) = line
            .split_once(':')
            .filter(|(name, _)| is_header_name(name))
        else {
            break;
        };
        headers.push(Header {
            name,
            value: value.trim(),
            multi_line: false,
        });
    }
    headers
}

/// RFC 5322 field names: printable ASCII except the colon, without spaces.
fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic())
}

/// The first non-empty value of a header; header names are case-insensitive.
fn header<'a>(headers: &[Header<'a>], name: &str) -> Option<&'a str> {
    headers_named(headers, name)
        .map(|header| header.value)
        .find(|value| !value.is_empty())
}

/// Every header called `name`.
fn headers_named<'h, 'a>(
    headers: &'h [Header<'a>],
    name: &'h str,
) -> impl Iterator<Item = &'h Header<'a>> {
    headers
        .iter()
        .filter(move |header| header.name.eq_ignore_ascii_case(name))
}

/// The declared licence, then the classifiers' licence names, each once.
fn licenses(headers: &[Header<'_>]) -> Vec<String> {
    let declared = header(headers, "License-Expression").or_else(|| license_name(headers));
    let classifiers =
        headers_named(headers, "Classifier").filter_map(|header| license_classifier(header.value));
    let mut licenses: Vec<String> = Vec::new();
    for license in declared.into_iter().chain(classifiers) {
        if !licenses.iter().any(|known| known == license) {
            licenses.push(license.to_string());
        }
    }
    licenses
}

/// `License:` when it names a licence rather than holding its text.
fn license_name<'a>(headers: &[Header<'a>]) -> Option<&'a str> {
    headers_named(headers, "License")
        .find(|header| !header.value.is_empty())
        .filter(|header| {
            !header.multi_line
                && header.value.chars().count() <= MAX_LICENSE_NAME_CHARS
                && !header.value.eq_ignore_ascii_case("UNKNOWN")
        })
        .map(|header| header.value)
}

/// `License :: OSI Approved :: MIT License` gives `MIT License`; the bare approval category
/// names no licence.
fn license_classifier(classifier: &str) -> Option<&str> {
    let (category, rest) = classifier.split_once("::")?;
    let last = rest.rsplit("::").next()?.trim();
    let names_one = category.trim() == "License" && !last.is_empty() && last != "OSI Approved";
    names_one.then_some(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/scan/catalog/python/"
    );

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}{name}")).unwrap()
    }

    fn package(bytes: &[u8]) -> Found {
        match parse("x.dist-info/METADATA", bytes) {
            Ok(FileFacts::Packages {
                database: false,
                mut packages,
            }) if packages.len() == 1 => packages.remove(0),
            other => panic!("expected one package, got {other:?}"),
        }
    }

    #[test]
    fn wants_metadata_files_of_installed_distributions() {
        for path in [
            "usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA",
            "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
            "usr/lib/python3/dist-packages/perf-0.1.egg-info",
            "opt/app/lib/setuptools/_vendor/zipp-3.19.2.dist-info/METADATA",
            "usr/lib/python3.6/site-packages/foo-1.0-py3.6.egg/EGG-INFO/PKG-INFO",
            "x.dist-info/METADATA",
        ] {
            assert!(wants(path), "{path}");
        }
        for path in [
            ".dist-info/METADATA",
            "site-packages/.egg-info",
            "site-packages/pip-23.2.1.dist-info/RECORD",
            "site-packages/pip-23.2.1.dist-info/METADATA.bak",
            "site-packages/six.py",
            "EGG-INFO/requires.txt",
        ] {
            assert!(!wants(path), "{path}");
        }
    }

    #[test]
    fn a_license_name_and_trove_classifiers() {
        let requests = package(&fixture("requests-2.34.2.METADATA"));
        assert_eq!(
            (requests.name.as_str(), requests.version.as_str()),
            ("requests", "2.34.2")
        );
        assert_eq!(requests.licenses, ["Apache-2.0", "Apache Software License"]);
        assert_eq!(requests.kind, PackageType::Pypi);
    }

    #[test]
    fn license_expression_is_preferred() {
        let attrs = package(&fixture("attrs-26.1.0.METADATA"));
        assert_eq!(
            (attrs.name.as_str(), attrs.version.as_str()),
            ("attrs", "26.1.0")
        );
        assert_eq!(attrs.licenses, ["MIT"]);
    }

    #[test]
    fn a_license_text_is_not_a_name() {
        let traitlets = package(&fixture("traitlets-5.15.0.METADATA"));
        assert_eq!(traitlets.version, "5.15.0");
        assert_eq!(traitlets.licenses, ["BSD License"]);
    }

    #[test]
    fn egg_info_and_vendored_dist_info() {
        let six = package(&fixture("six-1.16.0.PKG-INFO"));
        assert_eq!((six.name.as_str(), six.version.as_str()), ("six", "1.16.0"));
        assert_eq!(six.licenses, ["MIT", "MIT License"]);
        let zipp = package(&fixture("vendored-zipp-3.19.2.METADATA"));
        assert_eq!(
            (zipp.name.as_str(), zipp.version.as_str()),
            ("zipp", "3.19.2")
        );
    }

    #[test]
    fn the_body_is_not_read_and_unknown_is_no_license() {
        let text =
            "Name: a\r\nVersion: 1.0\r\nLicense: UNKNOWN\r\n\r\nVersion: 2.0\r\nLicense: MIT\r\n";
        let found = package(text.as_bytes());
        assert_eq!(found.version, "1.0");
        assert!(found.licenses.is_empty());
    }

    #[test]
    fn names_and_versions_are_kept_as_written() {
        let found = package(b"Metadata-Version: 1.0\nname: Foo.Bar_baz\nversion: 01.0.post1\n");
        assert_eq!(
            (found.name.as_str(), found.version.as_str()),
            ("Foo.Bar_baz", "01.0.post1")
        );
    }

    #[test]
    fn missing_name_or_version_is_an_error() {
        assert!(
            parse("a.egg-info", b"Name: a\n")
                .unwrap_err()
                .contains("Version")
        );
        assert!(
            parse("a.egg-info", b"Version: 1\n")
                .unwrap_err()
                .contains("Name")
        );
        assert!(parse("a.egg-info", b"Name:\nVersion: 1\n").is_err());
        assert!(parse("a.egg-info", b"").is_err());
        assert!(
            parse("a.egg-info", b"\nName: a\nVersion: 1\n").is_err(),
            "after the body starts"
        );
    }

    #[test]
    fn garbage_and_truncated_input_is_an_error_without_panic() {
        assert!(parse("a.egg-info", b"\x7fELF\x02\x01\x01\0\0Name: a\n").is_err());
        assert!(parse("a.egg-info", b" continued\nName: a\nVersion: 1\n").is_err());
        assert!(parse("a.egg-info", &[0xff, 0xfe, 0x00, 0x4e]).is_err());
        let truncated = &fixture("requests-2.34.2.METADATA")[..40];
        assert!(parse("a.egg-info", truncated).is_err());
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_header() {
        let text = "Metadata-Version: 2.1\r\nName: pywin\r\nVersion: 3.1\r\n";
        let utf8 = [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        let little: Vec<u8> = [0xfeff_u16]
            .into_iter()
            .chain(text.encode_utf16())
            .flat_map(u16::to_le_bytes)
            .collect();
        let big: Vec<u8> = [0xfeff_u16]
            .into_iter()
            .chain(text.encode_utf16())
            .flat_map(u16::to_be_bytes)
            .collect();
        for bytes in [utf8, little, big] {
            let found = package(&bytes);
            assert_eq!(
                (found.name.as_str(), found.version.as_str()),
                ("pywin", "3.1")
            );
        }
        // A BOM-only or cut UTF-16 file is malformed, not a panic.
        assert!(parse("a.egg-info", b"\xEF\xBB\xBF").is_err());
        assert!(
            parse("a.egg-info", b"\xFF\xFEN\0a")
                .unwrap_err()
                .contains("odd")
        );
        assert!(
            parse("a.egg-info", b"\xFE\xFF\xD8\x00").is_err(),
            "a lone surrogate"
        );
    }

    #[test]
    fn huge_headers_do_not_panic() {
        let long = format!("Name: a\nVersion: 1\nLicense: {}\n", "x".repeat(1 << 20));
        assert!(package(long.as_bytes()).licenses.is_empty());
        let many = format!(
            "Name: a\nVersion: 1\n{}",
            "Classifier: License :: MIT\n".repeat(10_000)
        );
        assert_eq!(package(many.as_bytes()).licenses, ["MIT"]);
    }

    #[test]
    fn license_classifiers_name_the_last_segment() {
        assert_eq!(
            license_classifier("License :: OSI Approved :: MIT License"),
            Some("MIT License")
        );
        assert_eq!(
            license_classifier("License :: Public Domain"),
            Some("Public Domain")
        );
        assert_eq!(license_classifier("License :: OSI Approved"), None);
        assert_eq!(license_classifier("License ::"), None);
        assert_eq!(license_classifier("Topic :: Utilities"), None);
    }
}
