//! The `plot` stage: a panel of samples (input and output heatmaps), a trajectory, the solver's
//! iterations per sample, and the residual histories of the samples drawn.

use crate::config::{Plan, PlotPlan};
use crate::data::{DataError, Dataset};
use crate::plot::dataset::{self as figures, Curve};
use crate::progress::Reporter;
use crate::PdekitError;
use ndarray::Ix2;
use pdekit_solvers::sequence::{Omega, PrecondKind};
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
    let mut written = Vec::new();
    let caption = format!("{stem} ({}, {} samples)", ds.layout().describe(), ds.len());
    let one_d = input.shape.len() == 2 && output.shape.len() == 2;
    let dir = &plan.output_dir;
    if one_d {
        let x = ds.grid_axis("x")?;
        let mut curves = Vec::new();
        for (c, &i) in indices.iter().enumerate() {
            for (f, input) in [(&input, true), (&output, false)] {
                let v = ds.sample(&f.name, i)?;
                let xs: Vec<f64> = match &x {
                    Some(x) if x.len() == v.len() => x.clone(),
                    _ => (0..v.len()).map(|j| j as f64 / v.len() as f64).collect(),
                };
                curves.push(Curve {
                    label: format!("sample {i}: {}", short(&f.name)),
                    points: xs.into_iter().zip(v.iter().copied()).collect(),
                    sample: c,
                    input,
                });
            }
        }
        written.push(figures::curves(
            dir,
            plan.format,
            "samples",
            &caption,
            curves,
        )?);
    } else {
        let mut arrays = Vec::with_capacity(2 * k);
        for &i in &indices {
            for f in [&input, &output] {
                let (a, note) = last_frame(&ds, f, i)?;
                arrays.push((format!("sample {i}: {}{note}", short(&f.name)), a));
            }
        }
        written.push(figures::maps(
            dir,
            plan.format,
            "samples",
            &caption,
            2,
            &arrays,
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
        let cap = format!("{stem}: {} of sample {}", short(&traj.name), indices[0]);
        written.push(figures::maps(
            dir,
            plan.format,
            "trajectory",
            &cap,
            3,
            &arrays,
        )?);
    }

    if ds.has("stats/iterations") && ds.has("stats/converged") {
        let iters: Vec<f64> = ds.read_all("stats/iterations")?.iter().copied().collect();
        let conv = ds.read_all("stats/converged")?;
        let converged: Vec<bool> = conv.iter().map(|&c| c != 0.0).collect();
        written.push(figures::iterations(
            dir,
            plan.format,
            &format!("{stem}: solver iterations per sample"),
            &iters,
            &converged,
        )?);
        match residual_histories(&ds, &indices, &iters)? {
            Ok(histories) => written.push(figures::residuals(
                dir,
                plan.format,
                &format!("{stem}: convergence of the samples drawn"),
                &histories,
            )?),
            Err(why) => rep.info(format!("no residual figure: {why}")),
        }
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

/// A field that does not have the axes a figure needs.
fn shape_error(name: &str, e: ndarray::ShapeError) -> DataError {
    DataError::Shape {
        what: name.to_string(),
        expected: "a 2-D frame".into(),
        got: e.to_string(),
    }
}

fn short(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Labelled residual histories.
type Histories = Vec<(String, Vec<f64>)>;

/// The residual histories of samples `indices`, solved again with the generating config stored in
/// the dataset (a sample depends only on the seed and its index). A sample whose stored solve
/// carried state (a recycling chain) is solved alone and its label says so, as does any
/// difference from the iterations the dataset holds. `Ok(Err(why))`: the dataset cannot give
/// histories (no stored config, no linear solver). `stored` are the dataset's `stats/iterations`.
fn residual_histories(
    ds: &Dataset,
    indices: &[usize],
    stored: &[f64],
) -> Result<Result<Histories, String>, PdekitError> {
    let Some(text) = ds.attr("config") else {
        return Ok(Err("the dataset holds no generating config".into()));
    };
    let generate = match Plan::parse(ds.path(), &text) {
        Ok(plan) => plan.generate,
        Err(e) => return Ok(Err(format!("its stored config no longer reads: {e}"))),
    };
    let Some(g) = generate else {
        return Ok(Err("its stored config has no [generate] section".into()));
    };
    let Some(solver) = g.solver.as_ref() else {
        return Ok(Err("its samples solve no linear systems".into()));
    };
    let alone = if solver.chains.is_some() && solver.spec.carries_state() {
        ", solved alone"
    } else {
        ""
    };
    let omegas = if ds.has("stats/omega") {
        Some(ds.read_all("stats/omega")?)
    } else {
        None
    };
    let seed = g.dataset.seed;
    let mut out = Vec::with_capacity(indices.len());
    for &i in indices {
        let mut params = g.family_params();
        if let Some(spec) = params.solver_mut() {
            spec.params.history = true;
            // A learned ω is replayed as the fixed ω the dataset recorded for the sample.
            if spec.learns_omega() {
                if let Some(w) = omegas.as_ref().map(|o| o[i]).filter(|w| w.is_finite()) {
                    spec.precond = PrecondKind::Ssor {
                        omega: Omega::Fixed(w),
                    };
                }
            }
        }
        let family = params.build()?;
        if !family.layout().linear_solves {
            return Ok(Err("its samples solve no linear systems".into()));
        }
        // Row i of a merged or sharded dataset holds the sample its `params/index` names.
        let index = if ds.has("params/index") {
            ds.sample("params/index", i)?
                .iter()
                .next()
                .copied()
                .unwrap_or(i as f64) as u64
        } else {
            i as u64
        };
        let sample = family.generate(seed, index)?;
        let r = &sample.report;
        if r.history.is_empty() {
            return Ok(Err(format!(
                "{} records no residual history",
                family.name()
            )));
        }
        let iterations = r.history.len();
        let recorded = stored[i] as usize;
        let note = if recorded == r.iterations {
            String::new()
        } else {
            format!("; {recorded} in the dataset")
        };
        let label = format!("sample {index}{alone} ({iterations} iterations{note})");
        out.push((label, sample.report.history));
    }
    Ok(Ok(out))
}
