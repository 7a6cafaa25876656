//! Trivy and Grype as buildopt runs them, through stand-in executables on PATH (neither tool
//! nor its database can be installed on the test machines): the arguments buildopt passes,
//! their JSON reports read into findings, a failing or garbled tool as an error, and the policy
//! (an ignore entry before and after its expiry) deciding the exit code over those findings.
//!
//! The stand-ins are `tests/fixtures/scan/external/bin/{trivy,grype}`; each test wraps them in
//! a script of its own that sets the stand-in's mode, so tests never change this process's
//! environment.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use buildopt::cache::digest::Digest;
use buildopt::exit;
use buildopt::scan::PackageType;
use buildopt::scan::external::{self, ExternalError, ImageInput, Tool};
use buildopt::scan::ignore::IgnoreList;
use buildopt::scan::model::{ImageInventory, Layer, MatchStatus, Package, Severity};
use buildopt::scan::policy::{self, Policy};
use chrono::NaiveDate;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scan/external")
}

/// A folder holding `tool`, a wrapper that runs the stand-in in `mode` and records its
/// arguments in `args.txt`; returns the folder (the PATH to search) and the arguments' file.
fn stand_in(dir: &Path, tool: Tool, mode: &str) -> (OsString, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let args = dir.join("args.txt");
    let real = fixtures().join("bin").join(tool.name());
    let script = format!(
        "#!/bin/sh\nSTANDIN_MODE='{mode}' STANDIN_ARGS='{}' exec '{}' \"$@\"\n",
        args.display(),
        real.display()
    );
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin folder");
    let path = bin.join(tool.name());
    std::fs::write(&path, script).expect("wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (bin.into_os_string(), args)
}

fn recorded(args: &Path) -> Vec<String> {
    std::fs::read_to_string(args)
        .expect("the stand-in ran")
        .lines()
        .map(str::to_string)
        .collect()
}

/// The image the stand-in reports are about: libssl3 from the Debian base layer, one layer
/// per Dockerfile line after it.
fn image() -> ImageInventory {
    let base: Digest = format!("sha256:{}", "1".repeat(64))
        .parse()
        .expect("digest");
    let pip: Digest = format!("sha256:{}", "2".repeat(64))
        .parse()
        .expect("digest");
    ImageInventory {
        image: "acme/api:1".into(),
        platform: Some("linux/amd64".into()),
        id: Digest::of(b"config"),
        manifest: None,
        os: None,
        packages: vec![Package {
            name: "libssl3".into(),
            version: "3.0.11-1~deb12u2".into(),
            kind: PackageType::Deb,
            purl: "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12".into(),
            source_name: Some("openssl".into()),
            source_version: None,
            licenses: Vec::new(),
            path: "/var/lib/dpkg/status".into(),
            layer: base.clone(),
            dockerfile: None,
            base_image: Some("debian:12".into()),
        }],
        applications: Vec::new(),
        layers: vec![
            Layer {
                diff_id: base,
                dockerfile: None,
                base_image: Some("debian:12".into()),
                created_by: None,
            },
            Layer {
                diff_id: pip,
                dockerfile: Some(buildopt::scan::model::DockerfileLine {
                    path: "api/Dockerfile".into(),
                    line: 5,
                    stage: None,
                }),
                base_image: None,
                created_by: Some("RUN pip install requests==2.28.1".into()),
            },
        ],
        findings: Vec::new(),
        vulnerabilities: Some(MatchStatus {
            scanned: true,
            reason: None,
            database: None,
            database_modified: None,
            ignored: 0,
            below_level: 0,
            database_built: None,
            database_age_days: None,
            not_matched: Vec::new(),
        }),
        warnings: Vec::new(),
    }
}

#[test]
fn scan_policy_trivy_stand_in_is_run_on_the_reference_and_its_findings_placed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, args) = stand_in(dir.path(), Tool::Trivy, "report");
    let found = external::scan(
        Tool::Trivy,
        ImageInput::Reference("acme/api:1"),
        &image(),
        Some(&path),
    )
    .expect("trivy's findings");
    assert_eq!(
        recorded(&args),
        ["image", "--format", "json", "--quiet", "acme/api:1"]
    );
    let ids: Vec<(&str, &str)> = found
        .findings
        .iter()
        .map(|f| (f.id.as_str(), f.package.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("CVE-2023-5678", "libssl3"),
            ("CVE-2011-3374", "apt"),
            ("CVE-2023-32681", "requests")
        ]
    );
    assert!(found.findings.iter().all(|f| f.found_by == ["trivy"]));
    let requests = &found.findings[2];
    assert_eq!(requests.dockerfile.as_ref().map(|d| d.line), Some(5));
    assert_eq!(
        found.skipped.len(),
        1,
        "the NuGet package: {:?}",
        found.skipped
    );
}

