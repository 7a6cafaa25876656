//! buildopt: builds only the container images whose inputs changed, in dependency order, and
//! explains why.
//!
//! The flow is `settings` → `ci` + `git` → `workspace` (images, Dockerfiles, contexts) → `plan`
//! (affected images, levels) → `report` (pure renderers) → `notify` (publishers). Module docs say
//! what each one owns.

pub mod ci;
pub mod env;
pub mod exit;
pub mod git;
pub mod settings;
pub mod workspace;
