//! The `mlvms` stage: steady heat conduction with a localized source on the unit square or cube,
//! solved by multilevel VMS ([`pdekit_solvers::multiscale`]) and by uniform Q1 meshes for
//! comparison.
//!
//! The source comes from a manufactured solution `u* = A·exp(−|x − x₀|²/r²)`, `Q = −kΔu*`, with
//! `u = u*` on the boundary, so every error is exact. Writes `mlvms_report.json` (per run: unknowns
//! per level, CG iterations, assembly and solve time, relative L2 error) and figures: the solution
//! with the level boxes drawn (2-D; a slice through the centre in 3-D), the error field, and error
//! against unknowns and against wall time.

use crate::config::{MlvmsPlan, MlvmsTransientPlan};
use crate::plot::mlvms::{BoxedField, Cost, Ledger, SteadyResult, TransientResult};
use crate::progress::Reporter;
use crate::PdekitError;
use ndarray::Array2;
use pdekit_solvers::multiscale::mesh::BoxMesh;
use pdekit_solvers::multiscale::multilevel::{
    solve_steady, Basis, LevelSpec, MultilevelInfo, MultilevelParams, MultilevelSolution,
    SteadyHeat,
};
use pdekit_solvers::multiscale::transient::{solve_transient, MovingSource, TransientParams};
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Errors within this factor count as equal when matching a uniform mesh to the multilevel solve.
const EQUAL_ERROR: f64 = 1.05;

/// One solve of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// "multilevel" or "uniform N".
    pub method: String,
    pub unknowns: usize,
    pub per_level: Vec<usize>,
    pub iterations: usize,
    pub converged: bool,
    pub assemble_seconds: f64,
    pub solve_seconds: f64,
    pub rel_l2: f64,
}

#[derive(Debug, Clone)]
pub struct MlvmsOutcome {
    pub multilevel: Run,
    pub uniform: Vec<Run>,
    /// Multilevel runs with the C-HiDeNN basis on every level, one per coarse size.
    pub chidenn: Vec<Run>,
    pub report: PathBuf,
    pub figures: Vec<PathBuf>,
}

fn run_of(method: String, info: &MultilevelInfo, rel_l2: f64) -> Run {
    Run {
        method,
        unknowns: info.unknowns,
        per_level: info.per_level.clone(),
        iterations: info.iterations,
        converged: info.converged,
        assemble_seconds: info.assemble_seconds,
        solve_seconds: info.solve_seconds,
        rel_l2,
    }
}

/// The run of `pool` with the fewest unknowns whose error is within [`EQUAL_ERROR`] of `run`'s.
fn cheapest_as_accurate<'a>(pool: &'a [Run], run: &Run) -> Option<&'a Run> {
    pool.iter()
        .filter(|u| u.rel_l2 <= EQUAL_ERROR * run.rel_l2)
        .min_by_key(|u| u.unknowns)
}

pub fn run(plan: &MlvmsPlan, config: &Path, rep: Reporter) -> Result<MlvmsOutcome, PdekitError> {
    match plan.dim {
        2 => run_dim::<2>(plan, config, rep),
        _ => run_dim::<3>(plan, config, rep),
    }
}

