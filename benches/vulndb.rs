//! Benchmark of vulnerability scanning (issue 17): the index built once from a zip of at least
//! 100,000 OSV records, and a full scan of the Debian test image
//! `buildopt-scan/debian-apps:test` (tests/testbed/make-scan-images.sh) matched against it.
//!
//! **The records** are generated deterministically from the shapes of real ones, one quarter
//! per ecosystem: Debian (`DEBIAN-CVE-*` and `DSA-*` as osv.dev exports them: `upstream` ids,
//! one `affected` entry per release with an `ECOSYSTEM` range, a `versions` list, `urgency`),
//! PyPI (PYSEC-2023-74: a `GIT` and an `ECOSYSTEM` range, a long `versions` list, CVE and GHSA
//! aliases), npm (GHSA-c2qf-rxjj-qqgw: one `affected` entry per release line, a CVSS v3
//! vector, CWE ids) and Go (GO-2023-2102: `SEMVER` ranges with two intervals, imports and
//! symbols). Package names come from a pool per ecosystem in which low numbers are drawn more
//! often, like popular packages. The lowest numbers are the image's own packages as the
//! matcher looks them up (taken from `buildopt scan --image IMAGE --output json` without a
//! database): Debian source names, PEP 503 PyPI names, npm names with their scope, Go module
//! paths. One in three of their records gets the range `introduced 0`, `fixed` just above the
//! installed version (for Debian in `Debian:12`, the image's release), so the scan finds some.
//! `VULNDB_BENCH_RECORDS` changes the number of records (default 120,000).
//!
//! **What is measured**, each command in a fresh child (`support::peak_of`: wall time and peak
//! resident memory) of the release binary, in a working folder of its own:
//! - the index build: `buildopt scan --setup --db ZIP` into a fresh `BUILDOPT_VULNDB_DIR`;
//! - the cold inventory alone: `buildopt scan --image IMAGE --output cyclonedx` with no
//!   database (an empty `BUILDOPT_VULNDB_DIR`: the SBOM is the inventory alone), with an empty
//!   scan cache (`XDG_CACHE_HOME` a fresh folder);
//! - the cold full scan: `buildopt scan --image IMAGE --output json` with that database, the
//!   gates off so it exits 0, with an empty scan cache, and its ratio to the cold inventory;
//! - matching alone, in this process: the full scan's JSON read back as a `ScanReport`, the
//!   database opened with `VulnDb::open`, and `match_image` timed over several rounds;
//! - 1,000 lookups of single names in the opened database.
//!
//! The scans run `BENCH_RUNS` rounds (default 3; the order of the two turns each round) and
//! report medians. The targets of issue 17 are printed next to the figures, marked met or not;
//! nothing is asserted. Without a Docker daemon (`DOCKER_HOST`) or the image, the benchmark
//! says why and measures the index alone, with generated names only.

mod support;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use buildopt::scan::matcher::{go_toolchain_semver, match_image, pep503};
use buildopt::scan::model::{ImageInventory, Package, ScanReport};
use buildopt::scan::package::PackageType;
use buildopt::scan::vulndb::VulnDb;
use support::{peak_of, report};

const IMAGE: &str = "buildopt-scan/debian-apps:test";
const DEFAULT_RECORDS: usize = 120_000;
const LOOKUPS: usize = 1_000;
const MATCH_ROUNDS: usize = 20;
const NAMES_PER_ECOSYSTEM: usize = 6_000;
const ECOSYSTEMS: [&str; 4] = ["Debian", "PyPI", "npm", "Go"];
/// The release the Debian test image is (bookworm), whose entries the image's records hit.
const DEBIAN_RELEASE: &str = "12";
/// One record in this many that names an image package includes its installed version.
const HIT_ONE_IN: u64 = 3;

