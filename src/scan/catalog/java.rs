//! Java archives: the Maven artifacts a jar, war or ear declares.
//!
//! Owns reading `*.jar`, `*.war` and `*.ear` files (zip archives) for the packages they carry,
//! following syft's Java archive cataloger where this summary says so:
//! - every `META-INF/maven/<group>/<artifact>/pom.properties` with a `groupId`, `artifactId`
//!   and `version` is a Maven package (namespace = group id, name = artifact id);
//! - an archive without one of its own (none, or only those of dependencies shaded into it: no
//!   artifact id is the file name's name part or ends the manifest's `Bundle-SymbolicName` or
//!   `Automatic-Module-Name`) is also a package of `META-INF/MANIFEST.MF`: the name is the archive's
//!   file name without its version (`foo-bar-1.2.jar` → `foo-bar`), else the manifest's `Name`,
//!   `Bundle-Name`, `Short-Name`, `Extension-Name` or `Implementation-Title`; the version is the
//!   file name's, else `Implementation-Version`, `Specification-Version`, `Plugin-Version` (main
//!   section first, then named sections), else `Bundle-Version`. Such a package has no
//!   namespace: nothing in a manifest names a Maven group reliably;
//! - the manifest's `Bundle-License` is the licence of the manifest's package, and of the
//!   archive's `pom.properties` package when there is exactly one;
//! - archives nested one level deep (`BOOT-INF/lib/*.jar`, `WEB-INF/lib/*.jar`, `lib/*.jar`)
//!   are read the same way; archives nested in those are not.
//!
//! Archives come from untrusted images, so sizes are bounded: at most [`MAX_ENTRIES`] entries
//! per archive, [`MAX_TEXT_BYTES`] per manifest or properties file, [`MAX_NESTED_BYTES`] per
//! nested archive and [`MAX_READ_BYTES`] read from entries in all (entries may overlap, so
//! even stored ones count); going past a bound is an error that says so. Stored (uncompressed)
//! nested archives, as in Spring Boot jars, are read in place without a copy.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::{Cursor, Read};

use zip::{CompressionMethod, ZipArchive};

use crate::scan::package::{FileFacts, Found, PackageType};

/// Entries an archive may have.
pub const MAX_ENTRIES: usize = 200_000;
/// Bytes a manifest or `pom.properties` may inflate to.
pub const MAX_TEXT_BYTES: u64 = 1 << 20;
/// Bytes a nested archive may inflate to.
pub const MAX_NESTED_BYTES: u64 = 64 << 20;
/// Bytes read from the entries of one archive and its nested ones together.
pub const MAX_READ_BYTES: u64 = 256 << 20;

/// The bounds on reading one archive (the constants above, smaller in tests).
#[derive(Debug, Clone, Copy)]
struct Limits {
    entries: usize,
    text: u64,
    nested: u64,
    total: u64,
}

const LIMITS: Limits = Limits {
    entries: MAX_ENTRIES,
    text: MAX_TEXT_BYTES,
    nested: MAX_NESTED_BYTES,
    total: MAX_READ_BYTES,
};

const MANIFEST: &str = "META-INF/MANIFEST.MF";
const NESTED_DIRS: [&str; 3] = ["BOOT-INF/lib/", "WEB-INF/lib/", "lib/"];

/// Whether `path` is a Java archive by its extension.
pub fn wants(path: &str) -> bool {
    path.rsplit_once('.').is_some_and(|(_, extension)| {
        ["jar", "war", "ear"]
            .iter()
            .any(|known| extension.eq_ignore_ascii_case(known))
    })
}

/// The packages the archive at `path` declares; `Ok(None)` when it declares none.
pub fn parse(path: &str, bytes: &[u8]) -> Result<Option<FileFacts>, String> {
    parse_within(path, bytes, LIMITS)
}

fn parse_within(path: &str, bytes: &[u8], limits: Limits) -> Result<Option<FileFacts>, String> {
    let mut reader = Reader {
        limits,
        budget: limits.total,
        seen: HashSet::new(),
    };
    let mut packages = Vec::new();
    reader
        .read_archive(file_name(path), bytes, true, &mut packages)
        .map_err(Fault::message)?;
    Ok((!packages.is_empty()).then_some(FileFacts::Packages {
        database: false,
        packages,
    }))
}

