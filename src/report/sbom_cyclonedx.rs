//! CycloneDX 1.6 JSON of a scan.
//!
//! Owns the BOM layout. One image gives the layout syft writes: the image is
//! `metadata.component` (type `container`) and its packages are the BOM's components. Several
//! images (or platforms) give one BOM whose `metadata.component` is an `application` named after
//! the workspace; each image is then a `container` component of the BOM. Either way, each image
//! has its operating system as an `operating-system` component and `dependsOn` it, its
//! applications (type `application`) and its packages (type `library`) in `dependencies`; a
//! package found in two images is two components, since its layer and Dockerfile line differ.
//!
//! A package's origin is in `buildopt:` properties (lower-case namespace, `:`-delimited, as the
//! CycloneDX property taxonomy asks): `buildopt:path` (the declaring file), `buildopt:layer` (the
//! diff ID), `buildopt:dockerfile` (`path:line`), `buildopt:stage`, `buildopt:base_image`; an
//! image's in `buildopt:platform`, `buildopt:manifest` and one `buildopt:not_read` per warning,
//! so a consumer can tell an incomplete inventory.
//!
//! When images were matched, the BOM's `vulnerabilities` list one entry per issue and image: its
//! id with OSV as the source, the aliases as references, the rating (score and level), the
//! summary and the fix to take, and in `affects` each package component of that image with the
//! installed version (`affected`) and the fixed versions (`unaffected`). A finding whose package
//! is not among the image's listed components (an image reported by its findings alone) points
//! at the image's own component. The score's CVSS version is not kept in a finding, so a scored
//! rating's method is `other`.
//!
//! Licences follow `sbom_spdx::LicenseTerm`: an SPDX id as `license.id`, a name as
//! `license.name`, and an expression as the BOM's single `expression` entry.
//!
//! The serial number is a UUID derived from the BOM's content, so the same scan at the same time
//! gives the same BOM; the timestamp and the tool version are inputs. Written with serde structs
//! of the subset we emit: the `cyclonedx-bom` crate (0.8) stops at spec 1.5.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::sbom_spdx::LicenseTerm;
use super::scan_sarif::osv_link;
use crate::scan::model::{Finding, ImageInventory, Package, ScanReport};

/// The CycloneDX specification version written.
pub const SPEC_VERSION: &str = "1.6";

/// The BOM for `report`. `name` names the workspace when the report holds several images;
/// `created` is the BOM's timestamp and `tool_version` buildopt's version.
pub fn cyclonedx(
    report: &ScanReport,
    name: &str,
    created: DateTime<Utc>,
    tool_version: &str,
) -> String {
    let mut bom = Bom {
        bom_format: "CycloneDX",
        spec_version: SPEC_VERSION,
        serial_number: String::new(),
        version: 1,
        metadata: Metadata {
            timestamp: created.to_rfc3339_opts(SecondsFormat::Secs, true),
            tools: Tools {
                components: vec![Tool {
                    kind: "application",
                    name: "buildopt",
                    version: tool_version.to_owned(),
                }],
            },
            component: None,
        },
        components: Vec::new(),
        dependencies: Vec::new(),
        vulnerabilities: Vec::new(),
    };
    if let [image] = report.images.as_slice() {
        bom.metadata.component = Some(fill_image(&mut bom, 0, image));
    } else {
        let root = Component::new("application", "workspace".into(), name.to_owned());
        let mut images = Vec::new();
        for (index, image) in report.images.iter().enumerate() {
            let component = fill_image(&mut bom, index, image);
            images.push(component.bom_ref.clone());
            bom.components.insert(index, component);
        }
        bom.dependencies
            .insert(0, Dependency::new(&root.bom_ref, images));
        bom.metadata.component = Some(root);
    }
    bom.serial_number = serial_number(&bom);
    // Plain structs of strings always serialise.
    let mut json = serde_json::to_string_pretty(&bom).unwrap_or_default();
    json.push('\n');
    json
}

