//! rpm databases: sqlite read; Berkeley DB and NDB reported as not read.
//!
//! Owns the rpm package database in its three places (`var/lib/rpm`, `usr/lib/sysimage/rpm`,
//! `usr/share/rpm`) and three formats: `rpmdb.sqlite` (Fedora 33+, RHEL 9+) is read;
//! `Packages` (Berkeley DB: RHEL 8 and older, Amazon Linux 2) and `Packages.db` (NDB: SUSE)
//! come back as [`FileFacts::NotRead`] with a reason, never as an empty list.
//!
//! `rpmdb.sqlite` keeps one rpm header per installed package in the `blob` column of its
//! `Packages` table. A header blob is: the index length `il` and data length `dl` (big-endian
//! u32), `il` index entries of 16 bytes (tag, type, offset into the data store, count), then the
//! `dl`-byte data store. Every offset and count is checked against the blob before use.
//!
//! Packages are reported as syft's rpm cataloger does: the name; the version as
//! `[epoch:]version-release` (the epoch only when the header has one); the architecture; the
//! LICENSE string as the one licence; every header, `gpg-pubkey` pseudo-packages included
//! (syft keeps them too). The source name is the SOURCERPM file name without
//! `-<version>-<release>.src.rpm`, left out when it is the package's own name.

use std::io::Read;

use rusqlite::{Connection, MAIN_DB};

use crate::scan::package::{FileFacts, Found, PackageType};

/// The directories an rpm database lives in, by distribution and rpm version.
const DATABASE_DIRS: [&str; 3] = ["var/lib/rpm", "usr/lib/sysimage/rpm", "usr/share/rpm"];
const SQLITE_FILE: &str = "rpmdb.sqlite";
const BERKELEY_FILE: &str = "Packages";
const NDB_FILE: &str = "Packages.db";

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_LICENSE: u32 = 1014;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18N_STRING: u32 = 9;

/// rpm's own limits on a header: index entries and data store bytes.
const MAX_INDEX_ENTRIES: usize = 0xffff;
const MAX_DATA_BYTES: usize = 256 << 20;
const INDEX_ENTRY_LEN: usize = 16;

/// Whether `path` is an rpm database in any of its formats.
pub fn wants(path: &str) -> bool {
    path.rsplit_once('/').is_some_and(|(dir, file)| {
        DATABASE_DIRS.contains(&dir) && [SQLITE_FILE, BERKELEY_FILE, NDB_FILE].contains(&file)
    })
}

/// The packages of an `rpmdb.sqlite`; a not-read reason for the other formats.
pub fn parse(path: &str, bytes: &[u8]) -> Result<FileFacts, String> {
    let file = path.rsplit_once('/').map_or(path, |(_, file)| file);
    if file == SQLITE_FILE {
        return Ok(FileFacts::Packages {
            database: true,
            packages: read_sqlite(bytes)?,
        });
    }
    // rpm leaves an empty file behind after converting a database: nothing to miss there.
    if bytes.is_empty() {
        return Ok(FileFacts::Packages {
            database: true,
            packages: Vec::new(),
        });
    }
    let reason = if file == NDB_FILE {
        "an rpm database in the NDB format (SUSE); only rpmdb.sqlite databases are read, \
         so the rpm packages of this image are not listed"
    } else {
        "an rpm database in the Berkeley DB format (RHEL/CentOS 8 and older, Amazon Linux 2); \
         only rpmdb.sqlite databases are read, so the rpm packages of this image are not listed"
    };
    Ok(FileFacts::NotRead {
        reason: reason.to_string(),
    })
}

