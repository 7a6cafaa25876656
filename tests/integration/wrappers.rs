//! The CI wrappers (action.yml, the GitLab template and component, the Jenkins step, the
//! Dockerfile, dist/install.sh and the examples), checked with the validators of each platform:
//! actionlint (with shellcheck), check-jsonschema's GitHub and GitLab schemas, groovyc and groovy,
//! hadolint, and install.sh against a real HTTP server on 127.0.0.1. The wrappers' own shell
//! (the action's vulnerability-database steps, the GitLab job's script) runs under bash and sh
//! with a stand-in `buildopt` that records its calls.
//!
//! The validators come from `tests/testbed/install-peers.sh`. A missing one fails the test when
//! `CI` is set; elsewhere the test prints a note and returns.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{StaticServer, required_tool};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// YAML (one document) as JSON values, the form the checks below walk.
fn yaml(text: &str, what: &str) -> Value {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("{what} is not YAML: {e}"))
}

fn run(program: &Path, args: &[&str], dir: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_ok(output: &Output, what: &str) {
    assert!(output.status.success(), "{what} failed:\n{}", text(output));
}

/// Validates `file` against one of check-jsonschema's built-in schemas.
fn schema_check(checker: &Path, schema: &str, file: &Path) -> Output {
    run(
        checker,
        &["--builtin-schema", schema, &file.display().to_string()],
        &root(),
    )
}

// ---------------------------------------------------------------------------------------------
// GitHub Action

/// Inputs that configure the action's own steps rather than `buildopt ci`: the install, the
/// working folder, and the ecosystems `buildopt scan --setup` downloads (a flag of that command,
/// not a setting).
const ACTION_ONLY_INPUTS: [&str; 4] = [
    "version",
    "sha256",
    "working-directory",
    "vulndb-ecosystems",
];

/// The commit both cache actions are pinned to, for the build cache and the vulnerability
/// database alike.
const CACHE_ACTION_SHA: &str = "0057852bfaa89a56745cba8c7296529d2fc39830";

fn action() -> Value {
    yaml(&read("action.yml"), "action.yml")
}

fn steps(action: &Value) -> &Vec<Value> {
    action["runs"]["steps"].as_array().expect("runs.steps")
}

fn step<'a>(action: &'a Value, id: &str) -> &'a Value {
    steps(action)
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("action.yml has no step with id {id}"))
}

fn input_env_name(input: &str) -> String {
    format!("INPUT_{}", input.to_uppercase().replace('-', "_"))
}

#[test]
fn wrappers_action_passes_the_github_action_schema() {
    let Some(checker) = required_tool("check-jsonschema", "action schema") else {
        return;
    };
    let out = schema_check(
        &checker,
        "vendor.github-actions",
        &root().join("action.yml"),
    );
    assert_ok(&out, "check-jsonschema vendor.github-actions action.yml");
}

#[test]
fn wrappers_every_input_reaches_buildopt_and_every_setting_has_an_input() {
    let action = action();
    let inputs = action["inputs"].as_object().expect("inputs");
    let env = step(&action, "run")["env"]
        .as_object()
        .expect("the run step has env");
    assert_eq!(step(&action, "run")["run"], "buildopt ci");

    for (name, input) in inputs {
        assert!(
            input["description"].as_str().is_some_and(|d| !d.is_empty()),
            "input {name} has no description"
        );
        assert!(
            input.get("default").is_some(),
            "input {name} has no default"
        );
        if ACTION_ONLY_INPUTS.contains(&name.as_str()) {
            continue;
        }
        let var = input_env_name(name);
        assert_eq!(
            env.get(&var).and_then(Value::as_str),
            Some(format!("${{{{ inputs.{name} }}}}").as_str()),
            "input {name} must reach `buildopt ci` as {var}"
        );
    }
    // The settings `buildopt ci` reads from action inputs (the table in src/settings/vars.rs).
    let offered = buildopt::settings::SETTING_VARS
        .iter()
        .filter(|setting| setting.action_input.is_some());
    for setting in offered {
        let var = setting.input;
        assert!(env.contains_key(var), "the run step does not set {var}");
    }
    let from_inputs: BTreeSet<String> = inputs.keys().map(|k| input_env_name(k)).collect();
    for var in env.keys() {
        assert!(
            from_inputs.contains(var),
            "the run step sets {var}, which no input feeds"
        );
    }
    assert_eq!(inputs["github-token"]["default"], "${{ github.token }}");
    // The store lives outside the checkout unless the user names a folder (issue 13).
    assert_eq!(inputs["cache-dir"]["default"], "");
}

#[test]
fn wrappers_action_outputs_come_from_its_steps() {
    let action = action();
    let ids: BTreeSet<&str> = steps(&action)
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    let outputs = action["outputs"].as_object().expect("outputs");
    for name in [
        "plan",
        "matrix",
        "built",
        "reused",
        "failed",
        "digests",
        "tags",
        "report",
        "vulnerabilities",
        "vulnerabilities-critical",
        "vulnerabilities-high",
        "vulnerabilities-medium",
        "vulnerabilities-low",
        "vulnerabilities-unknown",
        "scan-sarif",
    ] {
        assert_eq!(
            outputs[name]["value"],
            format!("${{{{ steps.run.outputs.{name} }}}}"),
            "output {name}"
        );
    }
    let reference = regex::Regex::new(r"^\$\{\{ steps\.([a-z-]+)\.outputs\.[a-z-]+ \}\}$").unwrap();
    for (name, output) in outputs {
        let value = output["value"].as_str().unwrap_or_default();
        let caps = reference
            .captures(value)
            .unwrap_or_else(|| panic!("output {name} is not a step output: {value}"));
        assert!(ids.contains(&caps[1]), "output {name} names a missing step");
    }
}

#[test]
fn wrappers_action_scripts_take_inputs_from_env_and_pin_actions_by_sha() {
    let action = action();
    for step in steps(&action) {
        if let Some(script) = step["run"].as_str() {
            assert!(
                !script.contains("${{"),
                "step {:?} interpolates an expression into its script: {script}",
                step["name"]
            );
            assert_eq!(
                step["shell"], "bash",
                "step {:?} needs a shell",
                step["name"]
            );
        }
    }
    let pinned = regex::Regex::new(r"^\s*uses: [\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$").unwrap();
    let text = read("action.yml");
    let uses: Vec<&str> = text.lines().filter(|l| l.contains("uses:")).collect();
    assert_eq!(
        uses.len(),
        5,
        "restore and save of the build cache and of the vulnerability database, and the SBOM upload: {uses:?}"
    );
    for line in uses {
        assert!(
            pinned.is_match(line),
            "not pinned by SHA with a version: {line}"
        );
    }
    let install = step(&action, "install");
    assert_eq!(install["env"]["BUILDOPT_VERSION"], "${{ inputs.version }}");
    assert_eq!(install["env"]["BUILDOPT_SHA256"], "${{ inputs.sha256 }}");
    let save = steps(&action)
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/cache/save@"))
                && s["with"]["key"] == "${{ steps.keys.outputs.cache-key }}"
        })
        .expect("the build cache's save step");
    let condition = save["if"].as_str().expect("save is conditional");
    for part in [
        "steps.keys.outputs.enabled == 'true'",
        "steps.keys.outputs.cache-save == 'true'",
        "!cancelled()",
    ] {
        assert!(
            condition.contains(part),
            "save condition lacks {part}: {condition}"
        );
    }
}

