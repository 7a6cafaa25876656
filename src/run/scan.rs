//! After the build: what the run's images are made of, and what in them is vulnerable.
//!
//! Every built or reused image's build origin (its Dockerfile's stage chain) goes to the scan
//! cache under the image's id, so a later scan of it, here or after a restore, names the
//! Dockerfile line of each layer; the workspace image → reference map lets `scan --all` find
//! them, and the commit's record (image name → id, over its base's record) lets a later run
//! find the base build's images. With scanning on, each image is inventoried (its layers read
//! from the scan cache where they are known) and matched against the database; its unjudged
//! findings are kept by image id and database version, so an unchanged image with an
//! unchanged database is neither read nor matched again. Findings are then judged (ignore
//! files, level, gate) and compared with the base build's: those absent there are new.

use std::collections::{BTreeMap, BTreeSet};

use crate::cache::digest::Digest;
use crate::engine::DockerEngine;
use crate::report::model::{ImageReport, ImageResult, RunReport, RunScan};
use crate::report::scan_sarif::{ConfiguredImage, ImageAnchor};
use crate::scan::cache::{BuiltImage, ScanCache};
use crate::scan::daemon::{as_engine_image, from_cache, save_from_daemon};
use crate::scan::inventories;
use crate::scan::model::{Finding, ImageInventory, MatchStatus};
use crate::scan::origin::BuildOrigin;
use crate::scan::package::PackageType;
use crate::scan::read_store_image;
use crate::scan::source::{ReadImage, ReadStats};
use crate::scan::vulnerabilities::{Check, CheckSummary, find, judge};
use crate::workspace::Workspace;

/// Records each built or reused image's origin and reference in `cache`, and the image ids of
/// the run's commit. A cache that cannot be written only loses the Dockerfile lines of a later
/// scan and the "new since the base" comparison of a later run: nothing fails.
pub fn record_origins(report: &RunReport, workspace: &Workspace, cache: &ScanCache) {
    let mut built = BTreeMap::new();
    for (image, id, reference) in made_images(report) {
        let Some(def) = workspace.images.iter().find(|i| i.def.name == image.name) else {
            continue;
        };
        let origin = BuildOrigin::of_build(
            &def.def.dockerfile,
            &def.dockerfile,
            def.def.target.as_deref(),
            &def.def.args,
        );
        if let Ok(origin) = origin {
            let _ = cache.put_origin(&id, &origin);
        }
        built.insert(
            image.name.clone(),
            BuiltImage {
                reference,
                id: id.to_string(),
            },
        );
    }
    if !built.is_empty() {
        let _ = cache.put_built(&built);
    }
    // The images of the commit: those of its base's build, unless this run made them anew.
    let mut commit = report
        .run
        .base
        .as_deref()
        .and_then(|base| cache.commit_images(base))
        .unwrap_or_default();
    commit.extend(built.into_iter().map(|(name, image)| (name, image.id)));
    if !commit.is_empty() {
        let _ = cache.put_commit_images(&report.run.head, &commit);
    }
}

/// How the run matches its images: the check, and the scanner's name the stored findings are
/// filed under.
pub struct RunCheck<'a> {
    pub check: Check<'a>,
    pub scanner: &'a str,
}

/// The run's built and reused images: inventories and their findings (judged, compared with
/// the base build's when the check has a database).
pub async fn scan_images(
    engine: &DockerEngine,
    report: &RunReport,
    stores: Stores<'_>,
    check: &RunCheck<'_>,
) -> RunScan {
    let cache = stores.scan_cache;
    let mut scanning = Scanning {
        cache,
        store: stores.layer_store,
        images_from_store: 0,
        check,
        stats: ReadStats::default(),
        summary: CheckSummary::default(),
        findings_reused: 0,
        errors: Vec::new(),
    };
    let base_images = report
        .run
        .base
        .as_deref()
        .and_then(|base| cache?.commit_images(base));
    let mut images = Vec::new();
    let mut base_unknown = Vec::new();
    for (image, id, reference) in made_images(report) {
        let Some(mut scanned) = scanning.image(engine, image, &id, &reference).await else {
            continue;
        };
        if check.check.database.is_some() {
            let base_id = base_images.as_ref().and_then(|b| b.get(&image.name));
            let base =
                base_id.and_then(|base_id| scanning.base_findings(base_id, &id, &image.name));
            if !mark_new(&mut scanned, base.as_ref()) {
                base_unknown.push(image.name.clone());
            }
        }
        images.extend(scanned);
    }
    let compared = check.check.database.is_some();
    let unchanged = if compared {
        scanning.unchanged(report, base_images.as_ref())
    } else {
        Vec::new()
    };
    RunScan {
        images,
        layers_read: scanning.stats.layers_read,
        layers_cached: scanning.stats.layers_cached,
        images_from_store: scanning.images_from_store,
        images_matched: scanning.summary.images_matched,
        findings_reused: scanning.findings_reused,
        policy: Some(*check.check.policy),
        base: report.run.base.clone().filter(|_| compared),
        base_unknown,
        unchanged,
        errors: scanning.errors,
        warnings: scanning
            .summary
            .expired_ignores
            .into_iter()
            .chain(scanning.summary.warnings)
            .collect(),
    }
}