/// Every package header of an `rpmdb.sqlite` held in memory.
fn read_sqlite(bytes: &[u8]) -> Result<Vec<Found>, String> {
    let connection = open_in_memory(bytes)?;
    let mut statement = connection
        .prepare("SELECT blob FROM Packages ORDER BY hnum")
        .map_err(|e| format!("rpm sqlite database unreadable: {e}"))?;
    let blobs = statement
        .query_map([], |row| row.get::<_, Vec<u8>>(0))
        .map_err(|e| format!("rpm sqlite database unreadable: {e}"))?;
    let mut packages = Vec::new();
    for blob in blobs {
        let blob = blob.map_err(|e| format!("rpm sqlite database unreadable: {e}"))?;
        if let Some(package) = package(&Header::parse(&blob)?)? {
            packages.push(package);
        }
    }
    Ok(packages)
}

/// A read-only in-memory SQLite database with the contents of `bytes`.
fn open_in_memory(bytes: &[u8]) -> Result<Connection, String> {
    if bytes.is_empty() {
        return Err("rpm sqlite database is empty".to_string());
    }
    let mut connection = Connection::open_in_memory()
        .map_err(|e| format!("cannot open an in-memory database: {e}"))?;
    connection
        .deserialize_read_exact(MAIN_DB, without_wal(bytes), bytes.len(), true)
        .map_err(|e| format!("rpm sqlite database unreadable: {e}"))?;
    Ok(connection)
}

/// `bytes` with the header's WAL mode marks (bytes 18 and 19, both 2) set to the rollback
/// journal's (1): rpm writes its database in WAL mode, and SQLite refuses a WAL database in
/// memory. The journal mode says nothing of the data, and a checkpointed file holds it all.
fn without_wal(bytes: &[u8]) -> impl Read + '_ {
    let wal = bytes.starts_with(b"SQLite format 3\0") && bytes.get(18..20) == Some(&[2, 2]);
    let (head, patch, tail) = if wal {
        (&bytes[..18], &[1u8, 1][..], &bytes[20..])
    } else {
        (bytes, &[][..], &[][..])
    };
    head.chain(patch).chain(tail)
}

/// One index entry of a header.
#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u32,
    kind: u32,
    offset: usize,
    count: u32,
}

/// An rpm header: its index and data store.
#[derive(Debug)]
struct Header<'a> {
    entries: Vec<Entry>,
    store: &'a [u8],
}

impl<'a> Header<'a> {
    fn parse(blob: &'a [u8]) -> Result<Self, String> {
        let index_len = be_u32(blob, 0)? as usize;
        let data_len = be_u32(blob, 4)? as usize;
        if index_len > MAX_INDEX_ENTRIES || data_len > MAX_DATA_BYTES {
            return Err(format!(
                "rpm header claims {index_len} tags and {data_len} data bytes, past rpm's limits"
            ));
        }
        let index_end = 8 + index_len * INDEX_ENTRY_LEN;
        let store = blob
            .get(index_end..index_end + data_len)
            .ok_or("rpm header is shorter than its index and data lengths")?;
        let entries = blob[8..index_end]
            .chunks_exact(INDEX_ENTRY_LEN)
            .map(|raw| Entry {
                tag: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
                kind: u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]),
                offset: u32::from_be_bytes([raw[8], raw[9], raw[10], raw[11]]) as usize,
                count: u32::from_be_bytes([raw[12], raw[13], raw[14], raw[15]]),
            })
            .collect();
        Ok(Self { entries, store })
    }

    fn entry(&self, tag: u32) -> Option<Entry> {
        self.entries.iter().copied().find(|entry| entry.tag == tag)
    }

    /// A string tag (the first string of an array or an i18n table).
    fn string(&self, tag: u32) -> Result<Option<String>, String> {
        let Some(entry) = self.entry(tag) else {
            return Ok(None);
        };
        if ![TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18N_STRING].contains(&entry.kind) {
            return Err(format!(
                "rpm header tag {tag} has type {}, not a string",
                entry.kind
            ));
        }
        let text = self
            .store
            .get(entry.offset..)
            .and_then(|rest| {
                rest.split(|byte| *byte == 0)
                    .next()
                    .filter(|s| s.len() < rest.len())
            })
            .ok_or_else(|| format!("rpm header tag {tag} runs past the data store"))?;
        Ok(Some(String::from_utf8_lossy(text).into_owned()))
    }

    /// The first value of an INT32 tag.
    fn int32(&self, tag: u32) -> Result<Option<u32>, String> {
        let Some(entry) = self.entry(tag) else {
            return Ok(None);
        };
        if entry.kind != TYPE_INT32 || entry.count == 0 {
            return Err(format!("rpm header tag {tag} is not a number"));
        }
        be_u32(self.store, entry.offset)
            .map(Some)
            .map_err(|_| format!("rpm header tag {tag} runs past the data store"))
    }
}

