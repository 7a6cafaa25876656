//! Shared test data for the scan renderers: one small inventory that every format (text,
//! CycloneDX, SPDX) snapshots, and that the integration tests hand to the schema validators.
//!
//! It has what the formats must get right: a base-image layer (`dockerfile: None`,
//! `base_image: Some`), Dockerfile lines with and without a stage, one image built for two
//! platforms, an image buildopt did not build, several package types, licences that are SPDX ids,
//! an SPDX expression and names outside the SPDX list, an application component and warnings.
//! [`with_findings`] adds vulnerability findings to it, for the formats that carry them.

use crate::cache::digest::Digest;
use crate::scan::model::{
    DockerfileLine, Finding, ImageInventory, Layer, MatchStatus, Package, SCAN_FORMAT_VERSION,
    ScanReport, ScanWarning,
};
use crate::scan::{OsRelease, PackageType};

/// The report: `acme/api:1.2` for `linux/amd64` and `linux/arm64`, then `alpine:3.19` as pulled.
pub fn inventory() -> ScanReport {
    ScanReport {
        version: SCAN_FORMAT_VERSION,
        images: vec![api("linux/amd64", "amd64"), api_arm64(), alpine()],
        unreadable: Vec::new(),
    }
}

/// [`inventory`] matched against a database: on both `api` platforms, the findings of
/// `tests/fixtures/scan/findings-report.json` about packages this inventory holds (`requests`
/// 2.31.0: two real GitHub advisories; `left-pad` 1.3.0: a made-up record of unknown severity),
/// placed on those packages; `alpine` matched with no findings.
pub fn with_findings() -> ScanReport {
    let recorded: ScanReport = serde_json::from_str(include_str!(
        "../../tests/fixtures/scan/findings-report.json"
    ))
    .expect("the findings fixture is a scan report");
    let findings: Vec<Finding> = recorded
        .images
        .into_iter()
        .flat_map(|image| image.findings)
        .collect();
    let mut report = inventory();
    for image in &mut report.images {
        image.findings = image
            .packages
            .iter()
            .flat_map(|package| {
                findings
                    .iter()
                    .filter(|f| f.package == package.name && f.installed_version == package.version)
                    .map(|f| placed_finding(f.clone(), package))
            })
            .collect();
        image.vulnerabilities = Some(MatchStatus {
            scanned: true,
            reason: None,
            database: Some("osv-2026-12-05".into()),
            database_modified: Some("2026-12-05T06:00:00Z".into()),
            ignored: 0,
            below_level: 0,
            database_built: None,
            database_age_days: None,
            not_matched: Vec::new(),
        });
    }
    report
}

/// `finding` as found in `package`: its purl, file, layer and origin.
fn placed_finding(finding: Finding, package: &Package) -> Finding {
    Finding {
        purl: package.purl.clone(),
        path: package.path.trim_start_matches('/').to_owned(),
        layer: package.layer.clone(),
        dockerfile: package.dockerfile.clone(),
        base_image: package.base_image.clone(),
        ..finding
    }
}

/// The scan times and tool version every test of GitLab's report renders with, so its output
/// is the same on every run.
pub fn gitlab_scan() -> crate::report::gitlab_container_scanning::GitlabScan<'static> {
    use chrono::{TimeZone, Utc};
    let at = |second| {
        Utc.with_ymd_and_hms(2026, 12, 6, 21, 0, second)
            .single()
            .expect("a valid time")
    };
    crate::report::gitlab_container_scanning::GitlabScan {
        tool_version: "0.1.0",
        start_time: at(5),
        end_time: at(9),
    }
}

/// A fixed digest per label, so snapshots are stable.
pub fn digest(label: &str) -> Digest {
    Digest::of(label.as_bytes())
}

fn line(line: u32, stage: Option<&str>) -> DockerfileLine {
    DockerfileLine {
        path: "api/Dockerfile".into(),
        line,
        stage: stage.map(Into::into),
    }
}

fn base_layer(label: &str, created_by: &str) -> Layer {
    Layer {
        diff_id: digest(label),
        dockerfile: None,
        base_image: Some("debian:bookworm".into()),
        created_by: Some(created_by.into()),
    }
}

fn built_layer(label: &str, origin: DockerfileLine, created_by: &str) -> Layer {
    Layer {
        diff_id: digest(label),
        dockerfile: Some(origin),
        base_image: None,
        created_by: Some(created_by.into()),
    }
}

