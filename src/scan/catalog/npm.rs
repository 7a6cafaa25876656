//! npm: package roots under `node_modules`, and the application's own `package.json`.
//!
//! Owns: deciding from its path what a `package.json` is, and reading its name, version and
//! licences. A path is a *package root* when the last `node_modules` segment is followed by
//! exactly `<name>` or `@scope/<name>` (trivy's `IsPackageRoot`); a `package.json` deeper inside
//! a package (`node_modules/rxjs/ajax/package.json`, `glob/dist/esm/package.json`) only sets
//! module options and is not a package. Outside `node_modules`, a manifest with a name is the
//! application itself, except under `usr/`, where Debian ships its node packages
//! (`usr/share/nodejs/<name>/package.json`) and dpkg already reports them.
//!
//! Deliberate differences from syft, which reads every `package.json` with a name and version
//! as a package: nested helper manifests that happen to carry both are not packages here, the
//! application's manifest is an [`FileFacts::Application`] rather than a dependency, and the
//! Debian copies under `usr/` are not reported twice.
//!
//! A package root without a name or version (a workspace link, a half-written install) is
//! nothing, not an error; an application manifest without a version gets an empty version,
//! since many applications are never versioned. Invalid JSON, a top level that is not an object,
//! or a name or version that is not a string are errors. Licences, each once in order: the
//! `license` string (an SPDX expression stays whole), `license: {"type": ...}`, or the older
//! `licenses: [{"type": ...}]` (strings in that array are accepted too).

use serde_json::{Map, Value};

use crate::scan::package::{FileFacts, Found, PackageType};

const MANIFEST: &str = "package.json";

/// Whether `path` is a `package.json` (what it is decides [`parse`]).
pub fn wants(path: &str) -> bool {
    path == MANIFEST || path.ends_with("/package.json")
}

/// A package root's package, the application's manifest, or nothing (see the module doc).
pub fn parse(path: &str, bytes: &[u8]) -> Result<Option<FileFacts>, String> {
    let place = place_of(path);
    if place == Place::Elsewhere {
        return Ok(None);
    }
    let manifest = read_manifest(bytes)?;
    let (Some(name), version) = (
        string_field(&manifest, "name")?,
        string_field(&manifest, "version")?,
    ) else {
        return Ok(None);
    };
    let package = |version: &str| found(name, version, &manifest);
    Ok(match (place, version) {
        (Place::PackageRoot, Some(version)) => Some(FileFacts::Packages {
            database: false,
            packages: vec![package(version)],
        }),
        (Place::Application, version) => Some(FileFacts::Application {
            package: package(version.unwrap_or_default()),
        }),
        _ => None,
    })
}

/// What a `package.json`'s path makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// `.../node_modules/<name>/package.json` or `.../node_modules/@scope/<name>/package.json`.
    PackageRoot,
    /// Outside any `node_modules` and outside `usr/`.
    Application,
    /// Inside a package, or a distribution's copy under `usr/`.
    Elsewhere,
}

/// What the path of a `package.json` makes it.
fn place_of(path: &str) -> Place {
    let segments: Vec<&str> = path.split('/').collect();
    let Some((_, dirs)) = segments.split_last() else {
        return Place::Elsewhere;
    };
    match dirs.iter().rposition(|segment| *segment == "node_modules") {
        Some(index) if is_package_dir(&dirs[index + 1..]) => Place::PackageRoot,
        Some(_) => Place::Elsewhere,
        None if dirs.first() == Some(&"usr") => Place::Elsewhere,
        None => Place::Application,
    }
}

/// `[name]` or `["@scope", name]`: the directories between `node_modules` and `package.json`.
fn is_package_dir(dirs: &[&str]) -> bool {
    let plain = |name: &str| !name.is_empty() && !name.starts_with(['.', '@']);
    match dirs {
        [name] => plain(name),
        [scope, name] => scope.len() > 1 && scope.starts_with('@') && plain(name),
        _ => false,
    }
}

/// The manifest's top-level object; a leading byte-order mark is ignored, as npm does.
fn read_manifest(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match serde_json::from_slice(bytes).map_err(|error| error.to_string())? {
        Value::Object(manifest) => Ok(manifest),
        _ => Err("the top level is not a JSON object".to_string()),
    }
}

