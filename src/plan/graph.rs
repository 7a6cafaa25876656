//! The image graph: which images of the repository build from which.
//!
//! Owns: edges from `FROM`, `COPY --from`, `RUN --mount=from`, named contexts and `depends_on`;
//! cycle detection that prints the cycle; topological levels. Internal images are matched by
//! repository name whatever the tag; a digest-pinned reference is not an edge (it cannot change).

use std::collections::BTreeMap;

use crate::workspace::dockerfile::RefKind;
use crate::workspace::{Image, NamedContext, repository_of};

/// Errors building the graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The images depend on each other in a loop.
    #[error("images depend on each other in a cycle: {}", cycle.join(" -> "))]
    Cycle { cycle: Vec<String> },
    /// A Dockerfile's references could not be resolved (bad `--target`, bad ARG expansion).
    #[error("{file}:{line}: {message}")]
    Dockerfile {
        file: String,
        line: usize,
        message: String,
    },
}

/// Why one image needs another.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Edge {
    /// The image built first.
    pub parent: String,
    /// How the child refers to it: `from`, `copy_from`, `mount_from`, `context`, `depends_on`.
    pub via: &'static str,
    /// The Dockerfile line, when the edge comes from the Dockerfile.
    pub line: Option<usize>,
}

/// The images (by index, in workspace order) and their parents.
#[derive(Debug, Clone)]
pub struct Graph {
    pub names: Vec<String>,
    /// For each image, the edges to its parents, deduplicated by parent.
    pub parents: Vec<Vec<Edge>>,
    /// The same parents as indices into `names`.
    pub parent_ids: Vec<Vec<usize>>,
    /// Things worth telling the user, such as digest-pinned internal images.
    pub notes: Vec<String>,
}

impl Graph {
    /// Builds the graph of `images`.
    pub fn build(images: &[Image]) -> Result<Self, GraphError> {
        let lookup = Lookup::new(images);
        let mut notes = Vec::new();
        let parents = images
            .iter()
            .map(|image| image_edges(image, &lookup, &mut notes))
            .collect::<Result<Vec<_>, _>>()?;
        let names: Vec<String> = images.iter().map(|i| i.def.name.clone()).collect();
        let ids: BTreeMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let parent_ids = parents
            .iter()
            .map(|edges: &Vec<Edge>| {
                edges
                    .iter()
                    .filter_map(|e| ids.get(e.parent.as_str()).copied())
                    .collect()
            })
            .collect();
        let graph = Self {
            names,
            parents,
            parent_ids,
            notes,
        };
        graph.levels()?;
        Ok(graph)
    }

    /// Each image's level: 0 for images with no internal parent, else one more than its deepest
    /// parent. Images of one level can build in parallel.
    pub fn levels(&self) -> Result<Vec<usize>, GraphError> {
        let mut level: Vec<Option<usize>> = vec![None; self.names.len()];
        let mut state = vec![Visit::New; self.names.len()];
        for start in 0..self.names.len() {
            let mut stack = Vec::new();
            self.visit(start, &mut state, &mut level, &mut stack)?;
        }
        Ok(level.into_iter().map(|l| l.unwrap_or(0)).collect())
    }

    fn visit(
        &self,
        node: usize,
        state: &mut [Visit],
        level: &mut [Option<usize>],
        stack: &mut Vec<usize>,
    ) -> Result<usize, GraphError> {
        match state[node] {
            Visit::Done => return Ok(level[node].unwrap_or(0)),
            Visit::Active => return Err(self.cycle_error(node, stack)),
            Visit::New => {}
        }
        state[node] = Visit::Active;
        stack.push(node);
        let mut deepest = None;
        for &parent in &self.parent_ids[node] {
            let parent_level = self.visit(parent, state, level, stack)?;
            deepest = Some(deepest.map_or(parent_level, |d: usize| d.max(parent_level)));
        }
        stack.pop();
        state[node] = Visit::Done;
        let mine = deepest.map_or(0, |d| d + 1);
        level[node] = Some(mine);
        Ok(mine)
    }

    fn cycle_error(&self, again: usize, stack: &[usize]) -> GraphError {
        let start = stack.iter().position(|&n| n == again).unwrap_or(0);
        // The stack runs child → parent; print it in build order (parent first) and close the loop.
        let mut cycle: Vec<String> = stack[start..]
            .iter()
            .rev()
            .map(|&n| self.names[n].clone())
            .collect();
        cycle.push(cycle[0].clone());
        GraphError::Cycle { cycle }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    Active,
    Done,
}

/// Finds internal images by repository or name.
struct Lookup<'a> {
    by_repository: BTreeMap<&'a str, &'a str>,
}

impl<'a> Lookup<'a> {
    fn new(images: &'a [Image]) -> Self {
        let mut by_repository = BTreeMap::new();
        for image in images {
            by_repository.insert(image.def.name.as_str(), image.def.name.as_str());
        }
        // A declared repository wins over another image's bare name.
        for image in images {
            by_repository.insert(image.def.repository.as_str(), image.def.name.as_str());
        }
        Self { by_repository }
    }

    fn find(&self, reference: &str) -> Option<&'a str> {
        self.by_repository
            .get(repository_of(reference).as_str())
            .copied()
    }
}

fn image_edges(
    image: &Image,
    lookup: &Lookup<'_>,
    notes: &mut Vec<String>,
) -> Result<Vec<Edge>, GraphError> {
    let def = &image.def;
    let mut edges: Vec<Edge> = Vec::new();
    let mut add = |edge: Edge| {
        if edge.parent != def.name && !edges.iter().any(|e| e.parent == edge.parent) {
            edges.push(edge);
        }
    };
    let refs = image
        .dockerfile
        .external_refs(&def.args, def.target.as_deref())
        .map_err(|err| GraphError::Dockerfile {
            file: def.dockerfile.clone(),
            line: err.line,
            message: err.message,
        })?;
    for image_ref in refs {
        let via = match image_ref.kind {
            RefKind::From => "from",
            RefKind::CopyFrom => "copy_from",
            RefKind::MountFrom => "mount_from",
        };
        // A named context of the same name replaces the reference (BuildKit's --build-context).
        let reference = match def.contexts.get(&image_ref.reference) {
            Some(NamedContext::Sibling(name)) => {
                add(Edge {
                    parent: name.clone(),
                    via: "context",
                    line: Some(image_ref.line),
                });
                continue;
            }
            Some(NamedContext::Image(reference)) => reference.clone(),
            Some(NamedContext::Local(_) | NamedContext::Remote(_)) => continue,
            None => image_ref.reference.clone(),
        };
        if let Some(parent) = lookup.find(&reference) {
            if reference.contains('@') {
                notes.push(format!(
                    "{}:{}: '{reference}' pins internal image '{parent}' by digest; it is not rebuilt with it",
                    def.dockerfile, image_ref.line
                ));
                continue;
            }
            add(Edge {
                parent: parent.to_string(),
                via,
                line: Some(image_ref.line),
            });
        }
    }
    for context in def.contexts.values() {
        if let NamedContext::Sibling(name) = context {
            add(Edge {
                parent: name.clone(),
                via: "context",
                line: None,
            });
        }
    }
    for name in &def.depends_on {
        add(Edge {
            parent: name.clone(),
            via: "depends_on",
            line: None,
        });
    }
    Ok(edges)
}
