//! Server-rendered SVG charts for the management information: bar, line and heat map.
//!
//! Written by hand because the portal sends no JavaScript (CSP `script-src 'none'`) and the
//! charts are three small shapes; a chart crate would bring a rendering stack (plotters and
//! fonts) for what is a few dozen `<rect>`s. Every chart is `role="img"` with a `<title>` and
//! `<desc>` (read by screen readers), scales to its container through `viewBox`, and carries
//! per-element `<title>`s so hovering or long-pressing a bar shows its exact value.

use maud::{Markup, html};

/// Width of every chart's coordinate system; the SVG scales to the container, and this width
/// keeps 11-unit labels readable down to a 390 px phone.
const W: f64 = 420.0;
const FONT: f64 = 11.0;

/// A "nice" upper bound and tick step for an axis from 0 to `max` (1, 2, 2.5 or 5 × 10^n).
pub fn nice_axis(max: f64, ticks: usize) -> (f64, f64) {
    if max <= 0.0 || !max.is_finite() {
        return (1.0, 1.0);
    }
    let raw = max / ticks.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    // Counts are whole numbers: a step below 1 would label the same integer twice.
    let step = step.max(1.0);
    ((max / step).ceil() * step, step)
}

fn fmt_num(v: f64) -> String {
    let n = v.round() as i64;
    // Dutch thousands separator.
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Ids must be unique in the page (aria-labelledby); callers pass a stable slug.
fn frame(id: &str, title: &str, desc: &str, height: f64, body: Markup) -> Markup {
    html! {
        svg.chart id=(id) xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (W) " " (height)} role="img"
            aria-labelledby={(id) "-title " (id) "-desc"} font-size=(FONT) font-family="system-ui, sans-serif" {
            title id={(id) "-title"} { (title) }
            desc id={(id) "-desc"} { (desc) }
            (body)
        }
    }
}

fn y_axis(left: f64, top: f64, plot_h: f64, right: f64, top_value: f64, step: f64) -> Markup {
    let n = (top_value / step).round() as usize;
    html! {
        @for i in 0..=n {
            @let v = i as f64 * step;
            @let y = top + plot_h - v / top_value * plot_h;
            line x1=(left) x2=(right) y1=(y) y2=(y) stroke="#ddd" stroke-width="1" {}
            text x=(left - 4.0) y=(y + FONT / 3.0) text-anchor="end" fill="#444" { (fmt_num(v)) }
        }
    }
}

/// One bar per (label, value), vertical, with a value axis and every `label_every`-th label.
pub fn bar_chart(id: &str, title: &str, desc: &str, bars: &[(String, f64)], unit: &str) -> Markup {
    let (left, right, top, bottom) = (44.0, W - 8.0, 8.0, 36.0);
    let height = 220.0;
    let plot_h = height - top - bottom;
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let (top_value, step) = nice_axis(max, 4);
    let slot = (right - left) / bars.len().max(1) as f64;
    // Room for about 8 labels along the axis.
    let label_every = bars.len().div_ceil(8).max(1);
    html! {
        (frame(id, title, desc, height, html! {
            (y_axis(left, top, plot_h, right, top_value, step))
            @for (i, (label, v)) in bars.iter().enumerate() {
                @let h = v / top_value * plot_h;
                @let x = left + i as f64 * slot;
                rect x=(x + slot * 0.12) y=(top + plot_h - h) width=(slot * 0.76) height=(h) fill="#154273" {
                    title { (label) ": " (fmt_num(*v)) " " (unit) }
                }
                @if i % label_every == 0 {
                    text x=(x + slot / 2.0) y=(top + plot_h + 14.0) text-anchor="middle" fill="#444" { (label) }
                }
            }
            line x1=(left) x2=(right) y1=(top + plot_h) y2=(top + plot_h) stroke="#444" {}
        }))
    }
}

/// Horizontal bars with their labels on the left: for categories with long names (outcomes).
pub fn hbar_chart(id: &str, title: &str, desc: &str, bars: &[(String, f64)], unit: &str) -> Markup {
    let row = 22.0;
    let (label_w, top) = (170.0, 4.0);
    let height = top + row * bars.len() as f64 + 4.0;
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1.0);
    let avail = W - label_w - 60.0;
    html! {
        (frame(id, title, desc, height, html! {
            @for (i, (label, v)) in bars.iter().enumerate() {
                @let y = top + i as f64 * row;
                @let w = v / max * avail;
                text x=(label_w - 6.0) y=(y + row * 0.65) text-anchor="end" fill="#1b1b1b" { (label) }
                rect x=(label_w) y=(y + 3.0) width=(w) height=(row - 6.0) fill="#154273" {
                    title { (label) ": " (fmt_num(*v)) " " (unit) }
                }
                text x=(label_w + w + 4.0) y=(y + row * 0.65) fill="#1b1b1b" { (fmt_num(*v)) }
            }
        }))
    }
}

/// A series for [`line_chart`].
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    /// Dashed, e.g. for the previous period.
    pub dashed: bool,
    pub values: &'a [f64],
}

