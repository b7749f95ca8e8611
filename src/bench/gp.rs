//! `pdekit bench gp CONFIG`: the cost of one GP-HM optimisation step (loss, analytic gradient and
//! Adam update) and of one exact grid-value step ("polish") for a config's `[gp]` problem,
//! optionally at another number of points per axis.

use super::stamp;
use crate::config::bench::RESULTS_DIR;
use crate::config::Plan;
use crate::pipeline::gp::Setup;
use crate::progress::Reporter;
use crate::PdekitError;
use pdekit_operators::gp::{solver1d, solver2d};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

pub struct Outcome {
    pub table: String,
    pub json: PathBuf,
}

/// Times `steps` optimisation steps (after `warmup` untimed ones) and one polish.
pub fn run(
    plan: &Plan,
    reporter: &Reporter,
    points: Option<usize>,
    steps: usize,
) -> Result<Outcome, PdekitError> {
    let mut gp = plan.gp.clone().ok_or_else(|| {
        PdekitError::Usage(format!(
            "{}: the config has no [gp] section",
            plan.source_path.display()
        ))
    })?;
    if let Some(p) = points {
        gp.points = p;
    }
    if steps == 0 {
        return Err(PdekitError::Usage("--steps must be at least 1".into()));
    }
    let warmup = (steps / 10).max(1);
    gp.params.steps = warmup + steps;
    let setup = Setup::new(&gp)?;
    let mut params = setup.params.clone();
    params.steps = gp.params.steps;
    params.polish = false;
    params.polish_every = 0;
    let bar = reporter.bar(gp.params.steps as u64, "bench gp", "steps");
    let mut started = None;
    let fail = |source| PdekitError::Gp {
        config: plan.source_path.clone(),
        source,
        hint: "",
    };
    let (step_seconds, polish_seconds, polish_iterations) = if gp.dim == 1 {
        let problem = setup.problem1d();
        let (state, _) = solver1d::solve(&problem, &params, |step, _, _| {
            bar.inc(1);
            if step + 1 == warmup {
                started = Some(Instant::now());
            }
        })
        .map_err(fail)?;
        let elapsed = started.expect("warm-up ran").elapsed().as_secs_f64();
        let t = Instant::now();
        solver1d::solve_values(&problem, &params, &state, params.newton_iterations()).ok_or_else(
            || PdekitError::Gp {
                config: plan.source_path.clone(),
                source: pdekit_operators::gp::optim::GpError::NotPositiveDefinite {
                    step: gp.params.steps,
                },
                hint: "; raise gp.jitter",
            },
        )?;
        (elapsed, t.elapsed().as_secs_f64(), 0)
    } else {
        let problem = setup.problem2d();
        let (state, _) = solver2d::solve(&problem, &params, |step, _, _| {
            bar.inc(1);
            if step + 1 == warmup {
                started = Some(Instant::now());
            }
        })
        .map_err(fail)?;
        let elapsed = started.expect("warm-up ran").elapsed().as_secs_f64();
        let t = Instant::now();
        let (_, info) =
            solver2d::solve_values(&problem, &params, &state, params.newton_iterations())
                .ok_or_else(|| PdekitError::Gp {
                    config: plan.source_path.clone(),
                    source: pdekit_operators::gp::optim::GpError::NotPositiveDefinite {
                        step: gp.params.steps,
                    },
                    hint: "; raise gp.jitter",
                })?;
        (elapsed, t.elapsed().as_secs_f64(), info.iterations)
    };
    bar.finish_and_clear();
    let step_ms = 1e3 * step_seconds / steps as f64;
    let grid = if gp.dim == 1 {
        format!("{}", gp.points)
    } else {
        format!("{0}×{0}", gp.points)
    };
    let table = format!(
        "GP-HM, {}-D, {grid} points, Q = {}: {step_ms:.3} ms per optimisation step (mean of {steps}, after {warmup} warm-up steps); one polish {:.1} ms{}",
        gp.dim,
        gp.params.components,
        1e3 * polish_seconds,
        if gp.dim == 2 {
            format!(" ({polish_iterations} CG iterations)")
        } else {
            String::new()
        }
    );
    let mut doc = json!({
        "benchmark": "gp",
        "config": plan.source_path,
        "threads": rayon::current_num_threads(),
        "dim": gp.dim,
        "points_per_axis": gp.points,
        "components": gp.params.components,
        "timed_steps": steps,
        "warmup_steps": warmup,
        "step_ms": step_ms,
        "polish_ms": 1e3 * polish_seconds,
        "polish_cg_iterations": polish_iterations,
    });
    let stem = plan
        .source_path
        .file_stem()
        .map_or_else(|| "gp".into(), |s| s.to_string_lossy().into_owned());
    let name = format!("gp-{stem}-{}pts-{}.json", gp.points, stamp());
    let json = crate::files::write_report(&PathBuf::from(RESULTS_DIR).join(name), &mut doc)?;
    Ok(Outcome { table, json })
}
