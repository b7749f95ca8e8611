//! The figures of the `mlvms` stages: fields with their level boxes, error against cost, and the
//! transient run's energy ledger.

use super::{figure_path, heatmap_panel, line_chart, series, Axis, Heatmap, Line, PlotError};
use crate::config::ImageFormat;
use ndarray::Array2;
use std::path::{Path, PathBuf};

/// A field sampled on a square of pixels, with the level boxes in pixel units.
pub struct BoxedField {
    pub values: Array2<f64>,
    pub boxes: Vec<[f64; 4]>,
}

/// One solve of the comparison: its unknowns, wall time and relative L2 error.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    pub unknowns: f64,
    pub seconds: f64,
    pub rel_l2: f64,
}

/// What a steady ML-VMS run hands over for its figures.
pub struct SteadyResult<'a> {
    /// Levels above the coarse mesh.
    pub levels: usize,
    /// " (slice z = centre)" in 3-D, else empty.
    pub slice: &'a str,
    pub whole: BoxedField,
    /// The solution and |u − u*| over the first level's box.
    pub zoom: BoxedField,
    pub zoom_error: Array2<f64>,
    pub uniform: Vec<Cost>,
    pub multilevel: Cost,
    pub chidenn: Vec<Cost>,
}

/// `solution`, `error`, `error_vs_unknowns` and `error_vs_time`.
pub fn steady(
    dir: &Path,
    format: ImageFormat,
    r: &SteadyResult,
) -> Result<Vec<PathBuf>, PlotError> {
    let path = |name| figure_path(dir, name, format);
    let mut out = vec![heatmap_panel(
        &path("solution"),
        format,
        &format!("multilevel solution{}; white: level boxes", r.slice),
        2,
        &[
            Heatmap::new("whole domain", r.whole.values.view())
                .with_outlines(r.whole.boxes.clone()),
            Heatmap::new("level-1 box", r.zoom.values.view()).with_outlines(r.zoom.boxes.clone()),
        ],
    )?];
    out.push(heatmap_panel(
        &path("error"),
        format,
        &format!("|u − u*| in the level-1 box{}", r.slice),
        1,
        &[Heatmap::new("|error|", r.zoom_error.view()).with_outlines(r.zoom.boxes.clone())],
    )?);
    for (name, x, pick) in [
        (
            "error_vs_unknowns",
            Axis::log("unknowns"),
            (|c: &Cost| c.unknowns) as fn(&Cost) -> f64,
        ),
        (
            "error_vs_time",
            Axis::log_seconds("wall time"),
            (|c: &Cost| c.seconds) as fn(&Cost) -> f64,
        ),
    ] {
        let points = |runs: &[Cost]| runs.iter().map(|c| (pick(c), c.rel_l2)).collect();
        let mut lines = vec![
            Line::new("uniform Q1", points(&r.uniform), series(0)),
            Line::scatter(
                format!("multilevel Q1 ({} levels)", r.levels + 1),
                points(&[r.multilevel]),
                series(1),
            ),
        ];
        if !r.chidenn.is_empty() {
            lines.push(Line::new(
                format!("multilevel C-HiDeNN ({} levels)", r.levels + 1),
                points(&r.chidenn),
                series(2),
            ));
        }
        out.push(line_chart(
            &path(name),
            format,
            "relative L2 error",
            x,
            Axis::log("relative L2 error"),
            &lines,
        )?);
    }
    Ok(out)
}

/// One time step's heat ledger.
#[derive(Debug, Clone, Copy)]
pub struct Ledger {
    pub time: f64,
    pub heat_in: f64,
    pub heat_out: f64,
    pub stored: f64,
}

/// What a transient ML-VMS run hands over for its figures.
pub struct TransientResult<'a> {
    pub time: f64,
    /// " (slice through the beam)" in 3-D, else empty.
    pub slice: &'a str,
    pub field: BoxedField,
    pub ledger: &'a [Ledger],
    /// in − out + transfer − stored, relative to the heat in.
    pub balance: f64,
}

/// `temperature` and `energy`.
pub fn transient(
    dir: &Path,
    format: ImageFormat,
    r: &TransientResult,
) -> Result<Vec<PathBuf>, PlotError> {
    let path = |name| figure_path(dir, name, format);
    let mut out = vec![heatmap_panel(
        &path("temperature"),
        format,
        &format!("u at t = {:.4}{}, level boxes", r.time, r.slice),
        1,
        &[Heatmap::new("u", r.field.values.view()).with_outlines(r.field.boxes.clone())],
    )?];
    let (mut heat_in, mut heat_out) = (0.0, 0.0);
    let (mut ins, mut outs, mut stored) = (Vec::new(), Vec::new(), Vec::new());
    for s in r.ledger {
        heat_in += s.heat_in;
        heat_out += s.heat_out;
        ins.push((s.time, heat_in));
        outs.push((s.time, heat_out));
        stored.push((s.time, s.stored));
    }
    out.push(line_chart(
        &path("energy"),
        format,
        &format!(
            "energy: in − out + transfer − stored = {:.1e} of the heat in",
            r.balance
        ),
        Axis::linear("t"),
        Axis::linear("heat"),
        &[
            Line::new("heat in (cumulative)", ins, series(0)),
            Line::new("heat out through ∂Ω (cumulative)", outs, series(1)),
            Line::new("stored", stored, series(2)),
        ],
    )?);
    Ok(out)
}
