//! Repository-relative path arithmetic: joining, normalising, refusing paths that leave the repo.

/// Joins `rel` onto the repository-relative folder `base` and normalises `.` and `..`.
/// Returns `None` when the result would leave the repository or `rel` is absolute.
pub fn join(base: &str, rel: &str) -> Option<String> {
    if rel.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = base
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// `path` relative to the folder `dir`, when it lies below it (`dir == ""` is the root).
pub fn strip_dir<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
    if dir.is_empty() {
        return Some(path);
    }
    path.strip_prefix(dir)?.strip_prefix('/')
}

/// The folder part of a repository-relative path (`""` for a top-level file).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The last component of a path.
pub fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_normalises_and_refuses_escapes() {
        assert_eq!(join("", "services/api").as_deref(), Some("services/api"));
        assert_eq!(
            join("examples/mono", "./a/../b/").as_deref(),
            Some("examples/mono/b")
        );
        assert_eq!(join("examples/mono", "..").as_deref(), Some("examples"));
        assert_eq!(join("examples/mono", ".").as_deref(), Some("examples/mono"));
        assert_eq!(join("", ".."), None);
        assert_eq!(join("a", "../../x"), None);
        assert_eq!(join("a", "/etc"), None);
    }

    #[test]
    fn strip_dir_needs_a_component_boundary() {
        assert_eq!(strip_dir("a/b/c", "a/b"), Some("c"));
        assert_eq!(strip_dir("a/bc", "a/b"), None);
        assert_eq!(strip_dir("a/b", "a/b"), None);
        assert_eq!(strip_dir("x", ""), Some("x"));
    }
}