fn main() {
    if support::run_as_peak_child() {
        return;
    }
    let records: usize = env_number("VULNDB_BENCH_RECORDS").unwrap_or(DEFAULT_RECORDS);
    let runs: usize = env_number("BENCH_RUNS").unwrap_or(3);
    let buildopt = support::buildopt_binary();
    let buildopt = buildopt.to_string_lossy().into_owned();
    let work = tempfile::tempdir().expect("tempdir");
    let work_dir = work.path().to_string_lossy().into_owned();
    report(&support::engine_line());

    let image = image_ready().and_then(|()| inventory(&buildopt, &work_dir));
    let names = match &image {
        Ok(image) => {
            report(&format!("image: {IMAGE}, {}", os_line(image)));
            ImageNames::of(image)
        }
        Err(why) => {
            report(&format!(
                "no scan measured: {why}; the index alone, generated names only"
            ));
            ImageNames::default()
        }
    };
    let mut table = Table::default();
    let db_dir = format!("{work_dir}/vulndb");
    let db = measure_index(&buildopt, &work_dir, &db_dir, records, &names, &mut table);
    if image.is_ok() {
        let scans = time_scans(&buildopt, &work_dir, &db_dir, runs);
        scans.add_rows(&mut table, runs);
        match time_matching(&scans.last_report, &db) {
            Ok((median_ms, findings)) => {
                table.row(
                    &format!("matching alone (median of {MATCH_ROUNDS})"),
                    format!("{median_ms:.1} ms"),
                    Some(("< 100 ms", median_ms < 100.0)),
                );
                table.row("findings", findings.to_string(), None);
            }
            Err(why) => report(&format!("matching not measured: {why}")),
        }
    }
    table.print();
}

/// Generates the zip, times `scan --setup --db` on it in a fresh process and single lookups
/// in the database it made, and returns that database, open.
fn measure_index(
    buildopt: &str,
    work_dir: &str,
    db_dir: &str,
    records: usize,
    names: &ImageNames,
    table: &mut Table,
) -> VulnDb {
    let zip = format!("{work_dir}/osv.zip");
    let started = Instant::now();
    let generated = write_zip(Path::new(&zip), records, names);
    let generate_seconds = started.elapsed().as_secs_f64();
    let zip_mb = std::fs::metadata(&zip).map_or(0.0, |m| megabytes(m.len()));

    let setup = format!(
        "cd '{work_dir}' && BUILDOPT_VULNDB_DIR='{db_dir}' '{buildopt}' scan --setup --db '{zip}' >/dev/null"
    );
    let (build_seconds, build_peak_kib) = peak_of(&["sh", "-c", &setup]);
    let started = Instant::now();
    let db = VulnDb::open(Path::new(db_dir))
        .expect("open the database")
        .expect("scan --setup made a database");
    let open_ms = started.elapsed().as_secs_f64() * 1e3;
    let index_mb = std::fs::metadata(db.path()).map_or(0.0, |m| megabytes(m.len()));
    let (lookup_ms, found) = time_lookups(&db, names);

    report(&format!(
        "{records} records ({} indexed, {} skipped), {} naming the image's {} packages, {} of \
         them including the installed version; zip {zip_mb:.1} MB generated in \
         {generate_seconds:.1} s, index {index_mb:.1} MB",
        db.summary().records,
        db.summary().skipped,
        generated.naming_image,
        names.count(),
        generated.including_installed,
    ));
    table.row(
        "index build (fresh process)",
        format!("{build_seconds:.2} s"),
        Some(("< 30 s", build_seconds < 30.0)),
    );
    let build_peak_mb = kib_to_mb(build_peak_kib);
    table.row(
        "peak memory of the build",
        format!("{build_peak_mb:.0} MB"),
        Some(("< 200 MB", build_peak_mb < 200.0)),
    );
    table.row("open the database", format!("{open_ms:.1} ms"), None);
    table.row("1,000 lookups", format!("{lookup_ms:.1} ms"), None);
    table.row("records found by the lookups", found.to_string(), None);
    db
}

fn env_number(name: &str) -> Option<usize> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
}

fn megabytes(bytes: u64) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "file sizes, far below 2^52")]
    let bytes = bytes as f64;
    bytes / 1e6
}

fn kib_to_mb(kib: i64) -> f64 {
    megabytes(u64::try_from(kib).unwrap_or(0) * 1024)
}

