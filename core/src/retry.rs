//! The retry policy: which failures are tried again, after how long, and when to give up.
//! One function, [`RetryPolicy::decide`], holds every rule, and the table tests below pin them.
//!
//! - 429 `DAILY`: never retried (the limit resets at midnight in the account's time zone).
//! - 429 otherwise: wait `Retry-After` when given, else until the rate window rolls, plus
//!   jitter; bounded by the deadline, not by `max_retries` (other programs sharing the app's
//!   limit cause them), unless `max_retries` is 0. A 429 with no usable wait (`Retry-After: 0`,
//!   and a window that this client sees as open) backs off like any retry, growing with each
//!   attempt, with jitter, up to the rate window's length.
//! - 423 Locked: at least 2 s (HubSpot's advice for heavy upserting on one record).
//! - 477 Migration in Progress: `Retry-After`, only when it fits in the deadline.
//! - 500, 502, 503, 504, 521-524 and transient transport failures (refused or reset
//!   connections, timeouts: the upsert is idempotent): exponential backoff with full jitter,
//!   or `Retry-After` when given.
//! - Anything else (400, 401, 403, 404, 409, TLS certificate problems...): no retry.
//!
//! Retries are bounded by `max_retries` and by `deadline`, the time one call may take in all:
//! a wait that would end past the deadline is not begun.

use crate::error::FailureKind;
use std::time::Duration;

/// HubSpot's advice for 423 Locked.
pub(crate) const LOCKED_MIN_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so at most `max_retries + 1` attempts).
    pub max_retries: u32,
    /// The longest one call may take, waits included.
    pub deadline: Duration,
    /// The backoff ceiling of the first retry; it doubles with each retry.
    pub backoff_base: Duration,
    /// The largest backoff ceiling.
    pub backoff_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            deadline: Duration::from_secs(120),
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
        }
    }
}

/// What went wrong with one attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Failure<'a> {
    Status {
        status: u16,
        retry_after: Option<Duration>,
        /// 429's `policyName`.
        policy: Option<&'a str>,
    },
    /// No usable answer, of this kind (a retry mends only transient kinds: not TLS
    /// certificates or a bad proxy URL).
    Transport { kind: FailureKind },
}

impl Failure<'_> {
    /// Whether this kind of failure is ever retried (time and count limits aside).
    pub(crate) fn retryable(&self) -> bool {
        match *self {
            Failure::Status {
                status: 429,
                policy,
                ..
            } => policy != Some("DAILY"),
            Failure::Status { status, .. } => {
                matches!(status, 423 | 477 | 500 | 502 | 503 | 504 | 521..=524)
            }
            Failure::Transport { kind } => kind.transient(),
        }
    }
}

/// The rate window as the pacer sees it when an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Room {
    /// How long until the window has room for one more request.
    pub(crate) wait: Duration,
    /// The window's length (HubSpot's `Interval-Milliseconds`, else 10 s).
    pub(crate) window: Duration,
}

