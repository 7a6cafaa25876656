//! temporary purl (local only)
use super::package::{Found, OsRelease};
pub fn purl(found: &Found, _os: Option<&OsRelease>) -> String {
    format!(
        "pkg:{}/{}@{}",
        found.kind.as_str(),
        found.name,
        found.version
    )
}
