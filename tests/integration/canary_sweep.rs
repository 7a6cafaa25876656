//! The canary sweep (issue 13, item 7, T21): one `buildopt ci` run of a pull request against the
//! fake GitHub and Slack servers, with a canary in every secret variable buildopt knows. A hook
//! prints every canary in the forms a leak takes (plain, base64 of `user:CANARY`, hex, lower-case
//! `%`-escapes, split over two lines) and a build step echoes one; then every byte buildopt wrote
//! or sent (stdout but its `::add-mask::` lines, stderr, the files it wrote, the summary, the step
//! outputs, the request bodies) is searched for the canaries in plain, base64 and base64url at
//! every alignment, hex (both cases) and `%`-encoded (both cases) forms.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::json;

use crate::build::{Images, daemon_available, prefix};
use crate::cli::buildopt;
use crate::fake_api;
use crate::support::TestRepo;

/// The secret variables (buildopt's `build::hooks::SECRET_VARS`) but the webhooks, which must be
/// URLs.
const TOKEN_VARS: [&str; 10] = [
    "GITHUB_TOKEN",
    "BUILDOPT_GITHUB_TOKEN",
    "BUILDOPT_GITLAB_TOKEN",
    "BUILDOPT_REGISTRY_PASSWORD",
    "INPUT_GITHUB_TOKEN",
    "INPUT_GITHUB-TOKEN",
    "INPUT_GITLAB_TOKEN",
    "INPUT_GITLAB-TOKEN",
    "INPUT_REGISTRY_PASSWORD",
    "INPUT_REGISTRY-PASSWORD",
];

const WEBHOOK_VARS: [&str; 4] = [
    "SLACK_WEBHOOK",
    "BUILDOPT_SLACK_WEBHOOK",
    "INPUT_SLACK_WEBHOOK",
    "INPUT_SLACK-WEBHOOK",
];

/// A canary per variable; `/`, `+` and `=` make its `%`-encoded form differ from the plain one.
fn canary(var: &str) -> String {
    format!("cnry{}/Zq8+x=", var.replace(['_', '-'], ""))
}

/// Every form the sweep looks for.
fn forms(secret: &str) -> Vec<String> {
    let bytes = secret.as_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut forms = vec![
        secret.to_string(),
        percent_encoded(secret, false),
        percent_encoded(secret, true),
        hex.to_ascii_uppercase(),
        hex,
    ];
    for engine in [
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        for shift in 0..3 {
            // The characters that only the secret's bits decide, whatever comes before it.
            let mut data = vec![b'u'; shift];
            data.extend_from_slice(bytes);
            let encoded = engine.encode(&data);
            let start = (8 * shift).div_ceil(6);
            let end = 8 * (shift + bytes.len()) / 6;
            forms.push(encoded[start..end].to_string());
        }
    }
    forms
}

/// `secret` with every byte but the unreserved ones as `%XX` (`%xx` when `lower`).
fn percent_encoded(secret: &str, lower: bool) -> String {
    secret
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ if lower => format!("%{b:02x}"),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The hook: per canary one line with its plain, `user:` base64, hex and lower-case `%` forms
/// and its first half, the next line starting with its second half (20 lines at most: the tail
/// buildopt keeps).
fn hook_script(secrets: &[String]) -> String {
    let mut script = String::from("#!/bin/sh\n");
    let mut carry = String::new();
    for secret in secrets {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("user:{secret}"));
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        let percent = percent_encoded(secret, true);
        let (head, tail) = secret.split_at(secret.len() / 2);
        script.push_str(&format!(
            "printf '%s\\n' '{carry} {secret} Basic {basic} {hex} {percent} {head}'\n"
        ));
        carry = tail.to_string();
    }
    script.push_str(&format!("printf '%s\\n' '{carry}'\nexit 1\n"));
    script
}

