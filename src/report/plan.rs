//! Renderers of a [`Plan`]: the human table, versioned JSON, and the GitHub Actions matrix.
//!
//! Pure: each takes the plan and returns text. Nothing here reads the environment or the clock.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::plan::Plan;

/// The readable table: range, what builds by level with every reason, what does not and why.
pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    let range = &plan.range;
    match &range.base {
        Some(base) => {
            let _ = writeln!(out, "base {} → head {} ({})", short(base), short(&range.head), range.reason);
        }
        None => {
            let _ = writeln!(out, "head {}: building everything ({})", short(&range.head), range.reason);
        }
    }
    let total = plan.images.len();
    let building = plan.affected().count();
    if plan.is_empty() {
        let _ = writeln!(out, "nothing to build: {total} images, {} changed files, none affects an image", plan.changed_files);
    } else {
        let _ = writeln!(
            out,
            "{building} of {total} images to build in {} level{} ({} changed files)",
            plan.levels.len(),
            if plan.levels.len() == 1 { "" } else { "s" },
            plan.changed_files
        );
    }
    let width = plan.images.iter().map(|i| i.name.chars().count()).max().unwrap_or(0).max(5);
    if building > 0 {
        let _ = writeln!(out, "\nlevel  {:width$}  why", "image");
        for image in plan.affected() {
            let level = image.level.map(|l| l.to_string()).unwrap_or_default();
            for (n, reason) in image.reasons.iter().enumerate() {
                if n == 0 {
                    let _ = writeln!(out, "{level:<5}  {:width$}  {}", image.name, reason.detail);
                } else {
                    let _ = writeln!(out, "{:5}  {:width$}  {}", "", "", reason.detail);
                }
            }
        }
    }
    let unaffected: Vec<_> = plan.images.iter().filter(|i| !i.affected).collect();
    if !unaffected.is_empty() {
        let _ = writeln!(out, "\nnot built:");
        for image in unaffected {
            let because = image.unaffected_because.as_deref().unwrap_or("");
            let _ = writeln!(out, "       {:width$}  {because}", image.name);
        }
    }
    if !plan.removed.is_empty() {
        let _ = writeln!(out, "\nremoved:");
        for removed in &plan.removed {
            let _ = writeln!(out, "       {:width$}  {}", removed.name, removed.detail);
        }
    }
    for note in &plan.notes {
        let _ = writeln!(out, "\nnote: {note}");
    }
    out
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// The versioned JSON form (`version` is [`crate::plan::model::PLAN_FORMAT_VERSION`]).
pub fn json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_else(|err| format!("{{\"error\":{:?}}}", err.to_string()))
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
    json!({ "include": include }).to_string()
}

/// The step outputs written to `GITHUB_OUTPUT`: name and value.
pub fn github_outputs(plan: &Plan) -> Vec<(&'static str, String)> {
    let names: Vec<&str> = plan.affected().map(|i| i.name.as_str()).collect();
    vec![
        ("any", (!names.is_empty()).to_string()),
        ("count", names.len().to_string()),
        ("images", serde_json::to_string(&names).unwrap_or_else(|_| "[]".into())),
        ("levels", serde_json::to_string(&plan.levels).unwrap_or_else(|_| "[]".into())),
        ("matrix", matrix(plan)),
        ("plan", serde_json::to_string(plan).unwrap_or_else(|_| "{}".into())),
    ]
}
