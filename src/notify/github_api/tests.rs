use std::io::Read;

use super::*;
use crate::notify::fake_forge;
use crate::notify::http::tests::fast_client;
use crate::notify::testserver::Recorded;

const BOT: &str = "github-actions[bot]";
const MARKER: &str = "<!-- buildopt:default -->";

fn token() -> Secret {
    Secret::new("ghp_CANARY_token_1234")
}

fn assert_github_headers(request: &Recorded) {
    assert_eq!(
        request.header("authorization"),
        Some("Bearer ghp_CANARY_token_1234")
    );
    assert_eq!(
        request.header("accept"),
        Some("application/vnd.github+json")
    );
    assert_eq!(request.header("x-github-api-version"), Some("2022-11-28"));
    assert!(
        request
            .header("user-agent")
            .is_some_and(|ua| ua.starts_with("buildopt/")),
        "{request:?}"
    );
}

#[test]
fn the_first_run_creates_the_comment_and_the_second_updates_it() {
    let (server, forge) = fake_forge::start(BOT);
    let token = token();
    let (http, _) = fast_client(&[&token]);
    let api = GitHubApi::new(&http, &format!("{}/", server.url()), &token, "o/r").expect("api");

    let first = api.sticky_comment(7, MARKER, BOT, &format!("{MARKER}\none"));
    assert_eq!(first.expect("create"), StickyOutcome::Created(1));
    let second = api.sticky_comment(7, MARKER, BOT, &format!("{MARKER}\ntwo"));
    assert_eq!(second.expect("update"), StickyOutcome::Updated(1));

    let comments = forge.comments();
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].body, format!("{MARKER}\ntwo"));
    let requests = server.requests();
    let lines: Vec<String> = requests.iter().map(Recorded::line).collect();
    assert_eq!(
        lines,
        [
            "GET /repos/o/r/issues/7/comments",
            "POST /repos/o/r/issues/7/comments",
            "GET /repos/o/r/issues/7/comments",
            "PATCH /repos/o/r/issues/comments/1",
        ]
    );
    assert_eq!(requests[0].query("per_page"), Some("100"));
    assert_eq!(
        requests[1].json(),
        json!({"body": format!("{MARKER}\none")})
    );
    assert_eq!(
        requests[3].json(),
        json!({"body": format!("{MARKER}\ntwo")})
    );
    requests.iter().for_each(assert_github_headers);
}

use serde_json::json;

#[test]
fn the_marker_is_found_on_the_second_page_and_other_authors_are_left_alone() {
    let (server, forge) = fake_forge::start(BOT);
    forge.seed("mallory", &format!("{MARKER}\nspoofed"));
    for n in 0..110 {
        forge.seed("someone", &format!("comment {n}"));
    }
    let ours = forge.seed(BOT, &format!("{MARKER}\nold"));
    for n in 0..9 {
        forge.seed("someone", &format!("later {n}"));
    }
    assert_eq!(forge.comments().len(), 121);
    let token = token();
    let (http, _) = fast_client(&[&token]);
    let api = GitHubApi::new(&http, &server.url(), &token, "o/r").expect("api");

    let outcome = api.sticky_comment(7, MARKER, BOT, &format!("{MARKER}\nnew"));
    assert_eq!(outcome.expect("update"), StickyOutcome::Updated(ours));

    let comments = forge.comments();
    assert_eq!(comments.len(), 121, "nothing created");
    assert_eq!(comments[0].body, format!("{MARKER}\nspoofed"));
    assert_eq!(comments[ours as usize - 1].body, format!("{MARKER}\nnew"));
    let pages: Vec<Option<String>> = server
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.query("page").map(str::to_string))
        .collect();
    assert_eq!(pages, [None, Some("2".to_string())]);
}

#[test]
fn a_marker_only_other_authors_used_gets_a_new_comment() {
    let (server, forge) = fake_forge::start(BOT);
    forge.seed("mallory", &format!("{MARKER}\nspoofed"));
    let token = token();
    let (http, _) = fast_client(&[&token]);
    let api = GitHubApi::new(&http, &server.url(), &token, "o/r").expect("api");
    let outcome = api.sticky_comment(7, MARKER, BOT, &format!("{MARKER}\nmine"));
    assert_eq!(outcome.expect("create"), StickyOutcome::Created(2));
    assert_eq!(forge.comments()[0].body, format!("{MARKER}\nspoofed"));
}

#[test]
fn repositories_must_be_owner_slash_name() {
    let token = token();
    let (http, _) = fast_client(&[]);
    for bad in ["o", "o/r/x", "o/../r", "../r", "o/r?x=1", ""] {
        let err = GitHubApi::new(&http, "http://127.0.0.1:1", &token, bad).expect_err(bad);
        assert!(err.to_string().contains("owner/name"), "{err}");
    }
}

fn sarif_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("images.sarif");
    std::fs::write(
        &path,
        r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"buildopt","rules":[]}},"results":[]}]}"#,
    )
    .expect("write sarif");
    path
}

fn gunzip_base64(encoded: &str) -> Vec<u8> {
    let gzip = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(gzip.as_slice())
        .read_to_end(&mut bytes)
        .expect("gunzip");
    bytes
}

