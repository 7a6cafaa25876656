//! One layer's inventory: the package files it writes and what it deletes from the layers
//! below, read in one pass over the layer blob as it streams.
//!
//! The blob may be a plain tar, gzip or zstd (sniffed from its first bytes, as the media type
//! may lie). Its uncompressed bytes are hashed on the way, so the inventory is keyed by the
//! layer's diff ID and checked against the config's. Whiteouts are recorded, not applied: the
//! squash (`squash.rs`) applies them to the layers below, as the OCI image spec says. So are
//! entries that declare nothing at a path where a package file could be (a script, a link, a
//! folder): the squash drops what the layers below had there.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::catalog::{self, Interest, MAX_BINARY_BYTES, MAX_TEXT_BYTES};
use super::model::ScanWarning;
use super::package::FileFacts;
use super::tar_stream::{EntryHeader, EntryKind, TarStream};
use crate::cache::digest::Digest;

/// A layer that inflates to more than this many times its compressed size, past
/// [`BOMB_FLOOR`] bytes, is read no further: no real layer compresses that well.
pub const BOMB_RATIO: u64 = 200;
/// Inflated bytes below which the ratio is not checked.
pub const BOMB_FLOOR: u64 = 1 << 30;

const OPAQUE_MARKER: &str = ".wh..wh..opq";
const WHITEOUT_PREFIX: &str = ".wh.";

/// What one layer writes and deletes, as far as packages go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerInventory {
    /// The digest of the uncompressed layer.
    pub diff_id: Digest,
    /// Paths this layer deletes from the layers below (`.wh.<name>` entries), with what is
    /// under them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub whiteouts: Vec<String>,
    /// Folders whose contents in the layers below this layer hides (`.wh..wh..opq`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opaque_dirs: Vec<String>,
    /// Every file of interest the layer writes, in tar order, and every entry that replaces
    /// one (see [`FileRecord`]).
    pub files: Vec<FileRecord>,
    /// Files that could not be read, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ScanWarning>,
    /// Whether every byte of the layer was read. An incomplete inventory is reported but
    /// never cached.
    #[serde(skip, default = "complete")]
    pub complete: bool,
}

fn complete() -> bool {
    true
}

/// A file of interest and what it declares; `facts: None` for one that declares nothing (an
/// executable without embedded package data or that is not ELF, an unreadable database, a
/// link or folder where such a file could be): it still hides the same path in the layers
/// below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<FileFacts>,
}

/// Reads the layer `blob` to its end and returns its inventory. `expected_diff_id` is the
/// config's diff ID for it, when known: a layer whose bytes hash otherwise is reported and
/// not cached. Never fails: what cannot be read becomes a warning.
pub fn inventory_layer(blob: &mut dyn Read, expected_diff_id: Option<&Digest>) -> LayerInventory {
    inventory_layer_within(blob, expected_diff_id, BOMB_FLOOR, true).0
}

/// [`inventory_layer`] for a blob whose own digest the caller computes as it streams: an
/// uncompressed layer is not hashed twice. `true` with the inventory says the layer was
/// uncompressed, so its diff ID is the blob's digest: the caller sets it.
pub fn inventory_streamed_layer(blob: &mut dyn Read) -> (LayerInventory, bool) {
    inventory_layer_within(blob, None, BOMB_FLOOR, false)
}

