//! `pdekit bench solvers CONFIG`: one sequence of systems solved by several methods.
//!
//! Every method solves the same systems with the same tolerance on the true relative residual. A
//! method that carries state (recycling, warm start) visits the systems in the configured order;
//! the others in natural order. Time per system is preconditioner setup + solve, plus, for sorted
//! runs, the ordering's cost spread over the systems. The first method is the baseline of the
//! speed-up columns.

use super::stamp;
use crate::config::{BenchProblem, Plan, SolverBenchPlan};
use crate::data::DataError;
use crate::files::write_atomic;
use crate::plot::solvers::{MethodResult, PeerResult};
use crate::progress::Reporter;
use crate::PdekitError;
use ndarray::Array2;
use pdekit_solvers::field::{GrfParams, GrfSampler2d};
use pdekit_solvers::grid::{Centring, Grid2d};
use pdekit_solvers::problem::{darcy, helmholtz, poisson, LinearSystem, ProblemError};
use pdekit_solvers::rng::sample_rng;
use pdekit_solvers::sequence::Ordering as OrderingName;
use pdekit_solvers::sequence::{self, SequenceSolver};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;
use sprs::CsMat;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One system of the benchmark sequence and the parameter field that defines it.
pub struct BenchSystem {
    pub system: LinearSystem,
    pub field: Array2<f64>,
}

/// Draws the benchmark's systems; system `i` depends only on `(seed, i)`.
pub fn build_systems(b: &SolverBenchPlan) -> Result<Vec<BenchSystem>, PdekitError> {
    let m = b.grid;
    let grf = GrfParams::new(b.alpha, b.tau, None);
    // The flux form samples K on the vertex grid including the boundary.
    let field_side = if b.problem == BenchProblem::DarcyFlux {
        m + 2
    } else {
        m
    };
    let sampler = GrfSampler2d::new(field_side, grf).map_err(ProblemError::from)?;
    (0..b.systems)
        .into_par_iter()
        .map(|i| {
            let g = sampler.sample(&mut sample_rng(b.seed, i as u64));
            let (system, field) = match b.problem {
                BenchProblem::DarcyFlux => {
                    let k = g.mapv(f64::exp);
                    let f = Array2::from_elem(k.dim(), 1.0);
                    let grid = Grid2d::new(field_side, Centring::Vertex);
                    (darcy::assemble(&grid, &k, &f)?, k)
                }
                BenchProblem::DarcyPaper => {
                    let k = g.mapv(f64::exp);
                    (darcy::assemble_paper_form(&k, 1.0)?, k)
                }
                BenchProblem::Poisson => (poisson::assemble(&g), g),
                BenchProblem::Helmholtz => {
                    let k = g.mapv(|v| b.wavenumber * (1.0 + 0.25 * v.tanh()));
                    let f = Array2::from_elem(k.dim(), 1.0);
                    (helmholtz::assemble(&k, &f), k)
                }
            };
            Ok(BenchSystem { system, field })
        })
        .collect()
}

/// The visiting order and what it cost to compute.
fn ordering(systems: &[BenchSystem], how: OrderingName) -> (Vec<usize>, f64) {
    let start = Instant::now();
    // The greedy tour uses the full fields (the SKR paper's Frobenius distance); the PCA ordering
    // the low Fourier modes it is defined on.
    let features: Vec<Vec<f64>> = systems
        .par_iter()
        .map(|s| match how {
            OrderingName::PcaHilbert => sequence::low_modes(s.field.view(), 6),
            _ => s.field.iter().copied().collect(),
        })
        .collect();
    let order = sequence::order(&features, how);
    (order, start.elapsed().as_secs_f64())
}

