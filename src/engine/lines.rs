//! Finds the Dockerfile line where each build step starts, so a step record can point at it.
//!
//! This is an index, not a parser (the parser lives in `workspace`): it knows just enough —
//! comments, the `escape` directive, line continuations and heredocs — to count instructions the
//! way the builders number their steps. The classic builder numbers every instruction of the
//! file (`Step 3/7`); BuildKit numbers instructions within a stage, `FROM` being 1
//! (`[builder 2/4]`), and names an unnamed stage `stage-<i>`.

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
    /// Indexes `text`; anything it does not understand simply yields fewer known lines.
    pub(crate) fn new(text: &str) -> Self {
        let mut index = Self::default();
        let escape = escape_char(text);
        let mut lines = text.lines().enumerate();
        while let Some((number, line)) = lines.next() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut instruction = String::from(trimmed);
            while ends_with_escape(&instruction, escape) {
                instruction.pop();
                match next_content_line(&mut lines) {
                    Some(next) => instruction.push_str(next.trim()),
                    None => break,
                }
            }
            index.push(&instruction, number + 1);
            skip_heredoc_bodies(&instruction, &mut lines);
        }
        index
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

    fn push(&mut self, instruction: &str, line: usize) {
        let mut words = instruction.split_whitespace();
        if words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            let rest: Vec<&str> = words.filter(|w| !w.starts_with("--")).collect();
            let name = match rest.as_slice() {
                [_, as_word, name, ..] if as_word.eq_ignore_ascii_case("AS") => {
                    Some(name.to_ascii_lowercase())
                }
                _ => None,
            };
            self.stages.push(Stage {
                name,
                from: self.lines.len(),
            });
        }
        self.lines.push(line);
    }
}

/// The escape character from a leading `# escape=` directive, else `\`.
fn escape_char(text: &str) -> char {
    for line in text.lines() {
        let Some(directive) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = directive.split_once('=') else {
            break;
        };
        if key.trim().eq_ignore_ascii_case("escape") {
            return value.trim().chars().next().unwrap_or('\\');
        }
    }
    '\\'
}

fn ends_with_escape(instruction: &str, escape: char) -> bool {
    instruction.trim_end().ends_with(escape)
}

/// The next line that continues an instruction: comments and blank lines inside a continuation
/// are skipped, as the builders do.
fn next_content_line<'a>(lines: &mut impl Iterator<Item = (usize, &'a str)>) -> Option<&'a str> {
    lines.map(|(_, line)| line).find(|line| {
        let trimmed = line.trim();
        !trimmed.is_empty() && !trimmed.starts_with('#')
    })
}

/// Skips the bodies of the heredocs (`<<EOF`, `<<-"EOF"`) an instruction opens.
fn skip_heredoc_bodies<'a>(instruction: &str, lines: &mut impl Iterator<Item = (usize, &'a str)>) {
    for terminator in heredoc_terminators(instruction) {
        for (_, line) in lines.by_ref() {
            if line.trim() == terminator {
                break;
            }
        }
    }
}

fn heredoc_terminators(instruction: &str) -> Vec<String> {
    instruction
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("<<"))
        .map(|word| {
            word.trim_start_matches('-')
                .trim_matches(|c| c == '"' || c == '\'')
        })
        .map(|word| {
            word.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|word| !word.is_empty())
        .collect()
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
