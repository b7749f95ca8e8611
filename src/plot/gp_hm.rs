//! The figures of the `gp` stage (GP-HM on a manufactured solution).

use super::{
    figure_path, heatmap_panel, line_chart, series, shared_range, Axis, Heatmap, Line, PlotError,
    Scale, REFERENCE,
};
use crate::config::ImageFormat;
use ndarray::Array2;
use std::path::{Path, PathBuf};

/// What a GP-HM run hands over for its figures.
pub struct GpResult<'a> {
    /// The exact solution's expression, for captions.
    pub solution: &'a str,
    /// 1 or 2.
    pub dim: usize,
    /// Test points along each axis; a 2-D field is `values[i * n + j]` at `(test[i], test[j])`.
    pub test: &'a [f64],
    pub exact: &'a [f64],
    pub prediction: &'a [f64],
    /// `(step, relative L2, max error)` at each checkpoint.
    pub errors: &'a [(f64, f64, f64)],
    /// Per axis, the learned `(frequency, weight)` of every mixture component.
    pub spectra: &'a [Vec<(f64, f64)>],
    /// The components' initial weight (1/Q) and the frequency range they were spread over.
    pub initial_weight: f64,
    pub max_frequency: f64,
    pub components: usize,
}

/// `solution`, `error` (pointwise, on a log scale), `convergence` and `spectrum`.
pub fn figures(dir: &Path, format: ImageFormat, r: &GpResult) -> Result<Vec<PathBuf>, PlotError> {
    let path = |name| figure_path(dir, name, format);
    let abs: Vec<f64> = r
        .prediction
        .iter()
        .zip(r.exact)
        .map(|(p, t)| (p - t).abs())
        .collect();
    let mut out = Vec::new();
    if r.dim == 1 {
        let pts = |ys: &[f64]| r.test.iter().copied().zip(ys.iter().copied()).collect();
        out.push(line_chart(
            &path("solution"),
            format,
            &format!("u = {}: GP-HM against exact", r.solution),
            Axis::linear("x"),
            Axis::linear("u"),
            &[
                Line::new("exact", pts(r.exact), REFERENCE),
                Line::new("GP-HM", pts(r.prediction), series(0)),
            ],
        )?);
        out.push(line_chart(
            &path("error"),
            format,
            "pointwise error",
            Axis::linear("x"),
            Axis::log("|u_GP − u|"),
            &[Line::new("GP-HM", pts(&abs), series(0))],
        )?);
    } else {
        let n = r.test.len();
        let grid = |v: &[f64]| {
            Array2::from_shape_vec((n, n), v.to_vec()).map_err(|e| PlotError {
                path: path("solution"),
                message: format!("{} values are not a {n} × {n} grid: {e}", v.len()),
            })
        };
        let (ex, gp, abs) = (grid(r.exact)?, grid(r.prediction)?, grid(&abs)?);
        let both = shared_range(&[ex.view(), gp.view()]);
        out.push(heatmap_panel(
            &path("solution"),
            format,
            &format!("u = {}", r.solution),
            3,
            &[
                Heatmap::new("exact", ex.view()).with_range(both),
                Heatmap::new("GP-HM", gp.view()).with_range(both),
                Heatmap::new("|error|", abs.view()),
            ],
        )?);
        out.push(heatmap_panel(
            &path("error"),
            format,
            "pointwise error |u_GP − u|",
            1,
            &[Heatmap::new("|error|", abs.view()).with_scale(Scale::Log)],
        )?);
    }
    let curve = |pick: fn(&(f64, f64, f64)) -> f64| {
        r.errors
            .iter()
            .filter(|e| pick(e).is_finite())
            .map(|e| (e.0, pick(e)))
            .collect()
    };
    out.push(line_chart(
        &path("convergence"),
        format,
        "error against optimisation step",
        Axis::counts("step"),
        Axis::log("error"),
        &[
            Line::new("relative L2", curve(|e| e.1), series(0)),
            Line::new("max error", curve(|e| e.2), series(1)),
        ],
    )?);
    let mut lines: Vec<Line> = r
        .spectra
        .iter()
        .enumerate()
        .map(|(axis, comps)| {
            Line::scatter(
                format!("learned, axis {}", ["x", "y", "z"][axis.min(2)]),
                comps.clone(),
                series(axis),
            )
        })
        .collect();
    let k = r.components.max(2);
    let top = r.max_frequency.max(1e-9);
    lines.push(Line::scatter(
        format!("initial weight 1/Q = {:.3}", r.initial_weight),
        (0..k)
            .map(|i| (top * i as f64 / (k - 1) as f64, r.initial_weight))
            .collect(),
        REFERENCE,
    ));
    out.push(line_chart(
        &path("spectrum"),
        format,
        "learned spectrum: weight against frequency (pruned components sink)",
        Axis::linear("frequency (cycles per unit length)"),
        Axis::log("weight"),
        &lines,
    )?);
    Ok(out)
}
