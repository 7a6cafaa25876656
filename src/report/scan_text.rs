//! The terminal summary of a scan: per image and platform, what it is, how many packages of each
//! type it holds, and what each layer (so each Dockerfile line) added.
//!
//! Owns the layout only. A layer's origin reads `api/Dockerfile:12 RUN` when buildopt built it,
//! `base image debian:bookworm` for the base's layers, and `unknown` for images built elsewhere;
//! each layer lists how many packages it brought and the first few names.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::scan::PackageType;
use crate::scan::model::{ImageInventory, Layer, Package, ScanReport, UnreadableImage};

/// How many package names a layer's line shows before `+N more`.
const NAMES_SHOWN: usize = 4;

/// Package names longer than this are cut.
const NAME_WIDTH: usize = 40;

/// Origins longer than this are cut, so the package counts stay in one column.
const ORIGIN_WIDTH: usize = 44;

/// The summary of `report`, one block per image and platform.
pub fn scan_text(report: &ScanReport) -> String {
    if report.images.is_empty() && report.unreadable.is_empty() {
        return "no images scanned\n".to_owned();
    }
    let mut blocks: Vec<String> = report.images.iter().map(image_block).collect();
    blocks.extend(report.unreadable.iter().map(unreadable_block));
    blocks.join("\n")
}

/// An image that could not be read: which, and why, so a reader never takes the report for
/// complete.
fn unreadable_block(image: &UnreadableImage) -> String {
    format!(
        "{}  (not scanned)\n  error     {}\n",
        clean(&image.input),
        clean(&image.error)
    )
}

fn image_block(image: &ImageInventory) -> String {
    let mut out = String::new();
    let platform = image.platform.as_deref().unwrap_or("platform unknown");
    let _ = writeln!(out, "{}  ({})", clean(&image.image), clean(platform));
    let _ = writeln!(out, "  id        {}", short_id(&image.id.to_string()));
    let _ = writeln!(out, "  os        {}", os_name(image));
    let _ = writeln!(out, "  packages  {}", counts(&image.packages));
    if !image.applications.is_empty() {
        let names: Vec<String> = image.applications.iter().map(name_version).collect();
        let _ = writeln!(out, "  apps      {}", names.join(", "));
    }
    layers(&mut out, image);
    warnings(&mut out, image);
    out
}

/// `sha256:` and the first 12 hex characters, as `docker images` shows them.
fn short_id(id: &str) -> String {
    id.chars().take("sha256:".len() + 12).collect()
}

