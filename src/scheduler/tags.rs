//! Image references: tag templates (`{sha}`, `{short_sha}`, `{branch}`, `{tag}`) expanded into
//! `repo:tag` names, and splitting a reference into repository and tag.

use std::collections::BTreeSet;

/// The values templates may use; `None` means the run does not know it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagVars {
    pub sha: Option<String>,
    pub short_sha: Option<String>,
    pub branch: Option<String>,
    pub tag: Option<String>,
}

/// A tag that cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// The template uses a value this run does not have (e.g. `{tag}` on a branch build).
    #[error(
        "tag template {template:?} of image '{image}' needs {{{variable}}}, which this run does not have{hint}"
    )]
    Unresolved {
        image: String,
        template: String,
        variable: String,
        hint: &'static str,
    },
    /// The template names a variable that does not exist.
    #[error(
        "tag template {template:?} of image '{image}' uses unknown {{{variable}}} (known: sha, short_sha, branch, tag)"
    )]
    Unknown {
        image: String,
        template: String,
        variable: String,
    },
    /// The result is not a valid Docker tag.
    #[error(
        "tag {tag:?} of image '{image}' is not a valid Docker tag (letters, digits, `_`, `.`, `-`; at most 128; not starting with `.` or `-`)"
    )]
    Invalid { image: String, tag: String },
}

/// Every `repo:tag` an image gets: `<repository>:latest`, each expanded template (a template
/// with its own repository, `other/name:{sha}`, names that repository; a bare one is a tag of the
/// image's repository), and `<repository>:<extra>` for `--tag`. Duplicates are dropped.
pub fn image_tags(
    image: &str,
    repository: &str,
    templates: &[String],
    extra: &[String],
    vars: &TagVars,
) -> Result<Vec<String>, TagError> {
    let mut seen = BTreeSet::new();
    let mut tags = Vec::new();
    let mut add = |reference: String| {
        if seen.insert(reference.clone()) {
            tags.push(reference);
        }
    };
    add(format!("{repository}:latest"));
    for template in templates {
        let expanded = expand(image, template, vars)?;
        let (repo, tag) = match split_reference(&expanded) {
            (repo, Some(tag)) => (repo, tag),
            (_, None) => (repository.to_string(), expanded.clone()),
        };
        check_tag(image, &tag)?;
        add(format!("{repo}:{tag}"));
    }
    for extra in extra {
        let tag = expand(image, extra, vars)?;
        check_tag(image, &tag)?;
        add(format!("{repository}:{tag}"));
    }
    Ok(tags)
}

/// Replaces each `{name}` of `template`.
pub fn expand(image: &str, template: &str, vars: &TagVars) -> Result<String, TagError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return Ok(out);
        };
        let variable = &after[..close];
        out.push_str(&value(image, template, variable, vars)?);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn value(image: &str, template: &str, variable: &str, vars: &TagVars) -> Result<String, TagError> {
    let (found, hint) = match variable {
        "sha" => (vars.sha.clone(), ""),
        "short_sha" => (vars.short_sha.clone(), ""),
        // A branch name may hold `/`, which a tag may not: `feature/x` becomes `feature-x`.
        "branch" => (
            vars.branch.as_deref().map(sanitize),
            " (a detached HEAD outside CI has no branch)",
        ),
        "tag" => (
            vars.tag.as_deref().map(sanitize),
            " ({tag} is known only when a git tag triggered the run)",
        ),
        _ => {
            return Err(TagError::Unknown {
                image: image.into(),
                template: template.into(),
                variable: variable.into(),
            });
        }
    };
    found.ok_or_else(|| TagError::Unresolved {
        image: image.into(),
        template: template.into(),
        variable: variable.into(),
        hint,
    })
}

fn sanitize(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn check_tag(image: &str, tag: &str) -> Result<(), TagError> {
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(TagError::Invalid {
            image: image.into(),
            tag: tag.into(),
        })
    }
}

/// Splits `repo[:tag][@digest]` into the repository and the tag (a `:` inside a registry host
/// such as `127.0.0.1:5000/app` is not a tag).
pub fn split_reference(reference: &str) -> (String, Option<String>) {
    let without_digest = reference
        .split_once('@')
        .map_or(reference, |(repo, _)| repo);
    match without_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), Some(tag.to_string())),
        _ => (without_digest.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TagVars {
        TagVars {
            sha: Some("0123456789abcdef".into()),
            short_sha: Some("0123456".into()),
            branch: Some("feature/login".into()),
            tag: None,
        }
    }

    #[test]
    fn latest_templates_and_extra_tag_in_order_without_duplicates() {
        let templates = vec![
            "{short_sha}".to_string(),
            "example/api:{branch}".to_string(),
            "latest".to_string(),
        ];
        let tags =
            image_tags("api", "acme/api", &templates, &["v1".into()], &vars()).expect("tags");
        assert_eq!(
            tags,
            [
                "acme/api:latest",
                "acme/api:0123456",
                "example/api:feature-login",
                "acme/api:v1"
            ]
        );
    }

    #[test]
    fn an_unknown_value_is_a_clear_error() {
        let err = image_tags("api", "api", &["{tag}".into()], &[], &vars()).expect_err("no tag");
        let text = err.to_string();
        assert!(text.contains("{tag}") && text.contains("'api'"), "{text}");
        let err = expand("api", "{commit}", &vars()).expect_err("unknown");
        assert!(matches!(err, TagError::Unknown { .. }), "{err}");
    }

    #[test]
    fn an_invalid_tag_is_refused() {
        let err = image_tags("api", "api", &[], &["-bad".into()], &vars()).expect_err("invalid");
        assert!(matches!(err, TagError::Invalid { .. }));
    }

    #[test]
    fn references_split_at_the_tag_not_the_registry_port() {
        assert_eq!(split_reference("core"), ("core".into(), None));
        assert_eq!(
            split_reference("core:1.0"),
            ("core".into(), Some("1.0".into()))
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/app"),
            ("127.0.0.1:5000/app".into(), None)
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/app:v2@sha256:ab"),
            ("127.0.0.1:5000/app".into(), Some("v2".into()))
        );
    }
}