/// Why the scan part cannot run: no daemon answers, or the image is not on it.
fn image_ready() -> Result<(), String> {
    if !support::succeeds(Command::new("docker").arg("version")) {
        return Err("no Docker daemon answers (DOCKER_HOST)".into());
    }
    if !support::succeeds(Command::new("docker").args(["image", "inspect", IMAGE])) {
        return Err(format!(
            "{IMAGE} is missing (tests/testbed/make-scan-images.sh)"
        ));
    }
    Ok(())
}

/// The image's inventory: a scan without a database (which exits 4, the gate being on, but
/// prints every package), not timed.
fn inventory(buildopt: &str, work_dir: &str) -> Result<ImageInventory, String> {
    let cache = tempfile::tempdir().map_err(|e| e.to_string())?;
    let output = Command::new(buildopt)
        .args(["scan", "--image", IMAGE, "--output", "json"])
        .current_dir(work_dir)
        .env("XDG_CACHE_HOME", cache.path())
        .env_remove("BUILDOPT_VULNDB_DIR")
        .output()
        .map_err(|e| format!("{buildopt}: {e}"))?;
    let report: ScanReport = serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "the inventory scan printed no report ({e}): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })?;
    report
        .images
        .into_iter()
        .next()
        .ok_or_else(|| "the inventory scan listed no image".to_owned())
}

fn os_line(image: &ImageInventory) -> String {
    let os = image.os.as_ref();
    let pretty = os.and_then(|os| os.pretty_name.clone());
    format!(
        "{} packages, os-release: {}",
        image.packages.len(),
        pretty.unwrap_or_else(|| "none".into())
    )
}

/// An image package as the matcher looks it up, with a version just above the installed one
/// (`None` when the installed version has no numeric release to step past, Go's `(devel)`).
struct ImageName {
    name: String,
    fixed_above: Option<String>,
}

/// The image's packages per ecosystem (in the order of [`ECOSYSTEMS`]), each name once.
#[derive(Default)]
struct ImageNames([Vec<ImageName>; 4]);

impl ImageNames {
    fn of(image: &ImageInventory) -> Self {
        let mut names = Self::default();
        for package in &image.packages {
            if let Some((slot, name)) = lookup_of(package)
                && !names.0[slot].iter().any(|known| known.name == name.name)
            {
                names.0[slot].push(name);
            }
        }
        names
    }

    fn of_ecosystem(&self, ecosystem: &str) -> &[ImageName] {
        ECOSYSTEMS
            .iter()
            .position(|e| *e == ecosystem)
            .map_or(&[], |slot| &self.0[slot])
    }

    fn count(&self) -> usize {
        self.0.iter().map(Vec::len).sum()
    }
}

/// The slot in [`ECOSYSTEMS`] and lookup name of `package`, as `buildopt::scan::matcher` keys
/// it; `None` for the ecosystems this benchmark does not generate.
fn lookup_of(package: &Package) -> Option<(usize, ImageName)> {
    let (slot, name, fixed_above) = match package.kind {
        PackageType::Deb => {
            let version = package.source_version.as_ref().unwrap_or(&package.version);
            let name = package.source_name.as_ref().unwrap_or(&package.name);
            // A Debian security update appends `+debNNuM`, which sorts after the version it
            // patches.
            let fixed = format!("{version}+deb{DEBIAN_RELEASE}u1");
            (0, name.clone(), Some(fixed))
        }
        PackageType::Pypi => (1, pep503(&package.name), next_release(&package.version)),
        PackageType::Npm => (2, npm_name(package), next_release(&package.version)),
        PackageType::Golang => {
            let version = if package.name == "stdlib" {
                go_toolchain_semver(&package.version)
            } else {
                Some(package.version.trim_start_matches('v').to_owned())
            };
            let fixed = version.as_deref().and_then(next_release);
            (3, package.name.clone(), fixed)
        }
        _ => return None,
    };
    Some((slot, ImageName { name, fixed_above }))
}

/// npm's name: the scope (the purl's namespace) and the name.
fn npm_name(package: &Package) -> String {
    let scope = package
        .purl
        .parse::<packageurl::PackageUrl>()
        .ok()
        .and_then(|purl| purl.namespace().map(str::to_owned))
        .filter(|scope| !scope.is_empty());
    match scope {
        Some(scope) => format!("{scope}/{}", package.name),
        None => package.name.clone(),
    }
}

