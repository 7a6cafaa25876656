//! Runs the git binary; no git library (libgit2 lacks shallow support and gitoxide lacks
//! promisor objects, reference §2.6).
//!
//! Owns: every git invocation buildopt makes — diff, ls-tree, show, rev-parse, merge-base,
//! describe, fetch/deepen. Each one runs with repository hooks and fsmonitor off, `quotepath`
//! off, without the caller's `GIT_DIR`/`GIT_WORK_TREE`/`GIT_INDEX_FILE`, and never changes any
//! git configuration. Lists are read with `-z`; diffs never detect renames (reference §3).
//!
//! Trust: buildopt trusts a repository exactly when plain git does. A checkout owned by another
//! user is refused unless `safe.directory` (system or global config) names it; buildopt never
//! overrides that. Fetches also ignore every setting of the repository's own config that would
//! run a command ([`FETCH_CONFIG`]).

mod parse;

mod blobs;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub use parse::ParseError;

/// The empty tree, the base of a diff for a repository's initial commit.
pub const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// Options on every git invocation: repository-controlled hooks and fsmonitor commands must not
/// run in CI, and paths must come out as raw bytes.
const SAFE_CONFIG: [&str; 6] = [
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.quotepath=off",
];

/// Options on every fetch: a checkout's `.git/config` comes from whoever prepared the runner's
/// folder, so nothing in it may choose a command to run. `ext::` (and any transport not listed)
/// is refused, `git://` too (its `core.gitProxy` is a command), ssh runs as `ssh`, credential
/// helpers and askpass programs are dropped. `remote.<name>.uploadpack` is overridden by
/// `--upload-pack` on the command line (see `Git::fetch_with`).
const FETCH_CONFIG: [&str; 20] = [
    "-c",
    "protocol.allow=never",
    "-c",
    "protocol.file.allow=always",
    "-c",
    "protocol.https.allow=always",
    "-c",
    "protocol.http.allow=always",
    "-c",
    "protocol.ssh.allow=always",
    "-c",
    "protocol.git.allow=never",
    "-c",
    "protocol.ext.allow=never",
    "-c",
    "core.sshCommand=ssh",
    "-c",
    "credential.helper=",
    "-c",
    "core.askPass=",
];

/// Variables a caller may have exported that would point git at another repository or index.
const FOREIGN_REPO_VARS: [&str; 3] = ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"];

/// Errors from running git.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The git binary could not be started.
    #[error("could not run git: {0}")]
    NotFound(#[source] std::io::Error),
    /// The directory is not inside a git work tree.
    #[error("{path} is not inside a git repository")]
    NotARepository { path: PathBuf },
    /// A git command failed.
    #[error("`git {args}` failed: {stderr}")]
    Command { args: String, stderr: String },
    /// git refuses the repository because another user owns it, and no `safe.directory` in the
    /// system or global config trusts it. buildopt trusts exactly what plain git trusts.
    #[error(
        "git does not trust the repository at {path}: it is owned by another user. \
         If this checkout is yours to build, trust it with:\n  \
         git config --global --add safe.directory {path}"
    )]
    Untrusted { path: String },
    /// A git command succeeded but printed something buildopt cannot read.
    #[error("could not read the output of `git {args}`: {source}")]
    Output {
        args: String,
        #[source]
        source: ParseError,
    },
}

/// How a path changed between two commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    Added,
    Deleted,
    /// Content or mode (`chmod +x`) changed, or a submodule pointer moved.
    Modified,
    /// File ↔ symlink ↔ submodule.
    TypeChanged,
    Unmerged,
    Unknown,
}

/// One changed path, relative to the repository root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub status: ChangeStatus,
    pub path: String,
}

/// One blob (or gitlink) of a tree listing. The mode and object id are held inline: a listing
/// of 100,000 files then costs one allocation per file (its path), not three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// Repository-relative path.
    pub path: String,
    mode: InlineAscii<8>,
    oid: InlineAscii<64>,
}

