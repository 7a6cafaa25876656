//! The repository's images: discovery, Dockerfiles, ignore files and contexts.
//!
//! Owns: turning one commit's files ([`Snapshot`]) into the list of images with their parsed
//! Dockerfiles and ignore rules. Images come from `buildopt.toml` when it defines any, else from a
//! compose file's `build:` sections, else from every `Dockerfile`, `Dockerfile.*` and
//! `*.Dockerfile`. Knows nothing of git history or of what changed.

pub mod compose;
pub mod context;
pub mod dockerfile;
pub mod dockerignore;
mod glob;
mod image;
pub mod paths;
mod snapshot;

use std::collections::BTreeMap;
use std::path::Path;

pub use image::{ImageDef, NamedContext, Origin};
#[cfg(test)]
pub(crate) use snapshot::fake;
pub use snapshot::{BlobSource, Listing, Snapshot};

use crate::git::GitError;
use crate::settings::file::{self as config_file, ImageOptions, Platform};
use dockerfile::Dockerfile;
use dockerignore::IgnoreRules;

/// Why the repository's build definitions could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// `buildopt.toml` is invalid.
    #[error(transparent)]
    Config(#[from] config_file::FileError),
    /// A compose file is invalid.
    #[error("{file}{}: {source}", source.line.map(|l| format!(":{l}")).unwrap_or_default())]
    Compose {
        file: String,
        source: compose::ComposeError,
    },
    /// A Dockerfile could not be parsed.
    #[error("{file}:{}", source)]
    Dockerfile {
        file: String,
        source: dockerfile::ParseError,
    },
    /// An ignore file could not be parsed.
    #[error("{file}:{}", source)]
    Ignore {
        file: String,
        source: dockerignore::IgnoreError,
    },
    /// A Dockerfile named by a definition does not exist at this commit.
    #[error("image '{image}': Dockerfile {file} does not exist")]
    MissingDockerfile { image: String, file: String },
    /// A path in a definition is unusable.
    #[error("{file}: image '{image}': {message}")]
    BadPath {
        file: String,
        image: String,
        message: String,
    },
    /// Two images got the same name.
    #[error("two images are named '{name}': {first} and {second}; name them in buildopt.toml")]
    NameClash {
        name: String,
        first: String,
        second: String,
    },
    /// A definition refers to an image that does not exist.
    #[error("image '{image}' depends on '{missing}', which is not an image of this repository")]
    UnknownDependency { image: String, missing: String },
    /// Reading from git failed.
    #[error(transparent)]
    Git(#[from] GitError),
}

/// One image with what the planner needs of it, parsed.
#[derive(Debug, Clone)]
pub struct Image {
    pub def: ImageDef,
    pub dockerfile: Dockerfile,
    /// The ignore file that applies (repository-relative), if any.
    pub ignore_file: Option<String>,
    pub ignore: IgnoreRules,
    /// The root `.dockerignore` of each local named context, by context name.
    pub context_ignores: BTreeMap<String, (Option<String>, IgnoreRules)>,
}

/// The images of a repository at one commit.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The folder (repository-relative) that holds the definitions.
    pub root: String,
    /// The files that define images (`buildopt.toml`, a compose file), repository-relative.
    pub definition_files: Vec<String>,
    /// Patterns (`.dockerignore` syntax, repository-relative) whose change affects every image.
    pub global_inputs: Vec<String>,
    pub images: Vec<Image>,
}

/// Where to look: the workspace folder and an explicit configuration file, both
/// repository-relative.
#[derive(Debug, Clone, Default)]
pub struct Location {
    pub root: String,
    pub config: Option<String>,
    /// The platforms the environment gives every image that names none of its own
    /// (`BUILDOPT_PLATFORMS`); empty leaves it to the commit's `buildopt.toml` (top-level
    /// `platforms`), so the base and the head commit each use their own.
    pub platforms: Vec<String>,
}

/// What defines the images at one commit, before any Dockerfile is read.
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    /// The files that define images (`buildopt.toml`, a compose file), repository-relative.
    pub files: Vec<String>,
    /// Global input patterns, repository-relative.
    pub global_inputs: Vec<String>,
    pub images: Vec<ImageDef>,
}

/// Whether a path is probably a Dockerfile or an ignore file, which [`load`] reads right after
/// the definitions: read in the same batch, they save a git process.
fn looks_like_build_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "Dockerfile"
        || name.starts_with("Dockerfile.")
        || name.ends_with(".Dockerfile")
        || name.ends_with(".dockerignore")
}

