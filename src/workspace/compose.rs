//! Images from a compose file's `build:` sections.
//!
//! Owns: reading `services.*.build` (string or long form: context, dockerfile, args, target,
//! additional_contexts, platforms, tags) into [`ImageDef`]s. Paths are relative to the compose
//! file's folder, the Dockerfile relative to the context, as Compose resolves them.

use std::collections::BTreeMap;

use serde_norway::Value;

use super::image::{ImageDef, NamedContext, Origin};
use super::paths;

/// The compose file names Compose itself looks for, in its order of preference.
pub const COMPOSE_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// A compose file that could not be read; `message` names the service and key where it can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ComposeError {
    pub message: String,
    /// 1-based, when the YAML parser gave a position.
    pub line: Option<usize>,
}

fn fail(message: String) -> ComposeError {
    ComposeError {
        message,
        line: None,
    }
}

/// Parses a compose file at `file` (repository-relative) into the images it builds.
pub fn parse(text: &str, file: &str) -> Result<Vec<ImageDef>, ComposeError> {
    let doc: Value = serde_norway::from_str(text).map_err(|err| ComposeError {
        message: err.to_string(),
        line: err.location().map(|loc| loc.line()),
    })?;
    let Some(services) = top_level(&doc)?.get("services") else {
        return Ok(Vec::new());
    };
    let services = services
        .as_mapping()
        .ok_or_else(|| fail("`services` must be a mapping".into()))?;
    let project_dir = paths::parent(file);
    let mut images = Vec::new();
    for (name, service) in services {
        let name = name
            .as_str()
            .ok_or_else(|| fail("service names must be strings".into()))?;
        if let Some(build) = service.get("build") {
            images.push(service_image(name, service, build, project_dir, file)?);
        }
    }
    Ok(images)
}

/// The document's top-level mapping. Compose refuses anything else; ignoring it would plan a
/// repository without the images the file was meant to define. An empty file defines nothing.
fn top_level(doc: &Value) -> Result<&serde_norway::Mapping, ComposeError> {
    static EMPTY: std::sync::LazyLock<serde_norway::Mapping> =
        std::sync::LazyLock::new(serde_norway::Mapping::new);
    let kind = match doc {
        Value::Mapping(mapping) => return Ok(mapping),
        Value::Null => return Ok(&EMPTY),
        Value::Sequence(_) => "a sequence",
        Value::Tagged(_) => "a tagged value",
        Value::String(_) | Value::Number(_) | Value::Bool(_) => "a scalar",
    };
    Err(fail(format!(
        "the top level must be a mapping (`services:` …), not {kind}"
    )))
}

fn service_image(
    name: &str,
    service: &Value,
    build: &Value,
    project_dir: &str,
    file: &str,
) -> Result<ImageDef, ComposeError> {
    let at = |key: &str| format!("services.{name}.build.{key}");
    let context_rel = match build {
        Value::String(context) => context.clone(),
        Value::Mapping(_) => {
            opt_string(build, "context", &at("context"))?.unwrap_or_else(|| ".".into())
        }
        _ => {
            return Err(fail(format!(
                "services.{name}.build must be a string or a mapping"
            )));
        }
    };
    let context = local_path(project_dir, &context_rel, &at("context"))?;
    let dockerfile_rel =
        opt_string(build, "dockerfile", &at("dockerfile"))?.unwrap_or_else(|| "Dockerfile".into());
    let dockerfile = local_path(&context, &dockerfile_rel, &at("dockerfile"))?;
    let image = opt_string(service, "image", &format!("services.{name}.image"))?;
    Ok(ImageDef {
        name: name.to_string(),
        repository: image
            .as_deref()
            .map_or_else(|| name.to_string(), super::repository_of),
        context,
        dockerfile,
        target: opt_string(build, "target", &at("target"))?,
        args: key_values(build.get("args"), &at("args"))?,
        tags: string_list(build.get("tags"), &at("tags"))?,
        platforms: platforms(build.get("platforms"), &at("platforms"))?,
        inputs: Vec::new(),
        depends_on: Vec::new(),
        contexts: named_contexts(
            build.get("additional_contexts"),
            project_dir,
            &at("additional_contexts"),
        )?,
        origin: Origin::Compose(file.to_string()),
    })
}

fn local_path(base: &str, rel: &str, at: &str) -> Result<String, ComposeError> {
    paths::join(base, rel).ok_or_else(|| fail(format!("{at}: {rel:?} leaves the repository")))
}

fn opt_string(map: &Value, key: &str, at: &str) -> Result<Option<String>, ComposeError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => scalar(value)
            .map(Some)
            .ok_or_else(|| fail(format!("{at} must be a string"))),
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string_list(value: Option<&Value>, at: &str) -> Result<Vec<String>, ComposeError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let items = value
        .as_sequence()
        .ok_or_else(|| fail(format!("{at} must be a list")))?;
    items
        .iter()
        .map(|item| scalar(item).ok_or_else(|| fail(format!("{at} must hold strings"))))
        .collect()
}

/// A list of platforms, each `os/arch[/variant]`.
fn platforms(value: Option<&Value>, at: &str) -> Result<Vec<String>, ComposeError> {
    let list = string_list(value, at)?;
    for platform in &list {
        crate::settings::file::check_platform(platform).map_err(|e| fail(format!("{at}: {e}")))?;
    }
    Ok(list)
}

