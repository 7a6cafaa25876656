//! SPDX 2.3 JSON of a scan: one document describing every image of the report.
//!
//! Owns the document layout and the SPDX licence rules both SBOM formats share
//! (`LicenseTerm`). Each image is a package with `primaryPackagePurpose: CONTAINER` that the
//! document `DESCRIBES`; it `CONTAINS` its operating system (`OPERATING-SYSTEM`), its
//! applications (`APPLICATION`) and its packages. A package's purl is its `PACKAGE-MANAGER`
//! external reference, and its `sourceInfo` says which file declared it, which layer brought it
//! and which Dockerfile line (or base image) made that layer. Licences that are not SPDX
//! expressions become `LicenseRef-` entries in `hasExtractedLicensingInfos`, as syft writes them.
//! The document namespace is a URI derived from the content, so the same scan gives the same
//! document; the creation time and the tool version are inputs.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use spdx::{LicenseItem, ParseMode};

use crate::scan::model::{ImageInventory, Package, ScanReport};

/// The value SPDX uses for "not looked at".
const NOASSERTION: &str = "NOASSERTION";

/// How one declared licence is written in an SBOM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LicenseTerm<'a> {
    /// A single, current SPDX licence id (`MIT`).
    Id(&'a str),
    /// A valid SPDX expression of list licences (`MIT OR Apache-2.0`, `GPL-2.0-or-later WITH
    /// Classpath-exception-2.0`).
    Expression(&'a str),
    /// Anything else (`GPL-2+`, `BSD License`, a deprecated id, a `LicenseRef-` this document
    /// does not define): kept as a name.
    Name(&'a str),
}

impl<'a> LicenseTerm<'a> {
    /// The terms of a package's declared licences, blank ones left out (there is nothing to
    /// name).
    pub(crate) fn all(declared: &'a [String]) -> Vec<Self> {
        declared
            .iter()
            .filter(|text| !text.trim().is_empty())
            .map(|text| Self::of(text))
            .collect()
    }

    /// Classifies `text` with strict SPDX parsing (case-sensitive ids, no deprecated ids).
    pub(crate) fn of(text: &'a str) -> Self {
        let text = text.trim();
        let Ok(expression) = spdx::Expression::parse_mode(text, ParseMode::STRICT) else {
            return Self::Name(text);
        };
        let only_list_licenses = expression.requirements().all(|term| {
            matches!(term.req.license, LicenseItem::Spdx { .. })
                && term.req.addition.as_ref().is_none_or(|a| a.id().is_some())
        });
        if !only_list_licenses {
            return Self::Name(text);
        }
        let single = spdx::license_id(text).filter(|id| id.name == text && !id.is_deprecated());
        match single {
            Some(_) => Self::Id(text),
            None => Self::Expression(text),
        }
    }
}

/// The SPDX document for `report`, named `name` (the workspace, or the image when there is one),
/// created at `created` by buildopt `tool_version`.
pub fn spdx(report: &ScanReport, name: &str, created: DateTime<Utc>, tool_version: &str) -> String {
    let mut licenses = ExtractedLicenses::default();
    let mut packages = Vec::new();
    let mut relationships = Vec::new();
    for (index, image) in report.images.iter().enumerate() {
        image_packages(
            index,
            image,
            &mut licenses,
            &mut packages,
            &mut relationships,
        );
    }
    let mut document = Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdxid: "SPDXRef-DOCUMENT",
        name: name.to_owned(),
        document_namespace: String::new(),
        creation_info: CreationInfo {
            created: created.to_rfc3339_opts(SecondsFormat::Secs, true),
            creators: vec![format!("Tool: buildopt-{tool_version}")],
        },
        packages,
        relationships,
        has_extracted_licensing_infos: licenses.into_infos(),
    };
    document.document_namespace = namespace(name, &document);
    let mut json = serde_json::to_string_pretty(&document).unwrap_or_default();
    json.push('\n');
    json
}

/// A URI unique to this content: the repository's address, the name and a hash of the document
/// (written with an empty namespace).
fn namespace(name: &str, document: &Document) -> String {
    let content = serde_json::to_vec(document).unwrap_or_default();
    let hash = Sha256::digest(&content);
    let hex: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}/spdx/{}-{hex}",
        env!("CARGO_PKG_REPOSITORY"),
        id_safe(name)
    )
}

