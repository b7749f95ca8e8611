//! The `generate` stage: draws and solves samples in parallel and streams them into a dataset.
//!
//! Samples are produced in batches (rayon across the samples of a batch) and appended in index order;
//! the file is checkpointed every `checkpoint_every` samples, so a killed run resumes from the last
//! checkpoint. Sample `i` depends only on `(seed, i)`, so a resumed run equals an uninterrupted one,
//! and a shard holds exactly the rows of the unsharded dataset in its range.
//!
//! Every family goes through [`Family`]; Darcy alone also has the modes that carry state across
//! samples (recycling chains in a sorted order, a learned SSOR ω).

use super::{RunOptions, Shard};
use crate::config::relax::LOSS_SCALE;
use crate::config::{GeneratePlan, OnFailure, Plan, Precision};
use crate::data::h5::{partial_path, DatasetWriter, Dtype, FieldSpec, Header};
use crate::data::{DataError, Dataset, FORMAT_NAME, FORMAT_VERSION};
use crate::progress::Reporter;
use crate::PdekitError;
use indicatif::ProgressBar;
use pdekit_solvers::problem::{Family, ProblemError, Sample, SampleLayout};
use pdekit_solvers::relax::policy::{linspace, TsallisInf};
use pdekit_solvers::sequence::{driver, Ordering as Order, PrecondKind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Root attribute holding the content key of the file's rows ([`GeneratePlan::content_key`], plus
/// the shard for a shard file).
pub const PLAN_KEY_ATTR: &str = "plan_key";
/// Root attribute holding [`GeneratePlan::content_key`] of the whole dataset, the same in every shard.
pub const DATASET_KEY_ATTR: &str = "dataset_key";
/// Root attribute `I/N` of a shard file.
pub const SHARD_ATTR: &str = "shard";

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

/// The family of a generate plan, ready to draw samples. Samples run in parallel, one per thread,
/// so each solve's mat-vecs stay serial.
pub fn family(g: &GeneratePlan) -> Result<Box<dyn Family>, ProblemError> {
    let mut params = g.family_params();
    if let Some(spec) = params.solver_mut() {
        spec.parallel = false;
    }
    params.build()
}

/// The `[generate]` section of `plan`, or a usage error naming the config.
pub fn section(plan: &Plan) -> Result<&GeneratePlan, PdekitError> {
    plan.generate.as_ref().ok_or_else(|| {
        PdekitError::Usage(format!(
            "{}: the config has no [generate] section",
            plan.source_path.display()
        ))
    })
}

/// True when the family's stats include the time steps taken.
fn has_steps(layout: &SampleLayout) -> bool {
    layout.axes.iter().any(|(name, _)| *name == "t")
}

/// The learner behind `omega = "learned"`: Tsallis-INF over ω ∈ {1.0, 1.05, …, 1.95}, seeded by the
/// run's seed, with the rate that met the learned-SOR targets (see configs/learned_sor_high.toml).
fn omega_learner(seed: u64) -> TsallisInf {
    TsallisInf::new(linspace(1.0, 1.95, 20), LOSS_SCALE, 16.0, seed)
}

/// The file layout of a generate plan (or of one of its shards).
pub fn header(
    plan: &Plan,
    g: &GeneratePlan,
    layout: &SampleLayout,
    shard: Option<Shard>,
) -> Header {
    let field_dtype = match g.dataset.precision {
        Precision::F32 => Dtype::F32,
        Precision::F64 => Dtype::F64,
    };
    let plan_toml = toml::to_string_pretty(g).unwrap_or_default();
    let range = shard.map_or(0..g.dataset.samples, |s| s.range(g.dataset.samples));
    let mut attrs = vec![
        ("format", FORMAT_NAME.to_string()),
        ("format_version", FORMAT_VERSION.to_string()),
        ("pdekit_version", env!("CARGO_PKG_VERSION").to_string()),
        ("problem", g.dataset.problem.clone()),
        ("config", plan.source_text.clone()),
        ("plan", plan_toml),
        (PLAN_KEY_ATTR, content_key(g, shard)),
        (DATASET_KEY_ATTR, g.content_key()),
        ("seed", g.dataset.seed.to_string()),
        ("samples", (range.end - range.start).to_string()),
        ("created", crate::meta::now_utc()),
    ];
    if let Some(s) = shard {
        attrs.push((SHARD_ATTR, s.label()));
        attrs.push(("sample_range", format!("{}..{}", range.start, range.end)));
    }
    let spec = |path: String, dtype, frame: Vec<usize>| FieldSpec { path, dtype, frame };
    let mut fields = Vec::new();
    for (name, shape) in &layout.inputs {
        fields.push(spec(format!("inputs/{name}"), field_dtype, shape.clone()));
    }
    for (name, shape) in &layout.outputs {
        fields.push(spec(format!("outputs/{name}"), field_dtype, shape.clone()));
    }
    fields.push(spec("params/index".into(), Dtype::U64, vec![]));
    for name in &layout.params {
        fields.push(spec(format!("params/{name}"), Dtype::F64, vec![]));
    }
    for (name, dtype) in stats_fields(g, layout) {
        fields.push(spec(format!("stats/{name}"), dtype, vec![]));
    }
    Header {
        attrs: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        arrays: layout
            .axes
            .iter()
            .map(|(name, values)| (format!("grid/{name}"), values.clone()))
            .collect(),
        fields,
    }
}

/// The per-sample report columns, in row order.
fn stats_fields(g: &GeneratePlan, layout: &SampleLayout) -> Vec<(&'static str, Dtype)> {
    let mut out = Vec::new();
    if layout.linear_solves {
        out.extend([
            ("iterations", Dtype::U32),
            ("matvecs", Dtype::U32),
            ("residual", Dtype::F64),
        ]);
    }
    if has_steps(layout) {
        out.push(("steps", Dtype::U32));
    }
    out.extend([("converged", Dtype::U8), ("seconds", Dtype::F64)]);
    if uses_ssor(g) {
        out.push(("omega", Dtype::F64));
    }
    out
}

/// The content key of the rows a run writes: the plan's, plus the shard.
fn content_key(g: &GeneratePlan, shard: Option<Shard>) -> String {
    match shard {
        None => g.content_key(),
        Some(s) => format!("{} shard {}", g.content_key(), s.label()),
    }
}

fn uses_ssor(g: &GeneratePlan) -> bool {
    g.solver
        .as_ref()
        .is_some_and(|s| matches!(s.spec.precond, PrecondKind::Ssor { .. }))
}

/// Brings a fresh learner to the state it had after the first `done` rows of the interrupted run.
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
    driver::replay(
        learner,
        iterations.as_slice().expect(contiguous),
        omegas.as_slice().expect(contiguous),
        batch,
    )
    .map_err(|e| {
        DataError::Corrupt {
            path: writer.partial_path().to_path_buf(),
            message: format!("{e}; rerun with --force"),
        }
        .into()
    })
}

