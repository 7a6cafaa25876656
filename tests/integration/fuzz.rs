//! Fuzz-style tests of every parser that reads what a repository, a cache or a CI system hands
//! buildopt (issue 13): the Dockerfile parser with its ARG expansion, ARG/ENV word expansion on
//! its own, `.dockerignore`, compose files, `buildopt.toml`, the cache archive reader, the
//! `docker save` reader and the GitHub event payload.
//!
//! Each target has a corpus under `tests/fixtures/fuzz/<target>/`, replayed by
//! `fuzz::replay_<target>`, and a property, `fuzz::fuzz_<target>`, that feeds it inputs made
//! from a small grammar near its format, from mutations of its corpus and from plain bytes.
//! Corpus files named `slow-*` are inputs that once hung a parser: they are replayed but not
//! mutated, since each costs as much as hundreds of ordinary cases.
//! Every input must give a result or an error within [`CASE_DEADLINE`], never a panic; some
//! targets also check an answer against another way of computing it.
//!
//! How much to fuzz comes from the environment: `BUILDOPT_FUZZ_CASES` cases (default 64, so the
//! ordinary suite stays fast), or with `BUILDOPT_FUZZ_SECONDS` rounds of them until each target's
//! share of those seconds is spent; `BUILDOPT_FUZZ_SEED` replays a seed a failure printed.
//! Stable Rust has no `cargo fuzz`; proptest's runner gives seeded, shrinking generation instead.

mod seeds;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use buildopt::cache::{CacheError, Digest, Limits, Store, archive};
use buildopt::ci::{self, CiError};
use buildopt::env::Env;
use buildopt::image_archive::{SaveFormatError, read_save};
use buildopt::settings::file as settings_file;
use buildopt::workspace::compose;
use buildopt::workspace::dockerfile::{
    Budget, Dockerfile, Env as Vars, MAX_FILE_BYTES, MAX_WORD_BYTES, expand_word,
};
use buildopt::workspace::dockerignore::{IgnoreRules, PathFilter};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

/// The longest one input may take. Real inputs take milliseconds; the bound is loose because
/// the tests run unoptimised on a busy CI machine, and a hang is what it must catch.
const CASE_DEADLINE: Duration = Duration::from_secs(20);
/// The properties below; each gets this share of `BUILDOPT_FUZZ_SECONDS`.
const TARGETS: u32 = 8;
const DEFAULT_CASES: u32 = 64;
/// The seed of the ordinary suite, so that it runs the same cases every time.
const DEFAULT_SEED: u64 = 13;

// ---------------------------------------------------------------------------------------------
// Harness

/// How long and from which seed one property runs.
struct Plan {
    cases: u32,
    seed: u64,
    until: Option<Instant>,
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a whole number")),
    )
}

fn plan() -> Plan {
    let seconds = env_number("BUILDOPT_FUZZ_SECONDS");
    // A timed run explores new inputs every time; the seed it prints replays them.
    let fresh_seed = || {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(DEFAULT_SEED, |d| d.as_nanos() as u64)
    };
    let seed = env_number("BUILDOPT_FUZZ_SEED").unwrap_or_else(|| match seconds {
        Some(_) => fresh_seed(),
        None => DEFAULT_SEED,
    });
    Plan {
        cases: env_number("BUILDOPT_FUZZ_CASES").map_or(DEFAULT_CASES, |n| n.max(1) as u32),
        seed,
        until: seconds.map(|s| Instant::now() + Duration::from_secs(s) / TARGETS),
    }
}

/// Runs `check` on `input` in a thread of its own, so that a hang fails the test (naming `label`)
/// instead of stalling the suite; a panic in `check` is passed on as it is.
fn within_deadline(label: &str, input: Vec<u8>, check: fn(&[u8])) {
    let (done, finished) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(format!("fuzz {label}"))
        .spawn(move || {
            check(&input);
            let _ = done.send(());
        })
        .expect("spawn a fuzz worker");
    match finished.recv_timeout(CASE_DEADLINE) {
        Ok(()) => worker.join().expect("joined"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the worker sends before it ends"),
        },
        // The worker is left running: a thread cannot be stopped, and the test fails anyway.
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{label}: no answer within {CASE_DEADLINE:?} (a hang)")
        }
    }
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(target)
}