/// The release numbers of `version` with the last one stepped: `2.31.0` → `2.31.1`,
/// `2026.10.19.post1` → `2026.10.20`, `4.0.0-rc.6` → `4.0.1`: above it in SemVer and PEP 440.
fn next_release(version: &str) -> Option<String> {
    let end = version
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(version.len());
    let release = version[..end].trim_end_matches('.');
    let (head, last) = match release.rsplit_once('.') {
        Some((head, last)) => (Some(head), last),
        None => (None, release),
    };
    let stepped = last.parse::<u64>().ok()?.checked_add(1)?;
    Some(match head {
        Some(head) => format!("{head}.{stepped}"),
        None => stepped.to_string(),
    })
}

/// `LOOKUPS` single lookups spread over the ecosystems, mostly names with records, some
/// without: how long they took in all (ms) and how many records they returned.
fn time_lookups(db: &VulnDb, names: &ImageNames) -> (f64, usize) {
    let queries = lookups(LOOKUPS, names);
    let started = Instant::now();
    let mut found = 0;
    for (ecosystem, name) in &queries {
        found += db.records(ecosystem, name).expect("lookup").len();
    }
    (started.elapsed().as_secs_f64() * 1e3, found)
}

/// The cold scans of every round, and the JSON report of the last full scan.
struct Scans {
    inventory: Vec<(f64, i64)>,
    full: Vec<(f64, i64)>,
    last_report: String,
}

/// Runs the cold inventory and the cold full scan `runs` times each, every run with an empty
/// scan cache, the first of the two alternating so neither always meets the page cache the
/// other left.
fn time_scans(buildopt: &str, work_dir: &str, db_dir: &str, runs: usize) -> Scans {
    let mut scans = Scans {
        inventory: Vec::new(),
        full: Vec::new(),
        last_report: String::new(),
    };
    let json = format!("{work_dir}/full-scan.json");
    for round in 0..runs {
        for step in 0..2 {
            let cache = tempfile::tempdir().expect("tempdir");
            // The inventory alone: a CycloneDX SBOM with no database to match against.
            let no_database = tempfile::tempdir().expect("tempdir");
            let scan = |db: &str| {
                format!(
                    "cd '{work_dir}' && XDG_CACHE_HOME='{}' BUILDOPT_VULNDB_DIR='{db}' \
                     BUILDOPT_FAIL_ON_CRITICAL=false BUILDOPT_FAIL_ON_HIGH=false \
                     '{buildopt}' scan --image {IMAGE}",
                    cache.path().display()
                )
            };
            if (round + step) % 2 == 0 {
                let inventory = scan(&no_database.path().display().to_string());
                let command = format!("{inventory} --output cyclonedx >/dev/null");
                scans.inventory.push(peak_of(&["sh", "-c", &command]));
            } else {
                let command = format!("{} --output json >'{json}'", scan(db_dir));
                scans.full.push(peak_of(&["sh", "-c", &command]));
            }
        }
    }
    scans.last_report = std::fs::read_to_string(&json).unwrap_or_default();
    scans
}

impl Scans {
    fn add_rows(&self, table: &mut Table, runs: usize) {
        let inventory = median(self.inventory.iter().map(|m| m.0).collect());
        let full = median(self.full.iter().map(|m| m.0).collect());
        let ratio = full / inventory;
        let peak = |all: &[(f64, i64)]| kib_to_mb(all.iter().map(|m| m.1).max().unwrap_or(0));
        let (inventory_peak, full_peak) = (peak(&self.inventory), peak(&self.full));
        table.row(
            &format!("cold inventory, cyclonedx (median of {runs})"),
            format!("{inventory:.2} s"),
            None,
        );
        table.row(
            "peak memory of the inventory",
            format!("{inventory_peak:.0} MB"),
            None,
        );
        table.row(
            &format!("cold full scan, json (median of {runs})"),
            format!("{full:.2} s"),
            None,
        );
        table.row(
            "full scan / inventory",
            format!("{ratio:.2}x"),
            Some(("<= 1.5x", ratio <= 1.5)),
        );
        table.row(
            "peak memory of the full scan",
            format!("{full_peak:.0} MB"),
            Some(("< 200 MB", full_peak < 200.0)),
        );
    }
}

