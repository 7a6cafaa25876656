//! The OS release: `etc/os-release` and `usr/lib/os-release` (both are read; the inventory
//! prefers `etc`).
//!
//! Owns: reading os-release(5): newline-separated `KEY=value` assignments in a shell-compatible
//! subset, values possibly in double quotes (where a backslash escapes the next character) or
//! single quotes (taken literally), `#` comments and blank lines ignored, and the last assignment
//! of a key wins, as in a shell. Of its fields we keep `ID`, `VERSION_ID`, `VERSION_CODENAME`
//! (else `UBUNTU_CODENAME`, which older Ubuntu releases write alone) and `PRETTY_NAME`.
//!
//! A line that is not a valid assignment (no `=`, a bad key, an unterminated quote) is skipped
//! rather than failing the file, since the fields that matter are usually still there; a file
//! without any valid assignment is an error.

use crate::scan::package::{FileFacts, OsRelease};

const FILES: &[&str] = &["etc/os-release", "usr/lib/os-release"];

/// Whether `path` is one of the two os-release files.
pub fn wants(path: &str) -> bool {
    FILES.contains(&path)
}

/// The release fields; an error only when no line is a valid assignment.
pub fn parse(bytes: &[u8]) -> Result<FileFacts, String> {
    let text = String::from_utf8_lossy(bytes);
    let assignments: Vec<(&str, String)> = text.lines().filter_map(assignment).collect();
    if assignments.is_empty() {
        return Err("no `KEY=value` line".to_string());
    }
    let value = |key: &str| {
        assignments
            .iter()
            .rev()
            .find(|(name, value)| *name == key && !value.is_empty())
            .map(|(_, value)| value.clone())
    };
    Ok(FileFacts::OsRelease(OsRelease {
        id: value("ID"),
        version_id: value("VERSION_ID"),
        codename: value("VERSION_CODENAME").or_else(|| value("UBUNTU_CODENAME")),
        pretty_name: value("PRETTY_NAME"),
    }))
}

/// `KEY=value` with its value unquoted, or `None` for comments, blank and invalid lines.
fn assignment(line: &str) -> Option<(&str, String)> {
    let line = line.trim();
    if line.starts_with('#') {
        return None;
    }
    let (key, raw) = line.split_once('=')?;
    let valid_key = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_key {
        return None;
    }
    Some((key, unquote(raw)?))
}

/// A shell word without its quotes and escapes; `None` when a quote or escape is unterminated.
fn unquote(raw: &str) -> Option<String> {
    let mut value = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => value.push_str(until_quote(&mut chars, '\'', false)?.as_str()),
            '"' => value.push_str(until_quote(&mut chars, '"', true)?.as_str()),
            '\\' => value.push(chars.next()?),
            other => value.push(other),
        }
    }
    Some(value)
}

/// The text up to the closing `quote`, unescaping backslashes when `escapes`.
fn until_quote(chars: &mut std::str::Chars<'_>, quote: char, escapes: bool) -> Option<String> {
    let mut text = String::new();
    loop {
        match chars.next()? {
            c if c == quote => return Some(text),
            '\\' if escapes => text.push(chars.next()?),
            c => text.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &[u8] =
        include_bytes!("../../../tests/fixtures/scan/catalog/os-release/debian-12");
    const UBUNTU: &[u8] =
        include_bytes!("../../../tests/fixtures/scan/catalog/os-release/ubuntu-22.04");
    const ALPINE: &[u8] =
        include_bytes!("../../../tests/fixtures/scan/catalog/os-release/alpine-3.19");

    fn release(bytes: &[u8]) -> OsRelease {
        match parse(bytes) {
            Ok(FileFacts::OsRelease(release)) => release,
            other => panic!("expected an OS release, got {other:?}"),
        }
    }

    fn some(value: &str) -> Option<String> {
        Some(value.to_string())
    }

    #[test]
    fn wants_both_locations_only() {
        assert!(wants("etc/os-release"));
        assert!(wants("usr/lib/os-release"));
        assert!(!wants("etc/lsb-release"));
        assert!(!wants("opt/etc/os-release"));
    }

    #[test]
    fn reads_this_machines_debian_release() {
        assert_eq!(
            release(DEBIAN),
            OsRelease {
                id: some("debian"),
                version_id: some("12"),
                codename: some("bookworm"),
                pretty_name: some("Debian GNU/Linux 12 (bookworm)"),
            }
        );
    }

    #[test]
    fn ubuntu_and_alpine() {
        let ubuntu = release(UBUNTU);
        assert_eq!(
            (ubuntu.id, ubuntu.version_id, ubuntu.codename),
            (some("ubuntu"), some("22.04"), some("jammy"))
        );
        let alpine = release(ALPINE);
        assert_eq!(
            (alpine.id, alpine.version_id, alpine.codename),
            (some("alpine"), some("3.19.1"), None)
        );
        assert_eq!(alpine.pretty_name, some("Alpine Linux v3.19"));
    }

    #[test]
    fn ubuntu_codename_is_the_fallback() {
        let text = "ID=ubuntu\nUBUNTU_CODENAME=xenial\nVERSION_ID=\"16.04\"\n";
        assert_eq!(release(text.as_bytes()).codename, some("xenial"));
        let text = "UBUNTU_CODENAME=a\nVERSION_CODENAME=b\n";
        assert_eq!(release(text.as_bytes()).codename, some("b"));
    }

    #[test]
    fn quotes_escapes_comments_and_crlf() {
        let text = "# a comment\r\n\r\n  ID='my distro'\r\nPRETTY_NAME=\"A \\\"quoted\\\" \\$name\"\r\n\
                    VERSION_ID=1\\ 2\r\nVERSION_CODENAME=\"a\"'b'c\r\n";
        let parsed = release(text.as_bytes());
        assert_eq!(parsed.id, some("my distro"));
        assert_eq!(parsed.pretty_name, some("A \"quoted\" $name"));
        assert_eq!(parsed.version_id, some("1 2"));
        assert_eq!(parsed.codename, some("abc"));
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let text =
            "\x7fELF\0\0\nID=\"unterminated\n1X=a\nBAD KEY=x\n=x\nID=debian\nVERSION_ID=\"12\\\n";
        let parsed = release(text.as_bytes());
        assert_eq!(parsed.id, some("debian"));
        assert_eq!(parsed.version_id, None);
    }

    #[test]
    fn a_file_without_any_assignment_is_an_error() {
        assert!(parse(b"").is_err());
        assert!(parse(b"# only a comment\n\n").is_err());
        assert!(parse(b"\x7fELF\x02\x01\x01\0\0\0\xff\xfe").is_err());
        assert!(parse(b"ID=\"truncat").is_err());
    }

    #[test]
    fn unknown_keys_alone_give_an_empty_release_and_huge_values_do_not_panic() {
        assert_eq!(release(b"NAME=x\n"), OsRelease::default());
        let long = format!("ID=\"{}\"\n", "x".repeat(1 << 20));
        assert_eq!(
            release(long.as_bytes()).id.map(|id| id.len()),
            Some(1 << 20)
        );
    }
}