/// The progress bars of a generate run.
struct Bars {
    rep: Reporter,
    target: u64,
    resumed: u64,
    sort: OnceLock<ProgressBar>,
    generate: OnceLock<ProgressBar>,
}

impl Bars {
    fn sort(&self) -> &ProgressBar {
        self.sort
            .get_or_init(|| self.rep.bar(self.target, "sort", "fields"))
    }

    fn generate(&self) -> &ProgressBar {
        self.generate.get_or_init(|| {
            let bar = self.rep.bar(self.target, "generate", "samples");
            bar.set_position(self.resumed);
            bar
        })
    }
}

/// Appends solved samples as rows and keeps the run's statistics.
struct RowSink<'a> {
    writer: &'a mut DatasetWriter,
    interrupted: &'a AtomicBool,
    /// The sorting bar (chain schedules), then the generation bar: created when their work starts,
    /// so that only one is on screen.
    bars: &'a Bars,
    g: &'a GeneratePlan,
    layout: &'a SampleLayout,
    /// Samples this run (or shard) is to hold.
    target: u64,
    /// The SSOR ω of every solve when it is fixed (learned ones come with each sample).
    fixed_omega: Option<f64>,
    unconverged: Vec<u64>,
    iterations_sum: f64,
    max_residual: f64,
    solved: u64,
}