/// Per-system figures of one method.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PerSystem {
    pub iterations: Vec<usize>,
    pub matvecs: Vec<usize>,
    pub precond_applies: Vec<usize>,
    pub setup_seconds: Vec<f64>,
    pub solve_seconds: Vec<f64>,
    pub residual: Vec<f64>,
    pub converged: Vec<bool>,
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct MethodRow {
    pub label: String,
    pub ordering: OrderingName,
    pub systems: usize,
    pub converged: usize,
    pub mean_iterations: f64,
    pub mean_matvecs: f64,
    pub mean_precond_applies: f64,
    pub mean_setup_seconds: f64,
    pub mean_solve_seconds: f64,
    /// Ordering cost spread over the systems (0 in natural order).
    pub ordering_seconds_per_system: f64,
    /// Setup + solve + ordering share.
    pub seconds_per_system: f64,
    pub max_residual: f64,
    /// Baseline time per system / this method's.
    pub speedup: f64,
    /// Baseline iterations / this method's.
    pub iteration_ratio: f64,
    /// The relative residual after each iteration on system 0.
    pub system0_history: Vec<f64>,
    /// Where system 0 came in this method's solve order (0: first).
    pub system0_position: Option<usize>,
    /// Modelled bytes one iteration moves ([`super::bandwidth`]); `None` where not modelled (AMG).
    pub bytes_per_iteration: Option<f64>,
    /// Those bytes × iterations / solve time, and that over the measured triad bandwidth.
    pub achieved_bytes_per_second: Option<f64>,
    pub bandwidth_fraction: Option<f64>,
    /// Why the method stopped early, if it did (a failed setup or a breakdown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub per_system: PerSystem,
}

fn mean<T: Copy + Into<f64>>(v: &[T]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().map(|&x| x.into()).sum::<f64>() / v.len() as f64
    }
}

fn mean_usize(v: &[usize]) -> f64 {
    mean(&v.iter().map(|&x| x as f64).collect::<Vec<_>>())
}

