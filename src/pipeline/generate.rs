//! The `generate` stage: draws and solves samples in parallel and streams them into a dataset.
//!
//! Samples are produced in batches (rayon across the samples of a batch) and appended in index order;
//! the file is checkpointed every `checkpoint_every` samples, so a killed run resumes from the last
//! checkpoint. Sample `i` depends only on `(seed, i)`, so a resumed run equals an uninterrupted one.

use super::RunOptions;
use crate::config::{
    self, CoefficientKind, GeneratePlan, OmegaPlan, Plan, Precision, PreconditionerKind,
    ProblemPlan,
};
use crate::data::h5::{partial_path, DatasetWriter, Dtype, FieldSpec, Header};
use crate::data::{DataError, Dataset, FORMAT_NAME, FORMAT_VERSION};
use crate::PdekitError;
use pdekit_solvers::field::{CoefficientTransform, GrfParams};
use pdekit_solvers::grid::{Centring, Grid2d};
use pdekit_solvers::problem::darcy::{DarcyError, DarcyGenerator, DarcyParams, DarcySample};
use pdekit_solvers::relax::policy::{linspace, OmegaPolicy, TsallisInf};
use pdekit_solvers::sequence::{self, PrecondKind, SequenceSolver};
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Root attribute holding [`GeneratePlan::content_key`].
pub const PLAN_KEY_ATTR: &str = "plan_key";

/// What a generate run did.
#[derive(Debug, Clone)]
pub struct GenerateReport {
    pub output: PathBuf,
    pub samples: u64,
    /// Samples recovered from an interrupted run.
    pub resumed: u64,
    /// True when the output was already complete and nothing was done.
    pub up_to_date: bool,
    /// Indices of samples kept with `converged = 0`.
    pub unconverged: Vec<u64>,
    pub seconds: f64,
    pub mean_iterations: f64,
    pub max_residual: f64,
}

fn darcy_params(d: &config::DarcyPlan, solver: &config::SolverPlan) -> DarcyParams {
    let mut p = DarcyParams::default();
    p.grid = Grid2d::new(
        d.resolution,
        match d.centring {
            config::Centring::Vertex => Centring::Vertex,
            config::Centring::Cell => Centring::Cell,
        },
    );
    p.field = GrfParams::new(d.coefficient.alpha, d.coefficient.tau, d.coefficient.sigma);
    p.transform = match d.coefficient.kind {
        CoefficientKind::Threshold => CoefficientTransform::Threshold {
            high: d.coefficient.high,
            low: d.coefficient.low,
        },
        CoefficientKind::Lognormal => CoefficientTransform::LogNormal,
    };
    p.forcing = d.forcing;
    // One solve per thread: the mat-vecs stay serial. A learned ω is chosen per sample by the
    // generate loop; 1.0 only stands in for it here.
    p.solver = solver
        .method
        .spec(solver.tolerance, solver.max_iterations, 1.0)
        .with_parallel(false);
    p
}

/// The learner behind `omega = "learned"`: Tsallis-INF over ω ∈ {1.0, 1.05, …, 1.95}, seeded by the
/// run's seed, with the rate that met the learned-SOR targets (see configs/learned_sor_high.toml).
fn omega_learner(seed: u64) -> TsallisInf {
    TsallisInf::new(
        linspace(1.0, 1.95, 20),
        config::defaults::RELAX_LOSS_SCALE,
        16.0,
        seed,
    )
}

/// The file layout of a generate plan.
pub fn header(plan: &Plan, g: &GeneratePlan) -> Header {
    let ProblemPlan::Darcy(d) = &g.family;
    let grid = darcy_params(d, &g.solver).grid;
    let s = d.resolution;
    let field_dtype = match g.precision {
        Precision::F32 => Dtype::F32,
        Precision::F64 => Dtype::F64,
    };
    let plan_toml = toml::to_string_pretty(g).unwrap_or_default();
    let attrs = vec![
        ("format", FORMAT_NAME.to_string()),
        ("format_version", FORMAT_VERSION.to_string()),
        ("pdekit_version", env!("CARGO_PKG_VERSION").to_string()),
        ("problem", g.problem.clone()),
        ("config", plan.source_text.clone()),
        ("plan", plan_toml),
        (PLAN_KEY_ATTR, g.content_key()),
        ("seed", g.seed.to_string()),
        ("samples", g.samples.to_string()),
        ("created", crate::meta::now_utc()),
    ];
    let spec = |path: &str, dtype, frame: Vec<usize>| FieldSpec {
        path: path.into(),
        dtype,
        frame,
    };
    Header {
        attrs: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        arrays: vec![
            ("grid/x".into(), grid.coords()),
            ("grid/y".into(), grid.coords()),
        ],
        fields: vec![
            spec("inputs/coefficient", field_dtype, vec![s, s]),
            spec("outputs/solution", field_dtype, vec![s, s]),
            spec("params/index", Dtype::U64, vec![]),
            spec("stats/iterations", Dtype::U32, vec![]),
            spec("stats/matvecs", Dtype::U32, vec![]),
            spec("stats/residual", Dtype::F64, vec![]),
            spec("stats/converged", Dtype::U8, vec![]),
            spec("stats/seconds", Dtype::F64, vec![]),
        ]
        .into_iter()
        .chain(uses_ssor(g).then(|| spec("stats/omega", Dtype::F64, vec![])))
        .collect(),
    }
}

