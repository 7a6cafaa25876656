//! Shared test data for the renderers: one realistic run, one hostile run, many images, and the
//! same run with a vulnerability scan (matched, hostile, without a database, with many findings).
//!
//! Every renderer snapshots the same reports so a change to the model shows up in all formats.

use super::model::{
    CacheExport, CacheReport, CacheRestore, CleanupReport, ContextSize, Failure, ImageReport,
    ImageResult, RUN_REPORT_VERSION, RunInfo, RunReport, RunScan, StepReport,
};
use crate::engine::ImageStore;
use crate::plan::{Reason, ReasonKind};
use crate::report::model::EngineReport;
use crate::scan::model::MatchStatus;
use crate::scan::policy::Policy;

/// Text an attacker controls through file names, branch names or build output: workflow
/// commands, mentions, HTML, a sticky-comment marker, backtick runs and line breaks.
pub const HOSTILE: &str = "::error file=x::pwned\r\n::add-mask::secret @channel @org/team #123 \
</details><script>alert(1)</script> <!-- buildopt:summary --> ```` [x](javascript:alert(1)) \
![t](http://evil/pixel) %0A | a:b,c & * _ ~";

pub fn image(name: &str, result: ImageResult) -> ImageReport {
    ImageReport {
        dockerfile: format!("{name}/Dockerfile"),
        duration_ms: 3200,
        context: Some(ContextSize {
            bytes: 4096,
            files: 12,
        }),
        ..ImageReport::new(
            name.into(),
            format!("registry.example.com/{name}"),
            result,
            format!("blake3:{name}"),
        )
    }
}

pub fn step(name: &str, line: usize, cached: bool) -> StepReport {
    StepReport {
        name: name.into(),
        line: Some(line),
        duration_ms: if cached { 0 } else { 1500 },
        cached,
        platform: None,
    }
}

pub fn reason(kind: ReasonKind, detail: &str) -> Reason {
    Reason {
        kind,
        detail: detail.into(),
        files: Vec::new(),
        file_count: 0,
    }
}

pub fn run_info() -> RunInfo {
    RunInfo {
        base: Some("0123456789abcdef0123456789abcdef01234567".into()),
        head: "89abcdef0123456789abcdef0123456789abcdef".into(),
        range_reason: "merge base with origin/main".into(),
        level: crate::settings::Level::Medium,
        builder: crate::engine::Builder::BuildKit,
        jobs: 2,
        started: "2026-01-01T00:00:00Z".into(),
        duration_ms: 65_000,
        interrupted: false,
        ci: None,
        engine: Some(EngineReport {
            version: "28.5.2".into(),
            api_version: "1.51".into(),
            image_store: ImageStore::Containerd,
            storage_driver: "overlayfs".into(),
            notes: Vec::new(),
        }),
    }
}

/// One image of each result: base built, linter reused, api failed, worker skipped.
pub fn report() -> RunReport {
    let mut base = image("base", ImageResult::Built);
    base.reasons = vec![Reason {
        kind: ReasonKind::Context,
        detail: "base/motd changed".into(),
        files: vec!["base/motd".into()],
        file_count: 1,
    }];
    base.steps = vec![
        step("[1/3] FROM docker.io/library/busybox", 1, true),
        step("[2/3] COPY motd /etc/motd", 2, false),
        step("[3/3] RUN adduser -D app", 3, true),
    ];
    base.size = Some(4_400_000);
    base.previous_size = Some(4_000_000);
    base.layers = Some(3);
    base.image_id = Some("sha256:1111".into());
    base.digest = Some("registry.example.com/base@sha256:aaaa".into());
    base.tags = vec!["registry.example.com/base:89abcdef".into()];

    let mut linter = image("linter", ImageResult::Reused);
    linter.duration_ms = 120;
    linter.size = Some(12_000_000);
    linter.previous_size = Some(12_000_000);
    linter.digest = Some("registry.example.com/linter@sha256:bbbb".into());
    linter.tags = vec!["registry.example.com/linter:89abcdef".into()];

    let mut api = image("api", ImageResult::Failed);
    api.reasons = vec![
        reason(ReasonKind::Parent, "base is rebuilt"),
        reason(ReasonKind::Dockerfile, "services/api/Dockerfile changed"),
    ];
    api.steps = vec![
        step("[1/4] FROM registry.example.com/base", 1, true),
        step("[2/4] COPY . /src", 3, false),
        step("[3/4] RUN make", 4, false),
    ];
    api.failure = Some(Failure {
        step: Some("[3/4] RUN make".into()),
        line: Some(4),
        message: "process \"/bin/sh -c make\" did not complete successfully: exit code: 2".into(),
        log_tail: vec![
            "cc -o app main.c".into(),
            "main.c:3: error: expected ';'".into(),
            "make: *** [Makefile:2: app] Error 1".into(),
        ],
    });

    let mut worker = image("worker", ImageResult::Skipped);
    worker.skip_reason = Some("parent failed".into());
    worker.duration_ms = 0;

    RunReport {
        version: RUN_REPORT_VERSION,
        run: run_info(),
        images: vec![base, linter, api, worker],
        cleanup: Some(CleanupReport {
            dangling_images_bytes: 1500,
            build_cache_bytes: 3_000_000,
            retention_days: 7,
        }),
        cache: Some(CacheReport {
            store: "/ci/.build_cache".into(),
            restore: CacheRestore {
                loaded: vec!["registry.example.com/base".into()],
                already_in_daemon: vec!["registry.example.com/linter".into()],
                bytes: 2_000_000,
                duration_ms: 1500,
                warning: None,
                notes: Vec::new(),
            },
            export: Some(CacheExport {
                saved: vec![
                    "registry.example.com/base".into(),
                    "registry.example.com/base:stage-builder".into(),
                ],
                new_blobs: 5,
                new_bytes: 1_200_000,
                pruned: vec!["registry.example.com/old".into()],
                duration_ms: 850,
                warning: None,
            }),
        }),
        scan: None,
    }
}