/// The corpus of `target`, sorted by file name.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let bytes = std::fs::read(&path).expect("corpus file");
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Feeds every corpus file of `target` to `check`.
fn replay(target: &str, check: fn(&[u8])) {
    let files = corpus(target);
    assert!(
        files.len() >= 10,
        "{target}: a corpus of {} files; seed it with at least 10",
        files.len()
    );
    for (path, bytes) in files {
        within_deadline(&path.display().to_string(), bytes, check);
    }
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes
}

/// Where a failing input is written, to be added to the corpus once fixed.
fn save_finding(target: &str, seed: u64, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-findings");
    std::fs::create_dir_all(&dir).expect("findings folder");
    let path = dir.join(format!("{target}-{seed}"));
    std::fs::write(&path, input).expect("finding");
    path
}

/// Runs `check` on inputs from `strategy`: one round of `plan.cases` cases, or rounds until the
/// target's share of the time is spent. Round `n` uses seed `plan.seed + n`; a failure names it
/// and saves the shrunk input.
#[allow(clippy::print_stderr)] // how much was fuzzed, and the seed, belong in the test log
fn fuzz(target: &str, strategy: impl Strategy<Value = Vec<u8>>, check: fn(&[u8])) {
    let plan = plan();
    let started = Instant::now();
    let mut rounds = 0u64;
    loop {
        let seed = plan.seed.wrapping_add(rounds);
        let config = Config {
            cases: plan.cases,
            failure_persistence: None,
            // Shrinking a hang costs a deadline per step; a minute of it is enough.
            max_shrink_time: 60_000,
            ..Config::default()
        };
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(seed));
        let mut runner = TestRunner::new_with_rng(config, rng);
        let result = runner.run(&strategy, |input| {
            within_deadline(target, input, check);
            Ok(())
        });
        match result {
            Ok(()) => {}
            Err(TestError::Fail(reason, input)) => {
                let saved = save_finding(target, seed, &input);
                panic!(
                    "fuzz {target}: {reason}\n  input ({} bytes, first 400): {:?}\n  saved to {}\n  \
                     replay: BUILDOPT_FUZZ_SEED={seed} cargo test --test integration fuzz_{target}",
                    input.len(),
                    String::from_utf8_lossy(&input[..input.len().min(400)]),
                    saved.display()
                );
            }
            Err(error) => panic!("fuzz {target}: seed {seed}: {error}"),
        }
        rounds += 1;
        if plan.until.is_none_or(|until| Instant::now() >= until) {
            break;
        }
    }
    eprintln!(
        "fuzz {target}: {} cases in {rounds} round(s) of seeds {}.., {:.1?}",
        u64::from(plan.cases) * rounds,
        plan.seed,
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Input strategies shared by the targets

/// Text made of lines, each a few fragments of `vocabulary`, joined by `\n` or `\r\n`.
fn lines_of(vocabulary: &'static [&'static str], max_lines: usize) -> BoxedStrategy<Vec<u8>> {
    let line = prop::collection::vec(prop::sample::select(vocabulary), 0..8)
        .prop_map(|fragments| fragments.concat());
    (prop::collection::vec(line, 0..max_lines), any::<bool>())
        .prop_map(|(lines, crlf)| lines.join(if crlf { "\r\n" } else { "\n" }).into_bytes())
        .boxed()
}

/// One edit of a seed; positions wrap around the current length.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    /// Repeat the bytes at `start..start+len` `times` times, right after them.
    Repeat(usize, usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, mask)| Edit::Flip(at, mask | 1)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert(at, byte)),
        any::<usize>().prop_map(Edit::Remove),
        (any::<usize>(), 1usize..64, 1usize..64).prop_map(|(s, l, t)| Edit::Repeat(s, l, t)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = bytes.len();
        let at = |i: usize| if len == 0 { 0 } else { i % len };
        match *edit {
            Edit::Flip(i, mask) if len > 0 => bytes[at(i)] ^= mask,
            Edit::Insert(i, byte) => bytes.insert(if len == 0 { 0 } else { i % (len + 1) }, byte),
            Edit::Remove(i) if len > 0 => {
                bytes.remove(at(i));
            }
            Edit::Repeat(i, span, times) if len > 0 => {
                let start = at(i);
                let end = (start + span).min(len);
                let piece = bytes[start..end].repeat(times);
                bytes.splice(end..end, piece);
            }
            Edit::Truncate(i) if len > 0 => bytes.truncate(at(i)),
            _ => {}
        }
    }
    bytes
}

