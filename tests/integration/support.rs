//! Shared fixtures for integration tests: throwaway git repositories.
//!
//! [`TestRepo`] creates a repository in a temporary directory and runs git with a fixed identity,
//! no user or system configuration, and a clock that advances one minute per commit, so SHAs and
//! tag dates are reproducible. It also builds the "CI checkout" shapes the planner cares about: a
//! bare `origin`, shallow `--depth N --no-single-branch` clones of it over `file://`, and event
//! payload files.
//!
//! ```ignore
//! let repo = TestRepo::new();
//! let first = repo.commit_file("app/main.py", "print(1)\n", "first");
//! repo.checkout_new("feature");
//! let head = repo.commit_file("app/x.py", "x\n", "feature work");
//! let git = repo.open();
//! ```

#![allow(dead_code)]

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use buildopt::git::Git;

/// A git repository in its own temporary directory (deleted on drop, together with any origin
/// and clones made from it, which live in the same directory).
pub struct TestRepo {
    /// Keeps the directory alive; `None` for clones, which live inside their parent's directory.
    _dir: Option<tempfile::TempDir>,
    /// The directory holding the work tree, `origin.git`, clones and payload files.
    home: PathBuf,
    /// The work tree.
    path: PathBuf,
    /// Seconds added to the base date for the next commit or tag.
    clock: Cell<u64>,
}

/// 2024-01-01T00:00:00Z: commit dates start here and advance a minute per commit.
const EPOCH: u64 = 1_704_067_200;

