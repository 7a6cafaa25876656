//! `buildopt cache` against hostile archives and stores, through the real binary: memory bombs
//! in tar headers (peak memory measured), a full disk, leftovers of killed jobs, a held lock,
//! links in the store, a store committed to git. None of these needs the Docker daemon
//! (`cache import --no-load`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::cli::buildopt;

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A tar header block of `kind` for `name` with `size` bytes of body; checksum set.
fn header(name: &[u8], kind: u8, size: u64) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_mode(0o644);
    header.set_size(size);
    header.set_mtime(0);
    header.as_old_mut().linkflag = [kind];
    header.set_cksum();
    header.as_bytes().to_vec()
}

fn padded(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    bytes
}

/// A manifest entry for an archive with no images and no blobs.
fn empty_manifest() -> Vec<u8> {
    let json = br#"{"version":2,"images":[],"blobs":[]}"#;
    let mut tar = header(b"manifest.json", b'0', json.len() as u64);
    tar.extend(padded(json.to_vec()));
    tar
}

/// The bytes a zstd decoder turns into `copies` blocks of 128 KiB, each `period` repeated: a
/// frame of one block compressed once and repeated, which is valid because the block is self
/// contained (raw or RLE literals and sequence tables, an explicit offset within itself).
fn repeated_frame(period: &[u8], copies: usize) -> Vec<u8> {
    const BLOCK: usize = 128 << 10;
    assert_eq!(BLOCK % period.len(), 0);
    if let [byte] = period {
        // An RLE block: the byte, 128 KiB times, in 4 bytes.
        let word = (BLOCK as u32) << 3 | 1 << 1;
        let block = [word as u8, (word >> 8) as u8, (word >> 16) as u8, *byte];
        let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, (21 - 10) << 3];
        for _ in 0..copies {
            frame.extend_from_slice(&block);
        }
        frame.extend_from_slice(&[1, 0, 0]);
        return frame;
    }
    let content: Vec<u8> = period.iter().copied().cycle().take(BLOCK).collect();
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("encoder");
    encoder.write_all(&content).expect("compress");
    let compressed = encoder.finish().expect("finish");
    // Skip the frame header: magic, descriptor, window descriptor, no dictionary, no size.
    let descriptor = compressed[4];
    assert_eq!(
        descriptor & 0xE3,
        0,
        "no content size, no dictionary: {descriptor:x}"
    );
    let first = &compressed[6..];
    let word = u32::from(first[0]) | u32::from(first[1]) << 8 | u32::from(first[2]) << 16;
    let (kind, size) = ((word >> 1) & 3, (word >> 3) as usize);
    let block_len = 3 + if kind == 1 { 1 } else { size };
    let mut block = first[..block_len].to_vec();
    block[0] &= !1; // not the last block
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, (21 - 10) << 3];
    for _ in 0..copies {
        frame.extend_from_slice(&block);
    }
    frame.extend_from_slice(&[1, 0, 0]); // an empty raw block, the last
    // A cheap check that the trick decodes as meant.
    let mut decoder = zstd::stream::read::Decoder::new(frame.as_slice()).expect("decoder");
    let mut head = vec![0u8; 2 * BLOCK];
    std::io::Read::read_exact(&mut decoder, &mut head).expect("decodes");
    assert!(head.chunks(period.len()).all(|chunk| chunk == period));
    frame
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).expect("zstd")
}

/// `before` (tar bytes), then 1 GiB of `period` repeated, then `after`: about 34 KB for a
/// one-byte period.
fn with_gib(before: &[u8], period: &[u8], after: &[u8]) -> Vec<u8> {
    let mut archive = zstd(before);
    archive.extend(repeated_frame(period, 8192));
    archive.extend(zstd(after));
    archive
}

/// A 1 GiB GNU long name (`L`) before an ordinary entry.
fn long_name_bomb() -> Vec<u8> {
    let mut before = empty_manifest();
    before.extend(header(b"././@LongLink", b'L', 1 << 30));
    let mut after = header(b"x", b'0', 0);
    after.extend([0u8; 1024]);
    with_gib(&before, b"a", &after)
}