fn inventory_layer_within(
    blob: &mut dyn Read,
    expected_diff_id: Option<&Digest>,
    bomb_floor: u64,
    hash_plain: bool,
) -> (LayerInventory, bool) {
    let compressed = Rc::new(Cell::new(0u64));
    let mut inventory = LayerInventory {
        diff_id: expected_diff_id.cloned().unwrap_or_else(|| Digest::of(b"")),
        whiteouts: Vec::new(),
        opaque_dirs: Vec::new(),
        files: Vec::new(),
        warnings: Vec::new(),
        complete: true,
    };
    let (hashed, plain) = {
        let counted = CountingReader {
            inner: &mut *blob,
            count: Rc::clone(&compressed),
        };
        let mut buffered = BufReader::with_capacity(1 << 18, counted);
        let compression = match buffered.fill_buf() {
            Ok(head) => Compression::sniff(head),
            Err(e) => {
                inventory.fail(None, format!("reading the layer: {e}"));
                return (inventory, false);
            }
        };
        let plain = compression == Compression::None;
        let mut hashing = HashingReader::new(compression.decoder(buffered), compressed, bomb_floor);
        hashing.hash = hash_plain || !plain;
        read_tar(&mut hashing, &mut inventory);
        (hashing.finish(), plain)
    };
    // Whatever the decoder left unread (a compressed trailer, bytes after a failure) still
    // belongs to the blob: the caller hashes it whole.
    if let Err(e) = io::copy(blob, &mut io::sink()) {
        inventory.fail(None, format!("reading the layer: {e}"));
    }
    match hashed {
        Hashed::Skipped => {}
        Hashed::Failed => settle_diff_id(&mut inventory, None, expected_diff_id),
        Hashed::Digest(digest) => settle_diff_id(&mut inventory, Some(digest), expected_diff_id),
    }
    (inventory, plain && !hash_plain)
}

/// What hashing the uncompressed bytes gave.
enum Hashed {
    Digest(Digest),
    /// A read failed: the diff ID is unknown.
    Failed,
    /// Not hashed: the caller knows the digest.
    Skipped,
}

fn settle_diff_id(
    inventory: &mut LayerInventory,
    hashed: Option<Digest>,
    expected: Option<&Digest>,
) {
    match (hashed, expected) {
        (Some(actual), Some(expected)) if &actual != expected => inventory.fail(
            None,
            format!("its content hashes to {actual}, not to the diff ID the config names"),
        ),
        (Some(actual), None) => inventory.diff_id = actual,
        (None, None) => inventory.complete = false,
        _ => {}
    }
}

impl LayerInventory {
    fn warn(&mut self, path: Option<&str>, message: String) {
        self.warnings.push(ScanWarning {
            path: path.map(|p| format!("/{p}")),
            layer: None,
            message,
        });
    }

    /// A warning after which the layer's inventory is incomplete.
    fn fail(&mut self, path: Option<&str>, message: String) {
        self.warn(path, message);
        self.complete = false;
    }
}

fn read_tar(reader: &mut dyn Read, inventory: &mut LayerInventory) {
    let mut tar = TarStream::new(reader);
    // Where each path's record is in `inventory.files`, for hard links to find their target.
    let mut recorded: HashMap<String, usize> = HashMap::new();
    loop {
        let next = tar.next_entry();
        // Entries skipped before this one, or before the archive's end.
        warn_skipped(&mut tar, inventory);
        let header = match next {
            Ok(Some(header)) => header,
            Ok(None) => break,
            Err(e) => {
                inventory.fail(None, e.to_string());
                return;
            }
        };
        let before = inventory.files.len();
        if let Err(e) = read_entry(&header, &mut tar.data(), &recorded, inventory) {
            inventory.fail(Some(&header.path), format!("reading it: {e}"));
            return;
        }
        if inventory.files.len() > before {
            recorded.insert(header.path, inventory.files.len() - 1);
        }
    }
    // Bytes after the end-of-archive blocks are part of the layer's diff ID.
    if let Err(e) = io::copy(&mut tar.into_inner(), &mut io::sink()) {
        inventory.fail(None, format!("reading the layer: {e}"));
    }
}

fn warn_skipped(tar: &mut TarStream<&mut dyn Read>, inventory: &mut LayerInventory) {
    for skipped in tar.take_skipped() {
        inventory.warn(Some(&skipped.path), skipped.reason);
    }
}

