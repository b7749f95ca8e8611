//! The `gp` stage: GP-HM ([`pdekit_operators::gp`]) on a manufactured solution.
//!
//! The config gives the exact solution as an expression; the source term and the Dirichlet data
//! follow from it exactly ([`crate::expr`]). The stage optimises, measures the relative L2 and max
//! errors on a dense test grid at checkpoints, solves the same problem by second-order finite
//! differences on the same points for contrast, and writes `gp_report.json`, `prediction.json`
//! and figures (solution against exact, pointwise error, error against step, learned spectrum).

use crate::config::{GpPde, GpPlan};
use crate::expr::Expr;
use crate::files::write_atomic;
use crate::progress::Reporter;
use crate::PdekitError;
use pdekit_operators::gp::kernel::SpectralMixture;
use pdekit_operators::gp::optim::{GpError, GpInfo, GpParams};
use pdekit_operators::gp::{solver1d, solver2d};
use pdekit_solvers::fd;
use serde::Serialize;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

/// Errors on the test grid after a step.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Checkpoint {
    pub step: usize,
    /// Optimisation time so far (error evaluations excluded).
    pub seconds: f64,
    pub loss: f64,
    pub rel_l2: f64,
    pub max_error: f64,
    /// Σ r² over the collocation points and Σ (u − g)² over the boundary points.
    pub equation_misfit: f64,
    pub boundary_misfit: f64,
    pub log_tau: f64,
    pub log_v: f64,
}

/// The finite-difference solve on the collocation points.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Baseline {
    /// Errors at the grid points (FD has no values in between).
    pub rel_l2: f64,
    pub max_error: f64,
    pub newton_iterations: usize,
    pub linear_iterations: usize,
    pub converged: bool,
    pub seconds: f64,
}

/// One mixture component as learned.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Component {
    pub frequency: f64,
    pub weight: f64,
    pub length_scale: f64,
}

#[derive(Debug, Clone)]
pub struct GpOutcome {
    /// Final errors on the test grid (after the last step and polish; not the best seen).
    pub rel_l2: f64,
    pub max_error: f64,
    /// Final errors at the collocation points, comparable with the baseline's.
    pub grid_rel_l2: f64,
    pub baseline: Option<Baseline>,
    pub checkpoints: Vec<Checkpoint>,
    /// Optimisation wall time and its mean per step.
    pub seconds: f64,
    pub step_ms: f64,
    pub info: GpInfo,
    pub report: PathBuf,
    pub figures: Vec<PathBuf>,
}

fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
        .collect()
}

/// Relative L2 and max error of `pred` against `exact`.
fn errors(pred: &[f64], exact: &[f64]) -> (f64, f64) {
    let (mut e, mut nrm, mut max) = (0.0, 0.0, 0.0f64);
    for (p, t) in pred.iter().zip(exact) {
        e += (p - t) * (p - t);
        nrm += t * t;
        max = max.max((p - t).abs());
    }
    ((e / nrm.max(f64::MIN_POSITIVE)).sqrt(), max)
}

fn gp_error(plan_path: &std::path::Path, source: GpError) -> PdekitError {
    let hint = match source {
        GpError::NotPositiveDefinite { .. } => "; raise gp.jitter",
        GpError::NonFinite { .. } => "; lower gp.learning_rate",
        GpError::Invalid(_) => "",
    };
    PdekitError::Gp {
        config: plan_path.to_path_buf(),
        source,
        hint,
    }
}

/// The values on the grid `axes` (one axis, or x and y with y fastest).
fn tabulate(expr: &Expr, axes: &[&[f64]], f: impl Fn(&crate::expr::Jet) -> f64) -> Vec<f64> {
    match axes {
        [xs] => xs.iter().map(|&x| f(&expr.jet(x, 0.0))).collect(),
        [xs, ys] => xs
            .iter()
            .flat_map(|&x| ys.iter().map(move |&y| (x, y)))
            .map(|(x, y)| f(&expr.jet(x, y)))
            .collect(),
        _ => unreachable!("1 or 2 axes"),
    }
}