/// Every piece of untrusted text replaced by [`HOSTILE`]: image name, range reason, reasons,
/// skip reason, failing step, message and log tail.
pub fn hostile_report() -> RunReport {
    let mut report = report();
    report.run.range_reason = HOSTILE.into();
    if let Some(cache) = &mut report.cache {
        cache.restore.warning = Some(HOSTILE.into());
        if let Some(export) = &mut cache.export {
            export.warning = Some(HOSTILE.into());
        }
    }
    for image in &mut report.images {
        image.name = format!("{}{HOSTILE}", image.name);
        for reason in &mut image.reasons {
            reason.detail = HOSTILE.into();
        }
        if image.skip_reason.is_some() {
            image.skip_reason = Some(HOSTILE.into());
        }
        if let Some(failure) = &mut image.failure {
            failure.step = Some(HOSTILE.into());
            failure.message = HOSTILE.into();
            failure.log_tail = HOSTILE.split("\r\n").map(String::from).collect();
            failure.log_tail.push("````` fence breakout".into());
            failure
                .log_tail
                .push("\u{1b}[31mred\u{1b}[0m \u{0} nul".into());
        }
    }
    report
}

/// `count` images cycling through the four results, each with a reason and, when failed, a
/// long log tail: for the size limits.
pub fn many_images(count: usize) -> RunReport {
    let mut report = report();
    report.images = (0..count)
        .map(|n| {
            let result = [
                ImageResult::Built,
                ImageResult::Reused,
                ImageResult::Failed,
                ImageResult::Skipped,
            ][n % 4];
            let mut image = image(&format!("image-{n:05}"), result);
            image.reasons = vec![reason(
                ReasonKind::Context,
                &format!("services/image-{n:05}/src/main.rs changed"),
            )];
            image.size = Some(1_000_000 + n as u64);
            image.digest = Some(format!("registry.example.com/image-{n:05}@sha256:{n:064x}"));
            if result == ImageResult::Failed {
                image.failure = Some(Failure {
                    step: Some("[2/2] RUN make".into()),
                    line: Some(2),
                    message: "exit code: 2".into(),
                    log_tail: (0..40).map(|l| format!("log line {l} of {n}")).collect(),
                });
            }
            if result == ImageResult::Skipped {
                image.skip_reason = Some("parent failed".into());
            }
            image
        })
        .collect();
    report
}

/// The Markdown outside fenced code blocks and code spans, following CommonMark's rules (a
/// fence closes at a line of at least as many backticks; a span at the next run of exactly as
/// many): what GitHub would parse as Markdown and HTML.
pub fn outside_code(markdown: &str) -> String {
    let mut out = String::new();
    let mut fence: Option<usize> = None;
    for line in markdown.lines() {
        let run = line.len() - line.trim_start_matches('`').len();
        let only_backticks = line.trim_end().trim_matches('`').is_empty();
        match fence {
            Some(open) if run >= open && only_backticks => fence = None,
            Some(_) => {}
            None if run >= 3 => fence = Some(run),
            None => {
                out.push_str(&outside_code_spans(line));
                out.push('\n');
            }
        }
    }
    assert!(fence.is_none(), "unclosed fence in:\n{markdown}");
    out
}