/// Why an archive could not be read: its own format, or a bound it went past (which also
/// stops the reading of the archive that holds it).
#[derive(Debug)]
enum Fault {
    Format(String),
    Bound(String),
}

impl Fault {
    fn message(self) -> String {
        match self {
            Self::Format(message) | Self::Bound(message) => message,
        }
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// Reads archives within [`Limits`], counting what it inflates.
#[derive(Debug)]
struct Reader {
    limits: Limits,
    /// Bytes that may still be read from entries.
    budget: u64,
    /// The packages found so far, by namespace, name and version.
    seen: HashSet<(Option<String>, String, String)>,
}

type Archive<'a> = ZipArchive<Cursor<&'a [u8]>>;

impl Reader {
    /// Adds the packages of the archive `name` (and, when `outer`, of the archives it nests)
    /// to `packages`.
    fn read_archive(
        &mut self,
        name: &str,
        bytes: &[u8],
        outer: bool,
        packages: &mut Vec<Found>,
    ) -> Result<(), Fault> {
        let mut archive = self.open(name, bytes)?;
        let entries = Entries::of(&archive);
        for package in self.own_packages(&mut archive, &entries, name)? {
            let key = (
                package.namespace.clone(),
                package.name.clone(),
                package.version.clone(),
            );
            if self.seen.insert(key) {
                packages.push(package);
            }
        }
        if outer {
            for (index, nested_name) in entries.nested {
                self.read_nested(&mut archive, bytes, index, &nested_name, packages)?;
            }
        }
        Ok(())
    }

    fn open<'a>(&self, name: &str, bytes: &'a [u8]) -> Result<Archive<'a>, Fault> {
        let archive = ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| Fault::Format(format!("{name} is not a readable zip archive: {e}")))?;
        if archive.len() > self.limits.entries {
            return Err(Fault::Bound(format!(
                "{name} has {} entries, more than the {} read",
                archive.len(),
                self.limits.entries
            )));
        }
        Ok(archive)
    }

    /// The packages the archive `name` declares itself: its `pom.properties`, else its
    /// manifest.
    fn own_packages(
        &mut self,
        archive: &mut Archive,
        entries: &Entries,
        name: &str,
    ) -> Result<Vec<Found>, Fault> {
        let manifest = match entries.manifest {
            Some(index) => Some(Manifest::parse(&self.read_text(archive, index)?)),
            None => None,
        };
        let mut own = Vec::new();
        for index in &entries.pom_properties {
            own.extend(pom_package(&self.read_text(archive, *index)?));
        }
        let names_itself = own
            .iter()
            .any(|package| is_the_archive(package, name, manifest.as_ref()));
        if !names_itself {
            // Only shaded dependencies' `pom.properties` (or none): the archive is what its
            // manifest and file name say, beside what it carries.
            own.extend(manifest.as_ref().and_then(|m| manifest_package(m, name)));
        } else if let [package] = own.as_mut_slice() {
            let license = manifest.as_ref().and_then(|m| m.value("Bundle-License"));
            package.licenses.extend(license.map(str::to_string));
        }
        Ok(own)
    }

    /// Reads one nested archive into `packages`. One that is no readable zip is skipped: the
    /// outer archive is still worth listing.
    fn read_nested(
        &mut self,
        archive: &mut Archive,
        outer_bytes: &[u8],
        index: usize,
        name: &str,
        packages: &mut Vec<Found>,
    ) -> Result<(), Fault> {
        let bytes = match stored_in_place(archive, outer_bytes, index) {
            Some(slice) => {
                self.charge(slice.len() as u64, self.limits.nested, name)?;
                Cow::Borrowed(slice)
            }
            None => match self.inflate(archive, index, self.limits.nested) {
                Ok(bytes) => Cow::Owned(bytes),
                Err(Fault::Format(_)) => return Ok(()),
                Err(bound) => return Err(bound),
            },
        };
        match self.read_archive(name, &bytes, false, packages) {
            Err(Fault::Bound(message)) => Err(Fault::Bound(message)),
            _ => Ok(()),
        }
    }

    /// The text of entry `index`, inflated up to the text limit.
    fn read_text(&mut self, archive: &mut Archive, index: usize) -> Result<String, Fault> {
        let bytes = self.inflate(archive, index, self.limits.text)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Entry `index` inflated, refusing more than `cap` bytes or more than the budget left.
    fn inflate(&mut self, archive: &mut Archive, index: usize, cap: u64) -> Result<Vec<u8>, Fault> {
        let entry = archive
            .by_index(index)
            .map_err(|e| Fault::Format(format!("zip entry {index} unreadable: {e}")))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let limit = cap.min(self.budget);
        let mut bytes = Vec::new();
        entry
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Fault::Format(format!("zip entry {name} unreadable: {e}")))?;
        let read = bytes.len() as u64;
        self.charge(read, cap, &name)?;
        Ok(bytes)
    }

    /// Takes `read` bytes of entry `name` off the budget: an error when the entry is larger
    /// than its `cap`, or than what is left of the budget.
    fn charge(&mut self, read: u64, cap: u64, name: &str) -> Result<(), Fault> {
        if read > cap {
            return Err(Fault::Bound(format!(
                "zip entry {name} is larger than {}: a zip bomb?",
                mebibytes(cap)
            )));
        }
        if read > self.budget {
            return Err(Fault::Bound(format!(
                "zip entry {name} takes the archive past {} read in all: a zip bomb?",
                mebibytes(self.limits.total)
            )));
        }
        self.budget -= read;
        Ok(())
    }
}

