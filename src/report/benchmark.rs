//! The `build --benchmark` result as data ([`BenchmarkReport`]) and its two renderings: a table
//! for people and JSON for programs.

use serde::Serialize;

use super::escape::console_name;
use super::run::{duration, size};

/// The version of the JSON form; bumped on incompatible changes.
pub const BENCHMARK_REPORT_VERSION: u32 = 1;

/// Everything one `buildopt build --benchmark` measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkReport {
    pub version: u32,
    /// The repository benchmarked (its work tree was copied; the original is never built).
    pub repository: String,
    /// The scratch repository prefix every image got (`buildopt-bench-<random>`).
    pub prefix: String,
    /// How many images the repository has.
    pub images: usize,
    /// The buildopt runs, in the order they ran.
    pub runs: Vec<BenchmarkRun>,
    /// The plain sequential build of every image; `None` when the benchmark stopped before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    /// What was removed at the end.
    pub cleanup: BenchmarkCleanup,
    /// Ctrl-C stopped the benchmark; the runs so far are reported.
    pub interrupted: bool,
}

/// One `buildopt build` at one level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkRun {
    pub level: String,
    /// `cold` (`--force`: no build cache, nothing reused) or `warm` (right after the cold run).
    pub cache: String,
    /// The whole run: settings, plan, daemon connection, cache restore, build, cache export.
    pub duration_ms: u64,
    /// Dockerfile instructions run (the builder's internal work left out), and how many of them
    /// the build cache served.
    pub steps: usize,
    pub cached_steps: usize,
    pub built: usize,
    pub reused: usize,
    pub failed: usize,
    /// Bytes of every built or reused image, all layers included.
    pub total_size: u64,
}

/// The plain build every run is compared with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baseline {
    /// How it was built, for the reader.
    pub method: String,
    pub duration_ms: u64,
    pub images: usize,
}

/// The images the benchmark removed, and any it could not.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BenchmarkCleanup {
    pub removed: usize,
    pub left: Vec<String>,
}

impl BenchmarkRun {
    /// Cached steps over all steps; `None` when no step ran (everything reused).
    pub fn cached_ratio(&self) -> Option<f64> {
        (self.steps > 0).then(|| self.cached_steps as f64 / self.steps as f64)
    }

    /// How many times faster than the baseline (above 1: faster).
    pub fn speedup(&self, baseline: &Baseline) -> f64 {
        baseline.duration_ms as f64 / self.duration_ms.max(1) as f64
    }
}

/// The table: one row per run, then the baseline and the cleanup.
pub fn table(report: &BenchmarkReport) -> String {
    let header = [
        "level",
        "cache",
        "wall time",
        "cached steps",
        "built",
        "reused",
        "total size",
        "speed-up vs docker build",
    ];
    let rows: Vec<[String; 8]> = report
        .runs
        .iter()
        .map(|run| row(run, report.baseline.as_ref()))
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = format!(
        "benchmark of {} ({} images, as {}/…)\n\n",
        console_name(&report.repository),
        report.images,
        console_name(&report.prefix)
    );
    out.push_str(&line(&header.map(String::from), &widths));
    for row in &rows {
        out.push_str(&line(row, &widths));
    }
    out.push('\n');
    match &report.baseline {
        Some(baseline) => out.push_str(&format!(
            "baseline: {} of {} images in {} ({})\n",
            "sequential docker build",
            baseline.images,
            duration(baseline.duration_ms),
            baseline.method
        )),
        None => out.push_str("baseline: not measured\n"),
    }
    if report.interrupted {
        out.push_str("interrupted: the runs above are all that ran\n");
    }
    out.push_str(&format!(
        "cleanup: removed {} images",
        report.cleanup.removed
    ));
    if report.cleanup.left.is_empty() {
        out.push('\n');
    } else {
        out.push_str(&format!(
            "; could not remove: {}\n",
            report
                .cleanup
                .left
                .iter()
                .map(|name| console_name(name))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out
}

fn row(run: &BenchmarkRun, baseline: Option<&Baseline>) -> [String; 8] {
    let cached = match run.cached_ratio() {
        Some(ratio) => format!("{}/{} ({:.0}%)", run.cached_steps, run.steps, ratio * 100.0),
        None => "-".into(),
    };
    let versus = baseline.map_or_else(|| "-".into(), |b| format!("{:.1}x", run.speedup(b)));
    [
        run.level.clone(),
        run.cache.clone(),
        duration(run.duration_ms),
        cached,
        run.built.to_string(),
        run.reused.to_string(),
        size(run.total_size),
        versus,
    ]
}

fn line(cells: &[String; 8], widths: &[usize; 8]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(cell, width)| format!("{cell:<width$}"))
        .collect();
    format!("{}\n", padded.join("  ").trim_end())
}

/// The report as pretty JSON.
pub fn json(report: &BenchmarkReport) -> String {
    serde_json::to_string_pretty(report).expect("a benchmark report always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(level: &str, cache: &str, ms: u64, steps: usize, cached: usize) -> BenchmarkRun {
        BenchmarkRun {
            level: level.into(),
            cache: cache.into(),
            duration_ms: ms,
            steps,
            cached_steps: cached,
            built: if steps > 0 { 4 } else { 0 },
            reused: if steps > 0 { 0 } else { 4 },
            failed: 0,
            total_size: 8_300_000,
        }
    }

    fn report() -> BenchmarkReport {
        BenchmarkReport {
            version: BENCHMARK_REPORT_VERSION,
            repository: "/src/monorepo".into(),
            prefix: "buildopt-bench-0a1b2c3d".into(),
            images: 4,
            runs: vec![
                run("minimal", "cold", 4200, 16, 0),
                run("minimal", "warm", 350, 0, 0),
                run("medium", "cold", 2100, 16, 2),
            ],
            baseline: Some(Baseline {
                method: "classic builder through the Engine API, warm cache".into(),
                duration_ms: 3500,
                images: 4,
            }),
            cleanup: BenchmarkCleanup {
                removed: 12,
                left: Vec::new(),
            },
            interrupted: false,
        }
    }

    #[test]
    fn the_table_shows_every_run_against_the_baseline() {
        insta::assert_snapshot!(table(&report()));
    }

    #[test]
    fn an_interrupted_benchmark_without_baseline_says_so() {
        let mut report = report();
        report.baseline = None;
        report.interrupted = true;
        report.cleanup.left = vec!["buildopt-bench-0a1b2c3d/api:latest".into()];
        insta::assert_snapshot!(table(&report));
    }

    #[test]
    fn ratios_are_plain_divisions() {
        let run = run("medium", "warm", 250, 10, 9);
        let baseline = Baseline {
            method: String::new(),
            duration_ms: 5000,
            images: 4,
        };
        assert_eq!(run.cached_ratio(), Some(0.9));
        assert!((run.speedup(&baseline) - 20.0).abs() < f64::EPSILON);
    }

    #[test]
    fn json_has_the_version_and_every_run() {
        let value: serde_json::Value = serde_json::from_str(&json(&report())).expect("json");
        assert_eq!(value["version"], BENCHMARK_REPORT_VERSION);
        assert_eq!(value["runs"].as_array().map(Vec::len), Some(3));
        assert_eq!(value["baseline"]["duration_ms"], 3500);
    }
}
