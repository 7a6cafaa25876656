//! How bad an OSV record says an issue is.
//!
//! Owns the CVSS base score of a record's vectors and the level a finding reports. A record's
//! rating is the highest CVSS base score among its `severity[]` and the `severity[]` of the
//! `affected[]` entries that matched, scored by the `cvss` crate (v3.0, v3.1 and v4.0; only the
//! base metrics count, so a v4 vector's threat metric `E:` does not lower the score, and v2
//! vectors are not used: their scale has no "critical"). A record without a usable vector
//! falls back to its database's own word: GitHub's `database_specific.severity`
//! (`LOW`, `MODERATE`, `HIGH`, `CRITICAL`) or Ubuntu's priority (`"type": "Ubuntu"`). Debian's
//! urgency (`ecosystem_specific.urgency`) is the security team's triage, not a severity, and is
//! never read. An issue made of several records takes the highest level and the highest score.

use std::str::FromStr;

use super::model::Severity;
use super::osv::{Affected, Record};

/// The severity of one record or one merged issue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rating {
    pub level: Severity,
    /// The highest CVSS base score, when a vector could be scored.
    pub score: Option<f64>,
}

impl Rating {
    pub const UNKNOWN: Self = Self {
        level: Severity::Unknown,
        score: None,
    };

    /// The higher level and the higher score of the two.
    pub fn max(self, other: Self) -> Self {
        Self {
            level: self.level.max(other.level),
            score: higher_score(self.score, other.score),
        }
    }
}

/// The rating of `record` for the `entries` of its `affected[]` that matched a package.
pub fn rate_record(record: &Record, entries: &[&Affected]) -> Rating {
    let vectors = record
        .severity
        .iter()
        .chain(entries.iter().flat_map(|entry| &entry.severity));
    let score = vectors
        .filter_map(|severity| base_score(&severity.kind, &severity.score))
        .fold(None, |best, score| higher_score(best, Some(score)));
    if let Some(score) = score {
        return Rating {
            level: level_of_score(score),
            score: Some(score),
        };
    }
    Rating {
        level: own_word(record).unwrap_or(Severity::Unknown),
        score: None,
    }
}

/// The CVSS base score of an OSV `severity[]` entry (`CVSS_V3` with a `CVSS:3.0/` or
/// `CVSS:3.1/` vector, `CVSS_V4` with a `CVSS:4.0/` one); `None` for other types and for
/// vectors that are incomplete or malformed.
pub fn base_score(kind: &str, vector: &str) -> Option<f64> {
    // The whole vector must be valid; only its base metrics are scored.
    let score = match kind {
        "CVSS_V3" => {
            cvss::v3::Vector::from_str(vector).ok()?;
            let base = base_vector(vector, &["CVSS:3.0", "CVSS:3.1"], V3_BASE_METRICS)?;
            cvss::v3::Vector::from_str(&base).ok()?.base_score().value()
        }
        "CVSS_V4" => {
            cvss::v4::Vector::from_str(vector).ok()?;
            let base = base_vector(vector, &["CVSS:4.0"], V4_BASE_METRICS)?;
            cvss::v4::Vector::from_str(&base).ok()?.score().value()
        }
        _ => return None,
    };
    (0.0..=10.0).contains(&score).then_some(score)
}

/// The level of a CVSS score: 9.0 and up critical, 7.0 high, 4.0 medium, below that low. A
/// score of 0.0 (CVSS "none") is reported as low: "unknown" means no data, and a level filter
/// must be able to drop it.
pub fn level_of_score(score: f64) -> Severity {
    match score {
        s if s >= 9.0 => Severity::Critical,
        s if s >= 7.0 => Severity::High,
        s if s >= 4.0 => Severity::Medium,
        _ => Severity::Low,
    }
}

/// A database's own severity word: GitHub's (`MODERATE` is medium) or Ubuntu's priority
/// (`negligible` is low); `None` for words that are not a severity (`untriaged`).
pub fn level_of_word(word: &str) -> Option<Severity> {
    match word.trim().to_ascii_lowercase().as_str() {
        "critical" => Some(Severity::Critical),
        "high" | "important" => Some(Severity::High),
        "moderate" | "medium" => Some(Severity::Medium),
        "low" | "negligible" => Some(Severity::Low),
        _ => None,
    }
}

const V3_BASE_METRICS: &[&str] = &["AV", "AC", "PR", "UI", "S", "C", "I", "A"];
const V4_BASE_METRICS: &[&str] = &[
    "AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA",
];

