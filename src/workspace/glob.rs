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

/// A pattern anchored at both ends. Matching simulates the automaton over its live positions
/// only, so a path costs O(path × live positions): a handful for real patterns, and never more
/// than O(path × pattern) for hostile ones. Memory is O(pattern).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    /// The literal text every match starts with (most paths are rejected by it alone) and ends
    /// with; `steps` match what lies between.
    prefix: Box<str>,
    suffix: Box<str>,
    steps: Box<[Step]>,
    /// How many characters the shortest match of `steps` has, and the literal characters every
    /// match of them contains, in order: a path without them (such as most ancestors of a deep
    /// path tried against a long pattern) is rejected in one pass, without simulating.
    min_middle_chars: usize,
    required_middle: Box<str>,
}

impl Glob {
    /// Reads the regexp text `compile` built (`^…$`); `None` when it uses anything else.
    pub(crate) fn from_go_regex(go: &str) -> Option<Self> {
        let body = go.strip_prefix('^')?.strip_suffix('$')?;
        let chars: Vec<char> = body.chars().collect();
        let mut steps: Vec<Step> = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let step = if chars[i..].starts_with(&['(', '.', '*', '/', ')', '?']) {
                i += 6;
                Step::AnyDirs
            } else {
                let (set, next) = atom(&chars, i)?;
                i = next;
                let repeat = chars.get(i) == Some(&'*');
                if repeat {
                    i += 1;
                }
                Step::Chars { set, repeat }
            };
            // `(.*/)?(.*/)?` and `[^/]*[^/]*` match what one of them matches; keeping one keeps
            // hostile runs of `**/` from making every position live at once.
            if step.matches_empty() && steps.last() == Some(&step) {
                continue;
            }
            steps.push(step);
        }
        let prefix: String = steps.iter().map_while(literal).collect();
        steps.drain(..prefix.chars().count());
        let mut suffix: Vec<char> = steps.iter().rev().map_while(literal).collect();
        steps.truncate(steps.len() - suffix.len());
        suffix.reverse();
        let min_middle_chars = steps.iter().filter(|step| !step.matches_empty()).count();
        let required_middle: String = steps.iter().filter_map(literal).collect();
        Some(Self {
            prefix: prefix.into(),
            suffix: suffix.into_iter().collect::<String>().into(),
            steps: steps.into(),
            min_middle_chars,
            required_middle: required_middle.into(),
        })
    }

    pub(crate) fn is_match(&self, path: &str) -> bool {
        let ends = self.prefix.len() + self.suffix.len();
        if path.len() < ends || !path.starts_with(&*self.prefix) || !path.ends_with(&*self.suffix) {
            return false;
        }
        let middle = &path[self.prefix.len()..path.len() - self.suffix.len()];
        // Bytes bound characters from above, so this rejects only paths that cannot match.
        middle.len() >= self.min_middle_chars
            && contains_in_order(middle, &self.required_middle)
            && self.middle_matches(middle)
    }

    fn middle_matches(&self, path: &str) -> bool {
        let mut live = Positions::new(self.steps.len());
        let mut next = Positions::new(self.steps.len());
        self.enter(&mut live, Position::Before(0));
        for c in path.chars() {
            next.clear();
            for &position in &live.list {
                match position {
                    Position::Before(k) => {
                        if let Some(Step::Chars { set, repeat }) = self.steps.get(k)
                            && set.accepts(c)
                        {
                            self.enter(
                                &mut next,
                                Position::Before(if *repeat { k } else { k + 1 }),
                            );
                        }
                    }
                    Position::InsideDirs(k) => {
                        if c != '\n' {
                            next.insert(Position::InsideDirs(k));
                        }
                        if c == '/' {
                            self.enter(&mut next, Position::Before(k + 1));
                        }
                    }
                }
            }
            std::mem::swap(&mut live, &mut next);
            if live.list.is_empty() {
                return false;
            }
        }
        live.contains(Position::Before(self.steps.len()))
    }

    /// Adds `position` and every position reachable from it without reading a character (past
    /// steps that can match nothing); they only lead forward, so this is a walk, not a search.
    fn enter(&self, positions: &mut Positions, mut position: Position) {
        while positions.insert(position) {
            let Position::Before(k) = position else {
                return;
            };
            match self.steps.get(k) {
                Some(Step::Chars { repeat: true, .. }) => position = Position::Before(k + 1),
                Some(Step::AnyDirs) => {
                    positions.insert(Position::InsideDirs(k));
                    position = Position::Before(k + 1);
                }
                Some(Step::Chars { repeat: false, .. }) | None => return,
            }
        }
    }
}

