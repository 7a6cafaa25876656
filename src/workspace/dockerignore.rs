//! `.dockerignore` semantics, as BuildKit applies them (moby/patternmatcher + tonistiigi/fsutil).
//!
//! Owns: reading an ignore file (`ignorefile.ReadAll`), compiling its patterns once
//! (`patternmatcher.New` + `Pattern.compile`), deciding whether a context-relative path is sent to
//! the builder (`MatchesUsingParentResults`, as fsutil's walker calls it), and choosing which
//! ignore file applies to a build. It is deliberately *not* gitignore: patterns are anchored at the
//! context root, a pattern also matches every path below a matching directory, the last matching
//! line wins, and an exception (`!`) can re-include a path under an excluded directory.
//!
//! Walking a tree: BuildKit evaluates a path with the per-pattern results of its parent
//! directory. [`IgnoreRules::evaluate`] exposes exactly that ([`MatchState`] is the parent's
//! result), [`IgnoreRules::is_excluded`] folds it over the path's ancestors, and [`PathFilter`]
//! memoises directory states for a flat list of paths such as `git ls-files` output.

use std::borrow::Cow;
use std::collections::HashMap;

use super::glob::Glob;

/// A parse error in an ignore file; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct IgnoreError {
    pub line: usize,
    pub message: String,
}

/// How one pattern is matched; moby picks the cheapest form that is equivalent to its regexp.
#[derive(Debug, Clone)]
enum Form {
    /// No metacharacter: the path equals the pattern.
    Exact(String),
    /// `foo/**` (or `foo**`): the path starts with the text before `**`.
    Prefix(String),
    /// `**/foo` (or `**foo`): the path ends with the text after `**`; `**/foo` also matches `foo`.
    Suffix(String),
    /// Everything else, anchored at both ends, matched step by step (see [`Glob`]).
    Glob(Glob),
    /// What [`Glob`] does not read (escapes such as `\\d`, POSIX classes): a compiled regexp,
    /// about 9 KiB each, so their number is capped ([`MAX_REGEX_PATTERNS`]).
    Regex(regex::Regex),
}

/// At most this many patterns of an ignore file may need a compiled regexp; real files have
/// none. The cap keeps a hostile file's memory bounded.
pub const MAX_REGEX_PATTERNS: usize = 1000;

/// One compiled line of an ignore file.
#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern without its `!` (what moby's `Pattern.String()` returns).
    text: String,
    exception: bool,
    form: Form,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.form {
            Form::Exact(p) => path == p,
            Form::Prefix(p) => path.starts_with(p.as_str()),
            Form::Suffix(s) => {
                path.ends_with(s.as_str()) || s.strip_prefix('/').is_some_and(|bare| path == bare)
            }
            Form::Glob(glob) => glob.is_match(path),
            Form::Regex(re) => re.is_match(path),
        }
    }
}

/// The compiled patterns of one ignore file.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    patterns: Vec<Pattern>,
}

/// What BuildKit remembers about a directory while walking below it: for each pattern, whether it
/// matched the directory or one of its ancestors (moby's `MatchInfo`). The default value means
/// "no information", which is right for top-level paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchState {
    /// One bit per pattern (a bit set rather than `Vec<bool>`: walkers keep one per directory).
    parent_matched: Vec<u64>,
}

impl MatchState {
    fn matched(&self, pattern: usize) -> bool {
        self.parent_matched
            .get(pattern / 64)
            .is_some_and(|word| word >> (pattern % 64) & 1 == 1)
    }
}

