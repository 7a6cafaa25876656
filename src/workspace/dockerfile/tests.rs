//! Parser tests: malformed inputs (line + message), fixtures under
//! `tests/fixtures/dockerfiles/`, and a no-panic sweep over mutated inputs.

use std::collections::BTreeMap;

use super::*;

const MULTISTAGE: &str = include_str!("../../../tests/fixtures/dockerfiles/multistage.Dockerfile");
const WINDOWS: &str = include_str!("../../../tests/fixtures/dockerfiles/windows.Dockerfile");
const CRLF_BOM: &str = include_str!("../../../tests/fixtures/dockerfiles/crlf-bom.Dockerfile");

fn parse(text: &str) -> Dockerfile {
    match Dockerfile::parse(text) {
        Ok(dockerfile) => dockerfile,
        Err(error) => panic!("unexpected parse error: {error}\n{text}"),
    }
}

fn parse_error(text: &str) -> ParseError {
    match Dockerfile::parse(text) {
        Ok(_) => panic!("expected a parse error for:\n{text}"),
        Err(error) => error,
    }
}

fn assert_error(text: &str, line: usize, fragment: &str) {
    let error = parse_error(text);
    assert_eq!(error.line, line, "line of {error} for:\n{text}");
    assert!(
        error.message.contains(fragment),
        "{:?} does not contain {fragment:?}",
        error.message
    );
}

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `(kind, reference, line)` triples, for compact assertions.
fn refs(
    dockerfile: &Dockerfile,
    build_args: &[(&str, &str)],
    target: Option<&str>,
) -> Vec<(RefKind, String, usize)> {
    match dockerfile.external_refs(&args(build_args), target) {
        Ok(refs) => refs
            .into_iter()
            .map(|r| (r.kind, r.reference, r.line))
            .collect(),
        Err(error) => panic!("unexpected error: {error}"),
    }
}

fn from(reference: &str, line: usize) -> (RefKind, String, usize) {
    (RefKind::From, reference.to_string(), line)
}

fn copy_from(reference: &str, line: usize) -> (RefKind, String, usize) {
    (RefKind::CopyFrom, reference.to_string(), line)
}

fn mount_from(reference: &str, line: usize) -> (RefKind, String, usize) {
    (RefKind::MountFrom, reference.to_string(), line)
}

// ---- malformed input -------------------------------------------------------------------------

#[test]
fn unknown_instruction_names_it_and_its_line() {
    assert_error("FROM a\n\nRUNN make\n", 3, "unknown instruction: RUNN");
}

#[test]
fn unterminated_heredoc_reports_the_opening_line() {
    assert_error(
        "FROM a\nRUN <<EOF\necho hi\nEOFX\n",
        2,
        "unterminated heredoc <<EOF",
    );
    assert_error(
        "FROM a\nCOPY <<one <<two /d/\nx\none\ny\n",
        2,
        "unterminated heredoc <<two",
    );
}

#[test]
fn bad_escape_directive() {
    assert_error("# escape=x\nFROM a\n", 1, "invalid escape token 'x'");
}

#[test]
fn duplicate_directive_is_case_insensitive() {
    assert_error(
        "# syntax=docker/dockerfile:1\n# SYNTAX=other\nFROM a\n",
        2,
        "only one syntax parser directive",
    );
}

#[test]
fn from_without_image() {
    assert_error("ARG X\nFROM\n", 2, "missing image");
    assert_error("FROM --platform=linux/amd64\n", 1, "missing image");
    assert_error("FROM a AS\n", 1, "one or three arguments");
    assert_error("FROM a FOR b\n", 1, "expected AS");
}

#[test]
fn no_from_instruction() {
    assert_error("ARG A=1\n# only a comment\n", 2, "no FROM instruction");
    assert_error("", 1, "no FROM instruction");
}

#[test]
fn instruction_before_first_from() {
    assert_error(
        "ARG A=1\nRUN echo hi\nFROM a\n",
        2,
        "RUN before the first FROM",
    );
}

#[test]
fn bad_flag_syntax() {
    assert_error("FROM a\nRUN --=x echo\n", 2, "bad flag syntax");
    assert_error("FROM a\nCOPY --\n", 2, "flag '--'");
    assert_error("FROM a\nCOPY --!x=1 a b\n", 2, "bad flag syntax");
}

#[test]
fn double_dash_ends_flags_like_buildkit() {
    let dockerfile = parse("FROM a\nRUN --network=none -- --not-a-flag\n");
    let run = &dockerfile.instructions()[1];
    assert_eq!(run.flag_value("network"), Some("none"));
    assert_eq!(run.args, Arguments::Shell("--not-a-flag".into()));
}