fn os_name(image: &ImageInventory) -> String {
    let Some(os) = &image.os else {
        return "unknown (no os-release)".to_owned();
    };
    if let Some(pretty) = &os.pretty_name {
        return pretty.clone();
    }
    let parts: Vec<&str> = [os.id.as_deref(), os.version_id.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if parts.is_empty() {
        "unknown".to_owned()
    } else {
        parts.join(" ")
    }
}

/// `12 (deb 4, golang 2, npm 2, pypi 4)`, types in a fixed order.
fn counts(packages: &[Package]) -> String {
    let mut by_type: BTreeMap<PackageType, usize> = BTreeMap::new();
    for package in packages {
        *by_type.entry(package.kind).or_default() += 1;
    }
    if by_type.is_empty() {
        return "none".to_owned();
    }
    let parts: Vec<String> = by_type
        .iter()
        .map(|(kind, count)| format!("{} {count}", kind.as_str()))
        .collect();
    format!("{} ({})", packages.len(), parts.join(", "))
}

fn name_version(package: &Package) -> String {
    format!("{} {}", clean(&package.name), clean(&package.version))
}

/// One line per layer, base first, then packages whose layer the image does not list.
fn layers(out: &mut String, image: &ImageInventory) {
    let mut per_layer: Vec<Vec<&Package>> = vec![Vec::new(); image.layers.len()];
    let mut elsewhere = Vec::new();
    for package in &image.packages {
        match layer_of(image, package) {
            Some(index) => per_layer[index].push(package),
            None => elsewhere.push(package),
        }
    }
    if image.layers.is_empty() && elsewhere.is_empty() {
        return;
    }
    let _ = writeln!(out, "  layers    what each one added");
    let origins: Vec<String> = image.layers.iter().map(origin).collect();
    let width = origins
        .iter()
        .map(|o| o.chars().count())
        .max()
        .unwrap_or(0)
        .max("other layers".len());
    let number_width = image.layers.len().to_string().len();
    for (index, (origin, packages)) in origins.iter().zip(&per_layer).enumerate() {
        let number = index + 1;
        let _ = writeln!(
            out,
            "    {number:>number_width$}  {origin:<width$}  {}",
            brought(packages)
        );
    }
    if !elsewhere.is_empty() {
        let blank = "";
        let _ = writeln!(
            out,
            "    {blank:>number_width$}  {:<width$}  {}",
            "other layers",
            brought(&elsewhere)
        );
    }
}

/// The layer that brought `package`: the first with its diff ID and Dockerfile line (two
/// layers may share a diff ID when they made the same change), else the first with its diff ID.
fn layer_of(image: &ImageInventory, package: &Package) -> Option<usize> {
    let same_diff = |layer: &&Layer| layer.diff_id == package.layer;
    let layers = &image.layers;
    layers
        .iter()
        .position(|layer| same_diff(&layer) && layer.dockerfile == package.dockerfile)
        .or_else(|| layers.iter().position(|layer| same_diff(&layer)))
}

/// Where the layer came from: a Dockerfile line and instruction, the base image, or unknown.
fn origin(layer: &Layer) -> String {
    let text = if let Some(line) = &layer.dockerfile {
        let mut text = format!("{}:{}", line.path, line.line);
        if let Some(instruction) = layer.created_by.as_deref().and_then(instruction) {
            text.push(' ');
            text.push_str(instruction);
        }
        if let Some(stage) = &line.stage {
            text.push_str(&format!(" (stage {stage})"));
        }
        text
    } else if let Some(base) = &layer.base_image {
        format!("base image {base}")
    } else {
        "unknown".to_owned()
    };
    shorten(&text, ORIGIN_WIDTH)
}

/// The instruction a history entry names: BuildKit writes `RUN /bin/sh -c …` and `COPY …`;
/// the classic builder `/bin/sh -c #(nop)  COPY …` for metadata and file steps, and
/// `/bin/sh -c …` alone for `RUN`.
fn instruction(created_by: &str) -> Option<&str> {
    let text = created_by.trim_start();
    if let Some(rest) = text.strip_prefix("/bin/sh -c") {
        let rest = rest.trim_start();
        return match rest.strip_prefix("#(nop)") {
            Some(nop) => nop.split_whitespace().next().filter(|w| is_instruction(w)),
            None => Some("RUN"),
        };
    }
    text.split_whitespace().next().filter(|w| is_instruction(w))
}

fn is_instruction(word: &str) -> bool {
    !word.is_empty() && word.bytes().all(|b| b.is_ascii_uppercase())
}

/// `  5  base-files, curl, libc6, libssl3, +1 more`, or `-` when the layer brought no package.
fn brought(packages: &[&Package]) -> String {
    if packages.is_empty() {
        return format!("{:>3}", "-");
    }
    let mut names: Vec<String> = packages
        .iter()
        .take(NAMES_SHOWN)
        .map(|p| shorten(&p.name, NAME_WIDTH))
        .collect();
    let more = packages.len().saturating_sub(NAMES_SHOWN);
    if more > 0 {
        names.push(format!("+{more} more"));
    }
    format!("{:>3}  {}", packages.len(), names.join(", "))
}

fn warnings(out: &mut String, image: &ImageInventory) {
    if image.warnings.is_empty() {
        return;
    }
    let _ = writeln!(out, "  warnings");
    for warning in &image.warnings {
        let mut place = clean(warning.path.as_deref().unwrap_or("image"));
        if let Some(layer) = &warning.layer {
            let _ = write!(place, " (layer {})", short_id(&layer.to_string()));
        }
        let _ = writeln!(out, "    {place}: {}", clean(&warning.message));
    }
}

/// `text` with control characters shown as `?`: names come from the image, and a hostile one
/// must not move the cursor or start a line of its own.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// [`clean`] `text`, cut to `width` characters and ending in `…` when cut.
fn shorten(text: &str, width: usize) -> String {
    let clean = clean(text);
    if clean.chars().count() <= width {
        return clean;
    }
    let mut cut: String = clean.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::scan_fixtures::{digest, inventory};

    #[test]
    fn summary_of_the_fixture_inventory() {
        insta::assert_snapshot!(scan_text(&inventory()));
    }

    #[test]
    fn an_empty_report_says_so() {
        let report = ScanReport {
            version: 1,
            images: Vec::new(),
            unreadable: Vec::new(),
        };
        assert_eq!(scan_text(&report), "no images scanned\n");
    }

    #[test]
    fn an_unreadable_image_is_named_with_why() {
        let mut report = inventory();
        report.images.truncate(1);
        report.unreadable.push(UnreadableImage {
            input: "bad\u{1b}.tar".into(),
            error: "holds no image".into(),
        });
        let text = scan_text(&report);
        assert!(text.starts_with("acme/api"), "{text}");
        assert!(
            text.ends_with("\nbad?.tar  (not scanned)\n  error     holds no image\n"),
            "{text}"
        );
        report.images.clear();
        assert!(scan_text(&report).starts_with("bad?.tar  (not scanned)"));
    }

    #[test]
    fn instructions_from_both_builders() {
        assert_eq!(instruction("RUN /bin/sh -c make # buildkit"), Some("RUN"));
        assert_eq!(instruction("COPY . /app # buildkit"), Some("COPY"));
        assert_eq!(
            instruction("/bin/sh -c #(nop)  ADD file:abc in / "),
            Some("ADD")
        );
        assert_eq!(instruction("/bin/sh -c apt-get update"), Some("RUN"));
        assert_eq!(instruction("# debian.sh --arch amd64"), None);
        assert_eq!(instruction(""), None);
        assert_eq!(instruction("/bin/sh -c #(nop)"), None);
    }

    #[test]
    fn packages_of_an_unlisted_layer_and_hostile_text_stay_on_their_lines() {
        let mut report = inventory();
        let image = &mut report.images[0];
        image.packages[0].layer = digest("not-a-listed-layer");
        image.packages[1].name = "evil\u{1b}[2J\nname".into();
        image.layers[1].dockerfile.as_mut().unwrap().path = format!("{}\r", "d/".repeat(40));
        let text = scan_text(&report);
        assert!(text.contains("other layers"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("evil?[2J?name"), "{text}");
        assert!(text.lines().all(|line| !line.starts_with("name")), "{text}");
        assert!(text.contains('…'), "{text}");
    }

    #[test]
    fn an_image_without_layers_or_os_still_has_its_header() {
        let mut report = inventory();
        report.images.truncate(1);
        let image = &mut report.images[0];
        image.layers.clear();
        image.packages.clear();
        image.os = None;
        image.platform = None;
        let text = scan_text(&report);
        assert!(text.contains("(platform unknown)"), "{text}");
        assert!(text.contains("unknown (no os-release)"), "{text}");
        assert!(text.contains("packages  none"), "{text}");
        assert!(!text.contains("layers"), "{text}");
    }
}
