//! When to renew, when to try again, when to warn: pure functions of times.
//!
//! This module owns the schedule of an ACME certificate: renewal at two thirds of its
//! lifetime (what Let's Encrypt and certbot do: 60 days into 90), or inside the window the
//! CA's renewal information (RFC 9773) suggests; failures retried after a wait that
//! doubles up to a cap, never later than the certificate's own renewal time would allow;
//! the log's warning from 14 days before expiry. It reads no clock: callers pass `now`.

use std::time::Duration;

/// How long before expiry the log warns about a certificate that is not renewed.
pub(crate) const WARN_BEFORE_SECS: i64 = 14 * 86_400;

/// A renewal window suggested by the CA, in seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) start: i64,
    pub(crate) end: i64,
}

/// When a certificate valid from `not_before` to `not_after` (seconds since the epoch) is
/// renewed: inside the CA's `window` when it gave one (at `jitter`, 0 to 1, of the way
/// through it, RFC 9773 4.2's random point), otherwise at two thirds of the lifetime.
pub(crate) fn renewal_time(
    not_before: i64,
    not_after: i64,
    window: Option<Window>,
    jitter: f64,
) -> i64 {
    if let Some(w) = window.filter(|w| w.end >= w.start) {
        let width = (w.end - w.start) as f64;
        return w.start + (width * jitter.clamp(0.0, 1.0)) as i64;
    }
    let lifetime = (not_after - not_before).max(0);
    not_before + lifetime * 2 / 3
}

/// The wait before the next attempt after `failures` failed ones in a row (1 for the
/// first): `min`, doubled with each failure, at most `max`.
pub(crate) fn backoff(failures: u32, min: Duration, max: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(32);
    min.saturating_mul(1u32 << doublings.min(31)).min(max)
}

/// Whole days left before `not_after` when the log should warn (at most 14 days left,
/// or expired: negative), `None` otherwise.
pub(crate) fn expiry_warning(now: i64, not_after: i64) -> Option<i64> {
    let left = not_after - now;
    (left <= WARN_BEFORE_SECS).then(|| left.div_euclid(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn renewal_is_at_two_thirds_of_the_lifetime() {
        // Let's Encrypt's 90 days: day 60.
        assert_eq!(
            renewal_time(1_000, 1_000 + 90 * DAY, None, 0.5),
            1_000 + 60 * DAY
        );
        // A six-day certificate: day 4.
        assert_eq!(renewal_time(0, 6 * DAY, None, 0.0), 4 * DAY);
        // pebble's short certificates: 300 s live, renewed at 200 s.
        assert_eq!(renewal_time(10, 310, None, 0.9), 210);
        // A certificate that ends before it starts is renewed at once (at its start).
        assert_eq!(renewal_time(500, 100, None, 0.0), 500);
    }

    #[test]
    fn a_window_from_the_ca_wins_at_the_jittered_point() {
        let w = Window {
            start: 40 * DAY,
            end: 42 * DAY,
        };
        assert_eq!(renewal_time(0, 90 * DAY, Some(w), 0.0), 40 * DAY);
        assert_eq!(renewal_time(0, 90 * DAY, Some(w), 0.5), 41 * DAY);
        assert_eq!(renewal_time(0, 90 * DAY, Some(w), 1.0), 42 * DAY);
        // A CA that moves the window into the past (a revocation coming): now.
        let past = Window { start: 5, end: 10 };
        assert!(renewal_time(0, 90 * DAY, Some(past), 0.3) <= 10);
        // A window that ends before it starts is ignored.
        let bad = Window { start: 10, end: 5 };
        assert_eq!(renewal_time(0, 90 * DAY, Some(bad), 0.3), 60 * DAY);
    }

    #[test]
    fn failures_back_off_doubling_to_a_cap() {
        let min = Duration::from_secs(60);
        let max = Duration::from_secs(3600);
        let waits: Vec<u64> = (1..=8).map(|n| backoff(n, min, max).as_secs()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(0, min, max), min);
        assert_eq!(backoff(u32::MAX, min, max), max);
    }

    #[test]
    fn the_warning_starts_fourteen_days_before_expiry() {
        let end = 100 * DAY;
        assert_eq!(expiry_warning(end - 15 * DAY, end), None);
        assert_eq!(expiry_warning(end - 14 * DAY, end), Some(14));
        assert_eq!(expiry_warning(end - DAY / 2, end), Some(0));
        assert_eq!(expiry_warning(end + DAY, end), Some(-1));
    }
}