/// Records what one entry means for packages. At most one [`FileRecord`] is pushed.
fn read_entry(
    header: &EntryHeader,
    data: &mut dyn Read,
    recorded: &HashMap<String, usize>,
    inventory: &mut LayerInventory,
) -> io::Result<()> {
    if header.path.split('/').any(|part| part == "..") {
        // The engine refuses such an entry when it applies the layer: it is in no image.
        inventory.warn(
            Some(&header.path),
            "a name that climbs out of the image root; not part of the image".into(),
        );
        return Ok(());
    }
    let (folder, name) = match header.path.rsplit_once('/') {
        Some((folder, name)) => (folder, name),
        None => ("", header.path.as_str()),
    };
    if name == OPAQUE_MARKER {
        inventory.opaque_dirs.push(folder.to_owned());
        return Ok(());
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
        // `.wh..wh.*` other than the opaque marker are aufs bookkeeping, not deletions.
        if !hidden.starts_with(WHITEOUT_PREFIX) && !hidden.is_empty() {
            inventory.whiteouts.push(join(folder, hidden));
        }
        return Ok(());
    }
    match header.kind {
        EntryKind::Regular => read_regular(header, data, inventory),
        EntryKind::HardLink => {
            record_hard_link(header, recorded, inventory);
            Ok(())
        }
        EntryKind::Directory | EntryKind::Other => {
            record_replacement(header, inventory);
            Ok(())
        }
    }
}

/// A regular file the catalogs want: its facts, or `None` when it declares nothing (a shell
/// script where an ELF file was): either way it replaces the same path in the layers below.
fn read_regular(
    header: &EntryHeader,
    data: &mut dyn Read,
    inventory: &mut LayerInventory,
) -> io::Result<()> {
    let Some(interest) = catalog::interest(&header.path, header.executable()) else {
        return Ok(());
    };
    let facts = match read_wanted(header, interest, data, inventory)? {
        Some(bytes) => examine(header, &bytes, inventory),
        None => None,
    };
    inventory.files.push(FileRecord {
        path: header.path.clone(),
        facts,
    });
    Ok(())
}

fn examine(
    header: &EntryHeader,
    bytes: &[u8],
    inventory: &mut LayerInventory,
) -> Option<FileFacts> {
    match catalog::examine(&header.path, header.executable(), bytes) {
        Ok(facts) => facts,
        Err(message) => {
            inventory.warn(Some(&header.path), message);
            None
        }
    }
}

/// A symbolic link, device, FIFO or folder where a package file may have been: it declares
/// nothing, and hides what the layers below had at that path. Any path an executable could
/// have is recorded for a link (a link's mode says nothing); a folder only at a path a
/// database, manifest or archive would have, as every folder of an image would otherwise be
/// recorded.
fn record_replacement(header: &EntryHeader, inventory: &mut LayerInventory) {
    let any_mode = header.kind != EntryKind::Directory;
    if catalog::interest(&header.path, any_mode).is_some() {
        inventory.files.push(FileRecord {
            path: header.path.clone(),
            facts: None,
        });
    }
}

/// A hard link is the file of an earlier entry of the same layer (a layer tar names each file
/// once, then links to it). It gets the facts its target's record has when the catalogs treat
/// both paths alike; otherwise (no record of the target, or a target read as another kind of
/// file) it declares nothing, so at least it hides what the layers below had at its path.
fn record_hard_link(
    header: &EntryHeader,
    recorded: &HashMap<String, usize>,
    inventory: &mut LayerInventory,
) {
    let Some(interest) = catalog::interest(&header.path, true) else {
        return;
    };
    let facts = header
        .link
        .as_deref()
        .filter(|target| catalog::interest(target, true) == Some(interest))
        .and_then(|target| recorded.get(target))
        .and_then(|&index| inventory.files[index].facts.clone());
    inventory.files.push(FileRecord {
        path: header.path.clone(),
        facts,
    });
}

