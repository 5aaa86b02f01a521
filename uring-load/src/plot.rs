//! SVG line charts for `uring-load report`: the log-scale percentile plot of HdrHistogram
//! (x = 1/(1-percentile) on a log axis labelled 50%, 90%, 99%, 99.9%, ...) and plain
//! time series, several series overlaid.
//!
//! Written for the report rather than taken from a plotting crate so that every series
//! is a `<g class="series sN" data-series="N">` with `<title>` tooltips on its points: the
//! HTML page's script toggles series by legend click and needs those hooks. The output is
//! one self-contained `<svg>` element (no fonts, images or scripts of its own).

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Series colours, in order; chosen to stay apart for colour-blind readers.
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// What the x axis shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum XAxis {
    /// Percentiles: x values are 1/(1-q), drawn on a log axis.
    Percentile,
    /// Seconds since the start, linear.
    Seconds,
}

/// What the y axis shows (for tick labels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum YAxis {
    /// Microseconds, labelled in us, ms or s.
    Latency,
    /// A rate, labelled 10k, 1.5M.
    PerSecond,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// Index into [`PALETTE`] (wraps) and the `sN` class.
    pub index: usize,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

#[derive(Debug, Clone)]
pub struct Chart {
    /// The `<svg>` element's id.
    pub id: String,
    pub title: String,
    pub x: XAxis,
    pub y: YAxis,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

/// The percentile curve of a histogram: (1/(1-q), value) from 0% to the last percentile
/// before 100%, then the maximum one decade further (the convention of HdrHistogram's
/// plots: 100% has no finite x).
pub fn percentile_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut pts = Vec::new();
    if h.is_empty() {
        return pts;
    }
    let mut last_x = 1.0f64;
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        if q >= 1.0 {
            break;
        }
        let x = 1.0 / (1.0 - q);
        pts.push((x, h.highest_equivalent(v.value_iterated_to()) as f64));
        last_x = x;
    }
    // The maximum at the next power of ten (at least a decade past the last point's).
    let end = 10f64.powf((last_x.log10() + 1.0).floor().max(1.0));
    pts.push((end, h.max() as f64));
    pts
}

/// Label of a percentile tick at x = 1/(1-q): "0%", "50%", "90%", "99.9%", ...
pub fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    let mut digits = 0;
    while digits < 9 && ((p * 10f64.powi(digits)).round() - p * 10f64.powi(digits)).abs() > 1e-6 {
        digits += 1;
    }
    format!("{p:.*}%", digits as usize)
}