impl TestRepo {
    /// A fresh repository on branch `main`, with no commits.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().to_path_buf();
        let path = home.join("repo");
        std::fs::create_dir(&path).expect("create repo dir");
        let repo = Self {
            _dir: Some(dir),
            home,
            path,
            clock: Cell::new(0),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// The work tree.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary directory around the work tree (for payload files and clones).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Opens the repository with the library under test.
    pub fn open(&self) -> Git {
        Git::open(&self.path).expect("open test repo")
    }

    /// Runs git in the work tree; panics with stderr on failure; returns trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        let output = self.try_git(args);
        assert!(
            output.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_owned()
    }

    /// Runs git in the work tree and returns the raw output, whatever the exit code.
    pub fn try_git(&self, args: &[&str]) -> Output {
        let date = format!("@{} +0000", EPOCH + self.clock.get());
        Command::new("git")
            .args(args)
            .current_dir(&self.path)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test Author")
            .env("GIT_AUTHOR_EMAIL", "author@example.com")
            .env("GIT_COMMITTER_NAME", "Test Committer")
            .env("GIT_COMMITTER_EMAIL", "committer@example.com")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .output()
            .expect("run git")
    }

    /// Runs git with `input` on stdin; panics on failure; returns trimmed stdout.
    pub fn git_with_stdin(&self, args: &[&str], input: &[u8]) -> String {
        use std::io::Write;
        let mut child = Command::new("git")
            .args(args)
            .current_dir(&self.path)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run git");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        let output = child.wait_with_output().expect("wait for git");
        assert!(output.status.success(), "git {args:?} failed");
        String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_owned()
    }

    /// Commits a tree of `count` files (`d<i/1000>/f<i>.txt`, all the same blob) without
    /// touching the work tree (which then lacks them: the next [`Self::commit`] would delete
    /// them again); returns the commit SHA. For scale tests.
    pub fn commit_many_files(&self, count: usize) -> String {
        let blob = self.git_with_stdin(&["hash-object", "-w", "--stdin"], b"same\n");
        let mut index = String::with_capacity(count * 80);
        for i in 0..count {
            index.push_str(&format!("100644 {blob}\td{}/f{i}.txt\n", i / 1000));
        }
        self.git_with_stdin(&["update-index", "--add", "--index-info"], index.as_bytes());
        self.tick();
        // No `add -A` here: the files exist only in the index, not in the work tree.
        self.git(&[
            "commit",
            "-q",
            "--no-verify",
            "-m",
            &format!("{count} files"),
        ]);
        self.sha("HEAD")
    }

    /// Writes `content` to `rel` (creating parent directories).
    pub fn write(&self, rel: &str, content: &str) {
        let file = self.path.join(rel);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("create dirs");
        std::fs::write(file, content).expect("write file");
    }

    /// Removes the file `rel`.
    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.path.join(rel)).expect("remove file");
    }

    /// Stages everything and commits (empty commits allowed); returns the new SHA.
    pub fn commit(&self, message: &str) -> String {
        self.tick();
        self.git(&["add", "-A"]);
        self.git(&[
            "commit",
            "-q",
            "--allow-empty",
            "--no-verify",
            "-m",
            message,
        ]);
        self.sha("HEAD")
    }

    /// Writes one file and commits it; returns the new SHA.
    pub fn commit_file(&self, rel: &str, content: &str, message: &str) -> String {
        self.write(rel, content);
        self.commit(message)
    }

    /// Creates `count` empty commits; returns the last SHA.
    pub fn empty_commits(&self, count: usize, prefix: &str) -> String {
        for i in 0..count {
            self.tick();
            self.git(&[
                "commit",
                "-q",
                "--allow-empty",
                "--no-verify",
                "-m",
                &format!("{prefix} {i}"),
            ]);
        }
        self.sha("HEAD")
    }

    /// Creates branch `name` at HEAD without switching to it.
    pub fn branch(&self, name: &str) {
        self.git(&["branch", name]);
    }

    /// Switches to `rev` (a branch, or a commit for a detached HEAD).
    pub fn checkout(&self, rev: &str) {
        self.git(&["checkout", "-q", rev]);
    }

    /// Creates branch `name` at HEAD and switches to it.
    pub fn checkout_new(&self, name: &str) {
        self.git(&["checkout", "-q", "-b", name]);
    }

    /// A lightweight tag at HEAD.
    pub fn tag(&self, name: &str) {
        self.tick();
        self.git(&["tag", name]);
    }

    /// An annotated tag at HEAD.
    pub fn annotated_tag(&self, name: &str, message: &str) {
        self.tick();
        self.git(&["tag", "-a", name, "-m", message]);
    }

    /// The full SHA of `rev`.
    pub fn sha(&self, rev: &str) -> String {
        self.git(&["rev-parse", "--verify", rev])
    }

    /// Creates a bare `origin.git` next to the work tree with every branch and tag, and adds it
    /// as remote `origin` (with `refs/remotes/origin/*` fetched). Returns its `file://` URL.
    pub fn push_to_origin(&self) -> String {
        let bare = self.home.join("origin.git");
        if !bare.exists() {
            self.git(&["init", "-q", "--bare", bare.to_str().expect("utf-8 path")]);
            self.git(&[
                "remote",
                "add",
                "origin",
                bare.to_str().expect("utf-8 path"),
            ]);
        }
        self.git(&[
            "push",
            "-q",
            "--force",
            "origin",
            "refs/heads/*:refs/heads/*",
            "refs/tags/*:refs/tags/*",
        ]);
        self.git(&["fetch", "-q", "origin"]);
        format!("file://{}", bare.display())
    }

    /// Clones origin as CI does: `--depth <depth> --no-single-branch` over `file://` (so the
    /// clone really is shallow), into `<home>/<name>`. Call [`Self::push_to_origin`] first.
    pub fn shallow_clone(&self, name: &str, depth: u32) -> TestRepo {
        let url = format!("file://{}", self.home.join("origin.git").display());
        let target = self.home.join(name);
        self.git(&[
            "clone",
            "-q",
            "--depth",
            &depth.to_string(),
            "--no-single-branch",
            &url,
            target.to_str().expect("utf-8"),
        ]);
        TestRepo {
            _dir: None,
            home: self.home.clone(),
            path: target,
            clock: Cell::new(self.clock.get()),
        }
    }

    /// Writes a GitHub event payload next to the work tree; returns its path.
    pub fn write_event(&self, name: &str, payload: &serde_json::Value) -> PathBuf {
        let file = self.home.join(name);
        std::fs::write(&file, serde_json::to_vec_pretty(payload).expect("json"))
            .expect("write event");
        file
    }

    fn tick(&self) {
        self.clock.set(self.clock.get() + 60);
    }
}

/// The path of `name` on PATH; `None` (with a note) when it is missing outside CI. In CI a
/// missing peer tool fails the test: `tests/testbed/install-peers.sh` installs them all.
pub fn required_tool(name: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    let what = format!("`{name}` on PATH");
    crate::skips::require(
        found.is_some(),
        test,
        &what,
        "tests/testbed/install-peers.sh",
    )
    .then_some(found)
    .flatten()
}

/// `python3 -m http.server` on 127.0.0.1 and a free port, serving `dir` (a release download
/// site for `dist/install.sh`); killed on drop.
pub struct StaticServer {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl StaticServer {
    pub fn start(dir: &Path) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the server's first line");
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .unwrap_or_else(|| panic!("no port in {line:?}"))
            .to_string();
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