fn image_packages(
    index: usize,
    image: &ImageInventory,
    licenses: &mut ExtractedLicenses,
    packages: &mut Vec<SpdxPackage>,
    relationships: &mut Vec<Relationship>,
) {
    let image_id = format!("SPDXRef-Image-{index}");
    packages.push(image_package(&image_id, image));
    relationships.push(Relationship::new(
        "SPDXRef-DOCUMENT",
        "DESCRIBES",
        &image_id,
    ));
    if let Some(os) = &image.os {
        let os_id = format!("SPDXRef-OperatingSystem-{index}");
        packages.push(SpdxPackage {
            spdxid: os_id.clone(),
            name: os.id.clone().unwrap_or_else(|| "unknown".into()),
            version_info: os.version_id.clone(),
            primary_package_purpose: Some("OPERATING-SYSTEM"),
            description: os.pretty_name.clone(),
            ..SpdxPackage::new(String::new(), String::new())
        });
        relationships.push(Relationship::new(&image_id, "CONTAINS", &os_id));
    }
    let applications = image.applications.iter().enumerate();
    let applications = applications.map(|(number, p)| (p, "Application", number));
    let listed = image.packages.iter().enumerate();
    let listed = listed.map(|(number, p)| (p, "Package", number));
    for (package, kind, number) in applications.chain(listed) {
        let id = format!(
            "SPDXRef-{kind}-{}-{}-{index}-{number}",
            package.kind.as_str(),
            id_safe(&package.name)
        );
        let mut spdx_package = content_package(id.clone(), package, licenses);
        if kind == "Application" {
            spdx_package.primary_package_purpose = Some("APPLICATION");
        }
        packages.push(spdx_package);
        relationships.push(Relationship::new(&image_id, "CONTAINS", &id));
    }
}

fn image_package(id: &str, image: &ImageInventory) -> SpdxPackage {
    let mut facts = Vec::new();
    if let Some(platform) = &image.platform {
        facts.push(format!("platform {platform}"));
    }
    if let Some(manifest) = &image.manifest {
        facts.push(format!("manifest {manifest}"));
    }
    facts.extend(image.warnings.iter().map(|warning| {
        let path = warning.path.as_deref().unwrap_or("image");
        format!("not read: {path}: {}", warning.message)
    }));
    SpdxPackage {
        version_info: Some(image.id.to_string()),
        primary_package_purpose: Some("CONTAINER"),
        comment: (!facts.is_empty()).then(|| facts.join("; ")),
        ..SpdxPackage::new(id.to_owned(), image.image.clone())
    }
}

fn content_package(id: String, package: &Package, licenses: &mut ExtractedLicenses) -> SpdxPackage {
    let external_refs = if package.purl.is_empty() {
        Vec::new()
    } else {
        vec![ExternalRef {
            reference_category: "PACKAGE-MANAGER",
            reference_type: "purl",
            reference_locator: package.purl.clone(),
        }]
    };
    SpdxPackage {
        version_info: Some(package.version.clone()),
        license_declared: licenses.declared(&package.licenses),
        external_refs,
        source_info: Some(source_info(package)),
        ..SpdxPackage::new(id, package.name.clone())
    }
}

/// Where the package came from: the declaring file, the layer, and what made the layer.
fn source_info(package: &Package) -> String {
    let mut info = format!("declared by {} in layer {}", package.path, package.layer);
    if let Some(line) = &package.dockerfile {
        info.push_str(&format!(", made by {}:{}", line.path, line.line));
        if let Some(stage) = &line.stage {
            info.push_str(&format!(" (stage {stage})"));
        }
    } else if let Some(base) = &package.base_image {
        info.push_str(&format!(", from base image {base}"));
    }
    info
}

