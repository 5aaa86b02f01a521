//! A per-thread cached IMF-fixdate for the `Date` header, refreshed at most once a second.
//!
//! RFC 9110 section 5.6.7: `IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT`,
//! e.g. `Sun, 06 Nov 1994 08:49:37 GMT`. Formatting is done by hand from the Unix time
//! (no allocation, no libc), and only when the second changes.

use std::time::{SystemTime, UNIX_EPOCH};

/// Holds `Sun, 06 Nov 1994 08:49:37 GMT` (29 bytes) for the current second.
#[derive(Debug, Clone)]
pub struct DateCache {
    buf: [u8; 29],
    second: u64,
}

impl Default for DateCache {
    fn default() -> Self {
        Self::new()
    }
}

impl DateCache {
    pub fn new() -> Self {
        DateCache {
            buf: [b' '; 29],
            second: u64::MAX,
        }
    }

    /// The date for `now`, formatting only when the second changed.
    pub fn get(&mut self, now: SystemTime) -> &[u8; 29] {
        // A clock before 1970 is a broken clock; say 1970 rather than fail.
        let second = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if second != self.second {
            format_imf_fixdate(second, &mut self.buf);
            self.second = second;
        }
        &self.buf
    }
}

const DAY_NAMES: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTH_NAMES: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Write the IMF-fixdate of `unix_seconds` into `out`.
pub fn format_imf_fixdate(unix_seconds: u64, out: &mut [u8; 29]) {
    let days = unix_seconds / 86_400;
    let secs_of_day = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday, hence DAY_NAMES starting at Thu.
    let weekday = (days % 7) as usize;

    out[0..3].copy_from_slice(DAY_NAMES[weekday]);
    out[3..5].copy_from_slice(b", ");
    two_digits(&mut out[5..7], day);
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTH_NAMES[(month - 1) as usize]);
    out[11] = b' ';
    // Years past 9999 do not fit the format; clamp rather than corrupt the header.
    let year = year.min(9999);
    two_digits(&mut out[12..14], year / 100);
    two_digits(&mut out[14..16], year % 100);
    out[16] = b' ';
    two_digits(&mut out[17..19], secs_of_day / 3600);
    out[19] = b':';
    two_digits(&mut out[20..22], secs_of_day / 60 % 60);
    out[22] = b':';
    two_digits(&mut out[23..25], secs_of_day % 60);
    out[25..29].copy_from_slice(b" GMT");
}

#[inline]
fn two_digits(out: &mut [u8], n: u64) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31) in the proleptic Gregorian
/// calendar. Works in 400-year eras (146097 days each) counted from 0000-03-01, so that
/// the leap day falls at the end of the counting year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // 719468 days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March: 0 = March ... 11 = February.
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn fmt(secs: u64) -> String {
        let mut out = [0u8; 29];
        format_imf_fixdate(secs, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn known_timestamps() {
        assert_eq!(fmt(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(fmt(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(fmt(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(fmt(1_709_164_799), "Wed, 28 Feb 2024 23:59:59 GMT");
        assert_eq!(fmt(1_709_251_199), "Thu, 29 Feb 2024 23:59:59 GMT");
        assert_eq!(fmt(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
        assert_eq!(fmt(2_147_483_647), "Tue, 19 Jan 2038 03:14:07 GMT");
        assert_eq!(fmt(253_402_300_799), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn every_day_round_trips_through_the_calendar() {
        // Walk day by day from 1970 to 2200 and check the calendar advances by exactly
        // one day each time (month lengths and leap years included).
        let (mut y, mut m, mut d) = (1970, 1, 1);
        for days in 0..(230 * 366) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn cache_refreshes_only_when_the_second_changes() {
        let mut cache = DateCache::new();
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(cache.get(t), b"Sun, 06 Nov 1994 08:49:37 GMT");
        // Poke the buffer: a lookup in the same second must not reformat.
        cache.buf[0] = b'X';
        assert_eq!(
            cache.get(t + Duration::from_millis(999)),
            b"Xun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            cache.get(t + Duration::from_secs(1)),
            b"Sun, 06 Nov 1994 08:49:38 GMT"
        );
    }

    #[test]
    fn before_epoch_clamps() {
        let mut cache = DateCache::new();
        let t = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(cache.get(t), b"Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