/// A plan turned into the solver's terms: settings, grids, and the exact solution and source on
/// them.
pub struct Setup {
    pub params: GpParams,
    /// Collocation and test points per axis.
    pub grid: Vec<f64>,
    pub test: Vec<f64>,
    pub exact_grid: Vec<f64>,
    pub exact_test: Vec<f64>,
    /// `s` of `Δu + c·u(u² − 1) = s` on the grid.
    pub source: Vec<f64>,
    pub nonlinearity: f64,
    pub operator: solver2d::Operator2d,
    pub dim: usize,
    pub domain: [f64; 2],
}

impl Setup {
    pub fn new(plan: &GpPlan) -> Result<Self, PdekitError> {
        let expr = Expr::parse(&plan.solution)
            .map_err(|e| PdekitError::Usage(format!("gp.solution: {e}")))?;
        let (c, operator) = match plan.pde {
            GpPde::Poisson => (0.0, solver2d::Operator2d::LAPLACIAN),
            GpPde::AllenCahn => (1.0, solver2d::Operator2d::LAPLACIAN),
            GpPde::Advection => (
                0.0,
                solver2d::Operator2d::advection(plan.velocity.unwrap_or(0.0)),
            ),
        };
        let [a, b] = plan.domain;
        let grid = linspace(a, b, plan.points);
        let test = linspace(a, b, plan.test_points);
        let params = plan.params.clone();
        let test_axes: Vec<&[f64]> = vec![&test; plan.dim];
        let grid_axes: Vec<&[f64]> = vec![&grid; plan.dim];
        // Every PDE in the form 𝓛u + c·u(u² − 1) = s (Poisson −Δu = f has s = −f = Δu).
        let source = tabulate(&expr, &grid_axes, |j| {
            operator.xx * j.dd[0]
                + operator.yy * j.dd[1]
                + operator.x * j.d[0]
                + operator.y * j.d[1]
                + c * j.value * (j.value * j.value - 1.0)
        });
        let exact_test = tabulate(&expr, &test_axes, |j| j.value);
        let exact_grid = tabulate(&expr, &grid_axes, |j| j.value);
        // The GP fits these values: a solution that is not finite (and twice differentiable) on
        // the grid is the config's mistake, not the optimiser's.
        for (what, values, axis) in [
            ("value", &exact_grid, &grid),
            ("second derivatives (the PDE's source)", &source, &grid),
            ("value", &exact_test, &test),
        ] {
            if let Some(k) = values.iter().position(|v| !v.is_finite()) {
                let n = axis.len();
                let at = if plan.dim == 1 {
                    format!("x = {}", axis[k])
                } else {
                    format!("(x, y) = ({}, {})", axis[k / n], axis[k % n])
                };
                return Err(PdekitError::Usage(format!(
                    "gp.solution = \"{}\": its {what} is {} at {at}; expected an expression finite on the whole domain {:?}",
                    plan.solution, values[k], plan.domain
                )));
            }
        }
        Ok(Self {
            exact_test,
            exact_grid,
            source,
            params,
            grid,
            test,
            nonlinearity: c,
            operator,
            dim: plan.dim,
            domain: plan.domain,
        })
    }

    pub fn problem1d(&self) -> solver1d::Problem1d {
        let n = self.grid.len();
        solver1d::Problem1d {
            x0: self.domain[0],
            x1: self.domain[1],
            n,
            source: self.source.clone(),
            boundary: (self.exact_grid[0], self.exact_grid[n - 1]),
            nonlinearity: self.nonlinearity,
        }
    }

    pub fn problem2d(&self) -> solver2d::Problem2d {
        let n = self.grid.len();
        let (a, b) = (self.domain[0], self.domain[1]);
        solver2d::Problem2d {
            operator: self.operator,
            x: (a, b),
            y: (a, b),
            n1: n,
            n2: n,
            source: self.source.clone(),
            boundary: self.exact_grid.clone(),
            nonlinearity: self.nonlinearity,
        }
    }
}