/// `text` with every character an SPDX id may not hold (`[A-Za-z0-9.-]` only) made a `-`.
fn id_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The licence names outside the SPDX list met so far, each with its `LicenseRef-` id.
#[derive(Default)]
struct ExtractedLicenses {
    ids: BTreeMap<String, String>,
}

impl ExtractedLicenses {
    /// `licenseDeclared` for a package's licences: an SPDX expression joining them with `AND`
    /// (each licence applies), or `NOASSERTION` when none are declared.
    fn declared(&mut self, declared: &[String]) -> String {
        let terms = LicenseTerm::all(declared);
        let single = terms.len() == 1;
        let terms: Vec<String> = terms
            .into_iter()
            .map(|term| match term {
                LicenseTerm::Id(id) => id.to_owned(),
                LicenseTerm::Expression(expression) if single => expression.to_owned(),
                LicenseTerm::Expression(expression) => format!("({expression})"),
                LicenseTerm::Name(name) => self.reference(name),
            })
            .collect();
        if terms.is_empty() {
            NOASSERTION.to_owned()
        } else {
            terms.join(" AND ")
        }
    }

    /// The `LicenseRef-` id of `name`: its id-safe form, numbered when two names share one.
    fn reference(&mut self, name: &str) -> String {
        if let Some(id) = self.ids.get(name) {
            return id.clone();
        }
        let base = format!("LicenseRef-{}", id_safe(name));
        let mut id = base.clone();
        let mut number = 1;
        while self.ids.values().any(|taken| *taken == id) {
            number += 1;
            id = format!("{base}-{number}");
        }
        self.ids.insert(name.to_owned(), id.clone());
        id
    }

    fn into_infos(self) -> Vec<ExtractedLicense> {
        let mut infos: Vec<ExtractedLicense> = self
            .ids
            .into_iter()
            .map(|(name, license_id)| ExtractedLicense {
                license_id,
                extracted_text: name.clone(),
                name,
            })
            .collect();
        infos.sort_by(|a, b| a.license_id.cmp(&b.license_id));
        infos
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdxid: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<SpdxPackage>,
    relationships: Vec<Relationship>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    has_extracted_licensing_infos: Vec<ExtractedLicense>,
}

#[derive(Serialize)]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    #[serde(rename = "SPDXID")]
    spdxid: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_info: Option<String>,
    download_location: &'static str,
    files_analyzed: bool,
    license_concluded: &'static str,
    license_declared: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    primary_package_purpose: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
}