/// Where a run's scan reads and keeps what it knows.
#[derive(Clone, Copy)]
pub struct Stores<'a> {
    /// Layer inventories, findings and build records.
    pub scan_cache: Option<&'a ScanCache>,
    /// The layer store's root when caching is on: reused and restored images are read from its
    /// blobs rather than saved from the daemon.
    pub layer_store: Option<&'a std::path::Path>,
}

/// One run's scanning: where layers and findings are kept, and what it took.
struct Scanning<'a> {
    cache: Option<&'a ScanCache>,
    store: Option<&'a std::path::Path>,
    images_from_store: usize,
    check: &'a RunCheck<'a>,
    stats: ReadStats,
    summary: CheckSummary,
    findings_reused: usize,
    errors: Vec<String>,
}

impl Scanning<'_> {
    /// One built or reused image's judged inventories (one per platform): its stored findings
    /// when this image was matched against this database before, else read and matched.
    async fn image(
        &mut self,
        engine: &DockerEngine,
        image: &ImageReport,
        id: &Digest,
        reference: &str,
    ) -> Option<Vec<ImageInventory>> {
        if let Some(stored) = self.stored(id) {
            self.findings_reused += 1;
            return Some(self.judged(stored));
        }
        let read = match self.read_without_daemon(id, reference) {
            Some(read) => Ok(read),
            None => {
                save_from_daemon(engine, reference, Some(id), self.cache, &mut self.stats).await
            }
        };
        let read = match read {
            Ok(read) => read,
            Err(error) => {
                self.errors.push(format!("{}: {error}", image.name));
                return None;
            }
        };
        let matched = self.matched(id, inventories(read, self.cache));
        Some(self.judged(matched))
    }

    /// The image `id` from the layer store's blobs (a reused or restored image is there), unless
    /// the scan cache already knows all of it: either way no `docker save`. `None` when the
    /// store does not hold it whole.
    fn read_without_daemon(&mut self, id: &Digest, reference: &str) -> Option<Vec<ReadImage>> {
        if let Some(known) = from_cache(self.cache, Some(id), reference, &mut self.stats) {
            return Some(known);
        }
        let read = read_store_image(self.store?, id, reference, self.cache, &mut self.stats)?;
        self.images_from_store += 1;
        Some(as_engine_image(read, Some(id), reference, self.cache))
    }

    /// The unjudged inventories stored for `id` and the check's database.
    fn stored(&self, id: &Digest) -> Option<Vec<ImageInventory>> {
        let database = self.check.check.database.as_ref()?;
        self.cache?
            .findings(id, &database.version, self.check.scanner)
    }

    /// Matches each inventory of the image `id` (its findings unjudged) and stores them when
    /// every one was matched against a database.
    fn matched(&mut self, id: &Digest, mut images: Vec<ImageInventory>) -> Vec<ImageInventory> {
        let check = self.check;
        let mut complete = check.check.database.is_some();
        for image in &mut images {
            match find(image, &check.check, None, &mut self.summary) {
                Ok(findings) => image.findings = findings,
                Err(error) => {
                    complete = false;
                    self.errors.push(format!("{}: {error}", image.image));
                    image.vulnerabilities = Some(not_scanned(error.to_string()));
                }
            }
        }
        if complete && let (Some(cache), Some(database)) = (self.cache, &check.check.database) {
            // A store that cannot be written costs the next run a match, nothing else.
            let _ = cache.put_findings(id, &database.version, check.scanner, &images);
        }
        images
    }

    /// The inventories with their findings judged by the check's ignore files, level and gate.
    fn judged(&mut self, mut images: Vec<ImageInventory>) -> Vec<ImageInventory> {
        for image in &mut images {
            let findings = std::mem::take(&mut image.findings);
            judge(image, findings, &self.check.check, &mut self.summary);
        }
        images
    }

    /// The issues (id, package, type) the base build's image `base_id` has, unjudged, against
    /// the same database: from the store, else its inventory from the scan cache matched now.
    /// `None` when the base build's inventory is unknown.
    fn base_findings(&mut self, base_id: &str, id: &Digest, name: &str) -> Option<BaseIssues> {
        let base_id: Digest = base_id.parse().ok()?;
        if base_id == *id {
            return Some(BaseIssues::SameImage);
        }
        let images = self.unjudged_of_cached(&base_id, name)?;
        Some(BaseIssues::Issues(
            images
                .iter()
                .flat_map(|i| &i.findings)
                .map(issue_key)
                .collect(),
        ))
    }

    /// The unjudged inventories of an image this run did not read from the daemon: stored for
    /// this database, else its inventory from the scan cache matched now (and stored), named
    /// `reference`. `None` when the scan cache does not know the image.
    fn unjudged_of_cached(&mut self, id: &Digest, reference: &str) -> Option<Vec<ImageInventory>> {
        if let Some(stored) = self.stored(id) {
            return Some(stored);
        }
        let read = from_cache(self.cache, Some(id), reference, &mut self.stats)?;
        let images = inventories(read, self.cache);
        Some(self.matched(id, images))
    }

    /// The workspace images this run did not build or reuse, with the findings of their last
    /// known build against this database, judged; none of their findings is new. After the
    /// database changed they are matched again from the scan cache's inventory: a code-scanning
    /// upload without them would close their open alerts.
    fn unchanged(
        &mut self,
        report: &RunReport,
        base_images: Option<&BTreeMap<String, String>>,
    ) -> Vec<ImageInventory> {
        let last_built = self.cache.map(ScanCache::last_built).unwrap_or_default();
        let mut unchanged = Vec::new();
        for image in &report.images {
            if made(image) {
                continue;
            }
            let id = base_images
                .and_then(|b| b.get(&image.name).cloned())
                .or_else(|| last_built.get(&image.name).map(|b| b.id.clone()));
            let Some(id) = id.and_then(|id| id.parse::<Digest>().ok()) else {
                continue;
            };
            // Named as its last build tagged it: the SARIF category follows the repository.
            let reference = last_built
                .get(&image.name)
                .map_or(image.repository.as_str(), |built| built.reference.as_str());
            let Some(unjudged) = self.unjudged_of_cached(&id, reference) else {
                continue;
            };
            let mut judged = self.judged(unjudged);
            for finding in judged.iter_mut().flat_map(|i| &mut i.findings) {
                finding.new = Some(false);
            }
            unchanged.extend(judged);
        }
        unchanged
    }
}

