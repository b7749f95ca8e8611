//! The figures of the `plot` stage: a dataset's samples, a trajectory, and its solver's work.

use super::{
    figure_path, heatmap_panel, line_chart, series, Axis, Heatmap, Line, PlotError, SERIES,
};
use crate::config::ImageFormat;
use ndarray::Array2;
use plotters::style::RGBColor;
use std::path::{Path, PathBuf};

/// One 1-D field of one sample.
pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// The sample's position among those drawn (its colour).
    pub sample: usize,
    /// An input, drawn lighter than the output of the same sample.
    pub input: bool,
}

/// `NAME`: 1-D fields as lines, each sample in its own colour, its input lighter.
pub fn curves(
    dir: &Path,
    format: ImageFormat,
    name: &str,
    caption: &str,
    curves: Vec<Curve>,
) -> Result<PathBuf, PlotError> {
    let lines: Vec<Line> = curves
        .into_iter()
        .map(|c| {
            let color = series(c.sample);
            let color = if c.input { lighter(color) } else { color };
            Line::new(c.label, c.points, color)
        })
        .collect();
    line_chart(
        &figure_path(dir, name, format),
        format,
        caption,
        Axis::linear("x"),
        Axis::linear("value"),
        &lines,
    )
}

/// `NAME`: titled 2-D fields as heatmaps, `cols` per row, each on its own colour scale.
pub fn maps(
    dir: &Path,
    format: ImageFormat,
    name: &str,
    caption: &str,
    cols: usize,
    fields: &[(String, Array2<f64>)],
) -> Result<PathBuf, PlotError> {
    let maps: Vec<Heatmap> = fields
        .iter()
        .map(|(title, a)| Heatmap::new(title.clone(), a.view()))
        .collect();
    heatmap_panel(
        &figure_path(dir, name, format),
        format,
        caption,
        cols,
        &maps,
    )
}

/// `iterations`: the solver's iterations per sample, converged and not converged apart.
pub fn iterations(
    dir: &Path,
    format: ImageFormat,
    caption: &str,
    iterations: &[f64],
    converged: &[bool],
) -> Result<PathBuf, PlotError> {
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for (i, (&it, &c)) in iterations.iter().zip(converged).enumerate() {
        if c {
            ok.push((i as f64, it));
        } else {
            bad.push((i as f64, it));
        }
    }
    let mut lines = vec![Line::scatter(
        format!("converged ({})", ok.len()),
        ok,
        SERIES[0],
    )];
    if !bad.is_empty() {
        lines.push(Line::scatter(
            format!("not converged ({})", bad.len()),
            bad,
            SERIES[3],
        ));
    }
    line_chart(
        &figure_path(dir, "iterations", format),
        format,
        caption,
        Axis::counts("sample index"),
        Axis::linear("iterations"),
        &lines,
    )
}

/// `residuals`: relative residual against iteration, one line per labelled history.
pub fn residuals(
    dir: &Path,
    format: ImageFormat,
    caption: &str,
    histories: &[(String, Vec<f64>)],
) -> Result<PathBuf, PlotError> {
    let lines: Vec<Line> = histories
        .iter()
        .enumerate()
        .map(|(k, (label, h))| Line::nth(label.clone(), residual_points(h), k))
        .collect();
    line_chart(
        &figure_path(dir, "residuals", format),
        format,
        caption,
        Axis::counts("iteration"),
        Axis::log("relative residual ‖b − Ax‖ / ‖b‖"),
        &lines,
    )
}

/// A residual history as points `(iteration, residual)`, iterations counted from 1.
pub fn residual_points(history: &[f64]) -> Vec<(f64, f64)> {
    history
        .iter()
        .enumerate()
        .map(|(i, &r)| ((i + 1) as f64, r))
        .collect()
}

fn lighter(c: RGBColor) -> RGBColor {
    let mix = |v: u8| ((u16::from(v) + 2 * 255) / 3) as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}
