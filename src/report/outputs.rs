//! GitHub Actions step outputs of a finished run: which images were built, reused and failed,
//! and each image's digest and tags, as JSON values workflows read with `fromJSON`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::model::{ImageResult, RunReport};

/// `built`, `reused`, `failed` (arrays of image names in build order), `digests` (name → the
/// registry digest once pushed, else the image id) and `tags` (name → every `repo:tag`), for
/// images that exist after the run.
pub fn run_outputs(report: &RunReport) -> Vec<(&'static str, String)> {
    let names = |wanted: ImageResult| -> String {
        let names: Vec<&str> = report
            .images
            .iter()
            .filter(|image| image.result == wanted)
            .map(|image| image.name.as_str())
            .collect();
        Value::from(names).to_string()
    };
    let present = || {
        report
            .images
            .iter()
            .filter(|image| matches!(image.result, ImageResult::Built | ImageResult::Reused))
    };
    let digests: BTreeMap<&str, &str> = present()
        .filter_map(|image| {
            let digest = image.digest.as_deref().or(image.image_id.as_deref())?;
            Some((image.name.as_str(), digest))
        })
        .collect();
    let tags: BTreeMap<&str, &[String]> = present()
        .map(|image| (image.name.as_str(), image.tags.as_slice()))
        .collect();
    vec![
        ("built", names(ImageResult::Built)),
        ("reused", names(ImageResult::Reused)),
        ("failed", names(ImageResult::Failed)),
        ("digests", json(&digests)),
        ("tags", json(&tags)),
    ]
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn lists_by_result_and_maps_only_images_that_exist() {
        let mut report = fixtures::report();
        report.images[0].digest = Some("127.0.0.1:5000/base@sha256:aa".into());
        let outputs: BTreeMap<&str, String> = run_outputs(&report).into_iter().collect();
        assert_eq!(outputs["built"], r#"["base"]"#);
        assert_eq!(outputs["reused"], r#"["linter"]"#);
        assert_eq!(outputs["failed"], r#"["api"]"#);
        let digests: BTreeMap<String, String> =
            serde_json::from_str(&outputs["digests"]).expect("json");
        assert_eq!(digests["base"], "127.0.0.1:5000/base@sha256:aa");
        assert!(digests.contains_key("linter") && !digests.contains_key("api"));
        let tags: BTreeMap<String, Vec<String>> =
            serde_json::from_str(&outputs["tags"]).expect("json");
        assert_eq!(tags["base"], report.images[0].tags);
        assert!(!tags.contains_key("worker"));
    }
}