/// Solves every system with one method, in `order`.
fn run_method(
    plan: &SolverBenchPlan,
    method: &crate::config::BenchMethodPlan,
    systems: &[BenchSystem],
    order: &[usize],
    ordering_used: OrderingName,
    ordering_seconds: f64,
    reporter: &Reporter,
) -> MethodRow {
    let spec = method.spec.with_parallel(plan.threads > 1);
    let mut label = spec.label();
    if method.fresh {
        label.push_str("+fresh");
    }
    let mut per = PerSystem::default();
    let mut error = None;
    let (mut system0_history, mut system0_position) = (Vec::new(), None);
    let bar = reporter.bar(systems.len() as u64, "bench", &label);
    match SequenceSolver::new(spec) {
        Err(e) => error = Some(e.to_string()),
        Ok(mut solver) => {
            for (position, &i) in order.iter().enumerate() {
                if method.fresh {
                    solver.reset();
                }
                // Only system 0's history is kept (for the convergence figure), so the others
                // are timed exactly as without it.
                solver.record_history(i == 0);
                let s = &systems[i].system;
                let mut x = vec![0.0; s.rhs.len()];
                let started = Instant::now();
                let outcome = solver.solve(&s.matrix, &s.rhs, &mut x);
                let wall = started.elapsed().as_secs_f64();
                let report = match outcome {
                    Ok(r) => (r.info, r.setup_seconds, r.solve_seconds),
                    Err(e) => match e.info() {
                        Some(info) => (info.clone(), 0.0, wall),
                        None => {
                            error = Some(format!("system {i}: {e}"));
                            break;
                        }
                    },
                };
                let (info, setup, solve) = report;
                if i == 0 {
                    system0_history.clone_from(&info.history);
                    system0_position = Some(position);
                }
                per.iterations.push(info.iterations);
                per.matvecs.push(info.matvecs);
                per.precond_applies.push(info.precond_applies);
                per.setup_seconds.push(setup);
                per.solve_seconds.push(solve);
                per.residual.push(info.rel_residual);
                per.converged.push(info.converged);
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    let spread = if ordering_used == OrderingName::Natural {
        0.0
    } else {
        ordering_seconds / systems.len().max(1) as f64
    };
    let setup = mean(&per.setup_seconds);
    let solve = mean(&per.solve_seconds);
    MethodRow {
        label,
        ordering: ordering_used,
        systems: per.iterations.len(),
        converged: per.converged.iter().filter(|&&c| c).count(),
        mean_iterations: mean_usize(&per.iterations),
        mean_matvecs: mean_usize(&per.matvecs),
        mean_precond_applies: mean_usize(&per.precond_applies),
        mean_setup_seconds: setup,
        mean_solve_seconds: solve,
        ordering_seconds_per_system: spread,
        seconds_per_system: setup + solve + spread,
        max_residual: per.residual.iter().copied().fold(0.0, f64::max),
        speedup: f64::NAN,
        iteration_ratio: f64::NAN,
        system0_history,
        system0_position,
        bytes_per_iteration: None,
        achieved_bytes_per_second: None,
        bandwidth_fraction: None,
        error,
        per_system: per,
    }
}

/// What `bench solvers` wrote.
#[derive(Debug)]
pub struct BenchOutcome {
    pub rows: Vec<MethodRow>,
    pub json: PathBuf,
    /// Time per system, convergence on system 0, iterations along the solve order.
    pub figures: Vec<PathBuf>,
    pub table: String,
}

/// Runs the benchmark of `plan`'s `[solver_bench]` section; with `peers`, also exports the systems
/// and runs `bench/peers/solvers_scipy.py` on them with `python`.
pub fn run(
    plan: &Plan,
    reporter: &Reporter,
    peers: Option<&Path>,
) -> Result<BenchOutcome, PdekitError> {
    let b = plan.solver_bench.as_ref().ok_or_else(|| {
        PdekitError::Usage(format!(
            "{}: the config has no [solver_bench] section",
            plan.source_path.display()
        ))
    })?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(b.threads)
        .build()
        .map_err(|e| {
            PdekitError::Usage(format!(
                "solver_bench.threads = {}: cannot start them: {e}",
                b.threads
            ))
        })?;
    let stem = plan
        .source_path
        .file_stem()
        .map_or_else(|| "bench".into(), |s| s.to_string_lossy().to_string());
    reporter.info(format!(
        "{stem}: {} {} systems with {} unknowns each, tolerance {:.0e}, {} thread{}",
        b.systems,
        serde_json::to_value(b.problem)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        b.grid * b.grid,
        b.stop.rtol,
        b.threads,
        if b.threads == 1 { "" } else { "s" }
    ));
    let systems = pool.install(|| build_systems(b))?;
    let bandwidth = pool.install(super::bandwidth::triad);
    reporter.info(format!(
        "memory bandwidth (triad, {} thread{}): {:.1} GB/s",
        b.threads,
        if b.threads == 1 { "" } else { "s" },
        bandwidth / 1e9
    ));
    let natural: Vec<usize> = (0..systems.len()).collect();
    let mut orders: Vec<(OrderingName, Vec<usize>, f64)> =
        vec![(OrderingName::Natural, natural, 0.0)];
    let mut rows = Vec::new();
    for m in &b.methods {
        let how = if m.spec.carries_state() && !m.fresh {
            m.ordering.unwrap_or(b.ordering)
        } else {
            m.ordering.unwrap_or(OrderingName::Natural)
        };
        if !orders.iter().any(|(o, _, _)| *o == how) {
            let (order, secs) = pool.install(|| ordering(&systems, how));
            orders.push((how, order, secs));
        }
        let (_, order, secs) = orders
            .iter()
            .find(|(o, _, _)| *o == how)
            .expect("computed above");
        let mut row = pool.install(|| run_method(b, m, &systems, order, how, *secs, reporter));
        if let Some(first) = systems.first() {
            let a = &first.system.matrix;
            let per_iteration = |count: f64| count / row.mean_iterations.max(1.0);
            // A fresh recycled CG has no deflation space within its one solve.
            let mut spec = m.spec;
            if m.fresh && matches!(spec.method, sequence::Method::RecycledCg { .. }) {
                spec.method = sequence::Method::RecycledCg { recycle: 0 };
            }
            row.bytes_per_iteration = super::bandwidth::bytes_per_iteration(
                &spec,
                a.rows(),
                a.nnz(),
                per_iteration(row.mean_matvecs),
                per_iteration(row.mean_precond_applies),
            );
            row.achieved_bytes_per_second = row
                .bytes_per_iteration
                .map(|bytes| bytes * row.mean_iterations / row.mean_solve_seconds);
            row.bandwidth_fraction = row.achieved_bytes_per_second.map(|r| r / bandwidth);
        }
        reporter.info(format!(
            "  {:<28} {:>9.1} iterations {:>9.4} s/system{}",
            row.label,
            row.mean_iterations,
            row.seconds_per_system,
            row.error
                .as_deref()
                .map_or(String::new(), |e| format!("  ({e})"))
        ));
        rows.push(row);
    }
    if let Some(base) = rows.first().cloned() {
        for r in &mut rows {
            r.speedup = base.seconds_per_system / r.seconds_per_system;
            r.iteration_ratio = base.mean_iterations / r.mean_iterations;
        }
    }

    let peer_result = match peers {
        None => None,
        Some(python) => {
            let dir = b.export_dir.join(&stem);
            let sorted = orders
                .iter()
                .find(|(o, _, _)| *o == b.ordering)
                .map(|(_, o, _)| o.clone())
                .unwrap_or_else(|| ordering(&systems, b.ordering).0);
            export(&dir, b, &systems, &sorted)?;
            Some(run_peers(python, &dir, reporter)?)
        }
    };

    let out_dir = &b.output_dir;
    let base = format!("solvers-{stem}-{}", stamp());
    let table = table(&rows, peer_result.as_ref());
    let mut doc = json!({
        "benchmark": "solvers",
        "config": plan.source_path,
        "plan": b,
        "unknowns": b.grid * b.grid,
        "bandwidth_bytes_per_second": bandwidth,
        "bandwidth_bytes_per_second": bandwidth,
        "ordering_seconds": orders.iter().map(|(o, _, s)| json!({"ordering": o, "seconds": s})).collect::<Vec<_>>(),
        "methods": rows,
        "peers": peer_result,
    });
    let json_path = crate::files::write_report(&out_dir.join(format!("{base}.json")), &mut doc)?;
    let methods: Vec<MethodResult> = rows
        .iter()
        .map(|r| MethodResult {
            // The order is named where it is not natural, or where the same method also runs in
            // another order.
            label: if r.ordering == OrderingName::Natural
                && !rows
                    .iter()
                    .any(|o| o.label == r.label && o.ordering != r.ordering)
            {
                r.label.clone()
            } else {
                format!("{}, {} order", r.label, ordering_name(r.ordering))
            },
            seconds_per_system: r.seconds_per_system,
            iterations: &r.per_system.iterations,
            system0: r
                .system0_position
                .filter(|_| !r.system0_history.is_empty())
                .map(|p| (r.system0_history.as_slice(), p)),
        })
        .collect();
    let mut peer_bars = Vec::new();
    if let Some(methods) = peer_result
        .as_ref()
        .and_then(|p| p.get("methods"))
        .and_then(|m| m.as_array())
    {
        for m in methods {
            // The peer runs some methods in more than one order: say which.
            let ordering = m
                .get("ordering")
                .and_then(|o| o.as_str())
                .filter(|o| !o.is_empty())
                .map_or(String::new(), |o| format!(", {o} order"));
            peer_bars.push(PeerResult {
                label: format!(
                    "{}{ordering} (peer)",
                    m.get("label").and_then(|l| l.as_str()).unwrap_or("?")
                ),
                seconds_per_system: m
                    .get("seconds_per_system")
                    .and_then(|v| v.as_f64())
                    .unwrap_or(f64::NAN),
            });
        }
    }
    let figures = crate::plot::solvers::figures(
        out_dir, b.format, &base, &stem, b.threads, &methods, &peer_bars,
    )?;
    Ok(BenchOutcome {
        rows,
        json: json_path,
        figures,
        table,
    })
}

/// The order's name as configs write it (`greedy`, `pca_hilbert`).
fn ordering_name(o: OrderingName) -> String {
    serde_json::to_value(o)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{o:?}"))
}

fn table(rows: &[MethodRow], peers: Option<&serde_json::Value>) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| method | order | iterations | mat-vecs | setup s | solve s | s/system | converged | max residual | speed-up | iteration ratio | GB/s (of bandwidth) |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            t,
            "| {} | {} | {:.1} | {:.1} | {:.5} | {:.5} | {:.5} | {}/{} | {:.2e} | {:.2} | {:.2} | {} |{}",
            r.label,
            ordering_name(r.ordering),
            r.mean_iterations,
            r.mean_matvecs,
            r.mean_setup_seconds,
            r.mean_solve_seconds,
            r.seconds_per_system,
            r.converged,
            r.systems,
            r.max_residual,
            r.speedup,
            r.iteration_ratio,
            match (r.achieved_bytes_per_second, r.bandwidth_fraction) {
                (Some(rate), Some(f)) => format!("{:.1} ({:.0} %)", rate / 1e9, 100.0 * f),
                _ => "not modelled".into(),
            },
            r.error
                .as_deref()
                .map_or(String::new(), |e| format!(" stopped: {e}")),
        );
    }
    if let Some(methods) = peers
        .and_then(|p| p.get("methods"))
        .and_then(|m| m.as_array())
    {
        let best_ours = rows
            .iter()
            .filter(|r| r.converged == r.systems && r.systems > 0)
            .map(|r| (r.seconds_per_system, r.label.as_str()))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let _ = writeln!(t, "\npeers (same systems, same tolerance):\n");
        let _ = writeln!(
            t,
            "| peer method | order | iterations | mat-vecs | s/system | converged | max residual |"
        );
        let _ = writeln!(t, "|---|---|---|---|---|---|---|");
        let mut best_peer: Option<(f64, String)> = None;
        for m in methods {
            let f = |k: &str| m.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
            let label = m.get("label").and_then(|v| v.as_str()).unwrap_or("?");
            if let Some(e) = m.get("error").and_then(|v| v.as_str()) {
                let _ = writeln!(t, "| {label} | | failed: {e} | | | | |");
                continue;
            }
            let converged = f("converged") as usize;
            let systems = f("systems") as usize;
            // PETSc does not count its mat-vecs.
            let matvecs = match f("mean_matvecs") {
                v if v.is_finite() => format!("{v:.1}"),
                _ => "–".into(),
            };
            let _ = writeln!(
                t,
                "| {label} | {} | {:.1} | {matvecs} | {:.5} | {converged}/{systems} | {:.2e} |",
                m.get("ordering").and_then(|v| v.as_str()).unwrap_or(""),
                f("mean_iterations"),
                f("seconds_per_system"),
                f("max_residual"),
            );
            let s = f("seconds_per_system");
            if converged == systems && s.is_finite() && best_peer.as_ref().is_none_or(|b| s < b.0) {
                best_peer = Some((s, label.to_string()));
            }
        }
        if let (Some((ours, ol)), Some((theirs, tl))) = (best_ours, best_peer) {
            let _ = writeln!(
                t,
                "\nfastest pdekit: {ol} {ours:.5} s/system; fastest peer: {tl} {theirs:.5} s/system; ratio {:.2}×",
                theirs / ours
            );
        }
    }
    t
}

