//! Which Docker engine answers: tests/run.sh runs the suite once per engine (Docker 20.10, and
//! Docker 28 with the classic and with the containerd image store) and names the one it means in
//! `BUILDOPT_TEST_ENGINE`; this test fails when another daemon answers on `DOCKER_HOST`, so a pass
//! can never report results of the wrong engine. Unset means `docker20`, the system daemon.
//!
//! It asks the `docker` CLI first on PATH (`docker version`, `docker info`), which the other tests
//! use too. It prints one `engine: …` line; run it with `--nocapture` to see it.
//!
//! Some tests run `buildopt` with a cleared environment, so it talks to /var/run/docker.sock
//! whatever `DOCKER_HOST` says; tests/run.sh binds the engine's socket there for its pass. When
//! `DOCKER_HOST` names another socket, this test also checks that /var/run/docker.sock is the same
//! daemon (by its ID), so no pass mixes two engines unnoticed.

use std::process::Command;

use serde_json::Value;

/// What a test engine must be: a version prefix, and the storage driver (when it is fixed) and
/// image store it must use.
struct Expected {
    version_prefix: &'static str,
    driver: Option<&'static str>,
    store: &'static str,
}

fn expected(engine: &str) -> Expected {
    match engine {
        "docker20" => Expected {
            version_prefix: "20.10.",
            driver: None,
            store: "classic",
        },
        "docker28-overlay2" => Expected {
            version_prefix: "28.",
            driver: Some("overlay2"),
            store: "classic",
        },
        "docker28-containerd" => Expected {
            version_prefix: "28.",
            driver: None,
            store: "containerd",
        },
        other => panic!(
            "BUILDOPT_TEST_ENGINE={other}: unknown engine (docker20, docker28-overlay2, docker28-containerd)"
        ),
    }
}

/// The CLI's JSON for `docker ARGS --format '{{json SELECTOR}}'`, or its error text.
fn docker_json(args: &[&str], selector: &str) -> Result<Value, String> {
    let format = format!("{{{{json {selector}}}}}");
    let output = Command::new("docker")
        .args(args)
        .args(["--format", &format])
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("docker {args:?}: not JSON: {e}"))
}

const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// `containerd` when /info says the containerd snapshotter stores images, else `classic`.
fn image_store(info: &Value) -> &'static str {
    let snapshotter = info["DriverStatus"].as_array().is_some_and(|rows| {
        rows.iter().any(|row| {
            row[0].as_str() == Some("driver-type")
                && row[1].as_str() == Some("io.containerd.snapshotter.v1")
        })
    });
    if snapshotter { "containerd" } else { "classic" }
}

#[test]
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the line tells the reader of a test run which engine the results are from"
)]
fn the_daemon_is_the_engine_the_run_names() {
    let named = std::env::var("BUILDOPT_TEST_ENGINE").ok();
    let engine = named.as_deref().unwrap_or("docker20");
    let want = expected(engine);
    let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| DEFAULT_HOST.into());

    let server = match docker_json(&["version"], ".Server") {
        Ok(server) if !server.is_null() => server,
        // A run that names its engine, or CI, needs the daemon; a developer's plain `cargo test`
        // without one just learns why nothing was checked.
        other if named.is_none() => {
            let what = format!("Docker daemon at {host} ({other:?})");
            crate::skips::require(
                false,
                "engine_identity",
                &what,
                "tests/testbed/start-dockerd.sh",
            );
            return;
        }
        other => panic!("engine {engine}: no Docker daemon answers at {host}: {other:?}"),
    };
    let info = docker_json(&["info"], ".")
        .unwrap_or_else(|e| panic!("engine {engine}: docker info at {host}: {e}"));

    let version = server["Version"].as_str().unwrap_or("?");
    let api = server["ApiVersion"].as_str().unwrap_or("?");
    let driver = info["Driver"].as_str().unwrap_or("?");
    let store = image_store(&info);
    println!(
        "engine: {engine}: Docker {version}, API {api}, storage driver {driver}, image store {store} ({host})"
    );

    let mut wrong = Vec::new();
    if !version.starts_with(want.version_prefix) {
        wrong.push(format!("version {version} is not {}x", want.version_prefix));
    }
    if let Some(driver_wanted) = want.driver
        && driver != driver_wanted
    {
        wrong.push(format!("storage driver {driver} is not {driver_wanted}"));
    }
    if store != want.store {
        wrong.push(format!("image store {store} is not {}", want.store));
    }
    if host != DEFAULT_HOST {
        match docker_json(&["-H", DEFAULT_HOST, "info"], ".ID") {
            Ok(id) if id == info["ID"] => {}
            Ok(id) if named.is_some() => wrong.push(format!(
                "{DEFAULT_HOST} is another daemon (ID {id}), which clients that ignore DOCKER_HOST would test"
            )),
            Ok(id) => eprintln!(
                "note: {DEFAULT_HOST} is another daemon (ID {id}); tests that ignore DOCKER_HOST use it"
            ),
            Err(error) => eprintln!(
                "note: no daemon at {DEFAULT_HOST} ({error}); tests that ignore DOCKER_HOST find none"
            ),
        }
    }
    assert!(
        wrong.is_empty(),
        "engine {engine}: the daemon at {host} does not match: {}",
        wrong.join("; ")
    );
}
