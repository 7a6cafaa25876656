//! One instruction: its keyword, `--flags`, arguments (exec form, shell form or key/value pairs)
//! and heredocs, parsed from a logical line (continuations already joined) as BuildKit does.

use super::ParseError;
use super::expand::split_words;

/// The instruction keywords BuildKit's Dockerfile frontend accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Keyword {
    From,
    Arg,
    Run,
    Copy,
    Add,
    Env,
    Label,
    Workdir,
    User,
    Expose,
    Volume,
    Cmd,
    Entrypoint,
    Shell,
    Healthcheck,
    Onbuild,
    Stopsignal,
    Maintainer,
}

const KEYWORDS: [(Keyword, &str); 18] = [
    (Keyword::From, "FROM"),
    (Keyword::Arg, "ARG"),
    (Keyword::Run, "RUN"),
    (Keyword::Copy, "COPY"),
    (Keyword::Add, "ADD"),
    (Keyword::Env, "ENV"),
    (Keyword::Label, "LABEL"),
    (Keyword::Workdir, "WORKDIR"),
    (Keyword::User, "USER"),
    (Keyword::Expose, "EXPOSE"),
    (Keyword::Volume, "VOLUME"),
    (Keyword::Cmd, "CMD"),
    (Keyword::Entrypoint, "ENTRYPOINT"),
    (Keyword::Shell, "SHELL"),
    (Keyword::Healthcheck, "HEALTHCHECK"),
    (Keyword::Onbuild, "ONBUILD"),
    (Keyword::Stopsignal, "STOPSIGNAL"),
    (Keyword::Maintainer, "MAINTAINER"),
];

impl Keyword {
    /// Case-insensitive lookup of a keyword as written in a Dockerfile.
    pub fn from_word(word: &str) -> Option<Self> {
        KEYWORDS
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(word))
            .map(|(keyword, _)| *keyword)
    }

    /// The canonical upper-case spelling.
    pub fn as_str(self) -> &'static str {
        KEYWORDS
            .iter()
            .find(|(keyword, _)| *keyword == self)
            .map_or("", |(_, name)| name)
    }

    fn accepts_exec_form(self) -> bool {
        use Keyword::*;
        matches!(self, Run | Cmd | Entrypoint | Copy | Add | Shell | Volume)
    }

    fn accepts_heredocs(self) -> bool {
        matches!(self, Keyword::Run | Keyword::Copy | Keyword::Add)
    }

    fn takes_pairs(self) -> bool {
        matches!(self, Keyword::Arg | Keyword::Env | Keyword::Label)
    }
}

/// A `--name=value` or `--name` flag written before the arguments; quotes are already removed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

/// A `key=value` (or legacy `key value`) pair of ARG, ENV or LABEL. Values are raw: quotes and
/// variables are left for expansion. Only ARG may omit the value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: Option<String>,
}

/// The arguments after the flags.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arguments {
    /// JSON form `["a", "b"]` (RUN, CMD, ENTRYPOINT, COPY, ADD, SHELL, VOLUME).
    Exec(Vec<String>),
    /// Everything else, as written (continuations joined).
    Shell(String),
    /// ARG, ENV and LABEL.
    Pairs(Vec<KeyValue>),
}

/// A heredoc (`<<EOF` … `EOF`) attached to RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Heredoc {
    /// The delimiter without quotes.
    pub name: String,
    /// The body, one `\n`-terminated line per source line; with `<<-` leading tabs are removed.
    pub content: String,
    /// False when the delimiter was quoted (`<<"EOF"`, `<<'EOF'`): the body is not expanded.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from body lines and the terminator.
    pub chomp: bool,
    /// The file descriptor written before `<<` (`3<<EOF`), if any.
    pub fd: Option<u32>,
}

/// A parsed instruction with its 1-based source lines (end includes continuations and heredocs).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Instruction {
    pub keyword: Keyword,
    pub flags: Vec<Flag>,
    pub args: Arguments,
    pub heredocs: Vec<Heredoc>,
    /// The instruction ONBUILD registers (for ONBUILD only).
    pub trigger: Option<Box<Instruction>>,
    pub start_line: usize,
    pub end_line: usize,
}