fn package(kind: PackageType, name: &str, version: &str, purl: &str) -> Package {
    Package {
        name: name.into(),
        version: version.into(),
        kind,
        purl: purl.into(),
        source_name: None,
        source_version: None,
        licenses: Vec::new(),
        path: String::new(),
        layer: digest("none"),
        dockerfile: None,
        base_image: None,
    }
}

/// `package` as brought by `layer`, declared by `path`, with `licenses`.
fn placed(mut package: Package, layer: &Layer, path: &str, licenses: &[&str]) -> Package {
    package.layer = layer.diff_id.clone();
    package.dockerfile = layer.dockerfile.clone();
    package.base_image = layer.base_image.clone();
    package.path = path.into();
    package.licenses = licenses.iter().map(|l| (*l).to_owned()).collect();
    package
}

fn bookworm() -> OsRelease {
    OsRelease {
        id: Some("debian".into()),
        version_id: Some("12".into()),
        codename: Some("bookworm".into()),
        pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
    }
}

fn api_layers(arch: &str) -> Vec<Layer> {
    vec![
        base_layer(
            &format!("bookworm-{arch}"),
            "# debian.sh --arch 'amd64' out/ 'bookworm' '@1712534400'",
        ),
        built_layer(
            &format!("apt-{arch}"),
            line(5, None),
            "RUN /bin/sh -c apt-get update && apt-get install -y curl # buildkit",
        ),
        built_layer(
            &format!("server-{arch}"),
            line(14, Some("build")),
            "COPY /out/server /usr/local/bin/server # buildkit",
        ),
        built_layer(
            &format!("pip-{arch}"),
            line(17, None),
            "RUN /bin/sh -c pip install -r requirements.txt # buildkit",
        ),
        built_layer(
            &format!("app-{arch}"),
            line(19, None),
            "COPY . /srv/app # buildkit",
        ),
    ]
}

fn deb(name: &str, version: &str, arch: &str, source: Option<&str>) -> Package {
    let upstream = source.map_or(String::new(), |s| format!("&upstream={s}"));
    let purl = format!(
        "pkg:deb/debian/{name}@{}?arch={arch}&distro=debian-12{upstream}",
        version.replace('+', "%2B")
    );
    Package {
        source_name: source.map(Into::into),
        ..package(PackageType::Deb, name, version, &purl)
    }
}

