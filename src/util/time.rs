//! Times as text: UTC dates and RFC 3339 times from seconds since the Unix epoch.
//!
//! This module owns the one calendar computation of the crate (civil date from a day
//! number, Howard Hinnant's algorithm, so that one line of output does not need a date
//! crate) and the formats built on it: `geoline check`'s and `/status`'s dates, `/status`'s
//! times and the access log's. It does not read clocks other than through the
//! [`SystemTime`] it is given.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch as a UTC date, `YYYY-MM-DD`.
pub fn format_date(secs: u64) -> String {
    let (y, m, d) = civil_date(secs / 86_400);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Seconds since the epoch as a UTC time, RFC 3339: `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn format_rfc3339(secs: u64) -> String {
    format!("{}Z", format_date_time(secs))
}

/// Seconds since the epoch as an RFC 3339 UTC time without its zone,
/// `YYYY-MM-DDTHH:MM:SS`: the access log appends a fraction of a second and the `Z`.
pub(crate) fn format_date_time(secs: u64) -> String {
    let s = secs % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}",
        format_date(secs),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Whole seconds from the epoch to `t`; 0 for a time before it (a clock set back).
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Year, month (1-12) and day (1-31) of day `days` after 1970-01-01.
fn civil_date(days: u64) -> (i64, i64, i64) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days from 1970-01-01 to the civil date `y-m-d` (the inverse of [`civil_date`]); `None`
/// for a month or day out of range.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn dates_and_times() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(951_782_400), "2000-02-29");
        assert_eq!(format_date(1_795_305_600), "2026-11-22");
        assert_eq!(
            format_rfc3339(1_795_305_600 + 3_723),
            "2026-11-22T01:02:03Z"
        );
        assert_eq!(format_date_time(86_399), "1970-01-01T23:59:59");
    }

    #[test]
    fn day_numbers_of_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2000, 2, 29), Some(951_782_400 / 86_400));
        assert_eq!(days_from_civil(2026, 11, 22), Some(1_795_305_600 / 86_400));
        assert_eq!(days_from_civil(2026, 13, 1), None);
        for days in [0, 59, 365, 10_957, 20_779, 30_000] {
            let (y, m, d) = civil_date(days);
            assert_eq!(days_from_civil(y, m, d), Some(days as i64));
        }
    }

    #[test]
    fn seconds_of_a_system_time() {
        assert_eq!(unix_secs(UNIX_EPOCH + Duration::from_millis(2_999)), 2);
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