impl driver::Sink<Sample> for RowSink<'_> {
    type Error = PdekitError;

    /// On Ctrl-C: checkpoint what is written and stop with the resume hint.
    fn before_batch(&mut self) -> Result<(), PdekitError> {
        self.bars.generate();
        if !self.interrupted.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.writer.checkpoint()?;
        self.bars.generate().abandon();
        Err(PdekitError::Interrupted {
            done: self.writer.len(),
            total: self.target,
            partial: self.writer.partial_path().to_path_buf(),
        })
    }

    fn ordered(&mut self) {
        self.bars.sort().finish_and_clear();
    }

    fn record(&mut self, sample: Sample, omega: Option<f64>) -> Result<(), PdekitError> {
        let g = self.g;
        let r = &sample.report;
        if !r.converged {
            if g.dataset.on_failure == OnFailure::Fail {
                self.writer.checkpoint()?;
                self.bars.generate().abandon();
                let kept = self.writer.len();
                let partial = self.writer.partial_path().to_path_buf();
                return Err(match &g.solver {
                    Some(solver) if self.layout.linear_solves => PdekitError::NotConverged {
                        index: sample.index,
                        residual: r.rel_residual,
                        iterations: r.iterations,
                        tolerance: solver.spec.params.rtol,
                        kept,
                        partial,
                    },
                    _ => PdekitError::BlewUp {
                        index: sample.index,
                        family: g.dataset.problem.clone(),
                        kept,
                        partial,
                    },
                });
            }
            self.unconverged.push(sample.index);
        }
        let mut row: Vec<&[f64]> = Vec::new();
        row.extend(sample.inputs.iter().map(Vec::as_slice));
        row.extend(sample.outputs.iter().map(Vec::as_slice));
        let index = [sample.index as f64];
        row.push(&index);
        row.extend(sample.params.chunks(1));
        let stats: Vec<f64> = stats_fields(g, self.layout)
            .iter()
            .map(|(name, _)| match *name {
                "iterations" => r.iterations as f64,
                "matvecs" => r.matvecs as f64,
                "residual" => r.rel_residual,
                "steps" => r.steps as f64,
                "converged" => f64::from(u8::from(r.converged)),
                "seconds" => r.seconds,
                "omega" => omega.or(self.fixed_omega).unwrap_or(f64::NAN),
                other => unreachable!("stats column {other} has no value"),
            })
            .collect();
        row.extend(stats.chunks(1));
        self.writer.append(&row)?;
        self.iterations_sum += r.iterations as f64;
        self.max_residual = self.max_residual.max(r.rel_residual);
        self.solved += 1;
        if self.writer.len().is_multiple_of(g.dataset.checkpoint_every) {
            self.writer.checkpoint()?;
        }
        Ok(())
    }
}