/// What makes two findings one issue in one package, across builds.
type IssueKey = (String, String, PackageType);

/// What the base build's image had.
enum BaseIssues {
    /// The base build made this very image: nothing in it is new.
    SameImage,
    Issues(BTreeSet<IssueKey>),
}

fn issue_key(finding: &Finding) -> IssueKey {
    (
        finding.id.to_ascii_uppercase(),
        finding.package.clone(),
        finding.kind,
    )
}

/// Marks each reported finding new or not against the base build's issues; `false` (and every
/// `new` left `None`) when the base's are unknown.
fn mark_new(images: &mut [ImageInventory], base: Option<&BaseIssues>) -> bool {
    let Some(base) = base else {
        return false;
    };
    for finding in images.iter_mut().flat_map(|i| &mut i.findings) {
        finding.new = Some(match base {
            BaseIssues::SameImage => false,
            BaseIssues::Issues(issues) => !issues.contains(&issue_key(finding)),
        });
    }
    true
}

fn not_scanned(reason: String) -> MatchStatus {
    MatchStatus {
        scanned: false,
        reason: Some(reason),
        database: None,
        database_modified: None,
        ignored: 0,
        below_level: 0,
        database_built: None,
        database_age_days: None,
        not_matched: Vec::new(),
    }
}

fn made(image: &ImageReport) -> bool {
    matches!(image.result, ImageResult::Built | ImageResult::Reused)
}

/// Each built or reused image with its id and the reference to read it by (its first tag).
fn made_images(report: &RunReport) -> impl Iterator<Item = (&ImageReport, Digest, String)> {
    report.images.iter().filter_map(|image| {
        let id: Digest = image.image_id.as_deref()?.parse().ok()?;
        let reference = image.tags.first()?.clone();
        made(image).then_some((image, id, reference))
    })
}

/// What the SARIF of a run needs beside the findings: where each image's Dockerfile and base
/// `FROM` line are (by repository), and every configured image and platform, so each has a
/// run in every upload.
pub struct SarifTargets {
    pub anchors: BTreeMap<String, ImageAnchor>,
    pub configured: Vec<ConfiguredImage>,
}

/// The SARIF targets of the run's workspace. A configured image's platforms are its own,
/// else those the run's scanned images have (the engine's), else none.
pub fn sarif_targets(report: &RunReport, workspace: &Workspace) -> SarifTargets {
    let mut scanned_platforms: Vec<String> = report
        .scan
        .iter()
        .flat_map(|scan| scan.images.iter().chain(&scan.unchanged))
        .filter_map(|image| image.platform.clone())
        .collect();
    scanned_platforms.sort();
    scanned_platforms.dedup();
    let mut anchors = BTreeMap::new();
    let mut configured = Vec::new();
    for image in &workspace.images {
        let def = &image.def;
        let from_line = BuildOrigin::of_build(
            &def.dockerfile,
            &image.dockerfile,
            def.target.as_deref(),
            &def.args,
        )
        .ok()
        .and_then(|origin| origin.from_line);
        anchors.insert(
            def.repository.clone(),
            ImageAnchor {
                dockerfile: def.dockerfile.clone(),
                from_line,
            },
        );
        let platforms = if def.platforms.is_empty() {
            &scanned_platforms
        } else {
            &def.platforms
        };
        if platforms.is_empty() {
            configured.push(ConfiguredImage {
                image: def.repository.clone(),
                platform: None,
            });
        }
        configured.extend(platforms.iter().map(|platform| ConfiguredImage {
            image: def.repository.clone(),
            platform: Some(platform.clone()),
        }));
    }
    SarifTargets {
        anchors,
        configured,
    }
}
