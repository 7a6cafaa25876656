//! Fitting a SARIF log to GitHub's upload limits.
//!
//! Owns: the limits on runs per file and results per run (GitHub refuses a file over them:
//! "SARIF results exceed limit") and trimming to them. Within a run the most severe results are
//! kept (`level`: error, warning, note, none; SARIF's default is warning), in their original
//! order; beyond 20 runs, the runs whose worst result is the most severe are kept. What was left
//! out is counted, so the caller can say so. A file within the limits is not touched.

use serde_json::Value;

/// Runs GitHub accepts in one SARIF file.
pub const MAX_RUNS: usize = 20;

/// Results GitHub accepts in one run (it shows the first 5,000).
pub const MAX_RESULTS_PER_RUN: usize = 25_000;

/// What [`fit`] left out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Trimmed {
    /// Whole runs dropped (their results are not in `results_left_out`).
    pub runs_left_out: usize,
    /// Results dropped from the runs that stayed.
    pub results_left_out: usize,
    /// Results in the dropped runs.
    pub results_in_runs_left_out: usize,
}

impl Trimmed {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// `N of the results were left out …`, for the file `name`.
    pub fn note(&self, name: &str) -> String {
        let total = self.results_left_out + self.results_in_runs_left_out;
        format!(
            "{name} was over GitHub's SARIF limits ({MAX_RUNS} runs, {MAX_RESULTS_PER_RUN} \
             results per run): {total} results left out ({} runs dropped, {} results of the \
             least severe kind cut from the others); the most severe were uploaded",
            self.runs_left_out, self.results_left_out
        )
    }
}

/// Trims `log` (a parsed SARIF log) to GitHub's limits and says what it left out.
pub fn fit(log: &mut Value) -> Trimmed {
    let mut trimmed = Trimmed::default();
    let Some(runs) = log.get_mut("runs").and_then(Value::as_array_mut) else {
        return trimmed;
    };
    if runs.len() > MAX_RUNS {
        let mut keep = most_severe(runs, MAX_RUNS, run_severity).into_iter();
        runs.retain(|run| {
            let keep = keep.next().unwrap_or(false);
            if !keep {
                trimmed.runs_left_out += 1;
                trimmed.results_in_runs_left_out += results(run).map_or(0, Vec::len);
            }
            keep
        });
    }
    for run in runs.iter_mut() {
        let Some(results) = run.get_mut("results").and_then(Value::as_array_mut) else {
            continue;
        };
        if results.len() > MAX_RESULTS_PER_RUN {
            trimmed.results_left_out += results.len() - MAX_RESULTS_PER_RUN;
            let mut keep = most_severe(results, MAX_RESULTS_PER_RUN, severity).into_iter();
            results.retain(|_| keep.next().unwrap_or(false));
        }
    }
    trimmed
}

/// Per item, whether it is among the `limit` ranked highest by `rank` (ties: the earlier).
fn most_severe(items: &[Value], limit: usize, rank: fn(&Value) -> u8) -> Vec<bool> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    // Stable: among equally severe items the earlier stay.
    order.sort_by_key(|&i| std::cmp::Reverse(rank(&items[i])));
    let mut keep = vec![false; items.len()];
    for &index in order.iter().take(limit) {
        keep[index] = true;
    }
    keep
}

fn results(run: &Value) -> Option<&Vec<Value>> {
    run.get("results").and_then(Value::as_array)
}

/// A result's `level` as a rank: error 3, warning 2 (also when absent), note 1, none 0.
fn severity(result: &Value) -> u8 {
    match result.get("level").and_then(Value::as_str) {
        Some("error") => 3,
        Some("note") => 1,
        Some("none") => 0,
        _ => 2,
    }
}

/// A run's rank: its most severe result's (0 when it has none).
fn run_severity(run: &Value) -> u8 {
    results(run)
        .and_then(|results| results.iter().map(severity).max())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn result(level: &str, n: usize) -> Value {
        json!({"level": level, "message": {"text": format!("r{n}")}, "ruleId": "x"})
    }

    fn run(results: Vec<Value>) -> Value {
        json!({"tool": {"driver": {"name": "t"}}, "results": results})
    }

    #[test]
    fn a_log_within_the_limits_is_untouched() {
        let mut log = json!({"version": "2.1.0", "runs": [run(vec![result("note", 0)])]});
        let before = log.clone();
        assert!(fit(&mut log).is_empty());
        assert_eq!(log, before);
    }

    #[test]
    fn a_run_over_the_result_limit_keeps_the_most_severe_in_order() {
        let mut results: Vec<Value> = (0..MAX_RESULTS_PER_RUN)
            .map(|n| result("note", n))
            .collect();
        results.insert(10, result("error", 99_999));
        results.push(result("warning", 100_000));
        results.push(json!({"message": {"text": "no level"}}));
        let mut log = json!({"runs": [run(results)]});
        let trimmed = fit(&mut log);
        assert_eq!(trimmed.results_left_out, 3);
        let kept = log["runs"][0]["results"].as_array().expect("results");
        assert_eq!(kept.len(), MAX_RESULTS_PER_RUN);
        assert_eq!(kept[10]["level"], "error", "order kept");
        let levels: Vec<&str> = kept.iter().filter_map(|r| r["level"].as_str()).collect();
        assert!(levels.contains(&"warning"));
        assert_eq!(kept.last().expect("last")["message"]["text"], "no level");
    }

    #[test]
    fn beyond_twenty_runs_the_least_severe_runs_are_dropped() {
        let mut runs: Vec<Value> = (0..MAX_RUNS + 2)
            .map(|n| run(vec![result("warning", n)]))
            .collect();
        runs[3] = run(vec![result("note", 3), result("note", 4)]);
        runs[7] = run(vec![]);
        let mut log = json!({"runs": runs});
        let trimmed = fit(&mut log);
        assert_eq!(
            trimmed,
            Trimmed {
                runs_left_out: 2,
                results_left_out: 0,
                results_in_runs_left_out: 2
            }
        );
        assert_eq!(log["runs"].as_array().expect("runs").len(), MAX_RUNS);
        assert!(trimmed.note("scan.sarif").contains("2 results left out"));
    }
}
