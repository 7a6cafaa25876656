//! When to retry an HTTP call, and how long to wait first. Pure: the caller passes the attempt,
//! the answer's status and headers, the clock and a random number.
//!
//! The rules (GitHub's "Rate limits for the REST API", octokit's throttling and retry plugins):
//!
//! - a rate limit is retried, whatever the method, because the server did not act on the request:
//!   429, or 403 with `retry-after`, with `x-ratelimit-remaining: 0`, or with "secondary rate
//!   limit" in the body. The wait is `retry-after` seconds, else until `x-ratelimit-reset`, else
//!   60 s for a secondary limit without either header. A wait over [`RetryPolicy::max_wait`] is not
//!   shortened (retrying early while limited can get an integration banned): the call fails;
//! - a 5xx, a timeout or a broken connection is retried with exponential backoff and jitter, but
//!   only for idempotent calls: a retried POST after a 502 can post a comment twice;
//! - a refused connection is retried for every call (nothing was sent);
//! - any other 4xx is final.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many times and how long to retry. Tests shrink the durations to milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The backoff before the second attempt; it doubles per attempt, up to `max_backoff`.
    pub base: Duration,
    pub max_backoff: Duration,
    /// The longest wait a rate-limit header may ask for.
    pub max_wait: Duration,
    /// The wait for a secondary rate limit that names no time.
    pub secondary_fallback: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_wait: Duration::from_secs(120),
            secondary_fallback: Duration::from_secs(60),
        }
    }
}

/// What came back from one attempt, as far as retrying cares.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// An HTTP answer.
    Answer {
        status: u16,
        retry_after: Option<&'a str>,
        ratelimit_remaining: Option<&'a str>,
        ratelimit_reset: Option<&'a str>,
        body: &'a str,
    },
    /// The connection could not be made: the request was never sent.
    ConnectFailed,
    /// A timeout or a connection broken after the request may have been sent.
    Interrupted,
}

/// The decision after one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Success, or a final failure: hand the outcome to the caller.
    Stop,
    /// Wait, then try again.
    RetryAfter(Duration),
    /// Rate limited for longer than the policy waits.
    WaitTooLong(Duration),
}

impl RetryPolicy {
    /// Decides after attempt number `attempt` (1-based). `random` in `[0, 1)` spreads backoffs.
    pub fn decide(
        &self,
        attempt: u32,
        outcome: Outcome<'_>,
        idempotent: bool,
        now: SystemTime,
        random: f64,
    ) -> Decision {
        let wait = match outcome {
            Outcome::ConnectFailed => Some(self.backoff(attempt, random)),
            Outcome::Interrupted => idempotent.then(|| self.backoff(attempt, random)),
            Outcome::Answer { status, .. } if (200..400).contains(&status) => None,
            Outcome::Answer { .. } => match self.rate_limit_wait(&outcome, now) {
                Some(wait) if wait > self.max_wait => return Decision::WaitTooLong(wait),
                Some(wait) => Some(wait),
                None => {
                    (is_server_error(&outcome) && idempotent).then(|| self.backoff(attempt, random))
                }
            },
        };
        match wait {
            Some(wait) if attempt < self.max_attempts => Decision::RetryAfter(wait),
            _ => Decision::Stop,
        }
    }

    /// Exponential backoff with "equal jitter": between half and all of `base · 2^(attempt-1)`.
    fn backoff(&self, attempt: u32, random: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(16);
        let full = self
            .base
            .saturating_mul(1 << exponent)
            .min(self.max_backoff);
        full / 2 + full.mul_f64(random.clamp(0.0, 1.0) / 2.0)
    }

    /// The wait a rate-limited answer asks for; `None` when the answer is not a rate limit.
    fn rate_limit_wait(&self, outcome: &Outcome<'_>, now: SystemTime) -> Option<Duration> {
        let Outcome::Answer {
            status,
            retry_after,
            ratelimit_remaining,
            ratelimit_reset,
            body,
        } = *outcome
        else {
            return None;
        };
        if status != 429 && status != 403 {
            return None;
        }
        if let Some(seconds) = retry_after.and_then(parse_seconds) {
            return Some(Duration::from_secs(seconds));
        }
        if ratelimit_remaining.map(str::trim) == Some("0")
            && let Some(reset) = ratelimit_reset.and_then(parse_seconds)
        {
            let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            // One second more: the reset time is rounded down to a whole second.
            return Some(Duration::from_secs(reset.saturating_sub(now) + 1));
        }
        let secondary = body.to_ascii_lowercase().contains("secondary rate limit");
        (status == 429 || secondary || retry_after.is_some()).then_some(self.secondary_fallback)
    }
}