fn uses_ssor(g: &GeneratePlan) -> bool {
    g.solver.method.preconditioner == PreconditionerKind::Ssor
}

/// Brings a fresh learner to the state it had after the first `done` samples of the interrupted run
/// (a whole number of batches): each batch's choices are replayed, then its recorded costs
/// observed, as the generate loop does, so the continued run equals an uninterrupted one.
fn replay_learner(
    learner: &mut TsallisInf,
    writer: &DatasetWriter,
    done: u64,
    batch: u64,
) -> Result<(), PdekitError> {
    if done == 0 {
        return Ok(());
    }
    let ds = Dataset::open(writer.partial_path())?;
    let iterations = ds.read("stats/iterations", 0..done as usize)?;
    let omegas = ds.read("stats/omega", 0..done as usize)?;
    let contiguous = "arrays read from a file are contiguous";
    let iterations = iterations.as_slice().expect(contiguous);
    let omegas = omegas.as_slice().expect(contiguous);
    let b = batch as usize;
    for (start, (costs, stored)) in (0..)
        .step_by(b)
        .zip(iterations.chunks(b).zip(omegas.chunks(b)))
    {
        for (k, &w) in stored.iter().enumerate() {
            let chosen = learner.choose(0.0);
            if chosen != w {
                return Err(DataError::Corrupt {
                    path: writer.partial_path().to_path_buf(),
                    message: format!(
                        "cannot replay the ω learner: sample {} was solved with ω = {w}, the replay chose {chosen}; rerun with --force",
                        start + k
                    ),
                }
                .into());
            }
        }
        for &c in costs {
            learner.observe(c);
        }
    }
    Ok(())
}

/// Fourier modes per axis kept as a sample's features for ordering (|k| ≤ 6: 182 numbers). The
/// Euclidean distance between these is the L2 distance between the low-pass-filtered fields
/// (Parseval), so the greedy tour follows the SKR paper's field distance without holding every
/// field in memory.
const ORDER_MODES: usize = 6;

/// Splits a solve order into `chains` contiguous pieces and interleaves them into rounds: round r
/// holds the r-th sample of every chain that has one, as `(chain, sample)`. Rows are written round
/// by round, so a dataset's row order depends only on the plan, not on the thread count.
fn chain_schedule(order: &[usize], chains: usize) -> (Vec<Vec<(usize, u64)>>, usize) {
    let chains = chains.clamp(1, order.len().max(1));
    let base = order.len() / chains;
    let extra = order.len() % chains;
    let mut pieces = Vec::with_capacity(chains);
    let mut start = 0;
    for c in 0..chains {
        let len = base + usize::from(c < extra);
        pieces.push(&order[start..start + len]);
        start += len;
    }
    let longest = pieces.iter().map(|p| p.len()).max().unwrap_or(0);
    let rounds = (0..longest)
        .map(|r| {
            pieces
                .iter()
                .enumerate()
                .filter_map(|(c, p)| p.get(r).map(|&i| (c, i as u64)))
                .collect()
        })
        .collect();
    (rounds, chains)
}

/// Appends solved samples as rows and keeps the run's statistics.
struct RowSink<'a> {
    writer: &'a mut DatasetWriter,
    g: &'a GeneratePlan,
    unconverged: Vec<u64>,
    iterations_sum: f64,
    max_residual: f64,
    solved: u64,
}

