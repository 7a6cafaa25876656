//! `scan::vulndb::setup` against a bucket served on 127.0.0.1: conditional downloads (ETag,
//! 304), integrity checks (`x-goog-hash`, zip CRCs) and failures (corrupt zip, 5xx, 404, hash
//! mismatch, timeout, refused connection), after each of which the old database, its archive
//! and its ETag stay as they were.

use std::io::{Cursor, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use buildopt::notify::testserver::{FakeServer, Recorded, Reply};
use buildopt::scan::vulndb::{self, SetupOptions, VulnDb, VulnDbError};
use md5::Digest;

/// Written in the shapes of PYSEC-2023-74 and GHSA-c2qf-rxjj-qqgw (their ids, aliases and
/// ranges as published; prose left out).
const REQUESTS: &str = r#"{"id": "PYSEC-2023-74", "modified": "2023-06-05T01:13:00.534973Z",
  "aliases": ["CVE-2023-32681", "GHSA-j8r2-6x86-q33q"],
  "affected": [{"package": {"name": "requests", "ecosystem": "PyPI"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]}]}]}"#;
const SEMVER: &str = r#"{"id": "GHSA-c2qf-rxjj-qqgw", "modified": "2023-07-10T22:57:56Z",
  "aliases": ["CVE-2022-25883"],
  "affected": [{"package": {"ecosystem": "npm", "name": "semver"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "7.0.0"}, {"fixed": "7.5.2"}]}]}]}"#;