fn is_server_error(outcome: &Outcome<'_>) -> bool {
    matches!(outcome, Outcome::Answer { status, .. } if *status >= 500)
}

fn parse_seconds(raw: &str) -> Option<u64> {
    raw.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(100),
            max_backoff: Duration::from_millis(250),
            max_wait: Duration::from_secs(90),
            secondary_fallback: Duration::from_secs(60),
        }
    }

    fn answer(status: u16) -> Outcome<'static> {
        Outcome::Answer {
            status,
            retry_after: None,
            ratelimit_remaining: None,
            ratelimit_reset: None,
            body: "",
        }
    }

    fn decide(attempt: u32, outcome: Outcome<'_>, idempotent: bool) -> Decision {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        policy().decide(attempt, outcome, idempotent, now, 0.0)
    }

    #[test]
    fn success_and_plain_client_errors_are_final() {
        for status in [200, 201, 204, 400, 401, 403, 404, 410, 422] {
            assert_eq!(decide(1, answer(status), true), Decision::Stop, "{status}");
        }
    }

    #[test]
    fn server_errors_back_off_exponentially_up_to_the_cap_and_attempts() {
        let wait = |attempt| decide(attempt, answer(502), true);
        assert_eq!(wait(1), Decision::RetryAfter(Duration::from_millis(50)));
        assert_eq!(wait(2), Decision::RetryAfter(Duration::from_millis(100)));
        assert_eq!(wait(3), Decision::Stop, "attempts used up");
        let capped = RetryPolicy {
            max_attempts: 10,
            ..policy()
        };
        let now = UNIX_EPOCH;
        let Decision::RetryAfter(wait) = capped.decide(6, answer(500), true, now, 0.999) else {
            panic!("must retry");
        };
        assert!(wait > Duration::from_millis(245) && wait < Duration::from_millis(250));
    }

    #[test]
    fn non_idempotent_calls_are_not_retried_after_they_may_have_been_processed() {
        assert_eq!(decide(1, answer(502), false), Decision::Stop);
        assert_eq!(decide(1, Outcome::Interrupted, false), Decision::Stop);
        assert!(matches!(
            decide(1, Outcome::ConnectFailed, false),
            Decision::RetryAfter(_)
        ));
        assert!(matches!(
            decide(1, Outcome::Interrupted, true),
            Decision::RetryAfter(_)
        ));
    }

    #[test]
    fn rate_limits_wait_as_the_headers_say_even_for_posts() {
        let retry_after = Outcome::Answer {
            status: 429,
            retry_after: Some("7"),
            ratelimit_remaining: None,
            ratelimit_reset: None,
            body: "",
        };
        assert_eq!(
            decide(1, retry_after, false),
            Decision::RetryAfter(Duration::from_secs(7))
        );
        let primary = Outcome::Answer {
            status: 403,
            retry_after: None,
            ratelimit_remaining: Some("0"),
            ratelimit_reset: Some("1030"),
            body: "API rate limit exceeded",
        };
        assert_eq!(
            decide(1, primary, false),
            Decision::RetryAfter(Duration::from_secs(31))
        );
        let secondary = Outcome::Answer {
            status: 403,
            retry_after: None,
            ratelimit_remaining: Some("12"),
            ratelimit_reset: None,
            body: r#"{"message":"You have exceeded a secondary rate limit."}"#,
        };
        assert_eq!(
            decide(1, secondary, true),
            Decision::RetryAfter(Duration::from_secs(60))
        );
    }

    #[test]
    fn a_wait_over_the_cap_is_not_shortened() {
        let long = Outcome::Answer {
            status: 403,
            retry_after: None,
            ratelimit_remaining: Some("0"),
            ratelimit_reset: Some("4600"),
            body: "",
        };
        assert_eq!(
            decide(1, long, true),
            Decision::WaitTooLong(Duration::from_secs(3601))
        );
    }
}