impl IgnoreRules {
    /// Parses the text of an ignore file.
    ///
    /// Errors: a lone `!` ("illegal exclusion pattern") and a pattern that Go's `filepath.Match`
    /// rejects (`[`, an unterminated class, a trailing `\`), each with its 1-based line. An escape
    /// that moby's regexp would give a special meaning we do not reproduce (e.g. `\x41`, `\pL`) is
    /// also rejected rather than silently matched differently.
    pub fn parse(text: &str) -> Result<Self, IgnoreError> {
        let mut patterns = Vec::new();
        let mut regexes = 0;
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            let raw = if index == 0 {
                raw.strip_prefix('\u{feff}').unwrap_or(raw)
            } else {
                raw
            };
            let Some((exception, cleaned)) = read_line(raw) else {
                continue;
            };
            let err = |message: String| IgnoreError { line, message };
            if cleaned.is_empty() {
                return Err(err("illegal exclusion pattern: \"!\"".to_string()));
            }
            // moby keeps `.` but it can only ever match the context root, which is never a path.
            if cleaned == "." {
                continue;
            }
            validate_glob(&cleaned)
                .map_err(|m| err(format!("syntax error in pattern {cleaned:?}: {m}")))?;
            let form = compile(&cleaned)
                .map_err(|m| err(format!("unsupported pattern {cleaned:?}: {m}")))?;
            if matches!(form, Form::Regex(_)) {
                regexes += 1;
                if regexes > MAX_REGEX_PATTERNS {
                    return Err(err(format!(
                        "more than {MAX_REGEX_PATTERNS} patterns need a regular expression \
                         (escapes such as \\d or classes such as [[:alpha:]]); that is \
                         buildopt's limit for one ignore file"
                    )));
                }
            }
            patterns.push(Pattern {
                text: cleaned,
                exception,
                form,
            });
        }
        Ok(Self { patterns })
    }

    /// True when no pattern is present (everything is sent).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when at least one pattern is an exception (`!…`).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// True when `path` (relative to the context root, `/`-separated, no leading `./`) is excluded.
    ///
    /// Evaluates every ancestor directory first, as BuildKit's walker does. To classify many
    /// paths, prefer [`PathFilter`] or [`IgnoreRules::evaluate`], which reuse directory results.
    pub fn is_excluded(&self, path: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let path = normalize_path(path);
        let mut state = MatchState::default();
        let mut excluded = false;
        for (end, _) in path
            .match_indices('/')
            .chain(std::iter::once((path.len(), "")))
        {
            (excluded, state) = self.evaluate(&path[..end], &state);
        }
        excluded
    }

    /// BuildKit's `MatchesUsingParentResults`: whether `path` is excluded, given the state of its
    /// parent directory (`MatchState::default()` for a top-level path), plus the state to pass to
    /// its children. `path` must be normalized (`/`-separated, no `./`, no trailing `/`).
    ///
    /// A pattern that matched the parent matches the child without being re-run, so a full tree
    /// walk runs each pattern about once per path. With a default (empty) state the pattern is
    /// also tried against every ancestor, which is moby's fallback when nothing is known.
    pub fn evaluate(&self, path: &str, parent: &MatchState) -> (bool, MatchState) {
        let known = !parent.parent_matched.is_empty();
        let mut matched = false;
        let mut out = vec![0u64; self.patterns.len().div_ceil(64)];
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = known && parent.matched(i);
            // Skipping is what makes the last matching line win: an include cannot change an
            // excluded path, and an exception cannot change an included one.
            if !hit && pattern.exception == matched {
                hit = pattern.matches(path)
                    || (!known && ancestors(path).any(|dir| pattern.matches(dir)));
            }
            if hit {
                out[i / 64] |= 1 << (i % 64);
                matched = !pattern.exception;
            }
        }
        (
            matched,
            MatchState {
                parent_matched: out,
            },
        )
    }

    /// Whether BuildKit may skip an excluded directory without looking inside it (fsutil's
    /// `onlyPrefixExcludeExceptions` optimisation): true when no exception could match below it.
    /// This never changes the answer of [`IgnoreRules::is_excluded`]; walkers may use it to prune.
    pub fn can_prune(&self, excluded_dir: &str) -> bool {
        let literal_exceptions = self.patterns.iter().filter(|p| p.exception).all(|p| {
            let stem = p
                .text
                .strip_suffix("/**")
                .or_else(|| p.text.strip_suffix("/*"))
                .unwrap_or(&p.text);
            !stem.contains(['*', '[', ']', '?', '^', '\\'])
        });
        literal_exceptions && !self.exception_starts_with_dir(excluded_dir)
    }
}

impl IgnoreRules {
    /// What the classic builder does instead (the docker CLI's `archive.TarWithOptions`, used with
    /// `DOCKER_BUILDKIT=0`): the same evaluation, but an excluded directory is skipped whole unless
    /// an exception pattern literally starts with `<dir>/`. So `node_modules` + `!**/LICENSE`
    /// drops `node_modules/p/LICENSE` here while BuildKit keeps it (moby/moby#45608).
    pub fn is_excluded_classic(&self, path: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let path = normalize_path(path);
        let mut state = MatchState::default();
        for dir in ancestors(&path) {
            let (excluded, next) = self.evaluate(dir, &state);
            if excluded && !self.exception_starts_with_dir(dir) {
                return true;
            }
            state = next;
        }
        self.evaluate(&path, &state).0
    }

    fn exception_starts_with_dir(&self, dir: &str) -> bool {
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .any(|p| p.exception && format!("{}/", p.text).starts_with(&dir_slash))
    }
}

/// Classifies many paths against one [`IgnoreRules`], memoising each directory's [`MatchState`] so
/// that a directory's patterns are run once however many files sit below it.
#[derive(Debug)]
pub struct PathFilter<'a> {
    rules: &'a IgnoreRules,
    dirs: HashMap<String, MatchState>,
    /// The folder of the previous path and its state: sorted listings visit a folder's files in a
    /// row, so most lookups end here.
    last: Option<(String, MatchState)>,
}

impl<'a> PathFilter<'a> {
    pub fn new(rules: &'a IgnoreRules) -> Self {
        Self {
            rules,
            dirs: HashMap::new(),
            last: None,
        }
    }

