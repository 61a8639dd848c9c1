//! Charts as inline SVG, drawn on the server: time series (bars, or a line) with a UTC time
//! axis, a value axis in the series' unit, and hover values (a `<title>` per time bucket,
//! which the browser shows as a tooltip and the console's script shows as a floating label);
//! and horizontal bar charts for groups (models, keys, accounts). Colours come from CSS
//! classes, so one chart reads in light and dark mode.

use std::fmt::Write as _;

use super::html::{self, esc};

/// What a series counts, for axis labels and hover text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    /// Requests.
    Requests,
    /// Tokens.
    Tokens,
    /// Credits, given in micro-units.
    Credits,
    /// A percentage (0–100).
    Percent,
    /// Milliseconds.
    Millis,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Tokens => "tokens",
            Self::Credits => "credits",
            Self::Percent => "%",
            Self::Millis => "ms",
        }
    }

    /// A value in this unit, for text.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "chart values are counts, micro-units and percentages far below i64::MAX"
    )]
    pub(super) fn format(self, v: f64) -> String {
        match self {
            Self::Requests => html::int(v.round() as i64),
            Self::Tokens => compact(v),
            Self::Credits => html::credits(v.round() as i64),
            Self::Percent => format!("{v:.1}%"),
            Self::Millis => format!("{v:.0} ms"),
        }
    }

    /// A value as an axis tick (shorter than [`Unit::format`]), for an axis topping at `top`.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a digit count clamped to 0..=5"
    )]
    fn tick(self, v: f64, top: f64) -> String {
        match self {
            Self::Credits => {
                let c = v / 1e6;
                if c == 0.0 || top >= 1e6 {
                    compact(c)
                } else {
                    // Enough decimals to tell the ticks of a small axis apart.
                    let digits = (-(top / 1e6).log10()).ceil().clamp(0.0, 5.0) as usize + 1;
                    format!("{c:.digits$}")
                }
            }
            Self::Percent if top < 10.0 => format!("{v:.1}%"),
            Self::Percent => format!("{v:.0}%"),
            _ => compact(v),
        }
    }
}

/// 1234 → `1.2k`, 5_600_000 → `5.6M`.
fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 || (v.fract() == 0.0) {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The smallest of 1, 2, 2.5, 5 × 10^k at or above `v` (at least 1).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    let exp = v.log10().floor();
    let base = 10f64.powf(exp);
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * base >= v {
            return m * base;
        }
    }
    10.0 * base
}

/// One series over the time buckets of a chart; later series are drawn over earlier ones.
pub(super) struct Series<'a> {
    /// Its name in hover text and the legend.
    pub name: &'a str,
    /// Its CSS class (colour).
    pub class: &'a str,
    /// One value per bucket.
    pub values: Vec<f64>,
}

/// How a time chart draws its series.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    /// Bars from zero.
    Bars,
    /// A line through the points.
    Line,
}

const W: f64 = 640.0;
const H: f64 = 200.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 26.0;

/// The label of a bucket starting at `secs`, for a bucket width of `step` seconds.
fn bucket_label(secs: i64, step: i64) -> String {
    let t = crate::clock::rfc3339(secs);
    if step >= 86_400 {
        t.get(5..10).unwrap_or_default().to_owned()
    } else {
        t.get(11..16).unwrap_or_default().to_owned()
    }
}

/// A time chart: `starts` are the buckets' starts (Unix seconds), `step` their width.
#[expect(
    clippy::cast_precision_loss,
    reason = "bucket counts and indexes are small"
)]
#[expect(clippy::too_many_lines, reason = "one drawing, axis by axis")]
pub(super) fn time_chart(
    title: &str,
    starts: &[i64],
    step: i64,
    series: &[Series<'_>],
    unit: Unit,
    style: Style,
) -> String {
    let n = starts.len().max(1);
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let top = match unit {
        Unit::Percent => nice_ceiling(max).min(100.0),
        // Whole-number axes: 0, 1, 2 at least, never half a request.
        Unit::Requests | Unit::Tokens => nice_ceiling(max).max(2.0),
        // Nothing spent: an axis of one credit rather than of one micro-unit.
        Unit::Credits if max <= 0.0 => 1e6,
        Unit::Credits | Unit::Millis => nice_ceiling(max),
    };
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / n as f64;
    let y = |v: f64| TOP + plot_h - (v / top).clamp(0.0, 1.0) * plot_h;
    let mut svg = format!(
        "<figure class=\"chart\"><figcaption>{t}</figcaption>\
         <svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{t}\" class=\"timechart\">",
        t = esc(title)
    );
    // Value axis: three gridlines with their values, and the unit.
    for frac in [0.0, 0.5, 1.0] {
        let v = top * frac;
        let yy = y(v);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
             <text class=\"tick\" x=\"{tx}\" y=\"{ty:.1}\" text-anchor=\"end\">{}</text>",
            esc(&unit.tick(v, top)),
            x2 = W - RIGHT,
            tx = LEFT - 6.0,
            ty = yy + 4.0,
        );
    }
    let _ = write!(
        svg,
        "<text class=\"unit\" x=\"4\" y=\"{}\">{}</text>",
        TOP - 12.0,
        esc(unit.name())
    );
    // Time axis: about six labels, in UTC.
    let every = n.div_ceil(6).max(1);
    for (i, s) in starts.iter().enumerate() {
        if i % every == 0 {
            let _ = write!(
                svg,
                "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                LEFT + slot * (i as f64 + 0.5),
                H - 8.0,
                esc(&bucket_label(*s, step))
            );
        }
    }
    for s in series {
        match style {
            Style::Bars => {
                let bw = (slot * 0.8).max(1.0);
                for (i, v) in s.values.iter().enumerate() {
                    if *v > 0.0 {
                        let yy = y(*v);
                        let _ = write!(
                            svg,
                            "<rect class=\"bar {c}\" x=\"{x:.1}\" y=\"{yy:.1}\" width=\"{bw:.1}\" height=\"{h:.1}\"/>",
                            c = esc(s.class),
                            x = LEFT + slot * i as f64 + (slot - bw) / 2.0,
                            h = (TOP + plot_h - yy).max(0.5),
                        );
                    }
                }
            }
            Style::Line => {
                let points: Vec<String> = s
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| format!("{:.1},{:.1}", LEFT + slot * (i as f64 + 0.5), y(*v)))
                    .collect();
                let _ = write!(
                    svg,
                    "<polyline class=\"line {}\" points=\"{}\"/>",
                    esc(s.class),
                    points.join(" ")
                );
            }
        }
    }
    // Hover targets: one per bucket, with every series' value.
    for (i, start) in starts.iter().enumerate() {
        let mut tip = format!(
            "{} UTC",
            crate::clock::rfc3339(*start)
                .get(..16)
                .unwrap_or_default()
                .replace('T', " ")
        );
        for s in series {
            let v = s.values.get(i).copied().unwrap_or(0.0);
            let _ = write!(tip, " · {}: {}", s.name, unit.format(v));
        }
        let _ = write!(
            svg,
            "<rect class=\"hit\" x=\"{:.1}\" y=\"{TOP}\" width=\"{slot:.1}\" height=\"{plot_h}\" data-tip=\"{t}\"><title>{t}</title></rect>",
            LEFT + slot * i as f64,
            t = esc(&tip)
        );
    }
    svg.push_str("</svg>");
    if series.len() > 1 {
        svg.push_str("<p class=\"legend\">");
        for s in series {
            let _ = write!(
                svg,
                "<span class=\"swatch {}\"></span>{} ",
                esc(s.class),
                esc(s.name)
            );
        }
        svg.push_str("</p>");
    }
    svg.push_str("</figure>");
    svg
}