/// The entry's bytes when the catalogers should see them: text files and archives under
/// their caps, executables that are ELF files under theirs. `None`: not read.
fn read_wanted(
    header: &EntryHeader,
    interest: Interest,
    data: &mut dyn Read,
    inventory: &mut LayerInventory,
) -> io::Result<Option<Vec<u8>>> {
    let cap = match interest {
        Interest::Text => MAX_TEXT_BYTES,
        Interest::Archive | Interest::Executable => MAX_BINARY_BYTES,
    };
    let mut head = [0u8; 4];
    let head_len = read_up_to(data, &mut head)?;
    if interest == Interest::Executable && !catalog::is_elf(&head[..head_len]) {
        return Ok(None);
    }
    if header.size > cap {
        inventory.warn(
            Some(&header.path),
            format!("not read: {} bytes, over the limit of {cap}", header.size),
        );
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(header.size as usize);
    bytes.extend_from_slice(&head[..head_len]);
    data.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

fn read_up_to(data: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match data.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_owned()
    } else {
        format!("{folder}/{name}")
    }
}

/// How a layer blob is compressed, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Self::Zstd
        } else {
            Self::None
        }
    }

    fn decoder<'a>(self, input: BufReader<CountingReader<'a>>) -> Box<dyn Read + 'a> {
        match self {
            Self::None => Box::new(input),
            Self::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
            Self::Zstd => match zstd::stream::read::Decoder::with_buffer(input) {
                Ok(decoder) => Box::new(decoder),
                Err(e) => Box::new(FailingReader(Some(e))),
            },
        }
    }
}

/// Counts the compressed bytes the decoder takes.
struct CountingReader<'a> {
    inner: &'a mut dyn Read,
    count: Rc<Cell<u64>>,
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

struct FailingReader(Option<io::Error>);

impl Read for FailingReader {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| io::Error::other("the layer cannot be decompressed")))
    }
}

/// Hashes the uncompressed bytes as they pass and stops a decompression bomb.
struct HashingReader<'a> {
    inner: Box<dyn Read + 'a>,
    hasher: Sha256,
    inflated: u64,
    compressed: Rc<Cell<u64>>,
    bomb_floor: u64,
    failed: bool,
    hash: bool,
}

impl<'a> HashingReader<'a> {
    fn new(inner: Box<dyn Read + 'a>, compressed: Rc<Cell<u64>>, bomb_floor: u64) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            inflated: 0,
            compressed,
            bomb_floor,
            failed: false,
            hash: true,
        }
    }

    /// The diff ID, when every byte passed without error.
    fn finish(self) -> Hashed {
        if self.failed {
            return Hashed::Failed;
        }
        if !self.hash {
            return Hashed::Skipped;
        }
        Hashed::Digest(Digest::from_hasher(self.hasher))
    }
}

