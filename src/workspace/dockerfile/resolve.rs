//! Which external images a build needs: expands FROM with global ARGs (Docker applies a build
//! arg to FROM only when an ARG before the first FROM declares it), expands `--from` and mount
//! `from=` with the stage's ARGs and ENVs, tells earlier stages, stage indexes and `scratch` apart
//! from images, and keeps only the stages a `--target` needs.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::expand::{Budget, Env, ExpandError, Vars, expand_word};
use super::{
    Arguments, Dockerfile, ImageRef, Instruction, KeyValue, Keyword, ParseError, RefKind, Stage,
};

/// What one stage depends on.
#[derive(Debug, Default)]
struct StageNeeds {
    images: Vec<ImageRef>,
    stages: BTreeSet<usize>,
    /// ENV values at the end of the stage; a stage built FROM this one inherits them.
    env: Env,
}

pub(super) fn external_refs(
    dockerfile: &Dockerfile,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Result<Vec<ImageRef>, ParseError> {
    let needs = stage_needs(dockerfile, build_args)?;
    let wanted = match target {
        Some(name) => reachable_from(target_index(dockerfile, name)?, &needs),
        None => (0..needs.len()).collect(),
    };
    Ok(dedup_in_file_order(
        needs
            .into_iter()
            .enumerate()
            .filter(|(index, _)| wanted.contains(index))
            .flat_map(|(_, stage)| stage.images),
    ))
}

pub(super) fn intermediate_stages(
    dockerfile: &Dockerfile,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Result<Vec<String>, ParseError> {
    let stages = dockerfile.stages();
    let Some(last) = stages.len().checked_sub(1) else {
        return Ok(Vec::new());
    };
    let needs = stage_needs(dockerfile, build_args)?;
    let last = match target {
        Some(name) => target_index(dockerfile, name)?,
        None => last,
    };
    let wanted = reachable_from(last, &needs);
    Ok(stages
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != last && wanted.contains(index))
        .filter_map(|(_, stage)| stage.name.clone())
        .collect())
}

/// What each stage needs, in file order.
fn stage_needs(
    dockerfile: &Dockerfile,
    build_args: &BTreeMap<String, String>,
) -> Result<Vec<StageNeeds>, ParseError> {
    let mut budget = Budget::default();
    let globals = global_arg_values(dockerfile, build_args, &mut budget)?;
    let resolver = Resolver {
        dockerfile,
        build_args,
        globals,
        budget: RefCell::new(budget),
    };
    let mut needs: Vec<StageNeeds> = Vec::new();
    for (index, stage) in dockerfile.stages().iter().enumerate() {
        let stage_needs = resolver.stage_needs(index, stage, &needs)?;
        needs.push(stage_needs);
    }
    Ok(needs)
}

/// Values of the ARGs before the first FROM: a supplied build arg wins over the default, and
/// defaults may use earlier global ARGs. Declared ARGs with neither stay unset.
fn global_arg_values(
    dockerfile: &Dockerfile,
    build_args: &BTreeMap<String, String>,
    budget: &mut Budget,
) -> Result<Env, ParseError> {
    let mut globals = Env::new();
    for instruction in dockerfile.global_args() {
        for pair in pairs(instruction) {
            let value = match (build_args.get(&pair.key), &pair.value) {
                (Some(supplied), _) => Some(supplied.clone()),
                (None, Some(default)) => Some(expand_at(
                    default,
                    &globals,
                    dockerfile.escape(),
                    instruction,
                    budget,
                )?),
                (None, None) => None,
            };
            set_or_unset(&mut globals, &pair.key, value);
        }
    }
    Ok(globals)
}

fn pairs(instruction: &Instruction) -> &[KeyValue] {
    match &instruction.args {
        Arguments::Pairs(pairs) => pairs,
        _ => &[],
    }
}

fn set_or_unset(env: &mut Env, key: &str, value: Option<String>) {
    match value {
        Some(value) => env.insert(key.to_string(), value),
        None => env.remove(key),
    };
}

fn expand_at(
    word: &str,
    vars: &dyn Vars,
    escape: char,
    instruction: &Instruction,
    budget: &mut Budget,
) -> Result<String, ParseError> {
    expand_word(word, vars, escape, budget).map_err(|error| ParseError {
        line: instruction.start_line,
        message: error.to_string(),
    })
}

/// Like [`expand_at`], but a malformed word is only an unknown value (`None`); a word that
/// outgrows the limits still stops the parse.
fn expand_lenient(
    word: &str,
    vars: &dyn Vars,
    escape: char,
    instruction: &Instruction,
    budget: &mut Budget,
) -> Result<Option<String>, ParseError> {
    match expand_word(word, vars, escape, budget) {
        Ok(value) => Ok(Some(value)),
        Err(ExpandError::Invalid(_)) => Ok(None),
        Err(error @ ExpandError::TooLarge(_)) => Err(ParseError {
            line: instruction.start_line,
            message: error.to_string(),
        }),
    }
}

struct Resolver<'a> {
    dockerfile: &'a Dockerfile,
    build_args: &'a BTreeMap<String, String>,
    globals: Env,
    /// The file's expansion allowance, shared by every stage.
    budget: RefCell<Budget>,
}

