//! Dockerfile parsing with BuildKit's Dockerfile-frontend semantics.
//!
//! Owns: turning Dockerfile text into directives and instructions with line numbers, splitting them
//! into build stages, and the semantic questions the planner asks of a Dockerfile (stage names,
//! which external images a build needs after ARG expansion). Owns no I/O: callers pass the text.
//!
//! Layout: `lexer` (directives, continuations, comments, heredoc bodies) → `instruction`
//! (keyword, flags, exec/shell form) → this file (stages) → `resolve` (ARG/ENV expansion, stage vs
//! image references, `--target` reachability). `expand` holds the shell-word rules they share.
//!
//! Every error is a [`ParseError`] with a 1-based line; no input makes the parser panic.

mod expand;
mod instruction;
mod lexer;
mod resolve;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::ops::Range;

// ARG/ENV word expansion, public so that the fuzz tests (tests/integration/fuzz.rs) can drive
// it directly, as well as through `external_refs`.
pub use expand::{
    Budget, Env, ExpandError, MAX_FILE_BYTES, MAX_WORD_BYTES, Vars, expand_word, split_words,
};
pub use instruction::{Arguments, Flag, Heredoc, Instruction, KeyValue, Keyword};
pub use lexer::Directive;

/// How a Dockerfile refers to an image outside itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
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

/// A build stage: one FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stage {
    /// `AS name`, lower-cased (stage names are case-insensitive).
    pub name: Option<String>,
    /// The base image word as written (quotes and `$VARS` not yet processed).
    pub base: String,
    /// `--platform` as written, if given.
    pub platform: Option<String>,
    /// 1-based line of the FROM.
    pub line: usize,
    /// Indexes into [`Dockerfile::instructions`]; the first is the FROM itself.
    pub instructions: Range<usize>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    directives: Vec<Directive>,
    escape: char,
    instructions: Vec<Instruction>,
    stages: Vec<Stage>,
    /// Number of lines in the file (at least 1), the line of whole-file errors.
    last_line: usize,
}

impl Dockerfile {
    /// Parses Dockerfile text. Never panics; malformed input is a `ParseError` with a line number.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines: Vec<&str> = text.lines().collect();
        let directives = lexer::read_directives(&lines)?;
        let escape = lexer::escape_from(&directives)?;
        let instructions = read_instructions(&lines, escape)?;
        let last_line = lines.len().max(1);
        let stages = split_stages(&instructions, escape, last_line)?;
        validate_sources(&instructions)?;
        Ok(Dockerfile {
            directives,
            escape,
            instructions,
            stages,
            last_line,
        })
    }

    /// Names of the stages (`FROM ... AS name`), in order; unnamed stages are absent.
    pub fn stage_names(&self) -> Vec<String> {
        self.stages
            .iter()
            .filter_map(|stage| stage.name.clone())
            .collect()
    }

    /// The external images this Dockerfile needs when built with `build_args` (and optionally only
    /// up to `target`), after expanding ARGs declared before the first FROM (and, for `--from` and
    /// mount `from=`, the stage's own ARGs and ENVs). `scratch` and stage references are excluded.
    ///
    /// Without a target every stage counts (conservative: BuildKit would skip stages the last
    /// stage does not need). With a target, only that stage and the stages it reaches through
    /// FROM, `COPY/ADD --from` and `RUN --mount=from=` count. Refs come in file order, deduplicated
    /// by (kind, reference) keeping the first line.
    ///
    /// Errors: an unknown target (reported at the file's last line), a base image or `--from` that
    /// expands to nothing, a malformed substitution (`${X:?msg}` with X unset, unsupported
    /// modifier), a stage index out of range — each at the line of the instruction involved.
    pub fn external_refs(
        &self,
        build_args: &BTreeMap<String, String>,
        target: Option<&str>,
    ) -> Result<Vec<ImageRef>, ParseError> {
        resolve::external_refs(self, build_args, target)
    }

    /// The named stages the final stage (`target`, else the last) builds on, directly or not,
    /// in file order, without the final stage itself: what a build of the final stage also
    /// builds, and what can be built on its own with `--target`. Unnamed stages are left out
    /// (a target must be a name). Errors as [`Dockerfile::external_refs`].
    pub fn intermediate_stages(
        &self,
        build_args: &BTreeMap<String, String>,
        target: Option<&str>,
    ) -> Result<Vec<String>, ParseError> {
        resolve::intermediate_stages(self, build_args, target)
    }

    /// The parser directives at the top of the file, in order.
    pub fn directives(&self) -> &[Directive] {
        &self.directives
    }

    /// The escape character (`\`, or `` ` `` with `# escape=``).
    pub fn escape(&self) -> char {
        self.escape
    }

    /// All instructions in file order, global ARGs included.
    pub fn instructions(&self) -> &[Instruction] {
        &self.instructions
    }

    /// The build stages in order.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The instructions of one stage, starting with its FROM.
    pub fn stage_instructions(&self, stage: &Stage) -> &[Instruction] {
        self.instructions
            .get(stage.instructions.clone())
            .unwrap_or_default()
    }

    /// The ARG instructions before the first FROM (the only ones FROM lines can use).
    pub fn global_args(&self) -> &[Instruction] {
        let first_from = self
            .stages
            .first()
            .map_or(0, |stage| stage.instructions.start);
        self.instructions.get(..first_from).unwrap_or_default()
    }
}

