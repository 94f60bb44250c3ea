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

/// A rounded-up top for an axis that must show `max`.
fn headroom(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    max * 1.1
}

fn latency_distribution(results: &Results, path: &Path) -> anyhow::Result<()> {
    let lines: Vec<(String, Vec<(f64, f64)>)> = results
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
    let top = headroom(
        lines
            .iter()
            .flat_map(|(_, points)| points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Latency of an HTTP request by percentile, at a fixed rate",
            (FONT, 22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..hdr_position(TOP_PERCENTILE), 0f64..top)
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_labels(5)
        .x_label_formatter(&|x| hdr_label(*x))
        .y_label_formatter(&|y| axis_number(*y, top))
        .label_style((FONT, 15))
        .draw()
        .map_err(draw_error)?;
    for (i, (label, points)) in lines.into_iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(draw_error)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2))
            });
    }
    legend(&mut chart)?;
    root.present().map_err(draw_error)?;
    Ok(())
}

fn throughput_vs_users(results: &Results, path: &Path) -> anyhow::Result<()> {
    let lines: Vec<(String, Vec<(f64, f64)>)> = results
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
        for (name, pick) in [("p50", 0), ("p99", 1)] {
            let points = runs
                .iter()
                .map(|(users, run)| {
                    let ms = if pick == 0 { run.p50_ms } else { run.p99_ms };
                    (f64::from(*users), ms)
                })
                .collect();
            lines.push((format!("{deployment} {name}"), points));
        }
    }
    users_chart(
        path,
        "Latency of an HTTP request against users (no think time)",
        "latency (ms)",
        lines,
    )
}

/// A chart with users on a log axis and one line (with its points marked)
/// per series.
fn users_chart(
    path: &Path,
    title: &str,
    y_desc: &str,
    lines: Vec<(String, Vec<(f64, f64)>)>,
) -> anyhow::Result<()> {
    // Users on a log2 axis: 1, 2, 4, 8... evenly spaced.
    let lines: Vec<(String, Vec<(f64, f64)>)> = lines
        .into_iter()
        .map(|(label, points)| {
            let points = points
                .into_iter()
                .map(|(x, y)| (x.max(1.0).log2(), y))
                .collect();
            (label, points)
        })
        .collect();
    let max_x = lines
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.0))
        .fold(1f64, f64::max)
        .ceil();
    let top = headroom(
        lines
            .iter()
            .flat_map(|(_, points)| points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..max_x, 0f64..top)
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("users")
        .y_desc(y_desc)
        .x_labels(max_x as usize + 1)
        .x_label_formatter(&|x| format!("{:.0}", x.exp2()))
        .y_label_formatter(&|y| axis_number(*y, top))
        .label_style((FONT, 15))
        .draw()
        .map_err(draw_error)?;
    for (i, (label, points)) in lines.into_iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(draw_error)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 4, colour.filled())),
            )
            .map_err(draw_error)?;
    }
    legend(&mut chart)?;
    root.present().map_err(draw_error)?;
    Ok(())
}

fn legend<'a, X, Y>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, Y>>,
) -> anyhow::Result<()>
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(draw_error)
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
