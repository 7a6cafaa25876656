//! Package URLs (purl-spec) for the packages catalogers find: the identifier every SBOM format and
//! vulnerability database keys a package by.
//!
//! Owns the per-type layout; the `packageurl` crate owns encoding and the spec's normalisation
//! (lower-cased names where a type asks for it, PyPI's `_` as `-`, sorted qualifiers).
//! Distribution packages carry the qualifiers syft writes, so the two tools' purls compare equal:
//! `arch`, `distro=<id>-<version_id>` and `upstream=<source>[@<source version>]`; rpm's epoch is an
//! `epoch` qualifier rather than part of the version.

use packageurl::PackageUrl;

use super::package::{Found, OsRelease, PackageType};

/// The purl of `found`; `os` scopes distribution packages (their namespace and `distro`).
///
/// Empty when no purl can be made: a package without a name. A distribution package in an image
/// without an `os-release` gets no namespace, rather than a guessed one.
pub fn purl(found: &Found, os: Option<&OsRelease>) -> String {
    build(found, os)
        .map(|purl| purl.to_string())
        .unwrap_or_default()
}

fn build<'a>(found: &'a Found, os: Option<&'a OsRelease>) -> Option<PackageUrl<'a>> {
    let (namespace, name) = namespace_and_name(found);
    let mut purl = PackageUrl::new(found.kind.as_str(), name).ok()?;
    if let Some(namespace) = namespace.or_else(|| distribution_namespace(found.kind, os)) {
        // A namespace the crate refuses (an empty path segment) is dropped, not fatal: the
        // name and version still identify the package.
        let _ = purl.with_namespace(namespace);
    }
    let (version, epoch) = version_and_epoch(found);
    if !version.is_empty() {
        purl.with_version(version).ok()?;
    }
    for (key, value) in qualifiers(found, os, epoch) {
        purl.add_qualifier(key, value).ok()?;
    }
    Some(purl)
}

/// The namespace and name: a Go module path splits at its last `/`; other types keep the
/// cataloger's namespace (a Maven group, an npm scope with its `@`).
fn namespace_and_name(found: &Found) -> (Option<&str>, &str) {
    if found.kind == PackageType::Golang
        && found.namespace.is_none()
        && let Some((namespace, name)) = found.name.rsplit_once('/')
    {
        return (Some(namespace), name);
    }
    (found.namespace.as_deref(), found.name.as_str())
}

/// Distribution packages are namespaced by the distribution's `ID` (`debian`, `ubuntu`, `alpine`,
/// `fedora`).
fn distribution_namespace(kind: PackageType, os: Option<&OsRelease>) -> Option<&str> {
    is_distribution(kind)
        .then(|| os.and_then(|os| os.id.as_deref()))
        .flatten()
        .filter(|id| !id.is_empty())
}

fn is_distribution(kind: PackageType) -> bool {
    matches!(kind, PackageType::Deb | PackageType::Apk | PackageType::Rpm)
}

/// rpm's `[epoch:]version-release` is split: purl-spec puts the epoch in a qualifier. dpkg keeps
/// its epoch in the version, as syft does.
fn version_and_epoch(found: &Found) -> (&str, Option<&str>) {
    if found.kind == PackageType::Rpm
        && let Some((epoch, rest)) = found.version.split_once(':')
        && !epoch.is_empty()
        && epoch.bytes().all(|b| b.is_ascii_digit())
    {
        return (rest, Some(epoch));
    }
    (found.version.as_str(), None)
}

fn qualifiers<'a>(
    found: &'a Found,
    os: Option<&'a OsRelease>,
    epoch: Option<&'a str>,
) -> Vec<(&'static str, String)> {
    if !is_distribution(found.kind) {
        return Vec::new();
    }
    let mut qualifiers = Vec::new();
    if let Some(arch) = found.arch.as_deref().filter(|arch| !arch.is_empty()) {
        qualifiers.push(("arch", arch.to_owned()));
    }
    if let Some(distro) = os.and_then(distro) {
        qualifiers.push(("distro", distro));
    }
    if let Some(epoch) = epoch {
        qualifiers.push(("epoch", epoch.to_owned()));
    }
    if let Some(upstream) = upstream(found) {
        qualifiers.push(("upstream", upstream));
    }
    qualifiers
}

