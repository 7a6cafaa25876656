//! dpkg's version order (`deb-version(7)`), as `dpkg --compare-versions` applies it.
//!
//! `[epoch:]upstream[-revision]`: the epoch compares as a number (missing = 0), then upstream
//! and revision (split at the last hyphen; missing = `0`) each by alternating runs: non-digits
//! byte by byte with `~` before the end, the end before letters, letters before everything
//! else; digits as numbers of any length, an empty run counting as 0. Written here rather than
//! taken from the `debversion` crate (0.5.5), which sorts an empty digit run before `0`
//! (`1.` < `1.0`, where dpkg has them equal). Like dpkg, odd characters and a first character
//! that is not a digit are tolerated (dpkg only warns); the errors are dpkg's: empty parts, a
//! bad epoch, embedded spaces.

use std::cmp::Ordering;

use super::{VersionError, VersionOrder};

/// A version split into its three parts; borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts<'a> {
    epoch: u32,
    upstream: &'a [u8],
    revision: &'a [u8],
}

/// The largest epoch dpkg accepts (it reads it into an `int`).
const MAX_EPOCH: u32 = i32::MAX as u32;

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let (a, b) = (parse(a)?, parse(b)?);
    Ok(a.epoch
        .cmp(&b.epoch)
        .then_with(|| compare_part(a.upstream, b.upstream))
        .then_with(|| compare_part(a.revision, b.revision)))
}

fn parse(version: &str) -> Result<Parts<'_>, VersionError> {
    let error = |reason| VersionError::new(VersionOrder::Debian, version, reason);
    let trimmed = version.trim_matches(|c: char| c.is_ascii_whitespace());
    if trimmed.is_empty() {
        return Err(error("the version is empty"));
    }
    if trimmed.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(error("the version has embedded spaces"));
    }
    let (epoch, rest) = match trimmed.split_once(':') {
        Some((epoch, rest)) => (parse_epoch(epoch).map_err(error)?, rest),
        None => (0, trimmed),
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((_, "")) => return Err(error("the revision is empty")),
        Some((upstream, revision)) => (upstream, revision),
        None => (rest, ""),
    };
    if upstream.is_empty() {
        return Err(error("the upstream version is empty"));
    }
    Ok(Parts {
        epoch,
        upstream: upstream.as_bytes(),
        revision: revision.as_bytes(),
    })
}

fn parse_epoch(epoch: &str) -> Result<u32, &'static str> {
    if epoch.is_empty() {
        return Err("the epoch is empty");
    }
    if !epoch.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the epoch is not a number");
    }
    match epoch.parse::<u32>() {
        Ok(value) if value <= MAX_EPOCH => Ok(value),
        _ => Err("the epoch is too big"),
    }
}

/// dpkg's comparison of one part (upstream or revision).
fn compare_part(mut a: &[u8], mut b: &[u8]) -> Ordering {
    while !a.is_empty() || !b.is_empty() {
        let (a_text, a_rest) = split_run(a, |c| !c.is_ascii_digit());
        let (b_text, b_rest) = split_run(b, |c| !c.is_ascii_digit());
        let text = compare_non_digits(a_text, b_text);
        if text != Ordering::Equal {
            return text;
        }
        let (a_digits, a_rest) = split_run(a_rest, |c| c.is_ascii_digit());
        let (b_digits, b_rest) = split_run(b_rest, |c| c.is_ascii_digit());
        let number = compare_digits(a_digits, b_digits);
        if number != Ordering::Equal {
            return number;
        }
        (a, b) = (a_rest, b_rest);
    }
    Ordering::Equal
}

/// The longest prefix whose bytes satisfy `in_run`, and the rest.
fn split_run(text: &[u8], in_run: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    let end = text.iter().position(|&c| !in_run(c)).unwrap_or(text.len());
    text.split_at(end)
}

/// Non-digit runs compare byte by byte, the shorter padded with "end of run".
fn compare_non_digits(a: &[u8], b: &[u8]) -> Ordering {
    let longest = a.len().max(b.len());
    (0..longest)
        .map(|i| weight(a.get(i).copied()).cmp(&weight(b.get(i).copied())))
        .find(|order| *order != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// `~` < end of run < letters < every other byte.
fn weight(byte: Option<u8>) -> i32 {
    match byte {
        Some(b'~') => -1,
        None => 0,
        Some(letter) if letter.is_ascii_alphabetic() => i32::from(letter),
        Some(other) => i32::from(other) + 256,
    }
}

/// Digit runs compare as numbers of any length; an empty run is zero.
fn compare_digits(a: &[u8], b: &[u8]) -> Ordering {
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

    #[test]
    fn matches_the_dpkg_examples_checked_on_this_machine() {
        // deb-version(7) and `dpkg --compare-versions` (dpkg 1.21.22).
        assert_eq!(cmp("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(cmp("1:0.9", "2.0"), Ordering::Greater);
        assert_eq!(cmp("1.0-1", "1.0-1+deb12u1"), Ordering::Less);
        assert_eq!(cmp("1.2.3a", "1.2.3+b1"), Ordering::Less);
        assert_eq!(cmp("2.36.1-8+deb11u1", "2.36.1-8+deb11u2"), Ordering::Less);
        assert_eq!(cmp("1.0", "1.0-0"), Ordering::Equal);
        assert_eq!(cmp("1.", "1.0"), Ordering::Equal);
        assert_eq!(cmp("0:1.0", "1.0"), Ordering::Equal);
        assert_eq!(cmp("1.0-1-2", "1.0-1"), Ordering::Greater);
    }

    #[test]
    fn tilde_sorts_before_the_end_and_letters_before_other_symbols() {
        let ascending = ["1.0~~", "1.0~~a", "1.0~", "1.0", "1.0a", "1.0+", "1.0.1"];
        for pair in ascending.windows(2) {
            assert_eq!(cmp(pair[0], pair[1]), Ordering::Less, "{pair:?}");
            assert_eq!(cmp(pair[1], pair[0]), Ordering::Greater, "{pair:?}");
        }
    }

    #[test]
    fn binary_rebuilds_sort_after_their_source_version() {
        assert_eq!(cmp("2.7.4-1+b1", "2.7.4-1"), Ordering::Greater);
        assert_eq!(cmp("2.7.4-1+b1", "2.7.4-2"), Ordering::Less);
    }

    #[test]
    fn long_numbers_compare_without_overflow() {
        let big = format!("1.{}", "9".repeat(400));
        let bigger = format!("1.1{}", "0".repeat(400));
        assert_eq!(cmp(&big, &bigger), Ordering::Less);
        assert_eq!(cmp("1.0007", "1.7"), Ordering::Equal);
    }

    #[test]
    fn dpkg_syntax_errors_are_errors() {
        for bad in [
            "",
            "  ",
            ":1.0",
            "a:1.0",
            "1.0-",
            "1:-1",
            "1 0",
            "99999999999:1",
            "1.0-1:2",
        ] {
            assert!(compare(bad, "1.0").is_err(), "{bad:?}");
        }
        assert!(compare("2147483647:1", "1").is_ok());
        // dpkg only warns about these, and compares them.
        assert_eq!(cmp("a", "1"), Ordering::Greater);
        assert_eq!(cmp("1.0_a", "1.0"), Ordering::Greater);
        assert_eq!(cmp(" 1.0 ", "1.0"), Ordering::Equal);
    }
}
