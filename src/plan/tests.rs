//! Planner tests over in-memory trees: the graph, the reasons, the levels and the digests.

use crate::git::{Change, ChangeStatus};
use crate::plan::{Graph, GraphError, Mode, Plan, PlanInput, PlanRange, ReasonKind, plan};
use crate::workspace::fake::FakeTree;
use crate::workspace::{ImageDef, Location, load};

fn modified(paths: &[&str]) -> Vec<Change> {
    paths
        .iter()
        .map(|p| Change {
            status: ChangeStatus::Modified,
            path: (*p).into(),
        })
        .collect()
}

fn range() -> PlanRange {
    PlanRange {
        base: Some("b".repeat(40)),
        head: "h".repeat(40),
        reason: "test".into(),
    }
}

fn plan_for(files: &[(&str, &str)], changes: &[Change]) -> Plan {
    plan_with(files, changes, Mode::Selective, None)
}

fn plan_with(
    files: &[(&str, &str)],
    changes: &[Change],
    mode: Mode,
    base: Option<&[ImageDef]>,
) -> Plan {
    let tree = FakeTree::with(files);
    let snapshot = tree.snapshot();
    let workspace = load(&snapshot, &Location::default()).expect("workspace loads");
    let graph = Graph::build(&workspace.images).expect("graph builds");
    plan(&PlanInput {
        workspace: &workspace,
        snapshot: &snapshot,
        graph: &graph,
        changes,
        mode,
        range: range(),
        base_definitions: base,
    })
}

fn built(plan: &Plan) -> Vec<(&str, usize)> {
    plan.affected()
        .map(|i| (i.name.as_str(), i.level.expect("level")))
        .collect()
}

fn image<'a>(plan: &'a Plan, name: &str) -> &'a crate::plan::PlannedImage {
    plan.images
        .iter()
        .find(|i| i.name == name)
        .expect("image in plan")
}

fn kinds(plan: &Plan, name: &str) -> Vec<ReasonKind> {
    image(plan, name).reasons.iter().map(|r| r.kind).collect()
}

const CHAIN: &[(&str, &str)] = &[
    ("core/Dockerfile", "FROM busybox\nCOPY . /core\n"),
    ("core/lib.sh", "echo core\n"),
    ("api/Dockerfile", "FROM core:latest\nCOPY . /api\n"),
    ("api/app.sh", "echo api\n"),
    ("web/Dockerfile", "FROM api\nCOPY . /web\n"),
    ("web/index.html", "<p>\n"),
    ("tools/Dockerfile", "FROM busybox\n"),
];

#[test]
fn a_change_in_the_root_of_a_chain_rebuilds_the_chain_in_order() {
    let plan = plan_for(CHAIN, &modified(&["core/lib.sh"]));
    assert_eq!(built(&plan), [("core", 0), ("api", 1), ("web", 2)]);
    assert_eq!(plan.levels, [vec!["core"], vec!["api"], vec!["web"]]);
    assert_eq!(kinds(&plan, "api"), [ReasonKind::Parent]);
    assert!(
        image(&plan, "api").reasons[0].detail.contains("'core'"),
        "{:?}",
        image(&plan, "api").reasons
    );
    assert_eq!(
        image(&plan, "tools").unaffected_because.as_deref(),
        Some("none of its inputs changed")
    );
}

#[test]
fn a_change_in_the_middle_rebuilds_it_and_its_dependents_only() {
    let plan = plan_for(CHAIN, &modified(&["api/app.sh"]));
    assert_eq!(built(&plan), [("api", 0), ("web", 1)]);
    assert_eq!(image(&plan, "api").reasons[0].detail, "api/app.sh changed");
}

#[test]
fn diamond_waits_for_both_parents() {
    let files = [
        ("a/Dockerfile", "FROM busybox\n"),
        ("b/Dockerfile", "FROM a\n"),
        ("c/Dockerfile", "FROM a\n"),
        (
            "d/Dockerfile",
            "FROM b AS one\nFROM c\nCOPY --from=one / /\n",
        ),
    ];
    let plan = plan_for(&files, &modified(&["a/Dockerfile"]));
    assert_eq!(built(&plan), [("a", 0), ("b", 1), ("c", 1), ("d", 2)]);
    assert_eq!(image(&plan, "d").depends_on, ["b", "c"]);
    assert_eq!(kinds(&plan, "d"), [ReasonKind::Parent, ReasonKind::Parent]);
}

#[test]
fn ignored_files_do_not_affect_and_the_plan_says_so() {
    let files = [
        ("api/Dockerfile", "FROM busybox\n"),
        ("api/.dockerignore", "*.md\n"),
        ("api/README.md", "x"),
    ];
    let plan = plan_for(&files, &modified(&["api/README.md"]));
    assert!(plan.is_empty());
    let because = image(&plan, "api")
        .unaffected_because
        .clone()
        .expect("why not");
    assert!(
        because.contains("ignore rules exclude") && because.contains("api/README.md"),
        "{because}"
    );
}