/// A string field; absent, `null` or empty is `None`, any other type an error.
fn string_field<'a>(
    manifest: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, String> {
    match manifest.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.trim()).filter(|value| !value.is_empty())),
        Some(_) => Err(format!("`{key}` is not a string")),
    }
}

/// The package, its scope (from an `@scope/name` name) as the namespace.
fn found(full_name: &str, version: &str, manifest: &Map<String, Value>) -> Found {
    let (namespace, name) = match full_name.split_once('/') {
        Some((scope, name)) if scope.starts_with('@') => (Some(scope.to_string()), name),
        _ => (None, full_name),
    };
    let mut found = Found::new(PackageType::Npm, name, version);
    found.namespace = namespace;
    found.licenses = licenses(manifest);
    found
}

/// `license`, then the old `licenses` array, each once.
fn licenses(manifest: &Map<String, Value>) -> Vec<String> {
    let old_style = manifest.get("licenses").and_then(Value::as_array);
    let declared = manifest
        .get("license")
        .into_iter()
        .chain(old_style.into_iter().flatten());
    let mut licenses: Vec<String> = Vec::new();
    for license in declared.filter_map(license_name) {
        if !licenses.iter().any(|known| known == license) {
            licenses.push(license.to_string());
        }
    }
    licenses
}