    /// Same answer as [`IgnoreRules::is_excluded`], reusing the results of already-seen directories.
    pub fn is_excluded(&mut self, path: &str) -> bool {
        if self.rules.is_empty() {
            return false;
        }
        let path = normalize_path(path);
        let Some(cut) = path.rfind('/') else {
            return self.rules.evaluate(&path, &MatchState::default()).0;
        };
        let dir = &path[..cut];
        if self.last.as_ref().is_none_or(|(last, _)| last != dir) {
            let state = self.dir_state(dir);
            self.last = Some((dir.to_string(), state));
        }
        let parent = self
            .last
            .as_ref()
            .map(|(_, state)| state)
            .expect("set above");
        self.rules.evaluate(&path, parent).0
    }

    fn dir_state(&mut self, dir: &str) -> MatchState {
        if let Some(state) = self.dirs.get(dir) {
            return state.clone();
        }
        let parent = match dir.rfind('/') {
            Some(cut) => self.dir_state(&dir[..cut]),
            None => MatchState::default(),
        };
        let state = self.rules.evaluate(dir, &parent).1;
        self.dirs.insert(dir.to_string(), state.clone());
        state
    }
}

/// Which ignore file applies to a build, relative to the repository: BuildKit's
/// `<dockerfile>.dockerignore` beside the Dockerfile when it exists (it replaces, not extends, the
/// root file), else `<context>/.dockerignore`. `exists` answers whether a repository-relative path
/// exists.
///
/// The Dockerfile-specific name is derived from the Dockerfile name *as given*: BuildKit's
/// lowercase fallback (`dockerfile` when `Dockerfile` is missing) applies to reading the
/// Dockerfile, not to the ignore file, so `dockerfile.dockerignore` is only used when the build
/// names `dockerfile` itself.
pub fn ignore_file_for(
    context: &str,
    dockerfile: &str,
    exists: &dyn Fn(&str) -> bool,
) -> Option<String> {
    let specific = format!("{}.dockerignore", normalize_path(dockerfile));
    if exists(&specific) {
        return Some(specific);
    }
    let context = normalize_path(context);
    let root = if context.is_empty() || context == "." {
        ".dockerignore".to_string()
    } else {
        format!("{context}/.dockerignore")
    };
    exists(&root).then_some(root)
}

/// `ignorefile.ReadAll` for one line: `None` for comments and blank lines, else whether it is an
/// exception and the cleaned pattern (empty for a lone `!`).
fn read_line(raw: &str) -> Option<(bool, String)> {
    // A comment needs `#` in column 1: the check runs before trimming, so ` #x` is a pattern.
    if raw.starts_with('#') {
        return None;
    }
    let line = go_trim_space(raw);
    if line.is_empty() {
        return None;
    }
    let (exception, body) = match line.strip_prefix('!') {
        Some(rest) => (true, go_trim_space(rest)),
        None => (false, line),
    };
    if body.is_empty() {
        return Some((exception, String::new()));
    }
    let cleaned = clean(body);
    let cleaned = match cleaned.strip_prefix('/') {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => cleaned,
    };
    Some((exception, cleaned))
}

/// Go's `strings.TrimSpace` (Unicode white space, which includes the `\r` of CRLF files).
fn go_trim_space(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace())
}

/// Go's `path.Clean`: collapse `//`, drop `.` elements, resolve `..` lexically, strip trailing `/`.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Normalizes a path given by a caller: `./a//b/` becomes `a/b`. Paths that are already clean,
/// as every path from a tree listing is, are returned without rebuilding them.
fn normalize_path(path: &str) -> Cow<'_, str> {
    if is_clean(path) {
        return Cow::Borrowed(path);
    }
    let cleaned = clean(path);
    let trimmed = cleaned.trim_start_matches('/');
    if trimmed == "." {
        Cow::Owned(String::new())
    } else {
        Cow::Owned(trimmed.to_string())
    }
}

/// True when `clean` would return `path` unchanged: no empty, `.` or `..` component.
fn is_clean(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(|part| !matches!(part, "" | "." | ".."))
}

/// The ancestor directories of `path`, shortest first (`a/b/c` gives `a`, `a/b`).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(end, _)| &path[..end])
}

/// The syntax check moby runs through `filepath.Match(pattern, ".")`: Go's glob grammar, where a
/// class needs at least one range and a closing `]`, and `\` must escape something.
fn validate_glob(pattern: &str) -> Result<(), String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return Err("trailing backslash".to_string());
                }
                i += 2;
            }
            '[' => i = validate_class(&chars, i + 1)?,
            _ => i += 1,
        }
    }
    Ok(())
}