/// `<id>-<version_id>`, e.g. `debian-12`, `alpine-3.19.1`; `<id>` alone for a rolling release
/// without `VERSION_ID` (Debian sid, Arch).
fn distro(os: &OsRelease) -> Option<String> {
    let id = os.id.as_deref().filter(|id| !id.is_empty())?;
    Some(match os.version_id.as_deref().filter(|v| !v.is_empty()) {
        Some(version) => format!("{id}-{version}"),
        None => id.to_owned(),
    })
}

/// The source package, with its version when it differs from the binary's.
fn upstream(found: &Found) -> Option<String> {
    let source = found.source_name.as_deref().filter(|s| !s.is_empty())?;
    Some(
        match found.source_version.as_deref().filter(|v| !v.is_empty()) {
            Some(version) => format!("{source}@{version}"),
            None => source.to_owned(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(id: &str, version_id: &str) -> OsRelease {
        OsRelease {
            id: Some(id.into()),
            version_id: Some(version_id.into()),
            ..OsRelease::default()
        }
    }

    fn distribution(kind: PackageType, name: &str, version: &str, arch: &str) -> Found {
        Found {
            arch: Some(arch.into()),
            ..Found::new(kind, name, version)
        }
    }

    #[test]
    fn deb_has_the_distribution_namespace_arch_and_distro() {
        let curl = distribution(PackageType::Deb, "curl", "7.88.1-10+deb12u5", "amd64");
        assert_eq!(
            purl(&curl, Some(&os("debian", "12"))),
            "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64&distro=debian-12"
        );
    }

    #[test]
    fn deb_source_is_the_upstream_qualifier_with_its_version_when_it_differs() {
        let libc = Found {
            source_name: Some("glibc".into()),
            ..distribution(PackageType::Deb, "libc6", "2.36-9+deb12u4", "amd64")
        };
        let debian = os("debian", "12");
        assert_eq!(
            purl(&libc, Some(&debian)),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
        );
        let zlib = Found {
            source_name: Some("zlib".into()),
            source_version: Some("1:1.2.13.dfsg-1".into()),
            ..distribution(PackageType::Deb, "zlib1g", "1:1.2.13.dfsg-1", "amd64")
        };
        assert_eq!(
            purl(&zlib, Some(&debian)),
            "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib%401:1.2.13.dfsg-1"
        );
    }

    #[test]
    fn apk_matches_syft() {
        let musl = Found {
            source_name: Some("musl".into()),
            ..distribution(PackageType::Apk, "musl", "1.2.4-r2", "x86_64")
        };
        assert_eq!(
            purl(&musl, Some(&os("alpine", "3.19.1"))),
            "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1&upstream=musl"
        );
    }

    #[test]
    fn rpm_epoch_is_a_qualifier() {
        let bash = distribution(PackageType::Rpm, "bash", "5.2.26-3.fc40", "x86_64");
        let fedora = os("fedora", "40");
        assert_eq!(
            purl(&bash, Some(&fedora)),
            "pkg:rpm/fedora/bash@5.2.26-3.fc40?arch=x86_64&distro=fedora-40"
        );
        // The purl-spec example: pkg:rpm/fedora/curl@7.50.3-1.fc25?arch=i386&distro=fedora-25
        let curl = distribution(PackageType::Rpm, "curl", "7.50.3-1.fc25", "i386");
        assert_eq!(
            purl(&curl, Some(&os("fedora", "25"))),
            "pkg:rpm/fedora/curl@7.50.3-1.fc25?arch=i386&distro=fedora-25"
        );
        let openssl = Found {
            source_name: Some("openssl-3.2.1-2.fc40.src.rpm".into()),
            ..distribution(PackageType::Rpm, "openssl-libs", "1:3.2.1-2.fc40", "x86_64")
        };
        assert_eq!(
            purl(&openssl, Some(&fedora)),
            "pkg:rpm/fedora/openssl-libs@3.2.1-2.fc40?arch=x86_64&distro=fedora-40&epoch=1&upstream=openssl-3.2.1-2.fc40.src.rpm"
        );
    }

    #[test]
    fn distribution_package_without_os_release_has_no_namespace() {
        let curl = distribution(PackageType::Deb, "curl", "7.88.1-10", "amd64");
        assert_eq!(purl(&curl, None), "pkg:deb/curl@7.88.1-10?arch=amd64");
        let rolling = OsRelease {
            id: Some("debian".into()),
            ..OsRelease::default()
        };
        assert_eq!(
            purl(&curl, Some(&rolling)),
            "pkg:deb/debian/curl@7.88.1-10?arch=amd64&distro=debian"
        );
    }

    #[test]
    fn pypi_names_are_lower_case_with_dashes() {
        // The purl-spec example: pkg:pypi/django-allauth@12.23
        let allauth = Found::new(PackageType::Pypi, "Django_Allauth", "12.23");
        assert_eq!(purl(&allauth, None), "pkg:pypi/django-allauth@12.23");
    }

    #[test]
    fn pypi_ignores_the_distribution() {
        let requests = Found {
            arch: Some("amd64".into()),
            ..Found::new(PackageType::Pypi, "requests", "2.31.0")
        };
        assert_eq!(
            purl(&requests, Some(&os("debian", "12"))),
            "pkg:pypi/requests@2.31.0"
        );
    }

    #[test]
    fn npm_scope_is_the_encoded_namespace() {
        let core = Found {
            namespace: Some("@babel".into()),
            ..Found::new(PackageType::Npm, "core", "7.0.0")
        };
        assert_eq!(purl(&core, None), "pkg:npm/%40babel/core@7.0.0");
        let foobar = Found::new(PackageType::Npm, "foobar", "12.3.1");
        assert_eq!(purl(&foobar, None), "pkg:npm/foobar@12.3.1");
    }

    #[test]
    fn golang_module_path_splits_into_namespace_and_name() {
        // The purl-spec example: pkg:golang/google.golang.org/genproto#googleapis/api/annotations
        // (without its subpath).
        let genproto = Found::new(PackageType::Golang, "google.golang.org/genproto", "");
        assert_eq!(
            purl(&genproto, None),
            "pkg:golang/google.golang.org/genproto"
        );
        let cobra = Found::new(PackageType::Golang, "github.com/spf13/cobra", "v1.8.0");
        assert_eq!(
            purl(&cobra, None),
            "pkg:golang/github.com/spf13/cobra@v1.8.0"
        );
        let stdlib = Found::new(PackageType::Golang, "stdlib", "go1.22.1");
        assert_eq!(purl(&stdlib, None), "pkg:golang/stdlib@go1.22.1");
    }

    #[test]
    fn maven_group_is_the_namespace() {
        // The purl-spec example: pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1
        let batik = Found {
            namespace: Some("org.apache.xmlgraphics".into()),
            ..Found::new(PackageType::Maven, "batik-anim", "1.9.1")
        };
        assert_eq!(
            purl(&batik, None),
            "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1"
        );
    }

    #[test]
    fn cargo_and_gem_have_no_namespace() {
        // The purl-spec examples: pkg:cargo/rand@0.7.2, pkg:gem/jruby-launcher@1.1.2
        let rand = Found::new(PackageType::Cargo, "rand", "0.7.2");
        assert_eq!(purl(&rand, None), "pkg:cargo/rand@0.7.2");
        let launcher = Found::new(PackageType::Gem, "jruby-launcher", "1.1.2");
        assert_eq!(purl(&launcher, None), "pkg:gem/jruby-launcher@1.1.2");
    }

    #[test]
    fn hostile_and_empty_fields_never_panic() {
        assert_eq!(purl(&Found::new(PackageType::Deb, "", "1"), None), "");
        let odd = Found {
            namespace: Some("a//b".into()),
            arch: Some(String::new()),
            source_name: Some("x&y=z?#".into()),
            ..Found::new(PackageType::Rpm, "n a/m#e?", ":::")
        };
        let text = purl(&odd, Some(&os("", "")));
        assert!(text.starts_with("pkg:rpm/"), "{text}");
        assert!(!text.contains(' '), "{text}");
        let long = Found::new(PackageType::Npm, "x".repeat(100_000), "1".repeat(100_000));
        assert!(purl(&long, None).len() > 200_000);
    }

    #[test]
    fn every_purl_parses_back() {
        let found = [
            Found {
                source_name: Some("glibc".into()),
                source_version: Some("2.36-9".into()),
                ..distribution(PackageType::Deb, "libc6", "2.36-9+deb12u4", "amd64")
            },
            Found {
                namespace: Some("@types".into()),
                ..Found::new(PackageType::Npm, "node", "20.1.0")
            },
            Found::new(PackageType::Golang, "golang.org/x/net", "v0.20.0"),
        ];
        for found in &found {
            let text = purl(found, Some(&os("debian", "12")));
            let parsed: PackageUrl<'_> = text.parse().expect(&text);
            assert_eq!(parsed.to_string(), text);
        }
    }
}
