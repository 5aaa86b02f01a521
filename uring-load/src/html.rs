//! The self-contained HTML report page: the summary table and the charts as inline SVG,
//! with inline CSS and a small inline script (legend click hides or shows a run in every
//! chart; hovering a point shows its value). Nothing is fetched: no fonts, scripts,
//! styles or images from anywhere, so the page works offline and from a mail attachment.
//!
//! When its script has run, the page sets `data-charts-ready="N"` on `<body>` (N = the
//! number of charts) and appends " (ready)" to the title: the browser test reads those.

use std::fmt::Write as _;

use crate::plot::{esc, Chart, PALETTE};

const STYLE: &str = r#"
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 24px; color: #222; background: #fafafa; }
h1 { font-size: 22px; margin: 0 0 8px 0; }
p.note { color: #555; max-width: 900px; font-size: 13px; }
table.summary { border-collapse: collapse; margin: 12px 0 20px 0; background: #fff; font-size: 13px; }
table.summary th, table.summary td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
table.summary th:first-child, table.summary td:first-child { text-align: left; }
table.summary thead th { background: #eee; }
figure { margin: 0 0 18px 0; background: #fff; border: 1px solid #ddd; width: 900px; }
figure svg { display: block; }
#readout { font-size: 13px; min-height: 1.4em; color: #333; }
g.key { cursor: pointer; }
"#;

const SCRIPT: &str = r#"
(function () {
  "use strict";
  var body = document.body;
  var keys = document.querySelectorAll("g.key");
  for (var i = 0; i < keys.length; i++) {
    keys[i].addEventListener("click", function (ev) {
      var s = ev.currentTarget.getAttribute("data-series");
      body.classList.toggle("hide-s" + s);
    });
  }
  var readout = document.getElementById("readout");
  var dots = document.querySelectorAll("g.series circle");
  for (var j = 0; j < dots.length; j++) {
    dots[j].addEventListener("mouseenter", function (ev) {
      var t = ev.currentTarget.querySelector("title");
      readout.textContent = t ? t.textContent : "";
    });
  }
  var charts = document.querySelectorAll("svg.chart");
  body.setAttribute("data-charts-ready", String(charts.length));
  document.title = document.title + " (ready)";
})();
"#;

/// The whole page.
pub fn page(title: &str, header: &[&str], rows: &[Vec<String>], charts: &[Chart]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "<!DOCTYPE html>");
    let _ = writeln!(o, r#"<html lang="en"><head><meta charset="utf-8">"#);
    // No network: the policy forbids every fetch; inline style and script are allowed.
    let _ = writeln!(
        o,
        r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">"#
    );
    let _ = writeln!(o, "<title>{}</title>", esc(title));
    let _ = write!(o, "<style>{STYLE}");
    // One rule per series: hidden runs and their dimmed legend keys.
    let n = charts
        .iter()
        .flat_map(|c| c.series.iter().map(|s| s.index + 1))
        .max()
        .unwrap_or(0);
    for s in 0..n {
        let _ = writeln!(
            o,
            "body.hide-s{s} g.series.s{s} {{ display: none; }} body.hide-s{s} g.key.s{s} {{ opacity: 0.35; }}"
        );
    }
    let _ = writeln!(o, "</style></head>");
    let _ = writeln!(o, "<body>");
    let _ = writeln!(o, "<h1>{}</h1>", esc(title));
    let _ = writeln!(o, r#"<table class="summary"><thead><tr>"#);
    for h in header {
        let _ = write!(o, "<th>{}</th>", esc(h));
    }
    let _ = writeln!(o, "</tr></thead><tbody>");
    for (k, r) in rows.iter().enumerate() {
        let _ = write!(o, "<tr>");
        for (c, cell) in r.iter().enumerate() {
            if c == 0 {
                let color = PALETTE[k % PALETTE.len()];
                let _ = write!(
                    o,
                    r#"<td style="border-left: 6px solid {color}">{}</td>"#,
                    esc(cell)
                );
            } else {
                let _ = write!(o, "<td>{}</td>", esc(cell));
            }
        }
        let _ = writeln!(o, "</tr>");
    }
    let _ = writeln!(o, "</tbody></table>");
    let _ = writeln!(
        o,
        r#"<p class="note">The percentile plot spreads the tail out: each step right is ten times rarer (90%, 99%, 99.9%, ...). Click a run in a legend to hide or show it in every chart; hover a point for its value.</p>"#
    );
    let _ = writeln!(o, r#"<div id="readout"></div>"#);
    for c in charts {
        let _ = writeln!(o, r#"<figure id="fig-{}">"#, esc(&c.id));
        o.push_str(&crate::plot::svg(c));
        let _ = writeln!(o, "</figure>");
    }
    let _ = writeln!(o, "<script>{SCRIPT}</script>");
    let _ = writeln!(o, "</body></html>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::{Series, XAxis, YAxis};

    #[test]
    fn page_is_self_contained_and_escaped() {
        let chart = Chart {
            id: "percentiles".into(),
            title: "t".into(),
            x: XAxis::Percentile,
            y: YAxis::Latency,
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series {
                name: "run".into(),
                index: 2,
                points: vec![(1.0, 1.0), (10.0, 2.0)],
                dashed: false,
            }],
        };
        let page = page(
            "a <report>",
            &["run", "p99"],
            &[vec!["x&y".into(), "1ms".into()]],
            &[chart],
        );
        assert!(page.contains("<title>a &lt;report&gt;</title>"));
        assert!(page.contains("<td style=\"border-left: 6px solid #1f77b4\">x&amp;y</td>"));
        assert!(page.contains("<figure id=\"fig-percentiles\">\n<svg"));
        assert!(page.contains("body.hide-s2 g.series.s2"));
        // Nothing to fetch: no external URL anywhere but the SVG namespace name.
        let without_ns = page.replace("http://www.w3.org/2000/svg", "");
        assert!(!without_ns.contains("http://") && !without_ns.contains("https://"));
        assert!(!page.contains(" src=") && !page.contains(" href="));
    }
}