#[test]
fn empty_from_values() {
    assert_error("FROM a\nCOPY --from= x y\n", 2, "empty --from");
    assert_error(
        "FROM a\n\nRUN --mount=type=bind,from=,target=/s ls\n",
        3,
        "empty from=",
    );
}

#[test]
fn invalid_stage_names() {
    assert_error("FROM a AS 1st\n", 1, "invalid stage name \"1st\"");
    assert_error("FROM a AS my$stage\n", 1, "invalid stage name");
    assert_error(
        "FROM a AS x\nFROM b AS X\n",
        2,
        "duplicate stage name \"x\"",
    );
}

#[test]
fn onbuild_rejects_from_trigger() {
    assert_error(
        "FROM a\nONBUILD FROM b\n",
        2,
        "isn't allowed as an ONBUILD trigger",
    );
}

#[test]
fn argument_counts() {
    assert_error("FROM a\nCOPY onlyone\n", 2, "at least two arguments");
    assert_error("FROM a\nWORKDIR /a /b\n", 2, "exactly one argument");
    assert_error("FROM a\nSHELL sh -c\n", 2, "JSON form");
    assert_error("FROM a\nENV KEY\n", 2, "must have two arguments");
    assert_error("FROM a\nENV A=1 B\n", 2, "can't find =");
    assert_error(
        "FROM a\nHEALTHCHECK CURL x\n",
        2,
        "unknown type for HEALTHCHECK",
    );
}

#[test]
fn expansion_errors_carry_the_instruction_line() {
    let dockerfile = parse("ARG IMG\nFROM ${IMG:?required}\n");
    let error = dockerfile.external_refs(&args(&[]), None).unwrap_err();
    assert_eq!((error.line, error.message.as_str()), (2, "IMG: required"));

    let dockerfile = parse("ARG IMG\nFROM $IMG\n");
    let error = dockerfile.external_refs(&args(&[]), None).unwrap_err();
    assert_eq!(error.line, 2);
    assert!(error.message.contains("should not be blank"));

    let dockerfile = parse("FROM a\nCOPY --from=7 /x /y\n");
    let error = dockerfile.external_refs(&args(&[]), None).unwrap_err();
    assert_eq!(
        (error.line, error.message.as_str()),
        (2, "invalid stage index 7")
    );
}

#[test]
fn unknown_target_is_reported_at_the_last_line() {
    let dockerfile = parse(MULTISTAGE);
    let error = dockerfile
        .external_refs(&args(&[]), Some("nope"))
        .unwrap_err();
    assert_eq!(error.line, 39);
    assert!(
        error
            .message
            .contains("target stage \"nope\" could not be found")
    );
}

// ---- fixtures ----------------------------------------------------------------------------------

