//! A streaming reader of layer tars that bounds what it holds in memory.
//!
//! Layer tars legitimately carry PAX records and GNU long names (deep `node_modules` and
//! `site-packages` paths), so both are read; but a hostile layer can declare an extended header
//! of gigabytes. Extended headers up to [`MAX_EXTENDED_HEADER`] are read; a larger one is
//! skipped unread together with the entry it describes, and reported, so one absurd entry never
//! refuses the image. Entry data is never buffered here: the caller reads what it wants of each
//! entry and the rest is skipped.

use std::io::{self, Read};

/// PAX and GNU long-name headers larger than this are skipped with their entry: real paths are
/// at most a few kilobytes (Linux's `PATH_MAX` is 4 KiB).
pub const MAX_EXTENDED_HEADER: u64 = 1 << 20;

const BLOCK: usize = 512;

/// What kind of entry a header describes, as far as a scan cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Regular,
    Directory,
    /// A hard link (type `1`): the same file as an earlier entry of the archive,
    /// [`EntryHeader::link`] names it.
    HardLink,
    /// Symbolic links, devices, FIFOs: nothing to read.
    Other,
}

/// One entry's header, with PAX and GNU long names applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHeader {
    /// The path as stored, without a leading `./` or `/`.
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits.
    pub mode: u32,
    /// Data bytes.
    pub size: u64,
    /// A hard link's target, cleaned as paths are; `None` for every other kind.
    pub link: Option<String>,
}

impl EntryHeader {
    /// Whether any execute bit is set.
    pub fn executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

/// A malformed tar: the layer cannot be read further.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("reading the layer: {0}")]
    Io(#[from] io::Error),
    #[error("a tar header at byte {offset} is malformed: {reason}")]
    Header { offset: u64, reason: String },
}

/// An entry skipped unread because an extended header before it was over the cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The entry's path as far as known (its own header's name: the long one was not read).
    pub path: String,
    /// What was wrong, for a warning.
    pub reason: String,
}

/// Reads entries one by one. After [`TarStream::next_entry`] returns a header, the caller may
/// read part or all of that entry's data with [`TarStream::data`]; the next call skips the
/// rest.
pub struct TarStream<R: Read> {
    inner: R,
    /// Bytes consumed from `inner`.
    offset: u64,
    /// Data bytes of the current entry not yet read, and its padding.
    remaining: u64,
    padding: u64,
    /// Entries skipped because an extended header was over the cap.
    skipped: Vec<Skipped>,
}

