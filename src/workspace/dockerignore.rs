//! `.dockerignore` semantics (STUB: the dockerignore helper replaces this file).
//!
//! Owns: parsing ignore files and deciding whether a context-relative path is sent to the builder,
//! exactly as BuildKit does (moby/patternmatcher + fsutil), not as gitignore does.

/// A parse error in an ignore file; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct IgnoreError {
    pub line: usize,
    pub message: String,
}

/// The compiled patterns of one ignore file.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {}

impl IgnoreRules {
    /// Parses the text of an ignore file.
    pub fn parse(_text: &str) -> Result<Self, IgnoreError> {
        unimplemented!("dockerignore helper")
    }

    /// True when no pattern is present (everything is sent).
    pub fn is_empty(&self) -> bool {
        unimplemented!("dockerignore helper")
    }

    /// True when `path` (relative to the context root, `/`-separated, no leading `./`) is excluded.
    pub fn is_excluded(&self, _path: &str) -> bool {
        unimplemented!("dockerignore helper")
    }
}

/// Which ignore file applies to a build, relative to the repository: BuildKit's
/// `<dockerfile>.dockerignore` beside the Dockerfile when it exists, else `<context>/.dockerignore`.
/// `exists` answers whether a repository-relative path exists.
pub fn ignore_file_for(
    context: &str,
    dockerfile: &str,
    exists: &dyn Fn(&str) -> bool,
) -> Option<String> {
    let specific = format!("{dockerfile}.dockerignore");
    if exists(&specific) {
        return Some(specific);
    }
    let root = if context.is_empty() || context == "." {
        ".dockerignore".to_string()
    } else {
        format!("{context}/.dockerignore")
    };
    exists(&root).then_some(root)
}