fn read_instructions(lines: &[&str], escape: char) -> Result<Vec<Instruction>, ParseError> {
    let mut cursor = lexer::LineCursor::new(lines, escape);
    let mut instructions = Vec::new();
    while let Some(logical) = cursor.next_logical_line() {
        let mut instruction =
            instruction::parse_instruction(&logical.text, logical.start_line, escape)?;
        let mut end_line = logical.end_line;
        if let Some(host) = instruction.heredoc_host_mut() {
            end_line = attach_heredocs(host, &mut cursor, logical.start_line)?.unwrap_or(end_line);
        }
        set_end_line(&mut instruction, end_line);
        instructions.push(instruction);
    }
    Ok(instructions)
}

/// Reads the bodies of the heredocs `host` opens; returns the last body line, if any were read.
fn attach_heredocs(
    host: &mut Instruction,
    cursor: &mut lexer::LineCursor<'_>,
    start_line: usize,
) -> Result<Option<usize>, ParseError> {
    let Arguments::Shell(args) = &host.args else {
        return Ok(None);
    };
    let mut heredocs = lexer::heredoc_markers(args).map_err(|message| ParseError {
        line: start_line,
        message,
    })?;
    if heredocs.is_empty() {
        return Ok(None);
    }
    let end_line = cursor.read_heredoc_bodies(&mut heredocs, start_line)?;
    host.heredocs = heredocs;
    Ok(Some(end_line))
}

fn set_end_line(instruction: &mut Instruction, end_line: usize) {
    instruction.end_line = end_line;
    if let Some(trigger) = instruction.trigger.as_deref_mut() {
        trigger.end_line = end_line;
    }
}

/// Groups instructions into stages; only ARG may come before the first FROM.
fn split_stages(
    instructions: &[Instruction],
    escape: char,
    last_line: usize,
) -> Result<Vec<Stage>, ParseError> {
    let mut stages: Vec<Stage> = Vec::new();
    for (index, instruction) in instructions.iter().enumerate() {
        if instruction.keyword == Keyword::From {
            if let Some(previous) = stages.last_mut() {
                previous.instructions.end = index;
            }
            let stage = stage_from(instruction, index, escape)?;
            reject_duplicate_name(&stages, &stage)?;
            stages.push(stage);
        } else if stages.is_empty() && instruction.keyword != Keyword::Arg {
            return Err(ParseError {
                line: instruction.start_line,
                message: format!(
                    "{} before the first FROM: only ARG may precede FROM",
                    instruction.keyword.as_str()
                ),
            });
        }
    }
    if let Some(last) = stages.last_mut() {
        last.instructions.end = instructions.len();
    }
    if stages.is_empty() {
        return Err(ParseError {
            line: last_line,
            message: "no FROM instruction: a Dockerfile needs at least one build stage".into(),
        });
    }
    Ok(stages)
}

/// `FROM [--platform=p] image [AS name]` (argument counts already checked by the parser).
fn stage_from(from: &Instruction, index: usize, escape: char) -> Result<Stage, ParseError> {
    let error = |message: String| ParseError {
        line: from.start_line,
        message,
    };
    let words = from.words(escape);
    let (base, name) = match words.as_slice() {
        [base] => (base.clone(), None),
        [base, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
            (base.clone(), Some(valid_stage_name(name).map_err(error)?))
        }
        [_, other, _] => return Err(error(format!("expected AS in FROM, found {other:?}"))),
        _ => return Err(error("FROM requires an image: missing image name".into())),
    };
    Ok(Stage {
        name,
        base,
        platform: from.flag_value("platform").map(str::to_string),
        line: from.start_line,
        instructions: index..index + 1,
    })
}

/// Lower-cases a stage name and checks BuildKit's `^[a-z][a-z0-9-_.]*$`.
fn valid_stage_name(name: &str) -> Result<String, String> {
    let lower = name.to_ascii_lowercase();
    let valid = lower.starts_with(|c: char| c.is_ascii_lowercase())
        && lower
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if valid {
        Ok(lower)
    } else {
        Err(format!(
            "invalid stage name {name:?}: must start with a letter and contain only letters, \
             digits, '-', '_' and '.'"
        ))
    }
}

fn reject_duplicate_name(stages: &[Stage], stage: &Stage) -> Result<(), ParseError> {
    let Some(name) = &stage.name else {
        return Ok(());
    };
    match stages.iter().find(|s| s.name.as_ref() == Some(name)) {
        Some(first) => Err(ParseError {
            line: stage.line,
            message: format!(
                "duplicate stage name {name:?} (first defined on line {})",
                first.line
            ),
        }),
        None => Ok(()),
    }
}

/// `--from=` and a mount's `from=` must name something.
fn validate_sources(instructions: &[Instruction]) -> Result<(), ParseError> {
    for instruction in instructions {
        let error = |message: &str| ParseError {
            line: instruction.start_line,
            message: message.to_string(),
        };
        if instruction
            .flags
            .iter()
            .any(|flag| flag.name == "from" && flag.value.as_deref().is_none_or(str::is_empty))
        {
            return Err(error("empty --from: expected a stage name, index or image"));
        }
        let mounts = instruction.flag_values("mount");
        if mounts
            .filter_map(resolve::mount_source)
            .any(|source| source.is_empty())
        {
            return Err(error(
                "empty from= in --mount: expected a stage name or image",
            ));
        }
    }
    Ok(())
}
