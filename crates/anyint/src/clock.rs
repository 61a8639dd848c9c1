//! Wall-clock timestamps for stored records. Durations and timeouts use tokio's clock instead,
//! so tests can pause time.

use std::time::{SystemTime, UNIX_EPOCH};

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
    let mut parts = s.splitn(3, '-');
    let (y, m, d) = (
        parts.next()?.parse::<i64>().ok()?,
        parts.next()?.parse::<i64>().ok()?,
        parts.next()?.parse::<i64>().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days-from-civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400)
}

/// The start of the UTC calendar month containing `secs`, and the start of the next one.
pub fn month_bounds(secs: i64) -> (i64, i64) {
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
}