/// `bytes` in MiB for messages, or in bytes when under one MiB.
fn mebibytes(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// The entries of an archive worth reading, by index.
#[derive(Debug, Default)]
struct Entries {
    manifest: Option<usize>,
    pom_properties: Vec<usize>,
    /// Nested archives with their file names.
    nested: Vec<(usize, String)>,
}

impl Entries {
    fn of(archive: &Archive) -> Self {
        let mut entries = Self::default();
        for (index, raw) in archive.file_names_raw().enumerate() {
            let name = String::from_utf8_lossy(raw);
            if name == MANIFEST {
                entries.manifest.get_or_insert(index);
            } else if is_pom_properties(&name) {
                entries.pom_properties.push(index);
            } else if let Some(file) = nested_archive(&name) {
                entries.nested.push((index, file.to_string()));
            }
        }
        entries
    }
}

/// `META-INF/maven/<group>/<artifact>/pom.properties`.
fn is_pom_properties(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    matches!(
        parts.as_slice(),
        ["META-INF", "maven", group, artifact, "pom.properties"]
            if !group.is_empty() && !artifact.is_empty()
    )
}

/// The file name of a nested archive directly inside one of [`NESTED_DIRS`].
fn nested_archive(name: &str) -> Option<&str> {
    NESTED_DIRS.iter().find_map(|dir| {
        name.strip_prefix(dir)
            .filter(|file| !file.contains('/') && wants(file))
    })
}

/// The bytes of entry `index` inside the outer archive's buffer, when it is stored without
/// compression.
fn stored_in_place<'a>(
    archive: &mut Archive,
    outer_bytes: &'a [u8],
    index: usize,
) -> Option<&'a [u8]> {
    let entry = archive.by_index(index).ok()?;
    if entry.compression() != CompressionMethod::Stored {
        return None;
    }
    let start = usize::try_from(entry.data_start()?).ok()?;
    let len = usize::try_from(entry.compressed_size()).ok()?;
    outer_bytes.get(start..start.checked_add(len)?)
}

/// The package a `pom.properties` declares, when it names all three coordinates.
fn pom_package(text: &str) -> Option<Found> {
    let mut group = None;
    let mut artifact = None;
    let mut version = None;
    for (key, value) in properties(text) {
        match key {
            "groupId" => group = Some(value),
            "artifactId" => artifact = Some(value),
            "version" => version = Some(value),
            _ => {}
        }
    }
    let (group, artifact, version) = (group?, artifact?, version?);
    if group.is_empty() || artifact.is_empty() || version.is_empty() {
        return None;
    }
    let mut found = Found::new(PackageType::Maven, artifact, version);
    found.namespace = Some(group.to_string());
    Some(found)
}