fn be_u32(bytes: &[u8], at: usize) -> Result<u32, String> {
    bytes
        .get(at..at.saturating_add(4))
        .and_then(|word| word.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| "rpm header is truncated".to_string())
}

/// The package a header describes; `None` for a header without a name or version.
fn package(header: &Header) -> Result<Option<Found>, String> {
    let (Some(name), Some(version)) = (header.string(TAG_NAME)?, header.string(TAG_VERSION)?)
    else {
        return Ok(None);
    };
    let release = header.string(TAG_RELEASE)?.unwrap_or_default();
    let version_release = format!("{version}-{release}");
    let full_version = match header.int32(TAG_EPOCH)? {
        Some(epoch) => format!("{epoch}:{version_release}"),
        None => version_release.clone(),
    };
    let mut found = Found::new(PackageType::Rpm, &name, full_version);
    found.arch = header.string(TAG_ARCH)?;
    if let Some(license) = header.string(TAG_LICENSE)?.filter(|l| !l.is_empty()) {
        found.licenses.push(license);
    }
    if let Some((source, source_version)) = header
        .string(TAG_SOURCERPM)?
        .as_deref()
        .and_then(split_source_rpm)
    {
        found.source_version =
            (source_version != version_release).then(|| source_version.to_string());
        found.source_name = (source != name).then(|| source.to_string());
    }
    Ok(Some(found))
}