fn api(platform: &str, arch: &str) -> ImageInventory {
    let layers = api_layers(arch);
    let status = "/var/lib/dpkg/status";
    let site = "/usr/local/lib/python3.11/site-packages";
    let packages = vec![
        placed(
            deb("base-files", "12.4+deb12u5", arch, None),
            &layers[0],
            status,
            &[],
        ),
        placed(
            deb("curl", "7.88.1-10+deb12u5", arch, None),
            &layers[1],
            status,
            &["curl"],
        ),
        placed(
            deb("libc6", "2.36-9+deb12u4", arch, Some("glibc")),
            &layers[0],
            status,
            &["GPL-2.0-or-later", "LGPL-2.1-or-later", "GPL-2+"],
        ),
        placed(
            deb("libcurl4", "7.88.1-10+deb12u5", arch, Some("curl")),
            &layers[1],
            status,
            &["curl"],
        ),
        placed(
            package(
                PackageType::Golang,
                "github.com/acme/api",
                "v1.2.0",
                "pkg:golang/github.com/acme/api@v1.2.0",
            ),
            &layers[2],
            "/usr/local/bin/server",
            &[],
        ),
        placed(
            package(
                PackageType::Golang,
                "stdlib",
                "go1.22.1",
                "pkg:golang/stdlib@go1.22.1",
            ),
            &layers[2],
            "/usr/local/bin/server",
            &["BSD-3-Clause"],
        ),
        placed(
            package(
                PackageType::Pypi,
                "certifi",
                "2024.2.2",
                "pkg:pypi/certifi@2024.2.2",
            ),
            &layers[3],
            &format!("{site}/certifi-2024.2.2.dist-info/METADATA"),
            &["MPL-2.0"],
        ),
        placed(
            package(
                PackageType::Pypi,
                "requests",
                "2.31.0",
                "pkg:pypi/requests@2.31.0",
            ),
            &layers[3],
            &format!("{site}/requests-2.31.0.dist-info/METADATA"),
            &["Apache-2.0"],
        ),
        placed(
            package(
                PackageType::Pypi,
                "typing-extensions",
                "4.10.0",
                "pkg:pypi/typing-extensions@4.10.0",
            ),
            &layers[3],
            &format!("{site}/typing_extensions-4.10.0.dist-info/METADATA"),
            &["Python Software Foundation License"],
        ),
        placed(
            package(
                PackageType::Pypi,
                "urllib3",
                "2.2.1",
                "pkg:pypi/urllib3@2.2.1",
            ),
            &layers[3],
            &format!("{site}/urllib3-2.2.1.dist-info/METADATA"),
            &["MIT"],
        ),
        placed(
            package(
                PackageType::Npm,
                "@babel/core",
                "7.24.0",
                "pkg:npm/%40babel/core@7.24.0",
            ),
            &layers[4],
            "/srv/app/node_modules/@babel/core/package.json",
            &["MIT"],
        ),
        placed(
            package(
                PackageType::Npm,
                "left-pad",
                "1.3.0",
                "pkg:npm/left-pad@1.3.0",
            ),
            &layers[4],
            "/srv/app/node_modules/left-pad/package.json",
            &["WTFPL OR MIT"],
        ),
    ];
    let application = placed(
        package(
            PackageType::Npm,
            "acme-web",
            "0.4.0",
            "pkg:npm/acme-web@0.4.0",
        ),
        &layers[4],
        "/srv/app/package.json",
        &["UNLICENSED"],
    );
    ImageInventory {
        image: "acme/api:1.2".into(),
        platform: Some(platform.into()),
        id: digest(&format!("api-config-{arch}")),
        manifest: Some(digest(&format!("api-manifest-{arch}"))),
        os: Some(bookworm()),
        packages,
        applications: vec![application],
        layers,
        findings: Vec::new(),
        vulnerabilities: None,
        warnings: vec![ScanWarning {
            path: Some(format!("{site}/broken-0.1.dist-info/METADATA")),
            layer: Some(digest(&format!("pip-{arch}"))),
            message: "no `Version:` header".into(),
        }],
    }
}

/// The same image for `linux/arm64`: fewer packages, so the two platforms differ.
fn api_arm64() -> ImageInventory {
    let mut image = api("linux/arm64", "arm64");
    image
        .packages
        .retain(|p| p.kind == PackageType::Deb || p.kind == PackageType::Golang);
    image.applications.clear();
    image.warnings.clear();
    image
}

/// An image buildopt did not build: no Dockerfile lines, no base image.
fn alpine() -> ImageInventory {
    let layer = Layer {
        diff_id: digest("alpine-3.19"),
        dockerfile: None,
        base_image: None,
        created_by: Some(
            "/bin/sh -c #(nop) ADD file:37a76ec18f9887751cd8473744917d08b7431fc4085097bb6a09d81b41775473 in / "
                .into(),
        ),
    };
    let installed = "/lib/apk/db/installed";
    let apk = |name: &str, version: &str, origin: &str, licenses: &[&str]| {
        let purl = format!(
            "pkg:apk/alpine/{name}@{version}?arch=x86_64&distro=alpine-3.19.1&upstream={origin}"
        );
        Package {
            source_name: Some(origin.into()),
            ..placed(
                package(PackageType::Apk, name, version, &purl),
                &layer,
                installed,
                licenses,
            )
        }
    };
    ImageInventory {
        image: "alpine:3.19".into(),
        platform: Some("linux/amd64".into()),
        id: digest("alpine-config"),
        manifest: None,
        os: Some(OsRelease {
            id: Some("alpine".into()),
            version_id: Some("3.19.1".into()),
            codename: None,
            pretty_name: Some("Alpine Linux v3.19".into()),
        }),
        packages: vec![
            apk("busybox", "1.36.1-r15", "busybox", &["GPL-2.0-only"]),
            apk("musl", "1.2.4_git20230717-r4", "musl", &["MIT"]),
            apk("ssl_client", "1.36.1-r15", "busybox", &["GPL-2.0-only"]),
        ],
        applications: Vec::new(),
        layers: vec![layer],
        findings: Vec::new(),
        vulnerabilities: None,
        warnings: Vec::new(),
    }
}