impl SpdxPackage {
    fn new(spdxid: String, name: String) -> Self {
        Self {
            spdxid,
            name,
            version_info: None,
            download_location: NOASSERTION,
            files_analyzed: false,
            license_concluded: NOASSERTION,
            license_declared: NOASSERTION.to_owned(),
            primary_package_purpose: None,
            description: None,
            source_info: None,
            comment: None,
            external_refs: Vec::new(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

impl Relationship {
    fn new(from: &str, kind: &'static str, to: &str) -> Self {
        Self {
            spdx_element_id: from.to_owned(),
            relationship_type: kind,
            related_spdx_element: to.to_owned(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExtractedLicense {
    license_id: String,
    extracted_text: String,
    name: String,
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

    #[test]
    fn document_of_the_fixture_inventory() {
        let json = spdx(&inventory(), "acme", created(), "0.1.0");
        insta::assert_snapshot!(json);
    }

    #[test]
    fn licence_terms_are_ids_expressions_or_names() {
        assert_eq!(LicenseTerm::of("MIT"), LicenseTerm::Id("MIT"));
        assert_eq!(
            LicenseTerm::of(" GPL-2.0-or-later "),
            LicenseTerm::Id("GPL-2.0-or-later")
        );
        assert_eq!(
            LicenseTerm::of("MIT OR Apache-2.0"),
            LicenseTerm::Expression("MIT OR Apache-2.0")
        );
        assert_eq!(LicenseTerm::of("MIT+"), LicenseTerm::Expression("MIT+"));
        assert_eq!(
            LicenseTerm::of("GPL-2.0-only WITH Classpath-exception-2.0"),
            LicenseTerm::Expression("GPL-2.0-only WITH Classpath-exception-2.0")
        );
        for name in [
            "GPL-2+",
            "BSD License",
            "mit",
            "GPL-2.0",
            "LicenseRef-acme",
            "MIT OR",
            "",
            "((((",
        ] {
            assert_eq!(
                LicenseTerm::of(name),
                LicenseTerm::Name(name.trim()),
                "{name}"
            );
        }
    }

    #[test]
    fn declared_licences_join_with_and_and_names_become_references() {
        let mut extracted = ExtractedLicenses::default();
        let declared = |list: &[&str], extracted: &mut ExtractedLicenses| {
            let list: Vec<String> = list.iter().map(|l| (*l).to_owned()).collect();
            extracted.declared(&list)
        };
        assert_eq!(declared(&[], &mut extracted), "NOASSERTION");
        assert_eq!(declared(&["", "  "], &mut extracted), "NOASSERTION");
        assert_eq!(
            declared(&["", "MIT OR Apache-2.0"], &mut extracted),
            "MIT OR Apache-2.0"
        );
        assert_eq!(
            declared(&["MIT OR Apache-2.0"], &mut extracted),
            "MIT OR Apache-2.0"
        );
        assert_eq!(
            declared(&["MIT OR Apache-2.0", "Zlib", "GPL-2+"], &mut extracted),
            "(MIT OR Apache-2.0) AND Zlib AND LicenseRef-GPL-2-"
        );
        assert_eq!(
            declared(&["GPL-2-", "GPL-2+"], &mut extracted),
            "LicenseRef-GPL-2--2 AND LicenseRef-GPL-2-"
        );
        let infos = extracted.into_infos();
        assert_eq!(infos.len(), 2);
        assert_eq!(infos[0].extracted_text, "GPL-2+");
    }

    #[test]
    fn ids_hold_only_valid_characters() {
        let mut report = inventory();
        report.images[0].packages[0].name = "../we!rd näme @1".into();
        report.images[0].image = "x\"y\n".into();
        let json = spdx(&report, "a b/c", created(), "0.1.0");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let valid = regex::Regex::new("^SPDXRef-[A-Za-z0-9.-]+$").unwrap();
        for package in value["packages"].as_array().unwrap() {
            let id = package["SPDXID"].as_str().unwrap();
            assert!(valid.is_match(id), "{id}");
        }
        let namespace = value["documentNamespace"].as_str().unwrap();
        assert!(!namespace.contains(' '), "{namespace}");
    }

    #[test]
    fn the_namespace_follows_the_content() {
        let first = spdx(&inventory(), "acme", created(), "0.1.0");
        let again = spdx(&inventory(), "acme", created(), "0.1.0");
        assert_eq!(first, again);
        let mut changed = inventory();
        changed.images.pop();
        let other = spdx(&changed, "acme", created(), "0.1.0");
        let namespace = |json: &str| {
            let value: serde_json::Value = serde_json::from_str(json).unwrap();
            value["documentNamespace"].as_str().unwrap().to_owned()
        };
        assert_ne!(namespace(&first), namespace(&other));
    }

    #[test]
    fn an_empty_report_is_a_document_without_packages() {
        let report = ScanReport {
            version: 1,
            images: Vec::new(),
            unreadable: Vec::new(),
        };
        let json = spdx(&report, "empty", created(), "0.1.0");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["packages"].as_array().unwrap().len(), 0);
    }
}