/// A wait shorter than this is not a usable answer to a 429: retrying at once would only
/// spend the budget on more of them.
pub(crate) const MIN_USABLE_WAIT: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Decision {
    RetryAfter(Duration),
    GiveUp(&'static str),
}

impl RetryPolicy {
    /// The backoff ceiling after `attempts` attempts: `backoff_base`, doubling, capped.
    fn ceiling(&self, attempts: u32) -> Duration {
        let doubling = 2u32.saturating_pow(attempts.saturating_sub(1).min(30));
        self.backoff_base
            .saturating_mul(doubling)
            .min(self.backoff_cap)
    }

    /// Whether to try again after `attempts` attempts that took `elapsed` so far.
    /// `room` is the rate window as the pacer sees it (for a 429 without `Retry-After`);
    /// `jitter` is a random number in `[0, 1)`.
    pub(crate) fn decide(
        &self,
        failure: Failure<'_>,
        attempts: u32,
        elapsed: Duration,
        room: Room,
        jitter: f64,
    ) -> Decision {
        let jitter = jitter.clamp(0.0, 1.0);
        let backoff = self.ceiling(attempts).mul_f64(jitter);
        let wait = match failure {
            Failure::Status {
                status: 429,
                policy: Some("DAILY"),
                ..
            } => return Decision::GiveUp("the daily limit is reached; it resets at midnight"),
            Failure::Status {
                status: 429,
                retry_after,
                ..
            } => {
                if self.max_retries == 0 {
                    return Decision::GiveUp("max_retries is 0");
                }
                let usable = retry_after
                    .or(Some(room.wait))
                    .filter(|w| *w >= MIN_USABLE_WAIT);
                let wait = match usable {
                    // Jitter, so that programs sharing the limit do not come back in step.
                    Some(base) => {
                        let spread = (base / 2).clamp(MIN_USABLE_WAIT, Duration::from_secs(1));
                        base + spread.mul_f64(jitter)
                    }
                    // Nothing says how long: back off, growing, never past the window's length
                    // (by then the window has rolled). Half of it fixed, so that it grows.
                    None => {
                        let ceiling = self.ceiling(attempts).min(room.window).max(MIN_USABLE_WAIT);
                        ceiling / 2 + (ceiling / 2).mul_f64(jitter)
                    }
                };
                // Other programs using the same app cause these: they slow a call down, and
                // only the deadline ends it, not max_retries.
                if elapsed + wait > self.deadline {
                    return Decision::GiveUp("the wait would end past the deadline");
                }
                return Decision::RetryAfter(wait);
            }
            Failure::Status {
                status: 423,
                retry_after,
                ..
            } => retry_after.unwrap_or(backoff).max(LOCKED_MIN_WAIT),
            Failure::Status { retry_after, .. } if failure.retryable() => {
                retry_after.unwrap_or(backoff)
            }
            Failure::Status { .. } => return Decision::GiveUp("the status is not one to retry"),
            Failure::Transport { kind } if !kind.transient() => {
                return Decision::GiveUp("the failure is not transient")
            }
            Failure::Transport { .. } => backoff,
        };
        if attempts > self.max_retries {
            return Decision::GiveUp("max_retries is reached");
        }
        if elapsed + wait > self.deadline {
            return Decision::GiveUp("the wait would end past the deadline");
        }
        Decision::RetryAfter(wait)
    }
}

/// Reads `Retry-After`: seconds (HubSpot's form), or an HTTP date (`Wed, 21 Oct 2015
/// 07:28:00 GMT`), as the time from `now` until then (zero for a date in the past).
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)));
    }
    let at = http_date(value)?;
    let now = now.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// An HTTP date in its preferred form (RFC 9110 IMF-fixdate, `Sun, 06 Nov 1994 08:49:37