/// The `key=value` (or `key: value`) pairs of a Java properties file; comments skipped.
fn properties(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with('!'))
        .filter_map(|line| {
            let split = line.find(['=', ':'])?;
            Some((line[..split].trim(), line[split + 1..].trim()))
        })
}

/// A parsed `MANIFEST.MF`: the main section, then the named sections, each as ordered pairs.
#[derive(Debug, Default)]
struct Manifest {
    sections: Vec<Vec<(String, String)>>,
}

impl Manifest {
    fn parse(text: &str) -> Self {
        let mut sections: Vec<Vec<(String, String)>> = vec![Vec::new()];
        for line in text.lines().map(|line| line.trim_end_matches('\r')) {
            if line.trim().is_empty() {
                if sections.last().is_some_and(|s| !s.is_empty()) {
                    sections.push(Vec::new());
                }
                continue;
            }
            let Some(section) = sections.last_mut() else {
                continue;
            };
            if let Some(continued) = line.strip_prefix(' ') {
                if let Some((_, value)) = section.last_mut() {
                    value.push_str(continued);
                }
            } else if let Some((key, value)) = line.split_once(':') {
                section.push((key.trim().to_string(), value.trim().to_string()));
            }
        }
        Self { sections }
    }

    /// `key` in the main section.
    fn main_value(&self, key: &str) -> Option<&str> {
        self.sections
            .first()
            .and_then(|section| lookup(section, key))
    }

    /// `key` in the main section, else in the first named section that has it.
    fn value(&self, key: &str) -> Option<&str> {
        self.sections
            .iter()
            .find_map(|section| lookup(section, key))
    }
}

fn lookup<'a>(section: &'a [(String, String)], key: &str) -> Option<&'a str> {
    section
        .iter()
        .find(|(name, value)| name == key && !value.is_empty())
        .map(|(_, value)| value.as_str())
}

/// The package a manifest declares, named as the module doc says.
fn manifest_package(manifest: &Manifest, archive_name: &str) -> Option<Found> {
    let (file_name, file_version) = name_and_version(archive_name);
    let name = Some(file_name)
        .filter(|name| !name.is_empty())
        .or_else(|| {
            [
                "Name",
                "Bundle-Name",
                "Short-Name",
                "Extension-Name",
                "Implementation-Title",
            ]
            .iter()
            .find_map(|key| manifest.main_value(key))
        })?;
    let version = Some(file_version).filter(|v| !v.is_empty()).or_else(|| {
        [
            "Implementation-Version",
            "Specification-Version",
            "Plugin-Version",
            "Bundle-Version",
        ]
        .iter()
        .find_map(|key| manifest.value(key))
    })?;
    let mut found = Found::new(PackageType::Maven, name, version);
    found
        .licenses
        .extend(manifest.value("Bundle-License").map(str::to_string));
    Some(found)
}

/// Whether the `pom.properties` package is the archive `archive_name` itself rather than a
/// dependency shaded into it: its artifact id is the file name's name part, or the manifest's
/// OSGi or module name ends with it (`javax.servlet-api` in `servlet-api-3.1.jar`).
fn is_the_archive(package: &Found, archive_name: &str, manifest: Option<&Manifest>) -> bool {
    let artifact = package.name.as_str();
    let (file_name, _) = name_and_version(archive_name);
    file_name == artifact
        || manifest.is_some_and(|manifest| {
            ["Bundle-SymbolicName", "Automatic-Module-Name"]
                .iter()
                .filter_map(|key| manifest.main_value(key))
                // `com.example.lib;singleton:=true`: the name before its directives.
                .map(|value| value.split(';').next().unwrap_or(value).trim())
                .any(|value| value.ends_with(artifact))
        })
}

