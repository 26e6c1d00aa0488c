//! Time formatting from capture timestamps (never the clock), so output is
//! deterministic: RFC 3339 UTC strings and seconds rounded to microseconds.

/// Nanoseconds to seconds, rounded to the microsecond (what pcap stores and
/// what Wireshark shows by default), as an `f64` that prints stably.
pub fn seconds(ns: i64) -> f64 {
    let us = if ns >= 0 {
        (ns + 500) / 1000
    } else {
        (ns - 500) / 1000
    };
    us as f64 / 1_000_000.0
}

/// RFC 3339 UTC with nanoseconds, e.g. `2026-11-21T05:00:00.123456000Z`.
/// Digits are written by hand: `format!` with padded fields cost about
/// 3,400 instructions a call, and a report formats every certificate's
/// validity on every TLS connection (27,648 calls on the 1 GiB bench).
pub fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000) as u64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u64;
    // i64 nanoseconds span the years 1677 to 2262: always four digits
    let (y, m, d) = civil_from_days(days);
    let mut b = *b"0000-00-00T00:00:00.000000000Z";
    digits(&mut b[0..4], y as u64);
    digits(&mut b[5..7], m as u64);
    digits(&mut b[8..10], d as u64);
    digits(&mut b[11..13], rem / 3600);
    digits(&mut b[14..16], (rem / 60) % 60);
    digits(&mut b[17..19], rem % 60);
    digits(&mut b[20..29], frac);
    // only ASCII digits and separators were written
    String::from_utf8_lossy(&b).into_owned()
}

/// Writes `v` as decimal into `out`, zero-padded to its length.
fn digits(out: &mut [u8], mut v: u64) {
    for c in out.iter_mut().rev() {
        *c = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        // 2026-11-21T05:00:00Z
        assert_eq!(
            rfc3339(1_795_237_200_000_000_000),
            "2026-11-21T05:00:00.000000000Z"
        );
        assert_eq!(
            rfc3339(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn hand_written_digits_agree_with_format() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..20_000i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // days from 1970 on, and instants anywhere in i64's range
            let ns = if i < 10_000 {
                i * 86_400_000_000_000 + (x % 86_400_000_000_000) as i64
            } else {
                x as i64
            };
            let (secs, frac) = (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
            let rem = secs.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let want = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
                rem / 3600,
                (rem / 60) % 60,
                rem % 60
            );
            assert_eq!(rfc3339(ns), want);
        }
        assert_eq!(rfc3339(i64::MIN), "1677-09-21T00:12:43.145224192Z");
        assert_eq!(rfc3339(i64::MAX), "2262-04-11T23:47:16.854775807Z");
    }

    #[test]
    fn seconds_round_to_microseconds() {
        assert_eq!(seconds(1_499), 0.000001);
        assert_eq!(seconds(1_500_000_000), 1.5);
        assert_eq!(seconds(-2_000), -0.000002);
    }
}
