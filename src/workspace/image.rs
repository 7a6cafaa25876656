//! The definition of one image: where its inputs are and how it is built.

use std::collections::BTreeMap;

/// Where an image's definition came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "file")]
pub enum Origin {
    /// An `[images.NAME]` table of `buildopt.toml`.
    Config(String),
    /// A service with a `build:` section of a compose file.
    Compose(String),
    /// A Dockerfile found in the tree.
    Dockerfile,
}

/// A named build context (`--build-context NAME=...`, compose `additional_contexts`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum NamedContext {
    /// A folder of the repository (repository-relative).
    Local(String),
    /// `docker-image://REF`.
    Image(String),
    /// `target:NAME` or `service:NAME`: another image of this repository.
    Sibling(String),
    /// A URL (git, https): not an input buildopt can see.
    Remote(String),
}

/// One image, with every path relative to the repository root (`""` is the root itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageDef {
    pub name: String,
    /// The repository part of its references (`ghcr.io/acme/api`); FROM lines match on it.
    pub repository: String,
    pub context: String,
    pub dockerfile: String,
    pub target: Option<String>,
    pub args: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub platforms: Vec<String>,
    /// Extra input patterns, `.dockerignore` syntax, relative to the repository root.
    pub inputs: Vec<String>,
    pub depends_on: Vec<String>,
    pub contexts: BTreeMap<String, NamedContext>,
    pub origin: Origin,
}