#[test]
fn sarif_is_uploaded_gzipped_and_polled_until_complete() {
    let (server, forge) = fake_forge::start(BOT);
    forge.queue_sarif_status(json!({"processing_status": "pending"}));
    forge.queue_sarif_status(json!({"processing_status": "pending"}));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sarif_file(dir.path());
    let token = token();
    let (http, waits) = fast_client(&[&token]);
    let api = GitHubApi::new(&http, &server.url(), &token, "o/r").expect("api");
    let sha = "a".repeat(40);

    let outcome = api
        .upload_sarif(&path, &sha, "refs/pull/7/merge", SarifPolling::default())
        .expect("upload")
        .0;
    assert_eq!(
        outcome,
        SarifOutcome::Complete {
            id: "sarif-1".into()
        }
    );

    let upload = &forge.sarif_uploads.lock().expect("uploads")[0];
    assert_eq!(upload["commit_sha"], json!(sha));
    assert_eq!(upload["ref"], json!("refs/pull/7/merge"));
    let sarif = gunzip_base64(upload["sarif"].as_str().expect("sarif"));
    assert_eq!(sarif, std::fs::read(&path).expect("read"));
    let lines: Vec<String> = server.requests().iter().map(Recorded::line).collect();
    assert_eq!(lines[0], "POST /repos/o/r/code-scanning/sarifs");
    assert_eq!(
        lines[1..],
        ["GET /repos/o/r/code-scanning/sarifs/sarif-1"; 3]
    );
    server.requests().iter().for_each(assert_github_headers);
    let secs: Vec<u64> = waits
        .lock()
        .expect("waits")
        .iter()
        .map(|d| d.as_secs())
        .collect();
    assert_eq!(secs, [5, 10]);
}

#[test]
fn failed_processing_reports_github_s_errors_and_pending_gives_up_after_the_polls() {
    let (server, forge) = fake_forge::start(BOT);
    let errors = json!(["could not convert rules: invalid security severity value"]);
    forge.queue_sarif_status(json!({"processing_status": "failed", "errors": errors}));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sarif_file(dir.path());
    let token = token();
    let (http, _) = fast_client(&[&token]);
    let api = GitHubApi::new(&http, &server.url(), &token, "o/r").expect("api");
    let polling = SarifPolling {
        polls: 2,
        first_interval: Duration::from_millis(1),
    };
    let outcome = api.upload_sarif(&path, "sha", "refs/heads/main", polling);
    let SarifOutcome::Failed { errors, .. } = outcome.expect("uploaded").0 else {
        panic!("must fail");
    };
    assert_eq!(
        errors,
        ["could not convert rules: invalid security severity value"]
    );

    for _ in 0..2 {
        forge.queue_sarif_status(json!({"processing_status": "pending"}));
    }
    let outcome = api.upload_sarif(&path, "sha", "refs/heads/main", polling);
    assert!(matches!(outcome, Ok((SarifOutcome::Pending { .. }, _))));
}

#[test]
fn unusable_sarif_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.sarif");
    let err = encode_sarif(&missing, MAX_SARIF_GZIP_BYTES).expect_err("missing");
    assert!(
        err.to_string()
            .starts_with(&format!("SARIF file {}:", missing.display()))
    );
    let broken = dir.path().join("broken.sarif");
    std::fs::write(&broken, "{not json").expect("write");
    let err = encode_sarif(&broken, MAX_SARIF_GZIP_BYTES).expect_err("broken");
    assert!(err.to_string().contains("broken.sarif: not JSON"), "{err}");
    let path = sarif_file(dir.path());
    let err = encode_sarif(&path, 20).expect_err("too large");
    assert!(
        err.to_string().contains("images.sarif")
            && err.to_string().contains("GitHub accepts at most 20"),
        "{err}"
    );
}

#[test]
fn sarif_over_github_s_limits_is_uploaded_trimmed_to_them() {
    let (server, forge) = fake_forge::start(BOT);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.sarif");
    let result = |level: &str| json!({"level": level, "ruleId": "r", "message": {"text": "m"}});
    let mut big: Vec<serde_json::Value> = (0..25_010).map(|_| result("note")).collect();
    big.push(result("error"));
    let mut runs = vec![json!({"tool": {"driver": {"name": "t"}}, "results": big})];
    runs.extend(
        (0..21).map(|_| json!({"tool": {"driver": {"name": "t"}}, "results": [result("warning")]})),
    );
    let log = json!({"version": "2.1.0", "runs": runs});
    std::fs::write(&path, log.to_string()).expect("write");
    let token = token();
    let (http, _) = fast_client(&[&token]);
    let api = GitHubApi::new(&http, &server.url(), &token, "o/r").expect("api");
    let polling = SarifPolling {
        polls: 1,
        first_interval: Duration::from_millis(1),
    };
    let (_, trimmed) = api
        .upload_sarif(&path, "sha", "refs/heads/main", polling)
        .expect("uploaded");
    assert_eq!(trimmed.runs_left_out, 2);
    assert_eq!(trimmed.results_left_out, 11);
    let upload = &forge.sarif_uploads.lock().expect("uploads")[0];
    let sent: serde_json::Value =
        serde_json::from_slice(&gunzip_base64(upload["sarif"].as_str().expect("sarif")))
            .expect("json");
    let runs = sent["runs"].as_array().expect("runs");
    assert!(runs.len() <= 20, "{} runs", runs.len());
    for run in runs {
        let results = run["results"].as_array().expect("results");
        assert!(results.len() <= 25_000, "{} results", results.len());
    }
    let first = runs[0]["results"].as_array().expect("results");
    assert!(
        first.iter().any(|r| r["level"] == "error"),
        "the error is kept"
    );
}