#[test]
fn a_change_only_to_the_ignore_file_affects() {
    let files = [
        ("api/Dockerfile", "FROM busybox\n"),
        ("api/.dockerignore", "*.md\n"),
    ];
    let plan = plan_for(&files, &modified(&["api/.dockerignore"]));
    assert_eq!(kinds(&plan, "api"), [ReasonKind::IgnoreFile]);
}

#[test]
fn dockerfile_outside_its_context_and_excluded_dockerfile_still_count() {
    let files = [
        (
            "buildopt.toml",
            "[images.api]\ncontext = \"src\"\ndockerfile = \"docker/api.Dockerfile\"\n",
        ),
        ("docker/api.Dockerfile", "FROM busybox\n"),
        ("src/main.c", "int main;\n"),
        ("src/.dockerignore", "Dockerfile\n"),
    ];
    let plan = plan_for(&files, &modified(&["docker/api.Dockerfile"]));
    assert_eq!(kinds(&plan, "api"), [ReasonKind::Dockerfile]);
}

#[test]
fn nested_contexts_are_both_affected() {
    let files = [
        ("services/Dockerfile", "FROM busybox\n"),
        ("services/a/Dockerfile", "FROM busybox\n"),
    ];
    let plan = plan_for(&files, &modified(&["services/a/x.txt"]));
    assert_eq!(built(&plan), [("a", 0), ("services", 0)]);
}

#[test]
fn root_context_shared_by_images_respects_each_ignore_file() {
    let files = [
        (
            "buildopt.toml",
            "[images.one]\ndockerfile = \"one.Dockerfile\"\n[images.two]\ndockerfile = \"two.Dockerfile\"\n",
        ),
        ("one.Dockerfile", "FROM busybox\n"),
        ("two.Dockerfile", "FROM busybox\n"),
        ("one.Dockerfile.dockerignore", "docs\n"),
        ("docs/guide.md", "x"),
    ];
    let plan = plan_for(&files, &modified(&["docs/guide.md"]));
    assert_eq!(built(&plan), [("two", 0)]);
}

#[test]
fn arg_expanded_from_and_copy_from_make_edges() {
    let files = [
        ("core/Dockerfile", "FROM busybox\n"),
        ("lint/Dockerfile", "FROM busybox\n"),
        (
            "api/Dockerfile",
            "ARG BASE=core\nARG TAG=1\nFROM ${BASE}:${TAG}\nCOPY --from=lint:latest /bin/lint /bin/\n",
        ),
    ];
    let plan = plan_for(&files, &modified(&["lint/Dockerfile"]));
    assert_eq!(built(&plan), [("lint", 0), ("api", 1)]);
    assert_eq!(image(&plan, "api").depends_on, ["core", "lint"]);
}

#[test]
fn a_stage_shadows_an_image_of_the_same_name() {
    let files = [
        ("core/Dockerfile", "FROM busybox\n"),
        ("api/Dockerfile", "FROM busybox AS core\nFROM core\n"),
    ];
    let plan = plan_for(&files, &modified(&["core/Dockerfile"]));
    assert_eq!(built(&plan), [("core", 0)]);
}

#[test]
fn a_cycle_is_an_error_that_prints_it() {
    let tree = FakeTree::with(&[
        ("a/Dockerfile", "FROM c\n"),
        ("b/Dockerfile", "FROM a\n"),
        ("c/Dockerfile", "FROM b\n"),
    ]);
    let workspace = load(&tree.snapshot(), &Location::default()).expect("loads");
    let err = Graph::build(&workspace.images).expect_err("cycle");
    let GraphError::Cycle { cycle } = &err else {
        panic!("{err}")
    };
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4);
    assert!(err.to_string().contains(" -> "), "{err}");
}

#[test]
fn a_deleted_dockerfile_is_reported_as_removed() {
    let changes = vec![Change {
        status: ChangeStatus::Deleted,
        path: "old/Dockerfile".into(),
    }];
    let plan = plan_for(&[("api/Dockerfile", "FROM busybox\n")], &changes);
    assert!(plan.is_empty());
    assert_eq!(plan.removed.len(), 1);
    assert_eq!(plan.removed[0].name, "old");
}

#[test]
fn global_inputs_affect_every_image() {
    let files = [
        (
            "buildopt.toml",
            "inputs = [\"versions.env\"]\n[images.a]\ncontext = \"a\"\n[images.b]\ncontext = \"b\"\n",
        ),
        ("a/Dockerfile", "FROM busybox\n"),
        ("b/Dockerfile", "FROM busybox\n"),
        ("versions.env", "V=1\n"),
    ];
    let plan = plan_for(&files, &modified(&["versions.env"]));
    assert_eq!(built(&plan), [("a", 0), ("b", 0)]);
    assert_eq!(kinds(&plan, "a"), [ReasonKind::GlobalInput]);
}

