//! Finds the Dockerfile line where each build step starts, so a step record can point at it.
//!
//! The Dockerfile is read by the shared parser (`workspace::dockerfile`); this file only maps the
//! builders' step numbers onto its instructions. The classic builder numbers every instruction of
//! the file (`Step 3/7`); BuildKit numbers instructions within a stage, `FROM` being 1
//! (`[builder 2/4]`), and names an unnamed stage `stage-<i>`.

use crate::workspace::dockerfile::Dockerfile;

/// Where each instruction of one Dockerfile starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct InstructionIndex {
    /// 1-based line of every instruction, in file order.
    lines: Vec<usize>,
    /// Stages in file order.
    stages: Vec<Stage>,
}

#[derive(Debug, Clone)]
struct Stage {
    /// The `AS` name, lowercased as the builders treat it.
    name: Option<String>,
    /// Index in `lines` of the stage's `FROM`.
    from: usize,
}

impl InstructionIndex {
    /// Indexes `text`; a file the parser rejects yields no known lines (the builder will say what
    /// is wrong with it).
    pub(crate) fn new(text: &str) -> Self {
        let Ok(dockerfile) = Dockerfile::parse(text) else {
            return Self::default();
        };
        Self {
            lines: dockerfile
                .instructions()
                .iter()
                .map(|i| i.start_line)
                .collect(),
            stages: dockerfile
                .stages()
                .iter()
                .map(|stage| Stage {
                    name: stage.name.clone(),
                    from: stage.instructions.start,
                })
                .collect(),
        }
    }

    /// The line of the classic builder's `Step number/…` (1-based, counted over the whole file).
    pub(crate) fn classic_step(&self, number: usize) -> Option<usize> {
        self.lines.get(number.checked_sub(1)?).copied()
    }

    /// The line of BuildKit's `[stage number/…]`; `stage` is `None` when BuildKit printed none
    /// (single-stage files).
    pub(crate) fn buildkit_step(&self, stage: Option<&str>, number: usize) -> Option<usize> {
        let stage = match stage {
            None if self.stages.len() == 1 => &self.stages[0],
            None => return None,
            Some(name) => self.stage_named(name)?,
        };
        let next_from = self
            .stages
            .iter()
            .map(|s| s.from)
            .find(|&from| from > stage.from);
        let position = stage.from + number.checked_sub(1)?;
        if next_from.is_some_and(|next| position >= next) {
            return None;
        }
        self.lines.get(position).copied()
    }

    fn stage_named(&self, name: &str) -> Option<&Stage> {
        let name = name.to_ascii_lowercase();
        if let Some(stage) = self
            .stages
            .iter()
            .find(|s| s.name.as_deref() == Some(name.as_str()))
        {
            return Some(stage);
        }
        let number: usize = name.strip_prefix("stage-")?.parse().ok()?;
        self.stages.get(number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI: &str = "# escape=\\\n\
        ARG BASE=busybox\n\
        FROM $BASE AS builder\n\
        # a comment\n\
        RUN echo one \\\n\
        \x20   && echo two\n\
        \n\
        COPY <<EOF /greeting\n\
        hello\n\
        FROM not an instruction\n\
        EOF\n\
        FROM builder\n\
        COPY --from=builder /greeting /x\n";

    #[test]
    fn classic_steps_count_every_instruction_of_the_file() {
        let index = InstructionIndex::new(MULTI);
        assert_eq!(index.classic_step(1), Some(2));
        assert_eq!(index.classic_step(2), Some(3));
        assert_eq!(index.classic_step(3), Some(5));
        assert_eq!(index.classic_step(4), Some(8));
        assert_eq!(index.classic_step(5), Some(12));
        assert_eq!(index.classic_step(6), Some(13));
        assert_eq!(index.classic_step(7), None);
        assert_eq!(index.classic_step(0), None);
    }

    #[test]
    fn buildkit_steps_count_within_named_and_numbered_stages() {
        let index = InstructionIndex::new(MULTI);
        assert_eq!(index.buildkit_step(Some("builder"), 1), Some(3));
        assert_eq!(index.buildkit_step(Some("builder"), 3), Some(8));
        assert_eq!(index.buildkit_step(Some("builder"), 4), None);
        assert_eq!(index.buildkit_step(Some("stage-1"), 2), Some(13));
        assert_eq!(
            index.buildkit_step(None, 1),
            None,
            "two stages need a stage name"
        );
    }

    #[test]
    fn single_stage_files_need_no_stage_name() {
        let index = InstructionIndex::new("FROM scratch\nCOPY a /a\n");
        assert_eq!(index.buildkit_step(None, 2), Some(2));
    }

    #[test]
    fn the_escape_directive_changes_the_continuation_character() {
        let index = InstructionIndex::new("# escape=`\nFROM scratch\nCOPY a `\n  /a\nCOPY b /b\n");
        assert_eq!(index.classic_step(3), Some(5));
    }
}