/// A workflow that runs the action's steps as its own, with the action's inputs as
/// `workflow_call` inputs, so actionlint checks the expressions, the step references and (through
/// shellcheck) every script.
fn action_as_workflow(action: &Value) -> Value {
    let inputs: serde_json::Map<String, Value> = action["inputs"]
        .as_object()
        .expect("inputs")
        .keys()
        .map(|k| (k.clone(), json!({"type": "string", "required": false})))
        .collect();
    json!({
        "name": "action steps",
        "on": {"workflow_call": {"inputs": inputs}},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}}
    })
}

fn actionlint(actionlint: &Path, workflow: &Value) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let file = workflows.join("action.yml");
    std::fs::write(&file, serde_json::to_string_pretty(workflow).unwrap()).unwrap();
    run(
        actionlint,
        &["-no-color", &file.display().to_string()],
        dir.path(),
    )
}

#[test]
fn wrappers_action_scripts_pass_actionlint_and_shellcheck() {
    let test = "actionlint on action.yml";
    let (Some(linter), Some(_)) = (
        required_tool("actionlint", test),
        required_tool("shellcheck", test),
    ) else {
        return;
    };
    let action = action();
    let out = actionlint(&linter, &action_as_workflow(&action));
    assert_ok(&out, "actionlint on action.yml's steps");

    // The same check notices a broken step reference and a shell mistake.
    let mut broken = action.clone();
    let steps = broken["runs"]["steps"].as_array_mut().unwrap();
    steps[1]["run"] = json!("if [ $1 = x ]; then echo \"$nope\"; fi");
    steps[2]["with"]["key"] = json!("${{ steps.nope.outputs.cache-key }}");
    let out = actionlint(&linter, &action_as_workflow(&broken));
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(report.contains("shellcheck"), "{report}");
    assert!(report.contains("nope"), "{report}");
}

#[test]
fn wrappers_example_workflow_passes_the_schema_and_actionlint() {
    let test = "example workflow";
    let file = root().join("examples/ci/github-workflow.yml");
    if let Some(checker) = required_tool("check-jsonschema", test) {
        let out = schema_check(&checker, "vendor.github-workflows", &file);
        assert_ok(&out, "check-jsonschema vendor.github-workflows");
    }
    if let Some(linter) = required_tool("actionlint", test) {
        let out = run(
            &linter,
            &["-no-color", &file.display().to_string()],
            &root(),
        );
        assert_ok(&out, "actionlint examples/ci/github-workflow.yml");
    }
    let workflow = yaml(
        &read("examples/ci/github-workflow.yml"),
        "the example workflow",
    );
    assert_eq!(
        workflow["permissions"]["pull-requests"], "write",
        "the PR comment needs it"
    );
    assert_eq!(workflow["permissions"]["security-events"], "write");
    assert_eq!(workflow["permissions"]["contents"], "read");
    let uses_action = workflow["jobs"]["images"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("buildopt/buildopt@"))
        });
    assert!(uses_action, "the example uses the action");
}

/// A stand-in `buildopt` in a folder of its own: it appends one line per call to `calls.log`
/// (the database folder it was given, then each argument in brackets) and exits with
/// `$FAKE_SETUP_STATUS` for `buildopt scan`, 0 otherwise.
struct FakeBuildopt {
    dir: tempfile::TempDir,
}

