//! The command line, as clap types only. Resolution into settings happens in `settings`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Builds only the container images whose inputs changed, in dependency order, and explains why.
#[derive(Debug, Parser)]
#[command(name = "buildopt", version, about, long_about = None,
    after_help = crate::settings::docs::help_text())]
pub struct Cli {
    /// The configuration file (default: buildopt.toml in the working folder).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run as if started in DIR.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// Say more: how the base commit was chosen, where each setting came from.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Say nothing on stderr but errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Output for people or for programs.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show which images would build for a commit range, in which order, and why.
    Plan(PlanArgs),
    /// Build the images the plan names, in dependency order and in parallel.
    Build(BuildArgs),
    /// Manage the build cache: set up, inspect, prune, export and import it, print CI keys.
    Cache(CacheArgs),
    /// The whole pipeline for CI: restore the cache, plan, build, save the cache, write the
    /// reports and step outputs, publish.
    Ci(CiArgs),
    /// Publish a run report: job summary, sticky PR/MR comment, SARIF upload, Slack message.
    Notify(NotifyArgs),
    /// List what is inside images (packages, the OS, which Dockerfile line added each), read
    /// from the daemon, a `docker save` tarball, an OCI layout folder or the layer store.
    Scan(ScanArgs),
}

/// `buildopt scan`. `--image`, `--input` and `--from-cache` work in any folder.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// An image on the daemon (repeatable).
    #[arg(long, value_name = "REF")]
    pub image: Vec<String>,
    /// Every image of the workspace, as the last build tagged them.
    #[arg(long, conflicts_with_all = ["image", "input", "from_cache"])]
    pub all: bool,
    /// A `docker save` tarball (plain or gzip) or an OCI image layout folder (repeatable).
    #[arg(long, value_name = "PATH")]
    pub input: Vec<PathBuf>,
    /// An image of the layer store, read without a daemon (repeatable).
    #[arg(long, value_name = "REF")]
    pub from_cache: Vec<String>,
    /// The output (default: text, or json with --format json).
    #[arg(long, value_enum)]
    pub output: Option<ScanOutput>,
    /// Write the output to this file instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub output_file: Option<PathBuf>,
    /// Report findings of this severity and above: low (everything), medium, high; unknown
    /// severities are always reported.
    #[arg(long, value_name = "LEVEL")]
    pub level: Option<crate::scan::policy::ScanLevel>,
    /// High findings do not fail the gate (critical ones still do, unless FAIL_ON_CRITICAL=false).
    #[arg(long)]
    pub no_fail_high: bool,
    /// Findings with no fixed version are listed but never fail the gate.
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// Also run this scanner on each image and merge its findings: buildopt, trivy or grype.
    #[arg(long, value_name = "SCANNER")]
    pub scanner: Option<crate::settings::scan::Scanner>,
    /// Match against this folder of OSV JSON files or zip of them instead of the downloaded
    /// database (offline; indexed once per content).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Download (or refresh) the vulnerability database and exit: the ecosystems named with
    /// --ecosystem, else those of the images named, else every supported one.
    #[arg(long)]
    pub setup: bool,
    /// An OSV ecosystem for --setup (repeatable): Debian, Alpine, PyPI, npm, Go, crates.io, ...
    #[arg(long = "ecosystem", value_name = "NAME")]
    pub ecosystems: Vec<String>,
    /// With --setup, for CI wrappers: download only when `buildopt ci` here would scan (its
    /// level, BUILDOPT_SCAN or SECURITY_SCAN, buildopt.toml); otherwise say so and touch nothing.
    #[arg(long, requires = "setup")]
    pub for_ci: bool,
}

/// What `buildopt scan` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanOutput {
    /// A summary per image: counts by type, what each Dockerfile line added.
    Text,
    /// The versioned inventory (`{"version": 1, "images": [...]}`).
    Json,
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
    /// SPDX 2.3 JSON.
    Spdx,
    /// SARIF 2.1.0 for GitHub code scanning: one run per image.
    Sarif,
    /// JUnit XML: one test case per image, failing on findings over the gate.
    Junit,
    /// GitLab's container-scanning report (schema 15.0.7).
    Gitlab,
}