/// GMT`), as seconds since the Unix epoch.
fn http_date(text: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let rest = text.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: u64 = day.parse().ok()?;
    let month = MONTHS.iter().position(|m| m == month)? as u64 + 1;
    let year: u64 = year.parse().ok()?;
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || year < 1970 || *h > 23 || *m > 59 || *s > 60 {
        return None;
    }
    // Days since the epoch of a civil date (Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn status(status: u16, retry_after: Option<Duration>, policy: Option<&str>) -> Failure<'_> {
        Failure::Status {
            status,
            retry_after,
            policy,
        }
    }

    #[test]
    #[rustfmt::skip]
    fn table() {
        let p = RetryPolicy::default();
        let transient = Failure::Transport {
            kind: FailureKind::Reset,
        };
        let not_retried = Decision::GiveUp("the status is not one to retry");
        let past_deadline = Decision::GiveUp("the wait would end past the deadline");
        // (failure, attempts so far, elapsed, window wait, jitter) -> decision
        let cases: Vec<(Failure<'_>, u32, Duration, Duration, f64, Decision)> = vec![
            // Never retried.
            (status(400, None, None), 1, S(0), S(0), 0.5, not_retried),
            (status(401, None, None), 1, S(0), S(0), 0.5, not_retried),
            (status(403, None, None), 1, S(0), S(0), 0.5, not_retried),
            (status(404, None, None), 1, S(0), S(0), 0.5, not_retried),
            (status(409, None, None), 1, S(0), S(0), 0.5, not_retried),
            (status(302, None, None), 1, S(0), S(0), 0.5, not_retried),
            (status(501, None, None), 1, S(0), S(0), 0.5, not_retried),
            (Failure::Transport { kind: FailureKind::Tls }, 1, S(0), S(0), 0.5, Decision::GiveUp("the failure is not transient")),
            (status(429, Some(S(1)), Some("DAILY")), 1, S(0), S(0), 0.5, Decision::GiveUp("the daily limit is reached; it resets at midnight")),
            // 429: Retry-After wins, else the window; plus jitter of up to half of that (50 ms
            // to 1 s), and max_retries does not count them.
            (status(429, Some(S(3)), Some("TEN_SECONDLY_ROLLING")), 1, S(0), S(9), 0.5, Decision::RetryAfter(MS(3500))),
            (status(429, Some(S(1)), None), 1, S(0), S(9), 0.5, Decision::RetryAfter(MS(1250))),
            (status(429, None, Some("TEN_SECONDLY_ROLLING")), 1, S(0), S(4), 0.5, Decision::RetryAfter(MS(4500))),
            (status(429, None, Some("TEN_SECONDLY_ROLLING")), 40, S(0), S(1), 0.0, Decision::RetryAfter(S(1))),
            (status(429, None, Some("SECONDLY")), 1, S(0), MS(800), 0.0, Decision::RetryAfter(MS(800))),
            (status(429, None, None), 1, S(0), S(20), 0.99, Decision::RetryAfter(MS(20990))),
            // 423: at least 2 s.
            (status(423, None, None), 1, S(0), S(0), 0.1, Decision::RetryAfter(S(2))),
            (status(423, Some(S(5)), None), 1, S(0), S(0), 0.1, Decision::RetryAfter(S(5))),
            // 477: Retry-After only within the deadline.
            (status(477, Some(S(60)), None), 1, S(0), S(0), 0.5, Decision::RetryAfter(S(60))),
            (status(477, Some(S(3600)), None), 1, S(0), S(0), 0.5, past_deadline),
            // 5xx and transport: full jitter under a doubling ceiling (0.5, 1, 2, 4, 8... s).
            (status(500, None, None), 1, S(0), S(0), 0.5, Decision::RetryAfter(MS(250))),
            (status(502, None, None), 2, S(0), S(0), 0.5, Decision::RetryAfter(MS(500))),
            (status(503, None, None), 3, S(0), S(0), 1.0, Decision::RetryAfter(S(2))),
            (status(504, None, None), 4, S(0), S(0), 0.0, Decision::RetryAfter(S(0))),
            (status(521, None, None), 5, S(0), S(0), 0.5, Decision::RetryAfter(S(4))),
            (status(524, None, None), 1, S(0), S(0), 0.5, Decision::RetryAfter(MS(250))),
            (status(503, Some(S(7)), None), 1, S(0), S(0), 0.5, Decision::RetryAfter(S(7))),
            (transient, 1, S(0), S(0), 0.5, Decision::RetryAfter(MS(250))),
            // Bounds.
            (transient, 6, S(0), S(0), 0.5, Decision::GiveUp("max_retries is reached")),
            (status(503, Some(S(30)), None), 1, S(100), S(0), 0.5, past_deadline),
            (status(429, Some(S(121)), None), 1, S(0), S(0), 0.5, past_deadline),
        ];
        for (failure, attempts, elapsed, wait, jitter, want) in cases {
            let room = Room { wait, window: S(10) };
            assert_eq!(p.decide(failure, attempts, elapsed, room, jitter), want, "{failure:?} attempt {attempts}");
        }
    }

    #[test]
    fn a_429_with_no_usable_wait_backs_off_growing_up_to_the_window() {
        let p = RetryPolicy::default();
        let f = status(429, Some(S(0)), Some("TEN_SECONDLY_ROLLING"));
        let room = Room {
            wait: S(0),
            window: S(10),
        };
        let waits: Vec<Duration> = (1..=7)
            .map(|n| match p.decide(f, n, S(0), room, 0.0) {
                Decision::RetryAfter(w) => w,
                other => panic!("{other:?}"),
            })
            .collect();
        // Half the doubling ceiling at the least (0.5, 1, 2, 4, 8 s...), never past the window.
        assert_eq!(waits, [MS(250), MS(500), S(1), S(2), S(4), S(5), S(5)]);
        assert_eq!(
            p.decide(f, 7, S(0), room, 0.99),
            Decision::RetryAfter(MS(9950))
        );
        // A window of 2 s bounds it to 2 s; a wait of 10 ms from the pacer is no wait either.
        let short = Room {
            wait: MS(10),
            window: S(2),
        };
        assert_eq!(p.decide(f, 9, S(0), short, 1.0), Decision::RetryAfter(S(2)));
        // Over 120 s (the deadline) that is a few dozen attempts, not thousands.
        let (mut elapsed, mut attempts) = (S(0), 0);
        while let Decision::RetryAfter(w) = p.decide(f, attempts + 1, elapsed, room, 0.0) {
            elapsed += w;
            attempts += 1;
        }
        assert!((20..40).contains(&attempts), "{attempts}");
    }

    #[test]
    fn retryable_classes() {
        for status in [423, 429, 477, 500, 502, 503, 504, 521, 522, 523, 524] {
            assert!(status_failure(status).retryable(), "{status}");
        }
        for status in [200, 302, 400, 401, 403, 404, 409, 418, 501, 505, 520, 525] {
            assert!(!status_failure(status).retryable(), "{status}");
        }
        assert!(!status(429, None, Some("DAILY")).retryable());
        for kind in [
            FailureKind::Connect,
            FailureKind::Timeout,
            FailureKind::Reset,
            FailureKind::Body,
        ] {
            assert!(Failure::Transport { kind }.retryable(), "{kind:?}");
        }
        for kind in [FailureKind::Tls, FailureKind::Oversize, FailureKind::Config] {
            assert!(!Failure::Transport { kind }.retryable(), "{kind:?}");
        }
    }

    fn status_failure(code: u16) -> Failure<'static> {
        Failure::Status {
            status: code,
            retry_after: None,
            policy: None,
        }
    }

    #[test]
    fn backoff_ceiling_is_capped() {
        let p = RetryPolicy {
            max_retries: 100,
            deadline: S(10_000),
            ..RetryPolicy::default()
        };
        let f = status(503, None, None);
        let room = Room {
            wait: S(0),
            window: S(10),
        };
        assert_eq!(
            p.decide(f, 20, S(0), room, 1.0),
            Decision::RetryAfter(S(30))
        );
        assert_eq!(
            p.decide(f, 99, S(0), room, 1.0),
            Decision::RetryAfter(S(30))
        );
    }

    #[test]
    fn no_retries_when_max_retries_is_zero() {
        let p = RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        };
        let room = Room {
            wait: S(0),
            window: S(10),
        };
        assert_eq!(
            p.decide(status(503, None, None), 1, S(0), room, 0.5),
            Decision::GiveUp("max_retries is reached")
        );
    }

    #[test]
    fn retry_after_parsing() {
        let now = std::time::UNIX_EPOCH + S(1_445_412_470); // Wed, 21 Oct 2015 07:27:50 GMT
        assert_eq!(parse_retry_after("3", now), Some(S(3)));
        assert_eq!(parse_retry_after(" 1.5 ", now), Some(MS(1500)));
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("NaN", now), None);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(S(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(S(0))
        );
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            http_date("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(1_835_438_400)
        );
        for bad in [
            "Wed, 21 Oct 2015 07:28:00 PST",
            "21 Oct 2015",
            "Wed, 32 Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }
}
