//! SVG charts drawn on the server: a field profile's histogram and its quantile bar, and a line of a measure over
//! the profiles. Every piece of text that goes into the markup passes through `esc`, so a chart can be placed in a
//! page as markup without exposing user data.

use serde_json::Value;
use std::fmt::Write;

/// Markup built by this module (text inside it is escaped).
pub struct Svg(pub String);

impl std::fmt::Display for Svg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Escapes text for SVG/XML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A value of a profile (a number, or an ISO time for temporal fields) as a position on an axis.
pub fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis() as f64)
            .ok()
            .or_else(|| s.parse().ok()),
        _ => None,
    }
}

/// A short label for an axis value.
pub fn label(v: &Value) -> String {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
            Some(x) if x.abs() >= 1e6 || (x != 0.0 && x.abs() < 1e-3) => format!("{x:.3e}"),
            Some(x) => format!("{:.4}", x)
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string(),
            None => n.to_string(),
        },
        Value::String(s) => s.chars().take(19).collect(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

const W: f64 = 560.0;
const H: f64 = 200.0;
const PAD_L: f64 = 44.0;
const PAD_B: f64 = 34.0;
const PAD_T: f64 = 10.0;

/// Bars for `histogram_buckets` (`[{low, high, count}]`), with the count axis and the range's ends labelled.
pub fn histogram(buckets: &[Value], title: &str) -> Option<Svg> {
    if buckets.is_empty() {
        return None;
    }
    let counts: Vec<u64> = buckets
        .iter()
        .map(|b| b["count"].as_u64().unwrap_or(0))
        .collect();
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let plot_w = W - PAD_L - 8.0;
    let plot_h = H - PAD_T - PAD_B;
    let bw = plot_w / buckets.len() as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart histogram" viewBox="0 0 {W} {H}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    let base = PAD_T + plot_h;
    let _ = write!(
        s,
        r#"<line x1="{PAD_L}" y1="{base}" x2="{}" y2="{base}" class="axis"/><line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{base}" class="axis"/>"#,
        W - 8.0
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" class="tick" text-anchor="end">{}</text><text x="{}" y="{base}" class="tick" text-anchor="end">0</text>"#,
        PAD_L - 4.0,
        PAD_T + 10.0,
        max as u64,
        PAD_L - 4.0
    );
    for (i, (b, c)) in buckets.iter().zip(&counts).enumerate() {
        let h = (*c as f64 / max) * plot_h;
        let x = PAD_L + i as f64 * bw + 1.0;
        let tip = format!("{} – {}: {c}", label(&b["low"]), label(&b["high"]));
        let _ = write!(
            s,
            r#"<rect class="bar" x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" data-count="{c}"><title>{}</title></rect>"#,
            base - h,
            (bw - 2.0).max(1.0),
            esc(&tip)
        );
    }
    let first = label(&buckets[0]["low"]);
    let last = label(&buckets[buckets.len() - 1]["high"]);
    let _ = write!(
        s,
        r#"<text x="{PAD_L}" y="{}" class="tick">{}</text><text x="{}" y="{}" class="tick" text-anchor="end">{}</text></svg>"#,
        H - 12.0,
        esc(&first),
        W - 8.0,
        H - 12.0,
        esc(&last)
    );
    Some(Svg(s))
}

/// A horizontal bar from min to max with the 1st–99th and 25th–75th percentile ranges and the median marked.
/// `points` are (name, value) for min, p01, p25, p50, p75, p99, max.
pub fn quantile_bar(points: &[(&str, &Value)]) -> Option<Svg> {
    let vals: Vec<(&str, f64, String)> = points
        .iter()
        .filter_map(|(n, v)| num(v).map(|x| (*n, x, label(v))))
        .collect();
    let get = |name: &str| vals.iter().find(|(n, _, _)| *n == name).map(|(_, x, _)| *x);
    let (lo, hi) = (get("min")?, get("max")?);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let (w, h) = (560.0, 74.0);
    let x = |v: f64| 10.0 + (v - lo) / span * (w - 20.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart quantiles" viewBox="0 0 {w} {h}" role="img" aria-label="Quantiles from minimum to maximum" xmlns="http://www.w3.org/2000/svg"><title>Quantiles</title>"#
    );
    let _ = write!(
        s,
        r#"<line x1="{:.1}" y1="24" x2="{:.1}" y2="24" class="range"/>"#,
        x(lo),
        x(hi)
    );
    if let (Some(a), Some(b)) = (get("p01"), get("p99")) {
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="17" width="{:.1}" height="14" class="q-outer"><title>1st–99th percentile</title></rect>"#,
            x(a),
            (x(b) - x(a)).max(1.0)
        );
    }
    if let (Some(a), Some(b)) = (get("p25"), get("p75")) {
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="13" width="{:.1}" height="22" class="q-inner"><title>25th–75th percentile</title></rect>"#,
            x(a),
            (x(b) - x(a)).max(1.0)
        );
    }
    if let Some(m) = get("p50") {
        let _ = write!(
            s,
            r#"<line x1="{0:.1}" y1="10" x2="{0:.1}" y2="38" class="median"><title>median</title></line>"#,
            x(m)
        );
    }
    // labels: min and max at the ends, the median under its mark
    for (name, anchor, y) in [
        ("min", "start", 56.0),
        ("p50", "middle", 70.0),
        ("max", "end", 56.0),
    ] {
        if let Some((_, v, l)) = vals.iter().find(|(n, _, _)| *n == name) {
            let tx = match anchor {
                "start" => 10.0,
                "end" => w - 10.0,
                _ => x(*v),
            };
            let word = if name == "p50" { "median" } else { name };
            let _ = write!(
                s,
                r#"<text x="{tx:.1}" y="{y}" class="tick" text-anchor="{anchor}">{} {}</text>"#,
                word,
                esc(l)
            );
        }
    }
    s.push_str("</svg>");
    Some(Svg(s))
}