/// `buildopt ci`: the build's flags plus where the reports go. Tags, push and keep-going also
/// come from `BUILDOPT_TAGS`, `BUILDOPT_PUSH`, `BUILDOPT_KEEP_GOING` (and the action's inputs).
#[derive(Debug, Args)]
pub struct CiArgs {
    /// The optimization level (default: ci).
    #[arg(long, value_enum)]
    pub level: Option<crate::settings::Level>,
    /// Build every image, without the build cache and without reusing existing images.
    #[arg(long)]
    pub force: bool,
    /// Also tag every built image `<repository>:TAG` (templates allowed; repeatable).
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
    /// Push every tag with a registry host.
    #[arg(long)]
    pub push: bool,
    /// Images built at once.
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// After a failure, keep building the images that do not depend on the failed one.
    #[arg(long)]
    pub keep_going: bool,
    /// Build only these images (and the internal images they build from).
    #[arg(long, value_name = "IMAGE", num_args = 1..)]
    pub only: Vec<String>,
    /// The builder (default: BuildKit when the daemon supports it).
    #[arg(long, value_enum)]
    pub builder: Option<BuilderChoice>,
    /// The base commit (default: chosen per CI event).
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// The head commit (default: the CI's commit).
    #[arg(long, value_name = "REV")]
    pub head: Option<String>,
    /// Days unused build cache is kept, in the store and by the daemon cleanup (default:
    /// $BUILDOPT_CACHE_RETENTION_DAYS, else buildopt.toml's cache_retention_days, else 7).
    #[arg(long, value_name = "DAYS")]
    pub cache_retention_days: Option<u64>,
    /// Where the RunReport goes, for `buildopt notify` and for people.
    #[arg(long, value_name = "FILE", default_value = "buildopt-report.json")]
    pub report: PathBuf,
    /// Where the JUnit XML goes (one test case per image).
    #[arg(long, value_name = "FILE", default_value = "buildopt-junit.xml")]
    pub junit: PathBuf,
    /// Where the dotenv report goes (GitLab `artifacts:reports:dotenv`).
    #[arg(long, value_name = "FILE", default_value = "buildopt.env")]
    pub dotenv: PathBuf,
    /// Where the HTML report goes (one self-contained page with charts).
    #[arg(long, value_name = "FILE", default_value = "buildopt-report.html")]
    pub html: PathBuf,
    /// Where the CycloneDX SBOM of the run's images goes, when the run scanned them.
    #[arg(long, value_name = "FILE", default_value = "buildopt-sbom.cdx.json")]
    pub sbom: PathBuf,
    /// Where the JUnit XML of the run's vulnerability scan goes (one test case per image, failing
    /// on findings over the gate, skipped when not scanned), when the run checked its images.
    #[arg(long, value_name = "FILE", default_value = "buildopt-scan-junit.xml")]
    pub scan_junit: PathBuf,
    /// Where the SARIF of the run's vulnerability findings goes (uploaded to GitHub code
    /// scanning), when the run matched its images against a database.
    #[arg(long, value_name = "FILE", default_value = "buildopt-scan.sarif")]
    pub scan_sarif: PathBuf,
    /// Where GitLab's container-scanning report of the run's findings goes, when the run
    /// matched its images against a database.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "gl-container-scanning-report.json"
    )]
    pub container_scanning: PathBuf,
    /// Upload this SARIF file to GitHub code scanning (repeatable; also BUILDOPT_SARIF).
    #[arg(long = "sarif", value_name = "FILE")]
    pub sarif: Vec<PathBuf>,
}