/// A 1 GiB PAX record (`x`) before an ordinary entry.
fn pax_bomb() -> Vec<u8> {
    let record_len: u64 = 13 + (1 << 30) + 1;
    let mut before = empty_manifest();
    before.extend(header(b"././@PaxHeader", b'x', record_len));
    before.extend(format!("{record_len} c=").into_bytes());
    // The record's newline, then the padding to the block: the body is 13 + 1 bytes past the
    // last whole block.
    let mut after = vec![b'\n'];
    after.resize(512 - 13, 0);
    after.extend(header(b"x", b'0', 0));
    after.extend([0u8; 1024]);
    with_gib(&before, b"a", &after)
}

/// A GNU sparse entry (`S`) whose map goes on for 2 million extension blocks.
fn sparse_map_bomb() -> Vec<u8> {
    let mut before = empty_manifest();
    let mut sparse = tar::Header::new_gnu();
    sparse.set_path("huge").expect("name");
    sparse.set_size(0);
    sparse.set_mode(0o644);
    sparse.set_entry_type(tar::EntryType::GNUSparse);
    let gnu = sparse.as_gnu_mut().expect("gnu");
    gnu.isextended = [1];
    gnu.realsize = *b"00000000001\0";
    sparse.set_cksum();
    before.extend_from_slice(sparse.as_bytes());
    // An extension block: 21 entries at offset 1 of length 0, and "more follow".
    let mut extension = vec![0u8; 512];
    for i in 0..21 {
        extension[i * 24..i * 24 + 12].copy_from_slice(b"00000000001\0");
        extension[i * 24 + 12..i * 24 + 24].copy_from_slice(b"00000000000\0");
    }
    extension[504] = 1;
    let mut after = vec![0u8; 512];
    after.extend([0u8; 1024]);
    with_gib(&before, &extension, &after)
}

/// Set when this test binary runs as the measuring child of [`import_measured`].
const PEAK_CHILD: &str = "BUILDOPT_TEST_PEAK_CHILD";

/// Child mode: runs `buildopt` as given in [`PEAK_CHILD`] (its data segment capped at 2 GiB so
/// that a regression fails fast instead of taking the machine's memory) and writes its exit
/// code, output and peak RSS (of this process's children: only that one) to a file.
#[test]
fn peak_rss_child() {
    let Ok(spec) = std::env::var(PEAK_CHILD) else {
        return;
    };
    let spec: Vec<String> = serde_json::from_str(&spec).expect("spec");
    let (dir, args) = (Path::new(&spec[0]), &spec[1..]);
    let output = Command::new("sh")
        .args(["-c", "ulimit -d 2097152; exec \"$@\"", "sh"])
        .arg(env!("CARGO_BIN_EXE_buildopt"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .output()
        .expect("run buildopt");
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    let result = serde_json::json!({
        "code": output.status.code(),
        "stdout": String::from_utf8_lossy(&output.stdout),
        "stderr": String::from_utf8_lossy(&output.stderr),
        "peak_kib": usage.max_rss(),
    });
    std::fs::write(dir.join("peak.json"), result.to_string()).expect("write");
}

/// Runs `buildopt args` in `dir` through a fresh copy of this test binary, so that the peak
/// RSS of its children is the peak of that one `buildopt` (other tests' children are not in it).
fn import_measured(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut spec = vec![dir.display().to_string()];
    spec.extend(args.iter().map(|a| a.to_string()));
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "cache_hardening::peak_rss_child",
            "--test-threads",
            "1",
        ])
        .env(PEAK_CHILD, serde_json::to_string(&spec).expect("json"))
        .stdout(Stdio::null())
        .status()
        .expect("run the measuring child");
    assert!(status.success(), "the measuring child failed");
    let result = std::fs::read(dir.join("peak.json")).expect("peak.json");
    serde_json::from_slice(&result).expect("json")
}