fn run_dim<const D: usize>(
    plan: &MlvmsPlan,
    config: &Path,
    rep: Reporter,
) -> Result<MlvmsOutcome, PdekitError> {
    let centre: [f64; D] = std::array::from_fn(|k| plan.centre[k]);
    let (amp, r2, k) = (plan.amplitude, plan.radius * plan.radius, plan.conductivity);
    let exact = move |x: [f64; D]| {
        let d2: f64 = (0..D).map(|i| (x[i] - centre[i]).powi(2)).sum();
        amp * (-d2 / r2).exp()
    };
    // Δ exp(−ρ²/r²) = (4ρ²/r⁴ − 2D/r²) exp(−ρ²/r²).
    let source = move |x: [f64; D]| {
        let d2: f64 = (0..D).map(|i| (x[i] - centre[i]).powi(2)).sum();
        -k * amp * (4.0 * d2 / (r2 * r2) - 2.0 * D as f64 / r2) * (-d2 / r2).exp()
    };
    let problem = SteadyHeat {
        conductivity: k,
        source: &source,
        dirichlet: &exact,
    };
    let params = MultilevelParams::default();
    // The level boxes around the source on a coarse mesh of n cells per axis.
    let hierarchy = |n: usize| {
        let coarse = BoxMesh::new([0.0; D], [1.0; D], [n; D]);
        let mut levels = Vec::new();
        let mut parent = coarse;
        for l in &plan.levels {
            let spec = LevelSpec::around(&parent, centre, l.half_width, l.refine);
            parent = spec.mesh(&parent);
            levels.push(spec);
        }
        (coarse, levels)
    };
    let (coarse, levels) = hierarchy(plan.coarse);
    let fail = |source| PdekitError::Multiscale {
        config: config.to_path_buf(),
        source,
    };
    let chidenn_sizes = plan.chidenn.as_ref().map_or(&[][..], |c| &c.coarse[..]);
    let bar = rep.bar(
        (1 + plan.uniform.len() + chidenn_sizes.len()) as u64,
        "mlvms",
        "solves",
    );
    let (ml, ml_info) = solve_steady(coarse, &levels, &problem, &params).map_err(fail)?;
    bar.inc(1);
    let rel = |s: &MultilevelSolution<D>| {
        let (e, n) = s.l2_error(&exact);
        e / n
    };
    let multilevel = run_of("multilevel".into(), &ml_info, rel(&ml));
    let mut uniform = Vec::new();
    for &n in &plan.uniform {
        let mesh = BoxMesh::new([0.0; D], [1.0; D], [n; D]);
        let (sol, info) = solve_steady(mesh, &[], &problem, &params).map_err(fail)?;
        uniform.push(run_of(format!("uniform {n}"), &info, rel(&sol)));
        bar.inc(1);
    }
    let mut chidenn = Vec::new();
    if let Some(c) = &plan.chidenn {
        for &n in &c.coarse {
            let (coarse, levels) = hierarchy(n);
            let p = MultilevelParams {
                bases: vec![Basis::Chidenn(c.params); levels.len() + 1],
                ..params.clone()
            };
            let (sol, info) = solve_steady(coarse, &levels, &problem, &p).map_err(fail)?;
            chidenn.push(run_of(format!("C-HiDeNN coarse {n}"), &info, rel(&sol)));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    for r in std::iter::once(&multilevel).chain(&uniform).chain(&chidenn) {
        if !r.converged {
            rep.warn(format!(
                "{}: CG stopped at its cap ({} iterations); its error is reported as measured",
                r.method, r.iterations
            ));
        }
    }

    // The cheapest uniform mesh as accurate as the multilevel solve, "as accurate" allowing 5 %
    // (when the finest level and a uniform mesh share h near the source their errors agree to
    // rounding, and a strict ≤ would pass over that mesh).
    let total = |r: &Run| r.assemble_seconds + r.solve_seconds;
    // The cheapest run of `pool` as accurate as `run` (within 5 %).
    let match_in = |pool: &[Run], run: &Run| -> Option<serde_json::Value> {
        cheapest_as_accurate(pool, run).map(|u| {
            json!({
                "method": u.method,
                "unknowns_ratio": u.unknowns as f64 / run.unknowns as f64,
                "time_ratio": total(u) / total(run),
            })
        })
    };
    let matched = cheapest_as_accurate(&uniform, &multilevel);
    // The C-HiDeNN run with the fewest unknowns that is as accurate as the linear multilevel run.
    let chidenn_matched = cheapest_as_accurate(&chidenn, &multilevel);
    let mut doc = json!({
        "config": config,
        "plan": plan,
        "level_boxes": levels.iter().map(|l| json!({"lo": l.lo.to_vec(), "hi": l.hi.to_vec(), "refine": l.refine})).collect::<Vec<_>>(),
        "multilevel": multilevel,
        "uniform": uniform,
        "equal_error_factor": EQUAL_ERROR,
        "matched_uniform": match_in(&uniform, &multilevel),
        "chidenn": chidenn.iter().map(|c| json!({
            "run": c,
            "matched_uniform": match_in(&uniform, c),
        })).collect::<Vec<_>>(),
        "chidenn_as_accurate_as_multilevel": chidenn_matched.map(|c| json!({
            "method": c.method,
            "unknowns_ratio_linear_to_chidenn": multilevel.unknowns as f64 / c.unknowns as f64,
            "time_ratio_linear_to_chidenn": total(&multilevel) / total(c),
        })),
    });
    let report = crate::files::write_report(&plan.output_dir.join("mlvms_report.json"), &mut doc)?;
    let figures = plots(plan, &ml, &exact, &levels, &multilevel, &uniform, &chidenn)?;

    let mut table = format!(
        "{:<20} {:>10} {:>12} {:>8} {:>10}\n",
        "method", "unknowns", "rel L2", "CG its", "time (s)"
    );
    for r in std::iter::once(&multilevel).chain(&uniform).chain(&chidenn) {
        table.push_str(&format!(
            "{:<20} {:>10} {:>12.3e} {:>8} {:>10.3}\n",
            r.method,
            r.unknowns,
            r.rel_l2,
            r.iterations,
            total(r)
        ));
    }
    let verdict = match matched {
        Some(u) => format!(
            "the cheapest uniform mesh as accurate (within 5 %: {}) needs {:.1}× the unknowns and {:.1}× the time",
            u.method,
            u.unknowns as f64 / multilevel.unknowns as f64,
            total(u) / total(&multilevel)
        ),
        None => "no uniform mesh of the comparison is as accurate (within 5 %) as the multilevel solve"
            .into(),
    };
    let verdict = match (chidenn.is_empty(), chidenn_matched) {
        (true, _) => verdict,
        (false, Some(c)) => format!(
            "{verdict}\nC-HiDeNN: {} is as accurate as the linear multilevel solve with {:.1}× fewer unknowns",
            c.method,
            multilevel.unknowns as f64 / c.unknowns as f64
        ),
        (false, None) => format!(
            "{verdict}\nC-HiDeNN: no run is as accurate (within 5 %) as the linear multilevel solve"
        ),
    };
    rep.info(format!(
        "mlvms ({}-D, {} levels above the coarse mesh):\n{table}{verdict}\nwrote {} and {} figures in {}",
        D,
        levels.len(),
        report.display(),
        figures.len(),
        plan.output_dir.display()
    ));
    Ok(MlvmsOutcome {
        multilevel,
        uniform,
        chidenn,
        report,
        figures,
    })
}

fn plots<const D: usize>(
    plan: &MlvmsPlan,
    sol: &MultilevelSolution<D>,
    exact: &dyn Fn([f64; D]) -> f64,
    levels: &[LevelSpec<D>],
    multilevel: &Run,
    uniform: &[Run],
    chidenn: &[Run],
) -> Result<Vec<PathBuf>, PdekitError> {
    // Sample the x–y plane (through the centre in 3-D) over the whole domain and over the first
    // level's box.
    let centre = &plan.centre;
    let sample = |lo: [f64; 2], hi: [f64; 2], n: usize| {
        let at = |i: usize, j: usize| -> [f64; D] {
            std::array::from_fn(|k| match k {
                0 => lo[0] + (hi[0] - lo[0]) * (i as f64 + 0.5) / n as f64,
                1 => lo[1] + (hi[1] - lo[1]) * (j as f64 + 0.5) / n as f64,
                _ => centre[k],
            })
        };
        let u = Array2::from_shape_fn((n, n), |(i, j)| sol.value(at(i, j)));
        let e = Array2::from_shape_fn((n, n), |(i, j)| {
            (sol.value(at(i, j)) - exact(at(i, j))).abs()
        });
        (u, e)
    };
    let n = 240;
    let boxes_in = |lo: [f64; 2], hi: [f64; 2]| -> Vec<[f64; 4]> {
        let sx = n as f64 / (hi[0] - lo[0]);
        let sy = n as f64 / (hi[1] - lo[1]);
        levels
            .iter()
            .map(|l| {
                [
                    (l.lo[0] - lo[0]) * sx,
                    (l.lo[1] - lo[1]) * sy,
                    (l.hi[0] - lo[0]) * sx,
                    (l.hi[1] - lo[1]) * sy,
                ]
            })
            .collect()
    };
    let (whole_lo, whole_hi) = ([0.0, 0.0], [1.0, 1.0]);
    let (zoom_lo, zoom_hi) = levels.first().map_or((whole_lo, whole_hi), |l| {
        ([l.lo[0], l.lo[1]], [l.hi[0], l.hi[1]])
    });
    let (u_all, _) = sample(whole_lo, whole_hi, n);
    let (u_zoom, e_zoom) = sample(zoom_lo, zoom_hi, n);
    let cost = |r: &Run| Cost {
        unknowns: r.unknowns as f64,
        seconds: r.assemble_seconds + r.solve_seconds,
        rel_l2: r.rel_l2,
    };
    Ok(crate::plot::mlvms::steady(
        &plan.output_dir,
        plan.format,
        &SteadyResult {
            levels: levels.len(),
            slice: if D == 3 { " (slice z = centre)" } else { "" },
            whole: BoxedField {
                values: u_all,
                boxes: boxes_in(whole_lo, whole_hi),
            },
            zoom: BoxedField {
                values: u_zoom,
                boxes: boxes_in(zoom_lo, zoom_hi),
            },
            zoom_error: e_zoom,
            uniform: uniform.iter().map(cost).collect(),
            multilevel: cost(multilevel),
            chidenn: chidenn.iter().map(cost).collect(),
        },
    )?)
}

/// What a transient run produced.
#[derive(Debug, Clone)]
pub struct TransientOutcome {
    pub info: pdekit_solvers::multiscale::transient::TransientInfo,
    pub report: PathBuf,
    pub figures: Vec<PathBuf>,
}

pub fn run_transient(
    plan: &MlvmsTransientPlan,
    config: &Path,
    rep: Reporter,
) -> Result<TransientOutcome, PdekitError> {
    match plan.dim {
        2 => run_transient_dim::<2>(plan, config, rep),
        _ => run_transient_dim::<3>(plan, config, rep),
    }
}

fn run_transient_dim<const D: usize>(
    plan: &MlvmsTransientPlan,
    config: &Path,
    rep: Reporter,
) -> Result<TransientOutcome, PdekitError> {
    let (start, velocity) = (plan.start.clone(), plan.velocity.clone());
    // The beam moves on a straight line and stops at the domain's edge (clamped inside).
    let path = move |t: f64| -> [f64; D] {
        std::array::from_fn(|k| (start[k] + velocity[k] * t).clamp(0.0, 1.0))
    };
    let problem = MovingSource {
        conductivity: plan.conductivity,
        capacity: plan.capacity,
        power: plan.power,
        radius: plan.radius,
        path: &path,
    };
    let params = TransientParams {
        dt: plan.dt,
        steps: plan.steps,
        theta: plan.theta,
        recentre_fraction: plan.recentre_fraction,
        ..TransientParams::default()
    };
    let shapes: Vec<(f64, usize)> = plan
        .levels
        .iter()
        .map(|l| (l.half_width, l.refine))
        .collect();
    let coarse = BoxMesh::new([0.0; D], [1.0; D], [plan.coarse; D]);
    let bar = rep.bar(plan.steps as u64, "mlvms transient", "steps");
    let (solution, info) = solve_transient(coarse, &shapes, &problem, &params, |_, _| bar.inc(1))
        .map_err(|source| PdekitError::Multiscale {
        config: config.to_path_buf(),
        source,
    })?;
    bar.finish_and_clear();
    let unconverged = info.steps.iter().filter(|s| !s.converged).count();
    if unconverged > 0 {
        rep.warn(format!(
            "{unconverged} steps stopped at the CG cap; their figures are as measured"
        ));
    }
    let mut doc = json!({
        "config": config,
        "plan": plan,
        "unknowns_final": info.unknowns,
        "recentres": info.recentres,
        "energy_balance_relative": info.balance,
        "transfer_defect_relative": info.transfer_defect,
        "seconds": info.seconds,
        "steps": info.steps.iter().map(|s| json!({
            "time": s.time, "heat_in": s.heat_in, "heat_out": s.heat_out, "stored": s.stored,
            "transfer": s.transfer, "recentred": s.recentred, "cg_iterations": s.iterations,
            "converged": s.converged,
        })).collect::<Vec<_>>(),
    });
    let report = crate::files::write_report(
        &plan.output_dir.join("mlvms_transient_report.json"),
        &mut doc,
    )?;

    // Figures: the final field with the final boxes, and the energy ledger.
    let hierarchy = solution.hierarchy;
    let nodal = hierarchy.nodal_values(&solution.coefficients);
    let levels: Vec<LevelSpec<D>> = hierarchy.meshes[1..]
        .iter()
        .map(|m| LevelSpec {
            lo: m.lo,
            hi: m.hi,
            refine: 1,
        })
        .collect();
    let sol = MultilevelSolution {
        hierarchy,
        coefficients: solution.coefficients,
        nodal,
    };
    let n = 240;
    let last = path(plan.steps as f64 * plan.dt);
    let field = Array2::from_shape_fn((n, n), |(i, j)| {
        let x: [f64; D] = std::array::from_fn(|k| match k {
            0 => (i as f64 + 0.5) / n as f64,
            1 => (j as f64 + 0.5) / n as f64,
            _ => last[k],
        });
        sol.value(x)
    });
    let outlines = levels
        .iter()
        .map(|l| {
            [
                l.lo[0] * n as f64,
                l.lo[1] * n as f64,
                l.hi[0] * n as f64,
                l.hi[1] * n as f64,
            ]
        })
        .collect();
    let ledger: Vec<Ledger> = info
        .steps
        .iter()
        .map(|s| Ledger {
            time: s.time,
            heat_in: s.heat_in,
            heat_out: s.heat_out,
            stored: s.stored,
        })
        .collect();
    let figures = crate::plot::mlvms::transient(
        &plan.output_dir,
        plan.format,
        &TransientResult {
            time: plan.steps as f64 * plan.dt,
            slice: if D == 3 {
                " (slice through the beam)"
            } else {
                ""
            },
            field: BoxedField {
                values: field,
                boxes: outlines,
            },
            ledger: &ledger,
            balance: info.balance,
        },
    )?;
    rep.info(format!(
        "mlvms transient ({}-D): {} steps in {:.2} s, {} unknowns, {} re-centrings\n  energy balance {:.2e} of the heat in; re-centring (interpolation) changed the stored heat by {:.2e} of it\nwrote {} and {} figures in {}",
        D,
        plan.steps,
        info.seconds,
        info.unknowns,
        info.recentres,
        info.balance,
        info.transfer_defect,
        report.display(),
        figures.len(),
        plan.output_dir.display()
    ));
    Ok(TransientOutcome {
        info,
        report,
        figures,
    })
}