/// `"MIT"` or `{"type": "MIT", "url": ...}`.
fn license_name(value: &Value) -> Option<&str> {
    let name = match value {
        Value::String(name) => name,
        Value::Object(object) => object.get("type")?.as_str()?,
        _ => return None,
    };
    Some(name.trim()).filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/scan/catalog/npm/"
    );

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}{name}")).unwrap()
    }

    fn package(path: &str, bytes: &[u8]) -> Found {
        match parse(path, bytes) {
            Ok(Some(FileFacts::Packages {
                database: false,
                mut packages,
            })) if packages.len() == 1 => packages.remove(0),
            other => panic!("expected one package, got {other:?}"),
        }
    }

    fn application(path: &str, bytes: &[u8]) -> Found {
        match parse(path, bytes) {
            Ok(Some(FileFacts::Application { package })) => package,
            other => panic!("expected the application, got {other:?}"),
        }
    }

    #[test]
    fn wants_every_package_json() {
        assert!(wants("package.json"));
        assert!(wants("app/node_modules/rxjs/ajax/package.json"));
        assert!(!wants("app/package.json.bak"));
        assert!(!wants("app/my-package.json"));
        assert!(!wants("app/package-lock.json"));
    }

    #[test]
    fn a_package_root() {
        let path = "usr/lib/node_modules/npm/node_modules/abbrev/package.json";
        let abbrev = package(path, &fixture("abbrev/package.json"));
        assert_eq!(abbrev, {
            let mut expected = Found::new(PackageType::Npm, "abbrev", "4.0.0");
            expected.licenses = vec!["ISC".to_string()];
            expected
        });
    }

    #[test]
    fn a_scoped_package_root() {
        let path = "usr/lib/node_modules/npm/node_modules/@npmcli/fs/package.json";
        let fs = package(path, &fixture("@npmcli/fs/package.json"));
        assert_eq!(fs.namespace.as_deref(), Some("@npmcli"));
        assert_eq!((fs.name.as_str(), fs.version.as_str()), ("fs", "5.0.0"));
        assert_eq!(fs.licenses, ["ISC"]);
    }

    #[test]
    fn the_old_licenses_array() {
        let path = "app/node_modules/qrcode-terminal/package.json";
        let qrcode = package(path, &fixture("qrcode-terminal/package.json"));
        assert_eq!(qrcode.licenses, ["Apache 2.0"]);
    }

    #[test]
    fn a_license_object_and_mixed_forms_each_once() {
        let json = br#"{"name":"a","version":"1","license":{"type":"MIT","url":"x"},
                       "licenses":[{"type":"MIT"},"BSD-3-Clause",{"url":"y"},7,null]}"#;
        assert_eq!(
            package("node_modules/a/package.json", json).licenses,
            ["MIT", "BSD-3-Clause"]
        );
        let json = br#"{"name":"a","version":"1","license":"(MIT OR Apache-2.0)","licenses":{"type":"x"}}"#;
        assert_eq!(
            package("node_modules/a/package.json", json).licenses,
            ["(MIT OR Apache-2.0)"]
        );
    }

    #[test]
    fn manifests_inside_a_package_are_not_packages() {
        let helper = fixture("glob/dist/commonjs/package.json");
        assert_eq!(
            parse("x/node_modules/glob/dist/commonjs/package.json", &helper),
            Ok(None)
        );
        let named = br#"{"name":"rxjs/ajax","version":"7.8.1"}"#;
        for path in [
            "app/node_modules/rxjs/ajax/package.json",
            "app/node_modules/@scope/package.json",
            "app/node_modules/package.json",
            "app/node_modules/.cache/package.json",
            "app/node_modules/@/x/package.json",
        ] {
            assert_eq!(parse(path, named), Ok(None), "{path}");
        }
    }

    #[test]
    fn the_last_node_modules_decides() {
        let json = br#"{"name":"b","version":"2.0.0"}"#;
        let path = "app/node_modules/.pnpm/b@2.0.0/node_modules/b/package.json";
        assert_eq!(package(path, json).name, "b");
        let path = "app/node_modules/a/node_modules/@s/b/package.json";
        assert_eq!(
            package(path, br#"{"name":"@s/b","version":"1"}"#)
                .namespace
                .as_deref(),
            Some("@s")
        );
    }

    #[test]
    fn the_application_manifest() {
        let app = application("app/package.json", &fixture("app/package.json"));
        assert_eq!(
            (app.name.as_str(), app.version.as_str()),
            ("example-api", "1.4.0")
        );
        assert_eq!(app.licenses, ["UNLICENSED"]);
        let unversioned = application("package.json", br#"{"name":"@corp/site","private":true}"#);
        assert_eq!(unversioned.namespace.as_deref(), Some("@corp"));
        assert_eq!(
            (unversioned.name.as_str(), unversioned.version.as_str()),
            ("site", "")
        );
    }

    #[test]
    fn nameless_and_distribution_manifests_are_nothing() {
        assert_eq!(
            parse("app/dist/package.json", br#"{"type":"module"}"#),
            Ok(None)
        );
        assert_eq!(
            parse("node_modules/a/package.json", br#"{"name":"a"}"#),
            Ok(None)
        );
        assert_eq!(
            parse("node_modules/a/package.json", br#"{"version":"1"}"#),
            Ok(None)
        );
        let debian = br#"{"name":"abbrev","version":"1.1.1"}"#;
        assert_eq!(
            parse("usr/share/nodejs/abbrev/package.json", debian),
            Ok(None)
        );
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        let json = b"\xef\xbb\xbf{\"name\":\"a\",\"version\":\"1\"}";
        assert_eq!(package("node_modules/a/package.json", json).version, "1");
    }

    #[test]
    fn malformed_json_is_an_error() {
        let path = "node_modules/a/package.json";
        assert!(parse(path, b"").is_err());
        assert!(parse(path, b"{\"name\": \"a\", \"vers").is_err());
        assert!(parse(path, b"\x7fELF\x02\x01\x01\0").is_err());
        assert!(parse(path, b"[1, 2]").unwrap_err().contains("object"));
        assert!(
            parse(path, br#"{"name":"a","version":1.0}"#)
                .unwrap_err()
                .contains("version")
        );
        assert!(
            parse(path, br#"{"name":["a"],"version":"1"}"#)
                .unwrap_err()
                .contains("name")
        );
        assert!(parse("package.json", b"null").is_err());
    }

    #[test]
    fn huge_and_deep_inputs_do_not_panic() {
        let long = format!(r#"{{"name":"a","version":"{}"}}"#, "1".repeat(1 << 20));
        assert_eq!(
            package("node_modules/a/package.json", long.as_bytes())
                .version
                .len(),
            1 << 20
        );
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse("node_modules/a/package.json", deep.as_bytes()).is_err());
    }
}