/// Runs the stage.
pub fn run(
    plan: &GpPlan,
    config: &std::path::Path,
    rep: Reporter,
) -> Result<GpOutcome, PdekitError> {
    let setup = Setup::new(plan)?;
    let (params, xs, test) = (&setup.params, &setup.grid, &setup.test);
    let (exact_grid, exact_test, c) = (&setup.exact_grid, &setup.exact_test, setup.nonlinearity);
    let every = plan.params.steps.div_ceil(plan.checkpoints).max(1);
    let is_checkpoint =
        |step: usize| (step + 1).is_multiple_of(every) || step + 1 == plan.params.steps;
    let bar = rep.bar(plan.params.steps as u64, "gp", "steps");
    let started = Instant::now();
    let mut in_checkpoints = 0.0;
    let mut checkpoints = Vec::new();

    // After every step: the bar; at checkpoints, the errors on the test grid (their time excluded
    // from the optimisation time).
    let mut on_step = |step: usize,
                       values: &[f64],
                       (loss, e, bm): (f64, f64, f64),
                       predict: &dyn Fn() -> Option<Vec<f64>>| {
        bar.inc(1);
        if !is_checkpoint(step) {
            return;
        }
        let t = Instant::now();
        let (rel, max) = predict().map_or((f64::NAN, f64::NAN), |p| errors(&p, exact_test));
        let len = values.len();
        checkpoints.push(Checkpoint {
            step: step + 1,
            seconds: started.elapsed().as_secs_f64() - in_checkpoints,
            loss,
            rel_l2: rel,
            max_error: max,
            equation_misfit: e,
            boundary_misfit: bm,
            log_tau: values[len - 2],
            log_v: values[len - 1],
        });
        bar.set_message(format!("rel L2 {rel:.2e}"));
        in_checkpoints += t.elapsed().as_secs_f64();
    };

    // The solve, per dimension; returns the final test-grid prediction, the grid values, the
    // learned kernels and the run's report.
    type Solved = (Vec<f64>, Vec<f64>, Vec<SpectralMixture>, GpInfo);
    let solved: Solved = if plan.dim == 1 {
        let problem = setup.problem1d();
        let (state, info) = solver1d::solve(&problem, params, |step, st, ev| {
            let fit = (ev.loss, ev.equation_misfit, ev.boundary_misfit);
            on_step(step, &st.values, fit, &|| {
                solver1d::predict(&problem, params, st, test)
            });
        })
        .map_err(|e| gp_error(config, e))?;
        let pred = solver1d::predict(&problem, params, &state, test).ok_or_else(|| {
            gp_error(
                config,
                GpError::NotPositiveDefinite {
                    step: plan.params.steps,
                },
            )
        })?;
        (pred, state.u().to_vec(), vec![state.kernel()], info)
    } else {
        let problem = setup.problem2d();
        let (state, info) = solver2d::solve(&problem, params, |step, st, ev| {
            let fit = (ev.loss, ev.equation_misfit, ev.boundary_misfit);
            on_step(step, &st.values, fit, &|| {
                solver2d::predict(&problem, params, st, test, test)
            });
        })
        .map_err(|e| gp_error(config, e))?;
        let pred = solver2d::predict(&problem, params, &state, test, test).ok_or_else(|| {
            gp_error(
                config,
                GpError::NotPositiveDefinite {
                    step: plan.params.steps,
                },
            )
        })?;
        let (kx, ky) = state.kernels();
        (pred, state.values[..state.n].to_vec(), vec![kx, ky], info)
    };
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64() - in_checkpoints;
    let (pred, grid_values, kernels, info) = solved;
    let (rel_l2, max_error) = errors(&pred, exact_test);
    let (grid_rel_l2, _) = errors(&grid_values, exact_grid);
    if !rel_l2.is_finite() {
        return Err(gp_error(
            config,
            GpError::NonFinite {
                step: plan.params.steps,
            },
        ));
    }

    let baseline = if plan.baseline {
        let t = Instant::now();
        let h = xs[1] - xs[0];
        let problem = fd::FdProblem {
            dims: vec![plan.points; plan.dim],
            h: vec![h; plan.dim],
            source: setup.source.clone(),
            boundary: exact_grid.clone(),
            nonlinearity: c,
        };
        match fd::solve(&problem, &fd::FdParams::default()) {
            Ok((u, fd_info)) => {
                let (rel, max) = errors(&u, exact_grid);
                Some(Baseline {
                    rel_l2: rel,
                    max_error: max,
                    newton_iterations: fd_info.newton_iterations,
                    linear_iterations: fd_info.linear_iterations,
                    converged: fd_info.converged,
                    seconds: t.elapsed().as_secs_f64(),
                })
            }
            Err(e) => {
                // The contrast failing is a finding, not a reason to discard the GP's result.
                rep.warn(format!("the finite-difference baseline failed: {e}"));
                Some(Baseline {
                    rel_l2: f64::NAN,
                    max_error: f64::NAN,
                    newton_iterations: 0,
                    linear_iterations: 0,
                    converged: false,
                    seconds: t.elapsed().as_secs_f64(),
                })
            }
        }
    } else {
        None
    };

    let spectra: Vec<Vec<Component>> = kernels
        .iter()
        .map(|k| {
            (0..k.components())
                .map(|q| Component {
                    frequency: k.freq[q],
                    weight: k.log_w[q].exp(),
                    length_scale: k.log_ls[q].exp(),
                })
                .collect()
        })
        .collect();
    let step_ms = 1e3 * seconds / plan.params.steps as f64;
    let mut doc = json!({
        "config": config,
        "plan": plan,
        "final": {
            "rel_l2": rel_l2,
            "max_error": max_error,
            "grid_rel_l2": grid_rel_l2,
            "test_points_per_axis": plan.test_points,
        },
        "baseline_fd": baseline,
        "seconds": seconds,
        "step_ms": step_ms,
        "steps": info.steps,
        "polishes": info.polishes,
        "last_polish_cg_iterations": info.last_polish_iterations,
        "last_polish_cg_residual": info.last_polish_residual,
        "polish_converged": info.polish_converged,
        "checkpoints": checkpoints,
        "spectrum": spectra,
    });
    let report = crate::files::write_report(&plan.output_dir.join("gp_report.json"), &mut doc)?;
    let prediction = json!({
        "axis": test,
        "layout": if plan.dim == 1 { "u[i] at axis[i]" } else { "u[i * n + j] at (axis[i], axis[j]), x first" },
        "exact": exact_test,
        "gp": pred,
        "grid": xs,
        "gp_grid_values": grid_values,
    });
    write_atomic(
        &plan.output_dir.join("prediction.json"),
        &serde_json::to_string(&prediction).expect("plain data serialises"),
    )?;
    let errors: Vec<(f64, f64, f64)> = checkpoints
        .iter()
        .map(|c| (c.step as f64, c.rel_l2, c.max_error))
        .collect();
    let spectra_points: Vec<Vec<(f64, f64)>> = spectra
        .iter()
        .map(|comps| comps.iter().map(|c| (c.frequency, c.weight)).collect())
        .collect();
    let figures = crate::plot::gp_hm::figures(
        &plan.output_dir,
        plan.format,
        &crate::plot::gp_hm::GpResult {
            solution: &plan.solution,
            dim: plan.dim,
            test,
            exact: exact_test,
            prediction: &pred,
            errors: &errors,
            spectra: &spectra_points,
            initial_weight: 1.0 / plan.params.components as f64,
            max_frequency: plan.params.max_freq,
            components: plan.params.components,
        },
    )?;

    rep.info(format!(
        "gp: {} steps in {seconds:.1} s ({step_ms:.2} ms/step), {} polishes\n  final relative L2 {rel_l2:.3e}, max error {max_error:.3e} on {}{} test points; {grid_rel_l2:.3e} at the {} collocation points{}\nwrote {} and {} figures in {}",
        plan.params.steps,
        info.polishes,
        plan.test_points,
        if plan.dim == 2 { "²" } else { "" },
        plan.points.pow(plan.dim as u32),
        baseline.map_or(String::new(), |b| format!(
            "\n  finite differences on the same points: relative L2 {:.3e}, max error {:.3e}{}",
            b.rel_l2,
            b.max_error,
            if b.converged { "" } else { " (NOT converged)" }
        )),
        report.display(),
        figures.len(),
        plan.output_dir.display()
    ));
    Ok(GpOutcome {
        rel_l2,
        max_error,
        grid_rel_l2,
        baseline,
        checkpoints,
        seconds,
        step_ms,
        info,
        report,
        figures,
    })
}
