//! Version orders: how each ecosystem sorts its version strings.
//!
//! Owns the [`VersionOrder`] enum and [`compare`], which dispatches to one module per order:
//! `debian.rs` (dpkg), `apk.rs` (apk-tools), `rpm.rs` (`rpmvercmp` with epoch and release),
//! `pep440.rs` (Python), `semver.rs` (npm, crates.io, Go), `maven.rs` (`ComparableVersion`),
//! `rubygems.rs` (`Gem::Version`). A version an order cannot read is a [`VersionError`], never
//! a panic: the caller treats the pair as "cannot compare".

mod apk;
mod debian;
mod maven;
mod pep440;
mod rpm;
mod rubygems;
mod semver;

use std::cmp::Ordering;
use std::fmt;

use super::PackageType;

/// An ecosystem's version order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionOrder {
    /// dpkg: `[epoch:]upstream[-revision]`, `~` before everything (Debian, Ubuntu).
    Debian,
    /// apk-tools: `1.2.3a_rc1~abc-r4` (Alpine, Wolfi, Chainguard).
    Apk,
    /// rpm: `[epoch:]version[-release]` compared with `rpmvercmp` (Red Hat, Rocky, Alma, SUSE).
    Rpm,
    /// PEP 440 (PyPI).
    Pep440,
    /// SemVer 2.0 precedence, a leading `v` or `=` tolerated (npm, crates.io, Go).
    Semver,
    /// Maven 3.8's `ComparableVersion`.
    Maven,
    /// `Gem::Version` (RubyGems).
    RubyGems,
}

impl VersionOrder {
    /// The order of the versions a package database of this type records.
    pub fn of_package_type(kind: PackageType) -> Self {
        match kind {
            PackageType::Deb => Self::Debian,
            PackageType::Apk => Self::Apk,
            PackageType::Rpm => Self::Rpm,
            PackageType::Pypi => Self::Pep440,
            PackageType::Npm | PackageType::Golang | PackageType::Cargo => Self::Semver,
            PackageType::Maven => Self::Maven,
            PackageType::Gem => Self::RubyGems,
        }
    }

    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Debian => "dpkg",
            Self::Apk => "apk",
            Self::Rpm => "rpm",
            Self::Pep440 => "PEP 440",
            Self::Semver => "SemVer",
            Self::Maven => "Maven",
            Self::RubyGems => "RubyGems",
        }
    }
}

impl fmt::Display for VersionOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A version string that an order cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{order} cannot read version {version:?}: {reason}")]
pub struct VersionError {
    pub order: VersionOrder,
    pub version: String,
    pub reason: &'static str,
}

impl VersionError {
    fn new(order: VersionOrder, version: &str, reason: &'static str) -> Self {
        Self {
            order,
            version: version.to_owned(),
            reason,
        }
    }
}

/// Compares two versions in `order`; an error names the first version it cannot read.
pub fn compare(order: VersionOrder, a: &str, b: &str) -> Result<Ordering, VersionError> {
    match order {
        VersionOrder::Debian => debian::compare(a, b),
        VersionOrder::Apk => apk::compare(a, b),
        VersionOrder::Rpm => rpm::compare(a, b),
        VersionOrder::Pep440 => pep440::compare(a, b),
        VersionOrder::Semver => semver::compare(a, b),
        VersionOrder::Maven => maven::compare(a, b),
        VersionOrder::RubyGems => rubygems::compare(a, b),
    }
}

/// Whether `order` can read `version`.
pub fn is_valid(order: VersionOrder, version: &str) -> bool {
    compare(order, version, version).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [VersionOrder; 7] = [
        VersionOrder::Debian,
        VersionOrder::Apk,
        VersionOrder::Rpm,
        VersionOrder::Pep440,
        VersionOrder::Semver,
        VersionOrder::Maven,
        VersionOrder::RubyGems,
    ];

    #[test]
    fn package_types_map_to_their_orders() {
        assert_eq!(
            VersionOrder::of_package_type(PackageType::Deb),
            VersionOrder::Debian
        );
        assert_eq!(
            VersionOrder::of_package_type(PackageType::Golang),
            VersionOrder::Semver
        );
        assert_eq!(
            VersionOrder::of_package_type(PackageType::Gem),
            VersionOrder::RubyGems
        );
    }

    #[test]
    fn every_order_sorts_a_plain_release_sequence() {
        for order in ALL {
            assert_eq!(
                compare(order, "1.2.3", "1.10.0"),
                Ok(Ordering::Less),
                "{order}"
            );
            assert_eq!(
                compare(order, "2.0.0", "2.0.0"),
                Ok(Ordering::Equal),
                "{order}"
            );
        }
    }

    #[test]
    fn malformed_input_is_an_error_or_an_order_never_a_panic() {
        let huge = "9".repeat(10_000);
        let nasty = [
            "",
            " ",
            "-",
            ":",
            "~",
            "^",
            "_",
            ".",
            "1:",
            ":1",
            "-r",
            "1-",
            "v",
            "=",
            "1..2",
            "1.2.",
            "\u{0}",
            "1.0\u{fffd}",
            "💥",
            "1:2:3-4-5",
            huge.as_str(),
        ];
        for order in ALL {
            for a in nasty {
                for b in ["1.0", a] {
                    let _ = compare(order, a, b);
                    let _ = compare(order, b, a);
                }
            }
            assert!(
                compare(order, "", "1.0").is_err(),
                "{order} took an empty version"
            );
        }
    }

    /// Random strings over every order's alphabet: no panic, every readable version equals
    /// itself, and swapping the arguments reverses the answer.
    #[test]
    fn random_strings_compare_antisymmetrically_without_panicking() {
        const ALPHABET: &[u8] = b"0123456789012345.-_~^+:!abcdeprsgZ v";
        let mut state: u64 = 0x5eed;
        let mut next = move || {
            // xorshift64: deterministic, so a failure reproduces.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut random_string = || -> String {
                let len = next() % 12;
                (0..len)
                    .map(|_| char::from(ALPHABET[(next() % ALPHABET.len() as u64) as usize]))
                    .collect()
            };
            let (a, b) = (random_string(), random_string());
            for order in ALL {
                let forward = compare(order, &a, &b).ok();
                let backward = compare(order, &b, &a).ok();
                assert_eq!(
                    forward,
                    backward.map(Ordering::reverse),
                    "{order}: {a:?} vs {b:?}"
                );
                if is_valid(order, &a) {
                    assert_eq!(
                        compare(order, &a, &a),
                        Ok(Ordering::Equal),
                        "{order}: {a:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_error_names_the_order_and_the_version() {
        let error = compare(VersionOrder::Semver, "1.0.0", "one").unwrap_err();
        assert_eq!(error.version, "one");
        assert!(
            error
                .to_string()
                .starts_with("SemVer cannot read version \"one\"")
        );
    }
}
