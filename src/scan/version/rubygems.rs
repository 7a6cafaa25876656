//! RubyGems' version order (`Gem::Version#<=>`).
//!
//! A version is digits, then dot-separated runs of letters and digits, then an optional
//! `-pre.release` part (a hyphen reads as `.pre.`). It splits into number and letter segments;
//! trailing zero segments are dropped from the release part and from the pre-release part;
//! then segments compare in turn, a missing one counting as 0: numbers as numbers, letters as
//! text, letters before numbers (so `1.0.a` is a pre-release of `1.0`). Unlike RubyGems, an
//! empty version is an error rather than `0`.

use std::cmp::Ordering;

use super::{VersionError, VersionOrder};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment<'a> {
    /// Digits without leading zeros (`""` is zero).
    Number(&'a str),
    Letters(&'a str),
}

impl Ord for Segment<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Number(a), Self::Number(b)) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
            (Self::Letters(a), Self::Letters(b)) => a.cmp(b),
            (Self::Letters(_), Self::Number(_)) => Ordering::Less,
            (Self::Number(_), Self::Letters(_)) => Ordering::Greater,
        }
    }
}

impl PartialOrd for Segment<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

const ZERO: Segment<'static> = Segment::Number("");

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let (a, b) = (canonical_segments(a)?, canonical_segments(b)?);
    let longest = a.len().max(b.len());
    Ok((0..longest)
        .map(|i| a.get(i).unwrap_or(&ZERO).cmp(b.get(i).unwrap_or(&ZERO)))
        .find(|order| *order != Ordering::Equal)
        .unwrap_or(Ordering::Equal))
}

fn canonical_segments(version: &str) -> Result<Vec<Segment<'_>>, VersionError> {
    let trimmed = version.trim();
    if !is_well_formed(trimmed) {
        return Err(VersionError::new(
            VersionOrder::RubyGems,
            version,
            "not a RubyGems version",
        ));
    }
    let segments = segments(trimmed);
    let first_letters = segments
        .iter()
        .position(|s| matches!(s, Segment::Letters(_)))
        .unwrap_or(segments.len());
    let (release, pre_release) = segments.split_at(first_letters);
    let mut canonical = without_trailing_zeros(release);
    canonical.extend(without_trailing_zeros(pre_release));
    Ok(canonical)
}

/// `Gem::Version`'s pattern: digits, `.`-runs of alphanumerics, an optional `-` part of
/// alphanumerics and hyphens in `.`-separated runs.
fn is_well_formed(version: &str) -> bool {
    let (release, pre_release) = match version.split_once('-') {
        Some((release, pre_release)) => (release, Some(pre_release)),
        None => (version, None),
    };
    let mut runs = release.split('.');
    let first_is_digits = runs
        .next()
        .is_some_and(|run| !run.is_empty() && run.bytes().all(|c| c.is_ascii_digit()));
    let alphanumeric =
        |run: &str| !run.is_empty() && run.bytes().all(|c| c.is_ascii_alphanumeric());
    let pre_release_ok = pre_release.is_none_or(|part| {
        part.split('.').all(|run| {
            !run.is_empty() && run.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
    });
    first_is_digits && runs.all(alphanumeric) && pre_release_ok
}

/// Runs of digits and runs of letters; everything else (`.`, `-`) only separates. The hyphen
/// RubyGems rewrites to `.pre.` is the `pre` letters segment added here.
fn segments(version: &str) -> Vec<Segment<'_>> {
    let mut segments = Vec::new();
    let mut rest = version;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphanumeric() || c == '-') {
        rest = &rest[start..];
        if let Some(tail) = rest.strip_prefix('-') {
            segments.push(Segment::Letters("pre"));
            rest = tail;
            continue;
        }
        let digits = rest.as_bytes()[0].is_ascii_digit();
        let end = rest
            .find(|c: char| {
                if digits {
                    !c.is_ascii_digit()
                } else {
                    !c.is_ascii_alphabetic()
                }
            })
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(end);
        segments.push(if digits {
            Segment::Number(run.trim_start_matches('0'))
        } else {
            Segment::Letters(run)
        });
        rest = tail;
    }
    segments
}

fn without_trailing_zeros<'a>(segments: &[Segment<'a>]) -> Vec<Segment<'a>> {
    let keep = segments
        .iter()
        .rposition(|s| *s != ZERO)
        .map_or(0, |i| i + 1);
    segments[..keep].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap()
    }

    #[test]
    fn pre_releases_sort_before_their_release() {
        let ascending = [
            "1.0.a", "1.0.a.2", "1.0.b1", "1.0.rc1", "1.0", "1.0.1", "1.1", "1.10",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(cmp(pair[0], pair[1]), Ordering::Less, "{pair:?}");
            assert_eq!(cmp(pair[1], pair[0]), Ordering::Greater, "{pair:?}");
        }
    }

    #[test]
    fn trailing_zeros_and_hyphens_read_as_rubygems_reads_them() {
        assert_eq!(cmp("1.0.0", "1"), Ordering::Equal);
        assert_eq!(cmp("1.0-rc1", "1.0.pre.rc1"), Ordering::Equal);
        assert_eq!(cmp("1.0-1", "1.0"), Ordering::Less);
        assert_eq!(cmp("1.a.0", "1.a"), Ordering::Equal);
        assert_eq!(cmp("01.2", "1.2"), Ordering::Equal);
        assert_eq!(cmp("1.0a", "1.0.a"), Ordering::Equal);
    }

    #[test]
    fn malformed_versions_are_errors() {
        for bad in [
            "", "a", ".1", "1.", "1..0", "1.0-", "1.0-.a", "1_0", "1.0 2", "-1",
        ] {
            assert!(compare(bad, "1").is_err(), "{bad:?}");
        }
    }
}
