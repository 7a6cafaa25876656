//! The repository's files at one commit: a sorted listing, and batched reads of their content.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::git::{GitError, TreeEntry};

/// At most this many files are read ahead of need (see [`Snapshot::read_many_and`]).
const READ_AHEAD_LIMIT: usize = 512;

/// Reads blob contents by object id, many at once.
pub trait BlobSource {
    /// The contents of each object, in the order asked.
    fn read_blobs(&self, oids: &[&str]) -> Result<Vec<Vec<u8>>, GitError>;
}

/// The files of one commit.
pub struct Snapshot<'a> {
    /// Sorted by path (git's order, which is byte order of the full paths).
    entries: Vec<TreeEntry>,
    blobs: &'a dyn BlobSource,
    /// Contents read ahead of need, by object id; taken out when asked for.
    read_ahead: RefCell<HashMap<String, Vec<u8>>>,
}

impl std::fmt::Debug for Snapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("entries", &self.entries.len())
            .finish()
    }
}

/// The sorted entries of a [`Snapshot`], without its blob reader: lookups only.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    entries: &'a [TreeEntry],
}

impl<'a> Listing<'a> {
    /// Every entry, sorted by path.
    pub fn entries(self) -> &'a [TreeEntry] {
        self.entries
    }

    /// The entry at exactly `path`.
    pub fn get(self, path: &str) -> Option<&'a TreeEntry> {
        self.entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The entries below the folder `dir` (`""` is the root), as a contiguous sorted slice.
    pub fn under(self, dir: &str) -> &'a [TreeEntry] {
        if dir.is_empty() {
            return self.entries;
        }
        let prefix = format!("{dir}/");
        let start = self
            .entries
            .partition_point(|e| e.path.as_str() < prefix.as_str());
        let len = self.entries[start..].partition_point(|e| e.path.starts_with(&prefix));
        &self.entries[start..start + len]
    }
}

impl<'a> Snapshot<'a> {
    /// Wraps a tree listing; sorts it when it is not sorted already.
    pub fn new(mut entries: Vec<TreeEntry>, blobs: &'a dyn BlobSource) -> Self {
        if !entries.is_sorted_by(|a, b| a.path <= b.path) {
            entries.sort_by(|a, b| a.path.cmp(&b.path));
        }
        Self {
            entries,
            blobs,
            read_ahead: RefCell::new(HashMap::new()),
        }
    }

