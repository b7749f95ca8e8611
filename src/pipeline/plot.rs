//! The `plot` stage: a panel of samples (input and output heatmaps) and the solver's iterations.

use crate::config::PlotPlan;
use crate::data::{DataError, Dataset};
use crate::plot::{heatmap_panel, line_chart, Axis, Heatmap, Line};
use crate::progress::Reporter;
use crate::PdekitError;
use ndarray::Ix2;
use plotters::style::RGBColor;
use std::path::PathBuf;

/// Draws the figures of `plan` and returns the files written.
pub fn run(plan: &PlotPlan, rep: Reporter) -> Result<Vec<PathBuf>, PdekitError> {
    let ds = Dataset::open(&plan.input)?;
    if ds.is_empty() {
        return Err(DataError::Corrupt {
            path: plan.input.clone(),
            message: "the dataset has no samples to plot".into(),
        }
        .into());
    }
    // The first input and output with a spatial shape: 1-D `[N, s]`, 2-D `[N, s, s]`, or a 2-D
    // trajectory `[N, T, s, s]` (its last frame is drawn).
    let pick = |prefix: &str| {
        ds.fields()
            .iter()
            .find(|f| f.name.starts_with(prefix) && (2..=4).contains(&f.shape.len()))
            .cloned()
    };
    let unplottable = |what: &str| DataError::NoField {
        path: plan.input.clone(),
        name: format!("1-D or 2-D {what} field to plot"),
        available: ds
            .fields()
            .iter()
            .map(|f| format!("{} {:?}", f.name, f.shape))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let input = pick("inputs/").ok_or_else(|| unplottable("input"))?;
    let output = pick("outputs/").ok_or_else(|| unplottable("output"))?;

    let k = plan.samples.min(ds.len());
    let indices: Vec<usize> = (0..k).map(|j| j * ds.len() / k).collect();
    let stem = plan
        .input
        .file_stem()
        .map_or_else(|| "dataset".into(), |s| s.to_string_lossy().into_owned());
    let ext = plan.format.extension();
    let mut written = Vec::new();
    let caption = format!("{stem} ({}, {} samples)", ds.layout().describe(), ds.len());
    let panel = plan.output_dir.join(format!("samples.{ext}"));
    let one_d = input.shape.len() == 2 && output.shape.len() == 2;
    if one_d {
        let x = ds.grid_axis("x")?;
        let mut lines = Vec::new();
        for (c, &i) in indices.iter().enumerate() {
            let color = crate::plot::PALETTE[c % crate::plot::PALETTE.len()];
            for (f, dashed) in [(&input, true), (&output, false)] {
                let v = ds.sample(&f.name, i)?;
                let xs: Vec<f64> = match &x {
                    Some(x) if x.len() == v.len() => x.clone(),
                    _ => (0..v.len()).map(|j| j as f64 / v.len() as f64).collect(),
                };
                lines.push(Line {
                    label: format!("sample {i}: {}", short(&f.name)),
                    points: xs.into_iter().zip(v.iter().copied()).collect(),
                    color: if dashed { lighter(color) } else { color },
                    markers: false,
                });
            }
        }
        written.push(line_chart(
            &panel,
            plan.format,
            &caption,
            Axis::linear("x"),
            Axis::linear("value"),
            &lines,
        )?);
    } else {
        let mut arrays = Vec::with_capacity(2 * k);
        for &i in &indices {
            for f in [&input, &output] {
                let (a, note) = last_frame(&ds, f, i)?;
                arrays.push((format!("sample {i}: {}{note}", short(&f.name)), a));
            }
        }
        written.push(heatmap_panel(
            &panel,
            plan.format,
            &caption,
            2,
            &maps(&arrays),
        )?);
    }
    // A trajectory (or a 3-D field): frames of the first sample over time (or slices along x).
    if let Some(traj) = ds
        .fields()
        .iter()
        .find(|f| f.name.starts_with("outputs/") && f.shape.len() == 4)
    {
        let a = ds.sample(&traj.name, indices[0])?;
        let frames = a.shape()[0];
        let times = ds.grid_axis("t")?;
        let picks: Vec<usize> = {
            let n = frames.min(6);
            (1..=n).map(|j| j * frames / n - 1).collect()
        };
        let mut arrays = Vec::new();
        for &t in &picks {
            let frame = a
                .index_axis(ndarray::Axis(0), t)
                .to_owned()
                .into_dimensionality::<Ix2>()
                .map_err(|e| shape_error(&traj.name, e))?;
            let label = match &times {
                Some(ts) if ts.len() == frames => format!("t = {:.4}", ts[t]),
                // A 3-D field: slices along x.
                _ => format!("x-slice {t}"),
            };
            arrays.push((label, frame));
        }
        let path = plan.output_dir.join(format!("trajectory.{ext}"));
        let cap = format!("{stem}: {} of sample {}", short(&traj.name), indices[0]);
        written.push(heatmap_panel(&path, plan.format, &cap, 3, &maps(&arrays))?);
    }

    if ds.has("stats/iterations") && ds.has("stats/converged") {
        let iters = ds.read_all("stats/iterations")?;
        let conv = ds.read_all("stats/converged")?;
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for (i, (&it, &c)) in iters.iter().zip(conv.iter()).enumerate() {
            if c != 0.0 {
                ok.push((i as f64, it))
            } else {
                bad.push((i as f64, it))
            }
        }
        let mut series = vec![Line {
            label: format!("converged ({})", ok.len()),
            points: ok,
            color: RGBColor(31, 119, 180),
            markers: true,
        }];
        if !bad.is_empty() {
            series.push(Line {
                label: format!("not converged ({})", bad.len()),
                points: bad,
                color: RGBColor(214, 39, 40),
                markers: true,
            });
        }
        let path = plan.output_dir.join(format!("iterations.{ext}"));
        written.push(line_chart(
            &path,
            plan.format,
            &format!("{stem}: solver iterations per sample"),
            Axis::linear("sample index"),
            Axis::linear("iterations"),
            &series,
        )?);
    }
    for p in &written {
        rep.info(format!("wrote {}", p.display()));
    }
    Ok(written)
}

/// Sample `i` of a 2-D field, or the last frame of a trajectory (with a note saying so).
fn last_frame(
    ds: &Dataset,
    f: &crate::data::Field,
    i: usize,
) -> Result<(ndarray::Array2<f64>, &'static str), PdekitError> {
    let a = ds.sample(&f.name, i)?;
    let (a, note) = if a.ndim() == 3 && ds.grid_axis("z")?.is_some() {
        let mid = a.shape()[0] / 2;
        (
            a.index_axis(ndarray::Axis(0), mid).to_owned(),
            " (middle x-slice)",
        )
    } else if a.ndim() == 3 {
        let last = a.shape()[0] - 1;
        (
            a.index_axis(ndarray::Axis(0), last).to_owned(),
            " (last frame)",
        )
    } else {
        (a, "")
    };
    let a = a
        .into_dimensionality::<Ix2>()
        .map_err(|e| shape_error(&f.name, e))?;
    Ok((a, note))
}

/// Titled fields as heatmaps without outlines.
fn maps(arrays: &[(String, ndarray::Array2<f64>)]) -> Vec<Heatmap<'_>> {
    arrays
        .iter()
        .map(|(title, a)| Heatmap {
            title: title.clone(),
            values: a.view(),
            outlines: Vec::new(),
            range: None,
        })
        .collect()
}

/// A field that does not have the axes a figure needs.
fn shape_error(name: &str, e: ndarray::ShapeError) -> DataError {
    DataError::Shape {
        what: name.to_string(),
        expected: "a 2-D frame".into(),
        got: e.to_string(),
    }
}

fn lighter(c: RGBColor) -> RGBColor {
    let mix = |v: u8| ((u16::from(v) + 2 * 255) / 3) as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

fn short(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}