/// Validates a class body starting after `[`; returns the index after its closing `]`.
fn validate_class(chars: &[char], mut i: usize) -> Result<usize, String> {
    if chars.get(i) == Some(&'^') {
        i += 1;
    }
    let mut ranges = 0;
    loop {
        if chars.get(i) == Some(&']') && ranges > 0 {
            return Ok(i + 1);
        }
        i = class_char(chars, i)?;
        if chars.get(i) == Some(&'-') {
            i = class_char(chars, i + 1)?;
        }
        ranges += 1;
    }
}

/// Go's `getEsc`: one (possibly escaped) class character that must be followed by more pattern.
fn class_char(chars: &[char], mut i: usize) -> Result<usize, String> {
    match chars.get(i) {
        None => return Err("unterminated character class".to_string()),
        Some('-' | ']') => return Err("unexpected '-' or ']' in character class".to_string()),
        Some('\\') => i += 1,
        Some(_) => {}
    }
    // The character itself and at least one more (a `]` at the latest) must follow.
    if i + 1 >= chars.len() {
        return Err("unterminated character class".to_string());
    }
    Ok(i + 1)
}

/// Characters moby escapes before building its regexp: they are literal in a glob.
fn should_escape(c: char) -> bool {
    matches!(c, '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$')
}

/// Port of moby's `Pattern.compile` for `/` separators: chooses the form and, for the regexp
/// form, builds the same Go regexp text moby builds, then translates it to the `regex` crate.
fn compile(pattern: &str) -> Result<Form, String> {
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut kind = Kind::Exact;
    let mut go = String::from("^");
    let mut chars = pattern.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        go.push_str(".*");
                        kind = Kind::Regex;
                    }
                } else {
                    go.push_str("(.*/)?");
                    kind = Kind::Regex;
                }
                if first {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                go.push_str("[^/]*");
                kind = Kind::Regex;
            }
            '?' => {
                go.push_str("[^/]");
                kind = Kind::Regex;
            }
            c if should_escape(c) => {
                go.push('\\');
                go.push(c);
            }
            '\\' => match chars.next() {
                Some(next) => {
                    go.push('\\');
                    go.push(next);
                    kind = Kind::Regex;
                }
                None => go.push('\\'),
            },
            '[' | ']' => {
                go.push(c);
                kind = Kind::Regex;
            }
            c => go.push(c),
        }
        first = false;
    }
    go.push('$');
    Ok(match kind {
        Kind::Exact => Form::Exact(pattern.to_string()),
        Kind::Prefix => Form::Prefix(pattern[..pattern.len() - 2].to_string()),
        Kind::Suffix => Form::Suffix(pattern[2..].to_string()),
        Kind::Regex => {
            if let Some(glob) = Glob::from_go_regex(&go) {
                return Ok(Form::Glob(glob));
            }
            let rust = go_regex_to_rust(&go)?;
            Form::Regex(regex::Regex::new(&rust).map_err(|e| e.to_string())?)
        }
    })
}

