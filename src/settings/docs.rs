//! The settings' documentation, generated from the table in `vars.rs`: the settings part of
//! `--help` and the settings and levels tables of [`TABLES_DOC`]. Tests check that the page
//! holds the generated tables and that the CI wrappers (`action.yml`, the GitLab component and template, the Jenkins
//! step) offer and pass exactly the table's settings.

use super::level::levels_table;
use super::vars::{SETTING_VARS, SettingVar};

/// The reference page that holds the generated tables.
pub const TABLES_DOC: &str = "docs/configuration.md";

/// A part of the reference (docs/configuration.md) generated from a table in code, between two marker lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocSection {
    pub begin: &'static str,
    pub end: &'static str,
    /// What goes between the markers.
    pub body: String,
}

impl DocSection {
    /// `text` with this section's part replaced by the generated one; `None` when the markers
    /// are missing.
    pub fn apply(&self, text: &str) -> Option<String> {
        let start = text.find(self.begin)? + self.begin.len();
        let end = start + text[start..].find(self.end)?;
        Some(format!("{}\n{}{}", &text[..start], self.body, &text[end..]))
    }
}

/// The reference's generated sections: the settings table and the levels table.
pub fn doc_sections() -> [DocSection; 2] {
    [
        DocSection {
            begin: "<!-- settings table: generated from src/settings/vars.rs -->",
            end: "<!-- end of the settings table -->",
            body: settings_table(),
        },
        DocSection {
            begin: "<!-- levels table: generated from src/settings/level.rs -->",
            end: "<!-- end of the levels table -->",
            body: levels_table(),
        },
    ]
}

/// What `--help` says about settings, after the flags: each setting's names and default on one
/// line, its meaning indented below (short lines, so that help wrapping leaves them alone).
pub fn help_text() -> String {
    let mut text = String::from(
        "Settings: a flag wins over BUILDOPT_<NAME>, then the legacy name (in parentheses), then\n\
         the action's INPUT_<NAME> in GitHub Actions, then buildopt.toml, then the default.\n",
    );
    for setting in SETTING_VARS {
        text.push_str(&format!(
            "  {}{}\n      {}\n",
            help_name(setting),
            help_default(setting),
            setting.help
        ));
    }
    text.push_str(
        "The daemon: DOCKER_HOST, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY; registry credentials\n\
         also from DOCKER_CONFIG.\n\
         Exit codes: 0 success, 1 a build failed, 2 usage or configuration error, 3 policy\n\
         gate failed, 4 environment (git, daemon), 5 a publisher failed with\n\
         BUILDOPT_FAIL_ON_NOTIFY_ERROR on.",
    );
    text
}

fn help_name(setting: &SettingVar) -> String {
    match setting.legacy {
        Some(legacy) => format!("{} ({legacy})", setting.buildopt),
        None => setting.buildopt.to_string(),
    }
}

fn help_default(setting: &SettingVar) -> String {
    match setting.default {
        "none" => String::new(),
        default => format!(" [default: {}]", default.replace('`', "")),
    }
}

