//! Renderers of a [`Plan`]: the human table, versioned JSON, and the GitHub Actions matrix.
//!
//! Pure: each takes the plan and returns text. Nothing here reads the environment or the clock.
//! The table prints every name, path, ref and reason through [`escape::console_name`] and
//! [`escape::console_line`]; the JSON forms stay JSON (see [`escape::console_json`]).

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::escape::{self, console_line, console_name};
use crate::plan::{Plan, SelectedBy};

/// The readable table: range, what builds by level with every reason, what does not and why.
pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    let range = &plan.range;
    match &range.base {
        Some(base) => {
            let _ = writeln!(
                out,
                "base {} → head {} ({})",
                console_name(short(base)),
                console_name(short(&range.head)),
                console_line(&range.reason)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "head {}: building everything ({})",
                console_name(short(&range.head)),
                console_line(&range.reason)
            );
        }
    }
    let total = plan.images.len();
    let building = plan.affected().count();
    if plan.is_empty() {
        let _ = writeln!(
            out,
            "nothing to build: {} affect none of the {}",
            plural(plan.changed_files, "changed file"),
            plural(total, "image")
        );
    } else {
        let _ = writeln!(
            out,
            "{building} of {} to build in {} ({})",
            plural(total, "image"),
            plural(plan.levels.len(), "level"),
            plural(plan.changed_files, "changed file")
        );
    }
    let width = plan
        .images
        .iter()
        .map(|i| console_name(&i.name).chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    if building > 0 {
        let by = "selected by";
        let by_width = by.len();
        let _ = writeln!(out, "\nlevel  {:width$}  {by}  why", "image");
        for image in plan.affected() {
            let level = image.level.map(|l| l.to_string()).unwrap_or_default();
            let name = console_name(&image.name);
            let source = image.selected_by.map_or("", SelectedBy::as_str);
            for (n, reason) in image.reasons.iter().enumerate() {
                let detail = console_line(&reason.detail);
                if n == 0 {
                    let _ = writeln!(
                        out,
                        "{level:<5}  {name:width$}  {source:by_width$}  {detail}"
                    );
                } else {
                    let _ = writeln!(out, "{:5}  {:width$}  {:by_width$}  {detail}", "", "", "");
                }
            }
        }
    }
    let unaffected: Vec<_> = plan.images.iter().filter(|i| !i.affected).collect();
    if !unaffected.is_empty() {
        let _ = writeln!(out, "\nnot built:");
        for image in unaffected {
            let because = console_line(image.unaffected_because.as_deref().unwrap_or(""));
            let name = console_name(&image.name);
            let _ = writeln!(out, "       {name:width$}  {because}");
        }
    }
    if !plan.removed.is_empty() {
        let _ = writeln!(out, "\nremoved:");
        for removed in &plan.removed {
            let (name, detail) = (console_name(&removed.name), console_line(&removed.detail));
            let _ = writeln!(out, "       {name:width$}  {detail}");
        }
    }
    for note in &plan.notes {
        let _ = writeln!(out, "\nnote: {}", console_line(note));
    }
    out
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// The versioned JSON form (`version` is [`crate::plan::model::PLAN_FORMAT_VERSION`]).
pub fn json(plan: &Plan) -> String {
    let json = serde_json::to_string_pretty(plan)
        .unwrap_or_else(|err| format!("{{\"error\":{:?}}}", err.to_string()));
    escape::console_json(&json)
}

/// `{"include":[...]}` for `strategy.matrix`, one entry per image to build, in build order.
/// Always valid JSON, also when empty; workflows guard with the `any` output (see the README).
pub fn matrix(plan: &Plan) -> String {
    let include: Vec<Value> = plan
        .affected()
        .map(|image| {
            json!({
                "image": image.name,
                "context": image.context,
                "dockerfile": image.dockerfile,
                "target": image.target.clone().unwrap_or_default(),
                "level": image.level,
                "inputs_digest": image.inputs_digest,
            })
        })
        .collect();
    escape::console_json(&json!({ "include": include }).to_string())
}

/// The step outputs written to `GITHUB_OUTPUT`: name and value.
pub fn github_outputs(plan: &Plan) -> Vec<(&'static str, String)> {
    let names: Vec<&str> = plan.affected().map(|i| i.name.as_str()).collect();
    vec![
        ("any", (!names.is_empty()).to_string()),
        ("count", names.len().to_string()),
        (
            "images",
            serde_json::to_string(&names).unwrap_or_else(|_| "[]".into()),
        ),
        (
            "levels",
            serde_json::to_string(&plan.levels).unwrap_or_else(|_| "[]".into()),
        ),
        ("matrix", matrix(plan)),
        (
            "plan",
            serde_json::to_string(plan).unwrap_or_else(|_| "{}".into()),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plan::{PlanRange, PlannedImage, Reason, ReasonKind, RemovedImage};

    fn image(
        name: &str,
        level: Option<usize>,
        reasons: Vec<Reason>,
        why_not: Option<&str>,
    ) -> PlannedImage {
        PlannedImage {
            name: name.into(),
            context: format!("services/{name}"),
            dockerfile: format!("services/{name}/Dockerfile"),
            target: None,
            affected: !reasons.is_empty(),
            selected_by: SelectedBy::of(&reasons),
            reasons,
            unaffected_because: why_not.map(str::to_string),
            level,
            depends_on: if name == "base" {
                vec![]
            } else {
                vec!["base".into()]
            },
            inputs_digest: format!("blake3:{}", "0".repeat(64)),
            build_args: BTreeMap::new(),
            tags: vec![],
            platforms: vec![],
        }
    }

    fn reason(kind: ReasonKind, detail: &str) -> Reason {
        Reason {
            kind,
            detail: detail.into(),
            files: vec![],
            file_count: 0,
        }
    }

    fn sample() -> Plan {
        Plan {
            version: 1,
            range: PlanRange {
                base: Some("1111111111111111111111111111111111111111".into()),
                head: "2222222222222222222222222222222222222222".into(),
                reason: "merge base with origin/main".into(),
            },
            changed_files: 3,
            images: vec![
                image(
                    "base",
                    Some(0),
                    vec![reason(ReasonKind::Context, "base/motd changed")],
                    None,
                ),
                image(
                    "api",
                    Some(1),
                    vec![
                        reason(
                            ReasonKind::Parent,
                            "builds FROM 'base' (line 1), which is rebuilt",
                        ),
                        reason(
                            ReasonKind::Dockerfile,
                            "Dockerfile services/api/Dockerfile changed",
                        ),
                    ],
                    None,
                ),
                image(
                    "worker",
                    Some(1),
                    vec![
                        reason(ReasonKind::Record, crate::plan::selection::RECORD_REASON),
                        reason(
                            ReasonKind::Parent,
                            "builds FROM 'base' (line 1), which is rebuilt",
                        ),
                    ],
                    None,
                ),
                image("linter", None, vec![], Some("none of its inputs changed")),
            ],
            levels: vec![vec!["base".into()], vec!["api".into(), "worker".into()]],
            removed: vec![RemovedImage {
                name: "old".into(),
                detail: "its Dockerfile old/Dockerfile was deleted".into(),
            }],
            notes: vec![],
        }
    }

    fn empty() -> Plan {
        let mut plan = sample();
        plan.images.truncate(0);
        plan.images.push(image(
            "linter",
            None,
            vec![],
            Some("none of its inputs changed"),
        ));
        plan.levels.clear();
        plan.removed.clear();
        plan
    }

    #[test]
    fn text_table() {
        insta::assert_snapshot!(text(&sample()));
    }

    #[test]
    fn text_when_nothing_builds() {
        insta::assert_snapshot!(text(&empty()));
    }

    #[test]
    fn matrix_lists_images_in_build_order_and_is_valid_when_empty() {
        insta::assert_snapshot!(matrix(&sample()));
        assert_eq!(matrix(&empty()), r#"{"include":[]}"#);
    }

    #[test]
    fn json_is_versioned() {
        let value: serde_json::Value = serde_json::from_str(&json(&sample())).expect("json");
        assert_eq!(value["version"], 1);
        assert_eq!(value["images"][1]["reasons"][1]["kind"], "dockerfile");
        assert_eq!(value["images"][1]["selected_by"], "diff");
        assert_eq!(value["images"][2]["selected_by"], "record");
        assert_eq!(value["images"][2]["reasons"][0]["kind"], "record");
        assert!(value["images"][3].get("selected_by").is_none(), "not built");
        assert_eq!(value["levels"][1][0], "api");
    }

    #[test]
    fn github_outputs_name_every_value() {
        let outputs = github_outputs(&sample());
        let names: Vec<&str> = outputs.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["any", "count", "images", "levels", "matrix", "plan"]
        );
        assert_eq!(outputs[0].1, "true");
        assert_eq!(outputs[2].1, r#"["base","api","worker"]"#);
        assert_eq!(github_outputs(&empty())[0].1, "false");
    }
}