/// The image definitions at a commit, without parsing Dockerfiles (used to compare with the base).
pub fn definitions(snapshot: &Snapshot<'_>, at: &Location) -> Result<Definitions, WorkspaceError> {
    let (mut found, file_platforms) = definitions_as_written(snapshot, at)?;
    let defaults = if at.platforms.is_empty() {
        file_platforms
    } else {
        at.platforms.clone()
    };
    for def in found
        .images
        .iter_mut()
        .filter(|def| def.platforms.is_empty())
    {
        def.platforms.clone_from(&defaults);
    }
    Ok(found)
}

/// [`definitions`] before the default platforms are applied, and the configuration's top-level
/// `platforms`.
fn definitions_as_written(
    snapshot: &Snapshot<'_>,
    at: &Location,
) -> Result<(Definitions, Vec<String>), WorkspaceError> {
    let config_path = at
        .config
        .clone()
        .unwrap_or_else(|| paths::join(&at.root, "buildopt.toml").unwrap_or_default());
    let compose_paths: Vec<String> = compose::COMPOSE_FILES
        .iter()
        .filter_map(|f| paths::join(&at.root, f))
        .collect();
    let mut wanted: Vec<&str> = vec![config_path.as_str()];
    wanted.extend(compose_paths.iter().map(String::as_str));
    let mut contents = snapshot
        .read_many_and(&wanted, looks_like_build_file)?
        .into_iter();

    let config = match contents.next().flatten() {
        Some(bytes) => Some(config_file::parse_bytes(&bytes, Path::new(&config_path))?),
        None => None,
    };
    let config_dir = paths::parent(&config_path).to_string();
    let options = config.clone().unwrap_or_default();
    let global_inputs = join_patterns(&config_dir, options.inputs.as_deref().unwrap_or_default());
    let file_platforms = Platform::names(options.platforms.as_deref());
    let mut definition_files = Vec::new();
    if config.is_some() {
        definition_files.push(config_path.clone());
    }
    if let Some(images) = options.images.as_ref().filter(|images| !images.is_empty()) {
        let images = config_images(images, &config_dir, &config_path)?;
        let found = Definitions {
            files: definition_files,
            global_inputs,
            images,
        };
        return Ok((found, file_platforms));
    }
    for (path, bytes) in compose_paths.iter().zip(contents) {
        if let Some(bytes) = bytes {
            let defs =
                compose::parse(&String::from_utf8_lossy(&bytes), path).map_err(|source| {
                    WorkspaceError::Compose {
                        file: path.clone(),
                        source,
                    }
                })?;
            definition_files.push(path.clone());
            if !defs.is_empty() {
                let found = Definitions {
                    files: definition_files,
                    global_inputs,
                    images: defs,
                };
                return Ok((found, file_platforms));
            }
        }
    }
    let images = dockerfile_images(snapshot, &at.root)?;
    let found = Definitions {
        files: definition_files,
        global_inputs,
        images,
    };
    Ok((found, file_platforms))
}

/// Discovers and parses every image at a commit.
pub fn load(snapshot: &Snapshot<'_>, at: &Location) -> Result<Workspace, WorkspaceError> {
    let found = definitions(snapshot, at)?;
    check_unique(&found.images)?;
    check_dependencies(&found.images)?;
    let images = parse_images(snapshot, found.images)?;
    Ok(Workspace {
        root: at.root.clone(),
        definition_files: found.files,
        global_inputs: found.global_inputs,
        images,
    })
}

fn config_images(
    images: &BTreeMap<String, ImageOptions>,
    dir: &str,
    file: &str,
) -> Result<Vec<ImageDef>, WorkspaceError> {
    images
        .iter()
        .map(|(name, options)| config_image(name, options, dir, file))
        .collect()
}