#[test]
fn multistage_fixture_structure() {
    let dockerfile = parse(MULTISTAGE);
    let directives: Vec<(&str, &str, usize)> = dockerfile
        .directives()
        .iter()
        .map(|d| (d.name.as_str(), d.value.as_str(), d.line))
        .collect();
    assert_eq!(
        directives,
        [
            ("syntax", "docker/dockerfile:1.7", 1),
            ("check", "error=true", 2)
        ]
    );
    assert_eq!(dockerfile.stage_names(), ["builder", "test", "runtime"]);
    assert_eq!(dockerfile.global_args().len(), 3);
    let builder = &dockerfile.stages()[0];
    assert_eq!(builder.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(builder.base, "${BASE}:${TAG:-latest}");
    assert_eq!((builder.line, builder.instructions.clone()), (9, 3..9));

    let run = &dockerfile.stage_instructions(builder)[5];
    assert_eq!(
        (run.keyword, run.start_line, run.end_line),
        (Keyword::Run, 14, 17)
    );
    assert_eq!(run.flag_values("mount").count(), 2);
    assert_eq!(run.flag_value("network"), Some("none"));

    let copy = &dockerfile.stage_instructions(builder)[4];
    assert_eq!(copy.flag_value("chmod"), Some("755"));
    assert!(copy.has_flag("link"));
}

#[test]
fn multistage_fixture_refs_without_args() {
    let dockerfile = parse(MULTISTAGE);
    assert_eq!(
        refs(&dockerfile, &[], None),
        [
            from("core:latest", 9),
            mount_from("shared", 14),
            // From the ENV the test stage inherits from builder; deduplicated with line 26.
            copy_from("tools/linter:1", 20),
            from("registry:5000/team/runtime:1.2", 24),
        ]
    );
}

#[test]
fn supplied_build_args_override_global_defaults() {
    let dockerfile = parse(MULTISTAGE);
    let supplied = [
        ("BASE", "alpine"),
        ("TAG", "3.20"),
        ("REGISTRY", "ghcr.io/x"),
    ];
    let refs = refs(&dockerfile, &supplied, None);
    assert_eq!(refs[0], from("alpine:3.20", 9));
    assert_eq!(refs[3], from("ghcr.io/x/runtime:1.2", 24));
}

#[test]
fn undeclared_build_args_do_not_reach_from() {
    let dockerfile = parse("ARG A=x\nFROM ${B:-b}-$A\n");
    assert_eq!(
        refs(&dockerfile, &[("B", "set"), ("A", "y")], None),
        [from("b-y", 2)]
    );
}

#[test]
fn target_limits_refs_to_needed_stages() {
    let dockerfile = parse(MULTISTAGE);
    assert_eq!(
        refs(&dockerfile, &[], Some("RUNTIME")),
        [
            from("core:latest", 9),
            mount_from("shared", 14),
            from("registry:5000/team/runtime:1.2", 24),
            copy_from("tools/linter:1", 26),
        ]
    );
    assert_eq!(
        refs(&dockerfile, &[], Some("builder")),
        [from("core:latest", 9), mount_from("shared", 14)]
    );
}

#[test]
fn stages_shadow_images_only_after_their_definition() {
    let text = "FROM later AS first\nFROM core AS later\nFROM later\nFROM scratch\n";
    assert_eq!(
        refs(&parse(text), &[], None),
        [from("later", 1), from("core", 2)]
    );
}

#[test]
fn a_stage_named_like_its_base_is_not_its_own_parent() {
    let text = "FROM alpine AS alpine\nFROM alpine\n";
    assert_eq!(refs(&parse(text), &[], None), [from("alpine", 1)]);
}

#[test]
fn args_declared_inside_stages_do_not_reach_later_from_lines() {
    let text = "FROM a\nARG X=y\nFROM ${X:-z}\n";
    assert_eq!(
        refs(&parse(text), &[("X", "w")], None),
        [from("a", 1), from("z", 3)]
    );
}

#[test]
fn onbuild_triggers_are_not_needed_by_this_build() {
    let text = "FROM a\nONBUILD COPY --from=trigger:1 /x /x\n";
    assert_eq!(refs(&parse(text), &[], None), [from("a", 1)]);
}

#[test]
fn copy_from_stage_image_and_index() {
    let text = "\
FROM core AS builder
FROM alpine
COPY --from=builder /a /a
COPY --from=tools/linter:1 /b /b
COPY --from=0 /c /c
ADD --from=Builder /d /d
RUN --mount=type=bind,from=shared,target=/s ls /s
RUN --mount=type=cache,target=/c --mount=from=builder,target=/b ls
";
    assert_eq!(
        refs(&parse(text), &[], None),
        [
            from("core", 1),
            from("alpine", 2),
            copy_from("tools/linter:1", 4),
            mount_from("shared", 7),
        ]
    );
}

#[test]
fn stage_args_redeclare_globals_for_copy_from() {
    let text = "ARG TOOLS=tools:1\nFROM a\nARG TOOLS\nCOPY --from=$TOOLS /x /x\nFROM b\nCOPY --from=${TOOLS:-none} /x /x\n";
    assert_eq!(
        refs(&parse(text), &[], None),
        [
            from("a", 2),
            copy_from("tools:1", 4),
            from("b", 5),
            copy_from("none", 6)
        ]
    );
}

#[test]
fn escaped_dollar_is_literal() {
    assert_eq!(
        refs(&parse("ARG A=x\nFROM img\\$A\n"), &[], None),
        [from("img$A", 2)]
    );
}

#[test]
fn heredocs_are_bodies_not_instructions() {
    let dockerfile = parse(MULTISTAGE);
    let run = &dockerfile.instructions()[17];
    assert_eq!((run.start_line, run.end_line), (28, 31));
    assert_eq!(run.heredocs.len(), 1);
    assert_eq!(
        run.heredocs[0].content,
        "set -eu\necho \"FROM notanimage\" > /etc/motd\n"
    );
    assert!(run.heredocs[0].expand);

    let copy = &dockerfile.instructions()[18];
    let names: Vec<(&str, &str, bool)> = copy
        .heredocs
        .iter()
        .map(|h| (h.name.as_str(), h.content.as_str(), h.expand))
        .collect();
    assert_eq!(
        names,
        [("a", "first $HOME\n", true), ("b", "second $HOME\n", false)]
    );
    assert_eq!((copy.start_line, copy.end_line), (32, 36));
    assert_eq!(dockerfile.instructions()[19].keyword, Keyword::Healthcheck);
}

#[test]
fn chomped_heredoc_strips_tabs_and_keeps_fd() {
    let dockerfile = parse("FROM a\nRUN 3<<-'END' cat <&3\n\tline \\\n\t\tmore\n\tEND\nRUN true\n");
    let heredoc = &dockerfile.instructions()[1].heredocs[0];
    assert_eq!(heredoc.name, "END");
    assert_eq!(heredoc.content, "line \\\nmore\n");
    assert_eq!(
        (heredoc.chomp, heredoc.expand, heredoc.fd),
        (true, false, Some(3))
    );
    assert_eq!(dockerfile.instructions()[2].start_line, 6);
}

#[test]
fn heredoc_markers_ignored_in_quotes_and_exec_form() {
    let dockerfile = parse("FROM a\nRUN echo \"<<EOF\"\nRUN [\"sh\", \"<<EOF\"]\nCMD x\n");
    assert!(
        dockerfile
            .instructions()
            .iter()
            .all(|i| i.heredocs.is_empty())
    );
    assert_eq!(dockerfile.instructions().len(), 4);
}

#[test]
fn onbuild_heredoc_attaches_to_trigger() {
    let dockerfile = parse("FROM a\nONBUILD RUN <<EOF\necho\nEOF\n");
    let onbuild = &dockerfile.instructions()[1];
    let trigger = onbuild
        .trigger
        .as_deref()
        .map(|t| (t.keyword, t.heredocs.len()));
    assert_eq!(trigger, Some((Keyword::Run, 1)));
    assert_eq!(onbuild.end_line, 4);
}

#[test]
fn windows_backtick_escape_fixture() {
    let dockerfile = parse(WINDOWS);
    assert_eq!(dockerfile.escape(), '`');
    assert_eq!(dockerfile.stage_names(), ["win"]);
    let run = &dockerfile.instructions()[2];
    assert_eq!((run.start_line, run.end_line), (5, 7));
    assert_eq!(
        run.args,
        Arguments::Shell("Write-Host     C:\\app\\bin     done".into())
    );
    assert_eq!(
        refs(&dockerfile, &[], None),
        [
            from("mcr.microsoft.com/windows/servercore:ltsc2022", 3),
            copy_from("mcr.microsoft.com/dotnet/sdk:8.0", 8),
        ]
    );
    assert_eq!(
        dockerfile.instructions()[4].args,
        Arguments::Shell("C:\\app".into())
    );
}

#[test]
fn crlf_bom_and_interleaved_comments_fixture() {
    let dockerfile = parse(CRLF_BOM);
    let instructions = dockerfile.instructions();
    assert_eq!(instructions.len(), 3);
    assert_eq!(instructions[0].args, Arguments::Shell("alpine:3.20".into()));
    assert_eq!(
        (instructions[1].start_line, instructions[1].end_line),
        (3, 7)
    );
    assert_eq!(
        instructions[1].args,
        Arguments::Shell("apk add   curl   git".into())
    );
    assert_eq!(instructions[2].args, Arguments::Exec(vec!["sh".into()]));
    assert_eq!(refs(&dockerfile, &[], None), [from("alpine:3.20", 1)]);
}

#[test]
fn directives_stop_at_the_first_other_line() {
    let dockerfile = parse("# syntax=x\n\n# escape=`\nFROM a\nRUN a \\\n  b\n");
    assert_eq!(dockerfile.directives().len(), 1);
    assert_eq!(dockerfile.escape(), '\\');
    assert_eq!(
        dockerfile.instructions()[1].args,
        Arguments::Shell("a   b".into())
    );
}

#[test]
fn exec_form_requires_a_json_array_of_strings() {
    let dockerfile = parse("FROM a\nCMD [\"a\", 1]\nCMD [not json\nENTRYPOINT [\"x\"]\n");
    let forms: Vec<&Arguments> = dockerfile.instructions()[1..]
        .iter()
        .map(|i| &i.args)
        .collect();
    assert_eq!(
        forms,
        [
            &Arguments::Shell("[\"a\", 1]".into()),
            &Arguments::Shell("[not json".into()),
            &Arguments::Exec(vec!["x".into()]),
        ]
    );
}

#[test]
fn keywords_and_as_are_case_insensitive() {
    let dockerfile = parse("from a as One\nrun echo\nCopy --FROM=one x y\n");
    assert_eq!(dockerfile.stage_names(), ["one"]);
    assert_eq!(dockerfile.instructions()[2].flag_value("from"), Some("one"));
    assert_eq!(refs(&dockerfile, &[], None), [from("a", 1)]);
}

#[test]
fn env_and_label_pairs() {
    let dockerfile =
        parse("FROM a\nENV A=1 B=\"two words\"\nENV LEGACY value with spaces\nLABEL x=y\n");
    let pairs = |index: usize| match &dockerfile.instructions()[index].args {
        Arguments::Pairs(pairs) => pairs
            .iter()
            .map(|p| (p.key.clone(), p.value.clone().unwrap_or_default()))
            .collect::<Vec<_>>(),
        other => panic!("not pairs: {other:?}"),
    };
    assert_eq!(
        pairs(1),
        [
            ("A".into(), "1".into()),
            ("B".into(), "\"two words\"".into())
        ]
    );
    assert_eq!(
        pairs(2),
        [("LEGACY".to_string(), "value with spaces".to_string())]
    );
    assert_eq!(pairs(3), [("x".to_string(), "y".to_string())]);
}

// ---- robustness ------------------------------------------------------------------------------

/// Truncations, line drops and byte-level corruptions of every fixture must never panic.
#[test]
fn mutated_fixtures_never_panic() {
    let inserts = [
        "\\", "`", "<<", "\"", "'", "${", "[", "--", "#", "\n", "\r\n", "é", "\u{feff}",
    ];
    for fixture in [MULTISTAGE, WINDOWS, CRLF_BOM] {
        let boundaries: Vec<usize> = (0..=fixture.len())
            .filter(|i| fixture.is_char_boundary(*i))
            .collect();
        for &cut in &boundaries {
            exercise(&fixture[..cut]);
            exercise(&fixture[cut..]);
        }
        for (step, &at) in boundaries.iter().enumerate().step_by(7) {
            let insert = inserts[step % inserts.len()];
            exercise(&format!("{}{insert}{}", &fixture[..at], &fixture[at..]));
        }
        let lines: Vec<&str> = fixture.lines().collect();
        for skip in 0..lines.len() {
            let without: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| *l)
                .collect();
            exercise(&without.join("\n"));
        }
    }
}

