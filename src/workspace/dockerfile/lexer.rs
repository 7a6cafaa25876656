//! From text to logical lines, as BuildKit's parser reads a Dockerfile: parser directives at the
//! top, comments and blank lines skipped, escape-character continuations joined (comment and
//! blank lines inside a continuation skipped), heredoc bodies read verbatim after the line that
//! opens them. CRLF endings and a UTF-8 BOM are accepted.

use super::ParseError;
use super::expand::split_words;
use super::instruction::Heredoc;

/// A parser directive (`# syntax=...`, `# escape=...`, `# check=...`) from the top of the file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Directive {
    /// Lower-case name.
    pub name: String,
    pub value: String,
    pub line: usize,
}

const KNOWN_DIRECTIVES: [&str; 3] = ["syntax", "escape", "check"];

/// Reads the directives at the top of the file; they stop at the first line that is not one.
pub(super) fn read_directives(lines: &[&str]) -> Result<Vec<Directive>, ParseError> {
    let mut directives: Vec<Directive> = Vec::new();
    for (index, text) in lines.iter().enumerate() {
        let line = index + 1;
        let Some((name, value)) = directive_parts(text) else {
            break;
        };
        if directives.iter().any(|seen| seen.name == name) {
            return Err(ParseError {
                line,
                message: format!("only one {name} parser directive can be used"),
            });
        }
        directives.push(Directive { name, value, line });
    }
    Ok(directives)
}

/// `# key = value` with a known key (case-insensitive), else `None`.
fn directive_parts(text: &str) -> Option<(String, String)> {
    let body = text.trim_start().strip_prefix('#')?;
    let (key, value) = body.split_once('=')?;
    let key = key.trim_matches([' ', '\t']);
    let value = value.trim_matches([' ', '\t']);
    let key_is_word = key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric());
    let name = key.to_ascii_lowercase();
    (key_is_word && !value.is_empty() && KNOWN_DIRECTIVES.contains(&name.as_str()))
        .then(|| (name, value.to_string()))
}

/// The escape character chosen by an `escape` directive (`\` by default).
pub(super) fn escape_from(directives: &[Directive]) -> Result<char, ParseError> {
    let Some(directive) = directives.iter().find(|d| d.name == "escape") else {
        return Ok('\\');
    };
    match directive.value.as_str() {
        "\\" => Ok('\\'),
        "`" => Ok('`'),
        other => Err(ParseError {
            line: directive.line,
            message: format!("invalid escape token '{other}' does not match ` or \\"),
        }),
    }
}

/// An instruction's text with continuations joined, and the 1-based lines it spans.
#[derive(Debug)]
pub(super) struct LogicalLine {
    pub text: String,
    pub start_line: usize,
    pub end_line: usize,
}

/// Walks the physical lines of a Dockerfile.
pub(super) struct LineCursor<'a> {
    lines: &'a [&'a str],
    /// Index of the next unread line (0-based), so also the 1-based number of the last read one.
    next: usize,
    escape: char,
}

impl<'a> LineCursor<'a> {
    pub fn new(lines: &'a [&'a str], escape: char) -> Self {
        LineCursor {
            lines,
            next: 0,
            escape,
        }
    }

    fn read(&mut self) -> Option<&'a str> {
        let line = self.lines.get(self.next).copied()?;
        self.next += 1;
        Some(line)
    }

    /// The next instruction's text, or `None` at the end of the file.
    pub fn next_logical_line(&mut self) -> Option<LogicalLine> {
        loop {
            let first = self.read()?.trim_start();
            if is_comment(first) {
                continue;
            }
            let start_line = self.next;
            let (mut text, mut complete) = strip_continuation(first, self.escape);
            while !complete {
                let Some(next) = self.read() else { break };
                // BuildKit drops comment and blank lines inside a continued instruction.
                if is_comment(next) {
                    continue;
                }
                let (part, done) = strip_continuation(next, self.escape);
                text.push_str(&part);
                complete = done;
            }
            if !text.trim().is_empty() {
                return Some(LogicalLine {
                    text,
                    start_line,
                    end_line: self.next,
                });
            }
        }
    }

    /// Reads the bodies of `heredocs` in order from the following lines; returns the last line
    /// read. An unterminated heredoc is an error at `start_line` (where the instruction began).
    pub fn read_heredoc_bodies(
        &mut self,
        heredocs: &mut [Heredoc],
        start_line: usize,
    ) -> Result<usize, ParseError> {
        for heredoc in heredocs.iter_mut() {
            self.read_heredoc_body(heredoc).ok_or_else(|| ParseError {
                line: start_line,
                message: format!("unterminated heredoc <<{}", heredoc.name),
            })?;
        }
        Ok(self.next)
    }

    fn read_heredoc_body(&mut self, heredoc: &mut Heredoc) -> Option<()> {
        loop {
            let raw = self.read()?;
            let line = if heredoc.chomp {
                raw.trim_start_matches('\t')
            } else {
                raw
            };
            if line == heredoc.name {
                return Some(());
            }
            heredoc.content.push_str(line);
            heredoc.content.push('\n');
        }
    }
}

/// Comment lines start with `#` after optional whitespace; blank lines count as comments here.
fn is_comment(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// Removes a trailing escape character (plus trailing blanks after it); `true` when the line does
/// not continue.
fn strip_continuation(line: &str, escape: char) -> (String, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(head) => (head.to_string(), false),
        None => (line.to_string(), true),
    }
}

/// Heredoc openers (`<<EOF`, `<<-EOF`, `2<<"EOF"`) among the words of shell-form arguments
/// (BuildKit's `heredocsFromLine`); bodies are still empty.
pub(super) fn heredoc_markers(args: &str) -> Result<Vec<Heredoc>, String> {
    if !args.contains("<<") {
        return Ok(Vec::new());
    }
    // BuildKit finds markers with its default escape character whatever the file's escape is.
    let mut markers = Vec::new();
    for word in split_words(args, '\\') {
        if let Some(marker) = heredoc_marker(&word)? {
            markers.push(marker);
        }
    }
    Ok(markers)
}

/// Matches `^(\d*)<<(-?)([^<]*)$` with a non-empty delimiter.
fn heredoc_marker(word: &str) -> Result<Option<Heredoc>, String> {
    let digits_end = word
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(word.len());
    let (digits, after) = word.split_at(digits_end);
    let Some(after) = after.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, raw_name) = match after.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, after),
    };
    if raw_name.is_empty() || raw_name.contains('<') {
        return Ok(None);
    }
    let name = unquote(raw_name);
    if name.is_empty() {
        return Err(format!("invalid heredoc delimiter {raw_name:?}: empty"));
    }
    Ok(Some(Heredoc {
        name,
        content: String::new(),
        expand: !raw_name.contains(['"', '\'']),
        chomp,
        fd: digits.parse().ok(),
    }))
}

/// Removes quotes and backslash escapes from a heredoc delimiter; variables are not expanded
/// (BuildKit leaves unset variables in delimiters as written).
fn unquote(raw: &str) -> String {
    let mut name = String::new();
    let mut chars = raw.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '"' | '\'' => {}
            '\\' => name.extend(chars.next()),
            other => name.push(other),
        }
    }
    name
}