fn config_image(
    name: &str,
    options: &ImageOptions,
    dir: &str,
    file: &str,
) -> Result<ImageDef, WorkspaceError> {
    let bad = |message: String| WorkspaceError::BadPath {
        file: file.to_string(),
        image: name.to_string(),
        message,
    };
    let context_rel = options.context.as_deref().unwrap_or(".");
    let context = paths::join(dir, context_rel)
        .ok_or_else(|| bad(format!("context {context_rel:?} leaves the repository")))?;
    let dockerfile = match &options.dockerfile {
        Some(rel) => paths::join(dir, rel)
            .ok_or_else(|| bad(format!("dockerfile {rel:?} leaves the repository")))?,
        None => paths::join(&context, "Dockerfile").unwrap_or_default(),
    };
    let mut contexts = BTreeMap::new();
    for (key, raw) in options.contexts.iter().flatten() {
        let context = named_context(raw, dir)
            .ok_or_else(|| bad(format!("context {key}={raw:?} leaves the repository")))?;
        contexts.insert(key.clone(), context);
    }
    Ok(ImageDef {
        name: name.to_string(),
        repository: options
            .image
            .as_deref()
            .map_or_else(|| name.to_string(), repository_of),
        context,
        dockerfile,
        target: options.target.clone(),
        args: options.args.clone().unwrap_or_default(),
        tags: options.tags.clone().unwrap_or_default(),
        platforms: Platform::names(options.platforms.as_deref()),
        inputs: join_patterns(dir, options.inputs.as_deref().unwrap_or_default()),
        depends_on: options.depends_on.clone().unwrap_or_default(),
        contexts,
        origin: Origin::Config(file.to_string()),
    })
}

/// Makes patterns relative to `dir` repository-relative, keeping a leading `!`.
fn join_patterns(dir: &str, patterns: &[String]) -> Vec<String> {
    patterns
        .iter()
        .map(|pattern| {
            let (bang, body) = pattern
                .strip_prefix('!')
                .map_or(("", pattern.as_str()), |rest| ("!", rest));
            let body = body.trim_start_matches('/');
            if dir.is_empty() {
                format!("{bang}{body}")
            } else {
                format!("{bang}{dir}/{body}")
            }
        })
        .collect()
}

/// Reads a named-context value: a folder (relative to `dir`), `docker-image://`, `target:`,
/// `service:`, or a URL.
pub fn named_context(raw: &str, dir: &str) -> Option<NamedContext> {
    if let Some(reference) = raw.strip_prefix("docker-image://") {
        return Some(NamedContext::Image(reference.to_string()));
    }
    if let Some(name) = raw
        .strip_prefix("target:")
        .or_else(|| raw.strip_prefix("service:"))
    {
        return Some(NamedContext::Sibling(name.to_string()));
    }
    if raw.contains("://") || raw.starts_with("git@") {
        return Some(NamedContext::Remote(raw.to_string()));
    }
    paths::join(dir, raw).map(NamedContext::Local)
}

/// The repository part of an image reference: without `@digest` and without `:tag`.
pub fn repository_of(reference: &str) -> String {
    let without_digest = reference
        .split_once('@')
        .map_or(reference, |(repo, _)| repo);
    match without_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
        _ => without_digest.to_string(),
    }
}

/// Every `Dockerfile`, `Dockerfile.*` and `*.Dockerfile` below `root`, each its own image whose
/// context is its folder.
fn dockerfile_images(snapshot: &Snapshot<'_>, root: &str) -> Result<Vec<ImageDef>, WorkspaceError> {
    let mut images = Vec::new();
    for entry in snapshot.under(root) {
        if let Some(name) = image_name_for(&entry.path, root) {
            let context = paths::parent(&entry.path).to_string();
            images.push(ImageDef {
                repository: name.clone(),
                name,
                context,
                dockerfile: entry.path.clone(),
                target: None,
                args: BTreeMap::new(),
                tags: Vec::new(),
                platforms: Vec::new(),
                inputs: Vec::new(),
                depends_on: Vec::new(),
                contexts: BTreeMap::new(),
                origin: Origin::Dockerfile,
            });
        }
    }
    Ok(images)
}