/// Writes the systems as MatrixMarket files plus a manifest for the peer script.
fn export(
    dir: &Path,
    b: &SolverBenchPlan,
    systems: &[BenchSystem],
    sorted: &[usize],
) -> Result<(), PdekitError> {
    let spd = matches!(b.problem, BenchProblem::DarcyFlux | BenchProblem::Poisson);
    systems
        .par_iter()
        .enumerate()
        .try_for_each(|(i, s)| -> Result<(), DataError> {
            write_atomic(
                &dir.join(format!("A_{i:05}.mtx")),
                &matrix_market(&s.system.matrix),
            )?;
            write_atomic(
                &dir.join(format!("b_{i:05}.mtx")),
                &vector_market(&s.system.rhs),
            )?;
            Ok(())
        })?;
    let manifest = json!({
        "systems": systems.len(),
        "unknowns": b.grid * b.grid,
        "tolerance": b.stop.rtol,
        "max_iterations": b.stop.max_iter,
        "sorted_order": sorted,
        "ordering": b.ordering,
        "spd": spd,
        "restart": sequence::DEFAULT_RESTART,
        "recycle": sequence::DEFAULT_GCRODR_RECYCLE,
        "threads": b.threads,
    });
    crate::files::write_json(&dir.join("manifest.json"), &manifest)?;
    Ok(())
}

