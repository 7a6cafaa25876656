//! cargo-auditable data in executables: the crates a Rust program was built from.
//!
//! Owns turning the dependency list that `cargo auditable` embeds (the linker section
//! `.dep-v0` in ELF and PE files, in the `__DATA` segment of Mach-O: zlib-compressed JSON,
//! `{"packages": [{"name", "version", "source", "kind", "dependencies", "root"}]}`) into
//! packages. The `auditable-info` crate finds the section, inflates it with a cap of
//! [`MAX_JSON_BYTES`] (a bomb is an error, not an allocation) and checks that the list has
//! no more than one root and no dependency cycles; this module adds that there is a root and
//! that every dependency index names a package.
//!
//! Files the extractor cannot read sections from (not ELF, PE or Mach-O; a damaged or
//! section-less ELF) are `Ok(None)`: the dispatch offers every executable, and only audit data
//! that is present but broken deserves a warning.
//!
//! Reported, as syft's Rust binary cataloger does: every package of kind `runtime` (the
//! default kind), the root crate included; build dependencies (kind `build`) are left out, since
//! none of their code is in the executable.

use auditable_info::Error as AuditError;
use auditable_serde::{DependencyKind, VersionInfo};

use crate::scan::package::{Found, PackageType};

/// The most JSON an executable's audit data may inflate to.
pub const MAX_JSON_BYTES: usize = 8 << 20;

/// The crates compiled into an executable; `Ok(None)` when it carries no audit data (or is no
/// executable format the extractor knows).
pub fn parse(bytes: &[u8]) -> Result<Option<Vec<Found>>, String> {
    let info = match auditable_info::audit_info_from_slice(bytes, MAX_JSON_BYTES) {
        Ok(info) => info,
        Err(AuditError::NoAuditData) => return Ok(None),
        Err(AuditError::OutputLimitExceeded) => {
            return Err(format!(
                "cargo-auditable data inflates past {} MiB",
                MAX_JSON_BYTES >> 20
            ));
        }
        Err(AuditError::BinaryParsing(_)) => return Ok(None),
        Err(e) => return Err(format!("cargo-auditable data unreadable: {e}")),
    };
    check_graph(&info)?;
    let packages = info
        .packages
        .iter()
        .filter(|package| package.kind == DependencyKind::Runtime)
        .map(|package| {
            Found::new(
                PackageType::Cargo,
                &package.name,
                package.version.to_string(),
            )
        })
        .collect();
    Ok(Some(packages))
}

