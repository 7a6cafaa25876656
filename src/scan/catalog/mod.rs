//! Which files of an image declare packages, and the parser of each format.
//!
//! The layer reader asks [`interest`] about every regular file it passes (by path, without
//! reading it), buffers the ones of interest up to a cap, and hands their bytes to [`examine`].
//! Paths are relative to the image root, without a leading `/` or `./` (`var/lib/dpkg/status`).
//! Every parser is pure: bytes in, [`FileFacts`] or an error message out (the caller adds the
//! file and layer to the warning).

use super::package::FileFacts;

pub mod apk;
pub mod dpkg;
pub mod gem;
pub mod golang;
pub mod java;
pub mod npm;
pub mod os_release;
pub mod python;
pub mod rpm;
pub mod rust;

/// Files larger than this are not read (a warning names them): real package databases and
/// manifests are far smaller, and the cap bounds memory against hostile layers.
pub const MAX_TEXT_BYTES: u64 = 64 << 20;

/// Executables and archives larger than this are not read for embedded package data.
pub const MAX_BINARY_BYTES: u64 = 256 << 20;

/// How the layer reader should treat a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// A text database or manifest: buffer it whole (up to [`MAX_TEXT_BYTES`]).
    Text,
    /// A zip archive (jar, war, ear): buffer it whole (up to [`MAX_BINARY_BYTES`]).
    Archive,
    /// An executable file: buffer it only when its first bytes are an ELF header (up to
    /// [`MAX_BINARY_BYTES`]), then look for Go build info and cargo-auditable data.
    Executable,
}

/// Whether a regular file at `path` (with any execute bit set when `executable`) may declare
/// packages.
pub fn interest(path: &str, executable: bool) -> Option<Interest> {
    let text = dpkg::wants(path)
        || apk::wants(path)
        || rpm::wants(path)
        || python::wants(path)
        || npm::wants(path)
        || gem::wants(path)
        || os_release::wants(path);
    if text {
        Some(Interest::Text)
    } else if java::wants(path) {
        Some(Interest::Archive)
    } else if executable {
        Some(Interest::Executable)
    } else {
        None
    }
}

/// What the file at `path` declares. `Ok(None)`: nothing (an executable without embedded
/// package data, a helper `package.json` that is not a package root). `Err`: the file is one
/// of ours but malformed; the message says what is wrong (not where: the caller adds that).
pub fn examine(path: &str, executable: bool, bytes: &[u8]) -> Result<Option<FileFacts>, String> {
    if dpkg::wants(path) {
        dpkg::parse(path, bytes).map(Some)
    } else if apk::wants(path) {
        apk::parse(bytes).map(Some)
    } else if rpm::wants(path) {
        rpm::parse(path, bytes).map(Some)
    } else if python::wants(path) {
        python::parse(path, bytes).map(Some)
    } else if npm::wants(path) {
        npm::parse(path, bytes)
    } else if gem::wants(path) {
        gem::parse(bytes).map(Some)
    } else if os_release::wants(path) {
        os_release::parse(bytes).map(Some)
    } else if java::wants(path) {
        java::parse(path, bytes)
    } else if executable {
        examine_executable(bytes)
    } else {
        Ok(None)
    }
}

/// An executable's embedded package lists: Go build info, else cargo-auditable data.
fn examine_executable(bytes: &[u8]) -> Result<Option<FileFacts>, String> {
    if let Some(packages) = golang::parse(bytes)? {
        return Ok(Some(FileFacts::Packages {
            database: false,
            packages,
        }));
    }
    Ok(rust::parse(bytes)?.map(|packages| FileFacts::Packages {
        database: false,
        packages,
    }))
}

/// Whether `bytes` start like an ELF file: the only executables worth buffering.
pub fn is_elf(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF")
}