/// Seeds with a few random edits each.
fn mutations_of(seeds: Vec<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    assert!(!seeds.is_empty(), "no seeds to mutate");
    (
        prop::sample::select(seeds),
        prop::collection::vec(edit(), 0..6),
    )
        .prop_map(|(seed, edits)| apply(seed, &edits))
        .boxed()
}

fn corpus_seeds(target: &str) -> Vec<Vec<u8>> {
    corpus(target)
        .into_iter()
        .filter(|(path, _)| {
            !path
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("slow-"))
        })
        .map(|(_, bytes)| bytes)
        .collect()
}

fn any_bytes() -> BoxedStrategy<Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..512).boxed()
}

/// What a target is fed: grammar-made text, mutated corpus files and plain bytes.
fn inputs(target: &str, grammar: BoxedStrategy<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => grammar,
        3 => mutations_of(corpus_seeds(target)),
        1 => any_bytes(),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Dockerfile parser and the reference resolution that expands ARGs

const DOCKERFILE_WORDS: &[&str] = &[
    "FROM ",
    "from ",
    "ARG ",
    "ENV ",
    "RUN ",
    "COPY ",
    "ADD ",
    "WORKDIR ",
    "LABEL ",
    "ONBUILD ",
    "SHELL ",
    "CMD ",
    "ENTRYPOINT ",
    "HEALTHCHECK ",
    "USER ",
    "EXPOSE ",
    "VOLUME ",
    "MAINTAINER ",
    " AS ",
    " as ",
    "base",
    "scratch",
    "alpine:3.19",
    "reg:5000/team/app:1",
    "stage",
    "0",
    "1",
    "--from=",
    "--platform=$BUILDPLATFORM ",
    "--mount=type=bind,from=",
    "--mount=type=cache,target=/c ",
    "--chown=1:1 ",
    "$A",
    "${A}",
    "${A:-x}",
    "${A-x}",
    "${A:+y}",
    "${A+y}",
    "${A:?unset}",
    "${A?}",
    "${",
    "}",
    "$",
    "${A:-${B:-$C}}",
    "${A%%x}",
    "${A/x/y}",
    "A=",
    "B=$A$A$A$A",
    "C=\"$B $B\"",
    "\"",
    "'",
    "\\",
    "`",
    "\\\n",
    "`\n",
    " ",
    "\t",
    "=",
    ",",
    "[",
    "]",
    "[\"sh\", \"-c\"]",
    "<<EOF",
    "<<-EOF",
    "<<\"EOF\"",
    "EOF",
    "<<'X' ",
    "X",
    "#",
    "# syntax=docker/dockerfile:1",
    "# escape=`",
    "# escape=\\",
    "# check=skip=all",
    "\u{feff}",
    "é",
    "\u{202e}",
    "\0",
];

fn check_dockerfile(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let Ok(dockerfile) = Dockerfile::parse(&text) else {
        return;
    };
    let build_args = BTreeMap::from([("A".to_owned(), "a".repeat(64))]);
    let _ = dockerfile.external_refs(&BTreeMap::new(), None);
    let _ = dockerfile.external_refs(&build_args, None);
    let _ = dockerfile.intermediate_stages(&build_args, None);
    for stage in dockerfile.stage_names() {
        let _ = dockerfile.external_refs(&build_args, Some(&stage));
        let _ = dockerfile.intermediate_stages(&build_args, Some(&stage));
    }
    let _ = dockerfile.external_refs(&build_args, Some("no-such-stage"));
    for instruction in dockerfile.instructions() {
        let _ = instruction.words(dockerfile.escape());
    }
}

#[test]
fn replay_dockerfile() {
    replay("dockerfile", check_dockerfile);
}

#[test]
fn fuzz_dockerfile() {
    let grammar = lines_of(DOCKERFILE_WORDS, 24);
    fuzz(
        "dockerfile",
        inputs("dockerfile", grammar),
        check_dockerfile,
    );
}

// ---------------------------------------------------------------------------------------------
// ARG/ENV word expansion
//
// Input format: lines `NAME=VALUE` define variables in order, each value expanded with the
// variables before it (as ARG and ENV chains are); the line `--` ends them; every later line is
// a word to expand. Everything is expanded twice, with `\` and with `` ` `` as the escape.

fn check_expansion(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for escape in ['\\', '`'] {
        expand_all(&text, escape);
    }
}

fn expand_all(text: &str, escape: char) {
    let mut vars = Vars::new();
    let mut budget = Budget::default();
    let mut total = 0usize;
    let mut expand = |word: &str, vars: &Vars| {
        let out = expand_word(word, vars, escape, &mut budget).ok()?;
        // The limit is on what expansion adds: a long literal word is as long as the file.
        assert!(
            out.len() <= word.len() + MAX_WORD_BYTES,
            "a word of {} bytes expanded to {} bytes",
            word.len(),
            out.len()
        );
        total += out.len();
        assert!(
            total <= MAX_FILE_BYTES,
            "expansions add up to {total} bytes"
        );
        Some(out)
    };
    let mut lines = text.lines();
    for line in lines.by_ref() {
        if line == "--" {
            break;
        }
        let (name, value) = line.split_once('=').unwrap_or((line, ""));
        if let Some(value) = expand(value, &vars) {
            vars.insert(name.to_owned(), value);
        }
    }
    for word in lines {
        expand(word, &vars);
    }
}

const EXPANSION_NAMES: &[&str] = &["A", "B", "C", "_x", "a1", "HOME", ""];
const EXPANSION_PIECES: &[&str] = &[
    "$A",
    "$B",
    "$C",
    "${A}",
    "${B}${B}",
    "${C:-$A$A}",
    "${A-x}",
    "${_x:+$B$B$B}",
    "${A+y}",
    "${A:?msg}",
    "${Z?}",
    "${A:-${B:-${C}}}",
    "${",
    "}",
    "$",
    "$$",
    "x",
    "word",
    "\"",
    "'",
    "\\",
    "`",
    "\\$A",
    "`$A",
    "'$A'",
    "\"$A\"",
    " ",
    "é",
    "${A%x}",
    "${A#x}",
    "${A/x/y}",
    "${1}",
    "$@",
    "${A:}",
    "${:-x}",
];

fn expansion_text() -> BoxedStrategy<Vec<u8>> {
    let piece = prop::sample::select(EXPANSION_PIECES);
    let value = prop::collection::vec(piece, 0..10).prop_map(|p| p.concat());
    let definition = (prop::sample::select(EXPANSION_NAMES), value.clone())
        .prop_map(|(name, value)| format!("{name}={value}"));
    (
        prop::collection::vec(definition, 0..12),
        prop::collection::vec(value, 1..8),
    )
        .prop_map(|(definitions, words)| {
            let mut text = definitions.join("\n");
            text.push_str("\n--\n");
            text.push_str(&words.join("\n"));
            text.into_bytes()
        })
        .boxed()
}

#[test]
fn replay_arg_expansion() {
    replay("arg_expansion", check_expansion);
}

#[test]
fn fuzz_arg_expansion() {
    fuzz(
        "arg_expansion",
        inputs("arg_expansion", expansion_text()),
        check_expansion,
    );
}

// ---------------------------------------------------------------------------------------------
// .dockerignore: parsing, and the walkers' shortcuts against the plain answer

/// Paths near the patterns: each pattern's literal parts as a path, and a file below it.
fn paths_near(text: &str) -> Vec<String> {
    let mut paths: Vec<String> = ["a", "a/b", "a/b/c.txt", "node_modules/p/LICENSE", "x y/é"]
        .iter()
        .map(|p| (*p).to_owned())
        .collect();
    for line in text.lines().take(32) {
        let literal: String = line
            .chars()
            .filter(|c| !matches!(c, '!' | '*' | '?' | '[' | ']' | '\\' | '\r'))
            .collect();
        let parts: Vec<&str> = literal
            .split('/')
            .map(str::trim)
            .filter(|p| !p.is_empty() && *p != "." && *p != "..")
            .collect();
        if !parts.is_empty() {
            paths.push(parts.join("/"));
            paths.push(format!("{}/file", parts.join("/")));
        }
    }
    paths.sort();
    paths.dedup();
    paths
}

fn check_dockerignore(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let Ok(rules) = IgnoreRules::parse(&text) else {
        return;
    };
    let paths = paths_near(&text);
    let mut filter = PathFilter::new(&rules);
    for path in &paths {
        let excluded = rules.is_excluded(path);
        let _ = rules.is_excluded_classic(path);
        assert_eq!(
            filter.is_excluded(path),
            excluded,
            "PathFilter and is_excluded disagree on {path:?}"
        );
        // A pruned folder must hide nothing that an exception would keep.
        if excluded && rules.can_prune(path) {
            let prefix = format!("{path}/");
            for below in paths.iter().filter(|p| p.starts_with(&prefix)) {
                assert!(
                    rules.is_excluded(below),
                    "{path:?} may be pruned but {below:?} below it is kept"
                );
            }
        }
    }
}

const DOCKERIGNORE_WORDS: &[&str] = &[
    "!",
    "*",
    "**",
    "**/",
    "/",
    "?",
    "[a-z]",
    "[!a]",
    "[^a]",
    "[",
    "]",
    "\\",
    "\\*",
    "\\[",
    "a",
    "b",
    "node_modules",
    ".git",
    "LICENSE",
    "*.txt",
    "c.txt",
    ".",
    "..",
    "./",
    " ",
    "\t",
    "#",
    "é",
    "x y",
    "[a-]",
    "[]a]",
    "[\\]]",
    "\\d",
    "{a,b}",
    "$",
    "^",
    "(",
    ")",
    "|",
    "+",
];

#[test]
fn replay_dockerignore() {
    replay("dockerignore", check_dockerignore);
}

#[test]
fn fuzz_dockerignore() {
    let grammar = lines_of(DOCKERIGNORE_WORDS, 12);
    fuzz(
        "dockerignore",
        inputs("dockerignore", grammar),
        check_dockerignore,
    );
}

// ---------------------------------------------------------------------------------------------
// Compose files

fn check_compose(bytes: &[u8]) {
    let _ = compose::parse(&String::from_utf8_lossy(bytes), "compose.yaml");
}

const COMPOSE_WORDS: &[&str] = &[
    "services:",
    "  app:",
    "  db:",
    "    build: .",
    "    build:",
    "      context: ./app",
    "      dockerfile: Dockerfile",
    "      dockerfile_inline: FROM x",
    "      target: t",
    "      args:",
    "        - A=1",
    "        A: 1",
    "        B:",
    "    image: reg/app:1",
    "      additional_contexts:",
    "        base: docker-image://alpine",
    "x-base: &base",
    "    <<: *base",
    "*base",
    "&a ",
    "*a",
    "<<: [*a, *a]",
    "- ",
    "? ",
    ": ",
    "~",
    "null",
    "true",
    "99999999999999999999999999",
    "-1",
    "1e999",
    "0x1F",
    "{",
    "}",
    "[",
    "]",
    "{}",
    "[]",
    "'",
    "\"",
    "!!binary aGVsbG8=",
    "!!str 1",
    "!custom",
    "---",
    "...",
    "|",
    ">-",
    "\t",
    "#",
    "é",
    "\\u0000",
    "%YAML 1.1",
    "    ",
    "  ",
];

#[test]
fn replay_compose() {
    replay("compose", check_compose);
}

#[test]
fn fuzz_compose() {
    let grammar = lines_of(COMPOSE_WORDS, 24);
    fuzz("compose", inputs("compose", grammar), check_compose);
}

// ---------------------------------------------------------------------------------------------
// buildopt.toml

fn check_settings(bytes: &[u8]) {
    let path = Path::new("buildopt.toml");
    if let Err(error) = settings_file::parse_bytes(bytes, path) {
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
        assert!(
            error.line <= lines,
            "error at line {} of a {lines}-line file",
            error.line
        );
    }
}

const SETTINGS_WORDS: &[&str] = &[
    "[cache]",
    "[notify]",
    "[hooks]",
    "[[images]]",
    "[images.app]",
    "name",
    "path",
    "dockerfile",
    "context",
    "target",
    "depends_on",
    "size_limit_gb",
    "pre_build",
    "post_build",
    "pass_env",
    "build_timeout",
    "slack",
    "github",
    " = ",
    "=",
    "1",
    "-1",
    "0.5",
    "1e400",
    "nan",
    "inf",
    "99999999999999999999999",
    "true",
    "\"x\"",
    "'x'",
    "\"\"\"",
    "'''",
    "[",
    "]",
    "[1, \"a\"]",
    "{ a = 1 }",
    "{",
    "}",
    ".",
    ",",
    "#",
    "\\u0000",
    "\\",
    "é",
    "\t",
    " ",
    "2024-01-01T00:00:00Z",
];

#[test]
fn replay_settings() {
    replay("settings", check_settings);
}

#[test]
fn fuzz_settings() {
    let grammar = lines_of(SETTINGS_WORDS, 16);
    fuzz("settings", inputs("settings", grammar), check_settings);
}

// ---------------------------------------------------------------------------------------------
// Cache archives, imported into a fresh store with tight limits

fn tight_limits() -> Limits {
    Limits {
        max_entries: 64,
        max_total_bytes: 1 << 20,
        max_manifest_bytes: 64 << 10,
        disk: None,
    }
}

fn check_cache_archive(bytes: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive_path = dir.path().join("cache.tar.zst");
    std::fs::write(&archive_path, bytes).expect("archive");
    let store = Store::open(&dir.path().join("store")).expect("store");
    let lock = store.lock(|_| {}).expect("lock");
    let result = archive::import(&store, &lock, &archive_path, &tight_limits());
    if let Err(error) = &result {
        assert!(
            matches!(error, CacheError::BadArchive { .. }),
            "an archive may only be refused, not fail otherwise: {error}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(store.tmp_dir())
        .expect("tmp")
        .map(|e| e.expect("entry").path())
        .collect();
    assert!(left.is_empty(), "staging left behind: {left:?}");
}

/// Mutated tars, compressed afterwards so that the edits reach the tar and the manifest.
fn cache_archive_inputs() -> BoxedStrategy<Vec<u8>> {
    let tars = seeds::cache_tars().into_iter().map(|(_, t)| t).collect();
    let compressed = (mutations_of(tars), any::<bool>()).prop_map(|(tar, use_zstd)| {
        if use_zstd {
            seeds::zstd(&tar)
        } else {
            seeds::gzip(&tar)
        }
    });
    prop_oneof![
        4 => compressed,
        2 => mutations_of(corpus_seeds("cache_archive")),
        1 => any_bytes(),
    ]
    .boxed()
}

#[test]
fn replay_cache_archive() {
    replay("cache_archive", check_cache_archive);
}

#[test]
fn fuzz_cache_archive() {
    fuzz("cache_archive", cache_archive_inputs(), check_cache_archive);
}

// ---------------------------------------------------------------------------------------------
// `docker save` streams, read in memory

/// More than any seed's blob; a stage reads no further.
const MAX_STAGED_BLOB: u64 = 16 << 20;

fn check_docker_save(bytes: &[u8]) {
    let mut stage = |blob: &mut dyn Read| -> Result<(Digest, u64), SaveFormatError> {
        let mut staged = Vec::new();
        blob.take(MAX_STAGED_BLOB)
            .read_to_end(&mut staged)
            .map_err(|e| SaveFormatError::Tar(e.to_string()))?;
        Ok((Digest::of(&staged), staged.len() as u64))
    };
    let Ok(images) = read_save(&mut &bytes[..], &mut stage) else {
        return;
    };
    for image in images {
        assert_eq!(
            image.layers.len(),
            image.diff_ids.len(),
            "an image read from a save has a diff id per layer"
        );
    }
}

#[test]
fn replay_docker_save() {
    replay("docker_save", check_docker_save);
}

#[test]
fn fuzz_docker_save() {
    let generated: Vec<Vec<u8>> = seeds::docker_saves().into_iter().map(|(_, t)| t).collect();
    let inputs = prop_oneof![
        3 => mutations_of(generated),
        3 => mutations_of(corpus_seeds("docker_save")),
        1 => any_bytes(),
    ];
    fuzz("docker_save", inputs, check_docker_save);
}

// ---------------------------------------------------------------------------------------------
// GitHub event payloads, read through `ci::detect` for every kind of event

const EVENTS: &[(&str, &str)] = &[
    ("push", "refs/heads/main"),
    ("push", "refs/tags/v1"),
    ("pull_request", "refs/pull/7/merge"),
    ("pull_request_target", "refs/heads/main"),
    ("merge_group", "refs/heads/gh-readonly-queue/main/pr-7"),
    ("workflow_dispatch", "refs/heads/main"),
    ("schedule", "refs/heads/main"),
    ("release", "refs/tags/v1"),
];

fn check_event_payload(bytes: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("event.json");
    std::fs::write(&path, bytes).expect("payload");
    for (event, git_ref) in EVENTS {
        let env = Env::from_pairs([
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", event),
            ("GITHUB_REF", git_ref),
            ("GITHUB_EVENT_PATH", path.to_str().expect("utf-8 temp path")),
        ]);
        match ci::detect(&env) {
            Ok(_) | Err(CiError::EventPayload { .. }) => {}
            Err(other) => panic!("{event}: not a payload error: {other}"),
        }
    }
}

/// JSON near a payload: the fields the parser reads, with values of every type.
fn payload_json() -> BoxedStrategy<Vec<u8>> {
    const KEYS: &[&str] = &[
        "before",
        "after",
        "forced",
        "created",
        "number",
        "repository",
        "pull_request",
        "merge_group",
        "head",
        "base",
        "sha",
        "ref",
        "head_sha",
        "base_sha",
        "base_ref",
        "default_branch",
        "full_name",
        "action",
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::json!(
            "0000000000000000000000000000000000000000"
        )),
        Just(serde_json::json!("refs/heads/main")),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(prop::sample::select(KEYS), inner, 0..6).prop_map(|map| {
                serde_json::Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
    .prop_map(|value| value.to_string().into_bytes())
    .boxed()
}

#[test]
fn replay_event_payload() {
    replay("event_payload", check_event_payload);
}

#[test]
fn fuzz_event_payload() {
    fuzz(
        "event_payload",
        inputs("event_payload", payload_json()),
        check_event_payload,
    );
}

// ---------------------------------------------------------------------------------------------
// The binary seeds

/// Writes the generated cache archives and save streams into their corpora. Run it after a
/// change to `seeds.rs`, then commit the files.
#[test]
#[ignore = "writes tests/fixtures/fuzz; run by hand after changing the seeds"]
fn write_binary_seeds() {
    let targets = [
        ("cache_archive", seeds::cache_archives()),
        ("docker_save", seeds::docker_saves()),
    ];
    for (target, files) in targets {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).expect("corpus folder");
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).expect("seed");
        }
    }
}

/// The valid seeds are valid, so that mutating them explores past the first check.
#[test]
fn fuzz_seeds_meant_to_be_valid_are_read() {
    for name in [
        "valid.tar.zst",
        "valid.tar.gz",
        "gzip-two-members.tar.gz",
        "empty-manifest.tar.zst",
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = corpus_dir("cache_archive").join(name);
        let store = Store::open(&dir.path().join("store")).expect("store");
        let lock = store.lock(|_| {}).expect("lock");
        archive::import(&store, &lock, &path, &tight_limits())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, images) in [
        ("legacy.tar", 3),
        ("classic-oci.tar", 1),
        ("containerd-index.tar", 1),
        ("oci-index-only.tar", 1),
        ("nested-indexes.tar", 2),
        ("hardlink-and-folders.tar", 3),
    ] {
        let bytes = std::fs::read(corpus_dir("docker_save").join(name)).expect("seed");
        let mut stage = |blob: &mut dyn Read| -> Result<(Digest, u64), SaveFormatError> {
            let mut staged = Vec::new();
            blob.read_to_end(&mut staged).expect("read");
            Ok((Digest::of(&staged), staged.len() as u64))
        };
        let read = read_save(&mut &bytes[..], &mut stage).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(read.len(), images, "{name}");
    }
}