fn outside_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let run_at = |i: usize| chars[i..].iter().take_while(|&&c| c == '`').count();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                out.extend(chars.get(i..i + 2).unwrap_or(&chars[i..]));
                i += 2;
            }
            '`' => {
                let open = run_at(i);
                let mut j = i + open;
                let mut close = None;
                while j < chars.len() {
                    let run = run_at(j);
                    if run == open {
                        close = Some(j + run);
                        break;
                    }
                    j += run.max(1);
                }
                match close {
                    Some(end) => i = end,
                    None => {
                        out.extend(&chars[i..i + open]);
                        i += open;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// [`report`] with the scan of its images: the findings renderers' report (real advisories on
/// real package versions, see `tests/fixtures/scan/README.md`) matched under the default gate.
///
/// `api` on `linux/amd64` has findings new since the base build (`libexpat1` high, failing the
/// gate; `openssl`; one `requests` advisory) and findings the base build had too (`zlib1g`
/// critical from the base image, failing the gate; the rest); `api` on `linux/arm64` has no
/// known base inventory; `worker` is clean; `legacy` was not scanned (no database); `cron` is
/// unchanged with its stored findings.
pub fn scan_report() -> RunReport {
    let mut images = super::findings_fixtures::report().images;
    let new_since_base = |id: &str, package: &str| {
        matches!(
            (id, package),
            ("CVE-2023-52425", _) | ("CVE-2024-0727", "openssl") | ("GHSA-9hjg-9r4m-mvj7", _)
        )
    };
    for finding in &mut images[0].findings {
        finding.new = Some(new_since_base(&finding.id, &finding.package));
    }
    // The age the check recorded (the warning below says the same).
    for status in images.iter_mut().filter_map(|i| i.vulnerabilities.as_mut()) {
        if status.scanned {
            status.database_built = Some("2026-11-28".into());
            status.database_age_days = Some(9);
        }
    }
    // A Go binary built from a work tree: its module version `(devel)` cannot be matched.
    if let Some(status) = images[0].vulnerabilities.as_mut() {
        status.not_matched.push(crate::scan::model::NotMatched {
            package: "example.com/acme/api".into(),
            version: "(devel)".into(),
            kind: crate::scan::package::PackageType::Golang,
            path: "/usr/local/bin/api".into(),
            reason: crate::scan::model::NotMatchedReason::UnreadableVersion,
            detail: "version \"(devel)\" cannot be read as SemVer".into(),
        });
    }
    let mut cron = images[2].clone();
    cron.image = "registry.example.com/acme/cron:latest".into();
    cron.findings = images[1].findings.clone();
    let mut report = report();
    report.scan = Some(RunScan {
        images,
        layers_read: 6,
        layers_cached: 3,
        images_from_store: 0,
        images_matched: 2,
        findings_reused: 1,
        policy: Some(Policy::default()),
        base: report.run.base.clone(),
        base_unknown: vec!["registry.example.com/acme/api:1.4.2 (linux/arm64)".into()],
        unchanged: vec![cron],
        errors: Vec::new(),
        warnings: vec![
            "the vulnerability database osv-2026-12-05 is 9 days old (the limit is 7)".into(),
        ],
    });
    report
}

/// [`scan_report`] with [`HOSTILE`] in every piece of record and repository text the
/// vulnerability section shows: ids, package names and versions, fixed versions, base images,
/// Dockerfile paths, image names, warnings and the base-unknown list.
pub fn hostile_scan_report() -> RunReport {
    let mut report = scan_report();
    let Some(scan) = report.scan.as_mut() else {
        return report;
    };
    let image = &mut scan.images[0];
    image.image = format!("registry.example.com/acme/api:{HOSTILE}");
    for finding in image.findings.iter_mut().take(3) {
        finding.id = format!("CVE-2023-{HOSTILE}");
        finding.package = format!("zlib1g{HOSTILE}");
        finding.installed_version = format!("1:1.2\u{1b}[31m{HOSTILE}");
        finding.fixed_version = Some(HOSTILE.into());
        finding.base_image = Some(HOSTILE.into());
        if let Some(line) = finding.dockerfile.as_mut() {
            line.path = HOSTILE.into();
        }
    }
    scan.base_unknown = vec![HOSTILE.into()];
    scan.warnings = vec![HOSTILE.into()];
    scan.errors = vec![HOSTILE.into()];
    report
}

/// [`scan_report`] where no image could be matched: no vulnerability database.
pub fn unscanned_report() -> RunReport {
    let mut report = scan_report();
    if let Some(scan) = report.scan.as_mut() {
        for image in &mut scan.images {
            image.findings.clear();
            image.vulnerabilities = Some(MatchStatus {
                scanned: false,
                reason: Some("no vulnerability database (run `buildopt scan --setup`)".into()),
                database: None,
                database_modified: None,
                ignored: 0,
                below_level: 0,
                database_built: None,
                database_age_days: None,
                not_matched: Vec::new(),
            });
        }
        scan.images_matched = 0;
        scan.findings_reused = 0;
        scan.base_unknown.clear();
        scan.unchanged.clear();
        scan.warnings.clear();
    }
    report
}

/// [`scan_report`] whose first image has `count` findings of every severity in turn, every
/// third one new: for the size limits.
pub fn many_findings_report(count: usize) -> RunReport {
    let mut report = scan_report();
    let mut image = super::findings_fixtures::many_findings(count)
        .images
        .remove(0);
    for (index, finding) in image.findings.iter_mut().enumerate() {
        finding.new = Some(index % 3 == 0);
    }
    if let Some(scan) = report.scan.as_mut() {
        scan.images = vec![image];
        scan.base_unknown.clear();
    }
    report
}