/// Adds the image's OS, applications and packages to the BOM with the image's dependency
/// entry; returns the image's own component for the caller to place.
fn fill_image(bom: &mut Bom, index: usize, image: &ImageInventory) -> Component {
    let component = image_component(index, image);
    let mut refs = Vec::new();
    if let Some(os) = &image.os {
        let mut os_component = Component::new(
            "operating-system",
            format!("image-{index}-os"),
            os.id.clone().unwrap_or_else(|| "unknown".into()),
        );
        os_component.version = os.version_id.clone();
        os_component.description = os.pretty_name.clone();
        refs.push(os_component.bom_ref.clone());
        bom.components.push(os_component);
    }
    let applications = image.applications.iter().enumerate();
    let applications = applications.map(|(number, p)| (p, "application", "application", number));
    let packages = image.packages.iter().enumerate();
    let packages = packages.map(|(number, p)| (p, "library", "package", number));
    for (package, kind, label, number) in applications.chain(packages) {
        let bom_ref = format!("image-{index}-{label}-{number}");
        refs.push(bom_ref.clone());
        bom.components
            .push(package_component(kind, bom_ref, package));
    }
    bom.dependencies
        .push(Dependency::new(&component.bom_ref, refs));
    add_vulnerabilities(bom, index, image, &component.bom_ref);
    component
}

/// One vulnerability per issue of the image, affecting each package component it was found in.
fn add_vulnerabilities(bom: &mut Bom, index: usize, image: &ImageInventory, image_ref: &str) {
    let mut by_issue: Vec<(&str, Vec<&Finding>)> = Vec::new();
    for finding in &image.findings {
        match by_issue.iter_mut().find(|(id, _)| *id == finding.id) {
            Some((_, findings)) => findings.push(finding),
            None => by_issue.push((&finding.id, vec![finding])),
        }
    }
    for (number, (id, findings)) in by_issue.into_iter().enumerate() {
        let bom_ref = format!("image-{index}-vulnerability-{number}");
        let mut affects: Vec<Affects> = Vec::new();
        for finding in &findings {
            let reference = component_of(index, image, finding).unwrap_or_else(|| image_ref.into());
            // The schema wants each affected component once: findings whose package has no
            // component of its own all name the image.
            let at = match affects.iter().position(|a| a.reference == reference) {
                Some(at) => at,
                None => {
                    affects.push(Affects {
                        reference,
                        versions: Vec::new(),
                    });
                    affects.len() - 1
                }
            };
            for version in affected_versions(finding) {
                if !affects[at].versions.contains(&version) {
                    affects[at].versions.push(version);
                }
            }
        }
        bom.vulnerabilities
            .push(vulnerability(bom_ref, id, &findings, affects));
    }
}

fn vulnerability(
    bom_ref: String,
    id: &str,
    findings: &[&Finding],
    affects: Vec<Affects>,
) -> Vulnerability {
    let most_severe = findings.iter().max_by_key(|f| f.severity);
    let mut aliases: Vec<&str> = findings
        .iter()
        .flat_map(|f| f.aliases.iter().map(String::as_str))
        .filter(|alias| *alias != id && !alias.is_empty())
        .collect();
    aliases.sort_unstable();
    aliases.dedup();
    let ratings = most_severe
        .map(|finding| Rating {
            score: finding.score,
            severity: finding.severity.as_str(),
            method: finding.score.map(|_| "other"),
        })
        .into_iter()
        .collect();
    Vulnerability {
        bom_ref,
        id: id.to_owned(),
        source: Source::osv(id),
        references: aliases
            .into_iter()
            .map(|alias| Reference {
                id: alias.to_owned(),
                source: Source::osv(alias),
            })
            .collect(),
        ratings,
        description: findings.iter().find_map(|f| f.summary.clone()),
        recommendation: recommendation(findings),
        affects,
    }
}

/// `Upgrade zlib1g to 1.2.13.dfsg-2, libssl3 to …`, or `No fix yet.`
fn recommendation(findings: &[&Finding]) -> String {
    let upgrades: Vec<String> = findings
        .iter()
        .filter_map(|f| {
            let fixed = f.fixed_version.as_deref()?;
            Some(format!("{} to {fixed}", f.package))
        })
        .collect();
    if upgrades.is_empty() {
        "No fix yet.".into()
    } else {
        format!("Upgrade {}.", upgrades.join(", "))
    }
}

/// The bom-ref of the package (or application) component the finding is about: same purl, else
/// same name and version.
fn component_of(index: usize, image: &ImageInventory, finding: &Finding) -> Option<String> {
    let same_purl = |p: &Package| !finding.purl.is_empty() && p.purl == finding.purl;
    let same_name =
        |p: &Package| p.name == finding.package && p.version == finding.installed_version;
    for matches in [&same_purl as &dyn Fn(&Package) -> bool, &same_name] {
        if let Some(number) = image.packages.iter().position(matches) {
            return Some(format!("image-{index}-package-{number}"));
        }
        if let Some(number) = image.applications.iter().position(matches) {
            return Some(format!("image-{index}-application-{number}"));
        }
    }
    None
}

