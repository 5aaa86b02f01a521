//! SVG bar charts of a comparison, drawn with plotters' SVG backend only: text is left to
//! the SVG viewer, so no font files are needed to build or run.
//!
//! Horizontal bars, one per cell, labelled inside the plot (`server / tool  value`),
//! with a whisker from the fastest to the slowest run.

use plotters::prelude::*;
use std::path::Path;

/// One bar: its label, median value, min and max over runs, and its colour group.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub min: f64,
    pub max: f64,
    pub group: usize,
    /// Drawn paler: the load tool's side where server and tool bars alternate.
    pub pale: bool,
}

const COLOURS: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
];

pub fn bar_chart(path: &Path, title: &str, unit: &str, bars: &[Bar]) -> Result<(), String> {
    if bars.is_empty() {
        return Ok(());
    }
    let n = bars.len();
    let height = 90 + 26 * n as u32;
    let top = bars
        .iter()
        .map(|b| b.max.max(b.value))
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let root = SVGBackend::new(path, (960, height)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("chart {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(8)
        .build_cartesian_2d(0.0..top * 1.65, 0.0..n as f64)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_desc(unit)
        .x_label_formatter(&|v| short(*v))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, b) in bars.iter().enumerate() {
        // The first bar at the top.
        let y = (n - 1 - i) as f64;
        let colour = COLOURS[b.group % COLOURS.len()];
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, y + 0.15), (b.value, y + 0.85)],
                colour.mix(if b.pale { 0.4 } else { 0.85 }).filled(),
            )))
            .map_err(|e| err(&e))?;
        if b.max > b.min {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(b.min, y + 0.5), (b.max, y + 0.5)],
                    BLACK.stroke_width(2),
                )))
                .map_err(|e| err(&e))?;
        }
        let text = format!("{}  {}", b.label, short(b.value));
        chart
            .draw_series(std::iter::once(Text::new(
                text,
                (b.max.max(b.value) + top * 0.02, y + 0.7),
                ("sans-serif", 14).into_font(),
            )))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// `125300.0` -> `125k`, `2.1e6` -> `2.10M`, `5.3` -> `5.30`.
fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_every_label() {
        let dir = std::env::temp_dir().join(format!("bench-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.svg");
        let bars = vec![
            Bar {
                label: "nginx / wrk".into(),
                value: 125_000.0,
                min: 120_000.0,
                max: 130_000.0,
                group: 0,
                pale: false,
            },
            Bar {
                label: "floor / wrk".into(),
                value: 185_000.0,
                min: 185_000.0,
                max: 185_000.0,
                group: 1,
                pale: true,
            },
        ];
        bar_chart(&path, "ka64", "requests per second", &bars).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("nginx / wrk"));
        assert!(svg.contains("floor / wrk  185k"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