/// The image name a discovered Dockerfile gets: its folder's name for `Dockerfile`,
/// `<folder>-<suffix>` for `Dockerfile.<suffix>`, `<stem>` for `<stem>.Dockerfile`.
/// `None` when the file is not a Dockerfile (ignore files such as `Dockerfile.dockerignore` are not).
pub fn image_name_for(path: &str, root: &str) -> Option<String> {
    let file = paths::file_name(path);
    if file.ends_with(".dockerignore") {
        return None;
    }
    let folder = || {
        let dir = paths::parent(path);
        let name = if dir == root || dir.is_empty() {
            paths::file_name(root)
        } else {
            paths::file_name(dir)
        };
        if name.is_empty() {
            "root".to_string()
        } else {
            name.to_string()
        }
    };
    if file == "Dockerfile" {
        return Some(folder());
    }
    if let Some(suffix) = file.strip_prefix("Dockerfile.").filter(|s| !s.is_empty()) {
        return Some(format!("{}-{suffix}", folder()));
    }
    file.strip_suffix(".Dockerfile")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn check_unique(defs: &[ImageDef]) -> Result<(), WorkspaceError> {
    let mut seen: BTreeMap<&str, &ImageDef> = BTreeMap::new();
    for def in defs {
        if let Some(first) = seen.insert(&def.name, def) {
            return Err(WorkspaceError::NameClash {
                name: def.name.clone(),
                first: first.dockerfile.clone(),
                second: def.dockerfile.clone(),
            });
        }
    }
    Ok(())
}

fn check_dependencies(defs: &[ImageDef]) -> Result<(), WorkspaceError> {
    let known = |name: &str| defs.iter().any(|d| d.name == name);
    for def in defs {
        let siblings = def.contexts.values().filter_map(|c| match c {
            NamedContext::Sibling(name) => Some(name),
            _ => None,
        });
        if let Some(missing) = def
            .depends_on
            .iter()
            .chain(siblings)
            .find(|name| !known(name))
        {
            return Err(WorkspaceError::UnknownDependency {
                image: def.name.clone(),
                missing: missing.clone(),
            });
        }
    }
    Ok(())
}

/// Reads and parses every Dockerfile and ignore file in one batch.
fn parse_images(
    snapshot: &Snapshot<'_>,
    defs: Vec<ImageDef>,
) -> Result<Vec<Image>, WorkspaceError> {
    let exists = |path: &str| snapshot.exists(path);
    let plans: Vec<ImagePaths> = defs
        .iter()
        .map(|def| ImagePaths::of(def, &exists))
        .collect();
    let wanted: Vec<&str> = plans.iter().flat_map(ImagePaths::files).collect();
    let mut contents = snapshot.read_many(&wanted)?.into_iter();
    defs.into_iter()
        .zip(plans)
        .map(|(def, paths)| {
            let dockerfile_text = contents.next().flatten();
            let ignore_text = paths.ignore.as_ref().map(|_| contents.next().flatten());
            let context_texts: Vec<Option<Vec<u8>>> = paths
                .contexts
                .iter()
                .map(|(_, file)| file.as_ref().and_then(|_| contents.next().flatten()))
                .collect();
            let Some(dockerfile_text) = dockerfile_text else {
                return Err(WorkspaceError::MissingDockerfile {
                    image: def.name.clone(),
                    file: def.dockerfile.clone(),
                });
            };
            let dockerfile = Dockerfile::parse(&String::from_utf8_lossy(&dockerfile_text))
                .map_err(|source| WorkspaceError::Dockerfile {
                    file: def.dockerfile.clone(),
                    source,
                })?;
            let ignore = parse_ignore(paths.ignore.as_deref(), ignore_text.flatten())?;
            let mut context_ignores = BTreeMap::new();
            for ((name, file), text) in paths.contexts.into_iter().zip(context_texts) {
                let rules = parse_ignore(file.as_deref(), text)?;
                context_ignores.insert(name, (file, rules));
            }
            Ok(Image {
                def,
                dockerfile,
                ignore_file: paths.ignore,
                ignore,
                context_ignores,
            })
        })
        .collect()
}

fn parse_ignore(file: Option<&str>, text: Option<Vec<u8>>) -> Result<IgnoreRules, WorkspaceError> {
    match (file, text) {
        (Some(file), Some(text)) => {
            IgnoreRules::parse(&String::from_utf8_lossy(&text)).map_err(|source| {
                WorkspaceError::Ignore {
                    file: file.to_string(),
                    source,
                }
            })
        }
        _ => Ok(IgnoreRules::default()),
    }
}

/// The files to read for one image, in the order they are read.
struct ImagePaths {
    dockerfile: String,
    ignore: Option<String>,
    /// Local named contexts and their root `.dockerignore`, when one exists.
    contexts: Vec<(String, Option<String>)>,
}

impl ImagePaths {
    fn of(def: &ImageDef, exists: &dyn Fn(&str) -> bool) -> Self {
        let contexts = def
            .contexts
            .iter()
            .filter_map(|(name, context)| match context {
                NamedContext::Local(dir) => {
                    let file = paths::join(dir, ".dockerignore").filter(|f| exists(f));
                    Some((name.clone(), file))
                }
                _ => None,
            })
            .collect();
        Self {
            dockerfile: def.dockerfile.clone(),
            ignore: dockerignore::ignore_file_for(&def.context, &def.dockerfile, exists),
            contexts,
        }
    }

    fn files(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.dockerfile.as_str())
            .chain(self.ignore.as_deref())
            .chain(self.contexts.iter().filter_map(|(_, file)| file.as_deref()))
    }
}

#[cfg(test)]
mod tests;
