//! PEP 440's version order (PyPI), through the `pep440_rs` crate.
//!
//! Epochs, pre-, post- and dev-releases and local versions are all `pep440_rs`'s; this module
//! only turns its parse error into a [`VersionError`]. Legacy (non-PEP 440) versions are
//! errors, as `packaging` 22 and later makes them.

use std::cmp::Ordering;
use std::str::FromStr;

use pep440_rs::Version;

use super::{VersionError, VersionOrder};

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(parse(a)?.cmp(&parse(b)?))
}

fn parse(version: &str) -> Result<Version, VersionError> {
    Version::from_str(version)
        .map_err(|_| VersionError::new(VersionOrder::Pep440, version, "not a PEP 440 version"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_post_dev_local_and_epoch_sort_as_pep_440_says() {
        let ascending = [
            "1.0.dev1",
            "1.0a1.dev1",
            "1.0a1",
            "1.0b2",
            "1.0rc1",
            "1.0",
            "1.0+local.1",
            "1.0.post1.dev1",
            "1.0.post1",
            "1.1",
            "1!0.1",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(compare(pair[0], pair[1]), Ok(Ordering::Less), "{pair:?}");
        }
        assert_eq!(compare("1.0", "1.0.0"), Ok(Ordering::Equal));
        assert_eq!(compare("v1.0RC1", "1.0rc1"), Ok(Ordering::Equal));
    }

    #[test]
    fn legacy_versions_are_errors() {
        for bad in ["", "1.0-foo-bar", "one", "1.0+", "1..0", "1.0+loc@l"] {
            assert!(compare(bad, "1.0").is_err(), "{bad:?}");
        }
    }
}
