//! The file set of a build context as it is on disk: what buildopt sends to the daemon.
//!
//! Owns: walking a context folder of the work tree with `std::fs` and keeping exactly what
//! BuildKit would keep after `.dockerignore` filtering. The daemon's BuildKit does not filter a
//! tar context itself, so this set must already be the filtered one.
//!
//! Semantics follow BuildKit's walker: each path is evaluated with its parent directory's match
//! state ([`IgnoreRules::evaluate`]); an excluded directory is still entered when an exception
//! could re-include something below it ([`IgnoreRules::can_prune`] says when it cannot); symlinks
//! are sent as links and never followed. The Dockerfile is sent inline by the engine, so it does
//! not matter whether it is inside the context or excluded by the ignore file; a context file
//! named like the inline Dockerfile is left out so the two cannot collide.

use std::fs;
use std::path::{Path, PathBuf};

use super::dockerignore::{IgnoreRules, MatchState};
use crate::engine::{ContextFile, INLINE_DOCKERFILE_NAME};

/// Why a context could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The context folder does not exist or is not a folder.
    #[error("build context {path} is not a folder")]
    NotAFolder { path: String },
    /// A folder or file of the context could not be read.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The filtered files of one context, in a stable order (depth first, names sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextSet {
    /// Directories, files and symlinks to send; a directory is listed before what it holds.
    pub files: Vec<ContextFile>,
    /// Regular files among `files`.
    pub file_count: usize,
    /// Total size of the regular files, in bytes.
    pub bytes: u64,
}

/// Lists the files of the context folder `root` that `rules` keep.
pub fn collect(root: &Path, rules: &IgnoreRules) -> Result<ContextSet, ContextError> {
    collect_skipping(root, rules, &[])
}

/// As [`collect`], but leaves out each of `skip` (`/`-separated paths inside the context, such as
/// the build cache store or buildopt's own report files) and everything below it, whatever the
/// rules say.
pub fn collect_skipping(
    root: &Path,
    rules: &IgnoreRules,
    skip: &[String],
) -> Result<ContextSet, ContextError> {
    if !root.is_dir() {
        return Err(ContextError::NotAFolder {
            path: root.display().to_string(),
        });
    }
    let mut set = ContextSet::default();
    walk(root, "", &MatchState::default(), rules, skip, &mut set)?;
    Ok(set)
}

fn walk(
    dir: &Path,
    rel_dir: &str,
    dir_state: &MatchState,
    rules: &IgnoreRules,
    skip: &[String],
    set: &mut ContextSet,
) -> Result<(), ContextError> {
    for (name, abs_path) in sorted_entries(dir)? {
        let rel_path = if rel_dir.is_empty() {
            name
        } else {
            format!("{rel_dir}/{name}")
        };
        if rel_path == INLINE_DOCKERFILE_NAME || skip.contains(&rel_path) {
            continue;
        }
        let metadata = fs::symlink_metadata(&abs_path).map_err(|source| io(&abs_path, source))?;
        let (excluded, state) = rules.evaluate(&rel_path, dir_state);
        let is_dir = metadata.file_type().is_dir();
        if !excluded {
            if metadata.file_type().is_file() {
                set.file_count += 1;
                set.bytes += metadata.len();
            }
            set.files.push(ContextFile {
                rel_path: rel_path.clone(),
                abs_path: abs_path.clone(),
            });
        }
        // An excluded folder is still walked when an exception may bring back something inside.
        if is_dir && (!excluded || !rules.can_prune(&rel_path)) {
            walk(&abs_path, &rel_path, &state, rules, skip, set)?;
        }
    }
    Ok(())
}

