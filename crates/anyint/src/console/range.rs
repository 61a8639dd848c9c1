//! Time windows for the console's charts: the last hour by minute, the last day by hour, the
//! last 30 days by day; and the filling of a usage summary (which has no row for an empty
//! bucket) into one value per bucket, so the time axis is continuous.

use std::collections::HashMap;

use serde_json::Value;

/// A chart window.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Range {
    /// The last 60 minutes, by minute.
    Hour,
    /// The last 24 hours, by hour.
    Day,
    /// The last 30 days, by UTC day.
    Month,
}

impl Range {
    /// Parses `hour`, `day` or `month` (30 days); anything else is the day.
    pub(super) fn parse(s: Option<&str>) -> Self {
        match s {
            Some("hour") => Self::Hour,
            Some("month" | "30d") => Self::Month,
            _ => Self::Day,
        }
    }

    /// Its query value.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Month => "month",
        }
    }

    /// Words for headings.
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Hour => "last hour",
            Self::Day => "last 24 hours",
            Self::Month => "last 30 days",
        }
    }

    /// The usage API's `group_by` for this window's buckets.
    pub(super) fn group_by(self) -> &'static str {
        match self {
            Self::Hour => "minute",
            Self::Day => "hour",
            Self::Month => "day",
        }
    }

    /// The bucket width in seconds.
    pub(super) fn step(self) -> i64 {
        match self {
            Self::Hour => 60,
            Self::Day => 3600,
            Self::Month => 86_400,
        }
    }

    fn buckets(self) -> i64 {
        match self {
            Self::Hour => 60,
            Self::Day => 24,
            Self::Month => 30,
        }
    }

    /// The buckets' starts (Unix seconds), oldest first, the last one holding `now`.
    pub(super) fn starts(self, now: i64) -> Vec<i64> {
        let step = self.step();
        let last = now.div_euclid(step) * step;
        (0..self.buckets()).rev().map(|i| last - i * step).collect()
    }
}

/// The usage API's label of a bucket starting at `secs`.
fn label(secs: i64, step: i64) -> String {
    let t = crate::clock::rfc3339(secs);
    if step >= 86_400 {
        t.get(..10).unwrap_or_default().to_owned()
    } else {
        t
    }
}

/// One value per bucket: `metric` of the summary row whose group is the bucket, else 0.
/// `metric` is a field of a usage group (`requests`, `errors`, `cost_micros`, …) or `tokens`
/// (prompt plus completion).
pub(super) fn fill(groups: &[Value], starts: &[i64], step: i64, metric: &str) -> Vec<f64> {
    let by_label: HashMap<&str, &Value> = groups
        .iter()
        .filter_map(|g| Some((g["group"].as_str()?, g)))
        .collect();
    starts
        .iter()
        .map(|s| {
            by_label
                .get(label(*s, step).as_str())
                .map_or(0.0, |g| metric_of(g, metric))
        })
        .collect()
}

/// A metric of one usage group, as a float for charts.
#[expect(
    clippy::cast_precision_loss,
    reason = "chart values: exact integers are shown in the tables"
)]
pub(super) fn metric_of(g: &Value, metric: &str) -> f64 {
    let n = |f: &str| g[f].as_i64().unwrap_or(0);
    let v = match metric {
        "tokens" => n("prompt_tokens") + n("completion_tokens"),
        f => n(f),
    };
    v as f64
}

/// Error rates (percent) per bucket from request and error counts.
pub(super) fn rate(errors: &[f64], requests: &[f64]) -> Vec<f64> {
    errors
        .iter()
        .zip(requests)
        .map(|(e, r)| if *r > 0.0 { e / r * 100.0 } else { 0.0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn buckets_end_at_now_and_fill_missing_ones_with_zero() {
        let starts = Range::Day.starts(7200 + 59);
        assert_eq!(starts.len(), 24);
        assert_eq!(starts.last(), Some(&7200));
        let groups = [json!({"group": "1970-01-01T01:00:00Z", "requests": 4, "errors": 1})];
        let v = fill(&groups, &starts, 3600, "requests");
        assert!((v[22] - 4.0).abs() < f64::EPSILON);
        assert!(v[23].abs() < f64::EPSILON);
        let days = Range::Month.starts(86_400 * 40);
        let groups = [json!({"group": "1970-02-10", "cost_micros": 7})];
        assert!((fill(&groups, &days, 86_400, "cost_micros")[29] - 7.0).abs() < f64::EPSILON);
    }
}
