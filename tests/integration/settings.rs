//! Settings are resolved once, before a command does any work: an invalid value of any setting
//! (flag, variable, `buildopt.toml`) or a revision that does not resolve exits 2 naming its
//! source, with nothing built and nothing sent; and the settings `ci` reads, `build` reads too.
//!
//! "Nothing sent" is checked with one listener that stands for the Docker daemon, the GitHub API
//! and the Slack webhook at once: after the run it must not have been connected to.

use std::net::TcpListener;
use std::process::Output;

use crate::build::{Images, daemon_available, prefix, result_of};
use crate::cli::buildopt;
use crate::support::TestRepo;

/// Every command, with the arguments that make it run past settings resolution.
const COMMANDS: &[&[&str]] = &[
    &["plan"],
    &["build"],
    &["ci"],
    &["cache", "stats"],
    &["cache", "setup"],
    &["notify", "--report", "report.json"],
];

/// A listener every address of the run points at; [`Trap::touched`] says whether anything came.
struct Trap {
    listener: TcpListener,
}

impl Trap {
    fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        Self { listener }
    }

    fn address(&self) -> String {
        self.listener.local_addr().expect("address").to_string()
    }

    /// The daemon, the GitHub API and Slack, all at the trap; a token and a webhook so that
    /// publishing would happen.
    fn env(&self) -> Vec<(String, String)> {
        let address = self.address();
        vec![
            ("DOCKER_HOST".into(), format!("tcp://{address}")),
            ("GITHUB_API_URL".into(), format!("http://{address}")),
            ("BUILDOPT_GITHUB_TOKEN".into(), "ghp_trap".into()),
            (
                "BUILDOPT_SLACK_WEBHOOK".into(),
                format!("http://{address}/hook"),
            ),
        ]
    }

    fn touched(&self) -> bool {
        self.listener.accept().is_ok()
    }
}

/// A repository with one image, committed, and a run report for `notify`.
fn repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("app/Dockerfile", "FROM scratch\nCOPY hello /hello\n");
    repo.write("app/hello", "hello\n");
    repo.write(
        "buildopt.toml",
        "[images.app]\nimage = \"bo-settings/app\"\ncontext = \"app\"\n",
    );
    repo.commit("one image");
    repo
}

fn run(repo: &TestRepo, trap: &Trap, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut env = trap.env();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    buildopt(repo.path(), args, &pairs)
}

/// The run exited 2 naming `source`, reached nothing, and left no report or store behind.
fn assert_refused(repo: &TestRepo, trap: &Trap, args: &[&str], output: &Output, source: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(source),
        "{args:?} must name {source}: {stderr}"
    );
    assert!(
        !trap.touched(),
        "{args:?} reached the daemon or the network"
    );
    for left in ["buildopt-report.json", "buildopt-junit.xml", ".build_cache"] {
        assert!(!repo.path().join(left).exists(), "{args:?} wrote {left}");
    }
}

#[test]
fn an_invalid_variable_exits_2_before_any_work_in_every_command() {
    let repo = repo();
    let trap = Trap::new();
    for (name, value) in [
        ("BUILDOPT_SLACK_ON", "sometimes"),
        ("BUILDOPT_JOBS", "0"),
        ("BUILDOPT_CACHE_COMPRESSION", "xz"),
        ("BUILDOPT_PUSH", "maybe"),
        ("CACHE_RETENTION_DAYS", "a week"),
        ("BUILDOPT_TAGS", "{commit}"),
        ("BUILDX_PLATFORMS", "linux"),
    ] {
        for args in COMMANDS {
            let output = run(&repo, &trap, args, &[(name, value)]);
            assert_refused(&repo, &trap, args, &output, &format!("${name}"));
        }
    }
}

#[test]
fn an_invalid_file_value_exits_2_naming_buildopt_toml_in_every_command() {
    let repo = repo();
    let trap = Trap::new();
    let config = std::fs::read_to_string(repo.path().join("buildopt.toml")).expect("config");
    for table in ["jobs = 0\n", "level = \"turbo\"\n"] {
        repo.write("buildopt.toml", &format!("{table}{config}"));
        for args in COMMANDS {
            let output = run(&repo, &trap, args, &[]);
            assert_refused(&repo, &trap, args, &output, "buildopt.toml");
        }
    }
    repo.write(
        "buildopt.toml",
        &format!("{config}[notify]\nslack_on = \"never\"\n"),
    );
    for args in COMMANDS {
        let output = run(&repo, &trap, args, &[]);
        assert_refused(&repo, &trap, args, &output, "buildopt.toml");
    }
}

#[test]
fn an_invalid_flag_exits_2_before_any_work() {
    let repo = repo();
    let trap = Trap::new();
    for args in [
        &["build", "--jobs", "0"][..],
        &["ci", "--jobs", "0"],
        &["build", "--tag", "v-{commit}"],
        &["ci", "--tag", "v-{commit}"],
    ] {
        let output = run(&repo, &trap, args, &[]);
        assert_refused(&repo, &trap, args, &output, "(from flag)");
    }
}