impl Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|_| self.failed = true)?;
        if self.hash {
            self.hasher.update(&buf[..n]);
        }
        self.inflated += n as u64;
        let compressed = self.compressed.get().max(1);
        if self.inflated > self.bomb_floor && self.inflated / compressed > BOMB_RATIO {
            self.failed = true;
            return Err(io::Error::other(format!(
                "it inflates to more than {BOMB_RATIO} times its compressed size \
                 ({} bytes from {compressed}): read no further (a decompression bomb?)",
                self.inflated
            )));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::tar_stream::fixtures::{append, append_empty, append_oversized_long_name};

    pub(crate) fn layer_tar(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data, mode) in files {
            append(&mut builder, path, data, *mode);
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    const OS_RELEASE: &[u8] = b"ID=debian\nVERSION_ID=\"12\"\n";

    #[test]
    fn whiteouts_and_opaque_folders_are_recorded_and_hidden() {
        let tar = layer_tar(&[
            ("usr/lib/python3/.wh.foo-1.0.dist-info", b"", 0o644),
            ("opt/app/.wh..wh..opq", b"", 0o644),
            ("opt/.wh..wh.plnk", b"", 0o644),
            ("etc/os-release", OS_RELEASE, 0o644),
        ]);
        let inventory = inventory_layer(&mut tar.as_slice(), None);
        assert!(inventory.complete, "{:?}", inventory.warnings);
        assert_eq!(inventory.whiteouts, ["usr/lib/python3/foo-1.0.dist-info"]);
        assert_eq!(inventory.opaque_dirs, ["opt/app"]);
        assert_eq!(inventory.files.len(), 1);
        assert_eq!(inventory.files[0].path, "etc/os-release");
        assert_eq!(inventory.diff_id, Digest::of(&tar));
    }

    #[test]
    fn compressed_layers_give_the_uncompressed_diff_id() {
        let tar = layer_tar(&[("etc/os-release", OS_RELEASE, 0o644)]);
        let gz = gzip(&tar);
        let inventory = inventory_layer(&mut gz.as_slice(), Some(&Digest::of(&tar)));
        assert!(inventory.complete, "{:?}", inventory.warnings);
        let zst = zstd::encode_all(tar.as_slice(), 3).unwrap();
        let inventory = inventory_layer(&mut zst.as_slice(), None);
        assert_eq!(inventory.diff_id, Digest::of(&tar));
        assert_eq!(inventory.files.len(), 1);
    }

    #[test]
    fn a_diff_id_mismatch_is_a_warning_and_incomplete() {
        let tar = layer_tar(&[("etc/os-release", OS_RELEASE, 0o644)]);
        let other = Digest::of(b"other");
        let inventory = inventory_layer(&mut tar.as_slice(), Some(&other));
        assert!(!inventory.complete);
        assert!(inventory.warnings[0].message.contains("hashes to"));
    }

    #[test]
    fn traversal_names_are_warned_and_left_out() {
        // The tar crate refuses to write such names: set the header's bytes directly.
        let mut builder = tar::Builder::new(Vec::new());
        for name in ["../etc/os-release", "etc/../../etc/os-release"] {
            let mut header = tar::Header::new_gnu();
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_size(OS_RELEASE.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            builder.append(&header, OS_RELEASE).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let inventory = inventory_layer(&mut tar.as_slice(), None);
        assert!(inventory.complete);
        assert!(inventory.files.is_empty());
        assert_eq!(inventory.warnings.len(), 2);
    }

    #[test]
    fn non_elf_executables_are_kept_declaring_nothing() {
        let tar = layer_tar(&[("usr/bin/script", b"#!/bin/sh\necho hi\n", 0o755)]);
        let inventory = inventory_layer(&mut tar.as_slice(), None);
        assert_eq!(
            inventory.files,
            [FileRecord {
                path: "usr/bin/script".into(),
                facts: None
            }]
        );
    }

    /// A cargo-auditable ELF file: it declares crates.
    const AUDITED: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/scan/catalog/rust/itoa-printer"
    ));
    const APP: &str = "usr/local/bin/app";

    /// The crates of the final image when `upper` is laid over a layer holding the audited
    /// binary at [`APP`].
    fn crates_over_audited(upper: Vec<u8>) -> Vec<String> {
        let lower = layer_tar(&[(APP, AUDITED, 0o755)]);
        let layers = [
            inventory_layer(&mut lower.as_slice(), None),
            inventory_layer(&mut upper.as_slice(), None),
        ];
        assert!(
            !crate::scan::squash::squash(&layers[..1])
                .packages
                .is_empty()
        );
        let squashed = crate::scan::squash::squash(&layers);
        squashed
            .packages
            .iter()
            .map(|p| p.found.name.clone())
            .collect()
    }

    fn link_tar(kind: tar::EntryType, path: &str, target: &str, mode: u32) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(0);
        header.set_mode(mode);
        builder.append_link(&mut header, path, target).unwrap();
        builder.into_inner().unwrap()
    }

    #[test]
    fn a_script_over_a_package_binary_hides_its_packages() {
        let script = layer_tar(&[(APP, b"#!/bin/sh\nexec true\n", 0o755)]);
        assert_eq!(crates_over_audited(script), Vec::<String>::new());
    }

    #[test]
    fn a_symlink_or_folder_over_a_package_binary_hides_its_packages() {
        for mode in [0o777, 0o644] {
            let link = link_tar(tar::EntryType::Symlink, APP, "/bin/true", mode);
            assert_eq!(crates_over_audited(link), Vec::<String>::new(), "{mode:o}");
        }
        let mut builder = tar::Builder::new(Vec::new());
        append_empty(&mut builder, tar::EntryType::Fifo, APP, 0o644);
        let fifo = builder.into_inner().unwrap();
        assert_eq!(crates_over_audited(fifo), Vec::<String>::new());
        // A folder over a jar: the folder declares nothing.
        let jar = "opt/app/lib/a.jar";
        let mut builder = tar::Builder::new(Vec::new());
        append_empty(
            &mut builder,
            tar::EntryType::Directory,
            &format!("{jar}/"),
            0o755,
        );
        let inventory = inventory_layer(&mut builder.into_inner().unwrap().as_slice(), None);
        assert_eq!(inventory.files[0].path, jar);
        assert_eq!(inventory.files[0].facts, None);
    }

    #[test]
    fn a_hard_link_to_a_package_binary_has_its_facts_and_one_elsewhere_hides_the_lower() {
        // In one layer: the binary, then a hard link to it (as a layer tar names a file once).
        let mut builder = tar::Builder::new(Vec::new());
        append(&mut builder, "opt/bin/tool", AUDITED, 0o755);
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Link);
        header.set_size(0);
        header.set_mode(0o755);
        builder
            .append_link(&mut header, "usr/bin/tool", "opt/bin/tool")
            .unwrap();
        let tar = builder.into_inner().unwrap();
        let inventory = inventory_layer(&mut tar.as_slice(), None);
        assert!(inventory.complete, "{:?}", inventory.warnings);
        assert_eq!(inventory.files.len(), 2);
        assert!(inventory.files[1].facts.is_some());
        assert_eq!(inventory.files[1].facts, inventory.files[0].facts);
        // A hard link whose target this layer did not record: it declares nothing.
        let link = link_tar(tar::EntryType::Link, APP, "usr/share/doc/readme", 0o755);
        assert_eq!(crates_over_audited(link), Vec::<String>::new());
    }

    #[test]
    fn an_oversized_extended_header_on_the_last_entry_is_warned_with_its_path() {
        let mut builder = tar::Builder::new(Vec::new());
        append(&mut builder, "etc/os-release", OS_RELEASE, 0o644);
        append_oversized_long_name(&mut builder, tar::EntryType::GNULongName);
        append(&mut builder, "victim", b"x", 0o644);
        let tar = builder.into_inner().unwrap();
        let inventory = inventory_layer(&mut tar.as_slice(), None);
        assert_eq!(inventory.files.len(), 1);
        assert_eq!(inventory.warnings.len(), 1, "{:?}", inventory.warnings);
        assert_eq!(inventory.warnings[0].path.as_deref(), Some("/victim"));
        assert!(inventory.warnings[0].message.contains("extended header"));
    }

    #[test]
    fn a_truncated_or_garbage_layer_is_a_warning() {
        let tar = layer_tar(&[("etc/os-release", &[b'x'; 3000], 0o644)]);
        let mut cut = &tar[..1200];
        let inventory = inventory_layer(&mut cut, None);
        assert!(!inventory.complete);
        assert!(!inventory.warnings.is_empty());
        let garbage = gzip(b"not a tar at all, just some words that go on for a while");
        let inventory = inventory_layer(&mut garbage.as_slice(), None);
        assert!(!inventory.complete);
        let bad_gzip = [0x1f, 0x8b, 0, 1, 2, 3];
        let inventory = inventory_layer(&mut bad_gzip.as_slice(), None);
        assert!(!inventory.complete);
    }

    #[test]
    fn a_decompression_bomb_is_stopped() {
        // A tar whose one file is 64 MiB of zeros, against a floor of 8 MiB.
        let floor = 8 << 20;
        let size = 64 << 20;
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_path("zeros").unwrap();
        header.set_cksum();
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        {
            use std::io::Write;
            encoder.write_all(header.as_bytes()).unwrap();
            let zeros = vec![0u8; 1 << 20];
            let mut left = size;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                encoder.write_all(&zeros[..n]).unwrap();
                left -= n as u64;
            }
        }
        let bomb = encoder.finish().unwrap();
        let (inventory, _) = inventory_layer_within(&mut bomb.as_slice(), None, floor, true);
        assert!(!inventory.complete);
        assert!(
            inventory
                .warnings
                .iter()
                .any(|w| w.message.contains("decompression bomb")),
            "{:?}",
            inventory.warnings
        );
    }
}