fn exercise(text: &str) {
    let line_count = text.lines().count().max(1);
    match Dockerfile::parse(text) {
        Ok(dockerfile) => {
            dockerfile.stage_names();
            for target in [None, Some("builder"), Some("runtime"), Some("missing")] {
                if let Err(error) = dockerfile.external_refs(&args(&[("TAG", "1")]), target) {
                    assert!((1..=line_count).contains(&error.line), "{error}");
                }
            }
        }
        Err(error) => assert!((1..=line_count).contains(&error.line), "{error}\n{text}"),
    }
}

#[test]
fn intermediate_stages_are_the_named_stages_the_final_one_needs() {
    let dockerfile = parse(
        "ARG BASE=alpine\n\
         FROM $BASE AS deps\n\
         RUN fetch\n\
         FROM deps AS builder\n\
         RUN make\n\
         FROM alpine AS unused\n\
         RUN nothing\n\
         FROM alpine\n\
         RUN --mount=type=cache,target=/c echo\n\
         FROM scratch AS tools\n\
         COPY --from=builder /app /app\n\
         FROM alpine AS final\n\
         COPY --from=tools /app /app\n\
         COPY --from=3 /x /x\n",
    );
    let stages = |target: Option<&str>| {
        dockerfile
            .intermediate_stages(&BTreeMap::new(), target)
            .expect("stages")
    };
    // The unnamed stage 3 is needed but cannot be a target; `unused` is not needed.
    assert_eq!(stages(None), ["deps", "builder", "tools"]);
    assert_eq!(stages(Some("builder")), ["deps"]);
    assert_eq!(stages(Some("DEPS")), Vec::<String>::new());
    assert!(
        dockerfile
            .intermediate_stages(&BTreeMap::new(), Some("nope"))
            .is_err()
    );
    assert_eq!(
        parse("FROM alpine\nRUN x\n")
            .intermediate_stages(&BTreeMap::new(), None)
            .expect("single stage"),
        Vec::<String>::new()
    );
}