/// An archive's file name split into a name and a version: the version starts at the first
/// dash-separated part that begins with a digit (`commons-io-2.11.0.jar` → `commons-io`,
/// `2.11.0`); no such part, no version.
fn name_and_version(file_name: &str) -> (&str, &str) {
    let stem = file_name
        .rsplit_once('.')
        .map_or(file_name, |(stem, _)| stem);
    let mut at = 0;
    for part in stem.split('-') {
        if at > 0 && part.starts_with(|c: char| c.is_ascii_digit()) {
            return (&stem[..at - 1], &stem[at..]);
        }
        at += part.len() + 1;
    }
    (stem, "")
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use zip::ZipWriter;
    use zip::write::SimpleFileOptions;

    use super::*;

    /// `usr/share/java/commons-lang3.jar` from Debian 12's `libcommons-lang3-java`
    /// 3.12.0-2+deb12u1, trimmed to its manifest and `pom.properties` (see the README).
    const COMMONS_LANG3: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/scan/catalog/java/commons-lang3.jar"
    ));

    fn zip_of(entries: &[(&str, &[u8])], method: CompressionMethod) -> Vec<u8> {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(method);
        for (name, data) in entries {
            writer.start_file(*name, options).unwrap();
            writer.write_all(data).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    fn jar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        zip_of(entries, CompressionMethod::Deflated)
    }

    fn packages(path: &str, bytes: &[u8]) -> Vec<String> {
        let Some(FileFacts::Packages { database, packages }) = parse(path, bytes).unwrap() else {
            panic!("no packages in {path}");
        };
        assert!(!database);
        packages
            .iter()
            .map(|p| {
                assert_eq!(p.kind, PackageType::Maven);
                let group = p.namespace.as_deref().unwrap_or("-");
                format!("{group}:{}:{} {:?}", p.name, p.version, p.licenses)
            })
            .collect()
    }

    fn pom(group: &str, artifact: &str, version: &str) -> Vec<u8> {
        format!("#Generated by Maven\ngroupId={group}\nartifactId={artifact}\nversion={version}\n")
            .into_bytes()
    }

    #[test]
    fn wants_java_archives_by_extension() {
        for path in ["opt/app.jar", "srv/ROOT.WAR", "x/app.Ear", "lib.jar"] {
            assert!(wants(path), "{path}");
        }
        for path in ["opt/app.jar.sha1", "opt/jar", "usr/bin/java", "a.zip"] {
            assert!(!wants(path), "{path}");
        }
    }

    #[test]
    fn reads_a_real_debian_jar() {
        assert_eq!(
            packages("usr/share/java/commons-lang3.jar", COMMONS_LANG3),
            ["org.apache.commons:commons-lang3:3.12.0 []"]
        );
    }

    #[test]
    fn every_pom_properties_is_a_package() {
        let bytes = jar(&[
            (
                "META-INF/MANIFEST.MF",
                b"Manifest-Version: 1.0\r\nBundle-License: Apache-2.0\r\n",
            ),
            (
                "META-INF/maven/com.example/shaded/pom.properties",
                &pom("com.example", "shaded", "2.0"),
            ),
            (
                "META-INF/maven/org.inner/inner/pom.properties",
                &pom("org.inner", "inner", "0.3"),
            ),
            (
                "META-INF/maven/bad/partial/pom.properties",
                b"groupId=bad\nversion=1\n",
            ),
        ]);
        assert_eq!(
            packages("app/shaded-2.0.jar", &bytes),
            ["com.example:shaded:2.0 []", "org.inner:inner:0.3 []"]
        );
    }

    /// As Debian's `guice.jar` carries only the `pom.properties` of the cglib it shades: the
    /// archive is still reported, from its manifest and file name.
    #[test]
    fn an_archive_carrying_only_shaded_poms_is_reported_itself() {
        let manifest = b"Manifest-Version: 1.0\r\n\
            Bundle-SymbolicName: com.google.inject\r\n\
            Bundle-Version: 4.2.3\r\n";
        let bytes = jar(&[
            ("META-INF/MANIFEST.MF", manifest.as_slice()),
            (
                "META-INF/maven/cglib/cglib/pom.properties",
                &pom("cglib", "cglib", "3.3.0"),
            ),
        ]);
        assert_eq!(
            packages("usr/share/java/guice.jar", &bytes),
            ["cglib:cglib:3.3.0 []", "-:guice:4.2.3 []"]
        );
        // Its own pom by the OSGi name, though the file is named otherwise: nothing added.
        let servlet = jar(&[
            (
                "META-INF/MANIFEST.MF",
                b"Bundle-SymbolicName: javax.servlet-api;singleton:=true\n".as_slice(),
            ),
            (
                "META-INF/maven/javax.servlet/javax.servlet-api/pom.properties",
                &pom("javax.servlet", "javax.servlet-api", "3.1.0"),
            ),
        ]);
        assert_eq!(
            packages("usr/share/java/servlet-api-3.1.jar", &servlet),
            ["javax.servlet:javax.servlet-api:3.1.0 []"]
        );
    }

    #[test]
    fn the_only_pom_takes_the_bundle_license() {
        let bytes = jar(&[
            (
                "META-INF/MANIFEST.MF",
                b"Bundle-License: https://www.apache.org/licenses/LICENSE-2.0.txt\n",
            ),
            ("META-INF/maven/g/a/pom.properties", &pom("g", "a", "1")),
        ]);
        assert_eq!(
            packages("a.jar", &bytes),
            ["g:a:1 [\"https://www.apache.org/licenses/LICENSE-2.0.txt\"]"]
        );
    }

    #[test]
    fn manifest_only_archives_are_named_like_syft_does() {
        let manifest = b"Manifest-Version: 1.0\n\
            Implementation-Title: Some Library\n\
            Bundle-License: EPL-2.0\n\
            \n\
            Name: org/some/\n\
            Implementation-Version: 4.5.6\n";
        let bytes = jar(&[("META-INF/MANIFEST.MF", manifest)]);
        // The file name gives name and version when it has them.
        assert_eq!(
            packages("opt/some-lib-1.2.3.jar", &bytes),
            ["-:some-lib:1.2.3 [\"EPL-2.0\"]"]
        );
        // A version-less file name: the manifest's version, from a named section.
        assert_eq!(
            packages("opt/some-lib.jar", &bytes),
            ["-:some-lib:4.5.6 [\"EPL-2.0\"]"]
        );
        // Continuation lines join their value.
        let wrapped = jar(&[(
            "META-INF/MANIFEST.MF",
            b"Bundle-Version: 1.0.\n 7\n".as_slice(),
        )]);
        assert_eq!(packages("x/tool.jar", &wrapped), ["-:tool:1.0.7 []"]);
        assert_eq!(
            name_and_version("jetty-util-9.4.51.v20230217.jar"),
            ("jetty-util", "9.4.51.v20230217")
        );
        assert_eq!(
            name_and_version("my-http2-server-5.war"),
            ("my-http2-server", "5")
        );
        assert_eq!(name_and_version("plain.jar"), ("plain", ""));
        assert_eq!(name_and_version("1.0.jar"), ("1.0", ""));
    }

    #[test]
    fn archives_without_packages_are_none() {
        assert_eq!(
            parse("a.jar", &jar(&[("com/x/A.class", b"\xca\xfe\xba\xbe")])).unwrap(),
            None
        );
        let no_version = jar(&[(
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\n".as_slice(),
        )]);
        assert_eq!(parse("plain.jar", &no_version).unwrap(), None);
    }

    #[test]
    fn nested_archives_are_read_one_level_deep() {
        let innermost = jar(&[(
            "META-INF/maven/deep/deep/pom.properties",
            &pom("deep", "deep", "9"),
        )]);
        let stored = zip_of(
            &[(
                "META-INF/maven/org.s/stored/pom.properties",
                &pom("org.s", "stored", "1.0"),
            )],
            CompressionMethod::Deflated,
        );
        let deflated = jar(&[
            (
                "META-INF/maven/org.d/deflated/pom.properties",
                &pom("org.d", "deflated", "2.0"),
            ),
            ("lib/innermost.jar", &innermost),
        ]);
        let outer_entries: [(&str, &[u8]); 5] = [
            (
                "META-INF/maven/com.app/app/pom.properties",
                &pom("com.app", "app", "3.0"),
            ),
            ("BOOT-INF/lib/stored-1.0.jar", &stored),
            ("WEB-INF/lib/not-a-zip.jar", b"#!/bin/sh\n"),
            ("BOOT-INF/lib/sub/ignored.jar", &innermost),
            ("BOOT-INF/lib/deflated-2.0.jar", &deflated),
        ];
        for method in [CompressionMethod::Stored, CompressionMethod::Deflated] {
            let outer = zip_of(&outer_entries, method);
            assert_eq!(
                packages("app.jar", &outer),
                [
                    "com.app:app:3.0 []",
                    "org.s:stored:1.0 []",
                    "org.d:deflated:2.0 []"
                ],
                "{method:?}"
            );
        }
    }

    #[test]
    fn not_a_zip_is_an_error() {
        assert!(
            parse("a.jar", b"PK\x03\x04 but nothing after")
                .unwrap_err()
                .contains("zip")
        );
        assert!(parse("a.jar", b"").is_err());
        assert!(parse("a.jar", &COMMONS_LANG3[..COMMONS_LANG3.len() - 30]).is_err());
    }

    const SMALL: Limits = Limits {
        entries: 8,
        text: 1000,
        nested: 4000,
        total: 6000,
    };

    #[test]
    fn a_zip_bomb_is_refused() {
        let huge_manifest = vec![b'a'; 1001];
        let bytes = jar(&[("META-INF/MANIFEST.MF", &huge_manifest)]);
        let error = parse_within("a.jar", &bytes, SMALL).unwrap_err();
        assert!(
            error.contains("zip bomb") && error.contains("1000 bytes"),
            "{error}"
        );

        let zeros = vec![0u8; 4001];
        let bytes = jar(&[("WEB-INF/lib/big.jar", &zeros)]);
        let error = parse_within("a.war", &bytes, SMALL).unwrap_err();
        assert!(
            error.contains("zip bomb") && error.contains("big.jar"),
            "{error}"
        );
    }

    #[test]
    fn the_inflated_total_is_bounded() {
        let inner = zip_of(&[("filler", &[b'x'; 3000])], CompressionMethod::Stored);
        let entries: Vec<(String, &[u8])> = (0..3)
            .map(|n| (format!("lib/part{n}.jar"), inner.as_slice()))
            .collect();
        let entries: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), *b)).collect();
        let error = parse_within("a.ear", &jar(&entries), SMALL).unwrap_err();
        assert!(error.contains("read in all"), "{error}");
    }

    #[test]
    fn overlapping_stored_entries_count_against_the_budget() {
        let nested = zip_of(
            &[("META-INF/maven/g/a/pom.properties", &pom("g", "a", "1"))],
            CompressionMethod::Stored,
        );
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        writer.start_file("lib/a.jar", stored).unwrap();
        writer.write_all(&nested).unwrap();
        writer.write_all(&vec![0; 1500 - nested.len()]).unwrap();
        for copy in 0..5 {
            writer
                .shallow_copy_file("lib/a.jar", &format!("lib/copy{copy}.jar"))
                .unwrap();
        }
        let bytes = writer.finish().unwrap().into_inner();
        let error = parse_within("a.jar", &bytes, SMALL).unwrap_err();
        assert!(error.contains("read in all"), "{error}");
    }

    #[test]
    fn too_many_entries_is_an_error() {
        let names: Vec<String> = (0..9).map(|n| format!("f{n}")).collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        let error = parse_within("a.jar", &jar(&entries), SMALL).unwrap_err();
        assert!(error.contains("9 entries"), "{error}");
    }

    #[test]
    fn damaged_archives_never_panic() {
        let nested = jar(&[("META-INF/maven/n/n/pom.properties", &pom("n", "n", "1"))]);
        let good = jar(&[
            (
                "META-INF/MANIFEST.MF",
                b"Implementation-Version: 1\n".as_slice(),
            ),
            ("META-INF/maven/g/a/pom.properties", &pom("g", "a", "1")),
            ("lib/n.jar", &nested),
        ]);
        for cut in 0..good.len() {
            let _ = parse("a.jar", &good[..cut]);
        }
        let mut flipped = good.clone();
        for index in 0..flipped.len() {
            flipped[index] ^= 0x41;
            let _ = parse("a.jar", &flipped);
            flipped[index] ^= 0x41;
        }
    }
}