/// A second version of the requests record, as the database grows.
const REQUESTS_LATER: &str = r#"{"id": "PYSEC-2024-1", "modified": "2024-05-01T00:00:00Z",
  "affected": [{"package": {"name": "requests", "ecosystem": "PyPI"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.32.0"}]}]}]}"#;

fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, text) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(text.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// `x-goog-hash` as Google Cloud Storage writes it for `bytes`.
fn goog_hash(bytes: &[u8]) -> String {
    let md5 = BASE64.encode(md5::Md5::digest(bytes));
    let crc = BASE64.encode(crc32c::crc32c(bytes).to_be_bytes());
    format!("crc32c={crc},md5={md5}")
}

/// What the fake bucket serves for every `/<Ecosystem>/all.zip`.
#[derive(Clone)]
struct Object {
    status: u16,
    body: Vec<u8>,
    etag: String,
    hash: Option<String>,
    delay: Option<Duration>,
}

impl Object {
    fn zip(entries: &[(&str, &str)], etag: &str) -> Self {
        let body = zip_of(entries);
        Self {
            status: 200,
            hash: Some(goog_hash(&body)),
            body,
            etag: etag.to_owned(),
            delay: None,
        }
    }
}

/// A bucket whose objects the test changes between setups.
struct Bucket {
    server: FakeServer,
    objects: Arc<Mutex<std::collections::HashMap<String, Object>>>,
}

impl Bucket {
    fn start() -> Self {
        let objects = Arc::new(Mutex::new(
            std::collections::HashMap::<String, Object>::new(),
        ));
        let served = objects.clone();
        let server = FakeServer::start(move |request: &Recorded| {
            let objects = served.lock().unwrap();
            let Some(object) = objects.get(request.path()) else {
                return Reply::status(404);
            };
            if request.header("if-none-match") == Some(object.etag.as_str()) {
                return Reply::status(304).header("etag", &object.etag);
            }
            let mut reply = Reply::status(object.status).header("etag", &object.etag);
            reply.body = object.body.clone();
            if let Some(hash) = &object.hash {
                reply = reply.header("x-goog-hash", hash);
            }
            if let Some(delay) = object.delay {
                reply = reply.delayed(delay);
            }
            reply
        });
        Self { server, objects }
    }

    fn put(&self, path: &str, object: Object) {
        self.objects.lock().unwrap().insert(path.to_owned(), object);
    }

    fn gets(&self, path: &str) -> Vec<Recorded> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.path() == path)
            .collect()
    }
}

fn options(dir: &Path, base_url: String) -> SetupOptions {
    SetupOptions {
        recheck_after: None,
        dir: dir.to_path_buf(),
        base_url,
    }
}

fn client() -> reqwest::blocking::Client {
    vulndb::http_client(Duration::from_secs(10)).unwrap()
}

fn ecosystems(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn ids(db: &VulnDb, ecosystem: &str, name: &str) -> Vec<String> {
    db.records(ecosystem, name)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// Every file under `dir`, relative, sorted (temporary files included).
fn listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn downloads_once_then_asks_with_the_etag_then_downloads_a_changed_archive() {
    let bucket = Bucket::start();
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path(), bucket.server.url());
    assert!(VulnDb::open(dir.path()).unwrap().is_none());
    bucket.put(
        "/PyPI/all.zip",
        Object::zip(&[("a.json", REQUESTS)], "\"v1\""),
    );

    let first = vulndb::setup(&options, &ecosystems(&["PyPI"]), &client()).unwrap();
    assert_eq!(
        (first.downloaded.clone(), first.indexed),
        (vec!["PyPI".into()], true)
    );
    let db = VulnDb::open(dir.path()).unwrap().unwrap();
    assert_eq!(db.version(), first.summary.version);
    assert_eq!(ids(&db, "PyPI", "requests"), ["PYSEC-2023-74"]);
    assert_eq!(
        bucket.gets("/PyPI/all.zip")[0].header("if-none-match"),
        None
    );

    let second = vulndb::setup(&options, &ecosystems(&["PyPI"]), &client()).unwrap();
    assert!(second.downloaded.is_empty() && !second.indexed);
    assert_eq!(second.unchanged, ["PyPI"]);
    assert_eq!(second.summary.version, first.summary.version);
    let gets = bucket.gets("/PyPI/all.zip");
    assert_eq!(gets.len(), 2, "one request each, no download retried");
    assert_eq!(gets[1].header("if-none-match"), Some("\"v1\""));
    let checked = VulnDb::open(dir.path()).unwrap().unwrap();
    assert!(
        checked
            .checked_at()
            .is_some_and(|at| at >= checked.built_at())
    );

    bucket.put(
        "/PyPI/all.zip",
        Object::zip(
            &[("a.json", REQUESTS), ("b.json", REQUESTS_LATER)],
            "\"v2\"",
        ),
    );
    let third = vulndb::setup(&options, &ecosystems(&["PyPI"]), &client()).unwrap();
    assert_eq!(
        (third.downloaded.clone(), third.indexed),
        (vec!["PyPI".into()], true)
    );
    assert_ne!(third.summary.version, first.summary.version);
    let db = VulnDb::open(dir.path()).unwrap().unwrap();
    assert_eq!(
        ids(&db, "PyPI", "requests"),
        ["PYSEC-2023-74", "PYSEC-2024-1"]
    );
    assert_eq!(
        bucket.gets("/PyPI/all.zip")[2].header("if-none-match"),
        Some("\"v1\"")
    );
    let indexes: Vec<String> = listing(dir.path())
        .into_iter()
        .filter(|f| f.starts_with("index/"))
        .collect();
    assert_eq!(indexes, [format!("index/{}.sqlite", db.version())]);
}

#[test]
fn the_index_covers_every_ecosystem_set_up_and_scopes_releases() {
    let bucket = Bucket::start();
    let dir = tempfile::tempdir().unwrap();
    let mirror = format!("{}/mirror/", bucket.server.url());
    let options = options(dir.path(), mirror);
    let debian = r#"{"id": "DSA-TEST-1", "modified": "2024-03-01T10:00:00Z",
      "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}]}]}]}"#;
    bucket.put(
        "/mirror/PyPI/all.zip",
        Object::zip(&[("a.json", REQUESTS)], "p"),
    );
    bucket.put(
        "/mirror/npm/all.zip",
        Object::zip(&[("s.json", SEMVER)], "n"),
    );
    bucket.put(
        "/mirror/Debian/all.zip",
        Object::zip(&[("d.json", debian)], "d"),
    );

    vulndb::setup(&options, &ecosystems(&["PyPI", "Debian:12"]), &client()).unwrap();
    let report = vulndb::setup(&options, &ecosystems(&["npm"]), &client()).unwrap();
    assert_eq!(report.downloaded, ["npm"]);
    assert_eq!(report.unchanged, ["Debian", "PyPI"]);
    let db = VulnDb::open(dir.path()).unwrap().unwrap();
    assert_eq!(db.ecosystems(), ["Debian:12", "PyPI", "npm"]);
    assert_eq!(ids(&db, "npm", "semver"), ["GHSA-c2qf-rxjj-qqgw"]);
    assert_eq!(ids(&db, "PyPI", "requests"), ["PYSEC-2023-74"]);
    assert_eq!(ids(&db, "Debian:12", "openssl"), ["DSA-TEST-1"]);
    assert!(ids(&db, "Debian:11", "openssl").is_empty());
    // The second setup asked only for npm: the stored archives were not fetched again.
    assert_eq!(bucket.gets("/mirror/PyPI/all.zip").len(), 1);
}

/// The folder as the first setup left it: the current index, the archive and its ETag.
fn snapshot(dir: &Path) -> (String, Vec<u8>, Vec<u8>, Vec<String>) {
    let db = VulnDb::open(dir).unwrap().unwrap();
    (
        db.version().to_owned(),
        std::fs::read(dir.join("archives/PyPI/all.zip")).unwrap(),
        std::fs::read(dir.join("archives/PyPI/meta.json")).unwrap(),
        listing(dir),
    )
}

#[test]
fn every_failure_keeps_the_old_database_archive_and_etag() {
    let bucket = Bucket::start();
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path(), bucket.server.url());
    bucket.put("/PyPI/all.zip", Object::zip(&[("a.json", REQUESTS)], "v1"));
    vulndb::setup(&options, &ecosystems(&["PyPI"]), &client()).unwrap();
    let before = snapshot(dir.path());
    let url = format!("{}/PyPI/all.zip", bucket.server.url());

    let good = Object::zip(&[("a.json", REQUESTS), ("b.json", REQUESTS_LATER)], "v2");
    let mut truncated = good.clone();
    truncated.body.truncate(good.body.len() / 2);
    truncated.hash = None;
    let mut flipped = good.clone();
    let at = flipped.body.len() / 3;
    flipped.body[at] ^= 0xff;
    flipped.hash = None;
    let not_a_zip = Object {
        body: b"<html>oops</html>".to_vec(),
        hash: None,
        ..good.clone()
    };
    let wrong_md5 = Object {
        hash: Some(format!(
            "crc32c={},md5=AAAAAAAAAAAAAAAAAAAAAA==",
            BASE64.encode(crc32c::crc32c(&good.body).to_be_bytes())
        )),
        ..good.clone()
    };
    let wrong_crc = Object {
        hash: Some("crc32c=AAAAAA==".into()),
        ..good.clone()
    };
    let server_error = Object {
        status: 500,
        ..good.clone()
    };
    let failures = [
        ("not a zip", not_a_zip),
        ("truncated zip", truncated),
        ("damaged entry", flipped),
        ("md5 mismatch", wrong_md5),
        ("crc32c mismatch", wrong_crc),
        ("server error", server_error),
    ];
    for (what, object) in failures {
        bucket.put("/PyPI/all.zip", object);
        let error = vulndb::setup(&options, &ecosystems(&["PyPI"]), &client()).unwrap_err();
        assert!(error.to_string().contains(&url), "{what}: {error}");
        assert_eq!(snapshot(dir.path()), before, "{what}: {error}");
    }

    bucket.objects.lock().unwrap().clear();
    let error = vulndb::setup(&options, &ecosystems(&["PyPI"]), &client()).unwrap_err();
    assert!(error.to_string().contains("404"), "{error}");
    assert_eq!(snapshot(dir.path()), before);

    let slow = Object {
        delay: Some(Duration::from_secs(3)),
        ..good.clone()
    };
    bucket.put("/PyPI/all.zip", slow);
    let impatient = vulndb::http_client(Duration::from_millis(500)).unwrap();
    let error = vulndb::setup(&options, &ecosystems(&["PyPI"]), &impatient).unwrap_err();
    assert!(
        matches!(&error, VulnDbError::Download { url: u, .. } if *u == url),
        "{error}"
    );
    assert!(error.to_string().contains("timed out"), "{error}");
    assert_eq!(snapshot(dir.path()), before);

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let refused = SetupOptions {
        base_url: format!("http://{closed}"),
        ..options.clone()
    };
    let error = vulndb::setup(&refused, &ecosystems(&["PyPI"]), &client()).unwrap_err();
    assert!(error.to_string().contains(&closed.to_string()), "{error}");
    assert_eq!(snapshot(dir.path()), before);

    bucket.put("/PyPI/all.zip", good);
    let report = vulndb::setup(&options, &ecosystems(&["PyPI"]), &client()).unwrap();
    assert!(report.indexed);
    let db = VulnDb::open(dir.path()).unwrap().unwrap();
    assert_eq!(
        ids(&db, "PyPI", "requests"),
        ["PYSEC-2023-74", "PYSEC-2024-1"]
    );
}

#[test]
fn nothing_to_set_up_and_bad_names_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path(), "http://127.0.0.1:9".into());
    assert!(matches!(
        vulndb::setup(&options, &[], &client()),
        Err(VulnDbError::NothingToSetUp)
    ));
    assert!(matches!(
        vulndb::setup(&options, &ecosystems(&["../etc"]), &client()),
        Err(VulnDbError::BadEcosystem(_))
    ));
}

