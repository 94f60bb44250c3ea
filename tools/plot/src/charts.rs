//! The charts, drawn with `plotters` into PNG files:
//!
//! - `latency-distribution.png`: the latency of an HTTP request at each
//!   percentile, one line per deployment and rate. The percentile axis
//!   is spaced as HDR histogram plots are (0, 90, 99, 99.9, 99.99 evenly),
//!   so the tail gets as much room as the median.
//! - `throughput-vs-users.png`: HTTP requests per second against the
//!   number of users with no think time, one line per deployment.
//! - `latency-vs-users.png`: the median and 99th percentile latency
//!   against the number of users.
//!
//! Text is drawn in DejaVu Sans, bundled (see fonts/), so the charts
//! come out the same on any machine.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::results::Results;

/// Size of every chart, in pixels.
const SIZE: (u32, u32) = (960, 600);
/// The highest percentile drawn (100 is infinitely far on this axis).
const TOP_PERCENTILE: f64 = 99.99;
/// The font family every text uses.
const FONT: &str = "sans-serif";

/// One colour per line, in order.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Registers the bundled font; once per process is enough, more is harmless.
fn register_bundled_font() -> anyhow::Result<()> {
    static FONT_FILE: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
    register_font(FONT, FontStyle::Normal, FONT_FILE)
        .map_err(|_| anyhow!("the bundled font fonts/DejaVuSans.ttf cannot be read"))
}

/// Draws every chart the results allow into `out`; the files written.
pub fn draw_all(results: &Results, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    register_bundled_font()?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut written = Vec::new();
    if !results.by_rate.is_empty() {
        let path = out.join("latency-distribution.png");
        latency_distribution(results, &path)?;
        written.push(path);
    }
    if !results.by_users.is_empty() {
        let path = out.join("throughput-vs-users.png");
        throughput_vs_users(results, &path)?;
        written.push(path);
        let path = out.join("latency-vs-users.png");
        latency_vs_users(results, &path)?;
        written.push(path);
    }
    Ok(written)
}

/// Where percentile `q` sits on the HDR axis: 90 → 1, 99 → 2, 99.9 → 3.
fn hdr_position(q: f64) -> f64 {
    -(1.0 - q.min(TOP_PERCENTILE) / 100.0).log10()
}