impl<R: Read> TarStream<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            offset: 0,
            remaining: 0,
            padding: 0,
            skipped: Vec::new(),
        }
    }

    /// Entries skipped since the last call, including those just before the archive's end.
    pub fn take_skipped(&mut self) -> Vec<Skipped> {
        std::mem::take(&mut self.skipped)
    }

    /// The underlying reader, for draining what follows the archive's end.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next entry, or `None` at the end of the archive.
    pub fn next_entry(&mut self) -> Result<Option<EntryHeader>, TarError> {
        self.skip_rest()?;
        let mut long_path: Option<String> = None;
        let mut pax_path: Option<String> = None;
        let mut pax_size: Option<u64> = None;
        let mut long_link: Option<String> = None;
        let mut pax_link: Option<String> = None;
        let mut oversized: Option<String> = None;
        loop {
            let Some(block) = self.read_header_block()? else {
                return Ok(None);
            };
            let header_offset = self.offset - BLOCK as u64;
            let size = parse_size(&block[124..136]).ok_or_else(|| TarError::Header {
                offset: header_offset,
                reason: "the size field is not a number".into(),
            })?;
            let typeflag = block[156];
            match typeflag {
                b'x' | b'L' => {
                    if size > MAX_EXTENDED_HEADER {
                        let name = String::from_utf8_lossy(field(&block[0..100])).into_owned();
                        oversized = Some(format!(
                            "an extended header of {size} bytes (the limit is {MAX_EXTENDED_HEADER}) before {name:?}"
                        ));
                        self.discard(padded(size))?;
                        continue;
                    }
                    let data = self.read_exact_vec(size)?;
                    self.discard(padded(size) - size)?;
                    if typeflag == b'L' {
                        long_path = Some(String::from_utf8_lossy(field(&data)).into_owned());
                    } else {
                        let records = pax_records(&data);
                        pax_path = records.path.or(pax_path);
                        pax_size = records.size.or(pax_size);
                        pax_link = records.linkpath.or(pax_link);
                    }
                }
                b'K' if size <= MAX_EXTENDED_HEADER => {
                    // A GNU long link name: a hard link's target may be as deep as any path.
                    let data = self.read_exact_vec(size)?;
                    self.discard(padded(size) - size)?;
                    long_link = Some(String::from_utf8_lossy(field(&data)).into_owned());
                }
                b'g' | b'K' => {
                    // Global PAX records say nothing a scan needs; an absurd long link name is
                    // dropped (the link's target is then the header's own field).
                    self.discard(padded(size))?;
                }
                _ => {
                    let size = pax_size.unwrap_or(size);
                    let path = pax_path
                        .take()
                        .or(long_path.take())
                        .unwrap_or_else(|| ustar_path(&block));
                    self.remaining = size;
                    self.padding = padded(size) - size;
                    let link = pax_link
                        .take()
                        .or(long_link.take())
                        .unwrap_or_else(|| String::from_utf8_lossy(field(&block[157..257])).into());
                    if let Some(reason) = oversized.take() {
                        self.skipped.push(Skipped {
                            path: clean_path(&path),
                            reason: format!("{reason}: entry skipped"),
                        });
                        self.skip_rest()?;
                        (pax_path, pax_size) = (None, None);
                        continue;
                    }
                    let kind = kind_of(typeflag);
                    return Ok(Some(EntryHeader {
                        path: clean_path(&path),
                        kind,
                        mode: parse_octal(&block[100..108]).unwrap_or(0) as u32,
                        size,
                        link: (kind == EntryKind::HardLink).then(|| clean_path(&link)),
                    }));
                }
            }
        }
    }

    /// The current entry's unread data.
    pub fn data(&mut self) -> impl Read + '_ {
        EntryData { stream: self }
    }

    fn skip_rest(&mut self) -> Result<(), TarError> {
        let rest = self.remaining + self.padding;
        self.remaining = 0;
        self.padding = 0;
        self.discard(rest)
    }

    /// A header block, or `None` at the end: a zero block (the end marker) or a clean end of
    /// input.
    fn read_header_block(&mut self) -> Result<Option<[u8; BLOCK]>, TarError> {
        let mut block = [0u8; BLOCK];
        let mut filled = 0;
        while filled < BLOCK {
            match self.inner.read(&mut block[filled..]) {
                Ok(0) if filled == 0 => return Ok(None),
                Ok(0) => {
                    return Err(TarError::Header {
                        offset: self.offset,
                        reason: "the layer ends inside a header".into(),
                    });
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.offset += BLOCK as u64;
        if block.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        if !checksum_matches(&block) {
            return Err(TarError::Header {
                offset: self.offset - BLOCK as u64,
                reason: "its checksum does not match".into(),
            });
        }
        Ok(Some(block))
    }

    fn read_exact_vec(&mut self, size: u64) -> Result<Vec<u8>, TarError> {
        let mut data = Vec::with_capacity(size as usize);
        (&mut self.inner).take(size).read_to_end(&mut data)?;
        self.offset += data.len() as u64;
        if (data.len() as u64) < size {
            return Err(TarError::Header {
                offset: self.offset,
                reason: "the layer ends inside an extended header".into(),
            });
        }
        Ok(data)
    }

    fn discard(&mut self, bytes: u64) -> Result<(), TarError> {
        let copied = io::copy(&mut (&mut self.inner).take(bytes), &mut io::sink())?;
        self.offset += copied;
        if copied < bytes {
            return Err(TarError::Header {
                offset: self.offset,
                reason: "the layer ends inside an entry".into(),
            });
        }
        Ok(())
    }
}

struct EntryData<'a, R: Read> {
    stream: &'a mut TarStream<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(self.stream.remaining as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.stream.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the layer ends inside an entry",
            ));
        }
        self.stream.remaining -= n as u64;
        self.stream.offset += n as u64;
        Ok(n)
    }
}

fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64) * BLOCK as u64
}

fn kind_of(typeflag: u8) -> EntryKind {
    match typeflag {
        b'0' | 0 | b'7' => EntryKind::Regular,
        b'5' => EntryKind::Directory,
        b'1' => EntryKind::HardLink,
        _ => EntryKind::Other,
    }
}