impl Step {
    fn matches_empty(&self) -> bool {
        matches!(self, Step::AnyDirs | Step::Chars { repeat: true, .. })
    }
}

/// Where the automaton can be after the text read so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Before step `k` (`k == steps.len()` is the end: a match).
    Before(usize),
    /// Inside step `k`'s `(.*/)`: more of its text may follow before the `/` that ends it.
    InsideDirs(usize),
}

/// A set of positions: a list to walk, and one flag per position to keep the list free of
/// duplicates. Clearing walks the list, so it costs what was live, not the pattern's length.
struct Positions {
    list: Vec<Position>,
    present: Vec<bool>,
}

impl Positions {
    fn new(steps: usize) -> Self {
        Self {
            list: Vec::new(),
            present: vec![false; 2 * steps + 2],
        }
    }

    fn slot(position: Position) -> usize {
        match position {
            Position::Before(k) => 2 * k,
            Position::InsideDirs(k) => 2 * k + 1,
        }
    }

    /// Adds `position`; false when it was already there.
    fn insert(&mut self, position: Position) -> bool {
        let slot = Self::slot(position);
        if self.present[slot] {
            return false;
        }
        self.present[slot] = true;
        self.list.push(position);
        true
    }

    fn contains(&self, position: Position) -> bool {
        self.present[Self::slot(position)]
    }

    fn clear(&mut self) {
        for position in self.list.drain(..) {
            self.present[Self::slot(position)] = false;
        }
    }
}

/// Whether the characters of `required` occur in `text` in this order (not necessarily together).
fn contains_in_order(text: &str, required: &str) -> bool {
    let mut text = text.chars();
    required.chars().all(|wanted| text.any(|c| c == wanted))
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

    /// The same text read by the `regex` crate is the oracle: every construct `Glob` reads means
    /// the same there.
    #[test]
    fn matches_like_the_regex_crate_on_generated_patterns() {
        use proptest::prelude::*;
        let atoms = [
            "a", "b", "/", "\\.", "[^/]", "[^/]*", "(.*/)?", ".*", "[a-b]", "[^a]*",
        ];
        let pattern = prop::collection::vec(prop::sample::select(atoms.to_vec()), 0..8)
            .prop_map(|parts| format!("^{}$", parts.concat()));
        let path =
            prop::collection::vec(prop::sample::select(vec!['a', 'b', '/', '.', '\n']), 0..10)
                .prop_map(|chars| chars.into_iter().collect::<String>());
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        runner
            .run(&(pattern, path), |(go, path)| {
                let expected = regex::Regex::new(&go).expect("valid").is_match(&path);
                prop_assert_eq!(glob(&go).is_match(&path), expected, "{} {:?}", go, path);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn repeated_steps_that_match_nothing_are_kept_once() {
        let many = glob(&format!("^x{}y$", "(.*/)?".repeat(50)));
        assert_eq!(many, glob("^x(.*/)?y$"));
        assert_eq!(glob("^a[^/]*[^/]*b$"), glob("^a[^/]*b$"));
        // Different sets, or a step that must read a character, are not merged.
        assert_ne!(glob("^a[^/]*.*b$"), glob("^a[^/]*b$"));
        assert_ne!(glob("^a[^/][^/]b$"), glob("^a[^/]b$"));
    }

    #[test]
    fn unusual_regexps_are_left_to_the_regex_crate() {
        for go in ["^a\\d$", "^[[:alpha:]]$", "^a^b$", "^[z-a]$", "^a"] {
            assert!(Glob::from_go_regex(go).is_none(), "{go}");
        }
    }
}