/// The entries of `dir` as (name, path), sorted by name; names that are not UTF-8 are read lossily.
fn sorted_entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, ContextError> {
    let reader = fs::read_dir(dir).map_err(|source| io(dir, source))?;
    let mut entries = Vec::new();
    for entry in reader {
        let entry = entry.map_err(|source| io(dir, source))?;
        entries.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    entries.sort();
    Ok(entries)
}

fn io(path: &Path, source: std::io::Error) -> ContextError {
    ContextError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, contents: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, contents).expect("write");
    }

    fn listed(root: &Path, ignore: &str) -> Vec<String> {
        let rules = IgnoreRules::parse(ignore).expect("rules");
        collect(root, &rules)
            .expect("collect")
            .files
            .into_iter()
            .map(|f| f.rel_path)
            .collect()
    }

    #[test]
    fn without_rules_everything_is_sent_in_sorted_depth_first_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "b.txt", "b");
        write(dir.path(), "a/z.txt", "zz");
        write(dir.path(), "a/y/x.txt", "xxx");
        assert_eq!(
            listed(dir.path(), ""),
            ["a", "a/y", "a/y/x.txt", "a/z.txt", "b.txt"]
        );
        let set = collect(dir.path(), &IgnoreRules::default()).expect("collect");
        assert_eq!((set.file_count, set.bytes), (3, 6));
    }

    #[test]
    fn excluded_files_and_pruned_folders_are_left_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "app.sh", "");
        write(dir.path(), "notes.md", "");
        write(dir.path(), "node_modules/p/index.js", "");
        assert_eq!(
            listed(dir.path(), "*.md\nnode_modules\n"),
            ["app.sh"],
            "excluded file and folder"
        );
    }

    #[test]
    fn an_exception_below_an_excluded_folder_brings_the_file_back_without_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "services/api/app.sh", "");
        write(dir.path(), "services/worker/worker.sh", "");
        write(dir.path(), "shared/config.env", "");
        let kept = listed(dir.path(), "*\n!services/api\n!shared\n");
        assert_eq!(
            kept,
            [
                "services/api",
                "services/api/app.sh",
                "shared",
                "shared/config.env"
            ]
        );
    }

    #[test]
    fn a_wildcard_exception_is_found_deep_inside_an_excluded_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "node_modules/p/LICENSE", "");
        write(dir.path(), "node_modules/p/index.js", "");
        assert_eq!(
            listed(dir.path(), "node_modules\n!**/LICENSE\n"),
            ["node_modules/p/LICENSE"]
        );
    }

    #[test]
    fn symlinks_are_listed_as_links_and_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("outside");
        write(outside.path(), "secret.txt", "secret");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).expect("symlink");
        let set = collect(dir.path(), &IgnoreRules::default()).expect("collect");
        let names: Vec<_> = set.files.iter().map(|f| f.rel_path.as_str()).collect();
        assert_eq!(names, ["link"]);
        assert_eq!(set.file_count, 0, "a link is not counted as a file");
    }

    #[test]
    fn a_file_named_like_the_inline_dockerfile_is_not_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), INLINE_DOCKERFILE_NAME, "FROM x");
        write(dir.path(), "Dockerfile", "FROM y");
        assert_eq!(listed(dir.path(), ""), ["Dockerfile"]);
    }

    #[test]
    fn the_skipped_folder_is_left_out_with_everything_below_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "app.sh", "a");
        write(dir.path(), ".build_cache/blobs/sha256/ab", "blob");
        write(dir.path(), "sub/.build_cache/kept", "k");
        let set = collect_skipping(
            dir.path(),
            &IgnoreRules::default(),
            &[".build_cache".to_string()],
        )
        .expect("collect");
        let names: Vec<_> = set.files.iter().map(|f| f.rel_path.as_str()).collect();
        assert_eq!(
            names,
            ["app.sh", "sub", "sub/.build_cache", "sub/.build_cache/kept"]
        );
        assert_eq!((set.file_count, set.bytes), (2, 2));
    }

    #[test]
    fn a_missing_context_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        let err = collect(&missing, &IgnoreRules::default()).expect_err("missing");
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