/// A horizontal bar chart of named values (largest first, as given).
#[expect(
    clippy::cast_precision_loss,
    reason = "bar counts and indexes are small"
)]
pub(super) fn bars(title: &str, items: &[(String, f64)], unit: Unit) -> String {
    if items.is_empty() {
        return format!(
            "<figure class=\"chart\"><figcaption>{}</figcaption><p class=\"muted\">No data in this range.</p></figure>",
            esc(title)
        );
    }
    let row = 22.0;
    let label_w = 190.0;
    let value_w = 110.0;
    let h = row * items.len() as f64 + 8.0;
    let max = nice_ceiling(items.iter().map(|(_, v)| *v).fold(0.0, f64::max));
    let plot_w = W - label_w - value_w;
    let mut svg = format!(
        "<figure class=\"chart\"><figcaption>{t}</figcaption>\
         <svg viewBox=\"0 0 {W} {h}\" role=\"img\" aria-label=\"{t}\" class=\"barchart\">",
        t = esc(title)
    );
    for (i, (name, v)) in items.iter().enumerate() {
        let yy = 4.0 + row * i as f64;
        let label: String = if name.chars().count() > 24 {
            name.chars().take(23).chain(['…']).collect()
        } else {
            name.clone()
        };
        let tip = format!("{name}: {}", unit.format(*v));
        let _ = write!(
            svg,
            "<text class=\"label\" x=\"{lx}\" y=\"{ty:.1}\" text-anchor=\"end\">{l}</text>\
             <rect class=\"bar s1\" x=\"{label_w}\" y=\"{yy:.1}\" width=\"{bw:.1}\" height=\"{bh}\"/>\
             <text class=\"tick\" x=\"{vx:.1}\" y=\"{ty:.1}\">{val}</text>\
             <rect class=\"hit\" x=\"0\" y=\"{yy:.1}\" width=\"{W}\" height=\"{row}\" data-tip=\"{t}\"><title>{t}</title></rect>",
            lx = label_w - 8.0,
            ty = yy + 14.0,
            l = esc(&label),
            bw = (v / max * plot_w).max(1.0),
            bh = row - 6.0,
            vx = label_w + (v / max * plot_w).max(1.0) + 6.0,
            val = esc(&unit.format(*v)),
            t = esc(&tip),
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceilings() {
        assert!((nice_ceiling(0.0) - 1.0).abs() < f64::EPSILON);
        assert!((nice_ceiling(7.0) - 10.0).abs() < f64::EPSILON);
        assert!((nice_ceiling(180.0) - 200.0).abs() < f64::EPSILON);
        assert!((nice_ceiling(2100.0) - 2500.0).abs() < f64::EPSILON);
    }

    #[test]
    fn a_time_chart_has_axes_and_hover_values() {
        let svg = time_chart(
            "Requests",
            &[0, 3600],
            3600,
            &[Series {
                name: "requests",
                class: "s1",
                values: vec![3.0, 0.0],
            }],
            Unit::Requests,
            Style::Bars,
        );
        assert!(svg.contains("<title>1970-01-01 00:00 UTC · requests: 3</title>"));
        assert!(svg.contains(">01:00</text>"));
        assert_eq!(svg.matches("class=\"bar s1\"").count(), 1);
        assert!(svg.contains(">requests</text>"));
    }

    #[test]
    fn units_format_for_people() {
        assert_eq!(Unit::Tokens.format(12_345.0), "12k");
        assert_eq!(Unit::Credits.format(1_500_000.0), "1.5");
        assert_eq!(Unit::Percent.format(12.34), "12.3%");
    }
}