#[test]
fn a_revision_that_does_not_resolve_exits_2_before_the_daemon() {
    let repo = repo();
    let trap = Trap::new();
    for args in [
        &["plan", "--base", "no-such-rev"][..],
        &["build", "--base", "no-such-rev"],
        &["build", "--head", "no-such-rev"],
        &["ci", "--base", "no-such-rev"],
        &["ci", "--head", "no-such-rev"],
    ] {
        let output = run(&repo, &trap, args, &[]);
        assert_refused(&repo, &trap, args, &output, "`no-such-rev` is not a commit");
    }
}

#[test]
fn an_unknown_image_or_an_unfillable_tag_exits_2_before_the_daemon() {
    let repo = repo();
    let trap = Trap::new();
    for args in [&["build", "--only", "nope"][..], &["ci", "--only", "nope"]] {
        let output = run(&repo, &trap, args, &[]);
        assert_refused(&repo, &trap, args, &output, "--only nope");
    }
    // `{tag}` is a known variable, but a branch build has no git tag to fill it with.
    for args in [&["build", "--tag", "{tag}"][..], &["ci", "--tag", "{tag}"]] {
        let output = run(&repo, &trap, args, &[]);
        assert_refused(&repo, &trap, args, &output, "needs {tag}");
    }
}

#[test]
fn the_store_retention_comes_from_buildopt_toml_as_the_cleanup_does() {
    let repo = repo();
    let config = std::fs::read_to_string(repo.path().join("buildopt.toml")).expect("config");
    repo.write(
        "buildopt.toml",
        &format!("cache_retention_days = 3\n{config}"),
    );
    let store = repo.path().join("store");
    let store = store.to_str().expect("utf-8");
    let stats = |env: &[(&str, &str)]| {
        let output = buildopt(repo.path(), &["cache", "--cache-dir", store, "stats"], env);
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(stats(&[]).contains("retention 3 days"), "{}", stats(&[]));
    let from_env = stats(&[("CACHE_RETENTION_DAYS", "5")]);
    assert!(from_env.contains("retention 5 days"), "{from_env}");
    let args = [
        "cache",
        "--cache-dir",
        store,
        "--cache-retention-days",
        "2",
        "stats",
    ];
    let output = buildopt(repo.path(), &args, &[("CACHE_RETENTION_DAYS", "5")]);
    let from_flag = String::from_utf8_lossy(&output.stdout);
    assert!(from_flag.contains("retention 2 days"), "{from_flag}");
}

#[test]
fn build_honours_keep_going_and_tags_from_the_environment_as_ci_does() {
    if !daemon_available("settings_build_env") {
        return;
    }
    let prefix = prefix("settings-env");
    let _images = Images(prefix.clone());
    let repo = TestRepo::new();
    repo.write(
        "buildopt.toml",
        &format!(
            "[images.broken]\nimage = \"{prefix}/broken\"\ncontext = \"broken\"\n\
             [images.fine]\nimage = \"{prefix}/fine\"\ncontext = \"fine\"\n"
        ),
    );
    // `broken` copies a file its context does not have; `fine` needs nothing.
    repo.write("broken/Dockerfile", "FROM scratch\nCOPY missing /missing\n");
    repo.write("fine/Dockerfile", "FROM scratch\nCOPY hello /hello\n");
    repo.write("fine/hello", &format!("{prefix}\n"));
    repo.commit("two images");
    let env = [
        ("CI", "true"),
        ("BUILDOPT_KEEP_GOING", "true"),
        ("BUILDOPT_TAGS", "env-tag"),
    ];
    let output = buildopt(
        repo.path(),
        &["--format", "json", "build", "--jobs", "1"],
        &env,
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(result_of(&report, "broken"), "failed", "{report}");
    assert_eq!(result_of(&report, "fine"), "built", "keep-going: {report}");
    let fine = report["images"]
        .as_array()
        .and_then(|images| images.iter().find(|i| i["name"] == "fine"))
        .expect("fine in the report");
    let tag = format!("{prefix}/fine:env-tag");
    assert!(fine["tags"].to_string().contains(&tag), "{fine}");
}

/// Reads the GitHub event payload through a named pipe that is written once: a second read
/// would wait for a writer forever, so the run finishing proves the payload was read once.
/// `ci` goes through the plan, the build (nothing to build: `before` is the head) and the
/// publishers, each of which used to read the payload again.
#[test]
fn the_event_payload_is_read_once_per_run() {
    if !daemon_available("settings_payload_once") {
        return;
    }
    let repo = repo();
    let head = repo.sha("HEAD");
    let fifo = repo.home().join("event.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let payload = format!(r#"{{"before":"{head}","after":"{head}"}}"#);
    let writer_fifo = fifo.clone();
    let (done, writes) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Opening for writing waits for the reader: exactly one run's read.
        std::fs::write(&writer_fifo, payload).expect("write the payload");
        let _ = done.send(());
    });
    let fifo_path = fifo.to_str().expect("utf-8");
    let env = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_REF", "refs/heads/main"),
        ("GITHUB_SHA", head.as_str()),
        ("GITHUB_EVENT_PATH", fifo_path),
    ];
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_buildopt"));
    command
        .current_dir(repo.path())
        .args(["-q", "ci"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", repo.home())
        .envs(std::env::var_os("DOCKER_HOST").map(|host| ("DOCKER_HOST", host)))
        .envs(env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("spawn buildopt");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let status = status.expect("buildopt waited for a second read of the payload");
    assert!(status.success(), "{status}");
    writes
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("buildopt read the payload");
}
