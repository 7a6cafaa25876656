//! The git layer on real repositories: odd paths, modes, symlinks, `show`, missing repositories.

use buildopt::git::{ChangeStatus, EMPTY_TREE, Git, GitError};

use crate::support::TestRepo;

const ODD_NAMES: [&str; 5] = [
    "with space.txt",
    "new\nline.txt",
    "ünïcödé/ファイル.txt",
    "-leading-dash",
    "tab\tand\"quote",
];

#[test]
fn odd_file_names_round_trip_through_diff_tree_entries_and_show() {
    let repo = TestRepo::new();
    let base = repo.commit_file("plain.txt", "p\n", "base");
    for name in ODD_NAMES {
        repo.write(name, name);
    }
    let head = repo.commit("odd names");
    let git = repo.open();

    let mut diffed: Vec<String> = git
        .diff(&base, &head)
        .unwrap()
        .into_iter()
        .map(|c| c.path)
        .collect();
    diffed.sort();
    let mut expected: Vec<String> = ODD_NAMES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(diffed, expected);

    let listed: Vec<String> = git
        .tree_entries(&head)
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    for name in ODD_NAMES {
        assert!(
            listed.iter().any(|p| p == name),
            "{name:?} missing from {listed:?}"
        );
        assert_eq!(
            git.show(&head, name).unwrap().as_deref(),
            Some(name.as_bytes())
        );
    }
}

#[test]
fn mode_only_and_type_changes_are_reported() {
    let repo = TestRepo::new();
    repo.write("run.sh", "echo hi\n");
    repo.write("config", "x\n");
    let base = repo.commit("base");
    let script = repo.path().join("run.sh");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    repo.remove("config");
    std::os::unix::fs::symlink("run.sh", repo.path().join("config")).unwrap();
    let head = repo.commit("chmod and symlink");
    let git = repo.open();

    let changes = git.diff(&base, &head).unwrap();
    let status = |p: &str| changes.iter().find(|c| c.path == p).map(|c| c.status);
    assert_eq!(status("run.sh"), Some(ChangeStatus::Modified));
    assert_eq!(status("config"), Some(ChangeStatus::TypeChanged));

    let entries = git.tree_entries(&head).unwrap();
    let mode = |p: &str| {
        entries
            .iter()
            .find(|e| e.path == p)
            .map(|e| e.mode().to_owned())
    };
    assert_eq!(mode("run.sh").as_deref(), Some("100755"));
    assert_eq!(mode("config").as_deref(), Some("120000"));
}

#[test]
fn diff_reports_adds_deletes_and_no_renames() {
    let repo = TestRepo::new();
    repo.write("old/name.txt", "same content, long enough to be a rename\n");
    repo.write("gone.txt", "g\n");
    let base = repo.commit("base");
    std::fs::create_dir(repo.path().join("new")).unwrap();
    repo.git(&["mv", "old/name.txt", "new/name.txt"]);
    repo.remove("gone.txt");
    let head = repo.commit("move");
    let mut changes: Vec<(ChangeStatus, String)> = repo
        .open()
        .diff(&base, &head)
        .unwrap()
        .into_iter()
        .map(|c| (c.status, c.path))
        .collect();
    changes.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        changes,
        [
            (ChangeStatus::Deleted, "gone.txt".to_owned()),
            (ChangeStatus::Added, "new/name.txt".to_owned()),
            (ChangeStatus::Deleted, "old/name.txt".to_owned()),
        ]
    );
    assert!(repo.open().diff(&head, &head).unwrap().is_empty());
}

#[test]
fn empty_tree_diff_lists_every_file_as_added() {
    let repo = TestRepo::new();
    repo.write("a", "a");
    repo.write("d/b", "b");
    let head = repo.commit("first");
    let changes = repo.open().diff(EMPTY_TREE, &head).unwrap();
    assert_eq!(changes.len(), 2);
    assert!(changes.iter().all(|c| c.status == ChangeStatus::Added));
}

