//! Pure parsers for the NUL-separated (`-z`) output of git plumbing.
//!
//! Owns: turning the bytes of `diff --name-status -z` and `ls-tree -r -z` into [`Change`] and
//! [`TreeEntry`] values, the answers of `cat-file --batch-check` into commit ids, and reading
//! the repository path out of git's "dubious ownership" error.
//! Nothing here runs git, so every rule is unit-tested on literal bytes.

use super::{Change, ChangeStatus, TreeEntry};

/// Why a `-z` listing could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A status letter was followed by no path.
    #[error("status `{status}` has no path")]
    MissingPath { status: String },
    /// An `ls-tree` record did not have the `<mode> <type> <oid>\t<path>` shape.
    #[error("malformed tree entry `{record}`")]
    MalformedTreeEntry { record: String },
    /// A `cat-file --batch-check` answer was neither `<oid> <type> <size>` nor `<name> missing`.
    #[error("malformed object check `{line}`")]
    MalformedCheck { line: String },
    /// `cat-file --batch-check` answered a different number of lines than it was asked.
    #[error("{answered} object checks answered for {asked} asked")]
    CheckCount { asked: usize, answered: usize },
}

/// Parses `git diff --name-status -z` output: `STATUS\0PATH\0`, or `R|C<score>\0OLD\0NEW\0`.
///
/// Renames are off in every diff buildopt runs, but a copy or rename record is still split into
/// its two sides so that neither path can be lost (Turborepo PR #9422 lost the source side).
pub fn name_status(bytes: &[u8]) -> Result<Vec<Change>, ParseError> {
    let mut fields = bytes.split(|b| *b == 0).filter(|f| !f.is_empty());
    let mut changes = Vec::new();
    while let Some(status) = fields.next() {
        let status = String::from_utf8_lossy(status).into_owned();
        let mut next_path = || {
            fields
                .next()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .ok_or_else(|| ParseError::MissingPath {
                    status: status.clone(),
                })
        };
        match status.as_bytes().first() {
            Some(b'R') => {
                let old = next_path()?;
                let new = next_path()?;
                changes.push(Change {
                    status: ChangeStatus::Deleted,
                    path: old,
                });
                changes.push(Change {
                    status: ChangeStatus::Added,
                    path: new,
                });
            }
            Some(b'C') => {
                let _source = next_path()?;
                let copy = next_path()?;
                changes.push(Change {
                    status: ChangeStatus::Added,
                    path: copy,
                });
            }
            first => {
                let path = next_path()?;
                changes.push(Change {
                    status: status_of(first.copied()),
                    path,
                });
            }
        }
    }
    Ok(changes)
}

fn status_of(letter: Option<u8>) -> ChangeStatus {
    match letter {
        Some(b'A') => ChangeStatus::Added,
        Some(b'D') => ChangeStatus::Deleted,
        Some(b'M') => ChangeStatus::Modified,
        Some(b'T') => ChangeStatus::TypeChanged,
        Some(b'U') => ChangeStatus::Unmerged,
        _ => ChangeStatus::Unknown,
    }
}

/// Parses `git ls-tree -r -z` output (`<mode> SP <type> SP <oid> TAB <path>\0` per record),
/// record by record as git writes it, so the parsing overlaps git's own work and the listing is
/// never held whole. Only blobs and gitlinks are kept (with `-r` git never prints trees, but a
/// future flag might). The outer error is the stream's.
pub fn ls_tree_stream(
    mut reader: impl std::io::BufRead,
) -> std::io::Result<Result<Vec<TreeEntry>, ParseError>> {
    let mut entries = Vec::new();
    let mut record = Vec::with_capacity(256);
    loop {
        record.clear();
        if reader.read_until(0, &mut record)? == 0 {
            return Ok(Ok(entries));
        }
        let body = record.strip_suffix(&[0]).unwrap_or(&record);
        if body.is_empty() {
            continue;
        }
        match tree_record(body) {
            Ok(entry) => entries.extend(entry),
            Err(error) => return Ok(Err(error)),
        }
    }
}

