//! The `plot` stage: a panel of samples (input and output heatmaps) and the solver's iterations.

use crate::config::PlotPlan;
use crate::data::Dataset;
use crate::plot::{heatmap_panel, line_chart, Heatmap, Line};
use crate::progress::Reporter;
use crate::PdekitError;
use ndarray::Ix2;
use plotters::style::RGBColor;
use std::path::PathBuf;

/// Draws the figures of `plan` and returns the files written.
pub fn run(plan: &PlotPlan, rep: Reporter) -> Result<Vec<PathBuf>, PdekitError> {
    let ds = Dataset::open(&plan.input)?;
    if ds.is_empty() {
        return Err(PdekitError::Usage(format!(
            "{}: the dataset has no samples to plot",
            plan.input.display()
        )));
    }
    let pick = |prefix: &str| {
        ds.fields()
            .iter()
            .find(|f| f.name.starts_with(prefix) && f.shape.len() == 3)
            .map(|f| f.name.clone())
    };
    let no_2d = |what: &str| {
        PdekitError::Usage(format!(
            "{}: no 2-D {what} field to plot; it has: {}",
            plan.input.display(),
            ds.fields()
                .iter()
                .map(|f| format!("{} {:?}", f.name, f.shape))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    };
    let input = pick("inputs/").ok_or_else(|| no_2d("input"))?;
    let output = pick("outputs/").ok_or_else(|| no_2d("output"))?;

    let k = plan.samples.min(ds.len());
    let indices: Vec<usize> = (0..k).map(|j| j * ds.len() / k).collect();
    let mut arrays = Vec::with_capacity(2 * k);
    for &i in &indices {
        for name in [&input, &output] {
            let a = ds
                .sample(name, i)?
                .into_dimensionality::<Ix2>()
                .map_err(|e| PdekitError::Usage(e.to_string()))?;
            arrays.push((format!("sample {i}: {}", short(name)), a));
        }
    }
    let maps: Vec<Heatmap> = arrays
        .iter()
        .map(|(title, a)| Heatmap {
            title: title.clone(),
            values: a.view(),
        })
        .collect();
    let stem = plan
        .input
        .file_stem()
        .map_or_else(|| "dataset".into(), |s| s.to_string_lossy().into_owned());
    let ext = plan.format.extension();
    let mut written = Vec::new();
    let caption = format!("{stem} ({}, {} samples)", ds.layout().describe(), ds.len());
    let panel = plan.output_dir.join(format!("samples.{ext}"));
    written.push(heatmap_panel(&panel, plan.format, &caption, 2, &maps).map_err(plot_err)?);

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
        written.push(
            line_chart(
                &path,
                plan.format,
                &format!("{stem}: solver iterations per sample"),
                "sample index",
                "iterations",
                &series,
            )
            .map_err(plot_err)?,
        );
    }
    for p in &written {
        rep.info(format!("wrote {}", p.display()));
    }
    Ok(written)
}

fn short(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn plot_err(e: crate::plot::PlotError) -> PdekitError {
    PdekitError::Plot {
        path: e.path,
        message: e.message,
    }
}
