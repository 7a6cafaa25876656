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
use crate::scan::model::{ImageInventory, Package, ScanReport};

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
    component
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
    use crate::report::scan_fixtures::inventory;

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
        };
        let bom = parse(&cyclonedx(&report, "acme", created(), "0.1.0"));
        assert_eq!(bom["metadata"]["component"]["name"], "acme");
        assert_eq!(bom["components"].as_array().unwrap().len(), 0);
    }
}