/// Translates the Go (RE2) regexp text that moby builds into the `regex` crate's syntax. The two
/// mostly agree, but Rust nests `[` inside classes and treats `&&`, `--`, `~~` as set operators,
/// while Go reads them literally; escapes of letters also differ. Only the constructs `compile`
/// can produce are handled.
fn go_regex_to_rust(go: &str) -> Result<String, String> {
    let chars: Vec<char> = go.chars().collect();
    let mut out = String::with_capacity(go.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let c = *chars.get(i + 1).ok_or("trailing backslash")?;
                out.push_str(&go_escape(c, false)?);
                i += 2;
            }
            '[' => i = go_class_to_rust(&chars, i + 1, &mut out)?,
            // Metacharacters that only `compile` itself emits (pattern text escapes them).
            c @ ('^' | '$' | '.' | '*' | '?' | '(' | ')') => {
                out.push(c);
                i += 1;
            }
            c => {
                out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Translates one Go class whose body starts at `i`; returns the index after its `]`.
fn go_class_to_rust(chars: &[char], mut i: usize, out: &mut String) -> Result<usize, String> {
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    loop {
        let c = *chars.get(i).ok_or("missing closing ]")?;
        if c == ']' && !first {
            out.push(']');
            return Ok(i + 1);
        }
        first = false;
        // POSIX classes such as `[:alpha:]` mean the same in both engines.
        if c == '[' && chars.get(i + 1) == Some(&':') {
            let rest: String = chars[i..].iter().collect();
            if let Some(end) = rest.find(":]") {
                let name = &rest[..end + 2];
                out.push_str(name);
                i += name.chars().count();
                continue;
            }
        }
        let (lo, next) = go_class_char(chars, i)?;
        out.push_str(&lo);
        i = next;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
            let (hi, next) = go_class_char(chars, i + 1)?;
            out.push('-');
            out.push_str(&hi);
            i = next;
        }
    }
}

/// One class member in Go syntax, rendered for Rust.
fn go_class_char(chars: &[char], i: usize) -> Result<(String, usize), String> {
    match chars.get(i) {
        Some('\\') => {
            let c = *chars.get(i + 1).ok_or("trailing backslash")?;
            Ok((go_escape(c, true)?, i + 2))
        }
        Some(&c) => {
            let escaped = if c.is_ascii_punctuation() {
                format!("\\{c}")
            } else {
                c.to_string()
            };
            Ok((escaped, i + 1))
        }
        None => Err("missing closing ]".to_string()),
    }
}

/// A Go regexp escape `\c`, rendered for Rust. Punctuation is literal in both; the letters Go
/// gives a meaning are mapped to their ASCII meaning; anything else Go would reject or read in a
/// way we do not reproduce (hex, octal, `\p`, `\Q`) is refused.
fn go_escape(c: char, in_class: bool) -> Result<String, String> {
    let mapped = match c {
        c if c.is_ascii_punctuation() => format!("\\{c}"),
        'a' => "\\x07".to_string(),
        'f' => "\\x0C".to_string(),
        't' => "\\t".to_string(),
        'n' => "\\n".to_string(),
        'r' => "\\r".to_string(),
        'v' => "\\x0B".to_string(),
        'd' => "0-9".to_string(),
        'w' => "0-9A-Za-z_".to_string(),
        's' => "\\t\\n\\x0C\\r ".to_string(),
        'D' | 'W' | 'S' if in_class => return Err(format!("escape \\{c} inside a class")),
        'D' => "[^0-9]".to_string(),
        'W' => "[^0-9A-Za-z_]".to_string(),
        'S' => "[^\\t\\n\\x0C\\r ]".to_string(),
        'b' | 'B' if !in_class => format!("(?-u:\\{c})"),
        'A' | 'z' if !in_class => format!("\\{c}"),
        other => return Err(format!("escape \\{other} has a regexp meaning in BuildKit")),
    };
    // Positive Perl classes need brackets outside a class and none inside one.
    Ok(match c {
        'd' | 'w' | 's' if !in_class => format!("[{mapped}]"),
        _ => mapped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(lines: &[&str]) -> IgnoreRules {
        IgnoreRules::parse(&lines.join("\n")).expect("valid ignore file")
    }

    /// Asserts `excluded` for each path, through all three entry points.
    fn check(lines: &[&str], cases: &[(&str, bool)]) {
        let rules = rules(lines);
        let mut filter = PathFilter::new(&rules);
        for &(path, excluded) in cases {
            assert_eq!(rules.is_excluded(path), excluded, "{lines:?} on {path:?}");
            assert_eq!(
                filter.is_excluded(path),
                excluded,
                "{lines:?} on {path:?} (PathFilter)"
            );
        }
    }

    fn parse_err(text: &str) -> IgnoreError {
        IgnoreRules::parse(text).expect_err("must be rejected")
    }

    fn texts(rules: &IgnoreRules) -> Vec<String> {
        rules
            .patterns
            .iter()
            .map(|p| format!("{}{}", if p.exception { "!" } else { "" }, p.text))
            .collect()
    }

    // ---- the truth table of selective-builds.md §5.3 (BuildKit column) ----

    #[test]
    fn truth_table_anchoring_and_wildcards() {
        check(&["*.go"], &[("root.go", true), ("a/x.go", false)]);
        check(&["**/*.log"], &[("a.log", true), ("sub/deep/c.log", true)]);
        check(
            &["temp?"],
            &[("tempa", true), ("tempab", false), ("temp/x", false)],
        );
        check(
            &["*/cache"],
            &[("sub/cache/f", true), ("sub/sub2/cache/f", false)],
        );
        check(
            &["docs/**/*.png"],
            &[("docs/y.png", true), ("docs/img/z/w.png", true)],
        );
        check(&["a/**/b"], &[("a/b", true), ("a/x/y/b", true)]);
        check(&["foo/../bar"], &[("bar/f", true), ("foo/bar", false)]);
    }

    #[test]
    fn truth_table_comments_and_dotfiles() {
        check(&[" #notcomment"], &[("#notcomment", true)]);
        check(
            &["# comment line"],
            &[("#comment", false), ("# comment line", false)],
        );
        check(
            &[".*"],
            &[
                (".hidden", true),
                ("sub/.hidden2", false),
                (".dockerignore", true),
            ],
        );
    }

    #[test]
    fn truth_table_exceptions() {
        let readme = ["*.md", "!README*.md", "README-secret.md"];
        check(
            &readme,
            &[
                ("README.md", false),
                ("README-secret.md", true),
                ("README.MD", false),
                ("docs/README.md", false),
            ],
        );
        check(
            &["*.md", "README-secret.md", "!README*.md"],
            &[("README-secret.md", false)],
        );
        check(
            &["docs", "!docs/api"],
            &[
                ("docs/a.md", true),
                ("docs/api/x.md", false),
                ("x/docs/y.md", false),
            ],
        );
        // BuildKit re-includes under an excluded directory even with a wildcard exception
        // (the classic builder prunes `node_modules` and drops the file).
        check(
            &["node_modules", "!**/LICENSE"],
            &[
                ("node_modules/p/LICENSE", false),
                ("node_modules/p/x", true),
            ],
        );
        check(
            &["build/*", "!build/keep"],
            &[("build/keep/k.txt", false), ("build/other", true)],
        );
        check(
            &["*", "!src", "src/README.md"],
            &[("src/a.rs", false), ("src/README.md", true), ("top", true)],
        );
        check(
            &["**", "!a"],
            &[("a", false), ("a/x", false), ("b", true), ("b/a", true)],
        );
    }

    #[test]
    fn truth_table_prefix_dot_and_errors() {
        // `foo/**` matches below foo, not foo itself: the empty directory is still sent.
        check(
            &["foo/**"],
            &[("foo/y", true), ("foo/bar/x", true), ("foo", false)],
        );
        let dot = rules(&["."]);
        assert!(dot.is_empty());
        assert!(!dot.is_excluded("anything"));
        assert_eq!(parse_err("!").line, 1);
        assert_eq!(parse_err("[").line, 1);
        // The Dockerfile is matched like any file; that it is still used to build is the caller's rule.
        check(&["Dockerfile"], &[("Dockerfile", true)]);
    }

    // ---- moby/patternmatcher TestMatches (single pattern; paths with a trailing `/` normalized) ----

    #[test]
    fn moby_matches_table() {
        let table: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "file/", true),
            ("**/", "file", true),
            ("**/", "file/", true),
            ("**", "/", true),
            ("**/", "/", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**", "dir/file/", true),
            ("**/", "dir/file/", true),
            ("**/**", "dir/file", true),
            ("**/**", "dir/file/", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/file/", true),
            ("dir/**", "dir/dir2/file", true),
            ("dir/**", "dir/dir2/file/", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/*", "dir/dir2/file/", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file/", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
        ];
        for &(pattern, path, excluded) in table {
            check(&[pattern], &[(path, excluded)]);
        }
    }

    #[test]
    fn moby_multi_pattern_table() {
        check(
            &["**", "!util/docker/web"],
            &[("util/docker/web/foo", false)],
        );
        check(
            &["**", "!util/docker/web", "util/docker/web/foo"],
            &[("util/docker/web/foo", true)],
        );
        let whl = "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl";
        check(&["**", &format!("!{whl}")], &[(whl, false)]);
        check(&["**", "!dist/*.whl"], &[(whl, false)]);
        check(
            &["docs", "!docs/README.md"],
            &[("docs/README.md", false), ("docs/x.md", true)],
        );
        check(&["docs/", "!docs/README.md"], &[("docs/README.md", false)]);
        check(
            &["docs/*", "!docs/README.md"],
            &[("docs/README.md", false), ("docs/x", true)],
        );
    }

    #[test]
    fn forms_are_chosen_like_moby() {
        let form = |p: &str| match compile(p).expect("compiles") {
            Form::Exact(_) => "exact",
            Form::Prefix(_) => "prefix",
            Form::Suffix(_) => "suffix",
            Form::Glob(_) | Form::Regex(_) => "regex",
        };
        assert_eq!(form("a/b.c"), "exact");
        assert_eq!(form("a(b)|{c}$"), "exact");
        assert_eq!(form("foo/**"), "prefix");
        assert_eq!(form("**/foo"), "suffix");
        assert_eq!(form("**"), "suffix");
        assert_eq!(form("**/*.go"), "regex");
        assert_eq!(form("a\\b"), "regex");
        // `**x` is a plain suffix in moby, so it also matches `ax`.
        check(
            &["**x"],
            &[("ax", true), ("d/bx", true), ("x", true), ("xa", false)],
        );
        // `^` is not escaped by moby: a regexp-form pattern containing it can never match.
        check(&["a^b"], &[("a^b", true)]);
        check(&["a^*"], &[("a^b", false), ("a^", false)]);
    }

    #[test]
    fn classes_and_escapes() {
        check(&["[abc].txt"], &[("a.txt", true), ("d.txt", false)]);
        check(&["[!x]y"], &[("!y", true), ("xy", true), ("ay", false)]);
        check(&["[^x]y"], &[("ay", true), ("xy", false)]);
        check(&["f[a-c0-1]"], &[("fb", true), ("f1", true), ("f2", false)]);
        check(&["[\\]]x"], &[("]x", true)]);
        check(&["\\*"], &[("*", true), ("a", false)]);
        check(&["\\?x"], &[("?x", true), ("ax", false)]);
        check(&["a\\[b"], &[("a[b", true)]);
        check(&["a\\.b"], &[("a.b", true), ("aXb", false)]);
        check(&["\\#x"], &[("#x", true)]);
        check(&["[[:digit:]]z"], &[("1z", true), ("az", false)]);
        check(&["[&&a]x"], &[("&x", true), ("ax", true), ("bx", false)]);
        check(&["[~~a]x"], &[("~x", true)]);
        check(
            &["*.[ch]"],
            &[
                ("m.c", true),
                ("m.h", true),
                ("m.o", false),
                ("d/m.c", false),
            ],
        );
        // moby passes `\n` through to Go's regexp, where it is a newline.
        check(&["a\\nb"], &[("a\nb", true), ("anb", false)]);
        // `*` inside a class is expanded by moby before Go's regexp sees the class:
        // `[*]` becomes `[[^/]*]`, i.e. any run of `[`, `^`, `/` followed by `]`.
        check(&["[*]"], &[("]", true), ("*", false)]);
    }

    #[test]
    fn parsing_rules() {
        let r = rules(&[
            "\u{feff}a",
            "/b",
            "./c/",
            "d//e/",
            "!  /f",
            "  g  ",
            "",
            "#h",
            " #i",
            "j\r",
            "/",
        ]);
        assert_eq!(texts(&r), ["a", "b", "c", "d/e", "!f", "g", "#i", "j", "/"]);
        let crlf = IgnoreRules::parse("a\r\n# c\r\n!a/b\r\n").expect("crlf");
        assert_eq!(texts(&crlf), ["a", "!a/b"]);
        // moby's TestReadAll (the lone `!` lines are errors for us, see below).
        let r = IgnoreRules::parse(
            "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n",
        )
        .expect("valid");
        assert_eq!(
            texts(&r),
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path"
            ]
        );
        // A BOM only counts on the first line.
        assert_eq!(texts(&rules(&["a", "\u{feff}b"])), ["a", "\u{feff}b"]);
        assert_eq!(
            texts(&rules(&["../x", "a/../../y", "/../z"])),
            ["../x", "../y", "z"]
        );
        assert!(rules(&["# only", "", "   "]).is_empty());
        assert!(rules(&["!a"]).has_exceptions());
        assert!(!rules(&["a"]).has_exceptions());
    }

    #[test]
    fn malformed_patterns_report_their_line() {
        let e = parse_err("ok\n!\n");
        assert_eq!(e.line, 2);
        assert!(
            e.to_string()
                .starts_with("line 2: illegal exclusion pattern"),
            "{e}"
        );
        assert_eq!(parse_err("a\nb\n!   \n").line, 3);
        for (text, line) in [
            ("[", 1),
            ("x\n[a", 2),
            ("x\ny\na[b-", 3),
            ("[]", 1),
            ("[]a]", 1),
            ("[-a]", 1),
            ("[a-]", 1),
            ("[^", 1),
            ("abc\\", 1),
            ("!abc\\", 1),
            ("a[\\", 1),
            ("a\nb\nc\nd\n[z", 5),
        ] {
            let e = parse_err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
        assert!(parse_err("[").message.contains("syntax error"));
        // Escapes that Go's regexp reads as hex, octal or Unicode classes are refused.
        assert_eq!(parse_err("ok\na\\x41").line, 2);
        assert_eq!(parse_err("\\pL").line, 1);
    }

    // ---- evaluation order and parent results ----

    #[test]
    fn last_match_wins_and_parents_match() {
        check(&["a", "!a", "a"], &[("a/b", true)]);
        check(&["a", "!a"], &[("a/b", false)]);
        check(&["!a", "a"], &[("a", true)]);
        check(
            &["a/b"],
            &[
                ("a", false),
                ("a/b", true),
                ("a/b/c/d", true),
                ("a/bc", false),
            ],
        );
        check(&["*/b"], &[("x/b/c", true), ("x/y/b", false)]);
    }

    #[test]
    fn uses_parent_results_like_the_buildkit_walker() {
        // When the exception was skipped at the parent (nothing was excluded yet), BuildKit's
        // walker does not retry it against the ancestors: `a/b/c` stays excluded, although
        // MatchesOrParentMatches (no parent results) would re-include it.
        let r = rules(&["*/b/c", "!a/b"]);
        assert!(r.is_excluded("a/b/c"));
        let (excluded, _) = r.evaluate("a/b/c", &MatchState::default());
        assert!(
            !excluded,
            "without parent results moby retries every ancestor"
        );
    }

    #[test]
    fn evaluate_walks_a_tree_with_parent_state() {
        let r = rules(&["vendor", "!vendor/keep", "**/*.tmp"]);
        let (vendor, vendor_state) = r.evaluate("vendor", &MatchState::default());
        assert!(vendor);
        let (keep, keep_state) = r.evaluate("vendor/keep", &vendor_state);
        assert!(!keep);
        assert!(!r.evaluate("vendor/keep/x", &keep_state).0);
        assert!(r.evaluate("vendor/keep/x.tmp", &keep_state).0);
        assert!(r.evaluate("vendor/other", &vendor_state).0);
    }

    #[test]
    fn path_filter_agrees_with_is_excluded_on_generated_cases() {
        let tree = generated_tree();
        for lines in generated_pattern_sets(300) {
            let Ok(r) = IgnoreRules::parse(&lines.join("\n")) else {
                continue;
            };
            let mut filter = PathFilter::new(&r);
            for path in &tree {
                assert_eq!(
                    filter.is_excluded(path),
                    r.is_excluded(path),
                    "{lines:?} on {path}"
                );
            }
        }
    }

    #[test]
    fn pruning_only_when_no_exception_can_match_below() {
        assert!(rules(&["vendor"]).can_prune("vendor"));
        assert!(!rules(&["vendor", "!vendor/keep"]).can_prune("vendor"));
        assert!(rules(&["vendor", "!other/keep/**"]).can_prune("vendor"));
        assert!(!rules(&["node_modules", "!**/LICENSE"]).can_prune("node_modules"));
    }

    #[test]
    fn classic_builder_prunes_excluded_directories() {
        let r = rules(&["node_modules", "!**/LICENSE"]);
        assert!(r.is_excluded_classic("node_modules/p/LICENSE"));
        assert!(!r.is_excluded("node_modules/p/LICENSE"));
        let r = rules(&["vendor", "!vendor/keep.txt", "!**/deep/keep.txt"]);
        assert!(!r.is_excluded_classic("vendor/keep.txt"));
        assert!(r.is_excluded_classic("vendor/deep/keep.txt"));
        assert!(!r.is_excluded_classic("other/deep/keep.txt"));
        let r = rules(&["docs", "!docs/api"]);
        assert!(!r.is_excluded_classic("docs/api/x.md"));
        assert!(r.is_excluded_classic("docs/a.md"));
        assert!(!IgnoreRules::default().is_excluded_classic("a/b"));
    }

    #[test]
    fn caller_paths_are_normalized() {
        check(
            &["a/b"],
            &[("./a/b", true), ("a//b/", true), ("/a/b/c", true)],
        );
        assert!(!IgnoreRules::default().is_excluded("x"));
        assert!(IgnoreRules::default().is_empty());
    }

    #[test]
    fn ignore_file_choice() {
        let files = [
            "svc/Dockerfile.dockerignore",
            ".dockerignore",
            "ctx/.dockerignore",
            "b/dockerfile.dockerignore",
        ];
        let exists = |p: &str| files.contains(&p);
        assert_eq!(
            ignore_file_for("ctx", "svc/Dockerfile", &exists).as_deref(),
            Some("svc/Dockerfile.dockerignore")
        );
        assert_eq!(
            ignore_file_for("ctx", "ctx/Dockerfile", &exists).as_deref(),
            Some("ctx/.dockerignore")
        );
        assert_eq!(
            ignore_file_for("./ctx/", "ctx/Dockerfile", &exists).as_deref(),
            Some("ctx/.dockerignore")
        );
        assert_eq!(
            ignore_file_for(".", "Dockerfile", &exists).as_deref(),
            Some(".dockerignore")
        );
        assert_eq!(
            ignore_file_for("", "./Dockerfile", &exists).as_deref(),
            Some(".dockerignore")
        );
        assert_eq!(ignore_file_for("none", "none/Dockerfile", &exists), None);
        // The lowercase name counts only when the build names the lowercase Dockerfile.
        assert_eq!(ignore_file_for("none", "b/Dockerfile", &exists), None);
        assert_eq!(
            ignore_file_for("none", "b/dockerfile", &exists).as_deref(),
            Some("b/dockerfile.dockerignore")
        );
    }

    /// A small deterministic tree: nested dirs, dotfiles, spaces.
    pub(crate) fn generated_tree() -> Vec<String> {
        let mut paths = Vec::new();
        for dir in ["", "a/", "a/b/", "b/", "a/a/", ".d/", "x y/", "b/a/c/"] {
            for file in ["a", "b", "a.txt", ".h", "f g.txt", "ab", "c"] {
                paths.push(format!("{dir}{file}"));
            }
        }
        paths
    }

    /// Deterministic pseudo-random pattern files built from glob fragments.
    pub(crate) fn generated_pattern_sets(count: usize) -> Vec<Vec<String>> {
        const FRAGMENTS: &[&str] = &[
            "*", "**", "?", "a", "b", "a/", "b/", "*.txt", ".*", "[ab]", "x y", "c",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n as u64).expect("small")
        };
        (0..count)
            .map(|_| {
                (0..1 + next(4))
                    .map(|_| {
                        let mut line = String::new();
                        if next(3) == 0 {
                            line.push('!');
                        }
                        for i in 0..1 + next(3) {
                            if i > 0 && !line.ends_with('/') {
                                line.push('/');
                            }
                            line.push_str(FRAGMENTS[next(FRAGMENTS.len())]);
                        }
                        line
                    })
                    .collect()
            })
            .collect()
    }
}