/// `buildopt notify`. Without --comment, --slack or --summary it publishes everything the
/// settings enable.
#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// The run report written by `buildopt build` / `buildopt ci`.
    #[arg(long, value_name = "FILE", default_value = "buildopt-report.json")]
    pub report: PathBuf,
    /// Keep the sticky comment on the pull or merge request.
    #[arg(long)]
    pub comment: bool,
    /// Post to the Slack webhook (still only on the BUILDOPT_SLACK_ON event).
    #[arg(long)]
    pub slack: bool,
    /// Append the job summary to $GITHUB_STEP_SUMMARY.
    #[arg(long)]
    pub summary: bool,
    /// Upload this SARIF file to GitHub code scanning (repeatable).
    #[arg(long = "sarif", value_name = "FILE")]
    pub sarif: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The optimization level (default: medium; see the levels table in docs/configuration.md).
    #[arg(long, value_enum)]
    pub level: Option<crate::settings::Level>,
    /// Same as `--level ci`.
    #[arg(long, conflicts_with = "level")]
    pub ci: bool,
    /// Build every image, without the build cache and without reusing existing images.
    #[arg(long)]
    pub force: bool,
    /// Also tag every built image `<repository>:TAG` (templates such as {short_sha} allowed;
    /// repeat for several tags).
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
    /// Push every tag with a registry host of each built or reused image, and reuse images the
    /// registry already has for the same inputs.
    #[arg(long)]
    pub push: bool,
    /// Images built at once (default: the number of CPUs; 1 at level minimal).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// After a failure, keep building the images that do not depend on the failed one.
    #[arg(long)]
    pub keep_going: bool,
    /// Days unused build cache is kept, in the store and by the daemon cleanup (default:
    /// $BUILDOPT_CACHE_RETENTION_DAYS, else buildopt.toml's cache_retention_days, else 7).
    #[arg(long, value_name = "DAYS")]
    pub cache_retention_days: Option<u64>,
    /// Skip the cleanup after the build even when AUTO_CLEANUP is on.
    #[arg(long)]
    pub no_cleanup: bool,
    /// Print the plan and exit without building.
    #[arg(long)]
    pub dry_run: bool,
    /// Build only these images (and the internal images they build from).
    #[arg(long, value_name = "IMAGE", num_args = 1..)]
    pub only: Vec<String>,
    /// The builder (default: BuildKit when the daemon supports it).
    #[arg(long, value_enum)]
    pub builder: Option<BuilderChoice>,
    /// The base commit (default: chosen per CI event; see docs/plan.md).
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// The head commit (default: the CI's commit, else HEAD).
    #[arg(long, value_name = "REV")]
    pub head: Option<String>,
    /// Build a scratch copy of the repository at every level, cold and warm, and a plain
    /// sequential docker build of every image; print the wall times and ratios (see docs/plan.md).
    #[arg(long)]
    pub benchmark: bool,
}

/// `build --builder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BuilderChoice {
    Buildkit,
    Classic,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The base commit (default: chosen per CI event; see docs/plan.md).
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// The head commit (default: the CI's commit, else HEAD).
    #[arg(long, value_name = "REV")]
    pub head: Option<String>,
    /// Plan every image, whatever changed.
    #[arg(long)]
    pub force: bool,
    /// Plan as `build --push` would: also ask registries whether an image of inputs the build
    /// record has no build of exists.
    #[arg(long)]
    pub push: bool,
    /// What to print: a table, the versioned JSON plan, or a GitHub Actions matrix.
    #[arg(long, value_enum)]
    pub output: Option<PlanOutput>,
}

/// `plan --output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    Text,
    Json,
    Matrix,
}

/// `buildopt cache`.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// The store folder (default: $BUILDOPT_CACHE_DIR, else .build_cache).
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Days unused build cache is kept, in the store and by the daemon cleanup (default:
    /// $BUILDOPT_CACHE_RETENTION_DAYS, else buildopt.toml's cache_retention_days, else 7).
    #[arg(long, global = true, value_name = "DAYS")]
    pub cache_retention_days: Option<u64>,
    #[command(subcommand)]
    pub action: CacheAction,
}

/// What `buildopt cache` does.
#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Create the store and a BuildKit daemon config (buildkitd.toml) sized from the limit.
    Setup,
    /// Entries, bytes, hit ratio of the last builds, oldest and newest use.
    Stats,
    /// Drop entries unused for longer than CACHE_RETENTION_DAYS, then unreferenced blobs.
    Cleanup,
    /// Enforce CACHE_SIZE_LIMIT_GB by least recent use; optionally shrink a BuildKit local cache.
    Optimize {
        /// A BuildKit `type=local` cache folder to shrink to what its index.json references.
        #[arg(long, value_name = "DIR")]
        buildkit_cache: Option<PathBuf>,
    },
    /// Write the store as one archive; --image first saves images from the daemon into it.
    Export {
        /// The archive to write (replaced atomically).
        path: PathBuf,
        /// Archive compression (default: $BUILDOPT_CACHE_COMPRESSION, else zstd).
        #[arg(long, value_enum)]
        compression: Option<crate::cache::Compression>,
        /// An image (name, name:tag or id) to save from the daemon into the store first.
        #[arg(long = "image", value_name = "REF")]
        images: Vec<String>,
    },
    /// Verify an archive, merge it into the store and load its images into the daemon. A missing
    /// or bad archive is a cache miss: a warning, exit 0, the store unchanged.
    Import {
        path: PathBuf,
        /// Only fill the store; do not load images into the daemon.
        #[arg(long)]
        no_load: bool,
        /// Let the archive's tags move tags the daemon has on other images (kept by default).
        #[arg(long)]
        force: bool,
    },
    /// Print the CI cache key and restore keys (and write them to GitHub step outputs).
    Key,
}
