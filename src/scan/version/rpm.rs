//! rpm's version order: `[epoch:]version[-release]` compared as rpm 4.18 does.
//!
//! The epoch is the leading digits before a `:` (missing = 0); the release follows the last
//! hyphen. Epoch, version and release are each compared with `rpmvercmp`: runs of ASCII
//! letters or digits, everything else a separator; digit runs compare as numbers and beat
//! letter runs; `~` sorts before everything, even the end; `^` sorts after the end but before
//! anything else. A missing release compares as an empty one (`1.0` < `1.0-3`), as
//! `rpm.vercmp` does.

use std::cmp::Ordering;

use super::{VersionError, VersionOrder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Evr<'a> {
    epoch: &'a [u8],
    version: &'a [u8],
    release: &'a [u8],
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let (a, b) = (parse(a)?, parse(b)?);
    Ok(segments_compare(a.epoch, b.epoch)
        .then_with(|| segments_compare(a.version, b.version))
        .then_with(|| segments_compare(a.release, b.release)))
}

fn parse(evr: &str) -> Result<Evr<'_>, VersionError> {
    if evr.is_empty() {
        return Err(VersionError::new(
            VersionOrder::Rpm,
            evr,
            "the version is empty",
        ));
    }
    let digits = evr.bytes().take_while(u8::is_ascii_digit).count();
    let (epoch, rest) = match evr.as_bytes().get(digits) {
        Some(b':') if digits == 0 => ("0", &evr[1..]),
        Some(b':') => (&evr[..digits], &evr[digits + 1..]),
        _ => ("0", evr),
    };
    let (version, release) = match rest.rsplit_once('-') {
        Some((version, release)) => (version, release.as_bytes()),
        None => (rest, &[][..]),
    };
    Ok(Evr {
        epoch: epoch.as_bytes(),
        version: version.as_bytes(),
        release,
    })
}

/// `rpmvercmp` on one field.
fn segments_compare(mut a: &[u8], mut b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    loop {
        a = skip_separators(a);
        b = skip_separators(b);
        match (a.first(), b.first()) {
            (Some(b'~'), Some(b'~')) | (Some(b'^'), Some(b'^')) => {
                (a, b) = (&a[1..], &b[1..]);
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            (None, Some(b'^')) => return Ordering::Less,
            (Some(b'^'), None) => return Ordering::Greater,
            (Some(b'^'), _) => return Ordering::Less,
            (_, Some(b'^')) => return Ordering::Greater,
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(_), Some(_)) => {}
        }
        let (order, a_rest, b_rest) = compare_segment(a, b);
        if order != Ordering::Equal {
            return order;
        }
        (a, b) = (a_rest, b_rest);
    }
}

fn skip_separators(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .position(|&c| c.is_ascii_alphanumeric() || c == b'~' || c == b'^')
        .unwrap_or(text.len());
    &text[start..]
}

/// Compares the segments at the start of `a` and `b` (both start with a letter or digit); the
/// segment of `b` is of the kind `a`'s starts with, and a missing one loses to a number and
/// beats nothing else.
fn compare_segment<'a, 'b>(a: &'a [u8], b: &'b [u8]) -> (Ordering, &'a [u8], &'b [u8]) {
    let numeric = a[0].is_ascii_digit();
    let in_segment = |c: &u8| {
        if numeric {
            c.is_ascii_digit()
        } else {
            c.is_ascii_alphabetic()
        }
    };
    let a_len = a.iter().take_while(|c| in_segment(c)).count();
    let b_len = b.iter().take_while(|c| in_segment(c)).count();
    let (a_segment, a_rest) = a.split_at(a_len);
    let (b_segment, b_rest) = b.split_at(b_len);
    let order = if b_segment.is_empty() {
        // A number beats letters; letters lose to a number.
        if numeric {
            Ordering::Greater
        } else {
            Ordering::Less
        }
    } else if numeric {
        compare_numbers(a_segment, b_segment)
    } else {
        a_segment.cmp(b_segment)
    };
    (order, a_rest, b_rest)
}

fn compare_numbers(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |digits: &[u8]| {
        let start = digits
            .iter()
            .position(|&d| d != b'0')
            .unwrap_or(digits.len());
        digits[start..].to_vec()
    };
    let (a, b) = (strip(a), strip(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
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
    fn tilde_and_caret_sort_around_the_release() {
        assert_ascending(&["1.0~rc1", "1.0", "1.0^git1", "1.0.1"]);
        assert_ascending(&["1.0~~", "1.0~", "1.0"]);
    }

    #[test]
    fn numbers_beat_letters_and_separators_only_separate() {
        assert_ascending(&["1.0a", "1.0.1"]);
        assert_ascending(&["a", "1"]);
        assert_eq!(cmp("1.0", "1_0"), Ordering::Equal);
        assert_eq!(cmp("1.01", "1.1"), Ordering::Equal);
        assert_eq!(cmp("1.0", "1.0."), Ordering::Equal);
    }

    #[test]
    fn epoch_then_version_then_release() {
        assert_ascending(&["9.9-9", "1:0.1-1", "1:0.1-2", "1:0.2-1", "2:0"]);
        assert_eq!(cmp("0:1.0-1", "1.0-1"), Ordering::Equal);
        assert_ascending(&["1.0", "1.0-3"]);
        assert_ascending(&["1.0-~1", "1.0", "1.0-^1"]);
        assert_ascending(&["2.28-225.el8", "2.28-225.el8_8.6", "2.28-236.el8"]);
    }

    #[test]
    fn only_the_empty_version_is_an_error() {
        assert!(compare("", "1").is_err());
        for odd in [":", "-", "::", "1:", "a:b:c", "~", "^", "\u{fffd}"] {
            assert!(compare(odd, "1").is_ok(), "{odd:?}");
        }
    }
}