/// Runs the generate stage of `plan` (one shard of it with `opts.shard`).
pub fn run(
    plan: &Plan,
    opts: RunOptions,
    interrupted: &AtomicBool,
) -> Result<GenerateReport, PdekitError> {
    let g = section(plan)?;
    let rep = opts.reporter;
    let started = Instant::now();
    let shard = opts.shard;
    let samples = g.dataset.samples;
    if let Some(s) = shard.filter(|s| s.count > samples) {
        return Err(PdekitError::Usage(format!(
            "--shard {}/{}: {} holds {samples} samples, too few for {} non-empty shards; use at most {samples} shards",
            s.index,
            s.count,
            plan.source_path.display(),
            s.count
        )));
    }
    let range = shard.map_or(0..samples, |s| s.range(samples));
    let target = range.end - range.start;
    let output = shard.map_or_else(|| g.dataset.output.clone(), |s| s.path(&g.dataset.output));
    let key = content_key(g, shard);
    let family = family(g)?;
    let layout = family.layout();
    let header = header(plan, g, &layout, shard);
    let _lock = crate::files::WriteLock::acquire(&output)?;

    if opts.force {
        let partial = partial_path(&output);
        if partial.exists() {
            std::fs::remove_file(&partial).map_err(|e| DataError::Io {
                path: partial,
                message: e.to_string(),
            })?;
        }
    } else if output.exists() {
        if let Ok(ds) = Dataset::open(&output) {
            if ds.attr(PLAN_KEY_ATTR).as_deref() == Some(key.as_str()) && ds.len() as u64 == target
            {
                rep.info(format!(
                    "{} is up to date ({} samples); use --force to regenerate",
                    output.display(),
                    ds.len()
                ));
                // A partial file beside a complete dataset of the same plan is left over from an
                // interrupted --force run; it holds nothing the complete file lacks.
                let partial = partial_path(&output);
                if partial.exists() && std::fs::remove_file(&partial).is_ok() {
                    rep.info(format!("removed the leftover {}", partial.display()));
                }
                return Ok(GenerateReport {
                    output,
                    samples: target,
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
            output.display()
        ));
    }

    let spec = g.solver.as_ref().map(|s| {
        let mut spec = s.spec;
        spec.parallel = false;
        spec
    });
    let learned = spec.is_some_and(|s| s.learns_omega());
    // A learner decides a batch's ω before its solves and learns after them, so batches are fixed
    // at checkpoint_every samples (not the thread count) for the run to be reproducible, and a
    // resumed run restarts on a batch boundary.
    let every = g.dataset.checkpoint_every;
    let batch = if learned {
        every
    } else {
        (every as usize).max(4 * rayon::current_num_threads()) as u64
    };
    let align = if learned { batch } else { 1 };
    let mut writer = match DatasetWriter::resume(&output, &header, PLAN_KEY_ATTR, align) {
        // A partial file killed before its first checkpoint holds nothing to recover.
        Err(DataError::Corrupt { path, message }) => {
            rep.warn(format!(
                "{}: cannot recover samples ({message}); starting again",
                path.display()
            ));
            DatasetWriter::create(&output, &header)?
        }
        Err(e) => return Err(e.into()),
        Ok(Some(w)) => {
            rep.info(format!(
                "resuming {}: {} of {} samples already done",
                w.partial_path().display(),
                w.len(),
                target
            ));
            w
        }
        Ok(None) => DatasetWriter::create(&output, &header)?,
    };
    let resumed = writer.len();

    let schedule = match (&g.solver, spec) {
        (Some(plan), Some(spec)) if plan.chains.is_some() => driver::Schedule::Chains {
            ordering: plan.ordering.unwrap_or(Order::Natural),
            chains: plan.chains.unwrap_or(1),
            spec,
        },
        (_, Some(spec)) if learned => {
            let mut learner = omega_learner(g.dataset.seed);
            replay_learner(&mut learner, &writer, resumed, batch)?;
            driver::Schedule::LearnedOmega {
                batch,
                learner: Box::new(learner),
                spec,
            }
        }
        _ => driver::Schedule::Independent { batch },
    };
    let fixed_omega = match spec.map(|s| s.precond) {
        Some(PrecondKind::Ssor {
            omega: pdekit_solvers::sequence::Omega::Fixed(w),
        }) => Some(w),
        _ => None,
    };
    let bars = Bars {
        rep,
        target,
        resumed,
        sort: OnceLock::new(),
        generate: OnceLock::new(),
    };
    let seed = g.dataset.seed;
    let features = |i: u64| {
        let f = family
            .order_features(seed, i)
            .expect("chains are planned only for families that order their samples");
        bars.sort().inc(1);
        f
    };
    let solve = |job: driver::Job| -> Result<Sample, PdekitError> {
        let sample = match job.solver {
            Some(solver) => {
                let precond = solver.spec().precond;
                family.generate_with(seed, job.index, solver, precond)?
            }
            None => family.generate(seed, job.index)?,
        };
        bars.generate().inc(1);
        Ok(sample)
    };
    let problem = driver::Problem {
        indices: range.clone(),
        done: resumed,
        features: &features,
        solve: &solve,
        cost: &|s: &Sample| s.report.iterations as f64,
    };
    let mut rows = RowSink {
        writer: &mut writer,
        interrupted,
        bars: &bars,
        g,
        layout: &layout,
        target,
        fixed_omega,
        unconverged: Vec::new(),
        iterations_sum: 0.0,
        max_residual: 0.0,
        solved: 0,
    };
    driver::run(schedule, &problem, &mut rows).map_err(|e| match e {
        driver::DriveError::Stopped(e) => e,
        driver::DriveError::Solver(e) => ProblemError::Solver {
            family: family.name(),
            index: range.start + resumed,
            source: Box::new(e),
        }
        .into(),
    })?;
    let RowSink {
        unconverged,
        iterations_sum,
        max_residual,
        solved,
        ..
    } = rows;
    bars.generate().finish_and_clear();
    let output = writer.finish()?;
    let seconds = started.elapsed().as_secs_f64();
    let report = GenerateReport {
        output,
        samples: target,
        resumed,
        up_to_date: false,
        unconverged,
        seconds,
        mean_iterations: iterations_sum / solved.max(1) as f64,
        max_residual,
    };
    let recovered = if resumed > 0 {
        format!(", {resumed} recovered from an interrupted run")
    } else {
        String::new()
    };
    let solver_summary = match &g.solver {
        Some(s) if layout.linear_solves => format!(
            "; {} iterations: mean {:.1}; max relative residual {:.2e}",
            s.spec.label(),
            report.mean_iterations,
            report.max_residual
        ),
        _ => String::new(),
    };
    rep.info(format!(
        "generated {} samples into {} in {:.2} s ({:.2} samples/s{recovered}){solver_summary}",
        solved,
        report.output.display(),
        seconds,
        solved as f64 / seconds,
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