/// A bomb: its name, its maker, the entry type the refusal names.
type Bomb = (&'static str, fn() -> Vec<u8>, &'static str);

#[test]
#[allow(clippy::print_stderr, reason = "the measured peak is worth seeing")]
fn header_memory_bombs_are_refused_from_the_header_in_bounded_memory() {
    let cases: [Bomb; 3] = [
        ("1 GiB GNU long name", long_name_bomb, "GNULongName"),
        ("1 GiB PAX record", pax_bomb, "XHeader"),
        ("repeated GNU sparse map", sparse_map_bomb, "GNUSparse"),
    ];
    // Every case runs before the first failure is reported, so a regression shows all three.
    let mut failures = Vec::new();
    for (case, make, kind) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = make();
        assert!(archive.len() < 2 << 20, "{case}: {} bytes", archive.len());
        std::fs::write(dir.path().join("c.tzst"), &archive).expect("write");
        let args = ["--format", "json", "cache", "import", "--no-load", "c.tzst"];
        let result = import_measured(dir.path(), &args);
        let peak_mib = result["peak_kib"].as_i64().unwrap_or(i64::MAX) / 1024;
        let (stdout, stderr) = (
            result["stdout"].as_str().unwrap_or_default(),
            result["stderr"].as_str().unwrap_or_default(),
        );
        eprintln!(
            "{case}: archive {} bytes, exit {}, peak RSS {peak_mib} MiB, output {} bytes",
            archive.len(),
            result["code"],
            stdout.len() + stderr.len()
        );
        let report: serde_json::Value = serde_json::from_str(stdout).unwrap_or_default();
        let warning = report["warning"].as_str().unwrap_or_default();
        let checks = [
            (result["code"] == 0, "exit 0"),
            (report["restored"] == false, "a cache miss"),
            (warning.contains(kind), "the entry type named"),
            (peak_mib < 200, "peak RSS under 200 MiB"),
            (stdout.len() + stderr.len() < 8 << 10, "output under 8 KiB"),
        ];
        for (held, what) in checks {
            if !held {
                failures.push(format!("{case}: not {what}"));
            }
        }
        let tmp = dir.path().join(".build_cache/tmp");
        if std::fs::read_dir(tmp).is_ok_and(|mut d| d.next().is_some()) {
            failures.push(format!("{case}: staging left in tmp/"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

fn store_dir(dir: &Path) -> PathBuf {
    dir.join(".build_cache")
}

/// A valid archive with one image of `blobs`, built by hand: the manifest, each blob, the end.
fn archive_of(blobs: &[&[u8]], last_used: u64) -> Vec<u8> {
    let digest = |b: &[u8]| {
        use sha2::Digest as _;
        let hex: String = sha2::Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect();
        hex
    };
    let hexes: Vec<String> = blobs.iter().map(|b| digest(b)).collect();
    let manifest = serde_json::json!({
        "version": 2,
        "images": [{
            "name": "acme/app",
            "tags": ["acme/app:latest"],
            "config": format!("sha256:{}", hexes[0]),
            "layers": hexes[1..].iter().map(|h| format!("sha256:{h}")).collect::<Vec<_>>(),
            "diff_ids": [],
            "last_used": last_used,
            "size": blobs.iter().map(|b| b.len()).sum::<usize>(),
        }],
        "blobs": blobs.iter().zip(&hexes).map(|(b, h)| serde_json::json!({
            "digest": format!("sha256:{h}"), "size": b.len()
        })).collect::<Vec<_>>(),
    });
    let json = serde_json::to_vec(&manifest).expect("json");
    let mut tar = header(b"manifest.json", b'0', json.len() as u64);
    tar.extend(padded(json));
    for (blob, hex) in blobs.iter().zip(&hexes) {
        tar.extend(header(
            format!("blobs/sha256/{hex}").as_bytes(),
            b'0',
            blob.len() as u64,
        ));
        tar.extend(padded(blob.to_vec()));
    }
    tar.extend([0u8; 1024]);
    tar
}

fn import(dir: &Path, archive: &str, env: &[(&str, &str)]) -> (Output, serde_json::Value) {
    let args = ["--format", "json", "cache", "import", "--no-load", archive];
    let out = buildopt(dir, &args, env);
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, report)
}

#[test]
fn an_archive_whose_stream_does_not_end_cleanly_is_refused() {
    let tar = archive_of(&[b"{}", b"layer"], 1);
    let gzip = |bytes: &[u8]| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        gz.write_all(bytes).expect("gzip");
        gz.finish().expect("gzip")
    };
    let mut checked = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("encoder");
    checked.include_checksum(true).expect("checksum");
    checked.write_all(&tar).expect("write");
    let checked = checked.finish().expect("finish");
    let flip = |mut bytes: Vec<u8>, from_end: usize| {
        let at = bytes.len() - from_end;
        bytes[at] ^= 0x55;
        bytes
    };
    let with = |mut bytes: Vec<u8>, extra: &[u8]| {
        bytes.extend_from_slice(extra);
        bytes
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("zstd checksum", flip(checked.clone(), 1)),
        ("gzip CRC", flip(gzip(&tar), 8)),
        ("gzip ISIZE", flip(gzip(&tar), 1)),
        ("zstd trailing garbage", with(zstd(&tar), b"garbage!")),
        ("gzip trailing garbage", with(gzip(&tar), b"garbage!")),
        ("missing end blocks", zstd(&tar[..tar.len() - 1024])),
        ("one end block", zstd(&tar[..tar.len() - 512])),
        ("data after the end", zstd(&with(tar.clone(), &[1u8; 512]))),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (case, archive) in cases {
        std::fs::write(dir.path().join("c.tzst"), archive).expect("write");
        let (out, report) = import(dir.path(), "c.tzst", &[]);
        assert_eq!(out.status.code(), Some(0), "{case}: {}", text(&out));
        assert_eq!(report["restored"], false, "{case}: {report}");
        assert!(
            !store_dir(dir.path()).join("index.json").exists(),
            "{case}: the index was written"
        );
    }
    // The controls: the same archive, whole, in both compressions; GNU tar's zero padding.
    for (case, archive) in [
        ("zstd", checked),
        ("gzip", gzip(&tar)),
        ("record padding", zstd(&with(tar.clone(), &[0u8; 8192]))),
    ] {
        std::fs::write(dir.path().join("c.tzst"), archive).expect("write");
        let (out, report) = import(dir.path(), "c.tzst", &[]);
        assert_eq!(report["restored"], true, "{case}: {}", text(&out));
    }
}

/// Unmounts the test's file system when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A tmpfs of `size` at `dir`; `None` (with a note) where mounting is not allowed, except in
/// CI, where the test must run.
fn small_filesystem(dir: &Path, size: &str, test: &str) -> Option<Mounted> {
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .output()
        .is_ok_and(|o| o.status.success());
    crate::skips::require(mounted, test, "tmpfs mount", "the tests run as root in CI")
        .then(|| Mounted(dir.to_path_buf()))
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).map_or_else(
        |_| Vec::new(),
        |entries| {
            entries
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        },
    )
}

#[test]
fn an_import_larger_than_the_free_disk_is_a_clean_cache_miss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mount = dir.path().join("small");
    std::fs::create_dir(&mount).expect("mkdir");
    let Some(_mounted) = small_filesystem(&mount, "20m", "disk cap") else {
        return;
    };
    let store = mount.join("store");
    let env = [("BUILDOPT_CACHE_DIR", store.to_str().expect("utf-8"))];
    // 30 MiB declared (zeros: the archive itself is small) on a 20 MiB file system.
    let big = vec![0u8; 30 << 20];
    std::fs::write(
        dir.path().join("big.tzst"),
        zstd(&archive_of(&[b"{}", &big], 1)),
    )
    .expect("write");
    let (out, report) = import(dir.path(), "big.tzst", &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(report["restored"], false, "{report}");
    let warning = report["warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("free on the store's file system"),
        "{warning}"
    );
    assert!(names(&store.join("tmp")).is_empty(), "tmp/ not empty");
    assert!(names(&store.join("blobs/sha256")).is_empty(), "blobs left");
    assert!(!store.join("index.json").exists());
    // The control: what fits is imported.
    let fits = vec![7u8; 4 << 20];
    std::fs::write(
        dir.path().join("fits.tzst"),
        zstd(&archive_of(&[b"{}", &fits], 1)),
    )
    .expect("write");
    let (out, report) = import(dir.path(), "fits.tzst", &env);
    assert_eq!(report["restored"], true, "{}", text(&out));
}

/// The inodes in use on the file system at `dir`.
fn inodes_used(dir: &Path) -> u64 {
    let stat = nix::sys::statvfs::statvfs(dir).expect("statvfs");
    stat.files() - stat.files_free()
}

#[test]
fn a_disk_that_fills_at_any_step_of_an_import_leaves_the_store_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mount = dir.path().join("small");
    std::fs::create_dir(&mount).expect("mkdir");
    let Some(_mounted) = small_filesystem(&mount, "20m", "full disk") else {
        return;
    };
    let store = mount.join("store");
    let env = [("BUILDOPT_CACHE_DIR", store.to_str().expect("utf-8"))];
    std::fs::write(
        dir.path().join("a.tzst"),
        zstd(&archive_of(&[b"{}", b"one"], 1)),
    )
    .expect("write");
    let (out, report) = import(dir.path(), "a.tzst", &env);
    assert_eq!(report["restored"], true, "{}", text(&out));
    let index_before = std::fs::read(store.join("index.json")).expect("index");
    let blobs_before = names(&store.join("blobs/sha256"));
    let second: [&[u8]; 4] = [b"{\"a\":1}", b"two", b"three", b"four"];
    std::fs::write(dir.path().join("b.tzst"), zstd(&archive_of(&second, 1))).expect("write");
    // Files take inodes: with no inode to spare the import cannot stage anything, and with
    // one more each time it gets one step further (staging folder, each blob, the new index),
    // until it fits. Every step short of that must be a clean miss.
    let used = inodes_used(&mount);
    for spare in 0..32 {
        let remount = Command::new("mount")
            .args(["-o", &format!("remount,nr_inodes={}", used + spare)])
            .arg(&mount)
            .status()
            .expect("mount");
        assert!(remount.success(), "remount with {spare} spare inodes");
        let (out, report) = import(dir.path(), "b.tzst", &env);
        assert_eq!(out.status.code(), Some(0), "{spare} spare: {}", text(&out));
        if report["restored"] == true {
            assert!(spare > 0, "the import had no inode to spare and yet fit");
            assert_eq!(
                names(&store.join("blobs/sha256")).len(),
                blobs_before.len() + 4
            );
            return;
        }
        let warning = report["warning"].as_str().unwrap_or_default();
        assert!(warning.contains("disk is full"), "{spare} spare: {warning}");
        let index = std::fs::read(store.join("index.json")).expect("index");
        assert_eq!(index, index_before, "{spare} spare: the index changed");
        assert_eq!(
            names(&store.join("blobs/sha256")),
            blobs_before,
            "{spare} spare"
        );
        assert!(
            names(&store.join("tmp")).is_empty(),
            "{spare} spare: tmp/ not empty"
        );
    }
    panic!("the import never fit");
}

#[test]
fn leftovers_of_a_killed_job_are_removed_by_the_next_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("c.tzst"),
        zstd(&archive_of(&[b"{}", b"l"], 1)),
    )
    .expect("write");
    let (out, report) = import(dir.path(), "c.tzst", &[]);
    assert_eq!(report["restored"], true, "{}", text(&out));
    // What a SIGKILL during an import and during an export leaves behind.
    let tmp = store_dir(dir.path()).join("tmp");
    let staging = tmp.join("import-0123456789abcdef");
    std::fs::create_dir(&staging).expect("mkdir");
    std::fs::write(staging.join("ab".repeat(32)), vec![1u8; 1 << 20]).expect("write");
    std::fs::write(tmp.join("blob-0123456789abcdef"), "half a blob").expect("write");
    let export_temp = dir.path().join(".c.tzst.fedcba9876543210.tmp");
    std::fs::write(&export_temp, "half an archive").expect("write");

    let out = buildopt(dir.path(), &["cache", "stats"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        names(&tmp).len(),
        2,
        "stats takes no lock and removes nothing"
    );
    let out = buildopt(dir.path(), &["cache", "cleanup"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(names(&tmp).is_empty(), "left in tmp/: {:?}", names(&tmp));

    let out = buildopt(dir.path(), &["cache", "export", "c.tzst"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !export_temp.exists(),
        "the killed export's temp file stayed"
    );
    let left: Vec<String> = names(dir.path())
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Runs `buildopt` and kills it after `deadline`; returns its output and how long it ran.
fn run_with_deadline(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    deadline: Duration,
) -> (Output, Duration) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_buildopt"));
    command
        .current_dir(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = command.spawn().expect("spawn");
    while child.try_wait().expect("wait").is_none() && start.elapsed() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("output");
    (output, start.elapsed())
}

#[test]
fn a_held_cache_lock_is_waited_for_at_most_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("c.tzst"),
        zstd(&archive_of(&[b"{}", b"l"], 1)),
    )
    .expect("write");
    let store = store_dir(dir.path());
    std::fs::create_dir_all(&store).expect("mkdir");
    // A hung job holding the lock.
    let held = std::fs::File::create(store.join("lock")).expect("lock file");
    held.lock().expect("lock");
    let env = [("BUILDOPT_CACHE_LOCK_TIMEOUT", "1")];
    let deadline = Duration::from_secs(60);
    let args = ["--format", "json", "cache", "import", "--no-load", "c.tzst"];
    let (out, took) = run_with_deadline(dir.path(), &args, &env, deadline);
    assert!(took < Duration::from_secs(30), "waited {took:?}");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["restored"], false, "{report}");
    assert!(
        report["warning"]
            .as_str()
            .unwrap_or_default()
            .contains("cache lock"),
        "{report}"
    );
    for command in [&["cache", "cleanup"][..], &["cache", "export", "c2.tzst"]] {
        let (out, took) = run_with_deadline(dir.path(), command, &env, deadline);
        assert!(
            took < Duration::from_secs(30),
            "{command:?} waited {took:?}"
        );
        assert_eq!(out.status.code(), Some(0), "{command:?}: {}", text(&out));
        assert!(
            text(&out).contains("warning"),
            "{command:?}: {}",
            text(&out)
        );
    }
    drop(held);
}

/// An index with one entry last used at the epoch's start: expired, so a prune runs.
fn expired_index() -> String {
    serde_json::json!({
        "version": 2,
        "images": [{
            "name": "old", "tags": ["old:latest"],
            "config": format!("sha256:{}", "cd".repeat(32)),
            "layers": [], "diff_ids": [], "last_used": 1, "size": 1,
        }],
    })
    .to_string()
}

#[test]
fn links_in_the_store_never_lead_a_removal_outside_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(outside.join("sha256")).expect("mkdir");
    let victim = outside.join("victim");
    std::fs::write(&victim, "keep me").expect("write");
    let blob_victim = outside.join("sha256").join("ef".repeat(32));
    std::fs::write(&blob_victim, "keep me too").expect("write");
    for link in ["tmp", "blobs"] {
        let store = dir.path().join(format!("store-{link}"));
        std::fs::create_dir_all(store.join("blobs/sha256")).expect("mkdir");
        std::fs::create_dir_all(store.join("tmp")).expect("mkdir");
        std::fs::write(store.join("index.json"), expired_index()).expect("index");
        let (at, to) = match link {
            "tmp" => (store.join("tmp"), outside.clone()),
            _ => (store.join("blobs"), outside.clone()),
        };
        std::fs::remove_dir_all(&at).expect("rm");
        std::os::unix::fs::symlink(&to, &at).expect("symlink");
        let env = [("BUILDOPT_CACHE_DIR", store.to_str().expect("utf-8"))];
        for command in [
            &["cache", "cleanup"][..],
            &["cache", "optimize"],
            &["cache", "export", "c.tzst"],
        ] {
            let out = buildopt(dir.path(), command, &env);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{link} {command:?}: {}",
                text(&out)
            );
            assert!(
                victim.exists(),
                "{link} {command:?} removed a file outside the store"
            );
            assert!(
                blob_victim.exists(),
                "{link} {command:?} removed a file outside"
            );
        }
    }
}