/// A NUL-terminated field's bytes.
fn field(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

fn ustar_path(block: &[u8; BLOCK]) -> String {
    let name = String::from_utf8_lossy(field(&block[0..100]));
    let is_ustar = &block[257..262] == b"ustar";
    let prefix = field(&block[345..500]);
    if is_ustar && !prefix.is_empty() {
        format!("{}/{name}", String::from_utf8_lossy(prefix))
    } else {
        name.into_owned()
    }
}

/// `./usr/bin/x`, `/usr/bin/x` and `usr/bin/x/` all name `usr/bin/x`.
fn clean_path(path: &str) -> String {
    let trimmed = path.trim_start_matches("./").trim_start_matches('/');
    trimmed.trim_end_matches('/').to_owned()
}

fn parse_octal(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field(bytes)).ok()?;
    let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// Sizes are octal, or base-256 (GNU) when the first byte's high bit is set.
fn parse_size(bytes: &[u8]) -> Option<u64> {
    if bytes[0] & 0x80 != 0 {
        let mut value: u64 = u64::from(bytes[0] & 0x7f);
        for &b in &bytes[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        Some(value)
    } else {
        parse_octal(bytes)
    }
}

fn checksum_matches(block: &[u8; BLOCK]) -> bool {
    let Some(stored) = parse_octal(&block[148..156]) else {
        return false;
    };
    let unsigned: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    stored == unsigned || stored as i64 == signed
}

#[derive(Default)]
struct PaxRecords {
    path: Option<String>,
    size: Option<u64>,
    linkpath: Option<String>,
}

/// PAX records: `<length> <key>=<value>\n`, lengths counting the whole record.
fn pax_records(mut data: &[u8]) -> PaxRecords {
    let mut records = PaxRecords::default();
    while !data.is_empty() {
        let Some(space) = data.iter().position(|&b| b == b' ') else {
            break;
        };
        let Some(length) = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
        else {
            break;
        };
        if length <= space + 1 || length > data.len() {
            break;
        }
        let record = &data[space + 1..length];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            let value = String::from_utf8_lossy(&record[eq + 1..]).into_owned();
            match &record[..eq] {
                b"path" => records.path = Some(value),
                b"size" => records.size = value.parse().ok(),
                b"linkpath" => records.linkpath = Some(value),
                _ => {}
            }
        }
        data = &data[length..];
    }
    records
}

/// Layer tars for the tests of this module and of `layer`.
#[cfg(test)]
pub(crate) mod fixtures {
    /// Appends a regular file.
    pub fn append(builder: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, path, data).unwrap();
    }

    /// Appends an entry with no data (a folder, a FIFO).
    pub fn append_empty(
        builder: &mut tar::Builder<Vec<u8>>,
        kind: tar::EntryType,
        path: &str,
        mode: u32,
    ) {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(0);
        header.set_mode(mode);
        builder.append_data(&mut header, path, &[][..]).unwrap();
    }

    /// Appends a GNU long name or long link record (`kind`) one byte over the cap, for the
    /// entry that follows it.
    pub fn append_oversized_long_name(builder: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType) {
        let huge = vec![b'a'; (super::MAX_EXTENDED_HEADER + 1) as usize];
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(huge.len() as u64);
        header.set_path("././@LongLink").unwrap();
        header.set_cksum();
        builder.append(&header, huge.as_slice()).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{append, append_oversized_long_name};
    use super::*;

    fn tar_of(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        builder.into_inner().unwrap()
    }

    fn entries(bytes: &[u8]) -> Vec<(EntryHeader, Vec<u8>)> {
        let mut stream = TarStream::new(bytes);
        let mut out = Vec::new();
        while let Some(header) = stream.next_entry().unwrap() {
            let mut data = Vec::new();
            stream.data().read_to_end(&mut data).unwrap();
            out.push((header, data));
        }
        out
    }

    #[test]
    fn reads_paths_modes_and_data_and_long_names() {
        let deep = format!("usr/lib/node_modules/{}/package.json", "a/".repeat(150));
        let bytes = tar_of(|b| {
            append(b, "./etc/os-release", b"ID=debian\n", 0o644);
            append(b, "usr/bin/tool", b"\x7fELF", 0o755);
            append(b, &deep, b"{}", 0o644);
        });
        let found = entries(&bytes);
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].0.path, "etc/os-release");
        assert_eq!(found[0].1, b"ID=debian\n");
        assert!(!found[0].0.executable());
        assert!(found[1].0.executable());
        assert_eq!(found[2].0.path, deep);
    }

    #[test]
    fn pax_paths_are_read() {
        let deep = format!("opt/{}/METADATA", "b".repeat(300));
        let mut builder = tar::Builder::new(Vec::new());
        let mut pax = Vec::new();
        let record = format!("path={deep}\n");
        let length = record.len() + 4; // "NNN " with a three-digit length
        pax.extend_from_slice(format!("{length} {record}").as_bytes());
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::XHeader);
        header.set_size(pax.len() as u64);
        header.set_path("PaxHeader").unwrap();
        header.set_cksum();
        builder.append(&header, pax.as_slice()).unwrap();
        let mut header = tar::Header::new_ustar();
        header.set_size(2);
        header.set_path("short").unwrap();
        header.set_cksum();
        builder.append(&header, &b"ok"[..]).unwrap();
        let found = entries(&builder.into_inner().unwrap());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0.path, deep);
        assert_eq!(found[0].1, b"ok");
    }

    #[test]
    fn an_oversized_extended_header_skips_only_its_entry() {
        let mut builder = tar::Builder::new(Vec::new());
        append_oversized_long_name(&mut builder, tar::EntryType::GNULongName);
        append(&mut builder, "victim", b"x", 0o644);
        append(&mut builder, "etc/os-release", b"ID=debian\n", 0o644);
        let bytes = builder.into_inner().unwrap();
        let mut stream = TarStream::new(bytes.as_slice());
        let first = stream.next_entry().unwrap().unwrap();
        assert_eq!(first.path, "etc/os-release");
        let skipped = stream.take_skipped();
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].path, "victim");
        assert!(skipped[0].reason.contains("extended header"), "{skipped:?}");
        assert!(stream.next_entry().unwrap().is_none());
    }

    #[test]
    fn hard_links_name_their_target_and_others_have_none() {
        let bytes = tar_of(|b| {
            append(b, "usr/bin/a", b"x", 0o755);
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Link);
            header.set_size(0);
            header.set_mode(0o755);
            b.append_link(&mut header, "usr/bin/b", "./usr/bin/a")
                .unwrap();
            let deep = format!("opt/{}/tool", "d".repeat(200));
            b.append_link(&mut header, "usr/bin/c", &deep).unwrap();
        });
        let found = entries(&bytes);
        assert_eq!(found[0].0.link, None);
        assert_eq!(found[1].0.kind, EntryKind::HardLink);
        assert_eq!(found[1].0.link.as_deref(), Some("usr/bin/a"));
        assert!(found[2].0.link.as_deref().unwrap().ends_with("/tool"));
        assert!(found[2].0.link.as_deref().unwrap().len() > 200);
    }

    #[test]
    fn partly_read_entries_are_skipped_to_the_next() {
        let bytes = tar_of(|b| {
            append(b, "big", &vec![7u8; 5000], 0o644);
            append(b, "next", b"n", 0o644);
        });
        let mut stream = TarStream::new(bytes.as_slice());
        stream.next_entry().unwrap().unwrap();
        let mut head = [0u8; 10];
        stream.data().read_exact(&mut head).unwrap();
        assert_eq!(stream.next_entry().unwrap().unwrap().path, "next");
    }

    #[test]
    fn malformed_tars_are_errors_not_panics() {
        let bytes = tar_of(|b| append(b, "file", &[1u8; 2000], 0o644));
        // Cut inside the data.
        let mut stream = TarStream::new(&bytes[..1000]);
        stream.next_entry().unwrap().unwrap();
        assert!(stream.next_entry().is_err());
        // Cut inside a header.
        assert!(TarStream::new(&bytes[..100]).next_entry().is_err());
        // A bad checksum.
        let mut corrupt = bytes.clone();
        corrupt[10] ^= 0xff;
        assert!(TarStream::new(corrupt.as_slice()).next_entry().is_err());
        // Garbage.
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
        assert!(TarStream::new(garbage.as_slice()).next_entry().is_err());
        // Empty input is an empty archive.
        assert!(TarStream::new(&[][..]).next_entry().unwrap().is_none());
    }

    #[test]
    fn pax_records_tolerate_nonsense() {
        assert_eq!(pax_records(b"99999 path=x\n").path, None);
        assert_eq!(pax_records(b"abc").path, None);
        assert_eq!(pax_records(b"3 x").path, None);
        assert_eq!(pax_records(b"12 path=abc\n").path.as_deref(), Some("abc"));
        let link = pax_records(b"16 linkpath=a/b\n");
        assert_eq!((link.path, link.linkpath.as_deref()), (None, Some("a/b")));
    }

    #[test]
    fn an_absurd_long_link_name_falls_back_to_the_header_field() {
        let mut builder = tar::Builder::new(Vec::new());
        append_oversized_long_name(&mut builder, tar::EntryType::GNULongLink);
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Link);
        header.set_size(0);
        header.set_path("usr/bin/b").unwrap();
        header.set_link_name("usr/bin/a").unwrap();
        header.set_cksum();
        builder.append(&header, &[][..]).unwrap();
        let found = entries(&builder.into_inner().unwrap());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0.link.as_deref(), Some("usr/bin/a"));
    }

    #[test]
    fn base256_sizes_are_read() {
        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[11] = 0x10;
        field[10] = 0x01;
        assert_eq!(parse_size(&field), Some(0x110));
        let overflow = [0xffu8; 12];
        assert_eq!(parse_size(&overflow), None);
    }
}