/// The installed version as `affected` and each fixed version as `unaffected`; empty versions
/// (which the schema forbids) are left out.
fn affected_versions(finding: &Finding) -> Vec<AffectedVersion> {
    let installed = std::iter::once((finding.installed_version.as_str(), "affected"));
    let fixed = finding
        .fixed_versions
        .iter()
        .map(|version| (version.as_str(), "unaffected"));
    installed
        .chain(fixed)
        .filter(|(version, _)| !version.is_empty())
        .map(|(version, status)| AffectedVersion {
            version: version.to_owned(),
            status,
        })
        .collect()
}

fn image_component(index: usize, image: &ImageInventory) -> Component {
    let mut component = Component::new("container", format!("image-{index}"), image.image.clone());
    component.version = Some(image.id.to_string());
    if let Some(platform) = &image.platform {
        component.property("buildopt:platform", platform.clone());
    }
    if let Some(manifest) = &image.manifest {
        component.property("buildopt:manifest", manifest.to_string());
    }
    for warning in &image.warnings {
        let path = warning.path.as_deref().unwrap_or("image");
        component.property("buildopt:not_read", format!("{path}: {}", warning.message));
    }
    component
}

fn package_component(kind: &'static str, bom_ref: String, package: &Package) -> Component {
    let mut component = Component::new(kind, bom_ref, package.name.clone());
    component.version = Some(package.version.clone());
    component.purl = (!package.purl.is_empty()).then(|| package.purl.clone());
    component.licenses = licenses(&package.licenses);
    component.property("buildopt:path", package.path.clone());
    component.property("buildopt:layer", package.layer.to_string());
    if let Some(line) = &package.dockerfile {
        component.property(
            "buildopt:dockerfile",
            format!("{}:{}", line.path, line.line),
        );
        if let Some(stage) = &line.stage {
            component.property("buildopt:stage", stage.clone());
        }
    }
    if let Some(base) = &package.base_image {
        component.property("buildopt:base_image", base.clone());
    }
    component
}

