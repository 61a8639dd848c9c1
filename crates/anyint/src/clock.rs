//! Wall-clock timestamps for stored records. Durations and timeouts use tokio's clock instead,
//! so tests can pause time; [`poll_deadline`] is the one way a long-lived timer waits for a
//! deadline that activity keeps pushing later.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::{Instant, Sleep};

/// Ready once `deadline` has passed. `timer` may be set earlier than `deadline` (a deadline
/// only ever moves later as activity is seen): when it fires early it is set again to
/// `deadline`. So a connection, body or stream keeps one timer for its whole life and
/// activity costs only a timestamp, not a timer registration each time.
pub fn poll_deadline(
    mut timer: Pin<&mut Sleep>,
    deadline: Instant,
    cx: &mut Context<'_>,
) -> Poll<()> {
    loop {
        ready!(timer.as_mut().poll(cx));
        if Instant::now() >= deadline {
            return Poll::Ready(());
        }
        timer.as_mut().reset(deadline);
    }
}

/// Seconds since the Unix epoch.
pub fn unix_secs() -> i64 {
    i64::try_from(since_epoch().as_secs()).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis() -> i64 {
    i64::try_from(since_epoch().as_millis()).unwrap_or(i64::MAX)
}

fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// RFC 3339 UTC timestamp (`2025-01-01T00:00:00Z`) for Unix seconds.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses a time given as Unix seconds or a UTC date `YYYY-MM-DD` (its midnight); `None` when
/// it is neither.
pub fn parse_instant(s: &str) -> Option<i64> {
    if let Ok(secs) = s.parse::<i64>() {
        return Some(secs);
    }
    let (y, m, d) = parse_date(s)?;
    Some(days_from_civil(y, m, d) * 86_400)
}

/// Parses an RFC 3339 timestamp (`2026-12-31T23:59:59Z`, `2026-12-31T23:59:59.5+02:00`) to
/// Unix seconds (fractions are dropped); `None` when it is not one.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let (date, rest) = s.split_at_checked(10)?;
    let (y, m, d) = parse_date(date)?;
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let two = |t: &str| -> Option<i64> {
        (t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let (hh, mm, ss) = (
        two(rest.get(0..2)?)?,
        two(rest.get(3..5)?)?,
        two(rest.get(6..8)?)?,
    );
    if rest.get(2..3)? != ":" || rest.get(5..6)? != ":" || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let mut zone = rest.get(8..)?;
    if let Some(frac) = zone.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        zone = frac.get(digits..)?;
    }
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            if zone.len() != 6 || zone.get(3..4)? != ":" {
                return None;
            }
            let (oh, om) = (two(zone.get(1..3)?)?, two(zone.get(4..6)?)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    // A leap second counts as the next second's start.
    Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss - offset)
}

/// `YYYY-MM-DD` as (year, month, day), the day checked against the month's length.
fn parse_date(text: &str) -> Option<(i64, i64, i64)> {
    let bytes = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        bytes
            .get(r.clone())
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .and_then(|_| text.get(r)?.parse::<i64>().ok())
    };
    if text.len() != 10 || bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let len = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    (1..=len).contains(&day).then_some((year, month, day))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days-from-civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The start of the UTC calendar month containing `secs`, and the start of the next one.
/// Spend is counted per month on every settlement and capped admission, so the last answer is
/// kept: nearly every call falls in the same month and costs a lock instead of date formatting.
pub fn month_bounds(secs: i64) -> (i64, i64) {
    static LAST: std::sync::Mutex<(i64, i64)> = std::sync::Mutex::new((0, 0));
    if let Ok(last) = LAST.lock()
        && (last.0..last.1).contains(&secs)
    {
        return *last;
    }
    let bounds = compute_month_bounds(secs);
    if let Ok(mut last) = LAST.lock() {
        *last = bounds;
    }
    bounds
}

fn compute_month_bounds(secs: i64) -> (i64, i64) {
    let date = rfc3339(secs);
    let year: i64 = date.get(..4).and_then(|y| y.parse().ok()).unwrap_or(1970);
    let month: i64 = date.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    let start = parse_instant(&format!("{year:04}-{month:02}-01")).unwrap_or(0);
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let next = parse_instant(&format!("{ny:04}-{nm:02}-01")).unwrap_or(start);
    (start, next)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_735_689_600), "2025-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_827_696), "2000-02-29T12:34:56Z");
    }

    #[test]
    fn month_bounds_cover_the_calendar_month() {
        let (start, next) = super::month_bounds(1_735_689_600 + 86_400 * 40);
        assert_eq!(
            (
                super::rfc3339(start).as_str(),
                super::rfc3339(next).as_str()
            ),
            ("2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z")
        );
        let (start, next) = super::month_bounds(1_733_011_200); // 2024-12-01
        assert_eq!(
            (
                super::rfc3339(start).as_str(),
                super::rfc3339(next).as_str()
            ),
            ("2024-12-01T00:00:00Z", "2025-01-01T00:00:00Z")
        );
    }

    #[test]
    fn instants_parse_from_seconds_or_dates() {
        assert_eq!(super::parse_instant("1735689600"), Some(1_735_689_600));
        assert_eq!(super::parse_instant("2025-01-01"), Some(1_735_689_600));
        assert_eq!(super::parse_instant("2000-02-29"), Some(951_782_400));
        assert_eq!(super::parse_instant("2025-13-01"), None);
        assert_eq!(super::parse_instant("yesterday"), None);
    }

    #[test]
    fn rfc3339_parses_what_it_formats_and_offsets() {
        use super::{parse_rfc3339, rfc3339};
        for secs in [0, 951_827_696, 1_735_689_600, 1_798_761_599] {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs));
        }
        assert_eq!(parse_rfc3339("2026-12-31T23:59:59Z"), Some(1_798_761_599));
        assert_eq!(
            parse_rfc3339("2027-01-01T01:59:59.123+02:00"),
            Some(1_798_761_599)
        );
        assert_eq!(
            parse_rfc3339("2026-12-31t18:29:59-05:30"),
            Some(1_798_761_599)
        );
        for bad in [
            "2026-12-31",
            "2026-12-31T23:59:59",
            "2026-02-29T00:00:00Z",
            "2026-12-31T24:00:00Z",
            "2026-12-31T23:59:59+0200",
            "2026-12-31T23:59:59.Z",
            "2026-1-31T23:59:59Z",
            "1798761599",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