/// One root, and dependencies that point at listed packages.
fn check_graph(info: &VersionInfo) -> Result<(), String> {
    let roots = info.packages.iter().filter(|package| package.root).count();
    if roots != 1 {
        return Err(format!(
            "cargo-auditable data has {roots} root packages, not one"
        ));
    }
    let count = info.packages.len();
    let dangling = info
        .packages
        .iter()
        .flat_map(|package| &package.dependencies)
        .any(|index| *index >= count);
    if dangling {
        return Err("cargo-auditable data names a dependency it does not list".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::ZlibEncoder;

    use super::*;

    /// `cargo auditable build --release` of a program using `itoa` with a build dependency on
    /// `cfg-if`, stripped (see the README beside it).
    const AUDITED: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/scan/catalog/rust/itoa-printer"
    ));

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// A little-endian ELF64 with a `.dep-v0` section holding `section` (and the section-name
    /// table it needs).
    fn elf_with_dep_section(section: &[u8]) -> Vec<u8> {
        let names = b"\0.dep-v0\0.shstrtab\0";
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[6] = 1;
        elf[16..18].copy_from_slice(&2u16.to_le_bytes());
        elf[18..20].copy_from_slice(&62u16.to_le_bytes());
        elf[20..24].copy_from_slice(&1u32.to_le_bytes());
        elf[52..54].copy_from_slice(&64u16.to_le_bytes());
        let names_at = elf.len() as u64;
        elf.extend(names);
        let section_at = elf.len() as u64;
        elf.extend(section);
        elf.resize(elf.len().next_multiple_of(8), 0);
        let headers_at = elf.len() as u64;
        elf[40..48].copy_from_slice(&headers_at.to_le_bytes());
        elf[58..60].copy_from_slice(&64u16.to_le_bytes());
        elf[60..62].copy_from_slice(&3u16.to_le_bytes());
        elf[62..64].copy_from_slice(&2u16.to_le_bytes());
        let header = |name: u32, kind: u32, offset: u64, size: u64| {
            let mut h = [0u8; 64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[24..32].copy_from_slice(&offset.to_le_bytes());
            h[32..40].copy_from_slice(&size.to_le_bytes());
            h[48..56].copy_from_slice(&1u64.to_le_bytes());
            h
        };
        elf.extend([0u8; 64]);
        elf.extend(header(1, 1, section_at, section.len() as u64));
        elf.extend(header(9, 3, names_at, names.len() as u64));
        elf
    }

    fn audited(json: &str) -> Vec<u8> {
        elf_with_dep_section(&zlib(json.as_bytes()))
    }

    fn names(found: &[Found]) -> Vec<String> {
        found
            .iter()
            .map(|p| format!("{} {}", p.name, p.version))
            .collect()
    }

    #[test]
    fn real_audited_binary_lists_runtime_crates_and_the_root() {
        let found = parse(AUDITED).unwrap().unwrap();
        assert_eq!(names(&found), ["audited 0.1.0", "itoa 1.0.19"]);
        assert!(found.iter().all(|p| p.kind == PackageType::Cargo));
    }

    #[test]
    fn build_dependencies_are_left_out() {
        let json = r#"{"packages":[
            {"name":"app","version":"1.0.0","source":"local","dependencies":[1,2],"root":true},
            {"name":"cc","version":"1.2.0","source":"crates.io","kind":"build"},
            {"name":"serde","version":"1.0.200","source":"crates.io"}]}"#;
        let found = parse(&audited(json)).unwrap().unwrap();
        assert_eq!(names(&found), ["app 1.0.0", "serde 1.0.200"]);
    }

    #[test]
    fn executables_without_audit_data_are_not_rust() {
        assert_eq!(parse(b"#!/bin/sh\necho hi\n").unwrap(), None);
        assert_eq!(parse(&[]).unwrap(), None);
        let mut no_section = elf_with_dep_section(b"");
        // Rename the section: the file is a valid ELF without `.dep-v0`.
        no_section[64 + 1] = b'x';
        assert_eq!(parse(&no_section).unwrap(), None);
        // A damaged ELF is not ours to report.
        assert_eq!(parse(&AUDITED[..2000]).unwrap(), None);
        assert_eq!(parse(b"\x7fELF\x02\x01\x01garbage").unwrap(), None);
    }

    #[test]
    fn malformed_audit_data_is_an_error() {
        let cases = [
            (
                "two roots",
                r#"{"packages":[
                {"name":"a","version":"1.0.0","source":"local","root":true},
                {"name":"b","version":"1.0.0","source":"local","root":true}]}"#,
            ),
            (
                "no root",
                r#"{"packages":[{"name":"a","version":"1.0.0","source":"local"}]}"#,
            ),
            (
                "cycle",
                r#"{"packages":[
                {"name":"a","version":"1.0.0","source":"local","dependencies":[1],"root":true},
                {"name":"b","version":"1.0.0","source":"crates.io","dependencies":[2]},
                {"name":"c","version":"1.0.0","source":"crates.io","dependencies":[1]}]}"#,
            ),
            (
                "dangling",
                r#"{"packages":[
                {"name":"a","version":"1.0.0","source":"local","dependencies":[7],"root":true}]}"#,
            ),
            (
                "bad version",
                r#"{"packages":[{"name":"a","version":"one","source":"local","root":true}]}"#,
            ),
            ("wrong type", r#"{"packages":{"name":"a"}}"#),
            ("not json", "packages: []"),
        ];
        for (what, json) in cases {
            assert!(parse(&audited(json)).is_err(), "{what}");
        }
        assert!(parse(&elf_with_dep_section(b"not zlib at all")).is_err());
        let truncated = zlib(br#"{"packages":[]}"#);
        assert!(parse(&elf_with_dep_section(&truncated[..5])).is_err());
    }

    #[test]
    fn a_decompression_bomb_is_refused() {
        let mut json = br#"{"packages":[],"padding":""#.to_vec();
        json.resize(MAX_JSON_BYTES + 1024, b' ');
        let error = parse(&elf_with_dep_section(&zlib(&json))).unwrap_err();
        assert!(error.contains("8 MiB"), "{error}");
    }

    #[test]
    fn garbage_never_panics() {
        let good = audited(
            r#"{"packages":[{"name":"a","version":"1.0.0","source":"local","root":true}]}"#,
        );
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
        }
        let mut flipped = good.clone();
        for index in 0..flipped.len() {
            flipped[index] ^= 0xa5;
            let _ = parse(&flipped);
            flipped[index] ^= 0xa5;
        }
    }
}