/// The `licenses` array. CycloneDX allows either licences or one expression: when a package
/// declares an expression, all its licences join into one expression with `AND`, unless one of
/// them is not SPDX (then each is listed, expressions by name).
fn licenses(declared: &[String]) -> Vec<License> {
    let terms = LicenseTerm::all(declared);
    let has_expression = terms
        .iter()
        .any(|term| matches!(term, LicenseTerm::Expression(_)));
    let all_spdx = terms
        .iter()
        .all(|term| !matches!(term, LicenseTerm::Name(_)));
    if has_expression && all_spdx {
        let expression = terms
            .iter()
            .map(|term| match term {
                LicenseTerm::Expression(text) if terms.len() > 1 => format!("({text})"),
                LicenseTerm::Id(text) | LicenseTerm::Expression(text) | LicenseTerm::Name(text) => {
                    (*text).to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" AND ");
        return vec![License::Expression { expression }];
    }
    terms
        .into_iter()
        .map(|term| match term {
            LicenseTerm::Id(id) => License::License {
                license: LicenseName {
                    id: Some(id.to_owned()),
                    name: None,
                },
            },
            LicenseTerm::Expression(text) | LicenseTerm::Name(text) => License::License {
                license: LicenseName {
                    id: None,
                    name: Some(text.to_owned()),
                },
            },
        })
        .collect()
}

/// `urn:uuid:` with a UUID made from the SHA-256 of the BOM written without it. The version
/// nibble says 5 (name-based) and the variant is RFC 4122's, as the schema's pattern requires.
fn serial_number(bom: &Bom) -> String {
    let content = serde_json::to_vec(bom).unwrap_or_default();
    let hash = Sha256::digest(&content);
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Metadata,
    components: Vec<Component>,
    dependencies: Vec<Dependency>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vulnerabilities: Vec<Vulnerability>,
}

#[derive(Serialize)]
struct Vulnerability {
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    id: String,
    source: Source,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    references: Vec<Reference>,
    ratings: Vec<Rating>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    recommendation: String,
    affects: Vec<Affects>,
}

#[derive(Serialize)]
struct Source {
    name: &'static str,
    url: String,
}

impl Source {
    fn osv(id: &str) -> Self {
        Self {
            name: "OSV",
            url: osv_link(id),
        }
    }
}

#[derive(Serialize)]
struct Reference {
    id: String,
    source: Source,
}

#[derive(Serialize)]
struct Rating {
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'static str>,
}

#[derive(Serialize)]
struct Affects {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    versions: Vec<AffectedVersion>,
}

#[derive(Serialize, PartialEq)]
struct AffectedVersion {
    version: String,
    status: &'static str,
}

#[derive(Serialize)]
struct Metadata {
    timestamp: String,
    tools: Tools,
    #[serde(skip_serializing_if = "Option::is_none")]
    component: Option<Component>,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Tool>,
}

#[derive(Serialize)]
struct Tool {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'static str,
    version: String,
}

#[derive(Serialize)]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<License>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
}

impl Component {
    fn new(kind: &'static str, bom_ref: String, name: String) -> Self {
        Self {
            kind,
            bom_ref,
            name,
            version: None,
            description: None,
            licenses: Vec::new(),
            purl: None,
            properties: Vec::new(),
        }
    }

    fn property(&mut self, name: &'static str, value: String) {
        self.properties.push(Property { name, value });
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum License {
    License { license: LicenseName },
    Expression { expression: String },
}

#[derive(Serialize)]
struct LicenseName {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

#[derive(Serialize)]
struct Property {
    name: &'static str,
    value: String,
}

#[derive(Serialize)]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    #[serde(rename = "dependsOn")]
    depends_on: Vec<String>,
}

impl Dependency {
    fn new(reference: &str, depends_on: Vec<String>) -> Self {
        Self {
            reference: reference.to_owned(),
            depends_on,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::scan_fixtures::{inventory, with_findings};

    fn created() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-06T21:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn parse(json: &str) -> serde_json::Value {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn bom_of_several_images_has_the_workspace_as_its_component() {
        let json = cyclonedx(&inventory(), "acme", created(), "0.1.0");
        insta::assert_snapshot!(json);
    }

    #[test]
    fn bom_of_one_image_has_the_image_as_its_component() {
        let mut report = inventory();
        report.images.truncate(1);
        let json = cyclonedx(&report, "acme", created(), "0.1.0");
        let bom = parse(&json);
        assert_eq!(bom["metadata"]["component"]["type"], "container");
        assert_eq!(bom["metadata"]["component"]["name"], "acme/api:1.2");
        let components = bom["components"].as_array().unwrap();
        assert_eq!(components[0]["type"], "operating-system");
        assert_eq!(components[1]["type"], "application");
        assert!(components[2..].iter().all(|c| c["type"] == "library"));
        assert_eq!(
            bom["dependencies"][0]["dependsOn"]
                .as_array()
                .unwrap()
                .len(),
            components.len()
        );
    }

    #[test]
    fn every_reference_in_dependencies_names_a_component() {
        let bom = parse(&cyclonedx(&inventory(), "acme", created(), "0.1.0"));
        let mut refs: Vec<&str> = bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["bom-ref"].as_str().unwrap())
            .collect();
        refs.push(bom["metadata"]["component"]["bom-ref"].as_str().unwrap());
        let unique: std::collections::BTreeSet<_> = refs.iter().collect();
        assert_eq!(unique.len(), refs.len(), "bom-refs are unique");
        for dependency in bom["dependencies"].as_array().unwrap() {
            let listed = dependency["dependsOn"].as_array().unwrap();
            for reference in std::iter::once(&dependency["ref"]).chain(listed) {
                assert!(refs.contains(&reference.as_str().unwrap()), "{reference}");
            }
        }
    }

    #[test]
    fn licences_are_ids_names_or_one_expression() {
        let list = |declared: &[&str]| {
            let declared: Vec<String> = declared.iter().map(|l| (*l).to_owned()).collect();
            serde_json::to_value(licenses(&declared)).unwrap()
        };
        assert_eq!(
            list(&["MIT", "GPL-2+"]),
            serde_json::json!([{"license": {"id": "MIT"}}, {"license": {"name": "GPL-2+"}}])
        );
        assert_eq!(
            list(&["MIT OR Apache-2.0"]),
            serde_json::json!([{"expression": "MIT OR Apache-2.0"}])
        );
        assert_eq!(
            list(&["Zlib", "MIT OR Apache-2.0"]),
            serde_json::json!([{"expression": "Zlib AND (MIT OR Apache-2.0)"}])
        );
        assert_eq!(
            list(&["BSD License", "MIT OR Apache-2.0"]),
            serde_json::json!([
                {"license": {"name": "BSD License"}},
                {"license": {"name": "MIT OR Apache-2.0"}}
            ])
        );
        assert_eq!(list(&[]), serde_json::json!([]));
        assert_eq!(list(&["", " "]), serde_json::json!([]));
        assert_eq!(
            list(&["", "MIT"]),
            serde_json::json!([{"license": {"id": "MIT"}}])
        );
    }

    #[test]
    fn the_serial_number_is_a_uuid_that_follows_the_content() {
        let pattern = regex::Regex::new(
            "^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
        )
        .unwrap();
        let serial = |report: &ScanReport| {
            let bom = parse(&cyclonedx(report, "acme", created(), "0.1.0"));
            bom["serialNumber"].as_str().unwrap().to_owned()
        };
        let first = serial(&inventory());
        assert!(pattern.is_match(&first), "{first}");
        assert_eq!(first, serial(&inventory()));
        let mut changed = inventory();
        changed.images[2].packages.pop();
        assert_ne!(first, serial(&changed));
    }

    #[test]
    fn an_empty_report_is_a_bom_of_the_workspace_alone() {
        let report = ScanReport {
            version: 1,
            images: Vec::new(),
            unreadable: Vec::new(),
        };
        let bom = parse(&cyclonedx(&report, "acme", created(), "0.1.0"));
        assert_eq!(bom["metadata"]["component"]["name"], "acme");
        assert_eq!(bom["components"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn matched_images_list_their_vulnerabilities_by_issue() {
        let json = cyclonedx(&with_findings(), "acme", created(), "0.1.0");
        let bom = parse(&json);
        insta::assert_json_snapshot!(bom["vulnerabilities"]);
        let vulnerabilities = bom["vulnerabilities"].as_array().unwrap();
        let refs: Vec<&str> = bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .chain([&bom["metadata"]["component"]])
            .map(|c| c["bom-ref"].as_str().unwrap())
            .collect();
        for vulnerability in vulnerabilities {
            assert!(!refs.contains(&vulnerability["bom-ref"].as_str().unwrap()));
            for affected in vulnerability["affects"].as_array().unwrap() {
                assert!(
                    refs.contains(&affected["ref"].as_str().unwrap()),
                    "{affected}"
                );
            }
        }
        let requests = vulnerabilities
            .iter()
            .find(|v| v["id"] == "GHSA-9wx4-h78v-vm56")
            .unwrap();
        let package = bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["bom-ref"] == requests["affects"][0]["ref"])
            .unwrap();
        assert_eq!(package["name"], "requests");
    }

    #[test]
    fn a_finding_without_its_package_component_points_at_the_image() {
        let report = crate::report::findings_fixtures::report();
        let bom = parse(&cyclonedx(&report, "acme", created(), "0.1.0"));
        let vulnerabilities = bom["vulnerabilities"].as_array().unwrap();
        let openssl = vulnerabilities
            .iter()
            .find(|v| v["id"] == "CVE-2024-0727")
            .unwrap();
        // libssl3 and openssl, both without a component: the image, once, with their versions.
        assert_eq!(
            openssl["affects"],
            serde_json::json!([{"ref": "image-0", "versions": [
                {"version": "3.0.11-1~deb12u2", "status": "affected"},
                {"version": "3.0.13-1~deb12u1", "status": "unaffected"},
            ]}])
        );
        assert_eq!(
            openssl["recommendation"],
            "Upgrade libssl3 to 3.0.13-1~deb12u1, openssl to 3.0.13-1~deb12u1."
        );
        let zlib = vulnerabilities
            .iter()
            .find(|v| v["id"] == "CVE-2023-45853" && v["affects"][0]["ref"] == "image-1")
            .unwrap();
        assert_eq!(zlib["recommendation"], "No fix yet.");
        assert_eq!(
            zlib["ratings"],
            serde_json::json!([{"score": 9.8, "severity": "critical", "method": "other"}])
        );
    }

    #[test]
    fn an_inventory_without_findings_has_no_vulnerabilities() {
        let bom = parse(&cyclonedx(&inventory(), "acme", created(), "0.1.0"));
        assert!(bom.get("vulnerabilities").is_none());
    }
}