/// Lines over shared x labels (e.g. day 1..n of this and the previous period), with a legend.
pub fn line_chart(id: &str, title: &str, desc: &str, x_labels: &[String], series: &[Series<'_>]) -> Markup {
    let (left, right, top, bottom) = (44.0, W - 8.0, 24.0, 30.0);
    let height = 230.0;
    let plot_h = height - top - bottom;
    let n = x_labels.len().max(series.iter().map(|s| s.values.len()).max().unwrap_or(0)).max(1);
    let max = series.iter().flat_map(|s| s.values.iter().copied()).fold(0.0, f64::max);
    let (top_value, step) = nice_axis(max, 4);
    let x = |i: usize| if n == 1 { (left + right) / 2.0 } else { left + i as f64 * (right - left) / (n - 1) as f64 };
    let y = |v: f64| top + plot_h - v / top_value * plot_h;
    let label_every = n.div_ceil(7).max(1);
    html! {
        (frame(id, title, desc, height, html! {
            (y_axis(left, top, plot_h, right, top_value, step))
            @for (k, s) in series.iter().enumerate() {
                @let lx = left + k as f64 * 150.0;
                line x1=(lx) x2=(lx + 18.0) y1="10" y2="10" stroke=(s.colour) stroke-width="2.5"
                    stroke-dasharray=(if s.dashed { "5 3" } else { "none" }) {}
                text x=(lx + 22.0) y="14" fill="#1b1b1b" { (s.name) }
                @let points: Vec<String> = s.values.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v))).collect();
                polyline points=(points.join(" ")) fill="none" stroke=(s.colour) stroke-width="2"
                    stroke-dasharray=(if s.dashed { "5 3" } else { "none" }) {}
                @for (i, v) in s.values.iter().enumerate() {
                    circle cx=(x(i)) cy=(y(*v)) r="2.5" fill=(s.colour) {
                        title { (s.name) ", " (x_labels.get(i).map(String::as_str).unwrap_or("")) ": " (fmt_num(*v)) }
                    }
                }
            }
            @for (i, l) in x_labels.iter().enumerate() {
                @if i % label_every == 0 {
                    text x=(x(i)) y=(top + plot_h + 14.0) text-anchor="middle" fill="#444" { (l) }
                }
            }
            line x1=(left) x2=(right) y1=(top + plot_h) y2=(top + plot_h) stroke="#444" {}
        }))
    }
}

/// 7 × 24 grid (rows = days Monday first, columns = hours), darker = more calls.
/// `values[d * 24 + h]`; `day_names` the 7 row labels.
pub fn heat_map(id: &str, title: &str, desc: &str, values: &[u64], day_names: [&str; 7], unit: &str) -> Markup {
    let (left, top) = (28.0, 16.0);
    let cell_w = (W - left - 4.0) / 24.0;
    let cell_h = 22.0;
    let height = top + 7.0 * cell_h + 4.0;
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    html! {
        (frame(id, title, desc, height, html! {
            @for h in (0..24).step_by(3) {
                text x=(left + h as f64 * cell_w + cell_w / 2.0) y="11" text-anchor="middle" fill="#444" { (format!("{h:02}")) }
            }
            @for (d, name) in day_names.iter().enumerate() {
                text x=(left - 4.0) y=(top + d as f64 * cell_h + cell_h * 0.65) text-anchor="end" fill="#444" { (name) }
                @for h in 0..24 {
                    @let v = values.get(d * 24 + h).copied().unwrap_or(0);
                    // Light-to-dark blue; zero stays almost white so empty hours read as empty.
                    @let t = v as f64 / max;
                    @let fill = format!("rgb({},{},{})", (244.0 - t * 223.0) as u8, (246.0 - t * 180.0) as u8, (250.0 - t * 135.0) as u8);
                    rect x=(left + h as f64 * cell_w) y=(top + d as f64 * cell_h) width=(cell_w - 1.0) height=(cell_h - 1.0) fill=(fill) {
                        title { (name) " " (format!("{h:02}:00–{:02}:00", (h + 1) % 24)) ": " (fmt_num(v as f64)) " " (unit) }
                    }
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_axes_cover_the_maximum_with_round_steps() {
        assert_eq!(nice_axis(0.0, 4), (1.0, 1.0));
        assert_eq!(nice_axis(3.0, 4), (3.0, 1.0));
        assert_eq!(nice_axis(97.0, 4), (100.0, 25.0));
        assert_eq!(nice_axis(1234.0, 4), (1500.0, 500.0));
        let (top, step) = nice_axis(61_000.0, 4);
        assert!(top >= 61_000.0 && top / step <= 5.0, "{top} {step}");
    }

    #[test]
    fn charts_are_accessible_and_escape_text() {
        let bars = vec![("ma <1>".to_string(), 3.0), ("di".to_string(), 0.0)];
        let svg = bar_chart("per-day", "Gesprekken per dag", "Aantal per dag", &bars, "gesprekken").into_string();
        assert!(svg.contains(r#"role="img""#) && svg.contains(r#"aria-labelledby="per-day-title per-day-desc""#));
        assert!(svg.contains("<title id=\"per-day-title\">Gesprekken per dag</title>"));
        assert!(svg.contains("ma &lt;1&gt;: 3 gesprekken") && !svg.contains("<1>"));
        let mut v = vec![0u64; 168];
        v[9] = 12_345;
        let hm = heat_map("hm", "t", "d", &v, ["ma", "di", "wo", "do", "vr", "za", "zo"], "gesprekken").into_string();
        assert_eq!(hm.matches("<rect").count(), 168);
        assert!(hm.contains("ma 09:00–10:00: 12.345 gesprekken"), "{hm}");
        let line = line_chart("l", "t", "d", &["1".into(), "2".into()], &[Series { name: "nu", colour: "#000", dashed: false, values: &[1.0, 2.0] }]).into_string();
        assert!(line.contains("<polyline"));
    }
}
