//! The wall clock, for modules that record when things happened: the time
//! as milliseconds since the Unix epoch, and the UTC calendar date of such
//! a time. (Deadlines do not use it: they run on a monotonic clock, see
//! `deadline`.)

/// Now, in milliseconds since 1970-01-01 00:00 UTC (0 if the clock is set
/// before 1970).
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A UTC calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcDate {
    /// The year, e.g. 2026.
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
}

/// The UTC date of `unix_ms` (Howard Hinnant's `civil_from_days`).
pub fn utc_date(unix_ms: i64) -> UtcDate {
    let days = unix_ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    UtcDate { year, month, day }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        let day = 86_400_000;
        let date = |year, month, day| UtcDate { year, month, day };
        assert_eq!(utc_date(0), date(1970, 1, 1));
        assert_eq!(utc_date(11_016 * day), date(2000, 2, 29));
        assert_eq!(utc_date(20_454 * day), date(2026, 1, 1));
        assert_eq!(utc_date(20_819 * day - 1), date(2026, 12, 31));
        assert_eq!(utc_date(-1), date(1969, 12, 31));
    }

    #[test]
    fn now_is_after_this_code_was_written() {
        assert!(utc_date(unix_ms()).year >= 2026);
    }
}