/// Compose's two spellings of a mapping: `{K: V}` or `["K=V", "K"]` (a bare `K` has no value and
/// is left out, as Compose leaves it to the environment, which buildopt does not read for args).
fn key_values(value: Option<&Value>, at: &str) -> Result<BTreeMap<String, String>, ComposeError> {
    let mut out = BTreeMap::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(map)) => {
            for (key, value) in map {
                let key = scalar(key).ok_or_else(|| fail(format!("{at}: keys must be strings")))?;
                if let Some(value) = scalar(value) {
                    out.insert(key, value);
                }
            }
        }
        Some(Value::Sequence(items)) => {
            for item in items {
                let item =
                    scalar(item).ok_or_else(|| fail(format!("{at}: items must be strings")))?;
                if let Some((key, value)) = item.split_once('=') {
                    out.insert(key.to_string(), value.to_string());
                }
            }
        }
        Some(_) => return Err(fail(format!("{at} must be a mapping or a list"))),
    }
    Ok(out)
}

fn named_contexts(
    value: Option<&Value>,
    project_dir: &str,
    at: &str,
) -> Result<BTreeMap<String, NamedContext>, ComposeError> {
    key_values(value, at)?
        .into_iter()
        .map(|(name, raw)| {
            let context = super::named_context(&raw, project_dir)
                .ok_or_else(|| fail(format!("{at}.{name}: {raw:?} leaves the repository")))?;
            Ok((name, context))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_build_forms() {
        let text = r#"
services:
  core:
    build: ./core
    image: registry.local/acme/core:1.0
  api:
    image: api
    build:
      context: services/api
      dockerfile: ../../docker/api.Dockerfile
      target: runtime
      args:
        VERSION: 2
        MODE: prod
      additional_contexts:
        shared: ./shared
        base: service:core
        tools: docker-image://alpine:3
  db:
    image: postgres:16
"#;
        let images = parse(text, "deploy/compose.yaml").expect("valid");
        assert_eq!(images.len(), 2);
        let api = images.iter().find(|i| i.name == "api").expect("api");
        assert_eq!(api.context, "deploy/services/api");
        assert_eq!(api.dockerfile, "deploy/docker/api.Dockerfile");
        assert_eq!(api.target.as_deref(), Some("runtime"));
        assert_eq!(api.args["VERSION"], "2");
        assert_eq!(
            api.contexts["shared"],
            NamedContext::Local("deploy/shared".into())
        );
        assert_eq!(api.contexts["base"], NamedContext::Sibling("core".into()));
        assert_eq!(
            api.contexts["tools"],
            NamedContext::Image("alpine:3".into())
        );
        let core = images.iter().find(|i| i.name == "core").expect("core");
        assert_eq!(
            (core.context.as_str(), core.dockerfile.as_str()),
            ("deploy/core", "deploy/core/Dockerfile")
        );
        assert_eq!(core.repository, "registry.local/acme/core");
    }

    #[test]
    fn list_form_args() {
        let text = "services:\n  a:\n    build:\n      context: .\n      args: [\"A=1\", \"B\"]\n";
        let images = parse(text, "compose.yaml").expect("valid");
        assert_eq!(images[0].args.len(), 1);
        assert_eq!(images[0].context, "");
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let bad_yaml =
            parse("services:\n  a:\n    build: [\n", "compose.yaml").expect_err("bad yaml");
        assert!(bad_yaml.line.is_some());
        let escape =
            parse("services:\n  a:\n    build: ../../x\n", "compose.yaml").expect_err("escape");
        assert!(
            escape.message.contains("services.a.build.context"),
            "{escape}"
        );
        let wrong = parse("services:\n  a:\n    build: 3\n", "compose.yaml").expect_err("type");
        assert!(wrong.message.contains("services.a.build"), "{wrong}");
        let platform = parse(
            "services:\n  a:\n    build:\n      context: .\n      platforms: [amd64]\n",
            "compose.yaml",
        )
        .expect_err("platform");
        assert!(
            platform
                .message
                .contains("services.a.build.platforms: platform \"amd64\" is not os/arch"),
            "{platform}"
        );
        let args = parse(
            "services:\n  a:\n    build:\n      args: 5\n",
            "compose.yaml",
        )
        .expect_err("args");
        assert!(args.message.contains("args"), "{args}");
        assert!(parse("services: [1]\n", "compose.yaml").is_err());
    }

    #[test]
    fn no_services_means_no_images() {
        assert!(
            parse("version: '3'\n", "compose.yaml")
                .expect("ok")
                .is_empty()
        );
    }

    #[test]
    fn a_top_level_that_is_not_a_mapping_is_an_error_and_an_empty_file_defines_nothing() {
        for (text, kind) in [
            ("- web\n", "a sequence"),
            ("text\n", "a scalar"),
            ("3\n", "a scalar"),
        ] {
            let err = parse(text, "compose.yaml").expect_err(text);
            assert!(err.message.contains(kind), "{err}");
        }
        assert_eq!(parse("", "compose.yaml").expect("empty"), Vec::new());
    }
}