/// `scan --setup --for-ci`, the real binary as the CI wrappers run it in a workspace: it downloads
/// only when `buildopt ci` there would scan, and tells a GitHub Actions step so (`scans`).
#[test]
fn setup_for_ci_downloads_only_when_ci_would_scan() {
    let bucket = Bucket::start();
    bucket.put(
        "/PyPI/all.zip",
        Object::zip(&[("a.json", REQUESTS)], "\"v1\""),
    );
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("vulndb");
    let output = work.path().join("github-output");
    let url = bucket.server.url();
    let setup = |extra: &[(&str, &str)]| {
        std::fs::write(&output, "").unwrap();
        let mut env = vec![
            ("BUILDOPT_VULNDB_URL", url.as_str()),
            ("BUILDOPT_VULNDB_DIR", db.to_str().unwrap()),
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_OUTPUT", output.to_str().unwrap()),
        ];
        env.extend_from_slice(extra);
        let out = crate::cli::buildopt(
            work.path(),
            &["scan", "--setup", "--for-ci", "--ecosystem", "PyPI"],
            &env,
        );
        assert!(out.status.success(), "{out:?}");
        // The step output, in the delimited form GitHub reads: `scans<<D`, the value, `D`.
        let outputs = std::fs::read_to_string(&output).unwrap();
        let lines: Vec<&str> = outputs.lines().collect();
        assert!(
            lines.len() == 3 && lines[0].starts_with("scans<<") && lines[0][7..] == *lines[2],
            "{outputs:?}"
        );
        (
            String::from_utf8_lossy(&out.stderr).into_owned(),
            lines[1].to_owned(),
        )
    };

    // The action's level input, and buildopt.toml, both say "does not scan": nothing is asked.
    let (said, outputs) = setup(&[("INPUT_LEVEL", "medium")]);
    assert!(
        said.contains("buildopt ci does not scan here (level medium"),
        "{said}"
    );
    assert_eq!(outputs, "false");
    std::fs::write(work.path().join("buildopt.toml"), "level = \"minimal\"\n").unwrap();
    let (said, outputs) = setup(&[]);
    assert!(said.contains("level minimal"), "{said}");
    assert_eq!(outputs, "false");
    assert!(bucket.server.requests().is_empty());
    assert!(!db.exists(), "nothing written");

    // The seed's SECURITY_SCAN turns the scan on at that level: the database is downloaded.
    let (_, outputs) = setup(&[("SECURITY_SCAN", "true")]);
    assert_eq!(outputs, "true");
    assert_eq!(bucket.gets("/PyPI/all.zip").len(), 1);
    assert!(VulnDb::open(&db).unwrap().is_some());

    // `buildopt ci`'s own default level (ci) scans; the database was checked against the
    // bucket a moment ago, so the source is not asked again within the day.
    std::fs::remove_file(work.path().join("buildopt.toml")).unwrap();
    let (said, outputs) = setup(&[]);
    assert_eq!(outputs, "true");
    assert!(said.contains("not asked again"), "{said}");
    assert_eq!(bucket.gets("/PyPI/all.zip").len(), 1);

    // A day later it is (the check's time moved back), conditionally.
    let checked = std::fs::read_to_string(db.join("checked")).unwrap();
    let (version, seconds) = checked.trim().split_once(' ').unwrap();
    let day_ago = seconds.parse::<u64>().unwrap() - 24 * 3600 - 1;
    std::fs::write(db.join("checked"), format!("{version} {day_ago}\n")).unwrap();
    let (said, _) = setup(&[]);
    assert!(!said.contains("not asked again"), "{said}");
    let gets = bucket.gets("/PyPI/all.zip");
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[1].header("if-none-match"), Some("\"v1\""));

    // An ecosystem the database does not hold yet is fetched whatever the check's age.
    bucket.put("/npm/all.zip", Object::zip(&[("b.json", SEMVER)], "\"n1\""));
    let out = crate::cli::buildopt(
        work.path(),
        &[
            "scan",
            "--setup",
            "--for-ci",
            "--ecosystem",
            "PyPI",
            "--ecosystem",
            "npm",
        ],
        &[
            ("BUILDOPT_VULNDB_URL", url.as_str()),
            ("BUILDOPT_VULNDB_DIR", db.to_str().unwrap()),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(bucket.gets("/npm/all.zip").len(), 1);
}
