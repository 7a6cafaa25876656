//! apk-tools' version order (Alpine, Wolfi, Chainguard), as apk-tools 3 documents it.
//!
//! A version is `digits{.digits}{letter}{_suffix{digits}}…{~hash}{-rN}`. Both versions are
//! read as token streams and compared token by token: the first number and suffix numbers and
//! revisions as numbers; later dotted numbers as numbers unless either has a leading zero
//! (then as text, as Gentoo does); letters and commit hashes as text; suffixes by rank
//! (`alpha` < `beta` < `pre` < `rc` < none < `cvs` < `svn` < `git` < `hg` < `p`). When one
//! stream ends or changes kind first, a pre-release suffix makes it the smaller, else the
//! stream whose next token is of the later kind is the smaller (`1.0` > `1`, `1a` < `1.1`,
//! `1-r1` < `1_p1`). apk-tools sorts invalid versions as plain text; here they are errors.

use std::cmp::Ordering;

use super::{VersionError, VersionOrder};

/// Token kinds, in the order the grammar allows them (the derived order is used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    FirstNumber,
    Number,
    Letter,
    Suffix,
    SuffixNumber,
    CommitHash,
    Revision,
    End,
}

/// Suffixes by rank; those before `None` mark pre-releases.
const SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
const PRE_RELEASE_SUFFIXES: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    /// The number (numbers, revisions) or the rank (suffixes, `alpha` = 0).
    value: u64,
}

impl Token<'_> {
    fn is_pre_release_suffix(&self) -> bool {
        self.kind == Kind::Suffix && (self.value as usize) < PRE_RELEASE_SUFFIXES
    }
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let a_tokens = tokens(a)?;
    let b_tokens = tokens(b)?;
    for (x, y) in a_tokens.iter().zip(&b_tokens) {
        if x.kind != y.kind {
            return Ok(compare_kinds(x, y));
        }
        let order = compare_values(x, y);
        if order != Ordering::Equal {
            return Ok(order);
        }
    }
    // Both streams end with `End`, so one differing in length differs in kind above.
    Ok(Ordering::Equal)
}

/// Equal so far, then tokens of different kinds: which version is the greater.
fn compare_kinds(a: &Token, b: &Token) -> Ordering {
    if a.is_pre_release_suffix() {
        Ordering::Less
    } else if b.is_pre_release_suffix() {
        Ordering::Greater
    } else {
        b.kind.cmp(&a.kind)
    }
}

fn compare_values(a: &Token, b: &Token) -> Ordering {
    match a.kind {
        Kind::Number if a.text.starts_with('0') || b.text.starts_with('0') => a.text.cmp(b.text),
        Kind::Letter | Kind::CommitHash => a.text.cmp(b.text),
        _ => a.value.cmp(&b.value),
    }
}

/// The version's tokens, ending with one `End` token; an error when it breaks the grammar.
fn tokens(version: &str) -> Result<Vec<Token<'_>>, VersionError> {
    let error = |reason| VersionError::new(VersionOrder::Apk, version, reason);
    let mut rest = version;
    let first = take_number(&mut rest, Kind::FirstNumber).map_err(error)?;
    let mut tokens = vec![first];
    while !rest.is_empty() {
        let previous = tokens.last().map_or(Kind::FirstNumber, |t| t.kind);
        tokens.push(next_token(&mut rest, previous).map_err(error)?);
    }
    tokens.push(Token {
        kind: Kind::End,
        text: "",
        value: 0,
    });
    Ok(tokens)
}

/// Reads the token at the start of `rest`, checking that it may follow `previous`.
fn next_token<'a>(rest: &mut &'a str, previous: Kind) -> Result<Token<'a>, &'static str> {
    let at_most_number = previous <= Kind::Number;
    match rest.as_bytes()[0] {
        b'a'..=b'z' if at_most_number => {
            let (text, tail) = rest.split_at(1);
            *rest = tail;
            Ok(Token {
                kind: Kind::Letter,
                text,
                value: 0,
            })
        }
        b'.' if at_most_number => {
            *rest = &rest[1..];
            take_number(rest, Kind::Number)
        }
        b'0'..=b'9' if previous == Kind::Suffix => take_number(rest, Kind::SuffixNumber),
        b'_' if previous <= Kind::SuffixNumber => take_suffix(rest),
        b'~' if previous < Kind::CommitHash => take_hash(rest),
        b'-' if previous < Kind::Revision => match rest.strip_prefix("-r") {
            Some(tail) => {
                *rest = tail;
                take_number(rest, Kind::Revision)
            }
            None => Err("a hyphen must start the revision `-rN`"),
        },
        _ => Err("a character out of place"),
    }
}