#[test]
fn a_store_that_git_tracks_or_another_user_owns_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("git");
        assert!(out.status.success(), "{}", text(&out));
    };
    git(&["init", "-q"]);
    std::fs::write(
        dir.path().join("c.tzst"),
        zstd(&archive_of(&[b"{}", b"l"], 1)),
    )
    .expect("write");
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    std::fs::write(outside.join("victim"), "keep").expect("write");
    // A pull request that commits the store as a link to somewhere else.
    std::os::unix::fs::symlink("outside", store_dir(dir.path())).expect("symlink");
    git(&["add", ".build_cache"]);
    git(&["commit", "-q", "-m", "store"]);
    let (out, report) = import(dir.path(), "c.tzst", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(report["restored"], false, "{report}");
    assert!(
        report["warning"]
            .as_str()
            .unwrap_or_default()
            .contains("git tracks"),
        "{report}"
    );
    let out = buildopt(dir.path(), &["cache", "cleanup"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        names(&outside),
        ["victim"],
        "the link's target was written to"
    );

    // A committed folder.
    git(&["rm", "-q", ".build_cache"]);
    std::fs::create_dir(store_dir(dir.path())).expect("mkdir");
    std::fs::write(store_dir(dir.path()).join("index.json"), expired_index()).expect("index");
    git(&["add", ".build_cache"]);
    git(&["commit", "-q", "-m", "store"]);
    let (_, report) = import(dir.path(), "c.tzst", &[]);
    assert_eq!(report["restored"], false, "{report}");
    assert_eq!(
        std::fs::read_to_string(store_dir(dir.path()).join("index.json")).expect("index"),
        expired_index()
    );

    // A folder another user owns.
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).expect("mkdir");
    std::os::unix::fs::chown(&theirs, Some(54321), Some(54321)).expect("chown (tests run as root)");
    let env = [("BUILDOPT_CACHE_DIR", theirs.to_str().expect("utf-8"))];
    let (_, report) = import(dir.path(), "c.tzst", &env);
    assert_eq!(report["restored"], false, "{report}");
    assert!(
        report["warning"]
            .as_str()
            .unwrap_or_default()
            .contains("owned by user 54321"),
        "{report}"
    );
    assert!(names(&theirs).is_empty());
}

#[test]
fn a_last_use_from_an_archive_is_clamped_to_now() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("c.tzst"),
        zstd(&archive_of(&[b"{}", b"l"], u64::MAX)),
    )
    .expect("write");
    let (out, report) = import(dir.path(), "c.tzst", &[]);
    assert_eq!(report["restored"], true, "{}", text(&out));
    let index = std::fs::read(store_dir(dir.path()).join("index.json")).expect("index");
    let index: serde_json::Value = serde_json::from_slice(&index).expect("json");
    let last_used = index["images"][0]["last_used"].as_u64().expect("last_used");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(last_used <= now, "last_used {last_used} is in the future");
}