impl Instruction {
    /// Values of every `--name=value` flag with this name, in order (e.g. several `--mount`).
    pub fn flag_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.flags
            .iter()
            .filter(move |flag| flag.name == name)
            .filter_map(|flag| flag.value.as_deref())
    }

    /// The last value given for a flag (BuildKit keeps the last one for single-valued flags).
    pub fn flag_value(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|flag| flag.name == name)
            .and_then(|flag| flag.value.as_deref())
    }

    /// True when the flag is present, with or without a value (e.g. `--link`).
    pub fn has_flag(&self, name: &str) -> bool {
        self.flags.iter().any(|flag| flag.name == name)
    }

    /// Shell-form arguments split on whitespace (quotes kept); exec-form arguments as they are.
    pub fn words(&self, escape: char) -> Vec<String> {
        match &self.args {
            Arguments::Exec(words) => words.clone(),
            Arguments::Shell(text) => split_words(text, escape),
            Arguments::Pairs(pairs) => pairs.iter().map(|pair| pair.key.clone()).collect(),
        }
    }

    /// The instruction that receives heredoc bodies: itself, or the trigger of an ONBUILD.
    pub(super) fn heredoc_host_mut(&mut self) -> Option<&mut Instruction> {
        if self.keyword == Keyword::Onbuild {
            return self.trigger.as_deref_mut()?.heredoc_host_mut();
        }
        let shell_form = matches!(self.args, Arguments::Shell(_));
        (self.keyword.accepts_heredocs() && shell_form).then_some(self)
    }
}

/// Parses one logical line that starts at `line` (heredoc bodies are attached later).
pub(super) fn parse_instruction(
    text: &str,
    line: usize,
    escape: char,
) -> Result<Instruction, ParseError> {
    let error = |message: String| ParseError { line, message };
    let text = text.trim();
    let (word, rest) = text
        .split_once(char::is_whitespace)
        .map_or((text, ""), |(word, rest)| (word, rest.trim_start()));
    let keyword =
        Keyword::from_word(word).ok_or_else(|| error(format!("unknown instruction: {word}")))?;
    let (flags, rest) = extract_flags(rest, escape).map_err(&error)?;
    let mut instruction = Instruction {
        keyword,
        flags,
        args: Arguments::Shell(rest.to_string()),
        heredocs: Vec::new(),
        trigger: None,
        start_line: line,
        end_line: line,
    };
    if keyword.accepts_exec_form() {
        if let Some(words) = exec_form(rest) {
            instruction.args = Arguments::Exec(words);
        }
    } else if keyword.takes_pairs() {
        instruction.args = Arguments::Pairs(parse_pairs(keyword, rest, escape).map_err(&error)?);
    } else if keyword == Keyword::Onbuild {
        instruction.trigger = Some(Box::new(parse_trigger(rest, line, escape)?));
    }
    validate_arguments(&instruction, escape).map_err(error)?;
    Ok(instruction)
}

fn parse_trigger(text: &str, line: usize, escape: char) -> Result<Instruction, ParseError> {
    let trigger = parse_instruction(text, line, escape)?;
    if matches!(
        trigger.keyword,
        Keyword::Onbuild | Keyword::From | Keyword::Maintainer
    ) {
        return Err(ParseError {
            line,
            message: format!(
                "{} isn't allowed as an ONBUILD trigger",
                trigger.keyword.as_str()
            ),
        });
    }
    Ok(trigger)
}

