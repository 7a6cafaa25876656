//! Resolved settings: what every command reads, already validated.
//!
//! Precedence, highest first, for each setting:
//!
//! 1. command-line flags;
//! 2. `BUILDOPT_<NAME>` environment variables;
//! 3. the legacy names the original scripts used (`OPTIMIZATION_LEVEL`, `SELECTIVE_BUILD`,
//!    `FORCE_REBUILD`, `VERBOSE`, `CI_MODE`);
//! 4. GitHub Actions inputs, `INPUT_<NAME>` (read only when `GITHUB_ACTIONS=true`);
//! 5. `buildopt.toml`;
//! 6. the defaults of the optimization level.
//!
//! Resolution is pure: [`Settings::resolve`] takes the flags, the environment snapshot and the
//! parsed file, and never touches the process.

pub mod cache;
pub mod docs;
pub mod file;
mod flags;
pub mod level;
pub mod notify;
pub mod pipeline;
mod resolve;
pub mod run;
mod vars;

pub use level::Level;
pub use resolve::{ConfigError, Flags, Settings, Source};
pub use run::{ResolveError, RunFlags, RunSettings};
pub use vars::{SETTING_VARS, SettingVar};
