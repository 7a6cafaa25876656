//! Which Dockerfile line made each layer of an image buildopt built.
//!
//! At build time the run records the instructions of the stage chain the image was built
//! from ([`BuildOrigin`]), keyed by the image's id, in the scan cache (which lives in the
//! layer store, so reused and restored images keep it). At scan time the image config's
//! history, one entry per instruction, is lined up with those instructions from the newest
//! end; the entries before them are the base image's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::image::ImageConfig;
use super::model::DockerfileLine;
use crate::workspace::dockerfile::{Dockerfile, ParseError, RefKind, Stage};

/// What a build knew about the image it made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildOrigin {
    /// The Dockerfile, from the workspace root.
    pub dockerfile: String,
    /// The external image the chain starts from (`None` for `scratch`).
    pub base_image: Option<String>,
    /// The line of the `FROM` the chain starts from, where base-image findings are shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_line: Option<u32>,
    /// The instructions after each FROM of the chain, in build order.
    pub steps: Vec<Step>,
}

/// One instruction of the built stage chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// `RUN`, `COPY`, ...
    pub keyword: String,
    pub line: u32,
    /// The stage it belongs to, when named; for `COPY --from=<stage>`, that stage.
    pub stage: Option<String>,
}

/// What made one layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerOrigin {
    pub dockerfile: Option<DockerfileLine>,
    pub base_image: Option<String>,
    pub created_by: Option<String>,
}

impl BuildOrigin {
    /// The origin of an image built from `dockerfile` (at `path` in the workspace) up to
    /// `target` (else its last stage), with `build_args` expanding its FROM lines.
    pub fn of_build(
        path: &str,
        dockerfile: &Dockerfile,
        target: Option<&str>,
        build_args: &BTreeMap<String, String>,
    ) -> Result<Self, ParseError> {
        let stages = dockerfile.stages();
        let by_name = |name: &str| {
            let name = name.to_ascii_lowercase();
            stages
                .iter()
                .position(|s| s.name.as_deref() == Some(name.as_str()))
        };
        let mut index = match target {
            Some(target) => by_name(target),
            None => stages.len().checked_sub(1),
        };
        let mut chain = Vec::new();
        while let Some(i) = index {
            if chain.contains(&i) {
                break;
            }
            chain.push(i);
            index = by_name(&stages[i].base).filter(|&base| base < i);
        }
        chain.reverse();
        let base_image = match chain.first() {
            Some(&root) => base_of(dockerfile, &stages[root], target, build_args)?,
            None => None,
        };
        let steps = chain
            .iter()
            .flat_map(|&i| {
                let stage = &stages[i];
                dockerfile
                    .stage_instructions(stage)
                    .iter()
                    .skip(1)
                    .map(move |instruction| Step {
                        keyword: instruction.keyword.as_str().to_ascii_uppercase(),
                        line: instruction.start_line as u32,
                        stage: instruction
                            .flag_value("from")
                            .map(str::to_owned)
                            .or_else(|| stage.name.clone()),
                    })
            })
            .collect();
        Ok(Self {
            dockerfile: path.to_owned(),
            base_image,
            from_line: chain.first().map(|&root| stages[root].line as u32),
            steps,
        })
    }
}

/// The external image the stage `root` starts from, its ARGs expanded; `None` for `scratch`.
/// Asked of the stage itself when it is named: the references of the whole build list an image
/// once, at its first FROM, which may be an earlier stage's.
fn base_of(
    dockerfile: &Dockerfile,
    root: &Stage,
    target: Option<&str>,
    build_args: &BTreeMap<String, String>,
) -> Result<Option<String>, ParseError> {
    let refs = dockerfile.external_refs(build_args, root.name.as_deref().or(target))?;
    let from_root = refs
        .iter()
        .find(|r| r.kind == RefKind::From && r.line == root.line);
    let first_from = refs.iter().find(|r| r.kind == RefKind::From);
    Ok(from_root.or(first_from).map(|r| r.reference.clone()))
}

