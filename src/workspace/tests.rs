//! Discovery tests over in-memory trees.

use super::fake::FakeTree;
use super::*;

fn load_tree(files: &[(&str, &str)], root: &str) -> Result<Workspace, WorkspaceError> {
    let tree = FakeTree::with(files);
    load(
        &tree.snapshot(),
        &Location {
            root: root.into(),
            ..Location::default()
        },
    )
}

fn names(workspace: &Workspace) -> Vec<&str> {
    workspace
        .images
        .iter()
        .map(|i| i.def.name.as_str())
        .collect()
}

#[test]
fn dockerfiles_are_named_after_folder_suffix_or_stem() {
    let files = [
        ("api/Dockerfile", "FROM a\n"),
        ("api/Dockerfile.dev", "FROM a\n"),
        ("api/Dockerfile.dockerignore", "x\n"),
        ("docker/worker.Dockerfile", "FROM a\n"),
        ("docker/worker.Dockerfile.dockerignore", "x\n"),
        ("README.md", "x"),
    ];
    let workspace = load_tree(&files, "").expect("loads");
    assert_eq!(names(&workspace), ["api", "api-dev", "worker"]);
    let worker = &workspace.images[2];
    assert_eq!(
        (worker.def.context.as_str(), worker.ignore_file.as_deref()),
        ("docker", Some("docker/worker.Dockerfile.dockerignore"))
    );
}

#[test]
fn only_the_workspace_folder_is_searched_and_its_root_dockerfile_takes_its_name() {
    let files = [
        ("deploy/Dockerfile", "FROM a\n"),
        ("deploy/x/Dockerfile", "FROM a\n"),
        ("other/Dockerfile", "FROM a\n"),
    ];
    let workspace = load_tree(&files, "deploy").expect("loads");
    assert_eq!(names(&workspace), ["deploy", "x"]);
}

#[test]
fn name_clash_names_both_dockerfiles() {
    let err = load_tree(
        &[
            ("a/web/Dockerfile", "FROM a\n"),
            ("b/web/Dockerfile", "FROM a\n"),
        ],
        "",
    )
    .expect_err("clash");
    let message = err.to_string();
    assert!(
        message.contains("'web'")
            && message.contains("a/web/Dockerfile")
            && message.contains("b/web/Dockerfile"),
        "{message}"
    );
}

#[test]
fn config_wins_over_compose_and_compose_over_dockerfiles() {
    let compose = ("compose.yaml", "services:\n  svc:\n    build: ./svc\n");
    let files = [
        compose,
        ("svc/Dockerfile", "FROM a\n"),
        ("other/Dockerfile", "FROM a\n"),
    ];
    assert_eq!(names(&load_tree(&files, "").expect("compose")), ["svc"]);
    let mut with_config = files.to_vec();
    with_config.push(("buildopt.toml", "[images.only]\ncontext = \"other\"\n"));
    let workspace = load_tree(&with_config, "").expect("config");
    assert_eq!(names(&workspace), ["only"]);
    assert_eq!(workspace.definition_files, ["buildopt.toml"]);
    let settings_only = [
        ("buildopt.toml", "level = \"ci\"\n"),
        ("svc/Dockerfile", "FROM a\n"),
    ];
    assert_eq!(
        names(&load_tree(&settings_only, "").expect("scan")),
        ["svc"]
    );
}

#[test]
fn missing_dockerfile_unknown_dependency_and_escaping_paths_are_errors() {
    let missing =
        load_tree(&[("buildopt.toml", "[images.a]\ncontext = \"a\"\n")], "").expect_err("missing");
    assert!(
        matches!(missing, WorkspaceError::MissingDockerfile { .. }),
        "{missing}"
    );
    let unknown = load_tree(
        &[
            ("buildopt.toml", "[images.a]\ndepends_on = [\"zz\"]\n"),
            ("Dockerfile", "FROM x\n"),
        ],
        "",
    )
    .expect_err("unknown");
    assert!(unknown.to_string().contains("'zz'"), "{unknown}");
    let escape = load_tree(
        &[("buildopt.toml", "[images.a]\ncontext = \"../..\"\n")],
        "",
    )
    .expect_err("escape");
    assert!(
        escape.to_string().contains("leaves the repository"),
        "{escape}"
    );
}

#[test]
fn bad_dockerfile_names_file_and_line() {
    let err = load_tree(&[("a/Dockerfile", "FROM x\nNOPE y\n")], "").expect_err("bad");
    assert!(err.to_string().starts_with("a/Dockerfile:"), "{err}");
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn config_paths_are_relative_to_the_config_file() {
    let files = [
        (
            "deploy/buildopt.toml",
            "inputs = [\"lock\"]\n[images.a]\ncontext = \"../src\"\ninputs = [\"!x\", \"/proto\"]\n",
        ),
        ("src/Dockerfile", "FROM x\n"),
    ];
    let workspace = load_tree(&files, "deploy").expect("loads");
    let def = &workspace.images[0].def;
    assert_eq!(
        (def.context.as_str(), def.dockerfile.as_str()),
        ("src", "src/Dockerfile")
    );
    assert_eq!(def.inputs, ["!deploy/x", "deploy/proto"]);
    assert_eq!(workspace.global_inputs, ["deploy/lock"]);
}

#[test]
fn repository_of_strips_tag_and_digest_but_not_registry_port() {
    assert_eq!(repository_of("core"), "core");
    assert_eq!(repository_of("core:1.2"), "core");
    assert_eq!(
        repository_of("localhost:5000/team/core:1"),
        "localhost:5000/team/core"
    );
    assert_eq!(
        repository_of("localhost:5000/team/core"),
        "localhost:5000/team/core"
    );
    assert_eq!(repository_of("core@sha256:abc"), "core");
}

#[test]
fn images_without_platforms_get_the_environment_s_else_the_commit_s_file_s() {
    let files = [
        (
            "buildopt.toml",
            "platforms = [\"linux/arm64\"]\n[images.own]\ncontext = \"own\"\n\
             platforms = [\"linux/s390x\"]\n[images.plain]\ncontext = \"plain\"\n",
        ),
        ("own/Dockerfile", "FROM a\n"),
        ("plain/Dockerfile", "FROM a\n"),
    ];
    let tree = FakeTree::with(&files);
    let platforms = |at: &Location| -> Vec<Vec<String>> {
        let found = definitions(&tree.snapshot(), at).expect("definitions");
        found.images.into_iter().map(|def| def.platforms).collect()
    };
    let from_file = platforms(&Location::default());
    assert_eq!(from_file, [vec!["linux/s390x"], vec!["linux/arm64"]]);
    let from_env = platforms(&Location {
        platforms: vec!["linux/amd64".into(), "linux/arm/v7".into()],
        ..Location::default()
    });
    assert_eq!(
        from_env,
        [vec!["linux/s390x"], vec!["linux/amd64", "linux/arm/v7"]]
    );
}

#[test]
fn a_top_level_platform_that_is_not_os_arch_names_the_file_and_line() {
    let files = [
        (
            "buildopt.toml",
            "level = \"medium\"\nplatforms = [\"amd64\"]\n",
        ),
        ("app/Dockerfile", "FROM a\n"),
    ];
    let error = load_tree(&files, "").expect_err("amd64 alone is no platform");
    let message = error.to_string();
    assert!(
        message.contains("buildopt.toml:2") && message.contains("\"amd64\""),
        "{message}"
    );
}