/// `match_image` over the image the full scan reported, against `db`, `MATCH_ROUNDS` times:
/// the median in ms and the number of findings.
fn time_matching(report_json: &str, db: &VulnDb) -> Result<(f64, usize), String> {
    let report: ScanReport = serde_json::from_str(report_json)
        .map_err(|e| format!("the full scan printed no report: {e}"))?;
    let image = report
        .images
        .first()
        .ok_or("the full scan listed no image")?;
    let mut times = Vec::with_capacity(MATCH_ROUNDS);
    let mut findings = 0;
    for _ in 0..MATCH_ROUNDS {
        let started = Instant::now();
        let result = match_image(image, db)?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        findings = result.findings.len();
    }
    Ok((median(times), findings))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The printed table: step, measured, target, and whether the target was met.
#[derive(Default)]
struct Table(Vec<(String, String, String, &'static str)>);

impl Table {
    fn row(&mut self, step: &str, measured: String, target: Option<(&str, bool)>) {
        let (target, verdict) = match target {
            Some((target, true)) => (target.to_owned(), "met"),
            Some((target, false)) => (target.to_owned(), "NOT met"),
            None => ("-".to_owned(), ""),
        };
        self.0.push((step.to_owned(), measured, target, verdict));
    }

    fn print(&self) {
        report(&format!(
            "{:<40} {:>12} {:>10}  {}",
            "step", "measured", "target", "(issue 17; not asserted)"
        ));
        for (step, measured, target, verdict) in &self.0 {
            report(&format!(
                "{step:<40} {measured:>12} {target:>10}  {verdict}"
            ));
        }
    }
}

/// A small deterministic generator (a 64-bit LCG): the same records on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The `n`th name of `ecosystem`'s pool: the image's packages first, then generated names.
fn package_name(ecosystem: &str, n: u64, names: &ImageNames) -> String {
    let real = names.of_ecosystem(ecosystem);
    if let Some(known) = usize::try_from(n).ok().and_then(|n| real.get(n)) {
        return known.name.clone();
    }
    match ecosystem {
        "Debian" => format!("libdemo{n}"),
        "PyPI" => format!("py-demo-{n}"),
        "npm" => format!("@demo/pkg-{n}"),
        _ => format!("github.com/demo{n}/module"),
    }
}

/// The number in the pool of a record's package: low numbers are drawn more often, like
/// popular packages.
fn pick_name(random: &mut Lcg) -> u64 {
    let a = random.below(NAMES_PER_ECOSYSTEM as u64);
    let b = random.below(NAMES_PER_ECOSYSTEM as u64);
    a.min(b)
}

/// How many of the generated records name an image package, and how many of those include
/// its installed version.
#[derive(Default)]
struct Generated {
    naming_image: usize,
    including_installed: usize,
}

fn write_zip(path: &Path, records: usize, names: &ImageNames) -> Generated {
    let file = BufWriter::new(File::create(path).expect("create zip"));
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default();
    let mut random = Lcg(0x5eed);
    let mut generated = Generated::default();
    for i in 0..records {
        let ecosystem = ECOSYSTEMS[i % ECOSYSTEMS.len()];
        let (id, json) = record(ecosystem, i, &mut random, names, &mut generated);
        zip.start_file(format!("{id}.json"), options)
            .expect("zip entry");
        zip.write_all(json.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip finish");
    generated
}

fn record(
    ecosystem: &str,
    i: usize,
    random: &mut Lcg,
    names: &ImageNames,
    generated: &mut Generated,
) -> (String, String) {
    let year = 2016 + random.below(10);
    let cve = format!("CVE-{year}-{}", 1000 + i);
    let n = pick_name(random);
    let name = package_name(ecosystem, n, names);
    let (major, minor, patch) = (random.below(9), random.below(30), random.below(20));
    let modified = format!(
        "{year}-{:02}-{:02}T{:02}:13:00.534973Z",
        1 + random.below(12),
        1 + random.below(28),
        random.below(24)
    );
    let details = prose(random);
    let mut value = match ecosystem {
        "Debian" => debian(i, &cve, &name, (major, minor, patch), random),
        "PyPI" => pypi(i, &cve, &name, (major, minor, patch), random),
        "npm" => npm(i, &cve, &name, (major, minor, patch)),
        _ => go(i, &cve, &name, (major, minor, patch)),
    };
    let image_name = usize::try_from(n)
        .ok()
        .and_then(|n| names.of_ecosystem(ecosystem).get(n));
    if let Some(image_name) = image_name {
        generated.naming_image += 1;
        if let Some(fixed) = &image_name.fixed_above
            && random.below(HIT_ONE_IN) == 0
        {
            include_installed(&mut value, ecosystem, fixed);
            generated.including_installed += 1;
        }
    }
    value["modified"] = modified.clone().into();
    value["published"] = modified.into();
    value["details"] = details.into();
    let id = value["id"].as_str().unwrap_or_default().to_owned();
    (id, value.to_string())
}

/// Makes the record's first entry for the image's ecosystem (for Debian its release) affect
/// every version below `fixed`, the installed one included: its version ranges become
/// `introduced 0, fixed FIXED` (a `GIT` range stays as it is).
fn include_installed(record: &mut serde_json::Value, ecosystem: &str, fixed: &str) {
    let wanted = if ecosystem == "Debian" {
        format!("Debian:{DEBIAN_RELEASE}")
    } else {
        ecosystem.to_owned()
    };
    let Some(affected) = record["affected"].as_array_mut() else {
        return;
    };
    let Some(entry) = affected
        .iter_mut()
        .find(|entry| entry["package"]["ecosystem"] == wanted.as_str())
    else {
        return;
    };
    let Some(ranges) = entry["ranges"].as_array_mut() else {
        return;
    };
    for range in ranges.iter_mut().filter(|range| range["type"] != "GIT") {
        range["events"] = serde_json::json!([{"introduced": "0"}, {"fixed": fixed}]);
    }
}

/// Filler of the length of real `details` (a few hundred characters).
fn prose(random: &mut Lcg) -> String {
    const WORDS: [&str; 12] = [
        "a",
        "crafted",
        "request",
        "can",
        "cause",
        "an",
        "out-of-bounds",
        "read",
        "in",
        "the",
        "parser",
        "when",
    ];
    (0..40 + random.below(60))
        .map(|_| WORDS[random.below(WORDS.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}
/// The shape of DSA-5514-1 and DEBIAN-CVE-2024-58382: `upstream`, one entry per release.
fn debian(
    i: usize,
    cve: &str,
    name: &str,
    (major, minor, patch): (u64, u64, u64),
    random: &mut Lcg,
) -> serde_json::Value {
    let releases = [("11", "deb11u"), ("12", "deb12u"), ("13", "")];
    let affected: Vec<serde_json::Value> = releases
        .iter()
        .map(|(release, suffix)| {
            let base = format!("{major}.{minor}.{patch}-{}", 1 + random.below(9));
            let fixed = if suffix.is_empty() {
                format!("{major}.{minor}.{}-1", patch + 1)
            } else {
                format!("{base}+{suffix}{}", 1 + random.below(5))
            };
            serde_json::json!({
                "package": {"name": name, "ecosystem": format!("Debian:{release}"),
                            "purl": format!("pkg:deb/debian/{name}?arch=source")},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                "versions": [base.clone(), format!("{base}+b1")],
                "ecosystem_specific": {"urgency": "not yet assigned"}
            })
        })
        .collect();
    let id = if i.is_multiple_of(8) {
        format!("DSA-{}-1", 5000 + i / 8)
    } else {
        format!("DEBIAN-{cve}")
    };
    serde_json::json!({
        "schema_version": "1.7.0", "id": id, "upstream": [cve], "affected": affected,
        "summary": format!("{name}: security update")
    })
}

/// The shape of PYSEC-2023-74: a `GIT` and an `ECOSYSTEM` range, a long `versions` list.
fn pypi(
    i: usize,
    cve: &str,
    name: &str,
    (major, minor, patch): (u64, u64, u64),
    random: &mut Lcg,
) -> serde_json::Value {
    let listed = 5 + random.below(60);
    let versions: Vec<String> = (0..listed)
        .map(|n| format!("{major}.{}.{}", n / 10, n % 10))
        .collect();
    serde_json::json!({
        "id": format!("PYSEC-{}-{}", 2016 + i % 10, i),
        "aliases": [cve, format!("GHSA-{:04x}-{:04x}-{:04x}", i % 65536, (i / 7) % 65536, (i / 13) % 65536)],
        "affected": [{
            "package": {"name": name, "ecosystem": "PyPI", "purl": format!("pkg:pypi/{name}")},
            "ranges": [
                {"type": "GIT", "repo": format!("https://github.com/demo/{name}"),
                 "events": [{"introduced": "0"}, {"fixed": format!("{:040x}", i)}]},
                {"type": "ECOSYSTEM", "events": [{"introduced": format!("{major}.0.0")},
                                                 {"fixed": format!("{major}.{minor}.{patch}")}]}
            ],
            "versions": versions
        }]
    })
}

/// The shape of GHSA-c2qf-rxjj-qqgw: one entry per release line, a CVSS v3 vector.
fn npm(
    i: usize,
    cve: &str,
    name: &str,
    (major, minor, patch): (u64, u64, u64),
) -> serde_json::Value {
    let lines: Vec<serde_json::Value> = (0..=major.min(2))
        .map(|line| {
            let introduced = if line == 0 { "0".to_owned() } else { format!("{}.0.0", major + line) };
            serde_json::json!({
                "package": {"ecosystem": "npm", "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": [
                    {"introduced": introduced}, {"fixed": format!("{}.{minor}.{patch}", major + line)}]}]
            })
        })
        .collect();
    serde_json::json!({
        "schema_version": "1.4.0",
        "id": format!("GHSA-{:04x}-{:04x}-npm{}", i % 65536, (i / 3) % 65536, i),
        "aliases": [cve],
        "summary": format!("{name} vulnerable to Regular Expression Denial of Service"),
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"}],
        "affected": lines,
        "database_specific": {"cwe_ids": ["CWE-1333"], "severity": "MODERATE", "github_reviewed": true}
    })
}

/// The shape of GO-2023-2102: `SEMVER` ranges with two intervals, imports and symbols.
fn go(
    i: usize,
    cve: &str,
    name: &str,
    (major, minor, patch): (u64, u64, u64),
) -> serde_json::Value {
    serde_json::json!({
        "schema_version": "1.3.1",
        "id": format!("GO-{}-{:04}", 2020 + i % 6, i),
        "aliases": [cve, format!("GHSA-go{:02x}-{:04x}-{:04x}", i % 256, i % 65536, (i / 5) % 65536)],
        "affected": [{
            "package": {"name": name, "ecosystem": "Go"},
            "ranges": [{"type": "SEMVER", "events": [
                {"introduced": "0"}, {"fixed": format!("0.{minor}.{patch}")},
                {"introduced": format!("{}.0.0-rc.1", major + 1)}, {"fixed": format!("{}.{minor}.{patch}", major + 1)}]}],
            "ecosystem_specific": {"imports": [{"path": format!("{name}/http2"),
                                                "symbols": ["Server.ServeConn", "serverConn.serve"]}]}
        }]
    })
}

/// `count` lookups spread over the ecosystems: mostly names with records, some without.
fn lookups(count: usize, names: &ImageNames) -> Vec<(String, String)> {
    let mut random = Lcg(0x100c);
    (0..count)
        .map(|i| {
            let base = ECOSYSTEMS[i % ECOSYSTEMS.len()];
            let ecosystem = if base == "Debian" {
                format!("Debian:{DEBIAN_RELEASE}")
            } else {
                base.to_owned()
            };
            let n = if i.is_multiple_of(10) {
                NAMES_PER_ECOSYSTEM as u64 + random.below(1000)
            } else {
                pick_name(&mut random)
            };
            (ecosystem, package_name(base, n, names))
        })
        .collect()
}
