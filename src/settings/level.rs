//! The optimization levels and the one table of what each level sets: every default a level
//! decides is read from [`Level::profile`], and the levels table of docs/configuration.md is generated from it.

use std::fmt;
use std::str::FromStr;

/// The optimization level: a bundle of defaults that explicit settings override.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Minimal,
    Medium,
    Maximum,
    Ci,
}

/// How many images a level builds at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parallelism {
    One,
    PerCpu,
}

/// What one level sets. Columns for features that do not exist yet are `false` (off) until
/// their feature reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelProfile {
    /// Plan only what changed.
    pub selective: bool,
    pub jobs: Parallelism,
    /// Restore and save the build cache.
    pub cache: bool,
    /// Also cache the intermediate stages of multi-stage Dockerfiles (when caching is on).
    pub stages: bool,
    /// The console prints plain timestamped lines even on a terminal.
    pub plain_console: bool,
    /// Scan the built images for vulnerabilities.
    pub scan: bool,
    /// Lint the Dockerfiles.
    pub lint: bool,
    /// Keep the history of runs for trends.
    pub history: bool,
    /// Reports beyond the run report `build` prints and `ci` writes.
    pub reports: bool,
}

const fn profile(selective: bool, jobs: Parallelism, cache: bool, stages: bool) -> LevelProfile {
    LevelProfile {
        selective,
        jobs,
        cache,
        stages,
        plain_console: false,
        scan: false,
        lint: false,
        history: false,
        reports: false,
    }
}

impl Level {
    /// Every level, from the least to the most work.
    pub const ALL: [Self; 4] = [Self::Minimal, Self::Medium, Self::Maximum, Self::Ci];

    /// What this level sets.
    pub const fn profile(self) -> LevelProfile {
        match self {
            Self::Minimal => profile(false, Parallelism::One, false, false),
            Self::Medium => profile(true, Parallelism::PerCpu, true, false),
            Self::Maximum => LevelProfile {
                scan: true,
                ..profile(true, Parallelism::PerCpu, true, true)
            },
            Self::Ci => LevelProfile {
                plain_console: true,
                scan: true,
                ..profile(true, Parallelism::PerCpu, true, false)
            },
        }
    }

    /// Whether the level plans only what changed.
    pub fn selective(self) -> bool {
        self.profile().selective
    }

    /// How many images build at once by default.
    pub fn jobs(self, cpus: usize) -> usize {
        match self.profile().jobs {
            Parallelism::One => 1,
            Parallelism::PerCpu => cpus.max(1),
        }
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|level| level.to_string() == name)
            .ok_or_else(|| "expected one of minimal, medium, maximum, ci".into())
    }
}

impl Level {
    /// The level's name as settings and reports spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minimal => "minimal",
            Self::Medium => "medium",
            Self::Maximum => "maximum",
            Self::Ci => "ci",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The levels table of docs/configuration.md (without markers).
pub fn levels_table() -> String {
    let on = |value: bool| if value { "on" } else { "off" };
    let mut table = String::from(
        "| level | selective | jobs | cache | intermediate stages | plain console | scan | lint | history | reports |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for level in Level::ALL {
        let p = level.profile();
        let jobs = match p.jobs {
            Parallelism::One => "1",
            Parallelism::PerCpu => "one per CPU",
        };
        table.push_str(&format!(
            "| `{level}` | {} | {jobs} | {} | {} | {} | {} | {} | {} | {} |\n",
            on(p.selective),
            on(p.cache),
            on(p.stages),
            on(p.plain_console),
            on(p.scan),
            on(p.lint),
            on(p.history),
            on(p.reports),
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for level in Level::ALL {
            assert_eq!(level.to_string().parse::<Level>(), Ok(level));
        }
        assert_eq!(" CI ".parse::<Level>(), Ok(Level::Ci));
        assert!("turbo".parse::<Level>().is_err());
    }

    #[test]
    fn the_table_holds_the_documented_defaults() {
        assert!(!Level::Minimal.selective() && Level::Medium.selective());
        assert_eq!((Level::Minimal.jobs(8), Level::Ci.jobs(8)), (1, 8));
        assert!(!Level::Minimal.profile().cache && Level::Ci.profile().cache);
        assert!(Level::Maximum.profile().stages && !Level::Medium.profile().stages);
        let table = levels_table();
        assert!(table.contains("| `minimal` | off | 1 | off |"), "{table}");
        assert_eq!(table.lines().count(), 2 + Level::ALL.len());
    }
}
