//! Resolved settings: what every command reads, already validated.
//!
//! [`RunSettings`] holds every setting of a run (core, cache, pipeline, scan, notifications) and the
//! CI facts; it is resolved once, before the command does any work, so an invalid value fails
//! with exit 2 before anything reaches the daemon or the network. `build --benchmark` resolves
//! one per level it measures.
//!
//! Precedence, highest first, for each setting:
//!
//! 1. command-line flags;
//! 2. `BUILDOPT_<NAME>` environment variables;
//! 3. the legacy names the original scripts used (`OPTIMIZATION_LEVEL`, `SELECTIVE_BUILD`,
//!    `FORCE_REBUILD`, `VERBOSE`, `CACHE_RETENTION_DAYS`, ...; `CI_MODE=true` selects `ci`);
//! 4. GitHub Actions inputs, `INPUT_<NAME>` (read only in GitHub Actions);
//! 5. `buildopt.toml`;
//! 6. the defaults, some of them the level's ([`level`]).
//!
//! Every setting has one row in the table of `vars.rs` (names, action input, file key, default,
//! help); `--help`, the settings table of docs/configuration.md and the wrapper checks come from it (`docs.rs`).
//! A new setting gets its row there and its field in one of the resolved groups. Resolution takes
//! the flags, the environment snapshot and the parsed file; the only thing it reads besides them
//! is GitHub's event payload.

pub mod cache;
pub mod docs;
pub mod file;
mod flags;
pub mod level;
pub mod notify;
pub mod pipeline;
mod resolve;
pub mod run;
pub mod scan;
mod vars;

pub use level::Level;
pub use resolve::{ConfigError, Flags, SelectionMode, Settings, Source};
pub use run::{ResolveError, RunFlags, RunSettings};
pub use vars::{SETTING_VARS, SettingVar};
