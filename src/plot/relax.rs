//! The figures of the `relax` stage (learned SOR ω): cumulative cost, the ω chosen per instance,
//! and the learners' final probabilities over the arms.

use super::{figure_path, line_chart, series, Axis, Line, PlotError, REFERENCE};
use crate::config::ImageFormat;
use pdekit_solvers::relax::experiment::ExperimentReport;
use std::path::{Path, PathBuf};

fn cumulative(costs: &[usize]) -> Vec<(f64, f64)> {
    let mut acc = 0.0;
    costs
        .iter()
        .enumerate()
        .map(|(t, &c)| {
            acc += c as f64;
            (t as f64 + 1.0, acc)
        })
        .collect()
}

/// `cumulative`, `omega` and `probabilities` for one repeat of the experiment; `what` names the
/// cost ("SOR iterations").
pub fn figures(
    dir: &Path,
    format: ImageFormat,
    what: &str,
    r: &ExperimentReport,
) -> Result<Vec<PathBuf>, PlotError> {
    let path = |name| figure_path(dir, name, format);
    let k = r.learners.len();
    let mut lines: Vec<Line> = r
        .learners
        .iter()
        .enumerate()
        .map(|(i, t)| Line::new(t.name.clone(), cumulative(&t.costs), series(i)))
        .collect();
    lines.push(Line::new(
        format!("best fixed ω = {:.2}", r.arms[r.best_fixed]),
        cumulative(&r.fixed[r.best_fixed].costs),
        series(k),
    ));
    if r.best_fixed != 0 {
        lines.push(Line::new(
            format!("fixed ω = {:.2}", r.arms[0]),
            cumulative(&r.fixed[0].costs),
            series(k + 1),
        ));
    }
    lines.push(Line::new(
        "instance-optimal",
        cumulative(&r.instance_optimal.costs),
        REFERENCE,
    ));
    let mut out = vec![line_chart(
        &path("cumulative"),
        format,
        &format!("Cumulative {what}"),
        Axis::counts("instance"),
        Axis::linear(&format!("cumulative {what}")),
        &lines,
    )?];

    let per_instance = |omegas: &[f64]| -> Vec<(f64, f64)> {
        omegas
            .iter()
            .enumerate()
            .map(|(s, &w)| (s as f64, w))
            .collect()
    };
    let mut omegas: Vec<Line> = r
        .learners
        .iter()
        .enumerate()
        .map(|(i, t)| Line::scatter(t.name.clone(), per_instance(&t.omegas), series(i)))
        .collect();
    omegas.push(Line::scatter(
        "instance-optimal",
        per_instance(&r.instance_optimal.omegas),
        REFERENCE,
    ));
    out.push(line_chart(
        &path("omega"),
        format,
        "ω chosen per instance",
        Axis::counts("instance"),
        Axis::linear("ω"),
        &omegas,
    )?);

    let probs: Vec<Line> = r
        .learners
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            t.final_probabilities.as_ref().map(|p| {
                Line::new(
                    format!("{} (last context)", t.name),
                    r.arms.iter().copied().zip(p.iter().copied()).collect(),
                    series(i),
                )
            })
        })
        .collect();
    out.push(line_chart(
        &path("probabilities"),
        format,
        "Final probabilities over the arms",
        Axis::linear("ω"),
        Axis::linear("probability"),
        &probs,
    )?);
    Ok(out)
}