fn take_number<'a>(rest: &mut &'a str, kind: Kind) -> Result<Token<'a>, &'static str> {
    let (text, tail) = split_while(rest, |c| c.is_ascii_digit());
    if text.is_empty() {
        return Err("a number is missing");
    }
    let value = text.parse().map_err(|_| "a number is too big")?;
    *rest = tail;
    Ok(Token { kind, text, value })
}

fn take_suffix<'a>(rest: &mut &'a str) -> Result<Token<'a>, &'static str> {
    let (text, tail) = split_while(&rest[1..], |c| c.is_ascii_lowercase());
    let rank = SUFFIXES
        .iter()
        .position(|suffix| *suffix == text)
        .ok_or("an unknown suffix")?;
    *rest = tail;
    Ok(Token {
        kind: Kind::Suffix,
        text,
        value: rank as u64,
    })
}

fn take_hash<'a>(rest: &mut &'a str) -> Result<Token<'a>, &'static str> {
    let (text, tail) = split_while(&rest[1..], |c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    if text.is_empty() {
        return Err("a commit hash is missing after `~`");
    }
    *rest = tail;
    Ok(Token {
        kind: Kind::CommitHash,
        text,
        value: 0,
    })
}

fn split_while(text: &str, keep: impl Fn(u8) -> bool) -> (&str, &str) {
    let end = text.bytes().position(|c| !keep(c)).unwrap_or(text.len());
    text.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap()
    }

    fn assert_ascending(versions: &[&str]) {
        for pair in versions.windows(2) {
            assert_eq!(cmp(pair[0], pair[1]), Ordering::Less, "{pair:?}");
            assert_eq!(cmp(pair[1], pair[0]), Ordering::Greater, "{pair:?}");
        }
    }

    #[test]
    fn suffixes_letters_and_revisions_sort_as_alpine_does() {
        assert_ascending(&[
            "1.2.3_alpha",
            "1.2.3_alpha2",
            "1.2.3_beta",
            "1.2.3_pre1",
            "1.2.3_rc1",
            "1.2.3",
            "1.2.3-r1",
            "1.2.3-r10",
            "1.2.3_p1",
            "1.2.3_p1-r1",
            "1.2.3a",
            "1.2.3b",
            "1.2.3.1",
            "1.2.4_rc1",
            "1.10",
        ]);
    }

    #[test]
    fn more_dotted_numbers_make_a_greater_version() {
        assert_ascending(&["1", "1.0", "1.0.0", "1.0.1"]);
    }

    #[test]
    fn leading_zeros_compare_as_text() {
        assert_ascending(&["1.001", "1.01", "1.1"]);
        assert_eq!(cmp("01.2", "1.2"), Ordering::Equal);
        assert_ascending(&["1.0", "1.00"]);
    }

    #[test]
    fn a_commit_hash_sorts_after_the_revision_of_the_same_version() {
        assert_ascending(&[
            "1.0_git20240101",
            "1.0_git20240101~abc",
            "1.0_git20240101~abd",
        ]);
        assert_ascending(&["1.0", "1.0-r1", "1.0~abc", "1.0~abc-r1"]);
    }

    #[test]
    fn invalid_versions_are_errors() {
        for bad in [
            "",
            "a",
            ".1",
            "1.",
            "1..2",
            "1ab",
            "1a2",
            "1_foo",
            "1_",
            "1-2",
            "1-r",
            "1-r1-r2",
            "1~",
            "1~xyz",
            "1.0_rc1a",
            "1 0",
            "1.0-r1_p1",
            "99999999999999999999",
        ] {
            assert!(compare(bad, "1.0").is_err(), "{bad:?}");
        }
        for good in ["1", "1.0a_rc1_p2~deadbeef-r3", "0_git20240101-r0", "1.0_p"] {
            assert!(compare(good, good).is_ok(), "{good:?}");
        }
    }
}
