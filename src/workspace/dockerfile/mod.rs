//! Dockerfile parsing (STUB: the parser helper replaces this file and adds siblings).
//!
//! Owns: turning Dockerfile text into instructions with line numbers, and the semantic questions
//! the planner asks of a Dockerfile (stages, which external images it references after ARG
//! expansion). Owns no I/O: callers pass the text and the file name for errors.

use std::collections::BTreeMap;

/// How a Dockerfile refers to an image outside itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    /// `FROM <image>`
    From,
    /// `COPY --from=<image>` (or `ADD --from`)
    CopyFrom,
    /// `RUN --mount=...,from=<image>`
    MountFrom,
}

/// An external image reference, with ARGs already expanded and stage names already excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub kind: RefKind,
    /// The reference as written after expansion, e.g. `registry:5000/team/base:1.2` or `core`.
    pub reference: String,
    /// 1-based line of the instruction.
    pub line: usize,
}

/// A parse error; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {}

impl Dockerfile {
    /// Parses Dockerfile text. Never panics; malformed input is a `ParseError` with a line number.
    pub fn parse(_text: &str) -> Result<Self, ParseError> {
        unimplemented!("parser helper")
    }

    /// Names of the stages (`FROM ... AS name`), in order; unnamed stages are absent.
    pub fn stage_names(&self) -> Vec<String> {
        unimplemented!("parser helper")
    }

    /// The external images this Dockerfile needs when built with `build_args` (and optionally only
    /// up to `target`), after expanding ARGs declared before the first FROM. `scratch` and stage
    /// references are excluded.
    pub fn external_refs(
        &self,
        _build_args: &BTreeMap<String, String>,
        _target: Option<&str>,
    ) -> Result<Vec<ImageRef>, ParseError> {
        unimplemented!("parser helper")
    }
}