impl FakeBuildopt {
    fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let script = "#!/bin/sh\n\
                      log=\"$(dirname \"$0\")/../calls.log\"\n\
                      printf 'dir=%s' \"${BUILDOPT_VULNDB_DIR-unset}\" >>\"$log\"\n\
                      for word in \"$@\"; do printf ' [%s]' \"$word\" >>\"$log\"; done\n\
                      echo >>\"$log\"\n\
                      if [ \"$1\" = scan ]; then exit \"${FAKE_SETUP_STATUS:-0}\"; fi\n";
        let program = bin.join("buildopt");
        std::fs::write(&program, script).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeBuildopt { dir }
    }

    /// PATH with the stand-in first.
    fn path_var(&self) -> String {
        let rest = std::env::var("PATH").unwrap_or_default();
        format!("{}:{rest}", self.dir.path().join("bin").display())
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// A runner for one action step's script, as GitHub runs a `shell: bash` step (`bash
/// --noprofile --norc -eo pipefail FILE`), with the runner's files and folders in a temporary
/// folder.
struct Runner {
    dir: tempfile::TempDir,
    fake: FakeBuildopt,
}

impl Runner {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["temp", "work"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        Runner {
            dir,
            fake: FakeBuildopt::new(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn run(&self, script: &str, env: &[(&str, &str)]) -> Output {
        let file = write_temp(self.dir.path(), "step.sh", script);
        Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&file)
            .current_dir(self.path("work"))
            .env_clear()
            .env("PATH", self.fake.path_var())
            .env("RUNNER_TEMP", self.path("temp"))
            .env("RUNNER_OS", "Linux")
            .env("GITHUB_OUTPUT", self.path("output"))
            .env("GITHUB_ENV", self.path("env"))
            .envs(env.iter().copied())
            .output()
            .expect("bash")
    }

    /// `name=value` lines the step wrote to GITHUB_OUTPUT or GITHUB_ENV.
    fn written(&self, file: &str) -> Vec<String> {
        std::fs::read_to_string(self.path(file))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn position(action: &Value, id: &str) -> usize {
    steps(action)
        .iter()
        .position(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

#[test]
fn wrappers_action_keeps_the_vulnerability_database_in_the_cache_under_a_daily_key() {
    let action = action();
    let order: Vec<usize> = ["install", "vulndb", "vulndb-restore", "vulndb-setup", "run"]
        .iter()
        .map(|id| position(&action, id))
        .collect();
    assert!(order.is_sorted(), "step order {order:?}");

    let restore = step(&action, "vulndb-restore");
    assert_eq!(
        restore["uses"],
        format!("actions/cache/restore@{CACHE_ACTION_SHA}")
    );
    assert_eq!(restore["with"]["path"], "${{ steps.vulndb.outputs.path }}");
    assert_eq!(restore["with"]["key"], "${{ steps.vulndb.outputs.key }}");
    assert_eq!(
        restore["with"]["restore-keys"],
        "${{ steps.vulndb.outputs.restore-keys }}"
    );
    let save_at = steps(&action)
        .iter()
        .position(|s| s["with"]["key"] == "${{ steps.vulndb.outputs.key }}" && s != restore)
        .expect("a step that saves the vulnerability database");
    let save = &steps(&action)[save_at];
    assert!(
        (order[3]..order[4]).contains(&save_at),
        "saved after the setup, before the build"
    );
    assert_eq!(
        save["uses"],
        format!("actions/cache/save@{CACHE_ACTION_SHA}")
    );
    assert_eq!(save["with"]["path"], "${{ steps.vulndb.outputs.path }}");
    let condition = save["if"].as_str().expect("save is conditional");
    for part in [
        "steps.vulndb.outputs.enabled == 'true'",
        "steps.vulndb-setup.outcome == 'success'",
        // A level that does not scan downloads nothing: nothing to save.
        "steps.vulndb-setup.outputs.scans == 'true'",
        "steps.vulndb-restore.outputs.cache-hit != 'true'",
        "github.event_name != 'pull_request_target'",
        "github.event_name != 'workflow_run'",
    ] {
        assert!(
            condition.contains(part),
            "save condition lacks {part}: {condition}"
        );
    }
    // Nothing of it runs when the scan is off.
    for id in ["vulndb-restore", "vulndb-setup"] {
        assert!(
            step(&action, id)["if"]
                .as_str()
                .is_some_and(|c| c.contains("steps.vulndb.outputs.enabled == 'true'")),
            "{id} runs only with the scan on"
        );
    }
    let setup = step(&action, "vulndb-setup");
    assert_eq!(
        setup["continue-on-error"], true,
        "a failed download leaves the gate to `buildopt ci` (exit 4)"
    );
    assert_eq!(setup["env"]["INPUT_VULNDB_URL"], "${{ inputs.vulndb-url }}");
    // `--for-ci` decides from the same level and scan inputs as the run.
    for (input, name) in [("INPUT_LEVEL", "level"), ("INPUT_SCAN", "scan")] {
        assert_eq!(setup["env"][input], format!("${{{{ inputs.{name} }}}}"));
        assert_eq!(setup["env"][input], step(&action, "run")["env"][input]);
    }
    assert_eq!(
        setup["env"]["INPUT_VULNDB_ECOSYSTEMS"],
        "${{ inputs.vulndb-ecosystems }}"
    );
    assert_eq!(
        step(&action, "vulndb")["env"]["INPUT_SCAN"],
        "${{ inputs.scan }}"
    );

    // The key step, run: today's key (UTC) with yesterday's and older as fallbacks, and the
    // folder exported to the later steps.
    let script = step(&action, "vulndb")["run"].as_str().expect("a script");
    let runner = Runner::new();
    let before = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let out = runner.run(script, &[("INPUT_SCAN", "")]);
    let after = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_ok(&out, "the vulndb step");
    let folder = runner.path("temp/buildopt-vulndb");
    let written = runner.written("output");
    assert_eq!(written[0], "enabled=true");
    assert_eq!(written[1], format!("path={}", folder.display()));
    assert!(
        [before, after].contains(&written[2].replace("key=buildopt-vulndb-Linux-", "")),
        "{written:?}"
    );
    assert_eq!(written[3], "restore-keys=buildopt-vulndb-Linux-");
    assert_eq!(
        runner.written("env"),
        vec![format!("BUILDOPT_VULNDB_DIR={}", folder.display())]
    );

    // A folder the workflow names is kept (made absolute); a false-like scan input skips all.
    let named = Runner::new();
    let out = named.run(
        script,
        &[("BUILDOPT_VULNDB_DIR", "db"), ("INPUT_SCAN", "true")],
    );
    assert_ok(&out, "the vulndb step with BUILDOPT_VULNDB_DIR");
    let work = named.path("work").canonicalize().unwrap();
    assert_eq!(
        named.written("env"),
        vec![format!("BUILDOPT_VULNDB_DIR={}/db", work.display())]
    );
    for off in ["false", "OFF", " no ", "0"] {
        let runner = Runner::new();
        let out = runner.run(script, &[("INPUT_SCAN", off)]);
        assert_ok(&out, "the vulndb step with the scan off");
        assert_eq!(runner.written("output"), vec!["enabled=false"], "{off:?}");
        assert!(runner.written("env").is_empty(), "{off:?}");
    }
}

#[test]
fn wrappers_action_setup_step_passes_each_ecosystem_and_reports_a_failed_download() {
    let action = action();
    let script = step(&action, "vulndb-setup")["run"]
        .as_str()
        .expect("a script");
    let runner = Runner::new();
    let ecosystems = "Debian\n  Rocky Linux \n\ncrates.io,PyPI\n";
    let out = runner.run(
        script,
        &[
            ("INPUT_VULNDB_ECOSYSTEMS", ecosystems),
            ("BUILDOPT_VULNDB_DIR", "/db"),
        ],
    );
    assert_ok(&out, "the setup step");
    assert_eq!(
        runner.fake.calls(),
        vec![
            "dir=/db [scan] [--setup] [--for-ci] [--ecosystem] [Debian] [--ecosystem] [Rocky Linux] \
             [--ecosystem] [crates.io] [--ecosystem] [PyPI]"
        ]
    );

    let everything = Runner::new();
    assert_ok(
        &everything.run(script, &[("INPUT_VULNDB_ECOSYSTEMS", "")]),
        "the setup step without ecosystems",
    );
    assert_eq!(
        everything.fake.calls(),
        vec!["dir=unset [scan] [--setup] [--for-ci]"]
    );

    let failing = Runner::new();
    let out = failing.run(script, &[("FAKE_SETUP_STATUS", "7")]);
    assert_fails(&out, "the setup step after a failed download");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("::warning::") && stdout.contains("exit 4"),
        "{}",
        text(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// GitLab

/// The component's `spec:` header and its job, the two YAML documents of the file.
fn component() -> (String, String) {
    let text = read("templates/buildopt.yml");
    let (header, job) = text
        .split_once("\n---\n")
        .expect("templates/buildopt.yml: a spec header, `---`, then the job");
    (header.to_string(), job.to_string())
}

/// The component's job with every `$[[ inputs.NAME ]]` replaced by the input's default.
fn render_component(header: &Value, job: &str) -> String {
    let inputs = header["spec"]["inputs"].as_object().expect("spec.inputs");
    let pattern = regex::Regex::new(r"\$\[\[\s*inputs\.([\w-]+)\s*\]\]").unwrap();
    pattern
        .replace_all(job, |caps: &regex::Captures| {
            let input = &inputs
                .get(&caps[1])
                .unwrap_or_else(|| panic!("the job uses undeclared input {}", &caps[1]))["default"];
            match input {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }
        })
        .into_owned()
}

fn write_temp(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// Writes `content` to `dir/name` and validates it with the GitLab CI schema.
fn gitlab_check(checker: &Path, dir: &Path, name: &str, content: &str) -> Output {
    schema_check(checker, "vendor.gitlab-ci", &write_temp(dir, name, content))
}

fn assert_fails(out: &Output, what: &str) {
    assert!(!out.status.success(), "{what} passed:\n{}", text(out));
}

#[test]
fn wrappers_gitlab_template_and_example_pass_the_gitlab_schema() {
    let Some(checker) = required_tool("check-jsonschema", "gitlab schema") else {
        return;
    };
    for file in ["gitlab/buildopt.gitlab-ci.yml", "examples/ci/gitlab-ci.yml"] {
        let out = schema_check(&checker, "vendor.gitlab-ci", &root().join(file));
        assert_ok(&out, &format!("check-jsonschema vendor.gitlab-ci {file}"));
    }
    // The schema lets hidden jobs hold anything, so the hidden `.buildopt` is checked again as a
    // visible job; the schema is strict enough to notice a misspelt key there.
    let dir = tempfile::tempdir().unwrap();
    let visible =
        read("gitlab/buildopt.gitlab-ci.yml").replace("\n.buildopt:\n", "\nbuildopt-hidden:\n");
    assert!(
        visible.contains("\nbuildopt-hidden:\n"),
        "the template has a `.buildopt` job"
    );
    let out = gitlab_check(&checker, dir.path(), "visible.yml", &visible);
    assert_ok(
        &out,
        "check-jsonschema on the template's .buildopt job made visible",
    );
    let broken = visible.replace("  artifacts:", "  artefacts:");
    let out = gitlab_check(&checker, dir.path(), "broken.yml", &broken);
    assert_fails(&out, "a misspelt key");
}

#[test]
fn wrappers_gitlab_component_header_and_job_pass_the_gitlab_schema() {
    let Some(checker) = required_tool("check-jsonschema", "gitlab component schema") else {
        return;
    };
    let (header, job) = component();
    let dir = tempfile::tempdir().unwrap();
    // The CI schema describes the header document (`spec: inputs:`) too; each document is
    // checked alone because check-jsonschema reads one document per file.
    let rendered = render_component(&yaml(&header, "the component header"), &job);
    for (name, content) in [
        ("header.yml", header.as_str()),
        ("job.yml", job.as_str()),
        ("rendered.yml", rendered.as_str()),
    ] {
        let out = gitlab_check(&checker, dir.path(), name, content);
        assert_ok(
            &out,
            &format!("check-jsonschema vendor.gitlab-ci on the component's {name}"),
        );
    }
    let bad_header = header.replace("type: boolean", "type: yes-or-no");
    let out = gitlab_check(&checker, dir.path(), "bad-header.yml", &bad_header);
    assert_fails(&out, "a bad input type");
}

#[test]
fn wrappers_gitlab_component_uses_every_input_and_matches_the_template() {
    let (header, job) = component();
    let header = yaml(&header, "the component header");
    let declared: BTreeSet<&str> = header["spec"]["inputs"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let pattern = regex::Regex::new(r"\$\[\[\s*inputs\.([\w-]+)\s*\]\]").unwrap();
    let used: BTreeSet<&str> = pattern
        .captures_iter(&job)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    assert_eq!(
        declared, used,
        "declared inputs and the inputs the job uses"
    );

    let component = yaml(&render_component(&header, &job), "the rendered component");
    let component = &component["buildopt"];
    let template = yaml(&read("gitlab/buildopt.gitlab-ci.yml"), "the template");
    let template = &template[".buildopt"];
    for key in ["artifacts", "rules", "script", "services", "image"] {
        assert_eq!(component[key], template[key], "{key} differs");
    }
    assert_eq!(component["cache"][0]["key"], template["cache"][0]["key"]);
    assert_eq!(
        component["cache"][1], template["cache"][1],
        "the vulnerability database's cache"
    );
    assert_eq!(
        template["artifacts"]["reports"],
        json!({
            "junit": ["buildopt-junit.xml", "buildopt-scan-junit.xml"],
            "dotenv": "buildopt.env",
            "container_scanning": "gl-container-scanning-report.json"
        })
    );
    assert_eq!(template["artifacts"]["when"], "always");
    // GitLab's cache carries the exported archive (the store is outside the checkout and is
    // filled by `cache import`, which checks every blob: issue 13) and the scan cache.
    assert_eq!(
        template["cache"][0]["paths"],
        json!(["$BUILDOPT_CACHE_ARCHIVE", ".buildopt-scan"])
    );
    assert_eq!(
        template["variables"]["BUILDOPT_CACHE_DIR"],
        "/tmp/buildopt-cache"
    );
    assert_eq!(component["after_script"], template["after_script"]);
    let restore = template["script"][0].as_str().expect("the restore line");
    assert!(
        restore.contains("buildopt cache import --no-load"),
        "{restore}"
    );
    assert_eq!(
        yaml(&read("gitlab/buildopt.gitlab-ci.yml"), "the template")["buildopt"]["extends"],
        ".buildopt"
    );
}

/// Runs the GitLab job's `script` lines as the runner does (one shell, stopping at the first
/// failing line) with the stand-in buildopt, in a project folder `project`.
fn run_gitlab_script(job: &Value, fake: &FakeBuildopt, env: &[(&str, &str)]) -> Output {
    let lines: Vec<&str> = job["script"]
        .as_array()
        .expect("script lines")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let project = fake.dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    Command::new("sh")
        .args(["-e", "-c", &lines.join("\n")])
        .current_dir(&project)
        .env_clear()
        .env("PATH", fake.path_var())
        .env("CI_PROJECT_DIR", &project)
        .env("BUILDOPT_CACHE_ARCHIVE", ".buildopt-cache.tar.zst")
        .envs(env.iter().copied())
        .output()
        .expect("sh")
}

#[test]
fn wrappers_gitlab_job_sets_up_the_vulnerability_database_and_attaches_the_scan_reports() {
    let template = yaml(&read("gitlab/buildopt.gitlab-ci.yml"), "the template");
    let job = &template[".buildopt"];
    assert_eq!(
        job["cache"][1],
        json!({"key": "buildopt-vulndb", "paths": [".buildopt-vulndb"], "when": "always"})
    );
    // The scan cache travels in the project folder with the per-branch cache (the store's
    // archive), where buildopt keeps it out of build contexts.
    let branch_paths = job["cache"][0]["paths"].as_array().expect("paths");
    assert!(
        branch_paths.contains(&json!(".buildopt-scan")),
        "{branch_paths:?}"
    );
    let script: Vec<&str> = job["script"]
        .as_array()
        .expect("script")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        script.contains(
            &"export BUILDOPT_SCAN_CACHE_DIR=\"${BUILDOPT_SCAN_CACHE_DIR:-$CI_PROJECT_DIR/.buildopt-scan}\""
        ),
        "{script:?}"
    );
    let paths = job["artifacts"]["paths"]
        .as_array()
        .expect("artifact paths");
    for file in ["buildopt-scan.sarif", "buildopt-sbom.cdx.json"] {
        assert!(
            paths.contains(&json!(file)),
            "{file} is not kept: {paths:?}"
        );
    }
    let script = job["script"].as_array().expect("script lines");
    assert!(
        script.contains(&json!("buildopt scan --setup --for-ci || true")),
        "{script:?}"
    );

    // The setup fails (a network error): the job goes on to `buildopt ci`, both with the
    // database in the cached project folder.
    let fake = FakeBuildopt::new();
    let out = run_gitlab_script(job, &fake, &[("FAKE_SETUP_STATUS", "1")]);
    assert_ok(&out, "the job's script after a failed setup");
    let project = fake.dir.path().join("project");
    let cached = project.join(".buildopt-vulndb");
    assert_eq!(
        fake.calls(),
        vec![
            format!("dir={} [scan] [--setup] [--for-ci]", cached.display()),
            format!("dir={} [ci]", cached.display()),
        ]
    );

    // A folder the project names itself is used by both.
    let named = FakeBuildopt::new();
    let out = run_gitlab_script(job, &named, &[("BUILDOPT_VULNDB_DIR", "/srv/vulndb")]);
    assert_ok(&out, "the job's script with BUILDOPT_VULNDB_DIR");
    assert_eq!(
        named.calls(),
        vec![
            "dir=/srv/vulndb [scan] [--setup] [--for-ci]",
            "dir=/srv/vulndb [ci]"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Jenkins

fn groovy_tools(test: &str) -> Option<(PathBuf, PathBuf)> {
    Some((
        required_tool("groovyc", test)?,
        required_tool("groovy", test)?,
    ))
}

/// Runs the step under the recording harness with `args` and the exit status `buildopt ci`
/// returns, on an agent where the setup succeeds, no SARIF was written and Warnings NG is
/// installed.
fn jenkins_step(groovy: &Path, args: &Value, status: i32) -> Value {
    jenkins_step_on(groovy, args, status, &json!({}))
}

/// As `jenkins_step`, on the agent `agent` describes (see tests/fixtures/jenkins/harness.groovy:
/// `setupStatus`, `files`, `warningsNg`).
fn jenkins_step_on(groovy: &Path, args: &Value, status: i32, agent: &Value) -> Value {
    let out = run(
        groovy,
        &[
            &root()
                .join("tests/fixtures/jenkins/harness.groovy")
                .display()
                .to_string(),
            &root()
                .join("jenkins/vars/buildopt.groovy")
                .display()
                .to_string(),
            &args.to_string(),
            &status.to_string(),
            &agent.to_string(),
        ],
        &root(),
    );
    assert_ok(&out, "the Jenkins harness");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("harness output {line}: {e}"))
}

#[test]
fn wrappers_jenkins_step_compiles_and_maps_exit_codes() {
    let Some((groovyc, groovy)) = groovy_tools("jenkins step") else {
        return;
    };
    let classes = tempfile::tempdir().unwrap();
    let out = run(
        &groovyc,
        &[
            "-d",
            &classes.path().display().to_string(),
            &root()
                .join("jenkins/vars/buildopt.groovy")
                .display()
                .to_string(),
        ],
        &root(),
    );
    assert_ok(&out, "groovyc jenkins/vars/buildopt.groovy");

    let args = json!({
        "level": "ci", "tags": ["{short_sha}", "it's"], "push": true, "keepGoing": true,
        "credentialsId": "registry", "slackWebhookCredentialsId": "slack", "slackOn": "failure",
        "dir": "services"
    });
    let ok = jenkins_step(&groovy, &args, 0);
    let calls = &ok["calls"];
    assert_eq!(
        calls["sh"][0]["script"],
        "'buildopt' 'scan' '--setup' '--for-ci'"
    );
    assert_eq!(
        calls["sh"][1]["script"],
        "'buildopt' 'ci' '--tag' '{short_sha}' '--tag' 'it'\"'\"'s' '--push' '--keep-going'"
    );
    assert_eq!(calls["sh"][1]["returnStatus"], true);
    assert_eq!(calls["dir"], json!(["services"]));
    // The level is in the environment both commands share: the setup reads it to know whether
    // `ci` scans.
    assert_eq!(
        calls["env"],
        json!([["BUILDOPT_LEVEL=ci", "BUILDOPT_SLACK_ON=failure"]])
    );
    assert_eq!(
        calls["credentials"][0],
        json!([
            {"kind": "usernamePassword", "credentialsId": "registry",
             "usernameVariable": "BUILDOPT_REGISTRY_USER", "passwordVariable": "BUILDOPT_REGISTRY_PASSWORD"},
            {"kind": "string", "credentialsId": "slack", "variable": "BUILDOPT_SLACK_WEBHOOK"}
        ])
    );
    assert_eq!(
        calls["junit"],
        json!([{"allowEmptyResults": true,
                "testResults": "buildopt-junit.xml,buildopt-scan-junit.xml"}])
    );
    assert_eq!(
        calls["archive"][0]["artifacts"],
        "buildopt-report.json,buildopt-report.html,buildopt-scan.sarif,buildopt-sbom.cdx.json"
    );
    assert_eq!(ok["returned"], 0);
    assert_eq!(ok["thrown"], Value::Null);
    assert_eq!(ok["result"], Value::Null);

    // A failed build still records the reports, then fails the pipeline.
    let failed = jenkins_step(&groovy, &json!({}), 1);
    assert_eq!(failed["calls"]["junit"].as_array().unwrap().len(), 1);
    assert_eq!(failed["calls"]["archive"].as_array().unwrap().len(), 1);
    assert!(
        failed["thrown"].as_str().unwrap().contains("exit 1"),
        "{failed}"
    );

    let gate = jenkins_step(&groovy, &json!({}), 3);
    assert_eq!(gate["thrown"], Value::Null);
    assert!(
        gate["calls"]["unstable"][0]
            .as_str()
            .unwrap()
            .contains("policy gate")
    );
    let gate = jenkins_step(&groovy, &json!({"policyResult": "FAILURE"}), 3);
    assert!(
        gate["thrown"].as_str().unwrap().contains("exit 3"),
        "{gate}"
    );

    for (status, words) in [(2, "configuration"), (4, "environment")] {
        let result = jenkins_step(&groovy, &json!({}), status);
        assert!(
            result["thrown"].as_str().unwrap().contains(words),
            "{result}"
        );
    }
    let kept = jenkins_step(&groovy, &json!({"propagate": false}), 1);
    assert_eq!(kept["thrown"], Value::Null);
    assert_eq!(kept["result"], "FAILURE");
    assert_eq!(kept["returned"], 1);

    let unknown = jenkins_step(&groovy, &json!({"lvl": "ci"}), 0);
    assert!(
        unknown["thrown"].as_str().unwrap().contains("lvl"),
        "{unknown}"
    );
    assert!(unknown["calls"]["sh"].as_array().unwrap().is_empty());
}

#[test]
fn wrappers_jenkins_step_sets_up_the_database_and_records_the_sarif() {
    let Some((_, groovy)) = groovy_tools("jenkins vulnerability scan") else {
        return;
    };
    let sarif_written = json!({"files": ["buildopt-scan.sarif"]});
    let args = json!({
        "vulndbDir": "/var/lib/buildopt/vulndb",
        "vulndbEcosystems": ["Debian", "Rocky Linux"],
        "credentialsId": "registry"
    });
    let ran = jenkins_step_on(&groovy, &args, 0, &sarif_written);
    let calls = &ran["calls"];
    // The setup runs first, in the same environment, without the credentials; then `ci` with them.
    assert_eq!(
        calls["order"],
        json!(["buildopt scan --setup", "withCredentials", "buildopt ci"])
    );
    assert_eq!(
        calls["sh"][0],
        json!({
            "script": "'buildopt' 'scan' '--setup' '--for-ci' '--ecosystem' 'Debian' '--ecosystem' 'Rocky Linux'",
            "returnStatus": true,
            "label": "buildopt scan --setup"
        })
    );
    assert_eq!(
        calls["env"],
        json!([["BUILDOPT_VULNDB_DIR=/var/lib/buildopt/vulndb"]])
    );
    assert_eq!(
        calls["recordIssues"],
        json!([{
            "enabledForFailure": true,
            "tool": {"kind": "sarif", "pattern": "buildopt-scan.sarif", "id": "buildopt",
                     "name": "buildopt scan"}
        }])
    );
    assert_eq!(calls["echo"], json!([]));
    assert_eq!(ran["returned"], 0);

    // No SARIF (the run did not scan): nothing to record.
    let unscanned = jenkins_step(&groovy, &json!({}), 0);
    assert_eq!(unscanned["calls"]["recordIssues"], json!([]));
    assert_eq!(unscanned["calls"]["echo"], json!([]));

    // Without Warnings NG the step says so in one line and goes on.
    let no_plugin = json!({"files": ["buildopt-scan.sarif"], "warningsNg": false});
    let plain = jenkins_step_on(&groovy, &json!({}), 0, &no_plugin);
    assert_eq!(plain["thrown"], Value::Null, "{plain}");
    assert_eq!(plain["returned"], 0);
    let echoed = plain["calls"]["echo"].as_array().unwrap();
    assert_eq!(echoed.len(), 1, "{echoed:?}");
    assert!(
        echoed[0].as_str().unwrap().contains("Warnings NG"),
        "{echoed:?}"
    );
    assert_eq!(plain["calls"]["archive"].as_array().unwrap().len(), 1);

    // A failed setup is echoed and `ci` still runs; its exit 4 (a gate with no database)
    // fails the build.
    let failed_setup = json!({"setupStatus": 1});
    let gated = jenkins_step_on(&groovy, &json!({}), 4, &failed_setup);
    let echoed = gated["calls"]["echo"].as_array().unwrap();
    assert!(
        echoed[0]
            .as_str()
            .unwrap()
            .contains("vulnerability database could not be set up (exit 1)"),
        "{gated}"
    );
    assert_eq!(gated["calls"]["sh"].as_array().unwrap().len(), 2);
    assert!(
        gated["thrown"]
            .as_str()
            .unwrap()
            .contains("no vulnerability database"),
        "{gated}"
    );

    // vulndbSetup: false runs `ci` alone.
    let skipped = jenkins_step(&groovy, &json!({"vulndbSetup": false}), 0);
    assert_eq!(
        skipped["calls"]["order"],
        json!(["withCredentials", "buildopt ci"])
    );
}

#[test]
fn wrappers_jenkinsfile_example_parses() {
    let Some((_, groovy)) = groovy_tools("Jenkinsfile example") else {
        return;
    };
    // Parses and converts the script (syntax), without resolving the pipeline DSL's names.
    let check = "def unit = new org.codehaus.groovy.control.CompilationUnit(); \
                 unit.addSource(new File(args[0])); \
                 unit.compile(org.codehaus.groovy.control.Phases.CONVERSION)";
    let file = root().join("examples/ci/Jenkinsfile");
    let out = run(
        &groovy,
        &["-e", check, &file.display().to_string()],
        &root(),
    );
    assert_ok(&out, "parsing examples/ci/Jenkinsfile");
    let dir = tempfile::tempdir().unwrap();
    let broken = write_temp(
        dir.path(),
        "Jenkinsfile",
        &read("examples/ci/Jenkinsfile")
            .replace("policyResult: 'UNSTABLE'", "policyResult: 'UNSTABLE',,"),
    );
    let out = run(
        &groovy,
        &["-e", check, &broken.display().to_string()],
        &root(),
    );
    assert_fails(&out, "a syntax error");
}

// ---------------------------------------------------------------------------------------------
// Container image

#[test]
fn wrappers_dockerfile_passes_hadolint_and_its_context_holds_what_it_copies() {
    let dockerfile = read("dist/Dockerfile");
    let ignore = read("dist/Dockerfile.dockerignore");
    let reincluded: Vec<&str> = ignore
        .lines()
        .filter_map(|l| l.strip_prefix('!'))
        .map(|l| l.trim_end_matches('/'))
        .collect();
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        for source in &words[1..words.len() - 1] {
            let source = source.trim_end_matches('/');
            assert!(
                reincluded.contains(&source),
                "dist/Dockerfile copies {source}, which dist/Dockerfile.dockerignore leaves out"
            );
            assert!(root().join(source).exists(), "{source} does not exist");
        }
    }
    for needed in ["--locked", "ENTRYPOINT [\"buildopt\"]", "USER 10001"] {
        assert!(
            dockerfile.contains(needed),
            "dist/Dockerfile lacks {needed}"
        );
    }
    let Some(hadolint) = required_tool("hadolint", "hadolint") else {
        return;
    };
    let out = run(&hadolint, &["--no-color", "dist/Dockerfile"], &root());
    assert_ok(&out, "hadolint dist/Dockerfile");
}

// ---------------------------------------------------------------------------------------------
// dist/install.sh

const VERSION: &str = "0.1.0";
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// A release folder `v<VERSION>/` holding a tar.gz whose `buildopt` is a shell script; returns
/// the archive's SHA-256.
fn publish_release(dir: &Path) -> String {
    use sha2::Digest;
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let script = b"#!/bin/sh\necho \"fake buildopt $*\"\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(script.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    tar.append_data(&mut header, "buildopt", &script[..])
        .unwrap();
    let bytes = tar.into_inner().unwrap().finish().unwrap();
    let release = dir.join(format!("v{VERSION}"));
    std::fs::create_dir_all(&release).unwrap();
    std::fs::File::create(release.join(format!("buildopt-{VERSION}-{TARGET}.tar.gz")))
        .unwrap()
        .write_all(&bytes)
        .unwrap();
    let digest = sha2::Sha256::digest(&bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A machine for install.sh: a tool cache, a GITHUB_PATH file, a checksums file.
struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tools")).unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::write(dir.path().join("checksums.txt"), "# none\n").unwrap();
        Machine { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn pin(&self, sha: &str) {
        let line = format!("# comment\n{sha}  buildopt-{VERSION}-{TARGET}.tar.gz\n");
        std::fs::write(self.path("checksums.txt"), line).unwrap();
    }

    fn install(&self, base: &str, env: &[(&str, &str)]) -> Output {
        let mut command = Command::new("sh");
        command
            .arg(root().join("dist/install.sh"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("BUILDOPT_VERSION", VERSION)
            .env("BUILDOPT_TARGET", TARGET)
            .env("BUILDOPT_DOWNLOAD_BASE", base)
            .env("BUILDOPT_CHECKSUMS", self.path("checksums.txt"))
            .env("RUNNER_TOOL_CACHE", self.path("tools"))
            .env("GITHUB_PATH", self.path("github_path"));
        command.envs(env.iter().copied());
        command.output().expect("sh dist/install.sh")
    }

    fn dest(&self) -> PathBuf {
        self.path(&format!("tools/buildopt/{VERSION}/{TARGET}"))
    }

    /// Everything under the tool cache's buildopt folder, relative to it.
    fn installed(&self) -> Vec<String> {
        let top = self.path("tools/buildopt");
        let mut found = Vec::new();
        let mut stack = vec![top.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                found.push(path.strip_prefix(&top).unwrap().display().to_string());
                if path.is_dir() {
                    stack.push(path);
                }
            }
        }
        found.sort();
        found
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// install.sh failed, saying `why` on stderr.
fn assert_refused(out: &Output, why: &str) {
    assert_fails(out, "install.sh");
    assert!(stderr(out).contains(why), "no {why:?} in:\n{}", text(out));
}

/// A release published in a temporary folder and served on 127.0.0.1.
struct Release {
    /// The archive's SHA-256.
    sha: String,
    server: StaticServer,
    /// Declared after the server, so the server stops before its folder goes.
    _dir: tempfile::TempDir,
}

impl Release {
    /// `None` when python3 (the HTTP server) is missing outside CI.
    fn serve(test: &str) -> Option<Self> {
        required_tool("python3", test)?;
        let dir = tempfile::tempdir().unwrap();
        let sha = publish_release(dir.path());
        let server = StaticServer::start(dir.path());
        Some(Release {
            sha,
            server,
            _dir: dir,
        })
    }
}

#[test]
fn wrappers_install_sh_installs_a_verified_release_and_reuses_it() {
    let Some(Release { sha, server, _dir }) = Release::serve("install.sh") else {
        return;
    };
    let machine = Machine::new();
    machine.pin(&sha);

    let out = machine.install(&server.base, &[]);
    assert_ok(&out, "install.sh with a pinned checksum");
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(PathBuf::from(&printed), machine.dest());
    let github_path = std::fs::read_to_string(machine.path("github_path")).unwrap();
    assert_eq!(github_path.trim(), printed);
    let ran = Command::new(machine.dest().join("buildopt"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "fake buildopt --version\n"
    );
    assert_eq!(
        machine.installed(),
        vec![
            VERSION.to_string(),
            format!("{VERSION}/{TARGET}"),
            format!("{VERSION}/{TARGET}/.archive.tar.gz"),
            format!("{VERSION}/{TARGET}/.sha256"),
            format!("{VERSION}/{TARGET}/buildopt"),
        ]
    );

    // Again, with the server gone: the verified install is reused without a download.
    drop(server);
    let again = machine.install("http://127.0.0.1:9", &[]);
    assert_ok(&again, "install.sh over a verified install");
    assert!(stderr(&again).contains("reusing"), "{}", text(&again));
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), printed);

    // BUILDOPT_SHA256 works without a pinned line; a different checksum is not "the same install".
    let Some(Release { sha, server, _dir }) = Release::serve("install.sh") else {
        return;
    };
    let fresh = Machine::new();
    let out = fresh.install(&server.base, &[("BUILDOPT_SHA256", &sha.to_uppercase())]);
    assert_ok(&out, "install.sh with BUILDOPT_SHA256");
    assert!(fresh.dest().join("buildopt").is_file());
}

#[test]
fn wrappers_install_sh_does_not_trust_a_tampered_install_in_the_tool_cache() {
    let Some(Release { sha, server, _dir }) = Release::serve("install.sh") else {
        return;
    };
    let machine = Machine::new();
    machine.pin(&sha);
    assert_ok(&machine.install(&server.base, &[]), "first install");
    drop(server);
    let binary = machine.dest().join("buildopt");
    let run = || {
        let out = Command::new(&binary).arg("x").output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let evil = "#!/bin/sh\necho evil\n";

    // Another job swapped the binary and left the marker: the kept archive restores it, offline.
    std::fs::write(&binary, evil).unwrap();
    let out = machine.install("http://127.0.0.1:9", &[]);
    assert_ok(&out, "install.sh over a tampered binary");
    assert!(!stderr(&out).contains("reusing"), "{}", text(&out));
    assert_eq!(run(), "fake buildopt x\n", "{}", text(&out));

    // Binary and archive both swapped (the marker still names the pinned checksum): nothing
    // in the cache is trusted, and without the release server the install fails.
    std::fs::write(&binary, evil).unwrap();
    std::fs::write(machine.dest().join(".archive.tar.gz"), b"not the release").unwrap();
    std::fs::write(machine.dest().join(".sha256"), format!("{sha}\n")).unwrap();
    let published = std::fs::read_to_string(machine.path("github_path")).unwrap();
    let out = machine.install("http://127.0.0.1:9", &[]);
    assert_refused(&out, "download failed");
    let after = std::fs::read_to_string(machine.path("github_path")).unwrap();
    assert_eq!(after, published, "the refused install was put on the PATH");
}

#[test]
fn wrappers_install_sh_refuses_a_binary_that_is_a_link() {
    use sha2::Digest;
    if required_tool("python3", "install.sh link").is_none() {
        return;
    }
    let machine = Machine::new();
    let outside = machine.path("outside");
    std::fs::write(&outside, "not for chmod").unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    tar.append_link(&mut header, "buildopt", &outside).unwrap();
    let bytes = tar.into_inner().unwrap().finish().unwrap();
    let site = tempfile::tempdir().unwrap();
    let release = site.path().join(format!("v{VERSION}"));
    std::fs::create_dir_all(&release).unwrap();
    std::fs::write(
        release.join(format!("buildopt-{VERSION}-{TARGET}.tar.gz")),
        &bytes,
    )
    .unwrap();
    let sha: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let server = StaticServer::start(site.path());
    let out = machine.install(&server.base, &[("BUILDOPT_SHA256", &sha)]);
    assert_refused(&out, "holds no buildopt binary");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&outside).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0, "the link's target was made executable");
    assert_eq!(machine.installed(), vec![VERSION.to_string()]);
}

#[test]
fn wrappers_install_sh_refuses_a_wrong_or_unknown_checksum_and_installs_nothing() {
    let Some(Release { sha, server, _dir }) = Release::serve("install.sh") else {
        return;
    };

    let machine = Machine::new();
    let wrong = "0".repeat(64);
    machine.pin(&wrong);
    let out = machine.install(&server.base, &[]);
    assert_refused(&out, "checksum mismatch");
    assert!(
        stderr(&out).contains(&sha),
        "the actual checksum is named: {}",
        text(&out)
    );
    assert_eq!(
        machine.installed(),
        vec![VERSION.to_string()],
        "nothing installed"
    );
    assert!(!machine.path("github_path").exists());

    // An install that does not match the expected checksum is not reused either.
    let out = machine.install(&server.base, &[("BUILDOPT_SHA256", &sha)]);
    assert_ok(&out, "install.sh with the right checksum");
    let out = machine.install(&server.base, &[("BUILDOPT_SHA256", &wrong)]);
    assert_fails(&out, "install.sh");

    let unknown = Machine::new();
    let out = unknown.install(&server.base, &[]);
    assert_refused(&out, "no checksum pinned");
    assert!(unknown.installed().is_empty());

    let out = unknown.install(&server.base, &[("BUILDOPT_SHA256", "abc")]);
    assert_refused(&out, "64 hex digits");
}

#[test]
fn wrappers_install_sh_fails_clearly_on_404_and_refuses_plain_http() {
    let Some(Release { server, _dir, .. }) = Release::serve("install.sh") else {
        return;
    };
    let machine = Machine::new();
    let sha = "1".repeat(64);

    let out = machine.install(
        &server.base,
        &[("BUILDOPT_VERSION", "9.9.9"), ("BUILDOPT_SHA256", &sha)],
    );
    let url = format!("{}/v9.9.9/buildopt-9.9.9-{TARGET}.tar.gz", server.base);
    assert_refused(&out, &format!("download failed: {url}"));
    assert_refused(&out, "404");
    assert_eq!(
        machine.installed(),
        vec!["9.9.9".to_string()],
        "no leftovers"
    );

    let out = machine.install("http://example.com/releases", &[("BUILDOPT_SHA256", &sha)]);
    assert_refused(&out, "https only");

    let out = machine.install(&server.base, &[("BUILDOPT_TARGET", "sparc-sun-solaris")]);
    assert_refused(&out, "unsupported target");
}

#[test]
fn wrappers_install_sh_passes_shellcheck() {
    let Some(shellcheck) = required_tool("shellcheck", "shellcheck install.sh") else {
        return;
    };
    let out = run(&shellcheck, &["-s", "sh", "dist/install.sh"], &root());
    assert_ok(&out, "shellcheck -s sh dist/install.sh");
    let script = read("dist/install.sh");
    assert!(script.starts_with("#!/bin/sh\n"));
    assert!(script.contains("\nset -eu\n"));
}

#[test]
fn wrappers_install_sh_without_a_version_takes_the_newest_pinned_one() {
    let Some(Release { sha, server, _dir }) = Release::serve("install.sh") else {
        return;
    };
    let machine = Machine::new();
    let unpinned = machine.install(&server.base, &[("BUILDOPT_VERSION", "")]);
    assert_refused(&unpinned, "no version of buildopt for");
    assert!(machine.installed().is_empty(), "{:?}", machine.installed());
    // Two releases pinned for this target (the older with a checksum that would not match, so
    // choosing it fails), one newer for another target, and a comment naming a newer one.
    let pins = format!(
        "# {z}  buildopt-9.9.9-{TARGET}.tar.gz\n\
         {z}  buildopt-0.0.9-{TARGET}.tar.gz\n\
         {sha}  buildopt-{VERSION}-{TARGET}.tar.gz\n\
         {z}  buildopt-5.0.0-aarch64-apple-darwin.tar.gz\n",
        z = "0".repeat(64)
    );
    std::fs::write(machine.path("checksums.txt"), pins).unwrap();
    let out = machine.install(&server.base, &[("BUILDOPT_VERSION", "")]);
    assert_ok(&out, "install.sh without a version");
    assert!(
        stderr(&out).contains(&format!(
            "installing buildopt {VERSION}, the newest version pinned"
        )),
        "{}",
        text(&out)
    );
    assert!(machine.dest().join("buildopt").is_file());
}