/// Files under `dir` but `.git` and those `keep` names.
fn files_under(dir: &Path, keep: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == ".git") || keep.contains(&path) {
            continue;
        }
        if path.is_dir() {
            found.extend(files_under(&path, keep));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn no_secret_in_any_form_reaches_output_files_or_request_bodies() {
    if !daemon_available("canary sweep") {
        return;
    }
    let prefix = prefix("canary");
    let _images = Images(prefix.clone());
    let (server, _forge) = fake_api::fake_forge::start("github-actions[bot]");
    let mut secrets: Vec<(String, String)> = TOKEN_VARS
        .iter()
        .map(|var| (var.to_string(), canary(var)))
        .collect();
    for var in WEBHOOK_VARS {
        let path = format!(
            "/services/T0/B0/{}",
            canary(var).replace(['/', '+', '='], "")
        );
        secrets.push((var.to_string(), format!("{}{path}", server.url())));
    }
    let values: Vec<String> = secrets.iter().map(|(_, v)| v.clone()).collect();

    let repo = TestRepo::new();
    repo.write(
        "buildopt.toml",
        &format!(
            "[images.app]\nimage = \"{prefix}/app\"\ncontext = \"app\"\n\n\
             [hooks]\npost_build = \"sh scripts/leak.sh\"\n"
        ),
    );
    repo.write("scripts/leak.sh", &hook_script(&values));
    repo.write(
        "app/Dockerfile",
        &format!(
            "FROM buildopt-test/busybox:latest\nRUN echo 'token {}' && exit 3\n",
            values[0]
        ),
    );
    repo.commit("canaries");
    repo.checkout_new("feature");
    repo.write("app/data.txt", "changed\n");
    repo.commit("feature");
    let committed: Vec<PathBuf> = repo
        .git(&["ls-files"])
        .lines()
        .map(|f| repo.path().join(f))
        .collect();

    let runner = tempfile::tempdir().expect("runner");
    let (outputs, summary, event) = (
        runner.path().join("github_output"),
        runner.path().join("step_summary"),
        runner.path().join("event.json"),
    );
    std::fs::write(&outputs, "").expect("outputs");
    std::fs::write(&summary, "").expect("summary");
    let payload = json!({"number": 7, "pull_request": {"number": 7,
        "head": {"sha": repo.sha("HEAD"), "ref": "feature"},
        "base": {"sha": repo.sha("main"), "ref": "main"}},
        "repository": {"full_name": "acme/app", "default_branch": "main"}});
    std::fs::write(&event, payload.to_string()).expect("event");
    let store = runner.path().join("store");
    let mut env: Vec<(String, String)> = [
        ("CI", "true"),
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_EVENT_NAME", "pull_request"),
        ("GITHUB_REF", "refs/pull/7/merge"),
        ("GITHUB_REPOSITORY", "acme/app"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_RUN_ID", "4242"),
        ("INPUT_REGISTRY_USERNAME", "robot"),
        ("BUILDOPT_REGISTRY_USER", "robot"),
        ("BUILDOPT_SLACK_ON", "always"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend([
        ("GITHUB_API_URL".to_string(), server.url()),
        ("GITHUB_SHA".into(), repo.sha("HEAD")),
        ("GITHUB_EVENT_PATH".into(), event.display().to_string()),
        ("GITHUB_OUTPUT".into(), outputs.display().to_string()),
        ("GITHUB_STEP_SUMMARY".into(), summary.display().to_string()),
        ("BUILDOPT_CACHE_DIR".into(), store.display().to_string()),
    ]);
    env.extend(secrets.iter().cloned());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let output = buildopt(repo.path(), &["ci"], &env);
    let both = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "the step fails: {both}");
    let report = std::fs::read_to_string(repo.path().join("buildopt-report.json")).expect("report");
    assert!(report.contains("post-build hook failed"), "{report}");

    let mut places: Vec<(String, Vec<u8>)> = Vec::new();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let unmasked: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect();
    places.push(("stdout".into(), unmasked.join("\n").into_bytes()));
    places.push(("stderr".into(), output.stderr.clone()));
    for file in files_under(repo.path(), &committed)
        .into_iter()
        .chain([outputs, summary])
    {
        let bytes = std::fs::read(&file).expect("read");
        places.push((file.display().to_string(), bytes));
    }
    let requests = server.requests();
    assert!(
        requests.iter().any(|r| r.path().starts_with("/services/")),
        "Slack was posted to"
    );
    for request in requests {
        places.push((
            format!("{} {}", request.method, request.path()),
            request.body,
        ));
    }
    let mut leaks = Vec::new();
    for (place, bytes) in &places {
        // The SARIF upload and other bodies may be compressed or encoded; the forms cover base64.
        let text = String::from_utf8_lossy(bytes);
        let squashed = text.replace(['\n', '\r'], "");
        for (var, value) in &secrets {
            for form in forms(value) {
                if squashed.contains(&form) {
                    leaks.push(format!("{var} as {form:?} in {place}"));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "{leaks:#?}\n{both}");
    // The sweep saw the hook and the step: their lines are there, redacted.
    assert!(
        report.contains("Basic dXNlcjp***") && report.contains("token ***"),
        "{report}"
    );
}