/// MatrixMarket coordinate format (1-based), full precision.
pub fn matrix_market(a: &CsMat<f64>) -> String {
    let mut s = String::with_capacity(a.nnz() * 40 + 100);
    let _ = writeln!(s, "%%MatrixMarket matrix coordinate real general");
    let _ = writeln!(s, "{} {} {}", a.rows(), a.cols(), a.nnz());
    for (v, (i, j)) in a.iter() {
        let _ = writeln!(s, "{} {} {:.17e}", i + 1, j + 1, v);
    }
    s
}

/// MatrixMarket dense column.
pub fn vector_market(v: &[f64]) -> String {
    let mut s = String::with_capacity(v.len() * 26 + 60);
    let _ = writeln!(s, "%%MatrixMarket matrix array real general");
    let _ = writeln!(s, "{} 1", v.len());
    for x in v {
        let _ = writeln!(s, "{x:.17e}");
    }
    s
}

/// Runs the peer script on an exported sequence and returns its JSON.
fn run_peers(
    python: &Path,
    dir: &Path,
    reporter: &Reporter,
) -> Result<serde_json::Value, PdekitError> {
    let out = dir.join("peers.json");
    super::run_peer_script(python, "solvers_scipy.py", &[dir, &out], reporter)?;
    let mut doc = super::read_peer_json(out)?;
    // PETSc runs on the system python that Debian's petsc4py installs into.
    let petsc_python = std::env::var_os("PDEKIT_PETSC_PYTHON")
        .map_or_else(|| PathBuf::from("/usr/bin/python3"), PathBuf::from);
    let script = super::peer_script("solvers_petsc.py");
    let available = std::process::Command::new(&petsc_python)
        .arg(&script)
        .arg("--probe")
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        reporter.info(format!(
            "PETSc peer not run: petsc4py does not import with {} (one-time: apt-get install python3-petsc4py-real; see bench/peers/README.md)",
            petsc_python.display()
        ));
        doc["petsc"] = json!("not installed");
        return Ok(doc);
    }
    let petsc_out = dir.join("peers_petsc.json");
    super::run_peer_script(
        &petsc_python,
        "solvers_petsc.py",
        &[dir, &petsc_out],
        reporter,
    )?;
    let petsc = super::read_peer_json(petsc_out)?;
    if let (Some(all), Some(more)) = (
        doc.get_mut("methods").and_then(|m| m.as_array_mut()),
        petsc.get("methods").and_then(|m| m.as_array()),
    ) {
        all.extend(more.iter().cloned());
    }
    doc["petsc"] = petsc.get("versions").cloned().unwrap_or(json!(null));
    Ok(doc)
}