impl RowSink<'_> {
    /// On Ctrl-C: checkpoint what is written and stop with the resume hint.
    fn stop_if_interrupted(
        &mut self,
        interrupted: &AtomicBool,
        bar: &indicatif::ProgressBar,
    ) -> Result<(), PdekitError> {
        if !interrupted.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.writer.checkpoint()?;
        bar.abandon();
        Err(PdekitError::Interrupted {
            done: self.writer.len(),
            total: self.g.samples,
            partial: self.writer.partial_path().to_path_buf(),
        })
    }

    fn record(
        &mut self,
        sample: DarcySample,
        omega: Option<f64>,
        bar: &indicatif::ProgressBar,
    ) -> Result<(), PdekitError> {
        let g = self.g;
        let info = &sample.info;
        if !info.converged {
            if g.on_failure == config::OnFailure::Fail {
                self.writer.checkpoint()?;
                bar.abandon();
                return Err(PdekitError::NotConverged {
                    index: sample.index,
                    residual: info.rel_residual,
                    iterations: info.iterations,
                    tolerance: g.solver.tolerance,
                    kept: self.writer.len(),
                    partial: self.writer.partial_path().to_path_buf(),
                });
            }
            self.unconverged.push(sample.index);
        }
        let mut row: Vec<&[f64]> = vec![
            sample.coefficient.as_slice().expect("standard layout"),
            sample.solution.as_slice().expect("standard layout"),
        ];
        let scalars = [
            sample.index as f64,
            info.iterations as f64,
            info.matvecs as f64,
            info.rel_residual,
            f64::from(u8::from(info.converged)),
            sample.seconds,
            omega.unwrap_or(f64::NAN),
        ];
        let n_scalars = if uses_ssor(g) { 7 } else { 6 };
        row.extend(scalars[..n_scalars].chunks(1));
        self.writer.append(&row)?;
        self.iterations_sum += info.iterations as f64;
        self.max_residual = self.max_residual.max(info.rel_residual);
        self.solved += 1;
        if self.writer.len().is_multiple_of(g.checkpoint_every) {
            self.writer.checkpoint()?;
        }
        Ok(())
    }
}