/// The origin of each layer of an image with `config`, given the build's record when there
/// is one. Without a record every layer is of unknown origin (`dockerfile: null`).
pub fn layer_origins(config: &ImageConfig, build: Option<&BuildOrigin>) -> Vec<LayerOrigin> {
    let layers = config.rootfs.diff_ids.len();
    let history = config.layer_history();
    let created_by = |i: usize| -> Option<String> {
        (history.len() == layers)
            .then(|| history[i].created_by.clone())
            .flatten()
    };
    let mut origins: Vec<LayerOrigin> = (0..layers)
        .map(|i| LayerOrigin {
            created_by: created_by(i),
            ..LayerOrigin::default()
        })
        .collect();
    let Some(build) = build else {
        return origins;
    };
    let Some(by_entry) = line_up(config, build) else {
        return origins;
    };
    // Each history entry that made a layer is the next diff ID.
    let mut layer = 0;
    for (entry, step) in config.history.iter().zip(by_entry) {
        if entry.empty_layer {
            continue;
        }
        let Some(origin) = origins.get_mut(layer) else {
            break;
        };
        match step {
            Some(step) => {
                origin.dockerfile = Some(DockerfileLine {
                    path: build.dockerfile.clone(),
                    line: step.line,
                    stage: step.stage.clone(),
                });
            }
            None => origin.base_image = build.base_image.clone(),
        }
        layer += 1;
    }
    origins
}

/// For each history entry, the step that made it (`None`: the base image's), or `None` when
/// the history does not line up with the steps: then no line is claimed.
///
/// Lined up from the newest end by keyword. A history entry that made no layer and matches no
/// step is skipped (the classic builder adds one for the build's `--label`s); a step that
/// makes no layer and has no entry is skipped (BuildKit writes none for some `ARG`s). A layer
/// entry that matches no step ends the match: no line is claimed for that image.
fn line_up<'a>(config: &ImageConfig, build: &'a BuildOrigin) -> Option<Vec<Option<&'a Step>>> {
    let history = &config.history;
    if config.layer_history().len() != config.rootfs.diff_ids.len() {
        return None;
    }
    let mut paired: Vec<Option<&Step>> = vec![None; history.len()];
    let mut steps = build.steps.iter().rev().peekable();
    let mut entries = history.iter().enumerate().rev().peekable();
    while let (Some(&(index, entry)), Some(&step)) = (entries.peek(), steps.peek()) {
        if keyword_of(entry.created_by.as_deref()) == Some(step.keyword.as_str()) {
            paired[index] = Some(step);
            entries.next();
            steps.next();
        } else if entry.empty_layer {
            entries.next();
        } else if !makes_layer(&step.keyword) {
            steps.next();
        } else {
            return None;
        }
    }
    // Steps left over that make layers: the history is not this build's.
    if steps.any(|step| makes_layer(&step.keyword)) {
        return None;
    }
    Some(paired)
}

/// Instructions that may add a layer (an unchanged `RUN` may add none).
fn makes_layer(keyword: &str) -> bool {
    matches!(keyword, "RUN" | "COPY" | "ADD" | "WORKDIR")
}