#[test]
fn scan_policy_grype_stand_in_reads_a_saved_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, args) = stand_in(dir.path(), Tool::Grype, "report");
    let archive = dir.path().join("api.tar");
    let found = external::scan(
        Tool::Grype,
        ImageInput::Archive(&archive),
        &image(),
        Some(&path),
    )
    .expect("grype's findings");
    assert_eq!(
        recorded(&args),
        [
            format!("docker-archive:{}", archive.display()),
            "-o".into(),
            "json".into()
        ]
    );
    assert_eq!(found.findings.len(), 3);
    let requests = found
        .findings
        .iter()
        .find(|f| f.package == "requests")
        .expect("requests");
    assert_eq!(requests.id, "CVE-2023-32681");
    assert_eq!(requests.aliases, ["GHSA-j8r2-6x86-q33q"]);
    assert_eq!(requests.fixed_version.as_deref(), Some("2.31.0"));
    assert_eq!(requests.found_by, ["grype"]);
}

#[test]
fn scan_policy_a_failing_garbled_or_missing_tool_is_an_error() {
    for tool in [Tool::Trivy, Tool::Grype] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _) = stand_in(dir.path(), tool, "fail");
        let err = external::scan(
            tool,
            ImageInput::Reference("acme/api:1"),
            &image(),
            Some(&path),
        )
        .expect_err("a failing tool");
        assert!(matches!(err, ExternalError::Failed { .. }), "{err}");
        assert!(err.to_string().contains("unable to"), "{err}");

        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _) = stand_in(dir.path(), tool, "garbage");
        let err = external::scan(
            tool,
            ImageInput::Reference("acme/api:1"),
            &image(),
            Some(&path),
        )
        .expect_err("garbage");
        assert!(matches!(err, ExternalError::Unreadable { .. }), "{err}");

        let empty = tempfile::tempdir().expect("tempdir");
        let err = external::scan(
            tool,
            ImageInput::Reference("acme/api:1"),
            &image(),
            Some(empty.path().as_os_str()),
        )
        .expect_err("no tool");
        assert!(matches!(err, ExternalError::Missing { .. }), "{err}");
        assert!(err.to_string().contains(tool.name()), "{err}");
    }
}

#[test]
fn scan_policy_an_ignore_entry_passes_the_gate_until_it_expires() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, _) = stand_in(dir.path(), Tool::Grype, "report");
    let ignore = dir.path().join(".buildoptignore");
    std::fs::write(
        &ignore,
        "[[ignore]]\nid = \"GHSA-j8r2-6x86-q33q\"\nreason = \"no proxies\"\nexpires = 2027-01-31\n",
    )
    .expect("ignore file");
    let ignores = IgnoreList::load(&ignore, true, &dir.path().join(".trivyignore"))
        .expect("ignore file")
        .for_image("acme/api:1");
    let policy = Policy {
        fail_on_high: true,
        ..Policy::default()
    };
    let gate = |today: &str| {
        let found = external::scan(
            Tool::Grype,
            ImageInput::Reference("acme/api:1"),
            &image(),
            Some(&path),
        )
        .expect("findings");
        // The stand-in's requests finding is medium: raise it so it is the one high finding.
        let findings = found
            .findings
            .into_iter()
            .map(|mut f| {
                if f.package == "requests" {
                    f.severity = Severity::High;
                }
                f
            })
            .collect();
        let today = NaiveDate::parse_from_str(today, "%Y-%m-%d").expect("date");
        let outcome = policy::apply(findings, &policy, &ignores, today);
        let expired = outcome.expired_ignores.len();
        let mut scanned = image();
        outcome.record(&mut scanned);
        (policy::exit_code([&scanned], &policy), scanned, expired)
    };
    let (code, scanned, expired) = gate("2027-01-31");
    assert_eq!(code, exit::SUCCESS);
    assert_eq!(scanned.vulnerabilities.as_ref().expect("status").ignored, 1);
    assert_eq!(expired, 0);
    let (code, scanned, expired) = gate("2027-02-01");
    assert_eq!(code, exit::POLICY);
    assert_eq!(expired, 1);
    let failing: Vec<&str> = scanned
        .findings
        .iter()
        .filter(|f| f.fails_gate)
        .map(|f| f.id.as_str())
        .collect();
    assert_eq!(failing, ["CVE-2023-32681"]);
}