/// One point of a line chart: its time (milliseconds), its value, and the tooltip that names both.
pub struct Point {
    pub at: f64,
    pub value: f64,
    pub tip: String,
}

/// A line over time, one `<circle>` (with its tooltip as `<title>`) per point, the value axis from 0 to `top`
/// (or the largest value) labelled with `fmt`, and the first and last time under the axis.
pub fn line_chart(
    title: &str,
    points: &[Point],
    top: Option<f64>,
    fmt: &dyn Fn(f64) -> String,
    span: &(String, String),
) -> Option<Svg> {
    banded_chart(title, points, &[], top, fmt, span)
}

/// [`line_chart`] with an expected range drawn behind the line: `band` holds (time, low, high) points, joined
/// into one shaded polygon.
pub fn banded_chart(
    title: &str,
    points: &[Point],
    band: &[(f64, f64, f64)],
    top: Option<f64>,
    fmt: &dyn Fn(f64) -> String,
    (first, last): &(String, String),
) -> Option<Svg> {
    if points.is_empty() {
        return None;
    }
    let max = top
        .unwrap_or_else(|| {
            points
                .iter()
                .map(|p| p.value)
                .chain(band.iter().map(|b| b.2))
                .fold(0.0, f64::max)
        })
        .max(f64::MIN_POSITIVE);
    let (t0, t1) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.at), b.max(p.at)));
    let plot_w = W - PAD_L - 16.0;
    let plot_h = H - PAD_T - PAD_B;
    let base = PAD_T + plot_h;
    let x = |t: f64| {
        if t1 > t0 {
            PAD_L + 8.0 + (t - t0) / (t1 - t0) * (plot_w - 8.0)
        } else {
            PAD_L + plot_w / 2.0
        }
    };
    let y = |v: f64| base - (v / max).clamp(0.0, 1.0) * plot_h;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart history" viewBox="0 0 {W} {H}" role="img" aria-label="{}" data-points="{}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(title),
        points.len(),
        esc(title)
    );
    let _ = write!(
        s,
        r#"<line x1="{PAD_L}" y1="{base}" x2="{}" y2="{base}" class="axis"/><line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{base}" class="axis"/>"#,
        W - 8.0
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" class="tick" text-anchor="end">{}</text><text x="{}" y="{base}" class="tick" text-anchor="end">{}</text>"#,
        PAD_L - 4.0,
        PAD_T + 10.0,
        esc(&fmt(max)),
        PAD_L - 4.0,
        esc(&fmt(0.0))
    );
    if band.len() >= 2 {
        let upper = band.iter().map(|b| format!("{:.1},{:.1}", x(b.0), y(b.2)));
        let lower = band
            .iter()
            .rev()
            .map(|b| format!("{:.1},{:.1}", x(b.0), y(b.1)));
        let outline: Vec<String> = upper.chain(lower).collect();
        let _ = write!(
            s,
            r#"<polygon class="band" points="{}"><title>expected range</title></polygon>"#,
            outline.join(" ")
        );
    }
    let line: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.at), y(p.value)))
        .collect();
    let _ = write!(s, r#"<polyline class="line" points="{}"/>"#, line.join(" "));
    for p in points {
        let _ = write!(
            s,
            r#"<circle class="point" cx="{:.1}" cy="{:.1}" r="4"><title>{}</title></circle>"#,
            x(p.at),
            y(p.value),
            esc(&p.tip)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{PAD_L}" y="{}" class="tick">{}</text><text x="{}" y="{}" class="tick" text-anchor="end">{}</text></svg>"#,
        H - 12.0,
        esc(first),
        W - 8.0,
        H - 12.0,
        esc(last)
    );
    Some(Svg(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_in_charts_is_escaped() {
        let b = vec![json!({"low": "<script>", "high": "x&y", "count": 3})];
        let svg = histogram(&b, "a <b> \"c\"").unwrap().0;
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("a &lt;b&gt; &quot;c&quot;"));
    }

    #[test]
    fn quantile_bar_needs_min_and_max() {
        assert!(quantile_bar(&[("p50", &json!(3))]).is_none());
        let (a, b, c) = (json!(0), json!(5), json!(10));
        let svg = quantile_bar(&[("min", &a), ("p50", &b), ("max", &c)])
            .unwrap()
            .0;
        assert!(svg.contains("median 5"));
    }

    #[test]
    fn line_chart_has_a_point_per_profile_and_escapes_text() {
        let pts = [(1000.0, 3.0), (2000.0, 5.0)].map(|(at, value)| Point {
            at,
            value,
            tip: format!("<b>{value}</b>"),
        });
        let span = ("<t0>".to_string(), "t1".to_string());
        let svg = line_chart("rows of <x>", &pts, None, &|v| format!("{v:.0}"), &span)
            .unwrap()
            .0;
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("<title>&lt;b&gt;5&lt;/b&gt;</title>"));
        assert!(svg.contains("rows of &lt;x&gt;") && svg.contains("&lt;t0&gt;"));
        assert!(!svg.contains("<b>") && !svg.contains("<x>"));
        assert!(line_chart("t", &[], None, &|v| v.to_string(), &span).is_none());
    }
}