/// Runs the generate stage of `plan`.
pub fn run(
    plan: &Plan,
    opts: RunOptions,
    interrupted: &AtomicBool,
) -> Result<GenerateReport, PdekitError> {
    let g = plan.generate.as_ref().ok_or_else(|| {
        PdekitError::Usage(format!(
            "{}: the config has no [generate] section",
            plan.source_path.display()
        ))
    })?;
    let rep = opts.reporter;
    let started = Instant::now();
    let header = header(plan, g);

    if opts.force {
        let partial = partial_path(&g.output);
        if partial.exists() {
            std::fs::remove_file(&partial).map_err(|e| DataError::Io {
                path: partial,
                message: e.to_string(),
            })?;
        }
    } else if g.output.exists() {
        if let Ok(ds) = Dataset::open(&g.output) {
            if ds.attr(PLAN_KEY_ATTR).as_deref() == Some(g.content_key().as_str())
                && ds.len() as u64 == g.samples
            {
                rep.info(format!(
                    "{} is up to date ({} samples); use --force to regenerate",
                    g.output.display(),
                    ds.len()
                ));
                // A partial file beside a complete dataset of the same plan is left over from an
                // interrupted --force run; it holds nothing the complete file lacks.
                let partial = partial_path(&g.output);
                if partial.exists() && std::fs::remove_file(&partial).is_ok() {
                    rep.info(format!("removed the leftover {}", partial.display()));
                }
                return Ok(GenerateReport {
                    output: g.output.clone(),
                    samples: g.samples,
                    resumed: 0,
                    up_to_date: true,
                    unconverged: Vec::new(),
                    seconds: 0.0,
                    mean_iterations: f64::NAN,
                    max_residual: f64::NAN,
                });
            }
        }
        rep.info(format!(
            "{} exists but was made by another plan; regenerating it",
            g.output.display()
        ));
    }

    let learned = g.solver.method.omega == Some(OmegaPlan::Learned);
    // A learner decides a batch's ω before its solves and learns after them, so batches are fixed
    // at checkpoint_every samples (not the thread count) for the run to be reproducible, and a
    // resumed run restarts on a batch boundary.
    let batch = if learned {
        g.checkpoint_every
    } else {
        (g.checkpoint_every as usize).max(4 * rayon::current_num_threads()) as u64
    };
    let align = if learned { batch } else { 1 };
    let mut writer = match DatasetWriter::resume(&g.output, &header, PLAN_KEY_ATTR, align) {
        // A partial file killed before its first checkpoint holds nothing to recover.
        Err(DataError::Corrupt { path, message }) => {
            rep.warn(format!(
                "{}: cannot recover samples ({message}); starting again",
                path.display()
            ));
            DatasetWriter::create(&g.output, &header)?
        }
        Err(e) => return Err(e.into()),
        Ok(Some(w)) => {
            rep.info(format!(
                "resuming {}: {} of {} samples already done",
                w.partial_path().display(),
                w.len(),
                g.samples
            ));
            w
        }
        Ok(None) => DatasetWriter::create(&g.output, &header)?,
    };
    let resumed = writer.len();

    let ProblemPlan::Darcy(d) = &g.family;
    let generator = DarcyGenerator::new(darcy_params(d, &g.solver))?;
    let mut learner = learned.then(|| omega_learner(g.seed));
    if let Some(learner) = learner.as_mut() {
        replay_learner(learner, &writer, resumed, batch)?;
    }
    let fixed_omega = match g.solver.method.omega {
        Some(OmegaPlan::Fixed(w)) => Some(w),
        _ => None,
    };
    let mut rows = RowSink {
        writer: &mut writer,
        g,
        unconverged: Vec::new(),
        iterations_sum: 0.0,
        max_residual: 0.0,
        solved: 0,
    };
    let chained = g.solver.method.carries_state();
    // In chain mode the rows are stored in solve order (see `chain_schedule`).
    let schedule = if chained {
        let chains = g.solver.chains.unwrap_or(1);
        let ordering = g.solver.ordering.unwrap_or(config::OrderingName::Natural);
        let bar = rep.bar(g.samples, "sort", "fields");
        let features: Vec<Vec<f64>> = (0..g.samples)
            .into_par_iter()
            .map(|i| {
                let f = sequence::low_modes(generator.coefficient(g.seed, i).view(), ORDER_MODES);
                bar.inc(1);
                f
            })
            .collect();
        bar.finish_and_clear();
        let order = sequence::order(&features, ordering.to_solver());
        Some(chain_schedule(&order, chains))
    } else {
        None
    };
    let bar = rep.bar(g.samples, "generate", "samples");
    bar.set_position(resumed);
    let mut next = resumed;
    if let Some((rounds, n_chains)) = schedule {
        let spec = generator.params().solver;
        let mut solvers = (0..n_chains)
            .map(|_| SequenceSolver::new(spec))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DarcyError::Solver {
                index: 0,
                source: Box::new(e),
            })?;
        let mut done = 0u64;
        for round in &rounds {
            let len = round.len() as u64;
            // Rounds wholly inside the recovered rows were solved by the interrupted run; the
            // chains restart with empty recycle spaces after them.
            if done + len <= resumed {
                done += len;
                continue;
            }
            rows.stop_if_interrupted(interrupted, &bar)?;
            debug_assert!(round.iter().enumerate().all(|(k, &(c, _))| k == c));
            let skip = resumed.saturating_sub(done) as usize;
            let results: Vec<Result<DarcySample, DarcyError>> = solvers
                .par_iter_mut()
                .zip(round.par_iter())
                .skip(skip)
                .map(|(solver, &(_, i))| {
                    let r = generator.generate_with(g.seed, i, solver, spec.precond);
                    bar.inc(1);
                    r
                })
                .collect();
            for result in results {
                rows.record(result?, fixed_omega, &bar)?;
            }
            done += len;
        }
    } else {
        while next < g.samples {
            rows.stop_if_interrupted(interrupted, &bar)?;
            let end = (next + batch).min(g.samples);
            let omegas: Vec<Option<f64>> = (next..end)
                .map(|_| learner.as_mut().map(|l| l.choose(0.0)))
                .collect();
            let results: Vec<Result<DarcySample, DarcyError>> = omegas
                .par_iter()
                .enumerate()
                .map(|(k, omega)| {
                    let i = next + k as u64;
                    let r = match omega {
                        Some(w) => SequenceSolver::new(generator.params().solver)
                            .map_err(|e| DarcyError::Solver {
                                index: i,
                                source: Box::new(e),
                            })
                            .and_then(|mut solver| {
                                generator.generate_with(
                                    g.seed,
                                    i,
                                    &mut solver,
                                    PrecondKind::Ssor { omega: *w },
                                )
                            }),
                        None => generator.generate(g.seed, i),
                    };
                    bar.inc(1);
                    r
                })
                .collect();
            for (result, omega) in results.into_iter().zip(omegas) {
                let sample = result?;
                if let Some(l) = learner.as_mut() {
                    l.observe(sample.info.iterations as f64);
                }
                rows.record(sample, omega.or(fixed_omega), &bar)?;
            }
            next = end;
        }
    }
    let RowSink {
        unconverged,
        iterations_sum,
        max_residual,
        solved,
        ..
    } = rows;
    bar.finish_and_clear();
    let output = writer.finish()?;
    let seconds = started.elapsed().as_secs_f64();
    let report = GenerateReport {
        output,
        samples: g.samples,
        resumed,
        up_to_date: false,
        unconverged,
        seconds,
        mean_iterations: iterations_sum / solved.max(1) as f64,
        max_residual,
    };
    rep.info(format!(
        "generated {} samples into {} in {:.2} s ({:.1} samples/s{}); {} iterations: mean {:.1}; max relative residual {:.2e}",
        solved,
        report.output.display(),
        seconds,
        solved as f64 / seconds,
        if resumed > 0 { format!(", {resumed} recovered from an interrupted run") } else { String::new() },
        generator.params().solver.label(),
        report.mean_iterations,
        report.max_residual,
    ));
    if !report.unconverged.is_empty() {
        rep.warn(format!(
            "{} samples did not converge and are stored with converged = 0: indices {:?}",
            report.unconverged.len(),
            report.unconverged
        ));
    }
    Ok(report)
}
