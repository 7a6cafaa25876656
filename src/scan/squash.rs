//! The final image's package files: layer inventories applied base first, whiteouts and
//! opaque folders hiding what the layers below wrote (OCI image spec, "Whiteouts"), so a
//! package removed or upgraded in a later layer is reported as the final image has it.
//!
//! A package database rewritten by each install (dpkg `status`) credits each package to the
//! layer where it appeared at its version, not to the last layer that rewrote the file: that
//! is the layer (and Dockerfile line) that brought it.

use std::collections::BTreeMap;

use super::layer::LayerInventory;
use super::model::ScanWarning;
use super::package::{FileFacts, Found, OsRelease, PackageType};

/// A package in the final image, before purls and origins are added.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub found: Found,
    /// The declaring file, from the image root without the leading `/`.
    pub path: String,
    /// The index of the layer that brought it, base first.
    pub layer: usize,
}

/// What the final image holds.
#[derive(Debug, Default)]
pub struct Squashed {
    pub packages: Vec<Located>,
    pub applications: Vec<Located>,
    pub os: Option<OsRelease>,
    /// Files whose packages could not be read, as warnings naming them.
    pub warnings: Vec<ScanWarning>,
}

/// A file visible in the image so far.
struct Visible {
    layer: usize,
    facts: FileFacts,
    /// For a package database: the layer that brought each of its packages.
    origins: Vec<usize>,
}

/// Applies `layers` (base first) and returns the final image's packages.
pub fn squash(layers: &[LayerInventory]) -> Squashed {
    let mut visible: BTreeMap<String, Visible> = BTreeMap::new();
    for (index, layer) in layers.iter().enumerate() {
        for folder in &layer.opaque_dirs {
            remove_under(&mut visible, folder);
        }
        for path in &layer.whiteouts {
            visible.remove(path);
            remove_under(&mut visible, path);
        }
        for record in &layer.files {
            match &record.facts {
                Some(facts) => {
                    let origins = origins_of(facts, visible.get(&record.path), index);
                    visible.insert(
                        record.path.clone(),
                        Visible {
                            layer: index,
                            facts: facts.clone(),
                            origins,
                        },
                    );
                }
                None => {
                    visible.remove(&record.path);
                }
            }
        }
    }
    collect(visible, layers)
}

/// Removes every path strictly under `folder` (all paths for the root).
fn remove_under(visible: &mut BTreeMap<String, Visible>, folder: &str) {
    if folder.is_empty() {
        visible.clear();
        return;
    }
    let start = format!("{folder}/");
    // '0' is the character after '/': the range holds exactly the paths under `folder/`.
    let end = format!("{folder}0");
    let doomed: Vec<String> = visible
        .range(start..end)
        .map(|(path, _)| path.clone())
        .collect();
    for path in doomed {
        visible.remove(&path);
    }
}

/// For a database rewritten at layer `index`: each package keeps the layer of the version
/// below it when that version was already there, else it came with this layer.
fn origins_of(facts: &FileFacts, below: Option<&Visible>, index: usize) -> Vec<usize> {
    let FileFacts::Packages {
        database: true,
        packages,
    } = facts
    else {
        return Vec::new();
    };
    let earlier: BTreeMap<(&str, &str, Option<&str>), usize> = match below {
        Some(Visible {
            facts: FileFacts::Packages { packages: old, .. },
            origins,
            layer,
        }) => old
            .iter()
            .enumerate()
            .map(|(i, p)| (identity(p), origins.get(i).copied().unwrap_or(*layer)))
            .collect(),
        _ => BTreeMap::new(),
    };
    packages
        .iter()
        .map(|p| earlier.get(&identity(p)).copied().unwrap_or(index))
        .collect()
}

fn identity(found: &Found) -> (&str, &str, Option<&str>) {
    (&found.name, &found.version, found.arch.as_deref())
}

fn collect(visible: BTreeMap<String, Visible>, layers: &[LayerInventory]) -> Squashed {
    let mut squashed = Squashed::default();
    let mut licenses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut os_files: Vec<(String, OsRelease)> = Vec::new();
    for (path, file) in visible {
        match file.facts {
            FileFacts::Packages { packages, .. } => {
                for (i, found) in packages.into_iter().enumerate() {
                    let layer = file.origins.get(i).copied().unwrap_or(file.layer);
                    squashed.packages.push(Located {
                        found,
                        path: path.clone(),
                        layer,
                    });
                }
            }
            FileFacts::Application { package } => squashed.applications.push(Located {
                found: package,
                path,
                layer: file.layer,
            }),
            FileFacts::OsRelease(os) => os_files.push((path, os)),
            FileFacts::Licenses {
                package,
                licenses: l,
            } => {
                licenses.insert(package, l);
            }
            FileFacts::NotRead { reason } => squashed.warnings.push(ScanWarning {
                path: Some(format!("/{path}")),
                layer: layers.get(file.layer).map(|l| l.diff_id.clone()),
                message: format!("packages not listed: {reason}"),
            }),
        }
    }
    // `etc/os-release` wins over `usr/lib/os-release`, as the os-release manual says.
    os_files.sort_by_key(|(path, _)| !path.starts_with("etc/"));
    squashed.os = os_files.into_iter().next().map(|(_, os)| os);
    attach_copyright_licenses(&mut squashed.packages, &licenses);
    squashed.packages.sort_by(|a, b| {
        (a.found.kind, &a.found.name, &a.found.version, &a.path).cmp(&(
            b.found.kind,
            &b.found.name,
            &b.found.version,
            &b.path,
        ))
    });
    squashed
}