/// One record of `git ls-tree -z`; `None` for a tree.
fn tree_record(record: &[u8]) -> Result<Option<TreeEntry>, ParseError> {
    let malformed = || ParseError::MalformedTreeEntry {
        record: String::from_utf8_lossy(record).into_owned(),
    };
    let tab = record
        .iter()
        .position(|b| *b == b'\t')
        .ok_or_else(malformed)?;
    let (meta, path) = (&record[..tab], &record[tab + 1..]);
    let mut parts = meta.split(|b| *b == b' ');
    let (Some(mode), Some(kind), Some(oid), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    if kind == b"tree" {
        return Ok(None);
    }
    let (Ok(mode), Ok(oid)) = (std::str::from_utf8(mode), std::str::from_utf8(oid)) else {
        return Err(malformed());
    };
    TreeEntry::new(text(path), mode, oid)
        .map(Some)
        .ok_or_else(malformed)
}

/// Parses `git cat-file --batch-check` answers to `<rev>^{commit}` requests, one line each:
/// `<oid> commit <size>` is the commit, `<rev> missing` (or `ambiguous`) is none.
pub fn batch_check(bytes: &[u8], asked: usize) -> Result<Vec<Option<String>>, ParseError> {
    let text = String::from_utf8_lossy(bytes);
    let answers = text
        .lines()
        .map(|line| {
            let malformed = || ParseError::MalformedCheck { line: line.into() };
            let fields: Vec<&str> = line.split(' ').collect();
            match fields.as_slice() {
                [oid, "commit", size] if is_object_id(oid) && size.parse::<u64>().is_ok() => {
                    Ok(Some((*oid).to_owned()))
                }
                [.., "missing" | "ambiguous"] if fields.len() >= 2 => Ok(None),
                _ => Err(malformed()),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if answers.len() != asked {
        return Err(ParseError::CheckCount {
            asked,
            answered: answers.len(),
        });
    }
    Ok(answers)
}

/// 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
fn is_object_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Bytes as text: the common valid UTF-8 case without the lossy decoder's per-chunk walk.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(valid) => valid.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The repository path named in git's "detected dubious ownership in repository at '<path>'".
pub fn dubious_ownership_path(stderr: &str) -> Option<&str> {
    let rest = stderr
        .split("dubious ownership in repository at '")
        .nth(1)?;
    rest.split('\'').next().filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole output at once, as the tests have it.
    fn ls_tree(bytes: &[u8]) -> Result<Vec<TreeEntry>, ParseError> {
        ls_tree_stream(bytes).expect("reads from memory")
    }

    fn change(status: ChangeStatus, path: &str) -> Change {
        Change {
            status,
            path: path.to_owned(),
        }
    }

    #[test]
    fn name_status_reads_every_status_and_odd_paths() {
        let out =
            b"A\0new file\0D\0-gone\0M\0a\nb\0T\0link\0U\0conflict\0X\0weird\0M\0caf\xc3\xa9\0";
        assert_eq!(
            name_status(out).unwrap(),
            vec![
                change(ChangeStatus::Added, "new file"),
                change(ChangeStatus::Deleted, "-gone"),
                change(ChangeStatus::Modified, "a\nb"),
                change(ChangeStatus::TypeChanged, "link"),
                change(ChangeStatus::Unmerged, "conflict"),
                change(ChangeStatus::Unknown, "weird"),
                change(ChangeStatus::Modified, "café"),
            ]
        );
    }

    #[test]
    fn name_status_splits_renames_and_keeps_copies() {
        let out = b"R100\0old\0new\0C75\0src\0copy\0";
        assert_eq!(
            name_status(out).unwrap(),
            vec![
                change(ChangeStatus::Deleted, "old"),
                change(ChangeStatus::Added, "new"),
                change(ChangeStatus::Added, "copy"),
            ]
        );
    }

    #[test]
    fn name_status_of_nothing_is_empty_and_truncation_is_an_error() {
        assert_eq!(name_status(b"").unwrap(), vec![]);
        assert_eq!(
            name_status(b"M\0").unwrap_err(),
            ParseError::MissingPath { status: "M".into() }
        );
        assert!(name_status(b"R100\0old\0").is_err());
    }

    #[test]
    fn ls_tree_reads_blobs_links_and_gitlinks() {
        let oid = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";
        let out = format!(
            "100644 blob {oid}\ta b\0100755 blob {oid}\trun.sh\0120000 blob {oid}\tlink\0\
             160000 commit {oid}\tsub\0040000 tree {oid}\tdir\0100644 blob {oid}\tx\ty\nz\0"
        );
        let entries = ls_tree(out.as_bytes()).unwrap();
        let got: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.mode(), e.path.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("100644", "a b"),
                ("100755", "run.sh"),
                ("120000", "link"),
                ("160000", "sub"),
                ("100644", "x\ty\nz")
            ]
        );
        assert!(entries.iter().all(|e| e.oid() == oid));
    }

    #[test]
    fn ls_tree_rejects_malformed_records() {
        assert!(matches!(
            ls_tree(b"garbage\0"),
            Err(ParseError::MalformedTreeEntry { .. })
        ));
        assert!(matches!(
            ls_tree(b"100644 blob\tpath\0"),
            Err(ParseError::MalformedTreeEntry { .. })
        ));
        // Longer than any hash git prints, and a mode that is not ASCII.
        let long_oid = format!("100644 blob {}\tpath\0", "a".repeat(65));
        let odd_mode = "10064\u{e9} blob 0123456789abcdef0123456789abcdef01234567\tpath\0";
        for record in [long_oid.as_str(), odd_mode] {
            assert!(
                matches!(
                    ls_tree(record.as_bytes()),
                    Err(ParseError::MalformedTreeEntry { .. })
                ),
                "{record}"
            );
        }
    }

    #[test]
    fn the_stream_parser_gives_what_the_whole_output_parser_gives() {
        let out = "100644 blob 0123456789abcdef0123456789abcdef01234567\ta b/c\0\
                   120000 blob 1123456789abcdef0123456789abcdef01234567\tlink\0\
                   040000 tree 2123456789abcdef0123456789abcdef01234567\tdir\0\
                   160000 commit 3123456789abcdef0123456789abcdef01234567\tsub\0";
        let whole = ls_tree(out.as_bytes()).expect("parses");
        // A tiny buffer: records cross every read boundary.
        let reader = std::io::BufReader::with_capacity(3, out.as_bytes());
        let streamed = ls_tree_stream(reader).expect("reads").expect("parses");
        assert_eq!(streamed, whole);
        assert_eq!(streamed.len(), 3, "the tree is left out");
        let bad = std::io::BufReader::new(&b"100644 blob\tpath\0"[..]);
        assert!(ls_tree_stream(bad).expect("reads").is_err());
        assert_eq!(
            ls_tree_stream(&b""[..]).expect("reads").expect("parses"),
            Vec::new()
        );
    }

    #[test]
    fn batch_check_reads_commits_and_absences_in_order() {
        let oid = "5db7dbeb868266f5d1f828d36ea326c192331efc";
        let out = format!(
            "{oid} commit 230\nrefs/remotes/origin/HEAD^{{commit}} missing\nab^{{commit}} ambiguous\n"
        );
        assert_eq!(
            batch_check(out.as_bytes(), 3).unwrap(),
            vec![Some(oid.to_owned()), None, None]
        );
        assert_eq!(batch_check(b"", 0).unwrap(), vec![]);
    }

    #[test]
    fn batch_check_rejects_malformed_answers() {
        let oid = "5db7dbeb868266f5d1f828d36ea326c192331efc";
        for bad in [
            "garbage".to_owned(),
            format!("{oid} commit"),
            format!("{oid} commit many"),
            "5db7 commit 230".to_owned(),
            format!("{oid} tree 12 extra"),
        ] {
            assert!(
                matches!(
                    batch_check(bad.as_bytes(), 1),
                    Err(ParseError::MalformedCheck { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            batch_check(format!("{oid} commit 1\n").as_bytes(), 2),
            Err(ParseError::CheckCount {
                asked: 2,
                answered: 1
            })
        );
    }

    #[test]
    fn dubious_ownership_path_is_read_from_the_message() {
        let stderr = "fatal: detected dubious ownership in repository at '/src/my repo'\n\
                      To add an exception for this directory, call:\n";
        assert_eq!(dubious_ownership_path(stderr), Some("/src/my repo"));
        assert_eq!(dubious_ownership_path("fatal: not a git repository"), None);
    }
}
