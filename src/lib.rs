//! buildopt: builds only the container images whose inputs changed, in dependency order, and
//! explains why.
//!
//! The flow is `settings` → `ci` + `git` → `workspace` (images, Dockerfiles, contexts) → `plan`
//! (affected images, levels) → `run` (the build run on an engine, with the cache) → `report` (pure
//! renderers) → `notify` (publishers); `commands` is glue over them, one module per subcommand.
//! Module docs say what each one owns; `docs/architecture.md` what each may import.

pub mod benchmark;
pub mod cache;
pub mod ci;
pub mod cli;
pub mod commands;
pub mod console;
pub mod context;
pub mod engine;
pub mod env;
pub mod error;
pub mod exit;
pub mod git;
pub mod image_archive;
pub mod notify;
pub mod plan;
pub mod report;
pub mod run;
pub mod scan;
pub mod scheduler;
pub mod settings;
#[cfg(test)]
mod structure;
pub mod workspace;