/// Debian packages declare licences only in `usr/share/doc/<package>/copyright`.
fn attach_copyright_licenses(packages: &mut [Located], licenses: &BTreeMap<String, Vec<String>>) {
    for package in packages {
        if package.found.kind == PackageType::Deb && package.found.licenses.is_empty() {
            if let Some(found) = licenses.get(&package.found.name) {
                package.found.licenses = found.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::digest::Digest;
    use crate::scan::layer::FileRecord;

    fn layer(
        files: Vec<(&str, Option<FileFacts>)>,
        whiteouts: &[&str],
        opaque: &[&str],
    ) -> LayerInventory {
        LayerInventory {
            diff_id: Digest::of(format!("{files:?}{whiteouts:?}").as_bytes()),
            whiteouts: whiteouts.iter().map(|s| s.to_string()).collect(),
            opaque_dirs: opaque.iter().map(|s| s.to_string()).collect(),
            files: files
                .into_iter()
                .map(|(path, facts)| FileRecord {
                    path: path.into(),
                    facts,
                })
                .collect(),
            warnings: Vec::new(),
            complete: true,
        }
    }

    fn packages(database: bool, list: &[(&str, &str)]) -> Option<FileFacts> {
        Some(FileFacts::Packages {
            database,
            packages: list
                .iter()
                .map(|(n, v)| Found::new(PackageType::Deb, *n, *v))
                .collect(),
        })
    }

    fn names(squashed: &Squashed) -> Vec<(String, String, usize)> {
        squashed
            .packages
            .iter()
            .map(|p| (p.found.name.clone(), p.found.version.clone(), p.layer))
            .collect()
    }

    const STATUS: &str = "var/lib/dpkg/status";

    #[test]
    fn a_database_credits_each_package_to_the_layer_that_brought_its_version() {
        let layers = [
            layer(
                vec![(STATUS, packages(true, &[("base", "1"), ("curl", "7")]))],
                &[],
                &[],
            ),
            layer(
                vec![(
                    STATUS,
                    packages(true, &[("base", "1"), ("curl", "7"), ("git", "2")]),
                )],
                &[],
                &[],
            ),
            layer(
                vec![(
                    STATUS,
                    packages(true, &[("base", "1"), ("curl", "8"), ("git", "2")]),
                )],
                &[],
                &[],
            ),
        ];
        let squashed = squash(&layers);
        assert_eq!(
            names(&squashed),
            [
                ("base".into(), "1".into(), 0),
                ("curl".into(), "8".into(), 2),
                ("git".into(), "2".into(), 1)
            ]
        );
    }

    #[test]
    fn whiteouts_hide_lower_files_and_folders_but_not_their_own_layer() {
        let py = "usr/lib/python3/dist-packages";
        let meta = |name: &str| format!("{py}/{name}.dist-info/METADATA");
        let (a, b, c) = (meta("a-1"), meta("b-1"), meta("c-1"));
        let layers = [
            layer(
                vec![
                    (a.as_str(), packages(false, &[("a", "1")])),
                    (b.as_str(), packages(false, &[("b", "1")])),
                ],
                &[],
                &[],
            ),
            layer(
                vec![(c.as_str(), packages(false, &[("c", "1")]))],
                &[&format!("{py}/a-1.dist-info")],
                &[],
            ),
        ];
        let squashed = squash(&layers);
        let found: Vec<_> = names(&squashed).into_iter().map(|n| n.0).collect();
        assert_eq!(found, ["b", "c"]);
    }

    #[test]
    fn an_opaque_folder_hides_everything_below_it_from_lower_layers_only() {
        let layers = [
            layer(
                vec![
                    ("opt/app/x/package.json", packages(false, &[("x", "1")])),
                    ("opt/application/y", packages(false, &[("y", "1")])),
                ],
                &[],
                &[],
            ),
            layer(
                vec![("opt/app/z/package.json", packages(false, &[("z", "1")]))],
                &[],
                &["opt/app"],
            ),
        ];
        let squashed = squash(&layers);
        let found: Vec<_> = names(&squashed).into_iter().map(|n| n.0).collect();
        assert_eq!(found, ["y", "z"]);
    }

    #[test]
    fn a_file_that_declares_nothing_replaces_one_that_did() {
        let layers = [
            layer(
                vec![("usr/bin/tool", packages(false, &[("m", "1")]))],
                &[],
                &[],
            ),
            layer(vec![("usr/bin/tool", None)], &[], &[]),
        ];
        assert!(squash(&layers).packages.is_empty());
    }

    #[test]
    fn os_release_prefers_etc_and_copyright_licences_join_deb_packages() {
        let os = |id: &str| {
            Some(FileFacts::OsRelease(OsRelease {
                id: Some(id.into()),
                ..OsRelease::default()
            }))
        };
        let layers = [layer(
            vec![
                ("usr/lib/os-release", os("lib")),
                ("etc/os-release", os("etc")),
                (STATUS, packages(true, &[("curl", "7")])),
                (
                    "usr/share/doc/curl/copyright",
                    Some(FileFacts::Licenses {
                        package: "curl".into(),
                        licenses: vec!["curl".into()],
                    }),
                ),
                (
                    "var/lib/rpm/Packages",
                    Some(FileFacts::NotRead {
                        reason: "Berkeley DB".into(),
                    }),
                ),
            ],
            &[],
            &[],
        )];
        let squashed = squash(&layers);
        assert_eq!(squashed.os.unwrap().id.as_deref(), Some("etc"));
        assert_eq!(squashed.packages[0].found.licenses, ["curl"]);
        assert_eq!(squashed.warnings.len(), 1);
        assert_eq!(
            squashed.warnings[0].path.as_deref(),
            Some("/var/lib/rpm/Packages")
        );
    }
}