/// The vector cut to its prefix and base metrics, each present exactly once; `None` when the
/// prefix is not one of `prefixes` or a base metric is missing or repeated.
fn base_vector(vector: &str, prefixes: &[&str], base_metrics: &[&str]) -> Option<String> {
    let mut parts = vector.trim().split('/');
    let prefix = parts.next()?;
    if !prefixes.contains(&prefix) {
        return None;
    }
    let mut found: Vec<&str> = Vec::with_capacity(base_metrics.len());
    for part in parts {
        let (metric, _) = part.split_once(':')?;
        if base_metrics.contains(&metric) {
            if found
                .iter()
                .any(|seen| seen.starts_with(&format!("{metric}:")))
            {
                return None;
            }
            found.push(part);
        }
    }
    if found.len() != base_metrics.len() {
        return None;
    }
    Some(format!("{prefix}/{}", found.join("/")))
}

/// The record's own word: GitHub's `database_specific.severity`, else an Ubuntu priority.
fn own_word(record: &Record) -> Option<Severity> {
    let github = record
        .database_specific
        .as_ref()
        .and_then(|specific| specific.get("severity"))
        .and_then(serde_json::Value::as_str)
        .and_then(level_of_word);
    github.or_else(|| {
        record
            .severity
            .iter()
            .filter(|severity| severity.kind == "Ubuntu")
            .filter_map(|severity| level_of_word(&severity.score))
            .max()
    })
}

