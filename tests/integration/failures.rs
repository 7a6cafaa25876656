//! How `buildopt build` ends when the run is cut short, through the real binary and real daemons:
//! the daemon killed (SIGKILL) during a `RUN` step, and Ctrl-C (SIGINT) during a `RUN` step.
//!
//! The daemon-kill tests start a daemon of their own ([`IsolatedDaemon`]): its own data root, exec
//! root, pid file and unix socket under a temporary folder, inside its own network namespace
//! (`unshare --net`), so killing it disturbs neither the shared test daemon nor the host. Note
//! that `dockerd --bridge=none` must never run in the host's network namespace: at start-up it
//! deletes the host's `docker0`, which the shared daemon's containers need.
//!
//! Each `RUN` step is `sleep 120; echo <token>`: the shell stays alive with the token in its
//! command line, so the tests see in `/proc` when the step runs and whether it is still running
//! after the run ended. 120 s is far longer than any bound below, so a step that survives the
//! cancellation is caught, not hidden by its natural end.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::build::{Images, daemon_available, docker, prefix, result_of};
use crate::support::TestRepo;

/// How long the `RUN` step may take to start (context upload, base image lookup).
const STEP_START_BOUND: Duration = Duration::from_secs(60);
/// Hang guard: how long buildopt may take to exit after the kill or the signal.
const EXIT_BOUND: Duration = Duration::from_secs(60);
/// How long the daemon may take to stop a cancelled step.
const CLEANUP_BOUND: Duration = Duration::from_secs(20);

/// A repository with one image, `app`, whose only step sleeps with `token` in its command line.
fn sleeping_repo(repository: &str, token: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "buildopt.toml",
        &format!("[images.app]\ncontext = \"app\"\nimage = \"{repository}\"\n"),
    );
    repo.write(
        "app/Dockerfile",
        &format!("FROM buildopt-test/busybox:latest\nRUN sleep 120; echo {token}\n"),
    );
    repo.commit("a slow image");
    repo
}

/// Starts `buildopt --format json build ARGS` in `dir` with a clean environment plus `env`.
fn spawn_build(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_buildopt"));
    command
        .current_dir(dir)
        .args(["--format", "json", "build", "--no-cleanup"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("CI", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().expect("spawn buildopt")
}

/// Waits for the child in a thread; `None` (after killing it) when it outlives `bound`.
fn wait_bounded(child: Child, bound: Duration) -> Option<(Output, Duration)> {
    let pid = child.id();
    let started = Instant::now();
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(child.wait_with_output());
    });
    match receive.recv_timeout(bound) {
        Ok(output) => Some((output.expect("wait for buildopt"), started.elapsed())),
        Err(_) => {
            signal(pid, "KILL");
            None
        }
    }
}

/// [`wait_bounded`] with [`EXIT_BOUND`]; when buildopt outlives it, every process of the test's
/// step (`token` on its command line) is killed too, then the test fails saying `when`.
fn exit_or_clean_up(child: Child, token: &str, when: &str) -> (Output, Duration) {
    wait_bounded(child, EXIT_BOUND).unwrap_or_else(|| {
        for pid in processes_with(token) {
            signal(pid, "KILL");
        }
        panic!("buildopt still ran {EXIT_BOUND:?} {when}");
    })
}

/// Sends `signal` (a name such as `INT` or `KILL`) to one process.
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(needle))
        })
        .collect()
}

