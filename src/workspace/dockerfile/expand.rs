//! Shell-style word handling as BuildKit's shell lexer does it: splitting argument text into words
//! (quotes kept, for later processing) and expanding one word (`$VAR`, `${VAR}`, `${VAR:-word}`,
//! `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`, `${VAR?msg}`, quotes removed,
//! escapes applied). The escape character is the file's (`\` or `` ` ``).
//!
//! Expansion is bounded: a word may expand to at most [`MAX_WORD_BYTES`] and a whole file's
//! expansions to [`MAX_FILE_BYTES`] ([`Budget`]); nested ARGs that each repeat the previous one
//! would otherwise grow tenfold per line.

use std::collections::BTreeMap;

/// Variables visible to an expansion; an absent name is unset (which differs from empty for
/// `${VAR-word}` and `${VAR+word}`).
pub type Env = BTreeMap<String, String>;

/// Where an expansion looks variables up (a stage looks in its ENVs, then its ARGs, without
/// merging them into a new map for every instruction).
pub trait Vars {
    fn var(&self, name: &str) -> Option<&str>;
}

impl Vars for Env {
    fn var(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// The longest text one word may expand to; real Dockerfiles stay far below.
pub const MAX_WORD_BYTES: usize = 64 * 1024;
/// The most text all expansions of one file may produce together.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// What is left of a file's expansion allowance ([`MAX_FILE_BYTES`]).
#[derive(Debug)]
pub struct Budget {
    left: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            left: MAX_FILE_BYTES,
        }
    }
}

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// The word is malformed or a required variable is unset (lowercase message).
    #[error("{0}")]
    Invalid(String),
    /// The expansion outgrew a limit: a hostile or broken file, never a real build.
    #[error("{0}")]
    TooLarge(String),
}

/// Expands one word: variables substituted, quotes removed, escapes applied, its length charged
/// to `budget`. Errors are lowercase messages (the caller adds the line).
pub fn expand_word(
    word: &str,
    vars: &dyn Vars,
    escape: char,
    budget: &mut Budget,
) -> Result<String, ExpandError> {
    let mut expander = Expander {
        chars: word.chars().collect(),
        pos: 0,
        vars,
        escape,
    };
    let out = expander.process_until(None)?;
    budget.left = budget.left.checked_sub(out.len()).ok_or_else(|| {
        ExpandError::TooLarge(format!(
            "ARG/ENV expansions in this file exceed {MAX_FILE_BYTES} bytes in total \
             (buildopt's limit)"
        ))
    })?;
    Ok(out)
}

fn invalid(message: impl Into<String>) -> ExpandError {
    ExpandError::Invalid(message.into())
}

/// Appends an expanded piece, refusing to grow the word beyond [`MAX_WORD_BYTES`].
fn append(out: &mut String, piece: &str) -> Result<(), ExpandError> {
    if out.len() + piece.len() > MAX_WORD_BYTES {
        return Err(ExpandError::TooLarge(format!(
            "ARG/ENV expansion of a word exceeds {MAX_WORD_BYTES} bytes (buildopt's limit)"
        )));
    }
    out.push_str(piece);
    Ok(())
}

/// Splits text into whitespace-separated words, keeping quotes and escapes in the words (BuildKit's
/// `parseWords`). Never fails: an unterminated quote runs to the end of the text.
pub fn split_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // A quoted empty string (`""`) is still a word.
    let mut has_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        if let Some(open) = quote {
            word.push(ch);
            if ch == open {
                quote = None;
            } else if ch == escape && open != '\'' {
                word.extend(chars.next());
            }
            continue;
        }
        if ch.is_whitespace() {
            if has_word {
                words.push(std::mem::take(&mut word));
                has_word = false;
            }
            continue;
        }
        has_word = true;
        word.push(ch);
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
        } else if ch == escape {
            word.extend(chars.next());
        }
    }
    if has_word {
        words.push(word);
    }
    words
}

struct Expander<'a> {
    chars: Vec<char>,
    pos: usize,
    vars: &'a dyn Vars,
    escape: char,
}

impl Expander<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    /// Processes characters until `stop` (left unconsumed) or the end of the word.
    fn process_until(&mut self, stop: Option<char>) -> Result<String, ExpandError> {
        let mut out = String::new();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                break;
            }
            self.pos += 1;
            match ch {
                '\'' => append(&mut out, &self.single_quoted()?)?,
                '"' => append(&mut out, &self.double_quoted()?)?,
                '$' => append(&mut out, &self.dollar()?)?,
                // A trailing escape character has nothing to escape and is dropped.
                c if c == self.escape => out.extend(self.bump()),
                c => out.push(c),
            }
        }
        Ok(out)
    }

    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        loop {
            match self.bump() {
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
                None => {
                    return Err(invalid(
                        "unexpected end of word looking for matching single quote",
                    ));
                }
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        loop {
            match self.bump() {
                Some('"') => return Ok(out),
                Some('$') => append(&mut out, &self.dollar()?)?,
                Some(c) if c == self.escape => match self.peek() {
                    // Inside double quotes the escape only applies to what the shell treats as special.
                    Some(next) if next == '"' || next == '$' || next == self.escape => {
                        self.pos += 1;
                        out.push(next);
                    }
                    _ => out.push(c),
                },
                Some(c) => out.push(c),
                None => {
                    return Err(invalid(
                        "unexpected end of word looking for matching double quote",
                    ));
                }
            }
        }
    }

    /// Called after `$`.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        if self.peek() == Some('{') {
            self.pos += 1;
            return self.braced();
        }
        let name = self.name();
        if name.is_empty() {
            return Ok("$".into());
        }
        Ok(self.vars.var(&name).unwrap_or_default().to_string())
    }

    /// A variable name; a leading digit is a one-character positional name, as in the shell.
    fn name(&mut self) -> String {
        let mut name = String::new();
        if let Some(digit) = self.peek().filter(char::is_ascii_digit) {
            self.pos += 1;
            name.push(digit);
            return name;
        }
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            self.pos += 1;
            name.push(c);
        }
        name
    }

    /// Called after `${`.
    fn braced(&mut self) -> Result<String, ExpandError> {
        let name = self.name();
        if name.is_empty() {
            return Err(invalid(
                "bad substitution: missing variable name after '${'",
            ));
        }
        let value = self.vars.var(&name);
        let colon = self.peek() == Some(':');
        if colon {
            self.pos += 1;
        }
        let modifier = match self.bump() {
            Some('}') if !colon => return Ok(value.unwrap_or_default().to_string()),
            Some(m @ ('-' | '+' | '?')) => m,
            Some(other) => {
                return Err(invalid(format!(
                    "unsupported modifier '{other}' in substitution of '{name}'"
                )));
            }
            None => return Err(invalid(format!("missing '}}' in substitution of '{name}'"))),
        };
        let word = self.process_until(Some('}'))?;
        if self.bump() != Some('}') {
            return Err(invalid(format!("missing '}}' in substitution of '{name}'")));
        }
        // With a colon, an empty value counts as unset.
        let present = value.filter(|v| !colon || !v.is_empty());
        apply_modifier(&name, present, modifier, word)
    }
}