#[test]
fn named_context_and_extra_inputs_affect_their_image() {
    let files = [
        (
            "buildopt.toml",
            "[images.api]\ncontext = \"api\"\ncontexts = { shared = \"shared\" }\n[images.job]\ncontext = \"job\"\ninputs = [\"proto/**/*.proto\"]\n",
        ),
        (
            "api/Dockerfile",
            "FROM busybox\nCOPY --from=shared cfg /cfg\n",
        ),
        ("job/Dockerfile", "FROM busybox\n"),
        ("shared/cfg", "x"),
        ("shared/.dockerignore", "*.md\n"),
        ("proto/v1/a.proto", "x"),
    ];
    let plan = plan_for(
        &files,
        &modified(&["shared/cfg", "shared/notes.md", "proto/v1/a.proto"]),
    );
    assert_eq!(kinds(&plan, "api"), [ReasonKind::NamedContext]);
    assert_eq!(image(&plan, "api").reasons[0].files, ["shared/cfg"]);
    assert_eq!(kinds(&plan, "job"), [ReasonKind::Input]);
}

#[test]
fn forced_and_no_base_plans_build_everything_with_the_reason() {
    let mode = Mode::All {
        kind: ReasonKind::Forced,
        detail: "forced (flag)".into(),
    };
    let plan = plan_with(CHAIN, &[], mode, None);
    assert_eq!(plan.affected().count(), 4);
    assert_eq!(plan.levels.len(), 3);
    assert!(
        plan.affected()
            .all(|i| i.reasons.iter().any(|r| r.kind == ReasonKind::Forced))
    );
}

#[test]
fn changed_build_args_in_the_definition_affect() {
    let head = [
        (
            "buildopt.toml",
            "[images.api]\ncontext = \"api\"\nargs = { V = \"2\" }\n[images.db]\ncontext = \"db\"\n",
        ),
        ("api/Dockerfile", "FROM busybox\n"),
        ("db/Dockerfile", "FROM busybox\n"),
    ];
    let base_tree = FakeTree::with(&[(
        "buildopt.toml",
        "[images.api]\ncontext = \"api\"\nargs = { V = \"1\" }\n[images.db]\ncontext = \"db\"\n[images.gone]\ncontext = \"gone\"\n",
    )]);
    let base =
        crate::workspace::definitions(&base_tree.snapshot(), &Location::default()).expect("base");
    let plan = plan_with(
        &head,
        &modified(&["buildopt.toml"]),
        Mode::Selective,
        Some(&base.images),
    );
    assert_eq!(built(&plan), [("api", 0)]);
    assert_eq!(
        image(&plan, "api").reasons[0].detail,
        "args changed in buildopt.toml"
    );
    assert_eq!(plan.removed[0].name, "gone");
}

#[test]
fn many_changed_files_are_summarised() {
    let files = [("api/Dockerfile", "FROM busybox\n")];
    let paths: Vec<String> = (0..5000).map(|n| format!("api/src/f{n}.c")).collect();
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let plan = plan_for(&files, &modified(&refs));
    let reason = &image(&plan, "api").reasons[0];
    assert_eq!((reason.files.len(), reason.file_count), (10, 5000));
    assert_eq!(
        reason.detail,
        "api/src/f0.c and 4999 more files of its context changed"
    );
}

#[test]
fn digests_follow_content_parents_and_ignore_rules() {
    let digest = |files: &[(&str, &str)], name: &str| {
        image(&plan_for(files, &[]), name).inputs_digest.clone()
    };
    let mut changed_core = CHAIN.to_vec();
    changed_core[1] = ("core/lib.sh", "echo changed\n");
    assert_eq!(digest(CHAIN, "web"), digest(CHAIN, "web"));
    assert_ne!(
        digest(CHAIN, "web"),
        digest(&changed_core, "web"),
        "a parent's change reaches the child"
    );
    assert_eq!(digest(CHAIN, "tools"), digest(&changed_core, "tools"));
    assert!(digest(CHAIN, "web").starts_with("blake3:"));

    let ignored = [
        ("api/Dockerfile", "FROM busybox\n"),
        ("api/.dockerignore", "*.md\n"),
        ("api/a.md", "1"),
    ];
    let mut ignored_changed = ignored.to_vec();
    ignored_changed[2] = ("api/a.md", "2");
    assert_eq!(
        digest(&ignored, "api"),
        digest(&ignored_changed, "api"),
        "excluded files do not count"
    );
}