#[test]
fn show_reads_a_file_at_a_revision() {
    let repo = TestRepo::new();
    let old = repo.commit_file("app/Dockerfile", "FROM a\n", "one");
    let new = repo.commit_file("app/Dockerfile", "FROM b\n", "two");
    let git = repo.open();
    assert_eq!(
        git.show(&old, "app/Dockerfile").unwrap().as_deref(),
        Some(&b"FROM a\n"[..])
    );
    assert_eq!(
        git.show(&new, "app/Dockerfile").unwrap().as_deref(),
        Some(&b"FROM b\n"[..])
    );
    assert_eq!(git.show(&new, "app/missing").unwrap(), None);
    assert_eq!(
        git.show(&new, "app").unwrap(),
        None,
        "a directory is not a file"
    );
    assert_eq!(
        git.show(&old, "app/Dockerfile").unwrap(),
        git.show("HEAD~1", "app/Dockerfile").unwrap()
    );
}

#[test]
fn open_finds_the_root_from_a_subdirectory_and_ignores_git_dir() {
    let repo = TestRepo::new();
    repo.commit_file("sub/dir/file", "x", "one");
    let git = Git::open(&repo.path().join("sub/dir")).unwrap();
    assert_eq!(
        git.root().canonicalize().unwrap(),
        repo.path().canonicalize().unwrap()
    );
    assert_eq!(git.current_branch().unwrap().as_deref(), Some("main"));
    assert!(!git.is_shallow().unwrap());
}

#[test]
fn missing_repository_is_not_a_repository() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Git::open(dir.path()),
        Err(GitError::NotARepository { .. })
    ));
    assert!(matches!(
        Git::open(&dir.path().join("absent")),
        Err(GitError::NotARepository { .. })
    ));
}

#[test]
fn resolve_commit_distinguishes_present_missing_and_non_commits() {
    let repo = TestRepo::new();
    let head = repo.commit_file("a", "a", "one");
    let git = repo.open();
    assert_eq!(
        git.resolve_commit("HEAD").unwrap().as_deref(),
        Some(head.as_str())
    );
    assert_eq!(
        git.resolve_commit("ffffffffffffffffffffffffffffffffffffffff")
            .unwrap(),
        None
    );
    assert_eq!(
        git.resolve_commit("HEAD:a").unwrap(),
        None,
        "a blob is not a commit"
    );
    assert_eq!(
        git.resolve_commit("--all").unwrap(),
        None,
        "options are not revisions"
    );
}

#[test]
fn resolve_commits_answers_as_resolve_commit_does_one_by_one() {
    let repo = TestRepo::new();
    repo.commit_file("a", "a", "one");
    repo.annotated_tag("v1", "release one");
    repo.commit_file("a", "b", "two");
    repo.push_to_origin();
    let git = repo.open();
    let revs = [
        "HEAD",
        "refs/remotes/origin/main",
        "refs/remotes/origin/nope",
        "refs/tags/v1",
        "HEAD:a",
        "ffffffffffffffffffffffffffffffffffffffff",
        "--all",
        "main",
        "bad\nref",
    ];
    let batched = git.resolve_commits(&revs).unwrap();
    let one_by_one: Vec<Option<String>> = revs
        .iter()
        .map(|rev| git.resolve_commit(rev).unwrap())
        .collect();
    assert_eq!(batched, one_by_one);
    assert_eq!(batched[0].as_deref(), Some(repo.sha("HEAD").as_str()));
    assert_eq!(
        batched[3].as_deref(),
        Some(repo.sha("HEAD~1").as_str()),
        "an annotated tag peels to its commit"
    );
    assert_eq!(batched[4], None, "a blob is not a commit");
    assert_eq!(
        git.resolve_commits(&[]).unwrap(),
        Vec::<Option<String>>::new()
    );
}

#[test]
fn tree_entries_lists_a_hundred_thousand_files_in_one_call() {
    let repo = TestRepo::new();
    let head = repo.commit_many_files(100_000);
    let started = std::time::Instant::now();
    let entries = repo.open().tree_entries(&head).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(entries.len(), 100_000);
    assert!(entries.iter().any(|e| e.path == "d99/f99999.txt"));
    // One ls-tree call and an in-place parse; generous for a debug build on a busy machine.
    assert!(
        elapsed < std::time::Duration::from_secs(5),
        "took {elapsed:?}"
    );
}
