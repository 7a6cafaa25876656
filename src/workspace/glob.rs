//! Matching `.dockerignore` patterns without a regexp engine.
//!
//! Owns: reading the Go regexp text that moby builds for a pattern (see `dockerignore::compile`)
//! into a few character steps, and matching a path against them by simulating the automaton. A
//! compiled `regex::Regex` costs about 9 KiB, so a 100,000-line ignore file took about 1 GB; a
//! [`Glob`] costs the size of its pattern and matching uses memory linear in the pattern.
//!
//! Only the constructs that `compile` emits for ordinary globs are read (literals, `[^/]`,
//! `[^/]*`, `(.*/)?`, `.*`, classes with literal members and ranges). Anything else (escapes of
//! letters such as `\d`, POSIX classes, a stray `^`) yields `None` and the caller falls back to
//! `regex`.

/// The characters one step accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CharSet {
    Literal(char),
    /// `[^/]`
    NotSlash,
    /// `.` (which excludes a newline in Go and in Rust)
    NotNewline,
    /// A bracket class (boxed: most steps are literals, and a step is kept per pattern char).
    Class(Box<Class>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Class {
    negated: bool,
    /// Members as inclusive ranges.
    ranges: Vec<(char, char)>,
}

impl CharSet {
    fn accepts(&self, c: char) -> bool {
        match self {
            CharSet::Literal(l) => c == *l,
            CharSet::NotSlash => c != '/',
            CharSet::NotNewline => c != '\n',
            CharSet::Class(class) => {
                class.ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != class.negated
            }
        }
    }
}

/// One position of the automaton.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// One character of the set, or (`repeat`) any number of them.
    Chars { set: CharSet, repeat: bool },
    /// `(.*/)?`: nothing, or any text ending with `/`.
    AnyDirs,
}

/// A pattern anchored at both ends, matched in O(path × pattern) time and O(pattern) memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    /// The literal text every match starts with (most paths are rejected by it alone) and ends
    /// with; `steps` match what lies between.
    prefix: Box<str>,
    suffix: Box<str>,
    steps: Box<[Step]>,
}

impl Glob {
    /// Reads the regexp text `compile` built (`^…$`); `None` when it uses anything else.
    pub(crate) fn from_go_regex(go: &str) -> Option<Self> {
        let body = go.strip_prefix('^')?.strip_suffix('$')?;
        let chars: Vec<char> = body.chars().collect();
        let mut steps = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i..].starts_with(&['(', '.', '*', '/', ')', '?']) {
                steps.push(Step::AnyDirs);
                i += 6;
                continue;
            }
            let (set, next) = atom(&chars, i)?;
            i = next;
            let repeat = chars.get(i) == Some(&'*');
            if repeat {
                i += 1;
            }
            steps.push(Step::Chars { set, repeat });
        }
        let prefix: String = steps.iter().map_while(literal).collect();
        steps.drain(..prefix.chars().count());
        let mut suffix: Vec<char> = steps.iter().rev().map_while(literal).collect();
        steps.truncate(steps.len() - suffix.len());
        suffix.reverse();
        Some(Self {
            prefix: prefix.into(),
            suffix: suffix.into_iter().collect::<String>().into(),
            steps: steps.into(),
        })
    }

    pub(crate) fn is_match(&self, path: &str) -> bool {
        let ends = self.prefix.len() + self.suffix.len();
        if path.len() < ends || !path.starts_with(&*self.prefix) || !path.ends_with(&*self.suffix) {
            return false;
        }
        self.middle_matches(&path[self.prefix.len()..path.len() - self.suffix.len()])
    }

    fn middle_matches(&self, path: &str) -> bool {
        let n = self.steps.len();
        // `at[k]`: the text so far can end before step k; `inside[k]`: inside step k's `(.*/)`.
        let mut at = vec![false; n + 1];
        let mut inside = vec![false; n];
        let mut next_at = vec![false; n + 1];
        let mut next_inside = vec![false; n];
        at[0] = true;
        self.close(&mut at, &mut inside);
        for c in path.chars() {
            next_at.fill(false);
            next_inside.fill(false);
            for (k, step) in self.steps.iter().enumerate() {
                match step {
                    Step::Chars { set, repeat } if at[k] && set.accepts(c) => {
                        next_at[if *repeat { k } else { k + 1 }] = true;
                    }
                    Step::AnyDirs if inside[k] => {
                        next_inside[k] = c != '\n';
                        if c == '/' {
                            next_at[k + 1] = true;
                        }
                    }
                    _ => {}
                }
            }
            std::mem::swap(&mut at, &mut next_at);
            std::mem::swap(&mut inside, &mut next_inside);
            self.close(&mut at, &mut inside);
            if !at.iter().chain(inside.iter()).any(|live| *live) {
                return false;
            }
        }
        at[n]
    }

    /// Follows the steps that can match nothing; they only lead forward, so one pass suffices.
    fn close(&self, at: &mut [bool], inside: &mut [bool]) {
        for (k, step) in self.steps.iter().enumerate() {
            if !at[k] {
                continue;
            }
            match step {
                Step::Chars { repeat: true, .. } => at[k + 1] = true,
                Step::AnyDirs => {
                    inside[k] = true;
                    at[k + 1] = true;
                }
                Step::Chars { .. } => {}
            }
        }
    }
}