/// Tick label of a latency in microseconds.
pub fn latency_label(us: f64) -> String {
    fn trim(v: f64) -> String {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
    if us == 0.0 {
        "0".into()
    } else if us < 1_000.0 {
        format!("{}us", trim(us))
    } else if us < 1_000_000.0 {
        format!("{}ms", trim(us / 1e3))
    } else {
        format!("{}s", trim(us / 1e6))
    }
}

fn rate_label(v: f64) -> String {
    fn trim(v: f64) -> String {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
    if v >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if v >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

/// A "nice" step (1, 2 or 5 times a power of ten) giving about `n` ticks over `range`.
pub fn nice_step(range: f64, n: usize) -> f64 {
    if range <= 0.0 || !range.is_finite() {
        return 1.0;
    }
    let raw = range / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Escape text for XML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

pub const WIDTH: f64 = 900.0;
pub const HEIGHT: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 44.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 56.0;

/// The plot area's rectangle within the chart: (x, y, width, height).
pub fn plot_area() -> (f64, f64, f64, f64) {
    (LEFT, TOP, WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM)
}

/// Draw `chart` as one `<svg>` element `WIDTH` x `HEIGHT`, translated by nothing.
pub fn svg(chart: &Chart) -> String {
    let (px, py, pw, ph) = plot_area();
    let all = chart.series.iter().flat_map(|s| s.points.iter());
    let (mut x_max, mut y_max) = (0f64, 0f64);
    for &(x, y) in all {
        if x.is_finite() {
            x_max = x_max.max(x);
        }
        if y.is_finite() {
            y_max = y_max.max(y);
        }
    }
    // X domain and ticks.
    let (x_lo, x_hi, x_ticks): (f64, f64, Vec<(f64, String)>) = match chart.x {
        XAxis::Percentile => {
            let decades = x_max.max(100.0).log10().ceil() as i32;
            let mut ticks = vec![(1.0, percentile_label(1.0)), (2.0, percentile_label(2.0))];
            for d in 1..=decades {
                let x = 10f64.powi(d);
                ticks.push((x, percentile_label(x)));
            }
            (1.0, 10f64.powi(decades), ticks)
        }
        XAxis::Seconds => {
            let hi = if x_max > 0.0 { x_max } else { 1.0 };
            let step = nice_step(hi, 8);
            let n = (hi / step).floor() as usize;
            let ticks = (0..=n)
                .map(|k| {
                    let v = k as f64 * step;
                    (v, format!("{}s", rate_label(v)))
                })
                .collect();
            (0.0, hi, ticks)
        }
    };
    let to_x = |x: f64| -> f64 {
        let f = match chart.x {
            XAxis::Percentile => {
                (x.max(1.0).log10() - x_lo.log10()) / (x_hi.log10() - x_lo.log10())
            }
            XAxis::Seconds => (x - x_lo) / (x_hi - x_lo),
        };
        px + f.clamp(0.0, 1.0) * pw
    };
    // Y domain: 0 to a nice ceiling above the largest value.
    let y_step = nice_step(if y_max > 0.0 { y_max } else { 1.0 }, 5);
    let y_hi = ((y_max / y_step).ceil().max(1.0)) * y_step;
    let to_y = |y: f64| -> f64 { py + ph - (y / y_hi).clamp(0.0, 1.0) * ph };
    let y_fmt = |v: f64| match chart.y {
        YAxis::Latency => latency_label(v),
        YAxis::PerSecond => rate_label(v),
    };

    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" id="{}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12" role="img" aria-label="{}">"#,
        esc(&chart.id),
        esc(&chart.title)
    );
    let _ = writeln!(
        o,
        r##"<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/><text x="{px}" y="24" font-size="16" font-weight="bold" fill="#222">{}</text>"##,
        esc(&chart.title)
    );
    // Grid and tick labels.
    let _ = writeln!(o, r##"<g class="grid" stroke="#e3e3e3" stroke-width="1">"##);
    for (x, _) in &x_ticks {
        let sx = to_x(*x);
        let _ = writeln!(
            o,
            r#"<line x1="{sx:.1}" y1="{py}" x2="{sx:.1}" y2="{:.1}"/>"#,
            py + ph
        );
    }
    let n_y = (y_hi / y_step).round() as usize;
    for k in 0..=n_y {
        let sy = to_y(k as f64 * y_step);
        let _ = writeln!(
            o,
            r#"<line x1="{px}" y1="{sy:.1}" x2="{:.1}" y2="{sy:.1}"/>"#,
            px + pw
        );
    }
    let _ = writeln!(o, "</g>");
    let _ = writeln!(o, r##"<g class="axes" fill="#444">"##);
    for (x, label) in &x_ticks {
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            to_x(*x),
            py + ph + 18.0,
            esc(label)
        );
    }
    for k in 0..=n_y {
        let v = k as f64 * y_step;
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            px - 8.0,
            to_y(v) + 4.0,
            esc(&y_fmt(v))
        );
    }
    let _ = writeln!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        px + pw / 2.0,
        HEIGHT - 12.0,
        esc(&chart.x_label)
    );
    let _ = writeln!(
        o,
        r#"<text transform="translate(16,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        py + ph / 2.0,
        esc(&chart.y_label)
    );
    let _ = writeln!(
        o,
        r##"<rect x="{px}" y="{py}" width="{pw}" height="{ph}" fill="none" stroke="#999"/></g>"##
    );
    // Series.
    for s in &chart.series {
        let color = PALETTE[s.index % PALETTE.len()];
        let _ = writeln!(
            o,
            r#"<g class="series s{}" data-series="{}" data-name="{}">"#,
            s.index,
            s.index,
            esc(&s.name)
        );
        let pts: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", to_x(x), to_y(y)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            o,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash} stroke-linejoin="round"><title>{}</title></polyline>"#,
            pts.join(" "),
            esc(&s.name)
        );
        for &(x, y) in s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
        {
            let xl = match chart.x {
                XAxis::Percentile => percentile_label(x),
                XAxis::Seconds => format!("{x:.1}s"),
            };
            let _ = writeln!(
                o,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{color}"><title>{}: {} at {}</title></circle>"#,
                to_x(x),
                to_y(y),
                esc(&s.name),
                esc(&y_fmt(y)),
                esc(&xl)
            );
        }
        let _ = writeln!(o, "</g>");
    }
    // Legend, top left inside the plot area.
    let _ = writeln!(o, r#"<g class="legend">"#);
    for (k, s) in chart.series.iter().enumerate() {
        let color = PALETTE[s.index % PALETTE.len()];
        let ly = py + 16.0 + 18.0 * k as f64;
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            o,
            r##"<g class="key s{}" data-series="{}"><rect x="{:.1}" y="{:.1}" width="{:.1}" height="16" fill="#ffffff" fill-opacity="0.8"/><line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3"{dash}/><text x="{:.1}" y="{:.1}" fill="#222">{}</text></g>"##,
            s.index,
            s.index,
            px + 8.0,
            ly - 10.0,
            40.0 + 7.0 * s.name.chars().count() as f64,
            px + 14.0,
            px + 38.0,
            px + 44.0,
            ly + 4.0,
            esc(&s.name)
        );
    }
    let _ = writeln!(o, "</g>\n</svg>");
    o
}

/// Several charts stacked into one standalone SVG document (for `--svg`).
pub fn svg_document(charts: &[Chart]) -> String {
    let height = HEIGHT * charts.len().max(1) as f64;
    let mut o = String::new();
    let _ = writeln!(o, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">"#
    );
    for (k, c) in charts.iter().enumerate() {
        let inner = svg(c).replacen(
            "<svg ",
            &format!(r#"<svg y="{:.0}" "#, HEIGHT * k as f64),
            1,
        );
        o.push_str(&inner);
    }
    o.push_str("</svg>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use uring_common::stats::recorder::new_latency_histogram;

    #[test]
    fn percentile_labels() {
        let labels: Vec<String> = [1.0, 2.0, 10.0, 100.0, 1000.0, 1e4, 1e6]
            .into_iter()
            .map(percentile_label)
            .collect();
        assert_eq!(
            labels,
            ["0%", "50%", "90%", "99%", "99.9%", "99.99%", "99.9999%"]
        );
    }

    #[test]
    fn percentile_curve_of_a_known_histogram() {
        let mut h = new_latency_histogram();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let pts = percentile_points(&h);
        assert_eq!(pts[0].0, 1.0);
        // x grows, values never fall.
        assert!(pts.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1));
        // The point nearest 99% is about 9900.
        let p99 = pts
            .iter()
            .min_by(|a, b| (a.0 - 100.0).abs().total_cmp(&(b.0 - 100.0).abs()))
            .unwrap();
        assert!((p99.1 - 9_900.0).abs() < 60.0, "{p99:?}");
        // Last point: the maximum, a decade past the last finite percentile.
        let last = *pts.last().unwrap();
        assert!(h.equivalent(last.1 as u64, 10_000));
        assert!(last.0 >= 10_000.0, "{last:?}");
        assert!(percentile_points(&new_latency_histogram()).is_empty());
    }

    #[test]
    fn nice_steps_and_labels() {
        assert_eq!(nice_step(10.0, 5), 2.0);
        assert_eq!(nice_step(7_300.0, 5), 2_000.0);
        assert_eq!(nice_step(0.3, 5), 0.1);
        assert_eq!(latency_label(1500.0), "1.5ms");
        assert_eq!(latency_label(250.0), "250us");
        assert_eq!(latency_label(2_000_000.0), "2s");
        assert_eq!(rate_label(125_000.0), "125k");
        assert_eq!(esc("<a&'\">"), "&lt;a&amp;&#39;&quot;&gt;");
    }

    #[test]
    fn svg_has_axes_series_and_escapes_names() {
        let chart = Chart {
            id: "percentiles".into(),
            title: "Latency by percentile".into(),
            x: XAxis::Percentile,
            y: YAxis::Latency,
            x_label: "percentile".into(),
            y_label: "latency".into(),
            series: vec![
                Series {
                    name: "a<b>".into(),
                    index: 0,
                    points: vec![(1.0, 100.0), (10.0, 200.0), (1000.0, 1000.0)],
                    dashed: false,
                },
                Series {
                    name: "second".into(),
                    index: 1,
                    points: vec![(1.0, 50.0), (100.0, 400.0)],
                    dashed: true,
                },
            ],
        };
        let s = svg(&chart);
        for needle in [
            ">0%<",
            ">50%<",
            ">90%<",
            ">99%<",
            ">99.9%<",
            "a&lt;b&gt;",
            r#"class="series s1""#,
            "stroke-dasharray",
            "#1f77b4",
            "#d62728",
            ">1ms<",
        ] {
            assert!(s.contains(needle), "{needle} missing:\n{s}");
        }
        assert!(!s.contains("a<b>"));
        assert_eq!(s.matches("<svg").count(), s.matches("</svg>").count());
        assert_eq!(s.matches("<g").count(), s.matches("</g>").count());
        // The first point sits on the left edge, the highest at the top of the plot area.
        let (px, py, _, _) = plot_area();
        assert!(s.contains(&format!(r#"<circle cx="{px:.1}""#)), "{s}");
        assert!(s.contains(&format!(r#"cy="{py:.1}""#)), "{s}");
        let doc = svg_document(&[chart.clone(), chart]);
        assert!(doc.starts_with("<?xml"));
        assert!(doc.contains(r#"<svg y="420" "#));
    }
}
