//! `buildopt plan` end to end: real git repositories in temp folders, the built binary, the JSON
//! plan checked image by image.

use serde_json::Value;

use crate::cli::buildopt;
use crate::support::TestRepo;

/// Runs `plan --output json` for base..head and returns the parsed plan.
fn plan(repo: &TestRepo, base: &str, head: &str) -> Value {
    plan_in(repo, ".", &["--base", base, "--head", head])
}

fn plan_in(repo: &TestRepo, dir: &str, extra: &[&str]) -> Value {
    let mut args = vec!["-C", dir, "plan", "--output", "json"];
    args.extend_from_slice(extra);
    let output = buildopt(repo.path(), &args, &[]);
    assert!(
        output.status.success(),
        "plan failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("plan is JSON")
}

/// The names of the images that build, in build order.
fn built(plan: &Value) -> Vec<String> {
    images(plan)
        .filter(|i| i["affected"] == true)
        .map(|i| i["name"].as_str().unwrap_or("").to_string())
        .collect()
}

fn images(plan: &Value) -> impl Iterator<Item = &Value> {
    plan["images"].as_array().into_iter().flatten()
}

fn image<'a>(plan: &'a Value, name: &str) -> &'a Value {
    images(plan)
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no image {name} in {plan}"))
}

fn reason_kinds(plan: &Value, name: &str) -> Vec<String> {
    image(plan, name)["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

/// core ← api ← web, plus an independent tool.
fn chain_repo() -> (TestRepo, String) {
    let repo = TestRepo::new();
    repo.write("core/Dockerfile", "FROM busybox\nCOPY . /core\n");
    repo.write("core/lib.sh", "echo core\n");
    repo.write(
        "api/Dockerfile",
        "ARG BASE=core\nFROM ${BASE}:latest\nCOPY . /api\n",
    );
    repo.write("api/app.sh", "echo api\n");
    repo.write("api/.dockerignore", "*.md\n");
    repo.write(
        "web/Dockerfile",
        "FROM busybox\nCOPY --from=api /api /api\n",
    );
    repo.write("tool/Dockerfile", "FROM busybox\n");
    let first = repo.commit("initial");
    (repo, first)
}

#[test]
fn multi_commit_change_rebuilds_chain_in_order_with_reasons() {
    let (repo, first) = chain_repo();
    repo.commit_file("core/lib.sh", "echo core 2\n", "one");
    let head = repo.commit_file("tool/x.txt", "x", "two");
    let plan = plan(&repo, &first, &head);
    assert_eq!(built(&plan), ["core", "tool", "api", "web"]);
    assert_eq!(
        plan["levels"],
        serde_json::json!([["core", "tool"], ["api"], ["web"]])
    );
    assert_eq!(reason_kinds(&plan, "api"), ["parent"]);
    assert_eq!(reason_kinds(&plan, "web"), ["parent"]);
    assert_eq!(
        image(&plan, "core")["reasons"][0]["detail"],
        "core/lib.sh changed"
    );
    assert_eq!(plan["version"], 1);
    assert_eq!(plan["range"]["base"], first);
}

/// [`chain_repo`]'s files committed on top of an empty commit: (repository, empty, head).
fn chain_repo_after_an_empty_commit() -> (TestRepo, String, String) {
    let (source, _) = chain_repo();
    let repo = TestRepo::new();
    let empty = repo.empty_commits(1, "empty");
    for path in source.git(&["ls-files"]).lines() {
        let content = std::fs::read_to_string(source.path().join(path)).expect("read");
        repo.write(path, &content);
    }
    let head = repo.commit("files");
    (repo, empty, head)
}

#[test]
fn a_root_commit_plans_as_if_every_file_were_added() {
    let (root, _) = chain_repo();
    // No base given and no parent: every file at head is new (read from the listing).
    let implied = plan_in(&root, ".", &[]);
    let (repo, empty, head) = chain_repo_after_an_empty_commit();
    let diffed = plan(&repo, &empty, &head);
    assert_eq!(built(&implied), ["core", "tool", "api", "web"]);
    assert_eq!(implied["images"], diffed["images"]);
    assert_eq!(implied["range"]["reason"], "initial commit");
}

#[test]
fn identical_base_and_head_is_an_empty_plan_and_exit_0() {
    let (repo, first) = chain_repo();
    let output = buildopt(
        repo.path(),
        &["plan", "--base", &first, "--head", &first],
        &[],
    );
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("nothing to build"));
    let output = buildopt(
        repo.path(),
        &[
            "plan", "--base", &first, "--head", &first, "--output", "matrix",
        ],
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        r#"{"include":[]}"#
    );
}

#[test]
fn ignored_change_builds_nothing_and_ignore_file_change_builds() {
    let (repo, first) = chain_repo();
    let docs = repo.commit_file("api/README.md", "docs", "docs");
    let plan1 = plan(&repo, &first, &docs);
    assert!(built(&plan1).is_empty());
    let why = image(&plan1, "api")["unaffected_because"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(why.contains("api/README.md"), "{why}");
    let ignore = repo.commit_file("api/.dockerignore", "*.md\n*.txt\n", "ignore more");
    let plan2 = plan(&repo, &docs, &ignore);
    assert_eq!(built(&plan2), ["api", "web"]);
    assert_eq!(reason_kinds(&plan2, "api"), ["ignore_file"]);
}

#[test]
fn rename_across_contexts_affects_both_images() {
    let (repo, first) = chain_repo();
    repo.git(&["mv", "core/lib.sh", "tool/lib.sh"]);
    let head = repo.commit("move");
    let plan = plan(&repo, &first, &head);
    assert_eq!(built(&plan), ["core", "tool", "api", "web"]);
    assert_eq!(
        image(&plan, "tool")["reasons"][0]["files"],
        serde_json::json!(["tool/lib.sh"])
    );
}

#[test]
fn mode_only_change_affects() {
    let (repo, first) = chain_repo();
    use std::os::unix::fs::PermissionsExt;
    let file = repo.path().join("tool/Dockerfile");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let head = repo.commit("chmod");
    assert_eq!(built(&plan(&repo, &first, &head)), ["tool"]);
}

#[test]
fn odd_file_names_reach_the_right_image() {
    let (repo, first) = chain_repo();
    repo.write("tool/with space.txt", "x");
    repo.write("tool/new\nline.txt", "x");
    repo.write("tool/ünïcødé-😀.txt", "x");
    repo.write("tool/-leading-dash", "x");
    let head = repo.commit("odd names");
    let plan = plan(&repo, &first, &head);
    assert_eq!(built(&plan), ["tool"]);
    let files = &image(&plan, "tool")["reasons"][0]["files"];
    for name in [
        "tool/with space.txt",
        "tool/new\nline.txt",
        "tool/ünïcødé-😀.txt",
        "tool/-leading-dash",
    ] {
        assert!(
            files.as_array().into_iter().flatten().any(|f| f == name),
            "{name:?} missing from {files}"
        );
    }
}

#[test]
fn deleted_image_is_reported_and_not_built() {
    let (repo, first) = chain_repo();
    repo.remove("tool/Dockerfile");
    let head = repo.commit("drop tool");
    let plan = plan(&repo, &first, &head);
    assert!(built(&plan).is_empty());
    assert_eq!(plan["removed"][0]["name"], "tool");
}

#[test]
fn dockerfile_outside_context_nested_contexts_and_shared_root() {
    let repo = TestRepo::new();
    repo.write(
        "buildopt.toml",
        "[images.app]\ncontext = \"src\"\ndockerfile = \"docker/app.Dockerfile\"\n\
         [images.outer]\ncontext = \"src\"\ndockerfile = \"docker/outer.Dockerfile\"\n\
         [images.inner]\ncontext = \"src/inner\"\ndockerfile = \"docker/inner.Dockerfile\"\n\
         [images.docs]\ndockerfile = \"docker/docs.Dockerfile\"\n",
    );
    for name in ["app", "outer", "inner", "docs"] {
        repo.write(&format!("docker/{name}.Dockerfile"), "FROM busybox\n");
    }
    repo.write("docker/app.Dockerfile.dockerignore", "inner\n");
    repo.write("docker/docs.Dockerfile.dockerignore", "*\n!manual\n");
    repo.write("src/inner/code.c", "1");
    repo.write("manual/index.md", "1");
    let first = repo.commit("initial");
    let dockerfile = repo.commit_file("docker/app.Dockerfile", "FROM busybox\nRUN true\n", "edit");
    assert_eq!(built(&plan(&repo, &first, &dockerfile)), ["app"]);
    let inner = repo.commit_file("src/inner/code.c", "2", "inner");
    assert_eq!(built(&plan(&repo, &dockerfile, &inner)), ["inner", "outer"]);
    let manual = repo.commit_file("manual/index.md", "2", "manual");
    assert_eq!(built(&plan(&repo, &inner, &manual)), ["docs"]);
}

#[test]
fn a_cycle_exits_2_and_prints_it() {
    let repo = TestRepo::new();
    repo.write("a/Dockerfile", "FROM b\n");
    repo.write("b/Dockerfile", "FROM a\n");
    let head = repo.commit("cycle");
    let output = buildopt(
        repo.path(),
        &["plan", "--base", &head, "--head", &head],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("a -> b -> a") || message.contains("b -> a -> b"),
        "{message}"
    );
}

#[test]
fn malformed_dockerfile_and_ignore_file_name_file_and_line() {
    let repo = TestRepo::new();
    repo.write("a/Dockerfile", "FROM busybox\nBOGUS x\n");
    let head = repo.commit("bad dockerfile");
    let output = buildopt(
        repo.path(),
        &["plan", "--base", &head, "--head", &head],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("a/Dockerfile:line 2")
            || String::from_utf8_lossy(&output.stderr).contains("a/Dockerfile:2"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    repo.write("a/Dockerfile", "FROM busybox\n");
    repo.write("a/.dockerignore", "ok\n!\n");
    let head = repo.commit("bad ignore");
    let output = buildopt(
        repo.path(),
        &["plan", "--base", &head, "--head", &head],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("a/.dockerignore"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn workspace_in_a_subfolder_and_github_outputs() {
    let repo = TestRepo::new();
    repo.write("deploy/svc/Dockerfile", "FROM busybox\n");
    repo.write("other/Dockerfile", "FROM busybox\n");
    let first = repo.commit("initial");
    repo.write("deploy/svc/x", "1");
    repo.write("other/x", "1");
    let head = repo.commit("both");
    let plan = plan_in(&repo, "deploy", &["--base", &first, "--head", &head]);
    assert_eq!(built(&plan), ["svc"]);

    let outputs = repo.home().join("github_output");
    let env = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_OUTPUT", outputs.to_str().unwrap_or("")),
    ];
    let output = buildopt(
        repo.path(),
        &["-C", "deploy", "plan", "--base", &first, "--head", &head],
        &env,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&outputs).expect("outputs written");
    assert!(
        text.contains("any<<ghadelimiter_") && text.contains("\ntrue\n"),
        "{text}"
    );
    assert!(
        text.contains(r#"{"include":[{"context":"deploy/svc""#),
        "{text}"
    );
}

#[test]
fn example_monorepo_base_change_rebuilds_base_and_services() {
    let repo = TestRepo::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/monorepo");
    copy_dir(&example, repo.path());
    let first = repo.commit("example");
    let motd = repo.commit_file("base/motd", "changed\n", "motd");
    let plan1 = plan(&repo, &first, &motd);
    assert_eq!(built(&plan1), ["base", "api", "worker"]);
    assert_eq!(
        plan1["levels"],
        serde_json::json!([["base"], ["api", "worker"]])
    );
    let shared = repo.commit_file("shared/config.env", "API_PORT=1\n", "shared");
    assert_eq!(built(&plan(&repo, &motd, &shared)), ["api", "worker"]);
    let docs = repo.commit_file("services/api/README.md", "more\n", "docs");
    assert!(built(&plan(&repo, &shared, &docs)).is_empty());
    let versions = repo.commit_file("versions.env", "EXAMPLE_VERSION=2\n", "versions");
    assert_eq!(built(&plan(&repo, &docs, &versions)).len(), 4);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[test]
fn invalid_definitions_at_the_base_build_everything_with_the_reason() {
    let repo = TestRepo::new();
    repo.write("buildopt.toml", "[images.a]\ncontxt = \"a\"\n");
    repo.write("a/Dockerfile", "FROM busybox\n");
    repo.write("b/Dockerfile", "FROM busybox\n");
    let first = repo.commit("broken config");
    repo.write(
        "buildopt.toml",
        "[images.a]\ncontext = \"a\"\n[images.b]\ncontext = \"b\"\n",
    );
    let head = repo.commit("fixed config");
    let plan = plan(&repo, &first, &head);
    assert_eq!(built(&plan), ["a", "b"]);
    assert_eq!(reason_kinds(&plan, "a"), ["no_base"]);
    let reason = plan["range"]["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("build definitions at the base are invalid"),
        "{reason}"
    );
}

#[test]
fn changed_args_in_compose_rebuild_only_that_service() {
    let repo = TestRepo::new();
    repo.write(
        "compose.yaml",
        "services:\n  a:\n    build:\n      context: a\n      args: {V: '1'}\n  b:\n    build: b\n",
    );
    repo.write("a/Dockerfile", "FROM busybox\nARG V\n");
    repo.write("b/Dockerfile", "FROM busybox\n");
    let first = repo.commit("compose");
    repo.write(
        "compose.yaml",
        "services:\n  a:\n    build:\n      context: a\n      args: {V: '2'}\n  b:\n    build: b\n",
    );
    let head = repo.commit("bump arg");
    let plan = plan(&repo, &first, &head);
    assert_eq!(built(&plan), ["a"]);
    assert_eq!(
        image(&plan, "a")["reasons"][0]["detail"],
        "args changed in compose.yaml"
    );
}