/// The character of a step that matches exactly one fixed character.
fn literal(step: &Step) -> Option<char> {
    match step {
        Step::Chars {
            set: CharSet::Literal(c),
            repeat: false,
        } => Some(*c),
        _ => None,
    }
}

/// One atom at `i`: a literal, an escaped punctuation character, `.` or a class.
fn atom(chars: &[char], i: usize) -> Option<(CharSet, usize)> {
    match chars[i] {
        '\\' => {
            let c = *chars.get(i + 1)?;
            c.is_ascii_punctuation()
                .then_some((CharSet::Literal(c), i + 2))
        }
        '[' if chars[i..].starts_with(&['[', '^', '/', ']']) => Some((CharSet::NotSlash, i + 4)),
        '[' => class(chars, i + 1),
        '.' => Some((CharSet::NotNewline, i + 1)),
        '^' | '$' | '*' | '?' | '(' | ')' | ']' => None,
        c => Some((CharSet::Literal(c), i + 1)),
    }
}

/// A class body from `i` (after `[`), read as `dockerignore::go_class_to_rust` reads it.
fn class(chars: &[char], mut i: usize) -> Option<(CharSet, usize)> {
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((CharSet::Class(Box::new(Class { negated, ranges })), i + 1));
        }
        first = false;
        if c == '[' && chars.get(i + 1) == Some(&':') {
            return None;
        }
        let (lo, next) = class_member(chars, i)?;
        i = next;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
            (hi, i) = class_member(chars, i + 1)?;
            if hi < lo {
                return None;
            }
        }
        ranges.push((lo, hi));
    }
}

fn class_member(chars: &[char], i: usize) -> Option<(char, usize)> {
    match *chars.get(i)? {
        '\\' => {
            let c = *chars.get(i + 1)?;
            c.is_ascii_punctuation().then_some((c, i + 2))
        }
        c => Some((c, i + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(go: &str) -> Glob {
        Glob::from_go_regex(go).unwrap_or_else(|| panic!("{go} not read"))
    }

    #[test]
    fn steps_match_like_the_regexp() {
        let cases = [
            ("^a[^/]*\\.txt$", "ab.txt", true),
            ("^a[^/]*\\.txt$", "a/b.txt", false),
            ("^(.*/)?b$", "b", true),
            ("^(.*/)?b$", "x/y/b", true),
            ("^(.*/)?b$", "xb", false),
            ("^a.*$", "a/b\nc", false),
            ("^[^/]$", "\n", true),
            ("^[a-c\\]]x$", "]x", true),
            ("^[^a-c]x$", "bx", false),
            ("^[]a]$", "]", true),
            ("^ab$", "ab", true),
            ("^ab$", "abab", false),
            ("^a[^/]*a$", "a", false),
            ("^a[^/]*a$", "aa", true),
            ("^é[^/]*é$", "éxé", true),
        ];
        for (go, path, expected) in cases {
            assert_eq!(glob(go).is_match(path), expected, "{go} {path:?}");
        }
    }

    #[test]
    fn unusual_regexps_are_left_to_the_regex_crate() {
        for go in ["^a\\d$", "^[[:alpha:]]$", "^a^b$", "^[z-a]$", "^a"] {
            assert!(Glob::from_go_regex(go).is_none(), "{go}");
        }
    }
}