    /// The listing alone, which threads can share.
    pub fn listing(&self) -> Listing<'_> {
        Listing {
            entries: &self.entries,
        }
    }

    /// Every entry, sorted by path.
    pub fn entries(&self) -> &[TreeEntry] {
        &self.entries
    }

    /// The entry at exactly `path`.
    pub fn get(&self, path: &str) -> Option<&TreeEntry> {
        self.listing().get(path)
    }

    /// True when a file (or link, or submodule) exists at `path`.
    pub fn exists(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// The entries below the folder `dir` (`""` is the root), as a contiguous sorted slice.
    pub fn under(&self, dir: &str) -> &[TreeEntry] {
        self.listing().under(dir)
    }

    /// Reads several files at once; a missing path gives `None`.
    pub fn read_many(&self, paths: &[&str]) -> Result<Vec<Option<Vec<u8>>>, GitError> {
        self.read_many_and(paths, |_| false)
    }

    /// [`Snapshot::read_many`], and in the same request the files whose path `likely` accepts
    /// (up to [`READ_AHEAD_LIMIT`]), kept for a later read. When the first read decides what
    /// the second wants (a configuration naming Dockerfiles), this saves a git process per run.
    pub fn read_many_and(
        &self,
        paths: &[&str],
        likely: impl Fn(&str) -> bool,
    ) -> Result<Vec<Option<Vec<u8>>>, GitError> {
        let found: Vec<Option<&TreeEntry>> = paths.iter().map(|p| self.get(p)).collect();
        let mut kept = self.read_ahead.borrow_mut();
        let mut asked: Vec<&str> = found
            .iter()
            .flatten()
            .map(|e| e.oid())
            .filter(|oid| !kept.contains_key(*oid))
            .collect();
        let wanted = asked.len();
        if wanted > 0 {
            asked.extend(
                self.entries
                    .iter()
                    .filter(|e| likely(&e.path) && !kept.contains_key(e.oid()))
                    .map(TreeEntry::oid)
                    .take(READ_AHEAD_LIMIT),
            );
            asked.sort_unstable();
            asked.dedup();
            let contents = self.blobs.read_blobs(&asked)?;
            kept.extend(asked.iter().map(|oid| (*oid).to_owned()).zip(contents));
        }
        // Two paths may share one object id (identical files): clone rather than take.
        Ok(found
            .into_iter()
            .map(|entry| entry.and_then(|e| kept.get(e.oid()).cloned()))
            .collect())
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! An in-memory tree for unit tests.
    use std::collections::HashMap;

    use super::*;

    /// Files by path; object ids are derived from the content.
    #[derive(Default)]
    pub struct FakeTree {
        blobs: HashMap<String, Vec<u8>>,
        pub entries: Vec<TreeEntry>,
        requests: std::cell::Cell<usize>,
    }

    impl FakeTree {
        pub fn with(files: &[(&str, &str)]) -> Self {
            let mut tree = Self::default();
            for (path, content) in files {
                let oid = blake3::hash(content.as_bytes()).to_hex()[..40].to_string();
                tree.blobs.insert(oid.clone(), content.as_bytes().to_vec());
                let entry = TreeEntry::new((*path).into(), "100644", &oid).expect("short ASCII");
                tree.entries.push(entry);
            }
            tree
        }

        pub fn snapshot(&self) -> Snapshot<'_> {
            Snapshot::new(self.entries.clone(), self)
        }

        /// How many batched reads were made.
        pub fn requests(&self) -> usize {
            self.requests.get()
        }
    }

    impl BlobSource for FakeTree {
        fn read_blobs(&self, oids: &[&str]) -> Result<Vec<Vec<u8>>, GitError> {
            self.requests.set(self.requests.get() + 1);
            Ok(oids.iter().map(|oid| self.blobs[*oid].clone()).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeTree;

    #[test]
    fn under_returns_only_the_folder() {
        let tree = FakeTree::with(&[
            ("a-b/x", ""),
            ("a/b", ""),
            ("a/c/d", ""),
            ("ab", ""),
            ("b", ""),
        ]);
        let snap = tree.snapshot();
        let paths: Vec<&str> = snap.under("a").iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a/b", "a/c/d"]);
        assert_eq!(snap.under("").len(), 5);
        assert!(snap.under("zz").is_empty());
    }

    #[test]
    fn read_many_keeps_order_and_missing() {
        let tree = FakeTree::with(&[("a", "1"), ("b", "2")]);
        let got = tree
            .snapshot()
            .read_many(&["b", "nope", "a"])
            .expect("read");
        assert_eq!(got, vec![Some(b"2".to_vec()), None, Some(b"1".to_vec())]);
    }

    #[test]
    fn files_read_ahead_are_served_without_asking_again() {
        let tree = FakeTree::with(&[("buildopt.toml", "x"), ("a/Dockerfile", "FROM a")]);
        let snap = tree.snapshot();
        let first = snap
            .read_many_and(&["buildopt.toml"], |path| path.ends_with("Dockerfile"))
            .expect("read");
        assert_eq!(first, vec![Some(b"x".to_vec())]);
        assert_eq!(tree.requests(), 1);
        let second = snap.read_many(&["a/Dockerfile"]).expect("read");
        assert_eq!(second, vec![Some(b"FROM a".to_vec())]);
        assert_eq!(tree.requests(), 1, "the Dockerfile was read ahead");
        assert_eq!(snap.read_many(&["nope"]).expect("read"), vec![None]);
        assert_eq!(tree.requests(), 1, "nothing to ask for a missing path");
    }
}
