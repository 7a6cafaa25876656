//! Renderers: pure functions from data to text. They never touch the network, the environment
//! or the clock. `model.rs` holds the RunReport that every renderer of a build reads.
//!
//! One file per format: `plan` and `run` for the terminal and JSON; `summary` (job summary and
//! PR comment Markdown), `annotations` (GitHub workflow commands), `junit`, `dotenv` (GitLab),
//! `outputs` (GitHub step outputs), `slack` and `html` (a self-contained page with charts) for CI;
//! `escape` holds the escaping every CI format shares. A scan's inventory has its own:
//! `scan_text` (the terminal summary), `sbom_cyclonedx` (CycloneDX 1.6 JSON) and `sbom_spdx`
//! (SPDX 2.3 JSON), all three snapshotting the inventory of `scan_fixtures`.
//! `escape` holds the escaping every CI format shares.
//!
//! A scan's findings: `scan_sarif` (GitHub code scanning, one run per image), `scan_junit` (one
//! test case per image) and `gitlab_container_scanning` (GitLab's security report).

pub mod annotations;
pub mod benchmark;
pub mod dotenv;
pub mod escape;
pub mod findings_section;
pub mod gitlab_container_scanning;
pub mod html;
pub mod junit;
pub mod model;
pub mod outputs;
pub mod plan;
pub mod run;
pub mod sbom_cyclonedx;
pub mod sbom_spdx;
#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
pub mod scan_fixtures;
pub mod scan_junit;
pub mod scan_sarif;
pub mod scan_text;
pub mod slack;
pub mod summary;

#[cfg(test)]
pub(crate) mod findings_fixtures;
#[cfg(test)]
pub(crate) mod fixtures;