fn higher_score(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> Record {
        serde_json::from_str(json).unwrap()
    }

    /// Base scores from the Python `cvss` package 3.6 (Red Hat's implementation of FIRST's
    /// specifications), run on the same vectors; most are the real records' vectors.
    #[test]
    fn base_scores_agree_with_an_independent_implementation() {
        let cases = [
            (
                "CVSS_V3",
                "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:L/A:N",
                3.3,
            ),
            (
                "CVSS_V3",
                "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:H/A:N",
                5.5,
            ),
            (
                "CVSS_V3",
                "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N",
                5.6,
            ),
            (
                "CVSS_V3",
                "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:H/I:N/A:N",
                5.3,
            ),
            (
                "CVSS_V3",
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H",
                8.8,
            ),
            (
                "CVSS_V3",
                "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N",
                6.1,
            ),
            (
                "CVSS_V3",
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L",
                5.3,
            ),
            (
                "CVSS_V3",
                "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
                10.0,
            ),
            (
                "CVSS_V3",
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N",
                0.0,
            ),
            // Temporal metrics do not change the base score.
            (
                "CVSS_V3",
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:U",
                9.8,
            ),
            (
                "CVSS_V4",
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:H/VA:N/SC:N/SI:N/SA:N",
                8.7,
            ),
            (
                "CVSS_V4",
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H",
                10.0,
            ),
            (
                "CVSS_V4",
                "CVSS:4.0/AV:L/AC:L/AT:P/PR:L/UI:P/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N",
                1.0,
            ),
        ];
        for (kind, vector, score) in cases {
            assert_eq!(base_score(kind, vector), Some(score), "{vector}");
        }
    }

    /// GHSA-5rjg-fvgr-3xxf's only vector carries the threat metric `E:P` (its CVSS-BT score is
    /// 7.7); the base score leaves it out.
    #[test]
    fn a_v4_vector_scores_its_base_metrics_only() {
        let vector = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:H/VA:N/SC:N/SI:N/SA:N/E:P";
        assert_eq!(base_score("CVSS_V4", vector), Some(8.7));
    }

    #[test]
    fn levels_follow_the_cvss_bands() {
        let cases = [
            (10.0, Severity::Critical),
            (9.0, Severity::Critical),
            (8.9, Severity::High),
            (7.0, Severity::High),
            (6.9, Severity::Medium),
            (4.0, Severity::Medium),
            (3.9, Severity::Low),
            (0.1, Severity::Low),
            (0.0, Severity::Low),
        ];
        for (score, level) in cases {
            assert_eq!(level_of_score(score), level, "{score}");
        }
        assert_eq!(level_of_word("MODERATE"), Some(Severity::Medium));
        assert_eq!(level_of_word("critical"), Some(Severity::Critical));
        assert_eq!(level_of_word("negligible"), Some(Severity::Low));
        assert_eq!(level_of_word("untriaged"), None);
        assert_eq!(level_of_word(""), None);
    }

    #[test]
    fn malformed_vectors_score_nothing_and_never_panic() {
        let huge = format!("CVSS:3.1/AV:N{}", "/AV:N".repeat(10_000));
        let bad = [
            ("CVSS_V3", ""),
            ("CVSS_V3", "garbage"),
            ("CVSS_V3", "CVSS:3.1"),
            ("CVSS_V3", "CVSS:3.1/"),
            ("CVSS_V3", "CVSS:3.1/AV:N"),
            ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H"),
            (
                "CVSS_V3",
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/A:L",
            ),
            ("CVSS_V3", "CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A"),
            ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H:H"),
            ("CVSS_V3", "CVSS:3.2/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            ("CVSS_V3", "AV:N/AC:L/Au:N/C:P/I:P/A:P"),
            (
                "CVSS_V3",
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:H/VA:N/SC:N/SI:N/SA:N",
            ),
            ("CVSS_V4", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            (
                "CVSS_V4",
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:H/VA:N/SC:N/SI:N",
            ),
            (
                "CVSS_V4",
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:H/VA:N/SC:N/SI:N/SA:Z",
            ),
            (
                "CVSS_V4",
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:H/VA:N/SC:N/SI:N/SA:N/E:Z",
            ),
            ("CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P/A:P"),
            ("Ubuntu", "high"),
            ("", ""),
            ("CVSS_V3", huge.as_str()),
            ("CVSS_V3", "CVSS:3.1/💥:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
        ];
        for (kind, vector) in bad {
            assert_eq!(base_score(kind, vector), None, "{kind} {vector}");
        }
    }

    /// Random vectors over the metrics' alphabet: no panic, and a score is always in 0..=10.
    #[test]
    fn random_vectors_never_panic() {
        const PARTS: &[&str] = &[
            "AV:N", "AV:L", "AC:L", "AC:H", "AT:N", "AT:P", "PR:N", "PR:H", "UI:N", "UI:P", "UI:R",
            "S:U", "S:C", "C:H", "I:L", "A:N", "VC:H", "VI:L", "VA:N", "SC:H", "SI:N", "SA:L",
            "E:P", "E:X", "MAV:N", "CR:H", "X", ":", "", "AV:", "Q:Q",
        ];
        let mut state: u64 = 0x0c55;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let prefix = ["CVSS:3.1", "CVSS:3.0", "CVSS:4.0"][(next() % 3) as usize];
            let count = next() % 16;
            let parts: Vec<&str> = (0..count)
                .map(|_| PARTS[(next() % PARTS.len() as u64) as usize])
                .collect();
            let vector = format!("{prefix}/{}", parts.join("/"));
            for kind in ["CVSS_V3", "CVSS_V4"] {
                if let Some(score) = base_score(kind, &vector) {
                    assert!((0.0..=10.0).contains(&score), "{vector}");
                }
            }
        }
    }

    #[test]
    fn a_vector_beats_the_word_and_the_word_beats_nothing() {
        let both = record(
            r#"{"id": "GHSA-x", "modified": "x", "database_specific": {"severity": "CRITICAL"},
                "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"}]}"#,
        );
        assert_eq!(
            rate_record(&both, &[]),
            Rating {
                level: Severity::Medium,
                score: Some(5.3)
            }
        );
        let word = record(
            r#"{"id": "GHSA-y", "modified": "x", "database_specific": {"severity": "MODERATE"},
                "severity": [{"type": "CVSS_V3", "score": "not a vector"}]}"#,
        );
        assert_eq!(
            rate_record(&word, &[]),
            Rating {
                level: Severity::Medium,
                score: None
            }
        );
        let nothing =
            record(r#"{"id": "X", "modified": "x", "database_specific": {"severity": ["HIGH"]}}"#);
        assert_eq!(rate_record(&nothing, &[]), Rating::UNKNOWN);
        let odd_word =
            record(r#"{"id": "X", "modified": "x", "database_specific": {"severity": "SEVERE"}}"#);
        assert_eq!(rate_record(&odd_word, &[]), Rating::UNKNOWN);
    }

    #[test]
    fn debian_urgency_is_not_a_severity_and_ubuntu_priority_is() {
        let debian = record(
            r#"{"id": "DEBIAN-CVE-2099-1", "modified": "x", "affected": [
                {"package": {"ecosystem": "Debian:12", "name": "zlib"},
                 "ecosystem_specific": {"urgency": "high"},
                 "database_specific": {"severity": "HIGH"}}]}"#,
        );
        let entries: Vec<&Affected> = debian.affected.iter().collect();
        assert_eq!(rate_record(&debian, &entries), Rating::UNKNOWN);
        let ubuntu = record(
            r#"{"id": "UBUNTU-CVE-2099-1", "modified": "x",
                "severity": [{"type": "Ubuntu", "score": "negligible"}]}"#,
        );
        assert_eq!(rate_record(&ubuntu, &[]).level, Severity::Low);
    }

    #[test]
    fn an_affected_entrys_vector_counts_and_the_highest_score_wins() {
        let record = record(
            r#"{"id": "X", "modified": "x",
                "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"}],
                "affected": [{"package": {"ecosystem": "npm", "name": "a"},
                  "severity": [{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H"}]}]}"#,
        );
        let entries: Vec<&Affected> = record.affected.iter().collect();
        assert_eq!(
            rate_record(&record, &entries),
            Rating {
                level: Severity::Critical,
                score: Some(10.0)
            }
        );
        assert_eq!(rate_record(&record, &[]).score, Some(5.3));
        let merged = rate_record(&record, &[]).max(Rating {
            level: Severity::High,
            score: None,
        });
        assert_eq!(
            merged,
            Rating {
                level: Severity::High,
                score: Some(5.3)
            }
        );
    }
}