/// The percentile at HDR axis position `x`, as a label.
fn hdr_label(x: f64) -> String {
    let q = 100.0 * (1.0 - 10f64.powf(-x));
    let text = format!("{q:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// An axis number on an axis that runs up to `top`: one decimal if the
/// axis is short, none otherwise.
fn axis_number(y: f64, top: f64) -> String {
    if top < 10.0 {
        format!("{y:.1}")
    } else {
        format!("{y:.0}")
    }
}

/// One line of a chart: its legend and its points.
type Line = (String, Vec<(f64, f64)>);

/// What sets a chart apart from the others.
struct Chart<'a> {
    title: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    /// The x axis runs from 0 to this.
    x_end: f64,
    /// How many labels the x axis gets, and what each says.
    x_labels: usize,
    x_label: &'a dyn Fn(&f64) -> String,
    /// Whether each point is marked (sparse data) or only joined.
    marks: bool,
}

/// A rounded-up top for an axis that must show every line's points.
fn y_top(lines: &[Line]) -> f64 {
    let max = lines
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    max * 1.1
}

fn latency_distribution(results: &Results, path: &Path) -> anyhow::Result<()> {
    let lines: Vec<Line> = results
        .by_rate
        .iter()
        .flat_map(|(deployment, runs)| {
            runs.iter().map(move |(rate, run)| {
                let points = run
                    .distribution
                    .iter()
                    .filter(|(q, _)| *q <= TOP_PERCENTILE)
                    .map(|&(q, ms)| (hdr_position(q), ms))
                    .collect();
                (format!("{deployment}, {rate} tasks/s"), points)
            })
        })
        .collect();
    let chart = Chart {
        title: "Latency of an HTTP request by percentile, at a fixed rate",
        x_desc: "percentile",
        y_desc: "latency (ms)",
        x_end: hdr_position(TOP_PERCENTILE),
        x_labels: 5,
        x_label: &|x| hdr_label(*x),
        marks: false,
    };
    draw(path, &chart, lines)
}

fn throughput_vs_users(results: &Results, path: &Path) -> anyhow::Result<()> {
    let lines = results
        .by_users
        .iter()
        .map(|(deployment, runs)| {
            let points = runs
                .iter()
                .map(|(users, run)| (f64::from(*users), run.requests_per_second))
                .collect();
            (deployment.clone(), points)
        })
        .collect();
    users_chart(
        path,
        "HTTP requests per second against users (no think time)",
        "requests per second",
        lines,
    )
}

fn latency_vs_users(results: &Results, path: &Path) -> anyhow::Result<()> {
    let mut lines = Vec::new();
    for (deployment, runs) in &results.by_users {
        let p50 = runs
            .iter()
            .map(|(users, run)| (f64::from(*users), run.p50_ms));
        lines.push((format!("{deployment} p50"), p50.collect()));
        let p99 = runs
            .iter()
            .map(|(users, run)| (f64::from(*users), run.p99_ms));
        lines.push((format!("{deployment} p99"), p99.collect()));
    }
    users_chart(
        path,
        "Latency of an HTTP request against users (no think time)",
        "latency (ms)",
        lines,
    )
}

/// A chart against the number of users, on a log2 axis (1, 2, 4, 8...
/// evenly spaced), its points marked.
fn users_chart(path: &Path, title: &str, y_desc: &str, lines: Vec<Line>) -> anyhow::Result<()> {
    let lines: Vec<Line> = lines
        .into_iter()
        .map(|(label, points)| {
            let points = points
                .into_iter()
                .map(|(users, y)| (users.max(1.0).log2(), y))
                .collect();
            (label, points)
        })
        .collect();
    let x_end = lines
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.0))
        .fold(1f64, f64::max)
        .ceil();
    let chart = Chart {
        title,
        x_desc: "users",
        y_desc,
        x_end,
        x_labels: x_end as usize + 1,
        x_label: &|x| format!("{:.0}", x.exp2()),
        marks: true,
    };
    draw(path, &chart, lines)
}

/// Draws `lines` as `chart` says into a PNG at `path`.
fn draw(path: &Path, chart: &Chart<'_>, lines: Vec<Line>) -> anyhow::Result<()> {
    let top = y_top(&lines);
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let mut context = ChartBuilder::on(&root)
        .caption(chart.title, (FONT, 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..chart.x_end, 0f64..top)
        .map_err(draw_error)?;
    context
        .configure_mesh()
        .x_desc(chart.x_desc)
        .y_desc(chart.y_desc)
        .x_labels(chart.x_labels)
        .x_label_formatter(chart.x_label)
        .y_label_formatter(&|y| axis_number(*y, top))
        .label_style((FONT, 15))
        .draw()
        .map_err(draw_error)?;
    for (i, (label, points)) in lines.into_iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        if chart.marks {
            context
                .draw_series(points.iter().map(|p| Circle::new(*p, 4, colour.filled())))
                .map_err(draw_error)?;
        }
        context
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(draw_error)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2))
            });
    }
    context
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(draw_error)?;
    root.present().map_err(draw_error)?;
    Ok(())
}

/// plotters' errors borrow the backend's; this keeps their message.
fn draw_error<E: std::fmt::Display>(error: E) -> anyhow::Error {
    anyhow!("drawing failed: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentile_axis_puts_each_nine_one_step_further() {
        for (q, x) in [
            (0.0, 0.0),
            (90.0, 1.0),
            (99.0, 2.0),
            (99.9, 3.0),
            (99.99, 4.0),
        ] {
            assert!((hdr_position(q) - x).abs() < 1e-9, "{q}");
        }
        assert_eq!(hdr_label(0.0), "0%");
        assert_eq!(hdr_label(1.0), "90%");
        assert_eq!(hdr_label(3.0), "99.9%");
    }
}