/// JSON array of strings, or `None` (then the text is shell form, as Docker treats it).
fn exec_form(text: &str) -> Option<Vec<String>> {
    let text = text.trim();
    if !text.starts_with('[') {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// Splits leading `--flag[=value]` words off `text` (BuildKit's `extractBuilderFlags`): quotes
/// and escapes inside flag words are processed; a lone `--` ends the flags.
fn extract_flags(text: &str, escape: char) -> Result<(Vec<Flag>, &str), String> {
    let mut flags = Vec::new();
    let mut rest = text.trim_start();
    while rest.starts_with("--") {
        let (word, after) = take_flag_word(rest, escape);
        rest = after.trim_start();
        if word == "--" {
            if rest.is_empty() {
                return Err("flag '--' without a name or arguments after it".into());
            }
            break;
        }
        flags.push(parse_flag(&word)?);
    }
    Ok((flags, rest))
}

/// Reads one flag word, returning it unquoted and the text after it.
fn take_flag_word(text: &str, escape: char) -> (String, &str) {
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.char_indices();
    while let Some((index, ch)) = chars.next() {
        match quote {
            Some(open) if ch == open => quote = None,
            None if ch.is_whitespace() => return (word, &text[index..]),
            None if ch == '\'' || ch == '"' => quote = Some(ch),
            _ if ch == escape => word.extend(chars.next().map(|(_, next)| next)),
            _ => word.push(ch),
        }
    }
    (word, "")
}

fn parse_flag(word: &str) -> Result<Flag, String> {
    let body = word.strip_prefix("--").unwrap_or(word);
    let (name, value) = match body.split_once('=') {
        Some((name, value)) => (name, Some(value.to_string())),
        None => (body, None),
    };
    let well_formed = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !well_formed {
        return Err(format!("bad flag syntax: '{word}' has no valid flag name"));
    }
    Ok(Flag {
        name: name.to_ascii_lowercase(),
        value,
    })
}

/// ARG/ENV/LABEL arguments (BuildKit's `parseNameVal`, and `parseNameOrNameVal` for ARG).
fn parse_pairs(keyword: Keyword, text: &str, escape: char) -> Result<Vec<KeyValue>, String> {
    let words = split_words(text, escape);
    let Some(first) = words.first() else {
        return Err(format!(
            "{} requires at least one argument",
            keyword.as_str()
        ));
    };
    if keyword != Keyword::Arg && !first.contains('=') {
        return legacy_pair(keyword, text);
    }
    words
        .iter()
        .map(|word| pair_from_word(keyword, word))
        .collect()
}

/// `ENV key value with spaces`: one pair, the value is the rest of the line.
fn legacy_pair(keyword: Keyword, text: &str) -> Result<Vec<KeyValue>, String> {
    match text.trim().split_once(char::is_whitespace) {
        Some((key, value)) => Ok(vec![KeyValue {
            key: key.to_string(),
            value: Some(value.trim_start().to_string()),
        }]),
        None => Err(format!(
            "{} must have two arguments (key value) or use key=value",
            keyword.as_str()
        )),
    }
}

fn pair_from_word(keyword: Keyword, word: &str) -> Result<KeyValue, String> {
    let (key, value) = match word.split_once('=') {
        Some((key, value)) => (key, Some(value.to_string())),
        None if keyword == Keyword::Arg => (word, None),
        None => {
            return Err(format!(
                "syntax error: can't find = in {word:?}, must be of the form name=value"
            ));
        }
    };
    if key.is_empty() {
        return Err(format!("{} names can not be blank", keyword.as_str()));
    }
    Ok(KeyValue {
        key: key.to_string(),
        value,
    })
}

/// Argument-count rules BuildKit enforces at parse time.
fn validate_arguments(instruction: &Instruction, escape: char) -> Result<(), String> {
    use Keyword::*;
    let keyword = instruction.keyword;
    let count = instruction.words(escape).len();
    let name = keyword.as_str();
    match keyword {
        From if count == 0 => Err("FROM requires an image: missing image name".into()),
        From if count != 1 && count != 3 => {
            Err("FROM requires either one or three arguments (image [AS name])".into())
        }
        Copy | Add if count < 2 => Err(format!(
            "{name} requires at least two arguments (source and destination)"
        )),
        Workdir | User | Stopsignal if count != 1 => {
            Err(format!("{name} requires exactly one argument"))
        }
        Shell if !matches!(instruction.args, Arguments::Exec(_)) => {
            Err("SHELL requires the arguments to be in JSON form".into())
        }
        Healthcheck => validate_healthcheck(&instruction.words(escape)),
        Run | Expose | Volume | Onbuild | Maintainer | Shell if count == 0 => {
            Err(format!("{name} requires at least one argument"))
        }
        _ => Ok(()),
    }
}

fn validate_healthcheck(words: &[String]) -> Result<(), String> {
    match words
        .first()
        .map(|word| word.to_ascii_uppercase())
        .as_deref()
    {
        Some("NONE") if words.len() == 1 => Ok(()),
        Some("NONE") => Err("HEALTHCHECK NONE takes no arguments".into()),
        Some("CMD") if words.len() > 1 => Ok(()),
        Some("CMD") => Err("HEALTHCHECK CMD requires a command".into()),
        Some(other) => Err(format!(
            "unknown type for HEALTHCHECK: {other} (expected CMD or NONE)"
        )),
        None => Err("HEALTHCHECK requires at least one argument".into()),
    }
}