impl TreeEntry {
    /// An entry; `None` when the mode or the object id is not short ASCII as git prints them
    /// (at most 8 and 64 characters: `100644`, a SHA-1 or SHA-256 in hex).
    pub fn new(path: String, mode: &str, oid: &str) -> Option<Self> {
        Some(Self {
            path,
            mode: InlineAscii::new(mode)?,
            oid: InlineAscii::new(oid)?,
        })
    }

    /// Octal mode as git prints it (`100644`, `100755`, `120000`, `160000`).
    pub fn mode(&self) -> &str {
        self.mode.as_str()
    }

    /// The object id in hex.
    pub fn oid(&self) -> &str {
        self.oid.as_str()
    }
}

/// Up to `N` ASCII characters without a heap allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
struct InlineAscii<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> InlineAscii<N> {
    fn new(text: &str) -> Option<Self> {
        if text.len() > N || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0; N];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Some(Self {
            len: text.len() as u8,
            bytes,
        })
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever stored (see `new`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl<const N: usize> std::fmt::Debug for InlineAscii<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A git repository, reached through the git binary.
#[derive(Debug, Clone)]
pub struct Git {
    root: PathBuf,
    /// Whether the clone was shallow when opened (asked together with the top folder, to save
    /// a git process on every run).
    shallow: bool,
    /// The branch HEAD points at, asked once: the base lookup and the tag templates both want it.
    current_branch: OnceLock<Option<String>>,
}

impl Git {
    /// Opens the repository that contains `dir`.
    pub fn open(dir: &Path) -> Result<Self, GitError> {
        if !dir.is_dir() {
            return Err(GitError::NotARepository {
                path: dir.to_path_buf(),
            });
        }
        const TOP_AND_SHALLOW: [&str; 3] =
            ["rev-parse", "--show-toplevel", "--is-shallow-repository"];
        let probe = Self {
            root: dir.to_path_buf(),
            shallow: false,
            current_branch: OnceLock::new(),
        };
        let output = probe.output(&TOP_AND_SHALLOW, false)?;
        if let Some(path) = dubious_path(&output) {
            return Err(GitError::Untrusted { path });
        }
        if !output.status.success() {
            return Err(GitError::NotARepository {
                path: dir.to_path_buf(),
            });
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut lines = stdout.lines();
        let top = lines.next().unwrap_or_default().to_owned();
        if top.is_empty() {
            return Err(GitError::NotARepository {
                path: dir.to_path_buf(),
            });
        }
        Ok(Self {
            root: PathBuf::from(top),
            shallow: lines.next() == Some("true"),
            current_branch: OnceLock::new(),
        })
    }

    /// The top of the work tree.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The full SHA of `rev` as a commit, or None when it does not exist locally.
    ///
    /// Uses `rev-parse --verify -q X^{commit}` with lazy fetching off: a bare `rev-parse <sha>`
    /// echoes a 40-hex SHA even when the object is missing (Turborepo PR #9214), and in a partial
    /// clone an existence check must not turn into a network fetch (reference §2.3).
    pub fn resolve_commit(&self, rev: &str) -> Result<Option<String>, GitError> {
        let peeled = format!("{rev}^{{commit}}");
        self.optional_line(
            &["rev-parse", "--verify", "-q", "--end-of-options", &peeled],
            true,
        )
    }

    /// [`Git::resolve_commit`] for several revisions through one `git cat-file --batch-check`
    /// (the same `X^{commit}` peeling, lazy fetching off): one process instead of one each.
    pub fn resolve_commits(&self, revs: &[&str]) -> Result<Vec<Option<String>>, GitError> {
        // A revision with a line break cannot be a ref; it would split the request.
        let asked: Vec<&str> = revs
            .iter()
            .copied()
            .filter(|rev| !rev.contains(['\n', '\r']))
            .collect();
        if asked.is_empty() {
            return Ok(vec![None; revs.len()]);
        }
        let request: String = asked
            .iter()
            .map(|rev| format!("{rev}^{{commit}}\n"))
            .collect();
        let answers = self.batch_check(&request)?;
        let mut answers =
            parse::batch_check(&answers, asked.len()).map_err(|source| GitError::Output {
                args: "cat-file --batch-check".into(),
                source,
            })?;
        answers.reverse();
        Ok(revs
            .iter()
            .map(|rev| {
                if rev.contains(['\n', '\r']) {
                    None
                } else {
                    answers.pop().flatten()
                }
            })
            .collect())
    }

    /// Runs `git cat-file --batch-check` on `request` (one object name per line).
    fn batch_check(&self, request: &str) -> Result<Vec<u8>, GitError> {
        let mut child = self
            .command(&["cat-file", "--batch-check"], true)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(GitError::NotFound)?;
        // The request is a few short lines: it fits the pipe, so writing before reading is safe.
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(request.as_bytes())
                .map_err(GitError::NotFound)?;
        }
        let output = child.wait_with_output().map_err(GitError::NotFound)?;
        if output.status.success() {
            Ok(output.stdout)
        } else {
            Err(command_error(&["cat-file", "--batch-check"], &output))
        }
    }

    /// Changed paths from `base` to `head` (base may be [`EMPTY_TREE`]).
    ///
    /// Two-dot, no rename detection (its output depends on the size of the change and it
    /// downloads blobs in partial clones, reference §3), submodule pointer bumps included.
    pub fn diff(&self, base: &str, head: &str) -> Result<Vec<Change>, GitError> {
        if base == head {
            return Ok(Vec::new());
        }
        let args = [
            "diff",
            "--no-ext-diff",
            "--no-textconv",
            "--no-renames",
            "--no-relative",
            "--no-color",
            "--ignore-submodules=none",
            "--name-status",
            "-z",
            "--end-of-options",
            base,
            head,
            "--",
        ];
        let stdout = self.stdout(&args)?;
        parse::name_status(&stdout).map_err(|source| GitError::Output {
            args: args.join(" "),
            source,
        })
    }

    /// Every blob of `rev`'s tree, recursively.
    pub fn tree_entries(&self, rev: &str) -> Result<Vec<TreeEntry>, GitError> {
        if rev == EMPTY_TREE {
            return Ok(Vec::new());
        }
        let args = [
            "ls-tree",
            "-r",
            "-z",
            "--full-tree",
            "--end-of-options",
            rev,
        ];
        self.streamed(&args, parse::ls_tree_stream)?
            .map_err(|source| GitError::Output {
                args: args.join(" "),
                source,
            })
    }

    /// Runs `args` and hands its stdout to `read` while git writes it (a large listing is parsed
    /// as it arrives instead of after git ends). A reader that stops early ends git.
    fn streamed<T>(
        &self,
        args: &[&str],
        read: impl FnOnce(std::io::BufReader<std::process::ChildStdout>) -> std::io::Result<T>,
    ) -> Result<T, GitError> {
        use std::io::Read as _;
        let mut child = self
            .command(args, false)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(GitError::NotFound)?;
        // Drained beside stdout, so git never waits on a full stderr pipe.
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let errors = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = stderr.read_to_end(&mut text);
            text
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        // The reader owns the pipe: once it returns, git's writes fail and git ends.
        let read = read(std::io::BufReader::with_capacity(1 << 16, stdout));
        if read.is_err() {
            let _ = child.kill();
        }
        let status = child.wait().map_err(GitError::NotFound)?;
        let stderr = errors.join().unwrap_or_default();
        let mut stderr = String::from_utf8_lossy(&stderr).trim().to_owned();
        match read {
            Ok(value) if status.success() => return Ok(value),
            Ok(_) => {}
            Err(error) => stderr.push_str(&format!(" (reading its output: {error})")),
        }
        Err(GitError::Command {
            args: args.join(" "),
            stderr,
        })
    }

    /// A file's content at `rev`, or None when it does not exist there (or is a directory).
    pub fn show(&self, rev: &str, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        let spec = format!("{rev}:{path}");
        let Some(oid) = self.optional_line(
            &["rev-parse", "--verify", "-q", "--end-of-options", &spec],
            false,
        )?
        else {
            return Ok(None);
        };
        let output = self.output(&["cat-file", "blob", &oid], false)?;
        if output.status.success() {
            return Ok(Some(output.stdout));
        }
        match self
            .optional_line(&["cat-file", "-t", &oid], false)?
            .as_deref()
        {
            Some("blob") => Err(command_error(&["cat-file", "blob", &oid], &output)),
            _ => Ok(None),
        }
    }

    /// The best common ancestor of `a` and `b`, or None when the local history has none.
    pub fn merge_base(&self, a: &str, b: &str) -> Result<Option<String>, GitError> {
        self.optional_line(&["merge-base", "--end-of-options", a, b], true)
    }

    /// True when `ancestor` is reachable from `descendant` (a commit is its own ancestor).
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, GitError> {
        let args = [
            "merge-base",
            "--is-ancestor",
            "--end-of-options",
            ancestor,
            descendant,
        ];
        let output = self.output(&args, true)?;
        match output.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(command_error(&args, &output)),
        }
    }

    /// The parents of commit `rev`, as recorded locally (none for a root or a shallow boundary).
    pub fn parents(&self, rev: &str) -> Result<Vec<String>, GitError> {
        let args = [
            "rev-list",
            "--parents",
            "-n",
            "1",
            "--end-of-options",
            rev,
            "--",
        ];
        let stdout = self.stdout(&args)?;
        let line = String::from_utf8_lossy(&stdout);
        Ok(line.split_whitespace().skip(1).map(str::to_owned).collect())
    }

    /// The branch HEAD points at, or None when HEAD is detached.
    pub fn current_branch(&self) -> Result<Option<String>, GitError> {
        if let Some(branch) = self.current_branch.get() {
            return Ok(branch.clone());
        }
        let branch = self.optional_line(&["symbolic-ref", "-q", "--short", "HEAD"], false)?;
        Ok(self.current_branch.get_or_init(|| branch).clone())
    }

    /// True when the repository was a shallow clone when it was opened.
    pub fn is_shallow(&self) -> Result<bool, GitError> {
        Ok(self.shallow)
    }

    /// True when `sha` is a shallow boundary: its parents exist upstream but were not fetched.
    pub fn is_shallow_boundary(&self, sha: &str) -> Result<bool, GitError> {
        let path = self.stdout(&["rev-parse", "--git-path", "shallow"])?;
        let path = self
            .root
            .join(String::from_utf8_lossy(&path).trim_end_matches('\n'));
        let listed = std::fs::read_to_string(path).unwrap_or_default();
        Ok(listed.lines().any(|line| line.trim() == sha))
    }

    /// The number of commits reachable from any ref; grows while deepening works.
    pub fn commit_count(&self) -> Result<u64, GitError> {
        let stdout = self.stdout(&["rev-list", "--count", "--all"])?;
        Ok(String::from_utf8_lossy(&stdout).trim().parse().unwrap_or(0))
    }

    /// The nearest tag reachable from `rev` (lightweight or annotated), or None.
    pub fn nearest_tag(&self, rev: &str) -> Result<Option<String>, GitError> {
        self.optional_line(
            &["describe", "--tags", "--abbrev=0", "--end-of-options", rev],
            false,
        )
    }

    /// `git fetch --no-tags --deepen=<depth> <remote> <refspecs>`: extends a shallow history.
    pub fn deepen(&self, remote: &str, depth: u32, refspecs: &[String]) -> Result<(), GitError> {
        let depth = format!("--deepen={depth}");
        self.fetch_with(remote, refspecs, &depth)
    }

    /// `git fetch --no-tags [--depth=<depth>] <remote> <refspecs>`: fetches missing commits or
    /// branches (`depth` keeps a shallow clone shallow; deepening then works from there).
    pub fn fetch(
        &self,
        remote: &str,
        refspecs: &[String],
        depth: Option<u32>,
    ) -> Result<(), GitError> {
        let depth = depth.map(|d| format!("--depth={d}"));
        self.fetch_with(remote, refspecs, depth.as_deref().unwrap_or("--quiet"))
    }

    /// `git fetch` with [`FETCH_CONFIG`] and `--upload-pack` pinned, so the remote's configured
    /// `uploadpack` command never runs.
    fn fetch_with(&self, remote: &str, refspecs: &[String], depth: &str) -> Result<(), GitError> {
        let mut args: Vec<&str> = FETCH_CONFIG.to_vec();
        args.extend([
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--upload-pack=git-upload-pack",
            depth,
            "--end-of-options",
            remote,
        ]);
        args.extend(refspecs.iter().map(String::as_str));
        self.stdout(&args).map(drop)
    }

    /// True when a remote called `name` is configured.
    pub fn has_remote(&self, name: &str) -> Result<bool, GitError> {
        let stdout = self.stdout(&["remote"])?;
        Ok(String::from_utf8_lossy(&stdout)
            .lines()
            .any(|line| line == name))
    }

    /// Runs git and returns stdout, failing on a non-zero exit.
    fn stdout(&self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        let output = self.output(args, false)?;
        if output.status.success() {
            Ok(output.stdout)
        } else {
            Err(command_error(args, &output))
        }
    }

    /// Runs a query whose exit code 1 means "no such thing": Some(first line) on 0, None on 1.
    fn optional_line(
        &self,
        args: &[&str],
        no_lazy_fetch: bool,
    ) -> Result<Option<String>, GitError> {
        let output = self.output(args, no_lazy_fetch)?;
        match output.status.code() {
            Some(0) => Ok(Some(
                String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            )),
            Some(1) | Some(128) if looks_like_absence(&output) => Ok(None),
            _ => Err(command_error(args, &output)),
        }
    }

    /// Runs git with the safety options and a scrubbed environment; never checks the status.
    fn output(&self, args: &[&str], no_lazy_fetch: bool) -> Result<Output, GitError> {
        self.command(args, no_lazy_fetch)
            .stdin(Stdio::null())
            .output()
            .map_err(GitError::NotFound)
    }

    /// A git command with the safety options and a scrubbed environment, in the work tree.
    fn command(&self, args: &[&str], no_lazy_fetch: bool) -> Command {
        let mut command = Command::new("git");
        command.args(SAFE_CONFIG);
        command.args(args).current_dir(&self.root);
        for var in FOREIGN_REPO_VARS {
            command.env_remove(var);
        }
        // Fetches must fail rather than wait for a password prompt nobody can answer in CI.
        command.env("GIT_TERMINAL_PROMPT", "0").env("LC_ALL", "C");
        if no_lazy_fetch {
            command.env("GIT_NO_LAZY_FETCH", "1");
        }
        command
    }
}

/// Exit 1 is git's "not found" for rev-parse/merge-base/symbolic-ref; exit 128 means absence only
/// when git says it could not find a name (describe, `rev:path` lookups), not for real failures.
fn looks_like_absence(output: &Output) -> bool {
    if output.status.code() == Some(1) {
        return true;
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    [
        "No names found",
        "No tags can describe",
        "cannot describe",
        "Not a valid object name",
        "does not exist in",
    ]
    .iter()
    .any(|needle| stderr.contains(needle))
}

fn dubious_path(output: &Output) -> Option<String> {
    if output.status.success() {
        return None;
    }
    parse::dubious_ownership_path(&String::from_utf8_lossy(&output.stderr)).map(str::to_owned)
}

fn command_error(args: &[&str], output: &Output) -> GitError {
    GitError::Command {
        args: args.join(" "),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    }
}
