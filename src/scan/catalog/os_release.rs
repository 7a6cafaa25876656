//! The OS release. (temporary, local only)

use crate::scan::package::{FileFacts, OsRelease};

pub fn wants(path: &str) -> bool {
    path == "etc/os-release" || path == "usr/lib/os-release"
}

pub fn parse(bytes: &[u8]) -> Result<FileFacts, String> {
    let text = String::from_utf8_lossy(bytes);
    let mut os = OsRelease::default();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim_matches('"').to_owned();
            match k {
                "ID" => os.id = Some(v),
                "VERSION_ID" => os.version_id = Some(v),
                "VERSION_CODENAME" => os.codename = Some(v),
                "PRETTY_NAME" => os.pretty_name = Some(v),
                _ => {}
            }
        }
    }
    Ok(FileFacts::OsRelease(os))
}
