//! SemVer 2.0 precedence (npm, crates.io, Go), through the `semver` crate.
//!
//! Build metadata does not take part (`1.0.0+a` equals `1.0.0+b`, so Go's `+incompatible`
//! changes nothing), pre-releases sort before their release and compare field by field. A
//! leading `v` (Go, and npm tolerates it) or `=` (npm) and surrounding spaces are dropped.

use std::cmp::Ordering;

use semver::Version;

use super::{VersionError, VersionOrder};

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(parse(a)?.cmp_precedence(&parse(b)?))
}

fn parse(version: &str) -> Result<Version, VersionError> {
    let trimmed = version.trim();
    let bare = trimmed.strip_prefix('=').unwrap_or(trimmed);
    let bare = bare.strip_prefix('v').unwrap_or(bare);
    Version::parse(bare)
        .map_err(|_| VersionError::new(VersionOrder::Semver, version, "not a SemVer 2.0 version"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_releases_sort_by_their_fields() {
        let ascending = [
            "1.0.0-0",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(compare(pair[0], pair[1]), Ok(Ordering::Less), "{pair:?}");
        }
    }

    #[test]
    fn go_and_npm_prefixes_and_build_metadata_do_not_count() {
        assert_eq!(compare("v2.0.0+incompatible", "2.0.0"), Ok(Ordering::Equal));
        assert_eq!(compare("=1.2.3", "v1.2.3+build.5"), Ok(Ordering::Equal));
        assert_eq!(
            compare("v0.0.0-20191109021931-daa7c04131f5", "0.1.0"),
            Ok(Ordering::Less)
        );
    }

    #[test]
    fn non_semver_versions_are_errors() {
        for bad in [
            "", "1", "1.2", "1.2.3.4", "01.2.3", "1.2.3-", "1.2.3-01", "vv1.2.3", "x",
        ] {
            assert!(compare(bad, "1.0.0").is_err(), "{bad:?}");
        }
    }
}