/// The instruction keyword of a history entry: BuildKit writes `RUN /bin/sh -c ... #
/// buildkit`, `COPY src dst # buildkit`, `WORKDIR /app`; the classic builder wrote
/// `/bin/sh -c #(nop) COPY ...` and a bare `/bin/sh -c ...` for RUN.
fn keyword_of(created_by: Option<&str>) -> Option<&str> {
    let text = created_by?.trim();
    if let Some(rest) = text.strip_prefix("/bin/sh -c #(nop)") {
        return rest.split_whitespace().next();
    }
    if text.starts_with("/bin/sh -c") {
        return Some("RUN");
    }
    let word = text.split_whitespace().next()?;
    word.bytes().all(|b| b.is_ascii_uppercase()).then_some(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::digest::Digest;
    use crate::scan::image::{History, RootFs};

    const DOCKERFILE: &str = "\
ARG BASE=debian:bookworm
FROM golang AS builder
RUN make

FROM ${BASE}
ENV A=1
RUN apt-get install -y curl
COPY --from=builder /out /usr/bin/tool
WORKDIR /app
COPY . .
";

    fn origin() -> BuildOrigin {
        let dockerfile = Dockerfile::parse(DOCKERFILE).unwrap();
        BuildOrigin::of_build("svc/Dockerfile", &dockerfile, None, &BTreeMap::new()).unwrap()
    }

    fn entry(created_by: &str, empty: bool) -> History {
        History {
            created_by: Some(created_by.into()),
            empty_layer: empty,
        }
    }

    fn config(history: Vec<History>) -> ImageConfig {
        let layers = history.iter().filter(|h| !h.empty_layer).count();
        ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
            rootfs: RootFs {
                diff_ids: (0..layers).map(|i| Digest::of(&[i as u8])).collect(),
            },
            history,
        }
    }

    #[test]
    fn the_build_records_the_final_stage_chain_and_its_base() {
        let origin = origin();
        assert_eq!(origin.base_image.as_deref(), Some("debian:bookworm"));
        let steps: Vec<_> = origin
            .steps
            .iter()
            .map(|s| (s.keyword.as_str(), s.line, s.stage.as_deref()))
            .collect();
        assert_eq!(
            steps,
            [
                ("ENV", 6, None),
                ("RUN", 7, None),
                ("COPY", 8, Some("builder")),
                ("WORKDIR", 9, None),
                ("COPY", 10, None)
            ]
        );
    }

    #[test]
    fn history_lines_up_with_the_steps_and_the_rest_is_the_base() {
        let config = config(vec![
            entry("/bin/sh -c #(nop) ADD file:abc in / ", false),
            entry("/bin/sh -c #(nop)  CMD [\"bash\"]", true),
            entry("ENV A=1", true),
            entry("RUN /bin/sh -c apt-get install -y curl # buildkit", false),
            entry("COPY /out /usr/bin/tool # buildkit", false),
            entry("WORKDIR /app", false),
            entry("COPY . . # buildkit", false),
        ]);
        let origins = layer_origins(&config, Some(&origin()));
        assert_eq!(origins.len(), 5);
        assert_eq!(origins[0].base_image.as_deref(), Some("debian:bookworm"));
        assert!(origins[0].dockerfile.is_none());
        let lines: Vec<_> = origins[1..]
            .iter()
            .map(|o| o.dockerfile.as_ref().unwrap().line)
            .collect();
        assert_eq!(lines, [7, 8, 9, 10]);
        assert_eq!(
            origins[2].dockerfile.as_ref().unwrap().stage.as_deref(),
            Some("builder")
        );
        assert_eq!(
            origins[1].created_by.as_deref(),
            Some("RUN /bin/sh -c apt-get install -y curl # buildkit")
        );
    }

    #[test]
    fn label_entries_of_the_classic_builder_are_skipped() {
        let config = config(vec![
            entry("/bin/sh -c #(nop) ADD file:abc in / ", false),
            entry("/bin/sh -c #(nop)  ENV A=1", true),
            entry("/bin/sh -c apt-get install -y curl", false),
            entry("/bin/sh -c #(nop) COPY dir:abc in /usr/bin/tool ", false),
            entry("/bin/sh -c #(nop) WORKDIR /app", false),
            entry("/bin/sh -c #(nop) COPY dir:def in . ", false),
            entry("/bin/sh -c #(nop)  LABEL buildopt.inputs-digest=abc", true),
        ]);
        let origins = layer_origins(&config, Some(&origin()));
        let lines: Vec<_> = origins
            .iter()
            .map(|o| o.dockerfile.as_ref().map(|d| d.line))
            .collect();
        assert_eq!(lines, [None, Some(7), Some(8), Some(9), Some(10)]);
        assert_eq!(origins[0].base_image.as_deref(), Some("debian:bookworm"));
    }

    #[test]
    fn the_base_is_found_when_an_earlier_stage_has_the_same_from() {
        let text = "FROM debian:bookworm AS tools\nRUN true\n\nFROM debian:bookworm\nRUN x\n";
        let dockerfile = Dockerfile::parse(text).unwrap();
        let origin =
            BuildOrigin::of_build("Dockerfile", &dockerfile, None, &BTreeMap::new()).unwrap();
        assert_eq!(origin.base_image.as_deref(), Some("debian:bookworm"));
        assert_eq!(origin.steps.len(), 1);
    }

    #[test]
    fn a_history_that_does_not_line_up_claims_no_line() {
        let config = config(vec![
            entry("ADD file in /", false),
            entry("RUN something else # buildkit", false),
        ]);
        let origins = layer_origins(&config, Some(&origin()));
        assert!(origins.iter().all(|o| o.dockerfile.is_none()));
        let without_record = layer_origins(&config, None);
        assert!(
            without_record
                .iter()
                .all(|o| o.dockerfile.is_none() && o.base_image.is_none())
        );
    }

    #[test]
    fn keywords_are_read_from_both_builders() {
        assert_eq!(keyword_of(Some("/bin/sh -c apt-get update")), Some("RUN"));
        assert_eq!(keyword_of(Some("/bin/sh -c #(nop) COPY a b")), Some("COPY"));
        assert_eq!(keyword_of(Some("WORKDIR /x")), Some("WORKDIR"));
        assert_eq!(keyword_of(Some("Imported from -")), None);
        assert_eq!(keyword_of(None), None);
    }
}