/// The reference's settings table.
pub fn settings_table() -> String {
    let mut table = String::from(
        "| setting | `BUILDOPT_` name | legacy name | action input | `buildopt.toml` key | default | meaning |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for setting in SETTING_VARS {
        let code = |value: Option<&str>| value.map(|v| format!("`{v}`")).unwrap_or_default();
        table.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} | {} |\n",
            setting.setting,
            setting.buildopt,
            code(setting.legacy),
            code(setting.action_input),
            code(setting.file_key),
            setting.default,
            setting.help.replace('|', "\\|"),
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use serde_json::Value;

    use super::*;
    use crate::settings::file;

    fn repo_file(rel: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
    }

    fn read(rel: &str) -> String {
        std::fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn yaml(text: &str, what: &str) -> Value {
        serde_norway::from_str(text).unwrap_or_else(|e| panic!("{what} is not YAML: {e}"))
    }

    #[test]
    fn the_configuration_doc_tables_are_the_generated_ones() {
        let readme = read(TABLES_DOC);
        let mut expected = readme.clone();
        for section in doc_sections() {
            expected = section
                .apply(&expected)
                .unwrap_or_else(|| panic!("{TABLES_DOC} lacks the markers {}", section.begin));
        }
        if expected == readme {
            return;
        }
        if std::env::var_os("BUILDOPT_BLESS").is_some_and(|v| v == "1") {
            std::fs::write(repo_file(TABLES_DOC), expected).expect("write the settings doc");
            return;
        }
        let tables: Vec<String> = doc_sections()
            .into_iter()
            .map(|s| format!("{}\n{}{}", s.begin, s.body, s.end))
            .collect();
        panic!(
            "{TABLES_DOC}'s generated tables differ from src/settings/ (BUILDOPT_BLESS=1 cargo test \
             --lib configuration_doc rewrites them); expected:\n{}",
            tables.join("\n\n")
        );
    }

    #[test]
    fn a_section_replaces_only_what_is_between_its_markers() {
        let section = DocSection {
            begin: "<!-- b -->",
            end: "<!-- e -->",
            body: "new\n".into(),
        };
        let text = "before\n<!-- b -->\nold\n<!-- e -->\nafter\n";
        let replaced = section.apply(text).expect("markers");
        assert_eq!(replaced, "before\n<!-- b -->\nnew\n<!-- e -->\nafter\n");
        assert_eq!(section.apply(&replaced).as_deref(), Some(replaced.as_str()));
        assert_eq!(section.apply("no markers"), None);
    }

    #[test]
    fn help_lists_every_setting_with_its_legacy_name_and_default() {
        let help = help_text();
        for setting in SETTING_VARS {
            let lines: Vec<&str> = help.lines().collect();
            let at = lines
                .iter()
                .position(|line| line.trim_start().starts_with(setting.buildopt))
                .unwrap_or_else(|| panic!("{} missing from --help:\n{help}", setting.buildopt));
            let line = lines[at];
            assert_eq!(lines[at + 1].trim(), setting.help, "{line}");
            if let Some(legacy) = setting.legacy {
                assert!(line.contains(&format!("({legacy})")), "{line}");
            }
        }
        assert!(help.contains("BUILDOPT_CACHE_RETENTION_DAYS (CACHE_RETENTION_DAYS)"));
        assert!(help.contains("[default: 7]"), "{help}");
    }

    #[test]
    fn every_names_is_unique_and_follows_the_convention() {
        let mut seen = BTreeSet::new();
        for setting in SETTING_VARS {
            for name in [setting.setting, setting.buildopt, setting.input] {
                assert!(seen.insert(name), "{name} twice in the table");
            }
            assert!(
                setting.buildopt.starts_with("BUILDOPT_"),
                "{}",
                setting.buildopt
            );
            assert!(setting.input.starts_with("INPUT_"), "{}", setting.input);
            assert!(!setting.help.is_empty(), "{} has no help", setting.setting);
        }
    }

    #[test]
    fn every_file_key_is_a_key_of_buildopt_toml() {
        for key in SETTING_VARS.iter().filter_map(|s| s.file_key) {
            let text = match key.split_once('.') {
                Some((table, key)) => format!("[{table}]\n{key} = 0\n"),
                None => format!("{key} = 0\n"),
            };
            // A known key with the wrong type fails on the type, an unknown one on its name.
            if let Err(err) = file::parse(&text, std::path::Path::new("buildopt.toml")) {
                assert!(!err.message.contains("unknown field"), "{key}: {err}");
            }
        }
    }

    /// Inputs that configure the action's own steps, not a setting (`vulndb-ecosystems` is
    /// a flag of `scan --setup`, passed by the action's setup step).
    const ACTION_ONLY_INPUTS: [&str; 4] = [
        "version",
        "sha256",
        "working-directory",
        "vulndb-ecosystems",
    ];

    #[test]
    fn action_yml_offers_and_passes_exactly_the_table_s_inputs() {
        let action = yaml(&read("action.yml"), "action.yml");
        let inputs: BTreeSet<&str> = action["inputs"]
            .as_object()
            .expect("inputs")
            .keys()
            .map(String::as_str)
            .filter(|input| !ACTION_ONLY_INPUTS.contains(input))
            .collect();
        let table: BTreeSet<&str> = SETTING_VARS.iter().filter_map(|s| s.action_input).collect();
        assert_eq!(
            inputs, table,
            "action.yml inputs against the settings table"
        );
        let run = action["runs"]["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|step| step["id"] == "run")
            .expect("the step that runs buildopt ci");
        for setting in SETTING_VARS {
            let Some(input) = setting.action_input else {
                continue;
            };
            let passed = run["env"][setting.input].as_str().unwrap_or_default();
            assert_eq!(
                passed,
                format!("${{{{ inputs.{input} }}}}"),
                "action.yml must pass input {input} as {}",
                setting.input
            );
        }
    }

    /// The component's inputs that shape its job rather than a setting.
    const COMPONENT_ONLY_INPUTS: [&str; 6] = [
        "job-name",
        "stage",
        "image",
        "dind-image",
        "cache-archive",
        "git-depth",
    ];

    /// The one variable the job scripts read themselves: the archive GitLab's cache carries.
    const JOB_ONLY_VARIABLES: [&str; 1] = ["BUILDOPT_CACHE_ARCHIVE"];

    #[test]
    fn the_gitlab_component_s_inputs_are_the_table_s() {
        let text = read("templates/buildopt.yml");
        let (header, job) = text.split_once("\n---\n").expect("spec header and job");
        let header = yaml(header, "the component's spec");
        let inputs = header["spec"]["inputs"].as_object().expect("spec.inputs");
        let job = yaml(job, "the component's job");
        let job = job
            .as_object()
            .and_then(|j| j.values().next())
            .expect("one job");
        let variables = job["variables"].as_object().expect("variables");
        for (name, value) in variables.iter().filter(|(n, _)| n.starts_with("BUILDOPT_")) {
            if JOB_ONLY_VARIABLES.contains(&name.as_str()) {
                continue;
            }
            let setting = SETTING_VARS
                .iter()
                .find(|s| s.buildopt == name)
                .unwrap_or_else(|| panic!("the component sets {name}, which is not a setting"));
            let input = setting
                .action_input
                .expect("a setting the component offers");
            let value = value.as_str().unwrap_or_default();
            assert!(
                value.contains(&format!("$[[ inputs.{input} ]]")),
                "{name} must come from input {input}: {value}"
            );
            assert!(inputs.contains_key(input), "input {input} missing");
        }
        for input in inputs.keys() {
            let offered = SETTING_VARS.iter().any(|s| s.action_input == Some(input));
            assert!(
                offered || COMPONENT_ONLY_INPUTS.contains(&input.as_str()),
                "component input {input} is neither a setting nor the job's own"
            );
        }
        let levels: Vec<&str> = inputs["level"]["options"]
            .as_array()
            .expect("level options")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let known: Vec<String> = crate::settings::Level::ALL
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(levels, known, "the component's levels");
    }

    #[test]
    fn the_jenkins_step_sets_only_settings_of_the_table() {
        let step = read("jenkins/vars/buildopt.groovy");
        let names = regex::Regex::new(r"BUILDOPT_[A-Z_]+").expect("pattern");
        let set: BTreeSet<&str> = names.find_iter(&step).map(|m| m.as_str()).collect();
        assert!(set.contains("BUILDOPT_SLACK_ON"), "{set:?}");
        for name in set {
            assert!(
                SETTING_VARS.iter().any(|s| s.buildopt == name),
                "the Jenkins step sets {name}, which is not a setting"
            );
        }
    }

    #[test]
    fn the_gitlab_template_sets_only_settings_of_the_table() {
        let template = yaml(
            &read("gitlab/buildopt.gitlab-ci.yml"),
            "the GitLab template",
        );
        let job = &template[".buildopt"];
        let variables = job["variables"].as_object().expect(".buildopt variables");
        for name in variables.keys().filter(|n| n.starts_with("BUILDOPT_")) {
            assert!(
                JOB_ONLY_VARIABLES.contains(&name.as_str())
                    || SETTING_VARS.iter().any(|s| s.buildopt == name),
                "the template sets {name}, which is not a setting"
            );
        }
    }
}