/// Variables visible inside a stage: ARGs (scoped to the stage) and ENVs (inherited by stages
/// built FROM it). ENV wins over an ARG of the same name, as in Docker.
struct StageScope {
    args: Env,
    env: Env,
}

impl Vars for StageScope {
    fn var(&self, name: &str) -> Option<&str> {
        self.env.var(name).or_else(|| self.args.var(name))
    }
}

impl Resolver<'_> {
    fn stage_needs(
        &self,
        index: usize,
        stage: &Stage,
        earlier: &[StageNeeds],
    ) -> Result<StageNeeds, ParseError> {
        let instructions = self.dockerfile.stage_instructions(stage);
        let mut needs = StageNeeds::default();
        let mut scope = StageScope {
            args: Env::new(),
            env: Env::new(),
        };
        if let Some(from) = instructions.first()
            && let Some(parent) = self.base_stage(index, stage, from, &mut needs)?
        {
            scope.env = earlier
                .get(parent)
                .map(|p| p.env.clone())
                .unwrap_or_default();
        }
        for instruction in instructions.iter().skip(1) {
            self.visit(instruction, &mut scope, &mut needs)?;
        }
        needs.env = scope.env;
        Ok(needs)
    }

    /// Records the base of a stage; returns the earlier stage it is built on, if any.
    fn base_stage(
        &self,
        index: usize,
        stage: &Stage,
        from: &Instruction,
        needs: &mut StageNeeds,
    ) -> Result<Option<usize>, ParseError> {
        let base = self.expand(&stage.base, &self.globals, from)?;
        if base.is_empty() {
            return Err(ParseError {
                line: stage.line,
                message: format!("base name ({}) should not be blank", stage.base),
            });
        }
        if base.eq_ignore_ascii_case("scratch") {
            return Ok(None);
        }
        // FROM sees only stages defined before it; a later stage's name is an image name.
        let parent = self.stage_named(&base).filter(|parent| *parent < index);
        match parent {
            Some(parent) => {
                needs.stages.insert(parent);
            }
            None => needs.images.push(ImageRef {
                kind: RefKind::From,
                reference: base,
                line: stage.line,
            }),
        }
        Ok(parent)
    }

    fn visit(
        &self,
        instruction: &Instruction,
        scope: &mut StageScope,
        needs: &mut StageNeeds,
    ) -> Result<(), ParseError> {
        match instruction.keyword {
            Keyword::Arg => self.declare_args(instruction, scope)?,
            Keyword::Env => self.assign_env(instruction, scope)?,
            Keyword::Copy | Keyword::Add => {
                if let Some(source) = instruction.flag_value("from") {
                    self.add_source(source, RefKind::CopyFrom, instruction, scope, needs)?;
                }
            }
            Keyword::Run => {
                for source in instruction.flag_values("mount").filter_map(mount_source) {
                    self.add_source(&source, RefKind::MountFrom, instruction, scope, needs)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A stage ARG takes the supplied build arg, else its default, else the global ARG's value.
    fn declare_args(
        &self,
        instruction: &Instruction,
        scope: &mut StageScope,
    ) -> Result<(), ParseError> {
        for pair in pairs(instruction) {
            let supplied = self.build_args.get(&pair.key).cloned();
            // A default that does not expand leaves the ARG unknown; only words that name images
            // are worth failing for (and words that outgrow the limits).
            let default = match (&supplied, &pair.value) {
                (None, Some(default)) => self.expand_lenient(default, scope, instruction)?,
                _ => None,
            };
            let value = supplied
                .or(default)
                .or_else(|| self.globals.get(&pair.key).cloned());
            set_or_unset(&mut scope.args, &pair.key, value);
        }
        Ok(())
    }

    fn assign_env(
        &self,
        instruction: &Instruction,
        scope: &mut StageScope,
    ) -> Result<(), ParseError> {
        for pair in pairs(instruction) {
            let value = match &pair.value {
                Some(raw) => self.expand_lenient(raw, scope, instruction)?,
                None => None,
            };
            set_or_unset(&mut scope.env, &pair.key, value);
        }
        Ok(())
    }

    fn expand(
        &self,
        word: &str,
        vars: &dyn Vars,
        instruction: &Instruction,
    ) -> Result<String, ParseError> {
        let mut budget = self.budget.borrow_mut();
        expand_at(
            word,
            vars,
            self.dockerfile.escape(),
            instruction,
            &mut budget,
        )
    }

    fn expand_lenient(
        &self,
        word: &str,
        vars: &dyn Vars,
        instruction: &Instruction,
    ) -> Result<Option<String>, ParseError> {
        let mut budget = self.budget.borrow_mut();
        expand_lenient(
            word,
            vars,
            self.dockerfile.escape(),
            instruction,
            &mut budget,
        )
    }

    /// `--from` / mount `from=`: a stage index, a stage name (any stage, as BuildKit resolves
    /// them after reading the whole file) or an external image.
    fn add_source(
        &self,
        raw: &str,
        kind: RefKind,
        instruction: &Instruction,
        scope: &StageScope,
        needs: &mut StageNeeds,
    ) -> Result<(), ParseError> {
        let error = |message: String| ParseError {
            line: instruction.start_line,
            message,
        };
        let source = self.expand(raw, scope, instruction)?;
        if source.is_empty() {
            return Err(error(format!("--from value ({raw}) expands to nothing")));
        }
        if source.chars().all(|c| c.is_ascii_digit()) {
            let index = source
                .parse::<usize>()
                .ok()
                .filter(|index| *index < self.dockerfile.stages().len())
                .ok_or_else(|| error(format!("invalid stage index {source}")))?;
            needs.stages.insert(index);
        } else if let Some(stage) = self.stage_named(&source) {
            needs.stages.insert(stage);
        } else {
            needs.images.push(ImageRef {
                kind,
                reference: source,
                line: instruction.start_line,
            });
        }
        Ok(())
    }

    fn stage_named(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.dockerfile
            .stages()
            .iter()
            .position(|stage| stage.name.as_deref() == Some(lower.as_str()))
    }
}

fn target_index(dockerfile: &Dockerfile, target: &str) -> Result<usize, ParseError> {
    let lower = target.to_ascii_lowercase();
    dockerfile
        .stages()
        .iter()
        .position(|stage| stage.name.as_deref() == Some(lower.as_str()))
        .ok_or_else(|| ParseError {
            line: dockerfile.last_line,
            message: format!("target stage {target:?} could not be found"),
        })
}

/// The target and every stage it depends on, directly or not (cycles are tolerated).
fn reachable_from(target: usize, needs: &[StageNeeds]) -> HashSet<usize> {
    let mut seen = HashSet::from([target]);
    let mut pending = vec![target];
    while let Some(stage) = pending.pop() {
        let deps = needs.get(stage).map(|n| &n.stages).into_iter().flatten();
        for dep in deps {
            if seen.insert(*dep) {
                pending.push(*dep);
            }
        }
    }
    seen
}

fn dedup_in_file_order(refs: impl Iterator<Item = ImageRef>) -> Vec<ImageRef> {
    let mut seen = HashSet::new();
    refs.filter(|image| seen.insert((image.kind.clone(), image.reference.clone())))
        .collect()
}

/// The `from=` of a `--mount` value (CSV `key=value` fields, double quotes allowed), unquoted.
pub(super) fn mount_source(mount: &str) -> Option<String> {
    csv_fields(mount).into_iter().find_map(|field| {
        let (key, value) = field.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("from")
            .then(|| value.trim().to_string())
    })
}

/// Splits on commas outside double quotes, dropping the quotes (as Go's `encoding/csv` reads a
/// mount spec).
fn csv_fields(text: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for ch in text.chars() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            other => fields.last_mut().into_iter().for_each(|f| f.push(other)),
        }
    }
    fields
}