fn apply_modifier(
    name: &str,
    present: Option<&str>,
    modifier: char,
    word: String,
) -> Result<String, ExpandError> {
    match (modifier, present) {
        ('-', Some(value)) => Ok(value.to_string()),
        ('-', None) => Ok(word),
        ('+', Some(_)) => Ok(word),
        ('+', None) => Ok(String::new()),
        ('?', Some(value)) => Ok(value.to_string()),
        (_, None) if word.is_empty() => Err(invalid(format!("{name}: is not allowed to be unset"))),
        _ => Err(invalid(format!("{name}: {word}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expand(word: &str, pairs: &[(&str, &str)]) -> Result<String, String> {
        expand_word(word, &env(pairs), '\\', &mut Budget::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn plain_and_braced_variables() {
        let vars = [("A", "x"), ("EMPTY", "")];
        assert_eq!(expand("$A-${A}:$NOPE.", &vars).as_deref(), Ok("x-x:."));
        assert_eq!(expand("a$", &vars).as_deref(), Ok("a$"));
        assert_eq!(expand("$1a", &vars).as_deref(), Ok("a"));
    }

    #[test]
    fn modifiers_distinguish_unset_from_empty() {
        let vars = [("SET", "v"), ("EMPTY", "")];
        let cases = [
            ("${SET:-d}", "v"),
            ("${EMPTY:-d}", "d"),
            ("${EMPTY-d}", ""),
            ("${UNSET-d}", "d"),
            ("${SET:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${UNSET:-${SET}x}", "vx"),
            ("${UNSET:-\"a b\"}", "a b"),
        ];
        for (word, expected) in cases {
            assert_eq!(expand(word, &vars).as_deref(), Ok(expected), "{word}");
        }
    }

    #[test]
    fn required_variables_error() {
        let err = expand("${UNSET:?need it}", &[]).unwrap_err();
        assert_eq!(err, "UNSET: need it");
        assert!(
            expand("${UNSET?}", &[])
                .unwrap_err()
                .contains("not allowed to be unset")
        );
    }

    #[test]
    fn quotes_and_escapes() {
        let vars = [("A", "x")];
        assert_eq!(expand(r#"'$A'"$A"\$A"#, &vars).as_deref(), Ok("$Ax$A"));
        assert_eq!(expand(r#""a\b\"c""#, &vars).as_deref(), Ok(r#"a\b"c"#));
        assert_eq!(
            expand_word(r"C:\a`$A", &env(&vars), '`', &mut Budget::default()).as_deref(),
            Ok(r"C:\a$A")
        );
    }

    #[test]
    fn malformed_words_error_without_panicking() {
        for word in [
            "${", "${A", "${A:-x", "${:-x}", "${A%x}", "'open", "\"open", "${A:",
        ] {
            assert!(expand(word, &[("A", "1")]).is_err(), "{word}");
        }
    }

    #[test]
    fn a_word_may_not_expand_beyond_its_limit() {
        let big = "x".repeat(MAX_WORD_BYTES / 4 + 1);
        let err = expand("$A$A$A$A", &[("A", &big)]).unwrap_err();
        assert!(err.contains("exceeds 65536 bytes"), "{err}");
        let nested = expand("${U:-\"$A$A\"}$A$A", &[("A", &big)]).unwrap_err();
        assert!(nested.contains("exceeds"), "{nested}");
    }

    #[test]
    fn a_file_may_not_expand_beyond_its_total() {
        let vars = env(&[("A", &"x".repeat(MAX_WORD_BYTES / 2))]);
        let mut budget = Budget::default();
        let words = (0..MAX_FILE_BYTES / (MAX_WORD_BYTES / 2))
            .map(|_| expand_word("$A", &vars, '\\', &mut budget))
            .collect::<Result<Vec<_>, _>>();
        assert!(words.is_ok());
        let err = expand_word("$A", &vars, '\\', &mut budget).unwrap_err();
        assert!(matches!(err, ExpandError::TooLarge(_)), "{err}");
    }

    #[test]
    fn split_words_keeps_quotes() {
        assert_eq!(
            split_words(r#"a="b c" d\ e '' f"#, '\\'),
            vec![r#"a="b c""#, r"d\ e", "''", "f"]
        );
    }
}