/// Polls until `condition` holds or `bound` passes; returns whether it held.
fn eventually(bound: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if started.elapsed() > bound {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the step with `token` runs; panics (with buildopt's output) when buildopt ends
/// first or the step never starts.
fn wait_for_step(child: &mut Child, token: &str) {
    let running = eventually(STEP_START_BOUND, || {
        !processes_with(token).is_empty() || child.try_wait().ok().flatten().is_some()
    });
    if let Ok(Some(status)) = child.try_wait() {
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
        }
        panic!("buildopt ended ({status}) before the RUN step ran: {stderr}");
    }
    assert!(
        running,
        "the RUN step did not start within {STEP_START_BOUND:?}"
    );
}

/// A Docker daemon of the test's own, in its own network namespace, killed and cleaned up on
/// drop. Every process it leaves is found by its folder (or the test's token) in the command
/// line and killed by pid; its mounts are detached before the folder is removed.
struct IsolatedDaemon {
    dir: tempfile::TempDir,
    /// Extra command line text whose processes the drop kills (the step's token).
    token: String,
}

impl IsolatedDaemon {
    /// Starts the daemon and loads the base image into it; `None` outside CI when this machine
    /// cannot run a second daemon (not root, no `unshare` or `dockerd`). Panics in CI.
    fn start(test: &str, token: &str) -> Option<Self> {
        // Short, under /tmp: unix socket paths under it must stay below 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("bo-dockerd-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let daemon = Self {
            dir,
            token: token.into(),
        };
        match daemon.launch() {
            Ok(()) => {
                daemon.load_base_image();
                Some(daemon)
            }
            Err(reason) => {
                let what = format!("second Docker daemon ({reason})");
                crate::skips::require(false, test, &what, "dockerd on PATH, run as root");
                None
            }
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `unix://…` for `DOCKER_HOST`.
    fn host(&self) -> String {
        format!("unix://{}", self.path("docker.sock").display())
    }

    fn launch(&self) -> Result<(), String> {
        let log = std::fs::File::create(self.path("dockerd.log")).map_err(|e| e.to_string())?;
        let mut command = Command::new("unshare");
        command
            .args(["--net", "dockerd"])
            .arg("--data-root")
            .arg(self.path("data"))
            .arg("--exec-root")
            .arg(self.path("exec"))
            .arg("--pidfile")
            .arg(self.path("dockerd.pid"))
            .args(["-H", &self.host(), "--iptables=false", "--ip6tables=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let mut child = command.spawn().map_err(|e| format!("unshare: {e}"))?;
        let answers = eventually(Duration::from_secs(60), || {
            self.docker(&["version", "--format", "{{.Server.Version}}"])
                .status
                .success()
                || child.try_wait().ok().flatten().is_some()
        });
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("dockerd exited ({status}): {}", self.log_tail()));
        }
        // Reaped by the drop's kill; the handle is not needed (the pid file names it).
        std::thread::spawn(move || child.wait());
        if answers {
            Ok(())
        } else {
            Err(format!("no answer within 60 s: {}", self.log_tail()))
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.path("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(["-H", &self.host()])
            .args(args)
            .output()
            .expect("docker")
    }

    /// Copies the base image from the shared daemon (nothing can be pulled).
    fn load_base_image(&self) {
        let script = format!(
            "docker save buildopt-test/busybox:latest | docker -H '{}' load",
            self.host()
        );
        let output = Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("sh");
        assert!(
            output.status.success(),
            "loading the base image into the second daemon failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.path("dockerd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// SIGKILL, as a crash or the OOM killer would.
    fn kill(&self) {
        let pid = self.pid().expect("the daemon's pid file");
        signal(pid, "KILL");
    }

    /// Mount points under the daemon's folder, deepest first.
    fn mounts(&self) -> Vec<String> {
        let root = self.dir.path().display().to_string();
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<String> = table
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|point| point.starts_with(&root))
            .map(str::to_string)
            .collect();
        mounts.sort_by_key(|point| std::cmp::Reverse(point.len()));
        mounts
    }
}

impl Drop for IsolatedDaemon {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            signal(pid, "KILL");
        }
        let folder = self.dir.path().display().to_string();
        for pid in processes_with(&folder)
            .into_iter()
            .chain(processes_with(&self.token))
        {
            signal(pid, "KILL");
        }
        for point in self.mounts() {
            let _ = Command::new("umount").args(["-l", &point]).status();
        }
    }
}

/// Kills the test's own daemon while `builder` runs the `RUN` step; buildopt must end with exit
/// code 4 and say the daemon went away: not hang, not succeed, not blame the image.
fn check_daemon_killed_mid_build(builder: &str, test: &str) {
    if !daemon_available(test) {
        return;
    }
    let token = format!("bo-{test}-{}-step", std::process::id());
    let Some(daemon) = IsolatedDaemon::start(test, &token) else {
        return;
    };
    let repo = sleeping_repo(&format!("{}/app", prefix(test)), &token);
    let mut child = spawn_build(
        repo.path(),
        &["--builder", builder],
        &[("DOCKER_HOST", &daemon.host())],
    );
    wait_for_step(&mut child, &token);
    daemon.kill();
    let Some((output, _)) = wait_bounded(child, EXIT_BOUND) else {
        panic!("buildopt still ran {EXIT_BOUND:?} after the daemon was killed");
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "stderr: {stderr}");
    assert!(
        stderr.contains("error: the docker daemon went away during the build"),
        "stderr: {stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "no report may claim a result: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn a_daemon_killed_mid_build_exits_4_buildkit() {
    check_daemon_killed_mid_build("buildkit", "kill-buildkit");
}

#[test]
fn a_daemon_killed_mid_build_exits_4_classic() {
    check_daemon_killed_mid_build("classic", "kill-classic");
}

/// Sends SIGINT while `builder` runs the `RUN` step; buildopt must exit 130 with the report
/// marked interrupted, and the daemon must have stopped the step: no process or container left.
fn check_ctrl_c(builder: &str, test: &str) {
    if !daemon_available(test) {
        return;
    }
    let prefix = prefix(test);
    let _images = Images(prefix.clone());
    let token = format!("{prefix}-step");
    let repo = sleeping_repo(&format!("{prefix}/app"), &token);
    let mut child = spawn_build(repo.path(), &["--builder", builder], &[]);
    wait_for_step(&mut child, &token);
    signal(child.id(), "INT");
    let (output, _) = exit_or_clean_up(child, &token, "after SIGINT");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "stderr: {stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("the JSON report");
    assert_eq!(report["run"]["interrupted"], true);
    assert_eq!(result_of(&report, "app"), "skipped");
    assert_eq!(report["images"][0]["skip_reason"], "cancelled");

    let step_gone = eventually(CLEANUP_BOUND, || processes_with(&token).is_empty());
    let leftover = processes_with(&token);
    for pid in &leftover {
        signal(*pid, "KILL");
    }
    assert!(
        step_gone,
        "the RUN step still ran {CLEANUP_BOUND:?} after buildopt exited: {leftover:?}"
    );
    // The classic builder removes its container shortly after the step's process ends.
    let containers = || docker(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
    let removed = eventually(CLEANUP_BOUND, || !containers().contains(&token));
    assert!(
        removed,
        "a build container was left behind: {}",
        containers()
    );
}

#[test]
fn ctrl_c_cancels_the_running_build_buildkit() {
    check_ctrl_c("buildkit", "int-buildkit");
}

#[test]
fn ctrl_c_cancels_the_running_build_classic() {
    check_ctrl_c("classic", "int-classic");
}

/// A `RUN` step that never ends while the daemon stays healthy: with `BUILDOPT_BUILD_TIMEOUT`
/// the image fails at the deadline, its dependent is skipped, an independent image still builds
/// (`--keep-going`), the run exits 1, and the daemon stops the step.
#[test]
fn a_build_past_its_deadline_fails_its_image_and_the_run_goes_on() {
    let test = "deadline";
    if !daemon_available(test) {
        return;
    }
    let prefix = prefix(test);
    let _images = Images(prefix.clone());
    let token = format!("{prefix}-step");
    let repo = sleeping_repo(&format!("{prefix}/app"), &token);
    repo.write(
        "buildopt.toml",
        &format!(
            "[images.app]\ncontext = \"app\"\nimage = \"{prefix}/app\"\n\
             [images.child]\ncontext = \"child\"\nimage = \"{prefix}/child\"\n\
             [images.other]\ncontext = \"other\"\nimage = \"{prefix}/other\"\n"
        ),
    );
    repo.write("child/Dockerfile", &format!("FROM {prefix}/app\n"));
    repo.write(
        "other/Dockerfile",
        "FROM buildopt-test/busybox:latest\nRUN echo other > /other\n",
    );
    repo.commit("a hung image, its child and another");
    let child = spawn_build(
        repo.path(),
        &["--keep-going", "--jobs", "2"],
        &[("BUILDOPT_BUILD_TIMEOUT", "5")],
    );
    let (output, took) = exit_or_clean_up(child, &token, "with a 5 s build deadline");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(took < Duration::from_secs(50), "took {took:?}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("the JSON report");
    assert_eq!(result_of(&report, "app"), "failed");
    assert_eq!(result_of(&report, "child"), "skipped");
    assert_eq!(result_of(&report, "other"), "built");
    let app = report["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["name"] == "app")
        .expect("app");
    let message = app["failure"]["message"].as_str().expect("message");
    assert!(message.starts_with("not done after 5 s"), "{message}");
    let step_gone = eventually(CLEANUP_BOUND, || processes_with(&token).is_empty());
    let leftover = processes_with(&token);
    for pid in &leftover {
        signal(*pid, "KILL");
    }
    assert!(
        step_gone,
        "the RUN step outlived the deadline: {leftover:?}"
    );
}