/// `name-1.2-3.fc40.src.rpm` as (`name`, `1.2-3.fc40`).
fn split_source_rpm(file: &str) -> Option<(&str, &str)> {
    let stem = file
        .strip_suffix(".src.rpm")
        .or_else(|| file.strip_suffix(".nosrc.rpm"))?;
    let (name_version, _release) = stem.rsplit_once('-')?;
    let (name, _version) = name_version.rsplit_once('-')?;
    let version_release = &stem[name.len() + 1..];
    (!name.is_empty()).then_some((name, version_release))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two packages installed with `rpm --justdb` into an empty sqlite database (see the
    /// README beside it).
    const RPMDB: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/scan/catalog/rpm/rpmdb.sqlite"
    ));

    fn packages(facts: FileFacts) -> Vec<Found> {
        match facts {
            FileFacts::Packages { database, packages } => {
                assert!(database);
                packages
            }
            other => panic!("expected packages, got {other:?}"),
        }
    }

    /// A header blob from (tag, type, count, data) entries, each datum stored in order.
    fn header_blob(entries: &[(u32, u32, u32, &[u8])]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut store: Vec<u8> = Vec::new();
        for (tag, kind, count, data) in entries {
            index.extend(tag.to_be_bytes());
            index.extend(kind.to_be_bytes());
            index.extend((store.len() as u32).to_be_bytes());
            index.extend(count.to_be_bytes());
            store.extend(*data);
        }
        let mut blob = (entries.len() as u32).to_be_bytes().to_vec();
        blob.extend((store.len() as u32).to_be_bytes());
        blob.extend(index);
        blob.extend(store);
        blob
    }

    /// An rpmdb.sqlite-shaped database holding `blobs`, as file bytes.
    fn sqlite_with(blobs: &[Vec<u8>]) -> Vec<u8> {
        let mut db = Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)",
        )
        .unwrap();
        for blob in blobs {
            db.execute("INSERT INTO Packages (blob) VALUES (?1)", [blob])
                .unwrap();
        }
        db.serialize(MAIN_DB).unwrap().to_vec()
    }

    #[test]
    fn wants_the_three_formats_in_the_three_places() {
        for dir in DATABASE_DIRS {
            for file in ["Packages", "Packages.db", "rpmdb.sqlite"] {
                assert!(wants(&format!("{dir}/{file}")), "{dir}/{file}");
            }
        }
        assert!(!wants("var/lib/rpm/Name"));
        assert!(!wants("opt/var/lib/rpm/rpmdb.sqlite"));
        assert!(!wants("rpmdb.sqlite"));
        assert!(!wants("var/lib/dpkg/status"));
    }

    #[test]
    fn reads_a_real_rpmdb_sqlite() {
        let found = packages(parse("var/lib/rpm/rpmdb.sqlite", RPMDB).unwrap());
        let mut tiny = Found::new(PackageType::Rpm, "tiny-lib", "0.9-1");
        tiny.arch = Some("x86_64".to_string());
        tiny.licenses = vec!["GPL-2.0-or-later".to_string()];
        let mut hello = Found::new(PackageType::Rpm, "hello-tiny", "2:1.2.3-4.fc40");
        hello.arch = Some("noarch".to_string());
        hello.licenses = vec!["MIT AND Apache-2.0".to_string()];
        assert_eq!(found, [tiny, hello]);
    }

    #[test]
    fn source_rpm_gives_the_source_name_when_it_differs() {
        let blob = header_blob(&[
            (TAG_NAME, TYPE_STRING, 1, b"openssl-libs\0"),
            (TAG_VERSION, TYPE_STRING, 1, b"3.0.7\0"),
            (TAG_RELEASE, TYPE_STRING, 1, b"27.el9\0"),
            (TAG_EPOCH, TYPE_INT32, 1, &1u32.to_be_bytes()),
            (
                TAG_SOURCERPM,
                TYPE_STRING,
                1,
                b"openssl-3.0.7-27.el9.src.rpm\0",
            ),
        ]);
        let found =
            packages(parse("usr/lib/sysimage/rpm/rpmdb.sqlite", &sqlite_with(&[blob])).unwrap());
        assert_eq!(found[0].version, "1:3.0.7-27.el9");
        assert_eq!(found[0].source_name.as_deref(), Some("openssl"));
        assert_eq!(found[0].source_version, None);
        assert_eq!(found[0].arch, None);
        assert_eq!(
            split_source_rpm("a-b-c-1.0-2.src.rpm"),
            Some(("a-b-c", "1.0-2"))
        );
        assert_eq!(split_source_rpm("junk.src.rpm"), None);
        assert_eq!(split_source_rpm("-1-2.src.rpm"), None);
    }

    #[test]
    fn headers_without_a_name_are_skipped() {
        let blob = header_blob(&[(TAG_VERSION, TYPE_STRING, 1, b"1.0\0")]);
        assert_eq!(
            packages(parse("var/lib/rpm/rpmdb.sqlite", &sqlite_with(&[blob])).unwrap()),
            []
        );
    }

    #[test]
    fn berkeley_and_ndb_databases_are_reported_as_not_read() {
        for (path, format) in [
            ("var/lib/rpm/Packages", "Berkeley DB"),
            ("usr/lib/sysimage/rpm/Packages.db", "NDB"),
        ] {
            match parse(path, b"\0\0\0\0\x61\x15\x06\0 some database").unwrap() {
                FileFacts::NotRead { reason } => {
                    assert!(
                        reason.contains(format) && reason.contains("not listed"),
                        "{reason}"
                    );
                }
                other => panic!("{path}: {other:?}"),
            }
        }
        assert_eq!(packages(parse("var/lib/rpm/Packages", b"").unwrap()), []);
    }

    #[test]
    fn corrupt_databases_are_errors() {
        let path = "var/lib/rpm/rpmdb.sqlite";
        assert!(parse(path, b"").unwrap_err().contains("empty"));
        assert!(parse(path, b"this is no database at all, not even close").is_err());
        assert!(parse(path, &RPMDB[..RPMDB.len() / 2]).is_err());
        let mut scribbled = RPMDB.to_vec();
        for byte in scribbled.iter_mut().skip(4096).step_by(7) {
            *byte ^= 0x5a;
        }
        assert!(parse(path, &scribbled).is_err());
        // A database without the Packages table.
        let mut db = Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE Other (x)").unwrap();
        let other = db.serialize(MAIN_DB).unwrap().to_vec();
        assert!(parse(path, &other).unwrap_err().contains("Packages"));
    }

    #[test]
    fn malformed_header_blobs_are_errors() {
        let good = header_blob(&[
            (TAG_NAME, TYPE_STRING, 1, b"a\0"),
            (TAG_VERSION, TYPE_STRING, 1, b"1\0"),
            (TAG_EPOCH, TYPE_INT32, 1, &3u32.to_be_bytes()),
        ]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("truncated", good[..good.len() - 1].to_vec()),
            ("no lengths", good[..5].to_vec()),
            (
                "huge index",
                [&0xffff_ffffu32.to_be_bytes()[..], &good[4..]].concat(),
            ),
            (
                "huge data",
                [&good[..4], &0x7fff_ffffu32.to_be_bytes()[..], &good[8..]].concat(),
            ),
            ("offset past the end", {
                let mut blob = good.clone();
                blob[8 + 8..8 + 12].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
                blob
            }),
            (
                "string without its NUL",
                header_blob(&[(TAG_NAME, TYPE_STRING, 1, b"abc")]),
            ),
            (
                "name of the wrong type",
                header_blob(&[(TAG_NAME, TYPE_INT32, 1, &[0, 0, 0, 1])]),
            ),
            (
                "epoch of the wrong type",
                header_blob(&[
                    (TAG_NAME, TYPE_STRING, 1, b"a\0"),
                    (TAG_VERSION, TYPE_STRING, 1, b"1\0"),
                    (TAG_EPOCH, TYPE_STRING, 1, b"1\0"),
                ]),
            ),
            (
                "epoch cut short",
                header_blob(&[
                    (TAG_NAME, TYPE_STRING, 1, b"a\0"),
                    (TAG_VERSION, TYPE_STRING, 1, b"1\0"),
                    (TAG_EPOCH, TYPE_INT32, 1, &[0, 1]),
                ]),
            ),
        ];
        for (what, blob) in cases {
            let result = parse("var/lib/rpm/rpmdb.sqlite", &sqlite_with(&[blob]));
            assert!(result.is_err(), "{what}: {result:?}");
        }
        // A blob column holding text.
        let mut db = Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob); INSERT INTO Packages (blob) VALUES (42)").unwrap();
        let wrong = db.serialize(MAIN_DB).unwrap().to_vec();
        assert!(parse("var/lib/rpm/rpmdb.sqlite", &wrong).is_err());
    }

    #[test]
    fn damaged_headers_never_panic() {
        let good = header_blob(&[
            (TAG_NAME, TYPE_STRING, 1, b"name\0"),
            (TAG_VERSION, TYPE_STRING, 1, b"1.0\0"),
            (TAG_RELEASE, TYPE_STRING, 1, b"1\0"),
            (TAG_EPOCH, TYPE_INT32, 1, &1u32.to_be_bytes()),
            (TAG_SOURCERPM, TYPE_STRING, 1, b"src-1.0-1.src.rpm\0"),
        ]);
        for cut in 0..good.len() {
            if let Ok(header) = Header::parse(&good[..cut]) {
                let _ = package(&header);
            }
        }
        let mut flipped = good.clone();
        for index in 0..flipped.len() {
            for mask in [0x01, 0x80, 0xff] {
                flipped[index] ^= mask;
                if let Ok(header) = Header::parse(&flipped) {
                    let _ = package(&header);
                }
                flipped[index] ^= mask;
            }
        }
    }
}
